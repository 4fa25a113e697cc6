//! A storm: eight processes at once, for a minute (`STRATA_STORM_SECS`),
//! pulling, building, running, committing, removing and pruning images
//! that share a base, all on one store. No command fails with another's
//! error (only "no such image" and "in use" are a command's own answers),
//! and afterwards every image left runs, `system check` is clean and
//! nothing is left in tmp/ or mounted.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::registry::*;
use common::*;

const WORKERS: usize = 8;

/// One operation of the storm: its arguments, and the failures that are
/// its own answer rather than damage done by another process.
struct Op {
    args: Vec<String>,
    own_failures: &'static [&'static str],
}

fn op(args: &[&str], own_failures: &'static [&'static str]) -> Op {
    Op { args: args.iter().map(|s| s.to_string()).collect(), own_failures }
}

/// Images removed by one worker may be wanted by another: "not found" and
/// "in use" are answers a user gets with one process too.
const GONE_OR_IN_USE: &[&str] = &["No such image", "not found", "is in use", "conflict"];

#[test]
fn eight_processes_pulling_building_running_and_pruning_at_once_leave_a_consistent_store() {
    let secs: u64 = std::env::var("STRATA_STORM_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(60);
    let reg = Registry::start();
    let base = LayerTar::new().dir("shared").file("shared/base", b"base\n").build();
    let apps: Vec<String> = (0..3)
        .map(|k| {
            let own = LayerTar::new().dir("app").file("app/own", format!("app {k}\n").as_bytes()).build();
            let archive = test_tmp().join(format!("storm-app{k}-{}.tar", std::process::id()));
            fs::write(&archive, docker_archive(&[TestImage::new("x:1", vec![busybox_layer(), base.clone(), own])]))
                .unwrap();
            let r = format!("{}/app{k}:1", reg.addr);
            skopeo_push(&archive, &r);
            fs::remove_file(&archive).unwrap();
            r
        })
        .collect();
    let base_ref = {
        let archive = test_tmp().join(format!("storm-base-{}.tar", std::process::id()));
        fs::write(&archive, docker_archive(&[TestImage::new("x:1", vec![busybox_layer(), base])])).unwrap();
        let r = format!("{}/base:1", reg.addr);
        skopeo_push(&archive, &r);
        fs::remove_file(&archive).unwrap();
        r
    };
    // On the host's network to reach the registry: every container and RUN has --network none.
    let s = Strata::on_host_network("overlay");
    s.ok(&["pull", "-q", "--tls-verify=false", &base_ref]);
    let ctx = s.path("ctx");
    fs::create_dir(&ctx).unwrap();
    fs::write(ctx.join("data"), "data\n").unwrap();
    fs::write(
        ctx.join("Dockerfile"),
        format!("FROM {base_ref}\nARG N=0\nCOPY data /data\nRUN echo $N > /n\nRUN cat /shared/base /data > /both\n"),
    )
    .unwrap();
    let ctx = ctx.display().to_string();

    let failures = Mutex::new(Vec::new());
    let counts = Mutex::new(BTreeMap::<String, usize>::new());
    let deadline = Instant::now() + Duration::from_secs(secs);
    std::thread::scope(|scope| {
        for w in 0..WORKERS {
            let (s, apps, ctx, failures, counts) = (&s, &apps, &ctx, &failures, &counts);
            scope.spawn(move || {
                let mut i = 0usize;
                while Instant::now() < deadline {
                    let app = &apps[(w + i) % apps.len()];
                    let name = format!("c{w}-{i}");
                    let built = format!("built{w}:1");
                    let n = format!("N={}", i % 3);
                    let ops: Vec<Op> = match (w + i) % 7 {
                        0 => vec![op(&["pull", "-q", "--tls-verify=false", app], &[])],
                        1 => vec![op(&["build", "-q", "--network", "none", "--build-arg", &n, "-t", &built, ctx], &[])],
                        2 => vec![op(
                            &["run", "--rm", "--network", "none", "--pull", "missing", app, "cat", "/app/own"],
                            &[],
                        )],
                        3 => vec![
                            op(&["run", "--name", &name, "--network", "none", app, "sh", "-c", "echo w > /w"], &[]),
                            op(&["commit", &name, &format!("committed{w}:1")], &[]),
                            op(&["rm", &name], &[]),
                        ],
                        4 => vec![op(&["rmi", app], GONE_OR_IN_USE)],
                        5 => vec![op(&["image", "prune", "-a", "-f"], &[])],
                        _ => vec![op(&["builder", "prune", "-f"], &[])],
                    };
                    for o in ops {
                        let a: Vec<&str> = o.args.iter().map(String::as_str).collect();
                        let (code, out, err) = s.code(&a);
                        *counts.lock().unwrap().entry(a[0].to_string()).or_default() += 1;
                        if code != 0 && !o.own_failures.iter().any(|f| err.contains(f)) {
                            failures.lock().unwrap().push(format!("strata {a:?} exited {code}: {out}{err}"));
                            break;
                        }
                    }
                    i += 1;
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    assert!(failures.is_empty(), "{} commands failed:\n{}", failures.len(), failures.join("\n"));
    eprintln!("commands run: {:?}", counts.into_inner().unwrap());

    // Every image left runs; the store is consistent and nothing is left over.
    let images = s.ok(&["images", "-q", "--no-trunc"]);
    for id in images.lines() {
        s.ok(&["run", "--rm", "--network", "none", id, "cat", "/shared/base"]);
    }
    let (code, out, err) = s.code(&["system", "check", "--format", "json"]);
    assert_eq!(code, 0, "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["checked"]["layers"].as_u64().unwrap() as usize, s.layer_dirs().len(), "{v:#}");
    assert_eq!(s.tmp_entries(), Vec::<String>::new());
    assert_eq!(mounts_under(&s), Vec::<String>::new());
}
