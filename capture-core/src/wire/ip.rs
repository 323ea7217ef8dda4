//! IPv4 and IPv6 (with extension headers), zero-copy.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{DecodeError, DecodeErrorKind, Layer, Network, be16, be32};

/// IPv6 packets rarely chain more than three extension headers; the cap stops crafted loops.
const MAX_IPV6_EXTENSION_HEADERS: usize = 10;

pub const PROTO_TCP: u8 = 6;
pub const PROTO_UDP: u8 = 17;

/// Where a fragment belongs in its datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fragment {
    /// IPv4 identification (16 bits) or IPv6 fragment identification (32 bits).
    pub id: u32,
    /// Byte offset of this fragment's payload in the datagram.
    pub offset: u32,
    pub more: bool,
}

/// A decoded IP header and the bytes it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpPacket<'a> {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// The upper-layer protocol (after any IPv6 extension headers).
    pub protocol: u8,
    /// The upper-layer bytes, cut to the length the IP header declares (link padding removed).
    pub payload: &'a [u8],
    /// Set when the packet is a fragment that needs reassembly.
    pub fragment: Option<Fragment>,
    /// Upper-layer length the header declares; larger than `payload.len()` when the capture
    /// was cut by a snap length.
    pub declared_len: usize,
}

/// Decodes the IP header of a link-layer payload. `Ok(None)` means not IP.
pub fn decode_ip(net: Network<'_>) -> Result<Option<IpPacket<'_>>, DecodeError> {
    match net {
        Network::Ipv4(b) => ipv4(b).map(Some),
        Network::Ipv6(b) => ipv6(b).map(Some),
        Network::Other(_) => Ok(None),
    }
}

pub fn ipv4(b: &[u8]) -> Result<IpPacket<'_>, DecodeError> {
    if b.len() < 20 {
        return Err(DecodeError::truncated(Layer::Ipv4, 20, b.len()));
    }
    let version = b[0] >> 4;
    if version != 4 {
        return Err(DecodeError {
            layer: Layer::Ipv4,
            kind: DecodeErrorKind::BadVersion(version),
        });
    }
    let ihl = usize::from(b[0] & 0x0f) * 4;
    if ihl < 20 || ihl > b.len() {
        return Err(DecodeError {
            layer: Layer::Ipv4,
            kind: DecodeErrorKind::BadHeaderLength(ihl),
        });
    }
    let total = usize::from(be16(b, 2));
    // TSO/GSO captures on the sending host may carry 0 here; trust the captured length then.
    let declared_end = if total == 0 {
        b.len()
    } else if total < ihl {
        return Err(DecodeError {
            layer: Layer::Ipv4,
            kind: DecodeErrorKind::BadHeaderLength(total),
        });
    } else {
        total
    };
    let end = declared_end.min(b.len());
    let flags_frag = be16(b, 6);
    let more = flags_frag & 0x2000 != 0;
    let offset = u32::from(flags_frag & 0x1fff) * 8;
    let fragment = (more || offset != 0).then_some(Fragment {
        id: u32::from(be16(b, 4)),
        offset,
        more,
    });
    Ok(IpPacket {
        src: IpAddr::V4(Ipv4Addr::new(b[12], b[13], b[14], b[15])),
        dst: IpAddr::V4(Ipv4Addr::new(b[16], b[17], b[18], b[19])),
        protocol: b[9],
        payload: &b[ihl..end],
        fragment,
        declared_len: declared_end - ihl,
    })
}

