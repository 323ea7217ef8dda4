//! What the kernel's filter would see of a packet read from a file: where the network header
//! starts and its ethertype (`skb->protocol`), found from the link header the way the kernel
//! sets them on receive — VLAN tags already taken off.

use super::interp::PacketView;
use crate::source::{LinkType, Packet};

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;
/// 802.1Q, 802.1ad and the pre-standard QinQ tag.
const VLAN_TPIDS: [u16; 3] = [0x8100, 0x88a8, 0x9100];
/// As in `wire::link`: two tags (QinQ) are real, eight stop a loop of tags.
const MAX_VLAN_TAGS: usize = 8;

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

/// `(network header offset, ethertype)` of a frame, VLAN tags after `etype_at` skipped.
fn tagged(data: &[u8], etype_at: usize, mut net: usize) -> Option<(usize, u16)> {
    let mut etype = be16(data, etype_at)?;
    let mut tags = 0;
    while VLAN_TPIDS.contains(&etype) {
        tags += 1;
        if tags > MAX_VLAN_TAGS {
            return None;
        }
        etype = be16(data, net + 2)?;
        net += 4;
    }
    Some((net, etype))
}

/// The network header of `data` on link `link`, or `None` when the link header is cut short or
/// the link type is not one we decode (the filter then rejects the packet).
pub fn network_of(link: LinkType, data: &[u8]) -> Option<(usize, u16)> {
    match link {
        LinkType::ETHERNET => tagged(data, 12, 14),
        LinkType::LINUX_SLL => tagged(data, 14, 16),
        LinkType::LINUX_SLL2 => {
            let (net, etype) = tagged(data, 0, 20)?;
            (data.len() >= 20).then_some((net, etype))
        }
        LinkType::NULL | LinkType::LOOP => {
            let raw: [u8; 4] = data.get(..4)?.try_into().ok()?;
            // As in `wire::link`: NULL is in the capturing host's byte order, and the family is
            // small, so whichever order gives a small number is the right one.
            let family = if link == LinkType::LOOP || (raw[0] == 0 && raw[1] == 0) {
                u32::from_be_bytes(raw)
            } else {
                u32::from_le_bytes(raw)
            };
            let etype = match family {
                2 => ETHERTYPE_IPV4,
                10 | 24 | 28 | 30 => ETHERTYPE_IPV6,
                // Not an ethertype: no `ether proto` value can match it.
                _ => 0,
            };
            Some((4, etype))
        }
        LinkType::IPV4 => Some((0, ETHERTYPE_IPV4)),
        LinkType::IPV6 => Some((0, ETHERTYPE_IPV6)),
        LinkType::RAW | LinkType::RAW_BSD_12 | LinkType::RAW_BSD_14 => {
            let etype = match data.first()? >> 4 {
                4 => ETHERTYPE_IPV4,
                6 => ETHERTYPE_IPV6,
                _ => 0,
            };
            Some((0, etype))
        }
        _ => None,
    }
}

/// The view of `pkt` a filter runs on; `len` is the length on the wire, as in libpcap.
pub fn view<'a>(pkt: &Packet<'a>) -> Option<PacketView<'a>> {
    let (net_offset, ethertype) = network_of(pkt.link, pkt.data)?;
    Some(PacketView {
        data: pkt.data,
        wire_len: pkt.orig_len,
        net_offset,
        ethertype,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_headers_and_vlan_tags() {
        let mut eth = vec![0u8; 12];
        eth.extend_from_slice(&[0x81, 0x00, 0x00, 0x05, 0x88, 0xa8, 0x00, 0x06, 0x08, 0x00, 0x45]);
        assert_eq!(network_of(LinkType::ETHERNET, &eth), Some((22, 0x0800)));
        assert_eq!(network_of(LinkType::ETHERNET, &eth[..13]), None);
        assert_eq!(network_of(LinkType::ETHERNET, &eth[..17]), None, "cut inside a tag");
        let mut loop_of_tags = vec![0u8; 12];
        for _ in 0..10 {
            loop_of_tags.extend_from_slice(&[0x81, 0x00, 0x00, 0x01]);
        }
        assert_eq!(network_of(LinkType::ETHERNET, &loop_of_tags), None);
        let mut sll = vec![0u8; 16];
        sll[14..16].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(network_of(LinkType::LINUX_SLL, &sll), Some((16, 0x0806)));
        let mut sll2 = vec![0u8; 20];
        sll2[0..2].copy_from_slice(&[0x86, 0xdd]);
        assert_eq!(network_of(LinkType::LINUX_SLL2, &sll2), Some((20, 0x86dd)));
        assert_eq!(network_of(LinkType::LINUX_SLL2, &sll2[..19]), None);
        assert_eq!(network_of(LinkType::NULL, &[2, 0, 0, 0]), Some((4, 0x0800)));
        assert_eq!(network_of(LinkType::NULL, &[0, 0, 0, 30]), Some((4, 0x86dd)));
        assert_eq!(network_of(LinkType::NULL, &[7, 0, 0, 0]), Some((4, 0)));
        assert_eq!(network_of(LinkType::RAW, &[0x60]), Some((0, 0x86dd)));
        assert_eq!(network_of(LinkType::RAW, &[]), None);
        assert_eq!(network_of(LinkType::IPV4, &[]), Some((0, 0x0800)));
        assert_eq!(network_of(LinkType(9999), &[0; 64]), None);
    }
}
