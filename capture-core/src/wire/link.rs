//! Link layers: Ethernet (with 802.1Q/802.1ad/QinQ tags), Linux cooked SLL and SLL2, BSD
//! loopback (NULL and LOOP) and raw IP.

use super::{DecodeError, DecodeErrorKind, Layer, Network, be16};
use crate::source::LinkType;

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const ETHERTYPE_VLAN: u16 = 0x8100;
const ETHERTYPE_QINQ: u16 = 0x88a8;
const ETHERTYPE_QINQ_OLD: u16 = 0x9100;
/// Real networks stack two tags (QinQ); eight leaves room and still stops a loop of tags.
const MAX_VLAN_TAGS: usize = 8;

/// Whether [`decode_link`] reads this link type (Ethernet, Linux cooked v1/v2, BSD loopback, raw
/// IP); packets of any other are decode errors at the link layer.
pub fn supported(link: LinkType) -> bool {
    matches!(
        link,
        LinkType::ETHERNET
            | LinkType::LINUX_SLL
            | LinkType::LINUX_SLL2
            | LinkType::NULL
            | LinkType::LOOP
            | LinkType::RAW
            | LinkType::RAW_BSD_12
            | LinkType::RAW_BSD_14
            | LinkType::IPV4
            | LinkType::IPV6
    )
}

/// Strips the link layer of `data`.
pub fn decode_link(link: LinkType, data: &[u8]) -> Result<Network<'_>, DecodeError> {
    match link {
        LinkType::ETHERNET => ethernet(data),
        LinkType::LINUX_SLL => {
            need(Layer::Link, data, 16)?;
            ethertype(be16(data, 14), &data[16..])
        }
        LinkType::LINUX_SLL2 => {
            need(Layer::Link, data, 20)?;
            ethertype(be16(data, 0), &data[20..])
        }
        LinkType::NULL | LinkType::LOOP => {
            need(Layer::Link, data, 4)?;
            let raw = [data[0], data[1], data[2], data[3]];
            // NULL is in the capturing host's byte order; the family is small, so whichever
            // order gives a small number is the right one.
            let family = if link == LinkType::LOOP || (raw[0] == 0 && raw[1] == 0) {
                u32::from_be_bytes(raw)
            } else {
                u32::from_le_bytes(raw)
            };
            let payload = &data[4..];
            match family {
                2 => Ok(Network::Ipv4(payload)),
                10 | 24 | 28 | 30 => Ok(Network::Ipv6(payload)),
                other => Ok(Network::Other(other as u16)),
            }
        }
        LinkType::RAW | LinkType::RAW_BSD_12 | LinkType::RAW_BSD_14 | LinkType::IPV4 | LinkType::IPV6 => raw_ip(data),
        LinkType(other) => Err(DecodeError {
            layer: Layer::Link,
            kind: DecodeErrorKind::UnsupportedLinkType(other),
        }),
    }
}

fn need(layer: Layer, data: &[u8], n: usize) -> Result<(), DecodeError> {
    if data.len() < n {
        Err(DecodeError::truncated(layer, n, data.len()))
    } else {
        Ok(())
    }
}

fn raw_ip(data: &[u8]) -> Result<Network<'_>, DecodeError> {
    need(Layer::Link, data, 1)?;
    match data[0] >> 4 {
        4 => Ok(Network::Ipv4(data)),
        6 => Ok(Network::Ipv6(data)),
        v => Err(DecodeError {
            layer: Layer::Link,
            kind: DecodeErrorKind::BadVersion(v),
        }),
    }
}

fn ethernet(data: &[u8]) -> Result<Network<'_>, DecodeError> {
    need(Layer::Link, data, 14)?;
    let mut etype = be16(data, 12);
    let mut rest = &data[14..];
    let mut tags = 0;
    while matches!(etype, ETHERTYPE_VLAN | ETHERTYPE_QINQ | ETHERTYPE_QINQ_OLD) {
        tags += 1;
        if tags > MAX_VLAN_TAGS {
            return Err(DecodeError {
                layer: Layer::Vlan,
                kind: DecodeErrorKind::TooManyHeaders,
            });
        }
        need(Layer::Vlan, rest, 4)?;
        etype = be16(rest, 2);
        rest = &rest[4..];
    }
    ethertype(etype, rest)
}

