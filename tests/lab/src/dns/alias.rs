//! Loopback address aliases for servers that only listen on configured interface addresses.
//!
//! Linux accepts a bind() to any 127.0.0.0/8 address, so Knot, Unbound, PowerDNS and Postfix can
//! listen on `127.53.N.h` as is. BIND cannot: named only listens on addresses it finds on an
//! interface (it scans them), so `listen-on { 127.53.N.1; }` alone leaves it deaf. The lab adds
//! the address to `lo` as a /32 (`ip addr add`, root only) and removes it when the guard drops.
//! An alias left by a killed run is harmless (nothing listens there) and is taken over by the
//! next lab that gets the block.

use std::io;
use std::net::Ipv4Addr;
use std::process::Command;

/// An address added to `lo`, removed on drop.
#[derive(Debug)]
pub struct LoopbackAlias {
    addr: Ipv4Addr,
}

impl LoopbackAlias {
    /// Add `addr/32` to `lo` (already present counts as success).
    pub fn add(addr: Ipv4Addr) -> io::Result<LoopbackAlias> {
        if !addr.is_loopback() {
            return Err(io::Error::other(format!(
                "lab: {addr} is not a loopback address"
            )));
        }
        let out = Command::new(super::tool("ip"))
            .args(["-4", "addr", "add", &format!("{addr}/32"), "dev", "lo"])
            .output()?;
        let err = String::from_utf8_lossy(&out.stderr);
        // An alias left by a killed run is already there: iproute2 words that "File exists" or
        // "Address already assigned" depending on the version, so ask rather than parse.
        if !out.status.success() && !Self::present(addr) {
            return Err(io::Error::other(format!(
                "lab: cannot add {addr}/32 to lo (BIND needs it; root or CAP_NET_ADMIN): {}",
                err.trim()
            )));
        }
        Ok(LoopbackAlias { addr })
    }

    /// Whether `addr/32` is on `lo` now.
    fn present(addr: Ipv4Addr) -> bool {
        Command::new(super::tool("ip"))
            .args([
                "-4",
                "-o",
                "addr",
                "show",
                "dev",
                "lo",
                "to",
                &format!("{addr}/32"),
            ])
            .output()
            .map(|o| {
                o.status.success()
                    && String::from_utf8_lossy(&o.stdout).contains(&format!("inet {addr}/32"))
            })
            .unwrap_or(false)
    }

    /// The address.
    pub fn addr(&self) -> Ipv4Addr {
        self.addr
    }
}

impl Drop for LoopbackAlias {
    fn drop(&mut self) {
        let _ = Command::new(super::tool("ip"))
            .args([
                "-4",
                "addr",
                "del",
                &format!("{}/32", self.addr),
                "dev",
                "lo",
            ])
            .output();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An alias a killed run left behind is taken over, not an error (CI failed on this once:
    /// iproute2 6.1 says "Address already assigned", not "File exists").
    #[test]
    fn an_alias_left_behind_is_taken_over() {
        let addr = Ipv4Addr::new(127, 53, 251, 1);
        let Ok(first) = LoopbackAlias::add(addr) else {
            eprintln!("skipped: adding an address to lo needs root or CAP_NET_ADMIN");
            return;
        };
        std::mem::forget(first); // as a killed run would
        let second = LoopbackAlias::add(addr).expect("an address already on lo is taken over");
        drop(second);
        assert!(
            !LoopbackAlias::present(addr),
            "the guard removes the address on drop"
        );
    }
}
