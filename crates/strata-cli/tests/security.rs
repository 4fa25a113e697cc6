//! Attacks from outside — an image, a Dockerfile, a build context, a mount
//! spec, a registry — that must not reach the host. Each test is written as
//! the attack that worked before paths were resolved inside their roots:
//! symlinks in images and contexts pointing at test-owned host directories,
//! `..` in mount targets and VOLUME paths, a symlinked /etc/passwd, a
//! writable submount under a read-only bind, a store other users could read,
//! and a registry that never stops sending.

mod common;

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

/// A host directory the attacks aim at, holding one file they must not change.
fn victim(s: &Strata) -> PathBuf {
    let v = s.path("victim");
    fs::create_dir(&v).unwrap();
    fs::write(v.join("existing"), "host").unwrap();
    v
}

fn assert_untouched(v: &Path) {
    let names: Vec<String> = fs::read_dir(v).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert_eq!(names, vec!["existing".to_string()], "the host directory {} was written", v.display());
    assert_eq!(fs::read_to_string(v.join("existing")).unwrap(), "host");
}

/// Load `busybox:latest` plus `evil:latest` = busybox and a layer of `extra`.
fn load_with(s: &Strata, extra: LayerTar, volumes: &[&str]) {
    let mut evil = TestImage::new("evil:latest", vec![busybox_layer(), extra.build()]);
    evil.volumes = volumes.iter().map(|v| v.to_string()).collect();
    let a = s.write("images.tar", &docker_archive(&[TestImage::new("busybox:latest", vec![busybox_layer()]), evil]));
    s.ok(&["load", "-q", "-i", a.to_str().unwrap()]);
}

fn context(s: &Strata, dockerfile: &str) -> PathBuf {
    let ctx = s.path("ctx");
    fs::create_dir_all(&ctx).unwrap();
    fs::write(ctx.join("Dockerfile"), dockerfile).unwrap();
    fs::write(ctx.join("a.txt"), "a").unwrap();
    ctx
}

fn build_through_image_symlinks_writes_nothing_on_the_host(driver: &str) {
    let s = Strata::new(driver);
    let v = victim(&s);
    let vs = v.to_str().unwrap();
    load_with(
        &s,
        LayerTar::new().symlink("wd", vs).symlink("cp", vs).symlink("rel", "../../../../../../../../..").dir("srv"),
        &[],
    );
    let ctx = context(
        &s,
        &format!(
            "FROM evil\nWORKDIR /wd\nCOPY a.txt x.txt\nCOPY a.txt /cp/existing\nCOPY <<EOF /cp/heredoc\nhi\nEOF\n\
             ADD a.txt /cp/added\nCOPY a.txt /rel{vs}/viarel\n\
             RUN --mount=type=bind,source=a.txt,target=/wd/mnt cat /wd/mnt > /srv/seen\n\
             RUN --mount=type=bind,source=a.txt,target=/../../../../..{vs}/dotdot true\n"
        ),
    );
    s.ok(&["build", "-t", "out", ctx.to_str().unwrap()]);
    assert_untouched(&v);
    // The writes landed inside the image, where its links lead there.
    let inside =
        s.ok(&["run", "--rm", "out", "cat", "/wd/x.txt", &format!("{vs}/existing"), "/cp/heredoc", "/srv/seen"]);
    assert_eq!(inside, "aahi\na");
}

