//! Closures saved from rule declarations and called later, at run time.
//!
//! A closure defined in an imported rule file, or one that calls into an imported module, cannot
//! be called with the main AST alone (see `shared/PLATFORM.md`). We keep the calling context of
//! `rule(...)` (`NativeCallContext::store_data`) and call the closure within it.
//!
//! The closure's *code* is part of its rule's fingerprint: we cut its source text out of the
//! file by the body's span and normalise whitespace, so moving a rule or reformatting it does not
//! cause a rerun, while editing it does. Captured variables count too, and so does the text of
//! every script function the closure reaches (`callees.rs`), cut out the same way. A closure
//! that calls no script function keeps the code string it had before functions were followed,
//! so upgrading flowrun reruns nothing.

#![allow(deprecated)] // Rhai marks the internals API volatile, not deprecated.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::PoisonError;

use rhai::{
    Dynamic, FnPtr, NativeCallContext, NativeCallContextStore, Position, ScriptFuncDef, Shared,
};

use super::callees::{walk_body, CallCache, Namespaces, RuleFileLibraries};
use crate::rules::decl::normalize_code;

/// A copy of `value` sharing nothing with it, down to its strings. Rhai clones a captured value
/// whenever a function is called with it (`lookup(sheet, ...)` copies the sheet), and cloning a
/// string only counts one more user of it: two threads cloning copies that still shared their
/// strings wrote the same counters, and 5,000 lookups took 19 s of CPU on two cores against 5 s
/// on one.
fn deep_copy(value: &Dynamic) -> Dynamic {
    let value = value.flatten_clone();
    if value.is_string() {
        return Dynamic::from(value.to_string());
    }
    if value.is_array() {
        let items: rhai::Array = value.cast::<rhai::Array>().iter().map(deep_copy).collect();
        return Dynamic::from_array(items);
    }
    if value.is_map() {
        let map: rhai::Map = value
            .cast::<rhai::Map>()
            .iter()
            .map(|(k, v)| (k.as_str().into(), deep_copy(v)))
            .collect();
        return Dynamic::from_map(map);
    }
    if value.is_fnptr() {
        // A captured closure: its own captured values are shared too.
        return Dynamic::from(own_copy(&value.cast::<FnPtr>()));
    }
    value
}

/// Closure `f` with deep copies of its captured values, shared only by whoever holds the copy.
fn own_copy(f: &FnPtr) -> FnPtr {
    let mut copy = f.clone();
    for v in copy.iter_curry_mut() {
        *v = deep_copy(v).into_shared();
    }
    copy
}

/// A closure with the context it was declared in.
pub struct StoredClosure {
    pub fnptr: FnPtr,
    pub context: NativeCallContextStore,
}

thread_local! {
    /// The closures whose captured values this thread has its own copies of, for one loaded
    /// workflow (its generation): closure index → the closure holding the copies.
    static OWN: RefCell<(u64, HashMap<usize, FnPtr>)> = RefCell::new((0, HashMap::new()));
}

impl StoredClosure {
    /// The closure as this thread may call it. The variables a closure captured are shared
    /// values, which Rhai locks for each use and refuses to a second thread meanwhile (`Data race
    /// detected`): two threads mapping with a closure that looks things up in a captured table
    /// failed so. Each thread therefore calls its own copy, with its own copies of the captured
    /// values, made on its first call and kept for the workflow's life (`generation` tells a
    /// reloaded workflow from the last). A closure that captured nothing is used as it is.
    pub fn for_this_thread(&self, generation: u64, index: usize) -> Cow<'_, FnPtr> {
        if !self.fnptr.iter_curry().any(Dynamic::is_shared) {
            return Cow::Borrowed(&self.fnptr);
        }
        OWN.with(|own| {
            let mut own = own.borrow_mut();
            if own.0 != generation {
                *own = (generation, HashMap::new());
            }
            let copy = own.1.entry(index).or_insert_with(|| own_copy(&self.fnptr));
            Cow::Owned(copy.clone())
        })
    }
}

