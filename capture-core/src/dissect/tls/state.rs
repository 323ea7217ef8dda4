//! One TLS connection: record framing per direction, the handshake read in clear, and, with a
//! key log, decryption that hands the plaintext to a nested [`AppSession`].
//!
//! Records of type application_data are counted and, without keys, their bodies passed over
//! without being held, so a long connection costs a few counters. Other records (handshake,
//! alert, change_cipher_spec), and every record of a direction being decrypted, are held whole
//! (at most [`MAX_RECORD_LEN`] bytes); handshake messages are joined across records up to
//! `tls_max_handshake_bytes`. After a change_cipher_spec of TLS ≤ 1.2 the sender's records are
//! encrypted: counted, and decrypted when the key log has the session's master secret. TLS 1.3
//! records are decrypted with the handshake traffic secrets until each side's Finished, then with
//! the application traffic secrets. A record that does not authenticate stops decryption of the
//! connection, with the reason in the entry: the nested dissectors only ever see authenticated
//! plaintext. A gap inside an application_data body keeps the framing when nothing is being
//! decrypted; any other gap makes the direction look for a record header again at the start of
//! its next chunk, and ends decryption of that direction.

use super::crypto::{self, Decrypter};
use super::parse::{self, Handshake, MAX_RECORD_LEN, RECORD_HEADER_LEN, TLS13};
use super::{Decryption, Resumption, TlsAlert, TlsEntry, tls_flags};
use crate::dissect::{AppSession, Ctx, StreamDissector};
use crate::entry::{Detail, Entry, Protocol, Transport};
use crate::tcp::flow::Dir;
use crate::tcp::reassembly::Chunk;
use crate::time::Timestamp;

#[derive(Debug, Default)]
struct DirState {
    /// The record being read: its header, and its body unless it is passed over.
    rec: Vec<u8>,
    /// Bytes of the current application_data body still to pass over.
    skip: usize,
    /// Handshake messages not yet complete, joined across records.
    hs: Vec<u8>,
    /// Handshake messages of this direction are no longer read (malformed or too large).
    hs_stopped: bool,
    /// Lost the record framing at a gap: wait for a chunk that starts with a record header.
    resync: bool,
    /// The bytes are not TLS records: nothing more is read from this direction.
    lost: bool,
    /// Sent change_cipher_spec.
    ccs: bool,
    /// First encrypted handshake record (its Finished) after change_cipher_spec (TLS ≤ 1.2).
    finished: Option<Timestamp>,
    ended: bool,
    /// application_data records and their bytes.
    app_records: u64,
    app_bytes: u64,
    /// The protection of this direction's records, once in force.
    dec: Option<Decrypter>,
    /// The protection that comes next: at change_cipher_spec (TLS ≤ 1.2) or after this side's
    /// Finished (TLS 1.3, the application traffic keys).
    next: Option<Decrypter>,
    /// Protected records seen (their sequence numbers are spent).
    protected: u64,
}

/// State of one TLS connection.
#[derive(Debug, Default)]
pub struct TlsSession {
    dirs: [DirState; 2],
    /// The direction that sent the ClientHello (or the one opposite the ServerHello).
    client: Option<Dir>,
    entry: TlsEntry,
    /// Capture time of the ClientHello (else of the first record).
    first_ts: Option<Timestamp>,
    client_hello: bool,
    server_hello: bool,
    client_random: Option<[u8; 32]>,
    /// The ServerHello, to look the session up again when the key log grows (live capture).
    server_hello_msg: Option<Box<parse::ServerHello>>,
    client_session_id: Vec<u8>,
    client_ticket: bool,
    server_certificate: bool,
    /// The dissector of the decrypted plaintext (`None` until some arrives).
    inner: Option<AppSession>,
    emitted: bool,
    /// Live capture with a key log: protected records held (in arrival order, both directions)
    /// while the session's secrets are not in the key log yet. A client appends them as it
    /// connects, and the key log is re-read every 500 ms, so the first records of a connection
    /// usually come before their keys. Released when the keys come, when `tls_key_wait_bytes`
    /// are held, or when the connection ends.
    held: std::collections::VecDeque<(Dir, Timestamp, Vec<u8>)>,
    held_bytes: usize,
    /// Set while held records are replayed for good: nothing is held again.
    no_hold: bool,
    /// The handshake fields the decrypted L7 entries carry (built with the first of them).
    conn: Option<std::sync::Arc<super::TlsConn>>,
}

