//! Finding the servers' binaries, and the skip rule.
//!
//! In CI (`CI=true`) a missing server is a failure: lab tests are never skipped there. Elsewhere a
//! test that needs a missing server prints what to install and returns early.

use std::path::PathBuf;

/// The Debian package that provides each binary the lab uses.
const PACKAGES: &[(&str, &str)] = &[
    ("named", "bind9"),
    ("tsig-keygen", "bind9-utils"),
    ("dnssec-dsfromkey", "bind9-utils"),
    ("dig", "bind9-dnsutils"),
    ("nsupdate", "bind9-dnsutils"),
    ("knotd", "knot"),
    ("knotc", "knot"),
    ("keymgr", "knot"),
    ("kdig", "knot-dnsutils"),
    ("unbound", "unbound"),
    ("unbound-control", "unbound"),
    ("postfix", "postfix"),
    ("sendmail", "postfix"),
    ("pdns_server", "pdns-server"),
    ("pdnsutil", "pdns-server"),
    ("pebble", "pebble"),
    ("certbot", "certbot"),
    ("dehydrated", "dehydrated"),
    ("ldns-dane", "ldnsutils"),
    ("swaks", "swaks"),
    ("nft", "nftables"),
    ("openssl", "openssl"),
    ("unshare", "util-linux"),
    ("setpriv", "util-linux"),
    ("dovecot", "dovecot-imapd"),
    ("doveconf", "dovecot-imapd"),
    ("doveadm", "dovecot-imapd"),
];

/// The programs of the DNS lab's core: BIND and the tools the lab drives it with.
pub const BIND_TOOLS: &[&str] = &[
    "named",
    "tsig-keygen",
    "dnssec-dsfromkey",
    "dig",
    "nsupdate",
    "ip",
];
/// The programs of the DNS lab's Knot (the secondary).
pub const KNOT_TOOLS: &[&str] = &["knotd", "knotc"];
/// The programs of the DNS lab's validating resolver.
pub const UNBOUND_TOOLS: &[&str] = &["unbound", "unbound-control"];
/// The programs of the DNS lab's PowerDNS.
pub const PDNS_TOOLS: &[&str] = &["pdns_server", "sqlite3"];

/// [`require`] every program of `groups` ([`BIND_TOOLS`], …, or a test's own list).
pub fn require_all(groups: &[&[&str]]) -> bool {
    require(&groups.concat())
}

/// Whether we run in CI, where lab tests must never be skipped.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Where a binary is, searching `PATH` and the sbin directories.
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// Whether every binary is installed. When one is missing: in CI, panic with what to install;
/// elsewhere print a skip message saying what to install, and return false.
///
/// ```ignore
/// if !dane_roll_lab::require(&["named", "unbound"]) { return; }
/// ```
pub fn require(binaries: &[&str]) -> bool {
    let missing: Vec<&str> = binaries
        .iter()
        .copied()
        .filter(|b| which(b).is_none())
        .collect();
    if missing.is_empty() {
        return true;
    }
    let mut packages: Vec<&str> = missing
        .iter()
        .map(|b| {
            PACKAGES
                .iter()
                .find(|(n, _)| n == b)
                .map_or(*b, |(_, p)| *p)
        })
        .collect();
    packages.sort_unstable();
    packages.dedup();
    let msg = format!(
        "lab: missing {}; install with: apt-get install {}",
        missing.join(", "),
        packages.join(" ")
    );
    if in_ci() {
        panic!("{msg} (CI=true: lab tests are never skipped)");
    }
    eprintln!("SKIPPED: {msg}");
    false
}
