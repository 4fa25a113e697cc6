//! `strata build`: one layer per RUN/COPY/ADD on the base's shared layers,
//! the build cache, multi-stage builds, .dockerignore, ARG/ENV expansion,
//! heredocs, cache mounts, reproducibility, failures that leave nothing
//! behind, and the same result as `buildah bud` for the same Dockerfile.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

/// A store holding `busybox:latest` (one layer) and a context directory.
fn setup(driver: &str) -> (Strata, PathBuf) {
    busybox_store(driver)
}

fn put(dir: &Path, rel: &str, body: &str) {
    let p = dir.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, body).unwrap();
}

fn build(s: &Strata, ctx: &Path, extra: &[&str]) -> String {
    let mut args = vec!["build"];
    args.extend_from_slice(extra);
    args.push(ctx.to_str().unwrap());
    s.ok(&args)
}

fn steps(out: &str) -> Vec<(String, bool)> {
    let lines: Vec<&str> = out.lines().collect();
    let mut v = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        if let Some(rest) = l.strip_prefix("STEP ") {
            let text = rest.split_once(": ").map(|x| x.1).unwrap_or("").to_string();
            let cached = lines[i + 1..].iter().find(|n| n.starts_with("--> ")).is_some_and(|n| n.contains("CACHED"));
            v.push((text, cached));
        }
    }
    v
}

fn inspect(s: &Strata, name: &str) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_str(&s.ok(&["inspect", name])).unwrap();
    v[0].clone()
}

fn layers_of(s: &Strata, name: &str) -> Vec<String> {
    serde_json::from_value(inspect(s, name)["RootFS"]["Layers"].clone()).unwrap()
}

fn from_copy_run_cmd(driver: &str) {
    let (s, ctx) = setup(driver);
    put(&ctx, "hello.txt", "hello from the context\n");
    put(&ctx, "Dockerfile", "FROM busybox\nCOPY hello.txt /app/\nRUN cat /app/hello.txt > /app/copy.txt && echo built >> /app/copy.txt\nCMD [\"cat\", \"/app/copy.txt\"]\n");
    let out = build(&s, &ctx, &["-t", "app:1"]);
    assert_eq!(steps(&out).len(), 4, "{out}");
    let base = layers_of(&s, "busybox");
    let app = layers_of(&s, "app:1");
    assert_eq!(app.len(), base.len() + 2, "base's layers plus one per COPY and RUN");
    assert_eq!(&app[..base.len()], &base[..]);
    let history = s.ok(&["history", "--no-trunc", "app:1"]);
    let rows: Vec<&str> = history.lines().skip(1).collect();
    assert!(rows[0].contains("CMD [\"cat\", \"/app/copy.txt\"]") && rows[0].contains(" 0B "), "{history}");
    assert!(rows[1].contains("RUN /bin/sh -c cat /app/hello.txt"), "{history}");
    assert!(rows[2].contains("COPY hello.txt /app/"), "{history}");
    let h = inspect(&s, "app:1");
    assert_eq!(h["Config"]["Cmd"], serde_json::json!(["cat", "/app/copy.txt"]));
    assert_eq!(s.ok(&["run", "--rm", "app:1"]), "hello from the context\nbuilt\n");
    // The base's layer is on disk once: two layer directories were added, nothing copied.
    assert_eq!(s.layer_dirs().len(), 3);
    assert!(s.tmp_entries().is_empty());
    // Built layers rebuild their exact tars (save checks every layer against its digest),
    // and the image loads elsewhere with the same ID and files.
    let out = s.path("app.tar");
    s.ok(&["save", "-o", out.to_str().unwrap(), "app:1"]);
    let other = Strata::new(driver);
    other.ok(&["load", "-q", "-i", out.to_str().unwrap()]);
    assert_eq!(other.image_id("app:1"), s.image_id("app:1"));
    assert_eq!(shape(&other.image_tree("app:1")), shape(&s.image_tree("app:1")));
}

