//! The one door to Rhai: evaluating workflow files and calling rule closures.
//!
//! [`load`] evaluates a workflow under the definition-time sandbox and limits, and hands back
//! plain [`RuleDecl`]s plus a [`Runtime`] that can later call the rules' closures. Nothing
//! outside this module touches Rhai types.

mod callees;
mod checkpoint;
mod closure;
mod command;
pub(crate) mod config;
mod declare;
mod errors;
mod evaluate;
mod helpers;
mod job;
mod mapreduce;
mod resolver;
mod snakemake;
mod table;

pub mod wire;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use rhai::{Dynamic, Engine};

pub use command::CommandRunner;
pub use declare::RULE_KEYS;
pub use job::{JobSpec, NamedPaths};
pub use mapreduce::{Folder, Value};
pub use snakemake::Handler;

use crate::diagnostic::Diagnostic;
use crate::rules::decl::{ClosureId, RuleDecl};
use crate::sandbox;
use closure::{CodeSources, StoredClosure};

/// What evaluating a workflow collects.
pub(crate) struct State {
    main_file: PathBuf,
    user_config: serde_json::Value,
    rules: Vec<RuleDecl>,
    closures: Vec<StoredClosure>,
    values: Vec<Dynamic>,
    constraints: BTreeMap<String, String>,
    /// `rule_order([...])` clauses, in the order given.
    rule_order: Vec<Vec<String>>,
    /// `onstart`/`onsuccess`/`onerror` closures, in the order given.
    handlers: Vec<(Handler, ClosureId)>,
    /// What `checkpoint_output` needs and records.
    checkpoints: checkpoint::Checkpoints,
    /// What closures' code fingerprints are made from.
    code_sources: CodeSources,
}

pub(crate) type SharedState = Arc<Mutex<State>>;

/// How to load a workflow.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct LoadOptions {
    pub file: PathBuf,
    pub config_files: Vec<PathBuf>,
    pub config_overrides: Vec<String>,
}

/// A loaded workflow: its declarations and what is needed to run its closures.
pub struct Workflow {
    pub rules: Vec<RuleDecl>,
    pub constraints: BTreeMap<String, String>,
    /// `rule_order` clauses, each from most to least preferred.
    pub rule_order: Vec<Vec<String>>,
    /// Every file the definition depends on: every file evaluating it read (the workflow,
    /// imported rule files, config files, tables, a JSON file...), sorted.
    pub sources: Vec<PathBuf>,
    /// Directories `glob_wildcards` walked (the top ones): a file appearing there changes the
    /// workflow.
    pub globbed: Vec<PathBuf>,
    /// What evaluating the workflow read, as it was just before ([`sandbox::noting`]).
    pub read: Vec<sandbox::Seen>,
    pub runtime: Runtime,
}

/// Calls rule closures at run time.
pub struct Runtime {
    handlers: Vec<(Handler, ClosureId)>,
    engine: Engine,
    options: LoadOptions,
    closures: Vec<StoredClosure>,
    values: Vec<Dynamic>,
    /// Tells this loaded workflow from any other in the process (watch mode reloads): threads
    /// keep their own copies of closures by it ([`StoredClosure::for_this_thread`]).
    generation: u64,
}

fn new_engine(state: &SharedState) -> Engine {
    static SEED: std::sync::Once = std::sync::Once::new();
    SEED.call_once(|| {
        // Fixed hashing keeps closure names and map iteration identical from run to run.
        let _ = rhai::config::hashing::set_hashing_seed(Some([0x666c, 0x6f77, 0x7275, 0x6e21]));
    });
    let mut engine = Engine::new();
    engine
        .set_max_call_levels(64)
        .set_max_expr_depths(128, 64)
        .set_fail_on_invalid_map_property(true);
    // `protected` is a reserved keyword in Rhai; the `protected(path)` helper needs it as a
    // plain name.
    #[allow(deprecated)]
    engine.on_parse_token(|token, _, _| match token {
        rhai::Token::Reserved(s) if s.as_str() == "protected" => rhai::Token::Identifier(s),
        other => other,
    });
    engine.on_progress(|ops| {
        if crate::interrupt::requested() {
            return Some(Dynamic::from(errors::INTERRUPT_TOKEN));
        }
        // A job's `timeout`: looked at every 256 operations, which keeps the clock off the hot path.
        if ops % 256 == 0 && crate::interrupt::past_deadline() {
            return Some(Dynamic::from(errors::TIMEOUT_TOKEN));
        }
        if sandbox::phase() != sandbox::Phase::Definition {
            return None;
        }
        if ops > errors::DEFINITION_MAX_OPERATIONS {
            return Some(Dynamic::from(errors::LIMIT_TOKEN));
        }
        // A thread-local read: cheap enough to look at every operation, which a doubling string
        // needs (each step doubles it).
        crate::memory::over_limit().then(|| Dynamic::from(errors::MEMORY_TOKEN))
    });
    engine.on_print(|s| eprintln!("{s}"));
    engine.on_debug(|s, src, pos| {
        eprintln!(
            "[debug] {}{pos:?}: {s}",
            src.map(|s| format!("{s} ")).unwrap_or_default()
        )
    });
    crate::native::register(&mut engine);
    helpers::register(&mut engine, state);
    snakemake::register(&mut engine, state);
    checkpoint::register(&mut engine, state);
    job::register(&mut engine);
    command::register(&mut engine);
    let st = state.clone();
    engine.register_fn(
        "rule",
        move |ctx: rhai::NativeCallContext, name: &str, spec: rhai::Map| {
            declare::declare(ctx, &st, name, spec)
        },
    );
    engine
}

