//! Container records: a recorded pid is trusted only while it is still the
//! process strata started (the kernel reuses pids), and a database made by
//! an older strata is migrated when opened.

mod common;

use std::process::{Command, Stdio};

use common::*;

fn sql(db: &std::path::Path, statements: &str) -> String {
    let o = Command::new("python3")
        .args(["-c", "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); r=c.executescript(sys.argv[2]) if ';' in sys.argv[2] else c.execute(sys.argv[2]).fetchall(); c.commit(); print(r if isinstance(r, list) else '')"])
        .arg(db)
        .arg(statements)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

/// A host process the test owns, killed when dropped.
struct Bystander(std::process::Child);

impl Drop for Bystander {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn kill_does_not_signal_a_process_that_only_reuses_the_recorded_pid() {
    let s = Strata::new("overlay");
    let a = s.write("images.tar", &docker_archive(&[TestImage::new("busybox:latest", vec![busybox_layer()])]));
    s.ok(&["load", "-q", "-i", a.to_str().unwrap()]);
    s.ok(&["create", "--name", "victim", "busybox", "sleep", "600"]);
    let mut other = Bystander(Command::new("sleep").arg("600").stdin(Stdio::null()).spawn().unwrap());
    let pid = other.0.id();
    // The record as if the container's process had died unrecorded and the kernel had
    // given its pid to `other`: the recorded identity (pid and start time) is not other's.
    sql(
        &s.root().join("strata.db"),
        &format!("UPDATE containers SET state = 'running', pid = {pid}, process = '{pid}:1' WHERE name = 'victim';"),
    );
    let (code, _, err) = s.code(&["kill", "victim"]);
    assert_ne!(code, 0, "kill reported success");
    assert!(err.contains("not running"), "{err}");
    assert!(other.0.try_wait().unwrap().is_none(), "the bystander process was signalled");
    let state = s.ok(&["container", "inspect", "victim"]);
    assert!(state.contains("\"exited\""), "the container is found exited: {state}");
}

#[test]
fn a_database_from_before_schema_versions_is_migrated() {
    let s = Strata::new("overlay");
    s.ok(&["images", "-q"]);
    let db = s.root().join("strata.db");
    // The layers and containers tables as the first schema had them, and no version.
    sql(&db, "DROP TABLE layers; CREATE TABLE layers (chain_id TEXT PRIMARY KEY, diff_id TEXT NOT NULL, parent TEXT, blob TEXT NOT NULL, blob_size INTEGER NOT NULL, media_type TEXT NOT NULL, diff_size INTEGER NOT NULL DEFAULT 0, size INTEGER NOT NULL DEFAULT 0, split INTEGER NOT NULL DEFAULT 0, state TEXT NOT NULL CHECK (state IN ('incomplete', 'ready')), owner TEXT, created INTEGER NOT NULL);");
    sql(&db, "DROP TABLE containers; CREATE TABLE containers (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, image_id TEXT NOT NULL REFERENCES images(id), created INTEGER NOT NULL, state TEXT NOT NULL DEFAULT 'incomplete', pid INTEGER, exit_code INTEGER, started INTEGER, finished INTEGER, config TEXT NOT NULL DEFAULT '{}'); PRAGMA user_version = 0;");
    s.ok(&["ps", "-a"]);
    assert_eq!(sql(&db, "PRAGMA user_version").trim(), "[(4,)]");
    assert!(sql(&db, "SELECT name FROM pragma_table_info('containers')").contains("'process'"));
    // v3: containers record their waiter; networks, containers' endpoints on them, network setups to tear down, events.
    assert!(sql(&db, "SELECT name FROM pragma_table_info('containers')").contains("'waiter'"));
    // v4: layers record the boot they were made in until they are synced.
    assert!(sql(&db, "SELECT name FROM pragma_table_info('layers')").contains("'unsynced_boot'"));
    let tables = sql(&db, "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name");
    for t in ["'endpoints'", "'events'", "'network_setups'", "'networks'"] {
        assert!(tables.contains(t), "{t} in {tables}");
    }
}

#[test]
fn a_container_record_that_cannot_be_read_is_an_error_not_a_default() {
    let s = Strata::new("overlay");
    let a = s.write("images.tar", &docker_archive(&[TestImage::new("busybox:latest", vec![busybox_layer()])]));
    s.ok(&["load", "-q", "-i", a.to_str().unwrap()]);
    s.ok(&["create", "--name", "broken", "-v", "/anon", "busybox", "true"]);
    let volumes = s.ok(&["volume", "ls", "-q"]);
    assert_eq!(volumes.lines().count(), 1);
    sql(&s.root().join("strata.db"), "UPDATE containers SET config = '{not json' WHERE name = 'broken';");
    // rm -v must know the volumes to remove: it says what it cannot read instead of leaking them.
    let (code, _, err) = s.code(&["rm", "-v", "broken"]);
    assert_ne!(code, 0);
    assert!(err.contains("broken") && err.contains("run configuration"), "{err}");
    // Whether the anonymous volume is in use cannot be known either: it is not removed as unused.
    let (code, _, _) = s.code(&["volume", "rm", volumes.trim()]);
    assert_ne!(code, 0, "a volume a broken record may use was removed");
    s.ok(&["rm", "broken"]);
}
