//! Pull and push against a real registry (Debian's `docker-registry`,
//! started on 127.0.0.1 by each test), with skopeo and podman as peers, a
//! small proxy in front to count requests, corrupt bytes or drop
//! connections, and TLS with htpasswd auth from certificates made here.

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::registry::*;
use common::*;

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Pass,
    /// Flip a byte in every blob body.
    Corrupt,
    /// Send half of each blob's first response, then close.
    DropFirst,
    /// Pass, slowly (for kill tests).
    Slow,
    /// Answer the first request for each path with 503, or 429 for blobs.
    BusyFirst,
    /// Refuse monolithic uploads (a PUT carrying the blob), as some registries do.
    NoMonolithic,
    /// Drop Range headers, as a registry that cannot serve ranges (it answers 200 with the whole blob).
    NoRange,
}

/// Requests a proxy saw: method, path, Range header.
type Seen = Mutex<Vec<(String, String, Option<String>)>>;

/// An HTTP/1.1 proxy in front of the registry: one request per connection.
struct Proxy {
    addr: String,
    requests: Arc<Seen>,
    /// Bytes sent to the client (heads and bodies).
    sent: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl Proxy {
    fn start(upstream: &str, mode: Mode) -> Self {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let sent = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let dropped: Arc<Mutex<HashMap<String, bool>>> = Arc::default();
        let (up, reqs, st, counted) = (upstream.to_string(), requests.clone(), stop.clone(), sent.clone());
        l.set_nonblocking(true).unwrap();
        std::thread::spawn(move || {
            while !st.load(Ordering::SeqCst) {
                match l.accept() {
                    Ok((c, _)) => {
                        let (up, reqs, dropped, counted) = (up.clone(), reqs.clone(), dropped.clone(), counted.clone());
                        std::thread::spawn(move || {
                            let _ = serve(c, &up, mode, &reqs, &dropped, &counted);
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Proxy { addr, requests, sent, stop }
    }

    /// GETs of blobs (not manifests) seen so far.
    fn blob_gets(&self) -> Vec<String> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .filter(|(m, p, _)| m == "GET" && p.contains("/blobs/sha256:"))
            .map(|(_, p, _)| p.clone())
            .collect()
    }

    fn ranged(&self) -> usize {
        self.requests.lock().unwrap().iter().filter(|(_, _, r)| r.is_some()).count()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn read_head(s: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if s.read(&mut b)? == 0 {
            break;
        }
        head.push(b[0]);
    }
    Ok(head)
}

fn serve(
    mut c: TcpStream,
    upstream: &str,
    mode: Mode,
    reqs: &Seen,
    dropped: &Mutex<HashMap<String, bool>>,
    sent: &AtomicU64,
) -> std::io::Result<()> {
    let head = read_head(&mut c)?;
    let text = String::from_utf8_lossy(&head).into_owned();
    let mut lines = text.split("\r\n");
    let first = lines.next().unwrap_or("").to_string();
    let mut parts = first.split(' ');
    let (method, path) = (parts.next().unwrap_or("").to_string(), parts.next().unwrap_or("").to_string());
    let mut len = 0usize;
    let mut range = None;
    let mut out_head = format!("{first}\r\n");
    for l in lines.filter(|l| !l.is_empty()) {
        let lower = l.to_ascii_lowercase();
        if lower.starts_with("content-length:") {
            len = l[15..].trim().parse().unwrap_or(0);
        }
        if lower.starts_with("range:") {
            range = Some(l[6..].trim().to_string());
        }
        // The client's Host stays: the registry builds upload Locations from it, so they come back here.
        if lower.starts_with("connection:") || (mode == Mode::NoRange && lower.starts_with("range:")) {
            continue;
        }
        out_head.push_str(l);
        out_head.push_str("\r\n");
    }
    out_head.push_str("Connection: close\r\n\r\n");
    let mut body = vec![0u8; len];
    c.read_exact(&mut body)?;
    reqs.lock().unwrap().push((method.clone(), path.clone(), range));
    if mode == Mode::NoMonolithic && method == "PUT" && path.contains("/blobs/uploads/") && len > 0 {
        let body = r#"{"errors":[{"code":"UNSUPPORTED","message":"monolithic uploads are not accepted"}]}"#;
        let head = format!("HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
        c.write_all(head.as_bytes())?;
        c.write_all(body.as_bytes())?;
        return Ok(());
    }
    if mode == Mode::BusyFirst && dropped.lock().unwrap().insert(format!("{method} {path}"), true).is_none() {
        let status = if path.contains("/blobs/") { "429 Too Many Requests" } else { "503 Service Unavailable" };
        c.write_all(format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").as_bytes())?;
        return Ok(());
    }
    let mut u = TcpStream::connect(upstream)?;
    u.write_all(out_head.as_bytes())?;
    u.write_all(&body)?;
    let mut resp = Vec::new();
    u.read_to_end(&mut resp)?;
    let split = resp.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4).unwrap_or(resp.len());
    let (rh, rb) = resp.split_at(split);
    sent.fetch_add(resp.len() as u64, Ordering::SeqCst);
    let is_blob = method == "GET" && path.contains("/blobs/sha256:") && rh.starts_with(b"HTTP/1.1 20");
    match mode {
        Mode::Corrupt if is_blob && !rb.is_empty() => {
            let mut rb = rb.to_vec();
            let i = rb.len() / 2;
            rb[i] ^= 0xff;
            c.write_all(rh)?;
            c.write_all(&rb)?;
        }
        Mode::DropFirst if is_blob && rb.len() > 64 && !dropped.lock().unwrap().contains_key(&path) => {
            dropped.lock().unwrap().insert(path.clone(), true);
            c.write_all(rh)?;
            c.write_all(&rb[..rb.len() / 2])?;
            c.flush()?;
            c.shutdown(std::net::Shutdown::Both)?;
        }
        Mode::Slow if is_blob => {
            c.write_all(rh)?;
            for chunk in rb.chunks(16 * 1024) {
                c.write_all(chunk)?;
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        _ => {
            c.write_all(rh)?;
            c.write_all(rb)?;
        }
    }
    Ok(())
}

/// An auth file of the test's own (REGISTRY_AUTH_FILE).
fn with_auth(s: &Strata, c: &mut Command) {
    c.env("REGISTRY_AUTH_FILE", s.path("auth.json"));
}

fn strata(s: &Strata, args: &[&str]) -> (i32, String, String) {
    let mut c = s.command();
    with_auth(s, &mut c);
    let o = c.args(args).output().unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn ok(s: &Strata, args: &[&str]) -> String {
    let (code, out, err) = strata(s, args);
    assert_eq!(code, 0, "strata {args:?}: {out} {err}");
    out
}

/// A three-layer image in a docker-archive: busybox, a data layer, an app layer.
fn three_layers(tag: &str, seed: u8) -> Vec<u8> {
    let data: Vec<u8> = (0..200_000u32).map(|i| (i as u8).wrapping_mul(seed)).collect();
    let l2 = LayerTar::new().dir("data").file("data/blob.bin", &data).build();
    let l3 = LayerTar::new().dir("app").file("app/hello", format!("hello {seed}\n").as_bytes()).build();
    docker_archive(&[TestImage::new(tag, vec![busybox_layer(), l2, l3])])
}

#[test]
fn pull_of_a_skopeo_push_matches_podman() {
    let reg = Registry::start();
    let s = Strata::on_host_network("overlay");
    let a = s.write("app.tar", &three_layers("app:1", 3));
    skopeo_push(&a, &format!("{}/interop/app:1", reg.addr));
    let name = format!("{}/interop/app:1", reg.addr);
    ok(&s, &["pull", &name]);
    let p = Peer::new("podman");
    p.ok(&["pull", "-q", "--tls-verify=false", &name]);
    let podman_id = p.ok(&["inspect", "--format", "{{.Id}}", &name]).trim().to_string();
    assert_eq!(s.image_id(&name), format!("sha256:{podman_id}"), "same image ID as podman's pull");
    let m = p.ok(&["image", "mount", &name]);
    let theirs = shape(&tree(Path::new(m.trim())));
    p.ok(&["image", "unmount", &name]);
    assert_eq!(shape(&s.image_tree(&name)), theirs, "same files as podman's pull");
    assert_eq!(ok(&s, &["run", "--network", "none", "--rm", &name, "cat", "/app/hello"]), "hello 3\n");
    assert!(s.tmp_entries().is_empty());
}

#[test]
fn push_is_pulled_back_with_the_same_manifest_digest() {
    let reg = Registry::start();
    let s = Strata::on_host_network("overlay");
    let a = s.write("app.tar", &three_layers("app:1", 5));
    ok(&s, &["load", "-q", "-i", a.to_str().unwrap()]);
    let dest = format!("{}/pushed/app:1", reg.addr);
    let out = ok(&s, &["push", "-q", "app:1", &dest]);
    let digest = out.trim().to_string();
    assert!(digest.starts_with("sha256:"), "{out}");
    let raw = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false", &format!("docker://{dest}")])
        .output()
        .unwrap();
    assert!(raw.status.success());
    assert_eq!(format!("sha256:{}", sha256_hex(&raw.stdout)), digest, "skopeo reads the manifest strata pushed");
    let p = Peer::new("podman");
    p.ok(&["pull", "-q", "--tls-verify=false", &dest]);
    let podman_digest = p.ok(&["inspect", "--format", "{{.Digest}}", &dest]).trim().to_string();
    assert_eq!(podman_digest, digest);
    assert_eq!(format!("sha256:{}", p.ok(&["inspect", "--format", "{{.Id}}", &dest]).trim()), s.image_id("app:1"));
    // Pushing again sends no blob: the registry has them all.
    let again = strata(&s, &["push", "app:1", &dest]);
    assert_eq!(again.0, 0, "{}", again.2);
    let blob_lines: Vec<&str> = again.2.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!blob_lines.is_empty(), "the second push reports its blobs: {}", again.2);
    assert!(blob_lines.iter().all(|l| l.contains("already exists")), "{}", again.2);
    // Another repository on the same registry mounts the layers instead of uploading them.
    let other = strata(&s, &["push", "app:1", &format!("{}/other/app:1", reg.addr)]);
    assert_eq!(other.0, 0, "{}", other.2);
    assert!(other.2.contains("mounted from another repository"), "{}", other.2);
}

fn layer_blob(tar: Vec<u8>) -> (Vec<u8>, String) {
    let d = format!("sha256:{}", sha256_hex(&tar));
    (tar, d)
}

/// Push an image of one layer by hand; returns (manifest bytes, its digest).
fn put_image(reg: &Registry, repo: &str, os: &str, arch: &str, marker: &str) -> (Vec<u8>, String) {
    let (layer, diff_id) = layer_blob(LayerTar::new().file("marker", marker.as_bytes()).build());
    let layer_digest = reg.put_blob(repo, &layer);
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": arch, "os": os, "created": "2024-01-01T00:00:00Z",
        "config": {"Cmd": ["/bin/true"]}, "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    }))
    .unwrap();
    let config_digest = reg.put_blob(repo, &config);
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest, "size": layer.len()}],
    }))
    .unwrap();
    let d = reg.put_manifest(repo, &format!("{os}-{arch}"), "application/vnd.oci.image.manifest.v1+json", &manifest);
    (manifest, d)
}

#[test]
fn an_index_resolves_to_the_host_platform_or_the_one_asked_for() {
    let reg = Registry::start();
    let repo = "multi/img";
    let entries = [("linux", "amd64", "host"), ("linux", "arm64", "arm"), ("windows", "amd64", "windows")];
    let mut manifests = Vec::new();
    for (os, arch, marker) in entries {
        let (m, d) = put_image(&reg, repo, os, arch, marker);
        manifests.push(serde_json::json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": d,
            "size": m.len(), "platform": {"os": os, "architecture": arch}}));
    }
    let index = serde_json::to_vec(&serde_json::json!({"schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests}))
    .unwrap();
    reg.put_manifest(repo, "multi", "application/vnd.oci.image.index.v1+json", &index);
    let s = Strata::on_host_network("overlay");
    let name = format!("{}/{repo}:multi", reg.addr);
    let marker = |s: &Strata| {
        let t = s.image_tree(&name);
        let n = t.get("marker").expect("marker file").clone();
        n.data
    };
    ok(&s, &["pull", "-q", &name]);
    assert_eq!(marker(&s), sha256_hex(b"host"), "the host's platform (linux/amd64)");
    ok(&s, &["pull", "-q", "--platform", "linux/arm64", &name]);
    assert_eq!(marker(&s), sha256_hex(b"arm"));
    ok(&s, &["pull", "-q", "--platform", "windows/amd64", &name]);
    assert_eq!(marker(&s), sha256_hex(b"windows"));
    let insp: serde_json::Value = serde_json::from_str(&ok(&s, &["inspect", &name])).unwrap();
    assert_eq!(insp[0]["Os"], "windows");
    let (code, _, err) = strata(&s, &["run", "--network", "none", "--rm", &name]);
    assert_eq!(code, 125);
    assert!(err.contains("windows"), "{err}");
    let (code, _, err) = strata(&s, &["pull", "--platform", "linux/s390x", &name]);
    assert_ne!(code, 0);
    assert!(err.contains("linux/s390x"), "{err}");
}

#[test]
fn a_second_image_on_the_same_base_downloads_only_its_new_layers() {
    let reg = Registry::start();
    let s = Strata::on_host_network("overlay");
    let base = s.write("base.tar", &docker_archive(&[TestImage::new("base:1", vec![busybox_layer()])]));
    skopeo_push(&base, &format!("{}/shared/base:1", reg.addr));
    let app = s.write("app.tar", &three_layers("app:1", 7));
    skopeo_push(&app, &format!("{}/shared/app:1", reg.addr));
    let proxy = Proxy::start(&reg.addr, Mode::Pass);
    ok(&s, &["pull", "-q", &format!("{}/shared/base:1", proxy.addr)]);
    let first = proxy.blob_gets().len();
    assert_eq!(first, 2, "config and one layer: {:?}", proxy.blob_gets());
    ok(&s, &["pull", "-q", &format!("{}/shared/app:1", proxy.addr)]);
    let second: Vec<String> = proxy.blob_gets()[first..].to_vec();
    assert_eq!(second.len(), 3, "config and the two new layers only: {second:?}");
    // Pulling it again downloads nothing but the manifest.
    ok(&s, &["pull", "-q", &format!("{}/shared/app:1", proxy.addr)]);
    assert_eq!(proxy.blob_gets().len(), first + 3, "no blob again: {:?}", proxy.blob_gets());
}

#[test]
fn bytes_that_do_not_match_their_digest_are_rejected_and_nothing_is_stored() {
    let reg = Registry::start();
    let s = Strata::on_host_network("overlay");
    let a = s.write("app.tar", &three_layers("app:1", 9));
    skopeo_push(&a, &format!("{}/bad/app:1", reg.addr));
    let proxy = Proxy::start(&reg.addr, Mode::Corrupt);
    let before = s.state();
    let (code, _, err) = strata(&s, &["pull", &format!("{}/bad/app:1", proxy.addr)]);
    assert_eq!(code, 1);
    assert!(err.contains("sha256:") && (err.contains("digest") || err.contains("mismatch")), "{err}");
    assert_eq!(s.state(), before, "the store is as it was");
    assert!(s.tmp_entries().is_empty());
}

#[test]
fn a_dropped_connection_is_retried_and_the_pull_completes() {
    let reg = Registry::start();
    let s = Strata::on_host_network("overlay");
    let a = s.write("app.tar", &three_layers("app:1", 11));
    skopeo_push(&a, &format!("{}/flaky/app:1", reg.addr));
    let proxy = Proxy::start(&reg.addr, Mode::DropFirst);
    let name = format!("{}/flaky/app:1", proxy.addr);
    let (code, _, err) = strata(&s, &["pull", &name]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("retrying"), "{err}");
    assert!(proxy.ranged() > 0, "the retry resumed with a Range request");
    assert_eq!(ok(&s, &["run", "--network", "none", "--rm", &name, "cat", "/app/hello"]), "hello 11\n");
}

#[test]
fn busy_answers_are_retried() {
    let reg = Registry::start();
    let s = Strata::on_host_network("overlay");
    let a = s.write("app.tar", &three_layers("app:1", 17));
    skopeo_push(&a, &format!("{}/busy/app:1", reg.addr));
    let proxy = Proxy::start(&reg.addr, Mode::BusyFirst);
    let name = format!("{}/busy/app:1", proxy.addr);
    let (code, _, err) = strata(&s, &["pull", &name]);
    assert_eq!(code, 0, "{err}");
    let reqs = proxy.requests.lock().unwrap().clone();
    let manifest_gets = reqs.iter().filter(|(m, p, _)| m == "GET" && p.contains("/manifests/")).count();
    assert!(manifest_gets >= 2, "the manifest was asked for again after a 503: {reqs:?}");
    assert_eq!(ok(&s, &["run", "--network", "none", "--rm", &name, "cat", "/app/hello"]), "hello 17\n");
}

#[test]
fn a_registry_that_refuses_monolithic_uploads_gets_chunks() {
    let reg = Registry::start();
    let s = Strata::on_host_network("overlay");
    let a = s.write("app.tar", &three_layers("app:1", 19));
    ok(&s, &["load", "-q", "-i", a.to_str().unwrap()]);
    let proxy = Proxy::start(&reg.addr, Mode::NoMonolithic);
    let dest = format!("{}/chunks/app:1", proxy.addr);
    let (code, out, err) = strata(&s, &["push", "-q", "app:1", &dest]);
    assert_eq!(code, 0, "{err}");
    let reqs = proxy.requests.lock().unwrap().clone();
    assert!(reqs.iter().any(|(m, _, _)| m == "PATCH"), "chunks were sent: {reqs:?}");
    let raw = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false", &format!("docker://{}/chunks/app:1", reg.addr)])
        .output()
        .unwrap();
    assert_eq!(format!("sha256:{}", sha256_hex(&raw.stdout)), out.trim());
    let t = Strata::on_host_network("overlay");
    ok(&t, &["pull", "-q", &format!("{}/chunks/app:1", reg.addr)]);
    assert_eq!(t.image_id(&format!("{}/chunks/app:1", reg.addr)), s.image_id("app:1"));
}

#[test]
fn tls_and_basic_auth_work_after_login_and_fail_clearly_without() {
    let htpasswd =
        Command::new("htpasswd").args(["-Bbn", "tester", "s3cret"]).output().expect("htpasswd (apache2-utils)");
    let reg = Registry::start_with(true, Some(&htpasswd.stdout));
    let cas = reg.dir.path().join("cas");
    let cas = cas.to_str().unwrap();
    let s = Strata::on_host_network("overlay");
    let a = s.write("app.tar", &three_layers("app:1", 13));
    ok(&s, &["load", "-q", "-i", a.to_str().unwrap()]);
    let dest = format!("{}/private/app:1", reg.addr);
    // Without credentials: a clear refusal naming the reference and what to do.
    let (code, _, err) = strata(&s, &["push", "--tls-verify=true", "--cert-dir", cas, "app:1", &dest]);
    assert_eq!(code, 1);
    assert!(err.contains(&dest) && err.contains("unauthorized") && err.contains("strata login"), "{err}");
    // A wrong password is refused by login, and nothing is stored.
    let mut c = s.command();
    with_auth(&s, &mut c);
    let mut child = c
        .args(["login", "-u", "tester", "--password-stdin", "--tls-verify=true", "--cert-dir", cas, &reg.addr])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"wrong\n").unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(!o.status.success());
    assert!(!s.path("auth.json").exists());
    // Verified TLS without the CA fails on the certificate.
    let (code, _, err) = strata(&s, &["login", "-u", "tester", "-p", "s3cret", "--tls-verify=true", &reg.addr]);
    assert_ne!(code, 0);
    assert!(
        err.to_ascii_lowercase().contains("certificate")
            || err.contains("tls")
            || err.contains("error sending request"),
        "{err}"
    );
    ok(&s, &["login", "-u", "tester", "-p", "s3cret", "--tls-verify=true", "--cert-dir", cas, &reg.addr]);
    let auth: serde_json::Value = serde_json::from_slice(&std::fs::read(s.path("auth.json")).unwrap()).unwrap();
    assert!(auth["auths"][&reg.addr]["auth"].is_string(), "{auth}");
    ok(&s, &["push", "-q", "--tls-verify=true", "--cert-dir", cas, "app:1", &dest]);
    let t = Strata::on_host_network("overlay");
    std::fs::copy(s.path("auth.json"), t.path("auth.json")).unwrap();
    ok(&t, &["pull", "-q", "--tls-verify=true", "--cert-dir", cas, &dest]);
    assert_eq!(t.image_id(&dest), s.image_id("app:1"));
    // The loopback default: TLS is used (unverified, as Docker does for 127.0.0.0/8).
    let u = Strata::on_host_network("overlay");
    std::fs::copy(s.path("auth.json"), u.path("auth.json")).unwrap();
    ok(&u, &["pull", "-q", &dest]);
    ok(&s, &["logout", &reg.addr]);
    let (code, _, err) = strata(&u, &["logout", "nowhere.example:5000"]);
    assert_eq!(code, 1, "{err}");
}

#[test]
fn a_pull_killed_at_several_points_leaves_a_consistent_store_and_the_next_completes() {
    let reg = Registry::start();
    let s = Strata::on_host_network("overlay");
    let big: Vec<Vec<u8>> = (0..4u32)
        .map(|i| {
            let data: Vec<u8> =
                (0..600_000u32).map(|j| (j.wrapping_mul(2654435761).wrapping_add(i) >> 13) as u8).collect();
            LayerTar::new().dir(&format!("l{i}")).file(&format!("l{i}/data"), &data).build()
        })
        .collect();
    let a = s.write("big.tar", &docker_archive(&[TestImage::new("big:1", big)]));
    skopeo_push(&a, &format!("{}/big/img:1", reg.addr));
    let proxy = Proxy::start(&reg.addr, Mode::Slow);
    let name = format!("{}/big/img:1", proxy.addr);
    for wait_ms in [150u64, 500, 900] {
        let mut c = s.command();
        with_auth(&s, &mut c);
        let mut child = c
            .args(["pull", "-q", "--max-concurrent-downloads", "2", &name])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(wait_ms));
        let _ = child.kill();
        let _ = child.wait();
        // The next command sweeps; no partial layer or image is visible.
        let images = ok(&s, &["images", "-q"]);
        assert!(images.trim().is_empty() || images.lines().count() == 1, "{images}");
        for l in s.layer_dirs() {
            assert!(s.root().join("layers").join(&l).join("diff").is_dir(), "layer {l} without its tree");
        }
        assert!(s.tmp_entries().is_empty(), "{:?}", s.tmp_entries());
    }
    let before = proxy.blob_gets().len();
    let done = s.layer_dirs().len();
    ok(&s, &["pull", "-q", &name]);
    let fetched = proxy.blob_gets().len() - before;
    assert!(fetched <= 1 + 4 - done, "finished layers are not downloaded again ({done} done, {fetched} fetched)");
    assert_eq!(s.image_id(&name).len(), 71);
    let t = s.image_tree(&name);
    assert!(t.contains_key("l3/data"));
}

#[test]
fn build_pulls_its_base_and_adds_files_from_urls() {
    let reg = Registry::start();
    let s = Strata::on_host_network("overlay");
    let base = s.write("base.tar", &docker_archive(&[TestImage::new("base:1", vec![busybox_layer()])]));
    skopeo_push(&base, &format!("{}/lib/busybox:1", reg.addr));
    // Any blob the registry serves is a file at a URL.
    let payload = b"fetched over http\n".to_vec();
    let digest = reg.put_blob("lib/files", &payload);
    let url = format!("{}/v2/lib/files/blobs/{digest}", reg.url());
    let ctx = s.path("ctx");
    std::fs::create_dir(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        format!("FROM {}/lib/busybox:1\nADD {url} /fetched.txt\nADD {url} /dir/\nRUN cat /fetched.txt\n", reg.addr),
    )
    .unwrap();
    let (code, out, err) = strata(&s, &["build", "--network", "none", "-t", "from-registry:1", ctx.to_str().unwrap()]);
    assert_eq!(code, 0, "{out} {err}");
    assert!(out.contains("fetched over http"), "{out}");
    assert_eq!(
        ok(
            &s,
            &["run", "--network", "none", "--rm", "from-registry:1", "cat", "/fetched.txt", &format!("/dir/{digest}")]
        ),
        "fetched over http\nfetched over http\n"
    );
    let t = s.image_tree("from-registry:1");
    assert_eq!(t["fetched.txt"].mode, 0o600, "downloaded files are 600 as Docker makes them");
    // The base came from the registry and is now a local image too.
    assert!(ok(&s, &["images"]).contains(&format!("{}/lib/busybox", reg.addr)));
    // Unchanged URL content: the ADD steps are cached.
    let (_, again, _) = strata(&s, &["build", "--network", "none", "-t", "from-registry:1", ctx.to_str().unwrap()]);
    assert_eq!(again.matches("CACHED").count(), 3, "{again}");
    // --checksum: the right one passes, a wrong one stops the build naming the line.
    let good = format!("FROM {}/lib/busybox:1\nADD --checksum={digest} {url} /checked\n", reg.addr);
    std::fs::write(ctx.join("Dockerfile"), good).unwrap();
    ok(&s, &["build", "--network", "none", "-q", "-t", "checked:1", ctx.to_str().unwrap()]);
    let wrong = format!("sha256:{}", "0".repeat(64));
    let bad = format!("FROM {}/lib/busybox:1\nADD --checksum={wrong} {url} /checked\n", reg.addr);
    std::fs::write(ctx.join("Dockerfile"), bad).unwrap();
    let (code, _, err) = strata(&s, &["build", "--network", "none", "-t", "checked:2", ctx.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("Dockerfile:2:") && err.contains("checksum mismatch"), "{err}");
}

#[test]
fn an_image_loaded_from_an_archive_then_pulled_fetches_no_layer_blob() {
    let reg = Registry::start();
    let s = Strata::on_host_network("overlay");
    let app = s.write("app.tar", &three_layers("app:1", 11));
    skopeo_push(&app, &format!("{}/loaded/app:1", reg.addr));
    ok(&s, &["load", "-q", "-i", app.to_str().unwrap()]);
    let proxy = Proxy::start(&reg.addr, Mode::Pass);
    let name = format!("{}/loaded/app:1", proxy.addr);
    let id = ok(&s, &["pull", "-q", &name]);
    assert_eq!(id.trim(), s.image_id("app:1"), "the same image");
    let gets = proxy.blob_gets();
    assert!(gets.is_empty(), "no blob: the layers and the config are in the store already: {gets:?}");
    // The pulled name is usable, and pushing it elsewhere on the registry still works.
    assert_eq!(
        ok(&s, &["run", "--network", "none", "--rm", &name, "cat", "/etc/passwd"]),
        String::from_utf8_lossy(PASSWD)
    );
    ok(&s, &["push", "-q", &name, &format!("{}/copy/app:1", reg.addr)]);
}

#[test]
fn a_base_loaded_from_an_archive_is_not_fetched_again_by_a_pull_of_an_image_on_it() {
    let reg = Registry::start();
    let other_reg = Registry::start();
    let s = Strata::on_host_network("overlay");
    let base = s.write("base.tar", &docker_archive(&[TestImage::new("base:1", vec![busybox_layer()])]));
    let app = s.write("app.tar", &three_layers("app:1", 13));
    skopeo_push(&app, &format!("{}/stack/app:1", reg.addr));
    // The base layer is here already, stored uncompressed; the registry has it gzip-compressed.
    ok(&s, &["load", "-q", "-i", base.to_str().unwrap()]);
    let proxy = Proxy::start(&reg.addr, Mode::Pass);
    let name = format!("{}/stack/app:1", proxy.addr);
    ok(&s, &["pull", "-q", &name]);
    let gets = proxy.blob_gets();
    assert_eq!(gets.len(), 3, "the config and the two new layers, not the base layer again: {gets:?}");
    assert_eq!(ok(&s, &["run", "--network", "none", "--rm", &name, "cat", "/app/hello"]), "hello 13\n");
    // Saved, it is a whole OCI layout (a manifest naming the blobs written).
    let out = s.path("app.oci.tar");
    ok(&s, &["save", "--format", "oci-archive", "-o", out.to_str().unwrap(), &name]);
    let t = Strata::on_host_network("overlay");
    t.ok(&["load", "-q", "-i", out.to_str().unwrap()]);
    assert_eq!(t.ok(&["run", "--network", "none", "--rm", &name, "cat", "/app/hello"]), "hello 13\n");
    // Pushed to another registry, the registry's base blob is fetched from where it came
    // and the pushed manifest is the one pulled, digest for digest.
    let dest = format!("{}/moved/app:1", other_reg.addr);
    let digest = ok(&s, &["push", "-q", &name, &dest]);
    let back = Strata::on_host_network("overlay");
    let id = ok(&back, &["pull", "-q", &dest]);
    assert_eq!(id.trim(), s.image_id(&name));
    assert!(digest.trim().starts_with("sha256:"), "{digest}");
}

#[test]
fn run_pulls_a_missing_image_once_and_the_pull_policies_mean_what_they_say() {
    let reg = Registry::start();
    let s = Strata::on_host_network("overlay");
    let top = LayerTar::new().file("hello.txt", b"pulled and run\n").build();
    let app = s.write("app.tar", &docker_archive(&[TestImage::new("app:1", vec![busybox_layer(), top])]));
    skopeo_push(&app, &format!("{}/auto/app:1", reg.addr));
    let proxy = Proxy::start(&reg.addr, Mode::Pass);
    let name = format!("{}/auto/app:1", proxy.addr);
    let run =
        |pull: &str| strata(&s, &["run", "--rm", "--network", "none", "--pull", pull, &name, "cat", "/hello.txt"]);
    // never: the store lacks it, so nothing runs and nothing is fetched.
    let (code, out, err) = run("never");
    assert_eq!((code, out.as_str()), (125, ""), "{err}");
    assert!(err.contains(&name) && err.contains("--pull never"), "{err}");
    assert!(proxy.blob_gets().is_empty(), "{:?}", proxy.blob_gets());
    // missing: pulled once (config and two layers), then run.
    let (code, out, err) = run("missing");
    assert_eq!((code, out.as_str()), (0, "pulled and run\n"), "{err}");
    assert!(err.contains(&format!("Unable to find image '{name}' locally")), "{err}");
    assert_eq!(proxy.blob_gets().len(), 3, "{:?}", proxy.blob_gets());
    let (code, out, _) = run("missing");
    assert_eq!((code, out.as_str()), (0, "pulled and run\n"));
    // always: the manifest is asked for again, no blob is fetched when nothing changed.
    let manifests = |p: &Proxy| {
        p.requests.lock().unwrap().iter().filter(|(m, path, _)| m == "GET" && path.contains("/manifests/")).count()
    };
    let before = manifests(&proxy);
    let (code, out, err) = run("always");
    assert_eq!((code, out.as_str()), (0, "pulled and run\n"), "{err}");
    assert_eq!(manifests(&proxy), before + 1);
    assert_eq!(proxy.blob_gets().len(), 3, "no blob fetched again: {:?}", proxy.blob_gets());
    let (code, _, err) = strata(&s, &["create", "--pull", "sometimes", &name]);
    assert_eq!(code, 125, "{err}");
    assert!(err.contains("sometimes"), "{err}");
}

#[test]
fn a_pulled_image_has_its_repo_digest_and_is_found_by_it() {
    let reg = Registry::start();
    let s = Strata::on_host_network("overlay");
    let top = LayerTar::new().file("hello.txt", b"by digest\n").build();
    let app = s.write("app.tar", &docker_archive(&[TestImage::new("app:1", vec![busybox_layer(), top])]));
    let name = format!("{}/digest/app:1", reg.addr);
    skopeo_push(&app, &name);
    let o = Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", "--format", "{{.Digest}}", &format!("docker://{name}")])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let digest = String::from_utf8_lossy(&o.stdout).trim().to_string();
    ok(&s, &["pull", "-q", &name]);
    let shown = ok(&s, &["images", "--digests", "--format", "{{.Repository}} {{.Digest}}"]);
    assert_eq!(shown, format!("{}/digest/app {digest}\n", reg.addr));
    let table = ok(&s, &["images", "--digests"]);
    assert!(table.lines().next().unwrap().contains("DIGEST") && table.contains(&digest), "{table}");
    assert_eq!(
        ok(&s, &["inspect", "-f", "{{index .RepoDigests 0}}", &name]),
        format!("{}/digest/app@{digest}\n", reg.addr)
    );
    let by_digest = format!("{}/digest/app@{digest}", reg.addr);
    assert_eq!(
        ok(&s, &["run", "--rm", "--network", "none", "--pull", "never", &by_digest, "cat", "/hello.txt"]),
        "by digest\n"
    );
    // Another repository never held it: not found by that name.
    let (code, _, err) = strata(&s, &["inspect", &format!("{}/other/app@{digest}", reg.addr)]);
    assert_eq!(code, 1, "{err}");
    ok(&s, &["rmi", &by_digest]);
    assert_eq!(ok(&s, &["images", "-q"]), "");
}

#[test]
fn check_repair_fetches_damaged_or_lost_layer_blobs_again_from_their_registry() {
    let reg = Registry::start();
    let s = Strata::on_host_network("overlay");
    let a = s.write("app.tar", &three_layers("app:1", 7));
    let name = format!("{}/check/app:1", reg.addr);
    skopeo_push(&a, &name);
    s.ok(&["pull", "-q", &name]);
    let clean = |s: &Strata| {
        let (code, out, err) = s.code(&["system", "check"]);
        assert_eq!(code, 0, "{out}{err}");
    };
    clean(&s);
    let v: serde_json::Value = serde_json::from_str(&s.ok(&["inspect", &name])).unwrap();
    let layer = &v[0]["Layers"][1];
    let blob = layer["Digest"].as_str().unwrap().to_string();
    assert_ne!(layer["Digest"], layer["DiffID"], "a gzip layer, kept as its blob: {layer:#}");
    let blob_file = s.root().join("blobs/sha256").join(blob.trim_start_matches("sha256:"));
    let chain = layer["ChainID"].as_str().unwrap().to_string();
    let data_file = s.root().join("layers").join(chain.trim_start_matches("sha256:")).join("diff/data/blob.bin");

    // A flipped byte in the layer's blob and a damaged file in its directory.
    let mut b = std::fs::read(&blob_file).unwrap();
    let mid = b.len() / 2;
    b[mid] ^= 0xff;
    std::fs::write(&blob_file, &b).unwrap();
    std::fs::write(&data_file, b"not the data").unwrap();
    let (code, out, _) = s.code(&["system", "check"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!("blob-corrupt: {blob}")) && out.contains(&format!("layer-corrupt: {chain}")),
        "{out}"
    );
    let (code, out, err) = s.code(&["system", "check", "--repair"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(&format!("fixed: blob-corrupt: {blob}: fetched again from {}/check/app", reg.addr)), "{out}");
    clean(&s);
    let data: Vec<u8> = (0..200_000u32).map(|i| (i as u8).wrapping_mul(7)).collect();
    assert_eq!(std::fs::read(&data_file).unwrap(), data);

    // The blob gone altogether.
    std::fs::remove_file(&blob_file).unwrap();
    let (code, out, err) = s.code(&["system", "check", "--repair"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(&format!("fixed: blob-missing: {blob}")), "{out}");
    clean(&s);
}

const CHUNKED_FILE: usize = 64 << 10;

/// busybox and a layer of 24 files of 64 KiB; `changed` replaces the
/// first file's content and adds one more file.
fn chunked_archive(tag: &str, changed: bool) -> Vec<u8> {
    let mut data = LayerTar::new().dir("data");
    for i in 0..24u64 {
        let seed = if changed && i == 0 { 1000 } else { i };
        data = data.file(&format!("data/f{i}"), &noise(CHUNKED_FILE, seed));
    }
    if changed {
        data = data.file("data/new", &noise(CHUNKED_FILE, 2000));
    }
    docker_archive(&[TestImage::new(tag, vec![busybox_layer(), data.build()])])
}

/// Push an archive's image with podman (a store of its own), compressed as `format`.
fn podman_push_as(s: &Strata, archive: &[u8], tag: &str, dest: &str, format: &str) {
    let p = Peer::new("podman");
    let file = s.write(&format!("{tag}.tar").replace(':', "-"), archive);
    p.ok(&["load", "-q", "-i", &file.display().to_string()]);
    p.ok(&["push", "-q", "--tls-verify=false", "--compression-format", format, tag, &format!("docker://{dest}")]);
}

fn podman_push_chunked(s: &Strata, archive: &[u8], tag: &str, dest: &str) {
    podman_push_as(s, archive, tag, dest, "zstd:chunked");
}

/// The manifest as the registry has it.
fn registry_manifest(reg: &Registry, repo: &str, tag: &str) -> serde_json::Value {
    let url = format!("http://{}/v2/{repo}/manifests/{tag}", reg.addr);
    let body = curl(&["-sf", "-H", "Accept: application/vnd.oci.image.manifest.v1+json", &url]);
    serde_json::from_str(&body).unwrap()
}

/// Pull an image podman pushed as `format` and compare with podman's pull of it.
fn pull_matches_podman(format: &str) {
    let reg = Registry::start();
    let s = Strata::on_host_network("overlay");
    let name = format!("{}/zstd/app:a", reg.addr);
    podman_push_as(&s, &chunked_archive("zstd:a", false), "zstd:a", &name, format);
    let m = registry_manifest(&reg, "zstd/app", "a");
    let layers = m["layers"].as_array().unwrap();
    let chunked = format == "zstd:chunked";
    assert!(
        layers.iter().all(|l| l["mediaType"] == "application/vnd.oci.image.layer.v1.tar+zstd"
            && l["annotations"]["io.containers.zstd-chunked.manifest-position"].is_string() == chunked),
        "podman pushed {format} layers: {m}"
    );
    ok(&s, &["pull", "-q", &name]);
    let p = Peer::new("podman");
    p.ok(&["pull", "-q", "--tls-verify=false", &name]);
    let podman_id = p.ok(&["inspect", "--format", "{{.Id}}", &name]).trim().to_string();
    assert_eq!(s.image_id(&name), format!("sha256:{podman_id}"), "same image ID as podman's pull");
    let mnt = p.ok(&["image", "mount", &name]);
    let theirs = shape(&tree(Path::new(mnt.trim())));
    p.ok(&["image", "unmount", &name]);
    assert_eq!(shape(&s.image_tree(&name)), theirs, "same files as podman's pull");
    // Stored as received: a push elsewhere sends the same layer blobs.
    let again = format!("{}/zstd/copy:a", reg.addr);
    ok(&s, &["push", "-q", &name, &again]);
    assert_eq!(registry_manifest(&reg, "zstd/copy", "a")["layers"], m["layers"], "the same layer blobs pushed back");
    assert_check_clean(&s);
}

#[test]
fn a_zstd_image_pulls_with_podmans_image_id_and_files() {
    pull_matches_podman("zstd");
}

#[test]
fn a_zstd_chunked_image_pulls_with_podmans_image_id_and_files() {
    pull_matches_podman("zstd:chunked");
}

/// Image a, then image b (one file changed, one added) through a proxy
/// in `mode`: the bytes the proxy sent for b, and the bound the issue sets
/// (the files b does not share and its metadata).
fn pull_second_chunked_image(s: &Strata, mode: Mode) -> (String, u64, u64) {
    let reg = Registry::start();
    let (a, b) = (format!("{}/chunked/app:a", reg.addr), format!("{}/chunked/app:b", reg.addr));
    podman_push_chunked(s, &chunked_archive("chunked:a", false), "chunked:a", &a);
    podman_push_chunked(s, &chunked_archive("chunked:b", true), "chunked:b", &b);
    ok(s, &["pull", "-q", &a]);
    let proxy = Proxy::start(&reg.addr, mode);
    let via = format!("{}/chunked/app:b", proxy.addr);
    ok(s, &["pull", "-q", &via]);
    let sent = proxy.sent.load(Ordering::SeqCst);
    // Metadata: the manifest, the config, the data layer's table of
    // contents, a tar header per entry, an HTTP head per request.
    let m = registry_manifest(&reg, "chunked/app", "b");
    let position = m["layers"][1]["annotations"]["io.containers.zstd-chunked.manifest-position"].as_str().unwrap();
    let toc_len: u64 = position.split(':').nth(1).unwrap().parse().unwrap();
    let entries = 27; // data/, 25 files, the footer
    let requests = proxy.requests.lock().unwrap().len() as u64;
    let metadata =
        m.to_string().len() as u64 + m["config"]["size"].as_u64().unwrap() + toc_len + 512 * entries + 1024 * requests;
    let bound = 2 * CHUNKED_FILE as u64 + metadata;
    eprintln!("the proxy sent {sent} bytes for b in {requests} requests; the bound is {bound}");
    (via, sent, bound)
}

/// The data files image b must hold.
fn expected_b_files() -> Vec<(String, String)> {
    let mut want: Vec<(String, String)> = (0..24u64)
        .map(|i| (format!("data/f{i}"), sha256_hex(&noise(CHUNKED_FILE, if i == 0 { 1000 } else { i }))))
        .collect();
    want.push(("data/new".into(), sha256_hex(&noise(CHUNKED_FILE, 2000))));
    want.sort();
    want
}

fn data_files(s: &Strata, name: &str) -> Vec<(String, String)> {
    s.image_tree(name)
        .into_iter()
        .filter(|(k, n)| k.starts_with("data/") && n.kind == 'f')
        .map(|(k, n)| (k, n.data))
        .collect()
}

#[test]
fn a_zstd_chunked_image_sharing_files_with_a_stored_one_fetches_only_the_files_it_does_not_share() {
    let s = Strata::on_host_network("overlay");
    let (b, sent, bound) = pull_second_chunked_image(&s, Mode::Pass);
    assert!(sent <= bound, "the proxy sent {sent} bytes; at most {bound} (the unshared files and metadata)");
    assert_eq!(data_files(&s, &b), expected_b_files());
    assert_check_clean(&s);
}

#[test]
fn a_zstd_chunked_pull_fetches_the_whole_blob_from_a_registry_without_ranges() {
    let s = Strata::on_host_network("overlay");
    let (b, sent, _) = pull_second_chunked_image(&s, Mode::NoRange);
    let files = 25 * CHUNKED_FILE as u64; // the data layer's contents
    assert!(sent > files, "the whole data layer came: {sent} bytes");
    assert!(sent < 2 * files, "once, not again after the first ranged request: {sent} bytes");
    assert_eq!(data_files(&s, &b), expected_b_files());
    assert_check_clean(&s);
    assert!(s.tmp_entries().is_empty());
}

#[test]
fn a_zstd_chunked_pull_killed_while_assembling_or_after_leaves_a_consistent_store_and_the_next_completes() {
    use std::os::unix::process::ExitStatusExt;
    let reg = Registry::start();
    let (a, b) = (format!("{}/chunked/app:a", reg.addr), format!("{}/chunked/app:b", reg.addr));
    let s = Strata::on_host_network("overlay");
    podman_push_chunked(&s, &chunked_archive("chunked:a", false), "chunked:a", &a);
    podman_push_chunked(&s, &chunked_archive("chunked:b", true), "chunked:b", &b);
    ok(&s, &["pull", "-q", &a]);
    // blob-rename: the assembled blob complete but not in place; layer-unpack: in place, its layer half made.
    for point in ["blob-rename", "layer-unpack"] {
        let proxy = Proxy::start(&reg.addr, Mode::Pass);
        let via = format!("{}/chunked/app:b", proxy.addr);
        let out =
            s.command().args(["pull", "-q", &via]).env("FAILPOINTS", format!("{point}=return(kill)")).output().unwrap();
        assert_eq!(out.status.signal(), Some(libc::SIGKILL), "{point}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(proxy.ranged() > 0, "{point}: killed while fetching in ranges");
        ok(&s, &["pull", "-q", &via]);
        assert_eq!(data_files(&s, &via), expected_b_files(), "after a kill at {point}");
        assert_check_clean(&s);
        assert!(s.tmp_entries().is_empty(), "{point}: {:?}", s.tmp_entries());
        ok(&s, &["rmi", &via]);
    }
}
