//! Registry: pull and push over the OCI distribution API, with oci-client's
//! streaming blob calls (never its whole-image `pull()`/`push()`, which hold
//! layers in memory).
//!
//! Pull: the manifest (or an index, resolved to a platform) and the config
//! come first; then each layer the store lacks streams from the registry
//! straight into `unpack` (hashed, kept as a blob, decompressed, hashed
//! again and applied as the bytes arrive), several layers at once. A layer
//! already here (from any image) is never fetched. A dropped connection is
//! retried with backoff, resuming with a Range request where the registry
//! allows it; bytes that do not match their digest fail the layer and
//! nothing is stored.
//!
//! Push: blobs the registry has are skipped (HEAD); a blob this store got
//! from another repository of the same registry is mounted from there; the
//! rest stream up (one PUT, or in PATCH chunks when a registry refuses
//! that); the manifest, byte for byte as stored, goes last.
//!
//! Transport: HTTPS with the system's roots plus `certs.d` CAs; registries
//! on loopback (and `--tls-verify=false` or an insecure-registries entry)
//! try HTTPS without verification and fall back to plain HTTP, as Docker.

pub mod auth;
mod chunked;

use std::collections::HashMap;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use oci_client::client::{BlobResponse, Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::errors::OciDistributionError;
use oci_client::manifest::OciDescriptor;
use oci_client::secrets::RegistryAuth;

use crate::core::Core;
use crate::digest::{chain_ids, Digest};
use crate::error::{Error, IoContext, Result};
use crate::image::archive::{ArchiveImage, ArchiveLayer};
use crate::image::{self, Platform, Reference};
use crate::images::Images;
use crate::unpack::BlobFile;

/// How to reach registries.
#[derive(Debug, Clone, Default)]
pub struct RegistryOptions {
    /// `--tls-verify`: `Some(false)` allows plain HTTP and unverified TLS,
    /// `Some(true)` requires verified TLS even on loopback.
    pub tls_verify: Option<bool>,
    /// `--cert-dir`: CA certificates (`*.crt`) to trust.
    pub cert_dir: Option<PathBuf>,
    /// `--max-concurrent-downloads` / `--max-concurrent-uploads` (default 3).
    pub max_concurrent: usize,
}

/// What happens to one blob, for progress output.
#[derive(Debug, Clone)]
pub enum Event {
    /// The store (pull) or the registry (push) has it already.
    Exists,
    /// Mounted from another repository of the same registry.
    Mounted,
    /// Transfer starts; the size when known.
    Started(Option<u64>),
    /// Bytes moved so far.
    Progress(u64),
    /// A retry after an error.
    Retrying(String),
    /// Done.
    Done,
}

/// Receives progress; the CLI draws bars or prints lines.
pub trait Progress: Send + Sync {
    /// Something happened to the blob `digest`.
    fn event(&self, digest: &Digest, event: Event);
}

/// Progress that goes nowhere.
pub struct Quiet;

impl Progress for Quiet {
    fn event(&self, _: &Digest, _: Event) {}
}

const RETRIES: u32 = 5;

/// The largest manifest or index strata reads (Docker's and containerd's limit).
pub const MAX_MANIFEST_BYTES: u64 = 4 << 20;

/// The largest image config strata reads.
pub const MAX_CONFIG_BYTES: u64 = 8 << 20;

fn registry_error(reference: &str, e: impl std::fmt::Display) -> Error {
    Error::Registry { reference: reference.to_string(), message: e.to_string() }
}

/// What an oci-client error says, in a registry's own words where it gave some.
fn error_text(e: &OciDistributionError) -> String {
    match e {
        OciDistributionError::RegistryError { envelope, .. } => {
            envelope.errors.iter().map(|x| format!("{:?}: {}", x.code, x.message)).collect::<Vec<_>>().join("; ")
        }
        _ => e.to_string(),
    }
}

/// Explain an oci-client error in the user's terms, naming the reference.
fn explain(reference: &str, registry: &str, e: OciDistributionError) -> Error {
    let text = error_text(&e);
    let message = if is_auth_error(&e) {
        format!("unauthorized: authentication required (run `strata login {registry}`): {text}")
    } else if matches!(e, OciDistributionError::ImageManifestNotFoundError(_)) {
        format!("manifest unknown: {text}")
    } else if matches!(e, OciDistributionError::ServerError { code: 404, .. }) || text.contains("404 Not Found") {
        format!("not found: {text}")
    } else {
        text
    };
    if message.starts_with("not found")
        || message.starts_with("manifest unknown")
        || message.contains("ManifestUnknown")
    {
        return Error::NotFound { what: "image in the registry", name: format!("{reference}: {message}") };
    }
    registry_error(reference, message)
}

fn too_big(url: &str) -> OciDistributionError {
    OciDistributionError::SpecViolationError(format!("{url}: manifest larger than {MAX_MANIFEST_BYTES} bytes"))
}

/// A manifest response's status as oci-client would judge it.
fn status_error(status: reqwest::StatusCode, body: &[u8], url: &str) -> std::result::Result<(), OciDistributionError> {
    match status.as_u16() {
        200 => Ok(()),
        401 => Err(OciDistributionError::UnauthorizedError { url: url.to_string() }),
        code => match serde_json::from_slice::<oci_client::errors::OciEnvelope>(body) {
            Ok(envelope) if (400..500).contains(&code) => {
                Err(OciDistributionError::RegistryError { envelope, url: url.to_string() })
            }
            _ => Err(OciDistributionError::ServerError {
                code,
                url: url.to_string(),
                message: String::from_utf8_lossy(body).chars().take(500).collect(),
            }),
        },
    }
}

fn retryable(e: &OciDistributionError) -> bool {
    match e {
        OciDistributionError::RequestError(_) | OciDistributionError::IoError(_) => true,
        OciDistributionError::ServerError { code, .. } => *code >= 500 || *code == 429,
        _ => false,
    }
}

fn is_loopback(host: &str) -> bool {
    let h = host
        .rsplit_once(':')
        .filter(|(h, p)| !h.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        .map_or(host, |x| x.0);
    let h = h.trim_start_matches('[').trim_end_matches(']');
    h == "localhost" || h == "::1" || h.parse::<std::net::Ipv4Addr>().is_ok_and(|a| a.is_loopback())
}

/// Registries listed as insecure in `/etc/strata/registries.json`
/// (`{"insecure-registries": ["host:port"]}`, Docker's daemon.json key), or
/// the file `$STRATA_REGISTRIES_CONF` names.
fn listed_insecure(registry: &str) -> bool {
    let path = std::env::var_os("STRATA_REGISTRIES_CONF")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/etc/strata/registries.json"));
    let Ok(bytes) = std::fs::read(path) else { return false };
    let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
    v["insecure-registries"].as_array().is_some_and(|a| a.iter().any(|x| x.as_str() == Some(registry)))
}

fn ca_certificates(registry: &str, cert_dir: Option<&Path>) -> Result<Vec<Certificate>> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    match cert_dir {
        Some(d) => dirs.push(d.to_path_buf()),
        None => {
            dirs.push(Path::new("/etc/containers/certs.d").join(registry));
            dirs.push(Path::new("/etc/docker/certs.d").join(registry));
        }
    }
    let mut out = Vec::new();
    for d in dirs {
        let Ok(rd) = std::fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "crt") {
                out.push(Certificate { encoding: CertificateEncoding::Pem, data: std::fs::read(&p).at(&p)? });
            }
        }
    }
    Ok(out)
}

