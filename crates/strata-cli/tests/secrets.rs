//! What a build is lent and must not keep (issue 18): `build --secret`
//! with `RUN --mount=type=secret` (as a file and as an environment
//! variable), and `build --ssh` with `RUN --mount=type=ssh` (a RUN lists
//! the forwarded agent's keys with OpenSSH's own `ssh-add -l`).

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use common::*;

const SECRET: &str = "s3cr3t-Value-7d1f9a";

/// A store holding `busybox:latest` and a context directory.
fn setup() -> (Strata, PathBuf) {
    busybox_store("overlay")
}

/// The files under `dir` (but the network namespaces' anchors) that hold `needle`.
fn found_under(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let ft = e.file_type().unwrap();
            if ft.is_dir() && e.path() != dir.join("netns") {
                todo.push(e.path());
            } else if ft.is_file() {
                let bytes = fs::read(e.path()).unwrap();
                if bytes.windows(needle.len()).any(|w| w == needle) {
                    out.push(e.path());
                }
            }
        }
    }
    out
}

const SECRET_DOCKERFILE: &str = "FROM busybox
COPY expect /expect
RUN --mount=type=secret,id=tok test \"$(cat /run/secrets/tok)\" = \"$(cat /expect)\" && echo file-ok > /file-ok
RUN --mount=type=secret,id=tok,env=TOK,required test \"$TOK\" = \"$(cat /expect)\" && test ! -e /run/secrets/tok && echo env-ok > /env-ok
RUN --mount=type=secret,id=tok,target=/etc/tok,mode=0440,uid=1000,gid=50 stat -c '%a %u %g' /etc/tok > /tok-meta
RUN --mount=type=secret,id=absent test ! -e /run/secrets/absent && echo absent-ok > /absent-ok
RUN ls /run/secrets /etc/tok > /after 2>&1 || echo gone > /after
";

#[test]
fn a_secret_is_seen_by_its_run_only_and_kept_nowhere() {
    let (s, ctx) = setup();
    fs::write(ctx.join("Dockerfile"), SECRET_DOCKERFILE).unwrap();
    let file = s.write("secret.txt", SECRET.as_bytes());
    let spec = format!("id=tok,src={}", file.display());
    let ctx_arg = ctx.to_str().unwrap();
    // What the RUN compares with is in the context (and so in a COPY layer, by the test's own doing).
    fs::write(ctx.join("expect"), SECRET).unwrap();
    let built = s.command().args(["build", "-t", "with-secret", "--secret", &spec, ctx_arg]).output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&built.stdout), String::from_utf8_lossy(&built.stderr));
    assert!(built.status.success(), "{stdout}{stderr}");
    let tree = s.image_tree("with-secret");
    let content = |p: &str| {
        s.ok(&["run", "--rm", "--network", "none", "with-secret", "cat", &format!("/{p}")]).trim().to_string()
    };
    assert_eq!(
        [content("file-ok"), content("env-ok"), content("tok-meta"), content("absent-ok"), content("after")],
        ["file-ok", "env-ok", "440 1000 50", "absent-ok", "gone"]
    );
    // Nowhere kept: not the mount points, the layers, the history, the config, the output.
    assert!(!tree.contains_key("run/secrets/tok") && !tree.contains_key("etc/tok"), "{:?}", tree.keys());
    let saved = s.path("saved.tar");
    s.ok(&["save", "-o", saved.to_str().unwrap(), "with-secret"]);
    let archive = fs::read(&saved).unwrap();
    // The context's copy of the value is in the COPY layer by the test's own doing: look for the secret file's bytes
    // in the other layers by counting: exactly the one copy the COPY made.
    let hits = archive.windows(SECRET.len()).filter(|w| *w == SECRET.as_bytes()).count();
    assert_eq!(hits, 1, "the secret's value appears only in the file the test itself copied in");
    let history = s.ok(&["history", "--no-trunc", "with-secret"]);
    let inspect = s.ok(&["inspect", "with-secret"]);
    for (what, text) in
        [("history", &history), ("inspect", &inspect), ("stdout", &stdout.to_string()), ("stderr", &stderr.to_string())]
    {
        assert!(!text.contains(SECRET), "{what} holds the secret: {text}");
    }
}

