//! The one way a path that comes from outside — an image, a layer, a
//! Dockerfile, a build context, a stage, a mount spec, a container — is
//! turned into something on the host: resolved inside its root, every
//! component included (symlinks, absolute targets and `..` clamped to the
//! root, as the container itself would see them), and handed back as a file
//! descriptor that later operations work relative to. Nothing here returns a
//! host path string to be resolved again.
//!
//! Lookups are libpathrs' (`pathrs::Root`: `openat2(RESOLVE_IN_ROOT)` where
//! the kernel has it, a checked fallback otherwise). What libpathrs does not
//! do is written here: creating missing directories *through* a dangling
//! symlink (an image's `/wd -> /srv/app` with no `/srv/app`: Docker creates
//! `/srv/app` inside the image, libpathrs refuses), with an owner; walking a
//! layer directory where no symlink may be followed at all ([`lstat_beneath`]);
//! and the `*at` calls that write a file, link or directory relative to a
//! directory descriptor ([`Dir`]).

use std::ffi::{OsStr, OsString};
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{AtFlags, Gid, Mode, OFlags, Timestamps, Uid};
use rustix::io::Errno;

use crate::error::{Error, IoContext, Result};

/// Symlinks followed in one resolution before giving up (the kernel's own limit).
const MAX_LINKS: usize = 40;

/// A directory tree whose contents are not trusted: every path given to it
/// is resolved inside it.
pub struct Root {
    inner: pathrs::Root,
    path: PathBuf,
}

/// Something a path resolved to inside a [`Root`]: an `O_PATH` descriptor.
pub struct Entry(OwnedFd);

/// A directory opened for writing entries relative to it.
pub struct Dir(OwnedFd);

fn pathrs_err(path: &Path, e: pathrs::error::Error) -> Error {
    let source = match e.kind() {
        pathrs::error::ErrorKind::OsError(Some(errno)) => io::Error::from_raw_os_error(errno),
        _ => io::Error::other(e.to_string()),
    };
    Error::Io { path: path.to_path_buf(), source }
}

fn is_missing(e: &pathrs::error::Error) -> bool {
    matches!(e.kind(), pathrs::error::ErrorKind::OsError(Some(libc::ENOENT | libc::ENOTDIR)))
}

impl Root {
    /// Open the tree at `path` (a host path strata chose, never an untrusted one).
    pub fn open(path: &Path) -> Result<Root> {
        let inner = pathrs::Root::open(path).map_err(|e| pathrs_err(path, e))?;
        Ok(Root { inner, path: path.to_path_buf() })
    }

    /// The root's own host path (for messages and mount sources only).
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn shown(&self, p: &Path) -> PathBuf {
        Path::new("/").join(p.strip_prefix("/").unwrap_or(p))
    }

    /// Resolve `p`, following every symlink (the last one too) inside the
    /// root. `None` when it does not exist (or is a dangling link).
    pub fn resolve(&self, p: impl AsRef<Path>) -> Result<Option<Entry>> {
        let p = nonempty(p.as_ref());
        self.found(p, self.inner.resolve(p))
    }

    /// A lookup's answer: the entry, `None` when it is missing, or the error named by `p`.
    fn found(&self, p: &Path, r: std::result::Result<pathrs::Handle, pathrs::error::Error>) -> Result<Option<Entry>> {
        match r {
            Ok(h) => Ok(Some(Entry(h.into()))),
            Err(e) if is_missing(&e) => Ok(None),
            Err(e) => Err(pathrs_err(&self.shown(p), e)),
        }
    }

    /// Where `e` is, relative to the root (its symlinks resolved by the
    /// kernel); `None` if the root's own path cannot be read.
    pub fn relative_path(&self, e: &Entry) -> Option<PathBuf> {
        let real = fs::read_link(e.proc_path()).ok()?;
        let root = fs::read_link(format!("/proc/self/fd/{}", self.inner.as_fd().as_raw_fd())).ok()?;
        real.strip_prefix(&root).ok().map(Path::to_path_buf)
    }

