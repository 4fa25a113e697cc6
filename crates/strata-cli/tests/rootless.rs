//! Rootless mode (issue 19): an ordinary user's store, user namespace and
//! ID mappings, containers, builds and pasta networking. As root, each test
//! creates users (with or without subordinate ranges) and runs strata as
//! them through `runuser`; the users, their processes (the pause process,
//! pasta, containers) and their files go when the test ends, passed or
//! failed. Tests that publish ports run the user's strata in a network
//! namespace the test creates.

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
    /// Subordinate IDs given: (start, count).
    subids: Option<(u32, u32)>,
    /// A network namespace the user's commands run in, if the test made one.
    netns: Option<TestNetns>,
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
        TestUser { name: name.to_string(), home, uid, subids, netns: None }
    }

    /// strata run as this user with a clean environment (no --root).
    fn strata(&self, args: &[&str]) -> Output {
        let bin = std::env::var_os("STRATA_TEST_BIN").unwrap_or_else(|| env!("CARGO_BIN_EXE_strata").into());
        self.as_user()
            .args(["env", "-i"])
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

    /// `runuser -u NAME --`, inside the test's network namespace if any.
    fn as_user(&self) -> Command {
        let mut c = match &self.netns {
            Some(n) => {
                let mut c = Command::new("nsenter");
                c.arg(format!("--net={}", n.path.display())).arg("runuser");
                c
            }
            None => Command::new("runuser"),
        };
        c.args(["-u", &self.name, "--"]);
        c
    }

    /// The error of a command that must fail (it failing is asserted).
    fn fails(&self, args: &[&str]) -> String {
        let o = self.strata(args);
        assert!(!o.status.success(), "strata {args:?} as {} was accepted", self.name);
        String::from_utf8_lossy(&o.stderr).into_owned()
    }

    fn ok_bytes(&self, args: &[&str]) -> Vec<u8> {
        let o = self.strata(args);
        assert!(o.status.success(), "strata {args:?} as {}: {}", self.name, String::from_utf8_lossy(&o.stderr));
        o.stdout
    }

    fn store(&self) -> PathBuf {
        self.home.join(".local/share/strata")
    }

    fn runtime_dir(&self) -> PathBuf {
        PathBuf::from(format!("/tmp/strata-{}", self.uid))
    }

    /// Whether a host uid is this user's or one of their subordinate IDs.
    fn owns_uid(&self, uid: u32) -> bool {
        uid == self.uid || self.subids.is_some_and(|(start, count)| uid >= start && uid < start + count)
    }
}

/// A network namespace of the test's own (a bind mount in a temp
/// directory) with loopback up and a veth pair (both ends inside) with a
/// default route, which pasta takes as the template for a container's interface.
struct TestNetns {
    /// Holds the namespace's file; removed after the unmount.
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl TestNetns {
    fn new() -> Self {
        let dir = tempfile::Builder::new().prefix("rootless-netns-").tempdir_in("/tmp").unwrap();
        let path = dir.path().join("ns");
        fs::write(&path, b"").unwrap();
        let made = Command::new("unshare").arg(format!("--net={}", path.display())).arg("true").status().unwrap();
        assert!(made.success(), "unshare --net");
        let ns = TestNetns { _dir: dir, path };
        for args in [
            &["link", "set", "lo", "up"][..],
            &["link", "add", "uplink0", "type", "veth", "peer", "name", "uplink1"],
            &["addr", "add", "10.213.0.2/24", "dev", "uplink0"],
            &["link", "set", "uplink0", "up"],
            &["link", "set", "uplink1", "up"],
            &["route", "add", "default", "via", "10.213.0.1"],
        ] {
            let o = Command::new("nsenter")
                .arg(format!("--net={}", ns.path.display()))
                .arg("ip")
                .args(args)
                .output()
                .unwrap();
            assert!(o.status.success(), "ip {args:?}: {}", String::from_utf8_lossy(&o.stderr));
        }
        ns
    }

    fn command(&self, program: &str) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net={}", self.path.display())).arg(program);
        c
    }
}

impl Drop for TestNetns {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.path).status();
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        // Container processes running as a subordinate ID are not the user's
        // to pkill: end every process of any of the user's IDs first.
        kill_uids(|uid| self.owns_uid(uid));
        remove_user(&self.name);
        let _ = fs::remove_dir_all(self.runtime_dir());
    }
}

/// The processes whose real uid `pick` chooses.
fn pids_of(pick: impl Fn(u32) -> bool) -> Vec<i32> {
    let mut v = Vec::new();
    for e in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else { continue };
        let Ok(status) = fs::read_to_string(e.path().join("status")) else { continue };
        let uid = status.lines().find_map(|l| l.strip_prefix("Uid:")).and_then(|l| l.split_whitespace().next());
        if uid.and_then(|u| u.parse().ok()).is_some_and(&pick) {
            v.push(pid);
        }
    }
    v
}

