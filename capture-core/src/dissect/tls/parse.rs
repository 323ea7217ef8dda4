//! TLS wire facts: record headers, the probe, hello and certificate reading, fingerprints, names.
//!
//! Handshake message bodies are decoded by `tls-parser` and certificates by `x509-parser`; the
//! record layer and the extension walk are ours because they must count what they skip and keep
//! the exact wire order (JA3 and JA4 hash the extension types as sent, which a typed parse that
//! stops at the first malformed extension would lose).

use std::borrow::Cow;

use md5::{Digest as _, Md5};
use sha2::Sha256;
use tls_parser::{
    TlsCipherSuite, TlsExtension, TlsMessage, TlsMessageHandshake, parse_tls_client_hello_extension,
    parse_tls_message_handshake, parse_tls_server_hello_extension,
};

use crate::dissect::Probe;

/// Bytes of a record header: type, version, length.
pub const RECORD_HEADER_LEN: usize = 5;
/// Largest record body on the wire: 2^14 bytes of plaintext plus 2048 of expansion (RFC 5246
/// §6.2.3; TLS 1.3 allows 2^14 + 256, which is less).
pub const MAX_RECORD_LEN: usize = (1 << 14) + 2048;
/// Bytes of a handshake message header: type and 24-bit length.
pub const HANDSHAKE_HEADER_LEN: usize = 4;

pub const CHANGE_CIPHER_SPEC: u8 = 20;
pub const ALERT: u8 = 21;
pub const HANDSHAKE: u8 = 22;
pub const APPLICATION_DATA: u8 = 23;
pub const HEARTBEAT: u8 = 24;

pub const CLIENT_HELLO: u8 = 1;
pub const SERVER_HELLO: u8 = 2;
pub const ENCRYPTED_EXTENSIONS: u8 = 8;
pub const CERTIFICATE: u8 = 11;
pub const FINISHED: u8 = 20;
pub const KEY_UPDATE: u8 = 24;

pub const TLS13: u16 = 0x0304;

/// The random of a ServerHello that is a HelloRetryRequest (RFC 8446 §4.1.3).
const HELLO_RETRY_RANDOM: [u8; 32] = [
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91, 0xc2, 0xa2, 0x11,
    0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
];

/// A record header, checked: known content type, SSL 3.0 … TLS 1.3 record version, length within
/// [`MAX_RECORD_LEN`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordHeader {
    pub content_type: u8,
    pub version: u16,
    pub len: usize,
}

/// Reads the record header at the start of `b`: `Ok(None)` when fewer than 5 bytes are there,
/// `Err(())` when the bytes are not a TLS record header.
#[allow(clippy::result_unit_err)]
pub fn record_header(b: &[u8]) -> Result<Option<RecordHeader>, ()> {
    let Some(h) = b.get(..RECORD_HEADER_LEN) else {
        // What is there must still be plausible.
        let ok = b.first().is_none_or(|t| (CHANGE_CIPHER_SPEC..=HEARTBEAT).contains(t))
            && b.get(1).is_none_or(|&m| m == 3)
            && b.get(2).is_none_or(|&n| n <= 4);
        return if ok { Ok(None) } else { Err(()) };
    };
    let content_type = h[0];
    let version = u16::from_be_bytes([h[1], h[2]]);
    let len = usize::from(u16::from_be_bytes([h[3], h[4]]));
    if !(CHANGE_CIPHER_SPEC..=HEARTBEAT).contains(&content_type)
        || !(0x0300..=0x0304).contains(&version)
        || len > MAX_RECORD_LEN
    {
        return Err(());
    }
    Ok(Some(RecordHeader {
        content_type,
        version,
        len,
    }))
}

