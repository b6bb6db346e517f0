//! One run per working directory: `.flowrun/lock`.
//!
//! The lock is an `flock` on the file (the kernel drops it when the owner dies, however it
//! dies), and the file says who holds it (pid and host) so a refused user knows whom to ask.
//! A lock file left by a dead run is simply taken over, with a note: no `--unlock` chore.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// A held lock; released on drop.
pub struct Lock {
    file: File,
}

/// Why the lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("another flowrun ({holder}) is running in this directory")]
    Held { holder: String },
    #[error("cannot create the lock file `{0}`: {1}")]
    Io(PathBuf, std::io::Error),
}

fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "unknown host".into())
}

impl Lock {
    /// Takes the lock in `dir`; the `Ok` value carries a note if a stale lock was taken over.
    pub fn acquire(dir: &Path) -> Result<(Self, Option<String>), LockError> {
        let path = dir.join("lock");
        std::fs::create_dir_all(dir).map_err(|e| LockError::Io(path.clone(), e))?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| LockError::Io(path.clone(), e))?;
        let mut previous = String::new();
        let _ = file.read_to_string(&mut previous);
        let previous = previous.trim().to_string();
        // SAFETY: flock on a valid open descriptor.
        let rc =
            unsafe { nix::libc::flock(file.as_raw_fd(), nix::libc::LOCK_EX | nix::libc::LOCK_NB) };
        if rc != 0 {
            let holder = if previous.is_empty() {
                "holder unknown".to_string()
            } else {
                previous
            };
            return Err(LockError::Held { holder });
        }
        let note = (!previous.is_empty()).then(|| {
            format!("took over the lock left by a run that is no longer alive ({previous})")
        });
        let me = format!("pid {} on {}", std::process::id(), hostname());
        let _ = file.set_len(0);
        let _ = file.rewind();
        let _ = file.write_all(me.as_bytes());
        let _ = file.sync_data();
        Ok((Self { file }, note))
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        // An empty lock file is a released lock. The file itself stays: removing it would let a
        // waiting process lock an unlinked inode while a third creates a new one.
        let _ = self.file.set_len(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_is_refused_with_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let (first, note) = Lock::acquire(dir.path()).unwrap();
        assert!(note.is_none());
        let err = Lock::acquire(dir.path()).err().expect("refused");
        let text = err.to_string();
        assert!(
            text.contains(&format!("pid {}", std::process::id())),
            "{text}"
        );
        drop(first);
        assert!(Lock::acquire(dir.path()).is_ok());
    }

    #[test]
    fn stale_lock_file_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("lock"), "pid 999999 on elsewhere").unwrap();
        let (_lock, note) = Lock::acquire(dir.path()).unwrap();
        assert!(note.unwrap().contains("pid 999999 on elsewhere"));
    }
}