fn context_stage_and_image_symlinks_never_deliver_host_content(driver: &str) {
    let s = Strata::new(driver);
    let secret = s.path("secret");
    fs::create_dir(&secret).unwrap();
    fs::write(secret.join("f"), "host-secret").unwrap();
    let ss = secret.to_str().unwrap();
    load_with(&s, LayerTar::new().symlink("ilink", ss), &[]);
    let ctx = context(&s, "FROM busybox\n");
    std::os::unix::fs::symlink(&secret, ctx.join("dlink")).unwrap();
    std::os::unix::fs::symlink(secret.join("f"), ctx.join("flink")).unwrap();
    fs::create_dir(ctx.join("private")).unwrap();
    fs::write(ctx.join("private/key"), "ignored-key").unwrap();
    std::os::unix::fs::symlink("private", ctx.join("plink")).unwrap();
    fs::write(ctx.join(".dockerignore"), "private\n").unwrap();
    let attacks = [
        "FROM busybox\nCOPY dlink/f /x\n".to_string(),
        "FROM busybox\nCOPY dlink/* /x/\n".to_string(),
        "FROM busybox\nCOPY plink/key /x\n".to_string(),
        "FROM busybox\nCOPY plink/ /x/\n".to_string(),
        "FROM evil\nFROM busybox\nCOPY --from=0 /ilink/f /x\n".to_string(),
        format!("FROM busybox AS s\nRUN ln -s {ss} /slink\nFROM busybox\nCOPY --from=s /slink/f /x\n"),
        "FROM busybox\nRUN --mount=type=bind,from=evil,source=ilink/f,target=/m cat /m > /x\n".to_string(),
        "FROM busybox\nRUN --mount=type=bind,source=dlink,target=/m cat /m/f > /x\n".to_string(),
    ];
    for (i, df) in attacks.iter().enumerate() {
        fs::write(ctx.join("Dockerfile"), df).unwrap();
        let tag = format!("a{i}");
        let (code, _, err) = s.code(&["build", "-t", &tag, ctx.to_str().unwrap()]);
        if code == 0 {
            // Built: then /x must hold nothing from the host.
            let (_, out, _) = s.code(&["run", "--rm", &tag, "sh", "-c", "cat /x /x/* 2>/dev/null; true"]);
            assert!(!out.contains("host-secret") && !out.contains("ignored-key"), "attack {i} delivered {out:?}");
        } else {
            assert!(!err.contains("host-secret"), "attack {i}: {err}");
        }
    }
    // A link to a file is copied as the link itself, which points nowhere inside the image.
    fs::write(ctx.join("Dockerfile"), "FROM busybox\nCOPY flink /x\n").unwrap();
    s.ok(&["build", "-t", "flink", ctx.to_str().unwrap()]);
    let (code, out, _) = s.code(&["run", "--rm", "flink", "cat", "/x"]);
    assert!(code != 0 && !out.contains("host-secret"), "{code} {out}");
}

