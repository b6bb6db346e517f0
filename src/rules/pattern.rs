//! File patterns with wildcards: `results/{sample}.txt`, `{x,[a-z]+}` (inline constraint).
//!
//! An output pattern is matched against a wanted path (backward resolution, as in Snakemake) to
//! bind wildcard values; input patterns are then formatted with those values. Matching is a
//! compiled regex, guarded by the pattern's literal prefix and suffix so that a large DAG
//! rejects most candidate rules without running a regex. Rust's regex has no backreferences, so
//! a wildcard used twice gets two groups and the values must agree.

use std::collections::BTreeMap;
use std::fmt;

use regex::Regex;

pub use crate::rules::wildcards::Wildcards;

/// Default regex of a wildcard without a constraint, as in Snakemake.
pub const DEFAULT_CONSTRAINT: &str = ".+";

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Wildcard {
        name: String,
        constraint: Option<String>,
    },
}

/// Why a pattern could not be parsed or formatted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    #[error("unclosed `{{` in `{0}`; write `{{{{` for a literal brace")]
    Unclosed(String),
    #[error("stray `}}` in `{0}`; write `}}}}` for a literal brace")]
    Stray(String),
    #[error("`{{{name}}}` in `{pattern}` is not a valid wildcard name (letters, digits, `_`)")]
    BadName { pattern: String, name: String },
    #[error("wildcard `{name}` in `{pattern}` has an invalid constraint: {message}")]
    BadConstraint {
        pattern: String,
        name: String,
        message: String,
    },
    #[error("no value for wildcard `{name}` in `{pattern}`")]
    Unbound { pattern: String, name: String },
}

/// A pattern's text split into literals and wildcards: all that filling it in needs. `expand`
/// fills in thousands of patterns per plan (one per call of an aggregate's input function) and
/// never matches a path, so it takes this rather than a [`Pattern`], whose matcher compiles a
/// regex.
#[derive(Debug, Clone)]
pub struct Template {
    text: String,
    parts: Vec<Part>,
}

/// A parsed file pattern.
#[derive(Debug, Clone)]
pub struct Pattern {
    template: Template,
    prefix: String,
    suffix: String,
    matcher: Option<Matcher>,
}

#[derive(Debug, Clone)]
enum Matcher {
    /// One wildcard with the default constraint, between the literal prefix and suffix (the
    /// commonest shape, `out/{sample}.txt`): its value is what lies between them, which `.+`
    /// accepts when it is not empty and holds no newline. No regex runs for it.
    Between { name: String },
    Regex {
        regex: Regex,
        /// Wildcard name of each capture group, in group order.
        groups: Vec<String>,
    },
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit())
}

fn parse_parts(text: &str) -> Result<Vec<Part>, PatternError> {
    if !text.bytes().any(|b| b == b'{' || b == b'}') {
        // A plain path (an aggregate lists thousands): no character-by-character copy.
        return Ok(if text.is_empty() {
            Vec::new()
        } else {
            vec![Part::Literal(text.to_string())]
        });
    }
    let mut parts = Vec::new();
    let mut literal = String::new();
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '{' if matches!(chars.peek(), Some((_, '{'))) => {
                chars.next();
                literal.push('{');
            }
            '}' if matches!(chars.peek(), Some((_, '}'))) => {
                chars.next();
                literal.push('}');
            }
            '}' => return Err(PatternError::Stray(text.into())),
            '{' => {
                // A constraint may itself hold braces (`{n,[0-9]{2}}`): count depth.
                let mut depth = 1;
                let mut end = None;
                for (j, d) in text[i + 1..].char_indices() {
                    match d {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                end = Some(i + 1 + j);
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                let end = end.ok_or_else(|| PatternError::Unclosed(text.into()))?;
                let inner = &text[i + 1..end];
                while chars.peek().is_some_and(|(k, _)| *k <= end) {
                    chars.next();
                }
                let (name, constraint) = match inner.split_once(',') {
                    Some((n, c)) => (n.trim(), Some(c.trim().to_string())),
                    None => (inner.trim(), None),
                };
                if !valid_name(name) {
                    return Err(PatternError::BadName {
                        pattern: text.into(),
                        name: inner.into(),
                    });
                }
                if !literal.is_empty() {
                    parts.push(Part::Literal(std::mem::take(&mut literal)));
                }
                parts.push(Part::Wildcard {
                    name: name.into(),
                    constraint,
                });
            }
            c => literal.push(c),
        }
    }
    if !literal.is_empty() {
        parts.push(Part::Literal(literal));
    }
    Ok(parts)
}

