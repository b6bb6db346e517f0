//! Starting a shell job's process without copying flowrun's memory.
//!
//! Every command must run in its own process group (so an interrupt or a timeout reaches the
//! whole tree it starts) and must die with flowrun, even when flowrun is killed with SIGKILL
//! (`PR_SET_PDEATHSIG`). `std::process::Command` can only set the second through a `pre_exec`
//! hook, and a hook makes it `fork()`: the kernel then copies the page tables of flowrun's whole
//! heap (tens of MiB for a 10k-job plan) for every job, only for `exec` to throw them away.
//! That copy was the largest cost per short job.
//!
//! So shell jobs start the way glibc's `posix_spawn` does it: `clone(CLONE_VM | CLONE_VFORK)`.
//! The child borrows flowrun's memory on a stack of its own while the calling thread waits, and
//! does only async-signal-safe system calls before `execve`: reset signal handlers (a handler
//! must not run in memory it shares with flowrun), `setpgid`, `prctl(PR_SET_PDEATHSIG)`, `dup2`
//! of the output descriptors, the signal mask. Everything it touches (paths, argument and
//! environment arrays, descriptors) is prepared before the clone; it allocates nothing and takes
//! no lock. An `execve` error is passed back through shared memory.

use std::ffi::{CString, OsStr, OsString};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::sync::atomic::{AtomicI32, Ordering};

use nix::libc;
use nix::sched::CloneFlags;
use nix::sys::signal::{pthread_sigmask, SigSet, SigmaskHow, Signal};
use nix::unistd::Pid;

/// The child's own stack; it runs a handful of system calls.
const STACK_SIZE: usize = 64 * 1024;

/// Where a process's standard output and error go.
pub(crate) enum Output {
    /// Both to this file (a job's log).
    File(OwnedFd),
    /// Both to flowrun's standard error.
    Stderr,
}

/// A program ready to start: every byte the child needs, prepared in the parent.
pub(crate) struct Spawn {
    /// Paths to try in order (the `PATH` search done ahead, as `execvp` would do it).
    candidates: Vec<CString>,
    argv: Vec<CString>,
    envp: Vec<CString>,
    output: Output,
    /// Sent to the child when flowrun dies.
    death_signal: Signal,
}

/// Argument strings cannot hold a NUL byte.
fn c_string(s: impl Into<Vec<u8>>) -> std::io::Result<CString> {
    CString::new(s).map_err(|_| std::io::Error::other("a NUL byte in an argument"))
}