/// One registry, reached with the right scheme and credentials.
struct Remote {
    client: Arc<oci_client::Client>,
    /// The same, uploading in chunks (PATCH) for registries that refuse a monolithic PUT.
    chunked: Arc<oci_client::Client>,
    auth: RegistryAuth,
    registry: String,
    rt: tokio::runtime::Runtime,
    /// For manifests, which oci-client reads whole into memory without a bound.
    http: reqwest::Client,
    https: bool,
}

/// An HTTP client with the registry's TLS settings (CA files, verification).
fn http_client(registry: &str, verify: bool, certs: &[Certificate]) -> Result<reqwest::Client> {
    let mut b = reqwest::Client::builder()
        .tls_danger_accept_invalid_certs(!verify)
        .connect_timeout(Duration::from_secs(10))
        .read_timeout(Duration::from_secs(60));
    for c in certs {
        let cert = reqwest::Certificate::from_pem(&c.data)
            .map_err(|e| registry_error(registry, format!("CA certificate: {e}")))?;
        b = b.add_root_certificate(cert);
    }
    b.build().map_err(|e| registry_error(registry, e))
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::stream("starting the network runtime", e))
}

/// Whether `registry` answers TLS (any HTTP answer counts) within a few seconds.
async fn speaks_tls(registry: &str) -> bool {
    let Ok(c) = reqwest::Client::builder()
        .tls_danger_accept_invalid_certs(true)
        .connect_timeout(Duration::from_secs(3))
        .timeout(Duration::from_secs(5))
        .build()
    else {
        return false;
    };
    c.get(format!("https://{registry}/v2/")).send().await.is_ok()
}

/// The scheme and TLS settings for a registry: (https, verify).
fn transport(rt: &tokio::runtime::Runtime, registry: &str, opts: &RegistryOptions) -> (bool, bool) {
    let insecure = match opts.tls_verify {
        Some(v) => !v,
        None => is_loopback(registry) || listed_insecure(registry),
    };
    if !insecure {
        return (true, true);
    }
    (rt.block_on(speaks_tls(registry)), false)
}

fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl Remote {
    fn connect(reference: &Reference, opts: &RegistryOptions) -> Result<Self> {
        install_crypto();
        let rt = runtime()?;
        let registry = reference.registry.clone();
        let (https, verify) = transport(&rt, &registry, opts);
        let certs = ca_certificates(&registry, opts.cert_dir.as_deref())?;
        let config = |monolithic: bool| ClientConfig {
            protocol: if https { ClientProtocol::Https } else { ClientProtocol::Http },
            accept_invalid_certificates: !verify,
            extra_root_certificates: certs.clone(),
            use_monolithic_push: monolithic,
            connect_timeout: Some(Duration::from_secs(10)),
            read_timeout: Some(Duration::from_secs(60)),
            platform_resolver: None,
            user_agent: concat!("strata/", env!("CARGO_PKG_VERSION")),
            ..Default::default()
        };
        let auth = match auth::credentials(&registry)? {
            Some((u, p)) => RegistryAuth::Basic(u, p),
            None => RegistryAuth::Anonymous,
        };
        Ok(Remote {
            client: Arc::new(oci_client::Client::new(config(true))),
            chunked: Arc::new(oci_client::Client::new(config(false))),
            auth,
            http: http_client(&registry, verify, &certs)?,
            https,
            registry,
            rt,
        })
    }

    fn oci_ref(&self, r: &Reference, digest: Option<&Digest>) -> Result<oci_client::Reference> {
        let base = format!("{}/{}", r.registry, r.repository);
        let s = match (digest.or(r.digest.as_ref()), &r.tag) {
            (Some(d), _) => format!("{base}@{d}"),
            (None, Some(t)) => format!("{base}:{t}"),
            (None, None) => format!("{base}:latest"),
        };
        s.parse().map_err(|e| Error::invalid(format!("reference {s}: {e}")))
    }

    fn manifest(&self, r: &Reference, digest: Option<&Digest>) -> Result<(Vec<u8>, Digest)> {
        let oref = self.oci_ref(r, digest)?;
        let accept =
            [image::OCI_MANIFEST, image::OCI_INDEX, image::DOCKER_MANIFEST, image::DOCKER_MANIFEST_LIST].join(", ");
        let url = format!(
            "{}://{}/v2/{}/manifests/{}",
            if self.https { "https" } else { "http" },
            oref.resolve_registry(),
            oref.repository(),
            oref.digest().or(oref.tag()).unwrap_or("latest")
        );
        // Fetched here, not by oci-client, to stop at MAX_MANIFEST_BYTES; oci-client
        // still does the authentication (its token is used for the request).
        let bytes = self.retrying(r, || {
            let (client, http, oref, auth, url, accept) =
                (self.client.clone(), self.http.clone(), oref.clone(), self.auth.clone(), url.clone(), accept.clone());
            async move {
                let token = client.auth(&oref, &auth, oci_client::RegistryOperation::Pull).await?;
                let mut req = http.get(&url).header(reqwest::header::ACCEPT, accept);
                req = match (token, &auth) {
                    (Some(t), _) => req.bearer_auth(t),
                    (None, RegistryAuth::Basic(u, p)) => req.basic_auth(u, Some(p)),
                    _ => req,
                };
                let resp = req.send().await?;
                let status = resp.status();
                if resp.content_length().is_some_and(|n| n > MAX_MANIFEST_BYTES) {
                    return Err(too_big(&url));
                }
                let mut body = resp.bytes_stream();
                let mut out: Vec<u8> = Vec::new();
                while let Some(chunk) = body.next().await {
                    out.extend_from_slice(&chunk?);
                    if out.len() as u64 > MAX_MANIFEST_BYTES {
                        return Err(too_big(&url));
                    }
                }
                status_error(status, &out, &url)?;
                Ok(out)
            }
        })?;
        let actual = Digest::of(&bytes);
        if let Some(want) = digest.or(r.digest.as_ref()) {
            if want != &actual {
                return Err(Error::DigestMismatch {
                    what: format!("manifest of {r}"),
                    expected: want.to_string(),
                    actual: actual.to_string(),
                });
            }
        }
        Ok((bytes.to_vec(), actual))
    }

    /// Run a request, retrying with backoff on dropped connections, 5xx and 429.
    fn retrying<T, F: std::future::Future<Output = std::result::Result<T, OciDistributionError>>>(
        &self,
        r: &Reference,
        mut call: impl FnMut() -> F,
    ) -> Result<T> {
        let mut attempt = 0;
        loop {
            match self.rt.block_on(call()) {
                Ok(v) => return Ok(v),
                Err(e) if retryable(&e) && attempt < RETRIES => {
                    attempt += 1;
                    tracing::info!("{r}: retrying after {e}");
                    std::thread::sleep(Duration::from_millis(200 << attempt));
                }
                Err(e) => return Err(explain(&r.to_string(), &self.registry, e)),
            }
        }
    }

    /// A small blob (an image config) in memory: at most `size` bytes (the
    /// descriptor's), and never more than [`MAX_CONFIG_BYTES`].
    fn blob_bytes(&self, r: &Reference, digest: &Digest, size: u64) -> Result<Vec<u8>> {
        if size > MAX_CONFIG_BYTES {
            return Err(registry_error(
                &r.to_string(),
                format!("config {digest} is {size} bytes, more than the {MAX_CONFIG_BYTES} strata accepts"),
            ));
        }
        let oref = self.oci_ref(r, None)?;
        let desc = OciDescriptor { digest: digest.to_string(), size: size as i64, ..Default::default() };
        let out = self.retrying(r, || {
            let (client, oref, desc) = (self.client.clone(), oref.clone(), desc.clone());
            async move {
                let mut stream = client.pull_blob_stream(&oref, &desc).await?;
                let mut out: Vec<u8> = Vec::new();
                while let Some(chunk) = stream.next().await {
                    out.extend_from_slice(&chunk?);
                    if out.len() as u64 > size {
                        break; // more than the descriptor says: the digest check below refuses it
                    }
                }
                Ok(out)
            }
        })?;
        if out.len() as u64 > size {
            return Err(registry_error(
                &r.to_string(),
                format!("config {digest}: the registry sent more than the {size} bytes the manifest gives"),
            ));
        }
        if &Digest::of(&out) != digest {
            return Err(Error::DigestMismatch {
                what: format!("blob of {r}"),
                expected: digest.to_string(),
                actual: Digest::of(&out).to_string(),
            });
        }
        Ok(out)
    }

    /// A reader of a blob whose bytes stream in from a download task that
    /// retries (resuming with Range) on dropped connections and 5xx/429.
    fn open_blob(
        &self,
        r: &Reference,
        digest: &Digest,
        size: Option<u64>,
        progress: Arc<dyn Progress>,
    ) -> Result<BlobReader> {
        let oref = self.oci_ref(r, None)?;
        let (tx, rx) = tokio::sync::mpsc::channel::<io::Result<Bytes>>(32);
        let client = self.client.clone();
        let desc = OciDescriptor { digest: digest.to_string(), size: size.unwrap_or(0) as i64, ..Default::default() };
        let digest = digest.clone();
        let label = format!("{r} blob {digest}");
        self.rt.spawn(async move {
            progress.event(&digest, Event::Started(size));
            let mut got: u64 = 0;
            let mut attempt = 0;
            loop {
                let resp = if got == 0 {
                    client.pull_blob_stream(&oref, &desc).await.map(BlobResponse::Full)
                } else {
                    client.pull_blob_stream_partial(&oref, &desc, got, None).await
                };
                let failure = match resp {
                    Ok(resp) => {
                        let (mut stream, mut skip) = match resp {
                            BlobResponse::Full(s) => (s, got),
                            BlobResponse::Partial(s) => (s, 0),
                        };
                        let mut failed = None;
                        while let Some(chunk) = stream.next().await {
                            match chunk {
                                Ok(mut b) => {
                                    if skip > 0 {
                                        let n = skip.min(b.len() as u64);
                                        skip -= n;
                                        b = b.slice(n as usize..);
                                        if b.is_empty() {
                                            continue;
                                        }
                                    }
                                    got += b.len() as u64;
                                    if let Some(limit) = size.filter(|s| got > *s) {
                                        // Never more than the manifest said: an endless blob ends here.
                                        let msg = format!(
                                            "{label}: the registry sent more than the {limit} bytes the manifest gives"
                                        );
                                        let _ = tx.send(Err(io::Error::other(msg))).await;
                                        return;
                                    }
                                    progress.event(&digest, Event::Progress(got));
                                    if tx.send(Ok(b)).await.is_err() {
                                        return; // the reader gave up
                                    }
                                }
                                Err(e) => {
                                    failed = Some(e);
                                    break;
                                }
                            }
                        }
                        match failed {
                            None => {
                                progress.event(&digest, Event::Done);
                                return;
                            }
                            // A stream that ends in a digest mismatch is bad data, not a dropped line.
                            Some(e) if e.to_string().to_ascii_lowercase().contains("digest") => {
                                let _ = tx.send(Err(io::Error::other(format!("{label}: {e}")))).await;
                                return;
                            }
                            Some(e) => e.to_string(),
                        }
                    }
                    Err(e) if retryable(&e) => e.to_string(),
                    Err(e) => {
                        let _ = tx.send(Err(io::Error::other(format!("{label}: {e}")))).await;
                        return;
                    }
                };
                attempt += 1;
                if attempt > RETRIES {
                    let _ = tx
                        .send(Err(io::Error::other(format!("{label}: giving up after {RETRIES} retries: {failure}"))))
                        .await;
                    return;
                }
                progress.event(&digest, Event::Retrying(failure));
                tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
            }
        });
        Ok(BlobReader { rx, cur: Bytes::new() })
    }
}

