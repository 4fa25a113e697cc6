//! Docker's everyday commands and what scripts are made of: `--format`
//! templates, `--filter`s, labels, `cp`, `restart`, `rename`.

#[macro_use]
mod common;

use common::*;
use std::os::unix::fs::OpenOptionsExt;

/// A store with `app:1` (busybox) and three containers: `one` (label
/// tier=web, created), `two` (label tier=db, exited 3), `three` (running).
fn with_containers() -> Strata {
    let s = Strata::new("overlay");
    let top = LayerTar::new().dir("srv").file("srv/data.txt", b"in the image\n").build();
    let a = s.write("app.tar", &docker_archive(&[TestImage::new("app:1", vec![busybox_layer(), top])]));
    s.ok(&["load", "-i", a.to_str().unwrap()]);
    s.ok(&["create", "--network", "none", "--name", "one", "-l", "tier=web", "app:1", "true"]);
    let (code, _, err) =
        s.code(&["run", "--network", "none", "--name", "two", "--label", "tier=db", "app:1", "sh", "-c", "exit 3"]);
    assert_eq!(code, 3, "{err}");
    s.ok(&["run", "-d", "--network", "none", "--name", "three", "app:1", "sleep", "1000"]);
    s
}

/// `run -d --network none --name NAME [FLAGS] app:1 sh -c SCRIPT`.
fn detached(s: &Strata, name: &str, flags: &[&str], script: &str) {
    let mut args = vec!["run", "-d", "--network", "none", "--name", name];
    args.extend(flags);
    args.extend(["app:1", "sh", "-c", script]);
    s.ok(&args);
}

fn names(out: &str) -> Vec<&str> {
    out.lines().collect()
}

#[test]
fn inspect_and_ps_templates_use_docker_s_fields_and_functions() {
    let s = with_containers();
    assert_eq!(s.ok(&["inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", "two"]), "exited 3\n");
    assert_eq!(
        s.ok(&["inspect", "-f", "{{.Name}} {{index .Config.Labels \"tier\"}}", "one", "two"]),
        "/one web\n/two db\n"
    );
    assert_eq!(s.ok(&["container", "inspect", "-f", "{{json .Config.Labels}}", "one"]), "{\"tier\":\"web\"}\n");
    assert_eq!(s.ok(&["ps", "--format", "{{.Names}}\\t{{upper .State}}"]), "three\tRUNNING\n");
    let table = s.ok(&["ps", "-a", "--format", "table {{.Names}}\\t{{.Labels}}"]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines[0].split_whitespace().collect::<Vec<_>>(), ["NAMES", "LABELS"], "{table}");
    assert_eq!(lines.len(), 4, "{table}");
    assert!(lines.iter().any(|l| l.starts_with("one") && l.ends_with("tier=web")), "{table}");
    let images = s.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert_eq!(images, "app:1\n");
    // Bad templates: an error naming what is wrong, exit 1, nothing printed.
    for (format, says) in [("{{", "{{"), ("{{.Nope}}", "Nope"), ("{{nofunc .ID}}", "nofunc")] {
        let (code, out, err) = s.code(&["inspect", "--format", format, "one"]);
        assert_eq!((code, out.as_str()), (1, ""), "{format}: {err}");
        assert!(err.contains(says), "{format} names {says:?}: {err}");
    }
    s.ok(&["rm", "-f", "three"]);
}

