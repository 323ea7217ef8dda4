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

#[cfg(test)]
mod tests {
    use super::*;

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
