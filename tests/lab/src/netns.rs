//! The field lab's network: two network namespaces joined by a veth pair, made by the lab and
//! removed when the guard drops.
//!
//! ```text
//!  "servers" namespace  (drl<pid>-<k>s)          "host" namespace  (drl<pid>-<k>h)
//!  BIND 10.53.N.1, Knot .2, Unbound .3,          dane-roll, the sending Postfix .11,
//!  the receiving Postfix .10                      dig / nsupdate / unbound-control of the test
//!  fd00:53:N::1, ::2, ::3, ::10 (on the veth)     fd00:53:N::11, or no IPv6 at all
//!                 srv0 <------------- veth -------------> host0
//! ```
//!
//! The servers are started by a thread that has entered the servers' namespace (children
//! inherit the namespace of the thread that forks them); the thread then enters the host's
//! namespace, where it starts the sender and runs `dane-roll`. Every address used lives inside
//! these two namespaces (nothing on the machine's own interfaces), so labs in parallel may use
//! the same addresses. Per test, [`FieldNet::firewall`] adds an `nft` table on the host side
//! (drop TCP/53, drop everything to one nameserver...).
//!
//! Names are unique per process and lab (`drl<pid>-<k>`), so parallel tests never collide.
//! Dropping the guard moves the thread back to the namespace it came from and deletes both
//! namespaces; the veth pair and the `nft` tables go with them. Namespaces left by a killed
//! run (their PID is gone) are deleted by the next field lab.

use std::fs::File;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use nix::sched::{CloneFlags, setns};

use crate::dns::tool;
use crate::ports::LoopbackBlock;
use crate::process::output_with_input;

static SEQ: AtomicU32 = AtomicU32::new(0);

/// The prefix of every namespace a field lab makes.
const PREFIX: &str = "drl";

/// The hosts of the block that live on the servers' side.
const SERVER_HOSTS: [u8; 8] = [
    LoopbackBlock::NS1,
    FieldNet::UPDATE,
    LoopbackBlock::NS2,
    LoopbackBlock::RESOLVER,
    LoopbackBlock::PDNS,
    LoopbackBlock::ACME,
    LoopbackBlock::MX,
    20,
];

/// Two network namespaces joined by a veth pair. See the [module docs](self).
#[derive(Debug)]
pub struct FieldNet {
    servers: String,
    host: String,
    block: LoopbackBlock,
    host_ipv6: bool,
    home: File,
}

impl FieldNet {
    /// A servers' side address that is in no NS record, for [`FieldNet::forward_dns`]: where a
    /// hidden primary takes UPDATEs, apart from the public nameservers.
    pub const UPDATE: u8 = 6;

    /// Make the two namespaces and the veth pair. `host_ipv6`: whether the host side has IPv6
    /// (without it, IPv6 is disabled in the host's namespace: every IPv6 address is "no
    /// route"). Root (or CAP_SYS_ADMIN and CAP_NET_ADMIN) only.
    pub fn new(host_ipv6: bool) -> io::Result<FieldNet> {
        remove_stale();
        let k = SEQ.fetch_add(1, Ordering::Relaxed);
        let base = format!("{PREFIX}{}-{k}", std::process::id());
        let home = File::open("/proc/thread-self/ns/net")?;
        let net = FieldNet {
            servers: format!("{base}s"),
            host: format!("{base}h"),
            block: LoopbackBlock::routed((k % 250 + 1) as u8),
            host_ipv6,
            home,
        };
        // From here on, Drop removes whatever was made.
        ip(&["netns", "add", &net.servers])?;
        ip(&["netns", "add", &net.host])?;
        ip(&[
            "link",
            "add",
            "name",
            "srv0",
            "netns",
            &net.servers,
            "type",
            "veth",
            "peer",
            "name",
            "host0",
            "netns",
            &net.host,
        ])?;
        for (ns, dev) in [(&net.servers, "srv0"), (&net.host, "host0")] {
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
            ip(&["-n", ns, "link", "set", dev, "up"])?;
        }
        if !host_ipv6 {
            net.exec_host(&["sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1"])?;
            net.exec_host(&["sysctl", "-q", "-w", "net.ipv6.conf.default.disable_ipv6=1"])?;
        }
        for h in SERVER_HOSTS {
            ip(&[
                "-n",
                &net.servers,
                "addr",
                "add",
                &format!("{}/24", net.block.host(h)),
                "dev",
                "srv0",
            ])?;
            ip(&[
                "-n",
                &net.servers,
                "-6",
                "addr",
                "add",
                &format!("{}/64", net.v6(h)),
                "dev",
                "srv0",
                "nodad",
            ])?;
        }
        let sender = LoopbackBlock::SENDER;
        ip(&[
            "-n",
            &net.host,
            "addr",
            "add",
            &format!("{}/24", net.block.host(sender)),
            "dev",
            "host0",
        ])?;
        if host_ipv6 {
            ip(&[
                "-n",
                &net.host,
                "-6",
                "addr",
                "add",
                &format!("{}/64", net.v6(sender)),
                "dev",
                "host0",
                "nodad",
            ])?;
        }
        Ok(net)
    }

