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

/// `du -s -B1` of the store's layers and blobs: the bytes they hold on disk.
fn du(s: &Strata) -> u64 {
    let o = std::process::Command::new("du")
        .args(["-s", "-B1", "-c"])
        .arg(s.root().join("layers"))
        .arg(s.root().join("blobs"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8(o.stdout).unwrap();
    let total = out.lines().last().unwrap();
    assert!(total.ends_with("total"), "{out}");
    total.split_whitespace().next().unwrap().parse().unwrap()
}

/// Every node of an `image tree --format json` answer, depth first.
fn nodes(v: &serde_json::Value) -> Vec<serde_json::Value> {
    fn walk(n: &serde_json::Value, out: &mut Vec<serde_json::Value>) {
        out.push(n.clone());
        for c in n["children"].as_array().unwrap() {
            walk(c, out);
        }
    }
    let mut out = Vec::new();
    for r in v["roots"].as_array().unwrap() {
        walk(r, &mut out);
    }
    out
}

/// Build `tag` from `dockerfile` in `ctx`.
fn build(s: &Strata, ctx: &Path, tag: &str, dockerfile: &str) {
    fs::write(ctx.join("Dockerfile"), dockerfile).unwrap();
    s.ok(&["build", "-q", "-t", tag, ctx.to_str().unwrap()]);
}

#[test]
fn tree_shows_shared_layers_once_and_rmi_frees_what_it_said() {
    let (s, ctx) = setup("overlay");
    fs::write(ctx.join("common"), noise(1 << 20, 1)).unwrap();
    fs::write(ctx.join("a"), noise(3 << 20, 2)).unwrap();
    fs::write(ctx.join("b"), noise(2 << 20, 3)).unwrap();
    build(&s, &ctx, "first:1", "FROM base:1\nCOPY common /c\nCOPY a /a\n");
    build(&s, &ctx, "second:1", "FROM base:1\nCOPY common /c\nCOPY b /b\n");
    // Without the build cache, the layers are the images' alone to keep.
    s.ok(&["builder", "prune", "-a", "-f"]);
    let all: serde_json::Value = serde_json::from_str(&s.ok(&["image", "tree", "--format", "json"])).unwrap();
    let n = nodes(&all);
    let chains: Vec<&str> = n.iter().map(|x| x["chain_id"].as_str().unwrap()).collect();
    let unique: std::collections::HashSet<&&str> = chains.iter().collect();
    assert_eq!((chains.len(), unique.len()), (4, 4), "each layer once: {all:#}");
    // The base's layer and the COPY common layer on it are shared; each top layer is one image's.
    let roots = all["roots"].as_array().unwrap();
    assert_eq!(roots.len(), 1, "{all:#}");
    assert_eq!(roots[0]["used_by"], 3);
    let common = &roots[0]["children"][0];
    assert_eq!((common["used_by"].as_u64(), roots[0]["children"].as_array().unwrap().len()), (Some(2), 1));
    let tops: Vec<(String, u64)> = common["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["images"][0]["names"][0].as_str().unwrap().to_string(), t["used_by"].as_u64().unwrap()))
        .collect();
    let mut names: Vec<&str> = tops.iter().map(|t| t.0.as_str()).collect();
    names.sort();
    assert_eq!(names, ["docker.io/library/first:1", "docker.io/library/second:1"]);
    assert!(tops.iter().all(|t| t.1 == 1), "{tops:?}");
    let on_disk = |c: &serde_json::Value| c["on_disk"].as_u64().unwrap();
    assert_eq!(all["saved_by_sharing"].as_u64().unwrap(), 2 * on_disk(&roots[0]) + on_disk(common));
    // What rmi would free, then what it frees.
    let one: serde_json::Value =
        serde_json::from_str(&s.ok(&["image", "tree", "--format", "json", "first:1"])).unwrap();
    let frees = one["rmi"]["frees"].as_u64().unwrap();
    assert_eq!(one["rmi"]["layers"].as_array().unwrap().len(), 1, "{one:#}");
    assert!(frees > 3 << 20, "{one:#}");
    let before = du(&s);
    s.ok(&["rmi", "first:1"]);
    assert_eq!(before - du(&s), frees);
}

#[test]
fn diff_of_two_builds_differing_in_one_file_lists_that_file() {
    let (s, ctx) = setup("overlay");
    fs::create_dir(ctx.join("app")).unwrap();
    for i in 0..20 {
        fs::write(ctx.join("app").join(format!("f{i}")), format!("file {i}\n")).unwrap();
    }
    let dockerfile = "FROM base:1\nCOPY app /app\nRUN touch /app/stamp\n";
    build(&s, &ctx, "one:1", dockerfile);
    // Same size, other bytes: only the content tells them apart.
    fs::write(ctx.join("app/f7"), "FILE 7\n").unwrap();
    build(&s, &ctx, "two:1", dockerfile);
    let d: serde_json::Value =
        serde_json::from_str(&s.ok(&["image", "diff", "--format", "json", "one:1", "two:1"])).unwrap();
    assert_eq!(d["shared"].as_array().unwrap().len(), 1, "{d:#}");
    assert_eq!((d["only_a"].as_array().unwrap().len(), d["only_b"].as_array().unwrap().len()), (2, 2));
    let changes: Vec<(String, String, serde_json::Value)> = d["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["change"].as_str().unwrap().into(), c["path"].as_str().unwrap().into(), c["what"].clone()))
        .collect();
    assert_eq!(changes, [("C".to_string(), "/app/f7".to_string(), serde_json::json!(["content"]))]);
    assert_eq!(s.ok(&["image", "diff", "one:1", "two:1"]).lines().last().unwrap(), "C /app/f7 (content)");
    // A change of mode and an added file, the other way round too.
    build(&s, &ctx, "three:1", "FROM one:1\nRUN chmod 600 /app/f1 && echo x > /app/new\n");
    let d: serde_json::Value =
        serde_json::from_str(&s.ok(&["image", "diff", "--format", "json", "three:1", "one:1"])).unwrap();
    let changes: Vec<(String, String)> = d["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["change"].as_str().unwrap().into(), c["path"].as_str().unwrap().into()))
        .collect();
    assert_eq!(changes, [("C".to_string(), "/app/f1".to_string()), ("D".to_string(), "/app/new".to_string())], "{d:#}");
    assert_eq!(d["changes"][0]["what"], serde_json::json!(["mode"]));
}

/// The `--> not cached:` reasons `build --explain` gave for the step `text`.
fn reasons_for(out: &str, text: &str) -> Vec<String> {
    let mut lines = out.lines().skip_while(|l| !(l.starts_with("STEP ") && l.ends_with(&format!(": {text}"))));
    assert!(lines.next().is_some(), "no step {text:?} in:\n{out}");
    lines
        .take_while(|l| !l.starts_with("STEP "))
        .filter_map(|l| l.strip_prefix("--> not cached: ").map(str::to_string))
        .collect()
}

#[test]
fn build_explain_names_the_changed_context_file_build_arg_and_base() {
    let (s, ctx) = setup("overlay");
    for f in ["one", "two", "three"] {
        fs::write(ctx.join(f), format!("{f}\n")).unwrap();
    }
    fs::write(ctx.join("Dockerfile"), "FROM base:1\nARG V=1\nCOPY one two three /x/\nRUN echo $V > /v\n").unwrap();
    let c = ctx.to_str().unwrap();
    let first = s.ok(&["build", "--explain", "-t", "ex:1", c]);
    assert_eq!(reasons_for(&first, "COPY one two three /x/"), ["no earlier build of this step"]);
    // One context file changes: it alone is named, with its old and new digests.
    fs::write(ctx.join("two"), "TWO\n").unwrap();
    let out = s.ok(&["build", "--explain", "-t", "ex:1", c]);
    let (old, new) = (format!("sha256:{}", sha256_hex(b"two\n")), format!("sha256:{}", sha256_hex(b"TWO\n")));
    assert_eq!(reasons_for(&out, "COPY one two three /x/"), [format!("input two changed: {new}, was {old}")], "{out}");
    assert_eq!(reasons_for(&out, "ARG V=1"), Vec::<String>::new(), "cached: {out}");
    assert_eq!(reasons_for(&out, "RUN echo $V > /v"), ["the step before it changed (STEP 3 was rebuilt)"], "{out}");
    // The same reasons are kept with the image.
    let kept = s.ok(&["builder", "explain", "ex:1"]);
    assert_eq!(reasons_for(&kept, "COPY one two three /x/"), [format!("input two changed: {new}, was {old}")]);
    // A build arg changes: the ARG step and every step after it name it.
    let out = s.ok(&["build", "--explain", "--build-arg", "V=2", "-t", "ex:1", c]);
    assert_eq!(reasons_for(&out, "ARG V=1"), ["build arg V changed: \"2\", was \"1\""], "{out}");
    assert!(
        reasons_for(&out, "RUN echo $V > /v").contains(&"build arg V changed: \"2\", was \"1\"".to_string()),
        "{out}"
    );
    // The base image changes under its name: the first step says so.
    let other = s.write(
        "other.tar",
        &docker_archive(&[TestImage::new("base:1", vec![busybox_layer(), LayerTar::new().file("new", b"n").build()])]),
    );
    s.ok(&["load", "-q", "-i", other.to_str().unwrap()]);
    let base = s.image_id("base:1");
    let out = s.ok(&["build", "--explain", "--build-arg", "V=2", "-t", "ex:1", c]);
    let r = reasons_for(&out, "ARG V=1");
    assert_eq!(r.len(), 1, "{out}");
    assert!(r[0].starts_with(&format!("the parent changed: FROM base:1 is {base}, was sha256:")), "{out}");
    let (code, err) = s.fails(&["builder", "explain", "base:1"]);
    assert_eq!(code, 1);
    assert!(err.contains("not built"), "{err}");
}

/// A tmux server of the test's own (its own socket), 80x24, running one
/// command; killed on drop, also when the test fails.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn start(command: &str) -> Self {
        let socket = format!("strata-test-{}", std::process::id());
        let t = Tmux { socket };
        let ok = t.tmux(&["new-session", "-d", "-s", "x", "-x", "80", "-y", "24", command]).status.success();
        assert!(ok, "tmux new-session");
        t
    }

    fn tmux(&self, args: &[&str]) -> std::process::Output {
        std::process::Command::new("tmux").arg("-L").arg(&self.socket).args(args).output().unwrap()
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "x"];
        args.extend(keys);
        assert!(self.tmux(&args).status.success(), "send-keys {keys:?}");
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.tmux(&["capture-pane", "-p", "-t", "x"]).stdout).into_owned()
    }

    /// The screen once `want` holds for it (the program draws after each key).
    fn wait_for(&self, what: &str, want: impl Fn(&str) -> bool) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let s = self.screen();
            if want(&s) {
                return s;
            }
            assert!(std::time::Instant::now() < deadline, "waiting for {what}; the screen:\n{s}");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    fn alive(&self) -> bool {
        self.tmux(&["has-session", "-t", "x"]).status.success()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.tmux(&["kill-server"]);
    }
}

/// The file pane's line for `name` (the right half of the screen).
fn file_line<'a>(screen: &'a str, name: &str) -> Option<&'a str> {
    screen
        .lines()
        .map(|l| l.split("││").nth(1).unwrap_or(""))
        .find(|l| l.trim_end_matches('│').split_whitespace().last() == Some(name))
}