impl Template {
    /// Splits a pattern's text; checks the braces and the wildcard names, not the constraints.
    pub fn parse(text: &str) -> Result<Self, PatternError> {
        let text = normalize_path(text);
        let parts = parse_parts(&text)?;
        Ok(Self { text, parts })
    }

    /// The names of the wildcards, in order of first appearance, without repeats.
    pub fn wildcard_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = Vec::new();
        for part in &self.parts {
            if let Part::Wildcard { name, .. } = part {
                if !names.contains(&name.as_str()) {
                    names.push(name);
                }
            }
        }
        names
    }

    /// Substitutes wildcard values into the pattern.
    pub fn format(&self, values: &Wildcards) -> Result<String, PatternError> {
        self.fill(|name| values.get(name).map(String::as_str))
    }

    /// Substitutes the value `value` gives for each wildcard's name: `expand` fills in one
    /// path per combination of values without building a map for each.
    pub fn fill<'v>(
        &self,
        value: impl Fn(&str) -> Option<&'v str>,
    ) -> Result<String, PatternError> {
        let mut out = String::with_capacity(self.text.len() + 16);
        for part in &self.parts {
            match part {
                Part::Literal(l) => out.push_str(l),
                Part::Wildcard { name, .. } => match value(name) {
                    Some(v) => out.push_str(v),
                    None => {
                        return Err(PatternError::Unbound {
                            pattern: self.text.clone(),
                            name: name.clone(),
                        })
                    }
                },
            }
        }
        Ok(normalize_path(out))
    }
}

impl Pattern {
    /// Parses a pattern. `constraints` gives regexes for wildcards without an inline one.
    pub fn parse(text: &str, constraints: &BTreeMap<String, String>) -> Result<Self, PatternError> {
        let template = Template::parse(text)?;
        let (text, parts) = (&template.text, &template.parts);
        let has_wildcards = parts.iter().any(|p| matches!(p, Part::Wildcard { .. }));
        // For a literal pattern the prefix is the whole (unescaped) path.
        let prefix = match parts.first() {
            Some(Part::Literal(l)) => l.clone(),
            _ => String::new(),
        };
        let suffix = match parts.last() {
            Some(Part::Literal(l)) if has_wildcards => l.clone(),
            _ => String::new(),
        };
        let matcher = if has_wildcards {
            let mut re = String::from("^");
            let mut groups = Vec::new();
            let mut used = Vec::new();
            for part in parts {
                match part {
                    Part::Literal(l) => re.push_str(&regex::escape(l)),
                    Part::Wildcard { name, constraint } => {
                        let c = constraint
                            .as_deref()
                            .or_else(|| constraints.get(name).map(String::as_str))
                            .unwrap_or(DEFAULT_CONSTRAINT);
                        if c != DEFAULT_CONSTRAINT {
                            Regex::new(c).map_err(|e| PatternError::BadConstraint {
                                pattern: text.clone(),
                                name: name.clone(),
                                message: e.to_string(),
                            })?;
                        }
                        re.push_str(&format!("({c})"));
                        groups.push(name.clone());
                        used.push(c);
                    }
                }
            }
            re.push('$');
            // One wildcard means at most a literal on either side: the prefix and the suffix.
            Some(match (&groups[..], &used[..]) {
                ([name], [DEFAULT_CONSTRAINT]) => Matcher::Between { name: name.clone() },
                _ => Matcher::Regex {
                    regex: Regex::new(&re).map_err(|e| PatternError::BadConstraint {
                        pattern: text.clone(),
                        name: groups.join(","),
                        message: e.to_string(),
                    })?,
                    groups,
                },
            })
        } else {
            None
        };
        Ok(Self {
            template,
            prefix,
            suffix,
            matcher,
        })
    }

    /// The pattern as written (normalised, escapes kept).
    pub fn as_str(&self) -> &str {
        &self.template.text
    }

    /// Whether the pattern has any wildcard.
    pub fn has_wildcards(&self) -> bool {
        self.matcher.is_some()
    }

    /// The names of the wildcards, in order of first appearance, without repeats.
    pub fn wildcard_names(&self) -> Vec<&str> {
        self.template.wildcard_names()
    }

