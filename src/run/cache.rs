//! A result cache shared between clones, users and machines (`--cache-dir`).
//!
//! A job of a rule with `cache: true` (or any job, with `--cache-all`) has a **key**: a hash of
//! the cache format, the rule's code and params hashes (the ones the store records), each
//! input's path and content hash (for a directory, the hash of its manifest: every path inside
//! with its size and content hash, as the store judges `directory()` outputs), and each
//! output's path. Before the job runs, a [`Cached`]
//! place looks the key up; on a hit it restores the outputs instead of running, verifying each
//! file's content hash as it copies it; after a job ran, it publishes the outputs under the key.
//!
//! Layout: `DIR/v1/entries/<first two hex digits>/<key>/` holds `manifest.json` (the key's
//! parts, the files with their sizes and hashes, the job's label) and the outputs as `0`, `1`,
//! .... An entry is built in `DIR/v1/tmp/` and renamed into place, which is atomic: two runs
//! filling the same cache at once never see half an entry, and the second to finish a key
//! drops its copy. A damaged entry (a hash that does not match) is reported, evicted and the
//! job runs. Restoring touches the manifest, so its modification time is the entry's last use:
//! `--cache-max-size` evicts the least recently used entries at the end of a run.
//!
//! What the key cannot see is the user's risk (docs/cache.md): files a job reads without
//! declaring them, the environment, the clock. Outputs that are directories are not cached.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::exec::{Failure, JobContext};
use crate::graph::dag::Job;
use crate::graph::plan::job_hashes;
use crate::graph::{filestate, manifest};
use crate::rules::registry::Rule;
use crate::run::place::{Attempt, Place};

/// Bumped when the key or the layout changes; old entries are then simply never found.
const FORMAT: &str = "v1";

/// What a key is made of, kept in each entry so that a miss can be explained.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyParts {
    pub rule: String,
    pub code: String,
    pub params: String,
    /// Input paths with their content hashes, in the rule's order.
    pub inputs: Vec<(String, String)>,
    pub outputs: Vec<String>,
}

impl KeyParts {
    /// The parts of a job's key now, or `None` when an input cannot be hashed (missing or
    /// unreadable). A directory input is hashed by its manifest, so a job reading a
    /// `directory()` (a checkpoint's, say) is cached like any other.
    pub fn of(rule: &Rule, job: &Job) -> Option<Self> {
        let (code, params) = job_hashes(rule, job);
        let mut inputs = Vec::with_capacity(job.inputs.len());
        for f in &job.inputs {
            let hash = manifest::hash(Path::new(&f.path)).ok()?;
            inputs.push((f.path.clone(), format!("{hash:032x}")));
        }
        // A rule's software is part of what made its outputs; a rule without any keeps the key
        // it always had.
        let software = rule.software.identity();
        let code = if software.is_empty() {
            format!("{code:032x}")
        } else {
            format!("{code:032x} {software}")
        };
        Some(Self {
            rule: rule.name.clone(),
            code,
            params: format!("{params:032x}"),
            inputs,
            outputs: job.outputs.iter().map(|o| o.path.clone()).collect(),
        })
    }

    /// The key: a hash of every part and the cache format.
    pub fn key(&self) -> String {
        let text = serde_json::to_string(&(FORMAT, self)).unwrap_or_default();
        format!("{:032x}", filestate::hash_str(&text))
    }

    /// The first part in which `self` (now) differs from `cached`, in words.
    pub fn difference(&self, cached: &KeyParts) -> String {
        if self.code != cached.code {
            return "the rule's code differs".into();
        }
        if self.params != cached.params {
            return "the rule's params differ".into();
        }
        if self.outputs != cached.outputs {
            return format!(
                "the outputs differ (now {}, cached {})",
                self.outputs.join(", "),
                cached.outputs.join(", ")
            );
        }
        let paths = |p: &KeyParts| p.inputs.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>();
        if paths(self) != paths(cached) {
            return format!(
                "the inputs differ (now {}, cached {})",
                paths(self).join(", "),
                paths(cached).join(", ")
            );
        }
        for ((path, now), (_, then)) in self.inputs.iter().zip(&cached.inputs) {
            if now != then {
                return format!(
                    "input `{path}` differs (now {}, cached {})",
                    &now[..12],
                    &then[..12]
                );
            }
        }
        "nothing differs".into()
    }
}

/// One file of an entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Stored {
    path: String,
    size: u64,
    hash: String,
}

/// `manifest.json` of an entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Manifest {
    label: String,
    parts: KeyParts,
    files: Vec<Stored>,
}

/// The cache in a directory.
pub struct Cache {
    root: PathBuf,
    max_size: Option<u64>,
}

/// Why an entry could not be restored.
enum Miss {
    /// No entry under the key.
    Absent,
    /// The entry is damaged; it was evicted.
    Damaged(String),
}

impl Cache {
    /// The cache in `dir` (created on first publish), bounded to `max_size` bytes if given.
    pub fn new(dir: &Path, max_size: Option<u64>) -> Self {
        Self {
            root: dir.join(FORMAT),
            max_size,
        }
    }

