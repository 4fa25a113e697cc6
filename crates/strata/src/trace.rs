//! Where a layer's unpack spends its time, stage by stage, when
//! `STRATA_TRACE` is set (for benchmarks: `bench/registry.sh` prints the
//! breakdown). Off, each timing point costs one load of a flag.
//!
//! A layer is unpacked by two threads, each a chain of readers: one
//! receives, tees into the blob hash and blob file, and inflates; the other
//! hashes the tar (diff ID), parses it and creates the files. The stages
//! are timed where they run: each wrapper adds the time spent inside it to
//! its thread's tally (the inflating thread's is merged into the layer's at
//! the end), and a stage's own time is its total less the stage it reads
//! from. One line per layer is logged at INFO under the `strata::trace`
//! target (the CLI shows it when `STRATA_TRACE` is set).

use std::cell::RefCell;
use std::io::{self, Read};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A point in the unpack chain that is timed.
#[derive(Debug, Clone, Copy)]
pub enum Stage {
    /// Waiting for the source's bytes (the network, or a file).
    Receive,
    /// SHA-256 of the blob's bytes.
    BlobHash,
    /// Writing the blob file.
    BlobWrite,
    /// The tee (receive and the two above), in total.
    Tee,
    /// The decompressor, in total (including the tee it reads).
    Inflate,
    /// The applying thread waiting for the inflating thread's tar.
    Handoff,
    /// The diff-ID hash, in total (including the wait for the tar).
    DiffHash,
    /// Writing file contents.
    FileWrite,
    /// Applying the tar, in total (including everything it reads).
    Apply,
    /// Committing the blob, renaming the layer into place, its record.
    Install,
}

const STAGES: usize = 10;

/// A thread's times per stage.
pub type Tally = [Duration; STAGES];

thread_local! {
    static TALLY: RefCell<Option<Tally>> = const { RefCell::new(None) };
}

/// Whether `STRATA_TRACE` is set (to anything but empty or `0`).
pub fn enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("STRATA_TRACE").is_some_and(|v| !v.is_empty() && v != "0"))
}

/// Run `f`, adding its time to `stage` of this thread's layer.
pub fn timed<T>(stage: Stage, f: impl FnOnce() -> T) -> T {
    if !enabled() {
        return f();
    }
    let t0 = Instant::now();
    let out = f();
    let spent = t0.elapsed();
    TALLY.with(|t| {
        if let Some(a) = t.borrow_mut().as_mut() {
            a[stage as usize] += spent;
        }
    });
    out
}

/// A reader whose reads count as `stage`.
pub struct Timed<R> {
    inner: R,
    stage: Stage,
}

impl<R> Timed<R> {
    /// Time `inner`'s reads as `stage`.
    pub fn new(inner: R, stage: Stage) -> Self {
        Timed { inner, stage }
    }
}

impl<R: Read> Read for Timed<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Timed { inner, stage } = self;
        timed(*stage, || inner.read(buf))
    }
}

/// Start a tally on a helper thread of a layer (when tracing is on).
pub fn thread_start() {
    if enabled() {
        TALLY.with(|t| *t.borrow_mut() = Some([Duration::ZERO; STAGES]));
    }
}

/// The helper thread's tally, to [`merge`] into the layer's.
pub fn thread_end() -> Option<Tally> {
    TALLY.with(|t| t.borrow_mut().take())
}

/// Add a helper thread's tally to this thread's.
pub fn merge(other: Option<Tally>) {
    let Some(other) = other else { return };
    TALLY.with(|t| {
        if let Some(a) = t.borrow_mut().as_mut() {
            for (x, y) in a.iter_mut().zip(other) {
                *x += y;
            }
        }
    });
}

/// The timing of one layer on this thread, from [`layer`] to [`LayerTrace::finish`].
pub struct LayerTrace {
    start: Instant,
    label: String,
}

/// Start timing a layer on this thread; `None` when tracing is off.
pub fn layer(label: &str) -> Option<LayerTrace> {
    if !enabled() {
        return None;
    }
    TALLY.with(|t| *t.borrow_mut() = Some([Duration::ZERO; STAGES]));
    Some(LayerTrace { start: Instant::now(), label: label.to_string() })
}

impl LayerTrace {
    /// Log the layer's stages: blob and tar sizes for the rates.
    pub fn finish(self, blob_bytes: u64, tar_bytes: u64) {
        let Some(a) = TALLY.with(|t| t.borrow_mut().take()) else { return };
        let at = |s: Stage| a[s as usize].as_secs_f64();
        let own = |total: Stage, inner: Stage| (at(total) - at(inner)).max(0.0);
        tracing::info!(
            target: "strata::trace",
            "layer {}: blob {:.1} MB, tar {:.1} MB: wall {:.3} s; inflating thread: receive {:.3}, blob hash {:.3}, blob write {:.3}, inflate {:.3}; applying thread: diff-ID hash {:.3}, tar parse, file creation and metadata {:.3}, file write {:.3}, waiting for the tar {:.3}; install {:.3}",
            self.label,
            blob_bytes as f64 / 1e6,
            tar_bytes as f64 / 1e6,
            self.start.elapsed().as_secs_f64(),
            at(Stage::Receive),
            at(Stage::BlobHash),
            at(Stage::BlobWrite),
            own(Stage::Inflate, Stage::Tee),
            own(Stage::DiffHash, Stage::Handoff),
            (at(Stage::Apply) - at(Stage::DiffHash) - at(Stage::FileWrite)).max(0.0),
            at(Stage::FileWrite),
            at(Stage::Handoff),
            at(Stage::Install),
        );
    }
}
