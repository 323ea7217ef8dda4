//! Redaction of secrets before anything leaves the engine. A redacted value keeps its length and
//! a short id, so equal secrets can be correlated without being shown. The id is a keyed hash
//! (SipHash with a random key drawn once per process): unlike a plain digest it cannot be used to
//! test guesses of a weak password offline, and it means nothing outside this run.
//!
//! What is redacted, by [`Redaction`] (on by default, `--no-redact` turns it off):
//! - header values whose name is a credential ([`SECRET_HEADERS`], configurable), HTTP/1 and
//!   HTTP/2, in requests, responses and trailers; `Authorization` keeps its scheme;
//! - query parameters and form or JSON body fields whose name looks like a credential
//!   ([`SECRET_FIELDS`] and [`SECRET_SUFFIXES`], configurable), in the request target, in URL
//!   headers (`Referer`, `Location`, `Content-Location`) and in bodies as they are shown;
//! - headers and the request target when the entry is stored ([`Redaction::entry`]), so every
//!   tool and filter sees the redacted text; bodies when they are shown ([`Redaction::body`]),
//!   after content decoding, because a compressed body only shows its secrets once decoded.
//!
//! Some credentials are never kept at all, whatever the configuration: Redis `AUTH`,
//! `HELLO … AUTH`, `MIGRATE … AUTH`/`AUTH2` and `ACL SETUSER` passwords (replaced when the
//! command is parsed), AMQP SASL responses and `Update-Secret` secrets, Kafka `SaslAuthenticate`
//! auth bytes (not parsed), and TLS key-log secrets (held in memory for decryption only).

use std::borrow::Cow;
use std::hash::BuildHasher;
use std::sync::OnceLock;

/// Credentials wirelens never keeps, whatever the rules (shown in `capture_status`).
pub const NEVER_KEPT: &[&str] = &[
    "Redis AUTH, HELLO … AUTH, MIGRATE … AUTH/AUTH2 and ACL SETUSER passwords",
    "AMQP SASL responses (PLAIN, AMQPLAIN) and Connection.Update-Secret secrets",
    "Kafka SaslAuthenticate auth bytes",
    "TLS key-log secrets (used in memory to decrypt only)",
];

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
    "x-xsrf-token",
    "x-amz-security-token",
    "x-goog-api-key",
    "x-vault-token",
    "private-token",
];

/// Query-parameter and body-field names that hold credentials, compared after
/// [`normalize_name`] (`api_key`, `api-key` and `apiKey` are one name).
pub const SECRET_FIELDS: &[&str] = &[
    "password",
    "passwd",
    "pwd",
    "passphrase",
    "secret",
    "token",
    "apikey",
    "auth",
    "authorization",
    "credential",
    "credentials",
    "privatekey",
    "sessionid",
    "sid",
    "jsessionid",
    "phpsessid",
    "signature",
    "sig",
    "xamzsignature",
    "xamzcredential",
    "xamzsecuritytoken",
];

/// Name endings that make a field a credential (`userPassword`, `client_secret`,
/// `refresh_token`, `stripeApiKey`).
pub const SECRET_SUFFIXES: &[&str] = &["password", "passwd", "secret", "token", "apikey"];

/// Headers whose values are URLs: their query parameters are redacted like the request target's.
pub(crate) const URL_HEADERS: &[&str] = &["referer", "location", "content-location"];

/// Whether the default rules may change a field of this name (a credential or URL header).
/// The HTTP/1 parser learns it for every field it reads, from the one table of the field names
/// it acts on ([`crate::dissect::http1::names`]), so that redaction need not scan the heads
/// that hold none ([`crate::entry::head_facts::REDACTABLE_NAME`]).
pub fn default_redactable_name(name: &str) -> bool {
    use crate::dissect::http1::names::{Known, known};
    known(name.as_bytes()) == Some(Known::Redactable)
}

/// `[redacted len=N id=abcd1234]`: equal values get equal ids within one run.
pub fn redact_value(v: &str) -> String {
    redact_bytes(v.as_bytes())
}

/// [`redact_value`] of raw bytes (the length is in bytes).
pub fn redact_bytes(v: &[u8]) -> String {
    static KEY: OnceLock<std::collections::hash_map::RandomState> = OnceLock::new();
    let h = KEY
        .get_or_init(std::collections::hash_map::RandomState::new)
        .hash_one(v);
    format!("[redacted len={} id={:08x}]", v.len(), (h >> 32) as u32)
}

/// The marker inside URLs and forms: `[redacted:len=N:id=abcd1234]`, without the spaces that
/// would break a request line.
pub fn redact_url_value(v: &str) -> String {
    redact_value(v).replace(' ', ":")
}

/// Already a redaction marker (redacting it again would hide the original's length).
fn is_marker(v: &str) -> bool {
    (v.starts_with("[redacted len=") || v.starts_with("[redacted:len=")) && v.ends_with(']')
}

/// Lower case, without `-`, `_`, `.` and spaces: the form names are compared in.
pub fn normalize_name(name: &str) -> String {
    name.chars()
        .filter(|c| !matches!(c, '-' | '_' | '.' | ' '))
        .flat_map(char::to_lowercase)
        .collect()
}

