//! Read-only discovery: what `init` finds on this machine and in DNS, each finding with how sure
//! it is. Every source can be pointed elsewhere ([`Sources`]), for tests and unusual layouts.

pub mod acme;
pub mod dns;
pub mod dovecot;
pub mod postfix;

use std::path::{Path, PathBuf};

use openssl::pkey::{PKey, Private};
use openssl::x509::X509;

use self::acme::AcmeCert;
use self::dns::{ProviderGuess, Zone};
use self::dovecot::{Doveconf, DoveconfError, DovecotTls};
use self::postfix::{Postconf, PostfixTls, TlsFiles};
use super::classify::{self, Known, OwnerRecords};
use super::{Certainty, InitError, Note};
use crate::dns::Resolver;
use crate::pki;

/// Where discovery looks.
#[derive(Debug, Clone)]
pub struct Sources {
    /// `postconf` and Postfix's configuration directory.
    pub postconf: Postconf,
    /// `doveconf` and Dovecot's configuration file.
    pub doveconf: Doveconf,
    /// certbot's directory (`/etc/letsencrypt`).
    pub letsencrypt: PathBuf,
    /// acme.sh homes to look in, in order.
    pub acme_sh: Vec<PathBuf>,
    /// dehydrated base directories to look in, in order.
    pub dehydrated: Vec<PathBuf>,
    /// Mail domains whose MX hosts to look up (empty: Postfix's `mydomain`).
    pub domains: Vec<String>,
}

/// The key and chain Postfix serves now, read from its files.
pub struct Live {
    /// The files they came from.
    pub files: Vec<PathBuf>,
    /// The private key.
    pub key: PKey<Private>,
    /// The chain, leaf first.
    pub chain: Vec<X509>,
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Live").field("files", &self.files).finish()
    }
}

impl Live {
    /// The key then the chain, PEM: what a `chain-file` holds. Holds the private key.
    pub fn key_and_chain_pem(&self) -> Result<Vec<u8>, openssl::error::ErrorStack> {
        let mut pem = self.key.private_key_to_pem_pkcs8()?;
        for cert in &self.chain {
            pem.extend(cert.to_pem()?);
        }
        Ok(pem)
    }

    /// SHA-256 of the leaf's SubjectPublicKeyInfo, hex (what a probe reports).
    pub fn spki_sha256(&self) -> Option<String> {
        let der = self.key.public_key_to_der().ok()?;
        Some(hex::encode(openssl::sha::sha256(&der)))
    }

    /// The DNS names of the leaf certificate.
    pub fn names(&self) -> Vec<String> {
        self.chain.first().map(names_of).unwrap_or_default()
    }
}

/// Everything discovery found.
#[derive(Debug, Default)]
pub struct Discovery {
    /// The report, in order.
    pub notes: Vec<Note>,
    /// Postfix, when `postconf` answered.
    pub postfix: Option<PostfixTls>,
    /// The served key and chain.
    pub live: Option<Live>,
    /// Dovecot, when it is installed and configures a certificate.
    pub dovecot: Option<DovecotTls>,
    /// Whether Dovecot's key is the one Postfix serves (then it is switched and probed too).
    pub dovecot_same_key: bool,
    /// The ACME client's certificate for this server.
    pub acme: Option<AcmeCert>,
    /// The MX hosts this certificate serves (the endpoints).
    pub hosts: Vec<String>,
    /// The zone of the first host.
    pub zone: Option<Zone>,
    /// Its nameservers.
    pub nameservers: Vec<String>,
    /// The provider guessed from them.
    pub provider: Option<ProviderGuess>,
    /// Whether the resolver validates.
    pub validating: Option<bool>,
    /// The TLSA RRset at each endpoint's owner name, classified.
    pub tlsa: Vec<OwnerRecords>,
    /// The resolver failed to answer (the rest of DNS is not asked: each would time out too).
    pub dns_failed: bool,
}

impl Discovery {
    fn note(&mut self, topic: &'static str, certainty: Certainty, text: impl Into<String>) {
        self.notes.push(Note::new(topic, certainty, text));
    }
}