/// What closure fingerprints read while a workflow loads, kept for the whole load: each file is
/// read once, each function body cut out, normalised and walked once, however many rules share
/// it.
#[derive(Default)]
pub struct CodeSources {
    files: HashMap<PathBuf, Option<SourceFile>>,
    calls: CallCache,
    /// The function libraries of the imported rule files, filled by the module resolver.
    pub rule_files: RuleFileLibraries,
}

/// A source file with where its lines start and the function bodies cut out of it so far.
struct SourceFile {
    text: String,
    line_starts: Vec<usize>,
    bodies: HashMap<(Position, Position), Option<String>>,
}

impl CodeSources {
    /// The whitespace-normalised text of `def`'s body, defined in `file`.
    fn body(&mut self, file: &Path, def: &Shared<ScriptFuncDef>) -> Option<&str> {
        if !self.files.contains_key(file) {
            let source = std::fs::read_to_string(file).ok().map(|text| SourceFile {
                line_starts: std::iter::once(0)
                    .chain(text.match_indices('\n').map(|(i, _)| i + 1))
                    .collect(),
                text,
                bodies: HashMap::new(),
            });
            self.files.insert(file.to_path_buf(), source);
        }
        let source = self.files.get_mut(file)?.as_mut()?;
        let (start, end) = (def.body.start_position(), def.body.end_position());
        source
            .bodies
            .entry((start, end))
            .or_insert_with(|| {
                // A body without braces has no end, and Rhai places it at its top expression:
                // for `a + b` (or `a.b`, `a[i]`) that is the operator, which would cut `a` off
                // and miss edits to it. Its text starts at its leftmost node instead.
                let start = if end.is_none() {
                    leftmost(def).unwrap_or(start)
                } else {
                    start
                };
                slice(&source.text, &source.line_starts, start, end).map(|b| normalize_code(&b))
            })
            .as_deref()
    }
}

/// The whitespace-normalised source of a closure, plus its captured values, plus the source of
/// each script function it reaches.
pub fn closure_code(
    ctx: &NativeCallContext,
    fnptr: &FnPtr,
    main_file: &Path,
    sources: &mut CodeSources,
) -> String {
    code(ctx, fnptr, main_file, sources, true)
}

/// The code of a function of the wildcards (`input: |w| ...`): like [`closure_code`], but
/// without the values it captured. A captured sample sheet acts only through what the function
/// returns for each job, which decides reruns by itself; counting the sheet as code would rerun
/// every job of the rule when one row is added.
pub fn function_code(
    ctx: &NativeCallContext,
    fnptr: &FnPtr,
    main_file: &Path,
    sources: &mut CodeSources,
) -> String {
    code(ctx, fnptr, main_file, sources, false)
}

fn code(
    ctx: &NativeCallContext,
    fnptr: &FnPtr,
    main_file: &Path,
    sources: &mut CodeSources,
    captures: bool,
) -> String {
    let found = ctx.iter_namespaces().find_map(|module| {
        module
            .iter_script_fn_info()
            .find(|(.., name, _, _)| *name == fnptr.fn_name())
            .map(|(.., def)| (module.id(), def.clone()))
    });
    let mut code = found
        .as_ref()
        .and_then(|(file, def)| {
            let body = sources.body(file.map_or(main_file, Path::new), def)?;
            Some(format!("|{}| {body}", params(def)))
        })
        .unwrap_or_else(|| fnptr.fn_name().to_string());
    for captured in fnptr.curry().iter().filter(|_| captures) {
        code.push_str(&format!(" ·{}", captured_repr(captured)));
    }
    let Some((_, closure)) = found else {
        return code;
    };
    let rule_files = sources.rule_files.clone();
    let libraries = rule_files.lock().unwrap_or_else(PoisonError::into_inner);
    let namespaces = Namespaces::new(ctx.iter_namespaces(), ctx.iter_imports(), &libraries);
    for reached in namespaces.reached(&closure, fnptr.curry(), &mut sources.calls) {
        let file = reached.file.map_or(main_file, Path::new);
        let body = sources.body(file, &reached.def).unwrap_or_default();
        let typed = reached
            .def
            .this_type
            .as_ref()
            .map_or(String::new(), |t| format!("{t}."));
        code.push_str(&format!(
            "\nfn {typed}{}({}) {body}",
            reached.def.name,
            params(&reached.def)
        ));
    }
    code
}

