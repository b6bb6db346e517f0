//! The benchmark harness (`bench/run.py`) in its smoke version, so it cannot rot: tiny
//! workflows, flowrun and Make only, every phase, a bounded time. Skipped (loudly) without
//! `python3` or `make`.

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
    for tool in ["python3", "make"] {
        if !have(tool) {
            eprintln!("SKIPPED bench_runner_quick_mode_works: `{tool}` is not installed");
            return;
        }
    }
    let root = env!("CARGO_MANIFEST_DIR");
    let work = tempfile::tempdir().unwrap();
    let out_file = work.path().join("table.md");
    let started = Instant::now();
    let mut child = Command::new("python3")
        .arg(format!("{root}/bench/run.py"))
        .args([
            "--quick",
            "--only",
            "flowrun,make",
            "--strict",
            "--cap",
            "30",
        ])
        .arg("--flowrun")
        .arg(env!("CARGO_BIN_EXE_flowrun"))
        .arg("--workdir")
        .arg(work.path().join("bench"))
        .arg("--out")
        .arg(&out_file)
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
            panic!("bench/run.py --quick took more than {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        status.success(),
        "bench/run.py failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
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
