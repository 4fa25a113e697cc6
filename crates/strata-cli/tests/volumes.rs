//! Volumes through the real binary: data outside the container layer that
//! outlives containers and is shared between them.

mod common;

use std::fs;

use common::*;

fn with_image() -> Strata {
    let s = Strata::new("overlay");
    let seed = LayerTar::new().dir("data").file("data/seed", b"from the image\n").build();
    let mut img = TestImage::new("vol:1", vec![busybox_layer(), seed]);
    img.created_by = vec!["base".into(), "seed".into()];
    let a = s.write("vol.tar", &docker_archive(&[img]));
    s.ok(&["load", "-i", a.to_str().unwrap()]);
    s
}

fn upper_bytes(s: &Strata, name: &str) -> u64 {
    let v: serde_json::Value = serde_json::from_str(&s.ok(&["inspect", name])).unwrap();
    let upper = v[0]["GraphDriver"]["Data"]["UpperDir"].as_str().unwrap().to_string();
    tree(std::path::Path::new(&upper))
        .iter()
        .filter(|(_, n)| n.kind == 'f')
        .map(|(k, _)| fs::metadata(std::path::Path::new(&upper).join(k)).unwrap().len())
        .sum()
}

#[test]
fn named_volume_outlives_its_container_and_is_seeded_once() {
    let s = with_image();
    // First use copies in what the image has at the path.
    let (code, out, _) = s.code(&[
        "run",
        "--name",
        "ww",
        "-v",
        "data:/data",
        "vol:1",
        "sh",
        "-c",
        "cat /data/seed; echo kept > /data/mine",
    ]);
    assert_eq!((code, out.as_str()), (0, "from the image\n"));
    s.ok(&["rm", "ww"]);
    assert!(s.ok(&["volume", "ls", "-q"]).lines().any(|l| l == "data"), "rm never removes a named volume");
    s.ok(&["run", "--rm", "-v", "data:/data", "vol:1", "sh", "-c", "echo changed > /data/seed"]);
    let (_, out, _) = s.code(&["run", "--rm", "-v", "data:/data", "vol:1", "cat", "/data/mine", "/data/seed"]);
    assert_eq!(out, "kept\nchanged\n", "data survives, and a second use does not re-seed");
    let v: serde_json::Value = serde_json::from_str(&s.ok(&["volume", "inspect", "data"])).unwrap();
    let mountpoint = v[0]["Mountpoint"].as_str().unwrap();
    assert_eq!(fs::read_to_string(format!("{mountpoint}/mine")).unwrap(), "kept\n");
}

#[test]
fn two_running_containers_share_a_volume() {
    let s = with_image();
    s.ok(&["volume", "create", "shared"]);
    s.ok(&[
        "run",
        "-d",
        "--name",
        "reader",
        "-v",
        "shared:/s",
        "vol:1",
        "sh",
        "-c",
        "while [ ! -f /s/msg ]; do sleep 0.05; done; cat /s/msg",
    ]);
    s.ok(&[
        "run",
        "-d",
        "--name",
        "writer",
        "-v",
        "shared:/s",
        "vol:1",
        "sh",
        "-c",
        "echo hello across > /s/msg; sleep 30",
    ]);
    assert_eq!(s.ok(&["wait", "reader"]).trim(), "0");
    assert_eq!(s.ok(&["logs", "reader"]), "hello across\n");
    let (code, _, err) = s.code(&["volume", "rm", "shared"]);
    assert_eq!(code, 1);
    assert!(err.contains("reader") && err.contains("writer"), "names the containers: {err}");
    let (_, out, _) = s.code(&["exec", "writer", "cat", "/s/msg"]);
    assert_eq!(out, "hello across\n", "a refused rm loses nothing");
    s.ok(&["rm", "-f", "writer", "reader"]);
    s.ok(&["volume", "rm", "shared"]);
}

