//! Containers through the real binary: copy-on-write over shared image
//! layers, commit, isolation, lifecycle and exit codes, bad input.

#[macro_use]
mod common;

use std::fs;
use std::time::Duration;

use common::*;

both_drivers!(
    copy_on_write_keeps_image_layers_intact,
    commit_adds_one_layer_over_shared_ones,
    lifecycle_and_exit_codes
);

/// A store with `app:1`: busybox plus a layer with /etc/x and /etc/y.
fn with_image(driver: &str) -> Strata {
    let s = Strata::new(driver);
    let top = LayerTar::new().dir("etc").file("etc/x", b"original x\n").file("etc/y", b"original y\n").build();
    let a = s.write("app.tar", &docker_archive(&[TestImage::new("app:1", vec![busybox_layer(), top])]));
    s.ok(&["load", "-i", a.to_str().unwrap()]);
    s
}

/// Wait until a detached container's log holds `line` (its ready line): the
/// container's own word that it got there, not a guess at how long it takes.
fn wait_for_log(s: &Strata, name: &str, line: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !s.ok(&["logs", name]).lines().any(|l| l == line) {
        assert!(std::time::Instant::now() < deadline, "{name} never logged {line:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn container_dirs(s: &Strata) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(s.root().join("containers"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    v.sort();
    v
}

fn copy_on_write_keeps_image_layers_intact(driver: &str) {
    let s = with_image(driver);
    let layers_before = tree(&s.root().join("layers"));
    s.ok(&["create", "--name", "other", "app:1", "true"]);
    s.ok(&["run", "--name", "c1", "app:1", "sh", "-c", "echo changed > /etc/x && rm /etc/y"]);
    assert_eq!(tree(&s.root().join("layers")), layers_before, "image layers are byte-identical afterwards");
    let diff = s.ok(&["diff", "c1"]);
    let lines: Vec<&str> = diff.lines().collect();
    assert!(lines.contains(&"C /etc/x") && lines.contains(&"D /etc/y"), "{diff}");
    assert!(!diff.contains("/proc") && !diff.contains("/etc/hostname") && !diff.contains("/bin"), "{diff}");
    let c1 = s.image_id("c1");
    let c1 = c1.trim_start_matches("sha256:");
    if driver == "overlay" {
        // Copied up only what changed: the upper holds /etc/x and a whiteout for /etc/y, not the image's files.
        let upper = tree(&s.root().join("containers").join(c1).join("upper"));
        let files: Vec<&String> = upper.iter().filter(|(_, n)| n.kind != 'd').map(|(k, _)| k).collect();
        assert_eq!(files, vec!["etc/x", "etc/y"], "{upper:?}");
        assert_eq!(upper["etc/y"].kind, 'c');
    }
    let (code, out, _) = s.code(&["run", "--rm", "app:1", "cat", "/etc/x", "/etc/y"]);
    assert_eq!((code, out.as_str()), (0, "original x\noriginal y\n"), "a second container sees the originals");
    let before = container_dirs(&s);
    assert_eq!(before.len(), 2);
    s.ok(&["rm", "c1"]);
    let after = container_dirs(&s);
    assert_eq!(after.len(), 1, "rm removes only that container's layer");
    assert!(!after.contains(&c1.to_string()));
    assert_eq!(tree(&s.root().join("layers")), layers_before);
    s.ok(&["rm", "other"]);
    assert!(container_dirs(&s).is_empty());
    assert!(mounts_under(&s).is_empty());
}

#[test]
fn twenty_containers_share_one_image() {
    let s = Strata::new("overlay");
    let big = LayerTar::new().file("big", &vec![9u8; 2_000_000]).build();
    let a = s.write("big.tar", &docker_archive(&[TestImage::new("big:1", vec![busybox_layer(), big])]));
    s.ok(&["load", "-i", a.to_str().unwrap()]);
    let layers = s.layer_dirs();
    for i in 0..20 {
        s.ok(&[
            "run",
            "--name",
            &format!("c{i}"),
            "big:1",
            "sh",
            "-c",
            "dd if=/dev/zero of=/data bs=1000 count=10 2>/dev/null",
        ]);
    }
    assert_eq!(s.layer_dirs(), layers, "the image's layers are on disk once");
    let written: u64 = tree(&s.root().join("containers"))
        .iter()
        .filter(|(k, n)| n.kind == 'f' && k.contains("/upper/"))
        .map(|(k, _)| fs::metadata(s.root().join("containers").join(k)).unwrap().len())
        .sum();
    assert_eq!(written, 20 * 10_000, "the containers' layers hold only what they wrote");
    let all: u64 = tree(&s.root().join("containers"))
        .iter()
        .filter(|(_, n)| n.kind == 'f')
        .map(|(k, _)| fs::metadata(s.root().join("containers").join(k)).unwrap().len())
        .sum();
    assert!(all < 20 * 10_000 + 20 * 16_000, "extra disk is about what was written (plus small config files): {all}");
}

fn commit_adds_one_layer_over_shared_ones(driver: &str) {
    let s = with_image(driver);
    s.ok(&["run", "--name", "cc", "app:1", "sh", "-c", "echo new > /etc/new && rm /etc/y"]);
    let id = s.ok(&["commit", "-m", "added new", "cc", "app:2"]);
    assert_eq!(s.image_id("app:2"), id.trim());
    let base: serde_json::Value = serde_json::from_str(&s.ok(&["inspect", "app:1"])).unwrap();
    let new: serde_json::Value = serde_json::from_str(&s.ok(&["inspect", "app:2"])).unwrap();
    let bl = base[0]["RootFS"]["Layers"].as_array().unwrap();
    let nl = new[0]["RootFS"]["Layers"].as_array().unwrap();
    assert_eq!(nl.len(), bl.len() + 1);
    assert_eq!(&nl[..bl.len()], &bl[..]);
    assert_eq!(s.layer_dirs().len(), 3, "the base's layers are shared, not copied");
    let (code, _, _) = s.code(&["run", "--rm", "--read-only", "app:2", "touch", "/etc/z"]);
    assert_ne!(code, 0, "--read-only root");
    let (code, out, _) = s.code(&["run", "--rm", "app:2", "cat", "/etc/new", "/etc/x"]);
    assert_eq!((code, out.as_str()), (0, "new\noriginal x\n"));
    let (code, _, _) = s.code(&["run", "--rm", "app:2", "test", "-e", "/etc/y"]);
    assert_eq!(code, 1, "the deleted file is gone from the committed image");
    s.ok(&[
        "commit",
        "-c",
        "CMD [\"cat\", \"/etc/new\"]",
        "-c",
        "ENV GREETING=hi",
        "-c",
        "WORKDIR /etc",
        "-c",
        "LABEL a=b",
        "cc",
        "app:3",
    ]);
    let (code, out, _) = s.code(&["run", "--rm", "app:3"]);
    assert_eq!((code, out.as_str()), (0, "new\n"), "CMD from --change");
    let (_, out, _) = s.code(&["run", "--rm", "app:3", "sh", "-c", "echo $GREETING; pwd"]);
    assert_eq!(out, "hi\n/etc\n");
    let v: serde_json::Value = serde_json::from_str(&s.ok(&["inspect", "app:3"])).unwrap();
    assert_eq!(v[0]["Config"]["Labels"]["a"], "b");
    let (code, _, err) = s.code(&["commit", "-c", "FROBNICATE x", "cc", "app:4"]);
    assert_eq!(code, 1);
    assert!(err.contains("FROBNICATE"), "{err}");
    let h = s.ok(&["history", "app:2"]);
    assert!(h.lines().nth(1).unwrap().contains("strata commit cc") && h.contains("added new"), "{h}");
    let (code, _, err) = s.code(&["rmi", "app:1"]);
    assert_eq!(code, 1, "a container uses app:1");
    assert!(err.contains("cc"), "{err}");
}

/// Docker's default capability set as /proc/PID/status shows it (CapEff).
const DOCKER_CAPS: &str = "00000000a80425fb";

#[test]
fn isolation_pid_uts_mount_and_network_namespaces_capabilities_and_read_only_sys() {
    let s = with_image("overlay");
    let out = s.ok(&["run", "--rm", "--hostname", "box", "app:1", "sh", "-c", "echo $$; hostname; cat /etc/hostname"]);
    assert_eq!(out, "1\nbox\nbox\n");
    // Host mounts are not visible; the root is the image's.
    let mounts = s.ok(&["run", "--rm", "app:1", "cat", "/proc/mounts"]);
    let targets: Vec<&str> = mounts.lines().filter_map(|l| l.split(' ').nth(1)).collect();
    assert!(targets.contains(&"/") && targets.contains(&"/proc"), "{mounts}");
    for target in &targets {
        let own = *target == "/"
            || ["/proc", "/dev", "/sys", "/etc/hostname", "/etc/hosts", "/etc/resolv.conf"]
                .iter()
                .any(|p| target.starts_with(p));
        assert!(own, "host mount {target} visible in the container: {mounts}");
    }
    let root = s.ok(&["run", "--rm", "app:1", "ls", "/"]);
    let via_proc = s.ok(&["run", "--rm", "app:1", "ls", "/proc/self/root/", "/proc/1/root/"]);
    let via_dotdot = s.ok(&["run", "--rm", "-w", "/etc", "app:1", "ls", "../../../.."]);
    for listing in [&root, &via_proc, &via_dotdot] {
        assert!(
            listing.contains("bin")
                && !listing.contains("usr")
                && !listing.contains("home")
                && !listing.contains("root\n"),
            "{listing}"
        );
    }
    let ps = s.ok(&["run", "--rm", "app:1", "ps"]);
    assert_eq!(ps.lines().count(), 2, "only the container's own process: {ps}");
    // Capabilities: Docker's set, bounding included; no-new-privileges off, as Docker's default.
    let status =
        s.ok(&["run", "--rm", "app:1", "grep", "-E", "^(CapEff|CapBnd|CapPrm|NoNewPrivs)", "/proc/self/status"]);
    for key in ["CapEff", "CapBnd", "CapPrm"] {
        assert!(status.contains(&format!("{key}:\t{DOCKER_CAPS}")), "{key}: {status}");
    }
    assert!(status.contains("NoNewPrivs:\t0"), "{status}");
    // /sys is read-only.
    let (code, _, _) = s.code(&["run", "--rm", "app:1", "touch", "/sys/kernel/x"]);
    assert_ne!(code, 0, "/sys is writable");
    assert!(
        mounts.lines().any(|l| l.split(' ').nth(1) == Some("/sys")
            && l.split(' ').nth(3).is_some_and(|o| o.split(',').any(|f| f == "ro"))),
        "{mounts}"
    );
    // A network namespace of its own: not the host's, and only loopback in it.
    let host_net = fs::read_link("/proc/self/ns/net").unwrap().to_string_lossy().to_string();
    let net = s.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "app:1",
        "sh",
        "-c",
        "readlink /proc/self/ns/net; ls /sys/class/net",
    ]);
    let mut lines = net.lines();
    let container_net = lines.next().unwrap_or("");
    assert!(container_net.starts_with("net:[") && container_net != host_net, "{net} vs host {host_net}");
    assert_eq!(lines.collect::<Vec<_>>(), vec!["lo"], "{net}");
    assert!(mounts_under(&s).is_empty());
}

