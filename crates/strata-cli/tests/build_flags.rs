//! `build` flags CI pipelines use (issue 18): COPY `--parents`, `--exclude`
//! and `--link`; `--output` (a directory or a
//! tar of the final stage's filesystem instead of an image), `--iidfile`,
//! `-f -` with a directory context, and RUN steps' `--add-host` and
//! `--ulimit`.

mod common;

use std::fs;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use common::*;

/// A store holding `busybox:latest` and a context directory.
fn setup() -> (Strata, PathBuf) {
    busybox_store("overlay")
}

/// Files of every kind, owners, modes, a deleted base file and a second stage.
const DOCKERFILE: &str = "FROM busybox AS build
RUN mkdir -p /out/d && echo data > /out/d/f && chown 1000:50 /out/d/f && chmod 640 /out/d/f && ln -s d/f /out/link
FROM busybox
COPY --from=build /out /app
COPY ctx.txt /app/ctx.txt
RUN rm /bin/seq && mkdir -m 700 /private && echo x > /private/x
";

#[test]
fn output_local_and_tar_equal_the_images_filesystem() {
    let (s, ctx) = setup();
    fs::write(ctx.join("Dockerfile"), DOCKERFILE).unwrap();
    fs::write(ctx.join("ctx.txt"), "from the context\n").unwrap();
    let c = ctx.to_str().unwrap();
    s.ok(&["build", "-q", "-t", "img", c]);
    let image = shape(&s.image_tree("img"));
    assert!(image.contains_key("app/d/f") && !image.contains_key("bin/seq"), "{:?}", image.keys());
    let images_before = s.ok(&["images", "-q", "--no-trunc"]);
    // A directory, new.
    let local = s.path("local-out");
    s.ok(&["build", "-q", "--output", &format!("type=local,dest={}", local.display()), c]);
    assert_eq!(shape(&tree(&local)), image);
    // Into an existing directory: what was there stays, what the output has replaces it.
    let existing = s.path("existing");
    fs::create_dir_all(existing.join("app")).unwrap();
    fs::write(existing.join("kept.txt"), "kept").unwrap();
    fs::write(existing.join("app/stale"), "replaced with app/").unwrap();
    s.ok(&["build", "-q", "-o", existing.to_str().unwrap(), c]);
    let mut got = shape(&tree(&existing));
    assert!(got.remove("kept.txt").is_some());
    assert_eq!(got, image);
    // A tar file, and a tar on standard output.
    let tar_file = s.path("out.tar");
    s.ok(&["build", "-q", "--output", &format!("type=tar,dest={}", tar_file.display()), c]);
    let from_file = s.path("from-file");
    fs::create_dir(&from_file).unwrap();
    let untar = Command::new("tar").arg("-xpf").arg(&tar_file).arg("-C").arg(&from_file).status().unwrap();
    assert!(untar.success());
    assert_eq!(shape(&tree(&from_file)), image);
    let piped = s.command().args(["build", "-q", "-o", "-", c]).output().unwrap();
    assert!(piped.status.success(), "{}", String::from_utf8_lossy(&piped.stderr));
    assert_eq!(piped.stdout, fs::read(&tar_file).unwrap(), "the same tar either way");
    // --output stores no image, as Docker's.
    assert_eq!(s.ok(&["images", "-q", "--no-trunc"]), images_before);
}

#[test]
fn a_malformed_output_is_refused_before_anything_is_built() {
    let (s, ctx) = setup();
    fs::write(ctx.join("Dockerfile"), "FROM busybox\nRUN echo built > /f\n").unwrap();
    for (spec, what) in [
        ("type=registry,dest=x", "type=registry"),
        ("type=local", "dest="),
        ("dest=/tmp/x", "type="),
        ("type=tar,dest=x,compression=gzip", "compression"),
        ("type=local,dest=/no/such/parent/out", "/no/such/parent"),
    ] {
        let (code, err) = s.fails(&["build", "-o", spec, ctx.to_str().unwrap()]);
        assert_eq!(code, 1, "{err}");
        assert!(err.contains("--output") && err.contains(what), "{spec}: {err}");
    }
    // Refused before the build: its RUN never ran, so nothing is cached.
    let out = s.ok(&["build", ctx.to_str().unwrap()]);
    assert!(!out.contains("CACHED"), "{out}");
    assert!(s.tmp_entries().is_empty());
}

