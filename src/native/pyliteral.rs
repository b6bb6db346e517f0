//! The subset of Python literal syntax used by `.npy` headers.
//!
//! A `.npy` header is the `repr` of a Python dict such as
//! `{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }`. Keys may come in any order and
//! old files write `3L`, so rather than matching text this parses the literal properly:
//! strings, non-negative integers, `True`/`False`/`None`, tuples, lists and dicts.
//!
//! The `npyz` crate parses these headers too, and was measured in its place (bench/RESULTS.md,
//! "the `.npy` header through `npyz`?"): the payload streamed as fast, but its `pest`-based
//! parser took ~10× as long per header (every `read_rows` call parses one), panicked in debug
//! builds on a shape whose product overflows, reported faults less precisely, and brought 15
//! crates. So the header stays with this parser.

/// A parsed Python literal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Literal {
    /// `'text'` or `"text"`.
    Str(String),
    /// A non-negative integer (an optional Python 2 `L` suffix is accepted).
    Int(u64),
    /// `True` or `False`.
    Bool(bool),
    /// `None`.
    None,
    /// A tuple or list.
    Seq(Vec<Literal>),
    /// A dict, in source order.
    Dict(Vec<(Literal, Literal)>),
}

impl Literal {
    /// The value of `key` in a dict with string keys.
    pub fn get(&self, key: &str) -> Option<&Literal> {
        match self {
            Literal::Dict(pairs) => pairs
                .iter()
                .find(|(k, _)| matches!(k, Literal::Str(s) if s == key))
                .map(|(_, v)| v),
            _ => None,
        }
    }
}

/// Parses one literal filling all of `text` (surrounding whitespace allowed).
pub fn parse(text: &str) -> Result<Literal, String> {
    let mut p = Parser {
        s: text.as_bytes(),
        i: 0,
    };
    let value = p.value()?;
    p.skip_ws();
    if p.i != p.s.len() {
        return Err(p.unexpected("the end"));
    }
    Ok(value)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn skip_ws(&mut self) {
        while self.s.get(self.i).is_some_and(u8::is_ascii_whitespace) {
            self.i += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.s.get(self.i).copied()
    }

    fn unexpected(&self, expected: &str) -> String {
        match self.s.get(self.i) {
            Some(&c) => format!(
                "expected {expected} at byte {}, found `{}`",
                self.i, c as char
            ),
            None => format!("expected {expected}, found the end"),
        }
    }

    fn value(&mut self) -> Result<Literal, String> {
        match self.peek() {
            Some(q @ (b'\'' | b'"')) => self.string(q),
            Some(b'0'..=b'9') => self.int(),
            Some(b'(') => self.seq(b')').map(Literal::Seq),
            Some(b'[') => self.seq(b']').map(Literal::Seq),
            Some(b'{') => self.dict(),
            _ => self.word(),
        }
    }

    fn word(&mut self) -> Result<Literal, String> {
        for (word, value) in [
            ("True", Literal::Bool(true)),
            ("False", Literal::Bool(false)),
            ("None", Literal::None),
        ] {
            if self.s[self.i..].starts_with(word.as_bytes()) {
                self.i += word.len();
                return Ok(value);
            }
        }
        Err(self.unexpected("a value"))
    }

    fn string(&mut self, quote: u8) -> Result<Literal, String> {
        let mut out = Vec::new();
        self.i += 1;
        loop {
            match self.s.get(self.i) {
                None => return Err(self.unexpected("a closing quote")),
                Some(&c) if c == quote => break,
                Some(b'\\') => {
                    self.i += 1;
                    out.extend(self.s.get(self.i));
                }
                Some(&c) => out.push(c),
            }
            self.i += 1;
        }
        self.i += 1;
        String::from_utf8(out)
            .map(Literal::Str)
            .map_err(|_| "a string is not valid UTF-8".to_string())
    }

    fn int(&mut self) -> Result<Literal, String> {
        let start = self.i;
        while self.s.get(self.i).is_some_and(u8::is_ascii_digit) {
            self.i += 1;
        }
        let digits = std::str::from_utf8(&self.s[start..self.i]).map_err(|e| e.to_string())?;
        let n = digits
            .parse()
            .map_err(|_| format!("integer {digits} is too large"))?;
        if self.s.get(self.i) == Some(&b'L') {
            self.i += 1;
        }
        Ok(Literal::Int(n))
    }

    /// Comma-separated items up to `close`, a trailing comma allowed; calls `item` for each.
    fn items(
        &mut self,
        close: u8,
        mut item: impl FnMut(&mut Self) -> Result<(), String>,
    ) -> Result<(), String> {
        self.i += 1;
        loop {
            if self.peek() == Some(close) {
                self.i += 1;
                return Ok(());
            }
            item(self)?;
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(c) if c == close => {}
                _ => return Err(self.unexpected(&format!("`,` or `{}`", close as char))),
            }
        }
    }

    fn seq(&mut self, close: u8) -> Result<Vec<Literal>, String> {
        let mut values = Vec::new();
        self.items(close, |p| {
            values.push(p.value()?);
            Ok(())
        })?;
        Ok(values)
    }

    fn dict(&mut self) -> Result<Literal, String> {
        let mut pairs = Vec::new();
        self.items(b'}', |p| {
            let key = p.value()?;
            if p.peek() != Some(b':') {
                return Err(p.unexpected("`:`"));
            }
            p.i += 1;
            pairs.push((key, p.value()?));
            Ok(())
        })?;
        Ok(Literal::Dict(pairs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Literal::*;

    #[test]
    fn parses_numpy_headers() {
        let h = parse("{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }   ").unwrap();
        assert_eq!(h.get("descr"), Some(&Str("<f8".into())));
        assert_eq!(h.get("fortran_order"), Some(&Bool(false)));
        assert_eq!(h.get("shape"), Some(&Seq(vec![Int(3), Int(4)])));
        let h = parse(r#"{"shape": (7L,), "descr": [('a', '<i4')], 'x': None}"#).unwrap();
        assert_eq!(h.get("shape"), Some(&Seq(vec![Int(7)])));
        assert_eq!(
            h.get("descr"),
            Some(&Seq(vec![Seq(vec![Str("a".into()), Str("<i4".into())])]))
        );
        assert_eq!(parse("()").unwrap(), Seq(vec![]));
        assert_eq!(parse(r"'it\'s'").unwrap(), Str("it's".into()));
    }

    #[test]
    fn reports_where_it_went_wrong() {
        assert_eq!(
            parse("{'a' 1}").unwrap_err(),
            "expected `:` at byte 5, found `1`"
        );
        assert_eq!(
            parse("(1, 2").unwrap_err(),
            "expected `,` or `)`, found the end"
        );
        assert_eq!(
            parse("{'a': 1} x").unwrap_err(),
            "expected the end at byte 9, found `x`"
        );
        assert!(parse("'open").unwrap_err().contains("closing quote"));
        assert!(parse("99999999999999999999999")
            .unwrap_err()
            .contains("too large"));
        assert!(parse("Nope").unwrap_err().contains("expected a value"));
    }
}