#[test]
fn a_secret_stays_out_of_the_store_and_a_new_value_keeps_the_cache() {
    let (s, ctx) = setup();
    fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\nRUN --mount=type=secret,id=tok,required wc -c < /run/secrets/tok > /length\nRUN echo after > /after\n",
    )
    .unwrap();
    let first = s.write("first.txt", SECRET.as_bytes());
    let built =
        s.ok(&["build", "-t", "one", "--secret", &format!("id=tok,src={}", first.display()), ctx.to_str().unwrap()]);
    assert!(!built.contains(SECRET));
    // Every file of the store (records, cache keys' inputs, layers, blobs, the database).
    assert_eq!(found_under(&s.root(), SECRET.as_bytes()), Vec::<PathBuf>::new());
    // A changed value: both steps come from the cache (as BuildKit), the same image results.
    let out = s
        .command()
        .args(["build", "-t", "two", "--secret", "id=tok,env=THE_TOKEN", ctx.to_str().unwrap()])
        .env("THE_TOKEN", "another value, longer than the first")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(text.matches("--> CACHED").count(), 2, "{text}");
    assert_eq!(s.image_id("one"), s.image_id("two"));
    assert!(s.tmp_entries().is_empty(), "{:?}", s.tmp_entries());
    assert!(mounts_under(&s).is_empty(), "{:?}", mounts_under(&s));
}

#[test]
fn a_required_secret_not_given_fails_the_build_naming_it_and_leaves_nothing() {
    let (s, ctx) = setup();
    fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\nRUN echo before > /b\nRUN --mount=type=secret,id=npmrc,required cat /run/secrets/npmrc\n",
    )
    .unwrap();
    let before = s.state();
    let (code, err) = s.fails(&["build", "-t", "x", ctx.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("Dockerfile:3") && err.contains("npmrc") && err.contains("--secret"), "{err}");
    assert!(s.run(&["inspect", "x"]).status.code() != Some(0));
    assert_eq!(s.state().images, before.images);
    assert!(s.tmp_entries().is_empty() && mounts_under(&s).is_empty());
    // A bad --secret flag names itself.
    for (spec, what) in
        [("id=a,src=/no/such/file", "/no/such/file"), ("src=/etc/hostname", "id="), ("id=a,bogus=1", "bogus")]
    {
        let (code, err) = s.fails(&["build", "--secret", spec, ctx.to_str().unwrap()]);
        assert_eq!(code, 1, "{err}");
        assert!(err.contains("--secret") && err.contains(what), "{spec}: {err}");
    }
}

/// An `ssh-agent` of the test's own, holding one new key; killed when dropped.
struct TestAgent {
    dir: tempfile::TempDir,
    child: Child,
    fingerprint: String,
}

impl TestAgent {
    fn start() -> TestAgent {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("id_ed25519");
        let made = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "strata-test-key", "-f"])
            .arg(&key)
            .status()
            .unwrap();
        assert!(made.success());
        let sock = dir.path().join("agent.sock");
        let mut child = Command::new("ssh-agent").arg("-D").arg("-a").arg(&sock).stdout(Stdio::null()).spawn().unwrap();
        // Ready when its socket is there.
        while !sock.exists() {
            assert!(child.try_wait().unwrap().is_none(), "ssh-agent ended");
            std::thread::yield_now();
        }
        let added = Command::new("ssh-add").arg(&key).env("SSH_AUTH_SOCK", &sock).output().unwrap();
        assert!(added.status.success(), "{}", String::from_utf8_lossy(&added.stderr));
        let fp = Command::new("ssh-keygen").arg("-lf").arg(&key).output().unwrap();
        let fingerprint = String::from_utf8_lossy(&fp.stdout).split_whitespace().nth(1).unwrap().to_string();
        TestAgent { dir, child, fingerprint }
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("agent.sock")
    }
}

