//! Docker's everyday commands and what scripts are made of: `--format`
//! templates, `--filter`s, labels, `cp`, `restart`, `rename`.

#[macro_use]
mod common;

use common::*;

/// A store with `app:1` (busybox) and three containers: `one` (label
/// tier=web, created), `two` (label tier=db, exited 3), `three` (running).
fn with_containers() -> Strata {
    let s = Strata::new("overlay");
    let top = LayerTar::new().dir("srv").file("srv/data.txt", b"in the image\n").build();
    let a = s.write("app.tar", &docker_archive(&[TestImage::new("app:1", vec![busybox_layer(), top])]));
    s.ok(&["load", "-i", a.to_str().unwrap()]);
    s.ok(&["create", "--network", "none", "--name", "one", "-l", "tier=web", "app:1", "true"]);
    let (code, _, err) =
        s.code(&["run", "--network", "none", "--name", "two", "--label", "tier=db", "app:1", "sh", "-c", "exit 3"]);
    assert_eq!(code, 3, "{err}");
    s.ok(&["run", "-d", "--network", "none", "--name", "three", "app:1", "sleep", "1000"]);
    s
}

fn names(out: &str) -> Vec<&str> {
    out.lines().collect()
}

#[test]
fn inspect_and_ps_templates_use_docker_s_fields_and_functions() {
    let s = with_containers();
    assert_eq!(s.ok(&["inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", "two"]), "exited 3\n");
    assert_eq!(
        s.ok(&["inspect", "-f", "{{.Name}} {{index .Config.Labels \"tier\"}}", "one", "two"]),
        "/one web\n/two db\n"
    );
    assert_eq!(s.ok(&["container", "inspect", "-f", "{{json .Config.Labels}}", "one"]), "{\"tier\":\"web\"}\n");
    assert_eq!(s.ok(&["ps", "--format", "{{.Names}}\\t{{upper .State}}"]), "three\tRUNNING\n");
    let table = s.ok(&["ps", "-a", "--format", "table {{.Names}}\\t{{.Labels}}"]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines[0].split_whitespace().collect::<Vec<_>>(), ["NAMES", "LABELS"], "{table}");
    assert_eq!(lines.len(), 4, "{table}");
    assert!(lines.iter().any(|l| l.starts_with("one") && l.ends_with("tier=web")), "{table}");
    let images = s.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert_eq!(images, "app:1\n");
    // Bad templates: an error naming what is wrong, exit 1, nothing printed.
    for (format, says) in [("{{", "{{"), ("{{.Nope}}", "Nope"), ("{{nofunc .ID}}", "nofunc")] {
        let (code, out, err) = s.code(&["inspect", "--format", format, "one"]);
        assert_eq!((code, out.as_str()), (1, ""), "{format}: {err}");
        assert!(err.contains(says), "{format} names {says:?}: {err}");
    }
    s.ok(&["rm", "-f", "three"]);
}

#[test]
fn ps_and_images_filters_select_by_docker_s_keys() {
    let s = with_containers();
    let ps = |filters: &[&str]| {
        let mut args = vec!["ps", "--format", "{{.Names}}"];
        for f in filters {
            args.extend(["--filter", f]);
        }
        s.ok(&args)
    };
    assert_eq!(names(&ps(&["label=tier"])), Vec::<&str>::new(), "without -a: running ones only");
    assert_eq!(names(&s.ok(&["ps", "-a", "--format", "{{.Names}}", "--filter", "label=tier"])), ["two", "one"]);
    assert_eq!(names(&s.ok(&["ps", "-a", "--format", "{{.Names}}", "-f", "label=tier=web"])), ["one"]);
    assert_eq!(names(&ps(&["status=exited"])), ["two"], "a status filter lists stopped containers");
    assert_eq!(names(&ps(&["exited=3"])), ["two"]);
    assert_eq!(names(&ps(&["status=created", "status=running"])), ["three", "one"], "values of one key: any");
    assert_eq!(names(&ps(&["status=exited", "name=thr"])), Vec::<&str>::new(), "keys: all");
    assert_eq!(names(&s.ok(&["ps", "-a", "--format", "{{.Names}}", "--filter", "before=two"])), ["one"]);
    assert_eq!(names(&s.ok(&["ps", "-a", "--format", "{{.Names}}", "--filter", "since=one"])), ["three", "two"]);
    assert_eq!(names(&s.ok(&["ps", "-a", "--format", "{{.Names}}", "--filter", "ancestor=app:1"])).len(), 3);
    assert_eq!(names(&s.ok(&["ps", "-a", "--format", "{{.Names}}", "--filter", "network=none"])).len(), 3);
    assert_eq!(names(&s.ok(&["ps", "--format", "{{.Names}}", "-n", "2"])), ["three", "two"]);
    assert_eq!(names(&s.ok(&["ps", "--format", "{{.Names}}", "-l"])), ["three"]);
    let (code, _, err) = s.code(&["ps", "--filter", "colour=red"]);
    assert_eq!(code, 1);
    assert!(err.contains("colour"), "{err}");
    // A dangling image: a commit without a name.
    let dangling = s.ok(&["commit", "two"]).trim().to_string();
    let images = |f: &str| s.ok(&["images", "-q", "--no-trunc", "--filter", f]);
    assert_eq!(images("dangling=true").trim(), dangling);
    assert_eq!(images("dangling=false").trim(), s.image_id("app:1"));
    assert_eq!(images("reference=ap*").trim(), s.image_id("app:1"));
    assert_eq!(images("reference=nothing*").trim(), "");
    let (code, _, err) = s.code(&["images", "--filter", "dangling=maybe"]);
    assert_eq!(code, 1);
    assert!(err.contains("maybe"), "{err}");
    s.ok(&["rm", "-f", "three"]);
}