#[test]
fn iidfile_holds_the_image_id() {
    let (s, ctx) = setup();
    fs::write(ctx.join("Dockerfile"), "FROM busybox\nRUN echo x > /x\n").unwrap();
    let iid = s.path("iid");
    s.ok(&["build", "-q", "-t", "tagged", "--iidfile", iid.to_str().unwrap(), ctx.to_str().unwrap()]);
    let id = fs::read_to_string(&iid).unwrap();
    assert!(id.starts_with("sha256:") && id.len() == 71, "{id}");
    assert_eq!(id, s.image_id("tagged"));
}

/// Run `strata build` with `stdin` on its standard input.
fn build_with_stdin(s: &Strata, args: &[&str], stdin: &str) -> std::process::Output {
    let mut child =
        s.command().args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn a_dockerfile_on_standard_input_builds_with_a_directory_context() {
    let (s, ctx) = setup();
    fs::write(ctx.join("in-context.txt"), "context file\n").unwrap();
    // The context's own Dockerfile is not the one used.
    fs::write(ctx.join("Dockerfile"), "FROM busybox\nRUN false\n").unwrap();
    let out = build_with_stdin(
        &s,
        &["build", "-q", "-t", "stdin-df", "-f", "-", ctx.to_str().unwrap()],
        "FROM busybox\nCOPY in-context.txt /copied.txt\n",
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let copied = s.ok(&["run", "--rm", "--network", "none", "stdin-df", "cat", "/copied.txt"]);
    assert_eq!(copied, "context file\n");
    // Both from standard input cannot be.
    let out = build_with_stdin(&s, &["build", "-f", "-", "-"], "FROM busybox\n");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("-f -"));
}

fn file_of(s: &Strata, image: &str, path: &str) -> String {
    s.ok(&["run", "--rm", "--network", "none", image, "cat", path])
}

#[test]
fn run_steps_get_the_builds_added_hosts_and_ulimits() {
    let (s, ctx) = setup();
    fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\nRUN grep registry.test /etc/hosts > /hosts-line && sh -c 'ulimit -n' > /nofile\n",
    )
    .unwrap();
    s.ok(&[
        "build",
        "-q",
        "-t",
        "flags",
        "--network",
        "none",
        "--add-host",
        "registry.test:10.1.2.3",
        "--ulimit",
        "nofile=1234:1234",
        ctx.to_str().unwrap(),
    ]);
    let line = file_of(&s, "flags", "/hosts-line");
    assert_eq!(line.split_whitespace().collect::<Vec<_>>(), ["10.1.2.3", "registry.test"]);
    assert_eq!(file_of(&s, "flags", "/nofile").trim(), "1234");
    // Bad values name the flag.
    for (flag, value) in [("--add-host", "no-ip-here"), ("--ulimit", "nofile=lots")] {
        let (code, err) = s.fails(&["build", flag, value, ctx.to_str().unwrap()]);
        assert_eq!(code, 1, "{err}");
        assert!(err.contains(flag) && err.contains(value), "{err}");
    }
}

fn files_under(s: &Strata, image: &str, dir: &str) -> Vec<String> {
    let out = s.ok(&["run", "--rm", "--network", "none", image, "find", dir]);
    let mut v: Vec<String> = out.lines().map(String::from).collect();
    v.sort();
    v
}

