//! Rootless mode (issue 19), first part: an ordinary user's store, user
//! namespace and ID mappings. As root, each test creates users (with or
//! without subordinate ranges) and runs strata as them through `runuser`;
//! the users, their processes (the pause process) and their files go when
//! the test ends, passed or failed.

mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;

/// A user made for one test, removed with everything of theirs on drop.
struct TestUser {
    name: String,
    home: PathBuf,
    uid: u32,
}

impl TestUser {
    /// `name` with subordinate IDs `start..start+count` (uids and gids), or none.
    fn create(name: &str, subids: Option<(u32, u32)>) -> Self {
        remove_user(name);
        let out = Command::new("useradd")
            .args(["-m", "-s", "/bin/sh", "-K", "HOME_MODE=0700"])
            // No subordinate IDs of useradd's choosing: the test gives its own, or none.
            .args(["-K", "SUB_UID_COUNT=0", "-K", "SUB_GID_COUNT=0", name])
            .output()
            .unwrap();
        assert!(out.status.success(), "useradd {name}: {}", String::from_utf8_lossy(&out.stderr));
        if let Some((start, count)) = subids {
            let range = format!("{start}-{}", start + count - 1);
            let out = Command::new("usermod")
                .args(["--add-subuids", &range, "--add-subgids", &range, name])
                .output()
                .unwrap();
            assert!(out.status.success(), "usermod {name}: {}", String::from_utf8_lossy(&out.stderr));
        }
        let home = PathBuf::from(format!("/home/{name}"));
        let uid = fs::metadata(&home).unwrap().uid();
        TestUser { name: name.to_string(), home, uid }
    }

    /// strata run as this user with a clean environment (no --root).
    fn strata(&self, args: &[&str]) -> Output {
        let bin = std::env::var_os("STRATA_TEST_BIN").unwrap_or_else(|| env!("CARGO_BIN_EXE_strata").into());
        Command::new("runuser")
            .args(["-u", &self.name, "--", "env", "-i"])
            .arg(format!("HOME={}", self.home.display()))
            .arg("PATH=/usr/sbin:/usr/bin:/sbin:/bin")
            .arg(bin)
            .args(args)
            .current_dir("/")
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.strata(args);
        assert!(
            o.status.success(),
            "strata {args:?} as {} failed ({:?}):\nstdout: {}\nstderr: {}",
            self.name,
            o.status.code(),
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    }

    fn store(&self) -> PathBuf {
        self.home.join(".local/share/strata")
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        remove_user(&self.name);
        let _ = fs::remove_dir_all(format!("/tmp/strata-{}", self.uid));
    }
}

/// End every process of `name`, then delete the user, home and subordinate IDs.
fn remove_user(name: &str) {
    if Command::new("id").arg(name).output().is_ok_and(|o| o.status.success()) {
        let _ = Command::new("pkill").args(["-KILL", "-u", name]).status();
        // Wait until they are gone (userdel refuses a user with processes).
        while Command::new("pgrep").args(["-u", name]).output().is_ok_and(|o| o.status.success()) {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let _ = Command::new("userdel").args(["-r", "-f", name]).output();
    }
}

/// A docker-archive every user can read: `busybox:latest` whose layer has
/// `home/f` owned by 1000:1000 (when `owned`), in a directory of its own.
fn archive(owned: bool) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::Builder::new().prefix("rootless-").tempdir_in("/tmp").unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let mut layer = LayerTar::new().dir("home").file("etc/hostname", b"box\n");
    if owned {
        layer = layer.owned("home/f", b"theirs\n", 1000, 1000);
    }
    let p = dir.path().join("image.tar");
    fs::write(&p, docker_archive(&[TestImage::new("busybox:latest", vec![layer.build()])])).unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
    (dir, p)
}

/// Files named `name` under `root`.
fn find(root: &Path, name: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in fs::read_dir(&d).unwrap().flatten() {
            let t = e.file_type().unwrap();
            if t.is_dir() {
                todo.push(e.path());
            } else if e.file_name() == name {
                out.push(e.path());
            }
        }
    }
    out
}

#[test]
fn an_ordinary_user_gets_a_store_in_their_home_and_layer_owners_mapped_to_their_subordinate_ids() {
    let u = TestUser::create("strata-rl-a", Some((400000, 65536)));
    let info: serde_json::Value = serde_json::from_str(&u.ok(&["info", "--format", "json"])).unwrap();
    assert_eq!(info["Rootless"], true, "{info}");
    assert_eq!(info["DockerRootDir"], u.store().display().to_string());
    let uid_map = &info["IDMappings"]["UIDMap"];
    assert_eq!(uid_map[0], serde_json::json!({"inside": 0, "outside": u.uid, "count": 1}), "{info}");
    assert_eq!(uid_map[1], serde_json::json!({"inside": 1, "outside": 400000, "count": 65536}), "{info}");

    let (_dir, tar) = archive(true);
    u.ok(&["load", "-q", "-i", tar.to_str().unwrap()]);
    assert!(u.ok(&["images"]).contains("busybox"));
    // On the host: the store is the user's, and the file owned by 1000 inside is 400000 + 999's.
    assert_eq!(fs::metadata(u.store()).unwrap().uid(), u.uid);
    let files = find(&u.store(), "f");
    assert_eq!(files.len(), 1, "{files:?}");
    let md = fs::metadata(&files[0]).unwrap();
    assert_eq!((md.uid(), md.gid()), (400999, 400999), "{}", files[0].display());
    let hostname = find(&u.store(), "hostname");
    assert_eq!(fs::metadata(&hostname[0]).unwrap().uid(), u.uid, "root's files are the user's on the host");
    u.ok(&["rmi", "busybox:latest"]);
    assert_eq!(u.ok(&["images", "-q"]), "");
}

#[test]
fn without_subordinate_ranges_strata_warns_and_maps_the_user_alone() {
    let u = TestUser::create("strata-rl-b", None);
    let o = u.strata(&["info", "--format", "json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("no ranges for strata-rl-b in /etc/subuid and /etc/subgid"), "{err}");
    let info: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(info["IDMappings"]["UIDMap"], serde_json::json!([{"inside": 0, "outside": u.uid, "count": 1}]));
    // An image of root's files loads; one with a file of uid 1000 cannot be stored.
    let (_d1, plain) = archive(false);
    u.ok(&["load", "-q", "-i", plain.to_str().unwrap()]);
    let (_d2, owned) = archive(true);
    let o = u.strata(&["load", "-q", "-i", owned.to_str().unwrap()]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("home/f"), "the error names the entry: {err}");
}

#[test]
fn two_users_stores_are_apart_and_neither_can_read_the_others() {
    let a = TestUser::create("strata-rl-c", Some((500000, 65536)));
    let b = TestUser::create("strata-rl-d", Some((600000, 65536)));
    let (_dir, tar) = archive(false);
    a.ok(&["load", "-q", "-i", tar.to_str().unwrap()]);
    assert_eq!(b.ok(&["images", "-q"]), "", "b's store is empty");
    let peek = Command::new("runuser").args(["-u", &b.name, "--", "ls"]).arg(a.store()).output().unwrap();
    assert!(!peek.status.success(), "b cannot list a's store");
}
