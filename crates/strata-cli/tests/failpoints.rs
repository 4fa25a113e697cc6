//! Every named fault-injection point (`strata::fault`, compiled into the
//! binary the tests run), driven once to an error and once to a SIGKILL of
//! the command at that instant. Then the next command succeeds, `system
//! check` finds nothing, nothing of the failed command is left (no temp
//! entries, mounts, container or volume directories without records), and
//! the images that were complete before are unchanged.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::process::ExitStatusExt;

use common::*;

/// What a point interrupts: the store it starts from, the command it
/// fires in, the command run next, and what must hold after.
struct Case {
    setup: fn(&Strata),
    command: fn(&Strata) -> Vec<String>,
    next: fn(&Strata) -> Vec<String>,
    after: fn(&Strata),
    /// The `fail` action that kills (a count places it mid-step).
    kill: &'static str,
}

fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

fn nothing(_: &Strata) {}

/// An image with the base's layer and one of its own.
fn other_archive(s: &Strata) -> String {
    let own =
        LayerTar::new().dir("extra").file("extra/file", b"other's own\n").file("extra/more", &[7u8; 70_000]).build();
    let a = docker_archive(&[TestImage::new("other:1", vec![busybox_layer(), own])]);
    s.write("other.tar", &a).display().to_string()
}

fn load_other(s: &Strata) -> Vec<String> {
    args(&["load", "-q", "-i", &other_archive(s)])
}

fn other_is_whole(s: &Strata) {
    let out = s.ok(&["run", "--rm", "--network", "none", "other:1", "cat", "/extra/file"]);
    assert_eq!(out, "other's own\n");
}

fn build_context(s: &Strata) {
    let ctx = s.path("ctx");
    fs::create_dir(&ctx).unwrap();
    fs::write(ctx.join("data"), "copied\n").unwrap();
    fs::write(ctx.join("Dockerfile"), "FROM base:1\nCOPY data /data\nRUN echo ran > /ran\n").unwrap();
}

fn build(s: &Strata) -> Vec<String> {
    args(&["build", "-q", "-t", "built:1", &s.path("ctx").display().to_string()])
}

fn built_is_whole(s: &Strata) {
    assert_eq!(s.ok(&["run", "--rm", "--network", "none", "built:1", "cat", "/data", "/ran"]), "copied\nran\n");
}

fn run_echo(_: &Strata) -> Vec<String> {
    args(&["run", "--network", "none", "base:1", "echo", "hi"])
}

fn run_echo_removed(_: &Strata) -> Vec<String> {
    args(&["run", "--rm", "--network", "none", "base:1", "echo", "hi"])
}

fn container_c1(s: &Strata) {
    s.ok(&["run", "--network", "none", "--name", "c1", "base:1", "true"]);
}

fn c1_is_gone(s: &Strata) {
    let names = s.ok(&["ps", "-a", "--format", "{{.Names}}"]);
    assert!(!names.lines().any(|n| n == "c1"), "{names}");
}

fn seeded_run(_: &Strata) -> Vec<String> {
    args(&["run", "--rm", "--network", "none", "-v", "seeded:/bin", "base:1", "ls", "/bin"])
}

fn volume_holds_the_image_s_bin(s: &Strata) {
    let image = s.ok(&["run", "--rm", "--network", "none", "base:1", "ls", "/bin"]);
    let volume = s.ok(&["run", "--rm", "--network", "none", "-v", "seeded:/bin", "base:1", "ls", "/bin"]);
    assert_eq!(volume, image);
}

fn other_and_its_layer_are_gone(s: &Strata) {
    assert!(s.run(&["inspect", "other:1"]).status.code() == Some(1), "other:1 is still there");
    assert_eq!(s.layer_dirs().len(), 1, "only the base's layer is left: {:?}", s.layer_dirs());
}

const LOAD: Case =
    Case { setup: nothing, command: load_other, next: load_other, after: other_is_whole, kill: "return(kill)" };

fn case(point: &str) -> Case {
    match point {
        "blob-write" | "blob-sync" | "blob-rename" | "layer-claim" | "layer-rename" | "layer-ready"
        | "image-commit" => LOAD,
        // Some of the layer's entries are on disk when it stops.
        "layer-unpack" => Case { kill: "2*off->return(kill)", ..LOAD },
        "build-step" | "build-cache" => {
            Case { setup: build_context, command: build, next: build, after: built_is_whole, kill: "return(kill)" }
        }
        "container-create" | "container-start" => {
            Case { setup: nothing, command: run_echo, next: run_echo_removed, after: nothing, kill: "return(kill)" }
        }
        "container-remove" => Case {
            setup: container_c1,
            command: |_| args(&["rm", "c1"]),
            next: |_| args(&["ps", "-a"]),
            after: c1_is_gone,
            kill: "return(kill)",
        },
        "volume-create" => Case {
            setup: nothing,
            command: |_| args(&["volume", "create", "v1"]),
            next: |_| args(&["volume", "create", "v1"]),
            after: |s| assert_eq!(s.ok(&["volume", "ls", "-q"]), "v1\n"),
            kill: "return(kill)",
        },
        // The copy of the image's directory is whole when it stops.
        "volume-seed" => Case {
            setup: nothing,
            command: seeded_run,
            next: seeded_run,
            after: volume_holds_the_image_s_bin,
            kill: "return(kill)",
        },
        "image-remove" | "gc-delete" => Case {
            setup: |s| {
                s.ok(&load_other(s).iter().map(String::as_str).collect::<Vec<_>>());
            },
            command: |_| args(&["rmi", "other:1"]),
            next: |_| args(&["images"]),
            after: other_and_its_layer_are_gone,
            kill: "return(kill)",
        },
        p => panic!("no case for failpoint {p}"),
    }
}