fn lifecycle_and_exit_codes(driver: &str) {
    let s = with_image(driver);
    assert_eq!(s.code(&["run", "--rm", "app:1", "false"]).0, 1);
    let (code, _, err) = s.code(&["run", "--rm", "app:1", "nope"]);
    assert_eq!(code, 127);
    assert!(err.contains("nope") && err.contains("not found"), "{err}");
    assert_eq!(s.code(&["run", "--rm", "app:1", "/etc/x"]).0, 126, "not executable");
    let (code, out, _) = s.code(&[
        "run",
        "--rm",
        "-e",
        "A=1",
        "-e",
        "B=two words",
        "-u",
        "1000:1000",
        "-w",
        "/etc",
        "app:1",
        "sh",
        "-c",
        "echo $A $B; id; pwd",
    ]);
    assert_eq!((code, out.as_str()), (0, "1 two words\nuid=1000 gid=1000\n/etc\n"));

    let id = s.ok(&["run", "-d", "--name", "bg", "app:1", "sh", "-c", "echo started; while true; do sleep 0.1; done"]);
    assert_eq!(id.trim().len(), 64);
    let ps = s.ok(&["ps"]);
    assert!(ps.contains("bg") && ps.contains("Up"), "{ps}");
    wait_for_log(&s, "bg", "started");
    let (code, out, _) = s.code(&["exec", "bg", "sh", "-c", "echo from exec; exit 3"]);
    assert_eq!((code, out.as_str()), (3, "from exec\n"));
    s.ok(&["stop", "-t", "1", "bg"]);
    let ps = s.ok(&["ps", "-a"]);
    assert!(ps.contains("Exited (137)"), "sh as PID 1 ignores SIGTERM, so stop kills it: {ps}");
    assert_eq!(s.ok(&["wait", "bg"]).trim(), "137");
    assert!(!s.ok(&["ps"]).contains("bg"));

    // The signal reaches the process (PID 1 only acts on signals it handles, as in Docker).
    s.ok(&[
        "run",
        "-d",
        "--name",
        "kk",
        "app:1",
        "sh",
        "-c",
        "trap 'exit 42' TERM; echo trapping; while true; do sleep 0.1; done",
    ]);
    wait_for_log(&s, "kk", "trapping");
    s.ok(&["kill", "-s", "TERM", "kk"]);
    assert_eq!(s.ok(&["wait", "kk"]).trim(), "42");

    // Killed from outside: found exited by the next command.
    s.ok(&["run", "-d", "--name", "victim", "app:1", "sleep", "100"]);
    let v: serde_json::Value = serde_json::from_str(&s.ok(&["inspect", "victim"])).unwrap();
    let pid = v[0]["State"]["Pid"].as_i64().unwrap();
    assert!(pid > 0);
    std::process::Command::new("kill").arg("-KILL").arg(pid.to_string()).status().unwrap();
    assert_eq!(s.ok(&["wait", "victim"]).trim(), "137");
    assert!(s.ok(&["ps", "-a"]).contains("Exited (137)"));

    let (code, _, err) = s.code(&["rm", "app:1"]);
    assert_eq!(code, 1, "{err}");
    s.ok(&["rm", "bg", "kk", "victim"]);
    s.ok(&["run", "-d", "--name", "running", "app:1", "sleep", "100"]);
    let (code, _, err) = s.code(&["rm", "running"]);
    assert_eq!(code, 1);
    assert!(err.contains("running"), "{err}");
    s.ok(&["rm", "-f", "running"]);
    assert!(s.ok(&["ps", "-aq"]).trim().is_empty());
    assert!(container_dirs(&s).is_empty());
    assert!(mounts_under(&s).is_empty());
    assert!(fs::read_dir(s.root().join("runtime")).unwrap().next().is_none(), "no runtime state left");
}

