//! Module resolution for `import "../rules/x" as x;`: Rhai's file resolver, fresh for every
//! load (its cache would otherwise hide edits and skip a module's rule declarations), wrapped to
//! note each imported file as read (it is part of the definition, which watch mode watches) and
//! to keep each file's whole function library, which closure fingerprints follow calls into
//! (`callees.rs`).

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rhai::module_resolvers::FileModuleResolver;
use rhai::{Engine, EvalAltResult, Module, ModuleResolver, Position, Scope, Shared};

use super::callees::RuleFileLibraries;

struct Tracking {
    inner: FileModuleResolver,
    libraries: RuleFileLibraries,
    /// Files being imported right now, outermost first: an import of one of them is a cycle,
    /// which would otherwise recurse until the stack overflows.
    loading: Mutex<Vec<PathBuf>>,
}

/// How deeply imports may nest.
const MAX_IMPORT_DEPTH: usize = 32;

impl ModuleResolver for Tracking {
    fn resolve(
        &self,
        engine: &Engine,
        source: Option<&str>,
        path: &str,
        pos: Position,
    ) -> Result<Shared<Module>, Box<EvalAltResult>> {
        // Relative to the importing file's directory. The module is then loaded by its full
        // path, which becomes its source: nested imports, closure code and error locations
        // inside it refer to the real file rather than to the import string.
        let base = source.and_then(|s| std::path::Path::new(s).parent());
        let file = self.inner.get_file_path(path, base);
        let file = std::fs::canonicalize(&file).unwrap_or(file);
        // Noted as read: an imported file is part of the workflow's definition.
        crate::sandbox::reading(&file);
        {
            let mut loading = self.loading.lock().map_err(|_| "import state poisoned")?;
            if loading.contains(&file) || loading.len() >= MAX_IMPORT_DEPTH {
                let mut chain: Vec<String> =
                    loading.iter().map(|f| f.display().to_string()).collect();
                chain.push(file.display().to_string());
                let what = if loading.contains(&file) {
                    "imports form a cycle"
                } else {
                    "imports are nested too deeply"
                };
                return Err(Box::new(EvalAltResult::ErrorRuntime(
                    format!("{what}: {}", chain.join(" -> ")).into(),
                    pos,
                )));
            }
            loading.push(file.clone());
        }
        let result = self.load(engine, &file, pos);
        if let Ok(mut loading) = self.loading.lock() {
            loading.pop();
        }
        result
    }
}

impl Tracking {
    /// Compiles and evaluates a rule file as `FileModuleResolver` does, keeping its library.
    fn load(
        &self,
        engine: &Engine,
        file: &Path,
        pos: Position,
    ) -> Result<Shared<Module>, Box<EvalAltResult>> {
        let name = file.to_string_lossy();
        let ast = self
            .inner
            .resolve_ast(engine, None, &name, pos)
            .unwrap_or_else(|| {
                Err(Box::new(EvalAltResult::ErrorModuleNotFound(
                    name.to_string(),
                    pos,
                )))
            })?;
        let module = Module::eval_ast_as_new(Scope::new(), &ast, engine)
            .map_err(|err| Box::new(EvalAltResult::ErrorInModule(name.to_string(), err, pos)))?;
        if let Ok(mut libraries) = self.libraries.lock() {
            libraries.insert(name.to_string(), ast.shared_lib().clone());
        }
        Ok(module.into())
    }
}

/// Installs a fresh resolver; the returned list fills with the imported files, `libraries` with
/// their function libraries.
pub fn install(engine: &mut Engine, libraries: RuleFileLibraries) {
    engine.set_module_resolver(Tracking {
        inner: FileModuleResolver::new(),
        libraries,
        loading: Mutex::new(Vec::new()),
    });
}
