//! Test harness: a temp store driven through the real `strata` binary,
//! builders for layer tars and image archives, and tree snapshots to
//! compare file systems and stores.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sha2::{Digest as _, Sha256};

pub mod docker;
pub mod registry;

pub fn sha256_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

pub const DRIVERS: [&str; 2] = ["overlay", "copy"];

/// A temp store and the binary, run inside a network namespace of the
/// test's own (containers go on strata's default bridge network: its
/// bridge, veths and firewall rules live and die with that namespace, never
/// on the host's).
pub struct Strata {
    pub dir: tempfile::TempDir,
    pub driver: String,
    /// The test's network namespace (a bind mount), unless on the host's.
    pub netns: Option<PathBuf>,
}

impl Strata {
    pub fn new(driver: &str) -> Self {
        let dir = tempfile::Builder::new().prefix("strata-test-").tempdir_in(test_tmp()).unwrap();
        let netns = dir.path().join("netns");
        fs::write(&netns, b"").unwrap();
        let made = Command::new("unshare").arg(format!("--net={}", netns.display())).arg("true").status().unwrap();
        assert!(made.success(), "unshare --net");
        let up = Command::new("nsenter")
            .arg(format!("--net={}", netns.display()))
            .args(["ip", "link", "set", "lo", "up"])
            .status()
            .unwrap();
        assert!(up.success(), "lo up in the test's namespace");
        Strata { dir, driver: driver.to_string(), netns: Some(netns) }
    }

    /// A store whose commands run in the host's network namespace (to reach
    /// a registry on the host's loopback); its containers must not use a network.
    pub fn on_host_network(driver: &str) -> Self {
        let dir = tempfile::Builder::new().prefix("strata-test-").tempdir_in(test_tmp()).unwrap();
        Strata { dir, driver: driver.to_string(), netns: None }
    }

    /// A command run inside the test's network namespace.
    pub fn in_netns(&self, program: &str) -> Command {
        match &self.netns {
            Some(n) => {
                let mut c = Command::new("nsenter");
                c.arg(format!("--net={}", n.display())).arg(program);
                c
            }
            None => Command::new(program),
        }
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    pub fn command(&self) -> Command {
        // STRATA_TEST_BIN runs the suite against another build (an older one, to see a test fail).
        let bin = std::env::var_os("STRATA_TEST_BIN").unwrap_or_else(|| env!("CARGO_BIN_EXE_strata").into());
        // nsenter joins the namespace and execs: the child's pid is strata's.
        let mut c = self.in_netns(&bin.to_string_lossy());
        c.arg("--root").arg(self.root()).arg("--storage-driver").arg(&self.driver);
        c.env_remove("STRATA_ROOT");
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command().args(args).output().unwrap()
    }

    /// Run and require success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "strata {args:?} failed ({:?}):\nstdout: {}\nstderr: {}",
            o.status.code(),
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    }

    /// Run; returns (exit code, stdout, stderr).
    pub fn code(&self, args: &[&str]) -> (i32, String, String) {
        let o = self.run(args);
        let text = |b: &[u8]| String::from_utf8_lossy(b).to_string();
        (o.status.code().unwrap_or(-1), text(&o.stdout), text(&o.stderr))
    }

    /// Run and require failure; returns (exit code, stderr).
    pub fn fails(&self, args: &[&str]) -> (i32, String) {
        let o = self.run(args);
        assert!(
            !o.status.success(),
            "strata {args:?} should have failed; stdout: {}",
            String::from_utf8_lossy(&o.stdout)
        );
        (o.status.code().unwrap_or(-1), String::from_utf8_lossy(&o.stderr).to_string())
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.path(name);
        fs::write(&p, bytes).unwrap();
        p
    }

    /// The image ID (full) of a name.
    pub fn image_id(&self, name: &str) -> String {
        let v: serde_json::Value = serde_json::from_str(&self.ok(&["inspect", name])).unwrap();
        v[0]["Id"].as_str().unwrap().to_string()
    }

