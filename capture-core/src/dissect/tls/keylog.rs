//! NSS key log files (`SSLKEYLOGFILE`): secrets by client random.
//!
//! Lines are `LABEL <client random hex> <secret hex>`; `#` comments and unknown labels are
//! skipped. The secrets never leave this module's types except into key derivation: the `Debug`
//! output shows only how many there are, and nothing here logs them.

use std::collections::HashMap;
use std::path::Path;

/// The secrets of one session (one client random).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secrets {
    /// TLS ≤ 1.2: `CLIENT_RANDOM`, the 48-byte master secret.
    pub master: Option<Box<[u8]>>,
    pub client_handshake: Option<Box<[u8]>>,
    pub server_handshake: Option<Box<[u8]>>,
    /// `CLIENT_TRAFFIC_SECRET_0` / `SERVER_TRAFFIC_SECRET_0`.
    pub client_traffic: Option<Box<[u8]>>,
    pub server_traffic: Option<Box<[u8]>>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secrets(redacted)")
    }
}

/// Every secret of the key logs read, by client random.
#[derive(Default, Clone)]
pub struct KeyLog {
    by_random: HashMap<[u8; 32], Secrets>,
}

impl std::fmt::Debug for KeyLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyLog({} sessions)", self.by_random.len())
    }
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// A key log line that was not understood, by line number (the text is not repeated: it may
/// hold a secret).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {bad} line(s) of the key log are not `LABEL <client random> <secret>` (first at line {first})")]
pub struct KeyLogWarning {
    pub path: String,
    pub bad: usize,
    pub first: usize,
}

impl KeyLog {
    pub fn len(&self) -> usize {
        self.by_random.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_random.is_empty()
    }

    /// The secrets for a client random.
    pub fn get(&self, client_random: &[u8]) -> Option<&Secrets> {
        self.by_random.get(<&[u8; 32]>::try_from(client_random).ok()?)
    }

    /// Adds the lines of a key log text; returns (lines used, lines not understood and the
    /// first such line number).
    pub fn add_text(&mut self, text: &str) -> (usize, usize, usize) {
        let (mut used, mut bad, mut first_bad) = (0, 0, 0);
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut it = line.split_ascii_whitespace();
            let (Some(label), Some(random), Some(secret), None) = (it.next(), it.next(), it.next(), it.next()) else {
                bad += 1;
                if first_bad == 0 {
                    first_bad = n + 1;
                }
                continue;
            };
            let (Some(random), Some(secret)) = (unhex(random), unhex(secret)) else {
                bad += 1;
                if first_bad == 0 {
                    first_bad = n + 1;
                }
                continue;
            };
            let Ok(random) = <[u8; 32]>::try_from(random) else {
                bad += 1;
                if first_bad == 0 {
                    first_bad = n + 1;
                }
                continue;
            };
            let s = self.by_random.entry(random).or_default();
            let slot = match label {
                "CLIENT_RANDOM" => &mut s.master,
                "CLIENT_HANDSHAKE_TRAFFIC_SECRET" => &mut s.client_handshake,
                "SERVER_HANDSHAKE_TRAFFIC_SECRET" => &mut s.server_handshake,
                "CLIENT_TRAFFIC_SECRET_0" => &mut s.client_traffic,
                "SERVER_TRAFFIC_SECRET_0" => &mut s.server_traffic,
                // EXPORTER_SECRET, early traffic secrets, RSA pre-master lines: not used.
                _ => continue,
            };
            *slot = Some(secret.into_boxed_slice());
            used += 1;
        }
        (used, bad, first_bad)
    }

    /// Reads a key log file. Lines not understood are reported, never echoed.
    pub fn add_file(&mut self, path: &Path) -> std::io::Result<Option<KeyLogWarning>> {
        let text = std::fs::read_to_string(path)?;
        let (_, bad, first) = self.add_text(&text);
        Ok((bad > 0).then(|| KeyLogWarning {
            path: path.display().to_string(),
            bad,
            first,
        }))
    }
}