#[test]
fn bad_input_leaves_nothing_behind() {
    let s = with_image("overlay");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["run", "--rm", "nosuch:image", "true"], "nosuch:image"),
        (vec!["run", "--rm", "-e", "=x", "app:1", "true"], "=x"),
        (vec!["run", "--rm", "-u", "a:b:c", "app:1", "true"], "a:b:c"),
        (vec!["run", "--rm", "--memory", "lots", "app:1", "true"], "lots"),
        (vec!["run", "--rm", "--network", "nosuch", "app:1", "true"], "nosuch"),
        (vec!["run", "--rm", "-w", "relative", "app:1", "true"], "relative"),
    ];
    for (args, needle) in cases {
        let (code, _, err) = s.code(&args);
        assert_eq!(code, 125, "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(s.ok(&["ps", "-aq"]).trim().is_empty(), "{args:?}: no container record");
        assert!(container_dirs(&s).is_empty(), "{args:?}");
    }
    // An image whose entrypoint is missing.
    let mut img = TestImage::new("broken:1", vec![busybox_layer()]);
    img.entrypoint = Some(vec!["/no/such/entrypoint".into()]);
    let a = s.write("broken.tar", &docker_archive(&[img]));
    s.ok(&["load", "-i", a.to_str().unwrap()]);
    let (code, _, err) = s.code(&["run", "--rm", "broken:1"]);
    assert_eq!(code, 127, "{err}");
    assert!(err.contains("/no/such/entrypoint"), "{err}");
    assert!(s.ok(&["ps", "-aq"]).trim().is_empty());
    assert!(container_dirs(&s).is_empty());
    assert!(mounts_under(&s).is_empty());
    // The same, created first so its ID is known: no cgroup was ever made for it.
    let id = s.ok(&["create", "--name", "broken-c", "broken:1"]);
    let id = id.trim();
    assert_eq!(s.code(&["start", "-a", "broken-c"]).0, 127);
    for (ctl, v1, v2) in [("memory", "memory.limit_in_bytes", "memory.max"), ("pids", "pids.max", "pids.max")] {
        let dir = cgroup_file(ctl, id, v1, v2).parent().unwrap().to_path_buf();
        assert!(dir.parent().unwrap().parent().unwrap().is_dir(), "the hierarchy is where {} says", dir.display());
        assert!(!dir.exists(), "no cgroup left: {}", dir.display());
    }
    assert!(mounts_under(&s).is_empty());
    assert!(s.ok(&["ps", "-a"]).contains("Exited (127)"));
    s.ok(&["rm", "broken-c"]);
    assert!(container_dirs(&s).is_empty());
}

