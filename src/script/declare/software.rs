//! The `env` and `software` keys: `env: #{ OMP_NUM_THREADS: "1" }`, and
//! `software: #{ python: "envs/plot.txt", path: ["tools/bin"] }`.
//!
//! A requirements file is read here, at definition time, for its content hash: the environment
//! is named by it. Paths resolve from the folder of the file declaring the rule, as a
//! `script` does.

use std::collections::BTreeMap;
use std::path::Path;

use rhai::{Dynamic, Map};

use super::script::resolve;
use super::{type_name, Res, Spec};
use crate::rules::software::{PythonEnv, Software};

/// The kinds `software` takes.
const KINDS: &[&str] = &["python", "path"];

impl Spec<'_> {
    /// The rule's `env` and `software`.
    pub(super) fn software(&mut self, declared_in: &Path) -> Res<Software> {
        let mut sw = Software {
            env: self.env()?,
            ..Software::default()
        };
        let Some(value) = self.take("software") else {
            return Ok(sw);
        };
        let Some(map) = value.clone().try_cast::<Map>() else {
            return self.err(
                "software",
                format!(
                    "must be a map such as `#{{ python: \"envs/x.txt\" }}`, not {}",
                    type_name(&value)
                ),
            );
        };
        for (kind, v) in map {
            match kind.as_str() {
                "python" if v.is_string() => {
                    let file = resolve(declared_in, &v.to_string());
                    let shown = file.to_string_lossy().into_owned();
                    let text = std::fs::read(&file).or_else(|e| {
                        self.err(
                            "software",
                            format!("python file `{shown}` cannot be read: {e}"),
                        )
                    })?;
                    sw.python = Some(PythonEnv {
                        file: shown,
                        hash: xxhash_rust::xxh3::xxh3_128(&text),
                    });
                }
                "path" => sw.path = self.path_list(declared_in, v)?,
                "python" => {
                    return self.err(
                        "software",
                        format!(
                            "`python` must be the path of a requirements file, not {}",
                            type_name(&v)
                        ),
                    )
                }
                other => {
                    let hint = crate::diagnostic::did_you_mean(other, KINDS.iter().copied())
                        .unwrap_or_else(|| format!("the kinds are {}", KINDS.join(", ")));
                    return self.err("software", format!("has no kind `{other}`; {hint}"));
                }
            }
        }
        Ok(sw)
    }

    fn path_list(&self, declared_in: &Path, v: Dynamic) -> Res<Vec<String>> {
        let items = if v.is_array() {
            v.cast::<rhai::Array>()
        } else {
            vec![v]
        };
        items
            .into_iter()
            .map(|item| {
                if item.is_string() {
                    Ok(resolve(declared_in, &item.to_string())
                        .to_string_lossy()
                        .into_owned())
                } else {
                    self.err(
                        "software",
                        format!("`path` holds folders as strings, not {}", type_name(&item)),
                    )
                }
            })
            .collect()
    }

    fn env(&mut self) -> Res<BTreeMap<String, String>> {
        let Some(v) = self.take("env") else {
            return Ok(BTreeMap::new());
        };
        let Some(map) = v.clone().try_cast::<Map>() else {
            return self.err(
                "env",
                format!("must be a map of strings, not {}", type_name(&v)),
            );
        };
        map.into_iter()
            .map(|(k, v)| {
                let valid = !k.is_empty()
                    && !k.starts_with(|c: char| c.is_ascii_digit())
                    && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                if !valid {
                    return self.err("env", format!("`{k}` is not a variable name"));
                }
                if !(v.is_string() || v.is_int() || v.is_float() || v.is_bool()) {
                    return self.err(
                        "env",
                        format!("`{k}` must be a string or a number, not {}", type_name(&v)),
                    );
                }
                Ok((k.to_string(), v.to_string()))
            })
            .collect()
    }
}
