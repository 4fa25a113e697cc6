//! The layer explorer: `image layers` (per-layer changes, waste,
//! efficiency, sharing), its CI rules and `.dive-ci`, and its errors.

#[macro_use]
mod common;

use std::collections::HashMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use common::*;

/// A store holding `base:1` (busybox, one layer) and a context directory.
fn setup(driver: &str) -> (Strata, PathBuf) {
    let s = Strata::new(driver);
    let a = s.write("base.tar", &docker_archive(&[TestImage::new("base:1", vec![busybox_layer()])]));
    s.ok(&["load", "-q", "-i", a.to_str().unwrap()]);
    let ctx = s.path("ctx");
    fs::create_dir(&ctx).unwrap();
    (s, ctx)
}

/// `n` bytes that do not compress (xorshift).
fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// The image's layer tars, bottom first, as `save` writes them.
fn layer_tars(s: &Strata, image: &str) -> Vec<Vec<u8>> {
    let out = s.path(&format!("{image}.saved.tar").replace(':', "_"));
    s.ok(&["save", "-o", out.to_str().unwrap(), image]);
    let mut entries: HashMap<String, Vec<u8>> = HashMap::new();
    let mut ar = tar::Archive::new(fs::File::open(&out).unwrap());
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().to_string_lossy().into_owned();
        let mut b = Vec::new();
        e.read_to_end(&mut b).unwrap();
        entries.insert(name, b);
    }
    let manifest: serde_json::Value = serde_json::from_slice(&entries["manifest.json"]).unwrap();
    manifest[0]["Layers"].as_array().unwrap().iter().map(|l| entries[l.as_str().unwrap()].clone()).collect()
}

/// Per layer (size, added, modified, deleted, wasted), counted from the
/// layer tars directly: a path in k layers wastes its k−1 hidden copies,
/// a whiteout wastes the copy it deletes; directories are not files.
/// (Only what these tests' layers hold: files, links, whiteouts.)
fn by_hand(tars: &[Vec<u8>]) -> Vec<(u64, u64, u64, u64, u64)> {
    let mut visible: HashMap<String, u64> = HashMap::new();
    let mut rows = Vec::new();
    for t in tars {
        let (mut size, mut added, mut modified, mut deleted, mut wasted) = (0, 0, 0, 0, 0);
        let mut files = Vec::new();
        for e in tar::Archive::new(&t[..]).entries().unwrap() {
            let e = e.unwrap();
            let path = e.path().unwrap().to_string_lossy().trim_start_matches("./").trim_end_matches('/').to_string();
            assert!(!path.ends_with(".wh..wh..opq"), "no opaque directories expected here");
            if e.header().entry_type().is_dir() {
                continue;
            }
            let n = if e.header().entry_type().is_file() { e.size() } else { 0 };
            files.push((path, n));
        }
        for (path, _) in &files {
            let name = path.rsplit('/').next().unwrap();
            if let Some(hidden) = name.strip_prefix(".wh.") {
                let target = format!("{}{hidden}", &path[..path.len() - name.len()]);
                let gone = visible.remove(&target).expect("a whiteout of a file below");
                deleted += 1;
                wasted += gone;
            }
        }
        for (path, n) in files {
            if path.rsplit('/').next().unwrap().starts_with(".wh.") {
                continue;
            }
            size += n;
            match visible.insert(path, n) {
                Some(old) => {
                    modified += 1;
                    wasted += old;
                }
                None => added += 1,
            }
        }
        rows.push((size, added, modified, deleted, wasted));
    }
    rows
}

fn layers_json(s: &Strata, image: &str) -> serde_json::Value {
    serde_json::from_str(&s.ok(&["image", "layers", "--format", "json", image])).unwrap()
}

const TEN_MB: usize = 10 * 1024 * 1024;

/// An image that copies a 10 MB file, overwrites it, chmods it and deletes another.
fn wasteful(s: &Strata, ctx: &Path) {
    fs::write(ctx.join("big"), noise(TEN_MB, 7)).unwrap();
    fs::write(ctx.join("other"), noise(4096, 9)).unwrap();
    fs::write(
        ctx.join("Dockerfile"),
        "FROM base:1\nCOPY big other /data/\nENV STEP=overwrite\nRUN echo more >> /data/big\n\
         RUN chmod 600 /data/big\nRUN rm /data/other\n",
    )
    .unwrap();
    s.ok(&["build", "-q", "-t", "wasteful:1", ctx.to_str().unwrap()]);
}

