//! The configuration files and zone files of the DNS lab, as text.
//!
//! Everything is generated from the lab's addresses and directory, so two labs never share a
//! file, an address or a socket.

use std::net::Ipv4Addr;
use std::path::Path;

/// The signed zone.
pub const ZONE: &str = "example.test";
/// The unsigned (insecure) zone.
pub const INSECURE_ZONE: &str = "insecure.test";

/// Addresses of one lab, from its loopback block.
#[derive(Debug, Clone, Copy)]
pub struct Addrs {
    pub ns1: Ipv4Addr,
    pub ns2: Ipv4Addr,
    pub resolver: Ipv4Addr,
    pub mx: Ipv4Addr,
    pub acme: Ipv4Addr,
    pub sender: Ipv4Addr,
    pub pdns: Ipv4Addr,
}

/// The unsigned source of `example.test`; BIND signs it inline.
pub fn signed_zone_source(a: &Addrs) -> String {
    format!(
        "$TTL 60
@        SOA  ns1.{ZONE}. hostmaster.{ZONE}. 1 60 10 3600 5
@        NS   ns1
@        NS   ns2
@        MX   10 mail
ns1      A    {ns1}
ns2      A    {ns2}
mail     A    {mx}
acme     A    {acme}
sender   A    {sender}
resolver A    {resolver}
pdns     A    {pdns}
_smtp._tls TXT \"v=TLSRPTv1; rua=mailto:tls-reports@{ZONE}\"
",
        ns1 = a.ns1,
        ns2 = a.ns2,
        mx = a.mx,
        acme = a.acme,
        sender = a.sender,
        resolver = a.resolver,
        pdns = a.pdns,
    )
}

/// The unsigned zone `insecure.test`: an MX host whose TLSA records can never validate.
pub fn insecure_zone_source(a: &Addrs) -> String {
    format!(
        "$TTL 60
@        SOA  ns1.{ZONE}. hostmaster.{ZONE}. 1 60 10 3600 5
@        NS   ns1.{ZONE}.
@        NS   ns2.{ZONE}.
@        MX   10 mail
mail     A    {mx}
",
        mx = a.mx,
    )
}

/// named.conf of the primary. `knot` adds NOTIFY and transfer rights for the secondary.
pub fn named_conf(dir: &Path, a: &Addrs, tsig_file: &Path, knot: bool) -> String {
    let d = dir.display();
    let notify = if knot {
        format!(
            "notify explicit; notify-delay 0; also-notify {{ {}; }};",
            a.ns2
        )
    } else {
        "notify no;".to_string()
    };
    format!(
        r#"include "{tsig}";
options {{
  directory "{d}";
  pid-file "{d}/named.pid";
  session-keyfile "{d}/session.key";
  managed-keys-directory "{d}";
  listen-on port 53 {{ {ns1}; }};
  listen-on-v6 {{ none; }};
  recursion no;
  dnssec-validation no;
  notify-source {ns1};
  transfer-source {ns1};
  {notify}
  allow-transfer {{ {ns2}; key "dane-roll-key"; }};
  minimal-responses no-auth-recursive;
}};
controls {{ }};
dnssec-policy "lab" {{
  keys {{ csk lifetime unlimited algorithm ecdsap256sha256; }};
  dnskey-ttl 60;
  max-zone-ttl 300;
}};
zone "{ZONE}" {{
  type primary;
  file "{d}/{ZONE}.db";
  key-directory "{d}/keys";
  dnssec-policy "lab";
  inline-signing yes;
  allow-update {{ key "dane-roll-key"; }};
}};
zone "{INSECURE_ZONE}" {{
  type primary;
  file "{d}/{INSECURE_ZONE}.db";
  allow-update {{ key "dane-roll-key"; }};
}};
"#,
        tsig = tsig_file.display(),
        ns1 = a.ns1,
        ns2 = a.ns2,
    )
}

/// named.conf of the rogue server that serves a tampered copy of the signed zone, as is.
pub fn rogue_named_conf(dir: &Path, addr: Ipv4Addr) -> String {
    let d = dir.display();
    format!(
        r#"options {{
  directory "{d}";
  pid-file "{d}/named.pid";
  session-keyfile "{d}/session.key";
  managed-keys-directory "{d}";
  listen-on port 53 {{ {addr}; }};
  listen-on-v6 {{ none; }};
  recursion no;
  dnssec-validation no;
  notify no;
}};
controls {{ }};
zone "{ZONE}" {{ type primary; file "{d}/{ZONE}.db"; check-names ignore; }};
"#
    )
}

/// knot.conf of the secondary: both zones transferred from BIND, kept in its journal so a
/// restart serves them at once.
pub fn knot_conf(dir: &Path, a: &Addrs) -> String {
    let d = dir.display();
    format!(
        r#"server:
    rundir: "{d}"
    pidfile: "{d}/knot.pid"
    listen: {ns2}@53
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
log:
  - target: stderr
    any: info
database:
    storage: "{d}"
control:
    listen: "{d}/knot.sock"
remote:
  - id: bind
    address: {ns1}@53
    via: {ns2}
acl:
  - id: notify_from_bind
    address: {ns1}
    action: notify
template:
  - id: default
    storage: "{d}"
    master: bind
    acl: notify_from_bind
    zonefile-sync: -1
    zonefile-load: none
    journal-content: all
zone:
  - domain: {ZONE}
  - domain: {INSECURE_ZONE}
"#,
        ns1 = a.ns1,
        ns2 = a.ns2,
    )
}

/// unbound.conf of the validating resolver. `stubs` are the authoritative servers.
pub fn unbound_conf(dir: &Path, a: &Addrs, stubs: &[Ipv4Addr], anchor: &Path) -> String {
    let d = dir.display();
    let stub_addrs: String = stubs
        .iter()
        .map(|s| format!("  stub-addr: {s}@53\n"))
        .collect();
    format!(
        r#"server:
  interface: {resolver}
  port: 53
  do-ip6: no
  so-reuseport: no
  num-threads: 1
  username: ""
  chroot: ""
  directory: "{d}"
  pidfile: "{d}/unbound.pid"
  use-syslog: no
  logfile: ""
  verbosity: 1
  val-log-level: 2
  log-servfail: yes
  ede: yes
  access-control: 127.0.0.0/8 allow
  access-control: {net}.0/24 allow
  do-not-query-localhost: no
  local-zone: "test." nodefault
  trust-anchor-file: "{anchor}"
  domain-insecure: "{INSECURE_ZONE}"
  cache-max-ttl: 5
  cache-max-negative-ttl: 5
  infra-host-ttl: 5
remote-control:
  control-enable: yes
  control-interface: "{d}/control.sock"
stub-zone:
  name: "{ZONE}."
{stub_addrs}stub-zone:
  name: "{INSECURE_ZONE}."
{stub_addrs}"#,
        resolver = a.resolver,
        net = {
            let [x, y, z, _] = a.resolver.octets();
            format!("{x}.{y}.{z}")
        },
        anchor = anchor.display(),
    )
}