/// Overlay only: there strata itself makes the mount points (in the init
/// lower); on the copy driver the runtime does, confined by libpathrs, and a
/// copy-driver run of this test stayed green on the build before the fix, so
/// it checked nothing of strata's.
#[test]
fn dotdot_mount_targets_and_volumes_change_nothing_on_the_host() {
    let s = Strata::new("overlay");
    let v = victim(&s);
    let vs = v.to_str().unwrap();
    let src = s.path("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("f"), "src").unwrap();
    let up = "/../../../../../../../..";
    load_with(&s, LayerTar::new().dir("srv"), &[&format!("{up}{vs}/vol")]);
    let bind = format!("{}:{up}{vs}/bind", src.display());
    let mount = format!("type=bind,source={},target={up}{vs}/mount", src.display());
    s.ok(&["run", "--rm", "-v", &bind, "--mount", &mount, "busybox", "cat", &format!("{vs}/bind/f")]);
    s.ok(&["run", "--name", "vols", "evil", "true"]);
    s.ok(&["run", "--rm", "--volumes-from", "vols", "busybox", "true"]);
    s.ok(&["run", "--rm", "-v", &format!("named:{up}{vs}/named"), "evil", "true"]);
    let ctx = context(&s, &format!("FROM busybox\nRUN --mount=type=bind,source=a.txt,target={up}{vs}/build true\n"));
    s.ok(&["build", "-t", "b", ctx.to_str().unwrap()]);
    assert_untouched(&v);
}

/// A tmpfs mounted on `dir`, unmounted when dropped (also when the test fails).
struct TmpfsMount(PathBuf);

impl TmpfsMount {
    fn new(dir: &Path) -> Self {
        fs::create_dir_all(dir).unwrap();
        assert!(Command::new("mount").args(["-t", "tmpfs", "tmpfs"]).arg(dir).status().unwrap().success());
        TmpfsMount(dir.to_path_buf())
    }
}

impl Drop for TmpfsMount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn read_only_binds_are_read_only_all_the_way_down(driver: &str) {
    let s = Strata::new(driver);
    load_with(&s, LayerTar::new().dir("srv"), &[]);
    let src = s.path("src");
    let _sub = TmpfsMount::new(&src.join("sub"));
    let ro = format!("{}:/m:ro", src.display());
    let (code, _, _) = s.code(&["run", "--rm", "-v", &ro, "busybox", "touch", "/m/sub/x"]);
    assert_ne!(code, 0, "a write below a read-only bind succeeded");
    assert!(!src.join("sub/x").exists());
    // RUN --mount=type=bind is read-only too, submounts included.
    let ctx = context(&s, "FROM busybox\nRUN --mount=type=bind,target=/c touch /c/sub/y\n");
    let _ctx_sub = TmpfsMount::new(&ctx.join("sub"));
    let (code, _, _) = s.code(&["build", "-t", "ro", ctx.to_str().unwrap()]);
    assert_ne!(code, 0, "a build wrote below its read-only context bind");
    assert!(!ctx.join("sub/y").exists());
}

fn user_lookup_stays_inside_the_image(driver: &str) {
    let s = Strata::new(driver);
    let host_passwd = s.write("host-passwd", b"hostuser:x:4242:4242::/:/bin/sh\n");
    let evil = LayerTar::new().symlink("etc/passwd", host_passwd.to_str().unwrap());
    load_with(&s, evil, &[]);
    let (code, out, err) = s.code(&["run", "--rm", "-u", "hostuser", "evil", "id", "-u"]);
    assert_eq!(code, 125, "{out}{err}");
    assert!(err.contains("unable to find user hostuser"), "{err}");
    // A link to an endless device reads nothing (and ends).
    let s2 = Strata::new(driver);
    load_with(&s2, LayerTar::new().symlink("etc/passwd", "/dev/zero"), &[]);
    let (code, _, err) = s2.code(&["run", "--rm", "-u", "someone", "evil", "true"]);
    assert_eq!(code, 125);
    assert!(err.contains("unable to find user someone"), "{err}");
}

fn diff_and_commit_over_a_replaced_symlink_list_only_the_containers_files(driver: &str) {
    let s = Strata::new(driver);
    let secret = s.path("secret");
    fs::create_dir(&secret).unwrap();
    fs::write(secret.join("host-only-name"), "x").unwrap();
    load_with(&s, LayerTar::new().symlink("link", secret.to_str().unwrap()), &[]);
    s.ok(&["run", "--name", "cont", "evil", "sh", "-c", "rm /link && mkdir /link && echo mine > /link/own"]);
    let diff = s.ok(&["diff", "cont"]);
    assert!(diff.contains("/link/own"), "{diff}");
    assert!(!diff.contains("host-only-name"), "diff listed a host file: {diff}");
    s.ok(&["commit", "cont", "committed"]);
    let (code, out, _) = s.code(&["run", "--rm", "committed", "ls", "/link"]);
    assert_eq!((code, out.as_str()), (0, "own\n"));
}

both_drivers!(
    build_through_image_symlinks_writes_nothing_on_the_host,
    context_stage_and_image_symlinks_never_deliver_host_content,
    read_only_binds_are_read_only_all_the_way_down,
    user_lookup_stays_inside_the_image,
    diff_and_commit_over_a_replaced_symlink_list_only_the_containers_files,
    add_of_an_archive_writing_through_its_own_link_is_refused,
);

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

/// `cmd` as the unprivileged user nobody; whether it succeeded.
fn as_nobody(cmd: &[&str]) -> bool {
    let o = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .args(cmd)
        .output()
        .unwrap();
    o.status.success()
}

#[test]
fn the_store_is_private_to_root() {
    let s = Strata::new("overlay");
    load_with(&s, LayerTar::new().dir("srv"), &[]);
    let id = s.ok(&["create", "-e", "SECRET=hunter2", "busybox", "true"]);
    let root = s.root();
    assert_eq!(mode(&root), 0o700);
    assert_eq!(mode(&root.join("strata.db")), 0o600);
    assert_eq!(mode(&root.join("lock")), 0o600);
    // The test's temp dir must be traversable for the check below to mean anything.
    let mut p = root.parent().unwrap().to_path_buf();
    while p != Path::new("/") {
        use std::os::unix::fs::PermissionsExt;
        let m = mode(&p);
        fs::set_permissions(&p, fs::Permissions::from_mode(m | 0o711)).unwrap();
        p.pop();
    }
    assert!(as_nobody(&["ls", "/"]), "setpriv works");
    assert!(!as_nobody(&["cat", root.join("strata.db").to_str().unwrap()]));
    assert!(!as_nobody(&["ls", root.join("containers").join(id.trim()).join("upper").to_str().unwrap()]));
    // A store made before this rule is fixed when opened.
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&root, fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(root.join("strata.db"), fs::Permissions::from_mode(0o644)).unwrap();
    s.ok(&["images", "-q"]);
    assert_eq!((mode(&root), mode(&root.join("strata.db"))), (0o700, 0o600));
}

/// A registry on loopback that answers the manifest, config or layer of
/// `evil` with bytes that never end.
struct EndlessRegistry {
    port: u16,
}

impl EndlessRegistry {
    fn start(config: Vec<u8>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let config_digest = format!("sha256:{}", sha256_hex(&config));
        let endless_digest = format!("sha256:{}", "e".repeat(64));
        let manifest = |config_digest: &str, config_size: usize, layer_digest: &str| {
            serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_size},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest, "size": 4096}]})
            .to_string()
        };
        let bad_config = manifest(&endless_digest, 1000, &endless_digest);
        let bad_layer = manifest(&config_digest, config.len(), &endless_digest);
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let (bad_config, bad_layer, config, config_digest) =
                    (bad_config.clone(), bad_layer.clone(), config.clone(), config_digest.clone());
                std::thread::spawn(move || {
                    // Plain HTTP only: a TLS hello (0x16) is hung up on, so the client falls back at once.
                    let mut first = [0u8; 1];
                    if conn.peek(&mut first).ok() != Some(1) || first[0] == 0x16 {
                        return;
                    }
                    let mut line = String::new();
                    if BufReader::new(&conn).read_line(&mut line).is_err() {
                        return;
                    }
                    let path = line.split(' ').nth(1).unwrap_or("").to_string();
                    let body = |b: &str| {
                        format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\nConnection: close\r\n\r\n{b}", b.len())
                    };
                    let reply = if path == "/v2/" {
                        body("{}")
                    } else if path.ends_with("/manifests/config") {
                        body(&bad_config)
                    } else if path.ends_with("/manifests/layer") {
                        body(&bad_layer)
                    } else if path.ends_with(&config_digest) {
                        let mut head =
                            format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", config.len())
                                .into_bytes();
                        head.extend_from_slice(&config);
                        let _ = conn.write_all(&head);
                        return;
                    } else if path.contains("/manifests/") || path.contains("/blobs/") {
                        // Endless: no length, bytes until the client goes away.
                        let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\nConnection: close\r\n\r\n");
                        let chunk = vec![b' '; 64 * 1024];
                        while conn.write_all(&chunk).is_ok() {}
                        return;
                    } else {
                        "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_string()
                    };
                    let _ = conn.write_all(reply.as_bytes());
                });
            }
        });
        EndlessRegistry { port }
    }
}