    /// Resolve `p` inside the root without following its last component if
    /// that is a symlink (the link itself is returned).
    pub fn lookup(&self, p: impl AsRef<Path>) -> Result<Option<Entry>> {
        let p = nonempty(p.as_ref());
        self.found(p, self.inner.resolve_nofollow(p))
    }

    /// A regular file's bytes (symlinks followed inside the root), at most
    /// `limit` of them; `None` when missing or not a regular file. For small
    /// files an image supplies (/etc/passwd): a link to a device or a huge
    /// file cannot make strata read without end.
    pub fn read_file(&self, p: impl AsRef<Path>, limit: u64) -> Result<Option<Vec<u8>>> {
        let Some(e) = self.resolve(p.as_ref())? else { return Ok(None) };
        if !e.metadata()?.is_file() {
            return Ok(None);
        }
        let mut out = Vec::new();
        e.open_read()?.take(limit).read_to_end(&mut out).at(self.shown(p.as_ref()))?;
        Ok(Some(out))
    }

    /// Make the directory `p` and whatever of its ancestors is missing
    /// (mode 755, owned by `owner`), following symlinks inside the root as
    /// the container would: a dangling link's target is created inside the
    /// root. Fails when a component is not a directory.
    pub fn mkdir_all(&self, p: impl AsRef<Path>, owner: (u32, u32)) -> Result<Dir> {
        let p = p.as_ref();
        let mut todo: Vec<OsString> = components(p).into_iter().rev().collect();
        let mut cur = PathBuf::from("/");
        let mut links = 0;
        while let Some(c) = todo.pop() {
            if c == ".." {
                cur.pop();
                continue;
            }
            let next = cur.join(&c);
            match self.lookup(&next)? {
                Some(e) => {
                    let md = e.metadata()?;
                    if md.file_type().is_symlink() {
                        links += 1;
                        if links > MAX_LINKS {
                            return Err(Error::invalid(format!("{}: too many levels of symbolic links", p.display())));
                        }
                        let target = rustix::fs::readlinkat(e.fd(), "", Vec::new()).at(&next)?;
                        let target = PathBuf::from(OsStr::from_bytes(target.as_bytes()));
                        if target.is_absolute() {
                            cur = PathBuf::from("/");
                        }
                        todo.extend(components(&target).into_iter().rev());
                    } else if md.is_dir() {
                        cur = next;
                    } else {
                        return Err(Error::invalid(format!("{}: {} is not a directory", p.display(), next.display())));
                    }
                }
                None => {
                    let parent = self.dir(&cur)?;
                    match rustix::fs::mkdirat(&parent.0, c.as_os_str(), Mode::from_raw_mode(0o755)) {
                        Ok(()) => {
                            rustix::fs::chownat(
                                &parent.0,
                                c.as_os_str(),
                                Some(Uid::from_raw(owner.0)),
                                Some(Gid::from_raw(owner.1)),
                                AtFlags::SYMLINK_NOFOLLOW,
                            )
                            .at(&next)?;
                            // mkdir's mode passes through the umask; the owner asked for 755.
                            parent.chmod(c.as_os_str(), 0o755).at(&next)?;
                        }
                        Err(Errno::EXIST) => {}
                        Err(e) => return Err(e).at(&next),
                    }
                    // Looked at again on the next turn: whatever is there now is resolved like the rest.
                    todo.push(c);
                }
            }
        }
        self.dir(&cur)
    }

    /// Open an existing directory (symlinks followed inside the root).
    pub fn dir(&self, p: impl AsRef<Path>) -> Result<Dir> {
        let p = p.as_ref();
        let e = self.resolve(p)?.ok_or_else(|| Error::not_found("directory", self.shown(p).display().to_string()))?;
        e.open_dir().map_err(|err| match err {
            Error::Io { source, .. } => Error::Io { path: self.shown(p), source },
            other => other,
        })
    }

