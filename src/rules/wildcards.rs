//! The wildcard values bound for one job, in name order (so they print and hash the same way).
//!
//! A job binds one or two wildcards, and a large workflow has 100,000 jobs. A sorted vector of
//! pairs takes one small allocation where a `BTreeMap` took a node of about 540 bytes, and it
//! clones, hashes, compares and frees faster; lookups scan a handful of names.

use serde::{Deserialize, Serialize};

/// Wildcard name → value, sorted by name, each name once.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Wildcards(Vec<(String, String)>);

impl Wildcards {
    /// No wildcards.
    pub fn new() -> Self {
        Self::default()
    }

    /// The value of `name`, if bound.
    pub fn get(&self, name: &str) -> Option<&String> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    /// Binds `name`, keeping the names in order; returns the value it replaced.
    pub fn insert(&mut self, name: String, value: String) -> Option<String> {
        match self.0.binary_search_by(|(k, _)| k.as_str().cmp(&name)) {
            Ok(i) => Some(std::mem::replace(&mut self.0[i].1, value)),
            Err(i) => {
                self.0.insert(i, (name, value));
                None
            }
        }
    }

    /// The pairs in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &String)> {
        self.0.iter().map(|(k, v)| (k, v))
    }

    /// Whether nothing is bound.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `text` with each `{name}` of a bound wildcard replaced by its value, as Snakemake
    /// formats `params` strings. Anything else stays as written: doubled braces (`{{x}}`),
    /// names that are not wildcards (an `awk '{print $1}'` program in a param keeps working).
    pub fn substitute<'a>(&self, text: &'a str) -> std::borrow::Cow<'a, str> {
        if self.is_empty() || !text.contains('{') {
            return text.into();
        }
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(i) = rest.find('{') {
            out.push_str(&rest[..i]);
            let tail = &rest[i..];
            if let Some(escaped) = tail.strip_prefix("{{") {
                out.push_str("{{");
                rest = escaped;
                continue;
            }
            let value = tail
                .find('}')
                .and_then(|end| Some((end, self.get(tail[1..end].trim())?)));
            match value {
                Some((end, v)) => {
                    out.push_str(v);
                    rest = &tail[end + 1..];
                }
                None => {
                    out.push('{');
                    rest = &tail[1..];
                }
            }
        }
        out.push_str(rest);
        out.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_names_sorted_and_unique() {
        let mut w = Wildcards::new();
        assert!(w.is_empty());
        assert_eq!(w.insert("s".into(), "a".into()), None);
        assert_eq!(w.insert("b".into(), "x".into()), None);
        assert_eq!(w.insert("s".into(), "c".into()), Some("a".into()));
        let pairs: Vec<(&String, &String)> = w.iter().collect();
        assert_eq!(pairs.len(), 2);
        assert_eq!((pairs[0].0.as_str(), pairs[0].1.as_str()), ("b", "x"));
        assert_eq!((pairs[1].0.as_str(), pairs[1].1.as_str()), ("s", "c"));
        assert_eq!(w.get("s").map(String::as_str), Some("c"));
        assert_eq!(w.get("none"), None);
    }

    #[test]
    fn substitutes_bound_names_only() {
        let mut w = Wildcards::new();
        w.insert("dir".into(), "out".into());
        w.insert("n".into(), "7".into());
        assert_eq!(w.substitute("{dir}/x{n}.txt"), "out/x7.txt");
        assert_eq!(w.substitute("{ dir }"), "out");
        assert_eq!(
            w.substitute("awk '{print $1}' {{dir}} {other}"),
            "awk '{print $1}' {{dir}} {other}"
        );
        assert_eq!(w.substitute("{dir"), "{dir");
        assert!(matches!(
            w.substitute("plain"),
            std::borrow::Cow::Borrowed(_)
        ));
        assert_eq!(Wildcards::new().substitute("{dir}"), "{dir}");
    }

    #[test]
    fn equal_whatever_the_insertion_order() {
        let mut a = Wildcards::new();
        a.insert("x".into(), "1".into());
        a.insert("y".into(), "2".into());
        let mut b = Wildcards::new();
        b.insert("y".into(), "2".into());
        b.insert("x".into(), "1".into());
        assert_eq!(a, b);
    }
}
