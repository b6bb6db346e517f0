//! Shell command templates: `cat {input.reads} > {output[0]} # {params.x} {wildcards.s} {threads}`.
//!
//! A template is parsed and checked against its rule when the workflow loads, so a typo such as
//! `{inptu}` is an error with a suggestion before anything runs. Paths are shell-quoted when
//! they need it (spaces, quotes, `$`...); params and wildcards are inserted as written.

use std::collections::BTreeMap;

use crate::diagnostic::did_you_mean;
use crate::rules::pattern::Wildcards;

/// Which job value a placeholder names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Input,
    Output,
    Log,
    Params,
    Wildcards,
    Threads,
    Resources,
    Rule,
}

const SECTIONS: [(&str, Section); 8] = [
    ("input", Section::Input),
    ("output", Section::Output),
    ("log", Section::Log),
    ("params", Section::Params),
    ("wildcards", Section::Wildcards),
    ("threads", Section::Threads),
    ("resources", Section::Resources),
    ("rule", Section::Rule),
];

/// The part after the section: `.name`, `[index]` or `.name[index]` (the index-th file of
/// that name, as Snakemake's `{input.reads[1]}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    All,
    Name(String),
    Index(usize),
    Item(String, usize),
}

fn parse_index(text: &str, index: &str) -> Result<usize, String> {
    index
        .trim()
        .parse()
        .map_err(|_| format!("`{{{text}}}`: `{index}` is not an index"))
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Field {
        section: Section,
        key: Key,
        text: String,
    },
}

/// A parsed command template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

/// The names a template may refer to, for checking it against its rule.
pub struct Names<'a> {
    pub input: Vec<Option<&'a str>>,
    pub output: Vec<Option<&'a str>>,
    pub log: Vec<Option<&'a str>>,
    pub params: Vec<&'a str>,
    pub wildcards: Vec<&'a str>,
    pub resources: Vec<&'a str>,
    /// Sections whose names (and lengths) a function of the wildcards decides per job, which
    /// cannot be checked before jobs are bound.
    pub per_job: Vec<Section>,
}

/// The values of one job, for rendering.
pub struct Values<'a> {
    pub rule: &'a str,
    pub input: Vec<(Option<&'a str>, &'a str)>,
    pub output: Vec<(Option<&'a str>, &'a str)>,
    pub log: Vec<(Option<&'a str>, &'a str)>,
    pub params: &'a serde_json::Map<String, serde_json::Value>,
    pub wildcards: &'a Wildcards,
    pub threads: u32,
    pub resources: &'a BTreeMap<String, u64>,
}

fn parse_field(text: &str) -> Result<(Section, Key), String> {
    let (head, rest) = match text.find(['.', '[']) {
        Some(i) => (&text[..i], &text[i..]),
        None => (text, ""),
    };
    let section = SECTIONS
        .iter()
        .find(|(n, _)| *n == head)
        .map(|(_, s)| *s)
        .ok_or_else(|| {
            let mut msg = format!("unknown placeholder `{{{text}}}`");
            if let Some(h) = did_you_mean(head, SECTIONS.iter().map(|(n, _)| *n)) {
                msg.push_str(&format!("; {h}"));
            } else {
                msg.push_str("; placeholders are input, output, log, params, wildcards, threads, resources, rule, and `{{`/`}}` for literal braces");
            }
            msg
        })?;
    let key = if rest.is_empty() {
        Key::All
    } else if let Some(name) = rest.strip_prefix('.') {
        match name.split_once('[') {
            Some((name, index)) if index.ends_with(']') => Key::Item(
                name.to_string(),
                parse_index(text, &index[..index.len() - 1])?,
            ),
            _ => Key::Name(name.to_string()),
        }
    } else if let Some(index) = rest.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        Key::Index(parse_index(text, index)?)
    } else {
        return Err(format!("cannot read placeholder `{{{text}}}`"));
    };
    Ok((section, key))
}

