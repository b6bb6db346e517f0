//! Functions of the wildcards: `input`, `log`, `params`, `threads` and `resources` (or one entry
//! of an input/log/params/resources map or array) given as a closure `|w| ...` instead of a
//! value.
//!
//! `threads` and `resources` functions may take the attempt as a second argument,
//! `|w, attempt| attempt * 1000`, as Snakemake's `lambda wildcards, attempt:` does: a job that
//! failed for want of memory is retried with more. The attempt is a second parameter rather
//! than a field of `w` so that `w` stays exactly the wildcards (as in every other function), and
//! so that the rule says, by the closure's shape, which of its sizes grow: only those are
//! computed again before a retry ([`RuleFunctions::sizes_at`]). At plan time they see attempt 1.
//!
//! `params` functions may take the job's files too, by naming them: `|w, output| ...`,
//! `|w, input, output| ...`, as Snakemake's `lambda wildcards, output:` does (a tool's output
//! prefix is the usual case). By name rather than by position, so that a Snakemake function's
//! parameter list carries over as written.
//!
//! Snakemake users answer "which files belong to sample `{s}`?" with a sample sheet and an input
//! function; a pattern cannot. Such a function runs once per job, when the job is bound to its
//! wildcards (plan time, in the definition sandbox: it may read files, never write or run them),
//! and what it returns is used exactly as if it had been written in the rule. So its *result*
//! decides reruns the way a static value does (the set of inputs, their content, the params),
//! and its *code* is part of the rule's code fingerprint.
//!
//! The graph must not know Rhai: the script side implements [`Evaluate`] and hands results back
//! as plain [`FnValue`]s, which this module checks and turns into paths and values, with errors
//! that name the key.

use std::collections::BTreeMap;

use crate::diagnostic::Diagnostic;
use crate::rules::decl::{ClosureId, FileDecl, FileKind};
use crate::rules::pattern::Wildcards;
use crate::rules::template::Section;

/// What a function of the wildcards returned, with no script types left in it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum FnValue {
    Unit,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    /// A path marked with `temp(...)`, `protected(...)` or `directory(...)` (the flag).
    File(String, FileKind, bool),
    Array(Vec<FnValue>),
    Map(BTreeMap<String, FnValue>),
    /// Anything else (a function, a native object).
    Other,
}

impl FnValue {
    /// How the value is named in errors.
    pub fn describe(&self) -> &'static str {
        match self {
            FnValue::Unit => "nothing (`()`)",
            FnValue::Bool(_) => "a boolean",
            FnValue::Int(_) => "an integer",
            FnValue::Float(_) => "a float",
            FnValue::Str(_) => "a string",
            FnValue::File(..) => "a marked path",
            FnValue::Array(_) => "an array",
            FnValue::Map(_) => "a map",
            FnValue::Other => "a value of another type",
        }
    }

    /// The value as JSON (params), or a description of what cannot be one.
    pub fn to_json(&self) -> Result<serde_json::Value, String> {
        use serde_json::Value;
        Ok(match self {
            FnValue::Unit => Value::Null,
            FnValue::Bool(b) => Value::Bool(*b),
            FnValue::Int(n) => Value::from(*n),
            FnValue::Float(x) => Value::from(*x),
            FnValue::Str(s) => Value::String(s.clone()),
            FnValue::Array(items) => Value::Array(
                items
                    .iter()
                    .map(FnValue::to_json)
                    .collect::<Result<_, _>>()?,
            ),
            FnValue::Map(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| Ok((k.clone(), v.to_json()?)))
                    .collect::<Result<_, String>>()?,
            ),
            FnValue::File(..) | FnValue::Other => {
                return Err(format!(
                    "cannot hold {}; params must be plain data",
                    self.describe()
                ))
            }
        })
    }
}

/// What calling a function gave: its value (or the error it raised, which names where in the
/// script it happened), and the checkpoint outputs it asked for with `checkpoint_output`.
pub struct Called {
    pub result: Result<FnValue, Diagnostic>,
    pub checkpoints: Vec<String>,
}

/// A job's files as a function receives them: (name, path), in declared order.
pub type NamedFiles = Vec<(Option<String>, String)>;

/// Which of the job's file lists a `params` function takes after the wildcards, by the names
/// of its parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileArg {
    Input,
    Output,
}