/// Does a direction start with a TLS handshake record carrying a ClientHello (or a ServerHello,
/// when the client's first bytes were not captured)? Needs the record header and the handshake
/// header (9 bytes); the handshake length must fit the record or run on into the next ones.
pub fn probe(b: &[u8]) -> Probe {
    let hdr = match record_header(b) {
        Err(()) => return Probe::NoMatch,
        Ok(None) => return Probe::NeedMore,
        Ok(Some(h)) => h,
    };
    if hdr.content_type != HANDSHAKE || hdr.len < HANDSHAKE_HEADER_LEN {
        return Probe::NoMatch;
    }
    let Some(hs) = b.get(RECORD_HEADER_LEN..RECORD_HEADER_LEN + HANDSHAKE_HEADER_LEN) else {
        return match b.get(RECORD_HEADER_LEN) {
            Some(t) if *t != CLIENT_HELLO && *t != SERVER_HELLO => Probe::NoMatch,
            _ => Probe::NeedMore,
        };
    };
    let body_len = (usize::from(hs[1]) << 16) | (usize::from(hs[2]) << 8) | usize::from(hs[3]);
    // A hello is at least version + random + three length bytes, and far below 64 KiB.
    if (hs[0] == CLIENT_HELLO || hs[0] == SERVER_HELLO) && (38..=0xffff).contains(&body_len) {
        Probe::Match
    } else {
        Probe::NoMatch
    }
}

/// A GREASE value (RFC 8701): `0x?a?a` with both bytes equal.
pub fn is_grease(v: u16) -> bool {
    v & 0x0f0f == 0x0a0a && v >> 8 == v & 0xff
}

/// The extensions of a hello as sent: (type, whole extension bytes with its header). A list cut
/// short ends the walk.
fn raw_extensions(mut ext: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        let h = ext.get(..4)?;
        let ty = u16::from_be_bytes([h[0], h[1]]);
        let len = usize::from(u16::from_be_bytes([h[2], h[3]]));
        let whole = ext.get(..4 + len)?;
        ext = &ext[4 + len..];
        Some((ty, whole))
    })
}

/// What a ClientHello says.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ClientHello {
    pub version: u16,
    pub random: [u8; 32],
    pub sni: Option<String>,
    pub alpn: Vec<String>,
    /// The session id was not empty (the client asks to resume).
    pub session_id: Vec<u8>,
    /// The client sent a non-empty session ticket.
    pub ticket: bool,
    pub ciphers: u32,
    pub ja3: String,
    pub ja4: String,
}

/// What a ServerHello says.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ServerHello {
    /// Legacy version field.
    pub legacy_version: u16,
    pub random: [u8; 32],
    /// `supported_versions` selection (TLS 1.3).
    pub selected_version: Option<u16>,
    pub cipher: u16,
    pub alpn: Option<String>,
    pub session_id: Vec<u8>,
    /// A pre-shared key was accepted (TLS 1.3 resumption).
    pub psk: bool,
    pub hello_retry: bool,
    pub ja3s: String,
}

impl ServerHello {
    pub fn version(&self) -> u16 {
        self.selected_version.unwrap_or(self.legacy_version)
    }
}

