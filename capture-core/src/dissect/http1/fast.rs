//! The head parser's fast path: request and status lines and fields in their plainest form,
//! parsed in one pass that looks at eight bytes at a time. It gives up, handing the head to
//! `httparse`, on anything else: line ends without CR, more than one space between the parts,
//! a request target, reason phrase or field value with a byte outside printable ASCII (tab
//! aside), a field name not followed at once by its colon, a line folded onto the one before,
//! more fields than it has room for, a head cut short. So on what it accepts it gives exactly
//! what `httparse`, configured as [`super::parse`] configures it, gives; a property test and the
//! HTTP/1 fuzz target compare the two. It exists because `httparse` took about 300 ns for the
//! 330-byte request heads of the benchmark capture, a tenth of the time of a whole exchange.

use httparse::Header;

/// Fields the fast path has room for; a head with more goes to `httparse`.
pub const FIELDS: usize = 32;

/// A request line parsed by the fast path.
pub struct RequestLine<'a> {
    pub method: &'a str,
    pub target: &'a str,
    pub minor: u8,
}

/// A status line parsed by the fast path.
pub struct StatusLine<'a> {
    pub minor: u8,
    pub code: u16,
    pub reason: &'a str,
}

/// `tchar` of RFC 9110 §5.6.2: what a method and a field name are made of.
static TCHAR: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+' | b'-' | b'.' | b'^' | b'_' | b'`' | b'|' | b'~'
            );
        b += 1;
    }
    t
};

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// The first index from `at` of a byte below `low` or from 0x7F up (`input.len()` when none).
/// Eight bytes at a time: a byte below `low` borrows in `x - low`, one from 0x7F up sets the
/// high bit of `x + 1` or of itself; a borrow or carry only ever reaches the bytes after the
/// first such byte, so the lowest flag is exact.
#[inline]
fn printable_run(input: &[u8], mut at: usize, low: u8) -> usize {
    while let Some(w) = input.get(at..at + 8) {
        let x = u64::from_le_bytes(w.try_into().expect("eight bytes"));
        let below = x.wrapping_sub(ONES * u64::from(low)) & !x;
        let above = x.wrapping_add(ONES) | x;
        let stop = (below | above) & HIGHS;
        if stop != 0 {
            return at + (stop.trailing_zeros() / 8) as usize;
        }
        at += 8;
    }
    while at < input.len() && (low..0x7f).contains(&input[at]) {
        at += 1;
    }
    at
}

/// The end of the text from `at` of a field value or reason phrase: printable ASCII and tabs.
#[inline]
fn text_run(input: &[u8], mut at: usize) -> usize {
    loop {
        at = printable_run(input, at, 0x20);
        if input.get(at) != Some(&b'\t') {
            return at;
        }
        at += 1;
    }
}

/// The end of the `tchar` run from `at`.
#[inline]
fn token_run(input: &[u8], at: usize) -> usize {
    let rest = input.get(at..).unwrap_or_default();
    at + rest.iter().position(|&b| !TCHAR[usize::from(b)]).unwrap_or(rest.len())
}

/// `b` as text: bytes the scans above let through, all ASCII.
#[inline]
#[allow(unsafe_code)]
fn ascii(b: &[u8]) -> &str {
    debug_assert!(b.is_ascii());
    // SAFETY: every caller passes bytes that `token_run`, `printable_run` or `text_run`
    // accepted (`tchar`, or 0x09 and 0x20..=0x7E), which are ASCII and so UTF-8. Checking again
    // cost a third of the fast path (about 100 instructions a field name).
    unsafe { std::str::from_utf8_unchecked(b) }
}

/// `HTTP/1.0` or `HTTP/1.1` at `at`: the minor version.
#[inline]
fn version(input: &[u8], at: usize) -> Option<u8> {
    match input.get(at..at + 8)? {
        b"HTTP/1.1" => Some(1),
        b"HTTP/1.0" => Some(0),
        _ => None,
    }
}

/// `\r\n` at `at`.
#[inline]
fn crlf(input: &[u8], at: usize) -> bool {
    input.get(at..at + 2) == Some(b"\r\n")
}

/// A request head at the start of `input`: its line, how many fields it wrote into `out` (at
/// most `max_fields` and `out`'s length), and its length; `None` hands it to `httparse`.
pub fn request<'a>(
    input: &'a [u8],
    max_fields: usize,
    out: &mut [Header<'a>],
) -> Option<(RequestLine<'a>, usize, usize)> {
    let m = token_run(input, 0);
    if m == 0 || input.get(m) != Some(&b' ') {
        return None;
    }
    let t = m + 1;
    let t_end = printable_run(input, t, 0x21);
    if t_end == t || input.get(t_end) != Some(&b' ') {
        return None;
    }
    let minor = version(input, t_end + 1)?;
    if !crlf(input, t_end + 9) {
        return None;
    }
    let (n, len) = fields(input, t_end + 11, max_fields, out, false)?;
    let line = RequestLine {
        method: ascii(&input[..m]),
        target: ascii(&input[t..t_end]),
        minor,
    };
    Some((line, n, len))
}

/// A response head at the start of `input`, as [`request`] does.
pub fn response<'a>(
    input: &'a [u8],
    max_fields: usize,
    out: &mut [Header<'a>],
) -> Option<(StatusLine<'a>, usize, usize)> {
    let minor = version(input, 0)?;
    let code = match input.get(8..13)? {
        [b' ', a @ b'0'..=b'9', b @ b'0'..=b'9', c @ b'0'..=b'9', b' ' | b'\r'] => {
            u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0')
        }
        _ => return None,
    };
    let (reason, at) = if input[12] == b'\r' {
        ("", 12)
    } else {
        // The reason phrase: printable ASCII and tabs, not starting with a space (more than
        // one space after the code is `httparse`'s to skip).
        if input.get(13) == Some(&b' ') {
            return None;
        }
        let end = text_run(input, 13);
        (ascii(&input[13..end]), end)
    };
    if !crlf(input, at) {
        return None;
    }
    let (n, len) = fields(input, at + 2, max_fields, out, true)?;
    Some((StatusLine { minor, code, reason }, n, len))
}

/// The fields from `at` to the empty line: how many, and where the head ends. `folding`: the
/// parser `httparse` would be accepts folded lines here (responses), so it wants the byte
/// after each line before it takes the field as ended.
#[inline]
fn fields<'a>(
    input: &'a [u8],
    mut at: usize,
    max_fields: usize,
    out: &mut [Header<'a>],
    folding: bool,
) -> Option<(usize, usize)> {
    let room = max_fields.min(out.len());
    let mut n = 0;
    loop {
        if crlf(input, at) {
            return Some((n, at + 2));
        }
        let name_end = token_run(input, at);
        if name_end == at || input.get(name_end) != Some(&b':') {
            return None;
        }
        let mut v = name_end + 1;
        while matches!(input.get(v), Some(b' ' | b'\t')) {
            v += 1;
        }
        let end = text_run(input, v);
        if !crlf(input, end) {
            return None;
        }
        // The line's next byte: `httparse` waits for it (responses), or reads a field name
        // that starts with a space or tab as an invalid line.
        match input.get(end + 2) {
            None if folding => return None,
            Some(b' ' | b'\t') => return None,
            _ => {}
        }
        if n == room {
            return None;
        }
        let mut value_end = end;
        while value_end > v && matches!(input[value_end - 1], b' ' | b'\t') {
            value_end -= 1;
        }
        out[n] = Header {
            name: ascii(&input[at..name_end]),
            value: &input[v..value_end],
        };
        n += 1;
        at = end + 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::http1::parse::{fast_path_disagreement, parse_request_prefix, parse_response_prefix};
    use proptest::prelude::*;

    /// Method, target, minor version, fields and length.
    type Parsed = (String, String, u8, Vec<(String, Vec<u8>)>, usize);

    fn req(input: &[u8], max: usize) -> Option<Parsed> {
        let mut f = [httparse::EMPTY_HEADER; FIELDS];
        let (l, n, len) = request(input, max, &mut f)?;
        let fields = f[..n].iter().map(|h| (h.name.to_string(), h.value.to_vec())).collect();
        Some((l.method.into(), l.target.into(), l.minor, fields, len))
    }

    fn resp(input: &[u8], max: usize) -> Option<(u8, u16, String, usize, usize)> {
        let mut f = [httparse::EMPTY_HEADER; FIELDS];
        let (l, n, len) = response(input, max, &mut f)?;
        Some((l.minor, l.code, l.reason.into(), n, len))
    }

    const PLAIN_REQUEST: &[u8] = b"POST /api/v1/orders?x=1 HTTP/1.1\r\nHost: shop.example.com:8080\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64)\r\nX-Empty:\r\nX-Pad: \t padded value \t \r\nContent-Length: 2\r\n\r\n{}";
    const PLAIN_RESPONSE: &[u8] =
        b"HTTP/1.1 404 Not\tFound\r\nServer: nginx/1.25.3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";

    #[test]
    fn plain_heads_take_the_fast_path_with_what_httparse_gives() {
        let (method, target, minor, fields, len) = req(PLAIN_REQUEST, 100).expect("a plain request head");
        assert_eq!(
            (method.as_str(), target.as_str(), minor),
            ("POST", "/api/v1/orders?x=1", 1)
        );
        assert_eq!(len, PLAIN_REQUEST.len() - 2);
        assert_eq!(fields.len(), 5);
        assert_eq!(fields[2], ("X-Empty".to_string(), b"".to_vec()));
        assert_eq!(fields[3], ("X-Pad".to_string(), b"padded value".to_vec()));
        assert_eq!(
            resp(PLAIN_RESPONSE, 100),
            Some((1, 404, "Not\tFound".into(), 2, PLAIN_RESPONSE.len() - 5))
        );
        assert_eq!(resp(b"HTTP/1.0 204\r\n\r\n", 100), Some((0, 204, String::new(), 0, 16)));
        assert_eq!(
            resp(b"HTTP/1.1 200 \r\n\r\n", 100),
            Some((1, 200, String::new(), 0, 17))
        );
        for head in [
            PLAIN_REQUEST,
            PLAIN_RESPONSE,
            b"HTTP/1.0 204\r\n\r\n",
            b"GET / HTTP/1.0\r\n\r\n",
        ] {
            assert_eq!(fast_path_disagreement(head, 100), None);
        }
        // What the dissector sees is the same either way.
        let rh = parse_request_prefix(PLAIN_REQUEST, 100).unwrap().unwrap().0;
        assert_eq!(rh.host.as_deref(), Some("shop.example.com:8080"));
        assert_eq!(rh.common.content_length, Some(2));
        let rh = parse_response_prefix(PLAIN_RESPONSE, 100).unwrap().unwrap().0;
        assert!(rh.common.chunked);
        assert_eq!((rh.status, rh.reason), (404, "Not\tFound"));
    }

    #[test]
    fn heads_outside_the_plain_form_are_handed_to_httparse() {
        let requests: [&[u8]; 12] = [
            b"\r\nGET / HTTP/1.1\r\n\r\n",           // an empty line first
            b"GET / HTTP/1.1\n\n",                   // line ends without CR
            b"GET  / HTTP/1.1\r\n\r\n",              // two spaces
            b"GET / HTTP/1.2\r\n\r\n",               // no such version
            b"GET /caf\xc3\xa9 HTTP/1.1\r\n\r\n",    // a target beyond ASCII
            b"GET / HTTP/1.1\r\nA : b\r\n\r\n",      // a space before the colon
            b"GET / HTTP/1.1\r\nA: b\xff\r\n\r\n",   // a value beyond ASCII
            b"GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n", // a line starting with a space
            b"GET / HTTP/1.1\r\nA: b\rc\r\n\r\n",    // a lone CR
            b"GET / HTTP/1.1\r\nA: b\x00\r\n\r\n",   // a control byte
            b"GET / HTTP/1.1\r\n(A): b\r\n\r\n",     // a separator in a name
            b"GET / HTTP/1.1\r\nA: b\r\n",           // no end yet
        ];
        for (i, r) in requests.iter().enumerate() {
            assert_eq!(req(r, 100), None, "request {i}");
        }
        let responses: [&[u8]; 6] = [
            b"HTTP/1.1  200 OK\r\n\r\n",
            b"HTTP/1.1 200  OK\r\n\r\n",
            b"HTTP/1.1 20 OK\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nA: b\r\n\tc\r\n\r\n", // a folded line
            b"HTTP/1.1 200 OK\r\nA: b\r\n",            // httparse waits for the next byte
            b"HTTP/1.1 200 \xe2\x9c\x93\r\n\r\n",
        ];
        for (i, r) in responses.iter().enumerate() {
            assert_eq!(resp(r, 100), None, "response {i}");
        }
        // More fields than allowed, or than there is room for.
        let many: Vec<u8> = [&b"GET / HTTP/1.1\r\n"[..], &b"A: b\r\n".repeat(FIELDS + 1), b"\r\n"].concat();
        assert_eq!(req(&many, 1000), None);
        assert!(req(PLAIN_REQUEST, 5).is_some());
        assert_eq!(req(PLAIN_REQUEST, 4), None);
        // Every strict prefix of a plain head is handed on (httparse says whether more is needed).
        for cut in 0..PLAIN_REQUEST.len() - 2 {
            assert_eq!(req(&PLAIN_REQUEST[..cut], 100), None, "cut at {cut}");
        }
        for cut in 0..PLAIN_RESPONSE.len() - 5 {
            assert_eq!(resp(&PLAIN_RESPONSE[..cut], 100), None, "cut at {cut}");
        }
    }

    /// Bytes that change how a head parses.
    const TRICKY: &[u8] = b" \t\r\n:\x00\x7f\x80\xffa(/";

    fn head() -> impl Strategy<Value = Vec<u8>> {
        let field = (
            "[A-Za-z0-9!#$%&'*+.^_`|~-]{1,12}",
            "[ \t]{0,2}",
            proptest::collection::vec(prop_oneof![8 => 0x20u8..0x7f, 1 => Just(b'\t')], 0..24),
        )
            .prop_map(|(n, ws, v)| [n.as_bytes(), b":", ws.as_bytes(), &v, b"\r\n"].concat());
        let line = prop_oneof![
            ("[A-Z]{1,7}", "/[!-~]{0,30}", 0u8..2).prop_map(|(m, t, v)| format!("{m} {t} HTTP/1.{v}\r\n").into_bytes()),
            (0u8..2, 100u16..600, "[ -~\t]{0,12}").prop_map(|(v, c, r)| format!(
                "HTTP/1.{v} {c} {}\r\n",
                r.trim_start()
            )
            .into_bytes()),
        ];
        (
            line,
            proptest::collection::vec(field, 0..40),
            proptest::collection::vec(any::<u8>(), 0..8),
        )
            .prop_map(|(l, f, body)| [l, f.concat(), b"\r\n".to_vec(), body].concat())
    }

    proptest! {
        /// On every head the fast path takes, plain or changed in a few places, it gives what
        /// `httparse` gives: line, fields and length.
        #[test]
        fn the_fast_path_agrees_with_httparse(
            h in head(),
            edits in proptest::collection::vec((any::<prop::sample::Index>(), 0u8..3, prop::sample::select(TRICKY)), 0..3),
            max in 1usize..50,
        ) {
            prop_assert_eq!(fast_path_disagreement(&h, max), None);
            let mut h = h;
            for (at, op, b) in edits {
                let i = at.index(h.len() + 1);
                match op {
                    0 if i < h.len() => h[i] = b,
                    1 => h.insert(i, b),
                    _ => h.truncate(i),
                }
            }
            prop_assert_eq!(fast_path_disagreement(&h, max), None);
        }

        /// A plain head within the limits is never handed on.
        #[test]
        fn plain_heads_within_the_limits_are_taken(h in head()) {
            let mut f = [httparse::EMPTY_HEADER; FIELDS];
            // The head ends at its first empty line (no field line is empty).
            let end = h.windows(4).position(|w| w == b"\r\n\r\n").expect("an empty line") + 4;
            let fields = h[..end].windows(2).filter(|w| w == b"\r\n").count() - 2;
            let taken = if h.starts_with(b"HTTP/") {
                response(&h, 100, &mut f).is_some()
            } else {
                request(&h, 100, &mut f).is_some()
            };
            prop_assert_eq!(taken, fields <= FIELDS, "{:?}", String::from_utf8_lossy(&h));
        }
    }
}
