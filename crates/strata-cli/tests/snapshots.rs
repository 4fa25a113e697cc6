//! The snapshot conformance suite, run against every backend through the
//! library: layers applied in each backend's form, stacked into a view,
//! mounted for real, and compared with the tree the OCI rules give. Also
//! layer-tar round trips and determinism, and stacks deeper than overlayfs
//! allows.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use common::*;
use strata::layer::{apply, write_diff, ApplyOptions, WriteOptions};
use strata::snapshot::{mount, Copy, Overlay, Snapshotter};

type Shape = BTreeMap<String, (char, u32, u32, u32, String)>;

/// Unmounts on drop, so a failing assertion leaves no mount behind.
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = mount::unmount(&self.0);
    }
}

/// Apply `layers` (bottom first) with a backend under `base`, view them, and
/// return the merged tree.
fn stack(snap: &dyn Snapshotter, base: &Path, layers: &[Vec<u8>]) -> BTreeMap<String, Node> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    for (i, tar) in layers.iter().enumerate() {
        let dir = base.join(format!("layers/{i}/diff"));
        fs::create_dir_all(&dir).unwrap();
        snap.prepare(&dir, dirs.last().map(|p| p.as_path())).unwrap();
        let lowers: Vec<PathBuf> = dirs.iter().rev().cloned().collect();
        let opts = ApplyOptions { format: snap.format(), lowers, before_lower_lookup: None, split: None };
        apply(tar.as_slice(), &dir, &opts).unwrap_or_else(|e| panic!("layer {i}: {e}"));
        dirs.push(dir);
    }
    let target = base.join("view");
    fs::create_dir_all(&target).unwrap();
    let top_first: Vec<PathBuf> = dirs.iter().rev().cloned().collect();
    let mounts = snap.view(&top_first, &target).unwrap();
    mount::mount_all(&mounts).unwrap();
    let _guard = Mounted(target.clone());
    tree(&target)
}

fn conformance_layers() -> Vec<Vec<u8>> {
    let l1 = LayerTar::new()
        .dir("etc")
        .file("etc/keep", b"keep")
        .file("etc/gone", b"gone")
        .dir("etc/conf.d")
        .file("etc/conf.d/a.conf", b"a")
        .dir("data")
        .file("data/old", b"old")
        .dir("data/sub")
        .file("data/sub/deep", b"deep")
        .file("was-file", b"file")
        .file("shared", b"shared bytes")
        .symlink("link", "etc/keep")
        .build();
    let l2 = LayerTar::new()
        .dir("etc")
        .whiteout("etc/gone")
        .hardlink("hard", "shared")
        .file("etc/keep", b"changed in 2")
        .build();
    let l3 = LayerTar::new()
        .dir("data")
        .opaque("data")
        .file("data/new", b"new")
        .dir("data/sub")
        .file("data/sub/fresh", b"fresh")
        .file("etc/conf.d", b"a file replaces a directory")
        .dir("was-file")
        .file("was-file/inside", b"a directory replaces a file")
        .whiteout("link")
        .build();
    vec![l1, l2, l3]
}

fn expected() -> Vec<(&'static str, char, &'static [u8])> {
    vec![
        ("data", 'd', b""),
        ("data/new", 'f', b"new"),
        ("data/sub", 'd', b""),
        ("data/sub/fresh", 'f', b"fresh"),
        ("etc", 'd', b""),
        ("etc/conf.d", 'f', b"a file replaces a directory"),
        ("etc/keep", 'f', b"changed in 2"),
        ("hard", 'f', b"shared bytes"),
        ("shared", 'f', b"shared bytes"),
        ("was-file", 'd', b""),
        ("was-file/inside", 'f', b"a directory replaces a file"),
    ]
}

fn check_conformance(snap: &dyn Snapshotter, base: &Path) {
    let t = stack(snap, base, &conformance_layers());
    let got: Vec<(String, char)> = t.iter().map(|(k, n)| (k.clone(), n.kind)).collect();
    let want: Vec<(String, char)> = expected().iter().map(|(k, c, _)| (k.to_string(), *c)).collect();
    assert_eq!(got, want, "merged tree ({:?})", snap.driver());
    for (path, kind, content) in expected() {
        if kind == 'f' {
            assert_eq!(t[path].data, sha256_hex(content), "{path}");
        }
    }
    assert_eq!(t["hard"].ino, t["shared"].ino, "hardlink to a lower file keeps one inode");
}

