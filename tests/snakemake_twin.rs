//! flowrun against a Snakemake twin: the same small pipeline (the Snakemake tutorial's shape:
//! map, sort, call, plot, an aggregate `all`, plus a `legend` whose `run` code calls a helper
//! function) written once as a Snakefile and once as a Rhai
//! workflow, built in two directories, then put through the same edit and rerun with the real
//! `snakemake` and the real `flowrun`. Each test asserts the set of jobs each tool ran; where
//! they differ, it asserts that the difference is one DESIGN.md §3 makes on purpose (the
//! content-hash veto at any file size, early cutoff, plain Make under `--rerun-triggers mtime`)
//! and the reason each tool gives.
//!
//! Snakemake comes from `target/pyenv` (made by `scripts/setup-tests.sh`); without it every test here
//! is skipped with a loud message. `docs/staleness.md` ("Compared with Snakemake, measured")
//! lists what these tests observe.

mod common;
use common::{Project, Run};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

/// The twins, built once per test process; each test works on a copy. (Statics are never
/// dropped, so it lives in `CARGO_TARGET_TMPDIR` and the next process removes it.)
static BASE: OnceLock<Twin> = OnceLock::new();
const BASE_PREFIX: &str = "snakemake-twin-";

/// Removes the bases of test processes that ended long ago.
fn remove_stale_bases(root: &Path) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        let old = entry.metadata().and_then(|m| m.modified()).is_ok_and(|t| {
            SystemTime::now()
                .duration_since(t)
                .is_ok_and(|age| age > Duration::from_secs(3600))
        });
        if old && entry.file_name().to_string_lossy().starts_with(BASE_PREFIX) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

const SNAKEFILE: &str = r##"SAMPLES = ["A", "B", "C"]

def legend_line(mark):
    return mark + " = one read\n"

rule all:
    input: "plots/coverage.txt", "plots/legend.txt"

rule map_reads:
    input: "data/genome.txt", "data/samples/{sample}.txt"
    output: "mapped/{sample}.txt"
    shell: "awk 'NR == FNR {{ pos[$2] = $1; next }} $1 in pos {{ print pos[$1], $1 }}' {input} > {output}"

rule sort_reads:
    input: "mapped/{sample}.txt"
    output: "sorted/{sample}.txt"
    shell: "sort -k1,1n {input} > {output}"

rule call:
    input: expand("sorted/{sample}.txt", sample=SAMPLES)
    output: "calls/all.txt"
    params: min_count=1
    shell: "sort -m -k1,1n {input} | uniq -c | awk '$1 >= {params.min_count} {{ print $2, $3, $1 }}' > {output}"

rule legend:
    output: "plots/legend.txt"
    run:
        with open(output[0], "w") as f:
            f.write(legend_line("#"))

rule plot:
    input: "calls/all.txt"
    output: "plots/coverage.txt"
    shell: "awk '{{ printf \"%s: \", $2; for (i = 0; i < $3; i++) printf \"#\"; print \"\" }}' {input} > {output}"
"##;

const FLOWFILE: &str = r##"let samples = ["A", "B", "C"];

fn legend_line(mark) { mark + " = one read\n" }

rule("all", #{ input: ["plots/coverage.txt", "plots/legend.txt"] });

rule("map_reads", #{
    input:  ["data/genome.txt", "data/samples/{sample}.txt"],
    output: "mapped/{sample}.txt",
    shell:  "awk 'NR == FNR {{ pos[$2] = $1; next }} $1 in pos {{ print pos[$1], $1 }}' {input} > {output}",
});

rule("sort_reads", #{
    input:  "mapped/{sample}.txt",
    output: "sorted/{sample}.txt",
    shell:  "sort -k1,1n {input} > {output}",
});

rule("call", #{
    input:  expand("sorted/{sample}.txt", #{ sample: samples }),
    output: "calls/all.txt",
    params: #{ min_count: 1 },
    shell:  "sort -m -k1,1n {input} | uniq -c | awk '$1 >= {params.min_count} {{ print $2, $3, $1 }}' > {output}",
});

rule("legend", #{
    output: "plots/legend.txt",
    run:    |job| write_text(job.output[0], legend_line("#")),
});