    /// The block the field lab's addresses come from: `10.53.N.h` (not loopback).
    pub fn block(&self) -> LoopbackBlock {
        self.block
    }

    /// Host `h`'s IPv6 address, `fd00:53:N::h` (on the servers' side for the server hosts).
    pub fn v6(&self, h: u8) -> Ipv6Addr {
        Ipv6Addr::new(
            0xfd00,
            0x53,
            u16::from(self.block.n()),
            0,
            0,
            0,
            0,
            u16::from(h),
        )
    }

    /// Host `h`'s IPv4 address, `10.53.N.h`.
    pub fn v4(&self, h: u8) -> Ipv4Addr {
        self.block.host(h)
    }

    /// Whether the host side has IPv6.
    pub fn host_ipv6(&self) -> bool {
        self.host_ipv6
    }

    /// The servers' namespace name.
    pub fn servers_name(&self) -> &str {
        &self.servers
    }

    /// The host's namespace name.
    pub fn host_name(&self) -> &str {
        &self.host
    }

    /// Move the calling thread into the servers' namespace: what it starts from now on runs
    /// there.
    pub fn enter_servers(&self) -> io::Result<()> {
        enter(&format!("/run/netns/{}", self.servers))
    }

    /// Move the calling thread into the host's namespace.
    pub fn enter_host(&self) -> io::Result<()> {
        enter(&format!("/run/netns/{}", self.host))
    }

    /// Run `args` in the host's namespace (`ip netns exec`); an error unless it succeeds.
    pub fn exec_host(&self, args: &[&str]) -> io::Result<String> {
        run(Command::new(tool("ip"))
            .args(["netns", "exec", &self.host])
            .args(args))
    }

    /// Load `rules` (an `nft` chain body, e.g. `tcp dport 53 drop`) into a new table
    /// `inet dane_roll_lab` hooked on the host's output; removed when the guard drops.
    pub fn firewall(&self, rules: &[&str]) -> io::Result<Firewall<'_>> {
        let body: String = rules.iter().map(|r| format!("    {r}\n")).collect();
        let script = format!(
            "table inet dane_roll_lab {{\n  chain out {{\n    type filter hook output \
             priority 0; policy accept;\n{body}  }}\n}}\n"
        );
        nft_script(&self.host, &script)?;
        Ok(Firewall { net: self })
    }

    /// DNS (UDP and TCP port 53) to servers' side host `from` goes to host `to` (`nft` DNAT in
    /// the servers' namespace; gone with the namespace): e.g. BIND's UPDATEs at
    /// [`FieldNet::UPDATE`], so that a test can drop TCP/53 to the nameservers only.
    pub fn forward_dns(&self, from: u8, to: u8) -> io::Result<()> {
        let (a, b) = (self.v4(from), self.v4(to));
        let script = format!(
            "table ip dane_roll_lab_nat {{\n  chain pre {{\n    type nat hook prerouting \
             priority -100; policy accept;\n    ip daddr {a} tcp dport 53 dnat to {b}\n    \
             ip daddr {a} udp dport 53 dnat to {b}\n  }}\n}}\n"
        );
        nft_script(&self.servers, &script).map(drop)
    }

    /// `nft list tables` in the host's namespace.
    pub fn tables(&self) -> io::Result<String> {
        self.exec_host(&[&tool("nft").to_string_lossy(), "list", "tables"])
    }
}