/// What is redacted. Built from the command line (`--no-redact`, `--redact-header`,
/// `--redact-field`, `--keep-header`, `--keep-field`), shown in `capture_status`.
#[derive(Debug, Clone, PartialEq)]
pub struct Redaction {
    pub enabled: bool,
    /// Lower-case header names whose values are replaced.
    headers: Vec<String>,
    /// Normalized query/body field names whose values are replaced.
    fields: Vec<String>,
    /// Normalized name endings that make a field secret.
    suffixes: Vec<String>,
    /// Normalized field names never redacted (exceptions to the suffixes and the list).
    keep_fields: Vec<String>,
    /// `headers` holds a name beyond [`SECRET_HEADERS`]: the parser's
    /// [`crate::entry::head_facts::REDACTABLE_NAME`] (which knows the defaults only) cannot
    /// rule a head out.
    beyond_defaults: bool,
    /// Rules most field names out before they are compared with the lists.
    quick: Quick,
}

/// What a normalized field name must have to be secret: the length and last byte of one of
/// the fields, or the last two bytes of one of the suffixes. Built from the rules once; a name with
/// neither is not compared with them (most query parameters: `page`, `limit`, `q`).
#[derive(Debug, Clone, Default, PartialEq)]
struct Quick {
    /// Bit [`field_key`] of every field.
    fields: [u64; 4],
    /// Bit [`ending_key`] of every suffix.
    suffix_ends: [u64; 4],
    /// The shortest suffix's length (`usize::MAX` without suffixes).
    min_suffix: usize,
}

/// A field's length and last byte, folded into 256 bits.
fn field_key(len: usize, last: u8) -> usize {
    (len.min(63) * 37 + usize::from(last)) & 255
}

/// The last two bytes of a name, folded into 256 bits.
fn ending_key(n: &[u8]) -> Option<usize> {
    match n {
        [.., a, b] => Some((usize::from(*a) * 31 + usize::from(*b)) & 255),
        _ => None,
    }
}

fn has(bits: &[u64; 4], i: usize) -> bool {
    bits[i >> 6] & (1 << (i & 63)) != 0
}

impl Quick {
    fn of(fields: &[String], suffixes: &[String]) -> Quick {
        let mut q = Quick {
            min_suffix: suffixes.iter().map(String::len).min().unwrap_or(usize::MAX),
            ..Quick::default()
        };
        for f in fields {
            if let Some(&b) = f.as_bytes().last() {
                let k = field_key(f.len(), b);
                q.fields[k >> 6] |= 1 << (k & 63);
            }
        }
        for s in suffixes {
            match ending_key(s.as_bytes()) {
                Some(k) => q.suffix_ends[k >> 6] |= 1 << (k & 63),
                // A suffix of one byte or none: no name is ruled out by its ending.
                None => q.suffix_ends = [u64::MAX; 4],
            }
        }
        q
    }

    fn may_be_secret(&self, n: &[u8]) -> bool {
        let Some(&b) = n.last() else { return false };
        has(&self.fields, field_key(n.len(), b))
            || (n.len() >= self.min_suffix && ending_key(n).is_none_or(|k| has(&self.suffix_ends, k)))
    }
}

impl Default for Redaction {
    fn default() -> Self {
        let fields: Vec<String> = SECRET_FIELDS.iter().map(|s| s.to_string()).collect();
        let suffixes: Vec<String> = SECRET_SUFFIXES.iter().map(|s| s.to_string()).collect();
        Redaction {
            enabled: true,
            headers: SECRET_HEADERS.iter().map(|s| s.to_string()).collect(),
            quick: Quick::of(&fields, &suffixes),
            fields,
            suffixes,
            keep_fields: Vec::new(),
            beyond_defaults: false,
        }
    }
}

/// How many values a pass replaced.
pub type Redacted = u64;

impl Redaction {
    /// Nothing is redacted (`--no-redact`).
    pub fn off() -> Self {
        Redaction {
            enabled: false,
            ..Redaction::default()
        }
    }

    /// The defaults changed by the per-field rules of the command line.
    pub fn with_rules(
        enabled: bool,
        redact_headers: &[String],
        keep_headers: &[String],
        redact_fields: &[String],
        keep_fields: &[String],
    ) -> Self {
        let mut r = Redaction {
            enabled,
            ..Redaction::default()
        };
        for h in redact_headers {
            let h = h.trim().to_ascii_lowercase();
            if !h.is_empty() && !r.headers.contains(&h) {
                r.headers.push(h);
            }
        }
        r.headers
            .retain(|h| !keep_headers.iter().any(|k| k.trim().eq_ignore_ascii_case(h)));
        for f in redact_fields {
            let f = normalize_name(f);
            if !f.is_empty() && !r.fields.contains(&f) {
                r.fields.push(f);
            }
        }
        r.keep_fields = keep_fields
            .iter()
            .map(|f| normalize_name(f))
            .filter(|f| !f.is_empty())
            .collect();
        r.fields.retain(|f| !r.keep_fields.contains(f));
        r.beyond_defaults = r.headers.iter().any(|h| !SECRET_HEADERS.contains(&h.as_str()));
        r.quick = Quick::of(&r.fields, &r.suffixes);
        r
    }

    /// Lower-case header names whose values are replaced.
    pub fn headers(&self) -> &[String] {
        &self.headers
    }

    /// Normalized query/body field names whose values are replaced.
    pub fn fields(&self) -> &[String] {
        &self.fields
    }

    /// Normalized name endings that make a field secret.
    pub fn suffixes(&self) -> &[String] {
        &self.suffixes
    }