/// The blocking side of a download: what `unpack` reads.
struct BlobReader {
    rx: tokio::sync::mpsc::Receiver<io::Result<Bytes>>,
    cur: Bytes,
}

impl Read for BlobReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.cur = b,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur[..n]);
        self.cur = self.cur.slice(n..);
        Ok(n)
    }
}

/// Layer media types strata can unpack.
fn supported_layer(media_type: &str) -> bool {
    matches!(
        media_type,
        "application/vnd.oci.image.layer.v1.tar"
            | "application/vnd.oci.image.layer.v1.tar+gzip"
            | "application/vnd.oci.image.layer.v1.tar+zstd"
            | "application/vnd.docker.image.rootfs.diff.tar.gzip"
            | "application/vnd.docker.image.rootfs.diff.tar"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
            | "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
    )
}

/// `pull` flags.
#[derive(Debug, Clone, Default)]
pub struct PullOptions {
    /// `--platform OS/ARCH[/VARIANT]`; the host's when absent.
    pub platform: Option<String>,
    /// Transport.
    pub registry: RegistryOptions,
}

/// The registries service: images in (pull) and out (push) over the OCI
/// distribution API; what arrives goes through the same ingest as `load`.
pub struct Registries<'c> {
    core: &'c Core,
}

impl<'c> Registries<'c> {
    /// The service over `core`.
    pub fn new(core: &'c Core) -> Self {
        Registries { core }
    }

    /// `pull`: bring an image in from its registry; returns the image ID.
    pub fn pull(&self, name: &str, opts: &PullOptions, progress: Arc<dyn Progress>) -> Result<Digest> {
        let r = self.pull_inner(name, opts, progress);
        if r.is_err() {
            self.core.roll_back();
        }
        if let Ok(id) = &r {
            crate::events::record(self.core, "image", "pull", id.as_str(), &[("name", name)]);
        }
        r
    }

