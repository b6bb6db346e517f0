//! Model-based property test: random DAGs of shell rules (chains and fan-in, with wildcards and
//! shared inputs), random sequences of edits and runs. After every run:
//!
//! - correctness: every output equals the one a clean run in a fresh copy makes;
//! - minimality (and completeness): the jobs that ran (`Running` lines) are exactly those whose
//!   output was missing, whose command changed, or one of whose inputs now has other content than
//!   when the job last ran (so an upstream job that reran byte-identically runs nothing below).
//!
//! Kept small (16 cases, at most 8 rules, 5 steps) so it runs in seconds.

mod common;
use common::Project;

use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

const SAMPLES: [&str; 2] = ["x", "y"];
const CONTENTS: [&str; 6] = ["1\n", "2\n", "12\n", "21\n", "3\n", "1\n2\n"];
/// Per-sample source kinds (`src/{s}_{i}.txt`) and shared sources (`shared{i}.txt`).
const PER_SAMPLE_SOURCES: usize = 2;
const SHARED_SOURCES: usize = 2;

#[derive(Debug, Clone, Copy)]
enum Input {
    /// A per-sample source (an aggregate rule takes it for every sample).
    Source(usize),
    Shared(usize),
    /// An earlier rule's output(s).
    Rule(usize),
}

#[derive(Debug, Clone)]
struct RuleSpec {
    per_sample: bool,
    inputs: Vec<Input>,
    salt: u8,
    mode: u8,
}

#[derive(Debug, Clone)]
enum Edit {
    /// Rewrite a source file (index over every source path) with CONTENTS[n] (maybe the same).
    SetSource(usize, usize),
    /// Move a source file's mtime without changing it.
    Touch(usize),
    /// Change a rule's command (salt and mode; maybe to the same).
    SetCode(usize, u8, u8),
    /// Delete an output of a job (rule, sample).
    DeleteOutput(usize, usize),
}

#[derive(Debug, Clone)]
struct Case {
    rules: Vec<RuleSpec>,
    sources: Vec<usize>,
    steps: Vec<Vec<Edit>>,
}

fn source_paths() -> Vec<String> {
    let mut v = Vec::new();
    for i in 0..PER_SAMPLE_SOURCES {
        for s in SAMPLES {
            v.push(format!("src/{s}_{i}.txt"));
        }
    }
    for i in 0..SHARED_SOURCES {
        v.push(format!("shared{i}.txt"));
    }
    v
}

fn rule_strategy(k: usize) -> impl Strategy<Value = RuleSpec> {
    let input = prop_oneof![
        (0..PER_SAMPLE_SOURCES).prop_map(Input::Source),
        (0..SHARED_SOURCES).prop_map(Input::Shared),
    ];
    let input = if k == 0 {
        input.boxed()
    } else {
        prop_oneof![1 => input, 3 => (0..k).prop_map(Input::Rule)].boxed()
    };
    (
        any::<bool>(),
        // Mostly rules with inputs; an occasional rule with none.
        prop_oneof![1 => Just(Vec::new()), 6 => proptest::collection::vec(input, 1..=3)],
        0u8..3,
        0u8..4,
    )
        .prop_map(|(per_sample, inputs, salt, mode)| RuleSpec {
            per_sample,
            inputs,
            salt,
            mode,
        })
}

fn case_strategy() -> impl Strategy<Value = Case> {
    (1usize..=8)
        .prop_flat_map(|n| {
            let rules: Vec<_> = (0..n).map(rule_strategy).collect();
            let nsrc = source_paths().len();
            let edit = prop_oneof![
                3 => (0..nsrc, 0..CONTENTS.len()).prop_map(|(i, c)| Edit::SetSource(i, c)),
                1 => (0..nsrc).prop_map(Edit::Touch),
                2 => (0..n, 0u8..3, 0u8..4).prop_map(|(r, s, m)| Edit::SetCode(r, s, m)),
                2 => (0..n, 0..SAMPLES.len()).prop_map(|(r, s)| Edit::DeleteOutput(r, s)),
            ];
            (
                rules,
                proptest::collection::vec(0..CONTENTS.len(), nsrc),
                proptest::collection::vec(proptest::collection::vec(edit, 1..=3), 2..=5),
            )
        })
        .prop_map(|(rules, sources, steps)| Case {
            rules,
            sources,
            steps,
        })
}

/// A job of the model: a rule and, for per-sample rules, a sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct JobKey {
    rule: usize,
    sample: Option<usize>,
}

struct Model {
    rules: Vec<RuleSpec>,
    /// For each job that ran: its command and the content of each input when it last ran.
    last: BTreeMap<JobKey, (String, BTreeMap<String, String>)>,
}

