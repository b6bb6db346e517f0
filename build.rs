//! Links the `flowrun` binary as a position-dependent executable.
//!
//! A position-independent one (the default) carries 33,000 relative relocations that the
//! dynamic loader applies at every start: it reads 800 KiB of relocation records and copies
//! every page of `.data.rel.ro` it writes into (552 KiB). Without them `flowrun --version`
//! takes 2.6 ms instead of 2.9, and the 10,000-job no-op 49.5 ms instead of 55.1 (see
//! `bench/RESULTS.md`). The price is that the binary's own code and data always load at the
//! same address (shared libraries, heap and stack are still randomised), which matters little
//! for a command-line tool that runs the user's own code anyway. Only the binaries are linked
//! this way: tests and proc-macros are untouched.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
}
