//! Work spread over threads: each item of a list handed to the next free
//! worker, the results in the items' order. Used where independent pieces
//! of I/O and hashing (layers, blobs) can use every core. Written by hand:
//! a dozen lines over `std::thread::scope`, where a thread-pool crate
//! would be a dependency for one loop.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::error::Result;

/// As many workers as the machine has cores.
pub fn cores() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// `f` of each of `items` on up to `workers` threads; the results in the
/// items' order, or the first error (by item) once one failed. After a
/// failure no worker takes a new item.
pub fn each<T: Sync, R: Send>(items: &[T], workers: usize, f: impl Fn(&T) -> Result<R> + Sync) -> Result<Vec<R>> {
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let results: Mutex<Vec<Option<Result<R>>>> = Mutex::new((0..items.len()).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..workers.clamp(1, items.len().max(1)) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= items.len() || failed.load(Ordering::SeqCst) {
                    break;
                }
                let r = f(&items[i]);
                if r.is_err() {
                    failed.store(true, Ordering::SeqCst);
                }
                results.lock().expect("not poisoned")[i] = Some(r);
            });
        }
    });
    // Items are taken in order, so any item left untaken comes after the
    // one that failed, whose error is met first.
    results
        .into_inner()
        .expect("not poisoned")
        .into_iter()
        .map(|r| r.expect("every item before a failure was taken"))
        .collect()
}