    /// Normalized field names never redacted.
    pub fn keep_fields(&self) -> &[String] {
        &self.keep_fields
    }

    /// Is this header's value a credential?
    pub fn secret_header(&self, name: &str) -> bool {
        self.enabled && self.headers.iter().any(|h| h.eq_ignore_ascii_case(name))
    }

    /// Is this query parameter or body field a credential?
    pub fn secret_field(&self, name: &str) -> bool {
        if !self.enabled {
            return false;
        }
        self.secret_normalized(&normalize_name(name))
    }

    /// [`Self::secret_field`] of a name already through [`normalize_name`].
    fn secret_normalized(&self, n: &str) -> bool {
        self.quick.may_be_secret(n.as_bytes())
            && (self.fields.iter().any(|f| f == n) || self.suffixes.iter().any(|s| n.ends_with(s.as_str())))
            && !self.keep_fields.iter().any(|k| k == n)
    }

    /// [`Self::secret_field`] of a query or form parameter's name as written (percent-encoded).
    /// Most names are short plain ASCII: those are normalized on the stack, with no allocation.
    fn secret_param(&self, raw: &str) -> bool {
        const MAX: usize = 64;
        if raw.len() > MAX || !raw.is_ascii() || raw.contains(['%', '+']) {
            return self.secret_field(&percent_decode(raw));
        }
        let mut buf = [0u8; MAX];
        let mut n = 0;
        for b in raw.bytes().filter(|b| !matches!(b, b'-' | b'_' | b'.' | b' ')) {
            buf[n] = b.to_ascii_lowercase();
            n += 1;
        }
        // ASCII in, ASCII out.
        std::str::from_utf8(&buf[..n]).is_ok_and(|norm| self.secret_normalized(norm))
    }