#[test]
fn ps_and_images_filters_select_by_docker_s_keys() {
    let s = with_containers();
    let ps = |filters: &[&str]| {
        let mut args = vec!["ps", "--format", "{{.Names}}"];
        for f in filters {
            args.extend(["--filter", f]);
        }
        s.ok(&args)
    };
    assert_eq!(names(&ps(&["label=tier"])), Vec::<&str>::new(), "without -a: running ones only");
    assert_eq!(names(&s.ok(&["ps", "-a", "--format", "{{.Names}}", "--filter", "label=tier"])), ["two", "one"]);
    assert_eq!(names(&s.ok(&["ps", "-a", "--format", "{{.Names}}", "-f", "label=tier=web"])), ["one"]);
    assert_eq!(names(&ps(&["status=exited"])), ["two"], "a status filter lists stopped containers");
    assert_eq!(names(&ps(&["exited=3"])), ["two"]);
    assert_eq!(names(&ps(&["status=created", "status=running"])), ["three", "one"], "values of one key: any");
    assert_eq!(names(&ps(&["status=exited", "name=thr"])), Vec::<&str>::new(), "keys: all");
    assert_eq!(names(&s.ok(&["ps", "-a", "--format", "{{.Names}}", "--filter", "before=two"])), ["one"]);
    assert_eq!(names(&s.ok(&["ps", "-a", "--format", "{{.Names}}", "--filter", "since=one"])), ["three", "two"]);
    assert_eq!(names(&s.ok(&["ps", "-a", "--format", "{{.Names}}", "--filter", "ancestor=app:1"])).len(), 3);
    assert_eq!(names(&s.ok(&["ps", "-a", "--format", "{{.Names}}", "--filter", "network=none"])).len(), 3);
    assert_eq!(names(&s.ok(&["ps", "--format", "{{.Names}}", "-n", "2"])), ["three", "two"]);
    assert_eq!(names(&s.ok(&["ps", "--format", "{{.Names}}", "-l"])), ["three"]);
    let (code, _, err) = s.code(&["ps", "--filter", "colour=red"]);
    assert_eq!(code, 1);
    assert!(err.contains("colour"), "{err}");
    // A dangling image: a commit without a name.
    let dangling = s.ok(&["commit", "two"]).trim().to_string();
    let images = |f: &str| s.ok(&["images", "-q", "--no-trunc", "--filter", f]);
    assert_eq!(images("dangling=true").trim(), dangling);
    assert_eq!(images("dangling=false").trim(), s.image_id("app:1"));
    assert_eq!(images("reference=ap*").trim(), s.image_id("app:1"));
    assert_eq!(images("reference=nothing*").trim(), "");
    let (code, _, err) = s.code(&["images", "--filter", "dangling=maybe"]);
    assert_eq!(code, 1);
    assert!(err.contains("maybe"), "{err}");
    s.ok(&["rm", "-f", "three"]);
}

fn tar_names(bytes: &[u8]) -> Vec<String> {
    let mut ar = tar::Archive::new(bytes);
    ar.entries().unwrap().map(|e| e.unwrap().path().unwrap().display().to_string()).collect()
}