/// What a function receives after the wildcards map.
pub enum Extra {
    Nothing,
    /// The attempt (`threads` and `resources` functions of the attempt).
    Attempt(u32),
    /// The job's files, one list per parameter (`params` functions of the files).
    Files(Vec<NamedFiles>),
}

/// Calls the functions a workflow declared; implemented by the script runtime. The planner
/// calls many jobs' functions at once, from every core.
pub trait Evaluate: Sync {
    /// Calls function `f` with the job's wildcards map, then whatever `extra` holds.
    fn call(&self, f: ClosureId, wildcards: &Wildcards, extra: Extra) -> Called;
}

/// Why a job's functions gave no files and values.
pub enum BindError {
    /// A function failed, or gave what its key does not take.
    Failed(Diagnostic),
    /// A function asked for the output of a checkpoint that has not run: the job waits for it.
    Pending(String),
}

/// A function giving files, standing at a place among a rule's inputs (or logs).
#[derive(Debug, Clone, PartialEq)]
pub struct FileFn {
    /// The name of the map entry it is (`input: #{ reads: |w| ... }`); the files it returns are
    /// named so. A whole-key function (`input: |w| ...`) may return a map to name them itself.
    pub name: Option<String>,
    /// How many of the statically written files come before it.
    pub at: usize,
    pub closure: ClosureId,
}

/// A key that is either one function of the wildcards, or a map some of whose entries are.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MapFns {
    /// `params: |w| #{...}`: the whole map.
    pub whole: Option<ClosureId>,
    /// `params: #{ adapter: |w| ... }`: single entries, by name.
    pub entries: Vec<(String, ClosureId)>,
}

impl MapFns {
    fn is_empty(&self) -> bool {
        self.whole.is_none() && self.entries.is_empty()
    }

    fn closures(&self) -> impl Iterator<Item = ClosureId> + '_ {
        self.whole
            .iter()
            .copied()
            .chain(self.entries.iter().map(|(_, c)| *c))
    }
}

/// Every function of the wildcards a rule declared.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RuleFunctions {
    pub input: Vec<FileFn>,
    pub log: Vec<FileFn>,
    pub params: MapFns,
    pub threads: Option<ClosureId>,
    pub resources: MapFns,
    /// The `threads` and `resources` functions that take the attempt too (`|w, attempt|`).
    pub by_attempt: Vec<ClosureId>,
    /// The `params` functions that take the job's files too (`|w, output|`).
    pub with_files: Vec<(ClosureId, Vec<FileArg>)>,
}

/// A job's threads and resources as its functions gave them; `None` where no function gives
/// them (the rule's value holds).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sizes {
    pub threads: Option<u32>,
    /// The rule's resources with what the functions gave in place.
    pub resources: Option<BTreeMap<String, u64>>,
}

/// The values one job computed from its functions; `None` where the rule's static value holds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Computed {
    pub params: Option<serde_json::Map<String, serde_json::Value>>,
    pub threads: Option<u32>,
    pub resources: Option<BTreeMap<String, u64>>,
    /// The checkpoint output a function asked for before it was made: the job is pending,
    /// and its only input beyond the written ones is that output.
    pub awaits: Option<String>,
    /// The checkpoint outputs the functions read.
    pub consulted: Vec<String>,
}

/// One job's files and values from its rule's functions.
pub struct Bound {
    /// The checkpoint outputs the functions read (all of them had run).
    pub consulted: Vec<String>,
    /// The inputs in declared order, function results in place; `None` if no input is a function.
    pub inputs: Option<Vec<FileDecl>>,
    pub logs: Option<Vec<FileDecl>>,
    pub computed: Option<Box<Computed>>,
}

/// What went wrong in one function: which key, and the error itself.
struct Failed {
    key: String,
    error: Box<Diagnostic>,
    /// The function raised the error (else it returned a value that does not fit the key).
    raised: bool,
    /// The function asked for this checkpoint output, which has not been made yet.
    pending: Option<String>,
}

impl RuleFunctions {
    /// Whether the rule declared no function at all.
    pub fn is_empty(&self) -> bool {
        self.input.is_empty()
            && self.log.is_empty()
            && self.params.is_empty()
            && self.threads.is_none()
            && self.resources.is_empty()
    }

    /// The sections of a shell template whose names or lengths only a job knows: a function
    /// may give any number of inputs or logs, and a whole-map function any params or
    /// resources.
    pub fn per_job_sections(&self) -> Vec<Section> {
        let mut out = Vec::new();
        if !self.input.is_empty() {
            out.push(Section::Input);
        }
        if !self.log.is_empty() {
            out.push(Section::Log);
        }
        if self.params.whole.is_some() {
            out.push(Section::Params);
        }
        if self.resources.whole.is_some() {
            out.push(Section::Resources);
        }
        out
    }

