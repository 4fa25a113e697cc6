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
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "flag",
        "--stop-signal",
        "USR2",
        "--stop-timeout",
        "1",
        "usr1",
        "sh",
        "-c",
        &script,
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
        s.ok(&[
            "create",
            "--network",
            "none",
            "--name",
            "c1",
            "--cap-add",
            "NET_ADMIN",
            "--cap-drop",
            "CHOWN",
            "app:1"
        ])
        .len(),
        65
    );
    assert_eq!(
        s.ok(&["inspect", "--format", "{{.HostConfig.CapAdd}} {{.HostConfig.CapDrop}}", "c1"]).trim(),
        "[CAP_NET_ADMIN] [CAP_CHOWN]"
    );
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
    let (code, out, err) =
        run_sh(&s, &["--device", "/dev/fuse"], "test -c /dev/fuse && exec 3<>/dev/fuse && echo opened");
    assert_eq!((code, out.as_str()), (0, "opened\n"), "{err}");
    let (code, out, err) = run_sh(&s, &["--device", "/dev/fuse:/dev/myfuse:rw"], "exec 3<>/dev/myfuse && echo opened");
    assert_eq!((code, out.as_str()), (0, "opened\n"), "{err}");
    let (code, out, err) = run_sh(
        &s,
        &["--device-cgroup-rule", "c 10:229 rwm"],
        "mknod /tmp/fuse c 10 229 && exec 3<>/tmp/fuse && echo opened",
    );
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
    // The default filter: unshare refused ...
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
    let (code, err) = s.fails(&[
        "run",
        "--network",
        "none",
        "--security-opt",
        &format!("seccomp={}", broken.display()),
        "app:1",
        "true",
    ]);
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
    let out = s.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--group-add",
        "staff",
        "--group-add",
        "1234",
        "groups",
        "id",
        "-G",
    ]);
    assert_eq!(out.trim(), "0 50 1234");
    let (code, err) = s.fails(&["run", "--rm", "--network", "none", "--group-add", "nosuch", "groups", "true"]);
    assert_eq!(code, 125);
    assert!(err.contains("nosuch"), "{err}");
}

#[test]
fn limits_shm_tmpfs_sysctls_and_oom_score_show_inside_the_container() {
    let s = with_app();
    let (code, out, err) = run_sh(
        &s,
        &[
            "--ulimit",
            "nofile=1024:2048",
            "--ulimit",
            "nproc=500",
            "--shm-size",
            "128m",
            "--tmpfs",
            "/run:size=1m,mode=1770",
            "--sysctl",
            "net.ipv4.ip_forward=1",
            "--sysctl",
            "kernel.shmmax=1048576",
            "--oom-score-adj",
            "500",
        ],
        "grep -E '^Max (open files|processes)' /proc/self/limits; grep -E ' /(dev/shm|run) ' /proc/mounts; \
         cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmax /proc/self/oom_score_adj",
    );
    assert_eq!(code, 0, "{err}");
    let limit = |name: &str| -> Vec<String> {
        let line = out.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("{name}: {out}"));
        line[name.len()..].split_whitespace().take(2).map(str::to_string).collect()
    };
    assert_eq!(limit("Max open files"), ["1024", "2048"], "{out}");
    assert_eq!(limit("Max processes"), ["500", "500"], "{out}");
    let shm = out.lines().find(|l| l.contains(" /dev/shm ")).unwrap();
    assert!(shm.contains("size=131072k"), "{shm}");
    let run = out.lines().find(|l| l.contains(" /run ")).unwrap();
    assert!(run.contains("size=1024k") && run.contains("mode=1770") && run.contains("noexec"), "{run}");
    assert!(out.ends_with("1\n1048576\n500\n"), "{out}");
    // The host's values are untouched.
    assert_eq!(std::fs::read_to_string("/proc/self/oom_score_adj").unwrap().trim(), "0");
    for (flag, value, named) in [
        ("--sysctl", "vm.swappiness=1", "vm.swappiness"),
        ("--sysctl", "net.ipv4.ip_forward", "net.ipv4.ip_forward"),
        ("--ulimit", "nofile=2:1", "nofile=2:1"),
        ("--ulimit", "nofiles=1", "nofiles"),
        ("--shm-size", "lots", "lots"),
        ("--tmpfs", "/run:colour=red", "colour=red"),
        ("--oom-score-adj", "5000", "5000"),
        ("--pid", "sideways", "sideways"),
    ] {
        let (code, err) = s.fails(&["run", "--network", "none", flag, value, "app:1", "true"]);
        assert_eq!(code, 125, "{flag} {value}: {err}");
        assert!(err.contains(named), "{flag} {value}: {err}");
    }
    let (code, err) = s.fails(&["run", "--network", "host", "--sysctl", "net.ipv4.ip_forward=1", "app:1", "true"]);
    assert_eq!(code, 125, "a net sysctl with the host's network: {err}");
    assert_eq!(s.ok(&["ps", "-a", "-q"]), "", "nothing created by the refused runs");
}

