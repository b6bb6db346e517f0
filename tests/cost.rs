//! What each job cost (`src/usage.rs`): CPU time, peak RSS and bytes, measured when flowrun
//! reaps a job's processes, shown in the trace's `job_end` events, `-v`, the HTML report and a
//! rule's `benchmark` file.

mod common;

use common::Project;
use serde_json::Value;

const MIB: f64 = 1024.0 * 1024.0;

/// A job that allocates and touches 200 MiB, then writes the kernel's own high-water mark of
/// its resident memory (`VmHWM`, in KiB) as the output: the truth the report is checked against.
const ALLOCATES_200_MIB: &str = r#"
rule("big", #{
    output: "out/big.txt",
    benchmark: "bench/{x}.tsv",
    shell: "python3 -c 'import sys, re; b = bytearray(200 * 1024 * 1024); b[::4096] = b\"x\" * len(b[::4096]); hwm = re.search(r\"VmHWM:\\s+(\\d+)\", open(\"/proc/self/status\").read()).group(1); open(\"{output}\", \"w\").write(hwm)'",
});
"#;

/// The `usage` of `label`'s `job_end` event.
fn usage_of(p: &Project, trace: &str, label: &str) -> Value {
    p.events(trace)
        .into_iter()
        .find(|e| e["event"] == "job_end" && e["label"] == label)
        .unwrap_or_else(|| panic!("no job_end for {label}"))["usage"]
        .clone()
}

/// The benchmark file's columns, by name.
fn benchmark(p: &Project, rel: &str) -> Vec<(String, String)> {
    let text = p.read(rel);
    let mut lines = text.lines();
    let header = lines.next().unwrap().split('\t');
    let values = lines.next().unwrap().split('\t');
    assert_eq!(lines.next(), None, "{text}");
    header
        .zip(values)
        .map(|(h, v)| (h.to_string(), v.to_string()))
        .collect()
}

#[test]
fn a_job_allocating_200_mib_reports_its_peak_rss_within_5_percent() {
    let p = Project::new();
    p.file("wf.rhai", &ALLOCATES_200_MIB.replace("{x}", "big"));
    p.run(&["wf.rhai", "-v", "--trace", "t.jsonl"])
        .code(0)
        .stderr_has("peak RSS 2");
    let truth = p.read("out/big.txt").trim().parse::<f64>().unwrap() * 1024.0;
    assert!(truth >= 200.0 * MIB, "the job held {truth} bytes");
    let usage = usage_of(&p, "t.jsonl", "big");
    let reported = usage["max_rss"].as_f64().unwrap();
    let error = (reported - truth).abs() / truth;
    assert!(error <= 0.05, "reported {reported}, truth {truth}");
    assert!(usage["cpu_user"].as_f64().unwrap() + usage["cpu_system"].as_f64().unwrap() > 0.0);
    assert_eq!(usage["processes"], 1);
    // Python read its own modules; the output was written.
    assert!(usage["read"].as_u64().unwrap() > 0, "{usage}");
    assert!(usage["written"].as_u64().unwrap() > 0, "{usage}");

    let cols = benchmark(&p, "bench/big.tsv");
    let names: Vec<&str> = cols.iter().map(|(h, _)| h.as_str()).collect();
    assert_eq!(
        names,
        [
            "s",
            "h:m:s",
            "max_rss",
            "max_vms",
            "max_uss",
            "max_pss",
            "io_in",
            "io_out",
            "mean_load",
            "cpu_time"
        ]
    );
    let col = |name: &str| cols.iter().find(|(h, _)| h == name).unwrap().1.clone();
    let rss_mib: f64 = col("max_rss").parse().unwrap();
    assert!(
        (rss_mib * MIB - truth).abs() / truth <= 0.05,
        "{rss_mib} MiB"
    );
    let secs: f64 = col("s").parse().unwrap();
    assert!(secs > 0.0);
    assert_eq!(col("h:m:s"), format!("0:00:{:02}", secs.floor() as u64));
    assert_eq!(col("max_vms"), "NA");
    assert!(col("cpu_time").parse::<f64>().is_ok());
    assert!(col("io_out").parse::<f64>().is_ok());
}

