//! Record protection of TLS 1.2 (AEAD suites, and AES-CBC with HMAC) and TLS 1.3: key
//! derivation from key-log secrets and record decryption. The ciphers, CBC mode, HMAC and HKDF
//! are RustCrypto's; this module only arranges their inputs as RFC 5246 §5/§6.2.3.2–§6.2.3.3,
//! RFC 7905 and RFC 8446 §5.2–§7.3 say.
//! Keys live in [`Decrypter`] values whose `Debug` shows no key bytes.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes128Gcm, Aes256Gcm};
use chacha20poly1305::ChaCha20Poly1305;
use hmac::{Hmac, Mac};
use sha2::{Sha256, Sha384};

/// The record protection of a cipher suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AeadKind {
    Aes128Gcm,
    Aes256Gcm,
    ChaCha20Poly1305,
    /// AES-CBC with an explicit IV per record and HMAC (MAC-then-encrypt, TLS 1.1+).
    Aes128Cbc(HashKind),
    Aes256Cbc(HashKind),
}

impl AeadKind {
    fn key_len(self) -> usize {
        match self {
            AeadKind::Aes128Gcm | AeadKind::Aes128Cbc(_) => 16,
            AeadKind::Aes256Gcm | AeadKind::ChaCha20Poly1305 | AeadKind::Aes256Cbc(_) => 32,
        }
    }

    /// The HMAC of a CBC suite.
    fn mac(self) -> Option<HashKind> {
        match self {
            AeadKind::Aes128Cbc(m) | AeadKind::Aes256Cbc(m) => Some(m),
            _ => None,
        }
    }
}

/// The hash of the PRF (TLS 1.2), of HKDF (TLS 1.3), or of a CBC suite's HMAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashKind {
    Sha1,
    Sha256,
    Sha384,
}

impl HashKind {
    fn len(self) -> usize {
        match self {
            HashKind::Sha1 => 20,
            HashKind::Sha256 => 32,
            HashKind::Sha384 => 48,
        }
    }
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
        // AES-CBC: *_CBC_SHA (HMAC-SHA1), *_CBC_SHA256, *_CBC_SHA384; the PRF is SHA-256 but
        // for the SHA384 suites.
        0x002f | 0x0033 | 0xc009 | 0xc013 => (Aes128Cbc(Sha1), Sha256),
        0x0035 | 0x0039 | 0xc00a | 0xc014 => (Aes256Cbc(Sha1), Sha256),
        0x003c | 0x0067 | 0xc023 | 0xc027 => (Aes128Cbc(Sha256), Sha256),
        0x003d | 0x006b => (Aes256Cbc(Sha256), Sha256),
        0xc024 | 0xc028 => (Aes256Cbc(Sha384), Sha384),
        _ => return None,
    })
}

fn hmac_parts(hash: HashKind, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    match hash {
        HashKind::Sha1 => {
            let mut m = <Hmac<sha1::Sha1> as KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
            parts.iter().for_each(|p| m.update(p));
            m.finalize().into_bytes().to_vec()
        }
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
        HashKind::Sha1 => return None,
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
    /// A CBC suite: the AES key and the HMAC key.
    Cbc(Box<[u8]>, Box<[u8]>),
}

impl Cipher {
    fn new(kind: AeadKind, key: &[u8]) -> Option<Cipher> {
        Some(match kind {
            AeadKind::Aes128Gcm => Cipher::Aes128(Box::new(Aes128Gcm::new_from_slice(key).ok()?)),
            AeadKind::Aes256Gcm => Cipher::Aes256(Box::new(Aes256Gcm::new_from_slice(key).ok()?)),
            AeadKind::ChaCha20Poly1305 => Cipher::ChaCha(Box::new(ChaCha20Poly1305::new_from_slice(key).ok()?)),
            AeadKind::Aes128Cbc(_) | AeadKind::Aes256Cbc(_) => return None,
        })
    }

    fn open(&self, nonce: &[u8; 12], msg: &[u8], aad: &[u8]) -> Option<Vec<u8>> {
        let p = Payload { msg, aad };
        match self {
            Cipher::Aes128(c) => c.decrypt(nonce.into(), p).ok(),
            Cipher::Aes256(c) => c.decrypt(nonce.into(), p).ok(),
            Cipher::ChaCha(c) => c.decrypt(nonce.into(), p).ok(),
            Cipher::Cbc(..) => None,
        }
    }

    /// AES-CBC decryption of whole blocks (the padding is checked by the caller).
    fn cbc(key: &[u8], iv: &[u8], buf: &mut [u8]) -> Option<()> {
        use cbc::cipher::block_padding::NoPadding;
        use cbc::cipher::{BlockModeDecrypt, KeyIvInit};
        match key.len() {
            16 => cbc::Decryptor::<aes::Aes128>::new_from_slices(key, iv)
                .ok()?
                .decrypt_padded::<NoPadding>(buf)
                .ok()?,
            32 => cbc::Decryptor::<aes::Aes256>::new_from_slices(key, iv)
                .ok()?
                .decrypt_padded::<NoPadding>(buf)
                .ok()?,
            _ => return None,
        };
        Some(())
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
    /// TLS 1.3: the suite and traffic secret the keys came from, for a KeyUpdate.
    secret: Option<(u16, Box<[u8]>)>,
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
    let seed = [server_random, client_random].concat();
    if let Some(mac) = kind.mac() {
        // client MAC key, server MAC key, client key, server key (TLS 1.1+: no fixed IVs).
        let m = mac.len();
        let block = prf12(hash, master, b"key expansion", &seed, 2 * (m + key_len));
        let (cm, rest) = block.split_at(m);
        let (sm, rest) = rest.split_at(m);
        let (ck, sk) = rest.split_at(key_len);
        let make = |key: &[u8], mac_key: &[u8]| Decrypter {
            cipher: Cipher::Cbc(key.into(), mac_key.into()),
            kind,
            iv: Vec::new(),
            tls13: false,
            seq: 0,
            secret: None,
        };
        return Some((make(ck, cm), make(sk, sm)));
    }
    let iv_len = if kind == AeadKind::ChaCha20Poly1305 { 12 } else { 4 };
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
            secret: None,
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
        secret: Some((suite_id, secret.into())),
    })
}