#[test]
fn pid_uts_and_ipc_namespaces_can_be_the_host_s_or_another_container_s() {
    let s = with_app();
    let (_, own, _) = run_sh(&s, &[], "echo $$; hostname");
    assert_eq!(own.lines().next(), Some("1"), "its own PID namespace: {own}");
    let host_name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let (code, out, err) = run_sh(&s, &["--pid", "host", "--uts", "host"], "echo $$; hostname");
    assert_eq!(code, 0, "{err}");
    let mut lines = out.lines();
    assert_ne!(lines.next(), Some("1"), "the host's PID namespace: {out}");
    assert_eq!(lines.next(), Some(host_name.trim()), "the host's hostname");
    s.ok(&["run", "-d", "--network", "none", "--name", "sleeper", "app:1", "sleep", "1000"]);
    let (code, out, err) = run_sh(&s, &["--pid", "container:sleeper"], "ps -o comm");
    assert_eq!(code, 0, "{err}");
    assert!(out.lines().any(|l| l.trim() == "sleep"), "the other container's processes: {out}");
    let (code, out, err) = run_sh(&s, &["--ipc", "host"], "grep ' /dev/shm ' /proc/mounts");
    assert_eq!(code, 0, "{err}");
    let host_shm = std::fs::read_to_string("/proc/mounts").unwrap();
    let host_shm =
        host_shm.lines().find(|l| l.contains(" /dev/shm ")).map(|l| l.split(' ').nth(2).unwrap().to_string());
    assert_eq!(out.split(' ').nth(2).map(str::to_string), host_shm, "the host's /dev/shm: {out}");
    s.ok(&["stop", "-t", "0", "sleeper"]);
    let (code, err) = s.fails(&["run", "--network", "none", "--pid", "container:sleeper", "app:1", "true"]);
    assert_eq!(code, 125);
    assert!(err.contains("sleeper") && err.contains("not running"), "{err}");
}

#[test]
fn cpu_shares_and_cpuset_reach_the_container_s_cgroup() {
    let s = with_app();
    s.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "cg",
        "--cpu-shares",
        "512",
        "--cpuset-cpus",
        "0",
        "app:1",
        "sleep",
        "1000",
    ]);
    let id = s.ok(&["inspect", "--format", "{{.Id}}", "cg"]).trim().to_string();
    let read =
        |c: &str, v1: &str, v2: &str| std::fs::read_to_string(cgroup_file(c, &id, v1, v2)).unwrap().trim().to_string();
    assert_eq!(read("cpuset", "cpuset.cpus", "cpuset.cpus"), "0");
    let shares = read("cpu", "cpu.shares", "cpu.weight");
    assert!(shares == "512" || shares == "20", "512 shares (v2: weight 20): {shares}");
    s.ok(&["rm", "-f", "cg"]);
}

