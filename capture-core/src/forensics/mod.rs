//! Forensics: raw packets kept next to the dissection, to investigate later in wirelens or
//! Wireshark.
//!
//! - [`ring`]: the raw capture ring (`--raw-ring DIR`): the most recent packets of a live
//!   capture as rotating pcapng segments on disk, bounded in bytes, oldest first out, written by
//!   its own thread off the capture path;
//! - [`select`]: which packets belong to a set of connections (5-tuple and time span), IP
//!   fragments included;
//! - [`export`]: writes the selected packets as pcapng, with the TLS secrets of the exported
//!   sessions in a Decryption Secrets Block;
//! - [`snapshot`]: named, frozen copies of a time window (packets and entries) that outlive the
//!   ring's rotation and restarts.

pub mod export;
pub mod keys;
pub mod ring;
pub mod select;
pub mod snapshot;

/// Why a forensics operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ForensicsError {
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    File(#[from] crate::source::file::FileError),
    #[error("{0}")]
    Invalid(String),
}

impl ForensicsError {
    pub(crate) fn io(what: &'static str, path: &std::path::Path) -> impl FnOnce(std::io::Error) -> ForensicsError {
        let path = path.to_path_buf();
        move |source| ForensicsError::Io { what, path, source }
    }
}

/// `path` with `suffix` appended to its file name (`x.pcapng` → `x.pcapng.part`).
pub(crate) fn beside(path: &std::path::Path, suffix: &str) -> std::path::PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(suffix);
    s.into()
}

/// Creates `dir` (and its parents) readable by its owner only, as captured traffic should be;
/// an existing directory is left as it is.
pub fn private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
}