    /// Fetch the blob `digest` again from a registry repository it is
    /// recorded to have come from or gone to (`system check --repair`): the
    /// new copy is verified while written and replaces the stored one only
    /// then. Returns where it came from, or `None` when no source is recorded.
    pub(crate) fn fetch_again(&self, digest: &Digest) -> Result<Option<String>> {
        let mut last = None;
        for (registry, repository) in self.core.store.all_blob_sources(digest)? {
            let Ok(from) = Reference::parse(&format!("{registry}/{repository}")) else { continue };
            let fetched = (|| -> Result<()> {
                let remote = Remote::connect(&from, &RegistryOptions::default())?;
                let mut reader = remote.open_blob(&from, digest, None, Arc::new(Quiet))?;
                let mut w = self.core.content.writer()?;
                io::copy(&mut reader, &mut w)
                    .map_err(|e| Error::stream(format!("fetching blob {digest} from {from}"), e))?;
                w.commit(Some(digest), None)?;
                Ok(())
            })();
            match fetched {
                Ok(()) => return Ok(Some(format!("{registry}/{repository}"))),
                Err(e) => last = Some(e),
            }
        }
        last.map_or(Ok(None), Err)
    }

    /// [`pull`](Self::pull) without the rollback (whose sweep would take a running
    /// build's own temp files): a build's base image.
    pub(crate) fn pull_inner(&self, name: &str, opts: &PullOptions, progress: Arc<dyn Progress>) -> Result<Digest> {
        let r = Reference::parse(name)?;
        let shown = r.to_string();
        let want = match &opts.platform {
            Some(p) => Platform::parse(p)?,
            None => Platform::host(),
        };
        let remote = Remote::connect(&r, &opts.registry)?;
        let (mut bytes, mut digest) = remote.manifest(&r, None)?;
        if image::is_index(&bytes) {
            let index = image::parse_index(&bytes, &shown)?;
            let d = image::pick_manifest(&index, &want).map_err(|e| registry_error(&shown, e))?;
            let d = image::digest_of(&d)?;
            (bytes, digest) = remote.manifest(&r, Some(&d))?;
        }
        let manifest = image::parse_manifest(&bytes, &format!("{shown} ({digest})"))?;
        for l in manifest.layers() {
            let mt = l.media_type().to_string();
            if !supported_layer(&mt) {
                return Err(registry_error(
                    &shown,
                    format!("unsupported layer media type {mt} (layer {})", l.digest()),
                ));
            }
        }
        let config_digest = image::digest_of(manifest.config())?;
        // A config the store has (the same image pulled before) is not fetched again.
        let config = match self.core.content.has(&config_digest) {
            true => self.core.content.read(&config_digest)?,
            false => remote.blob_bytes(&r, &config_digest, manifest.config().size().max(0) as u64)?,
        };
        let cfg = image::parse_config(&config, config_digest.as_str())?;
        let diff_ids = image::diff_ids(&cfg)?;
        if diff_ids.len() != manifest.layers().len() {
            return Err(registry_error(
                &shown,
                format!("config lists {} layers, the manifest {}", diff_ids.len(), manifest.layers().len()),
            ));
        }
        let chains = chain_ids(&diff_ids);
        let mut sizes = HashMap::new();
        let mut tocs = HashMap::new();
        let mut layers = Vec::new();
        for (l, chain) in manifest.layers().iter().zip(&chains) {
            let d = image::digest_of(l)?;
            if self.core.store.layer(chain)?.is_some() {
                progress.event(&d, Event::Exists);
            } else if let Some(toc) = chunked::toc_of(l.annotations().as_ref()) {
                tocs.insert(d.to_string(), toc);
            }
            sizes.insert(d.to_string(), l.size());
            layers.push(ArchiveLayer { entry: d.to_string(), digest: Some(d) });
        }
        // zstd:chunked layers to fetch: the chunks stored here need not come again.
        let local = match tocs.is_empty() {
            true => chunked::LocalChunks::default(),
            false => chunked::LocalChunks::of(&self.core.store.layers()?, &self.core.content),
        };
        let tags = if r.digest.is_none() { vec![r.to_string()] } else { Vec::new() };
        let img = ArchiveImage { config, manifest: Some(bytes), tags, layers, blobs_remote: true };
        let open = |entry: &str| -> Result<Box<dyn Read + Send>> {
            let d = Digest::parse(entry)?;
            let size = sizes.get(entry).copied();
            if let (Some(toc), Some(size)) = (tocs.get(entry), size) {
                let content = &self.core.content;
                match remote.fetch_chunked(&r, &d, size, toc, &local, content, progress.as_ref()) {
                    Ok(true) => return Ok(Box::new(content.open_blob(&d)?)),
                    Ok(false) => {}
                    Err(e) => tracing::warn!("{shown}: fetching blob {d} whole after a partial fetch failed: {e}"),
                }
            }
            Ok(Box::new(remote.open_blob(&r, &d, size, progress.clone())?))
        };
        let workers = if opts.registry.max_concurrent == 0 { 3 } else { opts.registry.max_concurrent };
        let manifest_digest = Digest::of(&img.manifest.clone().unwrap_or_default());
        let id = Images::new(self.core).ingest(img, &open, &shown, workers)?;
        for l in manifest.layers() {
            self.core.store.add_blob_source(&image::digest_of(l)?, &r.registry, &r.repository)?;
        }
        // The manifest too: its digest is the image's repo digest there (`NAME@sha256:...`).
        self.core.store.add_blob_source(&manifest_digest, &r.registry, &r.repository)?;
        Ok(id)
    }

