//! `--clean` and `--clean-temp`: deleting what flowrun made.
//!
//! `--clean` works from the store, not from the workflow: every output with a record (or an
//! incomplete mark) was made by flowrun, including outputs of rules deleted since, which a
//! workflow-driven delete (Snakemake's `--delete-all-output`, snakemake#3079) misses. With
//! targets, it keeps to the recorded outputs of their jobs. Protected outputs (flowrun made
//! them read-only) are kept unless `-F`. Directories left empty are removed up to the working
//! directory. The records of deleted outputs are forgotten, so nothing claims they exist.

use std::path::Path;

/// What happened, or with `-n` would happen, to one path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    Deleted,
    /// Read-only: flowrun protected it (`protected()`); `-F` deletes it too.
    KeptProtected,
    /// Not on disk any more; its record is forgotten all the same.
    Absent,
}

/// Whether flowrun made the file read-only (a `protected()` output).
fn protected(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.is_file() && m.permissions().readonly())
}

/// Decides each path's fate and, unless `dry`, deletes. Paths are relative to `root` (the
/// working directory), as the store keeps them.
pub fn clean(root: &Path, paths: &[String], force: bool, dry: bool) -> Vec<(String, Fate)> {
    let mut out = Vec::with_capacity(paths.len());
    for p in paths {
        let path = &root.join(p);
        let fate = match std::fs::symlink_metadata(path) {
            Err(_) => Fate::Absent,
            Ok(_) if protected(path) && !force => Fate::KeptProtected,
            Ok(meta) => {
                if !dry {
                    let gone = if meta.is_dir() {
                        std::fs::remove_dir_all(path)
                    } else {
                        std::fs::remove_file(path)
                    };
                    if gone.is_ok() {
                        remove_empty_parents(root, path);
                    }
                }
                Fate::Deleted
            }
        };
        out.push((p.clone(), fate));
    }
    out
}

/// Removes the directories above `path` that it left empty, stopping at the first that is not
/// (or at `root`).
fn remove_empty_parents(root: &Path, path: &Path) {
    let mut dir = path.parent();
    while let Some(d) = dir.filter(|d| d.starts_with(root) && *d != root) {
        if std::fs::remove_dir(d).is_err() {
            break;
        }
        dir = d.parent();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deletes_files_keeps_protected_and_prunes_empty_directories() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let at = |p: &str| root.join(p);
        std::fs::create_dir_all(at("a/b")).unwrap();
        std::fs::create_dir_all(at("keep")).unwrap();
        std::fs::write(at("a/b/x.txt"), "x").unwrap();
        std::fs::write(at("keep/p.txt"), "p").unwrap();
        std::fs::write(at("keep/other.txt"), "o").unwrap();
        let mut perms = std::fs::metadata(at("keep/p.txt")).unwrap().permissions();
        perms.set_readonly(true);
        std::fs::set_permissions(at("keep/p.txt"), perms).unwrap();
        let paths = ["a/b/x.txt", "keep/p.txt", "gone.txt"].map(String::from);
        let dry = clean(root, &paths, false, true);
        assert!(at("a/b/x.txt").exists(), "a dry run deletes nothing");
        let done = clean(root, &paths, false, false);
        assert_eq!(dry, done);
        assert_eq!(
            done.iter().map(|(_, f)| *f).collect::<Vec<_>>(),
            [Fate::Deleted, Fate::KeptProtected, Fate::Absent]
        );
        assert!(!at("a").exists(), "empty directories are pruned");
        assert!(root.exists());
        assert!(at("keep/p.txt").exists());
        let forced = clean(root, &paths[1..2], true, false);
        assert_eq!(forced[0].1, Fate::Deleted);
        assert!(at("keep/other.txt").exists());
    }
}