#[test]
fn overlay_conformance() {
    let dir = tempfile::tempdir_in(test_tmp()).unwrap();
    check_conformance(&Overlay::new(dir.path()), dir.path());
}

#[test]
fn copy_conformance() {
    let dir = tempfile::tempdir_in(test_tmp()).unwrap();
    check_conformance(&Copy, dir.path());
}

#[test]
fn image_layers_are_never_written_by_a_view() {
    // The view is read-only: writing into it fails and the layer dirs stay as they were.
    for snap in [Box::new(Overlay::new(&test_tmp())) as Box<dyn Snapshotter>, Box::new(Copy)] {
        let dir = tempfile::tempdir_in(test_tmp()).unwrap();
        let layers = conformance_layers();
        let _ = stack(snap.as_ref(), dir.path(), &layers);
        let before = tree(&dir.path().join("layers"));
        let target = dir.path().join("view");
        let mounts = snap
            .view(
                &[dir.path().join("layers/2/diff"), dir.path().join("layers/1/diff"), dir.path().join("layers/0/diff")],
                &target,
            )
            .unwrap();
        mount::mount_all(&mounts).unwrap();
        let guard = Mounted(target.clone());
        let err = fs::write(target.join("etc/keep"), b"x").unwrap_err();
        assert_eq!(err.raw_os_error(), Some(30), "EROFS: {err}");
        drop(guard);
        assert_eq!(tree(&dir.path().join("layers")), before);
    }
}

/// More layers than the backend stacks: the bottom ones are flattened once
/// and the merged tree is the same as the copy backend's.
#[test]
fn overlay_flattens_stacks_deeper_than_its_limit() {
    let mut layers = Vec::new();
    for i in 0..12 {
        let mut t = LayerTar::new().dir("d").file(&format!("d/f{i}"), format!("{i}").as_bytes());
        if i > 0 {
            t = t.whiteout(&format!("d/f{}", i - 1));
        }
        if i == 6 {
            t = t.opaque("d").file("d/after-opaque", b"x");
        }
        layers.push(t.build());
    }
    let a = tempfile::tempdir_in(test_tmp()).unwrap();
    let deep = stack(&Overlay::with_max_lowers(a.path(), 4), a.path(), &layers);
    assert!(a.path().join("layers/8/flat").is_dir(), "bottom of the stack flattened beside its top layer");
    let b = tempfile::tempdir_in(test_tmp()).unwrap();
    let full = stack(&Copy, b.path(), &layers);
    assert_eq!(shape(&deep), shape(&full));
    assert_eq!(deep.keys().cloned().collect::<Vec<_>>(), vec!["d", "d/after-opaque", "d/f11"]);
}

/// A real image deeper than overlayfs' 500-layer limit loads and mounts.
#[test]
fn image_deeper_than_the_kernel_limit_mounts() {
    let s = Strata::new("overlay");
    let mut layers = vec![busybox_layer()];
    for i in 0..510 {
        layers.push(LayerTar::new().dir("deep").file(&format!("deep/{i}"), b"x").build());
    }
    let a = s.write("deep.tar", &docker_archive(&[TestImage::new("deep:510", layers)]));
    s.ok(&["load", "-i", a.to_str().unwrap()]);
    let t = s.image_tree("deep:510");
    assert_eq!(t.keys().filter(|k| k.starts_with("deep/")).count(), 510);
    assert!(t.contains_key("bin/busybox"));
}

fn write_tar(dir: &Path, clamp: Option<u64>) -> Vec<u8> {
    write_diff(dir, Vec::new(), &WriteOptions { mtime_clamp: clamp }).unwrap()
}