impl Model {
    fn jobs(&self) -> Vec<JobKey> {
        let mut out = Vec::new();
        for (rule, spec) in self.rules.iter().enumerate() {
            if spec.per_sample {
                for s in 0..SAMPLES.len() {
                    out.push(JobKey {
                        rule,
                        sample: Some(s),
                    });
                }
            } else {
                out.push(JobKey { rule, sample: None });
            }
        }
        out
    }

    fn output(&self, job: JobKey) -> String {
        match job.sample {
            Some(s) => format!("r{}/{}.txt", job.rule, SAMPLES[s]),
            None => format!("r{}.txt", job.rule),
        }
    }

    fn label(&self, job: JobKey) -> String {
        match job.sample {
            Some(s) => format!("r{}[s={}]", job.rule, SAMPLES[s]),
            None => format!("r{}", job.rule),
        }
    }

    /// Concrete input paths of a job.
    fn inputs(&self, job: JobKey) -> Vec<String> {
        let samples: Vec<usize> = match job.sample {
            Some(s) => vec![s],
            None => (0..SAMPLES.len()).collect(),
        };
        let mut out = Vec::new();
        for input in &self.rules[job.rule].inputs {
            match *input {
                Input::Shared(i) => out.push(format!("shared{i}.txt")),
                Input::Source(i) => {
                    for &s in &samples {
                        out.push(format!("src/{}_{i}.txt", SAMPLES[s]));
                    }
                }
                Input::Rule(j) => {
                    if self.rules[j].per_sample {
                        for &s in &samples {
                            out.push(format!("r{j}/{}.txt", SAMPLES[s]));
                        }
                    } else {
                        out.push(format!("r{j}.txt"));
                    }
                }
            }
        }
        out
    }

    fn command(&self, rule: usize) -> String {
        let spec = &self.rules[rule];
        let salt = format!("rule{rule}-salt{}", spec.salt);
        if spec.inputs.is_empty() {
            return format!("echo {salt} > {{output}}");
        }
        let body = match spec.mode {
            0 => "cat {input}",
            1 => "cat {input} | wc -c",
            2 => "cat {input} | tr -d 2",
            _ => "cat {input} | sort",
        };
        format!("( echo {salt}; {body} ) > {{output}}")
    }

    /// Input patterns of a rule, as the workflow declares them.
    fn input_patterns(&self, rule: usize) -> Vec<String> {
        let spec = &self.rules[rule];
        let mut out = Vec::new();
        for input in &spec.inputs {
            match *input {
                Input::Shared(i) => out.push(format!("shared{i}.txt")),
                Input::Source(i) if spec.per_sample => out.push(format!("src/{{s}}_{i}.txt")),
                Input::Source(i) => {
                    out.extend(SAMPLES.iter().map(|s| format!("src/{s}_{i}.txt")));
                }
                Input::Rule(j) if self.rules[j].per_sample && spec.per_sample => {
                    out.push(format!("r{j}/{{s}}.txt"))
                }
                Input::Rule(j) if self.rules[j].per_sample => {
                    out.extend(SAMPLES.iter().map(|s| format!("r{j}/{s}.txt")));
                }
                Input::Rule(j) => out.push(format!("r{j}.txt")),
            }
        }
        out
    }

    fn workflow(&self) -> String {
        let quote = |v: &[String]| {
            let items: Vec<String> = v.iter().map(|p| format!("{p:?}")).collect();
            format!("[{}]", items.join(", "))
        };
        let all: Vec<String> = self.jobs().iter().map(|j| self.output(*j)).collect();
        let mut text = format!("rule(\"all\", #{{ input: {} }});\n", quote(&all));
        for rule in 0..self.rules.len() {
            let output = if self.rules[rule].per_sample {
                format!("r{rule}/{{s}}.txt")
            } else {
                format!("r{rule}.txt")
            };
            text.push_str(&format!(
                "rule(\"r{rule}\", #{{ input: {}, output: {output:?}, shell: {:?} }});\n",
                quote(&self.input_patterns(rule)),
                self.command(rule)
            ));
        }
        text
    }
}

fn read(p: &Project, rel: &str) -> Option<String> {
    std::fs::read_to_string(p.path().join(rel)).ok()
}

/// Clean-run results by (workflow, sources), so an unchanged state is not built twice.
type CleanCache = BTreeMap<String, BTreeMap<String, String>>;

