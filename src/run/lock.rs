//! One run per working directory: `.flowrun/lock`.
//!
//! The lock is an `flock` on the file (the kernel drops it when the owner dies, however it
//! dies), and the file says who holds it (`pid P on HOST`) so a refused user knows whom to ask.
//! While jobs run, the file also lists their process groups (`group G` lines). A lock file left
//! by a dead run is taken over with a note, and the process groups it lists are killed: a run
//! killed with SIGKILL leaves no commands running behind it. No `--unlock` chore.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

use crate::exec::GroupRecord;

/// A held lock; released on drop.
pub struct Lock {
    file: Mutex<File>,
    owner: String,
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

/// Kills the process groups a dead run on this host left behind; returns how many.
fn stop_leftovers(previous: &str) -> usize {
    let mut lines = previous.lines();
    let owner = lines.next().unwrap_or("");
    if !owner.ends_with(&format!(" on {}", hostname())) {
        return 0;
    }
    lines
        .filter_map(|l| l.strip_prefix("group ")?.trim().parse::<i32>().ok())
        .filter(|g| *g > 1 && killpg(Pid::from_raw(*g), Signal::SIGKILL).is_ok())
        .count()
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
        // SAFETY: flock on a valid open descriptor.
        let rc =
            unsafe { nix::libc::flock(file.as_raw_fd(), nix::libc::LOCK_EX | nix::libc::LOCK_NB) };
        let mut previous = String::new();
        let _ = file.read_to_string(&mut previous);
        if rc != 0 {
            let holder = previous.lines().next().unwrap_or("").trim().to_string();
            let holder = if holder.is_empty() {
                "holder unknown".to_string()
            } else {
                holder
            };
            return Err(LockError::Held { holder });
        }
        let note = (!previous.trim().is_empty()).then(|| {
            let who = previous.lines().next().unwrap_or("").trim();
            let mut note =
                format!("took over the lock left by a run that is no longer alive ({who})");
            let stopped = stop_leftovers(&previous);
            if stopped > 0 {
                note.push_str(&format!("; stopped {stopped} command(s) it left running"));
            }
            note
        });
        let lock = Self {
            file: Mutex::new(file),
            owner: format!("pid {} on {}", std::process::id(), hostname()),
        };
        lock.record_groups(&[]);
        Ok((lock, note))
    }
}

impl GroupRecord for Lock {
    /// Rewrites the lock file with the owner and the running process groups.
    fn record_groups(&self, groups: &[i32]) {
        let mut text = self.owner.clone();
        text.push('\n');
        for g in groups {
            text.push_str(&format!("group {g}\n"));
        }
        if let Ok(mut file) = self.file.lock() {
            let _ = file.set_len(0);
            let _ = file.rewind();
            let _ = file.write_all(text.as_bytes());
        }
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        // An empty lock file is a released lock. The file itself stays: removing it would let a
        // waiting process lock an unlinked inode while a third creates a new one.
        if let Ok(file) = self.file.lock() {
            let _ = file.set_len(0);
        }
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
        std::fs::write(
            dir.path().join("lock"),
            "pid 999999 on elsewhere\ngroup 999999\n",
        )
        .unwrap();
        let (_lock, note) = Lock::acquire(dir.path()).unwrap();
        let note = note.unwrap();
        assert!(note.contains("pid 999999 on elsewhere"), "{note}");
        assert!(
            !note.contains("stopped"),
            "groups on another host are left alone: {note}"
        );
    }

    #[test]
    fn leftover_groups_of_a_dead_run_on_this_host_are_killed() {
        let dir = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new("sleep");
        std::os::unix::process::CommandExt::process_group(&mut child, 0);
        let mut child = child.arg("30").spawn().unwrap();
        let text = format!("pid 999999 on {}\ngroup {}\n", hostname(), child.id());
        std::fs::write(dir.path().join("lock"), text).unwrap();
        let (_lock, note) = Lock::acquire(dir.path()).unwrap();
        assert!(note.unwrap().contains("stopped 1 command(s)"));
        let status = child.wait().unwrap();
        assert!(!status.success());
    }
}
