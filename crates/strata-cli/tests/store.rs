//! The image and layer store through the real binary, on both snapshot
//! drivers: whiteouts, sharing, removal, bad input, crashes, concurrency.

#[macro_use]
mod common;

use std::process::Stdio;
use std::time::Duration;

use common::*;

both_drivers!(
    whiteouts_opaque_dirs_and_lower_hardlinks,
    shared_base_is_stored_once_and_rmi_frees_only_its_own,
    truncated_archive_changes_nothing,
    blob_digest_mismatch_changes_nothing,
    dotdot_entry_is_refused,
    write_through_absolute_symlink_is_refused,
    hardlink_through_a_symlink_is_refused,
    load_killed_midway_leaves_a_clean_store,
    concurrent_loads_share_layers,
    import_makes_a_one_layer_image,
    file_metadata_survives_unpack,
);

fn three_layer_image() -> TestImage {
    let l1 = LayerTar::new()
        .dir("etc")
        .file("etc/keep", b"keep")
        .file("etc/gone", b"to be deleted")
        .dir("data")
        .file("data/old", b"old")
        .dir("data/sub")
        .file("data/sub/deep", b"deep")
        .file("shared", b"linked from above")
        .build();
    let l2 = LayerTar::new().dir("etc").whiteout("etc/gone").hardlink("link-to-lower", "shared").build();
    let l3 = LayerTar::new().dir("data").opaque("data").file("data/new", b"new").build();
    TestImage::new("layers:3", vec![l1, l2, l3])
}

fn whiteouts_opaque_dirs_and_lower_hardlinks(driver: &str) {
    let s = Strata::new(driver);
    let img = three_layer_image();
    let a = s.write("img.tar", &docker_archive(&[img]));
    s.ok(&["load", "-i", a.to_str().unwrap()]);
    let t = s.image_tree("layers:3");
    assert!(t.contains_key("etc/keep"));
    assert!(!t.contains_key("etc/gone"), "whiteout in layer 2 must hide etc/gone: {t:?}");
    assert!(
        !t.contains_key("data/old") && !t.contains_key("data/sub") && !t.contains_key("data/sub/deep"),
        "opaque data/ in layer 3: {t:?}"
    );
    assert_eq!(t["data/new"].data, sha256_hex(b"new"));
    assert_eq!(t["link-to-lower"].data, sha256_hex(b"linked from above"));
    assert_eq!(
        t["link-to-lower"].ino, t["shared"].ino,
        "hardlink to a lower-layer file is one inode in the merged tree"
    );
    // No whiteout markers leak into the merged view.
    assert!(t.keys().all(|k| !k.contains(".wh.")), "{t:?}");
    assert!(t.values().all(|n| n.kind != 'c'), "{t:?}");
}