impl TlsSession {
    pub fn new() -> Self {
        Self::default()
    }

    fn is_tls13(&self) -> bool {
        self.entry.version == Some(TLS13)
    }

    /// Is `dir` the client's direction (as far as is known)?
    fn sent_by_client(&self, dir: Dir) -> bool {
        self.client.map_or(dir == Dir::ToServer, |c| c == dir)
    }

    fn data(&mut self, dir: Dir, ts: Timestamp, mut input: &[u8], ctx: &mut Ctx<'_>) {
        let i = dir.index();
        self.first_ts.get_or_insert(ts);
        if self.dirs[i].lost || self.dirs[i].ended {
            ctx.stats.bytes_not_dissected += input.len() as u64;
            return;
        }
        if self.dirs[i].resync {
            if parse::record_header(input).is_err() {
                ctx.stats.bytes_not_dissected += input.len() as u64;
                return;
            }
            self.dirs[i].resync = false;
            ctx.stats.tls_resyncs += 1;
        }
        while !input.is_empty() {
            let st = &mut self.dirs[i];
            if st.skip > 0 {
                let n = st.skip.min(input.len());
                st.skip -= n;
                input = &input[n..];
                continue;
            }
            if st.rec.len() < RECORD_HEADER_LEN {
                let n = (RECORD_HEADER_LEN - st.rec.len()).min(input.len());
                st.rec.extend_from_slice(&input[..n]);
                input = &input[n..];
            }
            let hdr = match parse::record_header(&st.rec) {
                Ok(Some(h)) => h,
                Ok(None) => return,
                Err(()) => {
                    ctx.stats.tls_framing_errors += 1;
                    ctx.stats.bytes_not_dissected += (input.len() + st.rec.len()) as u64;
                    st.rec = Vec::new();
                    st.hs = Vec::new();
                    st.lost = true;
                    st.dec = None;
                    self.entry.flags |= tls_flags::FRAMING_LOST;
                    return;
                }
            };
            if hdr.content_type == parse::APPLICATION_DATA && st.rec.len() == RECORD_HEADER_LEN {
                st.app_records += 1;
                st.app_bytes += hdr.len as u64;
                // Read whole when it can be decrypted, or held until its keys come.
                let decrypting = st.dec.is_some() || self.may_hold(i, RECORD_HEADER_LEN + hdr.len, ctx);
                self.on_app_record(dir, ts);
                if !decrypting {
                    let st = &mut self.dirs[i];
                    st.rec.clear();
                    st.skip = hdr.len;
                    continue;
                }
            }
            let st = &mut self.dirs[i];
            let need = RECORD_HEADER_LEN + hdr.len - st.rec.len();
            let n = need.min(input.len());
            st.rec.extend_from_slice(&input[..n]);
            input = &input[n..];
            if st.rec.len() < RECORD_HEADER_LEN + hdr.len {
                return;
            }
            let rec = std::mem::take(&mut st.rec);
            self.on_record(dir, ts, &rec, ctx);
            let st = &mut self.dirs[i];
            st.rec = rec;
            st.rec.clear();
            if st.rec.capacity() > MAX_RECORD_LEN + RECORD_HEADER_LEN {
                st.rec.shrink_to(RECORD_HEADER_LEN);
            }
        }
    }

    /// An application_data record started.
    fn on_app_record(&mut self, dir: Dir, ts: Timestamp) {
        // TLS 1.3: the client's first encrypted record after the ServerHello is its Finished.
        if self.is_tls13() && self.server_hello && self.sent_by_client(dir) && self.entry.handshake_us.is_none() {
            self.entry.handshake_us = Some(ts.micros_since(self.first_ts.unwrap_or(ts)));
        }
    }

