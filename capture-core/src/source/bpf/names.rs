//! Built-in name tables, so that no filter depends on the machine's `/etc/services` or
//! `/etc/protocols`. The entries and their transports are those of Debian's netbase
//! (`/etc/services`): libpcap looks a name up for TCP and for UDP, and a name known for one of
//! them only (`ssh` is 22/tcp) matches that transport only, so `port ssh` is `tcp port 22`.

/// The transports a service name is registered for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transports {
    Tcp,
    Udp,
    Both,
}

use Transports::{Both, Tcp, Udp};

/// `(name, port, transports)`; aliases are listed as names of their own.
const SERVICES: &[(&str, u16, Transports)] = &[
    ("ftp-data", 20, Tcp),
    ("ftp", 21, Tcp),
    ("ssh", 22, Tcp),
    ("telnet", 23, Tcp),
    ("smtp", 25, Tcp),
    ("mail", 25, Tcp),
    ("domain", 53, Both),
    ("bootps", 67, Udp),
    ("bootpc", 68, Udp),
    ("tftp", 69, Udp),
    ("http", 80, Tcp),
    ("www", 80, Tcp),
    ("kerberos", 88, Both),
    ("pop3", 110, Tcp),
    ("sunrpc", 111, Both),
    ("ntp", 123, Udp),
    ("imap2", 143, Tcp),
    ("imap", 143, Tcp),
    ("snmp", 161, Both),
    ("bgp", 179, Tcp),
    ("ldap", 389, Both),
    ("https", 443, Both),
    ("microsoft-ds", 445, Tcp),
    ("isakmp", 500, Udp),
    ("syslog", 514, Udp),
    ("submission", 587, Tcp),
    ("ldaps", 636, Both),
    ("domain-s", 853, Both),
    ("rsync", 873, Tcp),
    ("imaps", 993, Tcp),
    ("pop3s", 995, Tcp),
    ("openvpn", 1194, Both),
    ("ms-sql-s", 1433, Tcp),
    ("radius", 1812, Both),
    ("nfs", 2049, Both),
    ("mysql", 3306, Tcp),
    ("epmd", 4369, Tcp),
    ("sip", 5060, Both),
    ("postgresql", 5432, Tcp),
    ("postgres", 5432, Tcp),
    ("amqp", 5672, Tcp),
    ("x11", 6000, Tcp),
    ("redis", 6379, Tcp),
    ("http-alt", 8080, Tcp),
    ("webcache", 8080, Tcp),
    ("git", 9418, Tcp),
];

/// The port and transports of a service name.
pub fn service(name: &str) -> Option<(u16, Transports)> {
    SERVICES.iter().find(|s| s.0 == name).map(|s| (s.1, s.2))
}

/// The names `service` knows, for error messages.
pub fn service_names() -> impl Iterator<Item = &'static str> {
    SERVICES.iter().map(|s| s.0)
}

/// IP protocol numbers by name (`/etc/protocols`), for `ip proto \name`.
const IP_PROTOCOLS: &[(&str, u8)] = &[
    ("icmp", 1),
    ("igmp", 2),
    ("tcp", 6),
    ("udp", 17),
    ("gre", 47),
    ("esp", 50),
    ("ah", 51),
    ("ipv6-icmp", 58),
    ("icmp6", 58),
    ("ospf", 89),
    ("pim", 103),
    ("vrrp", 112),
    ("sctp", 132),
];

pub fn ip_protocol(name: &str) -> Option<u8> {
    IP_PROTOCOLS.iter().find(|p| p.0 == name).map(|p| p.1)
}

/// Ethertypes by name, for `ether proto \name`.
const ETHER_PROTOCOLS: &[(&str, u16)] = &[("ip", 0x0800), ("ip6", 0x86dd), ("arp", 0x0806), ("rarp", 0x8035)];

pub fn ether_protocol(name: &str) -> Option<u16> {
    ETHER_PROTOCOLS.iter().find(|p| p.0 == name).map(|p| p.1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups() {
        assert_eq!(service("ssh"), Some((22, Tcp)));
        assert_eq!(service("domain"), Some((53, Both)));
        assert_eq!(service("www"), service("http"));
        assert_eq!(service("nope"), None);
        assert_eq!(ip_protocol("tcp"), Some(6));
        assert_eq!(ether_protocol("arp"), Some(0x0806));
        // No duplicate names with different meanings.
        for (i, a) in SERVICES.iter().enumerate() {
            assert!(SERVICES[i + 1..].iter().all(|b| b.0 != a.0), "{} twice", a.0);
        }
    }
}
