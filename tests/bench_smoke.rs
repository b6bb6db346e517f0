//! The benchmark harnesses (`bench/run.py`, `bench/interleave.py`) in their smoke versions, so
//! they cannot rot: tiny workflows, flowrun and Make only, a bounded time. Skipped (loudly)
//! without `python3` or `make`.

use std::ffi::OsStr;
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

/// Whether the smoke tests can run here (they say so when not).
fn can_run(test: &str) -> bool {
    for tool in ["python3", "make"] {
        if !have(tool) {
            eprintln!("SKIPPED {test}: `{tool}` is not installed");
            return false;
        }
    }
    true
}

/// Runs a harness script of `bench/` with `args`, within 60 s; returns its stdout.
fn run_script<I, S>(script: &str, args: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let root = env!("CARGO_MANIFEST_DIR");
    let started = Instant::now();
    let mut child = Command::new("python3")
        .arg(format!("{root}/bench/{script}"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
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
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        status.success(),
        "bench/{script} failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    stdout
}

#[test]
fn bench_runner_quick_mode_works() {
    if !can_run("bench_runner_quick_mode_works") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let out_file = work.path().join("table.md");
    let flowrun = env!("CARGO_BIN_EXE_flowrun");
    let bench = work.path().join("bench");
    run_script(
        "run.py",
        [
            OsStr::new("--quick"),
            OsStr::new("--only"),
            OsStr::new("flowrun,make"),
            OsStr::new("--strict"),
            OsStr::new("--cap"),
            OsStr::new("30"),
            OsStr::new("--flowrun"),
            OsStr::new(flowrun),
            OsStr::new("--workdir"),
            bench.as_os_str(),
            OsStr::new("--out"),
            out_file.as_os_str(),
        ],
    );
    let table = std::fs::read_to_string(&out_file).unwrap();
    assert!(
        table.contains("| scenario | phase | flowrun | make |"),
        "{table}"
    );
    assert!(table.contains("flowrun/make"), "{table}");
    for scenario in ["fan-out 20", "chain 10", "wildcards 5×3"] {
        for phase in [
            "dry run",
            "full run -j2",
            "no-op",
            "rerun, one input changed",
        ] {
            let row = table
                .lines()
                .find(|l| l.starts_with(&format!("| {scenario} (")) && l.contains(phase))
                .unwrap_or_else(|| panic!("no row for {scenario}, {phase}:\n{table}"));
            assert!(!row.contains('†'), "a run did not finish: {row}\n{table}");
        }
    }
}

#[test]
fn interleaved_runs_compare_flowrun_with_make() {
    if !can_run("interleaved_runs_compare_flowrun_with_make") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let flowrun = format!("flowrun={}", env!("CARGO_BIN_EXE_flowrun"));
    let stdout = run_script(
        "interleave.py",
        [
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
