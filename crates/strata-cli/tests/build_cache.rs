//! The build cache shared through a registry (issue 18): `--cache-to
//! type=registry` on one store, `--cache-from` on another, empty one, with
//! Debian's docker-registry on 127.0.0.1. Every RUN has `--network none`.

mod common;

use std::fs;
use std::path::PathBuf;

use common::registry::Registry;
use common::*;

/// A store on the host's network (to reach the registry) holding
/// `REGISTRY/busybox:latest`, pushed there too; and a context directory.
fn pushed_base(reg: &Registry) -> (Strata, PathBuf, String) {
    let (s, base) = common::registry::pushed_busybox(reg);
    let ctx = s.path("ctx");
    fs::create_dir(&ctx).unwrap();
    (s, ctx, base)
}

/// Each step after a FROM, and whether it came from the cache.
fn steps(out: &str) -> Vec<(String, bool)> {
    let mut v = Vec::new();
    let mut current: Option<String> = None;
    for line in out.lines() {
        if let Some(rest) = line.strip_prefix("STEP ") {
            let text = rest.split_once(": ").map_or(rest, |x| x.1).to_string();
            current = Some(text).filter(|t| !t.starts_with("FROM "));
        } else if let Some(r) = line.strip_prefix("--> ") {
            if r.starts_with("fetched ") {
                continue;
            }
            if let Some(t) = current.take() {
                v.push((t, r == "CACHED"));
            }
        }
    }
    v
}

fn build(s: &Strata, ctx: &std::path::Path, extra: &[&str]) -> String {
    let mut args = vec!["build", "--network", "none", "-t", "app:1"];
    args.extend_from_slice(extra);
    args.push(ctx.to_str().unwrap());
    s.ok(&args)
}

fn dockerfile(base: &str) -> String {
    format!(
        "FROM {base} AS builder\n\
         RUN echo built > /built && dd if=/dev/zero of=/big bs=1k count=64 2>/dev/null\n\
         FROM {base}\n\
         COPY a.txt /a.txt\n\
         RUN cat /a.txt > /b.txt\n\
         COPY --from=builder /built /c\n\
         ENV X=1\n"
    )
}

fn diff_ids(s: &Strata, image: &str) -> usize {
    let v: serde_json::Value = serde_json::from_str(&s.ok(&["inspect", image])).unwrap();
    v[0]["RootFS"]["Layers"].as_array().unwrap().len()
}

#[test]
fn an_empty_store_gets_every_step_from_a_registry_cache_and_only_the_final_images_layers() {
    empty_store_from_registry_cache("overlay");
}

#[test]
fn an_empty_copy_driver_store_gets_every_step_from_a_registry_cache_and_only_the_final_images_layers() {
    empty_store_from_registry_cache("copy");
}

/// Store A (overlay) builds and exports; empty stores on `driver` import.
fn empty_store_from_registry_cache(driver: &str) {
    let reg = Registry::start();
    let (a, ctx, base) = pushed_base(&reg);
    fs::write(ctx.join("Dockerfile"), dockerfile(&base)).unwrap();
    fs::write(ctx.join("a.txt"), "one\n").unwrap();
    let cache = format!("type=registry,ref={}/cache:main,mode=max", reg.addr);
    let out = build(&a, &ctx, &["--cache-to", &cache]);
    assert!(steps(&out).iter().all(|(_, cached)| !cached), "store A builds every step: {out}");
    let id_a = a.image_id("app:1");
    // Store A has the builder stage's RUN layer beside the image's own.
    assert_eq!(a.layer_dirs().len(), diff_ids(&a, "app:1") + 1, "{:?}", a.layer_dirs());

    let b = Strata::on_host_network(driver);
    let from = format!("type=registry,ref={}/cache:main", reg.addr);
    let before = reg.blob_gets().len();
    let out = build(&b, &ctx, &["--cache-from", &from]);
    let fetched = reg.blob_gets()[before..].to_vec();
    let st = steps(&out);
    assert_eq!(st.len(), 5, "{out}");
    assert!(st.iter().all(|(_, cached)| *cached), "every step cached on the empty store: {st:?}\n{out}");
    assert_eq!(b.image_id("app:1"), id_a, "the same image as store A's");
    // Only the final image's layers came, not the builder stage's: each of
    // its layer blobs once, and two configs (the base image's, the cache's).
    assert_eq!(fetched.len(), diff_ids(&b, "app:1") + 2, "{fetched:?}");
    assert_eq!(b.layer_dirs().len(), diff_ids(&b, "app:1"), "{:?}", b.layer_dirs());
    assert_eq!(b.ok(&["run", "--rm", "--network", "none", "app:1", "cat", "/b.txt", "/c"]), "one\nbuilt\n");
    assert_check_clean(&b);

    // A changed file: its COPY and the steps after it run again, on a third empty store.
    fs::write(ctx.join("a.txt"), "two\n").unwrap();
    let c = Strata::on_host_network(driver);
    let out = build(&c, &ctx, &["--cache-from", &from]);
    let got: Vec<(String, bool)> = steps(&out);
    let want = vec![
        ("RUN echo built > /built && dd if=/dev/zero of=/big bs=1k count=64 2>/dev/null".to_string(), true),
        ("COPY a.txt /a.txt".to_string(), false),
        ("RUN cat /a.txt > /b.txt".to_string(), false),
        ("COPY --from=builder /built /c".to_string(), false),
        ("ENV X=1".to_string(), false),
    ];
    assert_eq!(got, want, "{out}");
    assert_eq!(c.ok(&["run", "--rm", "--network", "none", "app:1", "cat", "/b.txt", "/c"]), "two\nbuilt\n");
    assert_check_clean(&c);
}

