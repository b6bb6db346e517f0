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
}

/// One declared input, output or log path.
#[derive(Debug, Clone, PartialEq)]
pub struct FileDecl {
    /// The name in a map of named files (`input: #{ reads: "..." }`).
    pub name: Option<String>,
    /// The path pattern as written.
    pub path: String,
    pub kind: FileKind,
}

/// Index of a stored closure inside the script runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClosureId(pub usize);

/// What a rule does when one of its jobs runs.
#[derive(Debug, Clone, PartialEq)]
pub enum WorkDecl {
    /// No work: an aggregating rule such as `all`.
    Nothing,
    /// A shell command template.
    Shell(String),
    /// A Rhai closure called once per job.
    Run(ClosureId),
}

/// A rule exactly as the workflow declared it.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleDecl {
    pub name: String,
    pub inputs: Vec<FileDecl>,
    pub outputs: Vec<FileDecl>,
    pub logs: Vec<FileDecl>,
    /// Parameters as canonical JSON (object keys sorted).
    pub params: serde_json::Map<String, serde_json::Value>,
    pub work: WorkDecl,
    /// The rule's code, whitespace-normalised: shell template text or closure source.
    pub code: String,
    pub threads: u32,
    pub priority: i64,
    pub resources: BTreeMap<String, u64>,
    pub retries: u32,
    pub wildcard_constraints: BTreeMap<String, String>,
    /// Where `rule(...)` was called.
    pub origin: Option<Origin>,
}

/// Collapses runs of whitespace so reformatting code does not count as a change.
pub fn normalize_code(code: &str) -> String {
    code.split_whitespace().collect::<Vec<_>>().join(" ")
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
}