/// Evaluates a workflow file.
pub fn load(opts: &LoadOptions) -> Result<Workflow, Diagnostic> {
    sandbox::set_phase(sandbox::Phase::Definition);
    crate::memory::start_counting(crate::memory::definition_limit());
    if !opts.file.is_file() {
        return Err(Diagnostic::new(format!(
            "workflow file `{}` does not exist",
            opts.file.display()
        ))
        .hint("name a workflow file, e.g. `flowrun workflows/colmean.rhai`"));
    }
    // What the definition depends on is what evaluating it read, as the sandbox noted it (the
    // workflow, its config files, imported files, tables...): one record of reads for watch
    // mode, for the remembered results of functions and for anything else.
    let (evaluated, read) = sandbox::noting(|| evaluate(opts));
    let (mut engine, state) = evaluated?;
    let mut sources = Vec::new();
    let mut listed = Vec::new();
    for seen in &read {
        match seen {
            sandbox::Seen::File(path, _) => sources.push(path.clone()),
            sandbox::Seen::Listing(dir, _) => listed.push(dir),
        }
    }
    let globbed = listed
        .iter()
        .filter(|d| !listed.iter().any(|up| up != *d && d.starts_with(up)))
        .map(|d| d.to_path_buf())
        .collect();
    let mut st = state
        .lock()
        .map_err(|_| Diagnostic::new("workflow state poisoned"))?;
    let held = &mut *st;
    held.checkpoints.learn(&held.rules);
    let rules = std::mem::take(&mut st.rules);
    let closures = std::mem::take(&mut st.closures);
    let values = std::mem::take(&mut st.values);
    let constraints = std::mem::take(&mut st.constraints);
    let rule_order = std::mem::take(&mut st.rule_order);
    let handlers = std::mem::take(&mut st.handlers);
    drop(st);
    // Rhai's string interner is one lock that every call takes for property names and strings,
    // which kept the planner's function calls from gaining much from a second core (with the
    // allocation counter `memory.rs` tells of, 10,000 calls took as long on two cores as on
    // one). It saves memory while the file is compiled; the calls after that do without it.
    engine.set_max_strings_interned(0);
    Ok(Workflow {
        rules,
        constraints,
        rule_order,
        sources,
        globbed,
        read,
        runtime: Runtime {
            engine,
            options: opts.clone(),
            closures,
            values,
            handlers,
            generation: {
                static LOADED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
                LOADED.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            },
        },
    })
}

/// Reads the config and runs the workflow file, in an engine whose state collects what it
/// declares.
fn evaluate(opts: &LoadOptions) -> Result<(Engine, SharedState), Diagnostic> {
    let file = opts.file.clone();
    sandbox::reading(&file);
    let user_config = config::user_config(&opts.config_files, &opts.config_overrides)?;
    let code_sources = CodeSources::default();
    let rule_files = code_sources.rule_files.clone();
    let state: SharedState = Arc::new(Mutex::new(State {
        main_file: file.clone(),
        user_config,
        rules: Vec::new(),
        closures: Vec::new(),
        values: Vec::new(),
        constraints: BTreeMap::new(),
        rule_order: Vec::new(),
        handlers: Vec::new(),
        checkpoints: checkpoint::Checkpoints::default(),
        code_sources,
    }));
    let mut engine = new_engine(&state);
    resolver::install(&mut engine, rule_files);
    let ast = engine
        .compile_file(file.clone())
        .map_err(|e| errors::diagnose(&e, &file))?;
    engine
        .run_ast(&ast)
        .map_err(|e| errors::diagnose(&e, &file))?;
    Ok((engine, state))
}

impl Runtime {
    /// Calls a `run` closure for one job; `shell()` inside it runs commands with `runner`.
    pub fn call_run(
        &self,
        id: ClosureId,
        job: &JobSpec,
        runner: CommandRunner,
    ) -> Result<(), Diagnostic> {
        let map = job::job_map(job).map_err(|e| errors::diagnose(&e, &self.options.file))?;
        command::with_job(job, runner, || self.call(id, (map,)).map(|_| ()))
    }

    /// Calls the workflow's `kind` handlers (`onstart(|| ...)` and the like) in the order they
    /// were given, stopping at the first that fails; `shell()` inside them runs with `runner`.
    pub fn call_handlers(&self, kind: Handler, runner: &CommandRunner) -> Result<(), Diagnostic> {
        let job = JobSpec {
            rule: kind.name().to_string(),
            input: Vec::new(),
            output: Vec::new(),
            log: Vec::new(),
            wildcards: Default::default(),
            params: Default::default(),
            threads: 1,
            resources: BTreeMap::new(),
            attempt: 1,
        };
        for (_, id) in self.handlers.iter().filter(|(k, _)| *k == kind) {
            command::with_job(&job, runner.clone(), || self.call(*id, ()).map(|_| ()))?;
        }
        Ok(())
    }

    /// Runs the Rhai script file `path` (a rule's `script`) with `job` in scope.
    pub fn run_script(&self, path: &std::path::Path, job: &JobSpec) -> Result<(), Diagnostic> {
        let ast = self
            .engine
            .compile_file(path.to_path_buf())
            .map_err(|e| errors::diagnose(&e, path))?;
        let map = job::job_map(job).map_err(|e| errors::diagnose(&e, path))?;
        let mut scope = rhai::Scope::new();
        scope.push_constant("job", map);
        self.engine
            .run_ast_with_scope(&mut scope, &ast)
            .map_err(|e| errors::diagnose(&e, path))
    }

    /// How this workflow was loaded (worker processes load it the same way).
    pub fn options(&self) -> &LoadOptions {
        &self.options
    }
}