#[test]
fn mode_min_leaves_out_the_other_stages_steps() {
    let reg = Registry::start();
    let (a, ctx, base) = pushed_base(&reg);
    fs::write(ctx.join("Dockerfile"), dockerfile(&base)).unwrap();
    fs::write(ctx.join("a.txt"), "one\n").unwrap();
    let cache = format!("type=registry,ref={}/cache:min", reg.addr);
    build(&a, &ctx, &["--cache-to", &cache]);
    let b = Strata::on_host_network("overlay");
    let out = build(&b, &ctx, &["--cache-from", &cache]);
    let got: Vec<bool> = steps(&out).into_iter().map(|(_, c)| c).collect();
    // The builder stage's RUN is not in a mode=min cache: it runs again. The
    // final stage's steps before its COPY --from come from the cache (that
    // COPY is keyed by the builder's new result: a hit only if the RUN made
    // the same layer, mtimes and all, so within the same second).
    assert_eq!(got[..3], [false, true, true], "{out}");
}

#[test]
fn a_missing_cache_ref_is_a_warning_and_the_build_goes_on() {
    let reg = Registry::start();
    let (s, ctx, base) = pushed_base(&reg);
    fs::write(ctx.join("Dockerfile"), format!("FROM {base}\nRUN echo hi > /hi\n")).unwrap();
    let from = format!("type=registry,ref={}/nothing:here", reg.addr);
    let out = build(&s, &ctx, &["--cache-from", &from]);
    assert!(out.contains(&format!("[Warning] --cache-from {}/nothing:here: not found", reg.addr)), "{out}");
    assert_eq!(steps(&out), vec![("RUN echo hi > /hi".to_string(), false)]);
    assert_eq!(s.ok(&["run", "--rm", "--network", "none", "app:1", "cat", "/hi"]), "hi\n");
}

#[test]
fn a_malformed_cache_flag_is_refused_naming_it_and_stores_nothing() {
    let reg = Registry::start();
    let (s, ctx, base) = pushed_base(&reg);
    fs::write(ctx.join("Dockerfile"), format!("FROM {base}\nRUN echo hi > /hi\n")).unwrap();
    let before = s.state();
    for (flag, value, says) in [
        ("--cache-to", "type=local,dest=/tmp/x", "type=local: strata keeps a build cache in a registry only"),
        ("--cache-to", "type=registry", "want ref=REF"),
        ("--cache-from", "type=registry,ref=a/b,mode=most", "mode=most: want min or max"),
        ("--cache-from", "type=registry,ref=a/b,colour=red", "unknown key \"colour\""),
    ] {
        let (code, err) = s.fails(&["build", "--network", "none", "-t", "app:1", flag, value, ctx.to_str().unwrap()]);
        assert_ne!(code, 0);
        assert!(err.contains(flag) && err.contains(says), "{flag} {value}: {err}");
    }
    assert_eq!(s.state(), before, "nothing stored");
}