#[test]
fn explore_view_navigates_layers_toggles_filters_and_quits_in_a_terminal() {
    let (s, ctx) = setup("overlay");
    wasteful(&s, &ctx);
    let mut c = s.command();
    c.args(["image", "explore", "wasteful:1"]);
    let line =
        format!("{:?} {}", c.get_program(), c.get_args().map(|a| format!("{a:?}")).collect::<Vec<_>>().join(" "));
    let t = Tmux::start(&line);
    // Layer 0 (busybox) first: its files, added.
    let sc = t.wait_for("the layer list", |s| s.contains("Layer 0: changes"));
    assert!(sc.contains("wasteful:1") && sc.contains("efficiency"), "{sc}");
    assert!(file_line(&sc, "busybox").is_some_and(|l| l.trim_start().starts_with("A ")), "{sc}");
    // Down to layer 3 (RUN chmod): /data/big modified, nothing else of data/.
    t.keys(&["Down", "Down", "Down"]);
    let sc = t.wait_for("layer 3", |s| s.contains("Layer 3: changes"));
    assert!(file_line(&sc, "big").is_some_and(|l| l.trim_start().starts_with("M ")), "{sc}");
    assert!(file_line(&sc, "other").is_none(), "{sc}");
    // Layer 4 (RUN rm): other deleted.
    t.keys(&["Down"]);
    let sc = t.wait_for("layer 4", |s| s.contains("Layer 4: changes"));
    assert!(file_line(&sc, "other").is_some_and(|l| l.trim_start().starts_with("D ")), "{sc}");
    assert!(file_line(&sc, "busybox").is_none(), "{sc}");
    // The whole tree up to layer 4: busybox's files too, unmarked.
    t.keys(&["a"]);
    let sc = t.wait_for("the whole tree", |s| s.contains("Layer 4: whole tree"));
    assert!(file_line(&sc, "busybox").is_some_and(|l| !l.trim_start().starts_with('A')), "{sc}");
    // A filter leaves the matching paths (and their directories).
    t.keys(&["/", "b", "i", "g", "Enter"]);
    let sc = t.wait_for("the filter", |s| s.contains("[/big]"));
    assert!(file_line(&sc, "big").is_some() && file_line(&sc, "busybox").is_none(), "{sc}");
    // The wasted view lists the hidden copies.
    t.keys(&["w"]);
    let sc = t.wait_for("the wasted view", |s| s.contains("Wasted:"));
    assert!(sc.contains("2x /data/big") && sc.contains("1x /data/other"), "{sc}");
    t.keys(&["q"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while t.alive() {
        assert!(std::time::Instant::now() < deadline, "q did not quit:\n{}", t.screen());
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