impl Decrypter {
    /// After a TLS 1.3 KeyUpdate: the protection of the next traffic secret (RFC 8446 §7.2,
    /// `HKDF-Expand-Label(secret, "traffic upd", "", Hash.length)`), sequence number 0.
    pub fn updated(&self) -> Option<Decrypter> {
        let (suite_id, secret) = self.secret.as_ref()?;
        let (_, hash) = suite(*suite_id)?;
        let next = expand_label(hash, secret, "traffic upd", hash.len())?;
        tls13_keys(*suite_id, &next)
    }
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
        let out = if let Cipher::Cbc(key, mac_key) = &self.cipher {
            let mac = self.kind.mac()?;
            // Explicit IV, then whole blocks of plaintext ‖ MAC ‖ padding ‖ padding length.
            let (iv, ct) = (body.get(..16)?, body.get(16..)?);
            if ct.is_empty() || !ct.len().is_multiple_of(16) {
                return None;
            }
            let mut plain = ct.to_vec();
            Cipher::cbc(key, iv, &mut plain)?;
            let pad = usize::from(*plain.last()?);
            let content_len = plain.len().checked_sub(pad + 1 + mac.len())?;
            if plain[plain.len() - pad - 1..].iter().any(|&b| usize::from(b) != pad) {
                return None;
            }
            let (data, tag) = plain[..content_len + mac.len()].split_at(content_len);
            let len = u16::try_from(content_len).ok()?;
            let want = hmac_parts(
                mac,
                mac_key,
                &[&self.seq.to_be_bytes(), &header[..3], &len.to_be_bytes(), data],
            );
            if want != tag {
                return None;
            }
            (header[0], data.to_vec())
        } else if self.tls13 {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Seals one TLS 1.3 record (inner type 23) as a peer would, with the keys of `secret`.
    fn seal13(secret: &[u8], seq: u64, plain: &[u8]) -> ([u8; 5], Vec<u8>) {
        let key = expand_label(HashKind::Sha256, secret, "key", 16).unwrap();
        let iv = expand_label(HashKind::Sha256, secret, "iv", 12).unwrap();
        let mut inner = plain.to_vec();
        inner.push(23);
        let len = (inner.len() + 16) as u16;
        let header = [23, 3, 3, (len >> 8) as u8, len as u8];
        let c = Aes128Gcm::new_from_slice(&key).unwrap();
        let nonce = xor_seq(&iv, seq);
        let body = aes_gcm::aead::Aead::encrypt(
            &c,
            (&nonce).into(),
            Payload {
                msg: &inner,
                aad: &header,
            },
        )
        .unwrap();
        (header, body)
    }

    #[test]
    fn tls13_records_and_a_key_update() {
        let secret = [7u8; 32];
        let mut d = tls13_keys(0x1301, &secret).unwrap();
        for seq in 0..3 {
            let (h, b) = seal13(&secret, seq, b"hello");
            assert_eq!(d.open(&h, &b), Some((23, b"hello".to_vec())));
        }
        // A record that does not authenticate leaves the sequence number where it was.
        let (h, mut b) = seal13(&secret, 3, b"x");
        b[0] ^= 1;
        assert_eq!(d.open(&h, &b), None);
        let next = expand_label(HashKind::Sha256, &secret, "traffic upd", 32).unwrap();
        let mut d = d.updated().unwrap();
        let (h, b) = seal13(&next, 0, b"after update");
        assert_eq!(d.open(&h, &b), Some((23, b"after update".to_vec())));
        assert!(!format!("{d:?}").contains("07070707"));
    }

    #[test]
    fn tls12_prf_is_p_sha256() {
        // P_SHA256 with an empty label and seed is HMAC(secret, A(1)) where A(1) = HMAC(secret, "").
        let a1 = hmac_parts(HashKind::Sha256, b"k", &[]);
        let want = hmac_parts(HashKind::Sha256, b"k", &[&a1]);
        assert_eq!(prf12(HashKind::Sha256, b"k", b"", b"", 32), want);
        assert_eq!(prf12(HashKind::Sha256, b"k", b"", b"", 40).len(), 40);
    }
}
