//! `rule(name, spec)`: turning a Rhai map into a [`RuleDecl`], checking every key and type.
//!
//! Errors name the rule and the key and are raised at the `rule(...)` call, so the diagnostic
//! points at the declaration; unknown keys get a "did you mean".

#![allow(deprecated)] // Rhai marks the internals API volatile, not deprecated.

mod script;
mod software;

use std::collections::BTreeMap;

use rhai::{Dynamic, EvalAltResult, FnPtr, Map, NativeCallContext};

use super::closure::{closure_code, function_code, StoredClosure};
use super::helpers::Marked;
use crate::diagnostic::{did_you_mean, Origin};
use crate::rules::decl::{
    normalize_code, ClosureId, FileDecl, FileKind, Items, MapReduceDecl, Model, ModelKind,
    RuleDecl, ValueId, WorkDecl, CLUSTER_TEXT,
};
use crate::rules::function::{FileArg, FileFn, RuleFunctions};

/// Every key a rule spec may hold.
pub const RULE_KEYS: [&str; 32] = [
    "input",
    "output",
    "log",
    "params",
    "shell",
    "run",
    "items",
    "map",
    "reduce",
    "init",
    "finish",
    "model",
    "threads",
    "procs",
    "ranks",
    "concurrency",
    "chunk",
    "priority",
    "resources",
    "retries",
    "timeout",
    "allow_outside",
    "wildcard_constraints",
    "default_target",
    "message",
    "cache",
    "local",
    "benchmark",
    "script",
    "env",
    "software",
    "checkpoint",
];

/// Default settings of the execution models.
pub const DEFAULT_PROCS: i64 = 2;
pub const DEFAULT_RANKS: i64 = 2;
pub const DEFAULT_CONCURRENCY: i64 = 10;
pub const DEFAULT_CHUNK: i64 = 65_536;

type Res<T> = Result<T, Box<EvalAltResult>>;

fn fail<T>(ctx: &NativeCallContext, msg: String) -> Res<T> {
    Err(Box::new(EvalAltResult::ErrorRuntime(
        msg.into(),
        ctx.call_position(),
    )))
}

/// A value's type in words, for messages.
pub(super) fn type_name(value: &Dynamic) -> &'static str {
    match value.type_name() {
        "string" | "ImmutableString" => "a string",
        "i64" => "an integer",
        "f64" => "a float",
        "bool" => "a boolean",
        "array" => "an array",
        "map" => "a map",
        "()" => "nothing (`()`)",
        "Fn" => "a function",
        _ => "a value of another type",
    }
}

struct Spec<'a> {
    ctx: &'a NativeCallContext<'a>,
    rule: &'a str,
    map: Map,
    /// Keys (or entries) given as functions of the wildcards, registered once the workflow
    /// state is locked.
    functions: Vec<(Slot, FnPtr)>,
}

/// Where a function of the wildcards was given.
enum Slot {
    Input(Option<String>, usize),
    Log(Option<String>, usize),
    Params(Option<String>),
    Threads,
    Resources(Option<String>),
}