fn kill_uids(pick: impl Fn(u32) -> bool) {
    let pick = &pick;
    for _ in 0..500 {
        let pids = pids_of(pick);
        if pids.is_empty() {
            return;
        }
        for pid in pids {
            // SAFETY: kill(2) on a process of the test's own user.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
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
    // A device node, as debootstrap trees have: none can be made in a user namespace.
    let mut layer = LayerTar::new().dir("home").file("etc/hostname", b"box\n").dir("dev").char_device("dev/null", 1, 3);
    if owned {
        layer = layer.owned("home/f", b"theirs\n", 1000, 1000);
    }
    let p = dir.path().join("image.tar");
    fs::write(&p, docker_archive(&[TestImage::new("busybox:latest", vec![layer.build()])])).unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
    (dir, p)
}

/// A docker-archive every user can read: `busybox:latest` with a shell
/// (Debian's busybox-static), `home/f` owned by 1000:1000 and
/// `www/index.html`.
fn runnable_archive() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::Builder::new().prefix("rootless-").tempdir_in("/tmp").unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let top = LayerTar::new()
        .dir("home")
        .owned("home/f", b"theirs\n", 1000, 1000)
        .dir("www")
        .file("www/index.html", b"hello-rootless\n");
    let p = dir.path().join("image.tar");
    fs::write(&p, docker_archive(&[TestImage::new("busybox:latest", vec![busybox_layer(), top.build()])])).unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
    (dir, p)
}

/// A directory in /tmp that everyone may read (a context, a bind mount's source).
fn public_dir(prefix: &str) -> tempfile::TempDir {
    let dir = tempfile::Builder::new().prefix(prefix).tempdir_in("/tmp").unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// Poll until `done` holds, for at most 20 s.
fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let t0 = std::time::Instant::now();
    while !done() {
        assert!(t0.elapsed() < std::time::Duration::from_secs(20), "timed out waiting for {what}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Every path on the host's writable file systems owned by one of `u`'s IDs.
fn files_of(u: &TestUser) -> std::collections::BTreeSet<String> {
    let mut find = Command::new("find");
    find.args(["/", "/dev/shm", "-xdev", "(", "-uid", &u.uid.to_string()]);
    if let Some((start, count)) = u.subids {
        find.args(["-o", "(", "-uid", &format!("+{}", start - 1), "-uid", &format!("-{}", start + count), ")"]);
    }
    let o = find.args([")", "-print"]).output().unwrap();
    // find exits 1 when a file vanished mid-walk (other tests run alongside): its output stands.
    assert!(
        !o.stdout.is_empty(),
        "find found nothing of {} (not even the home): {}",
        u.name,
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap().lines().map(str::to_string).collect()
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
fn an_ordinary_user_gets_a_store_in_their_home_with_owners_mapped_to_their_subordinate_ids_and_no_devices() {
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
    // The device was left out of the layer's directory, yet the layer checks
    // clean and saves with its digest.
    assert!(find(&u.store(), "null").is_empty());
    let check = u.strata(&["system", "check"]);
    assert!(
        check.status.success(),
        "{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(!u.ok_bytes(&["save", "busybox:latest"]).is_empty());
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
    let err = u.fails(&["load", "-q", "-i", owned.to_str().unwrap()]);
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
    // Not only through the home's mode: each store and runtime directory is the user's alone.
    for u in [&a, &b] {
        for d in [u.store(), u.runtime_dir()] {
            let md = fs::metadata(&d).unwrap();
            assert_eq!((md.uid(), md.mode() & 0o777), (u.uid, 0o700), "{}", d.display());
        }
    }
}

#[test]
fn a_users_container_is_root_inside_and_runs_as_the_users_uid_on_the_host() {
    let u = TestUser::create("strata-rl-e", Some((410000, 65536)));
    let (_dir, tar) = runnable_archive();
    u.ok(&["load", "-q", "-i", tar.to_str().unwrap()]);
    let out = u.ok(&["run", "--rm", "--network", "none", "busybox", "sh", "-c", "id -u; stat -c %u:%g /home/f"]);
    assert_eq!(out, "0\n1000:1000\n");

    let id = u.ok(&["run", "-d", "--network", "none", "busybox", "sleep", "1000"]).trim().to_string();
    let pid = u.ok(&["inspect", "--format", "{{.State.Pid}}", &id]).trim().to_string();
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uids = status.lines().find_map(|l| l.strip_prefix("Uid:")).unwrap();
    let want = format!("{0} {0} {0} {0}", u.uid);
    assert_eq!(uids.split_whitespace().collect::<Vec<_>>().join(" "), want, "the container's root on the host");
    assert_eq!(u.ok(&["exec", &id, "id", "-u"]), "0\n");
    u.ok(&["rm", "-f", &id]);
    assert_eq!(u.ok(&["ps", "-a", "-q"]), "");
}

#[test]
fn a_bind_mount_of_a_host_directory_the_user_cannot_write_is_read_only_to_the_container() {
    let u = TestUser::create("strata-rl-g", Some((430000, 65536)));
    let (_dir, tar) = runnable_archive();
    u.ok(&["load", "-q", "-i", tar.to_str().unwrap()]);
    // Root's directory, 0755: the container's root is not the host's.
    let roots = public_dir("rootless-roots-");
    let o = u.strata(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        &format!("{}:/m", roots.path().display()),
        "busybox",
        "touch",
        "/m/x",
    ]);
    assert!(!o.status.success(), "touch in root's directory succeeded");
    assert!(String::from_utf8_lossy(&o.stderr).contains("Permission denied"), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(!roots.path().join("x").exists());
    // The same mount of the user's own directory is writable, and the file is theirs on the host.
    let mine = public_dir("rootless-mine-");
    std::os::unix::fs::chown(mine.path(), Some(u.uid), None).unwrap();
    let v = format!("{}:/m", mine.path().display());
    u.ok(&["run", "--rm", "--network", "none", "-v", &v, "busybox", "touch", "/m/x"]);
    assert_eq!(fs::metadata(mine.path().join("x")).unwrap().uid(), u.uid);
}

#[test]
fn a_users_published_port_serves_on_loopback_until_the_container_is_removed() {
    let mut u = TestUser::create("strata-rl-f", Some((420000, 65536)));
    u.netns = Some(TestNetns::new());
    let (_dir, tar) = runnable_archive();
    u.ok(&["load", "-q", "-i", tar.to_str().unwrap()]);
    let id = u.ok(&["run", "-d", "-p", "8080:80", "busybox", "busybox", "httpd", "-f", "-p", "80", "-h", "/www"]);
    let id = id.trim();
    assert_eq!(u.ok(&["port", id]), "80/tcp -> 0.0.0.0:8080\n");
    let netns = u.netns.as_ref().unwrap();
    let fetch = || netns.command("curl").args(["-sf", "--max-time", "5", "http://127.0.0.1:8080/"]).output().unwrap();
    let mut body = String::new();
    wait_for("httpd behind pasta to answer", || {
        let o = fetch();
        body = String::from_utf8_lossy(&o.stdout).into_owned();
        o.status.success()
    });
    assert_eq!(body, "hello-rootless\n");
    let pasta = || {
        pids_of(|uid| u.owns_uid(uid))
            .into_iter()
            .filter(|p| {
                // Debian's pasta runs as passt.avx2 (its comm): its argv[0] says pasta.
                fs::read(format!("/proc/{p}/cmdline")).is_ok_and(|c| c.starts_with(b"pasta\0"))
            })
            .count()
    };
    assert_eq!(pasta(), 1, "one pasta for the container");
    u.ok(&["rm", "-f", id]);
    wait_for("pasta to end with the container", || pasta() == 0);
    assert!(!fetch().status.success(), "the port is closed");
}

#[test]
fn privileged_ports_privileged_mode_resource_flags_cgroup_commands_and_networks_are_refused_and_leave_nothing() {
    let mut u = TestUser::create("strata-rl-h", Some((440000, 65536)));
    u.netns = Some(TestNetns::new());
    let (_dir, tar) = runnable_archive();
    u.ok(&["load", "-q", "-i", tar.to_str().unwrap()]);
    for (flags, want) in [
        (&["-p", "80:80"][..], "ports below 1024 are privileged"),
        (&["--privileged"], "--privileged"),
        (&["-m", "64m"], "--memory"),
        (&["--cpus", "1", "--pids-limit", "10"], "--cpus, --pids-limit"),
    ] {
        let mut args = vec!["run", "--rm"];
        args.extend_from_slice(flags);
        args.extend(["busybox", "true"]);
        let err = u.fails(&args);
        assert!(err.contains(want), "{flags:?}: {err}");
        assert_eq!(u.ok(&["ps", "-a", "-q"]), "", "{flags:?} left a container");
    }
    // A running container cannot be frozen or limited either.
    let id = u.ok(&["run", "-d", "--network", "none", "busybox", "sleep", "1000"]);
    for cmd in
        [&["pause", id.trim()][..], &["update", "--memory", "64m", id.trim()], &["stats", "--no-stream", id.trim()]]
    {
        let err = u.fails(cmd);
        assert!(err.contains(&format!("{} is not available rootless", cmd[0])), "{cmd:?}: {err}");
    }
    assert_eq!(u.ok(&["inspect", "--format", "{{.State.Status}}", id.trim()]), "running\n");
    // No user networks: neither made nor joined.
    for cmd in [&["network", "create", "mynet"][..], &["run", "--rm", "--network", "bridge", "busybox", "true"]] {
        let err = u.fails(cmd);
        assert!(err.contains("networks are not available rootless"), "{cmd:?}: {err}");
    }
    assert!(!u.ok(&["network", "ls"]).contains("mynet"));
}

#[test]
fn a_user_pulls_builds_runs_with_a_volume_copies_commits_pushes_saves_and_loads_and_writes_nothing_outside_their_dirs()
{
    let reg = common::registry::Registry::start();
    let (root, base) = common::registry::pushed_busybox(&reg);

    let u = TestUser::create("strata-rl-i", Some((450000, 65536)));
    let store = u.store();
    let before = files_of(&u);
    let ctx = public_dir("rootless-ctx-");
    fs::write(
        ctx.path().join("Dockerfile"),
        format!("FROM {base}\nRUN mkdir /data && echo made > /data/f && chown 1000:1000 /data/f\n"),
    )
    .unwrap();
    u.ok(&["pull", "-q", &base]);
    u.ok(&["build", "-q", "-t", "mine", ctx.path().to_str().unwrap()]);
    let cmd = ["stat", "-c", "%u:%g", "/data/f"];
    assert_eq!(u.ok(&[&["run", "--rm", "--network", "none", "mine"][..], &cmd].concat()), "1000:1000\n");

    // A named volume belongs to the mapped root (the user on the host) and keeps other owners.
    let vol = ["run", "--rm", "--network", "none", "-v", "vol:/v", "mine", "sh", "-c"];
    u.ok(&[&vol[..], &["echo v > /v/x && chown 1000:1000 /v/x"]].concat());
    assert_eq!(u.ok(&[&vol[..], &["stat -c %u:%g /v/x"]].concat()), "1000:1000\n");
    let vol_dir = store.join("volumes/vol/_data");
    assert_eq!(fs::metadata(&vol_dir).unwrap().uid(), u.uid, "{}", vol_dir.display());
    assert_eq!(fs::metadata(vol_dir.join("x")).unwrap().uid(), 450999);
    u.ok(&["volume", "rm", "vol"]);

    u.ok(&["run", "--name", "c1", "--network", "none", "mine", "sh", "-c", "echo more > /data/g"]);
    u.ok(&["commit", "c1", "mine:2"]);
    let out = u.home.join("out");
    let o = u.as_user().args(["mkdir"]).arg(&out).output().unwrap();
    assert!(o.status.success());
    u.ok(&["cp", "c1:/data/g", out.join("g").to_str().unwrap()]);
    assert_eq!(fs::read_to_string(out.join("g")).unwrap(), "more\n");
    assert_eq!(fs::metadata(out.join("g")).unwrap().uid(), u.uid);
    // Pushed, the layers keep the owners the container saw: root pulls 1000:1000.
    let pushed = format!("{}/mine:2", reg.addr);
    u.ok(&["tag", "mine:2", &pushed]);
    u.ok(&["push", "-q", &pushed]);
    root.ok(&["pull", "-q", &pushed]);
    let seen = root.ok(&["run", "--rm", "--network", "none", &pushed, "stat", "-c", "%u:%g", "/data/f"]);
    assert_eq!(seen, "1000:1000\n");
    u.ok(&["rmi", &pushed]);
    let saved = out.join("mine.tar");
    u.ok(&["save", "-o", saved.to_str().unwrap(), "mine:2"]);
    u.ok(&["rm", "c1"]);
    u.ok(&["rmi", "mine:2", "mine", &base]);
    assert_eq!(u.ok(&["images", "-q"]), "");
    u.ok(&["load", "-q", "-i", saved.to_str().unwrap()]);
    let owners = u.ok(&["run", "--rm", "--network", "none", "mine:2", "stat", "-c", "%u:%g %n", "/data/f", "/data/g"]);
    assert_eq!(owners, "1000:1000 /data/f\n0:0 /data/g\n");
    u.ok(&["system", "prune", "-a", "-f"]);
    assert_eq!(u.ok(&["images", "-q"]), "");
    assert_eq!(u.ok(&["ps", "-a", "-q"]), "");

    // What the user's IDs own now and did not before lies in the store, the
    // runtime directory, the output asked for, or the store's parents.
    let after = files_of(&u);
    let run = u.runtime_dir();
    let stray: Vec<&String> = after
        .difference(&before)
        .filter(|p| {
            let p = Path::new(p.as_str());
            !(p.starts_with(&store) || p.starts_with(&run) || p.starts_with(&out) || store.starts_with(p))
        })
        .collect();
    assert!(stray.is_empty(), "written outside the user's directories: {stray:?}");
}
