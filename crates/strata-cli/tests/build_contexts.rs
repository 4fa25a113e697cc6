//! Where a build's files come from besides a local directory (issue 18): a
//! git repository as the context (at a tag, a branch and a subdirectory)
//! and as an ADD source, served by `git daemon` on the test's own loopback;
//! a tarball context from an HTTP server there; and named contexts
//! (`--build-context NAME=DIR|docker-image://REF|GIT-URL`).

mod common;

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use common::*;

/// A store holding `busybox:latest`, and a context directory.
fn setup() -> (Strata, std::path::PathBuf) {
    busybox_store("overlay")
}

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.test")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.test")
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A server process, killed when dropped.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Start `cmd` and wait for a line of its output (standard error or
/// output, as `from_stderr` says) containing `ready`.
fn start_until(mut cmd: Command, from_stderr: bool, ready: &str) -> Server {
    if from_stderr {
        cmd.stderr(Stdio::piped()).stdout(Stdio::null());
    } else {
        cmd.stdout(Stdio::piped()).stderr(Stdio::null());
    }
    let mut child = cmd.spawn().unwrap();
    let pipe: Box<dyn std::io::Read + Send> =
        if from_stderr { Box::new(child.stderr.take().unwrap()) } else { Box::new(child.stdout.take().unwrap()) };
    let mut lines = BufReader::new(pipe).lines();
    loop {
        match lines.next() {
            Some(Ok(l)) if l.contains(ready) => break,
            Some(Ok(_)) => continue,
            other => panic!("the server ended before it was ready: {other:?}"),
        }
    }
    // Keep draining so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Server(child)
}

/// A repository at `base/repo.git`: `sub/Dockerfile` and `sub/f`, tagged
/// `v1` with f=v1, then `main` moved on to f=v2.
fn make_repo(base: &Path) {
    let work = base.join("work");
    fs::create_dir_all(work.join("sub")).unwrap();
    git(&work, &["init", "-q", "-b", "main"]);
    fs::write(work.join("sub/Dockerfile"), "FROM busybox\nCOPY f /f\n").unwrap();
    fs::write(work.join("sub/f"), "v1\n").unwrap();
    fs::write(work.join("top.txt"), "top\n").unwrap();
    git(&work, &["add", "."]);
    git(&work, &["commit", "-q", "-m", "one"]);
    git(&work, &["tag", "v1"]);
    fs::write(work.join("sub/f"), "v2\n").unwrap();
    git(&work, &["commit", "-q", "-am", "two"]);
    let bare = base.join("repo.git");
    let out = Command::new("git").args(["clone", "-q", "--bare"]).arg(&work).arg(&bare).output().unwrap();
    assert!(out.status.success());
}

/// The repository of `make_repo` under the test's `git/`, served by `git daemon`.
fn served_repo(s: &Strata) -> (std::path::PathBuf, Server) {
    let base = s.path("git");
    make_repo(&base);
    let daemon = git_daemon(s, &base);
    (base, daemon)
}

fn git_daemon(s: &Strata, base: &Path) -> Server {
    let mut cmd = s.in_netns("git");
    cmd.args(["daemon", "--verbose", "--export-all", "--reuseaddr", "--listen=127.0.0.1", "--port=9418"])
        .arg(format!("--base-path={}", base.display()))
        .arg(base);
    start_until(cmd, true, "Ready to rumble")
}

/// `strata ARGS` exits 1 naming `what`.
fn refused_naming(s: &Strata, args: &[&str], what: &str) {
    let (code, err) = s.fails(args);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains(what), "{args:?}: {err}");
}

fn cat(s: &Strata, image: &str, path: &str) -> String {
    s.ok(&["run", "--rm", "--network", "none", image, "cat", path])
}

#[test]
fn a_git_context_builds_at_a_tag_and_a_branch_from_a_subdirectory() {
    let (s, _) = setup();
    let (_, _daemon) = served_repo(&s);
    s.ok(&["build", "-q", "-t", "at-tag", "git://127.0.0.1:9418/repo.git#v1:sub"]);
    assert_eq!(cat(&s, "at-tag", "/f"), "v1\n");
    s.ok(&["build", "-q", "-t", "at-main", "git://127.0.0.1:9418/repo.git#main:sub"]);
    assert_eq!(cat(&s, "at-main", "/f"), "v2\n");
    assert!(s.tmp_entries().is_empty(), "{:?}", s.tmp_entries());
    // A ref the repository does not have: named, and nothing left.
    refused_naming(&s, &["build", "git://127.0.0.1:9418/repo.git#no-such-ref:sub"], "no-such-ref");
    refused_naming(&s, &["build", "git://127.0.0.1:9418/repo.git#v1:no/such/dir"], "no/such/dir");
    assert!(s.tmp_entries().is_empty(), "{:?}", s.tmp_entries());
}

