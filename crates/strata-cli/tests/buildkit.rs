//! The Dockerfile reference, rule by rule, against BuildKit (issue 18).
//! Each directory under `tests/buildkit/` is a build context whose
//! Dockerfile exercises one rule (optionally with `build-args`, one
//! `K=V` per line, `secrets`, one `id=ID,src=FILE` per line, `target`, a
//! stage name, `fails`, saying why both builders must refuse it, and
//! `mount-stubs`, the directories BuildKit 20.10 leaves behind for RUN
//! --mount targets, which BuildKit since v0.11 removes as a bug
//! (moby/buildkit#3307, #3314) and strata must not keep). Each is built by strata and
//! by Debian's dockerd 20.10 with BuildKit (started by the test in its own
//! network namespace, data root and socket) on the same base image, and
//! both images are saved: the flattened filesystems (paths, types, modes,
//! owners, sizes, contents, link targets) and the configs (Env, Cmd,
//! Entrypoint, WorkingDir, User, ExposedPorts, Volumes, Labels, StopSignal,
//! Healthcheck, OnBuild, Shell) must be equal, with either storage driver.
//! A failing case names its first differing path or field.

mod common;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use common::docker::Docker;
use common::*;

/// A flattened entry: kind, mode, uid, gid, size, content hash or link target.
type Entry = (char, u32, u64, u64, u64, String);

/// The config fields compared.
const FIELDS: &[&str] = &[
    "Env",
    "Cmd",
    "Entrypoint",
    "WorkingDir",
    "User",
    "ExposedPorts",
    "Volumes",
    "Labels",
    "StopSignal",
    "Healthcheck",
    "OnBuild",
    "Shell",
];

/// The files of a docker-archive's first image, its layers applied in
/// order (whiteouts and opaque directories included), and its config.
fn flatten(archive: &[u8]) -> (BTreeMap<String, Entry>, serde_json::Value) {
    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut ar = tar::Archive::new(archive);
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().display().to_string();
        let mut b = Vec::new();
        e.read_to_end(&mut b).unwrap();
        files.insert(name, b);
    }
    let manifest: serde_json::Value = serde_json::from_slice(&files["manifest.json"]).unwrap();
    let config: serde_json::Value = serde_json::from_slice(&files[manifest[0]["Config"].as_str().unwrap()]).unwrap();
    let mut tree: BTreeMap<String, Entry> = BTreeMap::new();
    for layer in manifest[0]["Layers"].as_array().unwrap() {
        let mut added = Vec::new();
        let mut ar = tar::Archive::new(&files[layer.as_str().unwrap()][..]);
        for e in ar.entries().unwrap() {
            let mut e = e.unwrap();
            let path = e.path().unwrap().display().to_string();
            let path = path.trim_start_matches("./").trim_end_matches('/').to_string();
            if path.is_empty() || path == "." {
                continue;
            }
            let (dir, name) = match path.rsplit_once('/') {
                Some((d, n)) => (format!("{d}/"), n.to_string()),
                None => (String::new(), path.clone()),
            };
            if name == ".wh..wh..opq" {
                tree.retain(|k, _| !k.starts_with(&dir));
                continue;
            }
            if let Some(gone) = name.strip_prefix(".wh.") {
                let gone = format!("{dir}{gone}");
                tree.retain(|k, _| k != &gone && !k.starts_with(&format!("{gone}/")));
                continue;
            }
            let h = e.header().clone();
            let (kind, data) = tar_entry_data(&mut e);
            let size = if kind == 'f' { h.size().unwrap() } else { 0 };
            added.push((path, (kind, h.mode().unwrap() & 0o7777, h.uid().unwrap(), h.gid().unwrap(), size, data)));
        }
        for (path, entry) in added {
            // A file replacing a directory (or the reverse) replaces what was under it.
            if entry.0 != 'd' {
                tree.retain(|k, _| !k.starts_with(&format!("{path}/")));
            }
            tree.insert(path, entry);
        }
    }
    (tree, config["config"].clone())
}

/// A config field with null, missing and empty strings alike.
fn field(config: &serde_json::Value, name: &str) -> serde_json::Value {
    match &config[name] {
        serde_json::Value::String(s) if s.is_empty() => serde_json::Value::Null,
        v => v.clone(),
    }
}

/// The first difference between two builds, if any.
fn first_difference(
    ours: &(BTreeMap<String, Entry>, serde_json::Value),
    theirs: &(BTreeMap<String, Entry>, serde_json::Value),
    stubs: &[String],
) -> Option<String> {
    for p in stubs {
        if ours.0.contains_key(p) {
            return Some(format!("/{p}: a RUN --mount stub strata must not keep"));
        }
    }
    for f in FIELDS {
        let (a, b) = (field(&ours.1, f), field(&theirs.1, f));
        if a != b {
            return Some(format!("config {f}: strata {a}, BuildKit {b}"));
        }
    }
    let paths: std::collections::BTreeSet<&String> = ours.0.keys().chain(theirs.0.keys()).collect();
    for p in paths {
        if stubs.contains(p) {
            continue;
        }
        let (a, b) = (ours.0.get(p), theirs.0.get(p));
        if a != b {
            return Some(format!("/{p}: strata {a:?}, BuildKit {b:?}"));
        }
    }
    None
}