    /// The directory that will hold `p` (made if missing, as
    /// [`mkdir_all`](Self::mkdir_all)) and `p`'s last name, which is not
    /// resolved: the caller creates or replaces it relative to the directory.
    pub fn parent_for_write(&self, p: impl AsRef<Path>, owner: (u32, u32)) -> Result<(Dir, OsString)> {
        let p = p.as_ref();
        let mut parts = components(p);
        match parts.pop() {
            Some(name) if name != ".." => {
                let parent: PathBuf = parts.iter().collect();
                Ok((self.mkdir_all(parent, owner)?, name))
            }
            _ => Err(Error::invalid(format!("{}: not a path to a file", p.display()))),
        }
    }
}

/// The root itself for an empty path.
fn nonempty(p: &Path) -> &Path {
    if p.as_os_str().is_empty() {
        Path::new("/")
    } else {
        p
    }
}

/// `p`'s components as names and `..`; `/`, `.` and empty ones dropped.
fn components(p: &Path) -> Vec<OsString> {
    p.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect()
}

/// Normalise an absolute container path lexically (`..` at the root stays
/// at the root, as Docker's `filepath.Clean`): for mount targets and VOLUME
/// paths, which name a place in the container and are then resolved inside
/// its root like any other path.
pub fn clean_container_path(p: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            n => out.push(n),
        }
    }
    format!("/{}", out.join("/"))
}

impl Entry {
    /// The descriptor.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }

    /// A path the kernel resolves to exactly this object (the
    /// `/proc/self/fd/N` magic link), for APIs that take paths (a mount
    /// source, a directory to list). Valid while `self` lives.
    pub fn proc_path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/self/fd/{}", self.0.as_raw_fd()))
    }

    /// Its metadata (a symlink's own, if it is one).
    pub fn metadata(&self) -> Result<fs::Metadata> {
        // statx(fd, "", AT_EMPTY_PATH) works on an O_PATH descriptor.
        self.0.try_clone().and_then(|fd| File::from(fd).metadata()).at(self.proc_path())
    }

    /// Open it for reading.
    pub fn open_read(&self) -> Result<File> {
        reopen(&self.0, OFlags::RDONLY).map(File::from)
    }

    /// Open it as a directory to write in.
    pub fn open_dir(&self) -> Result<Dir> {
        reopen(&self.0, OFlags::RDONLY | OFlags::DIRECTORY).map(Dir)
    }
}

fn reopen(fd: &OwnedFd, flags: OFlags) -> Result<OwnedFd> {
    let p = format!("/proc/self/fd/{}", fd.as_raw_fd());
    rustix::fs::open(&p, flags | OFlags::CLOEXEC, Mode::empty()).at(&p)
}

impl Dir {
    /// The descriptor.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }

    /// A path naming `name` in this directory (through `/proc/self/fd/N`):
    /// only `name` itself is looked up again, and the `*_nofollow` callers
    /// never follow it.
    pub fn child_path(&self, name: impl AsRef<Path>) -> PathBuf {
        Path::new(&format!("/proc/self/fd/{}", self.0.as_raw_fd())).join(name)
    }

    /// `name`'s metadata, not following a symlink; `None` when absent.
    pub fn stat(&self, name: impl AsRef<Path>) -> Result<Option<fs::Metadata>> {
        if name.as_ref().as_os_str().is_empty() {
            return self.0.try_clone().and_then(|fd| File::from(fd).metadata()).map(Some).at(name.as_ref());
        }
        let flags = OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        match rustix::fs::openat(&self.0, name.as_ref(), flags, Mode::empty()) {
            // statx(fd, "", AT_EMPTY_PATH) on the O_PATH descriptor: no path is looked up again.
            Ok(fd) => File::from(fd).metadata().map(Some).at(name.as_ref()),
            Err(Errno::NOENT) => Ok(None),
            Err(e) => Err(e).at(name.as_ref()),
        }
    }

    /// The names in this directory, sorted.
    pub fn names(&self) -> Result<Vec<OsString>> {
        let mut out = Vec::new();
        let mut d = rustix::fs::Dir::read_from(&self.0).at(self.child_path(""))?;
        while let Some(e) = d.read() {
            let e = e.at(self.child_path(""))?;
            let n = e.file_name().to_bytes();
            if n != b"." && n != b".." {
                out.push(OsStr::from_bytes(n).to_os_string());
            }
        }
        out.sort();
        Ok(out)
    }

