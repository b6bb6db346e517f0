//! What a job cost: CPU time, peak memory and bytes moved, measured exactly rather than sampled.
//!
//! Snakemake's `benchmark:` samples the process tree with psutil every half second (then every
//! 30 s): a job shorter than the interval gets `NA`, a peak between two samples is missed
//! (snakemake#851: 3.3 GiB reported for a 4.3 GiB job). The kernel already keeps these figures
//! for every process and hands them over when the process is reaped, so flowrun reaps its
//! children with them instead:
//!
//! - **CPU** (user, system) and **peak RSS** come from `wait4`'s `rusage`. The CPU times include
//!   every descendant the child itself waited for (a shell's commands, `mpirun`'s ranks); the
//!   peak RSS is that of the largest single process among them (the kernel's `ru_maxrss`), not
//!   the sum of processes that ran at the same time.
//! - **Bytes** come from `/proc/<pid>/io`, read after the child has exited but before it is
//!   reaped (`waitid(WNOWAIT)`), when it already holds the totals of its waited-for
//!   descendants: `rchar`/`wchar` (bytes through `read`/`write` and the like, page cache
//!   included) and `read_bytes`/`write_bytes` (what reached or came from the storage layer,
//!   which Snakemake reports as `io_in`/`io_out`). `rusage`'s `inblock`/`oublock` count the
//!   latter in 512-byte blocks only, so `/proc` is the better source.
//!
//! **A floor under peak RSS.** A child starts sharing flowrun's memory (`clone(CLONE_VM)` for
//! commands, `fork` for workers), and at `execve` the kernel folds the memory it shared into the
//! new program's `ru_maxrss`. So a child's figure is at least flowrun's own peak at that moment.
//! A figure above flowrun's peak (read when the child is reaped: it only grows) is the
//! program's own, exact; one at or below it only bounds the program's peak, and is reported as
//! that bound (`max_rss` none, `rss_at_most` set), never as an exact figure.
//!
//! Several processes of one job (the workers of the `process` and `hybrid` models) add up:
//! their CPU, bytes, and peak RSS (workers run side by side, so the sum bounds their joint peak).
//!
//! Work that runs inside flowrun (`run` closures, the `thread`, `chunked` and `async` models)
//! shares flowrun's memory with every other job, so it has no peak RSS of its own; its CPU time
//! and bytes are those of the threads that did the work, read per thread (`RUSAGE_THREAD`,
//! `/proc/thread-self/io`) from the job's start to its end.

use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::sync::Mutex;
use std::time::Duration;

use nix::libc;
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

/// Bytes a job moved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Io {
    /// Through `read` and similar calls (`rchar`), page cache included.
    pub read: u64,
    /// Through `write` and similar calls (`wchar`).
    pub written: u64,
    /// Fetched from storage (`read_bytes`): what Snakemake calls `io_in`.
    pub disk_read: u64,
    /// Sent towards storage (`write_bytes`): Snakemake's `io_out`.
    pub disk_written: u64,
}

impl std::ops::Add for Io {
    type Output = Io;
    fn add(self, o: Io) -> Io {
        Io {
            read: self.read + o.read,
            written: self.written + o.written,
            disk_read: self.disk_read + o.disk_read,
            disk_written: self.disk_written + o.disk_written,
        }
    }
}

impl Io {
    /// The difference from an earlier reading of the same counters.
    fn since(self, earlier: Io) -> Io {
        Io {
            read: self.read.saturating_sub(earlier.read),
            written: self.written.saturating_sub(earlier.written),
            disk_read: self.disk_read.saturating_sub(earlier.disk_read),
            disk_written: self.disk_written.saturating_sub(earlier.disk_written),
        }
    }

    /// Parses the text of a `/proc/.../io` file.
    fn parse(text: &str) -> Option<Io> {
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(": "))
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        Some(Io {
            read: field("rchar")?,
            written: field("wchar")?,
            disk_read: field("read_bytes")?,
            disk_written: field("write_bytes")?,
        })
    }

    fn read(path: &str) -> Option<Io> {
        Io::parse(&std::fs::read_to_string(path).ok()?)
    }
}