/// One handshake message: its type and whole bytes (header included).
pub enum Handshake {
    ClientHello(Box<ClientHello>),
    ServerHello(Box<ServerHello>),
    /// DER certificates of a Certificate message, leaf first.
    Certificate(Vec<Vec<u8>>),
    /// TLS 1.3 EncryptedExtensions (read once decrypted): the selected ALPN protocol.
    EncryptedExtensions(Option<String>),
    Finished,
    /// TLS 1.3 KeyUpdate (read once decrypted): the sender's next records use its next secret.
    KeyUpdate,
    Other(u8),
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn md5_hex(s: &str) -> String {
    hex(&Md5::digest(s.as_bytes()))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn dash_join(v: &[u16]) -> String {
    v.iter().map(u16::to_string).collect::<Vec<_>>().join("-")
}

/// The first 12 hex digits of the SHA-256 of `s`, or twelve zeros for an empty list (JA4).
fn ja4_hash(s: &str) -> String {
    if s.is_empty() {
        return "000000000000".into();
    }
    hex(&Sha256::digest(s.as_bytes()))[..12].to_string()
}

/// JA4's two-character version code.
fn ja4_version(v: u16) -> &'static str {
    match v {
        0x0304 => "13",
        0x0303 => "12",
        0x0302 => "11",
        0x0301 => "10",
        0x0300 => "s3",
        0x0002 => "s2",
        0xfeff => "d1",
        0xfefd => "d2",
        0xfefc => "d3",
        _ => "00",
    }
}

/// JA4's ALPN code: first and last character of the first protocol offered, or of its hex
/// text when either is not alphanumeric; `00` without ALPN.
fn ja4_alpn(first: Option<&[u8]>) -> String {
    let Some(a) = first.filter(|a| !a.is_empty()) else {
        return "00".into();
    };
    let (f, l) = (a[0], a[a.len() - 1]);
    if f.is_ascii_alphanumeric() && l.is_ascii_alphanumeric() {
        format!("{}{}", f as char, l as char)
    } else {
        let h = hex(a);
        let mut c = h.chars();
        format!("{}{}", c.next().unwrap_or('0'), c.next_back().unwrap_or('0'))
    }
}

/// Reads a ClientHello (the handshake message with its header). `max_list` caps the ALPN
/// protocols kept.
pub fn client_hello(msg: &[u8], max_list: usize) -> Option<ClientHello> {
    let Ok((_, TlsMessage::Handshake(TlsMessageHandshake::ClientHello(ch)))) = parse_tls_message_handshake(msg) else {
        return None;
    };
    let ciphers: Vec<u16> = ch.ciphers.iter().map(|c| c.0).collect();
    let mut out = ClientHello {
        version: ch.version.0,
        random: <[u8; 32]>::try_from(ch.random).ok()?,
        session_id: ch.session_id.unwrap_or_default().to_vec(),
        ciphers: u32::try_from(ciphers.len()).unwrap_or(u32::MAX),
        ..ClientHello::default()
    };
    let mut ext_types = Vec::new();
    let (mut groups, mut formats, mut sig_algs) = (Vec::new(), Vec::new(), Vec::new());
    let mut versions: Vec<u16> = Vec::new();
    let mut first_alpn: Option<Vec<u8>> = None;
    for (ty, whole) in raw_extensions(ch.ext.unwrap_or_default()) {
        ext_types.push(ty);
        let Ok((_, ext)) = parse_tls_client_hello_extension(whole) else {
            continue;
        };
        match ext {
            TlsExtension::SNI(names) => {
                if let Some((_, name)) = names.first() {
                    out.sni = Some(lossy(name));
                }
            }
            TlsExtension::ALPN(protos) => {
                first_alpn = protos.first().map(|p| p.to_vec());
                out.alpn = protos.iter().take(max_list).map(|p| lossy(p)).collect();
            }
            TlsExtension::EllipticCurves(g) => groups = g.iter().map(|g| g.0).collect(),
            TlsExtension::EcPointFormats(f) => formats = f.iter().map(|&f| u16::from(f)).collect(),
            TlsExtension::SignatureAlgorithms(s) => sig_algs = s,
            TlsExtension::SupportedVersions(v) => versions = v.iter().map(|v| v.0).collect(),
            TlsExtension::SessionTicket(t) => out.ticket = !t.is_empty(),
            _ => {}
        }
    }
    let no_grease = |v: &[u16]| v.iter().copied().filter(|&x| !is_grease(x)).collect::<Vec<u16>>();
    let (c, e, g) = (no_grease(&ciphers), no_grease(&ext_types), no_grease(&groups));
    out.ja3 = md5_hex(&format!(
        "{},{},{},{},{}",
        ch.version.0,
        dash_join(&c),
        dash_join(&e),
        dash_join(&g),
        dash_join(&formats)
    ));
    // JA4 (FoxIO): t<version><d|i><ciphers><extensions><alpn>_<ciphers hash>_<extensions hash>.
    let top = no_grease(&versions).into_iter().max().unwrap_or(ch.version.0);
    let sni = if ext_types.contains(&0) { 'd' } else { 'i' };
    let a = format!(
        "t{}{sni}{:02}{:02}{}",
        ja4_version(top),
        c.len().min(99),
        e.len().min(99),
        ja4_alpn(first_alpn.as_deref())
    );
    let mut cs: Vec<String> = c.iter().map(|x| format!("{x:04x}")).collect();
    cs.sort();
    let mut es: Vec<String> = e
        .iter()
        .filter(|&&x| x != 0 && x != 16)
        .map(|x| format!("{x:04x}"))
        .collect();
    es.sort();
    let sigs: Vec<String> = sig_algs.iter().map(|x| format!("{x:04x}")).collect();
    let ext_text = if es.is_empty() {
        String::new()
    } else if sigs.is_empty() {
        es.join(",")
    } else {
        format!("{}_{}", es.join(","), sigs.join(","))
    };
    out.ja4 = format!("{a}_{}_{}", ja4_hash(&cs.join(",")), ja4_hash(&ext_text));
    Some(out)
}

/// Reads a ServerHello (the handshake message with its header).
pub fn server_hello(msg: &[u8]) -> Option<ServerHello> {
    let Ok((_, TlsMessage::Handshake(TlsMessageHandshake::ServerHello(sh)))) = parse_tls_message_handshake(msg) else {
        return None;
    };
    let mut out = ServerHello {
        legacy_version: sh.version.0,
        random: <[u8; 32]>::try_from(sh.random).ok()?,
        cipher: sh.cipher.0,
        session_id: sh.session_id.unwrap_or_default().to_vec(),
        hello_retry: sh.random == HELLO_RETRY_RANDOM,
        ..ServerHello::default()
    };
    let mut ext_types = Vec::new();
    for (ty, whole) in raw_extensions(sh.ext.unwrap_or_default()) {
        ext_types.push(ty);
        let Ok((_, ext)) = parse_tls_server_hello_extension(whole) else {
            continue;
        };
        match ext {
            TlsExtension::ALPN(p) => out.alpn = p.first().map(|p| lossy(p)),
            TlsExtension::SupportedVersions(v) => out.selected_version = v.first().map(|v| v.0),
            TlsExtension::PreSharedKey(_) => out.psk = true,
            _ => {}
        }
    }
    out.ja3s = md5_hex(&format!("{},{},{}", sh.version.0, sh.cipher.0, dash_join(&ext_types)));
    Some(out)
}

/// The selected ALPN protocol of an EncryptedExtensions message (header included).
fn encrypted_extensions(msg: &[u8]) -> Option<Option<String>> {
    let body = msg.get(HANDSHAKE_HEADER_LEN..)?;
    let len = usize::from(u16::from_be_bytes([*body.first()?, *body.get(1)?]));
    let exts = body.get(2..2 + len)?;
    for (ty, whole) in raw_extensions(exts) {
        if ty == 16
            && let Ok((_, TlsExtension::ALPN(p))) = parse_tls_server_hello_extension(whole)
        {
            return Some(p.first().map(|p| lossy(p)));
        }
    }
    Some(None)
}

/// Reads one handshake message (header included); `None` when it does not parse. `tls13`: the
/// message was decrypted from a TLS 1.3 record (its Certificate has another layout and is not
/// read).
pub fn handshake(msg: &[u8], max_list: usize, tls13: bool) -> Option<Handshake> {
    let ty = *msg.first()?;
    match ty {
        ENCRYPTED_EXTENSIONS if tls13 => encrypted_extensions(msg).map(Handshake::EncryptedExtensions),
        FINISHED => Some(Handshake::Finished),
        KEY_UPDATE if tls13 => Some(Handshake::KeyUpdate),
        CERTIFICATE if tls13 => Some(Handshake::Other(ty)),
        CLIENT_HELLO => client_hello(msg, max_list).map(|c| Handshake::ClientHello(Box::new(c))),
        SERVER_HELLO => server_hello(msg).map(|s| Handshake::ServerHello(Box::new(s))),
        CERTIFICATE => match parse_tls_message_handshake(msg) {
            Ok((_, TlsMessage::Handshake(TlsMessageHandshake::Certificate(c)))) => Some(Handshake::Certificate(
                c.cert_chain.iter().map(|c| c.data.to_vec()).collect(),
            )),
            _ => None,
        },
        t => Some(Handshake::Other(t)),
    }
}

/// Subject, issuer, subjectAltNames and validity of a DER certificate.
pub fn certificate(der: &[u8], max_list: usize) -> Option<super::TlsCertificate> {
    use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let mut sans = Vec::new();
    if let Ok(Some(ext)) = cert.subject_alternative_name() {
        for n in &ext.value.general_names {
            if sans.len() >= max_list {
                break;
            }
            match n {
                GeneralName::DNSName(d) => sans.push((*d).into()),
                GeneralName::IPAddress(ip) => match ip.len() {
                    4 => sans.push(
                        std::net::Ipv4Addr::from(<[u8; 4]>::try_from(*ip).ok()?)
                            .to_string()
                            .into(),
                    ),
                    16 => sans.push(
                        std::net::Ipv6Addr::from(<[u8; 16]>::try_from(*ip).ok()?)
                            .to_string()
                            .into(),
                    ),
                    _ => {}
                },
                _ => {}
            }
        }
    }
    Some(super::TlsCertificate {
        subject: cert.subject().to_string().into(),
        issuer: cert.issuer().to_string().into(),
        sans,
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
        chain_len: 1,
    })
}

/// `TLS 1.2` as tshark prints a version.
pub fn version_name(v: u16) -> Option<&'static str> {
    Some(match v {
        0x0300 => "SSL 3.0",
        0x0301 => "TLS 1.0",
        0x0302 => "TLS 1.1",
        0x0303 => "TLS 1.2",
        0x0304 => "TLS 1.3",
        _ => return None,
    })
}