fn shared_base_is_stored_once_and_rmi_frees_only_its_own(driver: &str) {
    let s = Strata::new(driver);
    let base = busybox_layer();
    let top_a = LayerTar::new().file("a.txt", &vec![b'a'; 100_000]).build();
    let top_b = LayerTar::new().file("b.txt", &vec![b'b'; 200_000]).build();
    let a = s.write("a.tar", &docker_archive(&[TestImage::new("app:a", vec![base.clone(), top_a])]));
    let b = s.write("b.tar", &docker_archive(&[TestImage::new("app:b", vec![base.clone(), top_b.clone()])]));
    s.ok(&["load", "-i", a.to_str().unwrap()]);
    s.ok(&["load", "-i", b.to_str().unwrap()]);
    assert_eq!(s.layer_dirs().len(), 3, "base once, plus one top each");
    let base_diff = format!("sha256:{}", sha256_hex(&base));
    let insp: serde_json::Value = serde_json::from_str(&s.ok(&["inspect", "app:a", "app:b"])).unwrap();
    for img in insp.as_array().unwrap() {
        assert_eq!(img["RootFS"]["Layers"][0], base_diff.as_str(), "both images stand on the one base layer");
    }

    let df: serde_json::Value = serde_json::from_str(&s.ok(&["system", "df", "--format", "json"])).unwrap();
    let bb_size = busybox_layer_size();
    assert_eq!(df["layers"], 3);
    assert_eq!(df["shared_size"].as_u64().unwrap(), bb_size, "{df}");
    assert_eq!(df["unique_size"].as_u64().unwrap(), 300_000, "{df}");
    let per_image = df["images"].as_array().unwrap();
    assert!(per_image.iter().all(|i| i["shared_size"].as_u64().unwrap() == bb_size));

    let tree_b_before = s.image_tree("app:b");
    let blobs_before = s.blobs();
    let out = s.ok(&["rmi", "app:a"]);
    assert!(out.contains("Untagged: app:a"), "{out}");
    assert_eq!(s.layer_dirs().len(), 2, "only app:a's own layer is freed");
    assert_eq!(shape(&s.image_tree("app:b")), shape(&tree_b_before));
    // Uncompressed layers keep a tar-split, not a second copy: only configs and manifests are blobs.
    assert_eq!(blobs_before.len(), 4, "{blobs_before:?}");
    // Freed blobs: app:a's config and manifest; nothing of app:b's.
    let blobs_after = s.blobs();
    assert_eq!(blobs_before.len() - blobs_after.len(), 2, "{blobs_before:?} -> {blobs_after:?}");
    let out = s.path("b-saved.tar");
    s.ok(&["save", "-o", out.to_str().unwrap(), "app:b"]);
    let saved = std::fs::read(&out).unwrap();
    assert!(saved.windows(top_b.len()).any(|w| w == top_b.as_slice()), "the layer tar is rebuilt byte for byte");
    let df: serde_json::Value = serde_json::from_str(&s.ok(&["system", "df", "--format", "json"])).unwrap();
    assert_eq!(df["shared_size"], 0);
    assert_eq!(df["unique_size"].as_u64().unwrap(), bb_size + 200_000);
    s.ok(&["rmi", "app:b"]);
    assert!(s.layer_dirs().is_empty());
    assert!(s.blobs().is_empty());
}

/// Load bad input; require a clear error naming `needle` and an unchanged store.
fn assert_load_refused(s: &Strata, archive: &[u8], needle: &str) {
    let before = s.state();
    let p = s.write("bad.tar", archive);
    let (code, err) = s.fails(&["load", "-i", p.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains(needle), "error should name {needle:?}: {err}");
    assert_eq!(s.state(), before, "the store must be as it was");
    assert!(s.tmp_entries().is_empty());
}

/// A store with one image, so "unchanged" means something.
fn seeded(driver: &str) -> Strata {
    let s = Strata::new(driver);
    let a = s.write("seed.tar", &docker_archive(&[TestImage::new("seed:1", vec![busybox_layer()])]));
    s.ok(&["load", "-i", a.to_str().unwrap()]);
    s
}

fn truncated_archive_changes_nothing(driver: &str) {
    let s = seeded(driver);
    let big = LayerTar::new().file("big", &vec![7u8; 300_000]).build();
    let full = docker_archive(&[TestImage::new("trunc:1", vec![busybox_layer(), big])]);
    // Cut inside the second layer's data: the tar index itself is fine up to there.
    for cut in [full.len() / 2, full.len() - 2000, 700] {
        let (_, err) = {
            let before = s.state();
            let p = s.write("cut.tar", &full[..cut]);
            let r = s.fails(&["load", "-i", p.to_str().unwrap()]);
            assert_eq!(s.state(), before, "cut at {cut}");
            r
        };
        assert!(err.contains("cut.tar"), "names the archive: {err}");
        assert!(
            err.contains("truncated")
                || err.contains("unexpected end")
                || err.contains("EOF")
                || err.contains("no entry"),
            "{err}"
        );
    }
}

fn blob_digest_mismatch_changes_nothing(driver: &str) {
    let s = seeded(driver);
    // An OCI layout whose layer blob is not what its name says.
    let layer = LayerTar::new().file("f", b"real").build();
    let tampered = LayerTar::new().file("f", b"evil").build();
    let layer_digest = sha256_hex(&layer);
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{layer_digest}")]},
    }))
    .unwrap();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": format!("sha256:{}", sha256_hex(&config)), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": format!("sha256:{layer_digest}"), "size": layer.len()}],
    }))
    .unwrap();
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": format!("sha256:{}", sha256_hex(&manifest)), "size": manifest.len(),
                       "annotations": {"org.opencontainers.image.ref.name": "docker.io/library/tampered:1"}}],
    }))
    .unwrap();
    let mut b = tar::Builder::new(Vec::new());
    let mut put = |name: &str, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, data).unwrap();
    };
    put("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
    put("index.json", &index);
    put(&format!("blobs/sha256/{}", sha256_hex(&manifest)), &manifest);
    put(&format!("blobs/sha256/{}", sha256_hex(&config)), &config);
    put(&format!("blobs/sha256/{layer_digest}"), &tampered);
    let archive = b.into_inner().unwrap();
    assert_load_refused(&s, &archive, &layer_digest);

    // docker-archive: the layer does not match the config's diff ID.
    let img = TestImage::new("mismatch:1", vec![layer.clone()]);
    let mut archive = docker_archive(&[img]);
    let pos = archive.windows(4).position(|w| w == b"real").unwrap();
    archive[pos..pos + 4].copy_from_slice(b"evil");
    assert_load_refused(&s, &archive, &layer_digest);
}

