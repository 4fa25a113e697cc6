//! The metadata store: the one place that persists records (layers,
//! images, tags, containers, settings) and the references between them, in
//! SQLite (`strata.db`, WAL, short transactions) so several strata
//! processes can work on one store at once.
//!
//! A layer record is written `incomplete` (with its owner process) before
//! its directory is filled, and marked `ready` after the directory has been
//! renamed into place. An image record is written in one transaction after
//! all its blobs and layers are ready, so it is never half there.
//!
//! Lock order: the store's flock (see `engine`) first, then SQLite
//! transactions; no transaction is held across file I/O.

use std::path::Path;
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use crate::digest::Digest;
use crate::error::{Error, Result};

/// The schema version this build writes (`PRAGMA user_version`); older
/// databases are migrated when opened ([`Store::migrate`]).
pub const SCHEMA_VERSION: i64 = 4;

/// The tables as the newest version has them; `CREATE ... IF NOT EXISTS`, so
/// a new store gets them whole and an older one gains the new tables, while
/// new columns of old tables come from [`Store::migrate`].
const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS layers (
    chain_id    TEXT PRIMARY KEY,
    diff_id     TEXT NOT NULL,
    parent      TEXT,
    blob        TEXT NOT NULL,
    blob_size   INTEGER NOT NULL,
    media_type  TEXT NOT NULL,
    diff_size   INTEGER NOT NULL DEFAULT 0,
    size        INTEGER NOT NULL DEFAULT 0,
    split       INTEGER NOT NULL DEFAULT 0,
    state       TEXT NOT NULL CHECK (state IN ('incomplete', 'ready')),
    owner       TEXT,
    created     INTEGER NOT NULL,
    -- Until its files are known to be on disk: the boot it was made in, and when.
    unsynced_boot TEXT,
    unsynced_at   INTEGER
);
CREATE TABLE IF NOT EXISTS images (
    id          TEXT PRIMARY KEY,
    manifest    TEXT NOT NULL,
    created     INTEGER NOT NULL,
    added       INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS image_layers (
    image_id    TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    idx         INTEGER NOT NULL,
    chain_id    TEXT NOT NULL REFERENCES layers(chain_id),
    PRIMARY KEY (image_id, idx)
);
CREATE INDEX IF NOT EXISTS image_layers_chain ON image_layers(chain_id);
CREATE TABLE IF NOT EXISTS tags (
    name        TEXT PRIMARY KEY,
    image_id    TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE
);
CREATE TABLE IF NOT EXISTS containers (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    image_id    TEXT NOT NULL REFERENCES images(id),
    created     INTEGER NOT NULL,
    state       TEXT NOT NULL DEFAULT 'incomplete',
    pid         INTEGER,
    exit_code   INTEGER,
    started     INTEGER,
    finished    INTEGER,
    config      TEXT NOT NULL DEFAULT '{}',
    process     TEXT,
    waiter      TEXT
);
CREATE TABLE IF NOT EXISTS image_bases (
    image_id    TEXT PRIMARY KEY REFERENCES images(id) ON DELETE CASCADE,
    base        TEXT NOT NULL,
    layers      INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS build_steps (
    key         TEXT PRIMARY KEY,
    slot        TEXT NOT NULL,
    record      TEXT NOT NULL,
    created     INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS build_steps_slot ON build_steps(slot, created);
CREATE TABLE IF NOT EXISTS build_explanations (
    image_id    TEXT PRIMARY KEY REFERENCES images(id) ON DELETE CASCADE,
    steps       TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS build_cache (
    key         TEXT PRIMARY KEY,
    config      TEXT NOT NULL,
    chain_id    TEXT REFERENCES layers(chain_id),
    created     INTEGER NOT NULL
);
-- Images `system check --repair` found a layer of that had no good copy here:
-- the layer is gone, the image is refused until pulled or loaded again.
CREATE TABLE IF NOT EXISTS damaged_images (
    image_id    TEXT PRIMARY KEY,
    reason      TEXT NOT NULL,
    marked      INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS blob_sources (
    digest      TEXT NOT NULL,
    registry    TEXT NOT NULL,
    repository  TEXT NOT NULL,
    PRIMARY KEY (digest, registry, repository)
);
CREATE TABLE IF NOT EXISTS leases (
    owner       TEXT NOT NULL,
    chain_id    TEXT NOT NULL,
    PRIMARY KEY (owner, chain_id)
);
CREATE TABLE IF NOT EXISTS volumes (
    name        TEXT PRIMARY KEY,
    created     INTEGER NOT NULL,
    labels      TEXT NOT NULL DEFAULT '{}',
    anonymous   INTEGER NOT NULL DEFAULT 0,
    seeded      INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS networks (
    name        TEXT PRIMARY KEY,
    id          TEXT NOT NULL UNIQUE,
    driver      TEXT NOT NULL,
    interface   TEXT NOT NULL UNIQUE,
    subnet      TEXT NOT NULL UNIQUE,
    gateway     TEXT NOT NULL,
    subnet6     TEXT UNIQUE,
    gateway6    TEXT,
    internal    INTEGER NOT NULL DEFAULT 0,
    dns         INTEGER NOT NULL DEFAULT 1,
    labels      TEXT NOT NULL DEFAULT '{}',
    created     INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS endpoints (
    container_id TEXT NOT NULL,
    network     TEXT NOT NULL REFERENCES networks(name),
    ip          TEXT NOT NULL,
    ip6         TEXT,
    mac         TEXT,
    aliases     TEXT NOT NULL DEFAULT '[]',
    PRIMARY KEY (container_id, network),
    UNIQUE (network, ip),
    UNIQUE (network, ip6)
);
CREATE TABLE IF NOT EXISTS events (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    time        INTEGER NOT NULL,
    kind        TEXT NOT NULL,
    action      TEXT NOT NULL,
    object      TEXT NOT NULL,
    attributes  TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS network_setups (
    container_id TEXT PRIMARY KEY,
    netns       TEXT NOT NULL,
    options     TEXT NOT NULL,
    status      TEXT NOT NULL DEFAULT '{}',
    owner       TEXT
);
"#;

/// A named volume's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeRecord {
    /// Name (a random 64-hex name for anonymous volumes).
    pub name: String,
    /// Created (seconds since the epoch).
    pub created: i64,
    /// Labels, JSON object.
    pub labels: String,
    /// Made for an image's VOLUME path, not named by the user.
    pub anonymous: bool,
    /// Its first use has happened (the image's content was copied in then, if any).
    pub seeded: bool,
}

/// A network (`network create`, or the default `bridge`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkRecord {
    /// Name.
    pub name: String,
    /// 64 hex digits.
    pub id: String,
    /// `bridge`.
    pub driver: String,
    /// The host's bridge interface.
    pub interface: String,
    /// IPv4 subnet, CIDR.
    pub subnet: String,
    /// The bridge's address in it.
    pub gateway: String,
    /// IPv6 subnet, CIDR (`--ipv6`).
    pub subnet6: Option<String>,
    /// The bridge's IPv6 address.
    pub gateway6: Option<String>,
    /// No route out (`--internal`).
    pub internal: bool,
    /// Containers resolve each other's names (aardvark-dns on the gateway).
    pub dns: bool,
    /// Labels, JSON object.
    pub labels: String,
    /// Created (seconds since the epoch).
    pub created: i64,
}

fn network_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<NetworkRecord> {
    Ok(NetworkRecord {
        name: r.get(0)?,
        id: r.get(1)?,
        driver: r.get(2)?,
        interface: r.get(3)?,
        subnet: r.get(4)?,
        gateway: r.get(5)?,
        internal: r.get::<_, i64>(6)? != 0,
        dns: r.get::<_, i64>(7)? != 0,
        labels: r.get(8)?,
        created: r.get(9)?,
        subnet6: r.get(10)?,
        gateway6: r.get(11)?,
    })
}

const NETWORK_COLUMNS: &str =
    "name, id, driver, interface, subnet, gateway, internal, dns, labels, created, subnet6, gateway6";

/// A container's place on a network: its address there, fixed when it is
/// attached (create or `network connect`), and the names it answers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointRecord {
    /// Container ID.
    pub container_id: String,
    /// Network name.
    pub network: String,
    /// IPv4 address.
    pub ip: String,
    /// IPv6 address, on a network with IPv6.
    pub ip6: Option<String>,
    /// MAC address: asked for (`--mac-address`), or the one the last setup gave it.
    pub mac: Option<String>,
    /// DNS aliases (`--network-alias`, `connect --alias`), JSON array.
    pub aliases: String,
}

fn endpoint_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<EndpointRecord> {
    Ok(EndpointRecord {
        container_id: r.get(0)?,
        network: r.get(1)?,
        ip: r.get(2)?,
        mac: r.get(3)?,
        aliases: r.get(4)?,
        ip6: r.get(5)?,
    })
}

/// What a network setup made for a container, kept until it is torn down
/// (by whoever sees the container stop, or a later sweep): the namespace's
/// bind mount and the exact netavark options the setup was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkSetup {
    /// Container (or build step) ID; no reference: a setup can outlive a record a crash removed.
    pub container_id: String,
    /// The namespace's bind mount.
    pub netns: String,
    /// netavark's options, JSON.
    pub options: String,
    /// netavark's answer, JSON (empty object until the setup succeeded).
    pub status: String,
    /// For a build step (no container record): the building process, whose
    /// end makes the setup stale. None for a container's setup.
    pub owner: Option<String>,
}

fn setup_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<NetworkSetup> {
    Ok(NetworkSetup {
        container_id: r.get(0)?,
        netns: r.get(1)?,
        options: r.get(2)?,
        status: r.get(3)?,
        owner: r.get(4)?,
    })
}

fn volume_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<VolumeRecord> {
    Ok(VolumeRecord {
        name: r.get(0)?,
        created: r.get(1)?,
        labels: r.get(2)?,
        anonymous: r.get::<_, i64>(3)? != 0,
        seeded: r.get::<_, i64>(4)? != 0,
    })
}

/// A layer's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerRecord {
    /// Chain ID: names the layer directory.
    pub chain_id: Digest,
    /// Digest of the uncompressed layer tar.
    pub diff_id: Digest,
    /// The chain ID of the layer below, if any.
    pub parent: Option<Digest>,
    /// The stored blob holding the layer tar (maybe compressed).
    pub blob: Digest,
    /// The blob's size.
    pub blob_size: u64,
    /// The blob's media type.
    pub media_type: String,
    /// Size of the uncompressed tar.
    pub diff_size: u64,
    /// Bytes of file content the layer holds.
    pub size: u64,
    /// The blob is not stored: it is rebuilt from the layer directory and
    /// its tar-split (uncompressed layers).
    pub split: bool,
}

/// An image's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRecord {
    /// Image ID: the config's digest.
    pub id: Digest,
    /// Digest of the manifest blob.
    pub manifest: Digest,
    /// Creation time from the config (seconds since the epoch).
    pub created: i64,
    /// When it entered this store.
    pub added: i64,
}

/// A container's place in its lifecycle: `incomplete` (its record is
/// written, its layer not yet) → `created` → `running` → `exited` (and back
/// to `running` on a start); removal deletes the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ContainerState {
    /// Being created; swept if its creator is gone.
    Incomplete,
    /// Created, never started.
    Created,
    /// Its process runs.
    Running,
    /// Its process has exited.
    Exited,
}

impl ContainerState {
    /// The name Docker shows (and the database stores).
    pub fn as_str(self) -> &'static str {
        match self {
            ContainerState::Incomplete => "incomplete",
            ContainerState::Created => "created",
            ContainerState::Running => "running",
            ContainerState::Exited => "exited",
        }
    }
}