fn ethertype(etype: u16, payload: &[u8]) -> Result<Network<'_>, DecodeError> {
    Ok(match etype {
        ETHERTYPE_IPV4 => Network::Ipv4(payload),
        ETHERTYPE_IPV6 => Network::Ipv6(payload),
        other => Network::Other(other),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eth(etype: u16, tags: &[u16], payload: &[u8]) -> Vec<u8> {
        // MACs, then each tag's TPID and TCI, then the inner ethertype.
        let mut out = vec![0u8; 12];
        let mut chain: Vec<u16> = tags.to_vec();
        chain.push(etype);
        out.extend_from_slice(&chain[0].to_be_bytes());
        for (i, _) in tags.iter().enumerate() {
            out.extend_from_slice(&[0x00, 0x64]);
            out.extend_from_slice(&chain[i + 1].to_be_bytes());
        }
        out.extend_from_slice(payload);
        out
    }

    #[test]
    fn ethernet_plain_vlan_and_qinq() {
        let ip = [0x45u8, 0, 0, 20];
        assert_eq!(
            decode_link(LinkType::ETHERNET, &eth(0x0800, &[], &ip)).unwrap(),
            Network::Ipv4(&ip)
        );
        assert_eq!(
            decode_link(LinkType::ETHERNET, &eth(0x0800, &[0x8100], &ip)).unwrap(),
            Network::Ipv4(&ip)
        );
        assert_eq!(
            decode_link(LinkType::ETHERNET, &eth(0x86dd, &[0x88a8, 0x8100], &ip)).unwrap(),
            Network::Ipv6(&ip)
        );
        assert_eq!(
            decode_link(LinkType::ETHERNET, &eth(0x0806, &[], &ip)).unwrap(),
            Network::Other(0x0806)
        );
    }

    #[test]
    fn vlan_loop_is_stopped() {
        let tags = [0x8100u16; 20];
        let err = decode_link(LinkType::ETHERNET, &eth(0x0800, &tags, &[])).unwrap_err();
        assert_eq!(err.layer, Layer::Vlan);
    }

    #[test]
    fn truncated_ethernet_names_layer() {
        let err = decode_link(LinkType::ETHERNET, &[0u8; 10]).unwrap_err();
        assert_eq!(err, DecodeError::truncated(Layer::Link, 14, 10));
    }

    #[test]
    fn sll_sll2_null_raw() {
        let mut sll = vec![0u8; 16];
        sll[14..16].copy_from_slice(&0x86ddu16.to_be_bytes());
        sll.push(0x60);
        assert_eq!(decode_link(LinkType::LINUX_SLL, &sll).unwrap(), Network::Ipv6(&[0x60]));
        let mut sll2 = vec![0u8; 20];
        sll2[0..2].copy_from_slice(&0x0800u16.to_be_bytes());
        sll2.push(0x45);
        assert_eq!(
            decode_link(LinkType::LINUX_SLL2, &sll2).unwrap(),
            Network::Ipv4(&[0x45])
        );
        assert_eq!(
            decode_link(LinkType::NULL, &[2, 0, 0, 0, 0x45]).unwrap(),
            Network::Ipv4(&[0x45])
        );
        assert_eq!(
            decode_link(LinkType::NULL, &[0, 0, 0, 30, 0x60]).unwrap(),
            Network::Ipv6(&[0x60])
        );
        assert_eq!(
            decode_link(LinkType::LOOP, &[0, 0, 0, 2, 0x45]).unwrap(),
            Network::Ipv4(&[0x45])
        );
        assert_eq!(
            decode_link(LinkType::RAW, &[0x60, 1]).unwrap(),
            Network::Ipv6(&[0x60, 1])
        );
        assert!(decode_link(LinkType::RAW, &[0x70]).is_err());
        assert!(decode_link(LinkType(9999), &[0x45]).is_err());
    }
}
