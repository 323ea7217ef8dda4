//! AMQP 0-9-1 wire format: the protocol header, frames, and the method arguments the entries
//! show (exchange, routing key, queue, reply code and text, and per method the arguments users
//! ask about: tags, counts, flags, tuning). Class and method ids and argument layouts are those
//! of the AMQP 0-9-1 specification. SASL responses and secrets are never kept.

use super::content::{Rd, TableCaps, TableDecoder};
use crate::dissect::Probe;

pub const PROTOCOL_HEADER: &[u8; 8] = b"AMQP\x00\x00\x09\x01";
pub const FRAME_METHOD: u8 = 1;
pub const FRAME_HEADER: u8 = 2;
pub const FRAME_BODY: u8 = 3;
pub const FRAME_HEARTBEAT: u8 = 8;
pub const FRAME_END: u8 = 0xce;
/// Frame header: type, channel, size.
pub const HEADER_LEN: usize = 7;
/// Frames larger than this are not taken for AMQP by the probe.
const MAX_PROBE_FRAME: u32 = 1 << 20;

/// The Wireshark name of a method: `Basic.Publish`, `Queue.Declare-Ok`.
pub fn method_name(class: u16, method: u16) -> Option<&'static str> {
    Some(match (class, method) {
        (10, 10) => "Connection.Start",
        (10, 11) => "Connection.Start-Ok",
        (10, 20) => "Connection.Secure",
        (10, 21) => "Connection.Secure-Ok",
        (10, 30) => "Connection.Tune",
        (10, 31) => "Connection.Tune-Ok",
        (10, 40) => "Connection.Open",
        (10, 41) => "Connection.Open-Ok",
        (10, 50) => "Connection.Close",
        (10, 51) => "Connection.Close-Ok",
        (10, 60) => "Connection.Blocked",
        (10, 61) => "Connection.Unblocked",
        (10, 70) => "Connection.Update-Secret",
        (10, 71) => "Connection.Update-Secret-Ok",
        (20, 10) => "Channel.Open",
        (20, 11) => "Channel.Open-Ok",
        (20, 20) => "Channel.Flow",
        (20, 21) => "Channel.Flow-Ok",
        (20, 40) => "Channel.Close",
        (20, 41) => "Channel.Close-Ok",
        (40, 10) => "Exchange.Declare",
        (40, 11) => "Exchange.Declare-Ok",
        (40, 20) => "Exchange.Delete",
        (40, 21) => "Exchange.Delete-Ok",
        (40, 30) => "Exchange.Bind",
        (40, 31) => "Exchange.Bind-Ok",
        (40, 40) => "Exchange.Unbind",
        (40, 51) => "Exchange.Unbind-Ok",
        (50, 10) => "Queue.Declare",
        (50, 11) => "Queue.Declare-Ok",
        (50, 20) => "Queue.Bind",
        (50, 21) => "Queue.Bind-Ok",
        (50, 30) => "Queue.Purge",
        (50, 31) => "Queue.Purge-Ok",
        (50, 40) => "Queue.Delete",
        (50, 41) => "Queue.Delete-Ok",
        (50, 50) => "Queue.Unbind",
        (50, 51) => "Queue.Unbind-Ok",
        (60, 10) => "Basic.Qos",
        (60, 11) => "Basic.Qos-Ok",
        (60, 20) => "Basic.Consume",
        (60, 21) => "Basic.Consume-Ok",
        (60, 30) => "Basic.Cancel",
        (60, 31) => "Basic.Cancel-Ok",
        (60, 40) => "Basic.Publish",
        (60, 50) => "Basic.Return",
        (60, 60) => "Basic.Deliver",
        (60, 70) => "Basic.Get",
        (60, 71) => "Basic.Get-Ok",
        (60, 72) => "Basic.Get-Empty",
        (60, 80) => "Basic.Ack",
        (60, 90) => "Basic.Reject",
        (60, 100) => "Basic.Recover-Async",
        (60, 110) => "Basic.Recover",
        (60, 111) => "Basic.Recover-Ok",
        (60, 120) => "Basic.Nack",
        (85, 10) => "Confirm.Select",
        (85, 11) => "Confirm.Select-Ok",
        (90, 10) => "Tx.Select",
        (90, 11) => "Tx.Select-Ok",
        (90, 20) => "Tx.Commit",
        (90, 21) => "Tx.Commit-Ok",
        (90, 30) => "Tx.Rollback",
        (90, 31) => "Tx.Rollback-Ok",
        _ => return None,
    })
}