impl Template {
    /// Parses a template; errors are plain messages for the rule's diagnostic.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        while let Some(i) = rest.find(['{', '}']) {
            literal.push_str(&rest[..i]);
            let tail = &rest[i..];
            if tail.starts_with("{{") || tail.starts_with("}}") {
                literal.push_str(&tail[..1]);
                rest = &tail[2..];
            } else if tail.starts_with('}') {
                return Err("stray `}` in the command; write `}}` for a literal brace".into());
            } else {
                let end = tail
                    .find('}')
                    .ok_or("unclosed `{` in the command; write `{{` for a literal brace")?;
                let field = tail[1..end].trim();
                let (section, key) = parse_field(field)?;
                if !literal.is_empty() {
                    parts.push(Part::Literal(std::mem::take(&mut literal)));
                }
                parts.push(Part::Field {
                    section,
                    key,
                    text: field.to_string(),
                });
                rest = &tail[end + 1..];
            }
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            parts.push(Part::Literal(literal));
        }
        Ok(Self { parts })
    }

    /// Checks every placeholder against what the rule declares.
    pub fn check(&self, names: &Names<'_>) -> Result<(), String> {
        for part in &self.parts {
            let Part::Field { section, key, text } = part else {
                continue;
            };
            if names.per_job.contains(section) {
                continue;
            }
            let (known, kind): (Vec<&str>, &str) = match section {
                Section::Input | Section::Output | Section::Log => {
                    let files = match section {
                        Section::Input => &names.input,
                        Section::Output => &names.output,
                        _ => &names.log,
                    };
                    // `{input[i]}` counts every file, `{input.reads[i]}` those named `reads`
                    // (an unknown name is reported below).
                    let (index, count) = match key {
                        Key::Index(i) => (Some(*i), files.len()),
                        Key::Item(name, i) => {
                            let n = files.iter().filter(|f| **f == Some(name)).count();
                            (Some(*i).filter(|_| n > 0), n)
                        }
                        _ => (None, 0),
                    };
                    if let Some(i) = index.filter(|i| *i >= count) {
                        return Err(format!(
                            "`{{{text}}}`: index {i} is out of range; the rule has {count} such file(s)"
                        ));
                    }
                    if let Key::Index(_) = key {
                        continue;
                    }
                    (files.iter().flatten().copied().collect(), "file name")
                }
                Section::Params => (names.params.clone(), "param"),
                Section::Wildcards => (names.wildcards.clone(), "wildcard"),
                Section::Resources => (names.resources.clone(), "resource"),
                Section::Threads | Section::Rule if *key == Key::All => continue,
                Section::Threads | Section::Rule => {
                    return Err(format!("`{{{text}}}` takes no name or index"))
                }
            };
            match key {
                Key::All
                    if matches!(
                        section,
                        Section::Input | Section::Output | Section::Log | Section::Wildcards
                    ) => {}
                Key::All => return Err(format!("`{{{text}}}` needs a name, like `{{{text}.x}}`")),
                Key::Index(_) => return Err(format!("`{{{text}}}` cannot be indexed")),
                Key::Item(..)
                    if !matches!(section, Section::Input | Section::Output | Section::Log) =>
                {
                    return Err(format!("`{{{text}}}` cannot be indexed"))
                }
                Key::Name(name) | Key::Item(name, _) => {
                    let top = name.split('.').next().unwrap_or(name);
                    if !known.contains(&top) {
                        let mut msg = format!("`{{{text}}}`: the rule has no {kind} `{top}`");
                        if let Some(h) = did_you_mean(top, known.iter().copied()) {
                            msg.push_str(&format!("; {h}"));
                        }
                        return Err(msg);
                    }
                }
            }
        }
        Ok(())
    }

    /// Renders the command for one job.
    pub fn render(&self, v: &Values<'_>) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(l) => out.push_str(l),
                Part::Field { section, key, .. } => match section {
                    Section::Input => render_files(&mut out, &v.input, key),
                    Section::Output => render_files(&mut out, &v.output, key),
                    Section::Log => render_files(&mut out, &v.log, key),
                    Section::Params => {
                        if let Key::Name(name) = key {
                            let mut value = None;
                            for (i, seg) in name.split('.').enumerate() {
                                value = if i == 0 {
                                    v.params.get(seg)
                                } else {
                                    value.and_then(|x| x.get(seg))
                                };
                            }
                            render_json(&mut out, value.unwrap_or(&serde_json::Value::Null));
                        }
                    }
                    Section::Wildcards => match key {
                        Key::Name(name) => {
                            out.push_str(v.wildcards.get(name).map_or("", String::as_str));
                        }
                        // `name=value` pairs by name, as Snakemake formats `{wildcards}`.
                        _ => {
                            for (i, (name, value)) in v.wildcards.iter().enumerate() {
                                if i > 0 {
                                    out.push(',');
                                }
                                out.push_str(name);
                                out.push('=');
                                out.push_str(value);
                            }
                        }
                    },
                    Section::Threads => out.push_str(&v.threads.to_string()),
                    Section::Rule => out.push_str(v.rule),
                    Section::Resources => {
                        if let Key::Name(name) = key {
                            out.push_str(&v.resources.get(name).copied().unwrap_or(0).to_string());
                        }
                    }
                },
            }
        }
        out
    }
}

