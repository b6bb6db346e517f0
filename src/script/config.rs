//! Workflow configuration: `config(defaults)` in the script, merged with `--configfile` files
//! (JSON, TOML, YAML) and `--config key=value` overrides, in that order of strength.
//!
//! Override values are read as YAML scalars or flow collections, so `n=3` is a number,
//! `fast=true` a boolean and `samples=[a,b]` a list; `a.b=1` sets a nested key.
//!
//! YAML is read with serde_norway, the maintained fork of serde_yaml 0.9 (deprecated upstream):
//! the same parser and the same API, so config files and overrides mean what they meant.

use std::path::Path;

use serde_json::{Map, Value};

use crate::diagnostic::Diagnostic;

/// Reads one config file by its extension.
pub fn read_file(path: &Path) -> Result<Value, Diagnostic> {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    if !matches!(ext, "json" | "toml" | "yaml" | "yml") {
        return Err(Diagnostic::new(format!(
            "config file `{}` has an unknown extension",
            path.display()
        ))
        .hint("use .json, .toml, .yaml or .yml"));
    }
    crate::sandbox::reading(path);
    let text = std::fs::read_to_string(path).map_err(|e| {
        Diagnostic::new(format!("cannot read config file `{}`: {e}", path.display()))
    })?;
    let parsed: Result<Value, String> = match ext {
        "json" => serde_json::from_str(&text).map_err(|e| e.to_string()),
        "toml" => toml::from_str::<toml::Value>(&text)
            .map_err(|e| e.to_string())
            .and_then(|v| serde_json::to_value(v).map_err(|e| e.to_string())),
        _ => serde_norway::from_str(&text).map_err(|e| e.to_string()),
    };
    let value = parsed.map_err(|e| {
        Diagnostic::new(format!(
            "cannot parse config file `{}`: {}",
            path.display(),
            e.trim()
        ))
    })?;
    if !value.is_object() {
        return Err(Diagnostic::new(format!(
            "config file `{}` must hold a map of keys at the top level",
            path.display()
        )));
    }
    Ok(value)
}

/// Parses one `--config key=value` override into a nested map.
pub fn parse_override(text: &str) -> Result<Value, Diagnostic> {
    let (key, raw) = text.split_once('=').ok_or_else(|| {
        Diagnostic::new(format!("`--config {text}` is not `key=value`"))
            .hint("write e.g. `--config rows=1000`")
    })?;
    let key = key.trim();
    if key.is_empty() || key.split('.').any(str::is_empty) {
        return Err(Diagnostic::new(format!(
            "`--config {text}` has an empty key"
        )));
    }
    let value: Value = if raw.trim().is_empty() {
        Value::String(String::new())
    } else {
        serde_norway::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_string()))
    };
    Ok(key.rsplit('.').fold(value, |inner, k| {
        Value::Object(Map::from_iter([(k.to_string(), inner)]))
    }))
}

/// Merges `over` into `base`: maps merge key by key, anything else is replaced.
pub fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (slot, v) => *slot = v,
    }
}

/// The user's side of the configuration: files, then overrides.
pub fn user_config(files: &[impl AsRef<Path>], overrides: &[String]) -> Result<Value, Diagnostic> {
    let mut config = Value::Object(Map::new());
    for f in files {
        merge(&mut config, read_file(f.as_ref())?);
    }
    for o in overrides {
        merge(&mut config, parse_override(o)?);
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn overrides_are_typed_and_nested() {
        assert_eq!(parse_override("n=3").unwrap(), json!({"n": 3}));
        assert_eq!(parse_override("x=1.5").unwrap(), json!({"x": 1.5}));
        assert_eq!(parse_override("fast=true").unwrap(), json!({"fast": true}));
        assert_eq!(
            parse_override("s=[a, b]").unwrap(),
            json!({"s": ["a", "b"]})
        );
        assert_eq!(parse_override("a.b=hi").unwrap(), json!({"a": {"b": "hi"}}));
        assert_eq!(
            parse_override("p=a: b: c").unwrap(),
            json!({"p": "a: b: c"})
        );
        let e = parse_override("novalue").unwrap_err();
        assert!(e.message.contains("is not `key=value`"), "{}", e.message);
    }

    #[test]
    fn files_then_overrides_win_over_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let yaml = dir.path().join("c.yaml");
        std::fs::write(&yaml, "samples: [a, b]\nopts:\n  k: 1\n  j: 2\n").unwrap();
        let toml = dir.path().join("c.toml");
        std::fs::write(&toml, "factor = 3\n[opts]\nk = 5\n").unwrap();
        let user = user_config(&[yaml, toml], &["opts.j=9".to_string()]).unwrap();
        let mut cfg = json!({"factor": 1, "samples": [], "opts": {"k": 0, "j": 0, "i": 0}});
        merge(&mut cfg, user);
        assert_eq!(
            cfg,
            json!({"factor": 3, "samples": ["a", "b"], "opts": {"k": 5, "j": 9, "i": 0}})
        );
    }

    #[test]
    fn bad_files_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("c.json");
        std::fs::write(&bad, "{ nope").unwrap();
        let e = read_file(&bad).unwrap_err();
        assert!(
            e.message.starts_with("cannot parse config file"),
            "{}",
            e.message
        );
        let e = read_file(&dir.path().join("c.ini")).unwrap_err();
        assert!(e.message.contains("unknown extension"), "{}", e.message);
        let e = read_file(&dir.path().join("missing.json")).unwrap_err();
        assert!(
            e.message.contains("cannot read config file"),
            "{}",
            e.message
        );
    }
}