    /// A whole record (header and body) that is read rather than passed over.
    fn on_record(&mut self, dir: Dir, ts: Timestamp, rec: &[u8], ctx: &mut Ctx<'_>) {
        let i = dir.index();
        let (header, body) = rec.split_at(RECORD_HEADER_LEN);
        let content_type = header[0];
        // TLS 1.3 middlebox-compatibility change_cipher_spec records are never protected.
        let protected = self.dirs[i].ccs && !self.is_tls13()
            || self.is_tls13() && content_type == parse::APPLICATION_DATA && self.server_hello;
        if !protected {
            self.on_plain_record(dir, ts, content_type, body, false, ctx);
            return;
        }
        if self.dirs[i].dec.is_none() && self.dirs[i].protected == 0 {
            self.retry_keys(ctx);
        }
        if self.may_hold(i, rec.len(), ctx) {
            self.held_bytes += rec.len();
            self.held.push_back((dir, ts, rec.to_vec()));
            return;
        }
        if !self.held.is_empty() {
            // The keys came (or the hold is full): what waited goes first, in order.
            self.release_held(ctx);
        }
        self.dirs[i].protected += 1;
        if self.dirs[i].dec.is_some() {
            let mut h = [0u8; RECORD_HEADER_LEN];
            h.copy_from_slice(header);
            let opened = self.dirs[i].dec.as_mut().and_then(|d| d.open(&h, body));
            match opened {
                Some((inner_type, plain)) => {
                    self.entry.decryption = Decryption::Decrypted;
                    self.on_plain_record(dir, ts, inner_type, &plain, true, ctx);
                }
                None => {
                    ctx.stats.tls_decrypt_errors += 1;
                    self.entry.decryption = Decryption::Failed;
                    for d in &mut self.dirs {
                        d.dec = None;
                        d.next = None;
                    }
                    self.on_encrypted_record(dir, ts, content_type, ctx);
                }
            }
        } else {
            self.on_encrypted_record(dir, ts, content_type, ctx);
        }
    }

    /// May a protected record of `len` bytes in direction `i` wait for its keys?
    fn may_hold(&self, i: usize, len: usize, ctx: &Ctx<'_>) -> bool {
        self.dirs[i].dec.is_none()
            && self.dirs[i].protected == 0
            && !self.no_hold
            && self.entry.decryption == Decryption::NoSecrets
            && ctx.keys.is_some()
            && self.held_bytes + len <= ctx.limits.tls_key_wait_bytes
    }

    /// Replays the held records: decrypted if the keys are there now, else counted as
    /// encrypted records.
    fn release_held(&mut self, ctx: &mut Ctx<'_>) {
        let held = std::mem::take(&mut self.held);
        self.held_bytes = 0;
        let was = std::mem::replace(&mut self.no_hold, true);
        for (dir, ts, rec) in held {
            self.on_record(dir, ts, &rec, ctx);
        }
        self.no_hold = was;
    }

    /// A protected record that cannot be read: counted for what its wire type says.
    fn on_encrypted_record(&mut self, dir: Dir, ts: Timestamp, content_type: u8, ctx: &mut Ctx<'_>) {
        match content_type {
            parse::ALERT => self.alert(dir, ts, None, ctx),
            parse::HANDSHAKE => self.finished_record(dir, ts),
            _ => {}
        }
    }

    /// The first protected handshake record of a TLS ≤ 1.2 direction is its Finished.
    fn finished_record(&mut self, dir: Dir, ts: Timestamp) {
        if self.is_tls13() {
            return;
        }
        let st = &mut self.dirs[dir.index()];
        if st.finished.is_none() {
            st.finished = Some(ts);
            if let (Some(a), Some(b)) = (self.dirs[0].finished, self.dirs[1].finished) {
                let first = self.first_ts.unwrap_or(ts);
                self.entry.handshake_us = Some(a.max(b).micros_since(first));
            }
        }
    }

