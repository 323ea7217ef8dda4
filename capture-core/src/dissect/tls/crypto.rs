//! Record protection of TLS 1.2 (AEAD suites) and TLS 1.3: key derivation from key-log
//! secrets and record decryption. The ciphers, HMAC and HKDF are RustCrypto's; this module only
//! arranges their inputs as RFC 5246 §5/§6.2.3.3, RFC 7905 and RFC 8446 §5.2–§7.3 say.
//! Keys live in [`Decrypter`] values whose `Debug` shows no key bytes.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes128Gcm, Aes256Gcm};
use chacha20poly1305::ChaCha20Poly1305;
use hmac::{Hmac, Mac};
use sha2::{Sha256, Sha384};

/// The AEAD of a cipher suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AeadKind {
    Aes128Gcm,
    Aes256Gcm,
    ChaCha20Poly1305,
}

impl AeadKind {
    fn key_len(self) -> usize {
        match self {
            AeadKind::Aes128Gcm => 16,
            AeadKind::Aes256Gcm | AeadKind::ChaCha20Poly1305 => 32,
        }
    }
}

/// The hash of the PRF (TLS 1.2) or of HKDF (TLS 1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashKind {
    Sha256,
    Sha384,
}

/// What decryption needs to know of a cipher suite; `None` for suites not decrypted.
pub fn suite(id: u16) -> Option<(AeadKind, HashKind)> {
    use AeadKind::*;
    use HashKind::*;
    Some(match id {
        0x1301 => (Aes128Gcm, Sha256),
        0x1302 => (Aes256Gcm, Sha384),
        0x1303 => (ChaCha20Poly1305, Sha256),
        0x009c | 0x009e | 0xc02b | 0xc02f => (Aes128Gcm, Sha256),
        0x009d | 0x009f | 0xc02c | 0xc030 => (Aes256Gcm, Sha384),
        0xcca8..=0xccaa => (ChaCha20Poly1305, Sha256),
        _ => return None,
    })
}

fn hmac_parts(hash: HashKind, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    match hash {
        HashKind::Sha256 => {
            let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
            parts.iter().for_each(|p| m.update(p));
            m.finalize().into_bytes().to_vec()
        }
        HashKind::Sha384 => {
            let mut m = <Hmac<Sha384> as KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
            parts.iter().for_each(|p| m.update(p));
            m.finalize().into_bytes().to_vec()
        }
    }
}

/// The TLS 1.2 PRF (RFC 5246 §5): P_hash(secret, label + seed) cut to `len` bytes.
pub fn prf12(hash: HashKind, secret: &[u8], label: &[u8], seed: &[u8], len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    let mut a = hmac_parts(hash, secret, &[label, seed]);
    while out.len() < len {
        out.extend(hmac_parts(hash, secret, &[&a, label, seed]));
        a = hmac_parts(hash, secret, &[&a]);
    }
    out.truncate(len);
    out
}

/// HKDF-Expand-Label with an empty context (RFC 8446 §7.1).
pub fn expand_label(hash: HashKind, secret: &[u8], label: &str, len: usize) -> Option<Vec<u8>> {
    let full = format!("tls13 {label}");
    let mut info = Vec::with_capacity(4 + full.len());
    info.extend(u16::try_from(len).ok()?.to_be_bytes());
    info.push(u8::try_from(full.len()).ok()?);
    info.extend(full.as_bytes());
    info.push(0);
    let mut out = vec![0; len];
    match hash {
        HashKind::Sha256 => hkdf::Hkdf::<Sha256>::from_prk(secret)
            .ok()?
            .expand(&info, &mut out)
            .ok()?,
        HashKind::Sha384 => hkdf::Hkdf::<Sha384>::from_prk(secret)
            .ok()?
            .expand(&info, &mut out)
            .ok()?,
    }
    Some(out)
}

enum Cipher {
    Aes128(Box<Aes128Gcm>),
    Aes256(Box<Aes256Gcm>),
    ChaCha(Box<ChaCha20Poly1305>),
}

impl Cipher {
    fn new(kind: AeadKind, key: &[u8]) -> Option<Cipher> {
        Some(match kind {
            AeadKind::Aes128Gcm => Cipher::Aes128(Box::new(Aes128Gcm::new_from_slice(key).ok()?)),
            AeadKind::Aes256Gcm => Cipher::Aes256(Box::new(Aes256Gcm::new_from_slice(key).ok()?)),
            AeadKind::ChaCha20Poly1305 => Cipher::ChaCha(Box::new(ChaCha20Poly1305::new_from_slice(key).ok()?)),
        })
    }