#[test]
fn cpu_time_counts_the_commands_a_shell_waits_for() {
    let p = Project::new();
    // Two spinning commands one after the other in one shell: both count.
    p.file(
        "wf.rhai",
        r#"rule("spin", #{ output: "x.txt",
    shell: "python3 -c 'import time; t = time.process_time(); exec(\"while time.process_time() - t < 0.3: pass\")'; python3 -c 'import time; t = time.process_time(); exec(\"while time.process_time() - t < 0.3: pass\")'; echo > {output}" });
"#,
    );
    p.run(&["wf.rhai", "--trace", "t.jsonl"]).code(0);
    let u = usage_of(&p, "t.jsonl", "spin");
    let cpu = u["cpu_user"].as_f64().unwrap() + u["cpu_system"].as_f64().unwrap();
    assert!(cpu >= 0.6, "{u}");
}

#[test]
fn worker_processes_add_up_and_work_inside_flowrun_has_no_peak_rss() {
    let p = Project::new();
    p.file(
        "wf.rhai",
        r#"
rule("all", #{ input: ["p.txt", "t.txt", "r.txt"] });
let spin = |job, i| { let n = 0; for k in 0..300000 { n += 1; } n };
rule("procs", #{ output: "p.txt", model: "process", procs: 2, items: range(0, 4).collect(),
    map: spin, reduce: |a, b| a + b, finish: |job, r| write_text(job.output[0], `${r}`) });
rule("threads", #{ output: "t.txt", threads: 2, items: range(0, 4).collect(),
    map: spin, reduce: |a, b| a + b, finish: |job, r| write_text(job.output[0], `${r}`) });
rule("closure", #{ output: "r.txt",
    run: |job| { let n = 0; for k in 0..300000 { n += 1; } write_text(job.output[0], `${n}`); } });
"#,
    );
    p.run(&["wf.rhai", "-j4", "--trace", "t.jsonl"]).code(0);
    let procs = usage_of(&p, "t.jsonl", "procs");
    assert_eq!(procs["processes"], 2, "{procs}");
    // Two flowrun workers, a few MiB each at least; started by `fork`, they stay under flowrun's
    // own peak, so the figure is a bound.
    assert_eq!(procs["max_rss"], Value::Null, "{procs}");
    assert!(
        procs["rss_at_most"].as_f64().unwrap() > 2.0 * MIB,
        "{procs}"
    );
    for label in ["procs", "threads", "closure"] {
        let u = usage_of(&p, "t.jsonl", label);
        // 300k (or 4 x 300k) interpreted loop turns take well over 10 ms of CPU in a debug build.
        assert!(u["cpu_user"].as_f64().unwrap() > 0.01, "{label}: {u}");
    }
    for label in ["threads", "closure"] {
        let u = usage_of(&p, "t.jsonl", label);
        assert_eq!(u["max_rss"], Value::Null, "{label}: {u}");
        assert_eq!(u["processes"], 0, "{label}: {u}");
        assert!(u["written"].as_u64().unwrap() > 0, "{label}: {u}");
    }
    // The aggregate did no work and reports no cost.
    assert_eq!(usage_of(&p, "t.jsonl", "all"), Value::Null);
}

#[test]
fn a_small_command_under_flowrun_s_own_peak_gets_a_bound_not_a_figure() {
    let p = Project::new();
    p.file(
        "wf.rhai",
        r#"rule("small", #{ output: "x.txt", benchmark: "b.tsv", shell: "touch x.txt" });"#,
    );
    p.run(&["wf.rhai", "-v", "--trace", "t.jsonl"])
        .code(0)
        .stderr_has(", peak RSS at most ");
    let u = usage_of(&p, "t.jsonl", "small");
    assert_eq!(u["max_rss"], Value::Null, "{u}");
    // The bound is flowrun's own peak: more than `touch` needs, less than a GiB.
    let bound = u["rss_at_most"].as_f64().unwrap();
    assert!(bound > MIB && bound < 1024.0 * MIB, "{u}");
    let cols = benchmark(&p, "b.tsv");
    assert_eq!(cols[2], ("max_rss".to_string(), "NA".to_string()));
}

