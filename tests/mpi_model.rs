//! The `mpi` model with the real binary and a real `mpirun`: results bitwise identical to the
//! `thread` model, native values crossing intact, failures on one rank reported by rank and
//! without hangs or orphan processes, and shell rules started on N ranks.
//!
//! Built with `--features mpi` (as `scripts/test.sh` and CI do). Each test skips, loudly, when
//! `mpirun` is not installed; `bash scripts/setup.sh` installs it.

mod common;
use common::Project;
use std::process::{Command, Stdio};

/// Whether `mpirun` can be run; says so loudly when not (the test then passes vacuously).
fn mpirun_available() -> bool {
    let ok = Command::new("mpirun")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!(
            "\n!!! SKIPPING mpi_model test: `mpirun` is not installed.\n\
             !!! Install OpenMPI with `bash scripts/setup.sh` (CI does).\n"
        );
    }
    ok
}

/// Shell rules need only a launcher, not the `mpi` feature.
#[test]
fn a_shell_rule_runs_on_n_ranks() {
    if !mpirun_available() {
        return;
    }
    let p = Project::new();
    p.file(
        "wf.rhai",
        r#"
rule("all", #{
    output: "copies.txt",
    model: "mpi", ranks: 3,
    shell: "echo copy > {output}",
});
"#,
    );
    p.run(&["wf.rhai", "-v"])
        .code(0)
        .stderr_has("mpirun -n 3 echo copy > copies.txt");
    assert_eq!(p.read("copies.txt"), "copy\ncopy\ncopy\n");
}

#[cfg(feature = "mpi")]
mod with_mpi {
    use std::path::{Path, PathBuf};
    use std::time::{Duration, Instant};

    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;

    use super::common::{run_bounded, Background, Project};
    use super::mpirun_available;

    /// Order-sensitive float sums, a Matrix, a Vector and a string, all folded in item order.
    const REDUCE: &str = r#"
let cfg = config(#{ model: "mpi", ranks: 2, n: 7 });
rule("all", #{
    output: "out.txt",
    items: |job| range(0, cfg.n).collect(),
    model: cfg.model, ranks: cfg.ranks, threads: 2,
    map: |job, i| #{
        x: 0.1 * i + 1.0 / (i + 3).to_float(),
        m: random_matrix(3, 2, i),
        v: random_vector(4, 100 + i),
        s: "<" + i + ">",
    },
    reduce: |acc, v| #{ x: acc.x * 1.0000001 + v.x, m: acc.m + v.m, v: acc.v * v.v, s: acc.s + v.s },
    init: #{ x: 0.3, m: matrix(3, 2), v: random_vector(4, 7), s: "" },
    finish: |job, r| {
        write_text(job.output[0], `${r.x}|${r.m}|${r.v}|${r.s}|${type_of(r.m)}|${type_of(r.v)}`);
        write_npy("out.npy", r.m);
    },
});
"#;

    /// No `reduce`: the result is the array of mapped values, in item order.
    const COLLECT: &str = r#"
