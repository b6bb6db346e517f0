//! What a porter from Snakemake reaches for at the workflow level: `rule_order([...])`
//! (Snakemake's `ruleorder:`), `rules("b")` (its `rules.b`), and a clear word for each
//! Snakemake name flowrun does not have.
//!
//! Without that word a porter meets `Function not found: pipe (&str | ImmutableString |
//! String)`, or a list of every rule key; with it, the error names the Snakemake concept and
//! the flowrun way to get the same, or says it is not supported yet. The tables here are the
//! single place that knows those names; `docs/snakemake.md` explains each one at length.

use rhai::{Array, Dynamic, Engine, EvalAltResult, FnPtr, Map, NativeCallContext, Position};

use super::closure::StoredClosure;
use crate::rules::decl::ClosureId;

use super::helpers::Marked;
use super::SharedState;
use crate::rules::decl::{FileDecl, FileKind};

type Res<T> = Result<T, Box<EvalAltResult>>;

fn runtime(msg: impl Into<String>) -> Box<EvalAltResult> {
    Box::new(EvalAltResult::ErrorRuntime(
        msg.into().into(),
        Position::NONE,
    ))
}

/// Snakemake rule keys flowrun lacks, with what to do instead.
const RULE_KEYS: &[(&str, &str)] = &[
    ("conda", "key for a conda environment per rule; flowrun has no conda yet: give the rule `software: #{ python: \"requirements.txt\" }` (a venv) or `software: #{ path: [...] }`"),
    ("container", "key for a container image per rule; flowrun does not run jobs in containers yet"),
    ("singularity", "key for a container image per rule; flowrun does not run jobs in containers yet"),
    ("envmodules", "key for environment modules per rule; flowrun does not load modules yet: load them before running"),
    ("wrapper", "key for a wrapper from the Snakemake wrapper repository; flowrun has none: copy the wrapper's command into `shell`"),
    ("script", "key for an external Python/R script; flowrun does not run scripts with a job object yet: call it from `shell` with the paths as arguments"),
    ("notebook", "key for a Jupyter notebook; flowrun does not run notebooks: call `jupyter nbconvert --execute` from `shell`"),
    ("cwl", "key for a CWL tool; flowrun does not run CWL: call the tool from `shell`"),
    ("group", "key for job groups submitted together to a cluster; not supported yet (every job is scheduled on its own)"),
    ("shadow", "key for a shadow directory per job; not supported yet: write to a temporary name and rename in the command"),
    ("handover", "key for a job taking over the whole node; not supported yet: give it `threads` equal to `-j`"),
    ("localrule", "key for running on the submitting host under a cluster executor; not supported yet (flowrun runs every job locally)"),
];

/// Snakemake helper functions flowrun lacks, with what to do instead.
const FUNCTIONS: &[(&str, &str)] = &[
    ("pipe", "Snakemake's named pipe between two jobs running at once; not supported yet: write a file (a `temp()` output) instead"),
    ("service", "Snakemake's service job running beside its consumers; not supported yet"),
    ("dynamic", "Snakemake's old dynamic outputs; not supported"),
    ("unpack", "Snakemake's unpacking of an input function's dict; give `input` a map of named paths instead"),
    ("ensure", "Snakemake's output checks; not supported yet: check the file at the end of `shell` (`test -s {output}`)"),
    ("storage", "Snakemake's remote storage plugins; not supported yet: download in a rule of its own"),
    ("ruleorder", "Snakemake's `ruleorder: a > b`; flowrun's is `rule_order([\"a\", \"b\"])`, most preferred first"),
    ("localrules", "Snakemake's `localrules:`; not supported yet (flowrun runs every job locally)"),
    ("include", "Snakemake's `include:`; flowrun's is `import \"rules/x\" as x;` at the top of the file"),
    ("configfile", "Snakemake's `configfile:`; flowrun's is `let cfg = config(\"config.yaml\");` (or `--configfile FILE`)"),
    ("workdir", "Snakemake's `workdir:`; flowrun's is `flowrun -d DIR`"),
    ("lookup", "Snakemake's lookup in a sample sheet or config; not supported yet: read the table with Rhai and index the map"),
    ("branch", "Snakemake's conditional value of a rule key; not supported yet: use a Rhai `if` expression"),
    ("evaluate", "Snakemake's expression of the wildcards; not supported yet"),
    ("subpath", "Snakemake's part of a path; not supported yet: cut the string in Rhai (`split`, `sub_string`)"),
];