/// Peak resident memory of the children this test process has waited for, in KiB.
fn children_max_rss_kib() -> i64 {
    // SAFETY: getrusage fills the struct we own.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut u) };
    u.ru_maxrss
}

#[test]
fn a_registry_that_never_stops_sending_fails_the_pull_within_a_memory_bound() {
    // The registry listens on the host's loopback.
    let s = Strata::on_host_network("overlay");
    let config = config_for(&TestImage::new("x", vec![LayerTar::new().dir("d").build()]));
    let reg = EndlessRegistry::start(config);
    let r = format!("127.0.0.1:{}/evil", reg.port);
    let before = s.state();
    for (tag, says) in [
        ("endless", "larger than 4194304"),
        ("config", "more than the 1000 bytes"),
        ("layer", "more than the 4096 bytes"),
    ] {
        let (code, _, err) = s.code(&["pull", "-q", &format!("{r}:{tag}")]);
        assert_ne!(code, 0, "{tag}");
        assert!(err.contains(says), "{tag}: {err}");
    }
    assert_eq!(s.state(), before, "a failed pull left something behind");
    let rss = children_max_rss_kib();
    assert!(rss < 512 * 1024, "a strata process grew to {rss} KiB");
}

#[test]
fn a_failed_start_with_rm_leaves_no_record() {
    let s = Strata::new("overlay");
    load_with(&s, LayerTar::new().dir("srv"), &[]);
    let (code, _, _) = s.code(&["run", "--rm", "-w", "/nonexistent/dir", "busybox", "true"]);
    // Docker creates a missing working directory; either way nothing is left.
    let ps = s.ok(&["ps", "-a", "-q"]);
    assert_eq!(ps, "", "exit {code}: a --rm container stayed");
}