impl Spec<'_> {
    fn err<T>(&self, key: &str, msg: impl std::fmt::Display) -> Res<T> {
        fail(self.ctx, format!("rule `{}`: `{key}` {msg}", self.rule))
    }

    fn take(&mut self, key: &str) -> Option<Dynamic> {
        self.map.remove(key).filter(|v| !v.is_unit())
    }

    fn files(&mut self, key: &str) -> Res<Vec<FileDecl>> {
        let mut out = Vec::new();
        if let Some(value) = self.take(key) {
            if value.is_map() {
                let map = value.cast::<Map>();
                for (name, v) in map {
                    self.push_files(key, Some(name.as_str()), v, &mut out)?;
                }
            } else {
                self.push_files(key, None, value, &mut out)?;
            }
        }
        Ok(out)
    }

    fn push_files(
        &mut self,
        key: &str,
        name: Option<&str>,
        value: Dynamic,
        out: &mut Vec<FileDecl>,
    ) -> Res<()> {
        if value.is_array() {
            for item in value.cast::<rhai::Array>() {
                self.push_files(key, name, item, out)?;
            }
            return Ok(());
        }
        if let Some(fp) = value.clone().try_cast::<FnPtr>() {
            if key == "output" {
                return self.err(
                    key,
                    "cannot be a function: outputs are patterns, so that flowrun can tell which rule makes a file",
                );
            }
            let name = name.map(str::to_string);
            let slot = match key {
                "log" => Slot::Log(name, out.len()),
                _ => Slot::Input(name, out.len()),
            };
            self.functions.push((slot, fp));
            return Ok(());
        }
        let (path, kind, from_rule, directory, report) = if value.is_string() {
            (value.to_string(), FileKind::Plain, None, false, None)
        } else if let Some(m) = value.clone().try_cast::<Marked>() {
            (m.path, m.kind, m.rule, m.directory, m.report)
        } else {
            let function = if key == "output" {
                ""
            } else {
                " or a function of the wildcards"
            };
            return self.err(
                key,
                format!(
                    "must be a path string, an array of paths or a map of named paths{function}, not {}",
                    type_name(&value)
                ),
            );
        };
        if path.trim().is_empty() {
            return self.err(key, "holds an empty path");
        }
        out.push(FileDecl {
            name: name.map(str::to_string),
            path,
            kind,
            from_rule,
            directory,
            report,
        });
        Ok(())
    }

    fn int(&mut self, key: &str, default: i64, min: i64) -> Res<i64> {
        match self.take(key) {
            None => Ok(default),
            Some(v) => match v.as_int() {
                Ok(n) if n >= min => Ok(n),
                Ok(n) => self.err(key, format!("must be at least {min}, not {n}")),
                Err(_) => self.err(key, format!("must be an integer, not {}", type_name(&v))),
            },
        }
    }

    /// Seconds, as an integer or a float, more than zero.
    fn seconds(&mut self, key: &str) -> Res<Option<f64>> {
        let Some(v) = self.take(key) else {
            return Ok(None);
        };
        let secs = if let Ok(n) = v.as_int() {
            n as f64
        } else if let Ok(x) = v.as_float() {
            x
        } else {
            return self.err(
                key,
                format!("must be a number of seconds, not {}", type_name(&v)),
            );
        };
        // A bound a `Duration` can hold: a year is more than any job should need to ask for.
        if !(secs > 0.0 && secs <= 366.0 * 86_400.0) {
            return self.err(
                key,
                format!("must be more than 0 seconds and at most a year, not {secs}"),
            );
        }
        Ok(Some(secs))
    }

    fn boolean(&mut self, key: &str) -> Res<bool> {
        match self.take(key) {
            None => Ok(false),
            Some(v) => v.as_bool().or_else(|_| {
                self.err(
                    key,
                    format!("must be `true` or `false`, not {}", type_name(&v)),
                )
            }),
        }
    }

    fn string_map(&mut self, key: &str) -> Res<BTreeMap<String, String>> {
        let mut out = BTreeMap::new();
        if let Some(v) = self.take(key) {
            let Some(map) = v.clone().try_cast::<Map>() else {
                return self.err(
                    key,
                    format!("must be a map of strings, not {}", type_name(&v)),
                );
            };
            for (k, v) in map {
                if !v.is_string() {
                    return self.err(
                        key,
                        format!("`{k}` must be a string, not {}", type_name(&v)),
                    );
                }
                out.insert(k.to_string(), v.to_string());
            }
        }
        Ok(out)
    }

    /// `resources`: numbers, and the cluster settings of [`CLUSTER_TEXT`] as text.
    fn resources(&mut self) -> Res<(BTreeMap<String, u64>, BTreeMap<String, String>)> {
        let mut out = BTreeMap::new();
        let mut text = BTreeMap::new();
        if self.function("resources", Slot::Resources(None)) {
            return Ok((out, text));
        }
        if let Some(v) = self.take("resources") {
            let Some(map) = v.clone().try_cast::<Map>() else {
                return self.err(
                    "resources",
                    format!("must be a map of integers, not {}", type_name(&v)),
                );
            };
            for (k, v) in map {
                if let Some(fp) = v.clone().try_cast::<FnPtr>() {
                    self.functions
                        .push((Slot::Resources(Some(k.to_string())), fp));
                    continue;
                }
                if CLUSTER_TEXT.contains(&k.as_str()) {
                    if !v.is_string() {
                        return self.err(
                            "resources",
                            format!("`{k}` must be a string, not {}", type_name(&v)),
                        );
                    }
                    text.insert(k.to_string(), v.to_string());
                    continue;
                }
                match v.as_int() {
                    Ok(n) if n >= 0 => {
                        out.insert(k.to_string(), n as u64);
                    }
                    _ => {
                        return self.err(
                            "resources",
                            format!(
                                "`{k}` must be a non-negative integer, not {}",
                                type_name(&v)
                            ),
                        )
                    }
                }
            }
        }
        Ok((out, text))
    }

    /// Moves `key` to the rule's functions if it is a closure.
    fn function(&mut self, key: &str, slot: Slot) -> bool {
        let Some(fp) = self
            .map
            .get(key)
            .and_then(|v| v.clone().try_cast::<FnPtr>())
        else {
            return false;
        };
        self.map.remove(key);
        self.functions.push((slot, fp));
        true
    }

    /// Registers the functions of the wildcards found in the spec, adding their code to the
    /// rule's (after the work's code, so a rule without functions keeps its fingerprint).
    fn register_functions(
        &mut self,
        st: &mut super::State,
        code: &mut Vec<String>,
    ) -> Res<RuleFunctions> {
        let mut out = RuleFunctions::default();
        for (slot, fp) in std::mem::take(&mut self.functions) {
            let key = match &slot {
                Slot::Input(name, _) => entry_key("input", name.as_deref()),
                Slot::Log(name, _) => entry_key("log", name.as_deref()),
                Slot::Params(name) => entry_key("params", name.as_deref()),
                Slot::Threads => "threads".to_string(),
                Slot::Resources(name) => entry_key("resources", name.as_deref()),
            };
            // Sizes may grow with the attempt (`|w, attempt|`), as Snakemake's may; params may
            // take the job's files (`|w, output|`).
            let sizes = matches!(slot, Slot::Threads | Slot::Resources(_));
            let names = parameters(self.ctx, &fp);
            let mut files = None;
            let with_attempt = match names.as_ref().map(Vec::len) {
                Some(1) => false,
                Some(2) if sizes => true,
                _ if sizes => {
                    return self.err(
                        &key,
                        "must be a function of the job's wildcards and, if it grows with \
                         retries, the attempt: `|w| ...` or `|w, attempt| ...`",
                    )
                }
                Some(2 | 3) if matches!(slot, Slot::Params(_)) => {
                    match names.as_deref().and_then(|n| file_args(&n[1..])) {
                        Some(args) => files = Some(args),
                        None => {
                            return self.err(
                                &key,
                                "must be a function of the job's wildcards and, if it needs \
                                 them, the job's files, by these names: `|w| ...`, \
                                 `|w, input| ...`, `|w, output| ...` or `|w, input, output| ...`",
                            )
                        }
                    }
                    false
                }
                _ if matches!(slot, Slot::Params(_)) => {
                    return self.err(
                        &key,
                        "must be a function of the job's wildcards and, if it needs them, the \
                         job's files: `|w| ...`, `|w, input| ...`, `|w, output| ...` or \
                         `|w, input, output| ...`",
                    )
                }
                _ => {
                    return self.err(
                        &key,
                        "must be a function of one argument, the job's wildcards: `|w| ...`",
                    )
                }
            };
            let text = function_code(self.ctx, &fp, &st.main_file, &mut st.code_sources);
            let closure = ClosureId(st.closures.len());
            st.closures.push(StoredClosure {
                fnptr: fp,
                context: self.ctx.store_data(),
            });
            if with_attempt {
                out.by_attempt.push(closure);
            }
            if let Some(args) = files {
                out.with_files.push((closure, args));
            }
            match slot {
                Slot::Input(name, at) => out.input.push(FileFn { name, at, closure }),
                Slot::Log(name, at) => out.log.push(FileFn { name, at, closure }),
                Slot::Params(None) => out.params.whole = Some(closure),
                Slot::Params(Some(name)) => out.params.entries.push((name, closure)),
                Slot::Threads => out.threads = Some(closure),
                Slot::Resources(None) => out.resources.whole = Some(closure),
                Slot::Resources(Some(name)) => out.resources.entries.push((name, closure)),
            }
            code.push(format!("{key}: {text}"));
        }
        Ok(out)
    }

    fn closure(
        &mut self,
        key: &str,
        st: &mut super::State,
        code: &mut Vec<String>,
    ) -> Res<Option<ClosureId>> {
        let Some(v) = self.take(key) else {
            return Ok(None);
        };
        let Some(fp) = v.clone().try_cast::<FnPtr>() else {
            return self.err(
                key,
                format!(
                    "must be a closure like `|job| {{ ... }}`, not {}",
                    type_name(&v)
                ),
            );
        };
        let closure = closure_code(self.ctx, &fp, &st.main_file, &mut st.code_sources);
        code.push(format!("{key}: {closure}"));
        let id = ClosureId(st.closures.len());
        st.closures.push(StoredClosure {
            fnptr: fp,
            context: self.ctx.store_data(),
        });
        Ok(Some(id))
    }

    fn value(
        &mut self,
        key: &str,
        st: &mut super::State,
        code: &mut Vec<String>,
    ) -> Option<ValueId> {
        let v = self.take(key)?;
        code.push(format!("{key}: {v:?}"));
        st.values.push(v);
        Some(ValueId(st.values.len() - 1))
    }

    fn model(&mut self) -> Res<ModelKind> {
        let Some(v) = self.take("model") else {
            return Ok(ModelKind::Thread);
        };
        let name = v.to_string();
        ModelKind::parse(&name).map_or_else(
            || {
                let hint = did_you_mean(&name, ModelKind::NAMES)
                    .unwrap_or_else(|| format!("the models are {}", ModelKind::NAMES.join(", ")));
                self.err("model", format!("`{name}` is not a model; {hint}"))
            },
            Ok,
        )
    }

    fn params(&mut self) -> Res<serde_json::Map<String, serde_json::Value>> {
        if self.function("params", Slot::Params(None)) {
            return Ok(serde_json::Map::new());
        }
        let Some(mut v) = self.take("params") else {
            return Ok(serde_json::Map::new());
        };
        if !v.is_map() {
            return self.err(
                "params",
                format!(
                    "must be a map or a function of the wildcards, not {}",
                    type_name(&v)
                ),
            );
        }
        if let Some(mut map) = v.write_lock::<Map>() {
            let named: Vec<_> = map
                .iter()
                .filter(|(_, v)| v.is_fnptr())
                .map(|(k, _)| k.clone())
                .collect();
            for k in named {
                if let Some(fp) = map.remove(&k).and_then(|v| v.try_cast::<FnPtr>()) {
                    self.functions.push((Slot::Params(Some(k.to_string())), fp));
                }
            }
        }
        if let Some(bad) = find_unserialisable(&v) {
            return self.err(
                "params",
                format!("cannot hold {bad}; params must be plain data"),
            );
        }
        match serde_json::to_value(&v) {
            Ok(serde_json::Value::Object(m)) => Ok(m),
            Ok(_) => self.err("params", "must be a map"),
            Err(e) => self.err("params", format!("cannot be recorded: {e}")),
        }
    }
}