    /// Every closure, in a fixed order.
    pub fn closures(&self) -> impl Iterator<Item = ClosureId> + '_ {
        self.input
            .iter()
            .chain(&self.log)
            .map(|f| f.closure)
            .chain(self.params.closures())
            .chain(self.threads)
            .chain(self.resources.closures())
    }

    /// Runs the rule's functions for one job (`label` names it); `statics` are the rule's own
    /// values, as written. An error names the rule, the key, the job and where in the script
    /// it happened.
    pub fn bind(
        &self,
        eval: &dyn Evaluate,
        (rule, label): (&str, &dyn std::fmt::Display),
        wildcards: &Wildcards,
        statics: Statics<'_>,
    ) -> Result<Bound, BindError> {
        let caller = Caller {
            eval,
            wildcards,
            available: statics.available,
            by_attempt: &self.by_attempt,
            attempt: 1,
            with_files: &self.with_files,
            files: Default::default(),
            consulted: Default::default(),
        };
        self.bind_inner(&caller, statics)
            .map_err(|f| match f.pending {
                Some(path) => BindError::Pending(path),
                None => BindError::Failed(f.diagnostic(rule, label)),
            })
    }

    /// The threads and resources of attempt `attempt` of a job (2 for the first retry), for a
    /// rule with functions of the attempt; `resources` are the rule's own. Any checkpoint the
    /// functions read has run: the job did.
    pub fn sizes_at(
        &self,
        eval: &dyn Evaluate,
        (rule, label): (&str, &dyn std::fmt::Display),
        wildcards: &Wildcards,
        resources: &BTreeMap<String, u64>,
        attempt: u32,
    ) -> Result<Sizes, Diagnostic> {
        let caller = Caller {
            eval,
            wildcards,
            available: &|_| true,
            by_attempt: &self.by_attempt,
            attempt,
            with_files: &[],
            files: Default::default(),
            consulted: Default::default(),
        };
        self.sizes(&caller, resources)
            .map_err(|f| f.diagnostic(rule, label))
    }

    fn bind_inner(&self, caller: &Caller<'_>, statics: Statics<'_>) -> Result<Bound, Failed> {
        let files = |key: &str, fns: &[FileFn], written: Vec<FileDecl>| {
            if fns.is_empty() {
                return Ok(None);
            }
            let mut out = Vec::with_capacity(written.len() + fns.len());
            let mut written = written.into_iter();
            let mut taken = 0;
            for f in fns {
                out.extend(written.by_ref().take(f.at - taken));
                taken = f.at;
                let value = caller.call(key, f.closure)?;
                push_files(&value, f.name.as_deref(), true, &mut out)
                    .map_err(|m| Failed::plain(key, m))?;
            }
            out.extend(written);
            Ok(Some(out))
        };
        let written = (!self.with_files.is_empty()).then(|| statics.inputs.clone());
        let inputs = files("input", &self.input, statics.inputs)?;
        let logs = files("log", &self.log, statics.logs)?;
        if let Some(written) = written {
            let named = |files: &[FileDecl]| -> NamedFiles {
                files
                    .iter()
                    .map(|f| (f.name.clone(), f.path.clone()))
                    .collect()
            };
            *caller.files.borrow_mut() = (
                named(inputs.as_deref().unwrap_or(&written)),
                statics.outputs,
            );
        }
        let mut computed = Computed::default();
        if !self.params.is_empty() {
            let mut params = statics.params.clone();
            if let Some(f) = self.params.whole {
                match caller
                    .call("params", f)?
                    .to_json()
                    .map_err(|m| Failed::plain("params", m))?
                {
                    serde_json::Value::Object(map) => params = map,
                    other => {
                        return Err(Failed::plain(
                            "params",
                            format!("must give a map, not `{other}`"),
                        ))
                    }
                }
            }
            for (name, f) in &self.params.entries {
                let key = format!("params.{name}");
                let value = caller
                    .call(&key, *f)?
                    .to_json()
                    .map_err(|m| Failed::plain(&key, m))?;
                params.insert(name.clone(), value);
            }
            computed.params = Some(params);
        }
        let sizes = self.sizes(caller, statics.resources)?;
        computed.threads = sizes.threads;
        computed.resources = sizes.resources;
        let any = computed != Computed::default();
        Ok(Bound {
            consulted: caller.consulted.take(),
            inputs,
            logs,
            computed: any.then(|| Box::new(computed)),
        })
    }

    /// Calls the `threads` and `resources` functions; `resources` are the rule's own.
    fn sizes(
        &self,
        caller: &Caller<'_>,
        resources: &BTreeMap<String, u64>,
    ) -> Result<Sizes, Failed> {
        let mut sizes = Sizes::default();
        if let Some(f) = self.threads {
            sizes.threads = Some(match caller.call("threads", f)? {
                FnValue::Int(n) if n >= 1 && n <= i64::from(u32::MAX) => n as u32,
                FnValue::Int(n) => {
                    return Err(Failed::plain(
                        "threads",
                        format!("must give at least 1, not {n}"),
                    ))
                }
                other => {
                    return Err(Failed::plain(
                        "threads",
                        format!("must give an integer, not {}", other.describe()),
                    ))
                }
            });
        }
        if self.resources.is_empty() {
            return Ok(sizes);
        }
        let mut resources = resources.clone();
        let amount = |key: &str, value: &FnValue| match value {
            FnValue::Int(n) if *n >= 0 => Ok(*n as u64),
            other => Err(Failed::plain(
                key,
                format!("must give a non-negative integer, not {}", other.describe()),
            )),
        };
        if let Some(f) = self.resources.whole {
            match caller.call("resources", f)? {
                FnValue::Map(map) => {
                    for (k, v) in &map {
                        resources.insert(k.clone(), amount(&format!("resources.{k}"), v)?);
                    }
                }
                other => {
                    return Err(Failed::plain(
                        "resources",
                        format!("must give a map of integers, not {}", other.describe()),
                    ))
                }
            }
        }
        for (name, f) in &self.resources.entries {
            let key = format!("resources.{name}");
            let value = caller.call(&key, *f)?;
            resources.insert(name.clone(), amount(&key, &value)?);
        }
        sizes.resources = Some(resources);
        Ok(sizes)
    }
}