pub fn ipv6(b: &[u8]) -> Result<IpPacket<'_>, DecodeError> {
    if b.len() < 40 {
        return Err(DecodeError::truncated(Layer::Ipv6, 40, b.len()));
    }
    let version = b[0] >> 4;
    if version != 6 {
        return Err(DecodeError {
            layer: Layer::Ipv6,
            kind: DecodeErrorKind::BadVersion(version),
        });
    }
    let plen = usize::from(be16(b, 4));
    // A zero payload length means a jumbogram (or a TSO capture): use what was captured.
    let declared_end = if plen == 0 { b.len() } else { 40 + plen };
    let end = declared_end.min(b.len());
    let mut src = [0u8; 16];
    src.copy_from_slice(&b[8..24]);
    let mut dst = [0u8; 16];
    dst.copy_from_slice(&b[24..40]);
    let mut next = b[6];
    let mut at = 40;
    let mut fragment = None;
    let mut count = 0;
    loop {
        let len = match next {
            // Hop-by-hop, routing, destination options, mobility, HIP, shim6.
            0 | 43 | 60 | 135 | 139 | 140 => {
                if at + 2 > end {
                    return Err(DecodeError::truncated(Layer::Ipv6, at + 2, end));
                }
                (usize::from(b[at + 1]) + 1) * 8
            }
            44 => {
                if at + 8 > end {
                    return Err(DecodeError::truncated(Layer::Ipv6, at + 8, end));
                }
                let off_flags = be16(b, at + 2);
                let frag = Fragment {
                    id: be32(b, at + 4),
                    offset: u32::from(off_flags >> 3) * 8,
                    more: off_flags & 1 != 0,
                };
                if frag.more || frag.offset != 0 {
                    fragment = Some(frag);
                }
                8
            }
            // Authentication header: length in 4-octet units, minus 2.
            51 => {
                if at + 2 > end {
                    return Err(DecodeError::truncated(Layer::Ipv6, at + 2, end));
                }
                (usize::from(b[at + 1]) + 2) * 4
            }
            _ => break,
        };
        count += 1;
        if count > MAX_IPV6_EXTENSION_HEADERS {
            return Err(DecodeError {
                layer: Layer::Ipv6,
                kind: DecodeErrorKind::TooManyHeaders,
            });
        }
        if at + len > end {
            return Err(DecodeError::truncated(Layer::Ipv6, at + len, end));
        }
        next = b[at];
        at += len;
        // After a fragment header of a non-first fragment, the rest is opaque payload.
        if fragment.is_some_and(|f: Fragment| f.offset != 0) {
            break;
        }
    }
    Ok(IpPacket {
        src: IpAddr::V6(Ipv6Addr::from(src)),
        dst: IpAddr::V6(Ipv6Addr::from(dst)),
        protocol: next,
        payload: &b[at..end],
        fragment,
        declared_len: declared_end.saturating_sub(at),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(total: u16, flags_frag: u16, proto: u8, payload: &[u8]) -> Vec<u8> {
        let mut h = vec![
            0x45, 0, 0, 0, 0x12, 0x34, 0, 0, 64, proto, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        h[2..4].copy_from_slice(&total.to_be_bytes());
        h[6..8].copy_from_slice(&flags_frag.to_be_bytes());
        h.extend_from_slice(payload);
        h
    }

    #[test]
    fn ipv4_trims_link_padding() {
        let p = v4(24, 0x4000, 6, &[1, 2, 3, 4, 0, 0, 0, 0]);
        let ip = ipv4(&p).unwrap();
        assert_eq!(ip.payload, &[1, 2, 3, 4]);
        assert_eq!(ip.protocol, 6);
        assert_eq!(ip.src, "10.0.0.1".parse::<IpAddr>().unwrap());
        assert!(ip.fragment.is_none());
    }

    #[test]
    fn ipv4_fragments_and_errors() {
        let p = v4(28, 0x2000 | 3, 17, &[0; 8]);
        assert_eq!(
            ipv4(&p).unwrap().fragment,
            Some(Fragment {
                id: 0x1234,
                offset: 24,
                more: true
            })
        );
        assert_eq!(ipv4(&p[..10]).unwrap_err(), DecodeError::truncated(Layer::Ipv4, 20, 10));
        let mut bad = p.clone();
        bad[0] = 0x44;
        assert_eq!(ipv4(&bad).unwrap_err().kind, DecodeErrorKind::BadHeaderLength(16));
        assert_eq!(
            ipv4(&v4(10, 0, 6, &[])).unwrap_err().kind,
            DecodeErrorKind::BadHeaderLength(10)
        );
    }

    fn v6(next: u8, ext: &[u8], payload: &[u8]) -> Vec<u8> {
        let mut h = vec![0x60, 0, 0, 0, 0, 0, next, 64];
        h[4..6].copy_from_slice(&((ext.len() + payload.len()) as u16).to_be_bytes());
        h.extend_from_slice(&[0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        h.extend_from_slice(&[0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
        h.extend_from_slice(ext);
        h.extend_from_slice(payload);
        h
    }

    #[test]
    fn ipv6_walks_extension_headers() {
        // hop-by-hop (8 bytes) -> destination options (8 bytes) -> TCP
        let ext = [60, 0, 0, 0, 0, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0];
        let p = v6(0, &ext, &[9, 9]);
        let ip = ipv6(&p).unwrap();
        assert_eq!(ip.protocol, 6);
        assert_eq!(ip.payload, &[9, 9]);
    }

    #[test]
    fn ipv6_fragment_header() {
        let ext = [17, 0, 0x00, 0x01, 0, 0, 0, 7];
        let p = v6(44, &ext, &[1, 2, 3]);
        let ip = ipv6(&p).unwrap();
        assert_eq!(ip.protocol, 17);
        assert_eq!(
            ip.fragment,
            Some(Fragment {
                id: 7,
                offset: 0,
                more: true
            })
        );
    }

    #[test]
    fn ipv6_extension_loop_is_capped() {
        let mut ext = Vec::new();
        for _ in 0..20 {
            ext.extend_from_slice(&[60, 0, 0, 0, 0, 0, 0, 0]);
        }
        let err = ipv6(&v6(60, &ext, &[])).unwrap_err();
        assert_eq!(err.kind, DecodeErrorKind::TooManyHeaders);
    }
}