    fn entry(&self, key: &str) -> PathBuf {
        self.root.join("entries").join(&key[..2]).join(key)
    }

    /// Restores the entry of `parts` onto the job's outputs, verifying every file.
    fn restore(&self, parts: &KeyParts) -> Result<(), Miss> {
        let dir = self.entry(&parts.key());
        let Ok(text) = std::fs::read_to_string(dir.join("manifest.json")) else {
            return Err(Miss::Absent);
        };
        let damaged = |why: String| {
            let _ = std::fs::remove_dir_all(&dir);
            Miss::Damaged(format!(
                "cache entry `{}` {why}; it was evicted",
                dir.display()
            ))
        };
        let manifest: Manifest = serde_json::from_str(&text)
            .map_err(|e| damaged(format!("has an unreadable manifest ({e})")))?;
        if manifest.parts != *parts || manifest.files.len() != parts.outputs.len() {
            return Err(damaged("does not match its key".into()));
        }
        for (i, file) in manifest.files.iter().enumerate() {
            let to = Path::new(&file.path);
            if let Some(parent) = to.parent().filter(|p| !p.as_os_str().is_empty()) {
                let _ = std::fs::create_dir_all(parent);
            }
            let tmp = crate::native::atomic::temp_path(to);
            let copied =
                std::fs::copy(dir.join(i.to_string()), &tmp).and_then(|_| filestate::hash(&tmp));
            match copied {
                Ok(hash) if format!("{hash:032x}") == file.hash => {
                    std::fs::rename(&tmp, to).map_err(|e| {
                        let _ = std::fs::remove_file(&tmp);
                        Miss::Damaged(format!("cannot restore `{}`: {e}", file.path))
                    })?;
                }
                Ok(_) => {
                    let _ = std::fs::remove_file(&tmp);
                    return Err(damaged(format!("holds a damaged copy of `{}`", file.path)));
                }
                Err(e) => {
                    let _ = std::fs::remove_file(&tmp);
                    return Err(damaged(format!("cannot be read ({e})")));
                }
            }
        }
        // Restoring is using: the manifest's time orders eviction.
        if let Ok(f) = std::fs::File::options()
            .append(true)
            .open(dir.join("manifest.json"))
        {
            let _ = f.set_modified(SystemTime::now());
        }
        Ok(())
    }

    /// Publishes a job's outputs under its key; anything that goes wrong only means no entry.
    fn publish(&self, parts: &KeyParts, label: &str) -> std::io::Result<()> {
        let key = parts.key();
        let dest = self.entry(&key);
        if dest.exists() {
            return Ok(());
        }
        let tmp_root = self.root.join("tmp");
        std::fs::create_dir_all(&tmp_root)?;
        let tmp = tmp_root.join(format!(
            "{key}-{}-{}",
            std::process::id(),
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        ));
        std::fs::create_dir(&tmp)?;
        let built = (|| {
            let mut files = Vec::new();
            for (i, path) in parts.outputs.iter().enumerate() {
                let copy = tmp.join(i.to_string());
                let size = std::fs::copy(path, &copy)?;
                let hash = filestate::hash(&copy)?;
                files.push(Stored {
                    path: path.clone(),
                    size,
                    hash: format!("{hash:032x}"),
                });
            }
            let manifest = Manifest {
                label: label.to_string(),
                parts: parts.clone(),
                files,
            };
            let mut f = std::fs::File::create(tmp.join("manifest.json"))?;
            f.write_all(serde_json::to_string_pretty(&manifest)?.as_bytes())?;
            f.sync_all()?;
            std::fs::create_dir_all(dest.parent().unwrap_or(&self.root))?;
            std::fs::rename(&tmp, &dest)
        })();
        if built.is_err() || tmp.exists() {
            // Failed, or another run published the key first.
            let _ = std::fs::remove_dir_all(&tmp);
        }
        built.or_else(|e| if dest.exists() { Ok(()) } else { Err(e) })
    }

    /// Every entry's manifest with its directory, last use and size.
    fn entries(&self) -> Vec<(PathBuf, SystemTime, u64, Manifest)> {
        let mut out = Vec::new();
        let Ok(shards) = std::fs::read_dir(self.root.join("entries")) else {
            return out;
        };
        for dir in shards
            .flatten()
            .flat_map(|s| std::fs::read_dir(s.path()).into_iter().flatten().flatten())
        {
            let path = dir.path();
            let manifest_path = path.join("manifest.json");
            let Ok(meta) = std::fs::metadata(&manifest_path) else {
                continue;
            };
            let Some(manifest) = std::fs::read_to_string(&manifest_path)
                .ok()
                .and_then(|t| serde_json::from_str::<Manifest>(&t).ok())
            else {
                continue;
            };
            let size = manifest.files.iter().map(|f| f.size).sum::<u64>() + meta.len();
            out.push((
                path,
                meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                size,
                manifest,
            ));
        }
        out
    }

