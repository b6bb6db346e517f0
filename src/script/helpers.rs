//! Definition-time helpers: `expand`, `glob_wildcards`, `config`, `temp`, `protected`,
//! `touch`, `ancient`, `directory`, `report`, `multiext`, `wildcard_constraints`.

use std::collections::BTreeMap;
use std::path::Path;

use rhai::{Array, Dynamic, Engine, EvalAltResult, Map, Position};

use super::SharedState;
use crate::rules::decl::{FileKind, ReportMark};
use crate::rules::pattern::{Pattern, Template};

type Res<T> = Result<T, Box<EvalAltResult>>;

/// Most paths one `expand` may produce.
pub const MAX_EXPAND: usize = 2_000_000;

fn runtime(msg: impl Into<String>) -> Box<EvalAltResult> {
    Box::new(EvalAltResult::ErrorRuntime(
        msg.into().into(),
        Position::NONE,
    ))
}

/// A path marked `temp(...)`, `protected(...)`, `report(...)`..., or taken from
/// `rules("b").output`.
#[derive(Debug, Clone)]
pub struct Marked {
    pub path: String,
    pub kind: FileKind,
    /// The rule whose output this is (`rules("b").output`): as an input, a promise that rule
    /// `b` makes it.
    pub rule: Option<String>,
    /// Wrapped in `directory()`.
    pub directory: bool,
    /// Wrapped in `report()`.
    pub report: Option<ReportMark>,
}

/// How `expand` combines the value lists: every combination (Snakemake's default), or the
/// first values together, then the second ones... (Snakemake's `expand(..., zip, ...)`).
#[derive(Clone, Copy, PartialEq)]
enum Combine {
    Product,
    Zip,
}

fn expand_one(pattern: &str, values: &Map, how: Combine, out: &mut Array) -> Res<()> {
    // `{{x}}` stays a wildcard `{x}` for the rule; everything else must have values.
    let has_escapes = pattern.contains("{{") || pattern.contains("}}");
    let escaped = pattern.replace("{{", "\u{1}").replace("}}", "\u{2}");
    let parsed = Template::parse(&escaped).map_err(|e| runtime(format!("expand: {e}")))?;
    let names = parsed.wildcard_names();
    let mut lists: Vec<(String, Vec<String>)> = Vec::new();
    // With `zip`, the length of the value lists (a single value goes with every one).
    let mut zipped: Option<(&str, usize)> = None;
    for name in &names {
        let v = values
            .get(*name)
            .ok_or_else(|| runtime(format!("expand: no values for `{{{name}}}` in `{pattern}`")))?;
        let list: Vec<String> = if v.is_array() {
            let list: Vec<String> = v
                .clone()
                .cast::<Array>()
                .iter()
                .map(|x| x.to_string())
                .collect();
            if how == Combine::Zip {
                match zipped {
                    Some((first, n)) if n != list.len() => {
                        return Err(runtime(format!(
                            "expand: with \"zip\", the value lists must be as long as each other: `{first}` has {n}, `{name}` has {}",
                            list.len()
                        )))
                    }
                    Some(_) => {}
                    None => zipped = Some((name, list.len())),
                }
            }
            list
        } else {
            vec![v.to_string()]
        };
        lists.push((name.to_string(), list));
    }
    let total = match how {
        Combine::Product => lists
            .iter()
            .try_fold(1usize, |acc, (_, l)| acc.checked_mul(l.len())),
        Combine::Zip => Some(zipped.map_or(1, |(_, n)| n)),
    };
    let total = total
        .filter(|n| out.len() + n <= MAX_EXPAND)
        .ok_or_else(|| {
            runtime(format!(
                "expand: `{pattern}` would make more than {MAX_EXPAND} paths; split the workflow or narrow the values"
            ))
        })?;
    let mut at = vec![0; lists.len()];
    for n in 0..total {
        // Odometer over the lists, last name fastest, in the order the pattern names them; or,
        // zipped, the n-th value of each list.
        let mut rest = n;
        for ((_, list), i) in lists.iter().zip(at.iter_mut()).rev() {
            if how == Combine::Zip {
                *i = if list.len() == 1 { 0 } else { n };
                continue;
            }
            *i = rest % list.len();
            rest /= list.len();
        }
        let path = parsed
            .fill(|name| {
                let k = lists.iter().position(|(n, _)| n == name)?;
                Some(lists[k].1[at[k]].as_str())
            })
            .map_err(|e| runtime(format!("expand: {e}")))?;
        // Two more copies of each path only where there is something to put back.
        let path = if has_escapes {
            path.replace('\u{1}', "{").replace('\u{2}', "}")
        } else {
            path
        };
        out.push(path.into());
    }
    Ok(())
}

