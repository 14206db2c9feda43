//! Free loopback ports for one lab run.
//!
//! A port is taken when both TCP and UDP can bind it on 127.0.0.1; ports handed out in this
//! process are never handed out again, so labs in parallel test threads stay apart.

use std::collections::HashSet;
use std::net::{TcpListener, UdpSocket};
use std::sync::Mutex;

static GIVEN: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// A port free for TCP and UDP on 127.0.0.1, not given out before in this process.
pub fn free_port() -> u16 {
    for _ in 0..200 {
        let Ok(tcp) = TcpListener::bind(("127.0.0.1", 0)) else {
            continue;
        };
        let Ok(addr) = tcp.local_addr() else { continue };
        let port = addr.port();
        if UdpSocket::bind(("127.0.0.1", port)).is_err() {
            continue;
        }
        let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
        if given.get_or_insert_with(HashSet::new).insert(port) {
            return port;
        }
    }
    panic!("lab: no free loopback port after 200 tries");
}

/// A block of loopback addresses `127.53.N.0/24` owned by one lab run.
///
/// Linux routes all of 127.0.0.0/8 to `lo`, so every server of a lab can have an address of its
/// own and listen on its real port (53, 25): NS, MX and A records then look like production, and
/// the sender Postfix's glibc resolver (which only speaks to port 53) can reach the lab's Unbound.
/// Conventional hosts in a block are given by the constants below.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoopbackBlock {
    n: u8,
    /// The first octet: 127 on loopback, 10 in the field lab's namespaces.
    first: u8,
}

impl LoopbackBlock {
    /// ns1: BIND, the primary authoritative server.
    pub const NS1: u8 = 1;
    /// ns2: the second authoritative server (Knot).
    pub const NS2: u8 = 2;
    /// The validating resolver (Unbound).
    pub const RESOLVER: u8 = 3;
    /// PowerDNS.
    pub const PDNS: u8 = 4;
    /// pebble, the ACME server.
    pub const ACME: u8 = 5;
    /// The receiving Postfix (the MX).
    pub const MX: u8 = 10;
    /// The sending Postfix (the DANE judge).
    pub const SENDER: u8 = 11;

    /// The block's third octet.
    pub fn n(self) -> u8 {
        self.n
    }

    /// The address of host `h` in this block: `127.53.N.h` (`10.53.N.h` when
    /// [routed](Self::routed)).
    pub fn host(self, h: u8) -> std::net::Ipv4Addr {
        std::net::Ipv4Addr::new(self.first, 53, self.n, h)
    }

    /// The block `10.53.N.0/24` of the field lab ([`crate::netns`]): the same hosts, on a veth
    /// pair between two network namespaces instead of `lo`. Only ever used inside those
    /// namespaces, so labs in parallel may share `n`.
    pub fn routed(n: u8) -> LoopbackBlock {
        LoopbackBlock { n, first: 10 }
    }

    /// Whether the block is on loopback (`127.53.N.0/24`).
    pub fn is_loopback(self) -> bool {
        self.first == 127
    }
}

static BLOCKS: Mutex<Option<HashSet<u8>>> = Mutex::new(None);

/// A loopback block no other lab uses: not given out in this process, and nothing listening on
/// port 53 of its resolver or name server addresses (another process's lab).
pub fn loopback_block() -> LoopbackBlock {
    let start = (std::process::id() % 250) as u8;
    let mut given = BLOCKS.lock().unwrap_or_else(|e| e.into_inner());
    let given = given.get_or_insert_with(HashSet::new);
    for i in 0..250u16 {
        let n = ((start as u16 + i) % 250 + 1) as u8;
        if given.contains(&n) {
            continue;
        }
        let block = LoopbackBlock { n, first: 127 };
        let free = [
            LoopbackBlock::NS1,
            LoopbackBlock::RESOLVER,
            LoopbackBlock::MX,
        ]
        .iter()
        .all(|h| TcpListener::bind((block.host(*h), 53)).is_ok());
        if free {
            given.insert(n);
            return block;
        }
    }
    panic!("lab: no free loopback block 127.53.N.0/24");
}