#[test]
fn copy_parents_keeps_the_sources_directories_below_a_pivot() {
    let (s, ctx) = setup();
    for f in ["a/b/c.txt", "a/d/e.txt", "a/d/skip.md", "x/y/z.txt"] {
        fs::create_dir_all(ctx.join(f).parent().unwrap()).unwrap();
        fs::write(ctx.join(f), f).unwrap();
    }
    fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\nCOPY --parents a/*/*.txt /dst/\nCOPY --parents ./x/./y/z.txt /piv/\nCOPY --parents a/d /whole/\n",
    )
    .unwrap();
    s.ok(&["build", "-q", "-t", "parents", ctx.to_str().unwrap()]);
    assert_eq!(
        files_under(&s, "parents", "/dst"),
        ["/dst", "/dst/a", "/dst/a/b", "/dst/a/b/c.txt", "/dst/a/d", "/dst/a/d/e.txt"]
    );
    assert_eq!(files_under(&s, "parents", "/piv"), ["/piv", "/piv/y", "/piv/y/z.txt"]);
    assert_eq!(
        files_under(&s, "parents", "/whole"),
        ["/whole", "/whole/a", "/whole/a/d", "/whole/a/d/e.txt", "/whole/a/d/skip.md"]
    );
}

#[test]
fn copy_exclude_leaves_out_matches_and_their_changes_keep_the_cache() {
    let (s, ctx) = setup();
    for f in ["keep.txt", "a.log", "sub/keep.txt", "sub/b.log", "tmp/t", "sub/tmp/deep"] {
        fs::create_dir_all(ctx.join(f).parent().unwrap()).unwrap();
        fs::write(ctx.join(f), f).unwrap();
    }
    fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\nCOPY --exclude=**/*.log --exclude=tmp --exclude=Dockerfile . /app/\nCOPY --exclude=*.txt *.txt *.log /top/\n",
    )
    .unwrap();
    let c = ctx.to_str().unwrap();
    s.ok(&["build", "-q", "-t", "ex", c]);
    assert_eq!(
        files_under(&s, "ex", "/app"),
        ["/app", "/app/keep.txt", "/app/sub", "/app/sub/keep.txt", "/app/sub/tmp", "/app/sub/tmp/deep"]
    );
    assert_eq!(files_under(&s, "ex", "/top"), ["/top", "/top/a.log"]);
    // A change to an excluded file is no change to the step.
    fs::write(ctx.join("sub/b.log"), "changed").unwrap();
    fs::write(ctx.join("tmp/t"), "changed").unwrap();
    let out = s.ok(&["build", c]);
    assert_eq!(out.matches("--> CACHED").count(), 2, "{out}");
    fs::write(ctx.join("keep.txt"), "changed").unwrap();
    let out = s.ok(&["build", c]);
    assert_eq!(out.matches("--> CACHED").count(), 0, "{out}");
}

fn diff_ids(s: &Strata, image: &str) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_str(&s.ok(&["inspect", image])).unwrap();
    serde_json::from_value(v[0]["RootFS"]["Layers"].clone()).unwrap()
}

#[test]
fn copy_link_reuses_its_layer_when_the_base_changes() {
    let (s, ctx) = setup();
    let other = s.write(
        "other.tar",
        &docker_archive(&[TestImage::new(
            "other:latest",
            vec![busybox_layer(), LayerTar::new().dir("etc").file("etc/other", b"a different base\n").build()],
        )]),
    );
    s.ok(&["load", "-q", "-i", other.to_str().unwrap()]);
    fs::write(ctx.join("f"), "linked file\n").unwrap();
    fs::write(ctx.join("Dockerfile"), "ARG BASE=busybox\nFROM $BASE\nCOPY --link f /app/f\nRUN cat /app/f > /seen\n")
        .unwrap();
    let c = ctx.to_str().unwrap();
    s.ok(&["build", "-q", "-t", "on-busybox", c]);
    let out = s.ok(&["build", "-t", "on-other", "--build-arg", "BASE=other", c]);
    let steps: Vec<&str> = out.lines().filter(|l| l.starts_with("--> ") || l.starts_with("STEP")).collect();
    // The linked COPY is not made again; the RUN after it is (its stage changed).
    let copy_at = steps.iter().position(|l| l.contains("COPY --link")).unwrap();
    assert_eq!(steps[copy_at + 1], "--> CACHED", "{out}");
    assert_ne!(steps[copy_at + 3], "--> CACHED", "{out}");
    let (a, b) = (diff_ids(&s, "on-busybox"), diff_ids(&s, "on-other"));
    assert_eq!((a.len(), b.len()), (3, 4));
    assert_eq!(a[1], b[2], "the same layer on either base");
    assert_eq!(s.ok(&["run", "--rm", "--network", "none", "on-other", "cat", "/seen"]), "linked file\n");
    assert_eq!(s.ok(&["run", "--rm", "--network", "none", "on-other", "cat", "/etc/other"]), "a different base\n");
}