fn layers_count_changes_and_waste_as_the_layer_tars_do(driver: &str) {
    let (s, ctx) = setup(driver);
    wasteful(&s, &ctx);
    let expected = by_hand(&layer_tars(&s, "wasteful:1"));
    let v = layers_json(&s, "wasteful:1");
    let rows = v["rows"].as_array().unwrap();
    // Every history entry, the empty ones (base:1's CMD, the ENV) included.
    assert_eq!(rows.len(), 7, "{v:#}");
    assert_eq!((&rows[0]["layer"], &rows[2]["layer"]), (&serde_json::json!(0), &serde_json::json!(1)));
    assert_eq!(
        (&rows[1]["empty_layer"], &rows[1]["created_by"]),
        (&serde_json::json!(true), &serde_json::json!("CMD [\"sh\"]"))
    );
    assert_eq!(
        (&rows[3]["empty_layer"], &rows[3]["created_by"]),
        (&serde_json::json!(true), &serde_json::json!("ENV STEP=overwrite"))
    );
    let got: Vec<(u64, u64, u64, u64, u64)> = rows
        .iter()
        .filter(|r| r["empty_layer"] == false)
        .map(|r| {
            let n = |k: &str| r[k].as_u64().unwrap();
            (n("size"), n("added"), n("modified"), n("deleted"), n("wasted"))
        })
        .collect();
    assert_eq!(got, expected);
    // What the Dockerfile did: the 10 MB file hidden twice (the k−1 rule: its
    // third copy is the one shown), the 4 kB file deleted once.
    let big = TEN_MB as u64;
    assert_eq!(expected[2].4, big);
    assert_eq!(expected[3].4, big + 5);
    assert_eq!((expected[4].3, expected[4].4), (1, 4096));
    let size: u64 = expected.iter().map(|r| r.0).sum();
    let wasted: u64 = expected.iter().map(|r| r.4).sum();
    assert_eq!(v["size"].as_u64().unwrap(), size);
    assert_eq!(v["wasted"].as_u64().unwrap(), wasted);
    let efficiency = v["efficiency"].as_f64().unwrap();
    assert!((efficiency - (1.0 - wasted as f64 / size as f64)).abs() < 1e-9, "{efficiency}");
    // The user layers are those above base:1, which the build recorded.
    assert_eq!(v["base"], "base:1");
    assert_eq!(v["base_layers"], 1);
    let user_size: u64 = expected[1..].iter().map(|r| r.0).sum();
    let user_ratio = v["user_wasted_ratio"].as_f64().unwrap();
    assert!((user_ratio - wasted as f64 / user_size as f64).abs() < 1e-9, "{user_ratio}");
    // The base layer is shared with base:1, by name.
    assert_eq!(rows[0]["shared_with"][0]["names"][0], "docker.io/library/base:1", "{:#}", rows[0]);
    assert_eq!(rows[2]["shared_with"].as_array().unwrap().len(), 0);
    // The index is kept: a second run answers the same.
    assert_eq!(layers_json(&s, "wasteful:1"), v);
}

both_drivers!(layers_count_changes_and_waste_as_the_layer_tars_do);

#[test]
fn ci_rules_pass_and_fail_on_their_thresholds_and_read_dive_ci() {
    let (s, ctx) = setup("overlay");
    wasteful(&s, &ctx);
    let v = layers_json(&s, "wasteful:1");
    let efficiency = v["efficiency"].as_f64().unwrap();
    let wasted = v["wasted"].as_u64().unwrap();
    let ci = |dir: &Path, flags: &[&str]| -> (i32, String, String) {
        let mut c = s.command();
        c.current_dir(dir).args(["image", "layers", "--ci", "wasteful:1"]).args(flags);
        let o = c.output().unwrap();
        (o.status.code().unwrap(), String::from_utf8_lossy(&o.stdout).into(), String::from_utf8_lossy(&o.stderr).into())
    };
    let lower = format!("{:.3}", efficiency - 0.01);
    let higher = format!("{:.3}", efficiency + 0.01);
    let (code, out, err) = ci(&ctx, &["--lowest-efficiency", &lower]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("PASS"), "{out}");
    let (code, out, _) = ci(&ctx, &["--lowest-efficiency", &higher]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("FAIL lowestEfficiency"), "{out}");
    let (code, out, _) = ci(&ctx, &["--highest-wasted-bytes", &wasted.to_string()]);
    assert_eq!(code, 0, "{out}");
    let (code, out, _) = ci(&ctx, &["--highest-wasted-bytes", &(wasted - 1).to_string()]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("FAIL highestWastedBytes"), "{out}");
    let (code, out, _) = ci(&ctx, &["--highest-user-wasted-percent", "0.1"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("FAIL highestUserWastedPercent"), "{out}");
    // The same rules from a .dive-ci in the current directory; a flag overrides the file.
    fs::write(ctx.join(".dive-ci"), format!("rules:\n  lowestEfficiency: {higher}\n  highestWastedBytes: 30MB\n"))
        .unwrap();
    let (code, out, _) = ci(&ctx, &[]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("FAIL lowestEfficiency") && !out.contains("highestWastedBytes"), "{out}");
    let (code, out, _) = ci(&ctx, &["--lowest-efficiency", "disabled"]);
    assert_eq!(code, 0, "{out}");
    let (code, out, _) = ci(&ctx, &["--highest-wasted-bytes", "21MiB", "--ci-config", "/nonexistent"]);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn bad_input_is_named_and_exits_1() {
    let (s, ctx) = setup("overlay");
    let (code, err) = s.fails(&["image", "layers", "nosuch:1"]);
    assert_eq!(code, 1);
    assert!(err.contains("nosuch"), "{err}");
    fs::write(ctx.join(".dive-ci"), "rules:\n  lowestEfficiency: [0.9\n").unwrap();
    let o = s.command().current_dir(&ctx).args(["image", "layers", "--ci", "base:1"]).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains(".dive-ci"), "{err}");
    let (code, err) = s.fails(&["image", "layers", "--ci", "--lowest-efficiency", "95", "base:1"]);
    assert_eq!(code, 1);
    assert!(err.contains("--lowest-efficiency"), "{err}");
    // A layer directory removed by hand: the layer is named.
    let chain = layers_json(&s, "base:1")["rows"][0]["chain_id"].as_str().unwrap().to_string();
    let dir = s.root().join("layers").join(chain.trim_start_matches("sha256:")).join("diff");
    fs::rename(&dir, dir.with_file_name("diff.moved")).unwrap();
    let (code, err) = s.fails(&["image", "layers", "base:1"]);
    assert_eq!(code, 1);
    assert!(err.contains(&chain), "{err}");
    fs::rename(dir.with_file_name("diff.moved"), &dir).unwrap();
}