/// What one job (or one of its processes) cost, beyond its wall time. A cluster job measures
/// itself on its node and sends this back in its exit-status file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// CPU time in user mode.
    pub user: Duration,
    /// CPU time in the kernel.
    pub system: Duration,
    /// Peak resident set size in bytes; `None` for work inside flowrun, which has none of its
    /// own.
    pub max_rss: Option<u64>,
    /// When the peak RSS of a process is not known exactly (it stayed under flowrun's own, see
    /// the module docs): at most this many bytes.
    pub rss_at_most: Option<u64>,
    /// Bytes moved; `None` where the kernel does not say (no `/proc`).
    pub io: Option<Io>,
    /// How many processes were measured (0 for work inside flowrun).
    pub processes: u32,
}

impl Usage {
    /// User plus system CPU time.
    pub fn cpu(&self) -> Duration {
        self.user + self.system
    }

    /// `self` and `other` side by side: everything adds up.
    pub fn plus(self, other: Usage) -> Usage {
        let add = |a: Option<u64>, b: Option<u64>| match (a, b) {
            (Some(a), Some(b)) => Some(a + b),
            (a, b) => a.or(b),
        };
        // Exact only if every part that says anything is exact.
        let bounded = self.rss_at_most.is_some() || other.rss_at_most.is_some();
        let known = add(
            self.max_rss.or(self.rss_at_most),
            other.max_rss.or(other.rss_at_most),
        );
        Usage {
            user: self.user + other.user,
            system: self.system + other.system,
            max_rss: known.filter(|_| !bounded),
            rss_at_most: known.filter(|_| bounded),
            io: match (self.io, other.io) {
                (Some(a), Some(b)) => Some(a + b),
                (a, b) => a.or(b),
            },
            processes: self.processes + other.processes,
        }
    }

    /// The usage `ru` of a reaped child, whose peak RSS is exact above `floor`.
    fn from_rusage(ru: &libc::rusage, io: Option<Io>, floor: u64) -> Usage {
        let rss = max_rss(ru);
        Usage {
            user: seconds(ru.ru_utime),
            system: seconds(ru.ru_stime),
            max_rss: Some(rss).filter(|r| *r > floor),
            rss_at_most: Some(rss).filter(|r| *r <= floor),
            io,
            processes: 1,
        }
    }
}

fn seconds(t: libc::timeval) -> Duration {
    Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.max(0) as u64)
}

/// Linux gives kilobytes.
fn max_rss(ru: &libc::rusage) -> u64 {
    ru.ru_maxrss.max(0) as u64 * 1024
}

fn rusage(who: libc::c_int) -> libc::rusage {
    // SAFETY: getrusage writes into a zeroed local.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(who, &mut ru) };
    ru
}

/// `n` bytes for people: `512 B`, `1.5 KiB`, `200.0 MiB`, `4.30 GiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    let digits = if value < 10.0 { 2 } else { 1 };
    format!("{value:.digits$} {}", UNITS[unit])
}

impl std::fmt::Display for Usage {
    /// `cpu 1.20 s (user 1.10 s, system 0.10 s), peak RSS 200.0 MiB, read 1.00 MiB, wrote 3 B`;
    /// what was not measured is left out.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "cpu {:.2} s (user {:.2} s, system {:.2} s)",
            self.cpu().as_secs_f64(),
            self.user.as_secs_f64(),
            self.system.as_secs_f64()
        )?;
        if let Some(rss) = self.max_rss {
            write!(f, ", peak RSS {}", bytes(rss))?;
        } else if let Some(rss) = self.rss_at_most {
            write!(f, ", peak RSS at most {}", bytes(rss))?;
        }
        if let Some(io) = self.io {
            write!(f, ", read {}, wrote {}", bytes(io.read), bytes(io.written))?;
        }
        Ok(())
    }
}

/// The usage of the job's work so far, added to by every process and thread that does it.
#[derive(Debug, Default)]
pub struct Meter(Mutex<Usage>);

impl Meter {
    /// Adds the cost of one more process or thread of the job.
    pub fn add(&self, usage: Usage) {
        if let Ok(mut total) = self.0.lock() {
            *total = total.plus(usage);
        }
    }

    /// Forgets what was measured (a new attempt starts).
    pub fn reset(&self) {
        if let Ok(mut total) = self.0.lock() {
            *total = Usage::default();
        }
    }

