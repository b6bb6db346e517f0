//! The script functions a closure calls, directly or through other script functions.
//!
//! A rule's code fingerprint covers the source of its closures (`closure.rs`). A helper defined
//! with `fn` in the workflow or in a rule file it imports is as much the rule's code: editing it
//! must rerun the jobs of every rule whose closures reach it, and only those. So we follow calls
//! on Rhai's AST, resolving each one the way Rhai does when the closure runs:
//!
//! - a plain call `f(a, b)`, or a method-style call `x.f(a, b)` (where `this` is `x`), names the
//!   script function `f` with that many parameters: first in the library of the rule file the
//!   calling function belongs to, then in the namespaces `rule(...)` was called from, innermost
//!   first. A call that names no script function is a native one and is not followed. A
//!   method-style call may also run a typed method (`fn int.f()`), picked by the type `x` has
//!   when the closure runs: all of that name and arity are followed;
//! - a namespaced call `m::f(a)` names `f` in the module imported as `m` (`m::sub::f` in the
//!   module `m` imported as `sub`);
//! - a function pointer written in the code names every script function of that name (its arity
//!   is only known when it is called): a nested closure `|x| ...`, and `Fn("f")` with a literal
//!   name, which Rhai folds into a constant pointer. A function pointer the closure captured is
//!   followed the same way.
//!
//! A pointer made while the script runs (`Fn(name)` from a variable, `call` on a pointer passed in
//! as data, `eval`) cannot be followed; `docs/staleness.md` recommends params for such cases.
//!
//! Rhai keeps each rule file's private functions in the file's own library, which an imported
//! module does not expose; `resolver.rs` keeps those libraries for us ([`RuleFileLibraries`]).

#![allow(deprecated)] // Rhai marks the internals API volatile, not deprecated.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use rhai::{
    ASTNode, Dynamic, Expr, FnCallExpr, FnPtr, ImmutableString, Module, ScriptFuncDef, Shared,
    Stmt, AST,
};

/// The whole function library of each imported rule file, private functions included, by the
/// file's module id (its full path).
pub type RuleFileLibraries = Arc<Mutex<HashMap<String, Shared<Module>>>>;

/// The prefix Rhai gives the functions it makes of closures (`FN_ANONYMOUS`, not exported).
const ANONYMOUS_PREFIX: &str = "anon$";

/// Where a call made by a function is resolved.
#[derive(Clone, Copy)]
enum Home<'a> {
    /// A function of the namespaces `rule(...)` was called from.
    Caller,
    /// A function of an imported rule file: its own library and imports come first.
    RuleFile {
        library: &'a Module,
        imports: &'a Module,
    },
}

/// A call as written, before it is resolved.
#[derive(Debug, Clone)]
enum Call {
    /// `f(a)`; `hash` is Rhai's hash of name and arity, the key of its libraries.
    Plain {
        name: ImmutableString,
        arity: usize,
        hash: u64,
    },
    /// `x.f(a)`, where `this` is `x`: a plain function as above, or a typed method
    /// (`fn int.f(a)`) for the type `x` has when the closure runs.
    Method {
        name: ImmutableString,
        arity: usize,
        hash: u64,
    },
    /// `m::f(a)`: `path` is `["m"]`.
    Qualified {
        path: Vec<ImmutableString>,
        name: ImmutableString,
        arity: usize,
    },
    /// A function pointer with a name known before the script runs.
    Pointer { name: ImmutableString },
}

/// The calls written in each function walked so far during one load: a helper shared by many
/// rules is walked once. Keyed by the function's address; the entry holds the function, so the
/// address cannot be reused by another one while it is cached.
#[derive(Default)]
pub struct CallCache(HashMap<usize, (Shared<ScriptFuncDef>, Arc<[Call]>)>);

impl CallCache {
    fn calls(&mut self, def: &Shared<ScriptFuncDef>) -> Arc<[Call]> {
        let key = Shared::as_ptr(def) as usize;
        let (_, found) = self
            .0
            .entry(key)
            .or_insert_with(|| (def.clone(), calls(def).into()));
        found.clone()
    }
}

