//! Redis and DNS against tshark: every capture in ../shared/pcaps with a `redis.tsv` or `dns.tsv`
//! reference is run through the engine and compared row by row, with the scorer's documented
//! leniency rules (shared/conformance/README.md, rules 6–9), applied by rule, never per file.
//! Where tshark 4.0 is weaker (RESP3 replies, inline commands) the tests below also assert our
//! own, correct result on the same captures.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use capture_core::entry::{Entry, Protocol};
use wirelens_e2e::{Tally, assert_agreement, captures_with, endpoint, entries_of, pcaps_dir, read_tsv, ref_dir};

type Conn = (SocketAddr, SocketAddr);

fn streams(capture: &Path) -> HashMap<String, Conn> {
    read_tsv(&ref_dir(capture).join("tcp.tsv"))
        .into_iter()
        .map(|r| (r["stream"].clone(), (endpoint(&r["client"]), endpoint(&r["server"]))))
        .collect()
}

fn on_conn(e: &Entry, c: Conn) -> bool {
    (e.src, e.dst) == c || (e.dst, e.src) == c
}

fn of(capture: &Path, protocol: Protocol) -> Vec<Arc<Entry>> {
    entries_of(capture)
        .into_iter()
        .filter(|e| e.protocol == protocol)
        .collect()
}

/// How a reference row is matched (the scorer's classes).
enum Class {
    /// Paired in order by (command, first_arg) on the connection; everything compared.
    Required(String, String),
    /// Paired with a leftover entry of the connection; only the reply type compared (rules 6, 8).
    Lenient,
    /// Not counted; absorbs one leftover entry of the connection (rule 7).
    Optional,
}

fn compare_redis(capture: &Path) -> Tally {
    let conns = streams(capture);
    let rows = read_tsv(&ref_dir(capture).join("redis.tsv"));
    let entries = of(capture, Protocol::Redis);
    let mut used = vec![false; entries.len()];
    let mut t = Tally::default();
    let tainted: HashSet<&str> = rows
        .iter()
        .filter(|r| r["command"].starts_with('(') || r["reply_type"] == "unparsed_fragment")
        .map(|r| r["stream"].as_str())
        .collect();
    let classify = |r: &HashMap<String, String>| {
        if r["command"].is_empty() && r["cmd_frame"].is_empty() {
            if tainted.contains(r["stream"].as_str()) {
                Class::Optional
            } else {
                Class::Lenient
            }
        } else if r["command"].starts_with('(') {
            Class::Lenient
        } else {
            Class::Required(r["command"].clone(), r["first_arg"].clone())
        }
    };
    // Rule 9: no reply type to compare when tshark reassembled none, or not as RESP2.
    let reply_ok = |r: &HashMap<String, String>, e: &Entry| {
        let want = r["reply_type"].as_str();
        want.is_empty() || want == "unparsed_fragment" || e.redis().and_then(|x| x.reply_type()) == Some(want)
    };
    let mut lenient = Vec::new();
    let mut optional = Vec::new();
    for row in &rows {
        let conn = conns[&row["stream"]];
        match classify(row) {
            Class::Optional => optional.push(conn),
            Class::Lenient => {
                t.reference += 1;
                lenient.push((row, conn));
            }
            Class::Required(cmd, key) => {
                t.reference += 1;
                let found = (0..entries.len()).find(|&i| {
                    let r = entries[i].redis().expect("redis");
                    !used[i]
                        && on_conn(&entries[i], conn)
                        && r.command.as_deref().unwrap_or("") == cmd
                        && r.key().unwrap_or("") == key
                });
                match found {
                    Some(i) => {
                        used[i] = true;
                        if reply_ok(row, &entries[i]) {
                            t.matched += 1;
                        } else {
                            t.mismatches.push(format!(
                                "{cmd} {key}: reply {:?} vs {}",
                                entries[i].redis().unwrap().reply_type(),
                                row["reply_type"]
                            ));
                        }
                    }
                    None => t
                        .mismatches
                        .push(format!("missing: {cmd} {key} (stream {})", row["stream"])),
                }
            }
        }
    }
    for (row, conn) in lenient {
        match (0..entries.len()).find(|&i| !used[i] && on_conn(&entries[i], conn)) {
            Some(i) => {
                used[i] = true;
                if reply_ok(row, &entries[i]) {
                    t.matched += 1;
                } else {
                    t.mismatches.push(format!(
                        "lenient row (stream {}): {}",
                        row["stream"],
                        entries[i].summary()
                    ));
                }
            }
            None => t.mismatches.push(format!(
                "missing: server message / unparsed command on stream {}",
                row["stream"]
            )),
        }
    }
    for conn in optional {
        if let Some(i) = (0..entries.len()).find(|&i| !used[i] && on_conn(&entries[i], conn)) {
            used[i] = true;
        }
    }
    for (i, e) in entries.iter().enumerate() {
        if !used[i] {
            t.extra += 1;
            t.mismatches.push(format!("extra: {}", e.summary()));
        }
    }
    t
}