fn expand(patterns: Dynamic, values: Map) -> Res<Array> {
    expand_with(patterns, values, Combine::Product)
}

/// `expand(patterns, values, "zip")` (or `"product"`, the default).
fn expand_how(patterns: Dynamic, values: Map, how: &str) -> Res<Array> {
    let how = match how {
        "zip" => Combine::Zip,
        "product" => Combine::Product,
        other => {
            return Err(runtime(format!(
                "expand: `{other}` is not a way to combine values; use \"zip\" or \"product\""
            )))
        }
    };
    expand_with(patterns, values, how)
}

fn expand_with(patterns: Dynamic, values: Map, how: Combine) -> Res<Array> {
    let mut out = Array::new();
    if patterns.is_array() {
        for p in patterns.cast::<Array>() {
            expand_one(&p.to_string(), &values, how, &mut out)?;
        }
    } else if patterns.is_string() {
        expand_one(&patterns.to_string(), &values, how, &mut out)?;
    } else {
        return Err(runtime(
            "expand: the first argument must be a pattern string or an array of them",
        ));
    }
    Ok(out)
}

/// The directory to walk for a pattern: its literal part up to the last `/` before a wildcard.
fn walk_root(pattern: &str) -> &str {
    let literal = &pattern[..pattern.find('{').unwrap_or(pattern.len())];
    match literal.rfind('/') {
        Some(i) => &pattern[..i],
        None => ".",
    }
}

/// Walks the pattern's directory; returns that directory and the values found per wildcard.
/// The files under `root`, as flowrun paths. A name that is not UTF-8 cannot be a flowrun path;
/// if `would_match` says it would have matched, that is an error rather than a file silently
/// left out.
fn walked(root: &str, would_match: &dyn Fn(&str) -> bool) -> Res<Vec<String>> {
    let mut paths: Vec<String> = Vec::new();
    walk_files(Path::new(root), &mut Vec::new(), &mut |path| {
        match path.to_str() {
            Some(p) => paths.push(crate::rules::pattern::normalize_path(p)),
            None => {
                let lossy = crate::rules::pattern::normalize_path(path.to_string_lossy());
                if would_match(&lossy) {
                    return Err(runtime(format!(
                        "glob_wildcards: the file name `{}` is not valid UTF-8, and flowrun paths must be; rename the file (or narrow the pattern)",
                        path.display()
                    )));
                }
            }
        }
        Ok(())
    })?;
    Ok(paths)
}

/// Gives `found` every file under `dir`, following symbolic links (one to a directory it is
/// already inside is passed over); what cannot be read is passed over too. Written out rather
/// than taken from `walkdir`, whose sorting and loop checks (a `canonicalize` per walk) cost
/// more than the listing when a checkpoint's reader globs one small directory per job.
fn walk_files(
    dir: &Path,
    above: &mut Vec<std::path::PathBuf>,
    found: &mut dyn FnMut(&Path) -> Res<()>,
) -> Res<()> {
    crate::sandbox::listing(dir);
    let Ok(list) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    above.push(dir.to_path_buf());
    for entry in list.flatten() {
        let path = entry.path();
        let Ok(mut kind) = entry.file_type() else {
            continue;
        };
        if kind.is_symlink() {
            match std::fs::metadata(&path) {
                Ok(m) if m.is_dir() && inside(&m, above) => continue,
                Ok(m) => kind = m.file_type(),
                Err(_) => continue,
            }
        }
        if kind.is_file() {
            found(&path)?;
        } else if kind.is_dir() {
            walk_files(&path, above, found)?;
        }
    }
    above.pop();
    Ok(())
}

/// Whether the directory `target` (a link's) is one of the directories `above` the walk is in:
/// following it would walk in a circle. Asked only when a link to a directory is met.
fn inside(target: &std::fs::Metadata, above: &[std::path::PathBuf]) -> bool {
    use std::os::unix::fs::MetadataExt;
    above.iter().any(|d| {
        std::fs::metadata(d).is_ok_and(|m| (m.dev(), m.ino()) == (target.dev(), target.ino()))
    })
}

