//! TCP and UDP headers, zero-copy.

use super::{DecodeError, DecodeErrorKind, Layer, be16, be32};

/// TCP flag bits as they sit in byte 13 of the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const URG: u8 = 0x20;
    pub const ECE: u8 = 0x40;
    pub const CWR: u8 = 0x80;
    pub fn fin(self) -> bool {
        self.0 & Self::FIN != 0
    }
    pub fn syn(self) -> bool {
        self.0 & Self::SYN != 0
    }
    pub fn rst(self) -> bool {
        self.0 & Self::RST != 0
    }
    pub fn ack(self) -> bool {
        self.0 & Self::ACK != 0
    }
}

/// A checked view of a TCP segment. After [`TcpSegment::new_checked`] no accessor panics.
#[derive(Debug, Clone, Copy)]
pub struct TcpSegment<'a> {
    bytes: &'a [u8],
    header_len: usize,
}

impl<'a> TcpSegment<'a> {
    pub fn new_checked(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        if bytes.len() < 20 {
            return Err(DecodeError::truncated(Layer::Tcp, 20, bytes.len()));
        }
        let header_len = usize::from(bytes[12] >> 4) * 4;
        if header_len < 20 {
            return Err(DecodeError {
                layer: Layer::Tcp,
                kind: DecodeErrorKind::BadHeaderLength(header_len),
            });
        }
        if header_len > bytes.len() {
            return Err(DecodeError::truncated(Layer::Tcp, header_len, bytes.len()));
        }
        Ok(TcpSegment { bytes, header_len })
    }
    pub fn src_port(&self) -> u16 {
        be16(self.bytes, 0)
    }
    pub fn dst_port(&self) -> u16 {
        be16(self.bytes, 2)
    }
    pub fn seq(&self) -> u32 {
        be32(self.bytes, 4)
    }
    pub fn ack(&self) -> u32 {
        be32(self.bytes, 8)
    }
    pub fn flags(&self) -> TcpFlags {
        TcpFlags(self.bytes[13])
    }
    pub fn window(&self) -> u16 {
        be16(self.bytes, 14)
    }
    pub fn header_len(&self) -> usize {
        self.header_len
    }
    pub fn payload(&self) -> &'a [u8] {
        &self.bytes[self.header_len..]
    }
    /// The options area (may be empty).
    pub fn options(&self) -> TcpOptions<'a> {
        TcpOptions {
            rest: &self.bytes[20..self.header_len],
        }
    }
}

/// A TCP option. Unknown kinds are kept as numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpOption<'a> {
    Mss(u16),
    WindowScale(u8),
    SackPermitted,
    Sack(&'a [u8]),
    Timestamps { value: u32, echo: u32 },
    Other { kind: u8, data: &'a [u8] },
}

/// Iterates over TCP options; stops quietly at a malformed option.
#[derive(Debug, Clone)]
pub struct TcpOptions<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for TcpOptions<'a> {
    type Item = TcpOption<'a>;
    fn next(&mut self) -> Option<TcpOption<'a>> {
        loop {
            let (&kind, tail) = self.rest.split_first()?;
            match kind {
                0 => {
                    self.rest = &[];
                    return None;
                }
                1 => {
                    self.rest = tail;
                    continue;
                }
                _ => {}
            }
            let len = usize::from(*tail.first()?);
            if len < 2 || len > self.rest.len() {
                self.rest = &[];
                return None;
            }
            let data = &self.rest[2..len];
            self.rest = &self.rest[len..];
            return Some(match (kind, data.len()) {
                (2, 2) => TcpOption::Mss(u16::from_be_bytes([data[0], data[1]])),
                (3, 1) => TcpOption::WindowScale(data[0]),
                (4, 0) => TcpOption::SackPermitted,
                (5, _) => TcpOption::Sack(data),
                (8, 8) => TcpOption::Timestamps {
                    value: be32(data, 0),
                    echo: be32(data, 4),
                },
                _ => TcpOption::Other { kind, data },
            });
        }
    }
}

/// A checked view of a UDP datagram.
#[derive(Debug, Clone, Copy)]
pub struct UdpDatagram<'a> {
    bytes: &'a [u8],
    end: usize,
}

impl<'a> UdpDatagram<'a> {
    pub fn new_checked(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        if bytes.len() < 8 {
            return Err(DecodeError::truncated(Layer::Udp, 8, bytes.len()));
        }
        let declared = usize::from(be16(bytes, 4));
        // Length 0 happens with UDP over IPv6 jumbograms and GSO captures: use what was captured.
        let end = if declared == 0 {
            bytes.len()
        } else if declared < 8 {
            return Err(DecodeError {
                layer: Layer::Udp,
                kind: DecodeErrorKind::BadHeaderLength(declared),
            });
        } else {
            declared.min(bytes.len())
        };
        Ok(UdpDatagram { bytes, end })
    }
    pub fn src_port(&self) -> u16 {
        be16(self.bytes, 0)
    }
    pub fn dst_port(&self) -> u16 {
        be16(self.bytes, 2)
    }
    pub fn payload(&self) -> &'a [u8] {
        &self.bytes[8..self.end]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SYN: [u8; 32] = [
        0xc0, 0x01, 0x00, 0x50, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x80, 0x02, 0xff, 0xff, 0x00, 0x00,
        0x00, 0x00, // options: MSS 1460, NOP, WS 7, SACK permitted, NOP, NOP... (12 bytes)
        0x02, 0x04, 0x05, 0xb4, 0x01, 0x03, 0x03, 0x07, 0x04, 0x02, 0x00, 0x00,
    ];

    #[test]
    fn tcp_header_and_options() {
        let t = TcpSegment::new_checked(&SYN).unwrap();
        assert_eq!((t.src_port(), t.dst_port(), t.seq(), t.ack()), (49153, 80, 1, 0));
        assert!(t.flags().syn() && !t.flags().ack());
        assert_eq!(t.payload().len(), 0);
        let opts: Vec<_> = t.options().collect();
        assert_eq!(
            opts,
            vec![
                TcpOption::Mss(1460),
                TcpOption::WindowScale(7),
                TcpOption::SackPermitted
            ]
        );
    }

    #[test]
    fn tcp_errors() {
        assert_eq!(
            TcpSegment::new_checked(&SYN[..12]).unwrap_err(),
            DecodeError::truncated(Layer::Tcp, 20, 12)
        );
        let mut bad = SYN;
        bad[12] = 0x40;
        assert_eq!(
            TcpSegment::new_checked(&bad).unwrap_err().kind,
            DecodeErrorKind::BadHeaderLength(16)
        );
        bad[12] = 0xf0;
        assert_eq!(
            TcpSegment::new_checked(&bad).unwrap_err(),
            DecodeError::truncated(Layer::Tcp, 60, 32)
        );
    }

    #[test]
    fn malformed_options_stop() {
        let mut seg = SYN;
        seg[20] = 2;
        seg[21] = 40; // option longer than the options area
        let t = TcpSegment::new_checked(&seg).unwrap();
        assert_eq!(t.options().count(), 0);
    }

    #[test]
    fn udp_trims_to_declared_length() {
        let d = [0, 53, 0x30, 0x39, 0, 10, 0, 0, 1, 2, 0, 0];
        let u = UdpDatagram::new_checked(&d).unwrap();
        assert_eq!((u.src_port(), u.dst_port()), (53, 12345));
        assert_eq!(u.payload(), &[1, 2]);
        assert!(UdpDatagram::new_checked(&d[..5]).is_err());
    }
}