impl std::fmt::Display for ContainerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ContainerState {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "incomplete" => ContainerState::Incomplete,
            "created" => ContainerState::Created,
            "running" => ContainerState::Running,
            "exited" => ContainerState::Exited,
            other => return Err(Error::Corrupt(format!("unknown container state {other:?}"))),
        })
    }
}

/// A container's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerRecord {
    /// 64-hex ID.
    pub id: String,
    /// Unique name.
    pub name: String,
    /// The image it was created from.
    pub image_id: Digest,
    /// Created (seconds since the epoch).
    pub created: i64,
    /// Where it is in its lifecycle.
    pub state: ContainerState,
    /// The init process while running.
    pub pid: Option<i64>,
    /// Exit code once exited.
    pub exit_code: Option<i64>,
    /// When it last started.
    pub started: Option<i64>,
    /// When it last exited.
    pub finished: Option<i64>,
    /// The run configuration, JSON.
    pub config: String,
    /// The init process's identity while running (`pid:starttime`, as
    /// [`this_owner`]): a pid the kernel has since given to another process
    /// does not match it.
    pub process: Option<String>,
    /// The process that waits on the running container (the attached CLI or
    /// its monitor): it records the exit and cleans up, so nobody else
    /// takes that over while it lives; kept after the exit, so followers of
    /// the log can wait for its last lines.
    pub waiter: Option<String>,
}

const CONTAINER_COLS: &str =
    "id, name, image_id, created, state, pid, exit_code, started, finished, config, process, waiter";

fn container_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ContainerRecord> {
    Ok(ContainerRecord {
        id: r.get(0)?,
        name: r.get(1)?,
        image_id: digest(r.get(2)?)?,
        created: r.get(3)?,
        state: r.get::<_, String>(4)?.parse().map_err(|e: Error| {
            rusqlite::Error::FromSqlConversionFailure(4, rusqlite::types::Type::Text, Box::new(e))
        })?,
        pid: r.get(5)?,
        exit_code: r.get(6)?,
        started: r.get(7)?,
        finished: r.get(8)?,
        config: r.get(9)?,
        process: r.get(10)?,
        waiter: r.get(11)?,
    })
}

/// The outcome of trying to claim a layer for writing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This process now owns the (incomplete) record and must fill it.
    Mine,
    /// The layer is already in place.
    Ready,
    /// Another live process is writing it.
    Busy,
}

/// Handle on `strata.db`.
pub struct Store {
    /// One connection, shared: every method takes `&self` and holds the lock
    /// only for its own statement or transaction.
    conn: std::sync::Mutex<Connection>,
    path: std::path::PathBuf,
}

/// This boot of the machine (`/proc/sys/kernel/random/boot_id`): layers
/// made in another boot and never synced may have lost files to a power
/// loss. Tests built with failpoints can pretend another boot
/// (`STRATA_TEST_BOOT_ID`).
pub fn boot_id() -> String {
    static BOOT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BOOT.get_or_init(|| {
        #[cfg(feature = "failpoints")]
        if let Ok(b) = std::env::var("STRATA_TEST_BOOT_ID") {
            return b;
        }
        std::fs::read_to_string("/proc/sys/kernel/random/boot_id").map(|s| s.trim().to_string()).unwrap_or_default()
    })
    .clone()
}