/// Poll `strata exec NAME ps -o stat` until `done(zombies)` (30 s at most).
fn zombies_until(s: &Strata, name: &str, done: impl Fn(usize) -> bool) -> usize {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let n = s.ok(&["exec", name, "ps", "-o", "stat"]).lines().filter(|l| l.starts_with('Z')).count();
        if done(n) || std::time::Instant::now() > deadline {
            return n;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn init_is_pid_1_reaps_orphans_and_passes_signals_on() {
    let s = with_app();
    // 50 orphans (reparented to PID 1) that exit once /tmp/go exists; PID 1
    // (or, with --init, the init's child) is then a sleep that never waits.
    let orphans =
        "for i in $(seq 50); do (while [ ! -e /tmp/go ]; do sleep 0.05; done &); done; echo ready; exec sleep 1000";
    for (name, flags) in [("plain", vec![]), ("inited", vec!["--init"])] {
        let mut args = vec!["run", "-d", "--network", "none", "--name", name];
        args.extend(flags);
        args.extend(["app:1", "sh", "-c", orphans]);
        s.ok(&args);
        wait_ready(&s, name, 1);
        s.ok(&["exec", name, "touch", "/tmp/go"]);
    }
    // Without an init the exited orphans stay zombies; with one, none is left.
    assert_eq!(zombies_until(&s, "plain", |n| n == 50), 50, "the orphans of a plain container");
    assert_eq!(zombies_until(&s, "inited", |n| n == 0), 0, "zombies under --init");
    let cmdline = s.ok(&["exec", "inited", "cat", "/proc/1/cmdline"]);
    assert!(cmdline.starts_with("/dev/init\0--\0sh\0-c\0"), "PID 1: {cmdline:?}");
    assert_eq!(s.ok(&["inspect", "--format", "{{.HostConfig.Init}}", "inited"]).trim(), "true");
    // A signal to the container reaches the command through the init.
    let script = trapping(&["TERM"], Some("TERM"));
    s.ok(&["run", "-d", "--network", "none", "--init", "--name", "term", "app:1", "sh", "-c", &script]);
    wait_ready(&s, "term", 1);
    s.ok(&["stop", "term"]);
    assert_eq!(s.ok(&["logs", "term"]), "ready\ngot-TERM\n");
    assert_eq!(s.ok(&["wait", "term"]).trim(), "0");
    let (code, _, _) = s.code(&["run", "--rm", "--network", "none", "--init", "app:1", "sh", "-c", "exit 7"]);
    assert_eq!(code, 7, "the command's exit code through the init");
    s.ok(&["rm", "-f", "plain", "inited"]);
}

/// Poll `inspect --format FORMAT NAME` until it prints `want` (30 s at most); the last output.
fn inspect_until(s: &Strata, name: &str, format: &str, want: impl Fn(&str) -> bool) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let out = s.ok(&["inspect", "--format", format, name]).trim().to_string();
        if want(&out) || std::time::Instant::now() > deadline {
            return out;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn restart_policies_rerun_as_docker_s_and_stop_ends_the_loop() {
    let s = with_app();
    // on-failure:2 of a failing command: exactly two restarts, then exited.
    s.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "fails",
        "--restart",
        "on-failure:2",
        "app:1",
        "sh",
        "-c",
        "echo run; exit 3",
    ]);
    let fmt = "{{.State.Status}} {{.State.ExitCode}} {{.RestartCount}} {{.HostConfig.RestartPolicy.Name}}";
    let done = inspect_until(&s, "fails", fmt, |o| o == "exited 3 2 on-failure");
    assert_eq!(done, "exited 3 2 on-failure");
    // `logs -f` ends with its monitor: all three runs' output is there.
    assert_eq!(s.ok(&["logs", "-f", "fails"]), "run\nrun\nrun\n");
    // always: it keeps coming back after clean exits; stop ends it and it stays down.
    s.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "again",
        "--restart",
        "always",
        "app:1",
        "sh",
        "-c",
        "echo run; exit 0",
    ]);
    let count = inspect_until(&s, "again", "{{.RestartCount}}", |o| o.parse::<u32>().is_ok_and(|n| n >= 2));
    assert!(count.parse::<u32>().unwrap() >= 2, "restarts: {count}");
    s.ok(&["stop", "again"]);
    let after_stop = s.ok(&["inspect", "--format", "{{.State.Status}} {{.RestartCount}}", "again"]);
    let runs = s.ok(&["logs", "again"]).lines().count();
    assert!(after_stop.starts_with("exited "), "{after_stop}");
    // Stopped for good: a later look finds the same count and the same runs
    // (the monitor is gone: `wait` returns at once).
    assert_eq!(s.ok(&["wait", "again"]).trim(), "0");
    assert_eq!(s.ok(&["inspect", "--format", "{{.State.Status}} {{.RestartCount}}", "again"]), after_stop);
    assert_eq!(s.ok(&["logs", "again"]).lines().count(), runs);
    // A long-running one with `always` is restarted when its process dies.
    s.ok(&["run", "-d", "--network", "none", "--name", "svc", "--restart", "always", "app:1", "sleep", "1000"]);
    let pid = s.ok(&["inspect", "--format", "{{.State.Pid}}", "svc"]).trim().parse::<i32>().unwrap();
    // SAFETY: kill(2) of the container's process, as a crash would end it.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    let back = inspect_until(&s, "svc", "{{.State.Status}} {{.RestartCount}}", |o| o == "running 1");
    assert_eq!(back, "running 1");
    s.ok(&["rm", "-f", "svc"]);
    for bad in [&["--restart", "sometimes"][..], &["--restart", "always", "--rm"][..]] {
        let mut args = vec!["run", "--network", "none"];
        args.extend(bad);
        args.extend(["app:1", "true"]);
        let (code, err) = s.fails(&args);
        assert_eq!(code, 125, "{bad:?}: {err}");
        assert!(err.contains("--restart"), "{bad:?}: {err}");
    }
}

