//! The address fence of `serve`'s `/probe`: which addresses an ad-hoc target may not make the
//! exporter connect to. Without it, anyone reaching `/probe` could use the exporter to scan the
//! network it sits in (loopback services, the cloud metadata address, private ranges). The
//! fence is applied where the monitor turns DNS answers into addresses to probe
//! ([`super::Monitor::fenced`]), so a name that resolves differently the second time (DNS
//! rebinding) cannot slip past a check made earlier; refused addresses are never connected to and
//! are collected for the exporter to answer 403.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Mutex;

/// Why an address is inside the fence: the name of its range, or `None` for a public address.
pub fn internal_range(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_range(v4),
        IpAddr::V6(v6) => {
            // An IPv4-mapped or -compatible address reaches the IPv4 host.
            if let Some(v4) = v6.to_ipv4_mapped() {
                return v4_range(v4);
            }
            v6_range(v6)
        }
    }
}

fn v4_range(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = ip.octets();
    Some(match (a, b) {
        _ if ip.is_unspecified() => "unspecified 0.0.0.0",
        (0, _) => "this network 0.0.0.0/8",
        (127, _) => "loopback 127.0.0.0/8",
        (169, 254) => "link-local 169.254.0.0/16",
        (10, _) => "private 10.0.0.0/8",
        (172, 16..=31) => "private 172.16.0.0/12",
        (192, 168) => "private 192.168.0.0/16",
        (100, 64..=127) => "shared (CGNAT) 100.64.0.0/10",
        _ if ip.is_broadcast() => "broadcast",
        _ if ip.is_multicast() => "multicast 224.0.0.0/4",
        _ => return None,
    })
}

fn v6_range(ip: Ipv6Addr) -> Option<&'static str> {
    let first = ip.segments()[0];
    Some(match first {
        _ if ip.is_unspecified() => "unspecified ::",
        _ if ip.is_loopback() => "loopback ::1",
        _ if first & 0xffc0 == 0xfe80 => "link-local fe80::/10",
        _ if first & 0xfe00 == 0xfc00 => "unique local fc00::/7",
        _ if first & 0xffc0 == 0xfec0 => "site-local fec0::/10",
        _ if ip.is_multicast() => "multicast ff00::/8",
        _ => return None,
    })
}

/// One refused address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// The host name it belongs to.
    pub host: String,
    /// The address and port.
    pub addr: SocketAddr,
    /// Its range.
    pub range: &'static str,
}

/// The fence of one run: refuses internal addresses and remembers which.
#[derive(Debug, Default)]
pub struct Fence {
    refused: Mutex<Vec<Refused>>,
}

impl Fence {
    /// Whether the run may connect to `addr` of `host`; a refusal is remembered.
    pub fn admits(&self, host: &str, addr: SocketAddr) -> bool {
        let Some(range) = internal_range(addr.ip()) else {
            return true;
        };
        if let Ok(mut refused) = self.refused.lock() {
            refused.push(Refused {
                host: host.to_string(),
                addr,
                range,
            });
        }
        false
    }

    /// The addresses refused so far.
    pub fn refused(&self) -> Vec<Refused> {
        self.refused.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::{Fence, internal_range};

    fn range(text: &str) -> Option<&'static str> {
        internal_range(text.parse().unwrap())
    }

    #[test]
    fn internal_ranges_are_named() {
        for (ip, want) in [
            ("127.53.1.2", "loopback"),
            ("::1", "loopback"),
            ("169.254.169.254", "link-local"),
            ("fe80::1", "link-local"),
            ("10.1.2.3", "private"),
            ("172.16.0.1", "private"),
            ("172.31.255.255", "private"),
            ("192.168.1.1", "private"),
            ("fd00::1", "unique local"),
            ("0.0.0.0", "unspecified"),
            ("::", "unspecified"),
            ("100.64.0.1", "CGNAT"),
            ("100.127.255.255", "CGNAT"),
            ("::ffff:127.0.0.1", "loopback"),
            ("::ffff:10.0.0.1", "private"),
        ] {
            let got = range(ip).unwrap_or_else(|| panic!("{ip} admitted"));
            assert!(got.contains(want), "{ip}: {got}");
        }
    }

    #[test]
    fn public_addresses_pass() {
        for ip in [
            "192.0.2.1",
            "8.8.8.8",
            "172.32.0.1",
            "172.15.255.255",
            "100.128.0.1",
            "100.63.255.255",
            "2001:db8::1",
            "2a00:1450::1",
            "::ffff:8.8.8.8",
        ] {
            assert_eq!(range(ip), None, "{ip}");
        }
    }

    #[test]
    fn the_fence_remembers_refusals() {
        let fence = Fence::default();
        assert!(fence.admits("mx.example", "192.0.2.1:25".parse().unwrap()));
        assert!(!fence.admits("mx.example", "127.0.0.1:25".parse().unwrap()));
        let refused = fence.refused();
        assert_eq!(refused.len(), 1);
        assert_eq!(refused[0].host, "mx.example");
    }
}