impl Drop for FieldNet {
    fn drop(&mut self) {
        // Back home first: a thread inside a namespace keeps it alive.
        let _ = setns(&self.home, CloneFlags::CLONE_NEWNET);
        let _ = ip(&["netns", "del", &self.host]);
        let _ = ip(&["netns", "del", &self.servers]);
    }
}

/// The `nft` table of [`FieldNet::firewall`], deleted on drop.
#[derive(Debug)]
pub struct Firewall<'a> {
    net: &'a FieldNet,
}

impl Drop for Firewall<'_> {
    fn drop(&mut self) {
        let _ = self.net.exec_host(&[
            &tool("nft").to_string_lossy(),
            "delete",
            "table",
            "inet",
            "dane_roll_lab",
        ]);
    }
}

/// Whether this machine can make a field lab (network namespaces, veth, nft): a namespace is
/// made and removed again. The reason when it cannot.
pub fn available() -> Result<(), String> {
    if crate::tools::which("nft").is_none() {
        return Err("nft (Debian package nftables) is not installed".into());
    }
    FieldNet::new(false)
        .map(drop)
        .map_err(|e| format!("no network namespaces here: {e}"))
}

/// `nft -f -` with `script` in namespace `ns`.
fn nft_script(ns: &str, script: &str) -> io::Result<()> {
    let out = output_with_input(
        Command::new(tool("ip"))
            .args(["netns", "exec", ns])
            .arg(tool("nft"))
            .args(["-f", "-"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
        script.as_bytes(),
    )?;
    if out.status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "lab: nft refused the field lab's rules ({ns}): {}\n{script}",
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

fn enter(path: &str) -> io::Result<()> {
    let f = File::open(path)?;
    setns(&f, CloneFlags::CLONE_NEWNET)
        .map_err(|e| io::Error::other(format!("lab: setns {path}: {e}")))
}

fn ip(args: &[&str]) -> io::Result<String> {
    run(Command::new(tool("ip")).args(args))
}

fn run(cmd: &mut Command) -> io::Result<String> {
    let out = cmd.output()?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(io::Error::other(format!(
            "lab: {:?} {:?} failed: {}",
            cmd.get_program(),
            cmd.get_args().collect::<Vec<_>>(),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// Delete field-lab namespaces whose process is gone (a killed run).
fn remove_stale() {
    let Ok(entries) = std::fs::read_dir("/run/netns") else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = ip(&["netns", "del", &name]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A test that panics inside the host's namespace, with a firewall loaded, leaves no
    /// namespace behind (the veth pair and the table go with them).
    #[test]
    fn a_panicking_test_leaves_no_namespace() {
        if let Err(why) = available() {
            eprintln!("skipped: {why}");
            return;
        }
        let (tx, rx) = std::sync::mpsc::channel();
        let joined = std::thread::spawn(move || {
            let net = FieldNet::new(true).unwrap();
            net.enter_host().unwrap();
            let _fw = net.firewall(&["tcp dport 53 drop"]).unwrap();
            assert!(net.tables().unwrap().contains("dane_roll_lab"));
            tx.send((net.servers_name().to_owned(), net.host_name().to_owned()))
                .unwrap();
            panic!("a test fails inside the field lab");
        })
        .join();
        assert!(joined.is_err());
        let (servers, host) = rx.recv().unwrap();
        for name in [servers, host] {
            assert!(
                !std::path::Path::new(&format!("/run/netns/{name}")).exists(),
                "{name} left behind"
            );
        }
    }
}