/// IANA name of a cipher suite, or `0x1234` when unknown.
pub fn cipher_name(id: u16) -> Cow<'static, str> {
    TlsCipherSuite::from_id(id).map_or_else(|| format!("0x{id:04X}").into(), |c| c.name.into())
}

/// Name of an alert description (RFC 8446 §6, RFC 5246 §7.2, RFC 7301).
pub fn alert_name(d: u8) -> Option<&'static str> {
    Some(match d {
        0 => "close_notify",
        10 => "unexpected_message",
        20 => "bad_record_mac",
        21 => "decryption_failed",
        22 => "record_overflow",
        30 => "decompression_failure",
        40 => "handshake_failure",
        41 => "no_certificate",
        42 => "bad_certificate",
        43 => "unsupported_certificate",
        44 => "certificate_revoked",
        45 => "certificate_expired",
        46 => "certificate_unknown",
        47 => "illegal_parameter",
        48 => "unknown_ca",
        49 => "access_denied",
        50 => "decode_error",
        51 => "decrypt_error",
        60 => "export_restriction",
        70 => "protocol_version",
        71 => "insufficient_security",
        80 => "internal_error",
        86 => "inappropriate_fallback",
        90 => "user_canceled",
        100 => "no_renegotiation",
        109 => "missing_extension",
        110 => "unsupported_extension",
        111 => "certificate_unobtainable",
        112 => "unrecognized_name",
        113 => "bad_certificate_status_response",
        114 => "bad_certificate_hash_value",
        115 => "unknown_psk_identity",
        116 => "certificate_required",
        120 => "no_application_protocol",
        _ => return None,
    })
}