    fn alert(&mut self, dir: Dir, ts: Timestamp, body: Option<&[u8]>, ctx: &mut Ctx<'_>) {
        self.entry.alert_count += 1;
        if self.entry.alerts.len() < ctx.limits.tls_max_list {
            let readable = body.filter(|b| b.len() == 2);
            self.entry.alerts.push(TlsAlert {
                from_client: self.sent_by_client(dir),
                level: readable.map(|b| b[0]),
                description: readable.map(|b| b[1]),
                ts,
            });
        }
    }

    /// A record in clear, or decrypted (`decrypted`: its content type is the inner one).
    fn on_plain_record(
        &mut self,
        dir: Dir,
        ts: Timestamp,
        content_type: u8,
        body: &[u8],
        decrypted: bool,
        ctx: &mut Ctx<'_>,
    ) {
        let i = dir.index();
        match content_type {
            parse::CHANGE_CIPHER_SPEC => {
                self.dirs[i].ccs = true;
                if !self.is_tls13() {
                    let st = &mut self.dirs[i];
                    st.dec = st.next.take();
                }
                if !self.sent_by_client(dir)
                    && !self.is_tls13()
                    && self.server_hello
                    && !self.server_certificate
                    && self.entry.resumption.is_none()
                {
                    self.entry.resumption = Some(if self.client_ticket {
                        Resumption::Ticket
                    } else {
                        Resumption::SessionId
                    });
                }
            }
            parse::ALERT => self.alert(dir, ts, Some(body), ctx),
            parse::HANDSHAKE => {
                if decrypted {
                    self.finished_record(dir, ts);
                }
                self.handshake_bytes(dir, ts, body, decrypted, ctx);
            }
            parse::APPLICATION_DATA if decrypted => self.plaintext(dir, ts, body, ctx),
            _ => {}
        }
    }

    /// Decrypted application data: to the nested dissector, whose entries are marked.
    fn plaintext(&mut self, dir: Dir, ts: Timestamp, plain: &[u8], ctx: &mut Ctx<'_>) {
        if plain.is_empty() {
            return;
        }
        let before = ctx.out.len();
        self.inner
            .get_or_insert_with(AppSession::new)
            .on_chunk(dir, ts, Chunk::Data(plain), ctx);
        mark_decrypted(ctx, before, &self.entry, &mut self.conn);
    }

    /// Joins handshake bytes and reads every complete message.
    fn handshake_bytes(&mut self, dir: Dir, ts: Timestamp, body: &[u8], decrypted: bool, ctx: &mut Ctx<'_>) {
        let i = dir.index();
        if self.dirs[i].hs_stopped {
            return;
        }
        let mut hs = std::mem::take(&mut self.dirs[i].hs);
        hs.extend_from_slice(body);
        let mut at = 0;
        while let Some(h) = hs.get(at..at + parse::HANDSHAKE_HEADER_LEN) {
            let len = (usize::from(h[1]) << 16) | (usize::from(h[2]) << 8) | usize::from(h[3]);
            let whole = parse::HANDSHAKE_HEADER_LEN + len;
            if whole > ctx.limits.tls_max_handshake_bytes {
                self.stop_handshake(dir, ctx);
                return;
            }
            let Some(msg) = hs.get(at..at + whole) else {
                break;
            };
            at += whole;
            let tls13 = decrypted && self.is_tls13();
            match parse::handshake(msg, ctx.limits.tls_max_list, tls13) {
                Some(m) => self.on_handshake(dir, ts, m, ctx),
                None => {
                    self.stop_handshake(dir, ctx);
                    return;
                }
            }
        }
        hs.drain(..at);
        if hs.len() > ctx.limits.tls_max_handshake_bytes {
            self.stop_handshake(dir, ctx);
            return;
        }
        self.dirs[i].hs = hs;
    }

    fn stop_handshake(&mut self, dir: Dir, ctx: &mut Ctx<'_>) {
        let st = &mut self.dirs[dir.index()];
        st.hs = Vec::new();
        st.hs_stopped = true;
        self.entry.flags |= tls_flags::HANDSHAKE_MALFORMED;
        ctx.stats.tls_handshake_errors += 1;
    }

