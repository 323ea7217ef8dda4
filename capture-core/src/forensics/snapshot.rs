//! Snapshots: a time window of the packets (and the entries that matched) frozen under a name.
//!
//! Each snapshot is a directory `DIR/NAME/` holding `packets.pcapng` (openable as a source with
//! `--pcap`, in Wireshark, or through `export_pcap {snapshot}`), `entries.json` (the entries
//! that matched when it was made) and `snapshot.json` (what it is). It is built in a hidden
//! directory and renamed into place, so a listed snapshot is always complete. Snapshots live
//! beside the raw ring (outside its byte budget: they are kept until deleted) and survive
//! restarts.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::ForensicsError;
use super::export::ExportSummary;
use crate::time::Timestamp;

/// The packets' file in a snapshot directory.
pub const PACKETS_FILE: &str = "packets.pcapng";
const ENTRIES_FILE: &str = "entries.json";
const META_FILE: &str = "snapshot.json";
/// Longest snapshot name.
pub const MAX_NAME: usize = 64;

/// What a snapshot holds.
#[derive(Debug, Clone, PartialEq)]
pub struct SnapshotInfo {
    pub name: String,
    /// The snapshot's `packets.pcapng`.
    pub packets_path: PathBuf,
    pub created: Timestamp,
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
    pub filter: Option<String>,
    /// Where the packets came from (`raw ring DIR`, the capture files, the demo).
    pub source: String,
    pub packets: u64,
    pub flows: u64,
    pub entries: u64,
    /// Bytes of the snapshot's files.
    pub bytes: u64,
    pub first_packet: Option<Timestamp>,
    pub last_packet: Option<Timestamp>,
    pub tls_sessions_with_keys: u64,
}

/// What to record about a new snapshot.
#[derive(Debug, Clone)]
pub struct NewSnapshot<'a> {
    pub name: &'a str,
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
    pub filter: Option<&'a str>,
    pub source: String,
}

/// The snapshots under one directory.
#[derive(Debug, Clone)]
pub struct SnapshotStore {
    dir: PathBuf,
}

/// Names are 1 to 64 letters, digits, `.`, `_` and `-`, not starting with `.`: they are
/// directory names and appear in paths and URLs.
pub fn check_name(name: &str) -> Result<(), ForensicsError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME
        && !name.starts_with('.')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(ForensicsError::Invalid(format!(
            "snapshot name `{}`: use 1 to {MAX_NAME} letters, digits, `.`, `_` or `-`, not starting with `.`",
            name.escape_debug()
        )))
    }
}

fn ts_json(t: Option<Timestamp>) -> Value {
    t.map_or(Value::Null, |t| Value::String(t.to_rfc3339()))
}

fn ts_of(v: &Value) -> Option<Timestamp> {
    v.as_str().and_then(|s| Timestamp::parse_rfc3339(s).ok())
}