rule("plot", #{
    input:  "calls/all.txt",
    output: "plots/coverage.txt",
    shell:  "awk '{{ printf \"%s: \", $2; for (i = 0; i < $3; i++) printf \"#\"; print \"\" }}' {input} > {output}",
});
"##;

const GENOME: &str = "1 the\n2 quick\n3 brown\n4 fox\n5 jumps\n6 over\n7 lazy\n8 dog\n";
const SAMPLE_A: &str = "fox\nthe\ndog\ncat\nfox\n";
const SAMPLE_B: &str = "lazy\nfox\nquick\nbird\ndog\n";

/// Sample C is larger than 1,000,000 bytes, Snakemake's default `--max-checksum-file-size`:
/// Snakemake keeps no checksum of it. Its 300,000 `owl` reads are not in the genome, so
/// `mapped/C.txt` stays small.
fn sample_c() -> String {
    let mut s = String::from("over\nfox\n");
    s.push_str(&"owl\n".repeat(300_000));
    s.push_str("lazy\nthe\n");
    s
}

/// Snakemake's threshold for keeping input checksums (its default `--max-checksum-file-size`).
const SNAKEMAKE_CHECKSUM_LIMIT: u64 = 1_000_000;

const MAP: [&str; 3] = [
    "map_reads[sample=A]",
    "map_reads[sample=B]",
    "map_reads[sample=C]",
];
const SORT: [&str; 3] = [
    "sort_reads[sample=A]",
    "sort_reads[sample=B]",
    "sort_reads[sample=C]",
];

/// A set of job labels, written as flowrun prints them (`rule[wildcard=value]`).
fn jobs(labels: &[&str]) -> BTreeSet<String> {
    labels.iter().map(|s| s.to_string()).collect()
}

/// Every job from the sorts on: the sorts, call, plot, all.
fn sort_and_after() -> BTreeSet<String> {
    let mut after = jobs(&SORT);
    after.extend(jobs(&["call", "plot", "all"]));
    after
}

/// Every job of the pipeline.
fn every_job() -> BTreeSet<String> {
    let mut all = jobs(&MAP);
    all.extend(sort_and_after());
    all.insert("legend".to_string());
    all
}

/// The Snakemake of `target/pyenv`, or `None` (and a loud message) when it is not installed.
fn snakemake() -> Option<PathBuf> {
    let bin = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/target/pyenv/bin/snakemake"
    ));
    if bin.exists() {
        Some(bin)
    } else {
        eprintln!(
            "!!! SKIPPING the Snakemake twin comparison: {} is missing; run `bash scripts/setup-tests.sh`",
            bin.display()
        );
        None
    }
}

/// The jobs one Snakemake run executed, parsed from its log: each job is a block that starts
/// with `rule NAME:` (or `localrule NAME:`) and has indented `wildcards:` and `reason:` lines.
#[derive(Debug, Default)]
struct SnakemakeRun {
    /// job label (as flowrun writes it) -> Snakemake's reason
    jobs: BTreeMap<String, String>,
    log: String,
}

impl SnakemakeRun {
    fn parse(log: &str) -> Self {
        let mut jobs = BTreeMap::new();
        let mut current: Option<(String, Vec<String>, String)> = None;
        let mut finish = |job: Option<(String, Vec<String>, String)>| {
            if let Some((rule, wildcards, reason)) = job {
                let label = if wildcards.is_empty() {
                    rule
                } else {
                    format!("{rule}[{}]", wildcards.join(","))
                };
                let again = jobs.insert(label.clone(), reason);
                assert!(again.is_none(), "Snakemake ran {label} twice\n{log}");
            }
        };
        for line in log.lines() {
            let head = line
                .strip_prefix("localrule ")
                .or_else(|| line.strip_prefix("rule "))
                .and_then(|l| l.strip_suffix(':'));
            if let Some(rule) = head {
                finish(current.take());
                current = Some((rule.to_string(), Vec::new(), String::new()));
            } else if let Some((_, wildcards, reason)) = current.as_mut() {
                if !line.starts_with("    ") {
                    finish(current.take());
                } else if let Some(w) = line.trim_start().strip_prefix("wildcards: ") {
                    wildcards.extend(w.split(", ").map(str::to_string));
                } else if let Some(r) = line.trim_start().strip_prefix("reason: ") {
                    *reason = r.to_string();
                }
            }
        }
        finish(current.take());
        Self {
            jobs,
            log: log.to_string(),
        }
    }