    /// Open the regular file `name` for reading (a symlink there is not followed).
    pub fn open_file(&self, name: impl AsRef<Path>) -> Result<File> {
        rustix::fs::openat(&self.0, name.as_ref(), OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty())
            .map(File::from)
            .at(name.as_ref())
    }

    /// The target of the symlink `name`.
    pub fn read_link(&self, name: impl AsRef<Path>) -> Result<PathBuf> {
        let t = rustix::fs::readlinkat(&self.0, name.as_ref(), Vec::new()).at(name.as_ref())?;
        Ok(PathBuf::from(OsStr::from_bytes(t.as_bytes())))
    }

    /// Remove `name` (a whole tree if it is a directory; a symlink itself, never what it points at).
    pub fn remove(&self, name: impl AsRef<Path>) -> Result<()> {
        // std's remove_dir_all walks by descriptors and never follows a link.
        let p = self.child_path(&name);
        match fs::symlink_metadata(&p) {
            Ok(md) if md.is_dir() => fs::remove_dir_all(&p).at(name.as_ref()),
            Ok(_) => fs::remove_file(&p).at(name.as_ref()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).at(name.as_ref()),
        }
    }

    /// Open the subdirectory `name`, which must be a directory and not a symlink.
    pub fn subdir(&self, name: impl AsRef<Path>) -> Result<Dir> {
        let name = name.as_ref();
        rustix::fs::openat(
            &self.0,
            name,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map(Dir)
        .at(name)
    }

    /// Make the subdirectory `name` (kept if it is a directory already).
    pub fn mkdir(&self, name: impl AsRef<Path>, mode: u32) -> Result<()> {
        match rustix::fs::mkdirat(&self.0, name.as_ref(), Mode::from_raw_mode(mode)) {
            Ok(()) | Err(Errno::EXIST) => Ok(()),
            Err(e) => Err(e).at(name.as_ref()),
        }
    }

    /// Create the regular file `name`, which must not exist (a symlink planted there is not followed).
    pub fn create_file(&self, name: impl AsRef<Path>, mode: u32) -> Result<File> {
        rustix::fs::openat(
            &self.0,
            name.as_ref(),
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(mode),
        )
        .map(File::from)
        .at(name.as_ref())
    }

    /// Create the symlink `name` pointing at `target` (stored as it is, never followed here).
    pub fn symlink(&self, target: impl AsRef<Path>, name: impl AsRef<Path>) -> Result<()> {
        rustix::fs::symlinkat(target.as_ref(), &self.0, name.as_ref()).at(name.as_ref())
    }

    /// Set `name`'s owner, not following a symlink.
    pub fn chown(&self, name: impl AsRef<Path>, uid: u32, gid: u32) -> Result<()> {
        rustix::fs::chownat(
            &self.0,
            name.as_ref(),
            Some(Uid::from_raw(uid)),
            Some(Gid::from_raw(gid)),
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .at(name.as_ref())
    }

    /// Set `name`'s mode; a symlink is left alone (links have no mode of their own).
    pub fn chmod(&self, name: impl AsRef<Path>, mode: u32) -> io::Result<()> {
        // Opened without following, so a link planted in a race is never chmodded through.
        let fd = rustix::fs::openat(
            &self.0,
            name.as_ref(),
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        if File::from(fd.try_clone()?).metadata()?.file_type().is_symlink() {
            return Ok(());
        }
        rustix::fs::chmod(format!("/proc/self/fd/{}", fd.as_raw_fd()).as_str(), Mode::from_raw_mode(mode))
            .map_err(io::Error::from)
    }

    /// Set `name`'s times, not following a symlink.
    pub fn set_times(&self, name: impl AsRef<Path>, times: &Timestamps) -> Result<()> {
        rustix::fs::utimensat(&self.0, name.as_ref(), times, AtFlags::SYMLINK_NOFOLLOW).at(name.as_ref())
    }

    /// Make a device node or fifo `name`.
    pub fn mknod(&self, name: impl AsRef<Path>, kind: rustix::fs::FileType, mode: u32, dev: u64) -> Result<()> {
        rustix::fs::mknodat(&self.0, name.as_ref(), kind, Mode::from_raw_mode(mode), dev).at(name.as_ref())
    }
}

/// What a layer directory holds at a path, looked up without following
/// any symlink (see [`lstat_beneath`]).
#[derive(Debug)]
pub enum Beneath {
    /// The entry itself (a symlink is returned as one).
    Found(fs::Metadata),
    /// Nothing there, and nothing in the way: a lower layer may have it.
    Absent,
    /// A component on the way is a symlink or not a directory: in a layer
    /// stack, that hides the path in every layer below too.
    Blocked,
}

/// Look at `rel` below the host directory `dir` without following any
/// symlink (nor `..`): how a layer directory is looked into, where a
/// symlink is the layer's content and never a way to somewhere else.
pub fn lstat_beneath(dir: &Path, rel: &Path) -> Result<Beneath> {
    let parts = components(rel);
    if parts.iter().any(|c| c == "..") {
        return Ok(Beneath::Blocked);
    }
    let Some((last, parents)) = parts.split_last() else {
        return fs::symlink_metadata(dir).map(Beneath::Found).at(dir);
    };
    let mut cur: OwnedFd =
        rustix::fs::open(dir, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty()).at(dir)?;
    for c in parents {
        let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        match rustix::fs::openat(&cur, c.as_os_str(), flags, Mode::empty()) {
            Ok(fd) => cur = fd,
            Err(Errno::NOENT) => return Ok(Beneath::Absent),
            Err(Errno::NOTDIR | Errno::LOOP) => return Ok(Beneath::Blocked),
            Err(e) => return Err(e).at(dir.join(rel)),
        }
    }
    let p = Path::new(&format!("/proc/self/fd/{}", cur.as_raw_fd())).join(last);
    match fs::symlink_metadata(&p) {
        Ok(md) => Ok(Beneath::Found(md)),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(Beneath::Absent),
        Err(e) => Err(e).at(dir.join(rel)),
    }
}

/// The directory `rel` below the host directory `dir`, reached without
/// following any symlink; `None` when it is not such a directory.
pub fn dir_beneath(dir: &Path, rel: &Path) -> Result<Option<Dir>> {
    let mut cur: OwnedFd =
        rustix::fs::open(dir, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty()).at(dir)?;
    for c in components(rel) {
        if c == ".." {
            return Ok(None);
        }
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        match rustix::fs::openat(&cur, c.as_os_str(), flags, Mode::empty()) {
            Ok(fd) => cur = fd,
            Err(Errno::NOENT | Errno::NOTDIR | Errno::LOOP) => return Ok(None),
            Err(e) => return Err(e).at(dir.join(rel)),
        }
    }
    Ok(Some(Dir(cur)))
}

/// The regular file `rel` below the host directory `dir`, opened for
/// reading without following any symlink; `None` when it is not such a file.
pub fn open_beneath(dir: &Path, rel: &Path) -> Result<Option<File>> {
    let (Some(name), parent) = (rel.file_name(), rel.parent().unwrap_or(Path::new(""))) else { return Ok(None) };
    let Some(d) = dir_beneath(dir, parent)? else { return Ok(None) };
    match rustix::fs::openat(&d.0, name, OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty()) {
        Ok(fd) => Ok(Some(File::from(fd))),
        Err(Errno::NOENT | Errno::LOOP | Errno::NOTDIR) => Ok(None),
        Err(e) => Err(e).at(dir.join(rel)),
    }
}

/// The names in the directory `rel` below `dir`, sorted, reached without
/// following any symlink; `None` when it is not such a directory.
pub fn list_beneath(dir: &Path, rel: &Path) -> Result<Option<Vec<OsString>>> {
    let Some(d) = dir_beneath(dir, rel)? else { return Ok(None) };
    let p = d.child_path("");
    let mut names: Vec<OsString> = fs::read_dir(&p)
        .at(dir.join(rel))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<io::Result<_>>()
        .at(dir.join(rel))?;
    names.sort();
    Ok(Some(names))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn tree() -> (tempfile::TempDir, tempfile::TempDir) {
        let root = tempfile::tempdir().unwrap();
        let host = tempfile::tempdir().unwrap();
        fs::write(host.path().join("secret"), "host").unwrap();
        fs::create_dir(root.path().join("etc")).unwrap();
        fs::write(root.path().join("etc/passwd"), "root:x:0:0::/root:/bin/sh\n").unwrap();
        symlink(host.path(), root.path().join("abs")).unwrap();
        symlink("../../../..", root.path().join("up")).unwrap();
        symlink("/etc", root.path().join("etclink")).unwrap();
        symlink("/dev/zero", root.path().join("zero")).unwrap();
        (root, host)
    }

    #[test]
    fn symlinks_and_dotdot_stay_inside_the_root() {
        let (root, host) = tree();
        let r = Root::open(root.path()).unwrap();
        assert!(r.resolve("abs/secret").unwrap().is_none(), "a link to a host directory resolves inside the root");
        assert!(r.resolve("up/etc/passwd").unwrap().is_some(), "`..` through a link is clamped at the root");
        assert!(r.resolve("../../../etc/passwd").unwrap().is_some());
        assert_eq!(r.read_file("etclink/passwd", 1 << 20).unwrap().unwrap(), b"root:x:0:0::/root:/bin/sh\n");
        assert!(r.read_file("zero", 1 << 20).unwrap().is_none(), "a device is not read");
        let host_name = host.path().file_name().unwrap().to_owned();
        assert!(r.lookup(Path::new("up").join(&host_name)).unwrap().is_none());
    }

    #[test]
    fn mkdir_all_creates_a_dangling_links_target_inside_the_root() {
        let (root, host) = tree();
        let r = Root::open(root.path()).unwrap();
        let (dir, name) = r.parent_for_write("abs/new/file", (0, 0)).unwrap();
        dir.create_file(&name, 0o644).unwrap();
        let inside = root.path().join(host.path().strip_prefix("/").unwrap()).join("new/file");
        assert!(inside.is_file(), "created at the link's target inside the root");
        assert!(!host.path().join("new").exists(), "nothing on the host");
        assert!(r.mkdir_all("etc/passwd/x", (0, 0)).is_err(), "a file is not a directory");
    }

    #[test]
    fn create_file_does_not_follow_a_planted_link() {
        let (root, host) = tree();
        let r = Root::open(root.path()).unwrap();
        let d = r.dir("/").unwrap();
        symlink(host.path().join("secret"), root.path().join("planted")).unwrap();
        assert!(d.create_file("planted", 0o644).is_err());
        assert_eq!(fs::read_to_string(host.path().join("secret")).unwrap(), "host");
    }

    #[test]
    fn lstat_beneath_follows_no_symlink() {
        let (root, _host) = tree();
        let at = |p: &str| lstat_beneath(root.path(), Path::new(p)).unwrap();
        assert!(matches!(at("etc/passwd"), Beneath::Found(m) if m.is_file()));
        assert!(matches!(at("etc/nothing"), Beneath::Absent));
        assert!(matches!(at("etclink/passwd"), Beneath::Blocked));
        assert!(matches!(at("abs/secret"), Beneath::Blocked));
        assert!(matches!(at("etc/passwd/x"), Beneath::Blocked));
        assert!(matches!(at("abs"), Beneath::Found(m) if m.file_type().is_symlink()));
    }

    #[test]
    fn container_paths_clean_like_docker() {
        assert_eq!(clean_container_path("/../../../tmp/x"), "/tmp/x");
        assert_eq!(clean_container_path("/a/./b/../c/"), "/a/c");
        assert_eq!(clean_container_path("/"), "/");
    }
}