fn dotdot_entry_is_refused(driver: &str) {
    let s = seeded(driver);
    let evil = LayerTar::new().raw_file("../../escaped", b"pwned").build();
    let archive = docker_archive(&[TestImage::new("evil:1", vec![busybox_layer(), evil])]);
    assert_load_refused(&s, &archive, "../../escaped");
    assert!(!s.root().join("escaped").exists() && !s.dir.path().join("escaped").exists());
}

fn write_through_absolute_symlink_is_refused(driver: &str) {
    let s = seeded(driver);
    let target = s.path("outside");
    std::fs::create_dir(&target).unwrap();
    let l1 = LayerTar::new().symlink("escape", target.to_str().unwrap()).build();
    let l2 = LayerTar::new().file("escape/pwned", b"pwned").build();
    let archive = docker_archive(&[TestImage::new("evil:2", vec![l1.clone(), l2.clone()])]);
    assert_load_refused(&s, &archive, "escape/pwned");
    // Also within one layer.
    let one = LayerTar::new().symlink("escape", target.to_str().unwrap()).file("escape/pwned", b"pwned").build();
    assert_load_refused(&s, &docker_archive(&[TestImage::new("evil:3", vec![one])]), "escape/pwned");
    assert!(std::fs::read_dir(&target).unwrap().next().is_none(), "nothing written outside");
}

fn hardlink_through_a_symlink_is_refused(driver: &str) {
    let s = seeded(driver);
    let outside = s.path("host-secret");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("secret"), b"host data").unwrap();
    let l1 = LayerTar::new().symlink("escape", outside.to_str().unwrap()).build();
    let l2 = LayerTar::new().hardlink("stolen", "escape/secret").build();
    let archive = docker_archive(&[TestImage::new("evil:4", vec![l1, l2])]);
    assert_load_refused(&s, &archive, "stolen");
}

/// Seven layers (busybox plus six of 300 small files) big enough that a load takes a moment.
fn heavy_layers(seed: u8) -> Vec<Vec<u8>> {
    let mut layers = vec![busybox_layer()];
    for l in 0..6u8 {
        let mut t = LayerTar::new().dir(&format!("d{l}"));
        for f in 0..300u32 {
            t = t.file(&format!("d{l}/f{f}"), &vec![seed ^ l ^ (f as u8); 4096]);
        }
        layers.push(t.build());
    }
    layers
}

fn heavy_archive(tag: &str, seed: u8) -> Vec<u8> {
    docker_archive(&[TestImage::new(tag, heavy_layers(seed))])
}