    /// A header value as it may be shown.
    pub fn header_value<'a>(&self, name: &str, value: &'a str) -> (Cow<'a, str>, Redacted) {
        if self.secret_header(name) {
            if is_marker(value) {
                return (Cow::Borrowed(value), 0);
            }
            // Keep the auth scheme ("Bearer", "Basic"): it is not secret and helps debugging.
            if (name.eq_ignore_ascii_case("authorization") || name.eq_ignore_ascii_case("proxy-authorization"))
                && let Some((scheme, rest)) = value.split_once(' ')
                && !rest.trim().is_empty()
            {
                if is_marker(rest.trim()) {
                    return (Cow::Borrowed(value), 0);
                }
                return (Cow::Owned(format!("{scheme} {}", redact_value(rest.trim()))), 1);
            }
            return (Cow::Owned(redact_value(value)), 1);
        }
        if URL_HEADERS.iter().any(|h| h.eq_ignore_ascii_case(name)) {
            return self.target(value);
        }
        (Cow::Borrowed(value), 0)
    }

    /// A request target (or URL) with its credential query parameters redacted.
    pub fn target<'a>(&self, target: &'a str) -> (Cow<'a, str>, Redacted) {
        if !self.enabled {
            return (Cow::Borrowed(target), 0);
        }
        let Some(q) = memchr::memchr(b'?', target.as_bytes()) else {
            return (Cow::Borrowed(target), 0);
        };
        let (head, rest) = target.split_at(q + 1);
        let (query, fragment) = match rest.find('#') {
            Some(h) => rest.split_at(h),
            None => (rest, ""),
        };
        match self.form(query) {
            (Cow::Borrowed(_), _) => (Cow::Borrowed(target), 0),
            (Cow::Owned(q), n) => (Cow::Owned(format!("{head}{q}{fragment}")), n),
        }
    }

    /// `a=1&token=xyz` (a query string or an `application/x-www-form-urlencoded` body) with the
    /// credential values redacted.
    pub fn form<'a>(&self, s: &'a str) -> (Cow<'a, str>, Redacted) {
        if !self.enabled {
            return (Cow::Borrowed(s), 0);
        }
        let secret = |part: &str| match part.split_once('=') {
            Some((name, value)) => !value.is_empty() && !is_marker(value) && self.secret_param(name),
            None => false,
        };
        // Most query strings hold no credential: say so without building anything.
        if !s.split('&').any(secret) {
            return (Cow::Borrowed(s), 0);
        }
        let mut n = 0;
        let parts: Vec<Cow<'_, str>> = s
            .split('&')
            .map(|part| match part.split_once('=') {
                Some((name, value)) if secret(part) => {
                    n += 1;
                    Cow::Owned(format!("{name}={}", redact_url_value(value)))
                }
                _ => Cow::Borrowed(part),
            })
            .collect();
        if n == 0 {
            (Cow::Borrowed(s), 0)
        } else {
            (Cow::Owned(parts.join("&")), n)
        }
    }

    /// A body as it may be shown: JSON fields and form fields with credential names redacted
    /// (JSON found by its content type or its first byte; forms by their content type). Other
    /// bodies are returned as they are. A cut JSON body is redacted up to where it ends.
    pub fn body<'a>(&self, body: &'a [u8], content_type: Option<&str>) -> (Cow<'a, [u8]>, Redacted) {
        if !self.enabled || body.is_empty() {
            return (Cow::Borrowed(body), 0);
        }
        let ct = content_type.unwrap_or("").to_ascii_lowercase();
        if ct.contains("x-www-form-urlencoded") {
            let Ok(s) = std::str::from_utf8(body) else {
                return (Cow::Borrowed(body), 0);
            };
            return match self.form(s) {
                (Cow::Owned(o), n) => (Cow::Owned(o.into_bytes()), n),
                _ => (Cow::Borrowed(body), 0),
            };
        }
        let first = body.iter().find(|b| !b.is_ascii_whitespace());
        if ct.contains("json") || matches!(first, Some(b'{' | b'[')) {
            return match json(body, &|k| self.secret_field(k)) {
                Some((o, n)) => (Cow::Owned(o), n),
                None => (Cow::Borrowed(body), 0),
            };
        }
        (Cow::Borrowed(body), 0)
    }

    /// Redacts the members of JSON objects whose key is a credential name, at any depth (gRPC
    /// messages decoded to JSON); returns how many were replaced.
    pub fn json_value(&self, v: &mut serde_json::Value) -> Redacted {
        use serde_json::Value;
        if !self.enabled {
            return 0;
        }
        let mut n = 0;
        let mut stack = vec![v];
        while let Some(v) = stack.pop() {
            match v {
                Value::Object(m) => {
                    for (k, x) in m.iter_mut() {
                        if self.secret_field(k) && !x.is_null() && !x.as_str().is_some_and(is_marker) {
                            let text = match &*x {
                                Value::String(s) => s.clone(),
                                other => other.to_string(),
                            };
                            *x = Value::String(redact_value(&text));
                            n += 1;
                        } else {
                            stack.push(x);
                        }
                    }
                }
                Value::Array(a) => stack.extend(a.iter_mut()),
                _ => {}
            }
        }
        n
    }

    /// Redacts what a stored entry holds in its headers and request target (HTTP/1, HTTP/2,
    /// gRPC); returns how many values were replaced. Called once, before the entry is stored.
    pub fn entry(&self, e: &mut crate::entry::Entry) -> Redacted {
        use crate::entry::Detail;
        if !self.enabled {
            return 0;
        }
        let mut n = 0;
        match &mut e.detail {
            Detail::Http(h) => {
                if let Some(p) = &h.path
                    && let (Cow::Owned(r), k) = self.target(p)
                {
                    h.path = Some(r.into());
                    n += k;
                }
                for m in [h.request.as_mut(), h.response.as_mut()].into_iter().flatten() {
                    // The parser saw every field name: a head without one the rules may change
                    // is only looked at for its request target.
                    let names = match self.beyond_defaults {
                        true => None,
                        false => m.head_fact(crate::entry::head_facts::REDACTABLE_NAME),
                    };
                    if let Some((head, k)) = self.http1_head(&m.head, names) {
                        m.head = head.into();
                        n += k;
                    }
                    if let Some((t, k)) = self.http1_fields(&m.trailers) {
                        m.trailers = t.into();
                        n += k;
                    }
                }
            }
            Detail::Http2(s) => {
                if let Some(p) = &s.path
                    && let (Cow::Owned(r), k) = self.target(p)
                {
                    s.path = Some(r.into());
                    n += k;
                }
                for m in [s.request.as_mut(), s.response.as_mut()].into_iter().flatten() {
                    for (name, value) in m.headers.iter_mut().chain(m.trailers.iter_mut()) {
                        let (v, k) = if &**name == ":path" {
                            self.target(value)
                        } else {
                            self.header_value(name, value)
                        };
                        if let Cow::Owned(v) = v {
                            *value = v.into();
                            n += k;
                        }
                    }
                }
            }
            _ => {}
        }
        n
    }

    /// An HTTP/1 head (start line, fields, empty line) with its request target and credential
    /// header values redacted; `None` when nothing changes.
    /// `names`: whether a field name is one the rules may change, when the parser knows
    /// (`None`: look).
    fn http1_head(&self, head: &[u8], names: Option<bool>) -> Option<(Vec<u8>, Redacted)> {
        let line_end = memchr::memchr(b'\n', head).map_or(head.len(), |i| i + 1);
        let (start, fields) = head.split_at(line_end);
        // A request line with a query: METHOD SP target SP version.
        let target = memchr::memchr(b'?', start).and_then(|_| {
            let l = std::str::from_utf8(start).ok()?;
            let mut parts = l.splitn(3, ' ');
            let (m, t, rest) = (parts.next()?, parts.next()?, parts.next()?);
            if m.starts_with("HTTP/") {
                return None;
            }
            match self.target(t) {
                (Cow::Owned(t), k) => Some((format!("{m} {t} {rest}"), k)),
                _ => None,
            }
        });
        let fields = match names.unwrap_or_else(|| self.fields_may_change(fields)) {
            true => self.redact_fields(fields).ok_or(fields),
            false => Err(fields),
        };
        // Most heads hold nothing to redact: say so without building a copy.
        if target.is_none() && fields.is_err() {
            return None;
        }
        let mut n = 0;
        let mut out = Vec::with_capacity(head.len() + 32);
        match target {
            Some((line, k)) => {
                out.extend_from_slice(line.as_bytes());
                n += k;
            }
            None => out.extend_from_slice(start),
        }
        match fields {
            Ok((f, k)) => {
                out.extend_from_slice(&f);
                n += k;
            }
            Err(f) => out.extend_from_slice(f),
        }
        (n > 0).then_some((out, n))
    }

    /// The lengths of the header names the rules may change, as bits (63 for 63 or more).
    fn name_lengths(&self) -> u64 {
        self.headers
            .iter()
            .map(String::as_str)
            .chain(URL_HEADERS.iter().copied())
            .fold(0, |m, h| m | 1 << h.len().min(63))
    }

    /// Whether some field line of `fields` is a credential header or a URL header (the only
    /// ones [`Self::http1_fields`] may change), looking at the names only.
    fn fields_may_change(&self, fields: &[u8]) -> bool {
        if fields.is_empty() {
            return false;
        }
        // Most lines are ruled out by the length of their name.
        let lengths = self.name_lengths();
        // One pass over the colons and line ends: the first colon of a line ends its name.
        let mut line_start = 0;
        let mut named = false;
        for i in memchr::memchr2_iter(b':', b'\n', fields) {
            if fields[i] == b'\n' {
                line_start = i + 1;
                named = false;
                continue;
            }
            if named {
                continue;
            }
            named = true;
            let mut name = &fields[line_start..i];
            while let [rest @ .., b' ' | b'\t'] = name {
                name = rest;
            }
            if lengths & (1 << name.len().min(63)) == 0 {
                continue;
            }
            if self.headers.iter().any(|h| h.as_bytes().eq_ignore_ascii_case(name))
                || URL_HEADERS.iter().any(|h| h.as_bytes().eq_ignore_ascii_case(name))
            {
                return true;
            }
        }
        false
    }

    /// Header field lines (`Name: value` CRLF …) with credential values redacted; `None` when
    /// nothing changes. Lines that are not UTF-8 or have no colon are kept as they are.
    fn http1_fields(&self, fields: &[u8]) -> Option<(Vec<u8>, Redacted)> {
        if !self.fields_may_change(fields) {
            return None;
        }
        self.redact_fields(fields)
    }

    /// [`Self::http1_fields`] without first looking at the names.
    fn redact_fields(&self, fields: &[u8]) -> Option<(Vec<u8>, Redacted)> {
        let mut out = Vec::with_capacity(fields.len() + 32);
        let mut n = 0;
        for line in fields.split_inclusive(|&b| b == b'\n') {
            let text = std::str::from_utf8(line).ok();
            let parsed = text.and_then(|t| {
                let (name, rest) = t.split_once(':')?;
                let body = rest.trim_end_matches(['\r', '\n']);
                let eol = &rest[body.len()..];
                let value = body.trim_start_matches([' ', '\t']);
                let lead = &body[..body.len() - value.len()];
                let value_trimmed = value.trim_end_matches([' ', '\t']);
                Some((name, lead, value_trimmed, &value[value_trimmed.len()..], eol))
            });
            match parsed {
                // `Set-Cookie : v` (spaces before the colon, which servers send and parsers
                // accept) is still a Set-Cookie.
                Some((name, lead, value, tail, eol)) if !name.is_empty() => {
                    match self.header_value(name.trim_end_matches([' ', '\t']), value) {
                        (Cow::Owned(v), k) => {
                            out.extend_from_slice(format!("{name}:{lead}{v}{tail}{eol}").as_bytes());
                            n += k;
                        }
                        _ => out.extend_from_slice(line),
                    }
                }
                _ => out.extend_from_slice(line),
            }
        }
        (n > 0).then_some((out, n))
    }
}