#[test]
fn read_only_bind_and_volumes_from() {
    let s = with_image();
    let (code, _, err) = s.code(&["run", "--rm", "-v", "ro:/d:ro", "vol:1", "sh", "-c", "echo x > /d/f"]);
    assert_ne!(code, 0);
    assert!(err.contains("Read-only"), "{err}");
    let host = s.path("host");
    fs::create_dir(&host).unwrap();
    let spec = format!("{}:/h", host.display());
    s.ok(&["run", "--rm", "-v", &spec, "vol:1", "sh", "-c", "echo to the host > /h/out"]);
    assert_eq!(fs::read_to_string(host.join("out")).unwrap(), "to the host\n");
    let m = format!("type=bind,source={},target=/m,readonly", host.display());
    assert_ne!(s.code(&["run", "--rm", "--mount", &m, "vol:1", "touch", "/m/x"]).0, 0);
    s.ok(&["create", "--name", "holder", "-v", "vf:/vf", "-v", &spec, "vol:1", "true"]);
    s.ok(&["run", "--rm", "-v", "vf:/vf", "vol:1", "sh", "-c", "echo via volumes-from > /vf/f"]);
    let (_, out, _) = s.code(&["run", "--rm", "--volumes-from", "holder", "vol:1", "cat", "/vf/f", "/h/out"]);
    assert_eq!(out, "via volumes-from\nto the host\n");
    assert_ne!(s.code(&["run", "--rm", "--volumes-from", "holder:ro", "vol:1", "touch", "/vf/x"]).0, 0);
    let (_, out, _) =
        s.code(&["run", "--rm", "--mount", "type=tmpfs,target=/t", "vol:1", "sh", "-c", "grep ' /t ' /proc/mounts"]);
    assert!(out.contains("tmpfs"), "{out}");
}

#[test]
fn writes_to_a_volume_do_not_grow_the_container_layer() {
    let s = with_image();
    s.ok(&[
        "run",
        "--name",
        "big",
        "-v",
        "bulk:/bulk",
        "vol:1",
        "dd",
        "if=/dev/zero",
        "of=/bulk/blob",
        "bs=1000000",
        "count=100",
    ]);
    let v: serde_json::Value = serde_json::from_str(&s.ok(&["volume", "inspect", "bulk"])).unwrap();
    assert_eq!(fs::metadata(format!("{}/blob", v[0]["Mountpoint"].as_str().unwrap())).unwrap().len(), 100_000_000);
    assert_eq!(upper_bytes(&s, "big"), 0, "no copy-up, no growth of the container layer");
    let diff = s.ok(&["diff", "big"]);
    assert!(!diff.contains("/bulk"), "diff leaves volume contents out: {diff}");
    let id = s.ok(&["commit", "big", "committed:1"]);
    assert!(id.starts_with("sha256:"));
    let out = s.ok(&["run", "--rm", "committed:1", "ls", "/"]);
    assert!(out.contains("bin") && !out.contains("bulk"), "commit leaves volumes out: {out}");
}

#[test]
fn anonymous_volumes_and_prune() {
    let s = with_image();
    s.ok(&["run", "--name", "anon", "-v", "/scratch", "vol:1", "sh", "-c", "echo x > /scratch/f"]);
    let vols = s.ok(&["volume", "ls", "-q"]);
    assert_eq!(vols.lines().count(), 1);
    s.ok(&["volume", "create", "--label", "keep=no", "unused"]);
    s.ok(&["rm", "-v", "anon"]);
    assert_eq!(s.ok(&["volume", "ls", "-q"]).trim(), "unused", "rm -v removes the anonymous volume only");
    s.ok(&["create", "--name", "user", "-v", "used:/u", "vol:1", "true"]);
    let out = s.ok(&["volume", "prune", "-f"]);
    assert!(out.lines().any(|l| l == "unused") && !out.lines().any(|l| l == "used"), "{out}");
    assert_eq!(s.ok(&["volume", "ls", "-q"]).trim(), "used");
}

