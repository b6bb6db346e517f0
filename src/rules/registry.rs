//! Validated rules: patterns compiled, templates checked, names unique, and an index from output
//! patterns to rules so the DAG can ask "who makes this path?" cheaply.
//!
//! Every problem found here is a [`Diagnostic`] pointing at the `rule(...)` call, and all of them
//! are reported together rather than one per run.

use rustc_hash::FxHashMap as HashMap;
use std::collections::BTreeMap;

use crate::diagnostic::{did_you_mean, Diagnostic, Origin};
use crate::rules::decl::{
    ClosureId, FileDecl, FileKind, MapReduceDecl, Model, ModelKind, RuleDecl, WorkDecl,
};
use crate::rules::pattern::{Pattern, Wildcards};
use crate::rules::template::{Names, Template};

/// Index of a rule in declaration order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RuleId(pub u32);

/// A compiled input, output or log.
#[derive(Debug, Clone)]
pub struct File {
    pub name: Option<String>,
    pub pattern: Pattern,
    pub kind: FileKind,
}

/// What a rule's jobs run.
#[derive(Debug, Clone)]
pub enum Work {
    Nothing,
    Shell(Template),
    Run(ClosureId),
    MapReduce(MapReduceDecl),
}

/// A validated rule.
#[derive(Debug, Clone)]
pub struct Rule {
    pub id: RuleId,
    pub name: String,
    pub inputs: Vec<File>,
    pub outputs: Vec<File>,
    pub logs: Vec<File>,
    pub params: serde_json::Map<String, serde_json::Value>,
    pub work: Work,
    pub code: String,
    pub model: Model,
    pub priority: i64,
    pub resources: BTreeMap<String, u64>,
    /// Cluster settings given as text in `resources` (partition, account...).
    pub cluster: BTreeMap<String, String>,
    /// `local: true`: runs on this machine even under a cluster executor.
    pub local: bool,
    pub retries: u32,
    /// `timeout`: how long a job may run before it is stopped.
    pub timeout: Option<std::time::Duration>,
    /// `allow_outside`: outputs and logs may lie outside the working directory.
    pub allow_outside: bool,
    /// `cache`: jobs go through the result cache when one is given (`--cache-dir`).
    pub cache: bool,
    pub origin: Option<Origin>,
}

impl Rule {
    /// Whether any output has wildcards (such a rule cannot be a target by name).
    pub fn has_wildcards(&self) -> bool {
        self.outputs.iter().any(|o| o.pattern.has_wildcards())
    }
}

/// All rules of a workflow, with the output index.
#[derive(Debug)]
pub struct Rules {
    rules: Vec<Rule>,
    by_name: HashMap<String, RuleId>,
    literal_outputs: HashMap<String, Vec<RuleId>>,
    pattern_outputs: Vec<(RuleId, usize)>,
}

fn compile_files(
    rule: &RuleDecl,
    what: &str,
    decls: &[FileDecl],
    constraints: &BTreeMap<String, String>,
    errors: &mut Vec<Diagnostic>,
) -> Vec<File> {
    decls
        .iter()
        .filter_map(|d| match Pattern::parse(&d.path, constraints) {
            Ok(pattern) => Some(File {
                name: d.name.clone(),
                pattern,
                kind: d.kind,
            }),
            Err(e) => {
                errors.push(
                    Diagnostic::new(format!("rule `{}`: {what}: {e}", rule.name))
                        .at(rule.origin.clone()),
                );
                None
            }
        })
        .collect()
}

fn file_names(files: &[File]) -> Vec<Option<&str>> {
    files.iter().map(|f| f.name.as_deref()).collect()
}