fn compare_dns(capture: &Path) -> Tally {
    let rows = read_tsv(&ref_dir(capture).join("dns.tsv"));
    let entries = of(capture, Protocol::Dns);
    let mut used = vec![false; entries.len()];
    let mut t = Tally::default();
    let num = |s: &str| -> Option<u64> { (!s.is_empty()).then(|| s.parse().expect("number")) };
    for row in &rows {
        t.reference += 1;
        let id = u16::from_str_radix(row["id"].trim_start_matches("0x"), 16).expect("hex id");
        let found = (0..entries.len()).find(|&i| {
            let d = entries[i].dns().expect("dns");
            !used[i]
                && d.id == id
                && d.qname().unwrap_or("") == row["qname"]
                && entries[i].transport.name() == row["transport"]
        });
        let Some(i) = found else {
            t.mismatches
                .push(format!("missing: {} {:#06x} {}", row["transport"], id, row["qname"]));
            continue;
        };
        used[i] = true;
        let d = entries[i].dns().expect("dns");
        let got = (
            d.qtype().map(u64::from),
            d.rcode().map(u64::from),
            d.answer_count().map(u64::from),
        );
        let want = (num(&row["qtype"]), num(&row["rcode"]), num(&row["answers"]));
        if got == want {
            t.matched += 1;
        } else {
            t.mismatches.push(format!(
                "{:#06x} {}: (qtype, rcode, answers) {got:?} vs {want:?}",
                id, row["qname"]
            ));
        }
    }
    for (i, e) in entries.iter().enumerate() {
        if !used[i] {
            t.extra += 1;
            t.mismatches.push(format!("extra: {}", e.summary()));
        }
    }
    t
}

fn agree(table: &str, min_reference: usize, compare: fn(&Path) -> Tally) {
    let Some(dir) = pcaps_dir() else { return };
    let captures = captures_with(&dir, table, &["tls"]);
    assert!(
        captures.len() >= 6,
        "expected the {table} captures under {}",
        dir.display()
    );
    assert_agreement(&dir, table, &captures, min_reference, &compare);
}

#[test]
fn redis_agrees_with_tshark() {
    agree("redis.tsv", 190, compare_redis);
}

#[test]
fn dns_agrees_with_tshark() {
    agree("dns.tsv", 120, compare_dns);
}

/// (command, key, reply type) of the Redis entries of one connection, in order.
fn redis_rows(capture: &Path, client_port: u16) -> Vec<(Option<String>, Option<String>, Option<&'static str>)> {
    of(capture, Protocol::Redis)
        .iter()
        .filter(|e| e.src.port() == client_port)
        .map(|e| {
            let r = e.redis().unwrap();
            (
                r.command.as_deref().map(String::from),
                r.key().map(String::from),
                r.reply_type(),
            )
        })
        .collect()
}

fn some(cmd: &str, key: &str, reply: &'static str) -> (Option<String>, Option<String>, Option<&'static str>) {
    (Some(cmd.into()), Some(key.into()), Some(reply))
}

