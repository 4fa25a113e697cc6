//! Docker itself as the reference: Debian's dockerd 20.10, started for one
//! test inside that test's network namespace, on a socket, data root and
//! exec root of its own (no bridge, no iptables, no IP forwarding: it
//! changes nothing on the host's network), driven by Debian's CLI at
//! `/usr/bin/docker`, stopped when dropped.

use std::path::PathBuf;
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use super::Strata;

pub struct Docker {
    daemon: Child,
    dir: tempfile::TempDir,
}

impl Docker {
    /// Start dockerd in `s`'s network namespace and wait until it answers.
    pub fn start(s: &Strata) -> Self {
        // Under /tmp: the socket paths (containerd's inside the exec root) must stay short.
        let dir = tempfile::Builder::new().prefix("dk").tempdir_in("/tmp").unwrap();
        let p = |n: &str| dir.path().join(n).display().to_string();
        let log = std::fs::File::create(dir.path().join("dockerd.log")).unwrap();
        let daemon = s
            .in_netns("/usr/sbin/dockerd")
            .args(["--iptables=false", "--ip-forward=false", "--ip-masq=false", "--bridge=none"])
            .args(["--data-root", &p("data"), "--exec-root", &p("x"), "--pidfile", &p("pid")])
            .args(["--host", &format!("unix://{}", p("sock")), "--log-level", "warn"])
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("dockerd, installed by .ci/deps");
        let d = Docker { daemon, dir };
        let deadline = Instant::now() + Duration::from_secs(60);
        // Wait for the socket to answer (not a fixed sleep: it polls for readiness).
        while !d.run(&["version"]).status.success() {
            assert!(Instant::now() < deadline, "dockerd did not answer: {}", d.log());
            std::thread::sleep(Duration::from_millis(50));
        }
        d
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dockerd.log")).unwrap_or_default()
    }

    pub fn command(&self) -> Command {
        let mut c = Command::new("/usr/bin/docker");
        c.env("DOCKER_HOST", format!("unix://{}", self.dir.path().join("sock").display()));
        c.env("DOCKER_CONFIG", self.dir.path().join("config"));
        c.env("DOCKER_BUILDKIT", "1");
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
            "docker {args:?} failed ({:?}):\nstdout: {}\nstderr: {}",
            o.status.code(),
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    }

    /// Run and require success; returns stdout's bytes.
    pub fn ok_bytes(&self, args: &[&str]) -> Vec<u8> {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "docker {args:?} failed ({:?}): {}",
            o.status.code(),
            String::from_utf8_lossy(&o.stderr)
        );
        o.stdout
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

impl Drop for Docker {
    fn drop(&mut self) {
        // Containers first, so nothing of theirs outlives the daemon; then
        // SIGTERM: dockerd stops its containerd and unmounts its layers.
        if let Ok(o) = self.command().args(["ps", "-aq"]).output() {
            let ids: Vec<String> = String::from_utf8_lossy(&o.stdout).lines().map(str::to_string).collect();
            if !ids.is_empty() {
                let _ = self.command().args(["rm", "-f"]).args(&ids).output();
            }
        }
        // SAFETY: kill(2) on the daemon's pid, a child not yet waited for.
        unsafe {
            libc::kill(self.daemon.id() as i32, libc::SIGTERM);
        }
        let _ = self.daemon.wait();
        // Whatever it left mounted under its roots (after a failed test).
        let _ = Command::new("umount").arg("-R").arg("-l").arg(self.dir.path()).output();
        if let Ok(mounts) = std::fs::read_to_string("/proc/self/mountinfo") {
            let root = self.dir.path().display().to_string();
            for m in mounts.lines().filter_map(|l| l.split(' ').nth(4)).filter(|m| m.starts_with(&root)) {
                let _ = Command::new("umount").arg("-l").arg(m).output();
            }
        }
    }
}
