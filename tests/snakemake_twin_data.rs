//! Data-driven workflows against Snakemake twins (issue 13): the same input functions over a
//! sample sheet, the same `directory()` output, Snakemake's documented checkpoint example, a
//! chain of two checkpoints and an aggregate over none, each written once as a Snakefile and once as a
//! Rhai workflow, built, edited the same way and rebuilt with the real `snakemake` and the real
//! `flowrun`. Each test asserts the same final files, and which outputs each tool remade
//! (found from their modification times, so neither tool's log format matters); where the two
//! differ, the test asserts the difference `docs/staleness.md` documents.
//!
//! Snakemake comes from `target/pyenv` (made by `scripts/setup.sh`); without it every test here
//! is skipped with a loud message.

mod common;
use common::{snakemake, Project};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;
use std::time::SystemTime;

/// A workflow written for both tools, in two directories with the same data.
struct Twin {
    snakemake: PathBuf,
    smk: Project,
    fr: Project,
    /// The outputs compared between the two.
    outputs: Vec<&'static str>,
    /// Outputs of jobs a checkpoint no longer leads to: Snakemake leaves them, flowrun
    /// removes them (docs/staleness.md).
    dropped: std::cell::RefCell<BTreeSet<&'static str>>,
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
            dropped: Default::default(),
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