    fn on_handshake(&mut self, dir: Dir, ts: Timestamp, m: Handshake, ctx: &mut Ctx<'_>) {
        match m {
            Handshake::ClientHello(ch) => {
                self.client.get_or_insert(dir);
                if self.client_hello {
                    // The second ClientHello after a HelloRetryRequest: the first one is kept.
                    return;
                }
                self.client_hello = true;
                self.first_ts = Some(ts);
                self.client_random = Some(ch.random);
                let e = &mut self.entry;
                e.client_version = Some(ch.version);
                e.sni = ch.sni.map(Into::into);
                e.alpn_offered = ch.alpn.into_iter().map(Into::into).collect();
                e.ciphers_offered = ch.ciphers;
                e.ja3 = Some(ch.ja3.into());
                e.ja4 = Some(ch.ja4.into());
                self.client_session_id = ch.session_id;
                self.client_ticket = ch.ticket;
            }
            Handshake::ServerHello(sh) => {
                self.client.get_or_insert(dir.flip());
                let e = &mut self.entry;
                e.version = Some(sh.version());
                e.cipher = Some(sh.cipher);
                if sh.hello_retry {
                    e.flags |= tls_flags::HELLO_RETRY;
                    return;
                }
                self.server_hello = true;
                let version = sh.version();
                e.alpn_selected = sh.alpn.clone().map(Into::into);
                e.ja3s = Some(sh.ja3s.clone().into());
                if version == TLS13 {
                    // TLS 1.3 echoes the legacy session id always: only an accepted PSK resumes.
                    if sh.psk {
                        e.resumption = Some(Resumption::Psk);
                    }
                } else if !sh.session_id.is_empty() && sh.session_id == self.client_session_id {
                    e.resumption = Some(Resumption::SessionId);
                }
                self.keys(&sh, ctx);
                self.server_hello_msg = Some(sh);
            }
            Handshake::Certificate(chain) => {
                if self.sent_by_client(dir) || self.server_certificate {
                    return;
                }
                self.server_certificate = true;
                // A resumption guessed from an echoed session id is disproved by a certificate.
                self.entry.resumption = None;
                if let Some(mut c) = chain
                    .first()
                    .and_then(|der| parse::certificate(der, ctx.limits.tls_max_list))
                {
                    c.chain_len = u32::try_from(chain.len()).unwrap_or(u32::MAX);
                    self.entry.certificate = Some(Box::new(c));
                }
            }
            Handshake::EncryptedExtensions(alpn) => {
                if !self.sent_by_client(dir) {
                    self.entry.alpn_selected = alpn.map(Into::into);
                }
            }
            Handshake::Finished => {
                if self.is_tls13() {
                    let st = &mut self.dirs[dir.index()];
                    if st.next.is_some() {
                        st.dec = st.next.take();
                    }
                }
            }
            Handshake::KeyUpdate => {
                let st = &mut self.dirs[dir.index()];
                if let Some(d) = &st.dec {
                    st.dec = d.updated();
                    if st.dec.is_none() {
                        self.entry.decryption = Decryption::Failed;
                    }
                }
            }
            Handshake::Other(_) => {}
        }
    }

    /// The key log had no secrets for the session at its ServerHello; a live capture's key log
    /// may have them by the first protected record (clients append as they connect). Only
    /// directions with no protected record spent yet can start.
    fn retry_keys(&mut self, ctx: &mut Ctx<'_>) {
        if self.entry.decryption != Decryption::NoSecrets || ctx.keys.is_none() {
            return;
        }
        let Some(sh) = self.server_hello_msg.take() else { return };
        self.keys(&sh, ctx);
        self.server_hello_msg = Some(sh);
        if self.entry.decryption == Decryption::Pending {
            let tls13 = self.is_tls13();
            for d in &mut self.dirs {
                if d.protected > 0 {
                    d.dec = None;
                    d.next = None;
                } else if !tls13 && d.ccs && d.dec.is_none() {
                    d.dec = d.next.take();
                }
            }
        }
    }