#[test]
fn tshark_weaker_inline_commands_and_resp3_attributes_in_zeek_captures() {
    let Some(dir) = pcaps_dir() else { return };
    // zeek_redis_attr: tshark shows `(unparsed_fragment)` for the inline command and for the
    // RESP3 attribute reply. The first reply is an array holding an attribute; the second starts
    // with an attribute, so it has the type of the array that follows.
    let attr = dir.join("redis/zeek_redis_attr.pcap");
    assert_eq!(redis_rows(&attr, 62283), vec![some("FAKE", "COMMAND", "array")]);
    assert_eq!(redis_rows(&attr, 62286), vec![some("FAKE2", "COMMAND2", "array")]);
    let second = of(&attr, Protocol::Redis)
        .into_iter()
        .find(|e| e.src.port() == 62286)
        .unwrap();
    let reply = second.redis().unwrap().reply.clone().unwrap();
    assert!(reply.attribute);
    assert_eq!(reply.items, vec![Box::from("2039123"), Box::from("9543892")]);
    // zeek_redis_pubsub: three connections send inline commands.
    let pubsub = dir.join("redis/zeek_redis_pubsub.pcap");
    assert_eq!(redis_rows(&pubsub, 60833), vec![some("PUBLISH", "Foo", "integer")]);
    assert_eq!(
        redis_rows(&pubsub, 60837),
        vec![some("PUBLISH", "FeeFooFiiFum", "integer")]
    );
    assert_eq!(
        redis_rows(&pubsub, 60838),
        vec![some("SET", "sanity_check", "simple_string")]
    );
    // The subscriber's deliveries are entries of their own with no command; RESP2 ones are arrays.
    let pushes: Vec<_> = of(&pubsub, Protocol::Redis)
        .into_iter()
        .filter(|e| e.redis().unwrap().command.is_none())
        .map(|e| {
            let r = e.redis().unwrap();
            (
                r.channel().map(String::from),
                r.payload().map(String::from),
                r.reply_type(),
            )
        })
        .collect();
    assert_eq!(
        pushes,
        vec![
            (Some("Foo".into()), Some("Hi there :)".into()), Some("array")),
            (Some("Foo".into()), Some("Hi there :)".into()), Some("array")),
            (Some("FeeFooFiiFum".into()), Some("Hello! :)".into()), Some("array")),
        ]
    );
}

#[test]
fn tshark_weaker_the_490_kb_reply_is_typed() {
    let Some(dir) = pcaps_dir() else { return };
    // tshark reassembles no reply for this GET (rule 9); we stream it through. The capture ends
    // two bytes short (the final CRLF), so the reply is typed, sized, and marked incomplete.
    let rows = redis_rows(&dir.join("redis/deepflow_redis.pcap"), 60314);
    assert_eq!(
        rows,
        vec![some("GET", "1 1 http://127.0.0.1:20013/v2/pod-groups", "bulk_string")]
    );
    let e = of(&dir.join("redis/deepflow_redis.pcap"), Protocol::Redis)
        .into_iter()
        .find(|e| e.src.port() == 60314)
        .unwrap();
    let r = e.redis().unwrap();
    assert_eq!(r.reply.as_ref().unwrap().len, 490_493);
    assert_ne!(r.flags & capture_core::dissect::redis::redis_flags::REPLY_INCOMPLETE, 0);
}

#[test]
fn dns_over_https_responses_carry_their_query() {
    let Some(dir) = pcaps_dir() else { return };
    // tshark cannot read the query of a DoH GET (base64url in the URL); we decode it, so these
    // entries hold both sides.
    let es = of(&dir.join("http2/suricata_dns-over-http2.pcap"), Protocol::Dns);
    assert_eq!(es.len(), 4);
    for e in &es {
        let d = e.dns().unwrap();
        assert!(d.query.is_some() && d.response.is_some(), "{}", e.summary());
        assert!(e.elapsed_us.is_some());
    }
}