/// The base every case builds on (`FROM base`): busybox, and users and groups to name.
fn base_archive() -> Vec<u8> {
    let etc = LayerTar::new()
        .dir("etc")
        .file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n")
        .file("etc/group", b"root:x:0:\ndaemon:x:1:\nstaff:x:50:app\napp:x:1000:\n")
        .build();
    docker_archive(&[TestImage::new("base:latest", vec![busybox_layer(), etc])])
}

fn cases() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/buildkit");
    let mut out: Vec<PathBuf> =
        std::fs::read_dir(&root).unwrap().map(|e| e.unwrap().path()).filter(|p| p.is_dir()).collect();
    out.sort();
    out
}

/// Build flags from a case's `build-args`, `secrets` and `target` files.
fn flags(case: &Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(args) = std::fs::read_to_string(case.join("build-args")) {
        for l in args.lines().filter(|l| !l.trim().is_empty()) {
            out.extend(["--build-arg".to_string(), l.to_string()]);
        }
    }
    if let Ok(specs) = std::fs::read_to_string(case.join("secrets")) {
        for l in specs.lines().filter(|l| !l.trim().is_empty()) {
            // `id=ID,src=FILE`, FILE relative to the case.
            let (id, src) = l.split_once(",src=").expect("id=ID,src=FILE");
            out.extend(["--secret".to_string(), format!("{id},src={}", case.join(src).display())]);
        }
    }
    if let Ok(t) = std::fs::read_to_string(case.join("target")) {
        out.extend(["--target".to_string(), t.trim().to_string()]);
    }
    out
}

#[test]
fn every_case_builds_the_same_filesystem_and_config_as_buildkit_on_both_drivers() {
    let stores = [Strata::new("overlay"), Strata::new("copy")];
    let d = Docker::start(&stores[0]);
    let base = stores[0].write("base.tar", &base_archive());
    for s in &stores {
        s.ok(&["load", "-q", "-i", base.to_str().unwrap()]);
    }
    d.ok(&["load", "-q", "-i", base.to_str().unwrap()]);
    let cases = cases();
    assert!(cases.len() >= 60, "the corpus is there: {cases:?}");
    let mut differences = Vec::new();
    for case in &cases {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let tag = format!("case-{}", name.to_ascii_lowercase());
        let dir = case.to_str().unwrap();
        let flags = flags(case);
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        let mut dargs = vec!["build", "-q", "--network", "host", "-t", &tag];
        dargs.extend(&flags);
        dargs.push(dir);
        let theirs = d.run(&dargs);
        let theirs_tree = theirs.status.success().then(|| flatten(&d.ok_bytes(&["save", &tag])));
        // A case with a `fails` file is one both must refuse.
        let refused = case.join("fails").exists();
        // The one documented difference: RUN --mount stubs BuildKit 20.10 leaves and later BuildKit removes.
        let stubs: Vec<String> = std::fs::read_to_string(case.join("mount-stubs"))
            .map(|t| t.lines().map(|l| l.trim().trim_matches('/').to_string()).filter(|l| !l.is_empty()).collect())
            .unwrap_or_default();
        for (s, driver) in stores.iter().zip(["overlay", "copy"]) {
            let mut args = vec!["build", "-q", "-t", &tag];
            args.extend(&flags);
            args.push(dir);
            let ours = s.run(&args);
            match (ours.status.success(), theirs.status.success()) {
                (true, true) if !refused => {}
                (false, false) if refused => continue,
                (a, b) => {
                    differences.push(format!(
                        "{name} ({driver}): strata {} ({}), BuildKit {} ({})",
                        if a { "built" } else { "failed" },
                        String::from_utf8_lossy(&ours.stderr).trim(),
                        if b { "built" } else { "failed" },
                        String::from_utf8_lossy(&theirs.stderr).trim()
                    ));
                    continue;
                }
            }
            let saved = s.path(&format!("{tag}.tar"));
            s.ok(&["save", "-o", saved.to_str().unwrap(), &tag]);
            let ours = flatten(&std::fs::read(&saved).unwrap());
            if let Some(diff) = first_difference(&ours, theirs_tree.as_ref().expect("BuildKit built it"), &stubs) {
                differences.push(format!("{name} ({driver}): {diff}"));
            }
        }
    }
    assert!(
        differences.is_empty(),
        "{} builds of {} cases differ from BuildKit:\n{}",
        differences.len(),
        cases.len(),
        differences.join("\n")
    );
}