    /// `push`: upload an image (its layers, config and manifest) to `dest`
    /// (or the image's own name); returns the manifest digest.
    pub fn push(
        &self,
        name: &str,
        dest: Option<&str>,
        opts: &RegistryOptions,
        progress: Arc<dyn Progress>,
    ) -> Result<Digest> {
        let id = self.core.resolve_image(name)?;
        let target = Reference::parse(dest.unwrap_or(name))?;
        let shown = target.to_string();
        let rec = self.core.image_record(&id)?;
        let manifest_bytes = self.core.content.read(&rec.manifest)?;
        let manifest = image::parse_manifest(&manifest_bytes, rec.manifest.as_str())?;
        let records = self.core.store.image_layers(&id)?;
        let remote = Remote::connect(&target, opts)?;
        let mut blobs = Vec::new();
        for (i, l) in manifest.layers().iter().enumerate() {
            let d = image::digest_of(l)?;
            blobs.push((d.clone(), l.size(), records.get(i).filter(|rec| rec.blob == d && rec.split).cloned()));
        }
        self.upload_layers(&remote, &target, &blobs, opts, progress, &format!("image {}", id.short()))?;
        let config = self.core.content.read(&id)?;
        upload_bytes(&remote, &target, &id, config)?;
        let media_type =
            manifest.media_type().as_ref().map(|m| m.to_string()).unwrap_or_else(|| image::OCI_MANIFEST.to_string());
        let header = media_type.parse().map_err(|_| Error::Corrupt(format!("manifest media type {media_type:?}")))?;
        let oref = remote.oci_ref(&target, None)?;
        let explain = |e| explain(&shown, &target.registry, e);
        remote.rt.block_on(remote.client.push_manifest_raw(&oref, manifest_bytes.clone(), header)).map_err(explain)?;
        // Every layer is in this repository now, for later mounts into others.
        for l in manifest.layers() {
            self.core.store.add_blob_source(&image::digest_of(l)?, &target.registry, &target.repository)?;
        }
        let digest = Digest::of(&manifest_bytes);
        self.core.store.add_blob_source(&digest, &target.registry, &target.repository)?;
        Ok(digest)
    }

    /// Upload layer blobs `(digest, size, record)` to `target`'s repository:
    /// skipped when there (HEAD), mounted from another repository of the
    /// registry this store knows has it, else streamed from the store (a
    /// split record's blob rebuilt from its layer) or from the registry it
    /// was pulled from. `owner` names what they belong to in errors.
    fn upload_layers(
        &self,
        remote: &Remote,
        target: &Reference,
        blobs: &[(Digest, u64, Option<crate::store::LayerRecord>)],
        opts: &RegistryOptions,
        progress: Arc<dyn Progress>,
        owner: &str,
    ) -> Result<()> {
        let shown = target.to_string();
        let oref = remote.oci_ref(target, None)?;
        let workers = if opts.max_concurrent == 0 { 3 } else { opts.max_concurrent };
        let sem = Arc::new(tokio::sync::Semaphore::new(workers));
        let mut tasks = Vec::new();
        // Registries blobs are fetched back from (kept here: a runtime must not be dropped inside a task).
        let mut origins: Vec<Arc<Remote>> = Vec::new();
        for (d, size, rec) in blobs {
            let (d, size) = (d.clone(), *size);
            let source =
                self.core.store.blob_sources(&d, &target.registry)?.into_iter().find(|repo| repo != &target.repository);
            let blob =
                if self.core.content.has(&d) {
                    PushBlob::Local(BlobFile::Plain(self.core.content.path(&d)))
                } else if let Some(rec) = rec.as_ref().filter(|rec| rec.blob == d && rec.split) {
                    PushBlob::Local(BlobFile::of(&self.core.layers_dir, &self.core.content, rec))
                } else {
                    // A pull that found this layer here under another blob left the registry's copy
                    // there: it is fetched back from where it came, only if the destination lacks it.
                    let from =
                        self.core.store.all_blob_sources(&d)?.into_iter().find_map(|(registry, repository)| {
                            Reference::parse(&format!("{registry}/{repository}")).ok()
                        });
                    let Some(from) = from else {
                        return Err(Error::Corrupt(format!("layer blob {d} of {owner} is not in the store")));
                    };
                    let origin = Arc::new(Remote::connect(&from, opts)?);
                    origins.push(origin.clone());
                    PushBlob::Remote { origin, from, size }
                };
            let (client, chunked, auth, oref, sem, progress) = (
                remote.client.clone(),
                remote.chunked.clone(),
                remote.auth.clone(),
                oref.clone(),
                sem.clone(),
                progress.clone(),
            );
            let label = shown.clone();
            let registry = target.registry.clone();
            tasks.push(remote.rt.spawn(async move {
                let _permit = sem.acquire().await;
                client.store_auth_if_needed(oref.resolve_registry(), &auth).await;
                let explain = |e| explain(&label, &registry, e);
                // oci-client needs a push token before HEAD can be answered on a private repository.
                let _ = client.auth(&oref, &auth, oci_client::RegistryOperation::Push).await;
                if client.blob_exists(&oref, d.as_str()).await.map_err(explain)? {
                    progress.event(&d, Event::Exists);
                    return Ok::<(), Error>(());
                }
                if let Some(repo) = source {
                    if let Ok(from) = format!("{}/{repo}@{d}", registry).parse::<oci_client::Reference>() {
                        if client.mount_blob(&oref, &from, d.as_str()).await.is_ok()
                            && client.blob_exists(&oref, d.as_str()).await.unwrap_or(false)
                        {
                            progress.event(&d, Event::Mounted);
                            return Ok(());
                        }
                    }
                }
                progress.event(&d, Event::Started(Some(size)));
                let stream = read_stream(blob.open(&d)?, d.clone(), progress.clone());
                if let Err(e) = client.push_blob_stream(&oref, stream, d.as_str(), Some(size)).await {
                    if is_auth_error(&e) {
                        return Err(explain(e));
                    }
                    // Some registries take uploads only in chunks: send it again that way.
                    progress.event(&d, Event::Retrying(format!("uploading in chunks after: {e}")));
                    let stream = read_stream(blob.open(&d)?, d.clone(), progress.clone());
                    chunked.push_blob_stream(&oref, stream, d.as_str(), Some(size)).await.map_err(explain)?;
                }
                progress.event(&d, Event::Done);
                Ok(())
            }));
        }
        for t in tasks {
            match remote.rt.block_on(t) {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(e),
                Err(e) => return Err(registry_error(&shown, format!("upload task failed: {e}"))),
            }
        }
        Ok(())
    }