/// The DNS names (subjectAltName) of a certificate, lower case.
fn names_of(cert: &X509) -> Vec<String> {
    cert.subject_alt_names()
        .map(|sans| {
            sans.iter()
                .filter_map(|n| n.dnsname().map(str::to_ascii_lowercase))
                .collect()
        })
        .unwrap_or_default()
}

/// Read the key and chain from one Postfix file set.
fn read_live(files: &[PathBuf]) -> Result<Live, InitError> {
    let key = pki::load_private_key(files.last().unwrap_or(&PathBuf::new()))?;
    let first = files.first().cloned().unwrap_or_default();
    let chain = pki::load(&first)?.certificates().to_vec();
    Ok(Live {
        files: files.to_vec(),
        key,
        chain,
    })
}

/// The SPKI DER of the leaf in `fullchain`, if readable.
fn leaf_spki(fullchain: &Path) -> Option<Vec<u8>> {
    let material = pki::load(fullchain).ok()?;
    material.leaf()?.public_key().ok()?.public_key_to_der().ok()
}

/// Discover. Never fails: what is missing is a note saying what to do.
pub async fn discover(sources: &Sources, resolver: Option<&Resolver>) -> Discovery {
    let mut d = Discovery::default();
    postfix_part(&mut d, &sources.postconf);
    dovecot_part(&mut d, &sources.doveconf);
    acme_part(&mut d, sources);
    hosts_part(&mut d, sources, resolver).await;
    match resolver {
        Some(resolver) if !d.dns_failed => dns_part(&mut d, resolver).await,
        _ => d.note(
            "zone",
            Certainty::NotFound,
            "DNS not asked (no resolver answered): write `zone` by hand, or run init again with --resolver",
        ),
    }
    d
}

fn postfix_part(d: &mut Discovery, postconf: &Postconf) {
    let postfix = match postconf.discover() {
        Ok(p) => p,
        Err(err) => {
            d.note("postfix", Certainty::NotFound, format!("{err}"));
            return;
        }
    };
    let sets: Vec<Vec<PathBuf>> = match &postfix.files {
        TlsFiles::Chains(files) => files.iter().map(|f| vec![f.clone()]).collect(),
        TlsFiles::Pairs(pairs) => pairs
            .iter()
            .map(|(c, k)| vec![c.clone(), k.clone()])
            .collect(),
        TlsFiles::None => Vec::new(),
    };
    let how = match &postfix.files {
        TlsFiles::Chains(_) => "smtpd_tls_chain_files",
        TlsFiles::Pairs(_) => "smtpd_tls_cert_file/smtpd_tls_key_file",
        TlsFiles::None => "",
    };
    if sets.is_empty() {
        d.note(
            "postfix",
            Certainty::NotFound,
            format!(
                "no server certificate in {}: set smtpd_tls_chain_files (or smtpd_tls_cert_file and smtpd_tls_key_file) first",
                postfix.main_cf().display()
            ),
        );
    } else if sets.len() > 1 {
        d.note(
            "postfix",
            Certainty::Guessed,
            format!(
                "{} key sets in {how}; the configuration takes the first (write `chain-files` for one per algorithm)",
                sets.len()
            ),
        );
    }
    if let Some(set) = sets.first() {
        match read_live(set) {
            Ok(live) => {
                let list: Vec<String> = set.iter().map(|p| p.display().to_string()).collect();
                d.note(
                    "postfix",
                    Certainty::Found,
                    format!(
                        "{} ({how} in {}), myhostname {}",
                        list.join(" + "),
                        postfix.main_cf().display(),
                        postfix.myhostname
                    ),
                );
                d.live = Some(live);
            }
            Err(err) => d.note("postfix", Certainty::NotFound, format!("{err}")),
        }
    }
    d.postfix = Some(postfix);
}