/// The names of the parameters a closure takes when called (its parameters less the values it
/// captured, which come first), if it is a script closure.
fn parameters(ctx: &NativeCallContext, fp: &FnPtr) -> Option<Vec<String>> {
    ctx.iter_namespaces().find_map(|module| {
        module
            .iter_script_fn_info()
            .find(|(.., name, _, _)| *name == fp.fn_name())
            .map(|(.., def)| {
                def.params
                    .iter()
                    .skip(fp.curry().len())
                    .map(|p| p.to_string())
                    .collect()
            })
    })
}

/// The job's files a `params` function names after the wildcards (`|w, input, output|`);
/// `None` if it names anything else. (Rhai refuses a parameter named twice.)
fn file_args(names: &[String]) -> Option<Vec<FileArg>> {
    names
        .iter()
        .map(|name| match name.as_str() {
            "input" => Some(FileArg::Input),
            "output" => Some(FileArg::Output),
            _ => None,
        })
        .collect()
}

/// `input` or `input.reads`: how a function's key reads in the rule's code.
fn entry_key(key: &str, name: Option<&str>) -> String {
    name.map_or_else(|| key.to_string(), |n| format!("{key}.{n}"))
}

fn find_unserialisable(v: &Dynamic) -> Option<&'static str> {
    if v.is_map() {
        let map = v.read_lock::<Map>()?;
        return map.values().find_map(find_unserialisable);
    }
    if v.is_array() {
        let arr = v.read_lock::<rhai::Array>()?;
        return arr.iter().find_map(find_unserialisable);
    }
    if v.is_fnptr() {
        return Some("a function");
    }
    let plain =
        v.is_string() || v.is_int() || v.is_float() || v.is_bool() || v.is_unit() || v.is_char();
    (!plain).then_some("a value of a native type")
}

