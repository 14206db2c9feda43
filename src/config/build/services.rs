//! `[[service]]`: each service's names, endpoints, chain files, reload command, key file, TTL,
//! zone, provider and ACME source; a name or lineage used twice.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use super::Builder;
use crate::config::alerts::CheckSettings;
use crate::config::endpoint::{dns_name, in_zone};
use crate::config::provider::Provider;
use crate::config::raw::{RawReload, RawService};
use crate::config::source::{Seg, kpath, with_suggestion};
use crate::config::{
    ADVISED_TTL, AcmeFiles, ChainFiles, DEFAULT_RELOAD, DEFAULT_TTL, MAX_TTL, Scheme, Service,
    SplitFiles,
};

impl Builder<'_, '_> {
    pub(super) fn services(
        &mut self,
        raw: Vec<RawService>,
        providers: &BTreeMap<String, Provider>,
        check: &CheckSettings,
    ) -> Vec<Service> {
        let mut services: Vec<Service> = Vec::new();
        let mut names: HashMap<String, usize> = HashMap::new();
        let mut lineages: HashMap<String, String> = HashMap::new();
        for (i, raw) in raw.into_iter().enumerate() {
            let Some(service) = self.service(i, raw, providers, check) else {
                continue;
            };
            if let Some(first) = names.get(&service.name) {
                let line = self
                    .src
                    .problem(
                        &[Seg::from("service"), Seg::from(*first), Seg::from("name")],
                        "",
                    )
                    .location
                    .map_or(String::new(), |l| format!(" (first at line {})", l.line));
                self.error(
                    kpath!["service", i, "name"],
                    format!("service \"{}\" is defined twice{line}", service.name),
                );
                continue;
            }
            if let Some(lineage) = &service.lineage {
                if let Some(other) = lineages.get(lineage) {
                    self.error(
                        kpath!["service", i, "lineage"],
                        format!("lineage \"{lineage}\" already belongs to service \"{other}\""),
                    );
                }
                lineages.insert(lineage.clone(), service.name.clone());
            }
            names.insert(service.name.clone(), i);
            services.push(service);
        }
        services
    }