/// A clean run of the same workflow and sources in a fresh directory.
fn clean_outputs(p: &Project, model: &Model, cache: &mut CleanCache) -> BTreeMap<String, String> {
    let mut key = p.read("wf.rhai");
    for s in source_paths() {
        key.push_str(&format!("\0{s}\0{}", p.read(&s)));
    }
    if let Some(hit) = cache.get(&key) {
        return hit.clone();
    }
    let fresh = Project::new();
    fresh.file("wf.rhai", &p.read("wf.rhai"));
    for s in source_paths() {
        fresh.file(&s, &p.read(&s));
    }
    fresh.run(&["wf.rhai", "-q"]).code(0);
    let outputs: BTreeMap<String, String> = model
        .jobs()
        .iter()
        .map(|j| {
            let out = model.output(*j);
            let text = fresh.read(&out);
            (out, text)
        })
        .collect();
    cache.insert(key, outputs.clone());
    outputs
}

fn check_run(
    p: &Project,
    model: &mut Model,
    cache: &mut CleanCache,
    missing_before: &BTreeSet<JobKey>,
    step: usize,
) {
    let run = p.run(&["wf.rhai", "-j", "2"]).code(0);
    let ran: BTreeSet<String> = run.ran().into_iter().filter(|j| j != "all").collect();
    assert_eq!(
        ran.len(),
        run.ran().iter().filter(|j| *j != "all").count(),
        "a job ran twice\n{}",
        run.stderr
    );
    let mut expected = BTreeSet::new();
    let mut why = Vec::new();
    for job in model.jobs() {
        let code = model.command(job.rule);
        let reason = match model.last.get(&job) {
            None => Some("never ran".to_string()),
            Some(_) if missing_before.contains(&job) => Some("output deleted".to_string()),
            Some((old, _)) if *old != code => Some("code changed".to_string()),
            Some((_, consumed)) => model
                .inputs(job)
                .into_iter()
                .find(|i| consumed.get(i) != read(p, i).as_ref())
                .map(|i| format!("input {i} changed")),
        };
        if let Some(r) = reason {
            why.push(format!("{}: {r}", model.label(job)));
            expected.insert(model.label(job));
        }
    }
    assert_eq!(
        ran,
        expected,
        "step {step}: the jobs that ran differ from the model\nmodel: {why:?}\n--- workflow\n{}\n--- stderr\n{}",
        p.read("wf.rhai"),
        run.stderr
    );
    for job in model.jobs() {
        if ran.contains(&model.label(job)) {
            let consumed = model
                .inputs(job)
                .into_iter()
                .map(|i| {
                    let text = read(p, &i).unwrap_or_default();
                    (i, text)
                })
                .collect();
            model.last.insert(job, (model.command(job.rule), consumed));
        }
    }
    let clean = clean_outputs(p, model, cache);
    for (path, text) in clean {
        assert_eq!(
            read(p, &path).as_deref(),
            Some(text.as_str()),
            "step {step}: `{path}` differs from a clean run\n--- workflow\n{}\n--- stderr\n{}",
            p.read("wf.rhai"),
            run.stderr
        );
    }
}

fn run_case(case: Case) {
    let p = Project::new();
    let sources = source_paths();
    for (path, c) in sources.iter().zip(&case.sources) {
        p.file(path, CONTENTS[*c]);
    }
    let mut model = Model {
        rules: case.rules.clone(),
        last: BTreeMap::new(),
    };
    p.file("wf.rhai", &model.workflow());
    let mut cache = CleanCache::new();
    let none = BTreeSet::new();
    check_run(&p, &mut model, &mut cache, &none, 0);
    for (step, edits) in case.steps.iter().enumerate() {
        let mut deleted = BTreeSet::new();
        for edit in edits {
            match *edit {
                Edit::SetSource(i, c) => {
                    p.file(&sources[i], CONTENTS[c]);
                }
                Edit::Touch(i) => {
                    p.set_mtime(
                        &sources[i],
                        std::time::SystemTime::now() + std::time::Duration::from_secs(1),
                    );
                }
                Edit::SetCode(r, salt, mode) => {
                    model.rules[r].salt = salt;
                    model.rules[r].mode = mode;
                    p.file("wf.rhai", &model.workflow());
                }
                Edit::DeleteOutput(r, s) => {
                    let job = JobKey {
                        rule: r,
                        sample: model.rules[r].per_sample.then_some(s),
                    };
                    let out = model.output(job);
                    if p.exists(&out) {
                        p.remove(&out);
                        deleted.insert(job);
                    }
                }
            }
        }
        check_run(&p, &mut model, &mut cache, &deleted, step + 1);
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 16,
        max_shrink_iters: 64,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn incremental_runs_match_clean_runs_and_rerun_only_what_changed(case in case_strategy()) {
        run_case(case);
    }
}