/// A static program that calls get_mempolicy(2): allowed to any process
/// (no capability involved), refused by Docker's seccomp profile. It prints
/// "ok" or the errno's name.
fn mempolicy_probe(dir: &std::path::Path) -> Vec<u8> {
    let c = dir.join("probe.c");
    fs::write(
        &c,
        "#include <stdio.h>\n#include <errno.h>\n#include <unistd.h>\n#include <sys/syscall.h>\n\
         int main(void){int mode; long r = syscall(SYS_get_mempolicy, &mode, NULL, 0, NULL, 0);\n\
         puts(r == 0 ? \"ok\" : errno == EPERM ? \"EPERM\" : \"other\"); return 0;}\n",
    )
    .unwrap();
    let bin = dir.join("probe");
    let st = std::process::Command::new("gcc").args(["-static", "-O1", "-o"]).arg(&bin).arg(&c).status().unwrap();
    assert!(st.success(), "gcc -static (libc6-dev) builds the probe");
    fs::read(bin).unwrap()
}

#[test]
fn seccomp_blocks_a_denied_syscall_and_resource_limits_apply() {
    let s = with_image("overlay");
    let probe = mempolicy_probe(s.dir.path());
    let host = std::process::Command::new(s.dir.path().join("probe")).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&host.stdout), "ok\n", "the host allows get_mempolicy");
    let layer = LayerTar::new().dir("bin").file_mode("bin/probe", &probe, 0o755).build();
    let a = s.write("probe.tar", &docker_archive(&[TestImage::new("probe:1", vec![busybox_layer(), layer])]));
    s.ok(&["load", "-q", "-i", a.to_str().unwrap()]);
    assert_eq!(s.ok(&["run", "--rm", "probe:1", "/bin/probe"]), "EPERM\n", "seccomp refuses get_mempolicy");
    let id = s.ok(&["run", "-d", "--memory", "64m", "--pids-limit", "50", "--cpus", "0.5", "app:1", "sleep", "30"]);
    let id = id.trim();
    let read = |p: std::path::PathBuf| fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let (mem, pids, cpu) = (
        read(cgroup_file("memory", id, "memory.limit_in_bytes", "memory.max")),
        read(cgroup_file("pids", id, "pids.max", "pids.max")),
        read(cgroup_file("cpu", id, "cpu.cfs_quota_us", "cpu.max")),
    );
    s.ok(&["rm", "-f", id]);
    assert_eq!(mem.trim(), "67108864");
    assert_eq!(pids.trim(), "50");
    assert!(cpu.trim() == "50000" || cpu.trim() == "50000 100000", "{cpu}");
    let dir = cgroup_file("memory", id, "memory.limit_in_bytes", "memory.max");
    assert!(!dir.parent().unwrap().exists(), "cgroup removed with the container");
}

