//! `checkpoint_output(rule, wildcards)`: inside a function of the wildcards, the output of a
//! checkpoint job, whose content decides what the function returns.
//!
//! The script side only answers with the path and notes that it was asked for; whether the
//! checkpoint has run (so the answer can be used) is the graph's to judge, from the file and
//! the plan ([`crate::rules::function::Called`]). A function that asked for a checkpoint that
//! has not run makes its job *pending*; what the function returned then is thrown away.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};

use rhai::{Dynamic, Engine, EvalAltResult, Map, Position};

use super::SharedState;
use crate::rules::decl::RuleDecl;
use crate::rules::pattern::{Pattern, Wildcards};

type Res<T> = Result<T, Box<EvalAltResult>>;

fn runtime(msg: impl Into<String>) -> Box<EvalAltResult> {
    Box::new(EvalAltResult::ErrorRuntime(
        msg.into().into(),
        Position::NONE,
    ))
}

/// The checkpoint rules' first outputs.
#[derive(Default)]
pub struct Checkpoints {
    /// Rule name → first output pattern (parsed once, for checkpoints), whether the rule is a
    /// checkpoint.
    outputs: HashMap<String, (String, Option<Pattern>, bool)>,
}

thread_local! {
    /// Set while a function of the wildcards runs on this thread: the checkpoint outputs it
    /// asked for. Per thread, because the planner calls many jobs' functions at once.
    static ASKED: RefCell<Option<Vec<String>>> = const { RefCell::new(None) };
}

/// Whether a function of the wildcards is running on this thread.
pub fn in_function() -> bool {
    ASKED.with(|a| a.borrow().is_some())
}

/// Calls `f`, collecting the checkpoint outputs it asks for with `checkpoint_output`.
pub fn collecting<T>(f: impl FnOnce() -> T) -> (T, Vec<String>) {
    let before = ASKED.with(|a| a.replace(Some(Vec::new())));
    let value = f();
    let asked = ASKED.with(|a| a.replace(before)).unwrap_or_default();
    (value, asked)
}

impl Checkpoints {
    /// Learns every rule's first output, once the workflow has been evaluated.
    pub fn learn(&mut self, rules: &[RuleDecl]) {
        self.outputs = rules
            .iter()
            .map(|r| {
                let first = r.outputs.first().map_or(String::new(), |o| o.path.clone());
                let parsed = r
                    .checkpoint
                    .then(|| Pattern::parse(&first, &BTreeMap::new()).ok())
                    .flatten();
                (r.name.clone(), (first, parsed, r.checkpoint))
            })
            .collect();
    }

    fn output(&self, rule: &str, wildcards: &Map) -> Res<String> {
        if !in_function() {
            return Err(runtime(
                "checkpoint_output: call it inside a function of the wildcards (`input: |w| ...`), where the checkpoint's job is known to have run",
            ));
        }
        let Some((pattern, parsed, checkpoint)) = self.outputs.get(rule) else {
            let known = self.outputs.keys().map(String::as_str);
            let hint = crate::diagnostic::did_you_mean(rule, known)
                .map(|h| format!("; {h}"))
                .unwrap_or_default();
            return Err(runtime(format!(
                "checkpoint_output: no rule `{rule}`{hint}"
            )));
        };
        if !checkpoint {
            return Err(runtime(format!(
                "checkpoint_output: rule `{rule}` is not a checkpoint; give it `checkpoint: true`"
            )));
        }
        let Some(parsed) = parsed.as_ref().filter(|_| !pattern.is_empty()) else {
            return Err(runtime(format!(
                "checkpoint_output: rule `{rule}` has no output"
            )));
        };
        let mut values = Wildcards::new();
        for name in parsed.wildcard_names() {
            let Some(v) = wildcards.get(name) else {
                return Err(runtime(format!(
                    "checkpoint_output: the output `{pattern}` of rule `{rule}` needs wildcard `{name}`, which the map given lacks"
                )));
            };
            values.insert(name.to_string(), v.to_string());
        }
        let path = parsed
            .format(&values)
            .map_err(|e| runtime(format!("checkpoint_output: {e}")))?;
        ASKED.with(|a| {
            if let Some(asked) = a.borrow_mut().as_mut() {
                asked.push(path.clone());
            }
        });
        Ok(path)
    }
}

/// Registers `checkpoint_output(rule, wildcards)`.
pub fn register(engine: &mut Engine, state: &SharedState) {
    let st = state.clone();
    engine.register_fn(
        "checkpoint_output",
        move |rule: &str, wildcards: Map| -> Res<Dynamic> {
            let s = st.lock().map_err(|_| runtime("state poisoned"))?;
            s.checkpoints.output(rule, &wildcards).map(Dynamic::from)
        },
    );
}