/// A script function a closure reaches.
pub struct Reached<'a> {
    pub def: Shared<ScriptFuncDef>,
    /// The id of the module it is defined in (its file), if it has one.
    pub file: Option<&'a str>,
}

/// The namespaces a closure was declared in: what its calls can reach.
pub struct Namespaces<'a> {
    /// Function libraries searched for a plain call, innermost first.
    libraries: Vec<&'a Module>,
    /// Imported modules by alias, the latest import first.
    imports: Vec<(&'a str, &'a Module)>,
    rule_files: &'a HashMap<String, Shared<Module>>,
}

impl<'a> Namespaces<'a> {
    /// `libraries` as `NativeCallContext::iter_namespaces` gives them (outermost first),
    /// `imports` as `NativeCallContext::iter_imports` does (latest first).
    pub fn new(
        libraries: impl Iterator<Item = &'a Module>,
        imports: impl Iterator<Item = (&'a str, &'a Module)>,
        rule_files: &'a HashMap<String, Shared<Module>>,
    ) -> Self {
        let mut libraries: Vec<&Module> = libraries.collect();
        libraries.reverse();
        Namespaces {
            libraries,
            imports: imports.collect(),
            rule_files,
        }
    }

    /// Every named script function `closure` reaches, directly, through other script functions,
    /// or through the function pointers in `captured`; each once, breadth first (the functions it
    /// calls itself first, in the order they are written).
    /// Anonymous functions (nested closures) are followed but not listed: their text is part of
    /// the function they are written in, or of a captured value.
    pub fn reached(
        &self,
        closure: &Shared<ScriptFuncDef>,
        captured: &[Dynamic],
        cache: &mut CallCache,
    ) -> Vec<Reached<'a>> {
        let mut first = cache.calls(closure).to_vec();
        first.extend(captured.iter().filter_map(|value| {
            let pointer = value.read_lock::<FnPtr>()?;
            Some(Call::Pointer {
                name: pointer.fn_name().into(),
            })
        }));
        let mut seen: HashSet<*const ScriptFuncDef> = HashSet::from([Shared::as_ptr(closure)]);
        let mut found = Vec::new();
        let mut todo = VecDeque::from([(Arc::<[Call]>::from(first), Home::Caller)]);
        while let Some((calls_made, home)) = todo.pop_front() {
            for call in calls_made.iter() {
                for (def, def_home, file) in self.resolve(call, home) {
                    if !seen.insert(Shared::as_ptr(&def)) {
                        continue;
                    }
                    todo.push_back((cache.calls(&def), def_home));
                    if !def.name.starts_with(ANONYMOUS_PREFIX) {
                        found.push(Reached { def, file });
                    }
                }
            }
        }
        found
    }

    /// The script functions `call`, made by a function at `home`, can run, each with its home.
    fn resolve(
        &self,
        call: &Call,
        home: Home<'a>,
    ) -> Vec<(Shared<ScriptFuncDef>, Home<'a>, Option<&'a str>)> {
        let own = match home {
            Home::RuleFile { library, .. } => Some((library, home)),
            Home::Caller => None,
        };
        let searched = own
            .into_iter()
            .chain(self.libraries.iter().map(|lib| (*lib, Home::Caller)));
        match call {
            Call::Plain { name, arity, hash } | Call::Method { name, arity, hash } => {
                let searched: Vec<_> = searched.collect();
                let mut found: Vec<_> = searched
                    .iter()
                    .filter(|(lib, _)| lib.contains_fn(*hash))
                    .find_map(|(lib, at)| {
                        Some((lib.get_script_fn(name, *arity)?.clone(), *at, lib.id()))
                    })
                    .into_iter()
                    .collect();
                if let Call::Method { .. } = call {
                    // The receiver's type is known only when the closure runs: every typed
                    // method of this name and arity may be the one called.
                    found.extend(named(&searched, name, |def| {
                        def.params.len() == *arity && def.this_type.is_some()
                    }));
                }
                found
            }
            // Its arity is known only when it is called.
            Call::Pointer { name } => named(&searched.collect::<Vec<_>>(), name, |_| true),
            Call::Qualified { path, name, arity } => {
                let Some(module) = self.module(path, home) else {
                    return Vec::new();
                };
                let Some(def) = module.get_script_fn(name, *arity) else {
                    return Vec::new();
                };
                let library = module
                    .id()
                    .and_then(|id| self.rule_files.get(id))
                    .map_or(module, |lib| &**lib);
                let at = Home::RuleFile {
                    library,
                    imports: module,
                };
                vec![(def.clone(), at, module.id())]
            }
        }
    }

    /// The module a namespace path names, seen from a function at `home`.
    fn module(&self, path: &[ImmutableString], home: Home<'a>) -> Option<&'a Module> {
        let (root, rest) = path.split_first()?;
        let own = match home {
            Home::RuleFile { imports, .. } => imports.get_sub_module(root),
            Home::Caller => None,
        };
        let root = own.or_else(|| {
            self.imports
                .iter()
                .find(|(alias, _)| *alias == root.as_str())
                .map(|(_, module)| *module)
        })?;
        rest.iter()
            .try_fold(root, |module, name| module.get_sub_module(name))
    }
}

