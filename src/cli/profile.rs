//! Profiles: default flags kept in a file, so that `flowrun` alone runs with the settings a
//! project (or a user) always wants — `cores = 8`, `keep-going = true`, a resource cap.
//!
//! Two files may apply, weakest first: the user's (`$XDG_CONFIG_HOME/flowrun/flowrun.toml`,
//! by default `~/.config/flowrun/flowrun.toml`), then `flowrun.toml` beside the workflow
//! file; a key in the second replaces the same key in the first, as Snakemake's workflow
//! profile overrides its global one. The command line wins over both: an option it gives
//! replaces the profiles' value whole (a list is not merged), and a profile option that
//! conflicts with one it gives (`quiet` against `-v`) is dropped.
//!
//! A key is named like a long option and its value becomes that option's arguments before clap
//! parses the command line again, so every option there is (and every one added later) can be
//! set with no code here: `true` is a flag, a string or number one value, an array one option
//! per element, a table one `NAME=VALUE` per entry (`resources = { mem_mb = 4000 }`).

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::{ArgMatches, Command};
use etcetera::BaseStrategy;

use crate::diagnostic::{suggest, Diagnostic};

/// The file name of a profile.
pub const FILE_NAME: &str = "flowrun.toml";

/// Options a profile cannot set, with why.
const NOT_SETTABLE: &[(&str, &str)] = &[
    (
        "directory",
        "the profile beside the workflow is found after `-d` is applied",
    ),
    (
        "workflow",
        "the profile beside the workflow is found from the workflow",
    ),
    ("accept", "it re-records outputs: give it when you mean it"),
    ("clean", "it deletes outputs: give it when you mean it"),
    ("clean-temp", "it deletes files: give it when you mean it"),
    ("completions", "it prints a script instead of running"),
    ("man", "it prints the manual instead of running"),
    ("help", "it prints help instead of running"),
    ("version", "it prints the version instead of running"),
];

/// A profile that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("cannot read profile `{}`: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot parse profile `{}`: {message}", path.display())]
    Parse { path: PathBuf, message: String },
    #[error("unknown key `{key}` in profile `{}`", path.display())]
    UnknownKey {
        path: PathBuf,
        key: String,
        near: Option<String>,
    },
    #[error("`{key}` cannot be set in a profile (`{}`): {why}", path.display())]
    NotSettable {
        path: PathBuf,
        key: String,
        why: &'static str,
    },
    #[error("`{key}` in profile `{}`: {message}", path.display())]
    BadValue {
        path: PathBuf,
        key: String,
        message: String,
    },
    #[error("the profiles' settings do not fit together: {message}")]
    Together { message: String },
}

impl From<ProfileError> for Diagnostic {
    fn from(e: ProfileError) -> Self {
        let hint = match &e {
            ProfileError::UnknownKey {
                near: Some(near), ..
            } => Some(format!("did you mean `{near}`?")),
            ProfileError::UnknownKey { near: None, .. } => {
                Some("a key is a long option without its dashes, e.g. `cores = 4`".to_string())
            }
            ProfileError::Together { .. } => {
                Some("remove one of them from a profile, or give one on the command line".into())
            }
            _ => None,
        };
        let d = Diagnostic::new(e.to_string());
        match hint {
            Some(h) => d.hint(h),
            None => d,
        }
    }
}

/// What one profile added to the command line.
#[derive(Debug, Clone)]
pub struct Applied {
    pub path: PathBuf,
    /// The options it added, as `--name=value` (empty when the command line set them all).
    pub options: Vec<String>,
}

/// The user's profile, if the user's config directory is known.
pub fn user_profile() -> Option<PathBuf> {
    etcetera::choose_base_strategy()
        .ok()
        .map(|base| base.config_dir().join("flowrun").join(FILE_NAME))
}

/// The profiles that exist for `workflow`, weakest first: the user's, then the one beside it.
pub fn find(workflow: &Path) -> Vec<PathBuf> {
    let beside = workflow.parent().map(|dir| dir.join(FILE_NAME));
    user_profile()
        .into_iter()
        .chain(beside)
        .filter(|p| p.is_file())
        .collect()
}

/// One setting: the option it sets and the arguments it stands for.
struct Setting {
    id: String,
    profile: usize,
    options: Vec<String>,
}

/// Reads `profiles` (weakest first) and returns the command line with their settings added,
/// leaving out what `given` (the command line parsed alone) sets, and what each profile added.
pub fn apply(
    command: &Command,
    given: &ArgMatches,
    argv: &[OsString],
    profiles: &[PathBuf],
) -> Result<(Vec<OsString>, Vec<Applied>), ProfileError> {
    let mut settings: Vec<Setting> = Vec::new();
    for (index, path) in profiles.iter().enumerate() {
        for (key, value) in read(path)? {
            let setting = setting(command, path, index, &key, &value)?;
            settings.retain(|s| s.id != setting.id);
            settings.push(setting);
        }
    }
    settings.retain(|s| !set_by_command_line(command, given, &s.id));
    let mut applied: Vec<Applied> = profiles
        .iter()
        .map(|path| Applied {
            path: path.clone(),
            options: Vec::new(),
        })
        .collect();
    let mut extended: Vec<OsString> = argv.iter().take(1).cloned().collect();
    for s in settings {
        extended.extend(s.options.iter().map(OsString::from));
        applied[s.profile].options.extend(s.options);
    }
    extended.extend(argv.iter().skip(1).cloned());
    Ok((extended, applied))
}

