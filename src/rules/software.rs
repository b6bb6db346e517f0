//! What a rule's jobs run with: extra environment variables (`env`) and a software environment
//! (`software`): a Python environment built from a requirements or lock file, and folders put
//! in front of `PATH`.
//!
//! The `software` map is keyed by kind (`python`, `path`) so that other kinds (a container
//! image, a conda or pixi environment) can take their place beside them later, each with its
//! own identity. An environment is found by the content hash of its file, never by the file's
//! name or mtime: two workflows with the same requirements share one environment, and editing
//! the file makes a new one.

use std::collections::BTreeMap;

/// A Python environment made from a requirements (or `uv` lock-style, pinned) file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PythonEnv {
    /// The file, as resolved from the declaring file (relative to the working directory when
    /// inside it).
    pub file: String,
    /// The hash of the file's content.
    pub hash: u128,
}

impl PythonEnv {
    /// The environment's name in the shared cache: `python-` and 16 hex digits of the hash.
    pub fn name(&self) -> String {
        format!("python-{:016x}", (self.hash >> 64) as u64)
    }
}

/// A rule's `env` and `software`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Software {
    /// `env`: variables set for the job's command or script.
    pub env: BTreeMap<String, String>,
    /// `software.python`.
    pub python: Option<PythonEnv>,
    /// `software.path`: folders put in front of `PATH`, in this order.
    pub path: Vec<String>,
}

impl Software {
    /// Whether the rule asked for nothing.
    pub fn is_empty(&self) -> bool {
        self.env.is_empty() && self.python.is_none() && self.path.is_empty()
    }

    /// What identifies the software a job runs with: part of the rule's code, so that changing
    /// it reruns exactly the jobs of the rules that use it. Empty for a rule that asked for
    /// nothing, whose code (and so every record of it) stays as it was.
    pub fn identity(&self) -> String {
        if self.is_empty() {
            return String::new();
        }
        let mut id = String::from("software");
        if let Some(p) = &self.python {
            id.push_str(&format!(" python={}", p.name()));
        }
        for dir in &self.path {
            id.push_str(&format!(" path={dir}"));
        }
        for (k, v) in &self.env {
            id.push_str(&format!(" env {k}={v}"));
        }
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_rule_with_software_has_an_identity() {
        assert_eq!(Software::default().identity(), "");
        let sw = Software {
            env: BTreeMap::from([("A".to_string(), "1".to_string())]),
            python: Some(PythonEnv {
                file: "envs/x.txt".into(),
                hash: 0xabcd << 64,
            }),
            path: vec!["tools/bin".into()],
        };
        assert_eq!(
            sw.identity(),
            "software python=python-000000000000abcd path=tools/bin env A=1"
        );
    }
}
