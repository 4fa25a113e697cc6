//! Named fault-injection points at every step that writes to the store, for
//! tests only. Built with the `failpoints` feature (which `cargo test`
//! turns on through the CLI's dev-dependencies), a point named in the
//! `FAILPOINTS` environment variable fires there: `NAME=return` makes the
//! step fail with an I/O error naming the point, `NAME=return(kill)` kills
//! the process with SIGKILL at that instant, and the `fail` crate's other
//! actions and counts (`2*off->return(kill)`) work too. Without the
//! feature every point compiles to nothing.
//!
//! The points, by what they interrupt: `blob-write`, `blob-sync`,
//! `blob-rename`; `layer-claim`, `layer-unpack`, `layer-rename`,
//! `layer-ready`; `image-commit`; `container-create`, `container-start`,
//! `container-remove`; `volume-create`, `volume-seed`; `build-step`,
//! `build-cache`; `image-remove`, `gc-delete`.

use crate::error::Error;

/// Read `FAILPOINTS` once, at the start of a command.
pub fn setup() {
    #[cfg(feature = "failpoints")]
    std::mem::forget(fail::FailScenario::setup());
}

/// What a fired point does: with `kill`, die at once as a SIGKILL would
/// leave things; otherwise the error the step returns.
pub fn fired(name: &str, action: Option<String>) -> Error {
    if action.as_deref() == Some("kill") {
        let _ = rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::KILL);
        // A SIGKILL a process sends itself arrives before kill(2) returns: not reached.
        std::process::abort();
    }
    Error::Io {
        path: std::path::PathBuf::from(format!("failpoint {name}")),
        source: std::io::Error::other("injected fault"),
    }
}

/// A fault-injection point: returns the point's error from the enclosing
/// function (whose error type must come from [`Error`]) when it fires.
#[cfg(feature = "failpoints")]
macro_rules! failpoint {
    ($name:literal) => {
        fail::fail_point!($name, |action| Err($crate::fault::fired($name, action).into()))
    };
    ($name:literal, io) => {
        fail::fail_point!($name, |action| Err(std::io::Error::other($crate::fault::fired($name, action))))
    };
}

/// A fault-injection point (compiled out: the `failpoints` feature is off).
#[cfg(not(feature = "failpoints"))]
macro_rules! failpoint {
    ($name:literal) => {};
    ($name:literal, io) => {};
}
pub(crate) use failpoint;