    /// What was measured.
    pub fn total(&self) -> Usage {
        self.0.lock().map(|u| *u).unwrap_or_default()
    }
}

/// Retries a system call interrupted by a signal.
fn retrying(mut call: impl FnMut() -> libc::c_int) -> std::io::Result<libc::c_int> {
    loop {
        let r = call();
        if r >= 0 {
            return Ok(r);
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// Whether child `pid` has exited, leaving it unreaped; with `block`, waits for it.
fn exited(pid: Pid, block: bool) -> std::io::Result<bool> {
    let flags = libc::WEXITED | libc::WNOWAIT | if block { 0 } else { libc::WNOHANG };
    // SAFETY: waitid writes into a zeroed local siginfo.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    retrying(|| unsafe {
        libc::waitid(libc::P_PID, pid.as_raw() as libc::id_t, &mut info, flags)
    })?;
    // With WNOHANG and nothing to report, the kernel leaves si_pid at 0.
    // SAFETY: si_pid is valid for SIGCHLD information, which waitid fills in.
    Ok(unsafe { info.si_pid() } != 0)
}

/// Reaps child `pid`, which has exited, with its resource usage.
fn reap_exited(pid: Pid) -> std::io::Result<(ExitStatus, Usage)> {
    let io = Io::read(&format!("/proc/{pid}/io"));
    let mut status = 0;
    // SAFETY: wait4 writes into locals.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    retrying(|| unsafe { libc::wait4(pid.as_raw(), &mut status, 0, &mut ru) })?;
    let floor = max_rss(&rusage(libc::RUSAGE_SELF));
    Ok((
        ExitStatus::from_raw(status),
        Usage::from_rusage(&ru, io, floor),
    ))
}

/// Waits for child `pid` to end and reaps it: how it ended and what it cost.
pub fn reap(pid: Pid) -> std::io::Result<(ExitStatus, Usage)> {
    exited(pid, true)?;
    reap_exited(pid)
}

/// Reaps child `pid` if it has ended; `None` while it runs.
pub fn try_reap(pid: Pid) -> std::io::Result<Option<(ExitStatus, Usage)>> {
    if exited(pid, false)? {
        reap_exited(pid).map(Some)
    } else {
        Ok(None)
    }
}

/// The calling thread's counters at one moment, to measure work done on it in between.
#[derive(Debug, Clone, Copy)]
pub struct ThreadMark {
    user: Duration,
    system: Duration,
    io: Option<Io>,
}

impl ThreadMark {
    /// The calling thread's CPU time and bytes so far.
    pub fn now() -> ThreadMark {
        let ru = rusage(libc::RUSAGE_THREAD);
        ThreadMark {
            user: seconds(ru.ru_utime),
            system: seconds(ru.ru_stime),
            io: Io::read("/proc/thread-self/io"),
        }
    }

    /// What the calling thread (the one that made this mark) did since the mark.
    pub fn elapsed(&self) -> Usage {
        let now = ThreadMark::now();
        Usage {
            user: now.user.saturating_sub(self.user),
            system: now.system.saturating_sub(self.system),
            max_rss: None,
            rss_at_most: None,
            io: now.io.zip(self.io).map(|(now, then)| now.since(then)),
            processes: 0,
        }
    }

    /// Everything the calling thread did since it started (a thread started for one job).
    pub fn whole_thread() -> Usage {
        ThreadMark {
            user: Duration::ZERO,
            system: Duration::ZERO,
            io: Some(Io::default()),
        }
        .elapsed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn proc_io_is_parsed() {
        let text = "rchar: 10\nwchar: 20\nsyscr: 1\nsyscw: 2\nread_bytes: 4096\n\
                    write_bytes: 8192\ncancelled_write_bytes: 0\n";
        let io = Io::parse(text).unwrap();
        assert_eq!(
            io,
            Io {
                read: 10,
                written: 20,
                disk_read: 4096,
                disk_written: 8192
            }
        );
        assert_eq!(Io::parse("rchar: 1\n"), None);
    }

    #[test]
    fn a_reaped_child_reports_its_cpu_memory_and_bytes() {
        // `head` writes 1 MiB into a file, then the shell spins a little.
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let script = format!(
            "head -c 1048576 /dev/zero > {}; i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done",
            out.display()
        );
        // Reaped by `reap`, not by `Child::wait`.
        let pid = Command::new("sh")
            .arg("-c")
            .arg(script)
            .spawn()
            .unwrap()
            .id();
        let (status, usage) = reap(Pid::from_raw(pid as i32)).unwrap();
        assert!(status.success());
        assert!(usage.cpu() > Duration::ZERO, "{usage:?}");
        // `sh` stays under flowrun's (the test binary's) own peak: a bound, not a figure.
        assert!(
            usage.max_rss.or(usage.rss_at_most).unwrap() > 100 * 1024,
            "{usage:?}"
        );
        let io = usage.io.unwrap();
        assert!(io.written >= 1_048_576, "{io:?}");
        assert_eq!(usage.processes, 1);
    }

    #[test]
    fn try_reap_leaves_a_running_child_alone() {
        let pid = Pid::from_raw(Command::new("sleep").arg("5").spawn().unwrap().id() as i32);
        assert!(try_reap(pid).unwrap().is_none());
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL).unwrap();
        let (status, _) = reap(pid).unwrap();
        assert_eq!(status.signal(), Some(libc::SIGKILL));
    }

    /// This thread's CPU clock, which the kernel keeps apart from `getrusage`.
    fn thread_clock() -> Duration {
        // SAFETY: clock_gettime writes into a zeroed local.
        let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
        unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
        Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
    }

    /// Spins until this thread has used `cpu` more CPU time.
    fn spin(cpu: Duration) {
        let start = thread_clock();
        let mut x = 0u64;
        while thread_clock() - start < cpu {
            x = std::hint::black_box(x.wrapping_add(1));
        }
    }

    #[test]
    fn a_thread_mark_measures_this_threads_work_only() {
        let mark = ThreadMark::now();
        spin(Duration::from_millis(50));
        let spent = mark.elapsed();
        // rusage has a resolution of a scheduler tick at worst.
        assert!(spent.cpu() >= Duration::from_millis(40), "{spent:?}");
        assert_eq!(spent.max_rss, None);
        let mark = ThreadMark::now();
        std::thread::spawn(|| spin(Duration::from_millis(100)))
            .join()
            .unwrap();
        let other = mark.elapsed();
        assert!(other.cpu() < Duration::from_millis(40), "{other:?}");
        let whole = std::thread::spawn(|| {
            spin(Duration::from_millis(60));
            ThreadMark::whole_thread()
        })
        .join()
        .unwrap();
        assert!(whole.cpu() >= Duration::from_millis(50), "{whole:?}");
    }

    #[test]
    fn figures_read_well() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.50 KiB");
        assert_eq!(bytes(200 * 1024 * 1024), "200.0 MiB");
        let mut u = Usage {
            user: Duration::from_millis(1100),
            system: Duration::from_millis(100),
            max_rss: Some(3 << 20),
            rss_at_most: None,
            io: None,
            processes: 1,
        };
        assert_eq!(
            u.to_string(),
            "cpu 1.20 s (user 1.10 s, system 0.10 s), peak RSS 3.00 MiB"
        );
        (u.max_rss, u.rss_at_most) = (None, Some(3 << 20));
        assert!(u.to_string().ends_with("peak RSS at most 3.00 MiB"));
    }

    #[test]
    fn side_by_side_usage_adds_up() {
        let a = Usage {
            user: Duration::from_secs(1),
            system: Duration::from_secs(2),
            max_rss: Some(10),
            rss_at_most: None,
            io: None,
            processes: 1,
        };
        let b = Usage {
            max_rss: Some(5),
            io: Some(Io {
                read: 1,
                ..Io::default()
            }),
            ..a
        };
        let sum = a.plus(b);
        assert_eq!(sum.cpu(), Duration::from_secs(6));
        assert_eq!(sum.max_rss, Some(15));
        assert_eq!(sum.io.unwrap().read, 1);
        assert_eq!(sum.processes, 2);
        // One bounded part makes the sum a bound; work inside flowrun adds nothing.
        let bounded = Usage {
            max_rss: None,
            rss_at_most: Some(7),
            ..a
        };
        let sum = a.plus(bounded).plus(Usage::default());
        assert_eq!((sum.max_rss, sum.rss_at_most), (None, Some(17)));
    }
}