#[test]
fn external_runtime_runs_the_same_bundle() {
    let s = with_image("overlay");
    let (code, out, err) = s.code(&[
        "run",
        "--rm",
        "--runtime",
        "runc",
        "--hostname",
        "viarunc",
        "app:1",
        "sh",
        "-c",
        "echo $$; hostname; cat /etc/x",
    ]);
    assert_eq!((code, out.as_str()), (0, "1\nviarunc\noriginal x\n"), "{err}");
    assert_eq!(s.code(&["run", "--rm", "--runtime", "runc", "app:1", "sh", "-c", "exit 7"]).0, 7);
    s.ok(&["run", "-d", "--name", "rc", "--runtime", "runc", "app:1", "sleep", "30"]);
    let (code, out, _) = s.code(&["exec", "rc", "sh", "-c", "echo in runc exec; exit 4"]);
    assert_eq!((code, out.as_str()), (4, "in runc exec\n"));
    s.ok(&["rm", "-f", "rc"]);
    assert!(mounts_under(&s).is_empty());
    let (code, _, err) = s.code(&["run", "--rm", "--runtime", "no-such-runtime", "app:1", "true"]);
    assert_eq!(code, 125);
    assert!(err.contains("no-such-runtime"), "{err}");
    assert!(s.ok(&["ps", "-aq"]).trim().is_empty());
}