    /// Matches a concrete path, returning the bound wildcards (empty for a literal pattern).
    pub fn matches(&self, path: &str) -> Option<Wildcards> {
        let Some(m) = &self.matcher else {
            return (path == self.prefix).then(Wildcards::new);
        };
        if !path.starts_with(&self.prefix) || !path.ends_with(&self.suffix) {
            return None;
        }
        let (regex, groups) = match m {
            Matcher::Between { name } => {
                let end = path.len().checked_sub(self.suffix.len())?;
                let value = path.get(self.prefix.len()..end)?;
                if value.is_empty() || value.contains('\n') {
                    return None;
                }
                let mut values = Wildcards::new();
                values.insert(name.clone(), value.to_string());
                return Some(values);
            }
            Matcher::Regex { regex, groups } => (regex, groups),
        };
        let caps = regex.captures(path)?;
        let mut values = Wildcards::new();
        for (i, name) in groups.iter().enumerate() {
            let value = caps.get(i + 1)?.as_str();
            match values.get(name) {
                Some(v) if v != value => return None,
                Some(_) => {}
                None => {
                    values.insert(name.clone(), value.to_string());
                }
            }
        }
        Some(values)
    }

    /// Substitutes wildcard values into the pattern.
    pub fn format(&self, values: &Wildcards) -> Result<String, PatternError> {
        if self.matcher.is_none() {
            return Ok(self.prefix.clone());
        }
        self.template.format(values)
    }
}

/// The longest path Linux accepts (`PATH_MAX`), and the longest file name (`NAME_MAX`).
pub const MAX_PATH_BYTES: usize = 4096;
pub const MAX_NAME_BYTES: usize = 255;

/// Why `path` cannot name a file on Linux (too long as a whole or in one part), if it cannot.
pub fn path_too_long(path: &str) -> Option<String> {
    if path.contains('\0') {
        return Some(format!(
            "the path `{}` holds a NUL byte, which no file name can",
            shorten(&path.replace('\0', "\\0"))
        ));
    }
    if path.len() >= MAX_PATH_BYTES {
        return Some(format!(
            "the path `{}` is {} bytes long; paths must be shorter than {MAX_PATH_BYTES} bytes",
            shorten(path),
            path.len()
        ));
    }
    path.split('/')
        .find(|part| part.len() > MAX_NAME_BYTES)
        .map(|part| {
            format!(
                "the path `{}` has a part of {} bytes (`{}`); a file or directory name may have at most {MAX_NAME_BYTES}",
                shorten(path),
                part.len(),
                shorten(part)
            )
        })
}

/// The first 80 characters of a long text, for messages.
pub fn shorten(text: &str) -> String {
    match text.char_indices().nth(80) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

/// How `path` (or a pattern's text) leaves the working directory, if it does: it is absolute,
/// or its `..` segments climb above the directory.
pub fn outside_workdir(path: &str) -> Option<&'static str> {
    if path.starts_with('/') {
        return Some("is an absolute path");
    }
    if !path.contains("..") {
        return None;
    }
    let mut depth = 0i64;
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                depth -= 1;
                if depth < 0 {
                    return Some("climbs out of the working directory with `..`");
                }
            }
            _ => depth += 1,
        }
    }
    None
}

/// Whether `path` has no `./` at its start and no `//` or `/./` in it. One pass over the bytes:
/// every job's paths go through [`normalize_path`], and three substring searches (each calling
/// `memcmp` at every position for so short a needle) took a seventh of a 10,000-job no-op's
/// instructions.
fn is_normal(path: &str) -> bool {
    let b = path.as_bytes();
    !b.starts_with(b"./")
        && !(0..b.len())
            .any(|i| b[i] == b'/' && matches!(&b[i + 1..], [b'/', ..] | [b'.', b'/', ..]))
}