/// The process-wide rules when none are given: the defaults.
pub fn default_rules() -> &'static Redaction {
    static D: OnceLock<Redaction> = OnceLock::new();
    D.get_or_init(Redaction::default)
}

/// Redacts the value when the header is a credential (default rules).
pub fn header_value(name: &str, value: &str) -> String {
    default_rules().header_value(name, value).0.into_owned()
}

/// `%XX` and `+` decoded, for comparing names (invalid escapes are kept as they are).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => match std::str::from_utf8(&b[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                Some(v) => {
                    out.push(v);
                    i += 3;
                    continue;
                }
                None => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Redacts the values of the object members whose key `secret` accepts, in JSON text that may
/// be cut short or invalid; the rest of the text is kept byte for byte. `None` when nothing was
/// redacted. A string value becomes a string marker; a number, literal, object or array
/// becomes a string marker of its text.
pub fn json(s: &[u8], secret: &dyn Fn(&str) -> bool) -> Option<(Vec<u8>, Redacted)> {
    let mut out: Option<Vec<u8>> = None;
    let mut copied = 0; // bytes of `s` already in `out`
    let mut n = 0;
    // The open containers, innermost last: true for an object (at most one per input byte).
    let mut stack: Vec<bool> = Vec::new();
    let mut expect_key = false;
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'{' => {
                stack.push(true);
                expect_key = true;
                i += 1;
            }
            b'[' => {
                stack.push(false);
                expect_key = false;
                i += 1;
            }
            b'}' | b']' => {
                stack.pop();
                expect_key = false;
                i += 1;
            }
            b',' => {
                expect_key = stack.last() == Some(&true);
                i += 1;
            }
            b'"' => {
                let end = string_end(s, i);
                if expect_key && stack.last() == Some(&true) {
                    expect_key = false;
                    let key = String::from_utf8_lossy(&s[i + 1..end.saturating_sub(1).max(i + 1)]);
                    i = end;
                    if !secret(&key) {
                        continue;
                    }
                    // The colon, then the value.
                    let mut j = i;
                    while j < s.len() && (s[j].is_ascii_whitespace() || s[j] == b':') {
                        j += 1;
                    }
                    if j >= s.len() {
                        break;
                    }
                    let vend = value_end(s, j);
                    let raw = &s[j..vend];
                    let text = if raw.first() == Some(&b'"') {
                        &raw[1..raw.len() - usize::from(raw.len() > 1 && raw.ends_with(b"\""))]
                    } else {
                        raw
                    };
                    if raw == b"null" || std::str::from_utf8(text).is_ok_and(is_marker) {
                        i = vend;
                        continue;
                    }
                    let o = out.get_or_insert_with(|| Vec::with_capacity(s.len() + 32));
                    o.extend_from_slice(&s[copied..j]);
                    o.push(b'"');
                    o.extend_from_slice(redact_bytes(text).as_bytes());
                    o.push(b'"');
                    copied = vend;
                    n += 1;
                    i = vend;
                } else {
                    i = end;
                }
            }
            _ => i += 1,
        }
    }
    let mut o = out?;
    o.extend_from_slice(&s[copied..]);
    Some((o, n))
}

