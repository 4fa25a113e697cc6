//! `system check`: nothing found on a healthy store that has been used
//! (builds, commits, volumes, a running container, an image mount), and
//! each planted fault found and named with what it affects.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::*;

/// A store that has seen some use: a loaded base, a build with COPY and
/// RUN, a container with a named volume that wrote and exited, a commit of
/// it, a running container, an image mounted.
fn used_store() -> Strata {
    let s = Strata::new("overlay");
    let a = s.write("base.tar", &docker_archive(&[TestImage::new("base:1", vec![busybox_layer()])]));
    s.ok(&["load", "-q", "-i", a.to_str().unwrap()]);
    let ctx = s.path("ctx");
    fs::create_dir(&ctx).unwrap();
    fs::write(ctx.join("data"), "some data\n").unwrap();
    fs::write(ctx.join("Dockerfile"), "FROM base:1\nCOPY data /srv/data\nRUN echo built > /srv/built\n").unwrap();
    s.ok(&["build", "-q", "-t", "built:1", ctx.to_str().unwrap()]);
    s.ok(&[
        "run",
        "--network",
        "none",
        "--name",
        "writer",
        "-v",
        "vol:/v",
        "built:1",
        "sh",
        "-c",
        "echo hi > /v/f; echo x > /srv/x",
    ]);
    s.ok(&["commit", "writer", "committed:1"]);
    s.ok(&["run", "-d", "--network", "none", "--name", "sleeper", "committed:1", "sleep", "1000"]);
    s.ok(&["image", "mount", "base:1"]);
    s
}

fn check(s: &Strata, quick: bool) -> (i32, serde_json::Value) {
    let mut args = vec!["system", "check", "--format", "json"];
    if quick {
        args.push("--quick");
    }
    let (code, out, err) = s.code(&args);
    assert!(code == 0 || code == 1, "{err}");
    (code, serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}{err}")))
}

