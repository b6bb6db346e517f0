//! Watch mode: the real binary in `--watch` in a temp dir, edited while it runs. Every wait is
//! bounded, and the process is killed when a test ends, failed or not.

mod common;
use common::Project;

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A running `flowrun --watch`, its stderr collected line by line.
struct Watching {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Watching {
    /// Starts `flowrun --watch --debounce 50 ARGS`.
    fn spawn(p: &Project, args: &[&str]) -> Self {
        Self::spawn_with(p, args, &[])
    }

    /// Starts `flowrun --watch --debounce 50 ARGS` with the variables `env` set.
    fn spawn_with(p: &Project, args: &[&str], env: &[(&str, &std::path::Path)]) -> Self {
        let mut all = vec!["--watch", "--debounce", "50"];
        all.extend_from_slice(args);
        let mut child = p
            .cmd(&all)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&lines);
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        Watching { child, lines }
    }

    /// Starts watching and waits for the first pass to end.
    fn start(p: &Project, args: &[&str]) -> Self {
        let w = Self::spawn(p, args);
        w.wait_for("watching for changes");
        w
    }

    fn text(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    /// Waits (at most 20 s) until a line containing `needle` appears after the first `skip`
    /// lines; returns that line and how many lines there are now.
    fn wait_after(&self, skip: usize, needle: &str) -> (String, usize) {
        let start = Instant::now();
        loop {
            {
                let lines = self.lines.lock().unwrap();
                if let Some(l) = lines.iter().skip(skip).find(|l| l.contains(needle)) {
                    return (l.clone(), lines.len());
                }
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "no line with {needle:?} within 20 s; output:\n{}",
                self.text()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn wait_for(&self, needle: &str) -> String {
        self.wait_after(0, needle).0
    }

    fn count(&self) -> usize {
        self.lines.lock().unwrap().len()
    }

    /// The next pass's status line after the current output.
    fn next_pass(&self, edit: impl FnOnce()) -> String {
        let before = self.count();
        edit();
        self.wait_after(before, "watch: ").0
    }

    fn interrupt(mut self) -> i32 {
        let _ = std::process::Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        self.exit_code("watch did not end on Ctrl-C")
    }

    /// Waits (at most 20 s, else fails with `why`) for flowrun to exit; its exit code.
    fn exit_code(&mut self, why: &str) -> i32 {
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code().unwrap_or(-1);
            }
            assert!(start.elapsed() < Duration::from_secs(20), "{why}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Watching {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn project() -> Project {
    let p = Project::new();
    p.file(
        "wf.rhai",
        r#"import "rules/up" as up;
let s = glob_wildcards("data/{s}.txt").s;
rule("all", #{ input: expand("out/{s}.up", #{ s: s }) });
up::rules();
"#,
    )
    .file(
        "rules/up.rhai",
        r#"fn rules() {
    rule("up", #{ input: "data/{s}.txt", output: "out/{s}.up", shell: "tr a-z A-Z < {input} > {output}" });
}
"#,
    )
    .file("data/a.txt", "a\n")
    .file("data/b.txt", "b\n");
    p
}

#[test]
fn edits_rerun_only_what_they_outdate_and_touch_reruns_nothing() {
    let p = project();
    let w = Watching::start(&p, &["wf.rhai"]);
    assert!(
        w.text().contains("watch: first pass: 3 ran"),
        "{}",
        w.text()
    );
    assert_eq!(p.read("out/a.up"), "A\n");

    let line = w.next_pass(|| {
        p.file("data/a.txt", "aa\n");
    });
    assert!(
        line.contains("data/a.txt changed: 2 ran (up[s=a] all)"),
        "{line}"
    );
    assert_eq!(p.read("out/a.up"), "AA\n");

    let line = w.next_pass(|| {
        p.file("data/b.txt", "b\n");
    });
    assert!(line.contains("data/b.txt changed: nothing to do"), "{line}");

    // A new file matching the glob adds a job.
    let line = w.next_pass(|| {
        p.file("data/c.txt", "c\n");
    });
    assert!(line.contains("2 ran (up[s=c] all)"), "{line}");
    assert_eq!(p.read("out/c.up"), "C\n");
    assert_eq!(w.interrupt(), 0);
}

#[test]
fn an_edited_sheet_reaches_functions_running_on_every_core() {
    // 40 jobs: their params functions run on the thread pool, each thread with its own copy of
    // the captured sheet. The reloaded workflow's copies must replace the old ones.
    let p = Project::new();
    let sheet = |tag: &str| {
        let mut text = String::from("sample\ttag\n");
        for i in 0..40 {
            text.push_str(&format!("s{i}\t{tag}{i}\n"));
        }
        text
    };
    p.file("samples.tsv", &sheet("a")).file(
        "wf.rhai",
        r#"let sheet = read_table("samples.tsv");
rule("all", #{ input: expand("out/{s}.txt", #{ s: sheet.map(|r| r.sample) }) });
rule("tag", #{
    params: #{ tag: |w| sheet.filter(|r| r.sample == w.s)[0].tag },
    output: "out/{s}.txt",
    shell: "echo {params.tag} > {output}",
});
"#,
    );
    let w = Watching::start(&p, &["wf.rhai", "-j2"]);
    assert_eq!(p.read("out/s39.txt"), "a39\n");
    let line = w.next_pass(|| {
        p.file("samples.tsv", &sheet("b"));
    });
    assert!(line.contains("41 ran"), "{line}");
    for i in [0, 17, 39] {
        assert_eq!(p.read(&format!("out/s{i}.txt")), format!("b{i}\n"));
    }
    assert_eq!(w.interrupt(), 0);
}

#[test]
fn workflow_and_rule_file_edits_reload_and_broken_edits_wait() {
    let p = project();
    let w = Watching::start(&p, &["wf.rhai"]);
    // A rule-file edit changes the code of `up`: every `up` job reruns.
    let line = w.next_pass(|| {
        p.file(
            "rules/up.rhai",
            &p.read("rules/up.rhai")
                .replace("tr a-z A-Z", "tr a-z A-Z | rev"),
        );
    });
    assert!(line.contains("rules/up.rhai changed: 3 ran"), "{line}");
    // A broken workflow is reported, and watching goes on.
    let good = p.read("wf.rhai");
    let line = w.next_pass(|| {
        p.file(
            "wf.rhai",
            &good.replace("rule(\"all\"", "rule(\"all\" oops"),
        );
    });
    assert!(
        line.contains("the workflow has errors; waiting for the next change"),
        "{line}"
    );
    assert!(w.text().contains("wf.rhai:3:"), "{}", w.text());
    // Fixed again: nothing was outdated by the broken edit.
    let line = w.next_pass(|| {
        p.file("wf.rhai", &good);
    });
    assert!(line.contains("wf.rhai changed: nothing to do"), "{line}");
    // A deleted input is reported; watching goes on.
    let line = w.next_pass(|| {
        std::fs::remove_file(p.path().join("data/b.txt")).unwrap();
    });
    assert!(line.contains("data/b.txt changed"), "{line}");
    assert_eq!(w.interrupt(), 0);
}

#[test]
fn a_workflow_broken_at_start_is_reported_and_its_fix_runs() {
    let p = project();
    let good = p.read("rules/up.rhai");
    p.file("rules/up.rhai", &good.replace("output:", "outptu:"));
    let w = Watching::start(&p, &["wf.rhai"]);
    let text = w.text();
    assert!(text.contains("unknown key `outptu`"), "{text}");
    assert!(
        text.contains("watch: first pass: the workflow has errors; waiting for the next change"),
        "{text}"
    );
    assert!(!p.exists("out/a.up"));
    // The broken rule file is watched although the workflow never loaded.
    let line = w.next_pass(|| {
        p.file("rules/up.rhai", &good);
    });
    assert!(line.contains("rules/up.rhai changed: 3 ran"), "{line}");
    assert_eq!(p.read("out/a.up"), "A\n");
    assert_eq!(w.interrupt(), 0);
}

#[test]
fn a_bad_config_override_ends_watch_mode_at_once() {
    let p = project();
    let mut w = Watching::spawn(&p, &["wf.rhai", "--config", "nokey"]);
    assert_eq!(w.exit_code("still watching"), 2);
    w.wait_for("`--config nokey` is not `key=value`");
}

#[test]
fn outputs_flowrun_writes_never_trigger_a_pass() {
    let p = project();
    let w = Watching::start(&p, &["wf.rhai"]);
    let before = w.count();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(w.count(), before, "a pass started by itself:\n{}", w.text());
    assert_eq!(w.interrupt(), 0);
}

#[test]
fn a_change_during_a_pass_restarts_it_with_on_change_restart() {
    let p = Project::new();
    p.file(
        "wf.rhai",
        r#"rule("slow", #{ input: "in.txt", output: "out.txt", shell: "sleep 3; cat {input} > {output}" });"#,
    )
    .file("in.txt", "one\n");
    let w = Watching::spawn(&p, &["--on-change", "restart", "wf.rhai"]);
    std::thread::sleep(Duration::from_millis(500));
    p.file("in.txt", "two\n");
    let line = w.wait_for("restarting after a change");
    assert!(
        line.starts_with("watch: first pass: restarting after a change; 0 ran"),
        "{line}"
    );
    w.wait_for("watch: in.txt changed: 1 ran (slow)");
    assert_eq!(p.read("out.txt"), "two\n");
    assert_eq!(w.interrupt(), 0);
}

#[test]
fn ctrl_c_during_a_pass_exits_130_and_cleans_up() {
    let p = Project::new();
    p.file(
        "wf.rhai",
        r#"rule("slow", #{ output: "out.txt", shell: "echo partial > {output}; sleep 30" });"#,
    );
    let w = Watching::spawn(&p, &["wf.rhai"]);
    let start = Instant::now();
    while !p.exists("out.txt") && start.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(w.interrupt(), 130);
    assert!(!p.exists("out.txt"), "the partial output was removed");
}

#[test]
fn a_change_inside_a_directory_input_starts_a_pass_and_writes_inside_an_output_do_not() {
    let p = Project::new();
    p.file("raw/x/a.txt", "a\n").file(
        "wf.rhai",
        r#"
rule("all", #{ input: "copy" });
rule("copy", #{ input: directory("raw"), output: directory("copy"), shell: "rm -rf {output}; cp -r {input} {output}" });
"#,
    );
    let w = Watching::start(&p, &["wf.rhai"]);
    assert_eq!(p.read("copy/x/a.txt"), "a\n");
    let line = w.next_pass(|| {
        p.file("raw/x/a.txt", "changed\n");
    });
    assert!(line.contains("2 ran (copy all)"), "{line}\n{}", w.text());
    assert_eq!(p.read("copy/x/a.txt"), "changed\n");
    // The pass's own writes inside `copy/` started no further pass.
    std::thread::sleep(Duration::from_millis(500));
    let passes = w.text().lines().filter(|l| l.contains(" ran (")).count();
    assert_eq!(passes, 2, "{}", w.text());
}

#[test]
fn a_file_appearing_in_a_checkpoint_s_directory_input_runs_its_new_jobs_and_one_going_drops_them() {
    let p = Project::new();
    p.file("raw/a.txt", "a\n").file("raw/b.txt", "b\n").file(
        "wf.rhai",
        r#"
rule("all", #{ input: "total.txt" });
rule("list", #{ input: directory("raw"), output: directory("items"), checkpoint: true,
    shell: "rm -rf {output}; cp -r {input} {output}" });
rule("up", #{ input: "items/{n}.txt", output: "up/{n}.txt", shell: "tr a-z A-Z < {input} > {output}" });
rule("total", #{
    input: |w| {
        let d = checkpoint_output("list", w);
        expand("up/{n}.txt", #{ n: glob_wildcards(d + "/{n}.txt").n })
    },
    output: "total.txt",
    shell: "cat /dev/null {input} > {output}",
});
"#,
    );
    let w = Watching::start(&p, &["wf.rhai", "-j", "1"]);
    assert_eq!(p.read("total.txt"), "A\nB\n");
    let line = w.next_pass(|| {
        p.file("raw/c.txt", "c\n");
    });
    assert!(
        line.contains("4 ran (list up[n=c] total all)"),
        "{line}\n{}",
        w.text()
    );
    assert_eq!(p.read("total.txt"), "A\nB\nC\n");
    let before = w.count();
    let line = w.next_pass(|| {
        p.remove("raw/a.txt");
    });
    assert!(
        line.contains("3 ran (list total all)"),
        "{line}\n{}",
        w.text()
    );
    w.wait_after(
        before,
        "Dropped up[n=a]: checkpoint list no longer leads to it; removed `up/a.txt`",
    );
    assert_eq!(p.read("total.txt"), "B\nC\n");
    assert!(!p.exists("up/a.txt"));
    assert_eq!(w.interrupt(), 0);
}

#[test]
fn script_and_software_file_edits_rerun_the_jobs_that_use_them() {
    let p = Project::new();
    p.file("envs/plot.txt", "# no packages yet\n")
        .file(
            "scripts/plot.py",
            "import flowrun\njob = flowrun.job()\nopen(job.output[0], 'w').write('v1 ' + job.wildcards.s + '\\n')\n",
        )
        .file(
            "wf.rhai",
            r#"
rule("all", #{ input: ["out/a.plot", "out/b.plot", "out/a.env", "out/plain"] });
rule("plot", #{ output: "out/{s}.plot", script: "scripts/plot.py" });
rule("env", #{ output: "out/{s}.env", software: #{ python: "envs/plot.txt" }, shell: "echo made > {output}" });
rule("plain", #{ output: "out/plain", shell: "echo plain > {output}" });
"#,
        );
    let uv = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/pyenv/bin/uv");
    let envs = p.path().join("envcache");
    let mut vars = vec![("FLOWRUN_ENVS", envs.as_path())];
    if uv.is_file() {
        vars.push(("FLOWRUN_UV", uv.as_path()));
    }
    let w = Watching::spawn_with(&p, &["wf.rhai"], &vars);
    w.wait_for("watching for changes");
    assert!(w.text().contains("first pass: 5 ran"), "{}", w.text());
    assert_eq!(p.read("out/a.plot"), "v1 a\n");
    // The script's text is the rule's code: both of its jobs rerun, nothing else.
    let line = w.next_pass(|| {
        p.file(
            "scripts/plot.py",
            &p.read("scripts/plot.py").replace("v1", "v2"),
        );
    });
    assert!(line.contains("scripts/plot.py changed: 3 ran ("), "{line}");
    for job in ["plot[s=a]", "plot[s=b]", "all"] {
        assert!(line.contains(job), "{job} did not rerun: {line}");
    }
    assert_eq!(p.read("out/b.plot"), "v2 b\n");
    // The software file names the environment: its one job reruns.
    let line = w.next_pass(|| {
        p.file("envs/plot.txt", "# still no packages\n");
    });
    assert!(
        line.contains("envs/plot.txt changed: 2 ran (env[s=a] all)"),
        "{line}\n{}",
        w.text()
    );
    assert_eq!(w.interrupt(), 0);
}

#[test]
fn an_edit_of_any_file_the_definition_read_reloads_it() {
    // Not only sample sheets and config files: whatever the workflow read while it was
    // evaluated (here `read_json`) is part of its definition.
    let p = Project::new();
    p.file("settings.json", r#"{ "n": 1 }"#).file(
        "wf.rhai",
        r#"let cfg = read_json("settings.json");
rule("out", #{ output: "out.txt", params: #{ n: cfg.n }, shell: "echo {params.n} > {output}" });
"#,
    );
    let w = Watching::start(&p, &["wf.rhai"]);
    assert_eq!(p.read("out.txt"), "1\n");
    let line = w.next_pass(|| {
        p.file("settings.json", r#"{ "n": 2 }"#);
    });
    assert!(line.contains("1 ran"), "{line}");
    assert_eq!(p.read("out.txt"), "2\n");
    assert_eq!(w.interrupt(), 0);
}
