//! The import rule of `docs/architecture.md`, checked: between the top-level modules of `src/`,
//! imports only go down the pipeline. A new `use crate::…` that goes up fails here, with the
//! file that does it.

use std::collections::BTreeSet;
use std::path::Path;

/// Each module with the modules it may import (besides the root leaves every phase may use).
const ALLOWED: &[(&str, &[&str])] = &[
    (
        "app",
        &["cli", "graph", "report", "rules", "run", "session", "watch"],
    ),
    ("watch", &["cli", "exec", "graph", "report", "session"]),
    (
        "session",
        &[
            "cli", "exec", "graph", "native", "report", "rules", "run", "script",
        ],
    ),
    ("cli", &["graph"]),
    (
        "run",
        &["exec", "graph", "native", "report", "rules", "script"],
    ),
    ("report", &["graph", "native", "rules"]),
    ("exec", &["graph", "native", "rules", "script"]),
    ("graph", &["rules"]),
    ("script", &["native", "rules"]),
    ("rules", &[]),
    ("native", &[]),
];

/// Modules at the root that any module may use, and that use no phase themselves.
const LEAVES: &[&str] = &[
    "diagnostic",
    "exit",
    "interrupt",
    "sandbox",
    "memory",
    "STATE_DIR",
];

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level modules a file names as `crate::x` outside comments.
fn imports(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        for (i, _) in code.match_indices("crate::") {
            let rest = &code[i + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                let group = group.split('}').next().unwrap_or("");
                for item in group.split(',') {
                    let name = item.trim().split("::").next().unwrap_or("");
                    if !name.is_empty() {
                        found.insert(name.to_string());
                    }
                }
            } else {
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                found.insert(name);
            }
        }
    }
    found
}

#[test]
fn imports_go_down_the_pipeline() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut wrong = Vec::new();
    for file in &files {
        let rel = file.strip_prefix(&src).unwrap();
        let top = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        if ["lib", "main"].contains(&top.as_str()) {
            continue;
        }
        let text = std::fs::read_to_string(file).unwrap();
        let found = imports(&text);
        if LEAVES.contains(&top.as_str()) {
            let phases: Vec<_> = found
                .iter()
                .filter(|m| !LEAVES.contains(&m.as_str()) && **m != top)
                .collect();
            if !phases.is_empty() {
                wrong.push(format!("{}: a root leaf imports {phases:?}", rel.display()));
            }
            continue;
        }
        let Some((_, allowed)) = ALLOWED.iter().find(|(m, _)| *m == top) else {
            wrong.push(format!(
                "{}: module `{top}` is not in tests/architecture.rs and docs/architecture.md",
                rel.display()
            ));
            continue;
        };
        for m in &found {
            if *m != top && !LEAVES.contains(&m.as_str()) && !allowed.contains(&m.as_str()) {
                wrong.push(format!("{}: `{top}` imports `{m}`", rel.display()));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports against the pipeline (docs/architecture.md):\n{}",
        wrong.join("\n")
    );
}
