//! Errors about the workflow's source, rendered like a compiler's: the message, `file:line:col`,
//! the source line with a caret, then an optional `hint:`. Plain text first (it must read well
//! without colour); colour is added by `anstream`, which honours `NO_COLOR` and pipes.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

/// A place in a workflow or rule file (1-based line and column).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
}

impl fmt::Display for Origin {
    /// `file:line:col`, the file relative to the working directory when it lies inside it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cwd = std::env::current_dir().unwrap_or_default();
        let file = self.file.strip_prefix(&cwd).unwrap_or(&self.file);
        write!(f, "{}:{}:{}", file.display(), self.line, self.column)
    }
}

/// One error about the workflow, with where it happened and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub message: String,
    pub origin: Option<Origin>,
    pub hint: Option<String>,
}

impl Diagnostic {
    /// A diagnostic with no location.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            origin: None,
            hint: None,
        }
    }

    /// Attaches a location.
    pub fn at(mut self, origin: Option<Origin>) -> Self {
        self.origin = origin;
        self
    }

    /// Attaches a hint shown after the snippet.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Renders the diagnostic as plain text, reading the source line from disk.
    pub fn render(&self) -> String {
        let mut out = format!("error: {}\n", self.message);
        if let Some(origin) = &self.origin {
            out.push_str(&format!("  --> {origin}\n"));
            if let Some(line) = source_line(&origin.file, origin.line) {
                let number = origin.line.to_string();
                let pad = " ".repeat(number.len());
                let caret_at = line
                    .chars()
                    .take(origin.column.saturating_sub(1))
                    .map(|c| if c == '\t' { '\t' } else { ' ' })
                    .collect::<String>();
                out.push_str(&format!(
                    "{pad} |\n{number} | {line}\n{pad} | {caret_at}^\n"
                ));
            }
        }
        if let Some(hint) = &self.hint {
            out.push_str(&format!("\nhint: {hint}\n"));
        }
        out
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.render().trim_end())
    }
}

impl std::error::Error for Diagnostic {}

/// Prints a warning on stderr (`warning: …`, yellow where colour is on).
pub fn warn(text: &str) {
    let mut err = anstream::stderr();
    let style = anstyle::AnsiColor::Yellow.on_default().bold();
    let _ = writeln!(err, "{style}warning{style:#}: {text}");
}

/// Prints each diagnostic on stderr (`error: …`, red where colour is on).
pub fn print_errors(errors: &[Diagnostic]) {
    let mut err = anstream::stderr();
    let style = anstyle::AnsiColor::Red.on_default().bold();
    for d in errors {
        let text = d.render();
        let rest = text.strip_prefix("error: ").unwrap_or(&text);
        let _ = write!(err, "{style}error{style:#}: {rest}");
    }
}

fn source_line(file: &Path, line: usize) -> Option<String> {
    let text = std::fs::read_to_string(file).ok()?;
    let index = line.checked_sub(1)?;
    match text.lines().nth(index) {
        Some(l) => Some(l.to_string()),
        // The end of the file (an unclosed call or block): the empty line after the last.
        None if index == text.lines().count() => Some(String::new()),
        None => None,
    }
}

/// The closest candidate to `word` by edit distance, if it is close enough to be a likely typo.
pub fn suggest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(word, c), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3))
        .min_by_key(|(d, c)| (*d, *c))
        .map(|(_, c)| c)
}

/// A `hint: did you mean …` for `word` among `candidates`, if one is close.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    suggest(word, candidates).map(|s| format!("did you mean `{s}`?"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_snippet_with_caret() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("w.rhai");
        std::fs::write(&file, "let a = 1;\nrule(\"x\", #{ inptu: 1 });\n").unwrap();
        let d = Diagnostic::new("unknown key `inptu`")
            .at(Some(Origin {
                file: file.clone(),
                line: 2,
                column: 3,
            }))
            .hint("did you mean `input`?");
        let text = d.render();
        assert!(text.starts_with("error: unknown key `inptu`\n"), "{text}");
        assert!(
            text.contains(&format!("--> {}:2:3", file.display())),
            "{text}"
        );
        assert!(
            text.contains("2 | rule(\"x\", #{ inptu: 1 });\n  |   ^\n"),
            "{text}"
        );
        assert!(text.ends_with("\nhint: did you mean `input`?\n"), "{text}");
    }

    #[test]
    fn suggests_near_spellings_only() {
        assert_eq!(
            suggest("inptu", ["input", "output", "shell"]),
            Some("input")
        );
        assert_eq!(suggest("zzzzzz", ["input", "output"]), None);
    }
}