/// A pattern with one unconstrained wildcard and no braces besides, split around it:
/// (before, name, after). Matching it needs no regular expression, whose compilation cost more
/// than the walk when a checkpoint's reader globs one small directory per job.
fn single_wildcard(pattern: &str) -> Option<(&str, &str, &str)> {
    let open = pattern.find('{')?;
    let close = open + pattern[open..].find('}')?;
    let (before, name, after) = (
        &pattern[..open],
        &pattern[open + 1..close],
        &pattern[close + 1..],
    );
    let plain = |s: &str| !s.contains(['{', '}']);
    let word = !name.is_empty() && name.chars().all(|c| c.is_alphanumeric() || c == '_');
    (word && plain(before) && plain(after)).then_some((before, name, after))
}

fn glob_wildcards(pattern: &str) -> Res<Map> {
    let pattern = crate::rules::pattern::normalize_path(pattern);
    if let Some((before, name, after)) = single_wildcard(&pattern) {
        let root = walk_root(&pattern);
        let matched = |p: &str| {
            p.strip_prefix(before)
                .and_then(|r| r.strip_suffix(after))
                .is_some_and(|v| !v.is_empty())
        };
        let mut paths = walked(root, &matched)?;
        paths.sort();
        let values: Array = paths
            .iter()
            .filter_map(|p| p.strip_prefix(before)?.strip_suffix(after))
            .filter(|v| !v.is_empty())
            .map(|v| Dynamic::from(v.to_string()))
            .collect();
        let found = std::iter::once((name.into(), Dynamic::from(values))).collect();
        return Ok(found);
    }
    let parsed = Pattern::parse(&pattern, &BTreeMap::new())
        .map_err(|e| runtime(format!("glob_wildcards: {e}")))?;
    let names = parsed.wildcard_names();
    let mut lists: Vec<Array> = vec![Array::new(); names.len()];
    let root = walk_root(parsed.as_str());
    let mut paths = walked(root, &|lossy| parsed.matches(lossy).is_some())?;
    paths.sort();
    for path in paths {
        if let Some(w) = parsed.matches(&path) {
            for (list, name) in lists.iter_mut().zip(&names) {
                list.push(w.get(name).cloned().unwrap_or_default().into());
            }
        }
    }
    let found = names
        .iter()
        .zip(lists)
        .map(|(n, l)| ((*n).into(), Dynamic::from(l)))
        .collect();
    Ok(found)
}

/// Applies a marking helper `f` (`temp`, `directory`, `report`...) to a path, an already marked
/// path (so `temp(directory(p))` and `directory(temp(p))` both mark a temporary directory) or
/// each path of an array.
fn mark(value: Dynamic, f: &str, apply: &dyn Fn(&mut Marked)) -> Res<Dynamic> {
    if value.is_array() {
        let marked: Res<Array> = value
            .cast::<Array>()
            .into_iter()
            .map(|v| mark(v, f, apply))
            .collect();
        return Ok(Dynamic::from(marked?));
    }
    let mut marked = match value.clone().try_cast::<Marked>() {
        Some(m) => m,
        None if value.is_string() => Marked {
            path: value.to_string(),
            kind: FileKind::Plain,
            rule: None,
            directory: false,
            report: None,
        },
        None => {
            return Err(runtime(format!(
                "{f}() takes a path string or an array of them"
            )))
        }
    };
    apply(&mut marked);
    Ok(Dynamic::from(marked))
}

/// `report(path, caption)`'s second argument: the caption, or a map of `caption` and
/// `category`.
fn report_mark(options: Dynamic) -> Res<ReportMark> {
    if options.is_string() {
        return Ok(ReportMark {
            caption: Some(options.to_string()),
            category: None,
        });
    }
    let Some(map) = options.clone().try_cast::<Map>() else {
        return Err(runtime(format!(
            "report(): the second argument must be a caption or a map such as \
             `#{{ caption: \"...\", category: \"...\" }}`, not {}",
            super::declare::type_name(&options)
        )));
    };
    let mut mark = ReportMark::default();
    for (key, v) in map {
        let slot = match key.as_str() {
            "caption" => &mut mark.caption,
            "category" => &mut mark.category,
            other => {
                return Err(runtime(format!(
                    "report(): no key `{other}`; the keys are caption, category"
                )))
            }
        };
        if !v.is_string() {
            return Err(runtime(format!(
                "report(): `{key}` must be a string, not {}",
                super::declare::type_name(&v)
            )));
        }
        *slot = Some(v.to_string());
    }
    Ok(mark)
}

/// `multiext(prefix, ext, ...)`: the prefix with each extension, as Snakemake's `multiext`.
fn multiext(prefix: &str, exts: &[Dynamic]) -> Res<Array> {
    exts.iter()
        .map(|e| {
            if e.is_string() {
                Ok(Dynamic::from(format!("{prefix}{e}")))
            } else {
                Err(runtime(
                    "multiext: the extensions must be strings, like `\".bam\"`",
                ))
            }
        })
        .collect()
}

