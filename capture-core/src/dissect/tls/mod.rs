//! TLS handshake metadata, found by content on any port, without keys.
//!
//! - [`parse`]: record headers, the probe, ClientHello / ServerHello / Certificate reading
//!   (through `tls-parser` and `x509-parser`), JA3, JA3S and JA4 fingerprints, names of
//!   versions, cipher suites and alerts;
//! - [`state`]: one connection: record framing per direction (application data is counted and
//!   skipped, never buffered), handshake messages reassembled across records up to
//!   `tls_max_handshake_bytes`, alerts, resumption, handshake duration, gaps.
//!
//! Every connection whose first bytes are a TLS handshake record becomes one `tls` entry when it
//! ends (or when the capture ends).

pub mod crypto;
pub mod keylog;
pub mod parse;
pub mod state;

#[cfg(test)]
mod tests;

use crate::time::Timestamp;

/// Anomalies and facts of a `tls` entry, as bit flags.
pub mod tls_flags {
    /// The handshake did not complete in the capture (no Finished seen from both sides).
    pub const HANDSHAKE_INCOMPLETE: u32 = 1;
    /// Bytes of the connection were missing from the capture (a TCP gap).
    pub const GAP: u32 = 2;
    /// A record header was not TLS: the rest of that direction was not read.
    pub const FRAMING_LOST: u32 = 4;
    /// A handshake message did not parse, or was larger than `tls_max_handshake_bytes`.
    pub const HANDSHAKE_MALFORMED: u32 = 8;
    /// The ServerHello was a HelloRetryRequest (TLS 1.3): the client sent a second ClientHello.
    pub const HELLO_RETRY: u32 = 16;
    /// No ClientHello was captured (the capture started after it).
    pub const NO_CLIENT_HELLO: u32 = 32;
    /// Decryption of a direction ended at a gap (the lost records' sequence numbers are
    /// unknown); what was decrypted before it stands.
    pub const DECRYPTION_STOPPED: u32 = 64;
}

/// One alert record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsAlert {
    /// True when the client sent it.
    pub from_client: bool,
    /// Level and description; `None` when the alert was encrypted.
    pub level: Option<u8>,
    pub description: Option<u8>,
    pub ts: Timestamp,
}

impl TlsAlert {
    /// `close_notify`, `handshake_failure`, … or `encrypted` when it cannot be read.
    pub fn name(&self) -> std::borrow::Cow<'static, str> {
        match self.description {
            Some(d) => parse::alert_name(d).map_or_else(|| format!("alert_{d}").into(), Into::into),
            None => "encrypted".into(),
        }
    }
}

/// The server's leaf certificate (TLS ≤ 1.2, where it travels in clear).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TlsCertificate {
    /// RFC 4514 text of the subject and issuer distinguished names.
    pub subject: Box<str>,
    pub issuer: Box<str>,
    /// DNS names and IP addresses of the subjectAltName extension, at most `tls_max_list` kept.
    pub sans: Vec<Box<str>>,
    /// Validity, seconds since the Unix epoch.
    pub not_before: i64,
    pub not_after: i64,
    /// Certificates in the chain the server sent (the leaf included).
    pub chain_len: u32,
}

/// How a session was resumed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resumption {
    /// TLS ≤ 1.2: the server echoed the client's session id and skipped the certificate.
    SessionId,
    /// TLS ≤ 1.2: the client offered a session ticket and the server skipped the certificate.
    Ticket,
    /// TLS 1.3: the server accepted a pre-shared key.
    Psk,
}

impl Resumption {
    pub fn name(self) -> &'static str {
        match self {
            Resumption::SessionId => "session_id",
            Resumption::Ticket => "ticket",
            Resumption::Psk => "psk",
        }
    }
}

/// Whether the connection's records were decrypted, or why not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Decryption {
    /// No key log was given (`--keylog`).
    #[default]
    NoKeyLog,
    /// Keys were derived and no protected record came yet (internal until the entry is made).
    Pending,
    /// Records authenticated and were decrypted.
    Decrypted,
    /// The key log has no secrets for this session (matched by the ClientHello's random).
    NoSecrets,
    /// The ClientHello was not captured, so the session cannot be looked up.
    NoClientHello,
    /// The cipher suite is not one that is decrypted, or the version is below TLS 1.2.
    UnsupportedCipher,
    /// A record did not authenticate with the derived keys: the key log's secret is wrong.
    Failed,
    /// Keys were found but no protected record followed.
    NothingProtected,
}

impl Decryption {
    /// `decrypted`, or `not decrypted: why`.
    pub fn text(self) -> &'static str {
        match self {
            Decryption::NoKeyLog => "not decrypted: no key log given (--keylog)",
            Decryption::Pending | Decryption::NothingProtected => {
                "not decrypted: no protected record after the keys were found"
            }
            Decryption::Decrypted => "decrypted",
            Decryption::NoSecrets => "not decrypted: the key log has no secrets for this session's client random",
            Decryption::NoClientHello => "not decrypted: the ClientHello (its client random) was not captured",
            Decryption::UnsupportedCipher => {
                "not decrypted: the cipher suite or version is not supported for decryption (TLS 1.2 and 1.3 are)"
            }
            Decryption::Failed => "not decrypted: records do not authenticate with the key log's secret (wrong key)",
        }
    }
}