fn dovecot_part(d: &mut Discovery, doveconf: &Doveconf) {
    let dovecot = match doveconf.discover() {
        Ok(Some(dovecot)) => dovecot,
        Ok(None) => {
            d.note(
                "dovecot",
                Certainty::NotFound,
                "no ssl_cert/ssl_key in Dovecot's configuration: nothing to switch",
            );
            return;
        }
        Err(DoveconfError::Missing) => {
            d.note(
                "dovecot",
                Certainty::NotFound,
                "not installed (no doveconf; --doveconf PATH names it): nothing to switch",
            );
            return;
        }
        Err(DoveconfError::Failed(err)) => {
            d.note("dovecot", Certainty::NotFound, format!("{err}"));
            return;
        }
    };
    let live_spki = d.live.as_ref().and_then(|l| l.key.public_key_to_der().ok());
    let key_spki = pki::load_private_key(&dovecot.key)
        .ok()
        .and_then(|k| k.public_key_to_der().ok());
    d.dovecot_same_key = live_spki.is_some() && key_spki == live_spki;
    let files = format!(
        "ssl_cert <{}, ssl_key <{} ({})",
        dovecot.cert.display(),
        dovecot.key.display(),
        dovecot.config.display()
    );
    if d.dovecot_same_key {
        d.note(
            "dovecot",
            Certainty::Found,
            format!("{files}: the key Postfix serves; switched with it, probed on port 993"),
        );
    } else {
        d.note(
            "dovecot",
            Certainty::Guessed,
            format!("{files}: another key than Postfix's (or unreadable); left out: give it a service of its own"),
        );
    }
    d.dovecot = Some(dovecot);
}

fn acme_part(d: &mut Discovery, sources: &Sources) {
    let mut all = acme::certbot(&sources.letsencrypt);
    for home in &sources.acme_sh {
        all.extend(acme::acme_sh(home));
    }
    for base in &sources.dehydrated {
        all.extend(acme::dehydrated(base));
    }
    let live_spki = d.live.as_ref().and_then(|l| l.key.public_key_to_der().ok());
    let serving = all
        .iter()
        .find(|c| live_spki.is_some() && leaf_spki(&c.fullchain) == live_spki);
    let myhostname = d
        .postfix
        .as_ref()
        .map(|p| p.myhostname.clone())
        .unwrap_or_default();
    if let Some(cert) = serving {
        d.note(
            "acme",
            Certainty::Found,
            format!(
                "{} certificate {} ({}): its key is the one Postfix serves",
                cert.client.name(),
                cert.name,
                cert.dir.display()
            ),
        );
        d.acme = Some(cert.clone());
    } else if let Some(cert) = all.iter().find(|c| {
        pki::load(&c.fullchain)
            .ok()
            .and_then(|m| m.leaf().map(|l| names_of(&l.to_owned())))
            .is_some_and(|names| names.contains(&myhostname))
    }) {
        d.note(
            "acme",
            Certainty::Guessed,
            format!(
                "{} certificate {} names {myhostname}, but Postfix serves another key: check that it is the one to roll",
                cert.client.name(),
                cert.name
            ),
        );
        d.acme = Some(cert.clone());
    } else {
        d.note(
            "acme",
            Certainty::NotFound,
            format!(
                "no certbot lineage under {}, acme.sh or dehydrated certificate for this key: point --letsencrypt-dir, --acme-sh-home or --dehydrated-dir at yours, or deploy with `dane-roll deploy`",
                sources.letsencrypt.join("renewal").display()
            ),
        );
    }
    if let Some(next) = d.acme.as_ref().and_then(|c| c.next_key.clone()) {
        d.note(
            "acme",
            Certainty::Found,
            format!("next key {}", next.display()),
        );
    }
}

