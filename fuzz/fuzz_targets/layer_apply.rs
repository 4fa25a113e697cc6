#![no_main]
//! Applying a layer tar, with an oracle: whatever the entries (`..`,
//! absolute paths, symlinks and hardlinks out of the root, whiteouts,
//! devices, long names), the apply succeeds or fails without a panic, and
//! nothing outside its target changes: the target's sandbox still holds
//! only the target and an untouched canary, and the canary directory's
//! link outside the sandbox leads nowhere new.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use strata::layer::{apply, ApplyOptions, DiffFormat};

/// `<tmp>/strata-fuzz-apply-<pid>/`: `root/` (the target, made anew for
/// each input) and `canary/file` (must stay as it is).
fn sandbox() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("strata-fuzz-apply-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(d.join("canary")).unwrap();
        fs::write(d.join("canary/file"), b"canary").unwrap();
        d
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, tar)) = data.split_first() else { return };
    let sb = sandbox();
    let root = sb.join("root");
    let _ = fs::remove_dir_all(&root);
    fs::create_dir(&root).unwrap();
    let format = if mode & 1 == 0 { DiffFormat::Overlay } else { DiffFormat::Merged };
    let opts = ApplyOptions { format, lowers: Vec::new(), before_lower_lookup: None, split: None };
    let _ = apply(tar, &root, &opts);
    let mut names: Vec<String> =
        fs::read_dir(sb).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    assert_eq!(names, ["canary", "root"], "the apply wrote beside its target");
    let canary: Vec<String> = fs::read_dir(sb.join("canary"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(canary, ["file"], "the apply wrote into the canary directory");
    assert_eq!(fs::read(sb.join("canary/file")).unwrap(), b"canary", "the apply changed the canary");
});