    fn service(
        &mut self,
        i: usize,
        raw: RawService,
        providers: &BTreeMap<String, Provider>,
        check: &CheckSettings,
    ) -> Option<Service> {
        let at = |key: &str| kpath!["service", i, key];
        let errors_before = self.errors.len();
        self.name(at("name"), "a service", &raw.name);

        let lineage = raw.lineage.and_then(|l| {
            let trimmed = l.trim_end_matches('/').to_owned();
            if trimmed.is_empty() {
                self.error(
                    at("lineage"),
                    "is empty; write the certbot lineage name or directory",
                );
                None
            } else {
                Some(trimmed)
            }
        });
        let mut domains = Vec::new();
        for (j, domain) in raw.domains.iter().enumerate() {
            match dns_name(domain, true) {
                Ok(d) => domains.push(d),
                Err(message) => self.error(kpath!["service", i, "domains", j], message),
            }
        }
        if lineage.is_none() && domains.is_empty() {
            self.warn(
                kpath!["service", i],
                "has neither `lineage` nor `domains`, so no ACME hook will find it (only `--service`)",
            );
        }

        let endpoints = self.endpoints(i, raw.endpoints);

        let chain_files = self.chain_files(i, raw.chain_file, raw.chain_files);
        let split_files = self.split_files(
            i,
            &chain_files,
            raw.cert_file,
            raw.key_file,
            raw.fullchain_file,
        );
        let reload = match raw.reload {
            None => vec![DEFAULT_RELOAD.iter().map(|s| (*s).to_owned()).collect()],
            Some(RawReload::One(command)) => {
                self.command(at("reload"), command).into_iter().collect()
            }
            Some(RawReload::Many(commands)) => {
                if commands.is_empty() {
                    self.error(
                        at("reload"),
                        "is an empty list; give one command or a list of commands, e.g. \
                         [[\"postfix\", \"reload\"], [\"doveadm\", \"reload\"]]",
                    );
                }
                commands
                    .into_iter()
                    .enumerate()
                    .filter_map(|(j, c)| self.command(kpath!["service", i, "reload", j], c))
                    .collect()
            }
        };

        let key_file = self.key_file(&at, raw.key_mode, raw.key_group);

        let ttl = match raw.ttl {
            None => DEFAULT_TTL,
            Some(ttl) => match u32::try_from(ttl) {
                Ok(t) if (1..=MAX_TTL).contains(&t) => {
                    if !ADVISED_TTL.contains(&t) {
                        self.warn(
                            at("ttl"),
                            format!(
                                "{t} is outside the advised {}–{} seconds: shorter loads resolvers and \
                                 leaves senders exposed to outages, longer slows every rollover (each waits 2×TTL)",
                                ADVISED_TTL.start(),
                                ADVISED_TTL.end()
                            ),
                        );
                    }
                    t
                }
                _ => {
                    self.error(
                        at("ttl"),
                        format!("{ttl} is not a TTL (1 to {MAX_TTL} seconds; 1800–3600 advised)"),
                    );
                    DEFAULT_TTL
                }
            },
        };

        let zone = raw.zone.and_then(|z| match dns_name(&z, false) {
            Ok(zone) => Some(zone),
            Err(message) => {
                self.error(at("zone"), message);
                None
            }
        });
        if let Some(zone) = &zone {
            for endpoint in endpoints.iter().filter(|e| !in_zone(&e.host, zone)) {
                self.error(
                    at("zone"),
                    format!(
                        "endpoint host {} is not in zone {zone}, so {} cannot be published there",
                        endpoint.host,
                        endpoint.owner_name()
                    ),
                );
            }
        }

        let known = || {
            if providers.is_empty() {
                "no [provider.NAME] is defined".to_owned()
            } else {
                let names: Vec<String> = providers.keys().map(|k| format!("`{k}`")).collect();
                format!("expected one of {}", names.join(", "))
            }
        };
        let provider = match raw.provider {
            Some(p) if providers.contains_key(&p) => p,
            Some(p) => {
                let message = with_suggestion(&format!("unknown field `{p}`, {}", known()))
                    .replacen("unknown field", "there is no [provider.NAME] named", 1);
                self.error(at("provider"), message);
                p
            }
            None if providers.len() == 1 => providers.keys().next().cloned().unwrap_or_default(),
            None => {
                self.error(
                    kpath!["service", i],
                    format!(
                        "needs `provider`, the name of a [provider.NAME] table ({})",
                        known()
                    ),
                );
                String::new()
            }
        };

        let max_records = self.max_records(at("max-records"), raw.max_records, check.max_records);
        let acme_source = raw.acme_source.map(|files| match files {
            AcmeFiles::AcmeSh {
                key_file,
                fullchain_file,
            } => AcmeFiles::AcmeSh {
                key_file: self.file_path(kpath!["service", i, "acme-source", "key-file"], key_file),
                fullchain_file: self.file_path(
                    kpath!["service", i, "acme-source", "fullchain-file"],
                    fullchain_file,
                ),
            },
            AcmeFiles::Certbot { dir } => AcmeFiles::Certbot {
                dir: self.file_path(kpath!["service", i, "acme-source", "dir"], dir),
            },
            AcmeFiles::Dehydrated { dir } => AcmeFiles::Dehydrated {
                dir: self.file_path(kpath!["service", i, "acme-source", "dir"], dir),
            },
            AcmeFiles::None => AcmeFiles::None,
        });

        let scheme = raw.scheme.unwrap_or(Scheme::CurrentNext);
        if scheme == Scheme::CurrentIssuer {
            self.warn(
                at("scheme"),
                "\"current+issuer\" publishes 2 1 1 of the CA's intermediate: CAs rotate their \
                 intermediates (Let's Encrypt changed its own in 2024 and 2026), and a \
                 certificate from another one, installed without dane-roll, matches only by its \
                 3 1 1. dane-roll follows the issuer at each renewal (name the CA's other \
                 intermediates in `issuer-ahead-file`), but \"current+next\" (3 1 1 of the \
                 current and the next key) does not depend on the CA at all",
            );
        }
        let issuer_ahead_file = raw.issuer_ahead_file.map(|path| {
            if scheme != Scheme::CurrentIssuer {
                self.error(
                    at("issuer-ahead-file"),
                    "works only with scheme = \"current+issuer\" (it names intermediates whose \
                     2 1 1 records are published ahead); remove it or change the scheme",
                );
            }
            self.file_path(at("issuer-ahead-file"), path)
        });

        if self.errors.len() > errors_before {
            return None;
        }
        Some(Service {
            name: raw.name,
            lineage,
            domains,
            endpoints,
            scheme,
            chain_files,
            split_files,
            reload,
            key_file,
            ttl,
            zone,
            provider,
            key_type: raw.key_type,
            max_records,
            acme_source,
            issuer_ahead_file,
        })
    }