impl SnapshotStore {
    pub fn new(dir: PathBuf) -> SnapshotStore {
        SnapshotStore { dir }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Creates snapshot `new.name`: `write` writes the packets to the path it is given;
    /// `entries` is stored beside them.
    pub fn create(
        &self,
        new: &NewSnapshot<'_>,
        entries: &[Value],
        write: impl FnOnce(&Path) -> Result<ExportSummary, ForensicsError>,
    ) -> Result<SnapshotInfo, ForensicsError> {
        check_name(new.name)?;
        let fin = self.dir.join(new.name);
        if fin.exists() {
            return Err(ForensicsError::Invalid(format!(
                "a snapshot named `{}` exists already: choose another name, or delete_snapshot it first",
                new.name
            )));
        }
        super::private_dir(&self.dir).map_err(ForensicsError::io("creating the snapshot directory", &self.dir))?;
        let tmp = self.dir.join(format!(".{}.{}.tmp", new.name, std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        super::private_dir(&tmp).map_err(ForensicsError::io("creating", &tmp))?;
        let result = (|| {
            let summary = write(&tmp.join(PACKETS_FILE))?;
            let entries_path = tmp.join(ENTRIES_FILE);
            let text = serde_json::to_vec(entries).map_err(|e| ForensicsError::Invalid(format!("entries: {e}")))?;
            std::fs::write(&entries_path, text).map_err(ForensicsError::io("writing", &entries_path))?;
            let meta = json!({
                "name": new.name,
                "created": Timestamp::now().to_rfc3339(),
                "since": ts_json(new.since),
                "until": ts_json(new.until),
                "filter": new.filter,
                "source": new.source,
                "packets": summary.packets,
                "flows": summary.flows.len(),
                "entries": entries.len(),
                "first_packet": ts_json(summary.first_ts),
                "last_packet": ts_json(summary.last_ts),
                "tls_sessions_with_keys": summary.tls_sessions_with_keys,
            });
            let meta_path = tmp.join(META_FILE);
            std::fs::write(&meta_path, meta.to_string()).map_err(ForensicsError::io("writing", &meta_path))?;
            std::fs::rename(&tmp, &fin).map_err(ForensicsError::io("renaming", &tmp))?;
            Ok(())
        })();
        if let Err(e) = result {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e);
        }
        self.get(new.name)
    }

    /// One snapshot, by name.
    pub fn get(&self, name: &str) -> Result<SnapshotInfo, ForensicsError> {
        check_name(name)?;
        let dir = self.dir.join(name);
        let meta_path = dir.join(META_FILE);
        let text = std::fs::read_to_string(&meta_path).map_err(|_| self.unknown(name))?;
        let m: Value = serde_json::from_str(&text).map_err(|e| {
            ForensicsError::Invalid(format!("{}: not a snapshot description: {e}", meta_path.display()))
        })?;
        let n = |k: &str| m[k].as_u64().unwrap_or(0);
        let bytes = std::fs::read_dir(&dir)
            .map(|d| d.flatten().filter_map(|e| e.metadata().ok()).map(|m| m.len()).sum())
            .unwrap_or(0);
        Ok(SnapshotInfo {
            name: name.to_string(),
            packets_path: dir.join(PACKETS_FILE),
            created: ts_of(&m["created"]).unwrap_or_default(),
            since: ts_of(&m["since"]),
            until: ts_of(&m["until"]),
            filter: m["filter"].as_str().map(String::from),
            source: m["source"].as_str().unwrap_or_default().to_string(),
            packets: n("packets"),
            flows: n("flows"),
            entries: n("entries"),
            bytes,
            first_packet: ts_of(&m["first_packet"]),
            last_packet: ts_of(&m["last_packet"]),
            tls_sessions_with_keys: n("tls_sessions_with_keys"),
        })
    }

    /// The entries stored with a snapshot.
    pub fn entries(&self, name: &str) -> Result<Vec<Value>, ForensicsError> {
        let info = self.get(name)?;
        let path = info.packets_path.with_file_name(ENTRIES_FILE);
        let text = std::fs::read(&path).map_err(ForensicsError::io("reading", &path))?;
        serde_json::from_slice(&text).map_err(|e| ForensicsError::Invalid(format!("{}: {e}", path.display())))
    }

    fn unknown(&self, name: &str) -> ForensicsError {
        let known: Vec<String> = self.list().into_iter().map(|s| s.name).collect();
        ForensicsError::Invalid(if known.is_empty() {
            format!("no snapshot named `{name}`: there are none yet (create_snapshot makes one)")
        } else {
            format!("no snapshot named `{name}`; the snapshots are: {}", known.join(", "))
        })
    }

    /// Every complete snapshot, oldest first.
    pub fn list(&self) -> Vec<SnapshotInfo> {
        let Ok(dir) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut all: Vec<SnapshotInfo> = dir
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| check_name(n).is_ok())
            .filter_map(|n| self.get(&n).ok())
            .collect();
        all.sort_by(|a, b| (a.created, &a.name).cmp(&(b.created, &b.name)));
        all
    }

    /// Deletes a snapshot; returns what it held.
    pub fn delete(&self, name: &str) -> Result<SnapshotInfo, ForensicsError> {
        let info = self.get(name)?;
        let dir = self.dir.join(name);
        std::fs::remove_dir_all(&dir).map_err(ForensicsError::io("deleting", &dir))?;
        Ok(info)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_list_read_delete() {
        let dir = tempfile::tempdir().unwrap();
        let store = SnapshotStore::new(dir.path().join("snapshots"));
        assert!(store.list().is_empty());
        let new = NewSnapshot {
            name: "incident-1",
            since: Some(Timestamp(1_000_000_000)),
            until: None,
            filter: Some("http"),
            source: "test".into(),
        };
        let entries = vec![json!({"id": "1"}), json!({"id": "2"})];
        let info = store
            .create(&new, &entries, |p| {
                std::fs::write(p, b"pcapng").unwrap();
                Ok(ExportSummary {
                    packets: 3,
                    flows: [1u64, 2].into(),
                    ..ExportSummary::default()
                })
            })
            .unwrap();
        assert_eq!((info.packets, info.flows, info.entries), (3, 2, 2));
        assert_eq!((info.since, info.until), (Some(Timestamp(1_000_000_000)), None));
        assert_eq!(info.filter.as_deref(), Some("http"));
        assert_eq!(std::fs::read(&info.packets_path).unwrap(), b"pcapng");
        assert_eq!(store.entries("incident-1").unwrap(), entries);
        assert_eq!(store.list(), vec![info.clone()]);
        // The same name again is refused; a failed write leaves nothing behind.
        assert!(
            store
                .create(&new, &[], |_| unreachable!())
                .unwrap_err()
                .to_string()
                .contains("exists already")
        );
        let failed = NewSnapshot {
            name: "broken",
            ..new.clone()
        };
        assert!(
            store
                .create(&failed, &[], |_| Err(ForensicsError::Invalid("disk full".into())))
                .is_err()
        );
        assert_eq!(std::fs::read_dir(store.dir()).unwrap().count(), 1);
        // Bad names never reach the file system.
        for bad in ["", ".hidden", "a/b", "../x", &"x".repeat(65)] {
            assert!(store.get(bad).is_err(), "{bad}");
        }
        let e = store.delete("nope").unwrap_err().to_string();
        assert!(e.contains("incident-1"), "{e}");
        assert_eq!(store.delete("incident-1").unwrap(), info);
        assert!(store.list().is_empty());
    }
}
