//! Interop with real peers from Debian: images written by podman and skopeo
//! load into strata with the same IDs, diff IDs and files; strata's saves
//! load into podman and are read by skopeo with the same IDs.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::*;

fn skopeo(args: &[&str]) -> String {
    let o = Command::new("skopeo").args(args).output().expect("skopeo is installed (.ci/deps)");
    assert!(o.status.success(), "skopeo {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

/// A three-layer image built by podman itself: a base, a RUN that deletes
/// a file and hardlinks a lower-layer file, and a COPY.
fn podman_image(s: &Strata, p: &Peer) -> String {
    let base = s.write("base.tar", &busybox_layer());
    p.ok(&["import", base.to_str().unwrap(), "localhost/interop-base:1"]);
    let ctx = s.path("ctx");
    std::fs::create_dir(&ctx).unwrap();
    std::fs::write(ctx.join("f"), b"copied by podman").unwrap();
    std::fs::write(
        ctx.join("Containerfile"),
        "FROM localhost/interop-base:1\n\
         RUN rm /etc/passwd && mkdir -p /data/sub && echo hi > /data/sub/x && ln /bin/busybox /bin/hardbb\n\
         COPY f /data/f\n",
    )
    .unwrap();
    p.ok(&["build", "--isolation", "chroot", "--network", "host", "-t", "localhost/interop:1", ctx.to_str().unwrap()]);
    p.ok(&["inspect", "--format", "{{.Id}}", "localhost/interop:1"]).trim().to_string()
}

fn podman_diff_ids(p: &Peer, name: &str) -> Vec<String> {
    serde_json::from_str(&p.ok(&["inspect", "--format", "{{json .RootFS.Layers}}", name])).unwrap()
}

fn strata_diff_ids(s: &Strata, name: &str) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_str(&s.ok(&["inspect", name])).unwrap();
    v[0]["RootFS"]["Layers"].as_array().unwrap().iter().map(|d| d.as_str().unwrap().to_string()).collect()
}

fn podman_tree(p: &Peer, name: &str) -> std::collections::BTreeMap<String, Node> {
    let m = p.ok(&["image", "mount", name]);
    let t = tree(Path::new(m.trim()));
    p.ok(&["image", "unmount", name]);
    t
}

#[test]
fn podman_and_skopeo_archives_load_with_the_same_ids_and_files() {
    for driver in DRIVERS {
        let s = Strata::new(driver);
        let p = Peer::new("podman");
        let id = podman_image(&s, &p);
        let want_diffs = podman_diff_ids(&p, "localhost/interop:1");
        assert_eq!(want_diffs.len(), 3);

        // docker-archive from podman save.
        let da = s.path("podman.tar");
        p.ok(&["save", "--format", "docker-archive", "-o", da.to_str().unwrap(), "localhost/interop:1"]);
        let out = s.ok(&["load", "-i", da.to_str().unwrap()]);
        assert!(out.contains("Loaded image: localhost/interop:1"), "{out}");
        assert_eq!(s.image_id("localhost/interop:1"), format!("sha256:{}", id.trim_start_matches("sha256:")));
        assert_eq!(strata_diff_ids(&s, "localhost/interop:1"), want_diffs);
        let ours = s.image_tree("localhost/interop:1");
        let theirs = podman_tree(&p, "localhost/interop:1");
        assert_eq!(shape(&ours), shape(&theirs), "same merged tree as podman's ({driver})");
        assert!(!ours.contains_key("etc/passwd"));
        // podman writes the link made in RUN as a full file (its diff leaves the lower busybox out).
        assert_eq!(ours["bin/hardbb"].data, ours["bin/busybox"].data);

        // oci-archive from skopeo copy, with zstd layers, into an empty store.
        let oa = s.path("skopeo-oci.tar");
        skopeo(&[
            "copy",
            "--dest-compress-format",
            "zstd",
            &format!("docker-archive:{}", da.display()),
            &format!("oci-archive:{}:interop:oci", oa.display()),
        ]);
        s.ok(&["rmi", "localhost/interop:1"]);
        assert!(s.layer_dirs().is_empty() && s.blobs().is_empty());
        s.ok(&["load", "-i", oa.to_str().unwrap()]);
        let v: serde_json::Value = serde_json::from_str(&s.ok(&["inspect", "interop:oci"])).unwrap();
        assert_eq!(v[0]["Id"].as_str().unwrap(), format!("sha256:{}", id.trim_start_matches("sha256:")));
        assert!(
            v[0]["Layers"].as_array().unwrap().iter().all(|l| l["MediaType"].as_str().unwrap().ends_with("zstd")),
            "{v}"
        );
        assert_eq!(strata_diff_ids(&s, "interop:oci"), want_diffs);
        assert_eq!(shape(&s.image_tree("interop:oci")), shape(&theirs));

        // The gzip-compressed docker-archive on standard input: same image, layers already stored.
        let gz = Command::new("gzip").arg("-c").arg(&da).output().unwrap().stdout;
        let mut child = s.command().arg("load").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(&gz).unwrap();
        let o = child.wait_with_output().unwrap();
        assert!(o.status.success());
        assert_eq!(s.layer_dirs().len(), 3, "nothing unpacked twice");
        assert_eq!(strata_diff_ids(&s, "localhost/interop:1"), want_diffs);
    }
}

#[test]
fn strata_saves_load_into_podman_and_skopeo_with_the_same_ids() {
    let s = Strata::new("overlay");
    let img = TestImage::new(
        "saved:1",
        vec![busybox_layer(), LayerTar::new().dir("etc").whiteout("etc/passwd").file("new", b"new").build()],
    );
    let a = s.write("in.tar", &docker_archive(&[img]));
    s.ok(&["load", "-i", a.to_str().unwrap()]);
    let id = s.image_id("saved:1");
    let digest = {
        let v: serde_json::Value = serde_json::from_str(&s.ok(&["inspect", "saved:1"])).unwrap();
        v[0]["Digest"].as_str().unwrap().to_string()
    };
    let diffs = strata_diff_ids(&s, "saved:1");

    // docker-archive into podman.
    let out = s.path("out.tar");
    s.ok(&["save", "-o", out.to_str().unwrap(), "saved:1"]);
    let p = Peer::new("podman");
    p.ok(&["load", "-i", out.to_str().unwrap()]);
    let podman_id = p.ok(&["inspect", "--format", "{{.Id}}", "saved:1"]);
    assert_eq!(format!("sha256:{}", podman_id.trim()), id);
    assert_eq!(podman_diff_ids(&p, "saved:1"), diffs);
    let t = podman_tree(&p, "saved:1");
    assert!(t.contains_key("new") && !t.contains_key("etc/passwd"), "{t:?}");

    // skopeo reads all three formats; the config digest is the image ID.
    let config_digest =
        |r: &str| format!("sha256:{}", sha256_hex(skopeo(&["inspect", "--config", "--raw", r]).as_bytes()));
    assert_eq!(config_digest(&format!("docker-archive:{}", out.display())), id);
    let oci = s.path("out-oci.tar");
    s.ok(&["save", "--format", "oci-archive", "-o", oci.to_str().unwrap(), "saved:1"]);
    assert_eq!(config_digest(&format!("oci-archive:{}", oci.display())), id);
    let manifest = skopeo(&["inspect", "--raw", &format!("oci-archive:{}", oci.display())]);
    assert_eq!(format!("sha256:{}", sha256_hex(manifest.as_bytes())), digest, "the stored manifest, byte for byte");
    let dir = s.path("out-dir");
    s.ok(&["save", "--format", "oci-dir", "-o", dir.to_str().unwrap(), "saved:1"]);
    assert_eq!(config_digest(&format!("oci:{}", dir.display())), id);

    // podman loads the oci-archive too, with the same ID.
    let p2 = Peer::new("podman");
    let o = p2.ok(&["load", "-i", oci.to_str().unwrap()]);
    assert!(o.contains("saved:1") || o.contains(id.trim_start_matches("sha256:")), "{o}");
    let ids = p2.ok(&["images", "--no-trunc", "--format", "{{.ID}}"]);
    assert!(ids.contains(id.trim_start_matches("sha256:")), "{ids}");
}