#[test]
fn network_none_has_loopback_up() {
    let s = Strata::new("overlay");
    load_with(&s, LayerTar::new().dir("srv"), &[]);
    let flags = s.ok(&["run", "--rm", "busybox", "cat", "/sys/class/net/lo/flags"]);
    let flags = u32::from_str_radix(flags.trim().trim_start_matches("0x"), 16).unwrap();
    assert_eq!(flags & 1, 1, "lo is down: flags {flags:#x}");
}

#[test]
fn a_command_on_a_bind_mount_runs() {
    let s = Strata::new("overlay");
    load_with(&s, LayerTar::new().dir("srv"), &[]);
    let tools = s.path("tools");
    fs::create_dir(&tools).unwrap();
    fs::copy("/bin/busybox", tools.join("echo")).unwrap();
    let out =
        s.ok(&["run", "--rm", "-v", &format!("{}:/opt/tools:ro", tools.display()), "busybox", "/opt/tools/echo", "hi"]);
    assert_eq!(out, "hi\n");
}

fn add_of_an_archive_writing_through_its_own_link_is_refused(driver: &str) {
    let s = Strata::new(driver);
    let v = victim(&s);
    load_with(&s, LayerTar::new().dir("srv"), &[]);
    let ctx = context(&s, "FROM busybox\nADD evil.tar /srv/\n");
    let evil = LayerTar::new().symlink("link", v.to_str().unwrap()).file("link/pwned", b"x").build();
    fs::write(ctx.join("evil.tar"), evil).unwrap();
    let (code, err) = s.fails(&["build", "-t", "x", ctx.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("link/pwned"), "the entry is named: {err}");
    assert_untouched(&v);
    let dotdot = LayerTar::new().raw_file("../../../../escape", b"x").build();
    fs::write(ctx.join("evil.tar"), dotdot).unwrap();
    let (_, err) = s.fails(&["build", "-t", "x", ctx.to_str().unwrap()]);
    assert!(err.contains("escape"), "{err}");
    assert!(!s.path("escape").exists() && !Path::new("/escape").exists());
}
