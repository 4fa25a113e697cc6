//! The fuzz targets in `fuzz/` (cargo fuzz's layout: `cargo fuzz run
//! TARGET` for long runs) built here with libFuzzer's coverage
//! instrumentation on stable Rust, the flags `cargo fuzz build -s none`
//! uses, and each run for a bounded time (`STRATA_FUZZ_SECS`, default 10)
//! from its committed corpus: no crash, panic, oracle failure or input
//! slower than 25 s. New inputs go to a scratch directory, never into the
//! committed corpus; a finding's input is printed to be made a regression
//! test.

use std::path::{Path, PathBuf};
use std::process::Command;

const TARGETS: &[&str] = &["layer_apply", "dockerfile", "dockerignore", "reference", "image_json", "archive"];

/// What `cargo fuzz build --sanitizer none` hands rustc.
const RUSTFLAGS: &str = "-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
    -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
    -Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks";

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz").canonicalize().unwrap()
}

#[test]
fn every_fuzz_target_runs_its_bounded_time_without_a_finding() {
    let secs: u64 = std::env::var("STRATA_FUZZ_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(10);
    let dir = fuzz_dir();
    // The target triple keeps the instrumentation off build scripts and proc macros, as cargo fuzz does.
    let triple = format!("{}-unknown-linux-gnu", std::env::consts::ARCH);
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let built = Command::new(cargo)
        .args(["build", "--profile", "ci", "--bins", "--target", &triple])
        .current_dir(&dir)
        .env("RUSTFLAGS", RUSTFLAGS)
        .env("CARGO_TARGET_DIR", dir.join("target"))
        .status()
        .unwrap();
    assert!(built.success(), "building the fuzz targets");
    let mut findings = Vec::new();
    for t in TARGETS {
        let scratch = tempfile::tempdir().unwrap();
        let new_inputs = scratch.path().join("corpus");
        std::fs::create_dir(&new_inputs).unwrap();
        let out = Command::new(dir.join("target").join(&triple).join("ci").join(t))
            .arg(format!("-max_total_time={secs}"))
            .arg("-max_len=65536")
            .arg("-timeout=25")
            .arg(format!("-artifact_prefix={}/", scratch.path().display()))
            .arg(&new_inputs)
            .arg(dir.join("corpus").join(t))
            // layer_apply's sandbox goes here too.
            .env("TMPDIR", scratch.path())
            .output()
            .unwrap();
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            let tail: Vec<&str> = err.lines().rev().take(30).collect::<Vec<_>>().into_iter().rev().collect();
            let artifacts: Vec<String> = std::fs::read_dir(scratch.path())
                .unwrap()
                .flatten()
                .filter(|e| e.file_name() != "corpus" && e.file_type().is_ok_and(|f| f.is_file()))
                .map(|e| format!("{:?}: {:?}", e.file_name(), std::fs::read(e.path()).unwrap_or_default()))
                .collect();
            findings.push(format!("{t}: {:?}\n{}\ninput: {artifacts:?}", out.status, tail.join("\n")));
        }
    }
    assert!(findings.is_empty(), "{}", findings.join("\n\n"));
}