/// The (kind, object) of each problem found.
fn found(v: &serde_json::Value) -> Vec<(String, String)> {
    v["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["kind"].as_str().unwrap().to_string(), p["object"].as_str().unwrap().to_string()))
        .collect()
}

fn assert_clean(s: &Strata) {
    assert_check_clean(s);
}

fn layer_of(s: &Strata, image: &str, top: usize) -> String {
    let v: serde_json::Value = serde_json::from_str(&s.ok(&["inspect", image])).unwrap();
    let layers = v[0]["Layers"].as_array().unwrap();
    layers[layers.len() - 1 - top]["ChainID"].as_str().unwrap().to_string()
}

fn layer_path(s: &Strata, chain: &str) -> PathBuf {
    s.root().join("layers").join(chain.trim_start_matches("sha256:"))
}

fn blob_path(s: &Strata, digest: &str) -> PathBuf {
    s.root().join("blobs/sha256").join(digest.trim_start_matches("sha256:"))
}

fn flip_byte(p: &Path) {
    let mut b = fs::read(p).unwrap();
    b[0] ^= 0x20;
    fs::write(p, b).unwrap();
}

fn cleanup(s: &Strata) {
    s.ok(&["rm", "-f", "sleeper"]);
    s.ok(&["image", "unmount", "base:1"]);
}

#[test]
fn a_used_store_checks_clean() {
    let s = used_store();
    assert_clean(&s);
    let (_, v) = check(&s, false);
    assert_eq!(v["checked"]["containers"], 2);
    assert_eq!(v["checked"]["volumes"], 1);
    cleanup(&s);
}

#[test]
fn each_planted_fault_is_found_and_names_what_it_affects() {
    let s = used_store();
    let built = s.image_id("built:1");
    let run_layer = layer_of(&s, "built:1", 0);
    let affects_built = |v: &serde_json::Value| {
        v["problems"][0]["affects"].as_array().unwrap().iter().any(|a| a == "image docker.io/library/built:1")
    };

    // A flipped byte in a blob (built:1's config): found by the full check only.
    let config = blob_path(&s, &built);
    let saved = fs::read(&config).unwrap();
    flip_byte(&config);
    let (code, v) = check(&s, false);
    assert_eq!(code, 1);
    assert!(found(&v).contains(&("blob-corrupt".into(), built.clone())), "{v:#}");
    fs::write(&config, &saved).unwrap();
    assert_clean(&s);

    // A flipped byte in a layer's file.
    let file = layer_path(&s, &run_layer).join("diff/srv/built");
    let saved = fs::read(&file).unwrap();
    flip_byte(&file);
    let (code, v) = check(&s, false);
    assert_eq!((code, found(&v)), (1, vec![("layer-corrupt".to_string(), run_layer.clone())]), "{v:#}");
    assert!(affects_built(&v), "{v:#}");
    fs::write(&file, &saved).unwrap();
    assert_clean(&s);

    // A layer directory removed (its record left without it).
    let dir = layer_path(&s, &run_layer);
    let aside = s.path("aside");
    fs::rename(&dir, &aside).unwrap();
    let (code, v) = check(&s, true);
    assert_eq!(code, 1);
    assert!(found(&v).contains(&("layer-missing".into(), run_layer.clone())), "{v:#}");
    assert!(affects_built(&v), "{v:#}");
    fs::rename(&aside, &dir).unwrap();
    assert_clean(&s);

    // A blob removed (built:1's manifest).
    let v: serde_json::Value = serde_json::from_str(&s.ok(&["inspect", "built:1"])).unwrap();
    let manifest = v[0]["Digest"].as_str().unwrap().to_string();
    fs::rename(blob_path(&s, &manifest), &aside).unwrap();
    let (code, v) = check(&s, true);
    assert_eq!((code, found(&v)), (1, vec![("blob-missing".to_string(), manifest.clone())]), "{v:#}");
    fs::rename(&aside, blob_path(&s, &manifest)).unwrap();
    assert_clean(&s);

    // A layer directory without a record.
    let stray = s.root().join("layers").join("ab".repeat(32));
    fs::create_dir_all(stray.join("diff")).unwrap();
    let (code, v) = check(&s, true);
    assert_eq!((code, found(&v)), (1, vec![("layer-orphan".to_string(), stray.display().to_string())]), "{v:#}");
    fs::remove_dir_all(&stray).unwrap();
    assert_clean(&s);

    // A mount nothing holds: an image mount of no image. (The root of a
    // container that is not running is unmounted by the next command's sweep.)
    let target = s.root().join("mounts").join("ef".repeat(32));
    fs::create_dir_all(&target).unwrap();
    let m = std::process::Command::new("mount").args(["-t", "tmpfs", "stale"]).arg(&target).status().unwrap();
    assert!(m.success());
    let (code, v) = check(&s, true);
    let unmounted = std::process::Command::new("umount").arg(&target).status().unwrap();
    assert!(unmounted.success());
    assert_eq!((code, found(&v)), (1, vec![("mount-stale".to_string(), target.display().to_string())]), "{v:#}");
    assert_clean(&s);
    cleanup(&s);
}

#[test]
fn repair_fixes_what_a_good_copy_allows_and_names_what_it_cannot() {
    let s = used_store();
    // An image whose layer is kept as its blob (import keeps the tarball);
    // not base:1's layer (that one is kept as a tar-split).
    let bb = fs::read("/bin/busybox").unwrap();
    let tar = LayerTar::new().dir("bin").file_mode("bin/busybox", &bb, 0o755).symlink("bin/sh", "busybox");
    let tarball = s.write("rootfs.tar", &tar.file("imported", b"yes\n").build());
    s.ok(&["import", tarball.to_str().unwrap(), "imp:1"]);
    let imported = layer_of(&s, "imp:1", 0);
    let busybox = layer_path(&s, &imported).join("diff/bin/busybox");
    assert!(busybox.is_file());

    // A damaged file in it, a stray layer directory and a stale mount, at once.
    flip_byte(&busybox);
    let stray = s.root().join("layers").join("cd".repeat(32));
    fs::create_dir_all(stray.join("diff")).unwrap();
    let target = s.root().join("mounts").join("ef".repeat(32));
    fs::create_dir_all(&target).unwrap();
    assert!(std::process::Command::new("mount")
        .args(["-t", "tmpfs", "stale"])
        .arg(&target)
        .status()
        .unwrap()
        .success());
    let (code, v) = check(&s, false);
    assert_eq!(code, 1);
    assert_eq!(found(&v).len(), 3, "{v:#}");
    let (code, out, err) = s.code(&["system", "check", "--repair"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(out.lines().filter(|l| l.starts_with("fixed: ")).count(), 3, "{out}");
    assert!(!stray.exists() && !s.ok(&["inspect", "--format", "{{.State.Status}}", "sleeper"]).contains("exited"));
    assert_clean(&s);
    assert_eq!(s.ok(&["run", "--rm", "--network", "none", "imp:1", "sh", "-c", "echo ok"]), "ok\n");

    // The layer's directory gone altogether: unpacked again from the blob.
    fs::remove_dir_all(layer_path(&s, &imported)).unwrap();
    let (code, out, err) = s.code(&["system", "check", "--repair"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_clean(&s);
    assert_eq!(s.ok(&["run", "--rm", "--network", "none", "imp:1", "sh", "-c", "echo ok"]), "ok\n");

    // A layer kept as a tar-split has no other copy here: said, not "fixed".
    let run_layer = layer_of(&s, "built:1", 0);
    flip_byte(&layer_path(&s, &run_layer).join("diff/srv/built"));
    let (code, out, _) = s.code(&["system", "check", "--repair"]);
    assert_eq!(code, 1, "{out}");
    let line = out.lines().find(|l| l.contains(&run_layer)).unwrap_or_default();
    assert!(line.starts_with("NOT fixed: layer-corrupt") && line.contains("built:1"), "{out}");
    cleanup(&s);
}

/// Run a command as if in another boot of the machine.
fn in_boot(s: &Strata, boot: &str, args: &[&str]) -> String {
    let o = s.command().args(args).env("STRATA_TEST_BOOT_ID", boot).output().unwrap();
    assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

#[test]
fn layers_made_before_a_reboot_and_never_synced_are_verified_once_after_it() {
    let s = Strata::new("overlay");
    let bb = fs::read("/bin/busybox").unwrap();
    let tar = LayerTar::new().dir("bin").file_mode("bin/busybox", &bb, 0o755).symlink("bin/sh", "busybox");
    let tarball = s.write("rootfs.tar", &tar.build());
    // Made in the boot before: an imported layer (its blob kept) and a loaded one (a tar-split).
    in_boot(&s, "boot-before", &["import", tarball.to_str().unwrap(), "imp:1"]);
    let other = LayerTar::new().dir("etc").file("etc/motd", b"loaded before the reboot\n").build();
    let archive = s.write("other.tar", &docker_archive(&[TestImage::new("other:1", vec![other])]));
    in_boot(&s, "boot-before", &["load", "-q", "-i", archive.to_str().unwrap()]);
    let top = |image: &str| {
        let v: serde_json::Value = serde_json::from_str(&in_boot(&s, "boot-before", &["inspect", image])).unwrap();
        layer_path(&s, v[0]["Layers"][0]["ChainID"].as_str().unwrap())
    };
    let busybox = top("imp:1").join("diff/bin/busybox");
    let motd = top("other:1").join("diff/etc/motd");

    // What a power loss does to writes the kernel had not flushed: files left empty.
    fs::write(&busybox, b"").unwrap();
    fs::write(&motd, b"").unwrap();
    // Still in that boot, nothing is verified: the damage stays.
    in_boot(&s, "boot-before", &["images"]);
    assert_eq!(fs::metadata(&busybox).unwrap().len(), 0);

    // The first command after the reboot verifies both: the one with a blob is unpacked again.
    let o = s.command().args(["images"]).output().unwrap();
    assert!(o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("unpacked again from its blob"), "{err}");
    assert_eq!(fs::read(&busybox).unwrap(), bb);
    // The tar-split one has no other copy: system check names its image.
    let (code, v) = check(&s, false);
    assert_eq!(code, 1);
    let p = &v["problems"][0];
    assert_eq!(
        (p["kind"].as_str(), p["affects"][0].as_str()),
        (Some("layer-corrupt"), Some("image docker.io/library/other:1")),
        "{v:#}"
    );
    // Once: the next command verifies nothing again.
    let o = s.command().args(["images"]).output().unwrap();
    assert!(o.status.success() && o.stderr.is_empty(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn repair_removes_a_layer_with_no_good_copy_and_marks_its_images_damaged_until_loaded_again() {
    let s = Strata::new("overlay");
    let own = LayerTar::new().dir("etc").file("etc/motd", b"the only copy\n").build();
    let archive = s.write("other.tar", &docker_archive(&[TestImage::new("other:1", vec![busybox_layer(), own])]));
    s.ok(&["load", "-q", "-i", archive.to_str().unwrap()]);
    s.ok(&["create", "--network", "none", "--name", "idle", "other:1", "true"]);
    // A tar-split layer keeps no blob: a flipped byte has no other copy here.
    let top = layer_of(&s, "other:1", 0);
    flip_byte(&layer_path(&s, &top).join("diff/etc/motd"));

    let (code, out, err) = s.code(&["system", "check", "--repair"]);
    assert_eq!(code, 1, "{out}{err}");
    let line = out.lines().find(|l| l.contains(&top)).unwrap_or_default();
    assert!(line.starts_with("NOT fixed: layer-corrupt"), "{out}");
    assert!(line.contains("marked damaged other:1") && line.contains("container(s) idle cannot start"), "{out}");
    assert!(!layer_path(&s, &top).exists(), "the damaged layer is removed");
    let (code, v) = check(&s, true);
    assert_eq!(code, 1);
    assert_eq!(found(&v), vec![("image-damaged".to_string(), s.image_id("other:1"))], "{v:#}");
    assert_eq!(v["problems"][0]["affects"], serde_json::json!(["image docker.io/library/other:1", "container idle"]));

    // Used, it is refused with what to do; nothing half works.
    let (code, err) = s.fails(&["run", "--rm", "--network", "none", "other:1", "cat", "/etc/motd"]);
    assert_eq!(code, 125);
    assert!(err.contains("is damaged") && err.contains("pull or load it again"), "{err}");
    let (_, err) = s.fails(&["start", "idle"]);
    assert!(err.contains("is damaged"), "{err}");

    // Loaded again: the layer is unpacked anew and the mark goes.
    s.ok(&["load", "-q", "-i", archive.to_str().unwrap()]);
    assert_clean(&s);
    assert_eq!(s.ok(&["run", "--rm", "--network", "none", "other:1", "cat", "/etc/motd"]), "the only copy\n");
    s.ok(&["start", "idle"]);
}
