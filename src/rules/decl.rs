//! Rules as declared by a workflow file, before validation. The script module produces these
//! from Rhai values; nothing here knows Rhai exists.

use std::collections::BTreeMap;

use crate::diagnostic::Origin;

/// How flowrun treats a file beyond making it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum FileKind {
    /// An ordinary file.
    Plain,
    /// `temp(path)`: deleted once every job consuming it has finished.
    Temp,
    /// `protected(path)`: made read-only after it is written.
    Protected,
    /// `touch(path)`, an output: flowrun creates it (or updates its time) when the job
    /// succeeds; the work need not write it.
    Touch,
    /// `ancient(path)`, an input: a change to it never makes the job rerun.
    Ancient,
}

/// One declared input, output or log path.
#[derive(Debug, Clone, PartialEq)]
pub struct FileDecl {
    /// The name in a map of named files (`input: #{ reads: "..." }`).
    pub name: Option<String>,
    /// The path pattern as written.
    pub path: String,
    pub kind: FileKind,
    /// `rules("b").output`: the rule promised to make this input.
    pub from_rule: Option<String>,
    /// `directory(path)`: a directory, fingerprinted by a manifest of everything inside it.
    pub directory: bool,
    /// `report(path, ...)`, an output: shown in the HTML report (`--report`).
    pub report: Option<ReportMark>,
}

/// How `report(path, caption)` or `report(path, #{ caption, category })` asked for an output
/// to be shown in the HTML report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReportMark {
    /// Text, or the path of a file holding it; `{name}` is the job's wildcard value.
    pub caption: Option<String>,
    /// The heading the output is shown under (else its rule's name).
    pub category: Option<String>,
}

/// Index of a stored closure inside the script runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClosureId(pub usize);

/// Index of a stored script value (an `items` array, an `init` value) inside the runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ValueId(pub usize);

/// Where a map/reduce rule's items come from.
#[derive(Debug, Clone, PartialEq)]
pub enum Items {
    /// A literal array.
    Values(ValueId),
    /// A closure of `job` returning an array.
    Closure(ClosureId),
    /// Row blocks of the first input (the `chunked` model).
    Chunks,
}

/// The map/reduce form: `items`, `map`, optional `reduce` with `init`, and `finish`.
#[derive(Debug, Clone, PartialEq)]
pub struct MapReduceDecl {
    pub items: Items,
    pub map: ClosureId,
    pub reduce: Option<ClosureId>,
    pub init: Option<ValueId>,
    pub finish: ClosureId,
}

/// How a rule's work is spread over the machine (or machines).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ModelKind {
    Thread,
    Process,
    Hybrid,
    Async,
    Chunked,
    Mpi,
}

impl ModelKind {
    /// The names used in workflow files.
    pub const NAMES: [&'static str; 6] = ["thread", "process", "hybrid", "async", "chunked", "mpi"];

    /// Parses a model name.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "thread" => Self::Thread,
            "process" => Self::Process,
            "hybrid" => Self::Hybrid,
            "async" => Self::Async,
            "chunked" => Self::Chunked,
            "mpi" => Self::Mpi,
            _ => return None,
        })
    }

    /// The name used in workflow files.
    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }
}

/// A rule's execution model and its settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Model {
    pub kind: ModelKind,
    pub threads: u32,
    pub procs: u32,
    pub ranks: u32,
    pub concurrency: u32,
    /// Rows per chunk for the `chunked` model.
    pub chunk: u64,
}

impl Model {
    /// Cores a job of this model takes from the `-j` budget.
    pub fn cores(&self) -> u32 {
        match self.kind {
            ModelKind::Thread | ModelKind::Chunked => self.threads,
            ModelKind::Process => self.procs,
            ModelKind::Hybrid => self.procs.saturating_mul(self.threads),
            ModelKind::Async => 1,
            ModelKind::Mpi => self.ranks,
        }
    }
}

/// What a rule does when one of its jobs runs.
#[derive(Debug, Clone, PartialEq)]
pub enum WorkDecl {
    /// No work: an aggregating rule such as `all`.
    Nothing,
    /// A shell command template.
    Shell(String),
    /// A Rhai closure called once per job.
    Run(ClosureId),
    /// Items mapped in parallel under the rule's model, reduced in item order.
    MapReduce(MapReduceDecl),
    /// A script file run for each job.
    Script(crate::rules::script::ScriptDecl),
}

