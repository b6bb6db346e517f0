//! Turning Rhai errors into [`Diagnostic`]s.
//!
//! Rhai's errors carry no file name, and an error inside a function or an imported module is
//! nested (`ErrorInFunctionCall`, `ErrorInModule`). We unwrap to the innermost error, keeping
//! track of which file each level belongs to, so the user sees the real spot.

use std::path::{Path, PathBuf};

use rhai::{EvalAltResult, Position};

use crate::diagnostic::{Diagnostic, Origin};

/// Token used to end a definition that ran too many operations.
pub const LIMIT_TOKEN: &str = "flowrun:operation-limit";
/// Token used to end a closure because the run was interrupted.
pub const INTERRUPT_TOKEN: &str = "flowrun:interrupted";
/// Why the engine stopped a closure whose job ran past its `timeout`.
pub const TIMEOUT_TOKEN: &str = "flowrun:timeout";
/// Token used to end a definition that holds too much memory.
pub const MEMORY_TOKEN: &str = "flowrun:memory-limit";

/// Operations allowed while a workflow file is being evaluated.
pub const DEFINITION_MAX_OPERATIONS: u64 = 50_000_000;

fn origin(file: &Path, pos: Position) -> Option<Origin> {
    Some(Origin {
        file: file.to_path_buf(),
        line: pos.line()?,
        column: pos.position().unwrap_or(1),
    })
}

/// Resolves an `import` path the way Rhai's file resolver does: relative to the importing file,
/// with `.rhai` appended.
pub fn module_path(importer: &Path, path: &str) -> PathBuf {
    let mut p = importer
        .parent()
        .map(|d| d.join(path))
        .unwrap_or_else(|| PathBuf::from(path));
    if p.extension().is_none() {
        p.set_extension("rhai");
    }
    p
}

/// Converts a Rhai error raised while running code from `file`.
pub fn diagnose(err: &EvalAltResult, file: &Path) -> Diagnostic {
    let mut source = file.to_path_buf();
    // The innermost position seen so far, with the file it belongs to.
    let mut fallback: Option<(PathBuf, Position)> = None;
    let mut context = Vec::new();
    let mut err = err;
    loop {
        match err {
            EvalAltResult::ErrorInFunctionCall(name, src, inner, pos) => {
                if !pos.is_none() {
                    fallback = Some((source.clone(), *pos));
                }
                if !src.is_empty() {
                    source = PathBuf::from(src);
                }
                if !name.starts_with("anon$") && name != "rule" {
                    context.push(format!("in function `{name}`"));
                }
                err = inner;
            }
            EvalAltResult::ErrorInModule(path, inner, pos) => {
                if !pos.is_none() {
                    fallback = Some((source.clone(), *pos));
                }
                source = module_path(&source, path);
                context.push(format!("in rule file `{}`", source.display()));
                err = inner;
            }
            leaf => {
                let pos = leaf.position();
                let at = if pos.is_none() {
                    fallback.and_then(|(f, p)| origin(&f, p))
                } else {
                    origin(&source, pos)
                };
                let mut d = Diagnostic::new(leaf_message(leaf)).at(at);
                if let EvalAltResult::ErrorTerminated(token, _) = leaf {
                    let token = token.to_string();
                    if token == LIMIT_TOKEN || token == MEMORY_TOKEN {
                        d = d.hint("a workflow file should only declare rules; heavy work belongs in rule bodies");
                    }
                }
                if let EvalAltResult::ErrorStackOverflow(_) = leaf {
                    d = d.hint("is there a recursion without an end?");
                }
                if !context.is_empty() && d.origin.is_none() {
                    d.message.push_str(&format!(" ({})", context.join(", ")));
                }
                return d;
            }
        }
    }
}

fn leaf_message(err: &EvalAltResult) -> String {
    match err {
        EvalAltResult::ErrorRuntime(value, _) => {
            let text = value.to_string();
            if text.is_empty() || value.is_unit() {
                "script error".to_string()
            } else {
                text
            }
        }
        EvalAltResult::ErrorTerminated(token, _) if token.to_string() == LIMIT_TOKEN => format!(
            "the workflow ran more than {DEFINITION_MAX_OPERATIONS} operations while being defined (an endless loop?)"
        ),
        EvalAltResult::ErrorTerminated(token, _) if token.to_string() == INTERRUPT_TOKEN => {
            "interrupted".to_string()
        }
        EvalAltResult::ErrorTerminated(token, _) if token.to_string() == TIMEOUT_TOKEN => {
            "timed out".to_string()
        }
        EvalAltResult::ErrorTerminated(token, _) if token.to_string() == MEMORY_TOKEN => format!(
            "the workflow held more than {} MiB of memory while being defined (a runaway string or list?)",
            crate::memory::limit() >> 20
        ),
        EvalAltResult::ErrorStackOverflow(_) => "function calls are nested too deeply".to_string(),
        EvalAltResult::ErrorParsing(kind, _) => format!("syntax error: {kind}"),
        other => {
            // Rhai appends ` (line L, position P)`; the diagnostic shows the place itself.
            let text = other.to_string();
            match text.rfind(" (line ") {
                Some(i) if text.ends_with(')') => text[..i].to_string(),
                _ => text,
            }
        }
    }
}