#[test]
fn the_report_shows_what_each_rule_cost() {
    let p = Project::new();
    p.file("wf.rhai", &ALLOCATES_200_MIB.replace("{x}", "big"));
    p.run(&["wf.rhai", "--report", "r.html"]).code(0);
    let html = p.read("r.html");
    assert!(html.contains("<h2>Cost per rule</h2>"), "{html}");
    assert!(html.contains("peak RSS (largest job)"));
    let row = html
        .lines()
        .find(|l| l.starts_with("<tr><td>big</td>"))
        .unwrap();
    assert!(row.contains(" MiB</td>"), "{row}");
    assert!(html.contains("<title>big: 2"), "a peak-memory bar for big");
}

#[test]
fn benchmark_files_of_failed_jobs_are_not_written_and_stale_ones_go() {
    let p = Project::new();
    p.file(
        "wf.rhai",
        r#"rule("b", #{ output: "x.txt", benchmark: "bench/b.tsv",
    shell: "test -e go && echo > {output}" });
"#,
    );
    p.file("go", "");
    p.run(&["wf.rhai"]).code(0);
    assert!(p.exists("bench/b.tsv"));
    p.remove("x.txt").remove("go");
    p.run(&["wf.rhai"]).code(1);
    assert!(!p.exists("bench/b.tsv"), "a failed job leaves no benchmark");
}

#[test]
fn bad_benchmark_keys_are_errors() {
    let p = Project::new();
    p.file(
        "wf.rhai",
        r#"rule("b", #{ output: "x.txt", benchmark: ["a.tsv", "b.tsv"], shell: "echo > {output}" });"#,
    );
    p.run(&["wf.rhai"])
        .workflow_error()
        .stderr_has("rule `b`: `benchmark` takes one file, where the job's resource figures go");
    p.file(
        "wf.rhai",
        r#"rule("b", #{ output: "{s}.txt", benchmark: "bench/{t}.tsv", shell: "echo > {output}" });"#,
    );
    p.run(&["wf.rhai", "a.txt"]).workflow_error().stderr_has(
        "benchmark `bench/{t}.tsv` uses wildcard `{t}`, which no output of the rule defines",
    );
    p.file(
        "wf.rhai",
        r#"rule("b", #{ output: "x.txt", benchmark: "/tmp/b.tsv", shell: "echo > {output}" });"#,
    );
    p.run(&["wf.rhai"])
        .workflow_error()
        .stderr_has("benchmark `/tmp/b.tsv` is an absolute path; flowrun writes only inside the working directory");
}

#[test]
fn mpi_ranks_add_up_their_cpu_time() {
    if std::process::Command::new("mpirun")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!(
            "\n!!! SKIPPING: `mpirun` is not installed; `bash scripts/setup.sh` installs it.\n"
        );
        return;
    }
    let p = Project::new();
    p.file(
        "wf.rhai",
        r#"rule("ranks", #{ output: "x.txt", model: "mpi", ranks: 2,
    shell: "python3 -c 'import time; t = time.process_time(); exec(\"while time.process_time() - t < 0.4: pass\")' && touch {output}" });
"#,
    );
    p.run(&["wf.rhai", "-j2", "--trace", "t.jsonl"]).code(0);
    let u = usage_of(&p, "t.jsonl", "ranks");
    let cpu = u["cpu_user"].as_f64().unwrap() + u["cpu_system"].as_f64().unwrap();
    assert!(cpu >= 0.8, "both ranks' CPU: {u}");
}