    /// Push an artifact to `dest`: an OCI manifest whose config is `config`
    /// (of `config_type`) and whose layers are `layers` (each blob uploaded
    /// as [`push`](Self::push) does, the record telling a split layer's). Returns the
    /// manifest digest.
    pub(crate) fn push_artifact(
        &self,
        dest: &str,
        config_type: &str,
        config: Vec<u8>,
        layers: &[(image::LayerDescriptor, Option<crate::store::LayerRecord>)],
        opts: &RegistryOptions,
        progress: Arc<dyn Progress>,
    ) -> Result<Digest> {
        let target = Reference::parse(dest)?;
        let remote = Remote::connect(&target, opts)?;
        let blobs: Vec<_> = layers.iter().map(|(l, rec)| (l.digest.clone(), l.size, rec.clone())).collect();
        self.upload_layers(&remote, &target, &blobs, opts, progress, &format!("the artifact {target}"))?;
        let config_digest = Digest::of(&config);
        let config_size = config.len() as u64;
        upload_bytes(&remote, &target, &config_digest, config)?;
        let descriptors: Vec<image::LayerDescriptor> = layers.iter().map(|(l, _)| l.clone()).collect();
        let manifest = image::make_manifest_of(config_type, &config_digest, config_size, &descriptors)?;
        let oref = remote.oci_ref(&target, None)?;
        let header = image::OCI_MANIFEST.parse().expect("a valid header value");
        remote
            .rt
            .block_on(remote.client.push_manifest_raw(&oref, manifest.clone(), header))
            .map_err(|e| explain(&target.to_string(), &target.registry, e))?;
        for (l, _) in layers {
            self.core.store.add_blob_source(&l.digest, &target.registry, &target.repository)?;
        }
        Ok(Digest::of(&manifest))
    }

    /// An artifact's manifest and config, fetched from `source` (a
    /// `NotFound` error when the registry has no such manifest), and a
    /// [`BlobSource`] for its other blobs.
    pub(crate) fn fetch_artifact(
        &self,
        source: &str,
        opts: &RegistryOptions,
    ) -> Result<(oci_spec::image::ImageManifest, Vec<u8>, BlobSource)> {
        let r = Reference::parse(source)?;
        let shown = r.to_string();
        let remote = Remote::connect(&r, opts)?;
        let (bytes, digest) = remote.manifest(&r, None)?;
        if image::is_index(&bytes) {
            return Err(registry_error(&shown, "an image index, not a single manifest"));
        }
        let manifest = image::parse_manifest(&bytes, &format!("{shown} ({digest})"))?;
        let config_digest = image::digest_of(manifest.config())?;
        let config = remote.blob_bytes(&r, &config_digest, manifest.config().size())?;
        for l in manifest.layers() {
            self.core.store.add_blob_source(&image::digest_of(l)?, &r.registry, &r.repository)?;
        }
        Ok((manifest, config, BlobSource { remote, reference: r }))
    }
}

/// Blobs of one registry repository, read as streams (verified by whoever reads them).
pub(crate) struct BlobSource {
    remote: Remote,
    reference: Reference,
}

impl BlobSource {
    /// A reader of the blob `digest` of `size` bytes (retrying and resuming as a pull does).
    pub(crate) fn open(&self, digest: &Digest, size: u64) -> Result<Box<dyn Read + Send>> {
        Ok(Box::new(self.remote.open_blob(&self.reference, digest, Some(size), Arc::new(Quiet))?))
    }
}

/// Upload a small blob held in memory (an image config) unless `target`'s repository has it.
fn upload_bytes(remote: &Remote, target: &Reference, digest: &Digest, bytes: Vec<u8>) -> Result<()> {
    let oref = remote.oci_ref(target, None)?;
    let explain = |e| explain(&target.to_string(), &target.registry, e);
    if remote.rt.block_on(remote.client.blob_exists(&oref, digest.as_str())).map_err(explain)? {
        return Ok(());
    }
    match remote.rt.block_on(remote.client.push_blob(&oref, bytes.clone(), digest.as_str())) {
        Ok(_) => Ok(()),
        Err(e) if !is_auth_error(&e) => {
            remote.rt.block_on(remote.chunked.push_blob(&oref, bytes, digest.as_str())).map(|_| ()).map_err(explain)
        }
        Err(e) => Err(explain(e)),
    }
}