/// Pointers to `strings`, NULL-terminated, as `execve` takes them.
fn pointers(strings: &[CString]) -> Vec<*const libc::c_char> {
    strings
        .iter()
        .map(|s| s.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

/// The paths `execvp` would try for `program` with search path `path`.
fn candidates(program: &str, path: Option<&OsStr>) -> std::io::Result<Vec<CString>> {
    if program.contains('/') {
        return Ok(vec![c_string(program)?]);
    }
    let path = path.unwrap_or(OsStr::new("/bin:/usr/bin"));
    path.as_bytes()
        .split(|b| *b == b':')
        .map(|dir| {
            let dir = if dir.is_empty() { b".".as_slice() } else { dir };
            let mut full = dir.to_vec();
            full.push(b'/');
            full.extend_from_slice(program.as_bytes());
            c_string(full)
        })
        .collect()
}

impl Spawn {
    /// `program` with `args`, flowrun's environment plus `env`, output to `output`.
    pub(crate) fn new(
        program: &str,
        args: &[&str],
        env: &[(&str, &str)],
        output: Output,
        death_signal: Signal,
    ) -> std::io::Result<Self> {
        let mut vars: Vec<(OsString, OsString)> = std::env::vars_os()
            .filter(|(k, _)| !env.iter().any(|(e, _)| OsStr::new(e) == k))
            .collect();
        vars.extend(env.iter().map(|(k, v)| (k.into(), v.into())));
        let path = vars
            .iter()
            .find(|(k, _)| k == "PATH")
            .map(|(_, v)| v.as_os_str());
        let candidates = candidates(program, path)?;
        let envp = vars
            .into_iter()
            .map(|(k, v)| {
                let mut kv = k.into_vec();
                kv.push(b'=');
                kv.extend(v.into_vec());
                c_string(kv)
            })
            .collect::<std::io::Result<_>>()?;
        let argv = std::iter::once(program)
            .chain(args.iter().copied())
            .map(c_string)
            .collect::<std::io::Result<_>>()?;
        Ok(Self {
            candidates,
            argv,
            envp,
            output,
            death_signal,
        })
    }

    /// Starts the process in a new process group of its own; returns its pid (= the group).
    /// An error means it did not start (nothing to wait for).
    pub(crate) fn start(&self) -> std::io::Result<Pid> {
        let null = std::fs::File::open("/dev/null")?;
        let argv = pointers(&self.argv);
        let envp = pointers(&self.envp);
        let (out, err) = match &self.output {
            Output::File(f) => (f.as_raw_fd(), f.as_raw_fd()),
            Output::Stderr => (libc::STDERR_FILENO, libc::STDERR_FILENO),
        };
        let child = Child {
            candidates: &self.candidates,
            argv: &argv,
            envp: &envp,
            fds: [null.as_raw_fd(), out, err],
            death_signal: self.death_signal as libc::c_int,
            last_signal: libc::SIGRTMAX(),
            parent: std::process::id() as libc::pid_t,
            error: AtomicI32::new(0),
        };
        let mut stack = vec![0u8; STACK_SIZE];
        // Every signal stays blocked from before the clone until the child has reset the
        // handlers: a handler of flowrun's must never run in the child.
        let mut old = SigSet::empty();
        pthread_sigmask(
            SigmaskHow::SIG_SETMASK,
            Some(&SigSet::all()),
            Some(&mut old),
        )?;
        // SAFETY: CLONE_VM | CLONE_VFORK suspends this thread until the child has called
        // `execve` or `_exit`, so everything `child` borrows outlives its use. The child runs
        // on its own stack and only makes async-signal-safe calls (see `Child::run`), with
        // every signal blocked until its handlers are reset.
        let pid = unsafe {
            nix::sched::clone(
                Box::new(|| child.run()),
                &mut stack,
                CloneFlags::CLONE_VM | CloneFlags::CLONE_VFORK,
                Some(libc::SIGCHLD),
            )
        };
        let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&old), None);
        let pid = pid?;
        match child.error.load(Ordering::SeqCst) {
            0 => Ok(pid),
            errno => {
                // The child has already exited; reap it.
                let _ = crate::usage::reap(pid);
                Err(std::io::Error::from_raw_os_error(errno))
            }
        }
    }
}

/// What the child reads: borrowed from the parent, which is suspended meanwhile.
struct Child<'a> {
    candidates: &'a [CString],
    argv: &'a [*const libc::c_char],
    envp: &'a [*const libc::c_char],
    /// Standard input, output and error, in that order.
    fds: [libc::c_int; 3],
    death_signal: libc::c_int,
    /// The highest signal number (`SIGRTMAX`), asked in the parent.
    last_signal: libc::c_int,
    parent: libc::pid_t,
    /// The `errno` of a failed start (0 = started).
    error: AtomicI32,
}