let cfg = config(#{ model: "mpi", ranks: 2, n: 5 });
rule("all", #{
    output: "out.txt",
    items: range(0, cfg.n).collect(),
    model: cfg.model, ranks: cfg.ranks,
    map: |job, i| [i, random_matrix(2, 2, i), random_vector(3, i)],
    finish: |job, r| {
        let types = [];
        for x in r { types.push(type_of(x[1]) + "/" + type_of(x[2])); }
        write_text(job.output[0], `${r.len()}|${r}|${types}`);
    },
});
"#;

    fn run_model(wf: &str, config: &[&str]) -> (String, Option<Vec<u8>>) {
        let p = Project::new();
        p.file("wf.rhai", wf);
        let mut args = vec!["wf.rhai", "-j", "2"];
        for c in config {
            args.extend(["--config", c]);
        }
        p.run(&args).code(0);
        let npy = std::fs::read(p.path().join("out.npy")).ok();
        (p.read("out.txt"), npy)
    }

    #[test]
    fn results_are_bitwise_identical_to_the_thread_model() {
        if !mpirun_available() {
            return;
        }
        // (items, ranks): fewer, equal and more ranks than items, and no items at all.
        for (n, ranks) in [(7, 1), (7, 2), (7, 3), (2, 3), (0, 3), (1, 2)] {
            let n_arg = format!("n={n}");
            let r_arg = format!("ranks={ranks}");
            let thread = run_model(REDUCE, &["model=thread", &n_arg]);
            let mpi = run_model(REDUCE, &["model=mpi", &n_arg, &r_arg]);
            assert_eq!(thread, mpi, "n={n} ranks={ranks}");
            assert!(mpi.0.ends_with("|Matrix|Vector"), "{}", mpi.0);
        }
    }

    #[test]
    fn large_messages_sent_in_many_rounds_arrive_intact() {
        if !mpirun_available() {
            return;
        }
        let thread = run_model(REDUCE, &["model=thread", "n=9"]);
        let p = Project::new();
        p.file("wf.rhai", REDUCE);
        // 100 bytes per rank per collective call: the scatter and gather take many rounds.
        let mut cmd = p.cmd(&["wf.rhai", "--config", "n=9", "--config", "ranks=3"]);
        cmd.env("FLOWRUN_MPI_ROUND_BYTES", "100");
        let out = run_bounded(cmd);
        assert!(out.code == 0, "{}", out.stderr);
        assert_eq!(p.read("out.txt"), thread.0);
    }

    #[test]
    fn without_reduce_values_arrive_in_item_order_and_intact() {
        if !mpirun_available() {
            return;
        }
        for (n, ranks) in [(5, 1), (5, 2), (5, 3), (2, 4), (0, 2)] {
            let n_arg = format!("n={n}");
            let r_arg = format!("ranks={ranks}");
            let thread = run_model(COLLECT, &["model=thread", &n_arg]);
            let mpi = run_model(COLLECT, &["model=mpi", &n_arg, &r_arg]);
            assert_eq!(thread, mpi, "n={n} ranks={ranks}");
            assert!(mpi.0.starts_with(&format!("{n}|")), "{}", mpi.0);
            if n > 0 {
                assert!(mpi.0.contains("\"Matrix/Vector\""), "{}", mpi.0);
            }
        }
    }

    #[test]
    fn the_launcher_can_be_chosen_with_arguments() {
        if !mpirun_available() {
            return;
        }
        let p = Project::new();
        p.file("wf.rhai", REDUCE);
        p.run(&[
            "wf.rhai",
            "--mpi-launcher",
            "mpiexec",
            "--mpi-args=--bind-to none",
            "--config",
            "ranks=3",
        ])
        .code(0);
        let thread = run_model(REDUCE, &["model=thread"]);
        assert_eq!(p.read("out.txt"), thread.0);

        let p = Project::new();
        p.file("wf.rhai", REDUCE);
        p.run(&["wf.rhai", "--mpi-launcher", "/no/such/mpirun"])
            .code(1)
            .stderr_has("cannot start the MPI launcher `/no/such/mpirun`");
        p.run(&["wf.rhai", "--mpi-args", "'unclosed"])
            .code(2)
            .stderr_has("--mpi-args");
    }

    #[test]
    fn a_rhai_error_on_one_rank_fails_the_job_naming_the_rank() {
        if !mpirun_available() {
            return;
        }
        let p = Project::new();
        // 6 items on 3 ranks: rank 2 maps items 4 and 5.
        p.file(
            "wf.rhai",
            r#"
rule("all", #{
    output: "out.txt",
    items: range(0, 6).collect(),
    model: "mpi", ranks: 3,
    map: |job, i| { if i == 4 { throw "boom at item " + i; } i * 2 },
    reduce: |a, b| a + b,
    finish: |job, r| write_text(job.output[0], `${r}`),
});
"#,
        );
        let start = Instant::now();
        let run = p
            .run(&["wf.rhai"])
            .code(1)
            .stderr_has("MPI rank 2 of 3 failed")
            .stderr_has("boom at item 4")
            .stderr_has("wf.rhai:6:");
        assert!(start.elapsed() < Duration::from_secs(60), "{}", run.stderr);
        assert!(!p.exists("out.txt"));

        // An error in `items` (rank 0 makes them) and one on every rank.
        p.file(
            "wf.rhai",
            r#"
rule("all", #{
    output: "out.txt",
    items: |job| { throw "no items today"; },
    model: "mpi", ranks: 2,
    map: |job, i| i,
    finish: |job, r| write_text(job.output[0], `${r}`),
});
rule("every", #{
    output: "every.txt",
    items: range(0, 4).collect(),
    model: "mpi", ranks: 2,
    map: |job, i| i.no_such_method(),
    finish: |job, r| write_text(job.output[0], `${r}`),
});
"#,
        );
        p.run(&["wf.rhai"])
            .code(1)
            .stderr_has("MPI rank 0 of 2 failed: in `items`")
            .stderr_has("no items today");
        p.run(&["wf.rhai", "every"])
            .code(1)
            .stderr_has("MPI rank 0 of 2 failed: in `map` (item 0)")
            .stderr_has("MPI rank 1 of 2 failed: in `map` (item 2)")
            .stderr_has("no_such_method");
    }

    /// Processes whose command line mentions `dir` (the launcher and ranks of a test project).
    fn processes_mentioning(dir: &Path) -> Vec<String> {
        let needle = dir.to_string_lossy().into_owned();
        let mut out = Vec::new();
        for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let pid = e.file_name().to_string_lossy().into_owned();
            if !pid.chars().all(|c| c.is_ascii_digit()) {
                continue;
            }
            let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else {
                continue;
            };
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            let zombie = std::fs::read_to_string(e.path().join("stat")).is_ok_and(|s| {
                s.rsplit(')')
                    .next()
                    .is_some_and(|t| t.trim_start().starts_with('Z'))
            });
            if cmd.contains(&needle) && !zombie {
                out.push(format!("{pid}: {cmd}"));
            }
        }
        out
    }

    fn no_orphans(dir: &Path) {
        let start = Instant::now();
        loop {
            let left = processes_mentioning(dir);
            if left.is_empty() {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "processes left behind: {left:#?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    const SLOW: &str = r#"
rule("all", #{
    output: "out.txt",
    items: range(0, 6).collect(),
    model: "mpi", ranks: 3,
    map: |job, i| { sleep(5); i },
    finish: |job, r| write_text(job.output[0], `${r}`),
});
"#;

    fn pid_file(p: &Project, rank: u32) -> Option<PathBuf> {
        let dir = p.path().join(".flowrun/mpi");
        std::fs::read_dir(dir)
            .ok()?
            .flatten()
            .map(|e| e.path().join(format!("rank-{rank}.pid")))
            .find(|f| f.is_file())
    }

    /// Starts the slow workflow and waits until all three ranks run.
    fn start_slow(p: &Project) -> Background {
        p.file("wf.rhai", SLOW);
        let child = p.spawn(&["wf.rhai"]);
        let start = Instant::now();
        while (0..3).any(|r| pid_file(p, r).is_none()) {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "the ranks never started"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        child
    }

    #[test]
    fn a_killed_rank_fails_the_job_cleanly_without_orphans() {
        if !mpirun_available() {
            return;
        }
        let p = Project::new();
        let bg = start_slow(&p);
        let pid: i32 = std::fs::read_to_string(pid_file(&p, 1).unwrap())
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        kill(Pid::from_raw(pid), Signal::SIGKILL).expect("kill rank 1");
        let out = bg.finish(Duration::from_secs(60));
        let stderr = out.stderr;
        assert_eq!(out.code, 1, "{stderr}");
        assert!(stderr.contains("MPI rank 1 died"), "{stderr}");
        assert!(!p.exists("out.txt"));
        no_orphans(p.path());
    }

    #[test]
    fn ctrl_c_stops_the_launcher_and_every_rank() {
        if !mpirun_available() {
            return;
        }
        let p = Project::new();
        let bg = start_slow(&p);
        kill(Pid::from_raw(bg.pid()), Signal::SIGINT).expect("interrupt flowrun");
        let out = bg.finish(Duration::from_secs(60));
        assert_eq!(out.code, 130, "{}", out.stderr);
        no_orphans(p.path());
    }

    #[test]
    fn the_pi_example_agrees_across_models_and_ranks() {
        if !mpirun_available() {
            return;
        }
        let wf = Path::new(env!("CARGO_MANIFEST_DIR")).join("workflows/pi_mpi.rhai");
        let wf = wf.to_str().unwrap();
        let mut seen = Vec::new();
        for ranks in ["ranks=1", "ranks=3"] {
            let p = Project::new();
            p.run(&[
                wf,
                "--config",
                "samples=2000",
                "--config",
                "batches=7",
                "--config",
                ranks,
            ])
            .code(0);
            let text = p.read("results/pi.txt");
            assert!(text.starts_with("pi ≈ 3.1"), "{text}");
            seen.push(p.read("results/pi_mpi.txt"));
        }
        assert_eq!(seen[0], seen[1]);
    }
}

/// Without the feature, a map/reduce rule on MPI fails the job and says how to get MPI; shell
/// rules with `model: "mpi"` need only a launcher, so they are not affected.
#[cfg(not(feature = "mpi"))]
#[test]
fn without_the_feature_the_mpi_model_says_how_to_enable_it() {
    let p = Project::new();
    p.file(
        "wf.rhai",
        r#"
rule("all", #{
    output: "out.txt",
    items: [1, 2],
    model: "mpi",
    map: |job, i| i,
    finish: |job, r| write_text(job.output[0], `${r}`),
});
"#,
    );
    p.run(&["wf.rhai"])
        .code(1)
        .stderr_has("cargo build --release --features mpi")
        .stderr_has("OpenMPI");
}

#[cfg(feature = "mpi")]
#[test]
fn the_rank_entry_point_needs_a_hello_file() {
    let p = Project::new();
    let out = p.cmd(&["__mpi"]).output().expect("run flowrun");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("HELLO_FILE"));
}