#[test]
fn layer_tar_round_trips_and_is_deterministic() {
    let snap = Overlay::new(&test_tmp());
    let a = tempfile::tempdir_in(test_tmp()).unwrap();
    let layers = conformance_layers();
    let _ = stack(&snap, a.path(), &layers);
    // Layer 3 in overlay form holds whiteouts and an opaque dir.
    let l3 = a.path().join("layers/2/diff");
    let t1 = write_tar(&l3, Some(1_000));
    let t2 = write_tar(&l3, Some(1_000));
    assert_eq!(t1, t2, "same directory, same bytes");
    let names: Vec<String> = tar::Archive::new(t1.as_slice())
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    assert!(names.contains(&".wh.link".to_string()), "{names:?}");
    assert!(names.contains(&"data/.wh..wh..opq".to_string()), "{names:?}");
    // Entries come in a fixed order: within each directory, sorted by the name
    // they stand for (a whiteout `.wh.x` where `x` would be).
    let mut by_dir: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for n in &names {
        let n = n.trim_end_matches('/');
        let (dir, base) = n.rsplit_once('/').unwrap_or(("", n));
        by_dir.entry(dir.to_string()).or_default().push(base.to_string());
    }
    for (dir, entries) in &by_dir {
        let plain: Vec<&str> =
            entries.iter().filter(|e| !e.contains(".wh..wh..opq")).map(|e| e.trim_start_matches(".wh.")).collect();
        let mut sorted = plain.clone();
        sorted.sort();
        assert_eq!(plain, sorted, "entries of {dir:?} in name order");
    }
    for e in tar::Archive::new(t1.as_slice()).entries().unwrap() {
        assert!(e.unwrap().header().mtime().unwrap() <= 1_000, "mtime clamped");
    }
    // Applying what was written gives the same directory back.
    let b = tempfile::tempdir_in(test_tmp()).unwrap();
    let opts = ApplyOptions { format: snap.format(), lowers: vec![], before_lower_lookup: None, split: None };
    apply(t1.as_slice(), b.path(), &opts).unwrap();
    let strip_times = |t: BTreeMap<String, Node>| -> Shape { shape(&t) };
    assert_eq!(strip_times(tree(b.path())), strip_times(tree(&l3)));
    // Determinism across directories: the copy, made in another order on other
    // inodes at another time, writes the same bytes.
    assert_eq!(write_tar(b.path(), Some(1_000)), t1, "another directory with the same content, same bytes");
}

/// A layer applied with a tar-split rebuilds the exact tar bytes from its
/// directory; a layer that overwrote its own file says it cannot.
#[test]
fn tar_split_rebuilds_the_layer_byte_for_byte() {
    use std::cell::RefCell;
    use std::io::Read;
    use strata::layer::split::{Recorder, Split, SplitReader};
    let tar = LayerTar::new()
        .dir("etc")
        .file("etc/a", &vec![1u8; 10_000])
        .file("etc/empty", b"")
        .symlink("etc/l", "a")
        .hardlink("etc/h", "etc/a")
        .xattr_file("x", b"xattr'd", "user.k", b"v")
        .file(&format!("{}/long", "n".repeat(150)), b"long path")
        .whiteout("gone")
        .build();
    let dir = tempfile::tempdir_in(test_tmp()).unwrap();
    let diff = dir.path().join("diff");
    fs::create_dir(&diff).unwrap();
    let split = RefCell::new(Split::default());
    let opts = ApplyOptions {
        format: strata::layer::DiffFormat::Overlay,
        lowers: vec![],
        before_lower_lookup: None,
        split: Some(&split),
    };
    let mut rec = Recorder::new(tar.as_slice(), Some(&split));
    apply(&mut rec, &diff, &opts).unwrap();
    std::io::copy(&mut rec, &mut std::io::sink()).unwrap();
    drop(rec);
    let split = split.into_inner();
    assert!(split.is_usable());
    let sp = dir.path().join("split.zst");
    split.save(&sp).unwrap();
    let mut rebuilt = Vec::new();
    SplitReader::open(&sp, &diff).unwrap().read_to_end(&mut rebuilt).unwrap();
    assert_eq!(sha256_hex(&rebuilt), sha256_hex(&tar));
    assert!(fs::metadata(&sp).unwrap().len() < 2_000, "the split holds headers, not contents");

    // The same path written twice: the first content is gone from the directory.
    let twice = LayerTar::new().file("f", b"first").file("f", b"second").build();
    let d2 = dir.path().join("diff2");
    fs::create_dir(&d2).unwrap();
    let split = RefCell::new(Split::default());
    let opts = ApplyOptions {
        format: strata::layer::DiffFormat::Overlay,
        lowers: vec![],
        before_lower_lookup: None,
        split: Some(&split),
    };
    apply(Recorder::new(twice.as_slice(), Some(&split)), &d2, &opts).unwrap();
    assert!(!split.into_inner().is_usable());
}
