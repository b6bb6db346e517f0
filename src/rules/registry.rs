//! Validated rules: patterns compiled, templates checked, names unique, and an index from output
//! patterns to rules so the DAG can ask "who makes this path?" cheaply.
//!
//! Every problem found here is a [`Diagnostic`] pointing at the `rule(...)` call, and all of them
//! are reported together rather than one per run.

use rustc_hash::FxHashMap as HashMap;
use std::collections::BTreeMap;

use crate::diagnostic::{did_you_mean, Diagnostic, Origin};
use crate::rules::decl::{
    ClosureId, FileDecl, FileKind, MapReduceDecl, Model, ModelKind, ReportMark, RuleDecl, WorkDecl,
};
use crate::rules::function::RuleFunctions;
use crate::rules::pattern::{Pattern, Wildcards};
use crate::rules::script::ScriptDecl;
use crate::rules::software::Software;
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
    /// `rules("b").output` as an input: only rule `b` may make it.
    pub from_rule: Option<RuleId>,
    /// Declared with `directory()`.
    pub directory: bool,
    /// `report(...)`: shown in the HTML report.
    pub report: Option<ReportMark>,
}

/// What a rule's jobs run.
#[derive(Debug, Clone)]
pub enum Work {
    Nothing,
    Shell(Template),
    Run(ClosureId),
    MapReduce(MapReduceDecl),
    Script(ScriptDecl),
}

/// A validated rule.
#[derive(Debug, Clone)]
pub struct Rule {
    pub id: RuleId,
    pub name: String,
    pub inputs: Vec<File>,
    pub outputs: Vec<File>,
    pub logs: Vec<File>,
    /// `benchmark`: at most one file for the job's resource figures.
    pub benchmark: Vec<File>,
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
    /// `message`: printed when a job starts, with the job's placeholders filled in.
    pub message: Option<Template>,
    /// `default_target: true`.
    pub default_target: bool,
    /// Declared in an imported rule file: never the default target by position.
    pub imported: bool,
    /// `cache`: jobs go through the result cache when one is given (`--cache-dir`).
    pub cache: bool,
    /// `env` and `software`: what the jobs run with.
    pub software: Software,
    pub origin: Option<Origin>,
    /// Keys given as functions of the wildcards.
    pub functions: RuleFunctions,
    /// `checkpoint: true`: what it makes decides the jobs after it (`checkpoint_output`).
    pub checkpoint: bool,
}

impl Rule {
    /// What a job of the rule makes: its outputs, then its logs.
    pub fn products(&self) -> impl Iterator<Item = &File> {
        self.outputs.iter().chain(&self.logs)
    }

    /// Whether any output has wildcards (such a rule cannot be a target by name).
    pub fn has_wildcards(&self) -> bool {
        self.outputs.iter().any(|o| o.pattern.has_wildcards())
    }

    /// The files the rule's declaration read when the workflow loaded: its `script` (whose
    /// text is the rule's code) and its `software` file (whose hash names the environment).
    pub fn declared_files(&self) -> impl Iterator<Item = &str> {
        let script = match &self.work {
            Work::Script(s) => Some(s.path.as_str()),
            _ => None,
        };
        let software = self.software.python.as_ref().map(|p| p.file.as_str());
        script.into_iter().chain(software)
    }
}

/// All rules of a workflow, with the output index.
#[derive(Debug)]
pub struct Rules {
    rules: Vec<Rule>,
    by_name: HashMap<String, RuleId>,
    literal_outputs: HashMap<String, Vec<RuleId>>,
    pattern_outputs: Vec<(RuleId, usize)>,
    /// `rule_order` clauses, each from most to least preferred; later clauses win.
    order: Vec<Vec<RuleId>>,
}

