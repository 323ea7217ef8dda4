//! TLS: everything the handshake entry keeps. Names (SNI, ALPN, certificate fields) come from the
//! wire and are untrusted data. No key material is ever part of an entry: `decryption` says
//! only whether the records were decrypted, or why not.

use capture_core::dissect::tls::{TlsEntry, tls_flags};
use capture_core::time::Timestamp;
use serde_json::{Value, json};

fn cert_time(secs: i64) -> String {
    Timestamp::from_secs_nanos(u64::try_from(secs).unwrap_or(0), 0).to_rfc3339()
}

pub fn detail(t: &TlsEntry) -> Value {
    let alerts: Vec<Value> = t
        .alerts
        .iter()
        .map(|a| {
            json!({
                "from": if a.from_client { "client" } else { "server" },
                "level": a.level.map(|l| if l == 2 { "fatal" } else { "warning" }),
                "name": a.name(),
                "timestamp": a.ts.to_rfc3339(),
            })
        })
        .collect();
    let certificate = t.certificate.as_deref().map(|c| {
        json!({
            "subject": &*c.subject,
            "issuer": &*c.issuer,
            "subject_alt_names": c.sans.iter().map(|s| &**s).collect::<Vec<_>>(),
            "not_before": cert_time(c.not_before),
            "not_after": cert_time(c.not_after),
            "chain_length": c.chain_len,
        })
    });
    let flag = |f: u32| t.flags & f != 0;
    json!({
        "version": t.version_name(),
        "client_version": t.client_version.and_then(capture_core::dissect::tls::parse::version_name),
        "sni": t.sni.as_deref(),
        "alpn_offered": t.alpn_offered.iter().map(|s| &**s).collect::<Vec<_>>(),
        "alpn_selected": t.alpn_selected.as_deref(),
        "cipher": t.cipher_name(),
        "ciphers_offered": t.ciphers_offered,
        "ja3": t.ja3.as_deref(),
        "ja3s": t.ja3s.as_deref(),
        "ja4": t.ja4.as_deref(),
        "handshake_us": t.handshake_us,
        "resumption": t.resumption.map(|r| r.name()),
        "certificate": certificate,
        "alerts": alerts,
        "alert_count": t.alert_count,
        "application_data": {
            "records_c2s": t.app_records[0],
            "records_s2c": t.app_records[1],
            "bytes_c2s": t.app_bytes[0],
            "bytes_s2c": t.app_bytes[1],
        },
        "handshake_incomplete": flag(tls_flags::HANDSHAKE_INCOMPLETE),
        "gap": flag(tls_flags::GAP),
        "framing_lost": flag(tls_flags::FRAMING_LOST),
        "handshake_malformed": flag(tls_flags::HANDSHAKE_MALFORMED),
        "hello_retry": flag(tls_flags::HELLO_RETRY),
        "no_client_hello": flag(tls_flags::NO_CLIENT_HELLO),
        "decryption": t.decryption.text(),
        "decryption_stopped_at_gap": flag(tls_flags::DECRYPTION_STOPPED),
    })
}