/// Registers `multiext` with one to eight extensions (Rhai functions have a fixed arity).
fn register_multiext(engine: &mut Engine) {
    type D = Dynamic;
    engine
        .register_fn("multiext", |p: &str, a: D| multiext(p, &[a]))
        .register_fn("multiext", |p: &str, a: D, b: D| multiext(p, &[a, b]))
        .register_fn("multiext", |p: &str, a: D, b: D, c: D| {
            multiext(p, &[a, b, c])
        })
        .register_fn("multiext", |p: &str, a: D, b: D, c: D, d: D| {
            multiext(p, &[a, b, c, d])
        })
        .register_fn("multiext", |p: &str, a: D, b: D, c: D, d: D, e: D| {
            multiext(p, &[a, b, c, d, e])
        })
        .register_fn("multiext", |p: &str, a: D, b: D, c: D, d: D, e: D, f: D| {
            multiext(p, &[a, b, c, d, e, f])
        })
        .register_fn(
            "multiext",
            |p: &str, a: D, b: D, c: D, d: D, e: D, f: D, g: D| multiext(p, &[a, b, c, d, e, f, g]),
        )
        .register_fn(
            "multiext",
            |p: &str, a: D, b: D, c: D, d: D, e: D, f: D, g: D, h: D| {
                multiext(p, &[a, b, c, d, e, f, g, h])
            },
        );
}