#[test]
fn terminal_with_t() {
    let s = with_image("overlay");
    let run = |args: &str, input: &str| {
        let cmd =
            format!("{} --root {} --storage-driver overlay {args}", env!("CARGO_BIN_EXE_strata"), s.root().display());
        let mut child = std::process::Command::new("script")
            .args(["-qec", &cmd, "/dev/null"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("script (bsdutils) is installed");
        use std::io::Write;
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        let o = child.wait_with_output().unwrap();
        (o.status.code().unwrap_or(-1), String::from_utf8_lossy(&o.stdout).to_string())
    };
    // `script` runs strata in the host's network namespace: no network for these containers.
    let (code, out) = run("run -t --rm --network none app:1 sh -c 'tty; exit 3'", "");
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("/dev/pts/0"), "the process has a terminal: {out}");
    let (code, out) = run("run -it --rm --network none app:1 sh", "echo typed-in; exit 4\n");
    assert_eq!(code, 4, "{out}");
    assert!(out.contains("typed-in\r\n"), "{out}");
    s.ok(&["run", "-d", "--name", "term", "app:1", "sleep", "30"]);
    let (code, out) = run("exec -t term sh -c 'tty; exit 6'", "");
    assert_eq!(code, 6, "{out}");
    assert!(out.contains("/dev/pts/"), "{out}");
    let (code, out) = run("exec -it term sh", "echo typed-in-exec; exit 5\n");
    assert_eq!(code, 5, "{out}");
    assert!(out.contains("typed-in-exec\r\n"), "{out}");
    s.ok(&["rm", "-f", "term"]);
    assert!(mounts_under(&s).is_empty());
}

/// An attached `run FLAGS app:1` whose command traps INT (exit 42), once it
/// says it is ready: the trap is set before "ready" is printed.
fn attached_until_ready(s: &Strata, flags: &[&str]) -> std::process::Child {
    let mut args = vec!["run"];
    args.extend(flags);
    args.extend(["app:1", "sh", "-c", "trap 'exit 42' INT; echo ready; while true; do sleep 0.05; done"]);
    let mut c = s.command();
    // SIGINT as a terminal would deliver it: a shell without job control starts
    // background jobs (a test run with `&`) with it ignored, and exec keeps that.
    // SAFETY: signal(2) between fork and exec, async-signal-safe.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut c, || {
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            Ok(())
        });
    }
    spawn_until_ready(c.args(&args))
}