/// Where a pushed blob's bytes come from.
enum PushBlob {
    /// The store.
    Local(BlobFile),
    /// The registry repository it was pulled from (streamed through).
    Remote { origin: Arc<Remote>, from: Reference, size: u64 },
}

impl PushBlob {
    fn open(&self, d: &Digest) -> Result<Box<dyn Read + Send>> {
        match self {
            PushBlob::Local(b) => b.open(),
            PushBlob::Remote { origin, from, size } => {
                Ok(Box::new(origin.open_blob(from, d, Some(*size), Arc::new(Quiet))?))
            }
        }
    }
}

fn is_auth_error(e: &OciDistributionError) -> bool {
    match e {
        OciDistributionError::AuthenticationFailure(_) | OciDistributionError::UnauthorizedError { .. } => true,
        OciDistributionError::ServerError { code, .. } => *code == 401 || *code == 403,
        other => {
            let t = error_text(other);
            t.contains("401") || t.contains("403") || t.contains("Unauthorized") || t.contains("Denied")
        }
    }
}

/// A blob reader as the byte stream an upload wants, read on a thread of its own.
fn read_stream(
    mut reader: Box<dyn Read + Send>,
    digest: Digest,
    progress: Arc<dyn Progress>,
) -> impl futures_util::Stream<Item = std::result::Result<Bytes, OciDistributionError>> + Send + 'static {
    let (tx, rx) = tokio::sync::mpsc::channel::<std::result::Result<Bytes, OciDistributionError>>(8);
    std::thread::spawn(move || {
        let mut sent = 0u64;
        loop {
            let mut buf = vec![0u8; 1 << 20];
            match reader.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => {
                    buf.truncate(n);
                    sent += n as u64;
                    progress.event(&digest, Event::Progress(sent));
                    if tx.blocking_send(Ok(Bytes::from(buf))).is_err() {
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let _ = tx.blocking_send(Err(OciDistributionError::IoError(e)));
                    return;
                }
            }
        }
    });
    futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) })
}

/// Download `url` (http or https, with the system's roots and proxy
/// settings) to the file `to`, with retries; for `ADD URL`.
pub fn download(url: &str, to: &Path) -> Result<()> {
    install_crypto();
    let rt = runtime()?;
    let fail = |e: &dyn std::fmt::Display| registry_error(url, e.to_string());
    let client = reqwest::Client::builder().connect_timeout(Duration::from_secs(10)).build().map_err(|e| fail(&e))?;
    let mut attempt = 0;
    loop {
        let result: std::result::Result<(), String> = rt.block_on(async {
            let resp = client.get(url).send().await.map_err(|e| e.to_string())?;
            let status = resp.status();
            if !status.is_success() {
                return Err(format!("HTTP {status}"));
            }
            let mut f = std::fs::File::create(to).map_err(|e| e.to_string())?;
            let mut stream = resp.bytes_stream();
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| e.to_string())?;
                std::io::Write::write_all(&mut f, &chunk).map_err(|e| e.to_string())?;
            }
            Ok(())
        });
        match result {
            Ok(()) => return Ok(()),
            Err(e) if attempt < RETRIES && !e.starts_with("HTTP 4") => {
                attempt += 1;
                std::thread::sleep(Duration::from_millis(200 << attempt));
            }
            Err(e) => return Err(fail(&e)),
        }
    }
}

/// `login`: check the credentials against the registry, then store them.
pub fn login(registry: &str, user: &str, password: &str, opts: &RegistryOptions) -> Result<()> {
    install_crypto();
    let rt = runtime()?;
    let (https, verify) = transport(&rt, registry, opts);
    let certs = ca_certificates(registry, opts.cert_dir.as_deref())?;
    rt.block_on(async {
        let mut b =
            reqwest::Client::builder().tls_danger_accept_invalid_certs(!verify).timeout(Duration::from_secs(30));
        for c in &certs {
            let cert = reqwest::Certificate::from_pem(&c.data)
                .map_err(|e| registry_error(registry, format!("CA certificate: {e}")))?;
            b = b.add_root_certificate(cert);
        }
        let client = b.build().map_err(|e| registry_error(registry, e))?;
        let base = format!("{}://{registry}/v2/", if https { "https" } else { "http" });
        let resp =
            client.get(&base).basic_auth(user, Some(password)).send().await.map_err(|e| registry_error(registry, e))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        let challenge = resp.headers().get("www-authenticate").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        if status.as_u16() == 401 && challenge.to_ascii_lowercase().starts_with("bearer") {
            let param = |k: &str| {
                challenge
                    .split([',', ' '])
                    .find_map(|p| p.strip_prefix(&format!("{k}=\"")))
                    .map(|v| v.trim_end_matches('"').to_string())
            };
            let realm = param("realm").ok_or_else(|| registry_error(registry, "bearer challenge without a realm"))?;
            let mut req = client.get(&realm).basic_auth(user, Some(password));
            if let Some(s) = param("service") {
                req = req.query(&[("service", s)]);
            }
            let tok = req.send().await.map_err(|e| registry_error(registry, e))?;
            if tok.status().is_success() {
                return Ok(());
            }
            return Err(registry_error(registry, format!("login failed: {} from the token service", tok.status())));
        }
        Err(registry_error(registry, format!("login failed: {status} (wrong user name or password?)")))
    })?;
    auth::store(registry, user, password)
}
