//! The benchmark harnesses in their smoke versions, so they cannot rot: `bench/run.py` with tiny
//! workflows, flowrun and Make only, every phase, and Snakemake's tree prepared in `--batch`
//! slices (when target/pyenv has Snakemake); `bench/interleave.py` on a tiny fan-out;
//! `bench/noop_interleave.py` on a tiny built tree;
//! `bench/data_steps.py --only async` with a few requests against its own server;
//! `bench/store_cache.py --quick` (cache restores, a migrated store). Bounded in
//! time, never timed. Skipped (loudly) without `python3` or `make`.

use std::ffi::OsStr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn have(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn bench_runner_quick_mode_works() {
    let Some(table) = run_bench(
        "bench_runner_quick_mode_works",
        &["python3", "make"],
        "run.py",
        &[
            "--quick",
            "--only",
            "flowrun,make",
            "--strict",
            "--cap",
            "30",
        ],
    ) else {
        return;
    };
    assert!(
        table.contains("| scenario | phase | flowrun | make |"),
        "{table}"
    );
    assert!(table.contains("flowrun/make"), "{table}");
    assert_rows_finished(
        &table,
        &["fan-out 20", "chain 10", "wildcards 5×3"],
        &[
            "dry run",
            "full run -j2",
            "no-op",
            "rerun, one input changed",
        ],
    );
}

#[test]
fn bench_runner_lets_snakemake_build_its_tree_in_batches() {
    let test = "bench_runner_lets_snakemake_build_its_tree_in_batches";
    // The venv scripts/setup-tests.sh makes, where bench/run.py looks by default; never installed
    // from here.
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    let venv = target.join("pyenv");
    if !venv.join("bin/snakemake").exists() {
        eprintln!("SKIPPED {test}: no Snakemake in {}", venv.display());
        return;
    }
    // Above 5 jobs Snakemake's tree is prepared, not built by a timed full run: the fan-out in
    // slices of about 11 jobs (two: one plain, then the last, which also runs `agg`), the chain
    // (nothing to slice) by Make.
    let Some(table) = run_bench(
        test,
        &["python3", "make"],
        "run.py",
        &[
            "--quick",
            "--only",
            "snakemake",
            "--scenarios",
            "fan-out 20,chain 10",
            "--phases",
            "noop,touch",
            "--reps",
            "1",
            "--snakemake-max-full-jobs",
            "5",
            "--snakemake-batch-jobs",
            "11",
            "--venv",
            venv.to_str().unwrap(),
            "--strict",
            "--snakemake-cap",
            "30",
            "--prep-cap",
            "40",
        ],
    ) else {
        return;
    };
    assert!(
        table.contains(
            "fan-out 20, no-op, snakemake: tree built untimed by Snakemake itself in 2 batches \
             (`--batch agg=i/2`"
        ),
        "{table}"
    );
    assert!(
        table.contains("with metadata records for 21 of 21 outputs"),
        "{table}"
    );
    assert!(
        table.contains("chain 10, no-op, snakemake: tree built untimed by Make"),
        "{table}"
    );
    assert_rows_finished(
        &table,
        &["fan-out 20", "chain 10"],
        &["no-op", "rerun, one input changed"],
    );
}

#[test]
fn data_steps_async_smoke_works() {
    let Some(table) = run_bench(
        "data_steps_async_smoke_works",
        &["python3"],
        "data_steps.py",
        &["--only", "async", "--n", "30", "--reps", "1"],
    ) else {
        return;
    };
    for variant in [
        "| flowrun async, concurrency 100 |",
        "| Python asyncio, new connection per request, semaphore 100 |",
        "| Python asyncio, 100 keep-alive connections (floor) |",
        "| serial (urllib, one at a time) |",
    ] {
        assert!(table.contains(variant), "no row {variant}:\n{table}");
    }
}

/// Asserts that `table` has a row for every scenario and phase, and that each run finished
/// (no `†`).
fn assert_rows_finished(table: &str, scenarios: &[&str], phases: &[&str]) {
    for scenario in scenarios {
        for phase in phases {
            let row = table
                .lines()
                .find(|l| l.starts_with(&format!("| {scenario} (")) && l.contains(phase))
                .unwrap_or_else(|| panic!("no row for {scenario}, {phase}:\n{table}"));
            assert!(!row.contains('†'), "a run did not finish: {row}\n{table}");
        }
    }
}

/// Runs `bench/<script>` with `args` on the debug flowrun in a temporary directory and returns
/// the table it wrote; fails the test if it fails or takes more than a minute. Without one of
/// `tools`, says that `test` was skipped and returns `None`.
fn run_bench(test: &str, tools: &[&str], script: &str, args: &[&str]) -> Option<String> {
    if let Some(tool) = tools.iter().find(|t| !have(t)) {
        eprintln!("SKIPPED {test}: `{tool}` is not installed");
        return None;
    }
    let work = tempfile::tempdir().unwrap();
    let out_file = work.path().join("table.md");
    let bench = work.path().join("bench");
    let mut all: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
    all.extend([
        OsStr::new("--flowrun"),
        OsStr::new(env!("CARGO_BIN_EXE_flowrun")),
        OsStr::new("--workdir"),
        bench.as_os_str(),
        OsStr::new("--out"),
        out_file.as_os_str(),
    ]);
    run_script(script, &all);
    Some(std::fs::read_to_string(&out_file).unwrap())
}

#[test]
fn store_and_cache_benchmark_quick_mode_works() {
    let Some(table) = run_bench(
        "store_and_cache_benchmark_quick_mode_works",
        &["python3"],
        "store_cache.py",
        &["--quick", "--cap", "60"],
    ) else {
        return;
    };
    for row in [
        "| 20 trivial jobs, fresh clone, restored from the cache |",
        "| no-op on a 50-record store of format 1 (migrated) |",
    ] {
        assert!(table.contains(row), "{table}");
    }
}

#[test]
fn interleaved_runs_compare_flowrun_with_make() {
    let test = "interleaved_runs_compare_flowrun_with_make";
    if let Some(tool) = ["python3", "make"].iter().find(|t| !have(t)) {
        eprintln!("SKIPPED {test}: `{tool}` is not installed");
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let flowrun = format!("flowrun={}", env!("CARGO_BIN_EXE_flowrun"));
    let stdout = run_script(
        "interleave.py",
        &[
            OsStr::new("--rounds"),
            OsStr::new("2"),
            OsStr::new("--scenario"),
            OsStr::new("fan-out 20"),
            OsStr::new("--workdir"),
            work.path().as_os_str(),
            OsStr::new(&flowrun),
            OsStr::new("make=make"),
        ],
    );
    assert!(stdout.contains("2 interleaved rounds"), "{stdout}");
    assert!(stdout.contains("flowrun  / make: wall"), "{stdout}");
}

#[test]
fn interleaved_noops_time_a_built_tree() {
    if !have("python3") {
        eprintln!("SKIPPED interleaved_noops_time_a_built_tree: `python3` is not installed");
        return;
    }
    let tree = tempfile::tempdir().unwrap();
    std::fs::create_dir(tree.path().join("src")).unwrap();
    for i in 0..5 {
        std::fs::write(tree.path().join(format!("src/{i}.txt")), format!("{i}\n")).unwrap();
    }
    std::fs::write(
        tree.path().join("wf.rhai"),
        r#"rule("all", #{ input: expand("out/{i}.txt", #{ i: (0..5).collect() }) });
rule("copy", #{ input: "src/{i}.txt", output: "out/{i}.txt", shell: "cp {input} {output}" });
"#,
    )
    .unwrap();
    let flowrun = env!("CARGO_BIN_EXE_flowrun");
    let built = Command::new(flowrun)
        .args(["-q", "wf.rhai"])
        .current_dir(tree.path())
        .status()
        .unwrap();
    assert!(built.success());
    let variant = format!(
        "flowrun={}:{flowrun} -q wf.rhai -j 2",
        tree.path().display()
    );
    let stdout = run_script(
        "noop_interleave.py",
        &[
            OsStr::new("--rounds"),
            OsStr::new("2"),
            OsStr::new("--reps"),
            OsStr::new("flowrun=2"),
            OsStr::new(&variant),
        ],
    );
    assert!(stdout.contains("2 rounds"), "{stdout}");
    assert!(stdout.contains("| flowrun | 4 |"), "{stdout}");
}

/// Runs `bench/<script>` with `args`, within a minute; returns its stdout. Output goes to files,
/// not pipes, so a process the script leaves behind cannot keep the test waiting.
fn run_script(script: &str, args: &[&OsStr]) -> String {
    let root = env!("CARGO_MANIFEST_DIR");
    let logs = tempfile::tempdir().unwrap();
    let (out_path, err_path) = (logs.path().join("stdout"), logs.path().join("stderr"));
    let started = Instant::now();
    let mut child = Command::new("python3")
        .arg(format!("{root}/bench/{script}"))
        .args(args)
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    let limit = Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("bench/{script} took more than {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stdout = std::fs::read_to_string(&out_path).unwrap();
    let stderr = std::fs::read_to_string(&err_path).unwrap();
    assert!(
        status.success(),
        "bench/{script} failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    stdout
}
