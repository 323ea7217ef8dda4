//! Redaction of secrets before anything leaves the engine. A redacted value keeps its length and
//! a short SHA-256 prefix, so equal secrets can be correlated without being shown.

use sha2::{Digest, Sha256};

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

/// `[redacted len=N sha256=abcd1234]`.
pub fn redact_value(v: &str) -> String {
    let digest = Sha256::digest(v.as_bytes());
    let hex: String = digest.iter().take(4).map(|b| format!("{b:02x}")).collect();
    format!("[redacted len={} sha256={hex}]", v.len())
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
    fn redacts_credentials_only() {
        let a = header_value("Authorization", "Bearer abc.def");
        assert!(a.starts_with("Bearer [redacted len=7 sha256="), "{a}");
        assert!(!a.contains("abc.def"));
        assert_eq!(header_value("Cookie", "s=1"), header_value("cookie", "s=1"));
        assert_eq!(header_value("Content-Type", "text/html"), "text/html");
    }
}
