//! A store on a small filesystem of the test's own (ext4 in a file,
//! loop-mounted at the store's root, no blocks reserved for root): a pull
//! and a build that fill it fail with an error that says the disk is full
//! and what stopped, leave the store as it was, and on a disk filled to the
//! last block the commands that free space or only read still work.

mod common;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::registry::*;
use common::*;

/// An ext4 filesystem of `mb` MiB mounted at the store's root.
fn on_small_fs(s: Strata, mb: u64) -> Strata {
    let image = s.path("fs.img");
    fs::File::create(&image).unwrap().set_len(mb << 20).unwrap();
    let made = Command::new("mkfs.ext4").args(["-q", "-m", "0"]).arg(&image).status().unwrap();
    assert!(made.success(), "mkfs.ext4");
    fs::create_dir(s.root()).unwrap();
    // Unmounted by Strata's drop (every mount under the root), which detaches the loop device.
    let mounted = Command::new("mount").args(["-o", "loop"]).arg(&image).arg(s.root()).status().unwrap();
    assert!(mounted.success(), "mount -o loop");
    s
}

/// Fill the filesystem of `dir` to its last block with a file there.
fn fill(dir: &Path) -> PathBuf {
    let path = dir.join("filler");
    let mut f = fs::File::create(&path).unwrap();
    for chunk in [1 << 20, 4096, 512, 1] {
        let buf = vec![0xa5u8; chunk];
        while f.write_all(&buf).is_ok() {}
    }
    let _ = f.sync_all();
    drop(f);
    let st = Command::new("stat").args(["-f", "-c", "%a"]).arg(dir).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&st.stdout).trim(), "0", "free blocks left on {}", dir.display());
    path
}

/// What a user sees of the store, and that nothing is half made.
fn snapshot(s: &Strata) -> StoreState {
    assert_eq!(s.tmp_entries(), Vec::<String>::new(), "tmp/");
    let root = s.root().display().to_string();
    let mounts: Vec<String> = mounts_under(s).into_iter().filter(|m| *m != root).collect();
    assert_eq!(mounts, Vec::<String>::new(), "mounts but the small filesystem's");
    s.state()
}

fn assert_says_disk_full(s: &Strata, err: &str, verb: &str) {
    let want = format!("no space left on {}: {verb} stopped", s.root().display());
    assert!(err.contains(&want), "expected {want:?} in: {err}");
}

fn load_base(s: &Strata) {
    let a = s.write("base.tar", &docker_archive(&[TestImage::new("base:1", vec![busybox_layer()])]));
    s.ok(&["load", "-q", "-i", a.to_str().unwrap()]);
}

/// On a full disk: reading and freeing commands work, writing ones fail clearly.
fn full_disk_still_reads_and_frees(s: &Strata) {
    s.ok(&["run", "--network", "none", "--name", "done", "base:1", "true"]);
    s.ok(&["tag", "base:1", "second:1"]);
    fill(&s.root());
    s.ok(&["system", "df"]);
    s.ok(&["images"]);
    assert_check_clean(s);
    // The store gave back its reserve, and a load fills it again.
    let more = LayerTar::new().file("more", &random_bytes(8 << 20)).build();
    let archive = s.write("more.tar", &docker_archive(&[TestImage::new("more:1", vec![busybox_layer(), more])]));
    let (code, err) = s.fails(&["load", "-i", archive.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert_says_disk_full(s, &err, "load");
    s.ok(&["rm", "done"]);
    s.ok(&["rmi", "second:1"]);
    s.ok(&["image", "prune", "-a", "-f"]);
    assert_eq!(s.ok(&["images", "-q"]), "");
    assert_eq!(s.layer_dirs(), Vec::<String>::new());
    assert_check_clean(s);
}

#[test]
fn a_pull_that_fills_the_disk_fails_clearly_and_leaves_the_store_as_it_was() {
    let reg = Registry::start();
    // On the host's network to reach the registry; its only container runs with --network none.
    let s = on_small_fs(Strata::on_host_network("overlay"), 48);
    load_base(&s);
    // Random bytes do not compress: 40 MB on the wire and 40 MB unpacked.
    let big = random_bytes(40 << 20);
    let archive = s.write(
        "big.tar",
        &docker_archive(&[TestImage::new("big:1", vec![busybox_layer(), LayerTar::new().file("big", &big).build()])]),
    );
    let reference = format!("{}/big:1", reg.addr);
    skopeo_push(&archive, &reference);
    fs::remove_file(&archive).unwrap();
    let before = snapshot(&s);

    let (code, err) = s.fails(&["pull", "--tls-verify=false", &reference]);
    assert_eq!(code, 1, "{err}");
    assert_says_disk_full(&s, &err, "pull");
    assert_eq!(snapshot(&s), before);
    assert_check_clean(&s);

    full_disk_still_reads_and_frees(&s);
}

#[test]
fn a_build_that_fills_the_disk_fails_clearly_and_leaves_the_store_as_it_was() {
    let s = on_small_fs(Strata::new("overlay"), 48);
    load_base(&s);
    let ctx = s.path("ctx");
    fs::create_dir(&ctx).unwrap();
    fs::write(ctx.join("big"), random_bytes(40 << 20)).unwrap();
    fs::write(ctx.join("Dockerfile"), "FROM base:1\nRUN echo small > /small\nCOPY big /big\n").unwrap();
    let before = snapshot(&s);
    let layers_before = s.layer_dirs().len();

    let (code, err) = s.fails(&["build", "-q", "-t", "big:1", ctx.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert_says_disk_full(&s, &err, "build");
    assert!(err.contains("Dockerfile:3"), "the error names the step: {err}");
    // The RUN before it is cached, as a build that failed for any other reason leaves it.
    let cached_run = s.layer_dirs();
    assert_eq!(cached_run.len(), layers_before + 1, "{cached_run:?}");
    s.ok(&["builder", "prune", "-f"]);
    assert_eq!(snapshot(&s), before);
    assert_check_clean(&s);

    // A RUN that fills it: the command's own error, the same clean store.
    fs::write(ctx.join("Dockerfile"), "FROM base:1\nRUN dd if=/dev/zero of=/fill bs=1M count=100\n").unwrap();
    let (code, err) = s.fails(&["build", "-q", "-t", "big:1", ctx.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("Dockerfile:2"), "{err}");
    assert_eq!(snapshot(&s), before);
    assert_check_clean(&s);

    full_disk_still_reads_and_frees(&s);
}

/// Bytes that do not compress.
fn random_bytes(n: usize) -> Vec<u8> {
    let mut b = vec![0u8; n];
    std::io::Read::read_exact(&mut fs::File::open("/dev/urandom").unwrap(), &mut b).unwrap();
    b
}