    pub fn layer_dirs(&self) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(self.root().join("layers"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect();
        v.sort();
        v
    }

    pub fn blobs(&self) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(self.root().join("blobs/sha256"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect();
        v.sort();
        v
    }

    pub fn tmp_entries(&self) -> Vec<String> {
        fs::read_dir(self.root().join("tmp"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect()
    }

    /// Everything a user could see of the store: images, blobs and layer trees.
    pub fn state(&self) -> StoreState {
        StoreState {
            images: self.ok(&["images", "--no-trunc", "--format", "json"]),
            blobs: tree(&self.root().join("blobs")),
            layers: tree(&self.root().join("layers")),
        }
    }

    /// Mount an image and return a snapshot of its tree, then unmount.
    pub fn image_tree(&self, name: &str) -> BTreeMap<String, Node> {
        let m = self.ok(&["image", "mount", name]);
        let t = tree(Path::new(m.trim()));
        self.ok(&["image", "unmount", name]);
        t
    }
}

impl Drop for Strata {
    fn drop(&mut self) {
        // Containers still running (a test that failed midway, or left one
        // running): their processes live in namespaces of their own, which
        // the kill below does not reach.
        if let Ok(o) = self.command().args(["ps", "-q", "--no-trunc"]).output() {
            let ids: Vec<String> = String::from_utf8_lossy(&o.stdout).lines().map(str::to_string).collect();
            if !ids.is_empty() {
                let _ = self.command().args(["rm", "-f"]).args(&ids).output();
            }
        }
        // aardvark-dns, started by netavark for a network with DNS, outlives the
        // commands that started it: stop any running in the test's namespace.
        if let Some(ns) = &self.netns {
            if let Ok(md) = fs::metadata(ns) {
                use std::os::unix::fs::MetadataExt;
                for e in fs::read_dir("/proc").into_iter().flatten().flatten() {
                    let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else { continue };
                    if fs::metadata(e.path().join("ns/net")).is_ok_and(|m| m.ino() == md.ino() && m.dev() == md.dev()) {
                        // SAFETY: kill(2) on a process in the test's own namespace.
                        unsafe { libc::kill(pid, libc::SIGKILL) };
                    }
                }
            }
        }
        // Never leave a mount behind, even when a test failed midway.
        if let Ok(info) = fs::read_to_string("/proc/self/mountinfo") {
            let root = self.root().display().to_string();
            let mut targets: Vec<&str> =
                info.lines().filter_map(|l| l.split(' ').nth(4)).filter(|t| t.starts_with(&root)).collect();
            targets.sort_by_key(|t| std::cmp::Reverse(t.len()));
            for t in targets {
                let _ = Command::new("umount").arg("-l").arg(t).status();
            }
        }
        if let Some(ns) = &self.netns {
            let _ = Command::new("umount").arg("-l").arg(ns).status();
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
pub struct StoreState {
    pub images: String,
    pub blobs: BTreeMap<String, Node>,
    pub layers: BTreeMap<String, Node>,
}

/// podman or buildah with a store of its own in a temp dir (runroot paths
/// must be short: podman refuses over 50 characters), vfs storage.
pub struct Peer {
    program: &'static str,
    pub args: Vec<String>,
    _dir: tempfile::TempDir,
}

impl Peer {
    pub fn new(program: &'static str) -> Self {
        let dir = tempfile::Builder::new().prefix("pr").tempdir_in("/tmp").unwrap();
        let args = vec![
            "--root".into(),
            dir.path().join("r").display().to_string(),
            "--runroot".into(),
            dir.path().join("x").display().to_string(),
            "--storage-driver".into(),
            "vfs".into(),
        ];
        Peer { program, args, _dir: dir }
    }

    /// Run and require success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = Command::new(self.program).args(&self.args).args(args).output().expect("installed by .ci/deps");
        assert!(o.status.success(), "{} {args:?}: {}", self.program, String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap()
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        // vfs layers are plain directories: only image and container mounts can be left.
        let cleanup: &[&[&str]] = match self.program {
            "buildah" => &[&["rm", "--all"], &["umount", "--all"]],
            _ => &[&["image", "unmount", "--all"]],
        };
        for c in cleanup {
            let _ = Command::new(self.program).args(&self.args).args(*c).output();
        }
    }
}

/// Run a test body (a function taking the driver name) once per snapshot driver.
#[macro_export]
macro_rules! both_drivers {
    ($($name:ident),* $(,)?) => {
        mod overlay { $( #[test] fn $name() { super::$name("overlay") } )* }
        mod copy { $( #[test] fn $name() { super::$name("copy") } )* }
    };
}

/// Pids of live (not zombie) processes whose command line is exactly `argv`.
#[allow(dead_code)]
pub fn processes(argv: &[&str]) -> Vec<String> {
    let want: Vec<u8> = argv.iter().flat_map(|a| a.bytes().chain([0])).collect();
    fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().bytes().all(|b| b.is_ascii_digit()))
        .filter(|e| fs::read(e.path().join("cmdline")).is_ok_and(|c| c == want))
        .filter(|e| !fs::read_to_string(e.path().join("stat")).unwrap_or_default().contains(") Z "))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

/// The parent of process `pid` (field 4 of /proc/PID/stat).
#[allow(dead_code)]
pub fn parent_of(pid: &str) -> String {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    stat[stat.rfind(')').unwrap() + 2..].split(' ').nth(1).unwrap().to_string()
}

/// A tar entry's kind ('d', 'l' for a symlink, 'h' for a hard link, 'f',
/// else the type's initial) and its content's hash or its link's target.
#[allow(dead_code)]
pub fn tar_entry_data<R: Read>(e: &mut tar::Entry<'_, R>) -> (char, String) {
    match e.header().entry_type() {
        tar::EntryType::Directory => ('d', String::new()),
        tar::EntryType::Symlink => ('l', e.link_name().unwrap().unwrap().display().to_string()),
        tar::EntryType::Link => ('h', e.link_name().unwrap().unwrap().display().to_string()),
        tar::EntryType::Regular => {
            let mut b = Vec::new();
            e.read_to_end(&mut b).unwrap();
            ('f', sha256_hex(&b))
        }
        t => (format!("{t:?}").chars().next().unwrap(), String::new()),
    }
}

/// `n` bytes that do not compress (xorshift), different for every seed.
#[allow(dead_code)]
pub fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Temp dirs on the disk the store uses (not a tmpfs: overlayfs needs xattrs).
pub fn test_tmp() -> PathBuf {
    let p = std::env::var_os("STRATA_TEST_TMP")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/tmp/strata-tests"));
    fs::create_dir_all(&p).unwrap();
    p
}

/// What a test compares of one file-system entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub kind: char,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// File content hash, symlink target, or device numbers.
    pub data: String,
    pub ino: u64,
}

/// Snapshot a tree (not following symlinks). Inode numbers are kept but
/// not compared by `==` of maps unless the test wants it.
pub fn tree(root: &Path) -> BTreeMap<String, Node> {
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Node>) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    for e in rd {
        let p = e.unwrap().path();
        let md = fs::symlink_metadata(&p).unwrap();
        let ft = md.file_type();
        let (kind, data) = if ft.is_dir() {
            ('d', String::new())
        } else if ft.is_symlink() {
            ('l', fs::read_link(&p).unwrap().display().to_string())
        } else if ft.is_file() {
            let mut b = Vec::new();
            fs::File::open(&p).unwrap().read_to_end(&mut b).unwrap();
            ('f', sha256_hex(&b))
        } else if ft.is_char_device() {
            ('c', format!("{}", md.rdev()))
        } else if ft.is_block_device() {
            ('b', format!("{}", md.rdev()))
        } else {
            ('p', String::new())
        };
        let rel = p.strip_prefix(root).unwrap().display().to_string();
        out.insert(rel, Node { kind, mode: md.mode() & 0o7777, uid: md.uid(), gid: md.gid(), data, ino: md.ino() });
        if ft.is_dir() {
            walk(root, &p, out);
        }
    }
}

/// Files of a tree without inode numbers, for equality across stores.
pub fn shape(t: &BTreeMap<String, Node>) -> BTreeMap<String, (char, u32, u32, u32, String)> {
    t.iter().map(|(k, n)| (k.clone(), (n.kind, n.mode, n.uid, n.gid, n.data.clone()))).collect()
}

/// Builds a layer tar entry by entry.
#[derive(Default)]
pub struct LayerTar {
    b: Option<tar::Builder<Vec<u8>>>,
}

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_700_000_000);
    h.set_size(size);
    h
}

impl LayerTar {
    pub fn new() -> Self {
        LayerTar { b: Some(tar::Builder::new(Vec::new())) }
    }
    fn b(&mut self) -> &mut tar::Builder<Vec<u8>> {
        self.b.as_mut().unwrap()
    }
    pub fn dir(mut self, path: &str) -> Self {
        let mut h = header(tar::EntryType::Directory, 0o755, 0);
        self.b().append_data(&mut h, path, std::io::empty()).unwrap();
        self
    }
    pub fn file(self, path: &str, content: &[u8]) -> Self {
        self.file_mode(path, content, 0o644)
    }
    pub fn file_mode(mut self, path: &str, content: &[u8], mode: u32) -> Self {
        let mut h = header(tar::EntryType::Regular, mode, content.len() as u64);
        self.b().append_data(&mut h, path, content).unwrap();
        self
    }
    pub fn owned(mut self, path: &str, content: &[u8], uid: u64, gid: u64) -> Self {
        let mut h = header(tar::EntryType::Regular, 0o600, content.len() as u64);
        h.set_uid(uid);
        h.set_gid(gid);
        self.b().append_data(&mut h, path, content).unwrap();
        self
    }
    pub fn whiteout(self, path: &str) -> Self {
        let (dir, name) = path.rsplit_once('/').map(|(d, n)| (format!("{d}/"), n)).unwrap_or((String::new(), path));
        self.file(&format!("{dir}.wh.{name}"), b"")
    }
    pub fn opaque(self, dir: &str) -> Self {
        self.file(&format!("{dir}/.wh..wh..opq"), b"")
    }
    pub fn symlink(mut self, path: &str, target: &str) -> Self {
        let mut h = header(tar::EntryType::Symlink, 0o777, 0);
        self.b().append_link(&mut h, path, target).unwrap();
        self
    }
    pub fn hardlink(mut self, path: &str, target: &str) -> Self {
        let mut h = header(tar::EntryType::Link, 0o644, 0);
        self.b().append_link(&mut h, path, target).unwrap();
        self
    }
    pub fn fifo(mut self, path: &str) -> Self {
        let mut h = header(tar::EntryType::Fifo, 0o600, 0);
        self.b().append_data(&mut h, path, std::io::empty()).unwrap();
        self
    }
    /// A character device `major:minor`, 0666 (as /dev/null in a debootstrap tree).
    pub fn char_device(mut self, path: &str, major: u32, minor: u32) -> Self {
        let mut h = header(tar::EntryType::Char, 0o666, 0);
        h.set_device_major(major).unwrap();
        h.set_device_minor(minor).unwrap();
        h.set_cksum();
        self.b().append_data(&mut h, path, std::io::empty()).unwrap();
        self
    }
    pub fn xattr_file(mut self, path: &str, content: &[u8], key: &str, value: &[u8]) -> Self {
        let k = format!("SCHILY.xattr.{key}");
        self.b().append_pax_extensions([(k.as_str(), value)]).unwrap();
        self.file(path, content)
    }
    /// An entry whose name is written raw into the header (for `../` names
    /// the tar crate's builder would refuse).
    pub fn raw_file(mut self, name: &str, content: &[u8]) -> Self {
        let mut h = header(tar::EntryType::Regular, 0o644, content.len() as u64);
        let gnu = h.as_gnu_mut().unwrap();
        gnu.name = [0; 100];
        gnu.name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_cksum();
        self.b().append(&h, content).unwrap();
        self
    }
    pub fn build(mut self) -> Vec<u8> {
        self.b.take().unwrap().into_inner().unwrap()
    }
}

/// An image for [`docker_archive`]: tags and layer tars (bottom first).
pub struct TestImage {
    pub tags: Vec<String>,
    pub layers: Vec<Vec<u8>>,
    pub created_by: Vec<String>,
    pub entrypoint: Option<Vec<String>>,
    pub volumes: Vec<String>,
}

impl TestImage {
    pub fn new(tag: &str, layers: Vec<Vec<u8>>) -> Self {
        let created_by = (0..layers.len()).map(|i| format!("layer {i}")).collect();
        TestImage { tags: vec![tag.to_string()], layers, created_by, entrypoint: None, volumes: Vec::new() }
    }
}

/// The config JSON of a test image (its digest is the image ID).
pub fn config_for(img: &TestImage) -> Vec<u8> {
    let diff_ids: Vec<String> = img.layers.iter().map(|l| format!("sha256:{}", sha256_hex(l))).collect();
    let mut history: Vec<serde_json::Value> = img
        .created_by
        .iter()
        .map(|c| serde_json::json!({"created": "2024-01-01T00:00:00Z", "created_by": c}))
        .collect();
    history.push(
        serde_json::json!({"created": "2024-01-01T00:00:00Z", "created_by": "CMD [\"sh\"]", "empty_layer": true}),
    );
    serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "created": "2024-01-01T00:00:00Z",
        "config": {"Env": ["PATH=/bin"], "Cmd": ["sh"], "Entrypoint": img.entrypoint,
                   "Volumes": img.volumes.iter().map(|v| (v.clone(), serde_json::json!({}))).collect::<serde_json::Map<_, _>>()},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": history,
    }))
    .unwrap()
}

/// A docker-archive tar holding the images.
pub fn docker_archive(images: &[TestImage]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut manifest = Vec::new();
    let put = |b: &mut tar::Builder<Vec<u8>>, name: &str, data: &[u8]| {
        let mut h = header(tar::EntryType::Regular, 0o644, data.len() as u64);
        b.append_data(&mut h, name, data).unwrap();
    };
    for img in images {
        let config = config_for(img);
        let config_name = format!("{}.json", sha256_hex(&config));
        put(&mut b, &config_name, &config);
        let mut names = Vec::new();
        for l in &img.layers {
            let n = format!("{}/layer.tar", sha256_hex(l));
            put(&mut b, &n, l);
            names.push(n);
        }
        manifest.push(serde_json::json!({"Config": config_name, "RepoTags": img.tags, "Layers": names}));
    }
    put(&mut b, "manifest.json", &serde_json::to_vec(&manifest).unwrap());
    b.into_inner().unwrap()
}

pub const PASSWD: &[u8] = b"root:x:0:0:root:/root:/bin/sh\n";

/// The applets `busybox_layer` links to busybox in /bin.
pub const BUSYBOX_APPLETS: &[&str] = &[
    "sh", "ls", "cat", "echo", "true", "false", "rm", "sleep", "hostname", "ps", "id", "env", "touch", "mkdir", "grep",
    "wc", "head", "dd", "pwd", "test", "stat", "mount", "cp", "chmod", "ln", "seq", "tr", "find",
];

/// A store (on `driver`) holding `busybox:latest` (one layer), and an empty
/// context directory `ctx` in the test's directory.
pub fn busybox_store(driver: &str) -> (Strata, PathBuf) {
    let s = Strata::new(driver);
    let a = s.write("base.tar", &docker_archive(&[TestImage::new("busybox:latest", vec![busybox_layer()])]));
    s.ok(&["load", "-q", "-i", a.to_str().unwrap()]);
    let ctx = s.path("ctx");
    fs::create_dir(&ctx).unwrap();
    (s, ctx)
}

/// A tiny base layer with a shell from Debian's busybox-static.
pub fn busybox_layer() -> Vec<u8> {
    let bb = fs::read("/bin/busybox").expect("busybox-static is installed (apt-get install busybox-static)");
    let mut t = LayerTar::new().dir("bin").dir("etc").dir("tmp").file_mode("bin/busybox", &bb, 0o755);
    for c in BUSYBOX_APPLETS {
        t = t.symlink(&format!("bin/{c}"), "busybox");
    }
    t.file("etc/passwd", PASSWD).build()
}

/// `busybox_layer`'s size as Docker counts it: file bytes and symlink targets.
pub fn busybox_layer_size() -> u64 {
    fs::metadata("/bin/busybox").unwrap().len() + PASSWD.len() as u64 + 7 * BUSYBOX_APPLETS.len() as u64
}

/// `system check`, full and quick, finds nothing and exits 0.
pub fn assert_check_clean(s: &Strata) {
    for quick in [false, true] {
        let mut a = vec!["system", "check", "--format", "json"];
        if quick {
            a.push("--quick");
        }
        let (code, out, err) = s.code(&a);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}{err}"));
        assert_eq!((code, v["problems"].clone()), (0, serde_json::json!([])), "quick={quick}: {err}");
    }
}

/// Mounts under a store root (none may be left), but for the anchors of
/// networks (`<root>/netns/network-*`: a network in use keeps one until
/// `network rm`, by design; the network tests check them).
pub fn mounts_under(s: &Strata) -> Vec<String> {
    let root = s.root().display().to_string();
    let anchors = s.root().join("netns").join("network-").display().to_string();
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|t| t.starts_with(&root) && !t.starts_with(&anchors))
        .map(String::from)
        .collect()
}

/// The file of `v1`/`v2` name for a container's cgroup, found from how this
/// host mounts cgroups (`/proc/self/mountinfo`): a v1 controller hierarchy
/// when the controller has one (hybrid hosts, which libcontainer uses v1
/// on), else the unified (v2) hierarchy.
pub fn cgroup_file(controller: &str, id: &str, v1: &str, v2: &str) -> std::path::PathBuf {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let mut unified = None;
    for l in info.lines() {
        let (pre, post) = l.split_once(" - ").unwrap();
        let mount = pre.split(' ').nth(4).unwrap();
        let mut post = post.split(' ');
        let fstype = post.next().unwrap();
        let opts = post.nth(1).unwrap_or("");
        if fstype == "cgroup" && opts.split(',').any(|o| o == controller) {
            return std::path::Path::new(mount).join("strata").join(id).join(v1);
        }
        if fstype == "cgroup2" {
            unified = Some(mount.to_string());
        }
    }
    std::path::Path::new(&unified.expect("a cgroup hierarchy")).join("strata").join(id).join(v2)
}