/// The first position of any statement or expression in `def`'s body.
fn leftmost(def: &Shared<ScriptFuncDef>) -> Option<Position> {
    let mut first: Option<Position> = None;
    walk_body(def, |node| {
        let at = node.position();
        if !at.is_none() {
            first = Some(first.map_or(at, |f| f.min(at)));
        }
    });
    first
}

fn params(def: &ScriptFuncDef) -> String {
    let names: Vec<&str> = def.params.iter().map(|p| p.as_str()).collect();
    names.join(", ")
}

fn captured_repr(value: &Dynamic) -> String {
    // A shared (captured) value prints as its contents.
    format!("{value:?}")
}

/// The text of a function body in `text` (whose lines start at `line_starts`) from `start` to
/// `end`. A closure body without braces (`|job| expr`) has no end position; it runs to the end
/// of its expression.
fn slice(text: &str, line_starts: &[usize], start: Position, end: Position) -> Option<String> {
    let offset = |line: usize, col: usize| -> Option<usize> {
        let line_start = *line_starts.get(line.checked_sub(1)?)?;
        let rest = text.get(line_start..)?;
        Some(
            line_start
                + rest
                    .char_indices()
                    .nth(col - 1)
                    .map_or(rest.len(), |(i, _)| i),
        )
    };
    let mut from = offset(start.line()?, start.position().unwrap_or(1))?;
    if end.is_none() {
        // The opening parentheses before the leftmost node are the body's too: `(a + b) * c`.
        while let Some(paren) = text[..from].trim_end().strip_suffix('(') {
            from = paren.len();
        }
    }
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
    use super::*;

    /// The code string of the closure `script` passes to `code(...)` last.
    fn code_of(script: &str) -> String {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("wf.rhai");
        std::fs::write(&file, script).unwrap();
        let mut engine = rhai::Engine::new();
        let main = file.clone();
        engine.register_fn("code", move |ctx: NativeCallContext, fp: FnPtr| {
            closure_code(&ctx, &fp, &main, &mut CodeSources::default())
        });
        let ast = engine.compile_file(file).unwrap();
        engine.eval_ast::<String>(&ast).unwrap()
    }

    #[test]
    fn a_closure_that_calls_no_script_function_keeps_its_code_string() {
        // The string flowrun made before it followed calls: upgrading must not change it.
        let code = code_of(
            "fn unused(job) { job }\nlet s = \"v1\";\n\
             code(|job| {  write_text(job.output[0],\n    read_text(\"a\") + s) })",
        );
        assert_eq!(
            code,
            "|s, job| { write_text(job.output[0], read_text(\"a\") + s) } ·\"v1\" (shared)"
        );
    }

    #[test]
    fn the_script_functions_a_closure_reaches_follow_its_own_code() {
        let code = code_of(
            "fn outer(x) {\n    inner(x) + 1\n}\nfn inner(x) { x * 2 }\nfn unused() {}\n\
             code(|job| { outer(job) + outer(1) })",
        );
        assert_eq!(
            code,
            "|job| { outer(job) + outer(1) }\nfn outer(x) { inner(x) + 1 }\nfn inner(x) { x * 2 }"
        );
    }

    #[test]
    fn a_closure_without_braces_starts_at_its_leftmost_operand() {
        // Rhai places `a + b` and `a.b` at the operator; the left operand is code too.
        assert_eq!(
            code_of("code(|acc, x| acc * 2 + x)"),
            "|acc, x| acc * 2 + x"
        );
        assert_eq!(code_of("code(|job| job.output[0])"), "|job| job.output[0]");
        assert_eq!(code_of("code(|x| ( x - 1) * 2)"), "|x| ( x - 1) * 2");
        assert_eq!(code_of("code(|x| -x + 1)"), "|x| -x + 1");
        assert_eq!(code_of("code(|x| f(x) + 1)"), "|x| f(x) + 1");
        // A captured variable's share statement does not move the start.
        assert_eq!(
            code_of("let s = 2;\ncode(|x| s * x + 1)"),
            "|s, x| s * x + 1 ·2 (shared)"
        );
    }

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
