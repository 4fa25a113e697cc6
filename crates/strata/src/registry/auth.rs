//! Registry credentials in Docker's auth file format
//! (`{"auths": {"host:port": {"auth": base64("user:password")}}}`), at
//! `$REGISTRY_AUTH_FILE` or `~/.docker/config.json`. Other keys of the file
//! are kept as they are when it is rewritten.

use std::fs;
use std::path::PathBuf;

use base64::Engine as _;
use serde_json::{json, Value};

use crate::error::{Error, IoContext, Result};

/// Where credentials are read from and written to.
pub fn auth_file() -> PathBuf {
    if let Some(p) = std::env::var_os("REGISTRY_AUTH_FILE") {
        return PathBuf::from(p);
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/root"));
    home.join(".docker").join("config.json")
}

/// The keys Docker uses for a registry (Docker Hub has a historical one).
fn keys(registry: &str) -> Vec<String> {
    if registry == "docker.io" || registry == "index.docker.io" {
        vec!["https://index.docker.io/v1/".into(), "docker.io".into(), "index.docker.io".into()]
    } else {
        vec![registry.to_string(), format!("https://{registry}"), format!("http://{registry}")]
    }
}

fn read() -> Result<Value> {
    let p = auth_file();
    match fs::read(&p) {
        Ok(b) => {
            serde_json::from_slice(&b).map_err(|e| Error::invalid(format!("{}: not valid JSON: {e}", p.display())))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(json!({})),
        Err(e) => Err(e).at(&p),
    }
}

fn write(v: &Value) -> Result<()> {
    let p = auth_file();
    let dir = p.parent().map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."));
    fs::create_dir_all(&dir).at(&dir)?;
    let tmp =
        dir.join(format!(".{}.tmp-{}", p.file_name().and_then(|n| n.to_str()).unwrap_or("auth"), std::process::id()));
    {
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp).at(&tmp)?;
        std::io::Write::write_all(&mut f, &serde_json::to_vec_pretty(v).expect("serializes")).at(&tmp)?;
        f.sync_all().at(&tmp)?;
    }
    fs::rename(&tmp, &p).at(&p)
}

/// Stored `(user, password)` for a registry.
pub fn credentials(registry: &str) -> Result<Option<(String, String)>> {
    let v = read()?;
    for k in keys(registry) {
        if let Some(a) = v["auths"][&k]["auth"].as_str() {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(a.trim())
                .map_err(|_| Error::invalid(format!("{}: the auth for {k} is not base64", auth_file().display())))?;
            let s = String::from_utf8_lossy(&raw).into_owned();
            if let Some((u, p)) = s.split_once(':') {
                return Ok(Some((u.to_string(), p.to_string())));
            }
        }
    }
    Ok(None)
}

/// Store credentials for a registry.
pub fn store(registry: &str, user: &str, password: &str) -> Result<()> {
    let mut v = read()?;
    if !v.is_object() {
        v = json!({});
    }
    if !v["auths"].is_object() {
        v["auths"] = json!({});
    }
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    v["auths"][&keys(registry)[0]] = json!({"auth": token});
    write(&v)
}

/// Forget a registry's credentials; false when there were none.
pub fn remove(registry: &str) -> Result<bool> {
    let mut v = read()?;
    let mut found = false;
    if let Some(auths) = v["auths"].as_object_mut() {
        for k in keys(registry) {
            found |= auths.remove(&k).is_some();
        }
    }
    if found {
        write(&v)?;
    }
    Ok(found)
}