    /// Says that the next builds drop the jobs of `outputs`.
    fn drop_outputs(&self, outputs: &[&'static str]) {
        self.dropped.borrow_mut().extend(outputs);
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
            if self.dropped.borrow().contains(o) {
                assert!(
                    a && !b,
                    "{o}: Snakemake keeps it: {a}; flowrun removed it: {}",
                    !b
                );
                continue;
            }
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

const FILES_SNAKEFILE: &str = r#"rule all:
    input: expand("out/{s}.bam", s=["A", "B"])

rule map:
    input: reads="data/{s}.fq"
    output: bam="out/{s}.bam"
    params:
        prefix=lambda wildcards, output: output[0][:-4],
        both=lambda wildcards, input, output: input.reads + ":" + output.bam
    shell: "echo {params.prefix} {params.both} > {output}"
"#;

const FILES_FLOWFILE: &str = r#"rule("all", #{ input: expand("out/{s}.bam", #{ s: ["A", "B"] }) });
rule("map", #{
    input: #{ reads: "data/{s}.fq" },
    output: #{ bam: "out/{s}.bam" },
    params: #{
        prefix: |w, output| output[0].sub_string(0, output[0].len - 4),
        both: |w, input, output| input.reads + ":" + output.bam,
    },
    shell: "echo {params.prefix} {params.both} > {output}",
});
"#;

#[test]
fn params_functions_of_the_job_s_files_give_what_snakemake_s_give() {
    let Some(twin) = Twin::new(
        FILES_SNAKEFILE,
        FILES_FLOWFILE,
        &[("data/A.fq", "a\n"), ("data/B.fq", "b\n")],
        &["out/A.bam", "out/B.bam"],
    ) else {
        return;
    };
    let all = set(&["out/A.bam", "out/B.bam"]);
    assert_eq!(twin.build(), (all.clone(), all));
    assert_eq!(twin.fr.read("out/B.bam"), "out/B data/B.fq:out/B.bam\n");
    assert_eq!(twin.build(), (set(&[]), set(&[])));
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

/// Snakemake's documented checkpoint example (clustering, then an aggregate over the clusters),
/// with the number of clusters taken from each sample's file, and the clusters gathered in
/// sorted order (Snakemake's `glob_wildcards` lists in directory order).
const CLUSTER_SNAKEFILE: &str = r#"import os

rule all:
    input: "aggregated/a.txt", "aggregated/b.txt"

checkpoint clustering:
    input: "samples/{sample}.txt"
    output: clusters=directory("clustering/{sample}")
    shell: "mkdir clustering/{wildcards.sample}; for i in $(cat {input}); do echo $i > clustering/{wildcards.sample}/$i.txt; done"

rule intermediate:
    input: "clustering/{sample}/{i}.txt"
    output: "post/{sample}/{i}.txt"
    shell: "cp {input} {output}"

def aggregate_input(wildcards):
    checkpoint_output = checkpoints.clustering.get(**wildcards).output[0]
    # sorted(): Snakemake lists in directory order, flowrun's glob_wildcards sorts.
    return expand("post/{sample}/{i}.txt", sample=wildcards.sample,
                  i=sorted(glob_wildcards(os.path.join(checkpoint_output, "{i}.txt")).i))

rule aggregate:
    input: aggregate_input
    output: "aggregated/{sample}.txt"
    shell: "cat /dev/null {input} > {output}"
"#;

const CLUSTER_FLOWFILE: &str = r#"rule("all", #{ input: ["aggregated/a.txt", "aggregated/b.txt"] });
rule("clustering", #{
    input: "samples/{sample}.txt",
    output: #{ clusters: directory("clustering/{sample}") },
    checkpoint: true,
    shell: "mkdir clustering/{wildcards.sample}; for i in $(cat {input}); do echo $i > clustering/{wildcards.sample}/$i.txt; done",
});
rule("intermediate", #{ input: "clustering/{sample}/{i}.txt", output: "post/{sample}/{i}.txt", shell: "cp {input} {output}" });
rule("aggregate", #{
    input: |w| {
        let out = checkpoint_output("clustering", w);
        expand("post/{sample}/{i}.txt", #{ sample: w.sample, i: glob_wildcards(out + "/{i}.txt").i })
    },
    output: "aggregated/{sample}.txt",
    shell: "cat /dev/null {input} > {output}",
});
"#;

#[test]
fn snakemake_s_clustering_example_gives_the_same_files_and_reruns_the_same_jobs() {
    let Some(twin) = Twin::new(
        CLUSTER_SNAKEFILE,
        CLUSTER_FLOWFILE,
        &[("samples/a.txt", "1 2 3\n"), ("samples/b.txt", "\n")],
        &[
            "aggregated/a.txt",
            "aggregated/b.txt",
            "post/a/1.txt",
            "post/a/2.txt",
            "post/a/3.txt",
            "post/a/4.txt",
        ],
    ) else {
        return;
    };
    // Sample b has no cluster at all: its aggregate gathers nothing.
    let first = set(&[
        "aggregated/a.txt",
        "aggregated/b.txt",
        "post/a/1.txt",
        "post/a/2.txt",
        "post/a/3.txt",
    ]);
    assert_eq!(twin.build(), (first.clone(), first));
    assert_eq!(twin.fr.read("aggregated/a.txt"), "1\n2\n3\n");
    assert_eq!(twin.fr.read("aggregated/b.txt"), "");
    // One cluster more: both make the new cluster's file and the aggregate; the others, remade
    // identical by the checkpoint, are left alone by both.
    twin.write("samples/a.txt", "1 2 3 4\n");
    let new = set(&["aggregated/a.txt", "post/a/4.txt"]);
    assert_eq!(twin.build(), (new.clone(), new));
    assert_eq!(twin.fr.read("aggregated/a.txt"), "1\n2\n3\n4\n");
    // One cluster fewer: both remake the aggregate only; flowrun removes the dropped
    // cluster's file, which Snakemake leaves.
    twin.write("samples/a.txt", "1 2 4\n");
    twin.drop_outputs(&["post/a/3.txt"]);
    let agg = set(&["aggregated/a.txt"]);
    assert_eq!(twin.build(), (agg.clone(), agg));
    // Nothing changed: neither tool does anything.
    assert_eq!(twin.build(), (set(&[]), set(&[])));
}

const CHAIN_SNAKEFILE: &str = r#"rule all:
    input: "total.txt"

checkpoint split:
    input: "in.txt"
    output: directory("parts")
    shell: "mkdir -p {output} && split -l 3 {input} {output}/p_"

checkpoint explode:
    input: "parts/p_{i}"
    output: directory("lines/{i}")
    shell: "mkdir -p {output} && split -l 1 {input} {output}/l_"

rule square:
    input: "lines/{i}/l_{j}"
    output: "sq/{i}/{j}.txt"
    shell: "awk '{{print $1*$1}}' {input} > {output}"

def squares(w):
    d = checkpoints.explode.get(i=w.i).output[0]
    return expand("sq/{i}/{j}.txt", i=w.i, j=sorted(glob_wildcards(d + "/l_{j}").j))

rule per_part:
    input: squares
    output: "part_sum/{i}.txt"
    shell: "cat /dev/null {input} | awk '{{s+=$1}} END {{print s+0}}' > {output}"

def parts(w):
    d = checkpoints.split.get().output[0]
    return expand("part_sum/{i}.txt", i=sorted(glob_wildcards(d + "/p_{i}").i))

rule total:
    input: parts
    output: "total.txt"
    shell: "cat /dev/null {input} | awk '{{s+=$1}} END {{print s+0}}' > {output}"
"#;

const CHAIN_FLOWFILE: &str = r#"rule("all", #{ input: "total.txt" });
rule("split", #{ input: "in.txt", output: directory("parts"), checkpoint: true,
    shell: "mkdir -p {output} && split -l 3 {input} {output}/p_" });
rule("explode", #{ input: "parts/p_{i}", output: directory("lines/{i}"), checkpoint: true,
    shell: "mkdir -p {output} && split -l 1 {input} {output}/l_" });