fn read(path: &Path) -> Result<toml::Table, ProfileError> {
    let text = std::fs::read_to_string(path).map_err(|source| ProfileError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    text.parse::<toml::Table>().map_err(|e| {
        let line = e
            .span()
            .map_or(0, |span| text[..span.start].matches('\n').count() + 1);
        ProfileError::Parse {
            path: path.to_path_buf(),
            message: format!("line {line}: {}", e.message()),
        }
    })
}

/// The option `key` names, with `value` turned into its arguments and checked by clap.
fn setting(
    command: &Command,
    path: &Path,
    profile: usize,
    key: &str,
    value: &toml::Value,
) -> Result<Setting, ProfileError> {
    let bad = |message: String| ProfileError::BadValue {
        path: path.to_path_buf(),
        key: key.to_string(),
        message,
    };
    if let Some((_, why)) = NOT_SETTABLE.iter().find(|(name, _)| *name == key) {
        return Err(ProfileError::NotSettable {
            path: path.to_path_buf(),
            key: key.to_string(),
            why,
        });
    }
    let Some(arg) = command.get_arguments().find(|a| a.get_long() == Some(key)) else {
        let longs = command
            .get_arguments()
            .filter_map(|a| a.get_long())
            .filter(|l| !NOT_SETTABLE.iter().any(|(name, _)| name == l));
        return Err(ProfileError::UnknownKey {
            path: path.to_path_buf(),
            key: key.to_string(),
            near: suggest(key, longs).map(str::to_string),
        });
    };
    let flag = !arg.get_action().takes_values();
    let words = match (flag, value) {
        (true, toml::Value::Boolean(on)) => {
            return Ok(Setting {
                id: arg.get_id().to_string(),
                profile,
                options: if *on {
                    vec![format!("--{key}")]
                } else {
                    Vec::new()
                },
            })
        }
        (true, _) => return Err(bad("this option is a flag: write `true` or `false`".into())),
        (false, toml::Value::Array(items)) => items.iter().map(scalar).collect(),
        (false, toml::Value::Table(table)) => table
            .iter()
            .map(|(name, v)| scalar(v).map(|v| format!("{name}={v}")))
            .collect(),
        (false, v) => scalar(v).map(|v| vec![v]),
    }
    .map_err(bad)?;
    let options: Vec<String> = words.iter().map(|w| format!("--{key}={w}")).collect();
    let probe = std::iter::once("flowrun".to_string()).chain(options.iter().cloned());
    if let Err(e) = command.clone().try_get_matches_from(probe) {
        return Err(bad(clap_message(&e)));
    }
    Ok(Setting {
        id: arg.get_id().to_string(),
        profile,
        options,
    })
}

/// A profile value that stands for one argument.
fn scalar(value: &toml::Value) -> Result<String, String> {
    match value {
        toml::Value::String(s) => Ok(s.clone()),
        toml::Value::Integer(i) => Ok(i.to_string()),
        toml::Value::Float(f) => Ok(f.to_string()),
        toml::Value::Boolean(b) => Ok(b.to_string()),
        toml::Value::Datetime(d) => Ok(d.to_string()),
        toml::Value::Array(_) | toml::Value::Table(_) => {
            Err("lists and tables cannot be nested here".to_string())
        }
    }
}

/// Whether the command line sets the option `id`, or one that conflicts with it.
fn set_by_command_line(command: &Command, given: &ArgMatches, id: &str) -> bool {
    let typed = |id: &str| given.value_source(id) == Some(ValueSource::CommandLine);
    let Some(arg) = command.get_arguments().find(|a| a.get_id() == id) else {
        return false;
    };
    typed(id)
        || command.get_arguments().any(|other| {
            typed(other.get_id().as_str())
                && (command
                    .get_arg_conflicts_with(arg)
                    .iter()
                    .any(|c| c.get_id() == other.get_id())
                    || command
                        .get_arg_conflicts_with(other)
                        .iter()
                        .any(|c| c.get_id() == id))
        })
}

/// The first line of a clap error, without its `error: `.
pub fn clap_message(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let line = text.lines().next().unwrap_or_default();
    line.strip_prefix("error: ").unwrap_or(line).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// Every option there is, and so every option added later (`executor`, `cache-dir`...), can
    /// be set by a profile with no code of its own: a flag with `true`, any other option with a
    /// value it accepts.
    #[test]
    fn every_long_option_can_be_set_by_a_profile() {
        let command = crate::cli::Args::command();
        let dir = tempfile::tempdir().unwrap();
        let profile = dir.path().join(FILE_NAME);
        let argv = vec![OsString::from("flowrun")];
        let given = command.clone().get_matches_from(&argv);
        let mut checked = 0;
        for arg in command.get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            if NOT_SETTABLE.iter().any(|(name, _)| *name == long) {
                continue;
            }
            let value = if !arg.get_action().takes_values() {
                "true".to_string()
            } else if let Some(first) = arg.get_possible_values().first() {
                format!("\"{}\"", first.get_name())
            } else {
                "\"1\"".to_string()
            };
            std::fs::write(&profile, format!("{long} = {value}\n")).unwrap();
            let (extended, applied) =
                apply(&command, &given, &argv, std::slice::from_ref(&profile))
                    .unwrap_or_else(|e| panic!("{long} = {value}: {e}"));
            assert_eq!(applied[0].options.len(), 1, "{long} = {value}");
            let matches = command.clone().try_get_matches_from(extended).unwrap();
            assert_eq!(
                matches.value_source(arg.get_id().as_str()),
                Some(ValueSource::CommandLine),
                "{long}"
            );
            checked += 1;
        }
        assert!(checked > 25, "{checked}");
    }
}