/// The body of the `rule(name, spec)` function.
pub fn declare(
    ctx: NativeCallContext,
    state: &super::SharedState,
    name: &str,
    spec: Map,
) -> Res<()> {
    if name.trim().is_empty() || name.contains(char::is_whitespace) {
        return fail(
            &ctx,
            format!("rule name `{name}` must be a non-empty word without spaces"),
        );
    }
    for key in spec.keys() {
        if !RULE_KEYS.contains(&key.as_str()) {
            let mut msg = format!("rule `{name}`: unknown key `{key}`");
            match (
                super::snakemake::rule_key(key),
                did_you_mean(key, RULE_KEYS),
            ) {
                (Some(why), _) => msg.push_str(&format!("; {why}")),
                (None, Some(h)) => msg.push_str(&format!("; {h}")),
                (None, None) => msg.push_str(&format!("; the keys are {}", RULE_KEYS.join(", "))),
            }
            return fail(&ctx, msg);
        }
    }
    let mut s = Spec {
        ctx: &ctx,
        rule: name,
        map: spec,
        functions: Vec::new(),
    };
    let inputs = s.files("input")?;
    let outputs = s.files("output")?;
    let logs = s.files("log")?;
    let benchmark = s.files("benchmark")?;
    if benchmark.len() > 1 {
        return s.err(
            "benchmark",
            "takes one file, where the job's resource figures go",
        );
    }
    let params = s.params()?;
    let threads = if s.function("threads", Slot::Threads) {
        1
    } else {
        s.int("threads", 1, 1)?
    };
    let priority = s.int("priority", 0, i64::MIN)?;
    let retries = s.int("retries", 0, 0)?;
    let timeout = s.seconds("timeout")?;
    let allow_outside = s.boolean("allow_outside")?;
    let default_target = s.boolean("default_target")?;
    let message = match s.take("message") {
        Some(m) if m.is_string() => Some(m.to_string()),
        Some(m) => {
            return s.err(
                "message",
                format!("must be a string, not {}", type_name(&m)),
            )
        }
        None => None,
    };
    let checkpoint = s.boolean("checkpoint")?;
    let cache = s.boolean("cache")?;
    let (resources, cluster) = s.resources()?;
    let local = s.boolean("local")?;
    let wildcard_constraints = s.string_map("wildcard_constraints")?;
    let kind = s.model()?;
    let model = Model {
        kind,
        threads: threads as u32,
        procs: s.int("procs", DEFAULT_PROCS, 1)? as u32,
        ranks: s.int("ranks", DEFAULT_RANKS, 1)? as u32,
        concurrency: s.int("concurrency", DEFAULT_CONCURRENCY, 1)? as u32,
        chunk: s.int("chunk", DEFAULT_CHUNK, 1)? as u64,
    };
    let shell = s.take("shell");
    let has_run = s.map.contains_key("run");
    let has_map = s.map.contains_key("map") || s.map.contains_key("finish");
    let script = s.take("script");
    let mut st = state.lock().map_err(|_| "workflow state poisoned")?;
    let declared_in = ctx
        .call_source()
        .map(Into::into)
        .unwrap_or_else(|| st.main_file.clone());
    let software = s.software(&declared_in)?;
    let mut code = Vec::new();
    let work = match (shell, has_run, has_map) {
        (shell, run, map) if script.is_some() && (shell.is_some() || run || map) => {
            return s.err(
                "script",
                "cannot be combined with `shell`, `run` or `map`: a rule does one kind of work",
            )
        }
        _ if script.is_some() => {
            let (decl, text) = s.script(script.unwrap_or_default(), &declared_in)?;
            code.push(text);
            WorkDecl::Script(decl)
        }
        (Some(_), true, _) => return s.err("shell", "and `run` cannot both be given; pick one"),
        (Some(_), _, true) | (None, true, true) => {
            return s.err(
                "map",
                "cannot be combined with `shell` or `run`: a rule does one kind of work",
            )
        }
        (Some(sh), false, false) => {
            if !sh.is_string() {
                return s.err("shell", format!("must be a string, not {}", type_name(&sh)));
            }
            let text = sh.to_string();
            code.push(normalize_code(&text));
            WorkDecl::Shell(text)
        }
        (None, true, false) => match s.closure("run", &mut st, &mut code)? {
            Some(id) => WorkDecl::Run(id),
            None => WorkDecl::Nothing,
        },
        (None, false, true) => {
            let items = if kind == ModelKind::Chunked {
                if s.map.contains_key("items") {
                    return s.err(
                        "items",
                        "is made by the `chunked` model from the first input; remove it",
                    );
                }
                Items::Chunks
            } else if let Some(v) = s.map.get("items").filter(|v| v.is_fnptr()).cloned() {
                let _ = v;
                Items::Closure(s.closure("items", &mut st, &mut code)?.ok_or("items")?)
            } else {
                match s.map.get("items") {
                    Some(v) if v.is_array() => {
                        Items::Values(s.value("items", &mut st, &mut code).ok_or("items")?)
                    }
                    Some(v) => {
                        let t = type_name(v);
                        return s.err(
                            "items",
                            format!("must be an array or a closure of `job`, not {t}"),
                        );
                    }
                    None => {
                        return s.err(
                            "items",
                            "is missing: a map/reduce rule maps each of its `items`",
                        )
                    }
                }
            };
            let Some(map) = s.closure("map", &mut st, &mut code)? else {
                return s.err("map", "is missing: give `map: |job, item| ...`");
            };
            let reduce = s.closure("reduce", &mut st, &mut code)?;
            let init = s.value("init", &mut st, &mut code);
            if init.is_some() && reduce.is_none() {
                return s.err("init", "needs `reduce`: it is where the reduction starts");
            }
            let Some(finish) = s.closure("finish", &mut st, &mut code)? else {
                return s.err(
                    "finish",
                    "is missing: give `finish: |job, result| ...` to write the outputs",
                );
            };
            WorkDecl::MapReduce(MapReduceDecl {
                items,
                map,
                reduce,
                init,
                finish,
            })
        }
        (None, false, false) => {
            for key in ["items", "reduce", "init"] {
                if s.map.contains_key(key) {
                    return s.err(
                        key,
                        "belongs to the map/reduce form, which also needs `map` and `finish`",
                    );
                }
            }
            WorkDecl::Nothing
        }
    };
    let functions = s.register_functions(&mut st, &mut code)?;
    let code = code.join("\n");
    let pos = ctx.call_position();
    let imported = declared_in != st.main_file;
    let origin = pos.line().map(|line| Origin {
        file: declared_in,
        line,
        column: pos.position().unwrap_or(1),
    });
    st.rules.push(RuleDecl {
        name: name.to_string(),
        inputs,
        outputs,
        logs,
        benchmark,
        params,
        work,
        code,
        model,
        priority,
        resources,
        cluster,
        local,
        retries: retries as u32,
        timeout,
        allow_outside,
        cache,
        wildcard_constraints,
        message,
        default_target,
        imported,
        software,
        origin,
        functions,
        checkpoint,
    });
    Ok(())
}
