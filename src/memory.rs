//! A counting allocator, so the definition-time sandbox can bound memory cheaply.
//!
//! Rhai can bound string and array sizes itself, but then it re-measures a whole array after
//! every `push`, which makes building a list in a loop quadratic (30,000 pushes took 1.4 s).
//! Instead the binary counts the bytes it has allocated (one relaxed atomic add per allocation)
//! and the engine's progress hook, which runs at every operation, ends a definition that holds
//! more than [`definition_limit`] with a clear error rather than letting it exhaust memory.
//!
//! Underneath sits mimalloc rather than glibc's malloc: planning 100,000 jobs makes and frees
//! millions of small strings and maps, and glibc spent a third of a dry run's time in
//! `malloc`, `free` and the consolidation of its free lists.

use std::alloc::{GlobalAlloc, Layout};

use mimalloc::MiMalloc;
use std::sync::atomic::{AtomicUsize, Ordering};

static ALLOCATED: AtomicUsize = AtomicUsize::new(0);

/// mimalloc, counting live bytes. The `flowrun` binary installs it.
pub struct Counting;

// SAFETY: every call is forwarded to mimalloc unchanged; only a counter is kept.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = MiMalloc.alloc(layout);
        if !p.is_null() {
            ALLOCATED.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = MiMalloc.alloc_zeroed(layout);
        if !p.is_null() {
            ALLOCATED.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        MiMalloc.dealloc(ptr, layout);
        ALLOCATED.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = MiMalloc.realloc(ptr, layout, new_size);
        if !p.is_null() {
            ALLOCATED.fetch_add(new_size, Ordering::Relaxed);
            ALLOCATED.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        p
    }
}

/// Bytes currently allocated (0 where the counting allocator is not installed, e.g. unit tests).
pub fn allocated() -> usize {
    ALLOCATED.load(Ordering::Relaxed)
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
