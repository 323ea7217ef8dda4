//! Redaction of secrets before anything leaves the engine. A redacted value keeps its length and
//! a short id, so equal secrets can be correlated without being shown. The id is a keyed hash
//! (SipHash with a random key drawn once per process): unlike a plain digest it cannot be used to
//! test guesses of a weak password offline, and it means nothing outside this run.

use std::hash::BuildHasher;
use std::sync::OnceLock;

/// Headers whose values are credentials.
pub const SECRET_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
    "api-key",
    "x-auth-token",
    "x-access-token",
    "x-csrf-token",
    "x-amz-security-token",
];

/// `[redacted len=N id=abcd1234]`: equal values get equal ids within one run.
pub fn redact_value(v: &str) -> String {
    static KEY: OnceLock<std::collections::hash_map::RandomState> = OnceLock::new();
    let h = KEY
        .get_or_init(std::collections::hash_map::RandomState::new)
        .hash_one(v.as_bytes());
    format!("[redacted len={} id={:08x}]", v.len(), (h >> 32) as u32)
}

/// Redacts the value when the header is a credential.
pub fn header_value(name: &str, value: &str) -> String {
    if SECRET_HEADERS.iter().any(|h| h.eq_ignore_ascii_case(name)) {
        // Keep the auth scheme ("Bearer", "Basic"): it is not secret and helps debugging.
        if (name.eq_ignore_ascii_case("authorization") || name.eq_ignore_ascii_case("proxy-authorization"))
            && let Some((scheme, rest)) = value.split_once(' ')
        {
            return format!("{scheme} {}", redact_value(rest.trim()));
        }
        redact_value(value)
    } else {
        value.to_string()
    }
}

/// One HTTP message as it leaves wirelens in an export (HAR): headers, cookies, query
/// parameters and body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HttpExport {
    pub headers: Vec<(String, String)>,
    /// Cookies of `Cookie` and `Set-Cookie` headers, by name.
    pub cookies: Vec<(String, String)>,
    pub query: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Redacts an HTTP message for an export. Every export goes through this one function, so a
/// redaction rule added here applies to all of them: credential headers as [`header_value`]
/// does, every cookie value (cookies are credentials as a rule); query parameters and bodies are
/// kept as captured.
pub fn http_export(mut m: HttpExport) -> HttpExport {
    for (name, value) in &mut m.headers {
        *value = header_value(name, value);
    }
    for (_, value) in &mut m.cookies {
        *value = redact_value(value);
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exports_lose_credentials_and_cookie_values() {
        let m = http_export(HttpExport {
            headers: vec![
                ("Authorization".into(), "Bearer tok3n".into()),
                ("Accept".into(), "*/*".into()),
            ],
            cookies: vec![("session".into(), "s3cret".into())],
            query: vec![("q".into(), "shoes".into())],
            body: b"{}".to_vec(),
        });
        assert!(m.headers[0].1.starts_with("Bearer [redacted len=5"), "{:?}", m.headers);
        assert_eq!(m.headers[1].1, "*/*");
        assert_eq!(m.cookies[0].0, "session");
        assert!(m.cookies[0].1.starts_with("[redacted len=6") && !m.cookies[0].1.contains("s3cret"));
        assert_eq!((m.query[0].1.as_str(), m.body.as_slice()), ("shoes", &b"{}"[..]));
    }

    #[test]
    fn equal_secrets_get_equal_ids_that_are_not_plain_digests() {
        let a = redact_value("hunter2");
        assert_eq!(a, redact_value("hunter2"));
        assert_ne!(a, redact_value("hunter3"));
        assert!(a.starts_with("[redacted len=7 id=") && a.ends_with(']'), "{a}");
        // Not the unkeyed SHA-256 prefix (f52fbd32 for "hunter2") an attacker could precompute.
        assert!(!a.contains("f52fbd32"));
    }

    #[test]
    fn redacts_credentials_only() {
        let a = header_value("Authorization", "Bearer abc.def");
        assert!(a.starts_with("Bearer [redacted len=7 id="), "{a}");
        assert!(!a.contains("abc.def"));
        assert_eq!(header_value("Cookie", "s=1"), header_value("cookie", "s=1"));
        assert_eq!(header_value("Content-Type", "text/html"), "text/html");
    }
}