    /// Evicts the least recently used entries until the cache fits `--cache-max-size`;
    /// returns how many were evicted.
    pub fn evict(&self) -> usize {
        let Some(max) = self.max_size else {
            return 0;
        };
        let mut entries = self.entries();
        let mut total: u64 = entries.iter().map(|e| e.2).sum();
        entries.sort_by_key(|e| e.1);
        let mut evicted = 0;
        for (dir, _, size, _) in entries {
            if total <= max {
                break;
            }
            if std::fs::remove_dir_all(&dir).is_ok() {
                total -= size;
                evicted += 1;
            }
        }
        evicted
    }

    /// `--explain-cache`: whether the job with these key parts would be restored and, if not,
    /// what differs from the cached entries of the same job (the most recently used first).
    pub fn explain(&self, label: &str, parts: &KeyParts) -> String {
        let key = parts.key();
        if self.entry(&key).join("manifest.json").exists() {
            return format!("hit: {label} would be restored from the cache (key {key})");
        }
        let mut same: Vec<(SystemTime, Manifest)> = self
            .entries()
            .into_iter()
            .filter(|e| e.3.label == label)
            .map(|e| (e.1, e.3))
            .collect();
        same.sort_by_key(|e| std::cmp::Reverse(e.0));
        match same.first() {
            None => format!(
                "miss: the cache holds no entry for {label} (key {key}); it has not been \
                 computed under a cache with this directory"
            ),
            Some((_, m)) => format!(
                "miss: {label} (key {key}): {}, from the cached entry last used {}",
                parts.difference(&m.parts),
                crate::report::trace::utc(same[0].0)
            ),
        }
    }
}

/// Parses `--cache-max-size`: bytes, or a number with K, M, G or T (powers of 1024).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let (num, unit) = t
        .find(|c: char| c.is_ascii_alphabetic())
        .map_or((t, ""), |i| t.split_at(i));
    let n: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a size such as 500M or 10G"))?;
    let scale: u64 = match unit.to_ascii_uppercase().trim_end_matches(['B', 'I']) {
        "" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        "T" => 1 << 40,
        _ => {
            return Err(format!(
                "`{text}`: unknown unit `{unit}` (use K, M, G or T)"
            ))
        }
    };
    Ok((n * scale as f64) as u64)
}

/// A place that consults the cache around another place.
pub struct Cached<'a> {
    pub inner: &'a dyn Place,
    pub cache: &'a Cache,
    /// `--cache-all`: every job, not only rules with `cache: true`.
    pub all: bool,
}

impl Place for Cached<'_> {
    fn attempt(
        &self,
        job: &JobContext<'_>,
        label: &str,
        grace: Duration,
    ) -> Result<Attempt, Failure> {
        let cacheable = (self.all || job.rule.cache)
            && !job.job.outputs.is_empty()
            && job.job.outputs.iter().all(|o| !Path::new(&o.path).is_dir());
        let parts = cacheable.then(|| KeyParts::of(job.rule, job.job)).flatten();
        let Some(parts) = parts else {
            return self.inner.attempt(job, label, grace);
        };
        match self.cache.restore(&parts) {
            Ok(()) => return Ok(Attempt::Restored),
            Err(Miss::Damaged(why)) => crate::diagnostic::warn(&why),
            Err(Miss::Absent) => {}
        }
        let done = self.inner.attempt(job, label, grace)?;
        if let Err(e) = self.cache.publish(&parts, label) {
            crate::diagnostic::warn(&format!("cannot publish {label} to the cache: {e}"));
        }
        Ok(done)
    }

    fn stop_all(&self, grace: Duration) {
        self.inner.stop_all(grace);
    }

    fn cost(&self, rule: &Rule, cores: u32) -> u32 {
        self.inner.cost(rule, cores)
    }

    fn caps_threads(&self, rule: &Rule) -> bool {
        self.inner.caps_threads(rule)
    }

    fn resumes(&self, label: &str) -> bool {
        self.inner.resumes(label)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_units() {
        assert_eq!(parse_size("1024"), Ok(1024));
        assert_eq!(parse_size("2K"), Ok(2048));
        assert_eq!(parse_size("1.5G"), Ok(3 << 29));
        assert_eq!(parse_size("10MiB"), Ok(10 << 20));
        assert!(parse_size("10Q").unwrap_err().contains("unknown unit"));
        assert!(parse_size("lots").unwrap_err().contains("not a size"));
    }

    fn parts() -> KeyParts {
        KeyParts {
            rule: "r".into(),
            code: "c".repeat(32),
            params: "p".repeat(32),
            inputs: vec![("in.txt".into(), "a".repeat(32))],
            outputs: vec!["out.txt".into()],
        }
    }

    #[test]
    fn the_key_follows_every_part_and_differences_are_named() {
        let base = parts();
        let mut input = parts();
        input.inputs[0].1 = "b".repeat(32);
        let mut code = parts();
        code.code = "d".repeat(32);
        assert_ne!(base.key(), input.key());
        assert_ne!(base.key(), code.key());
        assert_eq!(base.key(), parts().key());
        assert_eq!(
            input.difference(&base),
            "input `in.txt` differs (now bbbbbbbbbbbb, cached aaaaaaaaaaaa)"
        );
        assert_eq!(code.difference(&base), "the rule's code differs");
    }
}
