//! Module resolution for `import "../rules/x" as x;`: Rhai's file resolver, fresh for every
//! load (its cache would otherwise hide edits and skip a module's rule declarations), wrapped to
//! record which rule files were imported (watch mode watches them).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use rhai::module_resolvers::FileModuleResolver;
use rhai::{Engine, EvalAltResult, Module, ModuleResolver, Position, Shared};

struct Tracking {
    inner: FileModuleResolver,
    seen: Arc<Mutex<Vec<PathBuf>>>,
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
        if let Ok(mut seen) = self.seen.lock() {
            if !seen.contains(&file) {
                seen.push(file.clone());
            }
        }
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
        let result = self
            .inner
            .resolve(engine, source, &file.to_string_lossy(), pos);
        if let Ok(mut loading) = self.loading.lock() {
            loading.pop();
        }
        result
    }
}

/// Installs a fresh resolver; the returned list fills with the imported files.
pub fn install(engine: &mut Engine) -> Arc<Mutex<Vec<PathBuf>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    engine.set_module_resolver(Tracking {
        inner: FileModuleResolver::new(),
        seen: seen.clone(),
        loading: Mutex::new(Vec::new()),
    });
    seen
}