#[test]
fn health_goes_starting_healthy_unhealthy_and_shows_in_ps_inspect_and_events() {
    let s = with_app();
    // Failing probes in the (long) start period keep it starting; a success
    // makes it healthy; two failures in a row after that, unhealthy.
    s.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "hc",
        "--health-cmd",
        "echo probe; test -e /tmp/ok",
        "--health-interval",
        "100ms",
        "--health-retries",
        "2",
        "--health-start-period",
        "60s",
        "app:1",
        "sleep",
        "1000",
    ]);
    let probes = inspect_until(&s, "hc", "{{len .State.Health.Log}}", |o| o.parse::<usize>().is_ok_and(|n| n >= 2));
    assert!(probes.parse::<usize>().unwrap() >= 2);
    assert_eq!(
        s.ok(&["inspect", "--format", "{{.State.Health.Status}} {{.State.Health.FailingStreak}}", "hc"]).trim(),
        "starting 0"
    );
    assert!(s.ok(&["ps", "--format", "{{.Status}}", "--filter", "name=hc"]).contains("(health: starting)"));
    s.ok(&["exec", "hc", "touch", "/tmp/ok"]);
    assert_eq!(inspect_until(&s, "hc", "{{.State.Health.Status}}", |o| o == "healthy"), "healthy");
    assert!(s.ok(&["ps", "--format", "{{.Status}}", "--filter", "name=hc"]).contains("(healthy)"));
    let last = s.ok(&["inspect", "--format", "{{with $l := index .State.Health.Log 0}}{{$l.Output}}{{end}}", "hc"]);
    assert_eq!(last.trim(), "probe");
    s.ok(&["exec", "hc", "rm", "/tmp/ok"]);
    assert_eq!(inspect_until(&s, "hc", "{{.State.Health.Status}}", |o| o == "unhealthy"), "unhealthy");
    let streak = s.ok(&["inspect", "--format", "{{.State.Health.FailingStreak}}", "hc"]);
    assert!(streak.trim().parse::<u32>().unwrap() >= 2, "{streak}");
    let events =
        s.ok(&["events", "--since", "1h", "--until", "0s", "--format", "{{.Action}}", "--filter", "container=hc"]);
    let health: Vec<&str> = events.lines().filter(|l| l.starts_with("health_status")).collect();
    assert_eq!(health, ["health_status: healthy", "health_status: unhealthy"], "{events}");
    s.ok(&["rm", "-f", "hc"]);
    // The image's HEALTHCHECK, and --no-healthcheck turning it off.
    let ctx = s.dir.path().join("ctx");
    std::fs::create_dir(&ctx).unwrap();
    std::fs::write(ctx.join("Dockerfile"), "FROM app:1\nHEALTHCHECK --interval=100ms CMD true\n").unwrap();
    s.ok(&["build", "--network", "none", "-q", "-t", "checked", ctx.to_str().unwrap()]);
    s.ok(&["run", "-d", "--network", "none", "--name", "img", "checked", "sleep", "1000"]);
    assert_eq!(inspect_until(&s, "img", "{{.State.Health.Status}}", |o| o == "healthy"), "healthy");
    s.ok(&["run", "-d", "--network", "none", "--name", "off", "--no-healthcheck", "checked", "sleep", "1000"]);
    assert_eq!(s.ok(&["inspect", "--format", "{{json .State.Health}}", "off"]).trim(), "null");
    s.ok(&["rm", "-f", "img", "off"]);
    let (code, err) =
        s.fails(&["run", "--network", "none", "--health-cmd", "true", "--health-interval", "soon", "app:1", "true"]);
    assert_eq!(code, 125);
    assert!(err.contains("soon"), "{err}");
}