fn compile_rule(
    id: RuleId,
    decl: RuleDecl,
    global: &BTreeMap<String, String>,
    errors: &mut Vec<Diagnostic>,
) -> Option<Rule> {
    let before = errors.len();
    let err = |msg: String| {
        Diagnostic::new(format!("rule `{}`: {msg}", decl.name)).at(decl.origin.clone())
    };
    let mut constraints = global.clone();
    constraints.extend(decl.wildcard_constraints.clone());
    let inputs = compile_files(&decl, "input", &decl.inputs, &constraints, errors);
    let outputs = compile_files(&decl, "output", &decl.outputs, &constraints, errors);
    let logs = compile_files(&decl, "log", &decl.logs, &constraints, errors);

    let wildcards: Vec<&str> = outputs
        .first()
        .map(|o| o.pattern.wildcard_names())
        .unwrap_or_default();
    let mut sorted = wildcards.clone();
    sorted.sort_unstable();
    for o in outputs.iter().skip(1) {
        let mut other = o.pattern.wildcard_names();
        other.sort_unstable();
        if other != sorted {
            errors.push(err(format!(
                "every output must have the same wildcards, but `{}` has {{{}}} and `{}` has {{{}}}",
                outputs[0].pattern,
                sorted.join("}, {"),
                o.pattern,
                other.join("}, {")
            )));
        }
    }
    for (what, files) in [("input", &inputs), ("log", &logs)] {
        for f in files {
            for name in f.pattern.wildcard_names() {
                if !wildcards.contains(&name) {
                    let mut msg = format!(
                        "{what} `{}` uses wildcard `{{{name}}}`, which no output of the rule defines",
                        f.pattern
                    );
                    if wildcards.is_empty() {
                        msg.push_str(" (the rule has no wildcards in its outputs)");
                    }
                    let mut d = err(msg);
                    if let Some(h) = did_you_mean(name, wildcards.iter().copied()) {
                        d = d.hint(h);
                    }
                    errors.push(d);
                }
            }
        }
    }
    for f in inputs.iter().chain(&outputs).chain(&logs) {
        if let Some(msg) = crate::rules::pattern::path_too_long(f.pattern.as_str()) {
            errors.push(err(msg));
        }
    }
    if !decl.allow_outside {
        for (what, files) in [("output", &outputs), ("log", &logs)] {
            for f in files {
                if let Some(how) = crate::rules::pattern::outside_workdir(f.pattern.as_str()) {
                    errors.push(
                        err(format!(
                            "{what} `{}` {how}; flowrun writes only inside the working directory",
                            f.pattern
                        ))
                        .hint("write it inside the working directory, or allow this rule to write outside it with `allow_outside: true`"),
                    );
                }
            }
        }
    }
    let kind = decl.model.kind;
    let model_fits = match &decl.work {
        WorkDecl::MapReduce(_) => true,
        WorkDecl::Shell(_) => matches!(kind, ModelKind::Thread | ModelKind::Mpi),
        WorkDecl::Run(_) | WorkDecl::Nothing => kind == ModelKind::Thread,
    };
    if !model_fits {
        errors.push(err(format!(
            "`model: \"{}\"` applies to map/reduce rules (`map` and `finish`), and `mpi` also to `shell` rules",
            kind.name()
        )));
    }
    if kind == ModelKind::Chunked && inputs.is_empty() {
        errors.push(err(
            "the `chunked` model reads its first input in chunks, but the rule has no input".into(),
        ));
    }
    let work = match &decl.work {
        WorkDecl::Nothing => Work::Nothing,
        WorkDecl::Run(c) => Work::Run(*c),
        WorkDecl::MapReduce(mr) => Work::MapReduce(mr.clone()),
        WorkDecl::Shell(text) => match Template::parse(text) {
            Ok(t) => {
                let names = Names {
                    input: file_names(&inputs),
                    output: file_names(&outputs),
                    log: file_names(&logs),
                    params: decl.params.keys().map(String::as_str).collect(),
                    wildcards: wildcards.clone(),
                    resources: decl.resources.keys().map(String::as_str).collect(),
                };
                if let Err(e) = t.check(&names) {
                    errors.push(err(format!("shell: {e}")));
                }
                Work::Shell(t)
            }
            Err(e) => {
                errors.push(err(format!("shell: {e}")));
                Work::Nothing
            }
        },
    };
    if errors.len() > before {
        return None;
    }
    Some(Rule {
        id,
        name: decl.name,
        inputs,
        outputs,
        logs,
        params: decl.params,
        work,
        code: decl.code,
        model: decl.model,
        priority: decl.priority,
        resources: decl.resources,
        cluster: decl.cluster,
        local: decl.local,
        retries: decl.retries,
        timeout: decl.timeout.map(std::time::Duration::from_secs_f64),
        allow_outside: decl.allow_outside,
        cache: decl.cache,
        origin: decl.origin,
    })
}