    fn ran(&self) -> BTreeSet<String> {
        self.jobs.keys().cloned().collect()
    }

    /// Asserts that Snakemake ran nothing and said so.
    fn nothing_to_do(&self) {
        assert!(self.ran().is_empty(), "{}", self.log);
        assert!(
            self.log.contains("Nothing to be done"),
            "Snakemake said\n{}",
            self.log
        );
    }

    /// Snakemake's reason for `job`.
    fn reason(&self, job: &str) -> &str {
        self.jobs
            .get(job)
            .unwrap_or_else(|| panic!("Snakemake did not run {job}\n{}", self.log))
    }
}

/// What flowrun planned (`-n`) and then did.
struct FlowrunRun {
    plan: Run,
    run: Run,
}

impl FlowrunRun {
    fn planned(&self) -> BTreeSet<String> {
        self.plan.planned().into_iter().collect()
    }

    fn ran(&self) -> BTreeSet<String> {
        self.run.ran().into_iter().collect()
    }

    /// Jobs skipped by early cutoff, each with the reason printed.
    fn skipped(&self) -> BTreeMap<String, String> {
        self.run
            .stderr
            .lines()
            .filter_map(|l| l.trim_start().strip_prefix("Skipped "))
            .map(|l| l.split_once("] ").map_or(l, |(_, j)| j))
            .map(|l| {
                let (job, why) = l.split_once(": ").unwrap_or((l, ""));
                (job.to_string(), why.to_string())
            })
            .collect()
    }

    /// Asserts that `jobs` were skipped by early cutoff, with flowrun's sentence for it.
    fn assert_cut_off(&self, jobs: &BTreeSet<String>) {
        let skipped = self.skipped();
        assert_eq!(
            &skipped.keys().cloned().collect::<BTreeSet<_>>(),
            jobs,
            "flowrun's skipped jobs\n--- stderr\n{}",
            self.run.stderr
        );
        for (job, why) in &skipped {
            assert_eq!(why, "its inputs were remade byte-identical", "{job}");
        }
    }

    /// The reasons flowrun's dry run gave for `job`.
    fn reasons(&self, job: &str) -> Vec<String> {
        self.plan.reasons(job)
    }

    fn nothing_to_do(&self) {
        assert!(
            self.plan
                .stdout
                .contains("nothing to be done: every output is up to date"),
            "{}",
            self.plan.stdout
        );
        assert!(self.ran().is_empty(), "{}", self.run.stderr);
    }
}

/// The two directories, built.
struct Twin {
    snakemake: PathBuf,
    smk: Project,
    fr: Project,
}

impl Twin {
    /// Both twins, fully built (a copy of [`BASE`], with every mtime kept), or `None` when
    /// Snakemake is not installed.
    fn built() -> Option<Self> {
        let snakemake = snakemake()?;
        let base = BASE.get_or_init(|| Self::build(snakemake.clone()));
        let twin = Self {
            snakemake,
            smk: Project::new(),
            fr: Project::new(),
        };
        for (from, to) in [(&base.smk, &twin.smk), (&base.fr, &twin.fr)] {
            let status = Command::new("cp")
                .arg("-a")
                .arg(from.path().join("."))
                .arg(to.path())
                .status()
                .expect("start cp");
            assert!(status.success(), "cp -a of the built twin failed");
        }
        Some(twin)
    }

    /// Builds both twins from scratch in `CARGO_TARGET_TMPDIR` (removing what earlier test
    /// processes left there more than an hour ago).
    fn build(snakemake: PathBuf) -> Self {
        let root = Path::new(env!("CARGO_TARGET_TMPDIR"));
        remove_stale_bases(root);
        let project = || Project {
            dir: tempfile::Builder::new()
                .prefix(BASE_PREFIX)
                .tempdir_in(root)
                .expect("temp dir"),
        };
        let twin = Self {
            snakemake,
            smk: project(),
            fr: project(),
        };
        let c = sample_c();
        assert!(c.len() as u64 > SNAKEMAKE_CHECKSUM_LIMIT);
        for p in twin.both() {
            p.file("data/genome.txt", GENOME)
                .file("data/samples/A.txt", SAMPLE_A)
                .file("data/samples/B.txt", SAMPLE_B)
                .file("data/samples/C.txt", &c);
        }
        twin.smk.file("Snakefile", SNAKEFILE);
        twin.fr.file("Flowfile.rhai", FLOWFILE);
        let (smk, fr) = twin.rerun(&[], &[]);
        assert_eq!(smk.ran(), every_job(), "{}", smk.log);
        assert_eq!(fr.ran(), every_job(), "{}", fr.run.stderr);
        assert_eq!(
            twin.fr.read("plots/coverage.txt"),
            "the: ##\nquick: #\nfox: ####\nover: #\nlazy: ##\ndog: ##\n"
        );
        twin
    }