/// Seconds since the epoch: the time every record carries.
pub fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// Nanoseconds since the epoch: orders records made within one second.
fn now_nanos() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as i64).unwrap_or(0)
}

fn digest(s: String) -> rusqlite::Result<Digest> {
    Digest::parse(&s)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e)))
}

fn layer_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<LayerRecord> {
    Ok(LayerRecord {
        chain_id: digest(r.get(0)?)?,
        diff_id: digest(r.get(1)?)?,
        parent: r.get::<_, Option<String>>(2)?.map(digest).transpose()?,
        blob: digest(r.get(3)?)?,
        blob_size: r.get::<_, i64>(4)? as u64,
        media_type: r.get(5)?,
        diff_size: r.get::<_, i64>(6)? as u64,
        size: r.get::<_, i64>(7)? as u64,
        split: r.get::<_, i64>(8)? != 0,
    })
}

const LAYER_COLS: &str = "chain_id, diff_id, parent, blob, blob_size, media_type, diff_size, size, split";

/// This process's identity as a record owner: pid plus start time, so a
/// reused pid is not mistaken for the writer that died.
pub fn this_owner() -> String {
    owner_of(std::process::id()).unwrap_or_else(|| format!("{}:0", std::process::id()))
}

/// The identity (`pid:starttime`) of the process `pid`, if it runs.
pub fn process_owner(pid: u32) -> Option<String> {
    owner_of(pid)
}

fn owner_of(pid: u32) -> Option<String> {
    proc_state(pid).map(|(_, owner)| owner)
}

/// A process's state letter and identity (`pid:starttime`), from one read of /proc.
fn proc_state(pid: u32) -> Option<(char, String)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Field 3 (state) and field 22 (starttime), counted after the parenthesised command name.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split(' ');
    let state = fields.next()?.chars().next()?;
    let start = fields.nth(18)?;
    Some((state, format!("{pid}:{start}")))
}

/// Whether the process that `owner` names is still that process and has
/// not exited (a zombie has: only its parent has not collected it yet).
pub fn process_running(owner: &str) -> bool {
    let Some(pid) = owner.split(':').next().and_then(|p| p.parse::<u32>().ok()) else {
        return false;
    };
    proc_state(pid).is_some_and(|(state, now)| state != 'Z' && now == owner)
}

/// Whether the process that wrote `owner` is still running.
pub fn owner_alive(owner: &str) -> bool {
    let Some(pid) = owner.split(':').next().and_then(|p| p.parse::<u32>().ok()) else {
        return false;
    };
    owner_of(pid).as_deref() == Some(owner)
}

