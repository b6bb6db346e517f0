//! What a run reports besides its job lines: the live status line (`--progress`), the JSON
//! Lines event trace (`--trace`) and the HTML report (`--report`).

mod common;

use std::time::Duration;

use common::{wait_until, Background, Project};
use serde_json::Value;

/// Three jobs of one rule, one of which fails, and an aggregate that then cannot run.
const FAILING: &str = r#"
rule("all", #{ input: ["out/a.txt", "out/b.txt", "out/c.txt"] });
rule("make", #{
    output: "out/{s}.txt",
    shell: "if [ {wildcards.s} = b ]; then echo broken >&2; exit 3; fi; echo {wildcards.s} > {output}",
});
"#;

fn kind(e: &Value) -> &str {
    e["event"].as_str().unwrap_or_default()
}

/// The `job_end` event of `label`.
fn end_of<'a>(events: &'a [Value], label: &str) -> &'a Value {
    events
        .iter()
        .find(|e| kind(e) == "job_end" && e["label"] == label)
        .unwrap_or_else(|| panic!("no job_end for {label} in {events:#?}"))
}

#[test]
fn trace_of_a_keep_going_run_with_a_failure() {
    let p = Project::new();
    p.file("wf.rhai", FAILING);
    p.run(&["wf.rhai", "-k", "-j1", "--trace", "trace.jsonl"])
        .code(1);
    let ev = p.events("trace.jsonl");
    let kinds: Vec<&str> = ev.iter().map(kind).collect();
    assert_eq!(kinds.first(), Some(&"run_start"));
    assert_eq!(kinds.last(), Some(&"run_end"));
    let start = &ev[0];
    assert_eq!(start["trace_version"], 1);
    assert_eq!(start["flowrun"], env!("CARGO_PKG_VERSION"));
    assert_eq!(start["cores"], 1);
    assert_eq!(start["targets"], serde_json::json!(["all"]));
    assert!(start["workflow"].as_str().unwrap().ends_with("wf.rhai"));
    assert!(start["started_utc"].as_str().unwrap().ends_with('Z'));
    let planned: Vec<&str> = start["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["label"].as_str().unwrap())
        .collect();
    assert_eq!(planned, ["make[s=a]", "make[s=b]", "make[s=c]", "all"]);
    assert_eq!(
        start["jobs"][0]["reasons"][0],
        "output `out/a.txt` is missing"
    );
    // -j1: each job starts and ends before the next starts, in plan order.
    let jobs: Vec<(&str, &str)> = ev[1..ev.len() - 1]
        .iter()
        .map(|e| (kind(e), e["label"].as_str().unwrap()))
        .collect();
    assert_eq!(
        jobs,
        [
            ("job_start", "make[s=a]"),
            ("job_end", "make[s=a]"),
            ("job_start", "make[s=b]"),
            ("job_end", "make[s=b]"),
            ("job_end", "all"),
            ("job_start", "make[s=c]"),
            ("job_end", "make[s=c]"),
        ]
    );
    let started = &ev[1];
    assert_eq!(started["rule"], "make");
    assert_eq!(started["wildcards"], serde_json::json!({ "s": "a" }));
    assert_eq!(started["cores"], 1);
    assert_eq!(started["pass"], 1);
    let ok = end_of(&ev, "make[s=a]");
    assert_eq!(ok["status"], "ok");
    assert_eq!(ok["outputs"], serde_json::json!(["out/a.txt"]));
    assert!(ok["duration"].as_f64().unwrap() >= 0.0);
    let failed = end_of(&ev, "make[s=b]");
    assert_eq!(failed["status"], "failed");
    assert!(
        failed["message"]
            .as_str()
            .unwrap()
            .contains("exited with status 3"),
        "{failed}"
    );
    assert_eq!(end_of(&ev, "all")["status"], "blocked");
    let times: Vec<f64> = ev.iter().map(|e| e["t"].as_f64().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    let end = ev.last().unwrap();
    assert_eq!(end["exit_code"], 1);
    assert_eq!(
        (
            &end["ran"],
            &end["failed"],
            &end["blocked"],
            &end["skipped"]
        ),
        (&2.into(), &1.into(), &1.into(), &0.into())
    );
    assert_eq!(end["interrupted"], false);
}

#[test]
fn sigterm_leaves_a_trace_that_ends_with_the_interruption() {
    let p = Project::new();
    let bg = start_slow_job(&p, &["--trace", "t.jsonl"]);
    wait_until(Duration::from_secs(20), Duration::from_millis(20), || {
        if p.read("t.jsonl").contains("\"job_start\"") {
            Ok(())
        } else {
            Err("no job_start in the trace".to_string())
        }
    });
    // What a killed run leaves: every event so far, each on a whole line.
    let prefix = p.events("t.jsonl");
    assert_eq!(
        prefix.iter().map(kind).collect::<Vec<_>>(),
        ["run_start", "job_start"]
    );
    bg.signal(nix::sys::signal::Signal::SIGTERM);
    bg.finish(Duration::from_secs(20)).code(130);
    let ev = p.events("t.jsonl");
    let kinds: Vec<&str> = ev.iter().map(kind).collect();
    assert_eq!(
        kinds,
        ["run_start", "job_start", "note", "job_end", "run_end"]
    );
    assert_eq!(ev[2]["kind"], "stopping");
    assert_eq!(ev[3]["status"], "interrupted");
    assert_eq!(ev[4]["exit_code"], 130);
    assert_eq!(ev[4]["interrupted"], true);
}

#[test]
fn report_lists_every_job_escaped_with_a_timeline() {
    let p = Project::new();
    p.file(
        "wf.rhai",
        r#"
rule("all", #{ input: ["out/<b>&.txt", "x.txt"] });
rule("<script>alert(1)</script>", #{ output: "out/{n}.txt", shell: "echo > {output}" });
rule("fails", #{ output: "x.txt", shell: "echo '<oops>' >&2; exit 1" });
"#,
    );
    p.run(&["wf.rhai", "-k", "--report", "r.html"]).code(1);
    let html = p.read("r.html");
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(!html.contains("<script"), "unescaped rule name:\n{html}");
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;[n=&lt;b&gt;&amp;]"));
    assert!(html.contains("<td>fails</td>"));
    assert!(html.contains("<td>all</td>"));
    assert!(html.contains("output `out/&lt;b&gt;&amp;.txt` is missing"));
    assert!(html.contains("<svg class=\"timeline\""));
    let timeline = html.split("<svg class=\"timeline\"").nth(1).unwrap();
    let timeline = timeline.split("</svg>").next().unwrap();
    assert_eq!(
        timeline.matches("<rect").count(),
        2,
        "one bar per job that ran"
    );
    // Below it, the chart of what each rule cost.
    assert!(html.contains("<svg class=\"costs\""));
    assert!(html.contains("1 failed, 1 not run because a job they need failed"));
    // Self-contained: nothing fetched from anywhere.
    assert!(!html.contains("http://") || !html.contains("src="));
    assert!(!html.contains("https://"));
}

#[test]
fn progress_bar_into_a_pipe_draws_and_clears_the_status_line() {
    let p = Project::new();
    p.file(
        "wf.rhai",
        r#"
rule("all", #{ input: ["a.txt", "b.txt"] });
rule("make", #{ output: "{n}.txt", shell: "sleep 0.3; echo > {output}" });
"#,
    );
    let run = p
        .run(&["wf.rhai", "-j2", "--progress", "bar"])
        .code(0)
        .stderr_has("[0/3] running 2: make[n=a], make[n=b] · ")
        .stderr_has(" · ETA ?")
        .stderr_has("Finished [3/3] all in ");
    let clear = "\r\x1b[2K";
    let last_clear = run.stderr.rfind(clear).expect("the status line is cleared");
    let after = &run.stderr[last_clear + clear.len()..];
    assert!(
        after.starts_with("done: 3 ran") && !after.contains(" running "),
        "after the last clear: {after:?}"
    );
    // The job lines are the same as without the status line.
    let lines = p
        .run(&["wf.rhai", "-F", "-j2", "--progress", "lines"])
        .code(0);
    assert!(!lines.stderr.contains(" running ") && !lines.stderr.contains('\x1b'));
    assert!(lines.stderr.contains("Finished [3/3] all in "));
}

#[test]
fn bad_progress_value_and_unwritable_paths_are_command_line_errors() {
    let p = Project::new();
    p.file(
        "wf.rhai",
        r#"rule("a", #{ output: "a.txt", shell: "echo > {output}" });"#,
    );
    p.run(&["wf.rhai", "--progress", "sideways"])
        .code(2)
        .stderr_has("invalid value 'sideways' for '--progress <WHEN>'")
        .stderr_has("[possible values: auto, bar, lines]");
    p.run(&["wf.rhai", "--trace", "no/such/dir/t.jsonl"])
        .workflow_error()
        .stderr_has("cannot write the trace `")
        .stderr_has("no/such/dir/t.jsonl`: No such file or directory");
    p.run(&["wf.rhai", "--report", "no/such/dir/r.html"])
        .workflow_error()
        .stderr_has("cannot write the report `")
        .stderr_has("no/such/dir/r.html`: No such file or directory");
    assert!(!p.exists("a.txt"), "nothing ran");
}

#[test]
fn watch_mode_writes_one_trace_with_a_pass_number_on_every_event() {
    let p = Project::new();
    p.file("data.txt", "1\n");
    p.file(
        "wf.rhai",
        r#"rule("copy", #{ input: "data.txt", output: "out.txt", shell: "cp {input} {output}" });"#,
    );
    let bg = p.spawn(&[
        "wf.rhai",
        "--watch",
        "--debounce",
        "50",
        "--trace",
        "t.jsonl",
    ]);
    let run_ends = || {
        std::fs::read_to_string(p.path().join("t.jsonl"))
            .unwrap_or_default()
            .matches("\"event\":\"run_end\"")
            .count()
    };
    wait_until(Duration::from_secs(20), Duration::from_millis(20), || {
        (run_ends() == 1)
            .then_some(())
            .ok_or("the first pass did not end".to_string())
    });
    // The watcher may still be starting: edit until a second pass shows up.
    // Each edit gets its own pass (passes take milliseconds, edits come 200 ms apart).
    wait_until(Duration::from_secs(20), Duration::from_millis(200), || {
        if run_ends() == 2 {
            return Ok(());
        }
        p.file("data.txt", &format!("{:?}\n", std::time::Instant::now()));
        Err("no second pass".to_string())
    });
    bg.signal(nix::sys::signal::Signal::SIGINT);
    // 0 when Ctrl-C finds watch mode idle, 130 if a late edit had started a third pass.
    let code = bg.finish(Duration::from_secs(20)).code;
    assert!(code == 0 || code == 130, "exit code {code}");
    let ev = p.events("t.jsonl");
    let passes: Vec<(&str, u64)> = ev
        .iter()
        .map(|e| (kind(e), e["pass"].as_u64().unwrap()))
        .take(8)
        .collect();
    assert_eq!(
        passes,
        [
            ("run_start", 1),
            ("job_start", 1),
            ("job_end", 1),
            ("run_end", 1),
            ("run_start", 2),
            ("job_start", 2),
            ("job_end", 2),
            ("run_end", 2),
        ]
    );
    assert!(ev
        .iter()
        .filter(|e| kind(e) == "run_start")
        .all(|e| e["trace_version"] == 1));
}

#[test]
fn ctrl_c_clears_the_status_line_before_the_interrupt_messages() {
    let p = Project::new();
    let bg = start_slow_job(&p, &["--progress", "bar"]);
    // Long enough for a redraw (every 100 ms) to show the running job.
    std::thread::sleep(Duration::from_millis(300));
    bg.signal(nix::sys::signal::Signal::SIGINT);
    let run = bg
        .finish(Duration::from_secs(20))
        .code(130)
        .stderr_has("[0/1] running 1: slow · ")
        .stderr_has(" Stopping 1 running job(s)\n");
    let clear = "\r\x1b[2K";
    let last_clear = run.stderr.rfind(clear).expect("the status line is cleared");
    let after = &run.stderr[last_clear + clear.len()..];
    assert!(
        after.starts_with("interrupted: 0 ran")
            && after.ends_with("partial outputs were removed\n"),
        "after the last clear: {after:?}"
    );
}

#[test]
fn a_run_refused_by_the_lock_leaves_the_running_ones_trace_alone() {
    let p = Project::new();
    let bg = start_slow_job(&p, &["--trace", "t.jsonl"]);
    p.run(&["wf.rhai", "--trace", "t.jsonl", "--report", "r.html"])
        .code(3);
    assert!(!p.exists("r.html"));
    let ev = p.events("t.jsonl");
    assert_eq!(kind(&ev[0]), "run_start", "{ev:?}");
    bg.signal(nix::sys::signal::Signal::SIGTERM);
    bg.finish(Duration::from_secs(20)).code(130);
}

/// Starts a run of one 30-second shell job with `args` (and `--grace 1`), returning once its
/// command is running, with the command's process group registered for cleanup.
fn start_slow_job(p: &Project, args: &[&str]) -> Background {
    p.file(
        "wf.rhai",
        r#"rule("slow", #{ output: "slow.txt", shell: "echo $$ > pid; sleep 30; touch {output}" });"#,
    );
    let mut all = vec!["wf.rhai", "--grace", "1"];
    all.extend_from_slice(args);
    let mut bg = p.spawn(&all);
    p.wait_for("pid", Duration::from_secs(20));
    if let Ok(pid) = p.read("pid").trim().parse() {
        bg.groups.push(pid);
    }
    bg
}

#[test]
fn a_sub_second_run_has_a_readable_time_axis() {
    let p = Project::new();
    p.file(
        "wf.rhai",
        r#"rule("a", #{ output: "a.txt", shell: "sleep 0.2; touch a.txt" });"#,
    );
    p.run(&["wf.rhai", "--report", "r.html"]).code(0);
    let html = p.read("r.html");
    let ticks: Vec<&str> = html
        .split("class=\"tick\">")
        .skip(1)
        .filter_map(|t| t.split("</text>").next())
        .collect();
    assert!(ticks.len() >= 3, "{ticks:?}");
    let mut distinct = ticks.clone();
    distinct.dedup();
    assert_eq!(distinct, ticks, "every tick reads apart");
    assert_eq!(ticks[0], "0.00s", "{ticks:?}");
}

/// Results of every kind, marked with `report()`: tables of a wildcard rule with a caption
/// file, an image too large to embed, an HTML page, a directory, a binary file, and the output
/// of a job that fails.
const RESULTS: &str = r#"
rule("all", #{ input: ["tables/a.csv", "tables/b.csv", "big.png", "page.html", "tree", "bin.dat", "broken.txt"] });
rule("table", #{
    output: report("tables/{s}.csv", #{ caption: "captions/table.txt", category: "Tables" }),
    shell: "seq 0 120 | awk '{{ print $1 \",\" $1 * 2 }}' > {output}",
});
rule("big", #{ output: report("big.png", "Too <big> to embed."), shell: "head -c 4194305 /dev/zero > {output}" });
rule("page", #{ output: report("page.html"), shell: "echo '<script>alert(1)</script>' > {output}" });
rule("tree", #{ output: directory(report("tree")), shell: "mkdir -p {output}; echo x > {output}/x" });
rule("bin", #{ output: report("bin.dat"), shell: "printf 'a\\000b' > {output}" });
rule("broken", #{ output: report("broken.txt"), shell: "exit 1" });
"#;

/// The figure of `path` in a report.
fn figure<'a>(html: &'a str, path: &str) -> &'a str {
    let start = html
        .find(&format!("\">{path}</a>"))
        .unwrap_or_else(|| panic!("no result {path} in\n{html}"));
    let end = html[start..].find("</figure>").unwrap() + start;
    &html[start..end]
}

#[test]
fn report_shows_the_results_of_every_job_up_to_date_ones_too() {
    let p = Project::new();
    p.file("wf.rhai", RESULTS)
        .file("captions/table.txt", "Table of <{s}>.\n")
        .file("out/.keep", "");
    p.run(&["wf.rhai", "-k", "--report", "out/r.html"]).code(1);
    let html = p.read("out/r.html");
    // Grouped by category (else the rule), in the graph's order; one entry per job.
    let headings: Vec<&str> = html
        .split("<h3>")
        .skip(1)
        .filter_map(|h| h.split("</h3>").next())
        .collect();
    assert_eq!(headings, ["Tables", "big", "page", "tree", "bin", "broken"]);
    let a = figure(&html, "tables/a.csv");
    // Linked relative to the report, captions from the file with the wildcards filled in.
    assert!(html.contains("<a href=\"../tables/a.csv\">tables/a.csv</a>"));
    assert!(a.contains("table[s=a] · made in this run"), "{a}");
    assert!(
        a.contains("<p class=\"caption\">Table of &lt;a&gt;.</p>"),
        "{a}"
    );
    assert!(a.contains("<tr><th>0</th><th>0</th></tr>"), "{a}");
    assert!(a.contains("<tr><td>50</td><td>100</td></tr>"), "{a}");
    assert!(!a.contains("<td>51</td>"), "{a}");
    assert!(a.contains("first 50 of 120 rows"), "{a}");
    assert!(figure(&html, "tables/b.csv").contains("Table of &lt;b&gt;."));
    let big = figure(&html, "big.png");
    assert!(big.contains("4.00 MiB") && big.contains("larger than 4.00 MiB and not embedded"));
    assert!(
        big.contains("Too &lt;big&gt; to embed.") && !big.contains("<img"),
        "{big}"
    );
    let page = figure(&html, "page.html");
    assert!(
        !page.contains("alert") && !page.contains("<pre"),
        "linked only: {page}"
    );
    assert!(html.contains("<a href=\"../tree/\">tree</a>"));
    assert!(figure(&html, "tree").contains("a directory"));
    assert!(figure(&html, "bin.dat").contains("not text; the link opens it"));
    assert!(figure(&html, "broken.txt").contains("broken · failed · not there"));
    // The rule graph: one box per rule with its jobs, and an edge per rule feeding another.
    let graph = html.split("<svg class=\"rulegraph\"").nth(1).unwrap();
    let graph = graph.split("</svg>").next().unwrap();
    assert!(graph.contains(">2 jobs · 2 ran</text>"), "{graph}");
    assert!(graph.contains(">1 job · 1 failed</text>"), "{graph}");
    assert!(graph.contains(">1 job · 1 blocked</text>"), "{graph}");
    assert_eq!(graph.matches("<rect").count(), 7);
    assert_eq!(graph.matches("class=\"edge\"").count(), 6);

    // Nothing to redo but the failing job: the other results are shown as up to date.
    p.run(&["wf.rhai", "-k", "--report", "out/r.html"]).code(1);
    let html = p.read("out/r.html");
    assert!(figure(&html, "tables/a.csv").contains("table[s=a] · up to date"));
    assert!(figure(&html, "tables/a.csv").contains("first 50 of 120 rows"));
    assert!(html.contains(">2 jobs · up to date</text>"));
}

#[test]
fn report_marks_are_checked() {
    let cases = [
        (
            r#"rule("a", #{ input: report("x.txt"), output: "y.txt", shell: "cp {input} {output}" });"#,
            "input `x.txt`: `report()` marks outputs",
        ),
        (
            r#"rule("a", #{ output: "y.txt", benchmark: report("b.tsv"), shell: "touch {output}" });"#,
            "benchmark `b.tsv`: `report()` marks outputs",
        ),
        (
            r#"rule("a", #{ output: report("y.txt", 3), shell: "touch {output}" });"#,
            "report(): the second argument must be a caption or a map such as `#{ caption: \"...\", category: \"...\" }`, not an integer",
        ),
        (
            r#"rule("a", #{ output: report("y.txt", #{ title: "t" }), shell: "touch {output}" });"#,
            "report(): no key `title`; the keys are caption, category",
        ),
        (
            r#"rule("a", #{ output: report("y.txt", #{ category: 1 }), shell: "touch {output}" });"#,
            "report(): `category` must be a string, not an integer",
        ),
        (
            r#"rule("a", #{ output: report(1), shell: "touch {output}" });"#,
            "report() takes a path string or an array of them",
        ),
    ];
    for (wf, message) in cases {
        let p = Project::new();
        p.file("wf.rhai", wf);
        p.run(&["wf.rhai", "-n"])
            .workflow_error()
            .stderr_has(message);
    }
}
