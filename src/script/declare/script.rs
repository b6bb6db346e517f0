//! The `script` key: `script: "scripts/plot.py"`, or `script: #{ path: "tool", language:
//! "python" }` when the extension does not tell the language.
//!
//! The path is resolved from the folder of the file that declares the rule (as Snakemake does),
//! so a rule file under `rules/` can ship its scripts beside it. The script is read here, at
//! definition time, because its content is part of the rule's code: the whole text, comments
//! included. Telling a comment from code needs each language's own tokenizer (a `#` inside a
//! Python or R string, a bash here-document), and a wrong guess would skip a rerun that was
//! needed, so flowrun does not guess; the file's mtime plays no part.

use std::path::{Path, PathBuf};

use rhai::{Dynamic, Map};

use super::{type_name, Res, Spec};
use crate::rules::script::{Language, ScriptDecl};

impl Spec<'_> {
    /// The rule's `script`, with the text that goes into its code fingerprint.
    pub(super) fn script(&self, value: Dynamic, declared_in: &Path) -> Res<(ScriptDecl, String)> {
        let (path, language) = if value.is_string() {
            (value.to_string(), None)
        } else if let Some(map) = value.clone().try_cast::<Map>() {
            let mut path = None;
            let mut language = None;
            for (k, v) in map {
                match (k.as_str(), v.is_string()) {
                    ("path", true) => path = Some(v.to_string()),
                    ("language", true) => language = Some(v.to_string()),
                    ("path" | "language", false) => {
                        return self.err(
                            "script",
                            format!("`{k}` must be a string, not {}", type_name(&v)),
                        )
                    }
                    (other, _) => {
                        return self.err(
                            "script",
                            format!("has no key `{other}`; give `path` and optionally `language`"),
                        )
                    }
                }
            }
            let Some(path) = path else {
                return self.err("script", "needs a `path`");
            };
            (path, language)
        } else {
            return self.err(
                "script",
                format!(
                    "must be a path or a map `#{{ path: ..., language: ... }}`, not {}",
                    type_name(&value)
                ),
            );
        };
        let language = match language {
            Some(name) => Language::parse(&name).ok_or(()).or_else(|()| {
                self.err(
                    "script",
                    format!(
                        "language `{name}` is not one flowrun runs; the languages are {}",
                        Language::NAMES.join(", ")
                    ),
                )
            })?,
            None => Language::of_path(&path).ok_or(()).or_else(|()| {
                self.err(
                    "script",
                    format!(
                        "`{path}`: the extension does not say its language (.py, .R, .sh, .rhai); \
                         name it with `script: #{{ path: \"{path}\", language: \"python\" }}`"
                    ),
                )
            })?,
        };
        let resolved = resolve(declared_in, &path);
        let shown = resolved.to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&resolved)
            .or_else(|e| self.err("script", format!("`{shown}` cannot be read: {e}")))?;
        let code = format!("script {}\n{text}", language.name());
        Ok((
            ScriptDecl {
                path: shown,
                language,
            },
            code,
        ))
    }
}

/// `path` as seen from the folder of `declared_in`, relative to the working directory when it
/// lies inside it (as messages show it).
pub(super) fn resolve(declared_in: &Path, path: &str) -> PathBuf {
    let full = match declared_in.parent() {
        Some(dir) if Path::new(path).is_relative() => dir.join(path),
        _ => PathBuf::from(path),
    };
    std::env::current_dir()
        .ok()
        .and_then(|cwd| full.strip_prefix(cwd).ok().map(Path::to_path_buf))
        .unwrap_or(full)
}