impl Rules {
    /// Validates declared rules; `global` holds workflow-wide wildcard constraints.
    pub fn build(
        decls: Vec<RuleDecl>,
        global: &BTreeMap<String, String>,
    ) -> Result<Self, Vec<Diagnostic>> {
        let mut errors = Vec::new();
        let mut by_name = HashMap::default();
        let mut rules = Vec::with_capacity(decls.len());
        for decl in decls {
            if let Some(&RuleId(first)) = by_name.get(&decl.name) {
                let first: &Rule = &rules[first as usize];
                let at = first
                    .origin
                    .as_ref()
                    .map(|o| format!(" (first declared at {o})"))
                    .unwrap_or_default();
                errors.push(
                    Diagnostic::new(format!("rule `{}` is declared twice{at}", decl.name))
                        .at(decl.origin.clone())
                        .hint("give each rule its own name; rule files can take a prefix"),
                );
                continue;
            }
            let id = RuleId(rules.len() as u32);
            if let Some(rule) = compile_rule(id, decl, global, &mut errors) {
                by_name.insert(rule.name.clone(), id);
                rules.push(rule);
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let mut literal_outputs: HashMap<String, Vec<RuleId>> = HashMap::default();
        let mut pattern_outputs = Vec::new();
        for rule in &rules {
            for (i, out) in rule.outputs.iter().enumerate() {
                if out.pattern.has_wildcards() {
                    pattern_outputs.push((rule.id, i));
                } else {
                    let path = out.pattern.format(&Wildcards::new()).unwrap_or_default();
                    literal_outputs.entry(path).or_default().push(rule.id);
                }
            }
        }
        Ok(Self {
            rules,
            by_name,
            literal_outputs,
            pattern_outputs,
        })
    }

    /// Every rule, in declaration order.
    pub fn iter(&self) -> impl Iterator<Item = &Rule> {
        self.rules.iter()
    }

    /// Looks up a rule.
    pub fn get(&self, id: RuleId) -> &Rule {
        &self.rules[id.0 as usize]
    }

    /// Finds a rule by name.
    pub fn by_name(&self, name: &str) -> Option<&Rule> {
        self.by_name.get(name).map(|id| self.get(*id))
    }

    /// The default target: rule `all` if present, else the first rule.
    pub fn default_target(&self) -> Option<&Rule> {
        self.by_name("all").or_else(|| self.rules.first())
    }

    /// Rules that can make `path`, with the wildcards each would bind, in declaration order.
    pub fn producers(&self, path: &str) -> Vec<(RuleId, Wildcards)> {
        let mut found: Vec<(RuleId, Wildcards)> = Vec::new();
        if let Some(ids) = self.literal_outputs.get(path) {
            found.extend(ids.iter().map(|id| (*id, Wildcards::new())));
        }
        for (id, i) in &self.pattern_outputs {
            if found.iter().any(|(f, _)| f == id) {
                continue;
            }
            if let Some(w) = self.get(*id).outputs[*i].pattern.matches(path) {
                found.push((*id, w));
            }
        }
        found.sort_by_key(|(id, _)| *id);
        found
    }

    /// How many rules there are.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Whether the workflow declares no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}
