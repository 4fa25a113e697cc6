//! Prune as Docker does it: `system prune` takes stopped containers first,
//! then the images only they kept; a prompt not answered "y" (the end of
//! input included, as in a script without `-f`) deletes nothing.

mod common;

use std::io::Write;
use std::process::Stdio;

use common::*;

fn setup() -> Strata {
    let s = Strata::new("overlay");
    let a = s.write("images.tar", &docker_archive(&[TestImage::new("busybox:latest", vec![busybox_layer()])]));
    s.ok(&["load", "-q", "-i", a.to_str().unwrap()]);
    s
}

/// A dangling image (committed, no tag) and the ID of a stopped container using it.
fn dangling_image_in_use(s: &Strata) -> (String, String) {
    s.ok(&["run", "--name", "maker", "busybox", "sh", "-c", "echo x > /made"]);
    let image = s.ok(&["commit", "maker"]).trim().trim_start_matches("sha256:").to_string();
    let user = s.ok(&["create", &image, "true"]).trim().to_string();
    (image, user)
}

#[test]
fn system_prune_removes_stopped_containers_then_the_images_only_they_used() {
    let s = setup();
    let (image, user) = dangling_image_in_use(&s);
    s.ok(&["run", "-d", "--name", "running", "busybox", "sleep", "600"]);
    let out = s.ok(&["system", "prune", "-f"]);
    assert!(out.contains(&user), "the stopped container is listed: {out}");
    let left = s.ok(&["ps", "-a", "--no-trunc", "-q"]);
    assert_eq!(left.lines().count(), 1, "only the running container stays: {left}");
    let images = s.ok(&["images", "-q", "--no-trunc"]);
    assert!(!images.contains(&image), "the image only stopped containers used is gone: {images}");
    assert!(s.ok(&["images", "-q", "busybox"]).trim().len() == 12, "busybox stays (tagged)");
    s.ok(&["rm", "-f", "running"]);
}

fn prune_with_input(s: &Strata, input: &[u8]) -> (bool, String) {
    let mut c = s.command().args(["image", "prune"]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    c.stdin.take().unwrap().write_all(input).unwrap();
    let o = c.wait_with_output().unwrap();
    (o.status.success(), String::from_utf8_lossy(&o.stdout).to_string())
}

#[test]
fn image_prune_without_force_deletes_only_on_a_yes() {
    let s = setup();
    let (image, user) = dangling_image_in_use(&s);
    s.ok(&["rm", &user, "maker"]);
    for answer in [&b""[..], b"n\n", b"whatever\n"] {
        let (ok, out) = prune_with_input(&s, answer);
        assert!(ok, "{out}");
        assert!(s.ok(&["images", "-q", "--no-trunc"]).contains(&image), "{answer:?} deleted the image: {out}");
    }
    let (ok, out) = prune_with_input(&s, b"y\n");
    assert!(ok && out.contains("deleted"), "{out}");
    assert!(!s.ok(&["images", "-q", "--no-trunc"]).contains(&image), "a yes deletes: {out}");
}

#[test]
fn system_prune_removes_the_networks_no_container_is_on() {
    let s = setup();
    for n in ["unused", "kept", "freed"] {
        s.ok(&["network", "create", n]);
    }
    s.ok(&["run", "-d", "--name", "holder", "--network", "kept", "busybox", "sleep", "600"]);
    // A stopped container goes first, and with it the last user of `freed`.
    s.ok(&["create", "--name", "stopped", "--network", "freed", "busybox", "true"]);
    let out = s.ok(&["system", "prune", "-f"]);
    assert!(out.contains("Deleted Networks:\nfreed\nunused\n"), "{out}");
    let left = s.ok(&["network", "ls", "--format", "json"]);
    let names: Vec<String> = left
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["Name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["bridge", "host", "none", "kept"], "{left}");
    s.ok(&["rm", "-f", "holder"]);
}