    /// `chain-file` (one certificate) or `chain-files` (one per key algorithm): exactly one.
    fn chain_files(
        &mut self,
        i: usize,
        one: Option<PathBuf>,
        per_algorithm: Option<BTreeMap<String, PathBuf>>,
    ) -> ChainFiles {
        match (one, per_algorithm) {
            (Some(path), None) => {
                ChainFiles::One(self.file_path(kpath!["service", i, "chain-file"], path))
            }
            (one, Some(map)) => {
                if one.is_some() {
                    self.error(
                        kpath!["service", i, "chain-files"],
                        "set either `chain-file` (one certificate) or `chain-files` (one per key \
                         algorithm), not both",
                    );
                }
                if map.is_empty() {
                    self.error(
                        kpath!["service", i, "chain-files"],
                        "is empty; give a file per key algorithm, e.g. \
                         { rsa = \"/etc/postfix/rsa.pem\", ec = \"/etc/postfix/ec.pem\" }",
                    );
                }
                let mut out = BTreeMap::new();
                for (algorithm, path) in map {
                    let at = kpath!["service", i, "chain-files", &algorithm];
                    if !ChainFiles::ALGORITHMS.contains(&algorithm.as_str()) {
                        self.error(
                            at,
                            format!(
                                "unknown key algorithm `{algorithm}`; use {}",
                                ChainFiles::ALGORITHMS.join(", ")
                            ),
                        );
                        continue;
                    }
                    let path = self.file_path(at, path);
                    out.insert(algorithm, path);
                }
                ChainFiles::PerAlgorithm(out)
            }
            (None, None) => {
                self.error(
                    kpath!["service", i],
                    "has no `chain-file`: the file the service reads its key and chain from \
                     (for Postfix, its smtpd_tls_chain_files), where dane-roll installs; or \
                     `chain-files` with one file per key algorithm",
                );
                ChainFiles::One(PathBuf::new())
            }
        }
    }

    /// `cert-file`, `key-file`, `fullchain-file`: only beside one `chain-file` (with
    /// `chain-files` there is a certificate per algorithm, and these name one file each).
    fn split_files(
        &mut self,
        i: usize,
        chain_files: &ChainFiles,
        cert: Option<PathBuf>,
        key: Option<PathBuf>,
        fullchain: Option<PathBuf>,
    ) -> SplitFiles {
        let mut files = SplitFiles::default();
        for (name, path, slot) in [
            ("cert-file", cert, &mut files.cert),
            ("key-file", key, &mut files.key),
            ("fullchain-file", fullchain, &mut files.fullchain),
        ] {
            let Some(path) = path else { continue };
            if matches!(chain_files, ChainFiles::PerAlgorithm(_)) {
                self.error(
                    kpath!["service", i, name],
                    "works only with one `chain-file`, not with `chain-files` (one certificate \
                     per algorithm); use a service per certificate",
                );
                continue;
            }
            let path = self.file_path(kpath!["service", i, name], path);
            if chain_files.all().iter().any(|(_, c)| *c == path) {
                self.error(
                    kpath!["service", i, name],
                    format!(
                        "is the same file as `chain-file` ({}); name another file",
                        path.display()
                    ),
                );
                continue;
            }
            *slot = Some(path);
        }
        let all = files.all();
        for (j, (name, path)) in all.iter().enumerate() {
            if all[..j].iter().any(|(_, p)| p == path) {
                self.error(
                    kpath!["service", i, *name],
                    format!(
                        "names {} a second time; each output needs its own file",
                        path.display()
                    ),
                );
            }
        }
        files
    }

    /// `key-mode` (octal, at most 0640: the key+chain file holds a private key) and `key-group`
    /// (a group name or number known to this system).
    fn key_file(
        &mut self,
        at: &dyn Fn(&str) -> Vec<Seg>,
        mode: Option<String>,
        group: Option<String>,
    ) -> crate::fsafe::FileMode {
        let mut file = crate::fsafe::FileMode::PRIVATE;
        if let Some(text) = mode {
            let digits = text.strip_prefix("0o").unwrap_or(&text);
            match u32::from_str_radix(digits, 8) {
                Ok(m) if digits.len() <= 4 && m & !0o640 == 0 && m & 0o600 == 0o600 => {
                    file.mode = m;
                }
                Ok(_) if digits.len() <= 4 => self.error(
                    at("key-mode"),
                    format!(
                        "{text:?} is not a mode for a private key: the owner reads and writes it \
                         (0600), and at most its group may read it too (0640, with `key-group`)"
                    ),
                ),
                _ => self.error(
                    at("key-mode"),
                    format!("{text:?} is not an octal mode; write it as a string such as \"0640\""),
                ),
            }
        }
        if let Some(name) = group {
            match crate::fsafe::group_id(&name) {
                Some(gid) => file.group = Some(gid),
                None => self.error(
                    at("key-group"),
                    format!("there is no group {name:?} on this system; create it or fix the name"),
                ),
            }
        }
        file
    }
}
