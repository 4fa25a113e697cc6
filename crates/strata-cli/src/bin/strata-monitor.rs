//! `strata-monitor`: the small process that watches a detached container
//! (see the `strata_monitor` crate); `strata` execs it, never a user.
//!
//! It starts at the C `main`, not Rust's: std's start-up (finding the main
//! thread's stack guard through `/proc/self/maps`, the stack-overflow
//! handler) pulls about 600 kB of libc pages into every one of these
//! long-lived processes, and the monitor needs none of it. What it does
//! need of std's start-up it gets anyway: glibc hands the arguments to
//! std's own initialiser, and SIGPIPE is ignored by `strata_monitor::main`.
// (Under `cargo test` the harness brings its own main.)
#![cfg_attr(not(test), no_main)]

/// The process entry point, called by the C runtime.
#[cfg(not(test))]
#[unsafe(no_mangle)]
pub extern "C" fn main(_argc: std::ffi::c_int, _argv: *const *const std::ffi::c_char) -> std::ffi::c_int {
    strata_monitor::main()
}
