//! A counting allocator, so the definition-time sandbox can bound memory cheaply.
//!
//! Rhai can bound string and array sizes itself, but then it re-measures a whole array after
//! every `push`, which makes building a list in a loop quadratic (30,000 pushes took 1.4 s).
//! Instead the binary counts the bytes each thread allocates and frees, and the engine's
//! progress hook, which runs at every operation, ends an evaluation (the workflow file, or one
//! job's function of the wildcards) that holds more than [`definition_limit`] with a clear
//! error rather than letting it exhaust memory.
//!
//! The count is per thread, in a thread-local cell, and restarted by [`start_counting`] when an
//! evaluation begins: what is judged is what that evaluation allocated (an evaluation runs on
//! one thread). One process-wide atomic counter was the first design; but the planner calls
//! many jobs' functions at once, and every allocation on both cores then wrote the same cache
//! line: with Rhai's interner lock (`script::load` turns it off), 10,000 calls took as long on
//! two cores as on one. So that functions running at once on every core cannot together hold
//! more than the limit, each gets a share of it ([`function_limit`]).
//!
//! Underneath sits mimalloc rather than glibc's malloc: planning 100,000 jobs makes and frees
//! millions of small strings and maps, and glibc spent a third of a dry run's time in
//! `malloc`, `free` and the consolidation of its free lists.

use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;

use mimalloc::MiMalloc;

thread_local! {
    /// Bytes allocated minus bytes freed by this thread since it last started counting. A
    /// constant initializer and no destructor: reading it never allocates, as an allocator
    /// must not.
    static NET: Cell<isize> = const { Cell::new(0) };
    /// What the evaluation running on this thread may hold.
    static LIMIT: Cell<usize> = const { Cell::new(usize::MAX) };
}

fn count(bytes: isize) {
    NET.with(|n| n.set(n.get().wrapping_add(bytes)));
}

/// mimalloc, counting the bytes each thread holds. The `flowrun` binary installs it.
pub struct Counting;

// SAFETY: every call is forwarded to mimalloc unchanged; only a counter is kept.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = MiMalloc.alloc(layout);
        if !p.is_null() {
            count(layout.size() as isize);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = MiMalloc.alloc_zeroed(layout);
        if !p.is_null() {
            count(layout.size() as isize);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        MiMalloc.dealloc(ptr, layout);
        count(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = MiMalloc.realloc(ptr, layout, new_size);
        if !p.is_null() {
            count(new_size as isize - layout.size() as isize);
        }
        p
    }
}

/// Starts counting this thread's allocations from zero: an evaluation that may hold `limit`
/// bytes is about to begin.
pub fn start_counting(limit: usize) {
    NET.with(|n| n.set(0));
    LIMIT.with(|l| l.set(limit));
}

/// Whether the evaluation running on this thread holds more than its limit (never where the
/// counting allocator is not installed, e.g. unit tests).
pub fn over_limit() -> bool {
    NET.with(|n| n.get().max(0) as usize) > limit()
}

/// What the evaluation running on this thread may hold.
pub fn limit() -> usize {
    LIMIT.with(Cell::get)
}

/// What one job's function of the wildcards may hold: the planner runs one on every core at
/// once, so each gets its share of [`definition_limit`], but never less than 256 MiB (or the
/// whole limit, if smaller), which a function reading a large sample sheet may need.
pub fn function_limit() -> usize {
    static SHARE: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *SHARE.get_or_init(|| {
        let whole = definition_limit();
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        (whole / cores).max(whole.min(256 << 20))
    })
}

/// The most memory a workflow file may hold while it is being evaluated: a quarter of the
/// machine's memory, at most 4 GiB (one more step of a runaway may double it before the check).
pub fn definition_limit() -> usize {
    static LIMIT: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *LIMIT.get_or_init(|| {
        let ram = nix::sys::sysinfo::sysinfo().map_or(u64::MAX, |i| i.ram_total());
        usize::try_from(ram / 4).unwrap_or(usize::MAX).min(4 << 30)
    })
}