rule("square", #{ input: "lines/{i}/l_{j}", output: "sq/{i}/{j}.txt", shell: "awk '{{print $1*$1}}' {input} > {output}" });
rule("per_part", #{
    input: |w| {
        let d = checkpoint_output("explode", w);
        expand("sq/{i}/{j}.txt", #{ i: w.i, j: glob_wildcards(d + "/l_{j}").j })
    },
    output: "part_sum/{i}.txt",
    shell: "cat /dev/null {input} | awk '{{s+=$1}} END {{print s+0}}' > {output}",
});
rule("total", #{
    input: |w| {
        let d = checkpoint_output("split", w);
        expand("part_sum/{i}.txt", #{ i: glob_wildcards(d + "/p_{i}").i })
    },
    output: "total.txt",
    shell: "cat /dev/null {input} | awk '{{s+=$1}} END {{print s+0}}' > {output}",
});
"#;

#[test]
fn a_chain_of_two_checkpoints_and_an_aggregate_over_zero_files_match_snakemake() {
    let numbers: String = (1..=7).map(|i| format!("{i}\n")).collect();
    let Some(twin) = Twin::new(
        CHAIN_SNAKEFILE,
        CHAIN_FLOWFILE,
        &[("in.txt", &numbers)],
        &[
            "total.txt",
            "part_sum/aa.txt",
            "part_sum/ab.txt",
            "part_sum/ac.txt",
            "sq/ac/aa.txt",
        ],
    ) else {
        return;
    };
    let all = set(&[
        "total.txt",
        "part_sum/aa.txt",
        "part_sum/ab.txt",
        "part_sum/ac.txt",
        "sq/ac/aa.txt",
    ]);
    assert_eq!(twin.build(), (all.clone(), all));
    assert_eq!(twin.fr.read("total.txt"), "140\n");
    // The input emptied: the first checkpoint makes no part, the total sums nothing; flowrun
    // removes what the parts' jobs made, which Snakemake leaves.
    twin.write("in.txt", "");
    twin.drop_outputs(&[
        "part_sum/aa.txt",
        "part_sum/ab.txt",
        "part_sum/ac.txt",
        "sq/ac/aa.txt",
    ]);
    let total = set(&["total.txt"]);
    assert_eq!(twin.build(), (total.clone(), total));
    assert_eq!(twin.fr.read("total.txt"), "0\n");
}