    fn open(&self, nonce: &[u8; 12], msg: &[u8], aad: &[u8]) -> Option<Vec<u8>> {
        let p = Payload { msg, aad };
        match self {
            Cipher::Aes128(c) => c.decrypt(nonce.into(), p).ok(),
            Cipher::Aes256(c) => c.decrypt(nonce.into(), p).ok(),
            Cipher::ChaCha(c) => c.decrypt(nonce.into(), p).ok(),
        }
    }
}

/// The record protection of one direction: a key, an IV and the record sequence number.
pub struct Decrypter {
    cipher: Cipher,
    kind: AeadKind,
    /// TLS 1.2 GCM: the 4-byte salt; otherwise the 12-byte IV.
    iv: Vec<u8>,
    tls13: bool,
    seq: u64,
}

impl std::fmt::Debug for Decrypter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Decrypter({:?}, seq {})", self.kind, self.seq)
    }
}

/// The two directions' protection of TLS 1.2: (client write, server write).
pub fn tls12_keys(
    suite_id: u16,
    master: &[u8],
    client_random: &[u8],
    server_random: &[u8],
) -> Option<(Decrypter, Decrypter)> {
    let (kind, hash) = suite(suite_id)?;
    if (0x1301..=0x1303).contains(&suite_id) {
        return None;
    }
    let key_len = kind.key_len();
    let iv_len = if kind == AeadKind::ChaCha20Poly1305 { 12 } else { 4 };
    let seed = [server_random, client_random].concat();
    let block = prf12(hash, master, b"key expansion", &seed, 2 * (key_len + iv_len));
    let (ck, rest) = block.split_at(key_len);
    let (sk, rest) = rest.split_at(key_len);
    let (civ, siv) = rest.split_at(iv_len);
    let make = |key: &[u8], iv: &[u8]| {
        Some(Decrypter {
            cipher: Cipher::new(kind, key)?,
            kind,
            iv: iv.to_vec(),
            tls13: false,
            seq: 0,
        })
    };
    Some((make(ck, civ)?, make(sk, siv)?))
}

/// The protection derived from one TLS 1.3 traffic secret.
pub fn tls13_keys(suite_id: u16, secret: &[u8]) -> Option<Decrypter> {
    let (kind, hash) = suite(suite_id)?;
    if !(0x1301..=0x1303).contains(&suite_id) {
        return None;
    }
    let key = expand_label(hash, secret, "key", kind.key_len())?;
    let iv = expand_label(hash, secret, "iv", 12)?;
    Some(Decrypter {
        cipher: Cipher::new(kind, &key)?,
        kind,
        iv,
        tls13: true,
        seq: 0,
    })
}

fn xor_seq(iv: &[u8], seq: u64) -> [u8; 12] {
    let mut n = [0u8; 12];
    n.copy_from_slice(&iv[..12]);
    for (b, s) in n[4..].iter_mut().zip(seq.to_be_bytes()) {
        *b ^= s;
    }
    n
}

impl Decrypter {
    /// Decrypts one record (`header` is its 5 bytes, `body` the rest). Returns the content type
    /// and the plaintext; `None` when the record does not authenticate (wrong key, lost
    /// record), and then the sequence number does not move.
    pub fn open(&mut self, header: &[u8; 5], body: &[u8]) -> Option<(u8, Vec<u8>)> {
        let out = if self.tls13 {
            let nonce = xor_seq(&self.iv, self.seq);
            let mut plain = self.cipher.open(&nonce, body, header)?;
            let end = plain.iter().rposition(|&b| b != 0)?;
            let ty = plain[end];
            plain.truncate(end);
            (ty, plain)
        } else {
            let (nonce, ct) = if self.kind == AeadKind::ChaCha20Poly1305 {
                (xor_seq(&self.iv, self.seq), body)
            } else {
                let explicit = body.get(..8)?;
                let mut n = [0u8; 12];
                n[..4].copy_from_slice(&self.iv);
                n[4..].copy_from_slice(explicit);
                (n, &body[8..])
            };
            let plain_len = u16::try_from(ct.len().checked_sub(16)?).ok()?;
            let mut aad = [0u8; 13];
            aad[..8].copy_from_slice(&self.seq.to_be_bytes());
            aad[8..11].copy_from_slice(&header[..3]);
            aad[11..].copy_from_slice(&plain_len.to_be_bytes());
            (header[0], self.cipher.open(&nonce, ct, &aad)?)
        };
        self.seq += 1;
        Some(out)
    }
}