fn entries(dir: std::path::PathBuf) -> Vec<String> {
    let mut v: Vec<String> = match fs::read_dir(&dir) {
        Ok(rd) => rd.map(|e| e.unwrap().file_name().to_string_lossy().to_string()).collect(),
        Err(_) => Vec::new(),
    };
    v.sort();
    v
}

/// Nothing left that no record or live process owns.
fn nothing_left_over(s: &Strata) {
    assert_eq!(s.tmp_entries(), Vec::<String>::new(), "tmp/");
    assert_eq!(mounts_under(s), Vec::<String>::new(), "mounts");
    let mut ids: Vec<String> = s.ok(&["ps", "-a", "-q", "--no-trunc"]).lines().map(str::to_string).collect();
    ids.sort();
    assert_eq!(entries(s.root().join("containers")), ids, "container directories");
    let mut vols: Vec<String> = s.ok(&["volume", "ls", "-q"]).lines().map(str::to_string).collect();
    vols.sort();
    assert_eq!(entries(s.root().join("volumes")), vols, "volume directories");
}

/// Fire `point` with `action` in its case's command, then check the store.
fn fire(point: &str, action: &str) {
    let c = case(point);
    let s = Strata::new("overlay");
    let base = s.write("base.tar", &docker_archive(&[TestImage::new("base:1", vec![busybox_layer()])]));
    s.ok(&["load", "-q", "-i", base.to_str().unwrap()]);
    (c.setup)(&s);
    let mut before = BTreeMap::new();
    for name in s.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]).lines() {
        before.insert(name.to_string(), (s.image_id(name), s.image_tree(name)));
    }
    assert!(!before.is_empty());

    let out = s.command().args((c.command)(&s)).env("FAILPOINTS", format!("{point}={action}")).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    if action.contains("kill") {
        // `run` starts its container from a waiting process of its own: that one dies, and says so.
        let killed = out.status.signal() == Some(libc::SIGKILL) || err.contains("was killed (signal 9)");
        assert!(killed, "{point}: {action} did not fire: {:?} {err}", out.status);
    } else {
        assert!(!out.status.success(), "{point}: the command succeeded: {err}");
        assert!(err.contains(&format!("failpoint {point}")), "{point}: the error does not name it: {err}");
    }

    s.ok(&(c.next)(&s).iter().map(String::as_str).collect::<Vec<_>>());
    assert_check_clean(&s);
    nothing_left_over(&s);
    for (name, (id, tree)) in &before {
        if name == "other:1" && (point == "image-remove" || point == "gc-delete") {
            continue; // removed on purpose
        }
        assert_eq!(&s.image_id(name), id, "{point}: {name} changed");
        assert_eq!(&s.image_tree(name), tree, "{point}: {name}'s files changed");
    }
    (c.after)(&s);
}

macro_rules! failpoint_tests {
    ($($test:ident: $point:literal,)*) => {$(
        #[test]
        fn $test() {
            fire($point, "return");
            fire($point, case($point).kill);
        }
    )*};
}

failpoint_tests! {
    blob_write_error_or_kill_leaves_a_clean_store: "blob-write",
    blob_sync_error_or_kill_leaves_a_clean_store: "blob-sync",
    blob_rename_error_or_kill_leaves_a_clean_store: "blob-rename",
    layer_claim_error_or_kill_leaves_a_clean_store: "layer-claim",
    layer_unpack_error_or_kill_leaves_a_clean_store: "layer-unpack",
    layer_rename_error_or_kill_leaves_a_clean_store: "layer-rename",
    layer_ready_error_or_kill_leaves_a_clean_store: "layer-ready",
    image_commit_error_or_kill_leaves_a_clean_store: "image-commit",
    build_step_error_or_kill_leaves_a_clean_store: "build-step",
    build_cache_error_or_kill_leaves_a_clean_store: "build-cache",
    container_create_error_or_kill_leaves_a_clean_store: "container-create",
    container_start_error_or_kill_leaves_a_clean_store: "container-start",
    container_remove_error_or_kill_leaves_a_clean_store: "container-remove",
    volume_create_error_or_kill_leaves_a_clean_store: "volume-create",
    volume_seed_error_or_kill_leaves_a_clean_store: "volume-seed",
    image_remove_error_or_kill_leaves_a_clean_store: "image-remove",
    gc_delete_error_or_kill_leaves_a_clean_store: "gc-delete",
}