#[test]
fn cp_copies_both_ways_by_docker_s_rules_and_stays_inside_the_container() {
    let s = with_containers();
    let host = s.dir.path().join("host");
    std::fs::create_dir(&host).unwrap();
    // Out: a file under a new name, a directory into an existing one, a directory's contents.
    s.ok(&["cp", "three:/srv/data.txt", host.join("copy.txt").to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(host.join("copy.txt")).unwrap(), "in the image\n");
    s.ok(&["cp", "three:/srv", host.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(host.join("srv/data.txt")).unwrap(), "in the image\n");
    std::fs::create_dir(host.join("contents")).unwrap();
    s.ok(&["cp", "three:/srv/.", host.join("contents").to_str().unwrap()]);
    assert!(host.join("contents/data.txt").is_file());
    // Out as a tar stream.
    let o = s.command().args(["cp", "three:/srv", "-"]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(tar_names(&o.stdout), ["srv/", "srv/data.txt"]);
    // In: a file into a directory, under a new name, into a stopped container.
    std::fs::write(host.join("new.txt"), b"from the host\n").unwrap();
    s.ok(&["cp", host.join("new.txt").to_str().unwrap(), "three:/srv/"]);
    assert_eq!(s.ok(&["exec", "three", "cat", "/srv/new.txt"]), "from the host\n");
    s.ok(&["cp", host.join("new.txt").to_str().unwrap(), "three:/srv/renamed.txt"]);
    assert_eq!(s.ok(&["exec", "three", "cat", "/srv/renamed.txt"]), "from the host\n");
    s.ok(&["cp", host.join("srv").to_str().unwrap(), "one:/tmp"]);
    s.ok(&["start", "-a", "one"]);
    assert!(s.ok(&["diff", "one"]).lines().any(|l| l == "A /tmp/srv/data.txt"), "{}", s.ok(&["diff", "one"]));
    // Errors name what is wrong and change nothing.
    let (code, _, err) = s.code(&["cp", "nosuch:/srv", host.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("nosuch"), "{err}");
    let (code, _, err) = s.code(&["cp", "three:/no/such/file", host.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("/no/such/file"), "{err}");
    s.ok(&["rm", "-f", "three"]);
}

#[test]
fn cp_through_a_container_symlink_never_reaches_the_host() {
    let s = Strata::new("overlay");
    // A host directory of the test's, and an image whose links point at it by its host path.
    let host = s.dir.path().join("hostside");
    std::fs::create_dir(&host).unwrap();
    std::fs::write(host.join("secret"), b"host secret\n").unwrap();
    let h = host.to_str().unwrap().trim_start_matches('/');
    // The same path exists inside the image too, so the links resolve there (inside) and a copy
    // that followed them on the host instead would land in the test's directory.
    let mut layer = LayerTar::new();
    let mut prefix = String::new();
    for part in h.split('/') {
        prefix = if prefix.is_empty() { part.to_string() } else { format!("{prefix}/{part}") };
        layer = layer.dir(&prefix);
    }
    let top = layer
        .symlink("out", &format!("/{h}"))
        .symlink("up", &format!("../../../../../../{h}"))
        .symlink("shadow", "/etc/shadow")
        .build();
    let a = s.write("evil.tar", &docker_archive(&[TestImage::new("evil:1", vec![busybox_layer(), top])]));
    s.ok(&["load", "-i", a.to_str().unwrap()]);
    s.ok(&["create", "--network", "none", "--name", "ev", "evil:1", "true"]);
    let local = s.dir.path().join("local");
    std::fs::create_dir(&local).unwrap();
    std::fs::write(local.join("drop.txt"), b"dropped\n").unwrap();
    for dest in ["ev:/out/", "ev:/up/", "ev:/out/drop.txt"] {
        let (code, _, _) = s.code(&["cp", local.join("drop.txt").to_str().unwrap(), dest]);
        assert!(!host.join("drop.txt").exists(), "{dest} wrote on the host (exit {code})");
    }
    for src in ["ev:/out/secret", "ev:/up/secret", "ev:/shadow"] {
        let o = s.command().args(["cp", "-L", src, "-"]).output().unwrap();
        let got = String::from_utf8_lossy(&o.stdout);
        assert!(!got.contains("host secret") && !got.contains("root:"), "{src} read the host: {got}");
    }
}

#[test]
fn export_restart_and_rename() {
    let s = with_containers();
    s.ok(&["exec", "three", "sh", "-c", "echo mine > /srv/own.txt"]);
    let o = s.command().args(["export", "three"]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let names = tar_names(&o.stdout);
    for want in ["srv/data.txt", "srv/own.txt", "bin/busybox", "etc/passwd"] {
        assert!(names.iter().any(|n| n == want), "{want} in {names:?}");
    }
    let out = s.dir.path().join("three.tar");
    s.ok(&["export", "-o", out.to_str().unwrap(), "two"]);
    assert!(tar_names(&std::fs::read(&out).unwrap()).iter().any(|n| n == "srv/data.txt"));
    let pid = |s: &Strata| s.ok(&["inspect", "-f", "{{.State.Pid}}", "three"]).trim().to_string();
    let before = pid(&s);
    s.ok(&["restart", "-t", "1", "three"]);
    assert_eq!(s.ok(&["inspect", "-f", "{{.State.Status}}", "three"]), "running\n");
    assert_ne!(pid(&s), before, "a new process");
    s.ok(&["rename", "three", "third"]);
    assert_eq!(s.ok(&["ps", "--format", "{{.Names}}"]), "third\n");
    let (code, _, err) = s.code(&["rename", "third", "one"]);
    assert_eq!(code, 1);
    assert!(err.contains("one"), "{err}");
    s.ok(&["rm", "-f", "third"]);
}

#[test]
fn logs_keep_stdout_and_stderr_apart_with_tail_times_and_ranges() {
    let s = with_containers();
    detached(&s, "talk", &[], "echo out1; echo err1 >&2; echo out2; echo err2 >&2");
    assert_eq!(s.ok(&["wait", "talk"]).trim(), "0");
    let o = s.command().args(["logs", "talk"]).output().unwrap();
    assert!(o.status.success());
    assert_eq!(String::from_utf8_lossy(&o.stdout), "out1\nout2\n");
    assert_eq!(String::from_utf8_lossy(&o.stderr), "err1\nerr2\n");
    // --tail counts lines of both streams (whose relative order is the copiers', as Docker's).
    let o = s.command().args(["logs", "--tail", "1", "talk"]).output().unwrap();
    let last = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(last == "out2\n" || last == "err2\n", "{last:?}");
    detached(&s, "plain", &[], "echo a; echo b; echo c");
    assert_eq!(s.ok(&["wait", "plain"]).trim(), "0");
    assert_eq!(s.ok(&["logs", "-n", "2", "plain"]), "b\nc\n");
    let t = s.ok(&["logs", "-t", "--tail", "2", "plain"]);
    let line = t.lines().next().unwrap_or_default();
    let (stamp, text) = line.split_once(' ').unwrap();
    assert_eq!(text, "b", "{t}");
    assert!(
        stamp.len() == 30 && stamp.ends_with('Z') && stamp.as_bytes()[10] == b'T',
        "RFC 3339 with nanoseconds: {stamp}"
    );
    // Ranges: every line is after an hour ago, none before 2000.
    assert_eq!(s.ok(&["logs", "--since", "1h", "talk"]), "out1\nout2\n");
    assert_eq!(s.ok(&["logs", "--until", "2000-01-01T00:00:00Z", "talk"]), "");
    assert_eq!(s.ok(&["logs", "--since", stamp, "plain"]), "b\nc\n");
    let (code, _, err) = s.code(&["logs", "--since", "yesterday", "talk"]);
    assert_eq!(code, 1);
    assert!(err.contains("yesterday"), "{err}");
    s.ok(&["rm", "-f", "three"]);
}

#[test]
fn top_lists_the_container_s_processes_and_info_and_version_describe_strata() {
    let s = with_containers();
    // A second process in the container, left running by the exec's shell.
    s.ok(&["exec", "three", "sh", "-c", "sleep 999 >/dev/null 2>&1 &"]);
    let top = s.ok(&["top", "three"]);
    let mut lines = top.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert!(header.contains(&"PID") && header.contains(&"CMD"), "{top}");
    let rows: Vec<&str> = lines.collect();
    assert!(rows.iter().any(|l| l.ends_with("sleep 1000")), "{top}");
    assert!(rows.iter().any(|l| l.ends_with("sleep 999")), "{top}");
    assert!(!rows.iter().any(|l| l.contains("strata")), "only the container's processes: {top}");
    let pid_only = s.ok(&["top", "three", "-o", "pid,comm"]);
    assert!(pid_only.lines().skip(1).all(|l| l.trim_end().ends_with("sleep")), "{pid_only}");
    let (code, _, err) = s.code(&["top", "one"]);
    assert_eq!(code, 1);
    assert!(err.contains("one") && err.contains("not running"), "{err}");
    assert_eq!(
        s.ok(&["info", "--format", "{{.Containers}} {{.ContainersRunning}} {{.Images}} {{.Driver}}"]),
        "3 1 1 overlay\n"
    );
    let info = s.ok(&["info"]);
    assert!(
        info.contains("Storage Driver: overlay") && info.contains(&format!("Root Dir: {}", s.root().display())),
        "{info}"
    );
    assert_eq!(s.ok(&["version", "--format", "{{.Client.Version}}"]).trim(), env!("CARGO_PKG_VERSION"));
    s.ok(&["rm", "-f", "three"]);
}

#[test]
fn pause_freezes_the_container_s_processes_and_unpause_thaws_them() {
    let s = with_containers();
    detached(&s, "counter", &[], "i=0; while true; i=$((i+1)); do echo $i > /srv/n; sleep 0.05; done");
    let read = |s: &Strata| -> u64 {
        let o = s.command().args(["cp", "counter:/srv/n", "-"]).output().unwrap();
        let mut ar = tar::Archive::new(&o.stdout[..]);
        let mut text = String::new();
        if let Some(Ok(mut e)) = ar.entries().unwrap().next() {
            std::io::Read::read_to_string(&mut e, &mut text).unwrap();
        }
        text.trim().parse().unwrap_or(0)
    };
    let counting = |s: &Strata| {
        let first = read(s);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while read(s) == first {
            assert!(std::time::Instant::now() < deadline, "the counter does not move");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    };
    counting(&s);
    s.ok(&["pause", "counter"]);
    assert_eq!(s.ok(&["inspect", "-f", "{{.State.Status}} {{.State.Paused}}", "counter"]), "paused true\n");
    assert!(s.ok(&["ps", "--format", "{{.Status}}"]).lines().any(|l| l.ends_with("(Paused)")));
    // Frozen: the counter stays where it is over half a second (ten of its steps).
    let frozen = read(&s);
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(read(&s), frozen);
    let (code, _, err) = s.code(&["pause", "counter"]);
    assert_eq!(code, 1);
    assert!(err.contains("already paused"), "{err}");
    s.ok(&["unpause", "counter"]);
    counting(&s);
    // A paused container can be removed by force.
    s.ok(&["pause", "counter"]);
    s.ok(&["rm", "-f", "counter", "three"]);
    assert_eq!(s.ok(&["ps", "-q"]), "");
}

#[test]
fn stats_show_a_container_s_memory_and_processes() {
    let s = with_containers();
    // 50 MB in a tmpfs the container fills (tmpfs pages count as its memory), then ready.
    detached(
        &s,
        "hog",
        &["--mount", "type=tmpfs,target=/fill"],
        "dd if=/dev/zero of=/fill/x bs=1M count=50 2>/dev/null; echo ready > /srv/ready; sleep 1000",
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !s.command().args(["cp", "hog:/srv/ready", "-"]).output().unwrap().status.success() {
        assert!(std::time::Instant::now() < deadline, "hog never got ready");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let out = s.ok(&["stats", "--no-stream", "--format", "{{.Name}} {{.MemUsage}} {{.PIDs}}", "hog"]);
    let f: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(f[0], "hog", "{out}");
    let mib: f64 = f[1].strip_suffix("MiB").unwrap_or_else(|| panic!("MiB in {out}")).parse().unwrap();
    assert!((45.0..80.0).contains(&mib), "about 50 MiB: {out}");
    assert_eq!(f.last(), Some(&"1"), "sleep (sh execs it as its last command): {out}");
    let table = s.ok(&["stats", "--no-stream"]);
    assert!(table.starts_with("CONTAINER ID") && table.contains("hog") && table.contains("three"), "{table}");
    let (code, _, err) = s.code(&["stats", "--no-stream", "one"]);
    assert_eq!(code, 1);
    assert!(err.contains("not running"), "{err}");
    s.ok(&["rm", "-f", "hog", "three"]);
}

#[test]
fn update_changes_a_running_container_s_limits_and_keeps_them() {
    let s = with_containers();
    s.ok(&["update", "--memory", "64m", "--pids-limit", "50", "three"]);
    // What the container's own cgroup says (v1 memory controller, or v2).
    let id = s.ok(&["inspect", "-f", "{{.Id}}", "three"]).trim().to_string();
    let read = |controller: &str, v1: &str, v2: &str| {
        std::fs::read_to_string(cgroup_file(controller, &id, v1, v2)).unwrap().trim().to_string()
    };
    assert_eq!(read("memory", "memory.limit_in_bytes", "memory.max"), (64 * 1024 * 1024).to_string());
    assert_eq!(read("pids", "pids.max", "pids.max"), "50");
    s.ok(&["restart", "-t", "1", "three"]);
    assert_eq!(
        read("memory", "memory.limit_in_bytes", "memory.max"),
        (64 * 1024 * 1024).to_string(),
        "kept across a restart"
    );
    let (code, _, err) = s.code(&["update", "--memory", "lots", "three"]);
    assert_eq!(code, 1);
    assert!(err.contains("lots"), "{err}");
    s.ok(&["rm", "-f", "three"]);
}

#[test]
fn events_show_what_happened_in_order_within_a_time_range() {
    let s = with_containers();
    let start = s.ok(&["run", "--rm", "--network", "none", "--name", "brief", "app:1", "true"]);
    assert_eq!(start, "");
    s.ok(&["tag", "app:1", "app:2"]);
    s.ok(&["rmi", "app:2"]);
    let until = "0s"; // now: what happened so far, then stop
    let all = s.ok(&["events", "--until", until, "--format", "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}"]);
    let lines: Vec<&str> = all.lines().collect();
    let brief: Vec<&str> = lines.iter().filter(|l| l.ends_with(" brief")).copied().collect();
    assert_eq!(
        brief,
        ["container create brief", "container start brief", "container die brief", "container destroy brief"],
        "{all}"
    );
    let pos = |l: &str| lines.iter().position(|x| *x == l).unwrap_or_else(|| panic!("{l} in {all}"));
    assert!(
        pos("container destroy brief") < pos("image tag app:2") && pos("image tag app:2") < pos("image untag app:2"),
        "{all}"
    );
    // Filters and ranges.
    let tags = s.ok(&[
        "events",
        "--until",
        until,
        "--filter",
        "event=tag",
        "--format",
        "{{.Action}} {{.Actor.Attributes.name}}",
    ]);
    assert_eq!(tags, "tag app:2\n");
    let died = s.ok(&[
        "events",
        "--until",
        until,
        "--filter",
        "container=two",
        "--filter",
        "event=die",
        "--format",
        "{{index .Actor.Attributes \"exitCode\"}}",
    ]);
    assert_eq!(died, "3\n");
    assert_eq!(s.ok(&["events", "--since", "2000-01-01T00:00:00Z", "--until", "2000-01-02T00:00:00Z"]), "");
    let (code, _, err) = s.code(&["events", "--until", until, "--filter", "colour=red"]);
    assert_eq!(code, 1);
    assert!(err.contains("colour"), "{err}");
    s.ok(&["rm", "-f", "three"]);
}

#[test]
fn ps_size_shows_the_container_s_own_layer_and_the_virtual_total() {
    let s = with_containers();
    let (code, _, err) = s.code(&[
        "run",
        "--network",
        "none",
        "--name",
        "sized",
        "app:1",
        "dd",
        "if=/dev/zero",
        "of=/srv/f",
        "bs=1000",
        "count=5",
    ]);
    assert_eq!(code, 0, "{err}");
    let sizes = s.ok(&["ps", "-a", "-s", "--filter", "name=sized", "--format", "{{.Size}}"]);
    assert!(sizes.starts_with("5kB (virtual ") && sizes.trim_end().ends_with("MB)"), "{sizes}");
    let unchanged = s.ok(&["ps", "-a", "-s", "--filter", "name=one", "--format", "{{.Size}}"]);
    assert!(unchanged.starts_with("0B (virtual "), "{unchanged}");
    let table = s.ok(&["ps", "-a", "-s"]);
    assert!(table.lines().next().unwrap().trim_end().ends_with("SIZE"), "{table}");
    s.ok(&["rm", "-f", "three"]);
}

#[test]
fn volume_and_network_listings_filter_by_docker_s_keys() {
    let s = with_containers();
    s.ok(&["volume", "create", "--label", "keep=yes", "kept"]);
    s.ok(&["volume", "create", "loose"]);
    s.ok(&["create", "--network", "none", "--name", "user", "-v", "kept:/data", "app:1", "true"]);
    let vols = |f: &str| s.ok(&["volume", "ls", "-q", "--filter", f]);
    assert_eq!(vols("dangling=true"), "loose\n");
    assert_eq!(vols("dangling=false"), "kept\n");
    assert_eq!(vols("label=keep=yes"), "kept\n");
    assert_eq!(vols("name=oo"), "loose\n");
    s.ok(&["network", "create", "--label", "team=a", "custom"]);
    let nets = |f: &str| s.ok(&["network", "ls", "--format", "{{.Name}}", "--filter", f]);
    assert_eq!(nets("type=custom"), "custom\n");
    assert_eq!(nets("type=builtin"), "bridge\nhost\nnone\n");
    assert_eq!(nets("label=team=a"), "custom\n");
    assert_eq!(nets("driver=null"), "none\n");
    let (code, _, err) = s.code(&["volume", "ls", "--filter", "colour=red"]);
    assert_eq!(code, 1);
    assert!(err.contains("colour"), "{err}");
    s.ok(&["rm", "-f", "three"]);
}

#[test]
fn prune_filters_remove_only_what_matches() {
    let s = with_containers();
    // Nothing was created before 2000.
    let out = s.ok(&["container", "prune", "-f", "--filter", "until=2000-01-01T00:00:00Z"]);
    assert!(!out.contains("Deleted"), "{out}");
    assert_eq!(s.ok(&["ps", "-aq"]).lines().count(), 3);
    // Only the stopped container labelled tier=db.
    s.ok(&["container", "prune", "-f", "--filter", "label=tier=db"]);
    assert_eq!(names(&s.ok(&["ps", "-a", "--format", "{{.Names}}"])), ["three", "one"]);
    s.ok(&["volume", "create", "--label", "scratch=1", "v1"]);
    s.ok(&["volume", "create", "v2"]);
    s.ok(&["volume", "prune", "-f", "--filter", "label=scratch"]);
    assert_eq!(s.ok(&["volume", "ls", "-q"]), "v2\n");
    let (code, _, err) = s.code(&["image", "prune", "-f", "--filter", "until=someday"]);
    assert_eq!(code, 1);
    assert!(err.contains("someday"), "{err}");
    s.ok(&["rm", "-f", "three"]);
}

#[test]
fn attach_follows_a_running_container_until_it_exits_with_its_code() {
    let s = with_containers();
    detached(
        &s,
        "att",
        &[],
        "while [ ! -e /srv/go ]; do echo tick; sleep 0.05; done; echo after; echo oops >&2; exit 7",
    );
    let mut child = s
        .command()
        .args(["attach", "att"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // A tick seen through attach: it is following now.
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut out, &mut line).unwrap();
    assert_eq!(line, "tick\n");
    let go = s.dir.path().join("go");
    std::fs::write(&go, b"").unwrap();
    s.ok(&["cp", go.to_str().unwrap(), "att:/srv/go"]);
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    let status = child.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(7), "the container's exit code");
    assert!(rest.lines().all(|l| l == "tick" || l == "after") && rest.ends_with("after\n"), "{rest}");
    assert_eq!(err, "oops\n");
    let (code, _, err) = s.code(&["attach", "one"]);
    assert_eq!(code, 1);
    assert!(err.contains("stopped container"), "{err}");
    s.ok(&["rm", "-f", "three"]);
}

#[test]
fn a_detached_container_with_a_terminal_logs_what_it_writes_there() {
    let s = with_containers();
    s.ok(&[
        "run",
        "-d",
        "-t",
        "--network",
        "none",
        "--name",
        "term",
        "app:1",
        "sh",
        "-c",
        "echo hi; test -t 1 && echo on-a-tty",
    ]);
    assert_eq!(s.ok(&["wait", "term"]).trim(), "0");
    // A terminal ends lines with \r\n, as in Docker's logs of -t containers.
    assert_eq!(s.ok(&["logs", "term"]), "hi\r\non-a-tty\r\n");
    s.ok(&["rm", "-f", "three"]);
}

/// Read lines from `out` until one satisfies `want`; that line.
fn read_until(out: &mut impl std::io::BufRead, want: impl Fn(&str) -> bool) -> String {
    loop {
        let mut line = String::new();
        let n = out.read_line(&mut line).unwrap();
        assert!(n > 0, "output ended before the line looked for");
        if want(&line) {
            return line;
        }
    }
}

fn spawn_attach(s: &Strata, args: &[&str]) -> std::process::Child {
    s.command()
        .arg("attach")
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn attach_types_into_a_detached_terminal_and_returns_its_exit_code() {
    let s = with_containers();
    s.ok(&["run", "-d", "-t", "--network", "none", "--name", "shell", "app:1", "sh"]);
    let mut child = spawn_attach(&s, &["shell"]);
    let mut stdin = child.stdin.take().unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    // The terminal echoes the line typed; only the shell prints 42x.
    std::io::Write::write_all(&mut stdin, b"echo $((6*7))x\n").unwrap();
    let line = read_until(&mut out, |l| l.contains("42x"));
    assert_eq!(line, "42x\r\n");
    std::io::Write::write_all(&mut stdin, b"exit 3\n").unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(3), "the container's exit code");
    assert_eq!(s.ok(&["inspect", "--format", "{{.State.ExitCode}}", "shell"]).trim(), "3");
    s.ok(&["rm", "-f", "three"]);
}

#[test]
fn attach_detach_keys_leave_an_interactive_container_running_for_the_next_attach() {
    let s = with_containers();
    detached(&s, "reader", &["-i"], "while read l; do echo got-$l; done; echo stdin-closed");
    let mut child = spawn_attach(&s, &["--detach-keys", "ctrl-a", "reader"]);
    let mut stdin = child.stdin.take().unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    std::io::Write::write_all(&mut stdin, b"one\n").unwrap();
    assert_eq!(read_until(&mut out, |_| true), "got-one\n");
    // The detach key is not passed on; the bytes before it are.
    std::io::Write::write_all(&mut stdin, b"two\n\x01three\n").unwrap();
    let status = child.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(1), "{err}");
    assert_eq!(err, "read escape sequence\n");
    assert_eq!(s.ok(&["inspect", "--format", "{{.State.Status}}", "reader"]).trim(), "running");
    let mut again = spawn_attach(&s, &["reader"]);
    let mut stdin = again.stdin.take().unwrap();
    let mut out = std::io::BufReader::new(again.stdout.take().unwrap());
    std::io::Write::write_all(&mut stdin, b"four\n").unwrap();
    assert_eq!(read_until(&mut out, |_| true), "got-four\n");
    s.ok(&["stop", "-t", "0", "reader"]);
    assert!(again.wait().unwrap().code().is_some());
    assert_eq!(s.ok(&["logs", "reader"]), "got-one\ngot-two\ngot-four\n");
    let (code, err) = s.fails(&["attach", "--detach-keys", "ctrl-1", "reader"]);
    assert_ne!(code, 0);
    assert!(err.contains("ctrl-1"), "{err}");
    s.ok(&["rm", "-f", "three"]);
}

/// Wait until the pipe that is `pid`'s standard input holds as much as it can.
fn wait_for_full_stdin(pid: &str) {
    let pipe = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(format!("/proc/{pid}/fd/0"))
        .unwrap();
    let fd = std::os::fd::AsRawFd::as_raw_fd(&pipe);
    // SAFETY: fcntl(2) on a descriptor this test owns.
    let capacity = unsafe { libc::fcntl(fd, libc::F_GETPIPE_SZ) };
    assert!(capacity > 0, "the container's stdin is not a pipe");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let mut queued: libc::c_int = 0;
        // SAFETY: FIONREAD writes one int to the pointer given.
        assert_eq!(unsafe { libc::ioctl(fd, libc::FIONREAD, &mut queued) }, 0);
        if queued >= capacity {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "stdin holds {queued} of {capacity} bytes");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn input_the_container_does_not_read_leaves_its_log_flowing() {
    let s = with_containers();
    detached(&s, "deaf", &["-i"], "while [ ! -e /srv/go ]; do sleep 0.05; done; echo after-go; sleep 1000");
    let mut child = spawn_attach(&s, &["deaf"]);
    let mut stdin = child.stdin.take().unwrap();
    // More than the pipe holds: the client waits for the container, the monitor must not.
    let feeder = std::thread::spawn(move || {
        let _ = std::io::Write::write_all(&mut stdin, &vec![b'x'; 1 << 20]);
    });
    let pid = s.ok(&["inspect", "--format", "{{.State.Pid}}", "deaf"]).trim().to_string();
    wait_for_full_stdin(&pid);
    let go = s.dir.path().join("go");
    std::fs::write(&go, b"").unwrap();
    s.ok(&["cp", go.to_str().unwrap(), "deaf:/srv/go"]);
    // The container's output reaches the log past the stuck input.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut log = s.ok(&["logs", "deaf"]);
    while log.is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
        log = s.ok(&["logs", "deaf"]);
    }
    assert_eq!(log, "after-go\n");
    s.ok(&["rm", "-f", "deaf"]);
    assert!(child.wait().unwrap().code().is_some());
    feeder.join().unwrap();
    s.ok(&["rm", "-f", "three"]);
}

/// Start `strata --log-level debug wait --condition C NAME` and return once
/// it says it is waiting (its state is read: what happens next is what it waits for).
fn waiting(
    s: &Strata,
    condition: &str,
    name: &str,
) -> (std::process::Child, std::io::BufReader<std::process::ChildStderr>) {
    let mut child = s
        .command()
        .args(["--log-level", "debug", "wait", "--condition", condition, name])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
    read_until(&mut err, |l| l.contains("waiting for"));
    (child, err)
}

#[test]
fn wait_conditions_next_exit_and_removed_wait_for_what_they_name() {
    let s = with_containers();
    // Its first run exits 5 once let go, its second 6 at once.
    detached(
        &s,
        "gate",
        &[],
        "[ -e /srv/ran ] && exit 6; while [ ! -e /srv/go ]; do sleep 0.05; done; touch /srv/ran; exit 5",
    );
    let (next_exit, _e1) = waiting(&s, "next-exit", "gate");
    let (removed, _e2) = waiting(&s, "removed", "gate");
    let go = s.dir.path().join("go");
    std::fs::write(&go, b"").unwrap();
    s.ok(&["cp", go.to_str().unwrap(), "gate:/srv/go"]);
    let out = next_exit.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "5\n");
    // Exited, not removed: `removed` still waits while `wait` answers at once.
    assert_eq!(s.ok(&["wait", "gate"]), "5\n");
    let mut removed = removed;
    assert!(removed.try_wait().unwrap().is_none(), "wait --condition removed returned before the removal");
    // next-exit of an exited container: the exit after its next start.
    let (again, _e3) = waiting(&s, "next-exit", "gate");
    s.ok(&["start", "gate"]);
    let out = again.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "6\n");
    assert_eq!(s.ok(&["wait", "gate"]), "6\n");
    s.ok(&["rm", "gate"]);
    let out = removed.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "6\n");
    let (code, err) = s.fails(&["wait", "--condition", "sometime", "three"]);
    assert_eq!(code, 1);
    assert!(err.contains("sometime"), "{err}");
    s.ok(&["rm", "-f", "three"]);
}