fn render_files(out: &mut String, files: &[(Option<&str>, &str)], key: &Key) {
    let picked: Vec<&str> = match key {
        Key::All => files.iter().map(|(_, p)| *p).collect(),
        Key::Index(i) => files.get(*i).map(|(_, p)| *p).into_iter().collect(),
        Key::Name(n) => files
            .iter()
            .filter(|(name, _)| *name == Some(n.as_str()))
            .map(|(_, p)| *p)
            .collect(),
        Key::Item(n, i) => files
            .iter()
            .filter(|(name, _)| *name == Some(n.as_str()))
            .map(|(_, p)| *p)
            .nth(*i)
            .into_iter()
            .collect(),
    };
    for (i, path) in picked.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(&quote(path));
    }
}

fn render_json(out: &mut String, value: &serde_json::Value) {
    match value {
        serde_json::Value::String(s) => out.push_str(s),
        serde_json::Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                render_json(out, item);
            }
        }
        other => out.push_str(&other.to_string()),
    }
}

/// Quotes a word for `sh` if it holds anything but plainly safe characters.
pub fn quote(word: &str) -> String {
    let safe = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./,:+=@%".contains(c));
    if safe {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Names<'static> {
        Names {
            input: vec![Some("reads"), None],
            output: vec![None],
            log: vec![],
            params: vec!["factor"],
            wildcards: vec!["s"],
            resources: vec!["mem_mb"],
            per_job: vec![],
        }
    }

    #[test]
    fn renders_every_placeholder() {
        let t = Template::parse(
            "awk '{{print $1 * {params.factor}}}' {input} {input.reads} {input[1]} > {output} # {wildcards.s} {threads} {resources.mem_mb}",
        )
        .unwrap();
        t.check(&names()).unwrap();
        let params = serde_json::json!({"factor": 2})
            .as_object()
            .unwrap()
            .clone();
        let mut w = Wildcards::new();
        w.insert("s".into(), "a".into());
        let res = BTreeMap::from([("mem_mb".to_string(), 100)]);
        let v = Values {
            rule: "map",
            input: vec![(Some("reads"), "data/my file.txt"), (None, "b.txt")],
            output: vec![(None, "out/a.txt")],
            log: vec![],
            params: &params,
            wildcards: &w,
            threads: 4,
            resources: &res,
        };
        assert_eq!(
            t.render(&v),
            "awk '{print $1 * 2}' 'data/my file.txt' b.txt 'data/my file.txt' b.txt > out/a.txt # a 4 100"
        );
    }

    #[test]
    fn check_reports_unknown_names_with_suggestions() {
        let err = Template::parse("cat {inptu}").unwrap_err();
        assert!(
            err.contains("unknown placeholder `{inptu}`; did you mean `input`?"),
            "{err}"
        );
        let err = Template::parse("{params.factr}")
            .unwrap()
            .check(&names())
            .unwrap_err();
        assert!(
            err.contains("no param `factr`; did you mean `factor`?"),
            "{err}"
        );
        let err = Template::parse("{input[5]}")
            .unwrap()
            .check(&names())
            .unwrap_err();
        assert!(err.contains("index 5 is out of range"), "{err}");
        let err = Template::parse("echo {").unwrap_err();
        assert!(err.contains("unclosed `{`"), "{err}");
        let err = Template::parse("{params}")
            .unwrap()
            .check(&names())
            .unwrap_err();
        assert!(err.contains("needs a name"), "{err}");
        assert!(Template::parse("{wildcards} {rule}")
            .unwrap()
            .check(&names())
            .is_ok());
    }

    #[test]
    fn quoting_is_minimal_and_safe() {
        assert_eq!(quote("a/b.txt"), "a/b.txt");
        assert_eq!(quote("it's here"), "'it'\\''s here'");
        assert_eq!(quote(""), "''");
    }
}