impl Child<'_> {
    /// The child's side, up to `execve`. No allocation, no lock, no panic: only system calls.
    fn run(&self) -> ! {
        // SAFETY: each call is an async-signal-safe system call wrapper on valid pointers
        // prepared by the parent; `sigaction` structs live on this (the child's) stack.
        unsafe {
            for sig in 1..=self.last_signal {
                let mut action: libc::sigaction = std::mem::zeroed();
                if libc::sigaction(sig, std::ptr::null(), &mut action) != 0 {
                    continue;
                }
                let ignored_pipe = sig == libc::SIGPIPE && action.sa_sigaction == libc::SIG_IGN;
                if ignored_pipe
                    || (action.sa_sigaction != libc::SIG_DFL
                        && action.sa_sigaction != libc::SIG_IGN)
                {
                    action.sa_sigaction = libc::SIG_DFL;
                    action.sa_flags = 0;
                    libc::sigaction(sig, &action, std::ptr::null_mut());
                }
            }
            if libc::setpgid(0, 0) != 0
                || libc::prctl(libc::PR_SET_PDEATHSIG, self.death_signal as libc::c_ulong) != 0
            {
                self.fail();
            }
            if libc::getppid() != self.parent {
                // flowrun died before the death signal was armed.
                libc::_exit(127);
            }
            for (target, fd) in self.fds.iter().enumerate() {
                if libc::dup2(*fd, target as libc::c_int) < 0 {
                    self.fail();
                }
            }
            let mut empty: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut empty);
            libc::pthread_sigmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
            let mut denied = false;
            for path in self.candidates {
                libc::execve(path.as_ptr(), self.argv.as_ptr(), self.envp.as_ptr());
                match *libc::__errno_location() {
                    libc::EACCES => denied = true,
                    libc::ENOENT | libc::ENOTDIR => {}
                    _ => self.fail(),
                }
            }
            if denied {
                *libc::__errno_location() = libc::EACCES;
            }
            self.fail()
        }
    }

    /// Passes `errno` to the parent and exits.
    fn fail(&self) -> ! {
        // SAFETY: reading errno and `_exit` are async-signal-safe.
        unsafe {
            let errno = *libc::__errno_location();
            self.error.store(errno.max(1), Ordering::SeqCst);
            libc::_exit(127)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::usage::reap;
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::ExitStatusExt;

    fn start(program: &str, args: &[&str], output: Output) -> std::io::Result<Pid> {
        let vars = [("SPAWN_TEST", "yes")];
        Spawn::new(program, args, &vars, output, Signal::SIGKILL)?.start()
    }

    #[test]
    fn a_program_found_on_the_path_writes_to_its_file_and_reports_its_status() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        let file = std::fs::File::create(&log).unwrap();
        let script = "echo out $SPAWN_TEST; echo err >&2; exit 3";
        let pid = start("sh", &["-c", script], Output::File(file.into())).unwrap();
        assert_eq!(reap(pid).unwrap().0.code(), Some(3));
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "out yes\nerr\n");
    }

    #[test]
    fn the_child_leads_its_own_group_with_default_signals() {
        let pid = start("sleep", &["30"], Output::Stderr).unwrap();
        let group = nix::unistd::getpgid(Some(pid));
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
        assert_eq!(reap(pid).unwrap().0.signal(), Some(libc::SIGKILL));
        assert_eq!(group, Ok(pid));
        let mask = |name: &str| {
            let line = status.lines().find(|l| l.starts_with(name)).unwrap();
            u64::from_str_radix(line.split_whitespace().nth(1).unwrap(), 16).unwrap()
        };
        assert_eq!(mask("SigBlk:"), 0, "no signal stays blocked");
        let pipe = 1 << (libc::SIGPIPE - 1);
        assert_eq!(mask("SigIgn:") & pipe, 0, "SIGPIPE is not left ignored");
    }

    #[test]
    fn the_child_dies_with_the_thread_that_started_it() {
        // PR_SET_PDEATHSIG fires when the starting thread ends, as it would when flowrun dies.
        let pid = std::thread::spawn(|| start("sleep", &["30"], Output::Stderr).unwrap())
            .join()
            .unwrap();
        assert_eq!(reap(pid).unwrap().0.signal(), Some(libc::SIGKILL));
    }

    #[test]
    fn programs_that_cannot_start_are_errors() {
        let missing = start("no-such-program-for-flowrun", &[], Output::Stderr).unwrap_err();
        assert_eq!(missing.kind(), std::io::ErrorKind::NotFound);
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("not-executable");
        std::fs::write(&plain, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&plain, std::fs::Permissions::from_mode(0o644)).unwrap();
        let denied = start(plain.to_str().unwrap(), &[], Output::Stderr).unwrap_err();
        assert_eq!(denied.kind(), std::io::ErrorKind::PermissionDenied);
    }

    #[test]
    fn the_path_is_searched_as_execvp_does() {
        let found = candidates("cp", Some(OsStr::new("/a::/b"))).unwrap();
        assert_eq!(found, [c"/a/cp", c"./cp", c"/b/cp"]);
        assert_eq!(candidates("x/cp", None).unwrap(), [c"x/cp"]);
        assert_eq!(
            candidates("cp", None).unwrap(),
            [c"/bin/cp", c"/usr/bin/cp"]
        );
    }
}