/// The index after the string starting at `s[i] == '"'` (the text's end when it is cut).
fn string_end(s: &[u8], i: usize) -> usize {
    let mut j = i + 1;
    while j < s.len() {
        match s[j] {
            b'\\' => j += 2,
            b'"' => return j + 1,
            _ => j += 1,
        }
    }
    s.len()
}

/// The index after the JSON value starting at `s[i]` (the text's end when it is cut).
fn value_end(s: &[u8], i: usize) -> usize {
    match s[i] {
        b'"' => string_end(s, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            while j < s.len() {
                match s[j] {
                    b'"' => {
                        j = string_end(s, j);
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return j + 1;
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            s.len()
        }
        _ => {
            let mut j = i;
            while j < s.len() && !matches!(s[j], b',' | b'}' | b']') && !s[j].is_ascii_whitespace() {
                j += 1;
            }
            j
        }
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

/// Redacts an HTTP message for an export (HAR). Every export goes through this one function:
/// headers as stored entries have them (credential values already redacted, redacting again
/// changes nothing), cookie values when their header is a credential, query parameters by name;
/// the body is left to [`Redaction::body`] after content decoding.
pub fn http_export(r: &Redaction, mut m: HttpExport) -> HttpExport {
    for (name, value) in &mut m.headers {
        if let (Cow::Owned(v), _) = r.header_value(name, value) {
            *value = v;
        }
    }
    if r.secret_header("cookie") || r.secret_header("set-cookie") {
        for (_, value) in &mut m.cookies {
            if !is_marker(value) {
                *value = redact_value(value);
            }
        }
    }
    for (name, value) in &mut m.query {
        if !value.is_empty() && !is_marker(value) && r.secret_field(name) {
            *value = redact_url_value(value);
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exports_lose_credentials_and_cookie_values() {
        let r = Redaction::default();
        let m = http_export(
            &r,
            HttpExport {
                headers: vec![
                    ("Authorization".into(), "Bearer tok3n".into()),
                    ("Accept".into(), "*/*".into()),
                ],
                cookies: vec![("session".into(), "s3cret".into())],
                query: vec![("q".into(), "shoes".into()), ("api_key".into(), "k1".into())],
                body: b"{}".to_vec(),
            },
        );
        assert!(m.headers[0].1.starts_with("Bearer [redacted len=5"), "{:?}", m.headers);
        assert_eq!(m.headers[1].1, "*/*");
        assert_eq!(m.cookies[0].0, "session");
        assert!(m.cookies[0].1.starts_with("[redacted len=6") && !m.cookies[0].1.contains("s3cret"));
        assert_eq!(m.query[0].1, "shoes");
        assert!(m.query[1].1.starts_with("[redacted:len=2"));
        assert_eq!(m.body, b"{}");
        // --no-redact keeps everything.
        let m = http_export(
            &Redaction::off(),
            HttpExport {
                cookies: vec![("session".into(), "s3cret".into())],
                ..Default::default()
            },
        );
        assert_eq!(m.cookies[0].1, "s3cret");
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

    /// An HTTP/1.1 entry between two fixed endpoints with `txn` as its exchange.
    fn http_entry(txn: crate::entry::HttpTxn) -> crate::entry::Entry {
        use crate::entry::{Detail, Entry, Protocol, Transport};
        Entry {
            id: 0,
            ts: crate::time::Timestamp(1),
            protocol: Protocol::Http11,
            transport: Transport::Tcp,
            src: "10.0.0.1:1000".parse().unwrap(),
            dst: "10.0.0.2:80".parse().unwrap(),
            flow_id: 1,
            elapsed_us: None,
            detail: Detail::Http(Box::new(txn)),
            peers: Default::default(),
            tls: false,
            decrypted: false,
            tls_conn: None,
        }
    }

    #[test]
    fn the_parsers_name_table_is_the_default_rules() {
        let all: Vec<&str> = SECRET_HEADERS.iter().chain(URL_HEADERS).copied().collect();
        for h in &all {
            assert!(default_redactable_name(h), "{h}");
            assert!(default_redactable_name(&h.to_ascii_uppercase()), "{h}");
        }
        for other in [
            "content-type",
            "server",
            "accept",
            "user-agent",
            "connection",
            "host",
            "cookies",
            "x-api-keys",
        ] {
            assert!(!default_redactable_name(other), "{other}");
        }
    }

    #[test]
    fn stored_heads_are_redacted_whatever_the_parser_noted() {
        use crate::entry::{Entry, HttpMessage, HttpTxn, head_facts};
        // A head the parser says has no credential name is still looked at for its target; a
        // rule beyond the defaults looks at every head.
        let head = b"GET /a?token=s3cret HTTP/1.1\r\nX-Custom: hush\r\n\r\n".to_vec();
        let entry = || {
            http_entry(HttpTxn {
                request: Some(HttpMessage {
                    head: head.clone().into(),
                    head_facts: head_facts::KNOWN,
                    ..HttpMessage::default()
                }),
                ..HttpTxn::default()
            })
        };
        let mut e: Entry = entry();
        assert_eq!(Redaction::default().entry(&mut e), 1);
        let text = String::from_utf8_lossy(&e.http().unwrap().request.as_ref().unwrap().head).into_owned();
        assert!(!text.contains("s3cret") && text.contains("hush"), "{text}");
        let custom = Redaction::with_rules(true, &["x-custom".into()], &[], &[], &[]);
        let mut e = entry();
        assert_eq!(custom.entry(&mut e), 2);
        let text = String::from_utf8_lossy(&e.http().unwrap().request.as_ref().unwrap().head).into_owned();
        assert!(!text.contains("s3cret") && !text.contains("hush"), "{text}");
    }

    #[test]
    fn redacts_credentials_only() {
        let a = header_value("Authorization", "Bearer abc.def");
        assert!(a.starts_with("Bearer [redacted len=7 id="), "{a}");
        assert!(!a.contains("abc.def"));
        assert_eq!(header_value("Cookie", "s=1"), header_value("cookie", "s=1"));
        assert_eq!(header_value("Content-Type", "text/html"), "text/html");
        // Twice is the same as once.
        assert_eq!(header_value("Authorization", &a), a);
    }

    /// `out` with every marker's random id blanked, so that a secret made of hex
    /// digits is not "found" inside an id by chance.
    fn without_ids(out: &str) -> String {
        let mut s = out.to_string();
        let mut from = 0;
        while let Some(i) = s[from..].find("id=").map(|i| from + i + 3) {
            let end = (i + 8).min(s.len());
            if s.is_char_boundary(end) && s[i..end].bytes().all(|b| b.is_ascii_hexdigit()) {
                s.replace_range(i..end, "########");
            }
            from = i;
        }
        s
    }

    fn hidden(out: &str, secret: &str) {
        assert!(!without_ids(out).contains(secret), "{secret} shown in {out}");
        assert!(
            out.contains(&format!("[redacted len={} id=", secret.len()))
                || out.contains(&format!("[redacted:len={}:id=", secret.len())),
            "{out}"
        );
    }

    #[test]
    fn query_parameters_by_name_suffix_and_rule() {
        let r = Redaction::default();
        let (t, n) = r.target("/login?user=ann&password=hunter2&access_token=abc.def&page=2#top");
        assert_eq!(n, 2);
        hidden(&t, "hunter2");
        hidden(&t, "abc.def");
        assert!(
            t.starts_with("/login?user=ann&password=[redacted:len=7:id=") && t.ends_with("&page=2#top"),
            "{t}"
        );
        assert!(!t.contains(' '), "{t}");
        // Percent-encoded names, other spellings.
        let (t, n) = r.target("/x?api%5Fkey=k1&API-KEY=k2&clientSecret=k3&githubToken=k4");
        assert_eq!(n, 4, "{t}");
        assert_eq!(r.target("/x?a=1&b=2").1, 0);
        assert!(matches!(r.target("/x?a=1").0, Cow::Borrowed(_)));
        // Rules: keep a default, add one.
        let r = Redaction::with_rules(true, &[], &[], &["Customer-Id".into()], &["page_token".into()]);
        let (t, n) = r.target("/x?page_token=p1&customer_id=c1&token=t1");
        assert_eq!(n, 2, "{t}");
        assert!(t.contains("page_token=p1"));
        hidden(&t, "c1");
        // Off.
        assert_eq!(Redaction::off().target("/x?password=hunter2").0, "/x?password=hunter2");
    }

    #[test]
    fn the_quick_filter_never_changes_a_verdict() {
        // The lists compared in full, as before the filter.
        let slow = |r: &Redaction, n: &str| {
            !n.is_empty()
                && !r.keep_fields().iter().any(|k| k == n)
                && (r.fields().iter().any(|f| f == n) || r.suffixes().iter().any(|s| n.ends_with(s.as_str())))
        };
        let rules = [
            Redaction::default(),
            Redaction::with_rules(
                true,
                &[],
                &[],
                &["Customer-Id".into(), "x".into()],
                &["page_token".into()],
            ),
            Redaction::with_rules(
                true,
                &[],
                &[],
                &["a-very-long-field-name-of-more-than-sixty-three-bytes-in-all-x".into()],
                &[],
            ),
        ];
        let mut names: Vec<String> = [
            "",
            "x",
            "q",
            "page",
            "limit",
            "id",
            "pwd",
            "sig",
            "customerid",
            "pagetoken",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for r in &rules {
            for f in r.fields().iter().chain(r.suffixes()) {
                names.push(f.clone());
                names.push(format!("my{f}"));
                names.push(f[1..].to_string());
                names.push(f[..f.len() - 1].to_string());
                names.push(format!("{f}s"));
            }
        }
        names.push("averylongfieldnameofmorethansixtythreebytesinallxbutnotquitethesame".into());
        let mut secret = 0;
        for r in &rules {
            for n in &names {
                assert_eq!(r.secret_normalized(n), slow(r, n), "{n:?}");
                secret += usize::from(slow(r, n));
            }
        }
        assert!(secret > 40, "the names cover secret ones too: {secret}");
        // The usual query parameters are ruled out before any list is read.
        let q = &Redaction::default().quick;
        for n in ["page", "limit", "q", "id", "sort", "size", "lang"] {
            assert!(!q.may_be_secret(n.as_bytes()), "{n}");
        }
    }

    #[test]
    fn json_bodies_keep_their_text_but_not_their_secrets() {
        let r = Redaction::default();
        let body = br#"{"user": "ann", "password" : "hunter\"2", "nested": {"client_secret": 12345,
            "list": [{"refreshToken": {"a": [1, "}"]}}], "ok": true}, "token": null, "n": "password"}"#;
        let (out, n) = r.body(body, Some("application/json"));
        assert_eq!(n, 3);
        let out = String::from_utf8(out.into_owned()).unwrap();
        let bare = without_ids(&out);
        assert!(
            !bare.contains("hunter") && !bare.contains("12345") && !bare.contains("\"}\""),
            "{out}"
        );
        // Everything else byte for byte, and still JSON.
        assert!(
            out.starts_with(r#"{"user": "ann", "password" : "[redacted len=9 id="#),
            "{out}"
        );
        assert!(
            out.ends_with(r#""ok": true}, "token": null, "n": "password"}"#),
            "{out}"
        );
        serde_json::from_str::<serde_json::Value>(&out).expect("still JSON");
        // A body cut inside a secret value.
        let (out, n) = r.body(br#"[{"password": "hunt"#, None);
        assert_eq!(n, 1);
        hidden(std::str::from_utf8(&out).unwrap(), "hunt");
        // Forms by content type; other bodies untouched.
        let (out, n) = r.body(b"user=ann&pwd=x1", Some("application/x-www-form-urlencoded"));
        assert_eq!(n, 1);
        hidden(std::str::from_utf8(&out).unwrap(), "x1");
        assert_eq!(r.body(b"password=x1", Some("text/plain")).1, 0);
        assert_eq!(Redaction::off().body(br#"{"password":"x"}"#, None).1, 0);
        // Redacting twice changes nothing.
        let (once, _) = r.body(br#"{"password":"hunter2"}"#, None);
        assert_eq!(r.body(&once, None).1, 0);
    }

    #[test]
    fn grpc_json_values_at_any_depth() {
        let r = Redaction::default();
        let mut v = serde_json::json!([{"message": {"card": {"number": "4111", "api_key": "k9"}, "password": 77}}]);
        assert_eq!(r.json_value(&mut v), 2);
        let s = without_ids(&v.to_string());
        assert!(!s.contains("k9") && !s.contains("77") && s.contains("4111"), "{s}");
        assert!(is_marker(v[0]["message"]["password"].as_str().unwrap()), "{v}");
    }

    #[test]
    fn stored_http_entries_lose_their_credentials() {
        use crate::entry::{HttpMessage, HttpTxn};
        let head = b"GET /cb?code=1&state=s&access_token=tok123 HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer abc.def\r\nCookie: sid=s1\r\nReferer: https://x/?password=pw9\r\nX-Custom: keep\r\n\r\n";
        let mut e = http_entry(HttpTxn {
            method: Some("GET".into()),
            path: Some("/cb?code=1&state=s&access_token=tok123".into()),
            request: Some(HttpMessage {
                head: head.to_vec().into(),
                ..Default::default()
            }),
            ..Default::default()
        });
        let r = Redaction::default();
        // The target twice (field and request line), Authorization, Cookie, Referer.
        assert_eq!(r.entry(&mut e), 5);
        let h = e.http().unwrap();
        let path = h.path.as_deref().unwrap();
        hidden(path, "tok123");
        assert!(path.starts_with("/cb?code=1&state=s&access_token=[redacted"));
        let head = String::from_utf8(h.request.as_ref().unwrap().head.to_vec()).unwrap();
        for s in ["tok123", "abc.def", "sid=s1", "pw9"] {
            assert!(!head.contains(s), "{s} in {head}");
        }
        assert!(head.contains("Authorization: Bearer [redacted len=7 id="), "{head}");
        assert!(
            head.contains("X-Custom: keep\r\n\r\n") && head.starts_with("GET /cb?code=1"),
            "{head}"
        );
        // The head still parses.
        let pairs = h.request.as_ref().unwrap().headers();
        assert_eq!(pairs.len(), 5, "{pairs:?}");
        // Once is enough.
        assert_eq!(r.entry(&mut e), 0);
    }

    proptest::proptest! {
        /// Any bytes: no panic, and a secret value placed in a JSON object never survives.
        #[test]
        fn json_redaction_is_total(prefix in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64),
                                   secret in "[a-zA-Z0-9]{4,20}") {
            let r = Redaction::default();
            let _ = r.body(&prefix, Some("application/json"));
            let body = format!(r#"{{"a":[1,{{"b":"x"}}],"password":"{secret}","c":2}}"#);
            let (out, n) = r.body(body.as_bytes(), None);
            proptest::prop_assert_eq!(n, 1);
            proptest::prop_assert!(!String::from_utf8_lossy(&out).contains(&secret));
            let _ = r.target(&String::from_utf8_lossy(&prefix));
        }
    }
}