/// The script functions called `name` that `keep` accepts in each of `libraries`, library by
/// library, each library's in a fixed order (by `this` type, then arity), not its hash order.
fn named<'a>(
    libraries: &[(&'a Module, Home<'a>)],
    name: &str,
    keep: impl Fn(&ScriptFuncDef) -> bool,
) -> Vec<(Shared<ScriptFuncDef>, Home<'a>, Option<&'a str>)> {
    libraries
        .iter()
        .flat_map(|(lib, at)| {
            let mut defs: Vec<_> = lib
                .iter_script_fn_info()
                .filter(|(.., fn_name, _, def)| *fn_name == name && keep(def))
                .map(|(.., def)| def.clone())
                .collect();
            defs.sort_by(|a, b| {
                (&a.this_type, a.params.len()).cmp(&(&b.this_type, b.params.len()))
            });
            defs.into_iter().map(move |def| (def, *at, lib.id()))
        })
        .collect()
}

/// Calls `on_node` with every statement and expression in the body of `def`, in the order the
/// AST holds them (nested closures are functions of their own, not walked).
pub(super) fn walk_body(def: &Shared<ScriptFuncDef>, mut on_node: impl FnMut(&ASTNode)) {
    // Rhai does not export the type of a function's body; an AST holding only this function
    // walks just its body.
    let mut library = Module::new();
    library.set_script_fn(def.clone());
    let ast = AST::new(Vec::<Stmt>::new(), library);
    ast.walk(&mut |path: &[ASTNode]| {
        if let Some(node) = path.last() {
            on_node(node);
        }
        true
    });
}

/// The calls written in the body of `def`, in the order the AST holds them.
fn calls(def: &Shared<ScriptFuncDef>) -> Vec<Call> {
    let mut found = Vec::new();
    walk_body(def, |node| match node {
        ASTNode::Stmt(Stmt::FnCall(call, _)) | ASTNode::Expr(Expr::FnCall(call, _)) => {
            found.extend(function_call(call));
        }
        ASTNode::Expr(Expr::MethodCall(call, _)) if !call.hashes.is_native_only() => {
            found.push(Call::Method {
                name: call.name.clone(),
                arity: call.args.len(),
                hash: call.hashes.script(),
            });
        }
        ASTNode::Expr(Expr::DynamicConstant(value, _)) => {
            if let Some(pointer) = value.read_lock::<FnPtr>() {
                found.push(Call::Pointer {
                    name: pointer.fn_name().into(),
                });
            }
        }
        _ => {}
    });
    found
}

