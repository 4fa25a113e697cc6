//! Commands that wait hold no store lock: while `logs -f`, `wait` and a
//! build's RUN are waiting, deletes and reads elsewhere finish; what a
//! waiting build uses is leased, so removing its base image meanwhile does
//! not take its layers away.

mod common;

use std::fs;
use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// Children killed (and reaped), then containers force-removed, when the
/// test ends, however it ends.
struct Background<'a> {
    children: Vec<Child>,
    containers: Vec<&'static str>,
    /// Files whose appearance ends a waiting build RUN (it outlives a killed build otherwise).
    release: Vec<std::path::PathBuf>,
    strata: &'a Strata,
}

impl<'a> Background<'a> {
    fn new(strata: &'a Strata) -> Self {
        Background { children: Vec::new(), containers: Vec::new(), release: Vec::new(), strata }
    }
}

impl Drop for Background<'_> {
    fn drop(&mut self) {
        for f in &self.release {
            let _ = fs::write(f, "");
        }
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for name in &self.containers {
            let _ = self.strata.run(&["rm", "-f", name]);
        }
    }
}

/// Start `strata args` with its stdout piped.
fn spawn(s: &Strata, args: &[&str]) -> Child {
    s.command().args(args).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap()
}

/// Read `out` until a line containing `want` (the child's ready line).
fn wait_for_line(out: ChildStdout, want: &str) -> BufReader<ChildStdout> {
    let mut r = BufReader::new(out);
    let mut line = String::new();
    loop {
        line.clear();
        let n = r.read_line(&mut line).unwrap();
        assert!(n > 0, "output ended before {want:?}");
        if line.contains(want) {
            return r;
        }
    }
}

/// Run `strata args`, which must succeed before `limit`: a command that
/// waits on a lock another command holds for minutes fails here instead of
/// hanging the suite. (A liveness bound, not a timing: these finish in well
/// under a second when nothing blocks them.)
fn finishes(s: &Strata, args: &[&str], limit: Duration) -> String {
    let mut c = s.command().args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let deadline = Instant::now() + limit;
    loop {
        if c.try_wait().unwrap().is_some() {
            let o = c.wait_with_output().unwrap();
            assert!(o.status.success(), "strata {args:?}: {}", String::from_utf8_lossy(&o.stderr));
            return String::from_utf8(o.stdout).unwrap();
        }
        if Instant::now() > deadline {
            let _ = c.kill();
            let _ = c.wait();
            panic!("strata {args:?} was still waiting after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn setup() -> Strata {
    let s = Strata::new("overlay");
    let other = LayerTar::new().file("other.txt", b"other").build();
    let a = s.write(
        "images.tar",
        &docker_archive(&[
            TestImage::new("busybox:latest", vec![busybox_layer()]),
            TestImage::new("other:1", vec![busybox_layer(), other]),
        ]),
    );
    s.ok(&["load", "-q", "-i", a.to_str().unwrap()]);
    s
}

#[test]
fn rmi_prune_and_df_finish_while_logs_wait_and_a_build_run_are_waiting() {
    let s = setup();
    let mut bg = Background::new(&s);
    bg.containers.push("long");
    s.ok(&["run", "-d", "--name", "long", "busybox", "sh", "-c", "echo ready; exec sleep 600"]);
    let mut logs = spawn(&s, &["logs", "-f", "long"]);
    let out = logs.stdout.take().unwrap();
    bg.children.push(logs);
    let _logs_out = wait_for_line(out, "ready");
    bg.children.push(spawn(&s, &["wait", "long"]));
    let ctx = s.path("ctx");
    fs::create_dir(&ctx).unwrap();
    fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\nRUN --mount=type=bind,target=/ctx echo building-now && until [ -e /ctx/go ]; do sleep 0.05; done\n",
    )
    .unwrap();
    bg.release.push(ctx.join("go"));
    let mut build = spawn(&s, &["build", "-t", "slow", ctx.to_str().unwrap()]);
    let out = build.stdout.take().unwrap();
    bg.children.push(build);
    let _build_out = wait_for_line(out, "building-now");
    // `wait` has been started before the build printed; give it no chance to be the slow one either way.
    let limit = Duration::from_secs(60);
    finishes(&s, &["rmi", "other:1"], limit);
    finishes(&s, &["image", "prune", "-f"], limit);
    let df = finishes(&s, &["system", "df"], limit);
    assert!(df.contains("Images"), "{df}");
}

#[test]
fn a_build_keeps_its_base_layers_when_the_base_image_is_removed_during_a_run() {
    let s = setup();
    let mut bg = Background::new(&s);
    let ctx = s.path("ctx");
    fs::create_dir(&ctx).unwrap();
    fs::write(
        ctx.join("Dockerfile"),
        "FROM other:1\nRUN --mount=type=bind,target=/ctx echo waiting && until [ -e /ctx/go ]; do sleep 0.05; done\n\
         RUN cat /other.txt > /copied\n",
    )
    .unwrap();
    bg.release.push(ctx.join("go"));
    let mut build = spawn(&s, &["build", "-t", "built", ctx.to_str().unwrap()]);
    let out = build.stdout.take().unwrap();
    bg.children.push(build);
    let _out = wait_for_line(out, "waiting");
    finishes(&s, &["rmi", "other:1"], Duration::from_secs(60));
    fs::write(ctx.join("go"), "").unwrap();
    let status = bg.children.pop().unwrap().wait().unwrap();
    assert!(status.success(), "the build failed after its base image was removed");
    assert_eq!(s.ok(&["run", "--rm", "built", "cat", "/copied"]), "other");
    // Once the build is over its leases are gone: nothing is pinned.
    s.ok(&["rmi", "built"]);
    s.ok(&["builder", "prune", "-f"]);
    s.ok(&["rmi", "busybox"]);
    assert_eq!(s.layer_dirs(), Vec::<String>::new(), "layers stayed pinned after the build");
}
