//! Events, as Docker's `events` shows them: what happened to containers,
//! images, networks and volumes, recorded in the store by the operation
//! that did it (so every strata process's events are seen, whichever
//! process asks), each with a nanosecond time and a sequence number; `events`
//! reads a time range and follows new ones. The newest 10,000 are kept.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::core::Core;
use crate::error::Result;

/// One event.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// Order of recording.
    pub seq: i64,
    /// Nanoseconds since the epoch.
    pub time: i128,
    /// `container`, `image`, `network` or `volume`.
    #[serde(rename = "Type")]
    pub kind: String,
    /// `create`, `start`, `die`, `destroy`, `pull`, `tag`, `untag`, `delete`, ...
    #[serde(rename = "Action")]
    pub action: String,
    /// The object's ID (or, for images, its name as Docker gives it).
    pub id: String,
    /// More about it: name, image, exit code, ...
    pub attributes: BTreeMap<String, String>,
}

/// Record an event; a failure to record is logged, never the operation's failure.
pub fn record(core: &Core, kind: &str, action: &str, id: &str, attributes: &[(&str, &str)]) {
    let attrs: BTreeMap<&str, &str> = attributes.iter().copied().collect();
    let time = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
    let attrs = serde_json::to_string(&attrs).expect("attributes serialize");
    if let Err(e) = core.store.add_event(time, kind, action, id, &attrs) {
        tracing::warn!("recording a {kind} {action} event: {e}");
    }
}

/// Events after sequence number `after`, oldest first.
pub fn since(core: &Core, after: i64) -> Result<Vec<Event>> {
    Ok(core
        .store
        .events_after(after)?
        .into_iter()
        .map(|(seq, time, kind, action, id, attrs)| Event {
            seq,
            time: i128::from(time),
            kind,
            action,
            id,
            attributes: serde_json::from_str(&attrs).unwrap_or_default(),
        })
        .collect())
}
