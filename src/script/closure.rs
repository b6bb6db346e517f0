//! Closures saved from rule declarations and called later, at run time.
//!
//! A closure defined in an imported rule file, or one that calls into an imported module, cannot
//! be called with the main AST alone (see `shared/PLATFORM.md`). We keep the calling context of
//! `rule(...)` (`NativeCallContext::store_data`) and call the closure within it.
//!
//! The closure's *code* is part of its rule's fingerprint: we cut its source text out of the
//! file by the body's span and normalise whitespace, so moving a rule or reformatting it does not
//! cause a rerun, while editing it does. Captured variables count too.

#![allow(deprecated)] // Rhai marks the internals API volatile, not deprecated.

use std::path::Path;

use rhai::{Dynamic, FnPtr, NativeCallContext, NativeCallContextStore, Position};

use crate::rule::normalize_code;

/// A closure with the context it was declared in.
pub struct StoredClosure {
    pub fnptr: FnPtr,
    pub context: NativeCallContextStore,
}

/// The whitespace-normalised source of a closure, plus its captured values.
pub fn closure_code(ctx: &NativeCallContext, fnptr: &FnPtr, main_file: &Path) -> String {
    let mut code = None;
    for module in ctx.iter_namespaces() {
        let def = module
            .iter_script_fn_info()
            .find(|(.., name, _, _)| *name == fnptr.fn_name())
            .map(|(.., def)| def.clone());
        if let Some(def) = def {
            let file = module.id().map(Path::new).unwrap_or(main_file);
            let start = def.body.start_position();
            let end = def.body.end_position();
            code = slice(file, start, end).map(|text| {
                let params: Vec<&str> = def.params.iter().map(|p| p.as_str()).collect();
                format!("|{}| {}", params.join(", "), normalize_code(&text))
            });
            break;
        }
    }
    let mut code = code.unwrap_or_else(|| fnptr.fn_name().to_string());
    for captured in fnptr.curry() {
        code.push_str(&format!(" ·{}", captured_repr(captured)));
    }
    code
}

fn captured_repr(value: &Dynamic) -> String {
    // A shared (captured) value prints as its contents.
    format!("{value:?}")
}

fn slice(file: &Path, start: Position, end: Position) -> Option<String> {
    let text = std::fs::read_to_string(file).ok()?;
    let (sl, sc) = (start.line()?, start.position().unwrap_or(1));
    let (el, ec) = (end.line()?, end.position().unwrap_or(usize::MAX));
    let mut out = String::new();
    for (i, line) in text.lines().enumerate().skip(sl - 1).take(el + 1 - sl) {
        let n = i + 1;
        let from = if n == sl { sc - 1 } else { 0 };
        let to = if n == el { ec } else { usize::MAX };
        let piece: String = line
            .chars()
            .skip(from)
            .take(to.saturating_sub(from))
            .collect();
        out.push_str(&piece);
        out.push('\n');
    }
    Some(out)
}