#[test]
fn add_of_a_git_repository_copies_its_tree_and_keys_the_cache_by_commit() {
    let (s, ctx) = setup();
    let (base, _daemon) = served_repo(&s);
    fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\nADD git://127.0.0.1:9418/repo.git#v1 /src/\nADD --keep-git-dir git://127.0.0.1:9418/repo.git#main /with-git/\n",
    )
    .unwrap();
    let c = ctx.to_str().unwrap();
    s.ok(&["build", "-q", "-t", "added", c]);
    assert_eq!(cat(&s, "added", "/src/sub/f"), "v1\n");
    assert_eq!(cat(&s, "added", "/with-git/sub/f"), "v2\n");
    let listing = s.ok(&["run", "--rm", "--network", "none", "added", "ls", "-a", "/src", "/with-git"]);
    assert!(!listing.split("/with-git:").next().unwrap().contains(".git"), "{listing}");
    assert!(listing.split("/with-git:").nth(1).unwrap().contains(".git"), "{listing}");
    // Unchanged refs: cached. main moved on: that ADD (only) is made again.
    let out = s.ok(&["build", c]);
    assert_eq!(out.matches("--> CACHED").count(), 2, "{out}");
    let work = base.join("work");
    fs::write(work.join("sub/f"), "v3\n").unwrap();
    git(&work, &["commit", "-q", "-am", "three"]);
    git(&work, &["push", "-q", base.join("repo.git").to_str().unwrap(), "main"]);
    let out = s.ok(&["build", "-t", "moved", c]);
    assert_eq!(out.matches("--> CACHED").count(), 1, "{out}");
    assert_eq!(cat(&s, "moved", "/with-git/sub/f"), "v3\n");
}

#[test]
fn a_tarball_context_builds_from_an_http_url() {
    let (s, ctx) = setup();
    fs::write(ctx.join("Dockerfile"), "FROM busybox\nCOPY hello.txt /hello.txt\n").unwrap();
    fs::write(ctx.join("hello.txt"), "from a tarball\n").unwrap();
    let served = s.path("served");
    fs::create_dir(&served).unwrap();
    let tarred =
        Command::new("tar").arg("-czf").arg(served.join("ctx.tar.gz")).arg("-C").arg(&ctx).arg(".").status().unwrap();
    assert!(tarred.success());
    let mut cmd = s.in_netns("python3");
    cmd.args(["-u", "-m", "http.server", "--bind", "127.0.0.1", "8765", "--directory"]).arg(&served);
    let _server = start_until(cmd, false, "Serving HTTP");
    s.ok(&["build", "-q", "-t", "from-tar", "http://127.0.0.1:8765/ctx.tar.gz"]);
    assert_eq!(cat(&s, "from-tar", "/hello.txt"), "from a tarball\n");
    refused_naming(&s, &["build", "http://127.0.0.1:8765/missing.tar.gz"], "missing.tar.gz");
    assert!(s.tmp_entries().is_empty(), "{:?}", s.tmp_entries());
}

#[test]
fn named_contexts_stand_for_images_directories_and_repositories() {
    let (s, ctx) = setup();
    let other = s.write(
        "other.tar",
        &docker_archive(&[TestImage::new(
            "other:1",
            vec![busybox_layer(), LayerTar::new().dir("etc").file("etc/which", b"other image\n").build()],
        )]),
    );
    s.ok(&["load", "-q", "-i", other.to_str().unwrap()]);
    let (_, _daemon) = served_repo(&s);
    let extra = s.path("extra");
    fs::create_dir_all(extra.join("d")).unwrap();
    fs::write(extra.join("d/file"), "from a named directory\n").unwrap();
    // Owned by someone else on the host: the copy is root's all the same, as the context's.
    std::os::unix::fs::chown(extra.join("d/file"), Some(1000), Some(1000)).unwrap();
    fs::write(
        ctx.join("Dockerfile"),
        "FROM upstream\nCOPY --from=extra d/file /named-dir\nCOPY --from=repo sub/f /named-repo\nRUN --mount=from=extra,target=/mnt cat /mnt/d/file > /mounted\n",
    )
    .unwrap();
    let c = ctx.to_str().unwrap();
    let extra_arg = format!("extra={}", extra.display());
    let build = |first: &[&str]| {
        let mut args = vec!["build"];
        args.extend_from_slice(first);
        args.extend(["--network", "none", "--build-context", "upstream=docker-image://other:1"]);
        args.extend(["--build-context", &extra_arg, "--build-context", "repo=git://127.0.0.1:9418/repo.git#v1", c]);
        s.ok(&args)
    };
    build(&["-q", "-t", "named"]);
    assert_eq!(cat(&s, "named", "/etc/which"), "other image\n");
    assert_eq!(cat(&s, "named", "/named-dir"), "from a named directory\n");
    assert_eq!(cat(&s, "named", "/named-repo"), "v1\n");
    assert_eq!(cat(&s, "named", "/mounted"), "from a named directory\n");
    let owner = s.ok(&["run", "--rm", "--network", "none", "named", "stat", "-c", "%u:%g", "/named-dir"]);
    assert_eq!(owner.trim(), "0:0");
    // Unchanged: every step cached. A changed file of a named directory is a changed source.
    let out = build(&[]);
    assert_eq!(out.matches("--> CACHED").count(), 3, "{out}");
    fs::write(extra.join("d/file"), "changed\n").unwrap();
    let out = build(&[]);
    assert_eq!(out.matches("--> CACHED").count(), 0, "{out}");
    // Bad values name the flag.
    for bad in ["novalue", "x=/no/such/dir", "x=docker-image://UPPER:case"] {
        let (code, err) = s.fails(&["build", "--build-context", bad, c]);
        assert_eq!(code, 1, "{err}");
        assert!(err.contains("--build-context"), "{bad}: {err}");
    }
    assert!(s.tmp_entries().is_empty(), "{:?}", s.tmp_entries());
}