    fn both(&self) -> [&Project; 2] {
        [&self.smk, &self.fr]
    }

    /// Runs Snakemake with `args` (bounded in time) and parses which jobs it ran.
    fn run_snakemake(&self, args: &[&str]) -> SnakemakeRun {
        let out = Command::new("timeout")
            .arg("120")
            .arg(&self.snakemake)
            .args(["--cores", "1", "--nocolor"])
            .args(args)
            .current_dir(self.smk.path())
            .output()
            .expect("start snakemake");
        let log = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            out.status.code(),
            Some(0),
            "snakemake {args:?} failed (124: timed out after 120 s)\n{log}"
        );
        SnakemakeRun::parse(&log)
    }

    /// Runs flowrun with `args`: a dry run, then the real run, then checks that a third run has
    /// nothing to do.
    fn run_flowrun(&self, args: &[&str]) -> FlowrunRun {
        let with = |extra: &[&'static str]| {
            let mut v: Vec<&str> = vec!["Flowfile.rhai", "-j1"];
            v.extend_from_slice(extra);
            v.extend_from_slice(args);
            v
        };
        let plan = self.fr.run(&with(&["-n"])).code(0);
        let run = self.fr.run(&with(&[])).code(0);
        let again = self.fr.run(&["Flowfile.rhai", "-n"]).code(0);
        assert!(again.planned().is_empty(), "{}", again.stdout);
        FlowrunRun { plan, run }
    }

    /// Reruns both (Snakemake with `smk_args`, flowrun with `fr_args`) and checks that they
    /// made the same results.
    fn rerun(&self, smk_args: &[&str], fr_args: &[&str]) -> (SnakemakeRun, FlowrunRun) {
        let smk = self.run_snakemake(smk_args);
        let fr = self.run_flowrun(fr_args);
        for out in ["calls/all.txt", "plots/coverage.txt"] {
            assert_eq!(self.smk.read(out), self.fr.read(out), "{out} differs");
        }
        (smk, fr)
    }

    /// Replaces `from` by `to` in a file of one twin (it must occur exactly once).
    fn replace(p: &Project, file: &str, from: &str, to: &str) {
        let text = p.read(file);
        assert_eq!(text.matches(from).count(), 1, "{from:?} in {file}");
        p.file(file, &text.replacen(from, to, 1));
    }

    /// The same text replaced in both workflows.
    fn replace_in_both(&self, from: &str, to: &str) {
        Self::replace(&self.smk, "Snakefile", from, to);
        Self::replace(&self.fr, "Flowfile.rhai", from, to);
    }

    /// The same code edit in both workflows.
    fn edit_code(&self, smk: (&str, &str), fr: (&str, &str)) {
        Self::replace(&self.smk, "Snakefile", smk.0, smk.1);
        Self::replace(&self.fr, "Flowfile.rhai", fr.0, fr.1);
    }

    /// Appends `text` to a file in both twins.
    fn append(&self, file: &str, text: &str) {
        for p in self.both() {
            let old = p.read(file);
            p.file(file, &(old + text));
        }
    }

    /// Overwrites a file with an identical copy of itself in both twins, as `cp` does.
    fn copy_identical(&self, file: &str) {
        for p in self.both() {
            let (src, copy) = (p.path().join(file), p.path().join("copy.tmp"));
            std::fs::copy(&src, &copy).unwrap();
            let before = p.mtime(file);
            std::thread::sleep(Duration::from_millis(10));
            std::fs::copy(&copy, &src).unwrap();
            std::fs::remove_file(&copy).unwrap();
            assert!(p.mtime(file) > before, "the copy kept the mtime of {file}");
        }
    }

    fn touch(&self, file: &str) {
        for p in self.both() {
            p.touch(file);
        }
    }

    fn remove(&self, file: &str) {
        for p in self.both() {
            p.remove(file);
        }
    }
}

