//! The `run` options services rely on: stop signals and timeouts,
//! capabilities and devices, security options, resource limits and
//! namespaces.

#[macro_use]
mod common;

use common::*;

/// A store with `app:1` (busybox).
fn with_app() -> Strata {
    let s = Strata::new("overlay");
    let a = s.write("app.tar", &docker_archive(&[TestImage::new("app:1", vec![busybox_layer()])]));
    s.ok(&["load", "-i", a.to_str().unwrap()]);
    s
}

/// A script that reports each signal it catches and keeps running (or
/// exits 0 on `exit_on`).
fn trapping(signals: &[&str], exit_on: Option<&str>) -> String {
    let mut script = String::new();
    for sig in signals {
        let exit = if Some(*sig) == exit_on { "; exit 0" } else { "" };
        script.push_str(&format!("trap 'echo got-{sig}{exit}' {sig}; "));
    }
    script.push_str("echo ready; while true; do sleep 0.05; done");
    script
}

/// Wait until the container's log has `n` lines `ready` (its `n`th run is ready).
fn wait_ready(s: &Strata, name: &str, n: usize) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while s.ok(&["logs", name]).lines().filter(|l| *l == "ready").count() < n {
        assert!(std::time::Instant::now() < deadline, "{name} never got ready");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn stop_sends_the_image_s_stopsignal_or_stop_signal_then_kills_after_the_stop_timeout() {
    let s = with_app();
    let ctx = s.dir.path().join("ctx");
    std::fs::create_dir(&ctx).unwrap();
    std::fs::write(ctx.join("Dockerfile"), "FROM app:1\nSTOPSIGNAL SIGUSR1\n").unwrap();
    s.ok(&["build", "--network", "none", "-q", "-t", "usr1", ctx.to_str().unwrap()]);
    let script = trapping(&["USR1", "USR2", "TERM"], Some("USR1"));
    s.ok(&["run", "-d", "--network", "none", "--name", "img", "usr1", "sh", "-c", &script]);
    assert_eq!(s.ok(&["inspect", "--format", "{{.Config.StopSignal}}", "img"]).trim(), "SIGUSR1");
    wait_ready(&s, "img", 1);
    s.ok(&["stop", "img"]);
    assert_eq!(s.ok(&["logs", "img"]), "ready\ngot-USR1\n");
    assert_eq!(s.ok(&["wait", "img"]).trim(), "0");
    // --stop-signal over the image's; a signal the process survives, then SIGKILL after --stop-timeout.
    s.ok(&[
        "run", "-d", "--network", "none", "--name", "flag", "--stop-signal", "USR2", "--stop-timeout", "1", "usr1", "sh",
        "-c", &script,
    ]);
    wait_ready(&s, "flag", 1);
    let started = std::time::Instant::now();
    s.ok(&["stop", "flag"]);
    let took = started.elapsed();
    assert_eq!(s.ok(&["logs", "flag"]), "ready\ngot-USR2\n");
    assert_eq!(s.ok(&["wait", "flag"]).trim(), "137", "killed after the timeout");
    assert!(took >= std::time::Duration::from_millis(900), "SIGKILL came before --stop-timeout: {took:?}");
    // `restart` sends the stop signal too.
    s.ok(&["start", "img"]);
    wait_ready(&s, "img", 2);
    s.ok(&["restart", "img"]);
    wait_ready(&s, "img", 3);
    assert_eq!(s.ok(&["logs", "img"]).matches("got-USR1").count(), 2);
    s.ok(&["rm", "-f", "img"]);
    let (code, err) = s.fails(&["run", "--network", "none", "--stop-signal", "SIGNOPE", "app:1", "true"]);
    assert_eq!(code, 125);
    assert!(err.contains("SIGNOPE"), "{err}");
    assert_eq!(s.ok(&["ps", "-a", "-q"]).lines().count(), 1, "nothing created by the refused run");
}

/// `run --rm --network none [FLAGS] app:1 sh -c SCRIPT`: (exit code, stdout, stderr).
fn run_sh(s: &Strata, flags: &[&str], script: &str) -> (i32, String, String) {
    let mut args = vec!["run", "--rm", "--network", "none"];
    args.extend(flags);
    args.extend(["app:1", "sh", "-c", script]);
    s.code(&args)
}

#[test]
fn capabilities_follow_cap_add_cap_drop_and_privileged() {
    let s = with_app();
    // Default: chown and raw sockets work, network admin and mounts do not.
    let (code, _, err) = run_sh(&s, &[], "touch /tmp/f && chown 1 /tmp/f && busybox ping -c1 -W1 127.0.0.1 >/dev/null");
    assert_eq!(code, 0, "{err}");
    let (code, _, _) = run_sh(&s, &[], "busybox ip link set lo mtu 1000");
    assert_ne!(code, 0, "NET_ADMIN is not a default capability");
    let (code, _, _) = run_sh(&s, &[], "mount -t tmpfs none /tmp");
    assert_ne!(code, 0, "mount without SYS_ADMIN");
    // --cap-drop ALL: neither chown nor a raw socket.
    let (code, _, _) = run_sh(&s, &["--cap-drop", "ALL"], "touch /tmp/f && chown 1 /tmp/f");
    assert_ne!(code, 0, "chown with no capabilities");
    let (code, _, _) = run_sh(&s, &["--cap-drop", "all"], "busybox ping -c1 -W1 127.0.0.1");
    assert_ne!(code, 0, "a raw socket with no capabilities");
    // --cap-add NET_ADMIN (with or without CAP_): the link can be changed.
    for name in ["NET_ADMIN", "cap_net_admin"] {
        let (code, _, err) = run_sh(&s, &["--cap-add", name], "busybox ip link set lo mtu 1000");
        assert_eq!(code, 0, "{name}: {err}");
    }
    // --privileged: a tmpfs can be mounted, /sys is writable, no seccomp filter.
    let (code, out, err) =
        run_sh(&s, &["--privileged"], "mount -t tmpfs none /tmp && grep Seccomp: /proc/self/status && touch /sys/kernel/uevent_helper 2>/dev/null; echo ok");
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Seccomp:\t0"), "{out}");
    assert_eq!(
        s.ok(&["create", "--network", "none", "--name", "c1", "--cap-add", "NET_ADMIN", "--cap-drop", "CHOWN", "app:1"])
            .len(),
        65
    );
    assert_eq!(s.ok(&["inspect", "--format", "{{.HostConfig.CapAdd}} {{.HostConfig.CapDrop}}", "c1"]).trim(), "[CAP_NET_ADMIN] [CAP_CHOWN]");
    let (code, err) = s.fails(&["run", "--network", "none", "--cap-add", "CAP_NOPE", "app:1", "true"]);
    assert_eq!(code, 125);
    assert!(err.contains("CAP_NOPE"), "{err}");
    assert_eq!(s.ok(&["ps", "-a", "-q"]).lines().count(), 1, "nothing created by the refused run");
}

#[test]
fn devices_are_denied_unless_given_and_given_ones_are_usable() {
    let s = with_app();
    // The default device cgroup denies what the runtime does not give, even a node made with mknod.
    let (code, _, _) = run_sh(&s, &[], "mknod /tmp/fuse c 10 229 && exec 3<>/tmp/fuse");
    assert_ne!(code, 0, "a device node the container made itself opened");
    let (code, out, err) = run_sh(&s, &["--device", "/dev/fuse"], "test -c /dev/fuse && exec 3<>/dev/fuse && echo opened");
    assert_eq!((code, out.as_str()), (0, "opened\n"), "{err}");
    let (code, out, err) = run_sh(&s, &["--device", "/dev/fuse:/dev/myfuse:rw"], "exec 3<>/dev/myfuse && echo opened");
    assert_eq!((code, out.as_str()), (0, "opened\n"), "{err}");
    let (code, out, err) =
        run_sh(&s, &["--device-cgroup-rule", "c 10:229 rwm"], "mknod /tmp/fuse c 10 229 && exec 3<>/tmp/fuse && echo opened");
    assert_eq!((code, out.as_str()), (0, "opened\n"), "{err}");
    for bad in [["--device", "/dev/nope"], ["--device", "/etc/hostname"], ["--device-cgroup-rule", "x 1:2 rwm"]] {
        let (code, err) = s.fails(&["run", "--network", "none", bad[0], bad[1], "app:1", "true"]);
        assert_eq!(code, 125, "{bad:?}");
        assert!(err.contains(bad[1]), "{bad:?}: {err}");
    }
}

#[test]
fn security_opts_set_no_new_privileges_and_seccomp() {
    let s = with_app();
    let status = |flags: &[&str]| run_sh(&s, flags, "grep -E '^(NoNewPrivs|Seccomp):' /proc/self/status").1;
    assert_eq!(status(&[]), "NoNewPrivs:\t0\nSeccomp:\t2\n");
    assert_eq!(status(&["--security-opt", "no-new-privileges"]), "NoNewPrivs:\t1\nSeccomp:\t2\n");
    assert_eq!(status(&["--security-opt", "no-new-privileges=false"]), "NoNewPrivs:\t0\nSeccomp:\t2\n");
    assert_eq!(status(&["--security-opt", "seccomp=unconfined"]), "NoNewPrivs:\t0\nSeccomp:\t0\n");
    // The default filter: ptrace refused (unshare stands in: both are denied the same way) ...
    let (code, _, _) = run_sh(&s, &[], "busybox unshare -U true");
    assert_ne!(code, 0, "unshare allowed by the default filter");
    // ... a profile in Docker's format: everything but mkdir.
    let profile = s.write(
        "no-mkdir.json",
        br#"{"defaultAction": "SCMP_ACT_ALLOW", "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]}],
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}"#,
    );
    let opt = format!("seccomp={}", profile.display());
    let (code, _, err) = run_sh(&s, &["--security-opt", &opt], "mkdir /tmp/d");
    assert_ne!(code, 0, "mkdir under a profile refusing it");
    assert!(err.contains("not permitted"), "{err}");
    let (code, _, err) = run_sh(&s, &["--security-opt", &opt], "touch /tmp/f");
    assert_eq!(code, 0, "{err}");
    let broken = s.write("broken.json", b"{\"defaultAction\": ");
    let (code, err) = s.fails(&["run", "--network", "none", "--security-opt", &format!("seccomp={}", broken.display()), "app:1", "true"]);
    assert_eq!(code, 125);
    assert!(err.contains("broken.json"), "{err}");
    let (code, err) = s.fails(&["run", "--network", "none", "--security-opt", "colour=red", "app:1", "true"]);
    assert_eq!(code, 125);
    assert!(err.contains("colour=red"), "{err}");
}

#[test]
fn group_add_adds_supplementary_groups_by_name_or_number() {
    let s = with_app();
    let ctx = s.dir.path().join("ctx");
    std::fs::create_dir(&ctx).unwrap();
    std::fs::write(ctx.join("Dockerfile"), "FROM app:1\nRUN echo 'staff:x:50:' > /etc/group\n").unwrap();
    s.ok(&["build", "--network", "none", "-q", "-t", "groups", ctx.to_str().unwrap()]);
    let out = s.ok(&["run", "--rm", "--network", "none", "--group-add", "staff", "--group-add", "1234", "groups", "id", "-G"]);
    assert_eq!(out.trim(), "0 50 1234");
    let (code, err) = s.fails(&["run", "--rm", "--network", "none", "--group-add", "nosuch", "groups", "true"]);
    assert_eq!(code, 125);
    assert!(err.contains("nosuch"), "{err}");
}