/// Lexically tidies a relative path: drops `./` segments and doubled slashes, so that
/// `./a//b.txt` and `a/b.txt` name the same file in the DAG. A tidy path comes back as it was,
/// without a copy when it was given owned (every path a job's pattern formats).
pub fn normalize_path(path: impl Into<String>) -> String {
    let path = path.into();
    if is_normal(&path) {
        return path;
    }
    let absolute = path.starts_with('/');
    let parts: Vec<&str> = path
        .split('/')
        .filter(|s| !s.is_empty() && *s != ".")
        .collect();
    let joined = parts.join("/");
    if absolute {
        format!("/{joined}")
    } else {
        joined
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Pattern {
        Pattern::parse(text, &BTreeMap::new()).unwrap()
    }

    #[test]
    fn binds_and_formats_wildcards() {
        let pat = p("results/{sample}.{ext}");
        let w = pat.matches("results/a.b.txt").unwrap();
        assert_eq!(w.get("sample").unwrap(), "a.b");
        assert_eq!(w.get("ext").unwrap(), "txt");
        assert_eq!(pat.format(&w).unwrap(), "results/a.b.txt");
    }

    #[test]
    fn literal_pattern_matches_only_itself() {
        let pat = p("./data//x.txt");
        assert_eq!(pat.as_str(), "data/x.txt");
        assert!(pat.matches("data/x.txt").is_some());
        assert!(pat.matches("data/y.txt").is_none());
    }

    #[test]
    fn constraints_inline_and_global() {
        let pat = p("{n,[0-9]{2}}.txt");
        assert!(pat.matches("12.txt").is_some());
        assert!(pat.matches("123.txt").is_none());
        let mut c = BTreeMap::new();
        c.insert("s".to_string(), "[a-z]+".to_string());
        let pat = Pattern::parse("{s}.txt", &c).unwrap();
        assert!(pat.matches("abc.txt").is_some());
        assert!(pat.matches("ab1.txt").is_none());
    }

    #[test]
    fn one_unconstrained_wildcard_matches_as_its_regex_would() {
        let pat = p("out/{s}.txt");
        assert_eq!(pat.matches("out/a/b.txt").unwrap().get("s").unwrap(), "a/b");
        assert_eq!(pat.matches("out/é.txt").unwrap().get("s").unwrap(), "é");
        for no in [
            "out/.txt",
            "out/a\nb.txt",
            "out.txt",
            "out/a.csv",
            "in/a.txt",
            "",
        ] {
            assert!(pat.matches(no).is_none(), "{no:?}");
        }
        // Prefix and suffix must not overlap.
        let pat = p("a{x}a");
        assert!(pat.matches("a").is_none());
        assert!(pat.matches("aa").is_none());
        assert_eq!(pat.matches("aba").unwrap().get("x").unwrap(), "b");
        assert_eq!(
            p("{x}").matches("any/thing").unwrap().get("x").unwrap(),
            "any/thing"
        );
    }

    #[test]
    fn normal_paths_are_found_as_the_three_searches_found_them() {
        for path in [
            "", ".", "./", "a", "a/b.txt", "./a", "a//b", "a/./b", "a/.b", "a/b/.", "a/b/", "/a",
            "//a", "/./a", ".a/b", "a/..//b", "a/../b", "é//é", "a/.", "/.", "/./",
        ] {
            let old = !path.contains("//") && !path.starts_with("./") && !path.contains("/./");
            assert_eq!(is_normal(path), old, "{path:?}");
        }
        assert_eq!(normalize_path("./a//b/./c.txt"), "a/b/c.txt");
        assert_eq!(normalize_path("a/.b"), "a/.b");
    }

    #[test]
    fn repeated_wildcard_must_agree() {
        let pat = p("{s}/{s}.txt");
        assert!(pat.matches("a/a.txt").is_some());
        assert!(pat.matches("a/b.txt").is_none());
    }

    #[test]
    fn escaped_braces_are_literal() {
        let pat = p("x{{y}}.txt");
        assert!(!pat.has_wildcards());
        assert_eq!(pat.format(&Wildcards::new()).unwrap(), "x{y}.txt");
        assert!(pat.matches("x{y}.txt").is_some());
    }

    #[test]
    fn errors_name_the_problem() {
        let e = Pattern::parse("a/{s.txt", &BTreeMap::new()).unwrap_err();
        assert!(e.to_string().contains("unclosed `{`"), "{e}");
        let e = Pattern::parse("a/{1x}.txt", &BTreeMap::new()).unwrap_err();
        assert!(e.to_string().contains("not a valid wildcard name"), "{e}");
        let e = Pattern::parse("{s,(}.txt", &BTreeMap::new()).unwrap_err();
        assert!(e.to_string().contains("invalid constraint"), "{e}");
        let e = p("{a}.txt").format(&Wildcards::new()).unwrap_err();
        assert!(e.to_string().contains("no value for wildcard `a`"), "{e}");
    }
}