/// Calls one job's functions, collecting the checkpoint outputs they read.
struct Caller<'a> {
    eval: &'a dyn Evaluate,
    wildcards: &'a Wildcards,
    /// Whether a checkpoint output has been made and may be read.
    available: &'a dyn Fn(&str) -> bool,
    /// The functions that take the attempt too, and the attempt to give them.
    by_attempt: &'a [ClosureId],
    attempt: u32,
    /// The functions that take the job's files too, and the files (inputs, outputs) once the
    /// inputs are known.
    with_files: &'a [(ClosureId, Vec<FileArg>)],
    files: std::cell::RefCell<(NamedFiles, NamedFiles)>,
    consulted: std::cell::RefCell<Vec<String>>,
}

impl Caller<'_> {
    /// Calls `f`, given as `key`.
    fn call(&self, key: &str, f: ClosureId) -> Result<FnValue, Failed> {
        let extra = if self.by_attempt.contains(&f) {
            Extra::Attempt(self.attempt)
        } else if let Some((_, args)) = self.with_files.iter().find(|(c, _)| *c == f) {
            let files = self.files.borrow();
            Extra::Files(
                args.iter()
                    .map(|a| match a {
                        FileArg::Input => files.0.clone(),
                        FileArg::Output => files.1.clone(),
                    })
                    .collect(),
            )
        } else {
            Extra::Nothing
        };
        let called = self.eval.call(f, self.wildcards, extra);
        let waiting = called
            .checkpoints
            .iter()
            .find(|p| !(self.available)(p))
            .cloned();
        self.consulted.borrow_mut().extend(called.checkpoints);
        match (called.result, waiting) {
            // What a function gave before its checkpoint ran is not used, nor its error
            // (a directory not made yet cannot be listed).
            (_, Some(path)) => Err(Failed {
                key: key.to_string(),
                error: Box::new(Diagnostic::new("waits for a checkpoint")),
                raised: true,
                pending: Some(path),
            }),
            (Ok(value), None) => Ok(value),
            (Err(error), None) => Err(Failed {
                key: key.to_string(),
                error: Box::new(error),
                raised: true,
                pending: None,
            }),
        }
    }
}