/// Asserts that Snakemake and flowrun ran the same jobs, and that flowrun ran what it planned.
fn same_jobs(smk: &SnakemakeRun, fr: &FlowrunRun, expected: &BTreeSet<String>) {
    assert_eq!(&smk.ran(), expected, "Snakemake ran\n{}", smk.log);
    assert_eq!(&fr.ran(), expected, "flowrun ran\n{}", fr.run.stderr);
    assert_eq!(
        &fr.planned(),
        expected,
        "flowrun planned\n{}",
        fr.plan.stdout
    );
    assert!(fr.skipped().is_empty(), "{}", fr.run.stderr);
}

/// Downstream of the jobs of sample `s`: sort, call, plot, all.
fn sample_chain(s: &str) -> BTreeSet<String> {
    jobs(&[
        &format!("map_reads[sample={s}]"),
        &format!("sort_reads[sample={s}]"),
        "call",
        "plot",
        "all",
    ])
}

// ---------------------------------------------------------------------------------------------
// The same jobs in both.

#[test]
fn content_change_of_an_input_reruns_the_same_jobs() {
    let Some(t) = Twin::built() else { return };
    t.append("data/samples/A.txt", "quick\n");
    let (smk, fr) = t.rerun(&[], &[]);
    same_jobs(&smk, &fr, &sample_chain("A"));
    assert_eq!(
        smk.reason("map_reads[sample=A]"),
        "Updated input files: data/samples/A.txt"
    );
    assert_eq!(
        fr.reasons("map_reads[sample=A]"),
        ["input `data/samples/A.txt` changed"]
    );
    assert_eq!(
        fr.reasons("call"),
        ["input made by sort_reads[sample=A], which runs first"]
    );
}

#[test]
fn touch_of_a_small_input_reruns_nothing_in_either() {
    let Some(t) = Twin::built() else { return };
    t.touch("data/samples/A.txt");
    let (smk, fr) = t.rerun(&[], &[]);
    // Snakemake 9: the input is newer, but its checksum (kept for files up to 1 MB) is the
    // one recorded, so it is not an updated input.
    smk.nothing_to_do();
    fr.nothing_to_do();
}

#[test]
fn identical_copy_over_a_small_input_reruns_nothing_in_either() {
    let Some(t) = Twin::built() else { return };
    t.copy_identical("data/samples/B.txt");
    let (smk, fr) = t.rerun(&[], &[]);
    assert!(smk.ran().is_empty(), "{}", smk.log);
    fr.nothing_to_do();
}

#[test]
fn param_change_reruns_the_same_jobs() {
    let Some(t) = Twin::built() else { return };
    t.edit_code(
        ("min_count=1", "min_count=2"),
        ("min_count: 1", "min_count: 2"),
    );
    let (smk, fr) = t.rerun(&[], &[]);
    same_jobs(&smk, &fr, &jobs(&["call", "plot", "all"]));
    assert!(
        smk.reason("call")
            .contains("Params have changed since last execution"),
        "{}",
        smk.reason("call")
    );
    assert_eq!(fr.reasons("call"), ["the rule's params changed"]);
    assert_eq!(
        t.fr.read("plots/coverage.txt"),
        "the: ##\nfox: ####\nlazy: ##\ndog: ##\n"
    );
}