impl Store {
    /// Open (creating) the database.
    pub fn open(path: &Path) -> Result<Self> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(60))?;
        // Switching to WAL (and the WAL recovery another connection may be
        // running as we open) can report "locked" without waiting on the busy
        // handler; retry those for a while instead of failing the command.
        let mut delay = Duration::from_millis(2);
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            match Self::prepare(&conn) {
                Ok(()) => break,
                Err(rusqlite::Error::SqliteFailure(e, _))
                    if matches!(e.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
                        && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(delay);
                    delay = (delay * 2).min(Duration::from_millis(100));
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(Store { conn: std::sync::Mutex::new(conn), path: path.to_path_buf() })
    }

    fn prepare(conn: &Connection) -> rusqlite::Result<()> {
        let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            conn.pragma_update(None, "journal_mode", "WAL")?;
        }
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.execute_batch(SCHEMA)?;
        Self::migrate(conn)
    }

    /// Bring an older database to [`SCHEMA_VERSION`], one step at a time,
    /// each in a transaction with the version it reaches. Version 1 is the
    /// schema before versions were recorded (`user_version` 0).
    fn migrate(conn: &Connection) -> rusqlite::Result<()> {
        let mut version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        let has_column = |table: &str, col: &str| -> rusqlite::Result<bool> {
            let mut st = conn.prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))?;
            let cols: Vec<String> = st.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
            Ok(cols.iter().any(|c| c == col))
        };
        while version < SCHEMA_VERSION {
            let next = version.max(1) + 1;
            let step = match next {
                // Containers record their process identity (pid reuse).
                2 if !has_column("containers", "process")? => "ALTER TABLE containers ADD COLUMN process TEXT;",
                // Containers record the process that waits on them (it records the exit and cleans up).
                3 if !has_column("containers", "waiter")? => "ALTER TABLE containers ADD COLUMN waiter TEXT;",
                // Layers record the boot they were written in until a sync has put them on disk.
                4 if !has_column("layers", "unsynced_boot")? => {
                    "ALTER TABLE layers ADD COLUMN unsynced_boot TEXT; ALTER TABLE layers ADD COLUMN unsynced_at INTEGER;"
                }
                _ => "",
            };
            conn.execute_batch(&format!("BEGIN IMMEDIATE; {step} PRAGMA user_version = {next}; COMMIT;"))?;
            version = next;
        }
        Ok(())
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether a live process is writing this layer now.
    pub fn layer_claimed(&self, chain: &Digest) -> Result<bool> {
        let owner: Option<Option<String>> = self
            .conn()
            .query_row("SELECT owner FROM layers WHERE chain_id = ?1 AND state = 'incomplete'", [chain.as_str()], |r| {
                r.get(0)
            })
            .optional()?;
        Ok(owner.flatten().is_some_and(|o| owner_alive(&o)))
    }

    /// The connection, for one statement or transaction (never held across
    /// a call to another method: the lock is not reentrant).
    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A setting's value.
    pub fn setting(&self, key: &str) -> Result<Option<String>> {
        Ok(self.conn().query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| r.get(0)).optional()?)
    }

    /// Set a setting unless it is set; returns the value in force.
    pub fn setting_or_init(&self, key: &str, value: &str) -> Result<String> {
        let mut c = self.conn();
        let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute("INSERT OR IGNORE INTO settings (key, value) VALUES (?1, ?2)", [key, value])?;
        let v: String = tx.query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| r.get(0))?;
        tx.commit()?;
        Ok(v)
    }

    /// A ready layer.
    pub fn layer(&self, chain: &Digest) -> Result<Option<LayerRecord>> {
        let sql = format!("SELECT {LAYER_COLS} FROM layers WHERE chain_id = ?1 AND state = 'ready'");
        Ok(self.conn().query_row(&sql, [chain.as_str()], layer_from_row).optional()?)
    }

    /// A ready layer with this diff ID (any parent), to reuse its blob.
    pub fn layer_by_diff_id(&self, diff_id: &Digest) -> Result<Option<LayerRecord>> {
        let sql = format!("SELECT {LAYER_COLS} FROM layers WHERE diff_id = ?1 AND state = 'ready' LIMIT 1");
        Ok(self.conn().query_row(&sql, [diff_id.as_str()], layer_from_row).optional()?)
    }

    /// A ready layer whose blob (by digest) is rebuilt from its split.
    pub fn split_layer_with_blob(&self, blob: &Digest) -> Result<Option<LayerRecord>> {
        let sql = format!("SELECT {LAYER_COLS} FROM layers WHERE blob = ?1 AND split = 1 AND state = 'ready' LIMIT 1");
        Ok(self.conn().query_row(&sql, [blob.as_str()], layer_from_row).optional()?)
    }

    /// Every ready layer.
    pub fn layers(&self) -> Result<Vec<LayerRecord>> {
        let sql = format!("SELECT {LAYER_COLS} FROM layers WHERE state = 'ready' ORDER BY chain_id");
        let c = self.conn();
        let mut st = c.prepare(&sql)?;
        let rows = st.query_map([], layer_from_row)?.collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    /// Try to become the writer of a layer.
    pub fn claim_layer(&self, rec: &LayerRecord) -> Result<Claim> {
        let me = this_owner();
        let mut c = self.conn();
        let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let row: Option<(String, Option<String>)> = tx
            .query_row("SELECT state, owner FROM layers WHERE chain_id = ?1", [rec.chain_id.as_str()], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?;
        let claim = match row {
            Some((state, _)) if state == "ready" => Claim::Ready,
            Some((_, Some(owner))) if owner != me && owner_alive(&owner) => Claim::Busy,
            Some(_) => {
                tx.execute("UPDATE layers SET owner = ?2 WHERE chain_id = ?1", params![rec.chain_id.as_str(), me])?;
                Claim::Mine
            }
            None => {
                tx.execute(
                    "INSERT INTO layers (chain_id, diff_id, parent, blob, blob_size, media_type, state, owner, created)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'incomplete', ?7, ?8)",
                    params![
                        rec.chain_id.as_str(),
                        rec.diff_id.as_str(),
                        rec.parent.as_ref().map(|p| p.as_str()),
                        rec.blob.as_str(),
                        rec.blob_size as i64,
                        rec.media_type,
                        me,
                        now()
                    ],
                )?;
                Claim::Mine
            }
        };
        tx.commit()?;
        Ok(claim)
    }

    /// Mark a claimed layer ready, with what its bytes turned out to be.
    pub fn layer_ready(&self, rec: &LayerRecord) -> Result<()> {
        let n = self.conn().execute(
            "UPDATE layers SET state = 'ready', owner = NULL, blob = ?2, blob_size = ?3, media_type = ?4,
                    diff_size = ?5, size = ?6, split = ?7, unsynced_boot = ?8, unsynced_at = ?9
             WHERE chain_id = ?1 AND state = 'incomplete'",
            params![
                rec.chain_id.as_str(),
                rec.blob.as_str(),
                rec.blob_size as i64,
                rec.media_type,
                rec.diff_size as i64,
                rec.size as i64,
                rec.split as i64,
                boot_id(),
                now()
            ],
        )?;
        if n != 1 {
            return Err(Error::Corrupt(format!("layer {} was not claimed when marked ready", rec.chain_id)));
        }
        Ok(())
    }

    /// A layer's files were written again (a repair): not known to be on disk.
    pub fn mark_unsynced(&self, chain: &Digest) -> Result<()> {
        self.conn().execute(
            "UPDATE layers SET unsynced_boot = ?2, unsynced_at = ?3 WHERE chain_id = ?1",
            params![chain.as_str(), boot_id(), now()],
        )?;
        Ok(())
    }

    /// Ready layers not known to be on disk that were made in another
    /// boot: a power loss may have taken some of their files.
    pub fn unsynced_from_other_boots(&self) -> Result<Vec<LayerRecord>> {
        let sql = format!(
            "SELECT {LAYER_COLS} FROM layers WHERE state = 'ready' AND unsynced_boot IS NOT NULL AND unsynced_boot != ?1"
        );
        let c = self.conn();
        let mut st = c.prepare(&sql)?;
        let rows = st.query_map([boot_id()], layer_from_row)?.collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    /// Ready layers of this boot not known to be on disk, made before `before`.
    pub fn unsynced_before(&self, before: i64) -> Result<Vec<Digest>> {
        let c = self.conn();
        let mut st =
            c.prepare("SELECT chain_id FROM layers WHERE state = 'ready' AND unsynced_boot = ?1 AND unsynced_at < ?2")?;
        let rows: Vec<String> =
            st.query_map(params![boot_id(), before], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
        rows.iter().map(|c| Digest::parse(c)).collect()
    }

    /// These layers' files are on disk (a sync has returned since they were made).
    pub fn mark_synced(&self, chains: &[Digest]) -> Result<()> {
        let mut c = self.conn();
        let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
        for chain in chains {
            tx.execute(
                "UPDATE layers SET unsynced_boot = NULL, unsynced_at = NULL WHERE chain_id = ?1",
                [chain.as_str()],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Take a ready layer back to incomplete, owned by this process, before
    /// its directory is removed: if the process dies midway, the sweep
    /// finishes the removal as it does for an abandoned unpack.
    pub fn unready_layer(&self, chain: &Digest) -> Result<()> {
        let mut c = self.conn();
        let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute("DELETE FROM build_cache WHERE chain_id = ?1", [chain.as_str()])?;
        tx.execute(
            "UPDATE layers SET state = 'incomplete', owner = ?2 WHERE chain_id = ?1",
            params![chain.as_str(), this_owner()],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Drop a layer record (a failed claim, or garbage collection).
    pub fn delete_layer(&self, chain: &Digest) -> Result<()> {
        self.conn().execute("DELETE FROM build_cache WHERE chain_id = ?1", [chain.as_str()])?;
        self.conn().execute("DELETE FROM layers WHERE chain_id = ?1", [chain.as_str()])?;
        Ok(())
    }

    /// Lease layers to this process (`this_owner`): garbage collection keeps
    /// them, as it keeps what images use, until the lease is released or
    /// its process is gone. For operations that use layers while holding no
    /// store lock (a build's RUN).
    pub fn lease_layers(&self, chains: &[Digest]) -> Result<()> {
        let owner = this_owner();
        let mut c = self.conn();
        let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
        for c in chains {
            tx.execute("INSERT OR IGNORE INTO leases (owner, chain_id) VALUES (?1, ?2)", [owner.as_str(), c.as_str()])?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Release this process's leases.
    pub fn release_leases(&self) -> Result<()> {
        self.conn().execute("DELETE FROM leases WHERE owner = ?1", [this_owner()])?;
        Ok(())
    }

    /// Forget the leases of processes that are gone; returns how many owners were dropped.
    pub fn drop_dead_leases(&self) -> Result<usize> {
        let c = self.conn();
        let mut st = c.prepare("SELECT DISTINCT owner FROM leases")?;
        let owners: Vec<String> = st.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
        drop(st);
        let dead: Vec<String> = owners.into_iter().filter(|o| !owner_alive(o)).collect();
        for o in &dead {
            c.execute("DELETE FROM leases WHERE owner = ?1", [o])?;
        }
        Ok(dead.len())
    }

    /// Whether a crashed or failed operation may have left something to
    /// sweep: records still incomplete, leases of gone processes, or ready
    /// layers nothing references. Cheap (three indexed queries), so every
    /// command can ask instead of sweeping.
    pub fn needs_sweep(&self) -> Result<bool> {
        let incomplete: i64 = self.conn().query_row(
            "SELECT (SELECT COUNT(*) FROM layers WHERE state = 'incomplete')
                  + (SELECT COUNT(*) FROM containers WHERE state = 'incomplete')",
            [],
            |r| r.get(0),
        )?;
        if incomplete > 0 {
            return Ok(true);
        }
        let owners: Vec<String> = {
            let c = self.conn();
            let mut st = c.prepare("SELECT DISTINCT owner FROM leases")?;
            let rows = st.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
            rows
        };
        if owners.iter().any(|o| !owner_alive(o)) {
            return Ok(true);
        }
        if !self.stale_network_setups()?.is_empty() {
            return Ok(true);
        }
        let from_other_boots: i64 = self.conn().query_row(
            "SELECT COUNT(*) FROM layers WHERE unsynced_boot IS NOT NULL AND unsynced_boot != ?1",
            [boot_id()],
            |r| r.get(0),
        )?;
        if from_other_boots > 0 {
            return Ok(true);
        }
        Ok(!self.unreferenced_layers()?.is_empty())
    }

    /// Incomplete layer records whose writer is gone.
    pub fn abandoned_layers(&self) -> Result<Vec<Digest>> {
        let c = self.conn();
        let mut st = c.prepare("SELECT chain_id, owner FROM layers WHERE state = 'incomplete'")?;
        let rows: Vec<(String, Option<String>)> =
            st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<rusqlite::Result<_>>()?;
        rows.into_iter()
            .filter(|(_, o)| !o.as_deref().is_some_and(owner_alive))
            .map(|(c, _)| Digest::parse(&c))
            .collect()
    }

    /// Record an image with its layers (chain IDs, bottom first) and tags, in one transaction.
    pub fn put_image(&self, img: &ImageRecord, chains: &[Digest], tags: &[String]) -> Result<()> {
        let mut c = self.conn();
        let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let exists: bool =
            tx.query_row("SELECT COUNT(*) FROM images WHERE id = ?1", [img.id.as_str()], |r| r.get::<_, i64>(0))? > 0;
        // A damaged image (its layers unlinked by a repair) gets them back.
        let damaged: bool =
            tx.query_row("SELECT COUNT(*) FROM damaged_images WHERE image_id = ?1", [img.id.as_str()], |r| {
                r.get::<_, i64>(0)
            })? > 0;
        if damaged {
            tx.execute("DELETE FROM image_layers WHERE image_id = ?1", [img.id.as_str()])?;
        }
        if !exists {
            tx.execute(
                "INSERT INTO images (id, manifest, created, added) VALUES (?1, ?2, ?3, ?4)",
                params![img.id.as_str(), img.manifest.as_str(), img.created, img.added],
            )?;
        }
        if !exists || damaged {
            for (i, c) in chains.iter().enumerate() {
                tx.execute(
                    "INSERT INTO image_layers (image_id, idx, chain_id) VALUES (?1, ?2, ?3)",
                    params![img.id.as_str(), i as i64, c.as_str()],
                )?;
            }
        }
        for t in tags {
            tx.execute("INSERT OR REPLACE INTO tags (name, image_id) VALUES (?1, ?2)", [t.as_str(), img.id.as_str()])?;
        }
        // Stored whole again (every layer ready): no longer damaged.
        tx.execute("DELETE FROM damaged_images WHERE image_id = ?1", [img.id.as_str()])?;
        crate::fault::failpoint!("image-commit");
        tx.commit()?;
        Ok(())
    }

    /// An image by full ID.
    pub fn image(&self, id: &Digest) -> Result<Option<ImageRecord>> {
        Ok(self
            .conn()
            .query_row("SELECT id, manifest, created, added FROM images WHERE id = ?1", [id.as_str()], image_from_row)
            .optional()?)
    }

    /// Every image.
    pub fn images(&self) -> Result<Vec<ImageRecord>> {
        let c = self.conn();
        let mut st = c.prepare("SELECT id, manifest, created, added FROM images ORDER BY created DESC, id")?;
        let rows = st.query_map([], image_from_row)?.collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    /// Image IDs whose hex starts with `prefix`.
    pub fn images_by_prefix(&self, prefix: &str) -> Result<Vec<Digest>> {
        let c = self.conn();
        let mut st = c.prepare("SELECT id FROM images WHERE substr(id, 8, ?2) = ?1")?;
        let rows: Vec<String> =
            st.query_map(params![prefix, prefix.len() as i64], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
        rows.into_iter().map(|s| Digest::parse(&s)).collect()
    }

    /// Images whose manifest is `manifest` (a `NAME@sha256:...` reference).
    pub fn images_by_manifest(&self, manifest: &Digest) -> Result<Vec<Digest>> {
        let c = self.conn();
        let mut st = c.prepare("SELECT id FROM images WHERE manifest = ?1")?;
        let rows: Vec<String> = st.query_map([manifest.as_str()], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
        rows.into_iter().map(|s| Digest::parse(&s)).collect()
    }

    /// Mark an image damaged (a layer of it is lost), saying why, and
    /// unlink its layers: the lost one can then go, what only it used is
    /// collected, and a pull or load of it stores it whole again.
    pub fn mark_damaged(&self, id: &Digest, reason: &str) -> Result<()> {
        let mut c = self.conn();
        let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT OR REPLACE INTO damaged_images (image_id, reason, marked) VALUES (?1, ?2, ?3)",
            params![id.as_str(), reason, now()],
        )?;
        tx.execute("DELETE FROM image_layers WHERE image_id = ?1", [id.as_str()])?;
        tx.commit()?;
        Ok(())
    }

    /// Why an image is marked damaged, if it is.
    pub fn damage(&self, id: &Digest) -> Result<Option<String>> {
        Ok(self
            .conn()
            .query_row("SELECT reason FROM damaged_images WHERE image_id = ?1", [id.as_str()], |r| r.get(0))
            .optional()?)
    }

    /// An image's layer chain IDs, bottom first.
    pub fn image_layers(&self, id: &Digest) -> Result<Vec<LayerRecord>> {
        let sql = format!(
            "SELECT {} FROM image_layers il JOIN layers l ON l.chain_id = il.chain_id WHERE il.image_id = ?1 ORDER BY il.idx",
            LAYER_COLS.split(", ").map(|c| format!("l.{c}")).collect::<Vec<_>>().join(", ")
        );
        let c = self.conn();
        let mut st = c.prepare(&sql)?;
        let rows = st.query_map([id.as_str()], layer_from_row)?.collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    /// The image a tag names.
    pub fn tag(&self, name: &str) -> Result<Option<Digest>> {
        self.conn()
            .query_row("SELECT image_id FROM tags WHERE name = ?1", [name], |r| r.get::<_, String>(0))
            .optional()?
            .map(|s| Digest::parse(&s))
            .transpose()
    }

    /// Point a tag at an image.
    pub fn set_tag(&self, name: &str, id: &Digest) -> Result<()> {
        self.conn().execute("INSERT OR REPLACE INTO tags (name, image_id) VALUES (?1, ?2)", [name, id.as_str()])?;
        Ok(())
    }

    /// Remove a tag; true when it existed.
    pub fn remove_tag(&self, name: &str) -> Result<bool> {
        Ok(self.conn().execute("DELETE FROM tags WHERE name = ?1", [name])? > 0)
    }

    /// The tags of an image, sorted.
    pub fn tags_of(&self, id: &Digest) -> Result<Vec<String>> {
        let c = self.conn();
        let mut st = c.prepare("SELECT name FROM tags WHERE image_id = ?1 ORDER BY name")?;
        let rows = st.query_map([id.as_str()], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    /// Record that image `id` was made on `base` (as the build named it),
    /// whose layers are its bottom `layers`.
    pub fn set_image_base(&self, id: &Digest, base: &str, layers: usize) -> Result<()> {
        self.conn().execute(
            "INSERT OR REPLACE INTO image_bases (image_id, base, layers) VALUES (?1, ?2, ?3)",
            rusqlite::params![id.as_str(), base, layers as i64],
        )?;
        Ok(())
    }

    /// The base image `id` was made on and how many of its bottom layers are the base's, if recorded.
    pub fn image_base(&self, id: &Digest) -> Result<Option<(String, usize)>> {
        Ok(self
            .conn()
            .query_row("SELECT base, layers FROM image_bases WHERE image_id = ?1", [id.as_str()], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as usize))
            })
            .optional()?)
    }

    /// The images that use each layer (by chain ID).
    pub fn images_using_layers(&self) -> Result<std::collections::HashMap<Digest, Vec<Digest>>> {
        let c = self.conn();
        let mut st = c.prepare("SELECT DISTINCT chain_id, image_id FROM image_layers ORDER BY image_id")?;
        let rows: Vec<(String, String)> =
            st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<rusqlite::Result<_>>()?;
        let mut out: std::collections::HashMap<Digest, Vec<Digest>> = std::collections::HashMap::new();
        for (chain, image) in rows {
            out.entry(Digest::parse(&chain)?).or_default().push(Digest::parse(&image)?);
        }
        Ok(out)
    }

    /// Insert a container record (state `incomplete` until its layer is ready).
    pub fn insert_container(&self, c: &ContainerRecord) -> Result<()> {
        let r = self.conn().execute(
            &format!(
                "INSERT INTO containers ({CONTAINER_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
            ),
            params![
                c.id,
                c.name,
                c.image_id.as_str(),
                c.created,
                c.state.as_str(),
                c.pid,
                c.exit_code,
                c.started,
                c.finished,
                c.config,
                c.process,
                c.waiter
            ],
        );
        match r {
            Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::ConstraintViolation => {
                Err(Error::AlreadyExists(format!("the container name \"/{}\" is already in use", c.name)))
            }
            r => r.map(|_| ()).map_err(Into::into),
        }
    }

    /// Update a container's state fields.
    pub fn update_container(&self, c: &ContainerRecord) -> Result<()> {
        self.conn().execute(
            "UPDATE containers SET state = ?2, pid = ?3, exit_code = ?4, started = ?5, finished = ?6, process = ?7, waiter = ?8 WHERE id = ?1",
            params![c.id, c.state.as_str(), c.pid, c.exit_code, c.started, c.finished, c.process, c.waiter],
        )?;
        Ok(())
    }

    /// Record an event, keeping the newest 10,000.
    pub fn add_event(&self, time: i128, kind: &str, action: &str, object: &str, attributes: &str) -> Result<()> {
        let c = self.conn();
        c.execute(
            "INSERT INTO events (time, kind, action, object, attributes) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![time as i64, kind, action, object, attributes],
        )?;
        c.execute("DELETE FROM events WHERE seq <= (SELECT MAX(seq) FROM events) - 10000", [])?;
        Ok(())
    }

    /// Events after sequence number `after`: (seq, time, kind, action, object, attributes).
    #[allow(clippy::type_complexity)]
    pub fn events_after(&self, after: i64) -> Result<Vec<(i64, i64, String, String, String, String)>> {
        let c = self.conn();
        let mut st =
            c.prepare("SELECT seq, time, kind, action, object, attributes FROM events WHERE seq > ?1 ORDER BY seq")?;
        let rows = st
            .query_map([after], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    /// Replace a container's run configuration (`update`).
    pub fn set_container_config(&self, id: &str, config: &str) -> Result<()> {
        self.conn().execute("UPDATE containers SET config = ?2 WHERE id = ?1", params![id, config])?;
        Ok(())
    }

    /// Give a container a new name; `InUse` when another has it.
    pub fn rename_container(&self, id: &str, name: &str) -> Result<()> {
        match self.conn().execute("UPDATE containers SET name = ?2 WHERE id = ?1", params![id, name]) {
            Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::ConstraintViolation => {
                Err(Error::InUse(format!("the container name {name:?} is already in use")))
            }
            r => r.map(drop).map_err(Into::into),
        }
    }

    /// Every container, newest first.
    pub fn containers(&self) -> Result<Vec<ContainerRecord>> {
        let c = self.conn();
        let mut st =
            c.prepare(&format!("SELECT {CONTAINER_COLS} FROM containers ORDER BY created DESC, rowid DESC"))?;
        let rows = st.query_map([], container_from_row)?.collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    /// A container by exact name, full ID or unique ID prefix.
    pub fn find_container(&self, name: &str) -> Result<Option<ContainerRecord>> {
        let c = self.conn();
        let mut st = c.prepare(&format!(
            "SELECT {CONTAINER_COLS} FROM containers WHERE name = ?1 OR id = ?1 OR (length(?1) >= 3 AND substr(id, 1, length(?1)) = ?1)"
        ))?;
        let rows: Vec<ContainerRecord> = st.query_map([name], container_from_row)?.collect::<rusqlite::Result<_>>()?;
        if let Some(exact) = rows.iter().find(|c| c.name == name || c.id == name) {
            return Ok(Some(exact.clone()));
        }
        match rows.len() {
            0 => Ok(None),
            1 => Ok(rows.into_iter().next()),
            _ => Err(Error::invalid(format!("container ID prefix {name:?} is ambiguous"))),
        }
    }

    /// Delete a container record.
    pub fn delete_container(&self, id: &str) -> Result<()> {
        let mut c = self.conn();
        let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute("DELETE FROM endpoints WHERE container_id = ?1", [id])?;
        tx.execute("DELETE FROM containers WHERE id = ?1", [id])?;
        tx.commit()?;
        Ok(())
    }

    /// Record a network; fails with `InUse` naming what is taken (name, subnet, interface).
    pub fn insert_network(&self, n: &NetworkRecord) -> Result<()> {
        let r = self.conn().execute(
            &format!(
                "INSERT INTO networks ({NETWORK_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
            ),
            params![
                n.name,
                n.id,
                n.driver,
                n.interface,
                n.subnet,
                n.gateway,
                n.internal as i64,
                n.dns as i64,
                n.labels,
                n.created,
                n.subnet6,
                n.gateway6
            ],
        );
        match r {
            Ok(_) => Ok(()),
            Err(rusqlite::Error::SqliteFailure(e, Some(msg))) if e.code == rusqlite::ErrorCode::ConstraintViolation => {
                let what = if msg.contains("networks.name") {
                    format!("network {:?} already exists", n.name)
                } else if msg.contains("networks.subnet6") {
                    format!("subnet {} is used by another network", n.subnet6.as_deref().unwrap_or(""))
                } else if msg.contains("networks.subnet") {
                    format!("subnet {} is used by another network", n.subnet)
                } else {
                    format!("network {}: {msg}", n.name)
                };
                Err(Error::InUse(what))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// A network by name.
    pub fn network(&self, name: &str) -> Result<Option<NetworkRecord>> {
        Ok(self
            .conn()
            .query_row(&format!("SELECT {NETWORK_COLUMNS} FROM networks WHERE name = ?1"), [name], network_from_row)
            .optional()?)
    }

    /// Networks whose ID starts with `prefix`.
    pub fn networks_by_id_prefix(&self, prefix: &str) -> Result<Vec<NetworkRecord>> {
        let c = self.conn();
        let mut st = c.prepare(&format!("SELECT {NETWORK_COLUMNS} FROM networks WHERE substr(id, 1, ?2) = ?1"))?;
        let rows =
            st.query_map(params![prefix, prefix.len() as i64], network_from_row)?.collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    /// Every network, by name.
    pub fn networks(&self) -> Result<Vec<NetworkRecord>> {
        let c = self.conn();
        let mut st = c.prepare(&format!("SELECT {NETWORK_COLUMNS} FROM networks ORDER BY name"))?;
        let rows = st.query_map([], network_from_row)?.collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    /// Remove a network record.
    pub fn delete_network(&self, name: &str) -> Result<()> {
        self.conn().execute("DELETE FROM networks WHERE name = ?1", [name])?;
        Ok(())
    }

    /// Attach a container to a network at the first free address `pick`
    /// chooses from the addresses taken there, in one transaction (two
    /// processes never get the same address). Returns the address.
    pub fn insert_endpoint(
        &self,
        container_id: &str,
        network: &str,
        mac: Option<&str>,
        aliases: &str,
        pick: &dyn Fn(&[(String, Option<String>)]) -> Result<(String, Option<String>)>,
    ) -> Result<(String, Option<String>)> {
        let mut c = self.conn();
        let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let taken: Vec<(String, Option<String>)> = {
            let mut st = tx.prepare("SELECT ip, ip6 FROM endpoints WHERE network = ?1")?;
            let rows = st.query_map([network], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<rusqlite::Result<_>>()?;
            rows
        };
        let ip = pick(&taken)?;
        let r = tx.execute(
            "INSERT INTO endpoints (container_id, network, ip, ip6, mac, aliases) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![container_id, network, ip.0, ip.1, mac, aliases],
        );
        match r {
            Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::ConstraintViolation => {
                return Err(Error::InUse(format!("the container is already on network {network}")));
            }
            r => r?,
        };
        tx.commit()?;
        Ok(ip)
    }

    /// A container's endpoints, by network name.
    pub fn endpoints_of(&self, container_id: &str) -> Result<Vec<EndpointRecord>> {
        let c = self.conn();
        let mut st = c.prepare(
            "SELECT container_id, network, ip, mac, aliases, ip6 FROM endpoints WHERE container_id = ?1 ORDER BY network",
        )?;
        let rows = st.query_map([container_id], endpoint_from_row)?.collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    /// Every endpoint on a network.
    pub fn endpoints_on(&self, network: &str) -> Result<Vec<EndpointRecord>> {
        let c = self.conn();
        let mut st = c.prepare(
            "SELECT container_id, network, ip, mac, aliases, ip6 FROM endpoints WHERE network = ?1 ORDER BY container_id",
        )?;
        let rows = st.query_map([network], endpoint_from_row)?.collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    /// Note the MAC address a setup gave an endpoint.
    pub fn set_endpoint_mac(&self, container_id: &str, network: &str, mac: &str) -> Result<()> {
        self.conn().execute(
            "UPDATE endpoints SET mac = ?3 WHERE container_id = ?1 AND network = ?2",
            params![container_id, network, mac],
        )?;
        Ok(())
    }

    /// Detach a container from a network.
    pub fn delete_endpoint(&self, container_id: &str, network: &str) -> Result<bool> {
        Ok(self.conn().execute(
            "DELETE FROM endpoints WHERE container_id = ?1 AND network = ?2",
            params![container_id, network],
        )? == 1)
    }

    /// Record a setup before netavark is called (so a crash during it is torn down later).
    pub fn put_network_setup(&self, s: &NetworkSetup) -> Result<()> {
        self.conn().execute(
            "INSERT OR REPLACE INTO network_setups (container_id, netns, options, status, owner) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![s.container_id, s.netns, s.options, s.status, s.owner],
        )?;
        Ok(())
    }

    /// A container's network setup, if one is in place.
    pub fn network_setup(&self, container_id: &str) -> Result<Option<NetworkSetup>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT container_id, netns, options, status, owner FROM network_setups WHERE container_id = ?1",
                [container_id],
                setup_from_row,
            )
            .optional()?)
    }

    /// Every setup in place.
    pub fn network_setups(&self) -> Result<Vec<NetworkSetup>> {
        let c = self.conn();
        let mut st = c.prepare("SELECT container_id, netns, options, status, owner FROM network_setups")?;
        let rows = st.query_map([], setup_from_row)?.collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    /// Setups to tear down: a container's whose container is gone, not
    /// running, or running no more (its process died while nobody watched
    /// it); a build step's whose build is gone.
    pub fn stale_network_setups(&self) -> Result<Vec<NetworkSetup>> {
        let rows: Vec<(NetworkSetup, Option<String>, Option<String>, i64)> = {
            let c = self.conn();
            let mut st = c.prepare(
                "SELECT s.container_id, s.netns, s.options, s.status, s.owner, c.state, c.process,
                        (SELECT COUNT(*) FROM networks n WHERE 'network:' || n.name = s.owner)
                   FROM network_setups s LEFT JOIN containers c ON c.id = s.container_id",
            )?;
            let rows = st
                .query_map([], |r| Ok((setup_from_row(r)?, r.get(5)?, r.get(6)?, r.get(7)?)))?
                .collect::<rusqlite::Result<_>>()?;
            rows
        };
        Ok(rows
            .into_iter()
            .filter(|(s, state, process, network_exists)| match &s.owner {
                // A network's anchor: stale once its network is gone.
                Some(owner) if owner.starts_with("network:") => *network_exists == 0,
                Some(owner) => !owner_alive(owner),
                None => state.as_deref() != Some("running") || !process.as_deref().is_some_and(process_running),
            })
            .map(|(s, _, _, _)| s)
            .collect())
    }

    /// Endpoints of build steps whose setup never got recorded (the build
    /// was killed in between): neither a container nor a setup knows them.
    pub fn delete_orphan_endpoints(&self) -> Result<()> {
        self.conn().execute(
            "DELETE FROM endpoints WHERE container_id NOT IN (SELECT id FROM containers)
                AND container_id NOT IN (SELECT container_id FROM network_setups)",
            [],
        )?;
        Ok(())
    }

    /// A setup was torn down; a build step's endpoints (which have no
    /// container record) go with it.
    pub fn delete_network_setup(&self, container_id: &str) -> Result<()> {
        let mut c = self.conn();
        let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute("DELETE FROM network_setups WHERE container_id = ?1", [container_id])?;
        tx.execute(
            "DELETE FROM endpoints WHERE container_id = ?1 AND container_id NOT IN (SELECT id FROM containers)",
            [container_id],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Record a volume; an existing one is left as it is. True when it was new.
    pub fn insert_volume(&self, v: &VolumeRecord) -> Result<bool> {
        Ok(self.conn().execute(
            "INSERT OR IGNORE INTO volumes (name, created, labels, anonymous, seeded) VALUES (?1, ?2, ?3, ?4, 0)",
            params![v.name, v.created, v.labels, v.anonymous as i64],
        )? == 1)
    }

    /// A volume by name.
    pub fn volume(&self, name: &str) -> Result<Option<VolumeRecord>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT name, created, labels, anonymous, seeded FROM volumes WHERE name = ?1",
                [name],
                volume_from_row,
            )
            .optional()?)
    }

    /// Every volume, by name.
    pub fn volumes(&self) -> Result<Vec<VolumeRecord>> {
        let c = self.conn();
        let mut st = c.prepare("SELECT name, created, labels, anonymous, seeded FROM volumes ORDER BY name")?;
        let rows = st.query_map([], volume_from_row)?.collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    /// Note a volume's first use.
    pub fn mark_seeded(&self, name: &str) -> Result<()> {
        self.conn().execute("UPDATE volumes SET seeded = 1 WHERE name = ?1", [name])?;
        Ok(())
    }

    /// Drop a volume record.
    pub fn delete_volume(&self, name: &str) -> Result<()> {
        self.conn().execute("DELETE FROM volumes WHERE name = ?1", [name])?;
        Ok(())
    }

    /// Names of the containers using an image.
    pub fn containers_using(&self, id: &Digest) -> Result<Vec<String>> {
        let c = self.conn();
        let mut st = c.prepare("SELECT name FROM containers WHERE image_id = ?1 ORDER BY name")?;
        let rows = st.query_map([id.as_str()], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    /// Delete an image record (its tags and layer links go with it).
    pub fn delete_image(&self, id: &Digest) -> Result<()> {
        let mut c = self.conn();
        let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute("DELETE FROM tags WHERE image_id = ?1", [id.as_str()])?;
        tx.execute("DELETE FROM image_layers WHERE image_id = ?1", [id.as_str()])?;
        tx.execute("DELETE FROM images WHERE id = ?1", [id.as_str()])?;
        tx.execute("DELETE FROM damaged_images WHERE image_id = ?1", [id.as_str()])?;
        tx.commit()?;
        Ok(())
    }

    /// Ready layers no image references (directly or as a parent of a referenced layer).
    pub fn unreferenced_layers(&self) -> Result<Vec<Digest>> {
        let c = self.conn();
        let mut st = c.prepare(
            "SELECT chain_id FROM layers WHERE state = 'ready'
             AND chain_id NOT IN (SELECT chain_id FROM image_layers)
             AND chain_id NOT IN (SELECT chain_id FROM build_cache WHERE chain_id IS NOT NULL)
             AND chain_id NOT IN (SELECT parent FROM layers WHERE parent IS NOT NULL)
             AND chain_id NOT IN (SELECT chain_id FROM leases)",
        )?;
        let rows: Vec<String> = st.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
        rows.into_iter().map(|s| Digest::parse(&s)).collect()
    }

    /// A build step's cached result: the image config after it and its top layer.
    pub fn cached_step(&self, key: &Digest) -> Result<Option<(String, Option<Digest>)>> {
        let row: Option<(String, Option<String>)> = self
            .conn()
            .query_row("SELECT config, chain_id FROM build_cache WHERE key = ?1", [key.as_str()], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?;
        row.map(|(c, l)| Ok((c, l.map(|l| Digest::parse(&l)).transpose()?))).transpose()
    }

    /// Record a build step's result (replacing an older one under the same key).
    pub fn put_cached_step(&self, key: &Digest, config: &str, chain: Option<&Digest>) -> Result<()> {
        crate::fault::failpoint!("build-cache");
        self.conn().execute(
            "INSERT OR REPLACE INTO build_cache (key, config, chain_id, created) VALUES (?1, ?2, ?3, ?4)",
            params![key.as_str(), config, chain.map(|c| c.as_str()), now()],
        )?;
        Ok(())
    }

    /// Forget every cached build step; returns how many there were.
    pub fn clear_build_cache(&self) -> Result<usize> {
        Ok(self.conn().execute("DELETE FROM build_cache", [])?)
    }

    /// Cached build steps and the layers only they keep.
    pub fn build_cache_layers(&self) -> Result<(u64, Vec<Digest>)> {
        let n: i64 = self.conn().query_row("SELECT COUNT(*) FROM build_cache", [], |r| r.get(0))?;
        let c = self.conn();
        let mut st = c.prepare(
            "SELECT DISTINCT chain_id FROM build_cache WHERE chain_id IS NOT NULL
             AND chain_id NOT IN (SELECT chain_id FROM image_layers)",
        )?;
        let rows: Vec<String> = st.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
        Ok((n as u64, rows.into_iter().map(|s| Digest::parse(&s)).collect::<Result<_>>()?))
    }

    /// Record what a build step's cache key `key` was made of, at its
    /// `slot` (the newest 20 records of a slot are kept).
    pub fn put_build_step(&self, key: &Digest, slot: &str, record: &str) -> Result<()> {
        let mut c = self.conn();
        let tx = c.transaction()?;
        tx.execute(
            "INSERT OR REPLACE INTO build_steps (key, slot, record, created) VALUES (?1, ?2, ?3, ?4)",
            rusqlite::params![key.as_str(), slot, record, now_nanos()],
        )?;
        tx.execute(
            "DELETE FROM build_steps WHERE slot = ?1 AND key NOT IN
             (SELECT key FROM build_steps WHERE slot = ?1 ORDER BY created DESC LIMIT 20)",
            [slot],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// The records of the steps at `slot`, newest first.
    pub fn build_steps_at(&self, slot: &str) -> Result<Vec<(Digest, String)>> {
        let c = self.conn();
        let mut st = c.prepare("SELECT key, record FROM build_steps WHERE slot = ?1 ORDER BY created DESC")?;
        let rows: Vec<(String, String)> =
            st.query_map([slot], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<rusqlite::Result<_>>()?;
        rows.into_iter().map(|(k, r)| Ok((Digest::parse(&k)?, r))).collect()
    }

    /// The record of the step whose key is `key`.
    pub fn build_step(&self, key: &Digest) -> Result<Option<String>> {
        Ok(self
            .conn()
            .query_row("SELECT record FROM build_steps WHERE key = ?1", [key.as_str()], |r| r.get(0))
            .optional()?)
    }

    /// Keep a build's explanation with the image it made.
    pub fn put_build_explanation(&self, image: &Digest, steps: &str) -> Result<()> {
        self.conn().execute(
            "INSERT OR REPLACE INTO build_explanations (image_id, steps) VALUES (?1, ?2)",
            rusqlite::params![image.as_str(), steps],
        )?;
        Ok(())
    }

    /// The explanation kept with `image`, if it was built here.
    pub fn build_explanation(&self, image: &Digest) -> Result<Option<String>> {
        Ok(self
            .conn()
            .query_row("SELECT steps FROM build_explanations WHERE image_id = ?1", [image.as_str()], |r| r.get(0))
            .optional()?)
    }

    /// Every layer the build cache names (a root for garbage collection).
    pub fn build_cache_chains(&self) -> Result<Vec<Digest>> {
        let c = self.conn();
        let mut st = c.prepare("SELECT DISTINCT chain_id FROM build_cache WHERE chain_id IS NOT NULL")?;
        let rows: Vec<String> = st.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
        rows.into_iter().map(|s| Digest::parse(&s)).collect()
    }

    /// Remember that a registry's repository has a blob (for cross-repository mounts on push).
    pub fn add_blob_source(&self, digest: &Digest, registry: &str, repository: &str) -> Result<()> {
        self.conn().execute(
            "INSERT OR IGNORE INTO blob_sources (digest, registry, repository) VALUES (?1, ?2, ?3)",
            params![digest.as_str(), registry, repository],
        )?;
        Ok(())
    }

    /// Repositories of `registry` known to hold a blob.
    pub fn blob_sources(&self, digest: &Digest, registry: &str) -> Result<Vec<String>> {
        let c = self.conn();
        let mut st = c.prepare("SELECT repository FROM blob_sources WHERE digest = ?1 AND registry = ?2")?;
        let rows = st.query_map([digest.as_str(), registry], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    /// Every (registry, repository) known to hold a blob.
    pub fn all_blob_sources(&self, digest: &Digest) -> Result<Vec<(String, String)>> {
        let c = self.conn();
        let mut st = c.prepare("SELECT registry, repository FROM blob_sources WHERE digest = ?1")?;
        let rows = st.query_map([digest.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    /// How many images use each layer.
    pub fn layer_use_counts(&self) -> Result<std::collections::HashMap<Digest, u64>> {
        let c = self.conn();
        let mut st = c.prepare("SELECT chain_id, COUNT(DISTINCT image_id) FROM image_layers GROUP BY chain_id")?;
        let rows: Vec<(String, i64)> =
            st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<rusqlite::Result<_>>()?;
        rows.into_iter().map(|(c, n)| Ok((Digest::parse(&c)?, n as u64))).collect()
    }
}

fn image_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ImageRecord> {
    Ok(ImageRecord { id: digest(r.get(0)?)?, manifest: digest(r.get(1)?)?, created: r.get(2)?, added: r.get(3)? })
}