    /// After the ServerHello: looks the session up in the key log and derives its keys.
    fn keys(&mut self, sh: &parse::ServerHello, ctx: &mut Ctx<'_>) {
        let Some(keylog) = ctx.keys else {
            self.entry.decryption = Decryption::NoKeyLog;
            return;
        };
        let Some(random) = self.client_random else {
            self.entry.decryption = Decryption::NoClientHello;
            return;
        };
        let Some(secrets) = keylog.get(&random) else {
            self.entry.decryption = Decryption::NoSecrets;
            return;
        };
        let Some(client) = self.client else { return };
        let (c, s) = (client.index(), client.flip().index());
        if crypto::suite(sh.cipher).is_none() {
            self.entry.decryption = Decryption::UnsupportedCipher;
            return;
        }
        if sh.version() == TLS13 {
            let derive = |secret: &Option<Box<[u8]>>| secret.as_deref().and_then(|x| crypto::tls13_keys(sh.cipher, x));
            let (Some(ch), Some(shk)) = (derive(&secrets.client_handshake), derive(&secrets.server_handshake)) else {
                self.entry.decryption = Decryption::NoSecrets;
                return;
            };
            self.dirs[c].dec = Some(ch);
            self.dirs[s].dec = Some(shk);
            self.dirs[c].next = derive(&secrets.client_traffic);
            self.dirs[s].next = derive(&secrets.server_traffic);
        } else if sh.version() != 0x0303 {
            // SSL 3.0 – TLS 1.1 derive keys with another PRF.
            self.entry.decryption = Decryption::UnsupportedCipher;
            return;
        } else {
            let Some(master) = secrets.master.as_deref() else {
                self.entry.decryption = Decryption::NoSecrets;
                return;
            };
            let Some((cw, sw)) = crypto::tls12_keys(sh.cipher, master, &random, &sh.random) else {
                self.entry.decryption = Decryption::UnsupportedCipher;
                return;
            };
            self.dirs[c].next = Some(cw);
            self.dirs[s].next = Some(sw);
        }
        self.entry.decryption = Decryption::Pending;
    }

    fn gap(&mut self, dir: Dir, ts: Timestamp, n: u64, ctx: &mut Ctx<'_>) {
        self.entry.flags |= tls_flags::GAP;
        let st = &mut self.dirs[dir.index()];
        if st.lost || st.ended {
            return;
        }
        if st.dec.is_some() || st.next.is_some() {
            // The lost records' sequence numbers and bytes are unknown: decryption ends here.
            st.dec = None;
            st.next = None;
            self.entry.flags |= tls_flags::DECRYPTION_STOPPED;
            if let Some(inner) = &mut self.inner {
                let before = ctx.out.len();
                inner.on_chunk(dir, ts, Chunk::Gap(n), ctx);
                mark_decrypted(ctx, before, &self.entry, &mut self.conn);
            }
        }
        let st = &mut self.dirs[dir.index()];
        if st.rec.is_empty() && st.skip as u64 >= n {
            // Inside an application_data body: the framing holds.
            st.skip -= n as usize;
            return;
        }
        st.rec.clear();
        st.skip = 0;
        st.hs.clear();
        st.resync = true;
    }