/// Key logs that can grow while a live capture runs: engines pick up a new version before
/// their next packet.
#[derive(Debug, Default)]
pub struct SharedKeys {
    keys: parking_lot::RwLock<Option<std::sync::Arc<KeyLog>>>,
    version: std::sync::atomic::AtomicU64,
}

impl SharedKeys {
    pub fn new(keys: Option<std::sync::Arc<KeyLog>>) -> Self {
        SharedKeys {
            keys: parking_lot::RwLock::new(keys),
            version: std::sync::atomic::AtomicU64::new(1),
        }
    }

    /// The current keys and their version.
    pub fn get(&self) -> (u64, Option<std::sync::Arc<KeyLog>>) {
        let k = self.keys.read().clone();
        (self.version.load(std::sync::atomic::Ordering::Acquire), k)
    }

    pub fn version(&self) -> u64 {
        self.version.load(std::sync::atomic::Ordering::Acquire)
    }

    pub fn set(&self, keys: std::sync::Arc<KeyLog>) {
        *self.keys.write() = Some(keys);
        self.version.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }
}

/// Key log files and the sizes they had when last read.
#[derive(Debug)]
pub struct KeyLogFiles {
    paths: Vec<std::path::PathBuf>,
    sizes: Vec<u64>,
}

impl KeyLogFiles {
    /// Reads every file; lines not understood are returned as warnings.
    pub fn read(paths: &[std::path::PathBuf]) -> std::io::Result<(KeyLogFiles, KeyLog, Vec<KeyLogWarning>)> {
        let mut keys = KeyLog::default();
        let mut warnings = Vec::new();
        let mut sizes = Vec::new();
        for p in paths {
            sizes.push(std::fs::metadata(p)?.len());
            if let Some(w) = keys.add_file(p)? {
                warnings.push(w);
            }
        }
        Ok((
            KeyLogFiles {
                paths: paths.to_vec(),
                sizes,
            },
            keys,
            warnings,
        ))
    }

    /// When a file changed size since it was read: every file read again. `None` when none
    /// changed or one cannot be read now (the keys stay as they were).
    pub fn reread_if_changed(&mut self) -> Option<KeyLog> {
        let now: Vec<u64> = self
            .paths
            .iter()
            .map(|p| std::fs::metadata(p).map(|m| m.len()).ok())
            .collect::<Option<_>>()?;
        if now == self.sizes {
            return None;
        }
        let (again, keys, _) = KeyLogFiles::read(&self.paths).ok()?;
        *self = again;
        Some(keys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_nss_lines_and_never_prints_secrets() {
        let r = "00".repeat(32);
        let text = format!(
            "# comment\nCLIENT_RANDOM {r} {}\nSERVER_TRAFFIC_SECRET_0 {r} {}\nEXPORTER_SECRET {r} aa\nbroken line\n",
            "ab".repeat(48),
            "cd".repeat(32)
        );
        let mut k = KeyLog::default();
        assert_eq!(k.add_text(&text), (2, 1, 5));
        let s = k.get(&[0; 32]).unwrap();
        assert_eq!(s.master.as_deref(), Some(&[0xab; 48][..]));
        assert_eq!(s.server_traffic.as_deref(), Some(&[0xcd; 32][..]));
        assert!(k.get(&[1; 32]).is_none());
        let shown = format!("{k:?} {s:?}");
        assert!(!shown.contains("abab") && !shown.contains("cdcd"), "{shown}");
    }

    #[test]
    fn a_growing_file_is_read_again() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k.log");
        let r = "00".repeat(32);
        std::fs::write(&p, "").unwrap();
        let (mut files, keys, _) = KeyLogFiles::read(std::slice::from_ref(&p)).unwrap();
        assert!(keys.is_empty());
        assert!(files.reread_if_changed().is_none());
        std::fs::write(&p, format!("CLIENT_RANDOM {r} {}\n", "ab".repeat(48))).unwrap();
        let keys = files.reread_if_changed().unwrap();
        assert!(keys.get(&[0; 32]).is_some());
        assert!(files.reread_if_changed().is_none());
        let shared = SharedKeys::new(None);
        let v = shared.version();
        shared.set(std::sync::Arc::new(keys));
        assert!(shared.version() > v && shared.get().1.is_some());
    }
}