impl Failed {
    /// A function's result that does not fit `key`.
    fn plain(key: &str, msg: impl Into<String>) -> Self {
        Failed {
            key: key.to_string(),
            error: Box::new(Diagnostic::new(msg.into())),
            raised: false,
            pending: None,
        }
    }

    /// The error, naming the rule, the job and the key.
    fn diagnostic(self, rule: &str, label: &dyn std::fmt::Display) -> Diagnostic {
        let mut d = *self.error;
        let how = if self.raised { "failed: " } else { "" };
        d.message = format!(
            "rule `{rule}`, job {label}: the `{}` function {how}{}",
            self.key, d.message
        );
        d
    }
}

/// A rule's values as written, which its functions add to or replace for one job, and what
/// the functions may read.
pub struct Statics<'a> {
    pub inputs: Vec<FileDecl>,
    pub logs: Vec<FileDecl>,
    pub params: &'a serde_json::Map<String, serde_json::Value>,
    pub resources: &'a BTreeMap<String, u64>,
    /// The job's outputs, for `params` functions of the files (empty where none takes them).
    pub outputs: NamedFiles,
    /// Whether a checkpoint output has been made and may be read.
    pub available: &'a dyn Fn(&str) -> bool,
}

/// Adds the files a function returned: a path, a marked path, an array of them, or (for a
/// whole-key function, `top`) a map of named ones. Paths are used as returned: wildcards in
/// them are not filled in, as in Snakemake.
fn push_files(
    value: &FnValue,
    name: Option<&str>,
    top: bool,
    out: &mut Vec<FileDecl>,
) -> Result<(), String> {
    let (path, kind) = match value {
        FnValue::Str(p) => (p, (FileKind::Plain, false)),
        FnValue::File(p, kind, dir) => (p, (*kind, *dir)),
        FnValue::Array(items) => {
            for item in items {
                push_files(item, name, false, out)?;
            }
            return Ok(());
        }
        FnValue::Map(map) if top && name.is_none() => {
            for (k, v) in map {
                push_files(v, Some(k), false, out)?;
            }
            return Ok(());
        }
        other => {
            return Err(format!(
                "must give a path, an array of paths{}, not {}",
                if top && name.is_none() {
                    " or a map of named paths"
                } else {
                    ""
                },
                other.describe()
            ))
        }
    };
    if path.trim().is_empty() {
        return Err("gave an empty path".into());
    }
    out.push(FileDecl {
        name: name.map(str::to_string),
        path: crate::rules::pattern::normalize_path(path),
        kind: kind.0,
        directory: kind.1,
        report: None,
        from_rule: None,
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Answers each closure id with a fixed value.
    struct Fixed(Vec<FnValue>);

    impl Evaluate for Fixed {
        fn call(&self, f: ClosureId, _: &Wildcards, _: Extra) -> Called {
            Called {
                result: Ok(self.0[f.0].clone()),
                checkpoints: Vec::new(),
            }
        }
    }

    fn decl(path: &str) -> FileDecl {
        FileDecl {
            name: None,
            path: path.into(),
            kind: FileKind::Plain,
            directory: false,
            from_rule: None,
            report: None,
        }
    }

    #[test]
    fn function_results_take_their_declared_place_among_written_inputs() {
        let fns = RuleFunctions {
            input: vec![FileFn {
                name: None,
                at: 1,
                closure: ClosureId(0),
            }],
            ..Default::default()
        };
        let eval = Fixed(vec![FnValue::Array(vec![
            FnValue::Str("./b".into()),
            FnValue::File("c".into(), FileKind::Temp, false),
        ])]);
        let params = serde_json::Map::new();
        let resources = BTreeMap::new();
        let bound = fns
            .bind(
                &eval,
                ("r", &"r"),
                &Wildcards::new(),
                Statics {
                    inputs: vec![decl("a"), decl("d")],
                    logs: vec![],
                    params: &params,
                    resources: &resources,
                    outputs: Vec::new(),
                    available: &|_| true,
                },
            )
            .unwrap_or_else(|_| panic!("bound"));
        let paths: Vec<(String, FileKind)> = bound
            .inputs
            .unwrap()
            .into_iter()
            .map(|f| (f.path, f.kind))
            .collect();
        assert_eq!(
            paths,
            [
                ("a".into(), FileKind::Plain),
                ("b".into(), FileKind::Plain),
                ("c".into(), FileKind::Temp),
                ("d".into(), FileKind::Plain)
            ]
        );
        assert!(bound.computed.is_none());
    }
}
