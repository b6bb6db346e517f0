//! Calling a rule's functions of the wildcards (`input: |w| ...`) for one job, on behalf of the
//! graph, which knows them only as closure ids ([`Evaluate`]).
//!
//! The function receives the job's wildcards as a map (`w.s`), then the attempt as an integer
//! when it takes a second argument (`threads` and `resources`), or the job's inputs and outputs
//! as it names them (`params: |w, output| ...`, the same objects as `job.input`), and runs in
//! the definition sandbox: it may read a sample sheet, not write or run anything. What it
//! returns is turned into a plain [`FnValue`] here, so that nothing after the script module
//! sees a Rhai type.

use rhai::{Array, Dynamic, Map};

use super::helpers::Marked;
use super::Runtime;
use crate::rules::decl::ClosureId;
use crate::rules::function::{Called, Evaluate, Extra, FnValue};
use crate::rules::pattern::Wildcards;

impl Evaluate for Runtime {
    fn call(&self, f: ClosureId, wildcards: &Wildcards, extra: Extra) -> Called {
        let map: Map = wildcards
            .iter()
            .map(|(k, v)| (k.as_str().into(), Dynamic::from(v.clone())))
            .collect();
        crate::memory::start_counting(crate::memory::function_limit());
        let (result, checkpoints) = super::checkpoint::collecting(|| match extra {
            Extra::Nothing => Runtime::call(self, f, (map,)),
            Extra::Attempt(n) => Runtime::call(self, f, (map, i64::from(n))),
            Extra::Files(lists) => {
                let mut args = vec![Dynamic::from(map)];
                args.extend(
                    lists
                        .iter()
                        .map(|l| Dynamic::from(super::job::Files::new(l))),
                );
                Runtime::call(self, f, args)
            }
        });
        Called {
            result: result.map(plain),
            checkpoints,
        }
    }
}

fn plain(value: Dynamic) -> FnValue {
    if value.is_unit() {
        return FnValue::Unit;
    }
    if let Ok(b) = value.as_bool() {
        return FnValue::Bool(b);
    }
    if let Ok(n) = value.as_int() {
        return FnValue::Int(n);
    }
    if let Ok(x) = value.as_float() {
        return FnValue::Float(x);
    }
    if value.is_string() || value.is_char() {
        return FnValue::Str(value.to_string());
    }
    if value.is_array() {
        let items = value.cast::<Array>();
        return FnValue::Array(items.into_iter().map(plain).collect());
    }
    if value.is_map() {
        let map = value.cast::<Map>();
        return FnValue::Map(
            map.into_iter()
                .map(|(k, v)| (k.to_string(), plain(v)))
                .collect(),
        );
    }
    match value.try_cast::<Marked>() {
        Some(m) => FnValue::File(m.path, m.kind, m.directory),
        None => FnValue::Other,
    }
}