/// Does a synchronous method wait for a reply (`-Ok`, or `Get-Empty`)?
pub fn is_sync(class: u16, method: u16) -> bool {
    matches!(
        (class, method),
        (10, 10 | 20 | 30 | 40 | 50 | 70)
            | (20, 10 | 20 | 40)
            | (40, 10 | 20 | 30 | 40)
            | (50, 10 | 20 | 30 | 40 | 50)
            | (60, 10 | 20 | 30 | 70 | 110)
            | (85, 10)
            | (90, 10 | 20 | 30)
    )
}

/// Is `(reply_class, reply)` the reply of the synchronous method `(class, method)`?
pub fn is_reply_to(class: u16, method: u16, reply_class: u16, reply: u16) -> bool {
    reply_class == class
        && is_sync(class, method)
        && match (class, method) {
            (40, 40) => reply == 51,
            (60, 70) => matches!(reply, 71 | 72),
            _ => reply == method + 1,
        }
}

/// Methods followed by a content header and body frames.
pub fn carries_content(class: u16, method: u16) -> bool {
    matches!((class, method), (60, 40 | 50 | 60 | 71))
}

/// The total size (header and frame-end included) of a frame whose first 7 bytes are `h`.
pub fn frame_size(h: &[u8]) -> Option<usize> {
    let t = *h.first()?;
    if !matches!(t, FRAME_METHOD | FRAME_HEADER | FRAME_BODY | 4 | FRAME_HEARTBEAT) {
        return None;
    }
    let size = u32::from_be_bytes(h.get(3..7)?.try_into().ok()?);
    Some(HEADER_LEN + size as usize + 1)
}

/// Is `b` the start of AMQP 0-9-1: the protocol header, or (mid-connection) a whole method or
/// heartbeat frame of a known method ending in the frame-end octet?
pub fn probe(b: &[u8]) -> Probe {
    let n = b.len().min(PROTOCOL_HEADER.len());
    if b[..n] == PROTOCOL_HEADER[..n] {
        return if n == PROTOCOL_HEADER.len() {
            Probe::Match
        } else {
            Probe::NeedMore
        };
    }
    if b.len() < HEADER_LEN {
        return if b.first().is_none_or(|t| matches!(*t, FRAME_METHOD | FRAME_HEARTBEAT)) {
            Probe::NeedMore
        } else {
            Probe::NoMatch
        };
    }
    let size = u32::from_be_bytes([b[3], b[4], b[5], b[6]]);
    if size > MAX_PROBE_FRAME {
        return Probe::NoMatch;
    }
    match b[0] {
        FRAME_HEARTBEAT if size == 0 => {}
        FRAME_METHOD if size >= 4 => {
            if b.len() < HEADER_LEN + 4 {
                return Probe::NeedMore;
            }
            let class = u16::from_be_bytes([b[7], b[8]]);
            let method = u16::from_be_bytes([b[9], b[10]]);
            if method_name(class, method).is_none() {
                return Probe::NoMatch;
            }
        }
        _ => return Probe::NoMatch,
    }
    match b.get(HEADER_LEN + size as usize) {
        Some(&FRAME_END) => Probe::Match,
        Some(_) => Probe::NoMatch,
        None => Probe::NeedMore,
    }
}

/// A method argument's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    Int(u64),
    Bool(bool),
    Str(Box<str>),
}

impl std::fmt::Display for Arg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Arg::Int(v) => write!(f, "{v}"),
            Arg::Bool(b) => write!(f, "{b}"),
            Arg::Str(s) => f.write_str(s),
        }
    }
}

/// What stands for a secret that is never kept (SASL responses, `Update-Secret`).
pub const REDACTED: &str = "<redacted>";

