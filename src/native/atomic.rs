//! Atomic file creation: every built-in writer writes a temporary sibling and renames it into
//! place, so a reader (or the next run after a crash) never sees a half-written output.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Numbers this process's temporary files, so two threads writing the same target at once
/// (a `run` closure and a `map` item, say) each get a file of their own.
static NEXT_TEMP: AtomicU64 = AtomicU64::new(0);

/// A temporary sibling of `target` of this process's own, named so that
/// [`remove_leftovers`] finds it after a crash.
pub fn temp_path(target: &Path) -> PathBuf {
    let parent = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    parent.join(format!(
        ".{name}.flowrun-tmp-{}-{}",
        std::process::id(),
        NEXT_TEMP.fetch_add(1, Ordering::Relaxed)
    ))
}

/// A file being written under a temporary name; [`AtomicFile::commit`] renames it into place,
/// dropping it uncommitted removes the temporary.
pub struct AtomicFile {
    target: PathBuf,
    temp: PathBuf,
    writer: Option<BufWriter<File>>,
}

impl AtomicFile {
    /// Starts writing `target`, creating its parent directories.
    pub fn create(target: impl AsRef<Path>) -> io::Result<Self> {
        let target = target.as_ref().to_path_buf();
        let temp = temp_path(&target);
        if let Some(parent) = temp.parent() {
            fs::create_dir_all(parent)?;
        }
        let file = File::create(&temp)?;
        Ok(Self {
            target,
            temp,
            writer: Some(BufWriter::with_capacity(1 << 20, file)),
        })
    }

    /// The buffered writer for the temporary file.
    pub fn writer(&mut self) -> &mut BufWriter<File> {
        self.writer
            .as_mut()
            .expect("writer is present until commit")
    }

    /// Flushes the data and renames the temporary file onto the target.
    pub fn commit(mut self) -> io::Result<()> {
        let writer = self.writer.take().expect("commit is called once");
        let file = writer.into_inner().map_err(|e| e.into_error())?;
        file.sync_data()?;
        drop(file);
        fs::rename(&self.temp, &self.target)
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.writer().write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.writer().flush()
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.writer.take().is_some() {
            let _ = fs::remove_file(&self.temp);
        }
    }
}

/// Removes the temporary files that writers killed mid-write left in `dirs` (after a run that
/// died, whose lock was taken over); returns how many.
pub fn remove_leftovers<'a>(dirs: impl IntoIterator<Item = &'a Path>) -> usize {
    let mut removed = 0;
    for dir in dirs {
        let Ok(entries) = fs::read_dir(dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let leftover = name.starts_with('.')
                && name
                    .rsplit_once(".flowrun-tmp-")
                    .and_then(|(_, suffix)| suffix.split_once('-'))
                    .is_some_and(|(pid, n)| is_number(pid) && is_number(n));
            if leftover && fs::remove_file(entry.path()).is_ok() {
                removed += 1;
            }
        }
    }
    removed
}

fn is_number(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// Writes `bytes` to `path` atomically.
pub fn write_atomic(path: impl AsRef<Path>, bytes: &[u8]) -> io::Result<()> {
    let mut file = AtomicFile::create(path)?;
    file.write_all(bytes)?;
    file.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uncommitted_file_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("sub/out.txt");
        {
            let mut f = AtomicFile::create(&target).unwrap();
            f.write_all(b"partial").unwrap();
        }
        assert!(!target.exists());
        assert_eq!(fs::read_dir(dir.path().join("sub")).unwrap().count(), 0);
    }

    #[test]
    fn leftovers_of_killed_writers_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(".out.txt.flowrun-tmp-123-0"), "partial").unwrap();
        fs::write(dir.path().join("out.txt"), "whole").unwrap();
        fs::write(dir.path().join(".keep.flowrun-tmp-x"), "not ours").unwrap();
        assert_eq!(remove_leftovers([dir.path()]), 1);
        assert!(dir.path().join("out.txt").exists());
        assert!(dir.path().join(".keep.flowrun-tmp-x").exists());
    }

    #[test]
    fn two_writers_of_one_target_in_one_process_do_not_share_a_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.txt");
        let mut first = AtomicFile::create(&target).unwrap();
        let mut second = AtomicFile::create(&target).unwrap();
        first.write_all(b"first, longer").unwrap();
        second.write_all(b"second").unwrap();
        first.commit().unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"first, longer");
        second.commit().unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"second");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn committed_file_appears_whole() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.txt");
        write_atomic(&target, b"hello").unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"hello");
    }
}