/// `strata ARGS` with its output piped, once its first line says "ready".
fn until_ready(s: &Strata, args: &[&str]) -> std::process::Child {
    spawn_until_ready(s.command().args(args))
}

/// Spawn `c` with its output piped, and return once its first line says "ready".
fn spawn_until_ready(c: &mut std::process::Command) -> std::process::Child {
    let mut child = c.stdout(std::process::Stdio::piped()).spawn().unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut out, &mut line).unwrap();
    assert_eq!(line, "ready\n");
    child
}

#[test]
fn attached_run_forwards_signals() {
    let s = with_image("overlay");
    let child = attached_until_ready(&s, &["--name", "sig"]);
    std::process::Command::new("kill").arg("-INT").arg(child.id().to_string()).status().unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(42), "the CLI exits with the container's code");
    assert!(s.ok(&["ps", "-a"]).contains("Exited (42)"));
    s.ok(&["rm", "sig"]);
    assert!(mounts_under(&s).is_empty());
}

#[test]
fn attached_run_with_sig_proxy_off_leaves_signals_to_the_cli() {
    use std::os::unix::process::ExitStatusExt;
    let s = with_image("overlay");
    let mut child = attached_until_ready(&s, &["--sig-proxy=false", "--name", "nosig"]);
    std::process::Command::new("kill").arg("-INT").arg(child.id().to_string()).status().unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGINT), "the CLI itself takes the signal: {status:?}");
    // The container never saw it: still running, not exited with its trap's 42.
    let ps = s.ok(&["ps", "--format", "json"]);
    let rows: Vec<serde_json::Value> = ps.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), 1, "{ps}");
    assert_eq!((rows[0]["Names"].as_str(), rows[0]["State"].as_str()), (Some("nosig"), Some("running")), "{ps}");
    s.ok(&["rm", "-f", "nosig"]);
    assert!(mounts_under(&s).is_empty());
}

#[test]
fn a_sigkilled_attached_run_leaves_the_container_running_and_its_exit_code_recorded() {
    let s = with_image("overlay");
    let d = s.dir.path().join("shared");
    std::fs::create_dir(&d).unwrap();
    let vol = format!("{}:/d", d.display());
    let script = "echo ready; while [ ! -e /d/go ]; do sleep 0.05; done; exit 7";
    let mut child = until_ready(&s, &["run", "--name", "killed", "-v", &vol, "app:1", "sh", "-c", script]);
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(s.ok(&["ps", "--filter", "name=killed", "--format", "{{.State}}"]).contains("running"));
    std::fs::write(d.join("go"), "").unwrap();
    assert_eq!(s.ok(&["wait", "killed"]).trim(), "7");
    assert_eq!(s.ok(&["inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", "killed"]).trim(), "exited 7");
    s.ok(&["rm", "killed"]);
    assert!(mounts_under(&s).is_empty());
}

