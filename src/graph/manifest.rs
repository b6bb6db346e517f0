//! What a `directory()` output looks like: a manifest of everything inside it.
//!
//! A directory's own modification time changes only when an entry directly inside it is added,
//! removed or renamed, and its "size" is a block count: neither sees a file inside being
//! rewritten. So for a path declared with `directory()` the two parts of a [`FileSig`] are taken
//! over the whole tree, which keeps the store's format as it is:
//!
//! - the **stat** (the fast path) is the newest modification time of the directory and of every
//!   entry in it, with the sum of the files' sizes plus the number of entries, so adding,
//!   removing or rewriting anything inside changes it;
//! - the **hash** (the judge) is the hash of the manifest: every entry's path relative to the
//!   directory, in sorted order, with its type, its size and its content hash (a symbolic link
//!   by its target). A directory remade with the same files, even at other times, hashes the
//!   same, so its consumers are cut off early.
//!
//! [`FileSig`]: crate::graph::filestate::FileSig

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::UNIX_EPOCH;

use rayon::prelude::*;

use crate::graph::filestate::{self, Stat};

/// One entry of a directory, for the manifest.
struct Entry {
    relative: Vec<u8>,
    kind: u8,
    size: u64,
    mtime_ns: i64,
}

fn mtime_ns(meta: &std::fs::Metadata) -> i64 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as i64)
}

/// The entries under `root`, sorted by relative path (symbolic links are not followed).
fn entries(root: &Path) -> io::Result<Vec<Entry>> {
    let mut out = Vec::new();
    collect(root, &mut Vec::new(), &mut out)?;
    out.sort_by(|a, b| a.relative.cmp(&b.relative));
    Ok(out)
}

/// Adds the entries under `dir`, whose path relative to the root is `relative`. Each entry is
/// stat-ed through its directory's descriptor (`DirEntry::metadata`, which does not follow a
/// link), not by its whole path: a no-op stats every checkpoint's directory, one per sample.
fn collect(dir: &Path, relative: &mut Vec<u8>, out: &mut Vec<Entry>) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        let kind = if meta.is_dir() {
            b'd'
        } else if meta.file_type().is_symlink() {
            b'l'
        } else {
            b'f'
        };
        let len = relative.len();
        if len > 0 {
            relative.push(b'/');
        }
        relative.extend_from_slice(entry.file_name().as_bytes());
        out.push(Entry {
            relative: relative.clone(),
            kind,
            size: if kind == b'f' { meta.len() } else { 0 },
            mtime_ns: mtime_ns(&meta),
        });
        if kind == b'd' {
            collect(&entry.path(), relative, out)?;
        }
        relative.truncate(len);
    }
    Ok(())
}

/// The regular files of a directory's tree, by path relative to it, sorted: what a manifest
/// walk saw, kept so that the jobs reading a checkpoint's files one by one do not stat each
/// of them again.
#[derive(Debug, Default)]
pub struct Files(Vec<(Vec<u8>, Stat)>);

impl Files {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The stat of the file at `relative` (a path inside the directory), if the walk saw one.
    pub fn get(&self, relative: &str) -> Option<Stat> {
        let at = self
            .0
            .binary_search_by(|(r, _)| r.as_slice().cmp(relative.as_bytes()))
            .ok()?;
        Some(self.0[at].1)
    }
}

/// The directory's stat taken over its whole tree, with the stat of every regular file in it,
/// which the walk took anyway; `None` if `root` does not exist. A path that is not a directory
/// has its plain stat.
pub fn stat_and_files(root: &Path) -> Option<(Stat, Files)> {
    let meta = std::fs::metadata(root).ok()?;
    if !meta.is_dir() {
        return filestate::stat(root).map(|st| (st, Files::default()));
    }
    let mut list = Vec::new();
    collect(root, &mut Vec::new(), &mut list).ok()?;
    let st = Stat {
        mtime_ns: list
            .iter()
            .map(|e| e.mtime_ns)
            .fold(mtime_ns(&meta), i64::max),
        size: list.iter().map(|e| e.size).sum::<u64>() + list.len() as u64,
    };
    let mut files: Vec<(Vec<u8>, Stat)> = list
        .into_iter()
        .filter(|e| e.kind == b'f')
        .map(|e| {
            let st = Stat {
                mtime_ns: e.mtime_ns,
                size: e.size,
            };
            (e.relative, st)
        })
        .collect();
    files.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    Some((st, Files(files)))
}

/// The hash of the directory's manifest (a path that is not a directory has its content hash).
pub fn hash(root: &Path) -> io::Result<u128> {
    if !std::fs::metadata(root)?.is_dir() {
        return filestate::hash(root);
    }
    let list = entries(root)?;
    let hashes: Vec<u128> = list
        .par_iter()
        .map(|e| {
            let path = root.join(OsStr::from_bytes(&e.relative));
            match e.kind {
                b'f' => filestate::hash(&path),
                b'l' => std::fs::read_link(path).map(|t| filestate::hash_str(&t.to_string_lossy())),
                _ => Ok(0),
            }
        })
        .collect::<io::Result<_>>()?;
    let mut manifest = Vec::with_capacity(list.len() * 64);
    for (e, h) in list.iter().zip(hashes) {
        manifest.extend_from_slice(&e.relative);
        manifest.push(0);
        manifest.push(e.kind);
        manifest.extend_from_slice(&e.size.to_le_bytes());
        manifest.extend_from_slice(&h.to_le_bytes());
    }
    Ok(xxhash_rust::xxh3::xxh3_128(&manifest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat(root: &Path) -> Option<Stat> {
        stat_and_files(root).map(|(st, _)| st)
    }

    #[test]
    fn a_change_inside_changes_stat_and_hash_and_a_remake_hashes_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("d");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("a"), "1").unwrap();
        std::fs::write(root.join("sub/b"), "22").unwrap();
        let (st, h) = (stat(&root).unwrap(), hash(&root).unwrap());
        assert_eq!(st.size, 3 + 3);
        std::fs::write(root.join("sub/b"), "23").unwrap();
        assert_ne!(hash(&root).unwrap(), h);
        std::fs::write(root.join("sub/b"), "22").unwrap();
        assert_eq!(hash(&root).unwrap(), h);
        std::fs::write(root.join("sub/c"), "").unwrap();
        assert_ne!(stat(&root).unwrap(), st);
        assert_ne!(hash(&root).unwrap(), h);
        // The same tree made again elsewhere, later.
        std::fs::remove_file(root.join("sub/c")).unwrap();
        let copy = dir.path().join("e");
        std::fs::create_dir_all(copy.join("sub")).unwrap();
        std::fs::write(copy.join("sub/b"), "22").unwrap();
        std::fs::write(copy.join("a"), "1").unwrap();
        assert_eq!(hash(&copy).unwrap(), h);
        // Renaming a file is a change even with the same content.
        std::fs::rename(copy.join("a"), copy.join("z")).unwrap();
        assert_ne!(hash(&copy).unwrap(), h);
    }
}