/// The arguments of a method frame that entries show.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Method {
    pub class: u16,
    pub method: u16,
    pub exchange: Option<String>,
    pub routing_key: Option<String>,
    pub queue: Option<String>,
    pub reply_code: Option<u16>,
    pub reply_text: Option<String>,
    /// Further arguments as (AMQP 0-9-1 name, value), in wire order: a few per method.
    pub args: Vec<(&'static str, Arg)>,
    /// A field table of the method (server or client properties) was read in part.
    pub table_cut: bool,
}

/// Parses a method frame's payload (class id, method id, arguments). `None` when it is shorter
/// than its ids; arguments cut short are left out. Field tables are read under `caps`.
pub fn parse_method(payload: &[u8], caps: TableCaps) -> Option<Method> {
    let mut r = Rd { b: payload };
    let mut m = Method {
        class: r.u16()?,
        method: r.u16()?,
        ..Method::default()
    };
    let _ = arguments(&mut r, &mut m, caps);
    Some(m)
}

fn int(m: &mut Method, name: &'static str, v: impl Into<u64>) {
    m.args.push((name, Arg::Int(v.into())));
}

/// Pushes the flags of a bit octet, low bit first, named by `names`.
fn bits(m: &mut Method, octet: u8, names: &[&'static str]) {
    for (i, n) in names.iter().enumerate() {
        m.args.push((n, Arg::Bool(octet & (1 << i) != 0)));
    }
}

fn text(m: &mut Method, name: &'static str, v: String) {
    m.args.push((name, Arg::Str(v.into_boxed_str())));
}

/// `product`, `version` and `platform` of connection properties (`Start`/`Start-Ok`).
fn peer_properties(r: &mut Rd<'_>, m: &mut Method, caps: TableCaps) -> Option<()> {
    let mut dec = TableDecoder::new(caps);
    let t = dec.table(r);
    m.table_cut = dec.cut;
    for (key, name) in [("product", "product"), ("version", "version"), ("platform", "platform")] {
        if let Some((_, v)) = t.iter().flatten().find(|(k, _)| &**k == key) {
            text(m, name, v.to_text());
        }
    }
    t.map(|_| ())
}

fn failing_method(r: &mut Rd<'_>, m: &mut Method) -> Option<()> {
    let (class, method) = (r.u16()?, r.u16()?);
    if class != 0 || method != 0 {
        int(m, "class-id", class);
        int(m, "method-id", method);
        let name = method_name(class, method).map_or_else(|| format!("Unknown.{class}-{method}"), str::to_string);
        text(m, "failing-method", name);
    }
    Some(())
}

fn arguments(r: &mut Rd<'_>, m: &mut Method, caps: TableCaps) -> Option<()> {
    match (m.class, m.method) {
        (10, 10) => {
            let (major, minor) = (r.u8()?, r.u8()?);
            text(m, "protocol-version", format!("{major}-{minor}"));
            peer_properties(r, m, caps)?;
            let mechanisms = r.longstr()?;
            text(
                m,
                "mechanisms",
                String::from_utf8_lossy(&mechanisms[..mechanisms.len().min(255)]).into_owned(),
            );
        }
        (10, 11) => {
            peer_properties(r, m, caps)?;
            text(m, "mechanism", r.shortstr()?);
            // The SASL response holds the credentials: its presence only.
            r.longstr()?;
            text(m, "response", REDACTED.to_string());
        }
        (10, 21) => {
            r.longstr()?;
            text(m, "response", REDACTED.to_string());
        }
        (10, 30) | (10, 31) => {
            int(m, "channel-max", r.u16()?);
            int(m, "frame-max", r.u32()?);
            int(m, "heartbeat", r.u16()?);
        }
        (10, 40) => text(m, "virtual-host", r.shortstr()?),
        (10, 50) | (20, 40) => {
            m.reply_code = Some(r.u16()?);
            m.reply_text = Some(r.shortstr()?);
            failing_method(r, m)?;
        }
        (10, 60) => text(m, "reason", r.shortstr()?),
        (10, 70) => {
            r.longstr()?;
            text(m, "new-secret", REDACTED.to_string());
            text(m, "reason", r.shortstr()?);
        }
        (20, 20) | (20, 21) => bits(m, r.u8()?, &["active"]),
        (40, 10) => {
            r.skip(2)?;
            m.exchange = Some(r.shortstr()?);
            text(m, "type", r.shortstr()?);
            bits(
                m,
                r.u8()?,
                &["passive", "durable", "auto-delete", "internal", "no-wait"],
            );
        }
        (40, 20) => {
            r.skip(2)?;
            m.exchange = Some(r.shortstr()?);
            bits(m, r.u8()?, &["if-unused", "no-wait"]);
        }
        (40, 30) | (40, 40) => {
            r.skip(2)?;
            text(m, "destination", r.shortstr()?);
            text(m, "source", r.shortstr()?);
            text(m, "routing-key", r.shortstr()?);
        }
        (50, 10) => {
            r.skip(2)?;
            m.queue = Some(r.shortstr()?);
            bits(
                m,
                r.u8()?,
                &["passive", "durable", "exclusive", "auto-delete", "no-wait"],
            );
        }
        (50, 11) => {
            m.queue = Some(r.shortstr()?);
            int(m, "message-count", r.u32()?);
            int(m, "consumer-count", r.u32()?);
        }
        (50, 30) => {
            r.skip(2)?;
            m.queue = Some(r.shortstr()?);
        }
        (50, 31) | (50, 41) => int(m, "message-count", r.u32()?),
        (50, 40) => {
            r.skip(2)?;
            m.queue = Some(r.shortstr()?);
            bits(m, r.u8()?, &["if-unused", "if-empty", "no-wait"]);
        }
        (50, 20) | (50, 50) => {
            r.skip(2)?;
            m.queue = Some(r.shortstr()?);
            m.exchange = Some(r.shortstr()?);
            m.routing_key = Some(r.shortstr()?);
        }
        (60, 10) => {
            int(m, "prefetch-size", r.u32()?);
            int(m, "prefetch-count", r.u16()?);
            bits(m, r.u8()?, &["global"]);
        }
        (60, 20) => {
            r.skip(2)?;
            m.queue = Some(r.shortstr()?);
            text(m, "consumer-tag", r.shortstr()?);
            bits(m, r.u8()?, &["no-local", "no-ack", "exclusive", "no-wait"]);
        }
        (60, 21) | (60, 31) => text(m, "consumer-tag", r.shortstr()?),
        (60, 30) => {
            text(m, "consumer-tag", r.shortstr()?);
            bits(m, r.u8()?, &["no-wait"]);
        }
        (60, 40) => {
            r.skip(2)?;
            m.exchange = Some(r.shortstr()?);
            m.routing_key = Some(r.shortstr()?);
            bits(m, r.u8()?, &["mandatory", "immediate"]);
        }
        (60, 50) => {
            m.reply_code = Some(r.u16()?);
            m.reply_text = Some(r.shortstr()?);
            m.exchange = Some(r.shortstr()?);
            m.routing_key = Some(r.shortstr()?);
        }
        (60, 60) => {
            text(m, "consumer-tag", r.shortstr()?);
            int(m, "delivery-tag", r.u64()?);
            bits(m, r.u8()?, &["redelivered"]);
            m.exchange = Some(r.shortstr()?);
            m.routing_key = Some(r.shortstr()?);
        }
        (60, 70) => {
            r.skip(2)?;
            m.queue = Some(r.shortstr()?);
            bits(m, r.u8()?, &["no-ack"]);
        }
        (60, 71) => {
            int(m, "delivery-tag", r.u64()?);
            bits(m, r.u8()?, &["redelivered"]);
            m.exchange = Some(r.shortstr()?);
            m.routing_key = Some(r.shortstr()?);
            int(m, "message-count", r.u32()?);
        }
        (60, 80) => {
            int(m, "delivery-tag", r.u64()?);
            bits(m, r.u8()?, &["multiple"]);
        }
        (60, 90) => {
            int(m, "delivery-tag", r.u64()?);
            bits(m, r.u8()?, &["requeue"]);
        }
        (60, 100) | (60, 110) => bits(m, r.u8()?, &["requeue"]),
        (60, 120) => {
            int(m, "delivery-tag", r.u64()?);
            bits(m, r.u8()?, &["multiple", "requeue"]);
        }
        (85, 10) => bits(m, r.u8()?, &["no-wait"]),
        _ => {}
    }
    Some(())
}

/// The body size a content header frame announces.
pub fn content_body_size(payload: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(payload.get(4..12)?.try_into().ok()?))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A whole frame.
    pub fn frame(kind: u8, channel: u16, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![kind];
        f.extend(channel.to_be_bytes());
        f.extend((payload.len() as u32).to_be_bytes());
        f.extend(payload);
        f.push(FRAME_END);
        f
    }

    pub fn short(s: &str) -> Vec<u8> {
        let mut v = vec![s.len() as u8];
        v.extend(s.as_bytes());
        v
    }

    /// A method frame with raw arguments.
    pub fn method(channel: u16, class: u16, id: u16, args: &[u8]) -> Vec<u8> {
        let mut p = class.to_be_bytes().to_vec();
        p.extend(id.to_be_bytes());
        p.extend(args);
        frame(FRAME_METHOD, channel, &p)
    }

    pub fn publish(channel: u16, exchange: &str, key: &str) -> Vec<u8> {
        let mut a = vec![0, 0];
        a.extend(short(exchange));
        a.extend(short(key));
        a.push(0);
        method(channel, 60, 40, &a)
    }

    /// Content header and one body frame.
    pub fn content(channel: u16, body: &[u8]) -> Vec<u8> {
        let mut h = 60u16.to_be_bytes().to_vec();
        h.extend([0, 0]);
        h.extend((body.len() as u64).to_be_bytes());
        h.extend([0, 0]);
        let mut v = frame(FRAME_HEADER, channel, &h);
        v.extend(frame(FRAME_BODY, channel, body));
        v
    }

    #[test]
    fn names_and_replies() {
        assert_eq!(method_name(10, 11), Some("Connection.Start-Ok"));
        assert_eq!(method_name(40, 51), Some("Exchange.Unbind-Ok"));
        assert_eq!(method_name(60, 99), None);
        assert!(is_reply_to(50, 10, 50, 11));
        assert!(is_reply_to(40, 40, 40, 51) && !is_reply_to(40, 40, 40, 41));
        assert!(is_reply_to(60, 70, 60, 72) && is_reply_to(60, 110, 60, 111));
        assert!(!is_reply_to(60, 40, 60, 41) && !is_reply_to(50, 11, 50, 12));
        assert!(!is_reply_to(50, 10, 40, 11));
    }

    #[test]
    fn method_arguments() {
        let p = publish(1, "celeryev", "worker.heartbeat");
        let m = parse_method(&p[7..p.len() - 1], TableCaps::default()).unwrap();
        assert_eq!(m.exchange.as_deref(), Some("celeryev"));
        assert_eq!(m.routing_key.as_deref(), Some("worker.heartbeat"));
        let mut a = 406u16.to_be_bytes().to_vec();
        a.extend(short("PRECONDITION_FAILED"));
        a.extend([0, 40, 0, 10]);
        let c = method(1, 20, 40, &a);
        let m = parse_method(&c[7..c.len() - 1], TableCaps::default()).unwrap();
        assert_eq!(
            (m.reply_code, m.reply_text.as_deref()),
            (Some(406), Some("PRECONDITION_FAILED"))
        );
    }

    #[test]
    fn every_prefix_is_safe_and_the_probe_never_changes_its_mind() {
        let mut wire = publish(1, "ex", "rk");
        wire.extend(content(1, b"hello"));
        assert_eq!(probe(&wire), Probe::Match);
        for n in 0..wire.len() {
            assert_ne!(probe(&wire[..n]), Probe::NoMatch, "prefix {n}");
            let _ = parse_method(&wire[7..n.max(7)], TableCaps::default());
            let _ = content_body_size(&wire[..n]);
        }
        for n in 0..8 {
            assert_ne!(probe(&PROTOCOL_HEADER[..n]), Probe::NoMatch);
        }
        assert_eq!(probe(PROTOCOL_HEADER), Probe::Match);
        assert_eq!(probe(b"GET / HTTP/1.1\r\n"), Probe::NoMatch);
        let mut bad_end = publish(1, "ex", "rk");
        *bad_end.last_mut().unwrap() = 0;
        assert_eq!(probe(&bad_end), Probe::NoMatch);
        assert_eq!(frame_size(&bad_end[..7]), Some(bad_end.len()));
        assert_eq!(frame_size(&[9, 0, 0, 0, 0, 0, 0]), None);
    }
}
