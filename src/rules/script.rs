//! A rule's `script`: a Python, R, bash or Rhai file run unmodified for each job, which reads
//! its job from a JSON file (`FLOWRUN_JOB`) instead of a magic global, so an IDE or a debugger
//! runs the same file by hand (`flowrun --job-env LABEL`).

use std::path::Path;

/// The language a script is run with, and so its interpreter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    Python,
    R,
    Bash,
    Rhai,
}

impl Language {
    /// The names `script: #{ language: ... }` takes.
    pub const NAMES: &'static [&'static str] = &["python", "R", "bash", "rhai"];

    /// The language called `name` (`R` also as `r`).
    pub fn parse(name: &str) -> Option<Language> {
        match name {
            "python" => Some(Language::Python),
            "R" | "r" => Some(Language::R),
            "bash" => Some(Language::Bash),
            "rhai" => Some(Language::Rhai),
            _ => None,
        }
    }

    /// The language a file's extension names: `.py`, `.R`/`.r`, `.sh`/`.bash`, `.rhai`.
    pub fn of_path(path: &str) -> Option<Language> {
        match Path::new(path).extension()?.to_str()? {
            "py" => Some(Language::Python),
            "R" | "r" => Some(Language::R),
            "sh" | "bash" => Some(Language::Bash),
            "rhai" => Some(Language::Rhai),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Language::Python => "python",
            Language::R => "R",
            Language::Bash => "bash",
            Language::Rhai => "rhai",
        }
    }

    /// The program that runs a script of this language (found on `PATH`, so a rule's software
    /// environment decides which one); `None` for Rhai, which flowrun runs itself.
    pub fn interpreter(self) -> Option<&'static str> {
        match self {
            Language::Python => Some("python3"),
            Language::R => Some("Rscript"),
            Language::Bash => Some("bash"),
            Language::Rhai => None,
        }
    }
}

/// A `script` as declared: where the file is (relative to the working directory, resolved
/// from the file that declared the rule) and its language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptDecl {
    pub path: String,
    pub language: Language,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn languages_by_extension_and_name() {
        assert_eq!(Language::of_path("scripts/plot.py"), Some(Language::Python));
        assert_eq!(Language::of_path("a/b.R"), Some(Language::R));
        assert_eq!(Language::of_path("x.sh"), Some(Language::Bash));
        assert_eq!(Language::of_path("x.rhai"), Some(Language::Rhai));
        assert_eq!(Language::of_path("x.txt"), None);
        assert_eq!(Language::of_path("Makefile"), None);
        for name in Language::NAMES {
            assert_eq!(Language::parse(name).map(Language::name), Some(*name));
        }
        assert_eq!(Language::parse("perl"), None);
    }
}
