//! A real registry for tests: Debian's `docker-registry` on 127.0.0.1
//! with its own storage, optionally with TLS and htpasswd auth.

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{sha256_hex, test_tmp};

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A docker-registry process with its own storage; killed on drop.
pub struct Registry {
    child: Child,
    pub addr: String,
    pub dir: tempfile::TempDir,
    tls: bool,
}

impl Registry {
    pub fn start() -> Self {
        Self::start_with(false, None)
    }

    /// With `tls`, certificates made by [`make_certs`]; with `htpasswd`, basic auth.
    pub fn start_with(tls: bool, htpasswd: Option<&[u8]>) -> Self {
        let dir = tempfile::Builder::new().prefix("reg-").tempdir_in(test_tmp()).unwrap();
        let d = dir.path().display().to_string();
        let addr = format!("127.0.0.1:{}", free_port());
        let mut config = format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {d}/data\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n"
        );
        if tls {
            make_certs(dir.path());
            config.push_str(&format!("  tls:\n    certificate: {d}/server.crt\n    key: {d}/server.key\n"));
        }
        if let Some(h) = htpasswd {
            std::fs::write(dir.path().join("htpasswd"), h).unwrap();
            config.push_str(&format!("auth:\n  htpasswd:\n    realm: strata-test\n    path: {d}/htpasswd\n"));
        }
        let cfg = dir.path().join("config.yml");
        std::fs::write(&cfg, config).unwrap();
        // Its access log (one line per request) goes to stdout: kept for `blob_gets`.
        let access = std::fs::File::create(dir.path().join("access.log")).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&cfg)
            .stdout(access)
            .stderr(Stdio::null())
            .spawn()
            .expect("docker-registry is installed (.ci/deps)");
        let r = Registry { child, addr, dir, tls };
        let t0 = Instant::now();
        while TcpStream::connect(&r.addr).is_err() {
            assert!(t0.elapsed() < Duration::from_secs(10), "registry did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        r
    }

    /// The blobs fetched so far (GETs answered 200, from the access log), by digest.
    pub fn blob_gets(&self) -> Vec<String> {
        let log = std::fs::read_to_string(self.dir.path().join("access.log")).unwrap();
        log.lines()
            .filter(|l| l.contains("\"GET /v2/") && l.contains("\" 200 "))
            .filter_map(|l| l.split("/blobs/").nth(1))
            .filter_map(|rest| rest.split([' ', '?']).next())
            .map(str::to_string)
            .collect()
    }

    pub fn url(&self) -> String {
        format!("{}://{}", if self.tls { "https" } else { "http" }, self.addr)
    }

    /// PUT `bytes` to `url` with curl.
    pub fn put(&self, url: &str, bytes: &[u8], content_type: &str) {
        let f = self.dir.path().join("put-body");
        std::fs::write(&f, bytes).unwrap();
        let body = format!("@{}", f.display());
        let ct = format!("Content-Type: {content_type}");
        curl(&["-sS", "-f", "-X", "PUT", "--data-binary", &body, "-H", &ct, url]);
    }

    /// Upload a blob with curl (monolithic); returns its digest.
    pub fn put_blob(&self, repo: &str, bytes: &[u8]) -> String {
        let digest = format!("sha256:{}", sha256_hex(bytes));
        let loc = curl(&[
            "-sS",
            "-D",
            "-",
            "-o",
            "/dev/null",
            "-X",
            "POST",
            &format!("{}/v2/{repo}/blobs/uploads/", self.url()),
        ]);
        let loc = loc
            .lines()
            .find_map(|l| l.strip_prefix("Location: ").or(l.strip_prefix("location: ")))
            .unwrap()
            .trim()
            .to_string();
        let loc = if loc.starts_with("http") { loc } else { format!("{}{loc}", self.url()) };
        let sep = if loc.contains('?') { '&' } else { '?' };
        self.put(&format!("{loc}{sep}digest={digest}"), bytes, "application/octet-stream");
        digest
    }

    pub fn put_manifest(&self, repo: &str, reference: &str, media_type: &str, bytes: &[u8]) -> String {
        self.put(&format!("{}/v2/{repo}/manifests/{reference}", self.url()), bytes, media_type);
        format!("sha256:{}", sha256_hex(bytes))
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn curl(args: &[&str]) -> String {
    let o = Command::new("curl").args(args).output().expect("curl is installed (.ci/deps)");
    assert!(o.status.success(), "curl {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A CA and a server certificate for 127.0.0.1, made with openssl.
pub fn make_certs(d: &Path) {
    let run = |args: &[&str]| {
        let o = Command::new("openssl").args(args).current_dir(d).output().expect("openssl is installed");
        assert!(o.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "2",
        "-subj",
        "/CN=strata test CA",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    std::fs::write(d.join("san.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n").unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "2",
        "-extfile",
        "san.ext",
    ]);
    std::fs::create_dir_all(d.join("cas")).unwrap();
    std::fs::copy(d.join("ca.crt"), d.join("cas/ca.crt")).unwrap();
}

/// Push a docker-archive to `dest` (host:port/repo:tag) with skopeo, gzip-compressed.
pub fn skopeo_push(archive: &Path, dest: &str) {
    let o = Command::new("skopeo")
        .args(["copy", "-q", "--dest-tls-verify=false", "--dest-compress"])
        .arg(format!("docker-archive:{}", archive.display()))
        .arg(format!("docker://{dest}"))
        .output()
        .expect("skopeo is installed (.ci/deps)");
    assert!(o.status.success(), "skopeo copy: {}", String::from_utf8_lossy(&o.stderr));
}

/// A store on the host's network (to reach `reg`) holding
/// `REGISTRY/busybox:latest` (`busybox_layer`), pushed there too; and that name.
pub fn pushed_busybox(reg: &Registry) -> (super::Strata, String) {
    let s = super::Strata::on_host_network("overlay");
    let image = super::TestImage::new("busybox:latest", vec![super::busybox_layer()]);
    let a = s.write("base.tar", &super::docker_archive(&[image]));
    s.ok(&["load", "-q", "-i", a.to_str().unwrap()]);
    let base = format!("{}/busybox:latest", reg.addr);
    s.ok(&["tag", "busybox:latest", &base]);
    s.ok(&["push", "-q", &base]);
    (s, base)
}