fn spawn_load(s: &Strata, archive: &std::path::Path) -> std::process::Child {
    s.command()
        .args(["load", "-i", archive.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn load_killed_midway_leaves_a_clean_store(driver: &str) {
    let s = seeded(driver);
    let a = s.write("heavy.tar", &heavy_archive("heavy:1", 1));
    for delay_ms in [1u64, 10, 30, 60, 120, 250] {
        let mut child = s
            .command()
            .args(["load", "-i", a.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        unsafe_kill(child.id());
        let _ = child.wait();
        // The next command opens cleanly and sweeps.
        let images = s.ok(&["images", "--format", "json"]);
        assert!(s.tmp_entries().is_empty(), "temp files left after {delay_ms}ms: {:?}", s.tmp_entries());
        let df: serde_json::Value = serde_json::from_str(&s.ok(&["system", "df", "--format", "json"])).unwrap();
        assert_eq!(df["layers"].as_u64().unwrap() as usize, s.layer_dirs().len(), "every layer dir has a ready record");
        if !images.contains("heavy") {
            assert_eq!(s.layer_dirs().len(), 1, "no half layers: only the seed's layer after {delay_ms}ms");
        }
        // Loading again completes.
        s.ok(&["load", "-i", a.to_str().unwrap()]);
        s.ok(&["rmi", "heavy:1"]);
    }
}

fn unsafe_kill(pid: u32) {
    std::process::Command::new("kill").arg("-KILL").arg(pid.to_string()).status().unwrap();
}

fn concurrent_loads_share_layers(driver: &str) {
    let s = Strata::new(driver);
    let a = s.write("a.tar", &heavy_archive("conc:a", 1));
    // Same seven layers under a different config: every layer shared.
    let mut img_b = TestImage::new("conc:b", heavy_layers(1));
    img_b.created_by[0] = "another history".into();
    let b = s.write("b.tar", &docker_archive(&[img_b]));
    let (pa, pb) = (spawn_load(&s, &a), spawn_load(&s, &b));
    for p in [pa, pb] {
        let o = p.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    assert_ne!(s.image_id("conc:a"), s.image_id("conc:b"));
    assert_eq!(s.layer_dirs().len(), 7, "seven layers, each stored once");
    assert_eq!(shape(&s.image_tree("conc:a")), shape(&s.image_tree("conc:b")));
}

fn import_makes_a_one_layer_image(driver: &str) {
    let s = Strata::new(driver);
    let p = s.write("rootfs.tar", &busybox_layer());
    let id = s.ok(&["import", p.to_str().unwrap(), "imported:1"]);
    assert!(id.trim().starts_with("sha256:"));
    let v: serde_json::Value = serde_json::from_str(&s.ok(&["inspect", "imported:1"])).unwrap();
    assert_eq!(v[0]["Id"].as_str().unwrap(), id.trim());
    assert_eq!(v[0]["RootFS"]["Layers"].as_array().unwrap().len(), 1);
    assert_eq!(v[0]["RootFS"]["Layers"][0].as_str().unwrap(), format!("sha256:{}", sha256_hex(&busybox_layer())));
    let t = s.image_tree("imported:1");
    assert_eq!(t["bin/sh"].data, "busybox");
    // From standard input, gzip-compressed.
    let gz = flate_gzip(&busybox_layer());
    let mut child =
        s.command().args(["import", "-", "imported:2"]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(&gz).unwrap();
    assert!(child.wait_with_output().unwrap().status.success());
    let h = s.ok(&["history", "imported:2"]);
    assert!(h.contains("strata import"), "{h}");
    assert_eq!(s.layer_dirs().len(), 1, "same layer content: stored once");
}

fn flate_gzip(b: &[u8]) -> Vec<u8> {
    let mut c =
        std::process::Command::new("gzip").arg("-c").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    let mut stdin = c.stdin.take().unwrap();
    let data = b.to_vec();
    let t = std::thread::spawn(move || {
        use std::io::Write;
        stdin.write_all(&data).unwrap();
    });
    let out = c.wait_with_output().unwrap().stdout;
    t.join().unwrap();
    out
}

fn file_metadata_survives_unpack(driver: &str) {
    let s = Strata::new(driver);
    let l = LayerTar::new()
        .owned("owned", b"x", 1234, 5678)
        .file_mode("setuid", b"s", 0o4755)
        .fifo("pipe")
        .symlink("rel", "owned")
        .xattr_file("capped", b"c", "user.test", b"value")
        .file(&format!("{}/long-name-file", "d".repeat(120)), b"long")
        .build();
    let a = s.write("m.tar", &docker_archive(&[TestImage::new("meta:1", vec![busybox_layer(), l])]));
    s.ok(&["load", "-i", a.to_str().unwrap()]);
    let t = s.image_tree("meta:1");
    assert_eq!((t["owned"].uid, t["owned"].gid, t["owned"].mode), (1234, 5678, 0o600));
    assert_eq!(t["setuid"].mode, 0o4755);
    assert_eq!(t["pipe"].kind, 'p');
    assert_eq!(t["rel"].data, "owned");
    assert!(t.contains_key(&format!("{}/long-name-file", "d".repeat(120))));
    let m = s.ok(&["image", "mount", "meta:1"]);
    let o = std::process::Command::new("getfattr")
        .args(["-n", "user.test", "--only-values"])
        .arg(format!("{}/capped", m.trim()))
        .output()
        .expect("getfattr (Debian package attr) is installed");
    s.ok(&["image", "unmount", "meta:1"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(o.stdout, b"value");
}

#[test]
fn history_and_inspect_describe_the_layers() {
    let s = Strata::new("overlay");
    let top = LayerTar::new().file("app", &vec![b'x'; 1234]).build();
    let a = s.write("h.tar", &docker_archive(&[TestImage::new("hist:1", vec![busybox_layer(), top.clone()])]));
    s.ok(&["load", "-i", a.to_str().unwrap()]);
    let h = s.ok(&["history", "--no-trunc", "hist:1"]);
    let lines: Vec<&str> = h.lines().collect();
    assert!(lines[0].starts_with("IMAGE") && lines[0].contains("CREATED BY") && lines[0].contains("SIZE"), "{h}");
    // Newest first: the empty CMD entry (0B), then the layers, bottom last.
    assert!(lines[1].contains("CMD [\"sh\"]") && lines[1].contains(" 0B"), "{h}");
    assert!(lines[1].starts_with(&s.image_id("hist:1")), "{h}");
    assert!(lines[2].contains("layer 1") && lines[2].contains("1.23kB"), "{h}");
    assert!(lines[3].starts_with("<missing>") && lines[3].contains("layer 0"), "{h}");
    let v: serde_json::Value = serde_json::from_str(&s.ok(&["inspect", "hist:1"])).unwrap();
    let layers = v[0]["Layers"].as_array().unwrap();
    assert_eq!(layers.len(), 2);
    assert_eq!(layers[1]["DiffID"].as_str().unwrap(), format!("sha256:{}", sha256_hex(&top)));
    assert_eq!(layers[1]["Size"], 1234);
    assert_eq!(v[0]["Config"]["Cmd"][0], "sh");
    let images = s.ok(&["images"]);
    assert!(
        images.lines().next().unwrap().split_whitespace().collect::<Vec<_>>()
            == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"],
        "{images}"
    );
    assert!(images.contains("hist ") && images.contains(&s.image_id("hist:1")[7..19]), "{images}");
    assert_eq!(s.ok(&["images", "-q"]).trim(), &s.image_id("hist:1")[7..19]);
    let (code, err) = s.fails(&["inspect", "nope:1"]);
    assert_eq!(code, 1);
    assert!(err.contains("nope:1"), "{err}");
    let (code, _) = s.fails(&["images", "--bogus-flag"]);
    assert_eq!(code, 125);
}

#[test]
fn images_with_a_reference_lists_only_its_repository_and_tag() {
    let s = Strata::new("overlay");
    let a = s.write("f.tar", &docker_archive(&[TestImage::new("app:1", vec![busybox_layer()])]));
    s.ok(&["load", "-i", a.to_str().unwrap()]);
    for t in ["app:2", "other:1", "localhost:5000/app:1"] {
        s.ok(&["tag", "app:1", t]);
    }
    let rows = |r: &str| -> Vec<(String, String)> {
        let out = s.ok(&["images", "--format", "json", r]);
        let mut v: Vec<(String, String)> = out
            .lines()
            .map(|l| {
                let j: serde_json::Value = serde_json::from_str(l).unwrap();
                (j["Repository"].as_str().unwrap().to_string(), j["Tag"].as_str().unwrap().to_string())
            })
            .collect();
        v.sort();
        v
    };
    let pair = |r: &str, t: &str| (r.to_string(), t.to_string());
    assert_eq!(rows("app"), [pair("app", "1"), pair("app", "2")]);
    assert_eq!(rows("app:2"), [pair("app", "2")]);
    // A registry port is not a tag: every tag of that repository.
    assert_eq!(rows("localhost:5000/app"), [pair("localhost:5000/app", "1")]);
    assert_eq!(rows("localhost:5000/app:1"), [pair("localhost:5000/app", "1")]);
    assert_eq!(rows("nothing"), Vec::<(String, String)>::new());
}