#[test]
fn shell_code_change_reruns_the_same_jobs() {
    let Some(t) = Twin::built() else { return };
    t.replace_in_both(r##"printf \"#\""##, r#"printf \"*\""#);
    let (smk, fr) = t.rerun(&[], &[]);
    same_jobs(&smk, &fr, &jobs(&["plot", "all"]));
    assert!(
        smk.reason("plot")
            .contains("Code has changed since last execution"),
        "{}",
        smk.reason("plot")
    );
    assert_eq!(fr.reasons("plot"), ["the rule's code changed"]);
    assert!(t.fr.read("plots/coverage.txt").starts_with("the: **\n"));
}

#[test]
fn deleted_final_output_reruns_the_same_jobs() {
    let Some(t) = Twin::built() else { return };
    t.remove("plots/coverage.txt");
    let (smk, fr) = t.rerun(&[], &[]);
    same_jobs(&smk, &fr, &jobs(&["plot", "all"]));
    assert_eq!(
        smk.reason("plot"),
        "Missing output files: plots/coverage.txt"
    );
    assert_eq!(
        fr.reasons("plot"),
        ["output `plots/coverage.txt` is missing"]
    );
}

#[test]
fn forcerun_of_a_rule_reruns_the_same_jobs() {
    let Some(t) = Twin::built() else { return };
    let (smk, fr) = t.rerun(&["--forcerun", "sort_reads"], &["-R", "sort_reads"]);
    let expected = sort_and_after();
    same_jobs(&smk, &fr, &expected);
    assert_eq!(smk.reason("sort_reads[sample=B]"), "Forced execution");
    assert_eq!(fr.reasons("sort_reads[sample=B]"), ["forced"]);
    assert_eq!(
        fr.reasons("call"),
        ["forced: downstream of forced job sort_reads[sample=A] and 2 other jobs"]
    );
}

#[test]
fn forcerun_of_a_file_reruns_the_same_jobs() {
    let Some(t) = Twin::built() else { return };
    let (smk, fr) = t.rerun(&["--forcerun", "sorted/B.txt"], &["-R", "sorted/B.txt"]);
    let mut expected = sample_chain("B");
    expected.remove("map_reads[sample=B]");
    same_jobs(&smk, &fr, &expected);
    assert_eq!(fr.reasons("sort_reads[sample=B]"), ["forced"]);
}

#[test]
fn forceall_reruns_the_same_jobs() {
    let Some(t) = Twin::built() else { return };
    let (smk, fr) = t.rerun(&["--forceall"], &["-F"]);
    same_jobs(&smk, &fr, &every_job());
    assert_eq!(fr.reasons("map_reads[sample=C]"), ["forced"]);
}

#[test]
fn hand_edited_intermediate_output_reruns_the_same_jobs() {
    let Some(t) = Twin::built() else { return };
    t.append("sorted/A.txt", "8 dog\n");
    let (smk, fr) = t.rerun(&[], &[]);
    // Neither remakes the edited file; both rerun what consumes it.
    same_jobs(&smk, &fr, &jobs(&["call", "plot", "all"]));
    assert_eq!(smk.reason("call"), "Updated input files: sorted/A.txt");
    assert_eq!(fr.reasons("call"), ["input `sorted/A.txt` changed"]);
    assert!(t.fr.read("sorted/A.txt").ends_with("8 dog\n8 dog\n"));
}

#[test]
fn removing_an_input_of_a_job_reruns_the_same_jobs() {
    let Some(t) = Twin::built() else { return };
    t.edit_code(
        (r#"SAMPLES = ["A", "B", "C"]"#, r#"SAMPLES = ["A", "C"]"#),
        (
            r#"let samples = ["A", "B", "C"];"#,
            r#"let samples = ["A", "C"];"#,
        ),
    );
    let (smk, fr) = t.rerun(&[], &[]);
    same_jobs(&smk, &fr, &jobs(&["call", "plot", "all"]));
    assert_eq!(
        smk.reason("call"),
        "Set of input files has changed since last execution"
    );
    assert_eq!(
        fr.reasons("call"),
        ["the set of inputs changed (removed `sorted/B.txt`)"]
    );
}

#[test]
fn moving_a_rule_and_adding_a_comment_reruns_nothing_in_either() {
    let Some(t) = Twin::built() else { return };
    for (p, file, plot, first, comment) in [
        (
            &t.smk,
            "Snakefile",
            "rule plot:",
            "rule map_reads:",
            "# plot last\n",
        ),
        (
            &t.fr,
            "Flowfile.rhai",
            r#"rule("plot""#,
            r#"rule("map_reads""#,
            "// plot last\n",
        ),
    ] {
        // `plot` is the last rule of both files: move it before `map_reads`.
        let text = p.read(file);
        let (head, block) = text.split_at(text.find(plot).unwrap());
        let (top, rest) = head.split_at(head.find(first).unwrap());
        p.file(file, &format!("{top}{comment}{block}\n{rest}"));
    }
    let (smk, fr) = t.rerun(&[], &[]);
    assert!(smk.ran().is_empty(), "{}", smk.log);
    fr.nothing_to_do();
}

// ---------------------------------------------------------------------------------------------
// Deliberate differences (DESIGN.md §3).

/// flowrun's code of a closure covers the functions it calls; Snakemake's code of a `run:`
/// block is that block's own source, so it does not notice an edited helper.
#[test]
fn editing_a_helper_function_reruns_in_flowrun_only() {
    let Some(t) = Twin::built() else { return };
    t.replace_in_both("= one read", "= 1 read");
    let (smk, fr) = t.rerun(&[], &[]);
    smk.nothing_to_do();
    assert_eq!(fr.planned(), jobs(&["legend", "all"]), "{}", fr.plan.stdout);
    assert_eq!(fr.ran(), jobs(&["legend", "all"]), "{}", fr.run.stderr);
    assert_eq!(fr.reasons("legend"), ["the rule's code changed"]);
    assert_eq!(t.smk.read("plots/legend.txt"), "# = one read\n");
    assert_eq!(t.fr.read("plots/legend.txt"), "# = 1 read\n");
}

/// Content-hash veto at any size: Snakemake keeps no checksum of an input over 1 MB, so a
/// touch reruns it and everything downstream; flowrun hashes it and finds it unchanged.
#[test]
fn touch_of_an_input_over_1mb_reruns_in_snakemake_only() {
    let Some(smk) = large_input_edit_reruns_in_snakemake_only(Twin::touch) else {
        return;
    };
    assert_eq!(
        smk.reason("map_reads[sample=C]"),
        "Updated input files: data/samples/C.txt"
    );
}

#[test]
fn identical_copy_over_an_input_over_1mb_reruns_in_snakemake_only() {
    large_input_edit_reruns_in_snakemake_only(Twin::copy_identical);
}

/// Applies `edit` to the input over 1 MB (sample C) of built twins and checks that Snakemake
/// reruns the jobs of sample C and flowrun nothing; `None` when Snakemake is not installed.
fn large_input_edit_reruns_in_snakemake_only(edit: fn(&Twin, &str)) -> Option<SnakemakeRun> {
    let t = Twin::built()?;
    edit(&t, "data/samples/C.txt");
    let (smk, fr) = t.rerun(&[], &[]);
    assert_eq!(smk.ran(), sample_chain("C"), "{}", smk.log);
    fr.nothing_to_do();
    Some(smk)
}

/// Code is compared whitespace-normalised (DESIGN.md §3.3): a command re-spaced between its
/// words is not a change for flowrun; Snakemake compares the text and reruns.
#[test]
fn whitespace_only_code_change_reruns_in_snakemake_only() {
    let Some(t) = Twin::built() else { return };
    t.replace_in_both("sort -k1,1n {input}", "sort  -k1,1n  {input}");
    let (smk, fr) = t.rerun(&[], &[]);
    let expected = sort_and_after();
    assert_eq!(smk.ran(), expected, "{}", smk.log);
    assert_eq!(
        smk.reason("sort_reads[sample=A]"),
        "Code has changed since last execution"
    );
    fr.nothing_to_do();
}

/// Renaming a rule: Snakemake does not compare rule names (its metadata is per output and the
/// code is the same); flowrun records the name with the code and reruns the renamed rule.
#[test]
fn rule_rename_reruns_in_flowrun_only() {
    let Some(t) = Twin::built() else { return };
    t.edit_code(
        ("rule plot:", "rule draw:"),
        (r#"rule("plot""#, r#"rule("draw""#),
    );
    let (smk, fr) = t.rerun(&[], &[]);
    assert!(smk.ran().is_empty(), "{}", smk.log);
    assert_eq!(fr.planned(), jobs(&["draw", "all"]), "{}", fr.plan.stdout);
    assert_eq!(
        fr.reasons("draw"),
        ["the output was made by rule `plot` before"]
    );
    assert_eq!(fr.ran(), jobs(&["draw", "all"]), "{}", fr.run.stderr);
}

/// Whitespace inside a quoted string of a command is part of what the command does (this edit
/// changes `plots/coverage.txt`), so both tools rerun `plot`; flowrun only ignores layout
/// outside quotes.
#[test]
fn whitespace_inside_quotes_is_a_code_change_in_both() {
    let Some(t) = Twin::built() else { return };
    t.replace_in_both(r#"printf \"%s: \""#, r#"printf \"%s:  \""#);
    let (smk, fr) = t.rerun(&[], &[]);
    same_jobs(&smk, &fr, &jobs(&["plot", "all"]));
    assert!(t.fr.read("plots/coverage.txt").starts_with("the:  ##\n"));
}

/// Early cutoff: a new read that is not in the genome changes the sample but not its mapped
/// reads. Snakemake reruns everything downstream; flowrun stops after the first job.
#[test]
fn content_change_with_identical_output_is_cut_off_by_flowrun_only() {
    let Some(t) = Twin::built() else { return };
    t.append("data/samples/A.txt", "owl\n");
    let (smk, fr) = t.rerun(&[], &[]);
    assert_eq!(smk.ran(), sample_chain("A"), "{}", smk.log);
    assert_eq!(
        smk.reason("sort_reads[sample=A]"),
        "Input files updated by another job: mapped/A.txt"
    );
    // flowrun plans the same jobs, then skips those whose inputs came out identical.
    assert_eq!(fr.planned(), sample_chain("A"), "{}", fr.plan.stdout);
    assert_eq!(
        fr.reasons("map_reads[sample=A]"),
        ["input `data/samples/A.txt` changed"]
    );
    assert_eq!(fr.ran(), jobs(&["map_reads[sample=A]", "all"]));
    fr.assert_cut_off(&jobs(&["sort_reads[sample=A]", "call", "plot"]));
}

/// Early cutoff after a code change upstream: a sort with an extra key orders these reads the
/// same way, so the sorted files come out byte-identical.
#[test]
fn code_change_with_identical_output_is_cut_off_by_flowrun_only() {
    let Some(t) = Twin::built() else { return };
    t.replace_in_both("sort -k1,1n {input}", "sort -k1,1n -k2,2 {input}");
    let (smk, fr) = t.rerun(&[], &[]);
    let expected = sort_and_after();
    assert_eq!(smk.ran(), expected, "{}", smk.log);
    assert!(
        smk.reason("sort_reads[sample=A]")
            .contains("Code has changed since last execution"),
        "{}",
        smk.reason("sort_reads[sample=A]")
    );
    assert_eq!(fr.planned(), expected, "{}", fr.plan.stdout);
    assert_eq!(
        fr.reasons("sort_reads[sample=A]"),
        ["the rule's code changed"]
    );
    let mut ran = jobs(&SORT);
    ran.insert("all".into());
    assert_eq!(fr.ran(), ran, "{}", fr.run.stderr);
    fr.assert_cut_off(&jobs(&["call", "plot"]));
}

/// A deleted intermediate output whose consumers are up to date: Snakemake does not remake it
/// (nothing needs it), flowrun does (a missing output is a reason of its own, DESIGN.md §3.1),
/// then skips the consumers since the file came out byte-identical.
#[test]
fn deleted_intermediate_output_is_remade_by_flowrun_only() {
    let Some(t) = Twin::built() else { return };
    t.remove("mapped/B.txt");
    let (smk, fr) = t.rerun(&[], &[]);
    smk.nothing_to_do();
    assert!(!t.smk.exists("mapped/B.txt"));
    assert_eq!(fr.planned(), sample_chain("B"), "{}", fr.plan.stdout);
    assert_eq!(
        fr.reasons("map_reads[sample=B]"),
        ["output `mapped/B.txt` is missing"]
    );
    assert_eq!(fr.ran(), jobs(&["map_reads[sample=B]", "all"]));
    fr.assert_cut_off(&jobs(&["sort_reads[sample=B]", "call", "plot"]));
    assert!(t.fr.exists("mapped/B.txt"));
}

/// `--rerun-triggers mtime`: flowrun is plain Make, so a touched input reruns it and
/// everything downstream. Snakemake still vetoes a small touched input by its checksum.
#[test]
fn touch_under_mtime_trigger_reruns_in_flowrun_only() {
    let Some(t) = Twin::built() else { return };
    t.touch("data/samples/A.txt");
    let (smk, fr) = t.rerun(
        &["--rerun-triggers", "mtime"],
        &["--rerun-triggers", "mtime"],
    );
    assert!(smk.ran().is_empty(), "{}", smk.log);
    assert_eq!(fr.ran(), sample_chain("A"), "{}", fr.run.stderr);
    assert_eq!(
        fr.reasons("map_reads[sample=A]"),
        ["input `data/samples/A.txt` is newer than the output"]
    );
    assert!(fr.skipped().is_empty(), "{}", fr.run.stderr);
}
