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