/// Registers the helpers; `state` receives constraints and provides the user's config.
pub fn register(engine: &mut Engine, state: &SharedState) {
    engine
        .register_type_with_name::<Marked>("MarkedPath")
        .register_fn("to_string", |m: &mut Marked| m.path.clone())
        .register_fn("collect", |r: std::ops::Range<i64>| {
            r.map(Dynamic::from).collect::<Array>()
        })
        .register_fn("collect", |r: std::ops::RangeInclusive<i64>| {
            r.map(Dynamic::from).collect::<Array>()
        })
        .register_fn("expand", expand)
        .register_fn("expand", expand_how)
        .register_fn("temp", |v: Dynamic| {
            mark(v, "temp", &|m| m.kind = FileKind::Temp)
        })
        .register_fn("protected", |v: Dynamic| {
            mark(v, "protected", &|m| m.kind = FileKind::Protected)
        })
        .register_fn("touch", |v: Dynamic| {
            mark(v, "touch", &|m| m.kind = FileKind::Touch)
        })
        .register_fn("directory", |v: Dynamic| {
            mark(v, "directory", &|m| m.directory = true)
        })
        .register_fn("ancient", |v: Dynamic| {
            mark(v, "ancient", &|m| m.kind = FileKind::Ancient)
        })
        .register_fn("report", |v: Dynamic| {
            mark(v, "report", &|m| m.report = Some(ReportMark::default()))
        })
        .register_fn("report", |v: Dynamic, options: Dynamic| {
            let report = report_mark(options)?;
            mark(v, "report", &|m| m.report = Some(report.clone()))
        });
    register_multiext(engine);
    let st = state.clone();
    let with_defaults = move |mut merged: serde_json::Value| -> Res<Dynamic> {
        let user = st
            .lock()
            .map_err(|_| runtime("state poisoned"))?
            .user_config
            .clone();
        super::config::merge(&mut merged, user);
        rhai::serde::to_dynamic(merged)
    };
    let from_map = with_defaults.clone();
    engine.register_fn("config", move |defaults: Map| -> Res<Dynamic> {
        from_map(
            rhai::serde::from_dynamic(&Dynamic::from(defaults))
                .map_err(|e| runtime(format!("config: {e}")))?,
        )
    });
    // Snakemake's `configfile: "config/config.yaml"`: the file holds the defaults, which
    // `--configfile` and `--config` override; a change to it changes the workflow.
    engine.register_fn("config", move |path: &str| -> Res<Dynamic> {
        let file = std::path::PathBuf::from(path);
        let defaults = super::config::read_file(&file).map_err(|d| {
            runtime(match d.hint {
                Some(hint) => format!("config: {}; {hint}", d.message),
                None => format!("config: {}", d.message),
            })
        })?;
        with_defaults(defaults)
    });
    let st = state.clone();
    engine.register_fn("config", move || -> Res<Dynamic> {
        let user = st
            .lock()
            .map_err(|_| runtime("state poisoned"))?
            .user_config
            .clone();
        rhai::serde::to_dynamic(user)
    });
    engine.register_fn("glob_wildcards", glob_wildcards);
    engine
        .register_fn("read_table", |path: &str| {
            let path = Path::new(path);
            super::table::read(path, crate::native::table::separator_for(path))
        })
        .register_fn("read_table", |path: &str, options: Map| {
            let sep = super::table::separator_option(path, &options)?;
            super::table::read(Path::new(path), sep)
        })
        .register_fn("lookup", super::table::lookup_row)
        .register_fn("lookup", super::table::lookup_value)
        .register_fn("lookup", super::table::lookup_or);
    let st = state.clone();
    engine.register_fn("wildcard_constraints", move |map: Map| -> Res<()> {
        let mut s = st.lock().map_err(|_| runtime("state poisoned"))?;
        for (k, v) in map {
            if !v.is_string() {
                return Err(runtime(format!(
                    "wildcard_constraints: `{k}` must be a regex string"
                )));
            }
            s.constraints.insert(k.to_string(), v.to_string());
        }
        Ok(())
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, Dynamic)]) -> Map {
        pairs
            .iter()
            .map(|(k, v)| ((*k).into(), v.clone()))
            .collect()
    }

    #[test]
    fn expand_makes_the_product_in_pattern_order() {
        let values = map(&[
            (
                "s",
                Dynamic::from(vec![Dynamic::from("a"), Dynamic::from("b")]),
            ),
            (
                "n",
                Dynamic::from(vec![Dynamic::from(1_i64), Dynamic::from(2_i64)]),
            ),
        ]);
        let out: Vec<String> = expand("{s}/{n}.txt".into(), values)
            .unwrap()
            .iter()
            .map(|d| d.to_string())
            .collect();
        assert_eq!(out, ["a/1.txt", "a/2.txt", "b/1.txt", "b/2.txt"]);
    }

    #[test]
    fn expand_zip_pairs_the_lists_and_repeats_a_single_value() {
        let list = |items: &[&str]| {
            Dynamic::from(
                items
                    .iter()
                    .map(|&i| Dynamic::from(i.to_string()))
                    .collect::<Array>(),
            )
        };
        let values = map(&[
            ("s", list(&["a", "b", "c"])),
            ("u", list(&["1", "2", "3"])),
            ("x", Dynamic::from("q")),
        ]);
        let out: Vec<String> = expand_how("{s}-{u}.{x}".into(), values.clone(), "zip")
            .unwrap()
            .iter()
            .map(|d| d.to_string())
            .collect();
        assert_eq!(out, ["a-1.q", "b-2.q", "c-3.q"]);
        let product = expand_how("{s}-{u}.{x}".into(), values, "product").unwrap();
        assert_eq!(product.len(), 9);
        let uneven = map(&[("s", list(&["a", "b", "c"])), ("u", list(&["1", "2"]))]);
        let err = expand_how("{s}-{u}".into(), uneven.clone(), "zip").unwrap_err();
        assert!(
            err.to_string().contains(
                "expand: with \"zip\", the value lists must be as long as each other: `s` has 3, `u` has 2"
            ),
            "{err}"
        );
        let err = expand_how("{s}-{u}".into(), uneven, "zipp").unwrap_err();
        assert!(
            err.to_string().contains(
                "expand: `zipp` is not a way to combine values; use \"zip\" or \"product\""
            ),
            "{err}"
        );
    }

    #[test]
    fn expand_keeps_double_braces_and_reports_missing_values() {
        let values = map(&[("s", Dynamic::from("a"))]);
        let out = expand("{s}.{{ext}}".into(), values.clone()).unwrap();
        assert_eq!(out[0].to_string(), "a.{ext}");
        let e = expand("{x}.txt".into(), values).unwrap_err();
        assert!(e.to_string().contains("no values for `{x}`"), "{e}");
    }

    #[test]
    fn expand_is_bounded() {
        let big: Array = (0..2000_i64).map(Dynamic::from).collect();
        let values = map(&[("a", Dynamic::from(big.clone())), ("b", Dynamic::from(big))]);
        let e = expand("{a}{b}".into(), values).unwrap_err();
        assert!(e.to_string().contains("would make more than"), "{e}");
    }

    #[test]
    fn walk_root_is_the_literal_directory() {
        assert_eq!(walk_root("data/{s}.txt"), "data");
        assert_eq!(walk_root("{s}.txt"), ".");
        assert_eq!(walk_root("a/b/x{s}/c.txt"), "a/b");
    }
}