/// What a function-call expression may call: nothing for an operator or another call that can
/// only reach a native function.
fn function_call(call: &FnCallExpr) -> Option<Call> {
    if call.hashes.is_native_only() {
        return None;
    }
    if call.namespace.is_empty() {
        return Some(Call::Plain {
            name: call.name.clone(),
            arity: call.args.len(),
            hash: call.hashes.script(),
        });
    }
    Some(Call::Qualified {
        path: call
            .namespace
            .path
            .iter()
            .map(|id| id.name.clone())
            .collect(),
        name: call.name.clone(),
        arity: call.args.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compile(script: &str) -> AST {
        rhai::Engine::new().compile(script).unwrap()
    }

    /// The names of the named functions the closure `closure` of `script` reaches.
    fn reached_from(script: &str, closure: &str) -> Vec<String> {
        let ast = compile(script);
        let lib = ast.shared_lib();
        let root = lib.get_script_fn(closure, 1).unwrap().clone();
        let files = HashMap::new();
        let spaces = Namespaces::new([&**lib].into_iter(), std::iter::empty(), &files);
        spaces
            .reached(&root, &[], &mut CallCache::default())
            .iter()
            .map(|r| {
                let typed = r
                    .def
                    .this_type
                    .as_ref()
                    .map_or(String::new(), |t| format!("{t}."));
                format!("{typed}{}/{}", r.def.name, r.def.params.len())
            })
            .collect()
    }

    #[test]
    fn calls_of_every_kind_are_found_in_order() {
        let ast = compile(
            "fn f(job) { g(1); let x = h(job, 2) + 1; x.m(3); m::q(4); let p = Fn(\"p\"); print(x); }",
        );
        let def = ast.shared_lib().get_script_fn("f", 1).unwrap().clone();
        let names: Vec<String> = calls(&def)
            .iter()
            .map(|call| match call {
                Call::Plain { name, arity, .. } => format!("{name}/{arity}"),
                Call::Method { name, arity, .. } => format!(".{name}/{arity}"),
                Call::Qualified { path, name, arity } => format!("{path:?}::{name}/{arity}"),
                Call::Pointer { name } => format!("Fn({name})"),
            })
            .collect();
        assert_eq!(
            names,
            ["g/1", "h/2", ".m/1", "[\"m\"]::q/1", "Fn(p)", "print/1"]
        );
    }

    #[test]
    fn helpers_are_followed_transitively_by_name_and_arity() {
        let script = "fn run(job) { a(job); }\n\
                      fn a(x) { b(x, 1); to_upper(x); }\n\
                      fn a(x, y) { unrelated(); }\n\
                      fn b(x, y) { x.c(); }\n\
                      fn c() { this }\n\
                      fn unrelated() {}";
        assert_eq!(reached_from(script, "run"), ["a/1", "b/2", "c/0"]);
    }

    #[test]
    fn recursion_and_cycles_end_and_list_each_function_once() {
        let script = "fn run(job) { even(job); even(1); }\n\
                      fn even(n) { if n == 0 { true } else { odd(n - 1) } }\n\
                      fn odd(n) { if n == 0 { false } else { even(n - 1) } }\n\
                      fn fact(n) { if n < 2 { 1 } else { n * fact(n - 1) } }\n\
                      fn run2(job) { fact(job) }";
        assert_eq!(reached_from(script, "run"), ["even/1", "odd/1"]);
        assert_eq!(reached_from(script, "run2"), ["fact/1"]);
    }

    #[test]
    fn nested_closures_and_literal_pointers_are_followed_but_closures_are_not_listed() {
        let script = "fn run(job) { [1, 2].map(|x| helper(x)); Fn(\"named\").call(1); }\n\
                      fn helper(x) { x }\n\
                      fn named(x) { x }";
        assert_eq!(reached_from(script, "run"), ["named/1", "helper/1"]);
    }

    #[test]
    fn typed_methods_are_followed_for_every_type_they_may_be_called_on() {
        // The receiver's type is known only when the closure runs.
        let script = "fn run(job) { job.double(); 1.double(); }\n\
                      fn int.double() { this * 2 }\n\
                      fn string.double() { this + this }\n\
                      fn double(x) { x }";
        assert_eq!(
            reached_from(script, "run"),
            ["i64.double/0", "string.double/0"]
        );
    }

    #[test]
    fn natives_and_pointers_made_at_run_time_are_not_followed() {
        let script = "fn run(job) { call(Fn(job), 1); len(job); }\n\
                      fn helper(x) { x }";
        assert!(reached_from(script, "run").is_empty());
    }
}