/// A rule exactly as the workflow declared it.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleDecl {
    pub name: String,
    pub inputs: Vec<FileDecl>,
    pub outputs: Vec<FileDecl>,
    pub logs: Vec<FileDecl>,
    /// `benchmark`: at most one file, where a job's resource figures are written as TSV.
    pub benchmark: Vec<FileDecl>,
    /// Parameters as canonical JSON (object keys sorted).
    pub params: serde_json::Map<String, serde_json::Value>,
    pub work: WorkDecl,
    /// The rule's code, whitespace-normalised: shell template text or closure source.
    pub code: String,
    pub model: Model,
    pub priority: i64,
    pub resources: BTreeMap<String, u64>,
    /// The `resources` given as text: cluster settings ([`CLUSTER_TEXT`]).
    pub cluster: BTreeMap<String, String>,
    /// `local: true`: jobs of the rule run on this machine even under a cluster executor.
    pub local: bool,
    pub retries: u32,
    /// `timeout`: seconds a job may run before it is stopped and fails.
    pub timeout: Option<f64>,
    /// `allow_outside`: outputs and logs may lie outside the working directory.
    pub allow_outside: bool,
    /// `cache`: jobs are restored from and published to the result cache (`--cache-dir`).
    pub cache: bool,
    pub wildcard_constraints: BTreeMap<String, String>,
    /// `message`: a template printed when a job of the rule starts.
    pub message: Option<String>,
    /// `default_target: true`: the rule flowrun makes when no target is named.
    pub default_target: bool,
    /// Declared in an imported rule file rather than the workflow file itself.
    pub imported: bool,
    /// `env` and `software`: what the jobs run with.
    pub software: crate::rules::software::Software,
    /// Where `rule(...)` was called.
    pub origin: Option<Origin>,
    /// Keys given as functions of the wildcards, evaluated per job.
    pub functions: crate::rules::function::RuleFunctions,
    /// `checkpoint: true`: the jobs after it are planned once it has run.
    pub checkpoint: bool,
}

/// The `resources` keys whose values are text, not numbers: what a cluster executor passes to
/// the cluster (a partition, an account, node features, generic resources, extra flags). They
/// do not count against `--resources` caps.
pub const CLUSTER_TEXT: [&str; 5] = [
    "slurm_partition",
    "slurm_account",
    "constraint",
    "gres",
    "slurm_extra",
];

/// Collapses runs of whitespace so reformatting code does not count as a change, except inside
/// quotes (`'…'`, `"…"`, `` `…` ``), where a space is data: `printf "a  b"` is not `printf "a b"`.
/// The `${…}` of a Rhai backtick string is code again. An unbalanced quote (an apostrophe in a
/// comment, say) only keeps more whitespace as written, which errs on the side of rerunning.
pub fn normalize_code(code: &str) -> String {
    enum Frame {
        /// Code; `interp` if inside `${…}`, with the depth of `{` opened in it.
        Code {
            interp: bool,
            depth: usize,
        },
        Quote(char),
    }
    let mut out = String::with_capacity(code.len());
    let mut stack = vec![Frame::Code {
        interp: false,
        depth: 0,
    }];
    let mut escaped = false;
    let mut pending_space = false;
    let mut chars = code.chars().peekable();
    while let Some(c) = chars.next() {
        let top = stack.len() - 1;
        match &mut stack[top] {
            Frame::Quote(q) => {
                let q = *q;
                out.push(c);
                if escaped {
                    escaped = false;
                } else if c == '\\' && q != '\'' && q != '`' {
                    escaped = true;
                } else if c == q {
                    stack.pop();
                } else if q == '`' && c == '$' && chars.peek() == Some(&'{') {
                    out.push('{');
                    chars.next();
                    stack.push(Frame::Code {
                        interp: true,
                        depth: 0,
                    });
                }
            }
            Frame::Code { .. } if c.is_whitespace() => pending_space = !out.is_empty(),
            Frame::Code { interp, depth } => {
                if pending_space {
                    out.push(' ');
                    pending_space = false;
                }
                out.push(c);
                match c {
                    '\'' | '"' | '`' => stack.push(Frame::Quote(c)),
                    '{' => *depth += 1,
                    '}' if *interp && *depth == 0 => {
                        stack.pop();
                    }
                    '}' => *depth = depth.saturating_sub(1),
                    _ => {}
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_normalisation_ignores_layout_only() {
        assert_eq!(
            normalize_code("  cat {input}\n   > {output} "),
            "cat {input} > {output}"
        );
        assert_ne!(normalize_code("cat a"), normalize_code("cat b"));
    }

    #[test]
    fn whitespace_inside_quotes_is_code() {
        assert_ne!(
            normalize_code(r#"printf "%s:  ""#),
            normalize_code(r#"printf "%s: ""#)
        );
        assert_ne!(normalize_code("echo 'a  b'"), normalize_code("echo 'a b'"));
        assert_ne!(normalize_code("`x ${a}  y`"), normalize_code("`x ${a} y`"));
        assert_eq!(
            normalize_code("echo  \"a \\\" b\"   |  wc"),
            normalize_code("echo \"a \\\" b\" | wc")
        );
    }

    #[test]
    fn interpolations_in_backtick_strings_are_code() {
        assert_eq!(
            normalize_code("`x ${a  *\n b} y`"),
            normalize_code("`x ${a * b} y`")
        );
        assert_eq!(
            normalize_code("`${ #{a: 1}.a }`  +  1"),
            normalize_code("`${ #{a: 1}.a }` + 1")
        );
    }
}
