//! The monitor of a detached container, kept small: it holds no store, no
//! runtime and no registry code, so a host running many containers pays
//! little memory for each (podman's conmon is the yardstick).
//!
//! The engine (`strata __monitor ID`) prepares and starts the container,
//! records it running, and then *execs* this program in the same process:
//! the container's init stays this process's child and the pid recorded as
//! the container's waiter stays the same. The monitor copies the
//! container's output into its log ([`logfile`]), passes `attach` clients'
//! input on, forwards signals, runs health probes as short-lived engine
//! processes, and when the container exits execs the engine again (the
//! [`plan::Plan`]'s `after` command) to record the exit and apply the
//! restart policy.
//!
//! The record format and the writer live here, not in the engine, so the
//! one writer of a container log is shared by both.

pub mod logfile;
pub mod plan;
pub mod signals;
mod watch;

pub use watch::main;
