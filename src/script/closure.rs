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

/// The text of a closure body from `start` to `end`. A body without braces (`|job| expr`) has no
/// end position; it runs to the end of its expression.
fn slice(file: &Path, start: Position, end: Position) -> Option<String> {
    let text = std::fs::read_to_string(file).ok()?;
    let offset = |line: usize, col: usize| -> Option<usize> {
        let line_start = text
            .split_inclusive('\n')
            .take(line - 1)
            .map(str::len)
            .sum::<usize>();
        let rest = text.get(line_start..)?;
        Some(
            line_start
                + rest
                    .char_indices()
                    .nth(col - 1)
                    .map_or(rest.len(), |(i, _)| i),
        )
    };
    let from = offset(start.line()?, start.position().unwrap_or(1))?;
    match end.line() {
        Some(el) => {
            let to = offset(el, end.position().unwrap_or(1))?;
            let to = text[to..].chars().next().map_or(to, |c| to + c.len_utf8());
            text.get(from..to.max(from)).map(str::to_string)
        }
        None => Some(expression(&text[from..]).to_string()),
    }
}

/// The leading expression of `src`: up to the first `,` or `;` or unbalanced closing bracket
/// outside strings and comments.
fn expression(src: &str) -> &str {
    let bytes = src.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' if depth == 0 => return &src[..i],
            b')' | b']' | b'}' => depth -= 1,
            b',' | b';' if depth == 0 => return &src[..i],
            quote @ (b'"' | b'`' | b'\'') => {
                i += 1;
                while i < bytes.len() && bytes[i] != quote {
                    if bytes[i] == b'\\' && quote != b'`' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i + 1 < bytes.len() && !(bytes[i] == b'*' && bytes[i + 1] == b'/') {
                    i += 1;
                }
                i += 1;
            }
            _ => {}
        }
        i += 1;
    }
    src
}

#[cfg(test)]
mod tests {
    use super::expression;

    #[test]
    fn expression_ends_at_its_own_comma_or_bracket() {
        assert_eq!(expression("f(a, b) + 1, next: 2"), "f(a, b) + 1");
        assert_eq!(
            expression("write(\"a,b)\", `c}`) })"),
            "write(\"a,b)\", `c}`) "
        );
        assert_eq!(
            expression("x // a, comment\n + y;"),
            "x // a, comment\n + y"
        );
    }
}