#[test]
fn start_all_brings_back_what_a_boot_would_and_cidfile_holds_the_id() {
    let s = with_app();
    let cid = s.dir.path().join("cid");
    let id = s.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "always",
        "--restart",
        "always",
        "--cidfile",
        cid.to_str().unwrap(),
        "app:1",
        "sleep",
        "1000",
    ]);
    assert_eq!(std::fs::read_to_string(&cid).unwrap(), id.trim());
    let (code, err) = s.fails(&["create", "--network", "none", "--cidfile", cid.to_str().unwrap(), "app:1"]);
    assert_eq!(code, 125);
    assert!(err.contains("container ID file found"), "{err}");
    s.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "unless",
        "--restart",
        "unless-stopped",
        "app:1",
        "sleep",
        "1000",
    ]);
    s.ok(&["run", "-d", "--network", "none", "--name", "plain", "app:1", "sleep", "1000"]);
    assert_eq!(s.ok(&["ps", "--filter", "restart-policy=always", "--format", "{{.Names}}"]), "always\n");
    // Stopped by hand, all three; a boot's start brings back only `always`.
    s.ok(&["stop", "-t", "0", "always", "unless", "plain"]);
    let started =
        s.ok(&["start", "--all", "--filter", "restart-policy=always", "--filter", "restart-policy=unless-stopped"]);
    assert_eq!(started, "always\n");
    assert_eq!(s.ok(&["ps", "--format", "{{.Names}}"]), "always\n");
    s.ok(&["rm", "-f", "always", "unless", "plain"]);
}

#[test]
fn log_opts_rotate_the_log_and_the_none_driver_keeps_nothing() {
    let s = with_app();
    let script = "for i in $(seq 400); do echo line $i; done";
    s.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "chatty",
        "--log-opt",
        "max-size=2k",
        "--log-opt",
        "max-file=3",
        "app:1",
        "sh",
        "-c",
        script,
    ]);
    assert_eq!(s.ok(&["wait", "chatty"]).trim(), "0");
    let id = s.ok(&["inspect", "--format", "{{.Id}}", "chatty"]).trim().to_string();
    let dir = s.root().join("containers").join(&id);
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("container.log"))
        .collect();
    files.sort();
    assert_eq!(files, ["container.log", "container.log.1", "container.log.2"]);
    for f in &files {
        let len = std::fs::metadata(dir.join(f)).unwrap().len();
        assert!(len <= 2048, "{f}: {len} bytes");
    }
    // `logs -f` ends with the monitor; what is kept reads back in order, ending with the last line.
    let out = s.ok(&["logs", "-f", "chatty"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.last(), Some(&"line 400"));
    assert!(lines.len() < 400, "older lines rotated away: {}", lines.len());
    let first: usize = lines[0].trim_start_matches("line ").parse().unwrap();
    let expected: Vec<String> = (first..=400).map(|i| format!("line {i}")).collect();
    assert_eq!(lines, expected, "kept lines are consecutive");
    s.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "quiet",
        "--log-driver",
        "none",
        "app:1",
        "sh",
        "-c",
        "echo hidden",
    ]);
    assert_eq!(s.ok(&["wait", "quiet"]).trim(), "0");
    let (code, err) = s.fails(&["logs", "quiet"]);
    assert_eq!(code, 1);
    assert!(err.contains("does not support reading"), "{err}");
    for (flag, value) in [("--log-opt", "max-size=lots"), ("--log-opt", "colour=red"), ("--log-driver", "syslog")] {
        let (code, err) = s.fails(&["run", "--network", "none", flag, value, "app:1", "true"]);
        assert_eq!(code, 125, "{flag} {value}: {err}");
    }
}

#[test]
fn a_detached_container_s_parent_is_strata_monitor_which_passes_signals_on_and_its_exit_is_recorded() {
    let s = with_app();
    s.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "watched",
        "app:1",
        "sh",
        "-c",
        &trapping(&["USR1", "TERM"], Some("TERM")),
    ]);
    wait_ready(&s, "watched", 1);
    let pid = s.ok(&["inspect", "--format", "{{.State.Pid}}", "watched"]).trim().to_string();
    let monitor = parent_of(&pid);
    let exe = std::fs::read_link(format!("/proc/{monitor}/exe")).unwrap();
    assert_eq!(exe.file_name().unwrap(), "strata-monitor", "{exe:?}");
    let signal = |sig: &str| {
        let st = std::process::Command::new("kill").args([sig, &monitor]).status().unwrap();
        assert!(st.success(), "kill {sig} {monitor}");
    };
    signal("-USR1");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !s.ok(&["logs", "watched"]).lines().any(|l| l == "got-USR1") {
        assert!(std::time::Instant::now() < deadline, "USR1 sent to the monitor never reached the container");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    signal("-TERM");
    assert_eq!(s.ok(&["wait", "watched"]).trim(), "0");
    assert_eq!(s.ok(&["inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", "watched"]).trim(), "exited 0");
    assert!(s.ok(&["logs", "watched"]).lines().any(|l| l == "got-TERM"));
}