/// The handshake metadata of one TLS connection.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TlsEntry {
    /// Negotiated version: the ServerHello's `supported_versions`, else its legacy version.
    pub version: Option<u16>,
    /// The version the ClientHello's record and body announced (legacy field).
    pub client_version: Option<u16>,
    pub sni: Option<Box<str>>,
    /// ALPN protocols the client offered, in its order (at most `tls_max_list`).
    pub alpn_offered: Vec<Box<str>>,
    /// ALPN protocol the server selected (in clear only up to TLS 1.2).
    pub alpn_selected: Option<Box<str>>,
    /// Cipher suite the server selected.
    pub cipher: Option<u16>,
    /// Cipher suites the client offered (count, GREASE included).
    pub ciphers_offered: u32,
    pub ja3: Option<Box<str>>,
    pub ja3s: Option<Box<str>>,
    pub ja4: Option<Box<str>>,
    /// ClientHello to the end of the handshake (both Finished messages).
    pub handshake_us: Option<u64>,
    pub resumption: Option<Resumption>,
    pub certificate: Option<Box<TlsCertificate>>,
    /// Alerts, at most `tls_max_list` kept; `alert_count` counts them all.
    pub alerts: Vec<TlsAlert>,
    pub alert_count: u32,
    /// Records whose type on the wire is application_data, client→server and server→client
    /// (in TLS 1.3 the encrypted handshake records are among them).
    pub app_records: [u64; 2],
    /// Payload bytes of those records.
    pub app_bytes: [u64; 2],
    /// [`tls_flags`] bits.
    pub flags: u32,
    pub decryption: Decryption,
}

/// What the L7 entries decrypted from a connection carry of its handshake: the fields an SRE
/// filters them by (`tls_sni == "api.example.com"`), shared by every entry of the connection.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TlsConn {
    pub version: Option<u16>,
    pub sni: Option<Box<str>>,
    pub alpn_selected: Option<Box<str>>,
    pub cipher: Option<u16>,
    pub ja3: Option<Box<str>>,
    pub ja3s: Option<Box<str>>,
    pub ja4: Option<Box<str>>,
}

impl TlsConn {
    /// `TLS 1.2`, `TLS 1.3`, … as tshark prints it.
    pub fn version_name(&self) -> Option<&'static str> {
        self.version.and_then(parse::version_name)
    }

    /// IANA name of the selected cipher suite.
    pub fn cipher_name(&self) -> Option<std::borrow::Cow<'static, str>> {
        self.cipher.map(parse::cipher_name)
    }
}

impl TlsEntry {
    /// `TLS 1.2`, `TLS 1.3`, … as tshark prints it.
    pub fn version_name(&self) -> Option<&'static str> {
        self.version.and_then(parse::version_name)
    }

    /// IANA name of the selected cipher suite (`TLS_AES_128_GCM_SHA256`).
    pub fn cipher_name(&self) -> Option<std::borrow::Cow<'static, str>> {
        self.cipher.map(parse::cipher_name)
    }

    /// The connection fields its decrypted L7 entries carry.
    pub fn conn(&self) -> TlsConn {
        TlsConn {
            version: self.version,
            sni: self.sni.clone(),
            alpn_selected: self.alpn_selected.clone(),
            cipher: self.cipher,
            ja3: self.ja3.clone(),
            ja3s: self.ja3s.clone(),
            ja4: self.ja4.clone(),
        }
    }

    /// Names of the kept alerts, in wire order.
    pub fn alert_names(&self) -> Vec<std::borrow::Cow<'static, str>> {
        self.alerts.iter().map(TlsAlert::name).collect()
    }

    /// Heap bytes held (for the store budget).
    pub fn heap_bytes(&self) -> usize {
        let s = |o: &Option<Box<str>>| o.as_ref().map_or(0, |s| s.len());
        let v = |v: &[Box<str>]| v.iter().map(|s| s.len() + 16).sum::<usize>();
        s(&self.sni)
            + v(&self.alpn_offered)
            + s(&self.alpn_selected)
            + s(&self.ja3)
            + s(&self.ja3s)
            + s(&self.ja4)
            + self.alerts.capacity() * std::mem::size_of::<TlsAlert>()
            + self.certificate.as_ref().map_or(0, |c| {
                std::mem::size_of::<TlsCertificate>() + c.subject.len() + c.issuer.len() + v(&c.sans)
            })
    }

    /// One line: `TLS 1.3 example.com h2 TLS_AES_128_GCM_SHA256`, names escaped and cut.
    pub fn summary(&self) -> String {
        use crate::entry::sanitize;
        let mut s = String::from(self.version_name().unwrap_or("TLS (no ServerHello)"));
        match &self.sni {
            Some(n) => {
                s.push(' ');
                s.push_str(&sanitize(n, 64));
            }
            None => s.push_str(" (no SNI)"),
        }
        if let Some(a) = &self.alpn_selected {
            s.push(' ');
            s.push_str(&sanitize(a, 24));
        } else if !self.alpn_offered.is_empty() {
            let offered: Vec<String> = self.alpn_offered.iter().take(4).map(|a| sanitize(a, 16)).collect();
            s.push_str(&format!(" alpn?[{}]", offered.join(",")));
        }
        if let Some(c) = self.cipher_name() {
            s.push(' ');
            s.push_str(&c);
        }
        if let Some(r) = self.resumption {
            s.push_str(&format!(" resumed({})", r.name()));
        }
        if self.alert_count > 0 {
            let names: Vec<_> = self.alert_names();
            s.push_str(&format!(" alerts[{}]", names.join(",")));
        }
        if self.flags & tls_flags::HANDSHAKE_INCOMPLETE != 0 {
            s.push_str(" handshake incomplete");
        }
        if self.decryption == Decryption::Decrypted {
            s.push_str(" decrypted");
        }
        s
    }
}
