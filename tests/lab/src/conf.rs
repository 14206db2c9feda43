//! The dane-roll configuration that lab tests and the demo run the real binary with: one service
//! (`mx`) whose certificate is the lab receiver's, records published by RFC 2136 UPDATE to the
//! lab's BIND with its TSIG key (a file, never the secret itself), checked through the lab's
//! validating resolver.
//!
//! [`RolloverConf::new`] fills every field from a running lab; a test changes what it needs
//! (TTL, reload command, `chain-files`, an `[alerts]` block, another provider) and writes it with
//! [`RolloverConf::write`].

use std::io;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use crate::dns::{DnsLab, Server};
use crate::pki::MX_HOST;
use crate::postfix::Receiver;
use crate::tools::{BIND_TOOLS, KNOT_TOOLS, UNBOUND_TOOLS};

/// The programs a rollover on the lab needs: the DNS servers and their tools, Postfix, and with
/// `sender`, what the DANE-enforcing sender needs on top.
pub fn rollover_tools(sender: bool) -> Vec<&'static str> {
    let mut tools = [BIND_TOOLS, KNOT_TOOLS, UNBOUND_TOOLS, &["postfix"]].concat();
    if sender {
        tools.extend(["sendmail", "postqueue", "postsuper", "script", "unshare"]);
    }
    tools
}

/// Where the service's key and chain go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chains {
    /// `chain-file`.
    One(PathBuf),
    /// `chain-files`: (algorithm, file).
    PerAlgorithm(Vec<(String, PathBuf)>),
}

/// A dane-roll configuration with one service and one provider.
#[derive(Debug, Clone)]
pub struct RolloverConf {
    /// `state-dir`.
    pub state_dir: PathBuf,
    /// `[resolver] address`.
    pub resolver: Ipv4Addr,
    /// The service's name.
    pub service: String,
    /// `lineage` (certbot), if any.
    pub lineage: Option<String>,
    /// `domains` (ACME names), if any.
    pub domains: Vec<String>,
    /// `endpoints`.
    pub endpoints: Vec<String>,
    /// `chain-file` / `chain-files`.
    pub chains: Chains,
    /// `reload`, program first.
    pub reload: Vec<String>,
    /// More reload commands run after `reload` (then `reload` is written as a list of commands).
    pub more_reloads: Vec<Vec<String>>,
    /// More TOML lines of the `[[service]]` table (e.g. `cert-file = "…"`).
    pub service_extra: String,
    /// `ttl`.
    pub ttl: u32,
    /// The body of `[provider.lab]` (TOML lines).
    pub provider: String,
    /// More TOML, appended as it is (e.g. an `[alerts]` block).
    pub extra: String,
}

impl RolloverConf {
    /// Service `mx` at `mail.example.test:25/smtp`, the receiver's chain file and `postfix
    /// reload`, TTL 2 s, records by UPDATE to BIND with the lab's TSIG key file, state under
    /// `dir/state`.
    pub fn new(dir: &Path, dns: &DnsLab, rx: &Receiver) -> RolloverConf {
        RolloverConf {
            state_dir: dir.join("state"),
            resolver: dns.resolver_addr(),
            service: "mx".to_owned(),
            lineage: None,
            domains: Vec::new(),
            endpoints: vec![format!("{MX_HOST}:25/smtp")],
            chains: Chains::One(rx.chain_file()),
            reload: vec![
                "postfix".to_owned(),
                "-c".to_owned(),
                rx.instance().etc().display().to_string(),
                "reload".to_owned(),
            ],
            more_reloads: Vec::new(),
            service_extra: String::new(),
            ttl: 2,
            provider: rfc2136(dns.addr(Server::Bind), &dns.tsig().file),
            extra: String::new(),
        }
    }

    /// The TOML text.
    pub fn text(&self) -> String {
        let mut out = format!(
            "version = 1\nstate-dir = {}\n\n[resolver]\naddress = {}\n\n[[service]]\nname = {}\n",
            quote(&self.state_dir.display().to_string()),
            quote(&self.resolver.to_string()),
            quote(&self.service),
        );
        if let Some(lineage) = &self.lineage {
            out.push_str(&format!("lineage = {}\n", quote(lineage)));
        }
        if !self.domains.is_empty() {
            out.push_str(&format!("domains = {}\n", list(&self.domains)));
        }
        out.push_str(&format!("endpoints = {}\n", list(&self.endpoints)));
        match &self.chains {
            Chains::One(path) => {
                out.push_str(&format!(
                    "chain-file = {}\n",
                    quote(&path.display().to_string())
                ));
            }
            Chains::PerAlgorithm(files) => {
                let items: Vec<String> = files
                    .iter()
                    .map(|(a, p)| format!("{a} = {}", quote(&p.display().to_string())))
                    .collect();
                out.push_str(&format!("chain-files = {{ {} }}\n", items.join(", ")));
            }
        }
        if !self.service_extra.is_empty() {
            out.push_str(self.service_extra.trim_end());
            out.push('\n');
        }
        let reload = if self.more_reloads.is_empty() {
            list(&self.reload)
        } else {
            let commands: Vec<String> = std::iter::once(&self.reload)
                .chain(&self.more_reloads)
                .map(|c| list(c))
                .collect();
            format!("[{}]", commands.join(", "))
        };
        out.push_str(&format!(
            "reload = {}\nttl = {}\nprovider = \"lab\"\n\n[provider.lab]\n{}\n",
            reload,
            self.ttl,
            self.provider.trim_end()
        ));
        if !self.extra.is_empty() {
            out.push('\n');
            out.push_str(self.extra.trim_end());
            out.push('\n');
        }
        out
    }

    /// Write the TOML text to `path`.
    pub fn write(&self, path: &Path) -> io::Result<()> {
        std::fs::write(path, self.text())
    }
}

/// The body of an RFC 2136 provider table: `server` and `tsig-key-file`.
pub fn rfc2136(server: Ipv4Addr, tsig_key_file: &Path) -> String {
    format!(
        "kind = \"rfc2136\"\nserver = {}\ntsig-key-file = {}\n",
        quote(&server.to_string()),
        quote(&tsig_key_file.display().to_string())
    )
}

/// A TOML basic string.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| quote(s)).collect();
    format!("[{}]", quoted.join(", "))
}
