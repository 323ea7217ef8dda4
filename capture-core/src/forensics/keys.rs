//! TLS secrets for an exported capture: the NSS key log lines of exactly the sessions whose
//! ClientHello is among the exported packets, so that a file handed to Wireshark decrypts what
//! it holds and reveals no other session's keys.

use std::collections::HashSet;

/// A TLS client random (32 bytes), the key of every NSS key log line.
pub type ClientRandom = [u8; 32];

/// The client random of a ClientHello at the start of a TCP payload (a handshake record whose
/// first message is a ClientHello). A ClientHello that does not start its segment is not found;
/// clients send it as the first bytes of the connection.
pub fn client_hello_random(payload: &[u8]) -> Option<ClientRandom> {
    // Record: type 22, version 3.x, length; handshake: type 1, 3-byte length, client version.
    if payload.len() < 43 || payload[0] != 22 || payload[1] != 3 || payload[5] != 1 {
        return None;
    }
    payload[11..43].try_into().ok()
}

/// The lines of `text` (NSS key log format: `LABEL <client_random hex> <secret hex>`) whose
/// client random is in `randoms`, each ending in a newline, and how many sessions they cover.
/// Comments, blank lines and lines of other sessions are left out.
pub fn lines_for(text: &str, randoms: &HashSet<ClientRandom>) -> (String, usize) {
    let mut out = String::new();
    let mut sessions = HashSet::new();
    for line in text.lines() {
        let mut words = line.split_ascii_whitespace();
        let (Some(label), Some(random), Some(_secret), None) = (words.next(), words.next(), words.next(), words.next())
        else {
            continue;
        };
        if label.starts_with('#') {
            continue;
        }
        if let Some(r) = decode_random(random).filter(|r| randoms.contains(r)) {
            sessions.insert(r);
            out.push_str(line.trim());
            out.push('\n');
        }
    }
    (out, sessions.len())
}

fn decode_random(hex: &str) -> Option<ClientRandom> {
    if hex.len() != 64 {
        return None;
    }
    let mut r = [0u8; 32];
    for (i, b) in r.iter_mut().enumerate() {
        *b = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_random_of_a_client_hello_only() {
        let mut hello = vec![22, 3, 1, 0, 200, 1, 0, 0, 196, 3, 3];
        hello.extend((0..32).map(|i| i as u8));
        hello.extend([0u8; 20]);
        let want: ClientRandom = std::array::from_fn(|i| i as u8);
        assert_eq!(client_hello_random(&hello), Some(want));
        let mut server_hello = hello.clone();
        server_hello[5] = 2;
        assert_eq!(client_hello_random(&server_hello), None);
        assert_eq!(client_hello_random(&hello[..40]), None);
        assert_eq!(
            client_hello_random(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n0123456789abcdef"),
            None
        );
    }

    #[test]
    fn keeps_the_lines_of_the_wanted_sessions() {
        let a = "ab".repeat(32);
        let b = "cd".repeat(32);
        let text = format!(
            "# comment\nCLIENT_RANDOM {a} 0011\n\nCLIENT_HANDSHAKE_TRAFFIC_SECRET {b} 2233\nSERVER_TRAFFIC_SECRET_0 {a} 4455\nbroken {a}\n"
        );
        let wanted = HashSet::from([[0xab; 32]]);
        assert_eq!(
            lines_for(&text, &wanted),
            (format!("CLIENT_RANDOM {a} 0011\nSERVER_TRAFFIC_SECRET_0 {a} 4455\n"), 1)
        );
        assert_eq!(lines_for(&text, &HashSet::new()), (String::new(), 0));
    }
}
