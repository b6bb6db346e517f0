//! Data-driven workflows against Snakemake twins (issue 13): the same input functions over a
//! sample sheet, and the same `directory()` output, written once as a Snakefile and once as a
//! Rhai workflow, built, edited the same way and rebuilt with the real `snakemake` and the real
//! `flowrun`. Each test asserts the same final files, and which outputs each tool remade
//! (found from their modification times, so neither tool's log format matters); where the two
//! differ, the test asserts the difference `docs/staleness.md` documents.
//!
//! Snakemake comes from `target/pyenv` (made by `scripts/setup.sh`); without it every test here
//! is skipped with a loud message.

mod common;
use common::Project;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;
use std::time::SystemTime;

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
            "!!! SKIPPING the Snakemake twin comparison: {} is missing; run `bash scripts/setup.sh`",
            bin.display()
        );
        None
    }
}

/// A workflow written for both tools, in two directories with the same data.
struct Twin {
    snakemake: PathBuf,
    smk: Project,
    fr: Project,
    /// The outputs compared between the two.
    outputs: Vec<&'static str>,
}

impl Twin {
    fn new(
        snakefile: &str,
        flowfile: &str,
        data: &[(&str, &str)],
        outputs: &[&'static str],
    ) -> Option<Self> {
        let twin = Self {
            snakemake: snakemake()?,
            smk: Project::new(),
            fr: Project::new(),
            outputs: outputs.to_vec(),
        };
        twin.smk.file("Snakefile", snakefile);
        twin.fr.file("wf.rhai", flowfile);
        for (path, text) in data {
            twin.write(path, text);
        }
        Some(twin)
    }

    /// Writes the same file in both directories.
    fn write(&self, path: &str, text: &str) {
        self.smk.file(path, text);
        self.fr.file(path, text);
    }

    fn mtimes(&self, p: &Project) -> Vec<Option<SystemTime>> {
        self.outputs
            .iter()
            .map(|o| {
                std::fs::metadata(p.path().join(o))
                    .and_then(|m| m.modified())
                    .ok()
            })
            .collect()
    }

    /// Builds both; returns the outputs each tool (re)made, and checks they hold the same.
    fn build(&self) -> (BTreeSet<&'static str>, BTreeSet<&'static str>) {
        // A coarse clock must not hide a rewrite.
        std::thread::sleep(std::time::Duration::from_millis(20));
        let (smk_before, fr_before) = (self.mtimes(&self.smk), self.mtimes(&self.fr));
        let out = Command::new("timeout")
            .arg("120")
            .arg(&self.snakemake)
            .args(["--cores", "1", "--nocolor"])
            .current_dir(self.smk.path())
            .output()
            .expect("start snakemake");
        assert!(
            out.status.success(),
            "snakemake failed\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        self.fr.run(&["wf.rhai"]).code(0);
        for o in &self.outputs {
            let (a, b) = (self.smk.exists(o), self.fr.exists(o));
            assert_eq!(a, b, "{o}: Snakemake made it: {a}, flowrun: {b}");
            if a && !self.smk.path().join(o).is_dir() {
                assert_eq!(self.smk.read(o), self.fr.read(o), "{o} differs");
            }
        }
        let changed = |before: Vec<Option<SystemTime>>, after: Vec<Option<SystemTime>>| {
            self.outputs
                .iter()
                .zip(before.into_iter().zip(after))
                .filter(|(_, (b, a))| a.is_some() && b != a)
                .map(|(o, _)| *o)
                .collect::<BTreeSet<_>>()
        };
        (
            changed(smk_before, self.mtimes(&self.smk)),
            changed(fr_before, self.mtimes(&self.fr)),
        )
    }
}

fn set(items: &[&'static str]) -> BTreeSet<&'static str> {
    items.iter().copied().collect()
}

const SHEET: &str = "sample\tfastq\tadapter\nA\tdata/A.fq\tAAA\nB\tdata/B.fq\tCCC\n";

const SHEET_SNAKEFILE: &str = r#"import csv
with open("samples.tsv") as f:
    SAMPLES = {r["sample"]: r for r in csv.DictReader(f, delimiter="\t")}

rule all:
    input: expand("trimmed/{s}.fq", s=sorted(SAMPLES))

rule trim:
    input: lambda w: SAMPLES[w.s]["fastq"]
    output: "trimmed/{s}.fq"
    params: adapter=lambda w: SAMPLES[w.s]["adapter"]
    shell: "echo {params.adapter} | cat - {input} > {output}"
"#;

const SHEET_FLOWFILE: &str = r#"let samples = read_table("samples.tsv");
rule("all", #{ input: expand("trimmed/{s}.fq", #{ s: samples.map(|r| r.sample) }) });
rule("trim", #{
    input: |w| lookup(samples, #{ sample: w.s }, "fastq"),
    output: "trimmed/{s}.fq",
    params: #{ adapter: |w| lookup(samples, #{ sample: w.s }, "adapter") },
    shell: "echo {params.adapter} | cat - {input} > {output}",
});
"#;

#[test]
fn input_and_params_functions_over_a_sample_sheet_rerun_what_snakemake_reruns() {
    let Some(twin) = Twin::new(
        SHEET_SNAKEFILE,
        SHEET_FLOWFILE,
        &[
            ("samples.tsv", SHEET),
            ("data/A.fq", "a\n"),
            ("data/B.fq", "b\n"),
            ("data/C.fq", "c\n"),
        ],
        &["trimmed/A.fq", "trimmed/B.fq", "trimmed/C.fq"],
    ) else {
        return;
    };
    let all = set(&["trimmed/A.fq", "trimmed/B.fq"]);
    assert_eq!(twin.build(), (all.clone(), all));
    assert_eq!(twin.fr.read("trimmed/B.fq"), "CCC\nb\n");
    // A params function gives B another value: both remake B only.
    twin.write("samples.tsv", &SHEET.replace("CCC", "GGG"));
    let b = set(&["trimmed/B.fq"]);
    assert_eq!(twin.build(), (b.clone(), b));
    // A new row: both make the new sample only.
    twin.write(
        "samples.tsv",
        &(SHEET.replace("CCC", "GGG") + "C\tdata/C.fq\tTTT\n"),
    );
    let c = set(&["trimmed/C.fq"]);
    assert_eq!(twin.build(), (c.clone(), c));
    // An input function gives A another file: both remake A only.
    twin.write("data/A2.fq", "a2\n");
    twin.write(
        "samples.tsv",
        &(SHEET
            .replace("CCC", "GGG")
            .replace("data/A.fq", "data/A2.fq")
            + "C\tdata/C.fq\tTTT\n"),
    );
    let a = set(&["trimmed/A.fq"]);
    assert_eq!(twin.build(), (a.clone(), a));
    assert_eq!(twin.fr.read("trimmed/A.fq"), "AAA\na2\n");
}

const DIR_SNAKEFILE: &str = r#"rule all:
    input: "count.txt"

rule split:
    input: "in.txt"
    output: directory("parts")
    shell: "mkdir -p {output} && head -n 4 {input} | split -l 2 - {output}/p_"

rule count:
    input: "parts"
    output: "count.txt"
    shell: "ls {input} | wc -l > {output}; cat {input}/* | wc -l >> {output}"
"#;

const DIR_FLOWFILE: &str = r#"rule("all", #{ input: "count.txt" });
rule("split", #{
    input: "in.txt",
    output: directory("parts"),
    shell: "mkdir -p {output} && head -n 4 {input} | split -l 2 - {output}/p_",
});
rule("count", #{
    input: "parts",
    output: "count.txt",
    shell: "ls {input} | wc -l > {output}; cat {input}/* | wc -l >> {output}",
});
"#;

#[test]
fn a_directory_output_reruns_its_consumer_like_snakemake_and_cuts_off_an_identical_remake() {
    let Some(twin) = Twin::new(
        DIR_SNAKEFILE,
        DIR_FLOWFILE,
        &[("in.txt", "1\n2\n3\n")],
        &["parts", "count.txt"],
    ) else {
        return;
    };
    let all = set(&["parts", "count.txt"]);
    assert_eq!(twin.build(), (all.clone(), all.clone()));
    assert_eq!(twin.fr.read("count.txt"), "2\n3\n");
    // A change that reaches the directory: both remake both.
    twin.write("in.txt", "1\n2\n3\n4\n");
    assert_eq!(twin.build(), (all.clone(), all));
    assert_eq!(twin.fr.read("count.txt"), "2\n4\n");
    // A change that does not (line 5 is not copied): both remake the directory; Snakemake
    // then remakes its consumer too, flowrun sees the same manifest and cuts it off
    // (docs/staleness.md, "Early cutoff").
    twin.write("in.txt", "1\n2\n3\n4\n5\n");
    assert_eq!(
        twin.build(),
        (set(&["parts", "count.txt"]), set(&["parts"]))
    );
}