fn cache_hits_and_misses(driver: &str) {
    let (s, ctx) = setup(driver);
    put(&ctx, "a.txt", "a\n");
    put(&ctx, "b.txt", "b\n");
    put(
        &ctx,
        "Dockerfile",
        "FROM busybox\nENV X=1\nCOPY a.txt /a.txt\nRUN cat /a.txt > /ra\nCOPY b.txt /b.txt\nRUN cat /b.txt > /rb\n",
    );
    let first = build(&s, &ctx, &["-t", "c:1"]);
    assert!(steps(&first).iter().all(|(_, c)| !c), "{first}");
    let id = s.image_id("c:1");
    let again = build(&s, &ctx, &["-t", "c:1"]);
    assert!(steps(&again)[1..].iter().all(|(_, c)| *c), "every step after FROM is cached: {again}");
    assert_eq!(s.image_id("c:1"), id, "an unchanged rebuild is the same image");
    // mtime only: still a hit.
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(100);
    fs::File::options().write(true).open(ctx.join("a.txt")).unwrap().set_modified(later).unwrap();
    let touched = build(&s, &ctx, &["-t", "c:1"]);
    assert!(steps(&touched)[1..].iter().all(|(_, c)| *c), "{touched}");
    // Changing b.txt re-runs its COPY and what follows only.
    put(&ctx, "b.txt", "b2\n");
    let changed = steps(&build(&s, &ctx, &["-t", "c:2"]));
    let cached: Vec<bool> = changed.iter().map(|(_, c)| *c).collect();
    assert_eq!(cached, vec![false, true, true, true, false, false], "{changed:?}");
    assert_eq!(s.ok(&["run", "--rm", "c:2", "cat", "/rb"]), "b2\n");
    let (c1, c2) = (layers_of(&s, "c:1"), layers_of(&s, "c:2"));
    assert_eq!(c1[..3], c2[..3], "unchanged steps share their layers");
    // --no-cache runs everything again.
    let fresh = build(&s, &ctx, &["--no-cache", "-t", "c:3"]);
    assert!(steps(&fresh).iter().all(|(_, c)| !c), "{fresh}");
}