/// Why a rule key is missing, for the unknown-key error: `Some("`conda` is Snakemake's ...")`.
pub fn rule_key(key: &str) -> Option<String> {
    RULE_KEYS
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(k, why)| format!("`{k}` is Snakemake's {why}"))
}

/// The files of a rule declared so far, as `rules("b")` shows them.
fn files(list: &[FileDecl], from: Option<&str>) -> Array {
    list.iter()
        .map(|f| match from {
            Some(rule) => Dynamic::from(Marked {
                path: f.path.clone(),
                kind: FileKind::Plain,
                rule: Some(rule.to_string()),
                directory: f.directory,
                report: None,
            }),
            None => Dynamic::from(f.path.clone()),
        })
        .collect()
}

/// When a workflow handler runs: Snakemake's `onstart:`, `onsuccess:` and `onerror:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handler {
    /// Before the first job of a run starts.
    Start,
    /// After a run in which every job succeeded.
    Success,
    /// After a run in which a job failed or that was interrupted.
    Error,
}

impl Handler {
    const ALL: [Handler; 3] = [Handler::Start, Handler::Success, Handler::Error];

    /// The function that registers it.
    pub fn name(self) -> &'static str {
        match self {
            Handler::Start => "onstart",
            Handler::Success => "onsuccess",
            Handler::Error => "onerror",
        }
    }
}

/// Registers `rule_order`, `rules`, the handlers and the not-supported names.
pub fn register(engine: &mut Engine, state: &SharedState) {
    for kind in Handler::ALL {
        let st = state.clone();
        engine.register_fn(
            kind.name(),
            move |ctx: NativeCallContext, f: FnPtr| -> Res<()> {
                let mut s = st.lock().map_err(|_| runtime("state poisoned"))?;
                let id = ClosureId(s.closures.len());
                #[allow(deprecated)] // Rhai marks the internals API volatile.
                s.closures.push(StoredClosure {
                    fnptr: f,
                    context: ctx.store_data(),
                });
                s.handlers.push((kind, id));
                Ok(())
            },
        );
    }
    let st = state.clone();
    engine.register_fn("rule_order", move |names: Array| -> Res<()> {
        let mut clause = Vec::with_capacity(names.len());
        for n in names {
            if !n.is_string() {
                return Err(runtime(
                    "rule_order: give rule names as strings, most preferred first: `rule_order([\"a\", \"b\"])`",
                ));
            }
            clause.push(n.to_string());
        }
        if clause.len() < 2 {
            return Err(runtime(
                "rule_order: name at least two rules, most preferred first",
            ));
        }
        st.lock()
            .map_err(|_| runtime("state poisoned"))?
            .rule_order
            .push(clause);
        Ok(())
    });
    let st = state.clone();
    engine.register_fn("rules", move |name: &str| -> Res<Map> {
        let s = st.lock().map_err(|_| runtime("state poisoned"))?;
        let Some(rule) = s.rules.iter().find(|r| r.name == name) else {
            let names: Vec<&str> = s.rules.iter().map(|r| r.name.as_str()).collect();
            let mut msg = format!(
                "rules: there is no rule `{name}` above this line (`rules(name)` sees the rules declared before it)"
            );
            if let Some(h) = crate::diagnostic::did_you_mean(name, names) {
                msg.push_str(&format!("; {h}"));
            }
            return Err(runtime(msg));
        };
        let mut map = Map::new();
        map.insert("name".into(), rule.name.clone().into());
        map.insert("output".into(), files(&rule.outputs, Some(name)).into());
        map.insert("input".into(), files(&rule.inputs, None).into());
        map.insert("log".into(), files(&rule.logs, None).into());
        Ok(map)
    });
    for (name, why) in FUNCTIONS {
        let msg = format!("`{name}()` is {why}");
        let one = msg.clone();
        engine.register_fn(*name, move |_: Dynamic| -> Res<Dynamic> {
            Err(runtime(one.clone()))
        });
        engine.register_fn(*name, move |_: Dynamic, _: Dynamic| -> Res<Dynamic> {
            Err(runtime(msg.clone()))
        });
    }
}