#[test]
fn an_unreachable_cache_to_fails_the_build_unless_ignore_error() {
    let reg = Registry::start();
    let (s, ctx, base) = pushed_base(&reg);
    fs::write(ctx.join("Dockerfile"), format!("FROM {base}\nRUN echo hi > /hi\n")).unwrap();
    // Nothing listens on this port.
    let nowhere = format!("127.0.0.1:{}", registry::free_port());
    let to = format!("type=registry,ref={nowhere}/cache:x");
    let (code, err) = s.fails(&["build", "--network", "none", "-t", "app:1", "--cache-to", &to, ctx.to_str().unwrap()]);
    assert_ne!(code, 0);
    assert!(err.contains(&nowhere), "{err}");
    let out = build(&s, &ctx, &["--cache-to", &format!("{to},ignore-error=true")]);
    assert!(out.contains(&format!("[Warning] --cache-to {nowhere}/cache:x")), "{out}");
    assert_eq!(s.ok(&["run", "--rm", "--network", "none", "app:1", "cat", "/hi"]), "hi\n");
}

#[test]
fn an_image_buildkit_pushed_with_inline_cache_gives_its_run_layers_until_the_first_copy() {
    let reg = Registry::start();
    let (a, ctx, base) = pushed_base(&reg);
    // Each RUN writes a random UUID: equal files mean the layer came from BuildKit's image.
    fs::write(
        ctx.join("Dockerfile"),
        format!(
            "FROM {base}\n\
             ARG V=3\n\
             ENV A=1 B=\"two words\"\n\
             RUN echo $V $A > /x && cat /proc/sys/kernel/random/uuid > /u1\n\
             WORKDIR /app\n\
             LABEL k=v\n\
             RUN cat /proc/sys/kernel/random/uuid > /app/u2\n\
             COPY f.txt /f.txt\n\
             RUN cat /proc/sys/kernel/random/uuid > /u3\n"
        ),
    )
    .unwrap();
    fs::write(ctx.join("f.txt"), "f\n").unwrap();
    let cache_image = format!("{}/app:cache", reg.addr);
    let docker = common::docker::Docker::start(&a);
    let c = ctx.to_str().unwrap();
    docker.ok(&[
        "build",
        "--network",
        "none",
        "-q",
        "--build-arg",
        "V=4",
        "--build-arg",
        "BUILDKIT_INLINE_CACHE=1",
        "-t",
        &cache_image,
        c,
    ]);
    docker.ok(&["push", &cache_image]);
    drop(docker);

    let b = Strata::on_host_network("overlay");
    let out = build(&b, &ctx, &["--build-arg", "V=4", "--cache-from", &cache_image]);
    assert!(out.contains("an image, matched by its history"), "{out}");
    let runs: Vec<(String, bool)> = steps(&out)
        .into_iter()
        .filter(|(t, _)| {
            !t.starts_with("ARG") && !t.starts_with("ENV") && !t.starts_with("LABEL") && !t.starts_with("WORKDIR")
        })
        .collect();
    assert_eq!(
        runs,
        vec![
            ("RUN echo $V $A > /x && cat /proc/sys/kernel/random/uuid > /u1".to_string(), true),
            ("RUN cat /proc/sys/kernel/random/uuid > /app/u2".to_string(), true),
            ("COPY f.txt /f.txt".to_string(), false),
            ("RUN cat /proc/sys/kernel/random/uuid > /u3".to_string(), false),
        ],
        "{out}"
    );
    a.ok(&["pull", "-q", &cache_image]);
    let files = ["cat", "/x", "/u1", "/app/u2", "/u3"];
    let theirs = a.ok(&[&["run", "--rm", "--network", "none", &cache_image][..], &files[..]].concat());
    let ours = b.ok(&[&["run", "--rm", "--network", "none", "app:1"][..], &files[..]].concat());
    let (theirs, ours): (Vec<&str>, Vec<&str>) = (theirs.lines().collect(), ours.lines().collect());
    assert_eq!(ours[0], "4 1", "the RUN saw the build arg and the ENV");
    assert_eq!(ours[..3], theirs[..3], "/x, /u1 and /app/u2 from BuildKit's layers");
    assert_ne!(ours[3], theirs[3], "/u3 made by strata's own RUN");
    assert_check_clean(&b);
}