#[test]
fn attach_flags_choose_the_streams_an_attached_run_shows() {
    let s = with_image("overlay");
    let script = "echo to-out; echo to-err >&2; read line; echo read:$line; exit 3";
    let run = |flags: &[&str]| {
        let mut args = vec!["run", "--rm"];
        args.extend(flags);
        args.extend(["app:1", "sh", "-c", script]);
        let mut c = s
            .command()
            .args(&args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(&mut c.stdin.take().unwrap(), b"typed\n").unwrap();
        let o = c.wait_with_output().unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    assert_eq!(run(&["-i"]), (Some(3), "to-out\nread:typed\n".into(), "to-err\n".into()));
    assert_eq!(run(&["-i", "-a", "stdout"]), (Some(3), "to-out\nread:\n".into(), "".into()));
    assert_eq!(run(&["-i", "-a", "STDIN", "-a", "stderr"]), (Some(3), "".into(), "to-err\n".into()));
    assert_eq!(run(&["-a", "stdin", "-a", "stdout"]), (Some(3), "to-out\nread:\n".into(), "".into()));
    let (code, err) = s.fails(&["run", "-d", "-a", "stdout", "app:1", "true"]);
    assert_eq!(code, 125);
    assert!(err.contains("-a and -d"), "{err}");
    let (code, err) = s.fails(&["run", "-a", "stdio", "app:1", "true"]);
    assert_eq!(code, 125);
    assert!(err.contains("-a stdio"), "{err}");
    assert!(s.ok(&["ps", "-a", "-q"]).is_empty());
}

#[test]
fn commit_changes_mean_what_the_same_dockerfile_lines_mean() {
    let s = with_image("overlay");
    s.ok(&["tag", "app:1", "base"]);
    s.ok(&["run", "--name", "cc", "base", "true"]);
    let changes = [
        r#"ENV A="two words" B=$PATH"#,
        r#"LABEL "x y"=z other='quoted value'"#,
        "EXPOSE 80 53/udp",
        r#"ENTRYPOINT ["sh", "-c"]"#,
        r#"CMD echo "$A""#,
        "WORKDIR /srv/./app/..",
        "VOLUME /data",
        "USER 1000:1000",
    ];
    let mut args = vec!["commit"];
    for c in &changes {
        args.extend(["-c", c]);
    }
    args.extend(["cc", "committed"]);
    s.ok(&args);
    let ctx = s.path("ctx");
    fs::create_dir(&ctx).unwrap();
    fs::write(ctx.join("Dockerfile"), format!("FROM base\n{}\n", changes.join("\n"))).unwrap();
    s.ok(&["build", "-q", "-t", "built", ctx.to_str().unwrap()]);
    let config = |name: &str| {
        let v: serde_json::Value = serde_json::from_str(&s.ok(&["inspect", name])).unwrap();
        v[0]["Config"].clone()
    };
    let (c, b) = (config("committed"), config("built"));
    assert_eq!(c["Env"].as_array().unwrap().iter().filter(|e| e.as_str().unwrap().starts_with("A=")).count(), 1);
    assert!(c["Env"].as_array().unwrap().iter().any(|e| e == "A=two words"), "{c}");
    for field in ["Env", "Labels", "ExposedPorts", "Entrypoint", "Cmd", "WorkingDir", "Volumes", "User"] {
        assert_eq!(c[field], b[field], "{field} differs between commit -c and build");
    }
}

#[test]
fn a_killed_exec_leaves_its_process_in_the_container_s_cgroup_and_rm_ends_it() {
    let s = with_image("overlay");
    s.ok(&["run", "-d", "--network", "none", "--name", "host", "app:1", "sleep", "1000"]);
    let before = processes(&["sleep", "31338"]);
    let mut child = s
        .command()
        .args(["exec", "host", "sleep", "31338"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let ours = loop {
        if let Some(p) = processes(&["sleep", "31338"]).into_iter().find(|p| !before.contains(p)) {
            break p;
        }
        assert!(std::time::Instant::now() < deadline, "the exec'd sleep never showed up");
        std::thread::sleep(Duration::from_millis(20));
    };
    child.kill().unwrap();
    child.wait().unwrap();
    // Findable: it is in the container's own cgroup, with the container's init.
    let init = s.ok(&["inspect", "--format", "{{.State.Pid}}", "host"]).trim().to_string();
    let cgroup = |pid: &str| fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    // (If it died with the CLI there is nothing left to find.)
    if let Ok(c) = fs::read_to_string(format!("/proc/{ours}/cgroup")) {
        assert_eq!(c, cgroup(&init), "the exec'd process is in the container's cgroup");
    }
    s.ok(&["rm", "-f", "host"]);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while processes(&["sleep", "31338"]).contains(&ours) {
        assert!(std::time::Instant::now() < deadline, "rm -f left the killed exec's process running");
        std::thread::sleep(Duration::from_millis(20));
    }
}