impl Drop for TestAgent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A layer with the host's `ssh-add` and the libraries it loads, at their paths.
fn ssh_add_layer() -> Vec<u8> {
    let ldd = Command::new("ldd").arg("/usr/bin/ssh-add").output().unwrap();
    assert!(ldd.status.success());
    let mut files = vec!["/usr/bin/ssh-add".to_string()];
    for l in String::from_utf8_lossy(&ldd.stdout).lines() {
        let path = l.split("=>").last().unwrap().split_whitespace().next().unwrap_or("");
        if path.starts_with('/') {
            files.push(path.to_string());
        }
    }
    let mut t = LayerTar::new();
    for f in files {
        // Libraries are often reached through symlinks: store what they resolve to, under the name asked for.
        let bytes = fs::read(&f).unwrap();
        t = t.file_mode(f.trim_start_matches('/'), &bytes, 0o755);
    }
    t.build()
}

#[test]
fn a_run_lists_the_forwarded_agents_keys_and_only_that_run_reaches_it() {
    let agent = TestAgent::start();
    let s = Strata::new("overlay");
    let a = s
        .write("base.tar", &docker_archive(&[TestImage::new("sshbox:latest", vec![busybox_layer(), ssh_add_layer()])]));
    s.ok(&["load", "-q", "-i", a.to_str().unwrap()]);
    let ctx = s.path("ctx");
    fs::create_dir(&ctx).unwrap();
    fs::write(
        ctx.join("Dockerfile"),
        "FROM sshbox\n\
         RUN --mount=type=ssh /usr/bin/ssh-add -l > /keys-default\n\
         RUN --mount=type=ssh,id=work,target=/agent.sock,uid=1000,mode=0600 stat -c '%u %a' /agent.sock > /sock-meta && SSH_AUTH_SOCK=/agent.sock /usr/bin/ssh-add -l > /keys-work\n\
         RUN echo \"[$SSH_AUTH_SOCK]\" > /after\n",
    )
    .unwrap();
    let sock = agent.socket();
    let out = s
        .command()
        .args(["build", "-t", "ssh", "--ssh", "default", "--ssh", &format!("work={}", sock.display())])
        .arg(&ctx)
        .env("SSH_AUTH_SOCK", &sock)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let tree = s.image_tree("ssh");
    let content =
        |p: &str| s.ok(&["run", "--rm", "--network", "none", "ssh", "cat", &format!("/{p}")]).trim().to_string();
    assert!(content("keys-default").contains(&agent.fingerprint), "{}", content("keys-default"));
    assert!(content("keys-work").contains(&agent.fingerprint), "{}", content("keys-work"));
    assert_eq!(content("sock-meta"), "1000 600");
    assert_eq!(content("after"), "[]");
    assert!(
        !tree.contains_key("agent.sock") && !tree.keys().any(|k| k.starts_with("run/buildkit")),
        "{:?}",
        tree.keys()
    );
    assert!(s.tmp_entries().is_empty() && mounts_under(&s).is_empty());
}

#[test]
fn a_missing_agent_fails_the_build_with_a_clear_message() {
    let (s, ctx) = setup();
    fs::write(ctx.join("Dockerfile"), "FROM busybox\nRUN --mount=type=ssh,required true\n").unwrap();
    // An ssh mount without --ssh, and --ssh naming a socket that is not there.
    let out = s.command().args(["build", ctx.to_str().unwrap()]).env_remove("SSH_AUTH_SOCK").output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("Dockerfile:2") && err.contains("--ssh"), "{err}");
    let (code, err) = s.fails(&["build", "--ssh", "default=/no/such/agent.sock", ctx.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("--ssh") && err.contains("/no/such/agent.sock"), "{err}");
    assert!(s.tmp_entries().is_empty() && mounts_under(&s).is_empty());
}