fn compile_files(
    rule: &RuleDecl,
    what: &str,
    decls: &[FileDecl],
    constraints: &BTreeMap<String, String>,
    by_name: &HashMap<String, RuleId>,
    errors: &mut Vec<Diagnostic>,
) -> Vec<File> {
    decls
        .iter()
        .filter_map(|d| match Pattern::parse(&d.path, constraints) {
            Ok(pattern) => Some(File {
                name: d.name.clone(),
                pattern,
                kind: d.kind,
                // `rules(name)` only sees rules declared (and so validated) before.
                from_rule: d.from_rule.as_ref().and_then(|r| by_name.get(r).copied()),
                directory: d.directory,
                report: d.report.clone(),
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
    by_name: &HashMap<String, RuleId>,
    errors: &mut Vec<Diagnostic>,
) -> Option<Rule> {
    let before = errors.len();
    let err = |msg: String| {
        Diagnostic::new(format!("rule `{}`: {msg}", decl.name)).at(decl.origin.clone())
    };
    let mut constraints = global.clone();
    constraints.extend(decl.wildcard_constraints.clone());
    let inputs = compile_files(&decl, "input", &decl.inputs, &constraints, by_name, errors);
    // A wildcard of a `directory()` output stays within one path component unless constrained
    // otherwise: `chunks/{s}` must not claim `chunks/A/part_1`, a file inside `chunks/A`.
    let mut output_constraints = constraints.clone();
    for d in decl.outputs.iter().filter(|d| d.directory) {
        if let Ok(p) = Pattern::parse(&d.path, &constraints) {
            for name in p.wildcard_names() {
                output_constraints
                    .entry(name.to_string())
                    .or_insert_with(|| "[^/]+".to_string());
            }
        }
    }
    let outputs = compile_files(
        &decl,
        "output",
        &decl.outputs,
        &output_constraints,
        by_name,
        errors,
    );
    let logs = compile_files(&decl, "log", &decl.logs, &constraints, by_name, errors);
    let benchmark = compile_files(
        &decl,
        "benchmark",
        &decl.benchmark,
        &constraints,
        by_name,
        errors,
    );

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
    for (what, files) in [
        ("input", &inputs),
        ("log", &logs),
        ("benchmark", &benchmark),
    ] {
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
    let misplaced = |f: &File, what: &str| match (f.kind, what) {
        (FileKind::Touch, "input" | "log") => Some("`touch()` marks outputs"),
        (FileKind::Ancient, "output" | "log") => Some("`ancient()` marks inputs"),
        _ if f.report.is_some() && what != "output" => Some("`report()` marks outputs"),
        _ => None,
    };
    for (what, files) in [
        ("input", &inputs),
        ("output", &outputs),
        ("log", &logs),
        ("benchmark", &benchmark),
    ] {
        for f in files {
            if let Some(why) = misplaced(f, what) {
                errors.push(err(format!("{what} `{}`: {why}", f.pattern)));
            }
        }
    }
    let mut made: Vec<&str> = Vec::new();
    for f in outputs.iter().chain(&logs) {
        let path = f.pattern.as_str();
        if made.contains(&path) {
            errors.push(err(format!(
                "`{path}` is listed twice among the outputs and logs; a rule makes each file once"
            )));
        }
        made.push(path);
    }
    for f in inputs.iter().chain(&outputs).chain(&logs).chain(&benchmark) {
        if let Some(msg) = crate::rules::pattern::path_too_long(f.pattern.as_str()) {
            errors.push(err(msg));
        }
    }
    if !decl.allow_outside {
        for (what, files) in [
            ("output", &outputs),
            ("log", &logs),
            ("benchmark", &benchmark),
        ] {
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
    let in_process = !matches!(decl.work, WorkDecl::Shell(_) | WorkDecl::Script(_));
    if !decl.software.is_empty() && in_process {
        errors.push(err(
            "`env` and `software` apply to the commands and scripts a job starts: give them to a `shell` or `script` rule".into(),
        ));
    }
    let kind = decl.model.kind;
    let model_fits = match &decl.work {
        WorkDecl::MapReduce(_) => true,
        WorkDecl::Shell(_) => matches!(kind, ModelKind::Thread | ModelKind::Mpi),
        WorkDecl::Run(_) | WorkDecl::Nothing | WorkDecl::Script(_) => kind == ModelKind::Thread,
    };
    if !model_fits {
        errors.push(err(format!(
            "`model: \"{}\"` applies to map/reduce rules (`map` and `finish`), and `mpi` also to `shell` rules",
            kind.name()
        )));
    }
    if kind == ModelKind::Chunked && inputs.is_empty() && decl.functions.input.is_empty() {
        errors.push(err(
            "the `chunked` model reads its first input in chunks, but the rule has no input".into(),
        ));
    }
    let fns = &decl.functions;
    let names = Names {
        input: file_names(&inputs)
            .into_iter()
            .chain(fns.input.iter().map(|f| f.name.as_deref()))
            .collect(),
        output: file_names(&outputs),
        log: file_names(&logs)
            .into_iter()
            .chain(fns.log.iter().map(|f| f.name.as_deref()))
            .collect(),
        params: decl
            .params
            .keys()
            .map(String::as_str)
            .chain(fns.params.entries.iter().map(|(k, _)| k.as_str()))
            .collect(),
        wildcards: wildcards.clone(),
        resources: decl
            .resources
            .keys()
            .map(String::as_str)
            .chain(fns.resources.entries.iter().map(|(k, _)| k.as_str()))
            .collect(),
        per_job: fns.per_job_sections(),
    };
    let mut template = |what: &str, text: &str| match Template::parse(text)
        .and_then(|t| t.check(&names).map(|()| t))
    {
        Ok(t) => Some(t),
        Err(e) => {
            errors.push(err(format!("{what}: {e}")));
            None
        }
    };
    let message = decl.message.as_deref().and_then(|m| template("message", m));
    let work = match &decl.work {
        WorkDecl::Nothing => Work::Nothing,
        WorkDecl::Run(c) => Work::Run(*c),
        WorkDecl::MapReduce(mr) => Work::MapReduce(mr.clone()),
        WorkDecl::Script(s) => Work::Script(s.clone()),
        WorkDecl::Shell(text) => template("shell", text).map_or(Work::Nothing, Work::Shell),
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
        benchmark,
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
        message,
        default_target: decl.default_target,
        imported: decl.imported,
        cache: decl.cache,
        software: decl.software,
        origin: decl.origin,
        functions: decl.functions,
        checkpoint: decl.checkpoint,
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
            if let Some(rule) = compile_rule(id, decl, global, &by_name, &mut errors) {
                by_name.insert(rule.name.clone(), id);
                rules.push(rule);
            }
        }
        let defaults: Vec<&Rule> = rules.iter().filter(|r| r.default_target).collect();
        if let [first, second, ..] = defaults[..] {
            errors.push(
                Diagnostic::new(format!(
                    "rules `{}` and `{}` both say `default_target: true`; only one rule can be the default target",
                    first.name, second.name
                ))
                .at(second.origin.clone()),
            );
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let mut literal_outputs: HashMap<String, Vec<RuleId>> = HashMap::default();
        let mut pattern_outputs = Vec::new();
        for rule in &rules {
            for (i, out) in rule.products().enumerate() {
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
            order: Vec::new(),
        })
    }

    /// Adds the workflow's `rule_order` clauses (each from most to least preferred), checking
    /// that every name is a rule.
    pub fn with_order(mut self, clauses: &[Vec<String>]) -> Result<Self, Vec<Diagnostic>> {
        let mut errors = Vec::new();
        for clause in clauses {
            let mut ids = Vec::with_capacity(clause.len());
            for name in clause {
                match self.by_name.get(name) {
                    Some(id) => ids.push(*id),
                    None => {
                        let mut d =
                            Diagnostic::new(format!("rule_order: there is no rule `{name}`"));
                        if let Some(h) = did_you_mean(name, self.by_name.keys().map(String::as_str))
                        {
                            d = d.hint(h);
                        }
                        errors.push(d);
                    }
                }
            }
            self.order.push(ids);
        }
        if errors.is_empty() {
            Ok(self)
        } else {
            Err(errors)
        }
    }

    /// Which of two rules that can both make a file is preferred (`Greater`: `a`), as
    /// Snakemake decides: the last `rule_order` clause naming both, else the higher
    /// `priority`, else the rule without wildcards in its outputs. `Equal` is a tie.
    pub fn preference(&self, a: RuleId, b: RuleId) -> std::cmp::Ordering {
        use std::cmp::Ordering;
        if a == b {
            return Ordering::Equal;
        }
        for clause in self.order.iter().rev() {
            let i = clause.iter().position(|r| *r == a);
            let j = clause.iter().position(|r| *r == b);
            if let (Some(i), Some(j)) = (i, j) {
                return j.cmp(&i);
            }
        }
        let (ra, rb) = (self.get(a), self.get(b));
        ra.priority
            .cmp(&rb.priority)
            .then_with(|| rb.has_wildcards().cmp(&ra.has_wildcards()))
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

    /// The default target: the rule marked `default_target: true`, else rule `all`, else the
    /// first rule the workflow file itself declares (an imported rule file never decides it,
    /// as Snakemake's `include:` never does), else the first rule.
    pub fn default_target(&self) -> Option<&Rule> {
        self.rules
            .iter()
            .find(|r| r.default_target)
            .or_else(|| self.by_name("all"))
            .or_else(|| self.rules.iter().find(|r| !r.imported))
            .or_else(|| self.rules.first())
    }

    /// Rules that can make `path` (as an output or a log, which Snakemake also lets other
    /// rules and the command line ask for), with the wildcards each would bind, in
    /// declaration order.
    pub fn producers(&self, path: &str) -> Vec<(RuleId, Wildcards)> {
        let mut found: Vec<(RuleId, Wildcards)> = Vec::new();
        if let Some(ids) = self.literal_outputs.get(path) {
            found.extend(ids.iter().map(|id| (*id, Wildcards::new())));
        }
        for (id, i) in &self.pattern_outputs {
            if found.iter().any(|(f, _)| f == id) {
                continue;
            }
            let made = self.get(*id).products().nth(*i);
            if let Some(w) = made.and_then(|f| f.pattern.matches(path)) {
                found.push((*id, w));
            }
        }
        found.sort_by_key(|(id, _)| *id);
        found
    }

    /// [`Rules::producers`] for an input of a job with wildcards `asking`: as Snakemake does,
    /// a rule whose wildcards the asking job also binds takes those values when they give
    /// back `path` exactly, rather than the split a regex would choose (`foo.{s}{r}.fq` asked
    /// for by `s=a, r=r1` binds `s=a`, not `s=ar`).
    pub fn producers_for(&self, path: &str, asking: &Wildcards) -> Vec<(RuleId, Wildcards)> {
        let mut found = self.producers(path);
        if asking.is_empty() {
            return found;
        }
        for (id, w) in &mut found {
            let rule = self.get(*id);
            let Some(first) = rule.outputs.first() else {
                continue;
            };
            let names = first.pattern.wildcard_names();
            // The common case, checked without a copy: the match bound the asking values.
            if names
                .iter()
                .all(|n| asking.get(n).is_none_or(|v| w.get(n) == Some(v)))
            {
                continue;
            }
            let given: Option<Wildcards> = names
                .into_iter()
                .map(|name| Some((name.to_string(), asking.get(name)?.clone())))
                .try_fold(Wildcards::new(), |mut acc, pair| {
                    let (k, v) = pair?;
                    acc.insert(k, v);
                    Some(acc)
                });
            let Some(given) = given.filter(|g| g != w) else {
                continue;
            };
            let gives_path = rule
                .products()
                .any(|f| f.pattern.format(&given).is_ok_and(|p| p == path));
            if gives_path {
                *w = given;
            }
        }
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
