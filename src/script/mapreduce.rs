//! Calling the map/reduce closures of a rule: `items`, `map`, `reduce` (with `init`) and
//! `finish`. The execution models decide where `map` runs; folding is always done here, in
//! item order, so the result does not depend on how many threads, processes or ranks mapped.

use rhai::{Array, Dynamic};

use super::errors::diagnose;
use super::job::{job_map, JobSpec};
use super::wire::{self, WireError};
use super::Runtime;
use crate::diagnostic::Diagnostic;
use crate::native::matrix::Matrix;
use crate::rules::decl::{ClosureId, Items, MapReduceDecl};

/// A script value handed between the runtime and the execution models.
#[derive(Clone, Debug)]
pub struct Value(pub(crate) Dynamic);

impl Value {
    /// Encodes the value for another process.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), WireError> {
        wire::encode(&self.0, out)
    }

    /// Decodes a value sent by another process.
    pub fn decode(buf: &[u8]) -> Result<Self, WireError> {
        wire::decode(buf).map(Value)
    }

    /// A value from plain data (an async model's response, a chunk's matrix...).
    pub fn from_dynamic(d: Dynamic) -> Self {
        Value(d)
    }

    /// The value inside.
    pub fn into_dynamic(self) -> Dynamic {
        self.0
    }

    /// A chunk of rows for `map`, as a shared value: the caller keeps a handle and, after
    /// `map`, takes the matrix back with [`Value::into_matrix`] to reuse its buffer.
    pub fn shared_matrix(m: Matrix) -> Self {
        Value(Dynamic::from(m).into_shared())
    }

    /// The matrix inside: taken if nothing else holds it, copied if the script kept it.
    pub fn into_matrix(self) -> Option<Matrix> {
        self.0.try_cast()
    }
}

/// Folds mapped values in item order.
pub struct Folder<'r> {
    runtime: &'r Runtime,
    reduce: Option<ClosureId>,
    acc: Option<Dynamic>,
    all: Array,
}

impl Folder<'_> {
    /// Adds the next value (the caller guarantees item order).
    pub fn push(&mut self, value: Value) -> Result<(), Diagnostic> {
        let Some(reduce) = self.reduce else {
            self.all.push(value.0);
            return Ok(());
        };
        self.acc = Some(match self.acc.take() {
            None => value.0,
            Some(acc) => self.runtime.call(reduce, (acc, value.0))?,
        });
        Ok(())
    }

    /// The folded result: the accumulator, or the array of values without `reduce`.
    pub fn result(self) -> Value {
        match self.reduce {
            Some(_) => Value(self.acc.unwrap_or(Dynamic::UNIT)),
            None => Value(Dynamic::from(self.all)),
        }
    }
}

impl Runtime {
    /// Calls a stored closure with arguments.
    pub(crate) fn call(
        &self,
        id: ClosureId,
        args: impl rhai::FuncArgs,
    ) -> Result<Dynamic, Diagnostic> {
        let closure = &self.closures[id.0];
        #[allow(deprecated)]
        let ctx = closure.context.create_context(&self.engine);
        closure
            .for_this_thread(self.generation, id.0)
            .call_within_context::<Dynamic>(&ctx, args)
            .map_err(|e| diagnose(&e, &self.options.file))
    }

    /// The `job` object for a job, shared so that handing it to every `map` call is cheap.
    pub fn job_value(&self, job: &JobSpec) -> Result<Value, Diagnostic> {
        let map = job_map(job).map_err(|e| diagnose(&e, &self.options.file))?;
        Ok(Value(Dynamic::from(map).into_shared()))
    }

    /// The items of a job (not for `Items::Chunks`, which the chunked model makes itself).
    pub fn items(&self, mr: &MapReduceDecl, job: &Value) -> Result<Vec<Value>, Diagnostic> {
        let items = match &mr.items {
            Items::Values(v) => self.values[v.0].clone(),
            Items::Closure(c) => self.call(*c, (job.0.clone(),))?,
            Items::Chunks => return Err(Diagnostic::new("items are made by the chunked model")),
        };
        let type_name = items.type_name();
        let arr = items.try_cast::<Array>().ok_or_else(|| {
            Diagnostic::new(format!("`items` must give an array, not `{type_name}`"))
        })?;
        Ok(arr.into_iter().map(Value).collect())
    }

    /// Maps one item. Each call gets its own copy of `job`: `map` runs on several threads at
    /// once, and Rhai locks a shared value for a property chain such as
    /// `job.wildcards.i.parse_int()`, so two threads reaching it together failed with "Data race
    /// detected".
    pub fn map(&self, mr: &MapReduceDecl, job: &Value, item: Value) -> Result<Value, Diagnostic> {
        self.call(mr.map, (job.0.flatten_clone(), item.0))
            .map(Value)
    }

    /// A folder starting from the rule's `init` (if any).
    pub fn folder(&self, mr: &MapReduceDecl) -> Folder<'_> {
        Folder {
            runtime: self,
            reduce: mr.reduce,
            acc: mr.init.map(|v| self.values[v.0].clone()),
            all: Array::new(),
        }
    }

    /// Calls `finish` with the folded result.
    pub fn finish(&self, mr: &MapReduceDecl, job: &Value, result: Value) -> Result<(), Diagnostic> {
        self.call(mr.finish, (job.0.clone(), result.0)).map(|_| ())
    }
}