async fn hosts_part(d: &mut Discovery, sources: &Sources, resolver: Option<&Resolver>) {
    let (myhostname, mydomain) = d
        .postfix
        .as_ref()
        .map(|p| (p.myhostname.clone(), p.mydomain.clone()))
        .unwrap_or_default();
    let names = d.live.as_ref().map(Live::names).unwrap_or_default();
    let domains = if sources.domains.is_empty() {
        vec![mydomain]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect()
    } else {
        sources.domains.clone()
    };
    let mut hosts = Vec::new();
    if let Some(resolver) = resolver {
        for domain in &domains {
            match dns::mx_hosts(resolver, domain).await {
                Ok(mx) => {
                    let ours: Vec<String> = mx
                        .into_iter()
                        .filter(|h| *h == myhostname || names.contains(h))
                        .collect();
                    d.note(
                        "mx",
                        if ours.is_empty() {
                            Certainty::NotFound
                        } else {
                            Certainty::Found
                        },
                        if ours.is_empty() {
                            format!(
                                "no MX host of {domain} is myhostname or named in the certificate"
                            )
                        } else {
                            format!("{domain}: MX {}", ours.join(", "))
                        },
                    );
                    for h in ours {
                        if !hosts.contains(&h) {
                            hosts.push(h);
                        }
                    }
                }
                Err(why) => {
                    d.note(
                        "mx",
                        Certainty::NotFound,
                        format!("the MX lookup of {domain} failed: {why}"),
                    );
                    d.dns_failed = true;
                }
            }
        }
    }
    if hosts.is_empty() && !myhostname.is_empty() {
        d.note(
            "mx",
            Certainty::Guessed,
            format!("endpoint {myhostname}:25 from Postfix's myhostname"),
        );
        hosts.push(myhostname);
    }
    d.hosts = hosts;
}

async fn dns_part(d: &mut Discovery, resolver: &Resolver) {
    let Some(host) = d.hosts.first().cloned() else {
        return;
    };
    match dns::zone_of(resolver, &host).await {
        Some(zone) => {
            d.note(
                "zone",
                Certainty::Found,
                format!("{} (primary {})", zone.apex, zone.primary),
            );
            d.nameservers = dns::nameservers(resolver, &zone.apex).await;
            let guess = dns::guess_provider(&d.nameservers, &zone);
            d.note(
                "provider",
                Certainty::Guessed,
                format!(
                    "{} from the nameservers {}",
                    guess.kind(),
                    d.nameservers.join(", ")
                ),
            );
            d.validating = dns::validates(resolver, &zone.apex).await;
            d.provider = Some(guess);
            d.zone = Some(zone);
        }
        None => d.note(
            "zone",
            Certainty::NotFound,
            format!("no SOA for {host}: check the resolver (--resolver) and write `zone` by hand"),
        ),
    }
    match d.validating {
        Some(true) => d.note("resolver", Certainty::Found, format!("{} validates DNSSEC", resolver.address())),
        Some(false) => d.note(
            "resolver",
            Certainty::Found,
            format!("{} does NOT validate DNSSEC (or the zone is unsigned): use a validating resolver (Unbound) with --resolver", resolver.address()),
        ),
        None => {}
    }
    tlsa_part(d, resolver).await;
}

async fn tlsa_part(d: &mut Discovery, resolver: &Resolver) {
    let next = d
        .acme
        .as_ref()
        .and_then(|c| c.next_key.as_ref())
        .and_then(|p| pki::load(p).ok());
    let leaf = d.live.as_ref().and_then(|l| l.chain.first().cloned());
    let issuers: Vec<X509> = d
        .live
        .as_ref()
        .map(|l| l.chain.iter().skip(1).cloned().collect())
        .unwrap_or_default();
    let known = Known {
        leaf: leaf.as_deref(),
        issuers: &issuers,
        next: next.as_ref().and_then(|m| m.key()).map(|k| k.public_key()),
    };
    for host in d.hosts.clone() {
        let owner = crate::tlsa::OwnerName::for_endpoint(&host, 25);
        let report = match resolver.tlsa(owner.as_str()).await {
            Ok(lookup) => OwnerRecords {
                owner: owner.clone(),
                status: lookup.status.to_string(),
                records: lookup
                    .records
                    .iter()
                    .map(|r| (r.clone(), classify::classify(r, &known)))
                    .collect(),
            },
            Err(err) => OwnerRecords {
                owner: owner.clone(),
                status: format!("lookup failed: {err}"),
                records: Vec::new(),
            },
        };
        let certainty = if report.records.is_empty() {
            Certainty::NotFound
        } else {
            Certainty::Found
        };
        let mut text = format!("{owner} ({}): ", report.status);
        if report.records.is_empty() {
            text.push_str("no records; dane-roll's first rollover publishes them");
        } else {
            let parts: Vec<String> = report
                .records
                .iter()
                .map(|(r, role)| format!("{r} {role}"))
                .collect();
            text.push_str(&parts.join("; "));
        }
        d.note("tlsa", certainty, text);
        d.tlsa.push(report);
    }
}
