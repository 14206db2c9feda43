//! Field conditions on this machine without touching the world: an IPv6 prefix this host has no
//! route to, as an IPv4-only host sees a dual-stack nameserver's AAAA address.
//!
//! The machine has an IPv6 default route, so a test must never connect to an address outside
//! the lab. `ip -6 route replace unreachable fd00:53:N::/64` (a unique local prefix, never
//! routed, one per loopback block) makes every connect to the prefix fail at once with "no
//! route" and no packet leaves. The route is deleted when the guard drops; one left by a killed
//! run is harmless (it only hides an unused ULA prefix) and is taken over by the next lab that
//! gets the block (`replace` succeeds whether it is there or not).

use std::io;
use std::net::Ipv6Addr;
use std::process::Command;

use crate::ports::LoopbackBlock;

/// An `unreachable` route for the block's ULA prefix, removed on drop.
#[derive(Debug)]
pub struct UnreachableRoute {
    n: u8,
}

impl UnreachableRoute {
    /// Add `unreachable fd00:53:N::/64` for `block` (root or CAP_NET_ADMIN).
    pub fn add(block: LoopbackBlock) -> io::Result<UnreachableRoute> {
        let route = UnreachableRoute { n: block.n() };
        let out = Command::new(crate::dns::tool("ip"))
            .args(["-6", "route", "replace", "unreachable", &route.prefix()])
            .output()?;
        if !out.status.success() {
            return Err(io::Error::other(format!(
                "lab: cannot add the route unreachable {} (root or CAP_NET_ADMIN): {}",
                route.prefix(),
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(route)
    }

    /// The prefix, `fd00:53:N::/64`.
    pub fn prefix(&self) -> String {
        format!("fd00:53:{:x}::/64", self.n)
    }

    /// Host `h` in the prefix: `fd00:53:N::h`.
    pub fn address(&self, h: u8) -> Ipv6Addr {
        Ipv6Addr::new(0xfd00, 0x53, u16::from(self.n), 0, 0, 0, 0, u16::from(h))
    }
}

impl Drop for UnreachableRoute {
    fn drop(&mut self) {
        let _ = Command::new(crate::dns::tool("ip"))
            .args(["-6", "route", "del", "unreachable", &self.prefix()])
            .output();
    }
}