#[test]
fn bad_specs_create_nothing() {
    let s = with_image();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["-v", ":x"], ":x"),
        (vec!["-v", "data:relative"], "relative"),
        (vec!["-v", "data:/x:bogus"], "bogus"),
        (vec!["--mount", "type=bind,source=/no/such/dir,target=/x"], "/no/such/dir"),
        (vec!["--mount", "type=nfs,target=/x"], "nfs"),
        (vec!["--volumes-from", "nosuchcontainer"], "nosuchcontainer"),
    ];
    for (flags, needle) in cases {
        let mut args = vec!["run", "--rm"];
        args.extend(flags.iter());
        args.extend(["vol:1", "true"]);
        let (code, _, err) = s.code(&args);
        assert_eq!(code, 125, "{args:?}");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(s.ok(&["volume", "ls", "-q"]).trim().is_empty(), "{args:?}: no volume created");
        assert!(s.ok(&["ps", "-aq"]).trim().is_empty(), "{args:?}: no container created");
    }
    let (code, _, err) = s.code(&["volume", "create", "--opt", "type=nfs", "x1"]);
    assert_eq!(code, 1);
    assert!(err.contains("type=nfs"), "{err}");
}

#[test]
fn image_volume_paths_get_anonymous_volumes() {
    let s = Strata::new("overlay");
    let cache = LayerTar::new().dir("cache").file("cache/warm", b"warm\n").build();
    let mut img = TestImage::new("withvol:1", vec![busybox_layer(), cache]);
    img.created_by = vec!["base".into(), "cache".into()];
    img.volumes = vec!["/cache".into()];
    let a = s.write("wv.tar", &docker_archive(&[img]));
    s.ok(&["load", "-i", a.to_str().unwrap()]);
    let (code, out, _) =
        s.code(&["run", "--name", "c1", "withvol:1", "sh", "-c", "cat /cache/warm; echo new > /cache/new"]);
    assert_eq!((code, out.as_str()), (0, "warm\n"), "seeded from the image");
    let vols: Vec<String> = s.ok(&["volume", "ls", "-q"]).lines().map(String::from).collect();
    assert_eq!(vols.len(), 1);
    assert_eq!(vols[0].len(), 64, "an anonymous volume: {vols:?}");
    assert!(!s.ok(&["diff", "c1"]).contains("/cache"));
    s.ok(&["rm", "c1"]);
    assert_eq!(s.ok(&["volume", "ls", "-q"]).lines().count(), 1, "kept without -v");
    s.ok(&["run", "--name", "c2", "withvol:1", "true"]);
    s.ok(&["rm", "-v", "c2"]);
    assert_eq!(
        s.ok(&["volume", "ls", "-q"]).lines().collect::<Vec<_>>(),
        vec![vols[0].as_str()],
        "rm -v removes c2's own"
    );
}

#[test]
fn volume_rm_waits_for_commands_in_progress_and_refuses_a_volume_they_took() {
    let s = Strata::new("overlay");
    let a = s.write("images.tar", &docker_archive(&[TestImage::new("busybox:latest", vec![busybox_layer()])]));
    s.ok(&["load", "-q", "-i", a.to_str().unwrap()]);
    s.ok(&["volume", "create", "vol"]);
    // Another command in progress: the store lock held shared (as a `run -v` holds it from
    // its look at the volume until its container is recorded), until `release` appears.
    let lock = s.root().join("lock");
    let release = s.path("release");
    let mut holder = std::process::Command::new("flock")
        .arg("-s")
        .arg(&lock)
        .arg("-c")
        .arg(format!("echo held; until [ -e {} ]; do sleep 0.02; done", release.display()))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(holder.stdout.take().unwrap()), &mut line).unwrap();
    assert_eq!(line, "held\n");
    let mut rm = s.command().args(["volume", "rm", "vol"]).stderr(std::process::Stdio::piped()).spawn().unwrap();
    // rm either finished (it did not wait) or is queued on the lock, as /proc/locks shows.
    let waiting = format!(" {} ", rm.id());
    while rm.try_wait().unwrap().is_none()
        && !fs::read_to_string("/proc/locks").unwrap().lines().any(|l| l.contains("->") && l.contains(&waiting))
    {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    // Meanwhile the command in progress takes the volume.
    s.ok(&["create", "--name", "user", "-v", "vol:/d", "busybox", "true"]);
    fs::write(&release, "").unwrap();
    holder.wait().unwrap();
    let o = rm.wait_with_output().unwrap();
    assert!(!o.status.success(), "volume rm removed a volume a container had just taken");
    assert!(String::from_utf8_lossy(&o.stderr).contains("user"), "{}", String::from_utf8_lossy(&o.stderr));
}