fn multi_stage_target_and_ignore(driver: &str) {
    let (s, ctx) = setup(driver);
    put(&ctx, "src/main.txt", "main\n");
    put(&ctx, "src/debug.log", "noise\n");
    put(&ctx, "src/keep.log", "kept\n");
    put(&ctx, "secret/key", "do not ship\n");
    put(&ctx, ".dockerignore", "# comments are ignored\nsecret\n**/*.log\n!src/keep.log\n");
    put(
        &ctx,
        "Dockerfile",
        "FROM busybox AS unused\nRUN exit 7\n\n\
         FROM busybox AS builder\nWORKDIR /work\nCOPY src/ ./\nRUN ls /work | tr '\\n' ' ' > /listing\n\n\
         FROM busybox AS final\nCOPY --from=builder /listing /listing\nCOPY --from=1 /work/main.txt /main.txt\nCMD [\"cat\", \"/listing\"]\n",
    );
    let out = build(&s, &ctx, &["-t", "ms:1"]);
    assert!(!out.contains("exit 7"), "a stage the target does not need is not built: {out}");
    assert_eq!(s.ok(&["run", "--rm", "ms:1"]), "keep.log main.txt ");
    assert_eq!(s.ok(&["run", "--rm", "ms:1", "cat", "/main.txt"]), "main\n");
    assert_eq!(layers_of(&s, "ms:1").len(), 3, "the final stage: base plus its two COPYs");
    // --target stops at a stage.
    build(&s, &ctx, &["--target", "builder", "-t", "ms:builder"]);
    assert_eq!(s.ok(&["run", "--rm", "ms:builder", "cat", "/listing"]), "keep.log main.txt ");
    // An excluded file cannot be copied.
    put(&ctx, "Dockerfile.bad", "FROM busybox\nCOPY secret/key /key\n");
    let (code, err) = s.fails(&["build", "-f", ctx.join("Dockerfile.bad").to_str().unwrap(), ctx.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("Dockerfile.bad:2:") && err.contains("secret/key"), "{err}");
}

fn args_env_heredoc_cache_mount(driver: &str) {
    let (s, ctx) = setup(driver);
    put(
        &ctx,
        "Dockerfile",
        "ARG BASE=busybox\nFROM $BASE\nARG WHO=nobody\nARG LEVEL\nENV GREETING=\"hello ${WHO}\" DIR=/opt/${WHO:-x}\n\
         WORKDIR $DIR\nRUN echo \"$GREETING level=${LEVEL:-none}\" > msg\n\
         RUN <<EOF\necho line one > /heredoc\necho \"who=$WHO\" >> /heredoc\nEOF\n\
         COPY <<EOT ${DIR}/note\nnote for ${WHO}\nEOT\n\
         RUN --mount=type=cache,target=/cache sh -c 'echo run >> /cache/count; wc -l < /cache/count > /seen'\n\
         LABEL who=$WHO\n",
    );
    build(&s, &ctx, &["--build-arg", "WHO=alice", "--build-arg", "LEVEL=3", "-t", "v:1"]);
    assert_eq!(
        s.ok(&["run", "--rm", "v:1", "cat", "/opt/alice/msg", "/heredoc", "/opt/alice/note", "/seen"]),
        "hello alice level=3\nline one\nwho=alice\nnote for alice\n1\n"
    );
    let cfg = inspect(&s, "v:1")["Config"].clone();
    assert_eq!(cfg["WorkingDir"], "/opt/alice");
    assert_eq!(cfg["Labels"]["who"], "alice");
    assert!(cfg["Env"].as_array().unwrap().iter().any(|e| e == "GREETING=hello alice"));
    assert!(
        !cfg["Env"].as_array().unwrap().iter().any(|e| e.as_str().unwrap().starts_with("WHO=")),
        "ARGs are not kept"
    );
    // The cache mount keeps its contents between builds and stays out of the image.
    build(&s, &ctx, &["--no-cache", "--build-arg", "WHO=alice", "--build-arg", "LEVEL=3", "-t", "v:2"]);
    assert_eq!(s.ok(&["run", "--rm", "v:2", "cat", "/seen"]), "2\n");
    let t = s.image_tree("v:2");
    assert!(!t.keys().any(|k| k == "cache" || k.starts_with("cache/")), "cache mount contents leak into the image");
    // Another value of a build arg is another cache key.
    build(&s, &ctx, &["--build-arg", "WHO=bob", "-t", "v:3"]);
    assert_eq!(s.ok(&["run", "--rm", "v:3", "cat", "/opt/bob/msg"]), "hello bob level=none\n");
}

fn failing_run_leaves_nothing(driver: &str) {
    let (s, ctx) = setup(driver);
    put(
        &ctx,
        "Dockerfile",
        "FROM busybox\nRUN echo partial > /file\nRUN echo to-stdout; echo to-stderr >&2; exit 3\nCMD true\n",
    );
    let before = s.state();
    let layers_before = s.layer_dirs();
    let (code, out, err) = s.code(&["build", "-t", "broken:1", ctx.to_str().unwrap()]);
    assert_eq!(code, 3, "the build exits with the command's code; {out} {err}");
    assert!(out.contains("to-stdout") && err.contains("to-stderr"), "its output is shown: {out} {err}");
    assert!(err.contains("Dockerfile:3:") && err.contains("non-zero code: 3"), "{err}");
    assert!(s.fails(&["inspect", "broken:1"]).1.contains("not found"), "nothing is tagged");
    assert!(s.tmp_entries().is_empty(), "no snapshot left: {:?}", s.tmp_entries());
    assert!(mounts_under(&s).is_empty(), "no mount left: {:?}", mounts_under(&s));
    assert_eq!(s.ok(&["ps", "-a", "-q"]), "");
    assert_eq!(before.images, s.state().images);
    // The first RUN's layer is kept in the build cache (so a fixed Dockerfile resumes from it).
    assert_eq!(s.layer_dirs().len(), layers_before.len() + 1);
    // A missing command is 127, named by line too.
    put(&ctx, "Dockerfile", "FROM busybox\nRUN [\"/no/such/program\"]\n");
    let (code, _, err) = s.code(&["build", ctx.to_str().unwrap()]);
    assert_eq!(code, 127, "{err}");
    assert!(err.contains("Dockerfile:2:"), "{err}");
}

fn syntax_errors_name_file_and_line(driver: &str) {
    let (s, ctx) = setup(driver);
    for (text, line, what) in [
        ("FROM busybox\nRUN true\nNOPE x\n", 3, ""),
        ("FROM busybox\nCOPY --bogus=1 a b\n", 2, "--bogus"),
        ("FROM busybox\nENV A=\"unclosed\n", 2, ""),
        ("FROM nosuchimage\n", 1, "nosuchimage"),
        ("FROM busybox\nCOPY missing.txt /x\n", 2, "missing.txt"),
        ("FROM busybox\nCOPY a b /notadir\n", 2, "end with a /"),
        ("FROM busybox\nEXPOSE 99999\n", 2, "99999"),
        // Steps that parse but cannot be done: the failure is placed at the step too.
        ("FROM busybox\nWORKDIR /bin/busybox\nRUN true\n", 2, "not a directory"),
        ("FROM busybox\nCOPY a /bin/busybox/a\n", 2, "not a directory"),
    ] {
        put(&ctx, "a", "a");
        put(&ctx, "b", "b");
        put(&ctx, "Dockerfile", text);
        let (code, err) = s.fails(&["build", ctx.to_str().unwrap()]);
        assert_eq!(code, 1, "{text}: {err}");
        assert!(err.contains(&format!("Dockerfile:{line}:")) && err.contains(what), "{text:?}: {err}");
    }
    assert!(s.tmp_entries().is_empty());
}

fn reproducible_with_source_date_epoch(driver: &str) {
    let (s, ctx) = setup(driver);
    put(&ctx, "f.txt", "same\n");
    put(
        &ctx,
        "Dockerfile",
        "FROM busybox\nCOPY f.txt /f.txt\nRUN echo made > /made && mkdir -p /d && touch /d/x\nENV A=b\n",
    );
    let run = |tag: &str| {
        let o = s
            .command()
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .args(["build", "--no-cache", "-q", "-t", tag, ctx.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap().trim().to_string()
    };
    let a = run("r:1");
    let b = run("r:2");
    assert!(a.starts_with("sha256:"), "{a}");
    assert_eq!(a, b, "same inputs, same image ID");
    assert_eq!(layers_of(&s, "r:1"), layers_of(&s, "r:2"));
    assert_eq!(inspect(&s, "r:1")["Created"], "2023-11-14T22:13:20Z");
}

fn context_from_stdin(driver: &str) {
    let (s, ctx) = setup(driver);
    put(&ctx, "in.txt", "from a tar\n");
    put(&ctx, "Dockerfile", "FROM busybox\nCOPY in.txt /in.txt\n");
    let tar = Command::new("tar").arg("-C").arg(&ctx).args(["-cf", "-", "."]).output().unwrap().stdout;
    let mut child = s
        .command()
        .args(["build", "-q", "-t", "stdin:1", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(&tar).unwrap();
    assert!(child.wait_with_output().unwrap().status.success());
    assert_eq!(s.ok(&["run", "--rm", "stdin:1", "cat", "/in.txt"]), "from a tar\n");
    assert!(s.tmp_entries().is_empty());
}

fn globs_bind_mounts_shell_and_onbuild(driver: &str) {
    let (s, ctx) = setup(driver);
    put(&ctx, "src/a.txt", "a\n");
    put(&ctx, "src/b.txt", "b\n");
    put(&ctx, "src/c.md", "c\n");
    put(&ctx, "data/input", "from a bind mount\n");
    put(
        &ctx,
        "Dockerfile",
        "FROM busybox\nCOPY src/*.txt /globbed/\n\
         RUN --mount=type=bind,source=data,target=/mnt cat /mnt/input > /copied\n\
         RUN --mount=type=tmpfs,target=/scratch echo gone > /scratch/x && grep -q tmpfs /proc/mounts\n\
         SHELL [\"/bin/sh\", \"-c\", \"echo shell-form-ran > /shell; exec \\\"$@\\\"\", \"sh\"]\n\
         RUN true\nSHELL [\"/bin/sh\", \"-c\"]\n\
         HEALTHCHECK --interval=30s --retries=2 CMD [\"true\"]\nSTOPSIGNAL SIGINT\n\
         ONBUILD RUN echo triggered > /onbuild\n",
    );
    build(&s, &ctx, &["-t", "g:1"]);
    assert_eq!(s.ok(&["run", "--rm", "g:1", "ls", "/globbed"]), "a.txt\nb.txt\n");
    assert_eq!(s.ok(&["run", "--rm", "g:1", "cat", "/copied", "/shell"]), "from a bind mount\nshell-form-ran\n");
    let t = s.image_tree("g:1");
    assert!(!t.keys().any(|k| k.starts_with("mnt/")), "the bind mount's files stay out of the image");
    assert!(!t.keys().any(|k| k.starts_with("scratch")), "a tmpfs mount leaves nothing in the image");
    let cfg = inspect(&s, "g:1")["Config"].clone();
    assert_eq!(cfg["Healthcheck"]["Test"], serde_json::json!(["CMD", "true"]));
    assert_eq!(cfg["Healthcheck"]["Interval"], 30_000_000_000u64);
    assert_eq!(cfg["StopSignal"], "SIGINT");
    assert_eq!(cfg["OnBuild"], serde_json::json!(["RUN echo triggered > /onbuild"]));
    // ONBUILD triggers run in a build FROM the image, and are not inherited further.
    let child = s.path("child");
    fs::create_dir(&child).unwrap();
    put(&child, "Dockerfile", "FROM g:1\nRUN cat /onbuild\n");
    let out = build(&s, &child, &["-t", "g:2"]);
    assert!(out.contains("triggered"), "{out}");
    assert!(inspect(&s, "g:2")["Config"]["OnBuild"].is_null());
}

both_drivers!(
    globs_bind_mounts_shell_and_onbuild,
    from_copy_run_cmd,
    cache_hits_and_misses,
    multi_stage_target_and_ignore,
    args_env_heredoc_cache_mount,
    failing_run_leaves_nothing,
    syntax_errors_name_file_and_line,
    reproducible_with_source_date_epoch,
    context_from_stdin,
);

/// Paths buildah leaves in images as runtime mount points (strata, like Docker, does not).
const BUILDAH_MOUNT_POINTS: [&str; 7] = ["dev", "proc", "sys", "run", "etc/hostname", "etc/hosts", "etc/resolv.conf"];

#[test]
fn buildah_builds_the_same_tree_and_config() {
    let (s, ctx) = setup("overlay");
    put(&ctx, "src/a.txt", "a\n");
    put(&ctx, "src/sub/x.sh", "echo x\n");
    put(&ctx, "src/skip.tmp", "ignored\n");
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(ctx.join("src/sub/x.sh"), fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(ctx.join("src/a.txt"), fs::Permissions::from_mode(0o600)).unwrap();
    put(&ctx, ".dockerignore", "src/*.tmp\n");
    put(&ctx, "tarsrc/d/t.txt", "in a tar\n");
    assert!(Command::new("tar")
        .arg("-C")
        .arg(ctx.join("tarsrc"))
        .arg("-czf")
        .arg(ctx.join("arch.tar.gz"))
        .arg("d")
        .status()
        .unwrap()
        .success());
    put(
        &ctx,
        "Dockerfile",
        "FROM busybox AS build\nRUN mkdir -p /out && echo built > /out/result && ln -s result /out/link\n\n\
         FROM busybox\nARG VERSION=1.2\n\
         ENV APP_HOME=/srv/app PATH=/srv/app/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n\
         WORKDIR $APP_HOME\nCOPY src/ ./src/\nCOPY --chown=1000:1000 --chmod=640 src/a.txt /srv/owned.txt\n\
         COPY --from=build /out/ /srv/out/\nADD arch.tar.gz /srv/unpacked/\n\
         RUN mkdir -p data && echo \"v$VERSION\" > data/version && rm /etc/passwd && chmod 700 data\n\
         LABEL org.opencontainers.image.version=$VERSION maintainer=\"someone\"\nEXPOSE 8080 53/udp\n\
         VOLUME /srv/app/data\nSTOPSIGNAL SIGINT\nUSER 1000:1000\nENTRYPOINT [\"/bin/sh\", \"-c\"]\nCMD [\"cat data/version\"]\n",
    );
    build(&s, &ctx, &["-t", "cmp:1"]);
    let b = Peer::new("buildah");
    let base = s.path("base-out.tar");
    s.ok(&["save", "-o", base.to_str().unwrap(), "busybox"]);
    b.ok(&["pull", "-q", &format!("docker-archive:{}", base.display())]);
    // No network for its RUNs: buildah runs on the host, and its default network would change it.
    b.ok(&["bud", "--network", "none", "--layers", "-q", "-t", "cmp:1", ctx.to_str().unwrap()]);
    let ctr = b.ok(&["from", "cmp:1"]).trim().to_string();
    let mnt = b.ok(&["mount", &ctr]).trim().to_string();
    let mut theirs = shape(&tree(Path::new(&mnt)));
    b.ok(&["umount", &ctr]);
    let ours = shape(&s.image_tree("cmp:1"));
    for p in BUILDAH_MOUNT_POINTS {
        if !ours.contains_key(p) {
            theirs.remove(p);
        }
    }
    let diff: Vec<_> = theirs
        .iter()
        .filter(|(k, v)| ours.get(*k) != Some(v))
        .map(|(k, v)| (k.clone(), Some(v.clone()), ours.get(k).cloned()))
        .chain(ours.iter().filter(|(k, _)| !theirs.contains_key(*k)).map(|(k, v)| (k.clone(), None, Some(v.clone()))))
        .collect();
    assert!(diff.is_empty(), "trees differ (path, buildah, strata): {diff:#?}");
    let theirs: serde_json::Value = serde_json::from_str(&b.ok(&["inspect", "--type", "image", "cmp:1"])).unwrap();
    let theirs = &theirs["OCIv1"]["config"];
    let ours = inspect(&s, "cmp:1")["Config"].clone();
    for field in ["Cmd", "Entrypoint", "WorkingDir", "User", "ExposedPorts", "Volumes", "StopSignal"] {
        assert_eq!(ours[field], theirs[field], "{field}");
    }
    // The same variables; the order differs: strata sets a variable in place as Docker
    // does, buildah 1.28 moves it to the end.
    let sorted = |v: &serde_json::Value| {
        let mut e: Vec<String> = serde_json::from_value(v.clone()).unwrap();
        e.sort();
        e
    };
    assert_eq!(sorted(&ours["Env"]), sorted(&theirs["Env"]));
    let mut labels = theirs["Labels"].clone();
    labels.as_object_mut().unwrap().remove("io.buildah.version");
    assert_eq!(ours["Labels"], labels);
}

#[test]
fn a_killed_build_leaves_no_run_process_once_the_next_command_ran() {
    /// Ends the RUN's process if the test fails before strata does.
    struct EndSleep;
    impl Drop for EndSleep {
        fn drop(&mut self) {
            for pid in processes(&["sleep", "31337"]) {
                let _ = std::process::Command::new("kill").args(["-9", &pid]).status();
            }
        }
    }
    let _end = EndSleep;
    let (s, ctx) = setup("overlay");
    put(&ctx, "Dockerfile", "FROM busybox:latest\nRUN echo started; sleep 31337\n");
    // Only this build's process counts (not one another run of this test left).
    let before = processes(&["sleep", "31337"]);
    let mut child = s
        .command()
        .args(["build", "--network", "none", ctx.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    loop {
        let mut line = String::new();
        assert!(
            std::io::BufRead::read_line(&mut out, &mut line).unwrap() > 0,
            "the build ended before its RUN started"
        );
        if line == "started\n" {
            break;
        }
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let ours = loop {
        if let Some(p) = processes(&["sleep", "31337"]).into_iter().find(|p| !before.contains(p)) {
            break p;
        }
        assert!(std::time::Instant::now() < deadline, "the RUN's sleep never showed up");
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    child.kill().unwrap();
    child.wait().unwrap();
    // The next command, whatever it is, ends the killed build's RUN.
    s.ok(&["images"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while processes(&["sleep", "31337"]).contains(&ours) {
        assert!(std::time::Instant::now() < deadline, "the killed build's RUN is still running");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(s.tmp_entries(), Vec::<String>::new());
}