    fn emit(&mut self, ts: Timestamp, ctx: &mut Ctx<'_>) {
        if self.emitted {
            return;
        }
        self.emitted = true;
        if let Some(inner) = &mut self.inner {
            let before = ctx.out.len();
            inner.finish(ts, ctx);
            mark_decrypted(ctx, before, &self.entry, &mut self.conn);
        }
        let client = self.client.unwrap_or(Dir::ToServer);
        let (c, s) = (client.index(), client.flip().index());
        let mut e = std::mem::take(&mut self.entry);
        e.app_records = [self.dirs[c].app_records, self.dirs[s].app_records];
        e.app_bytes = [self.dirs[c].app_bytes, self.dirs[s].app_bytes];
        if e.handshake_us.is_none() {
            e.flags |= tls_flags::HANDSHAKE_INCOMPLETE;
        }
        if !self.client_hello {
            e.flags |= tls_flags::NO_CLIENT_HELLO;
        }
        if e.decryption == Decryption::Pending {
            e.decryption = Decryption::NothingProtected;
        }
        let meta = ctx.meta;
        let (src, dst) = if client == Dir::ToServer {
            (meta.client, meta.server)
        } else {
            (meta.server, meta.client)
        };
        let elapsed_us = e.handshake_us;
        let decrypted = e.decryption == Decryption::Decrypted;
        ctx.out.push(Entry {
            peers: Default::default(),
            tls: false,
            decrypted,
            tls_conn: None,
            id: 0,
            ts: self.first_ts.unwrap_or(ts),
            protocol: Protocol::Tls,
            transport: Transport::Tcp,
            src,
            dst,
            flow_id: meta.id,
            elapsed_us,
            detail: Detail::Tls(Box::new(e)),
        });
    }
}

/// Entries the nested dissector produced came out of TLS records this session decrypted: they
/// are marked and carry the connection's handshake fields. Plaintext only flows after the
/// ServerHello (and, in TLS 1.3, the EncryptedExtensions with the ALPN) was read, so the fields
/// are complete when the first entry comes.
fn mark_decrypted(ctx: &mut Ctx<'_>, from: usize, entry: &TlsEntry, conn: &mut Option<std::sync::Arc<super::TlsConn>>) {
    if ctx.out.len() <= from {
        return;
    }
    let conn = conn.get_or_insert_with(|| std::sync::Arc::new(entry.conn()));
    for e in &mut ctx.out[from..] {
        e.tls = true;
        e.decrypted = true;
        e.tls_conn = Some(conn.clone());
    }
}

impl StreamDissector for TlsSession {
    fn on_chunk(&mut self, dir: Dir, ts: Timestamp, chunk: Chunk<'_>, ctx: &mut Ctx<'_>) {
        if self.emitted {
            if let Chunk::Data(d) = chunk {
                ctx.stats.bytes_not_dissected += d.len() as u64;
            }
            return;
        }
        match chunk {
            Chunk::Data(d) => self.data(dir, ts, d, ctx),
            Chunk::Gap(n) => self.gap(dir, ts, n, ctx),
            Chunk::End => {
                self.dirs[dir.index()].ended = true;
                if let Some(inner) = &mut self.inner {
                    let before = ctx.out.len();
                    inner.on_chunk(dir, ts, Chunk::End, ctx);
                    mark_decrypted(ctx, before, &self.entry, &mut self.conn);
                }
                // With records waiting for their keys, the entry waits for `finish` (the flow
                // leaving the table), by when the key log has been read again.
                if self.dirs.iter().all(|d| d.ended) && self.held.is_empty() {
                    self.emit(ts, ctx);
                }
            }
        }
    }

    fn reset(&mut self, ts: Timestamp, ctx: &mut Ctx<'_>) {
        if !self.held.is_empty() && !self.emitted {
            // Nothing more comes on the wire; the key log may still bring the secrets.
            for d in &mut self.dirs {
                d.ended = true;
            }
            return;
        }
        self.finish(ts, ctx);
    }

    fn finish(&mut self, ts: Timestamp, ctx: &mut Ctx<'_>) {
        if !self.held.is_empty() && !self.emitted {
            self.no_hold = true;
            self.retry_keys(ctx);
            self.release_held(ctx);
            if let Some(inner) = &mut self.inner {
                let before = ctx.out.len();
                for dir in [Dir::ToServer, Dir::ToClient] {
                    if self.dirs[dir.index()].ended {
                        inner.on_chunk(dir, ts, Chunk::End, ctx);
                    }
                }
                mark_decrypted(ctx, before, &self.entry, &mut self.conn);
            }
        }
        self.emit(ts, ctx);
    }
}
