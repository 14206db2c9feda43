//! The second step of loading: the raw serde spec ([`super::raw`]) checked and turned into the runtime
//! [`Config`], with defaults filled in. Every error found is collected (not just the first), each
//! located in the file and naming its service or provider and key. Nothing here touches the file
//! system except through the `system_resolver` callback: files and secrets are checked by
//! [`super::environment`].

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::alerts::{
    Alerts, Channel, CheckSettings, DEFAULT_SENDMAIL, DEFAULT_TELEGRAM_API_URL, MailVia, WebhookUrl,
};
use super::duration::parse_duration;
use super::endpoint::{Endpoint, Protocol, dns_name, in_zone, port_from_int};
use super::error::Problem;
use super::provider::{DEFAULT_POWERDNS_SERVER_ID, Provider, ProviderKind, Tsig, parse_server};
use super::raw::{RawChannel, RawConfig, RawDuration, RawEndpoint, RawProvider, RawService};
use super::resolver::{
    DEFAULT_RESOLVER_TIMEOUT, DNS_PORT, RESOLV_CONF, ResolverOrigin, ResolverSettings,
    parse_socket_addr,
};
use super::secret::is_env_name;
use super::source::{Seg, Source, kpath, with_suggestion};
use super::{
    ADVISED_TTL, AcmeFiles, CONFIG_VERSION, ChainFiles, Config, DEFAULT_RELOAD, DEFAULT_STATE_DIR,
    DEFAULT_TTL, MAX_TTL, MIN_MAX_RECORDS, Scheme, Secret, Service,
};

/// The port an SMTP alert server uses when none is given (submission).
const DEFAULT_ALERT_SMTP_PORT: u16 = 587;

/// Check `raw` and build the runtime configuration, or return every error found.
pub(super) fn build(
    raw: RawConfig,
    src: &Source<'_>,
    base_dir: Option<&Path>,
    system_resolver: impl FnOnce() -> Option<SocketAddr>,
) -> Result<Config, Vec<Problem>> {
    let mut b = Builder {
        src,
        base_dir,
        errors: Vec::new(),
        warnings: Vec::new(),
    };

    let version = match raw.version {
        None => CONFIG_VERSION,
        Some(v) if v == i64::from(CONFIG_VERSION) => CONFIG_VERSION,
        Some(v) => {
            b.error(
                kpath!["version"],
                format!(
                    "version {v} is not supported; this dane-roll reads version {CONFIG_VERSION}"
                ),
            );
            CONFIG_VERSION
        }
    };
    let state_dir = match raw.state_dir {
        Some(dir) => b.file_path(kpath!["state-dir"], dir),
        None => PathBuf::from(DEFAULT_STATE_DIR),
    };
    let resolver = b.resolver(raw.resolver, system_resolver);
    let check = b.check(raw.check);
    let providers = b.providers(raw.providers);
    let services = b.services(raw.services, &providers, &check);
    let alerts = b.alerts(raw.alerts);

    let used: HashSet<&str> = services.iter().map(|s| s.provider.as_str()).collect();
    for name in providers
        .keys()
        .filter(|name| !used.contains(name.as_str()))
    {
        b.warn(kpath!["provider", name], "is not used by any service");
    }
    if services.is_empty() {
        b.warn(
            Vec::new(),
            "no [[service]] is configured; rollovers and monitoring need at least one",
        );
    }

    if !b.errors.is_empty() {
        sort(&mut b.errors);
        return Err(b.errors);
    }
    sort(&mut b.warnings);
    Ok(Config {
        file: src.name.to_owned(),
        version,
        state_dir,
        resolver,
        services,
        providers,
        alerts,
        check,
        warnings: b.warnings,
        text: src.text().to_owned(),
    })
}

/// Problems in file order (those without a location last, in the order found).
fn sort(problems: &mut [Problem]) {
    problems.sort_by_key(|p| p.location.map_or((usize::MAX, 0), |l| (l.line, l.column)));
}

struct Builder<'s, 'a> {
    src: &'s Source<'a>,
    base_dir: Option<&'s Path>,
    errors: Vec<Problem>,
    warnings: Vec<Problem>,
}

impl Builder<'_, '_> {
    fn error(&mut self, at: Vec<Seg>, message: impl Into<String>) {
        self.errors.push(self.src.problem(&at, message));
    }

    fn warn(&mut self, at: Vec<Seg>, message: impl Into<String>) {
        self.warnings.push(self.src.problem(&at, message));
    }

    /// A path from the file: relative paths are taken from the configuration file's directory.
    fn file_path(&mut self, at: Vec<Seg>, path: PathBuf) -> PathBuf {
        if path.as_os_str().is_empty() {
            self.error(at, "is empty; write a path");
            return path;
        }
        match self.base_dir {
            Some(base) if path.is_relative() => base.join(path),
            _ => path,
        }
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

    fn duration(&mut self, at: Vec<Seg>, raw: Option<RawDuration>, default: Duration) -> Duration {
        let parsed = match raw {
            None => return default,
            Some(RawDuration::Seconds(secs)) => u64::try_from(secs)
                .map(Duration::from_secs)
                .map_err(|_| format!("{secs} is negative; write a duration such as \"30s\"")),
            Some(RawDuration::Text(text)) => parse_duration(&text),
        };
        match parsed {
            Ok(d) if d.is_zero() => {
                self.error(at, "must be longer than zero");
                default
            }
            Ok(d) => d,
            Err(message) => {
                self.error(at, message);
                default
            }
        }
    }

    /// A secret named by `FILE_KEY` or `ENV_KEY` in the table at `table`.
    fn secret(
        &mut self,
        table: &[Seg],
        (file_key, env_key): (&str, &str),
        file: Option<PathBuf>,
        env: Option<String>,
        required: bool,
    ) -> Option<Secret> {
        let at = |key: &str| {
            let mut p = table.to_vec();
            p.push(Seg::from(key));
            p
        };
        match (file, env) {
            (Some(_), Some(_)) => {
                self.error(
                    at(env_key),
                    format!("give either `{file_key}` or `{env_key}`, not both"),
                );
                None
            }
            (Some(file), None) => {
                let file = self.file_path(at(file_key), file);
                Some(Secret::from_file(file))
            }
            (None, Some(name)) => {
                if is_env_name(&name) {
                    Some(Secret::from_env(name))
                } else {
                    self.error(
                        at(env_key),
                        "is not an environment variable name ([A-Za-z_][A-Za-z0-9_]*); it takes the \
                         name of the variable that holds the secret, not the secret (the value is not shown)",
                    );
                    None
                }
            }
            (None, None) => {
                if required {
                    self.error(
                        table.to_vec(),
                        format!(
                            "needs `{file_key}` (a file holding the secret) or `{env_key}` (an \
                             environment variable holding it)"
                        ),
                    );
                }
                None
            }
        }
    }

    fn resolver(
        &mut self,
        raw: super::raw::RawResolver,
        system_resolver: impl FnOnce() -> Option<SocketAddr>,
    ) -> ResolverSettings {
        let fallback = SocketAddr::from(([127, 0, 0, 1], DNS_PORT));
        let (address, origin) = match raw.address {
            Some(text) => match parse_socket_addr(&text, DNS_PORT) {
                Ok(addr) => (addr, ResolverOrigin::Configured),
                Err(message) => {
                    self.error(kpath!["resolver", "address"], message);
                    (fallback, ResolverOrigin::Configured)
                }
            },
            None => match system_resolver() {
                Some(addr) => (addr, ResolverOrigin::System),
                None => {
                    self.error(
                        kpath!["resolver"],
                        format!(
                            "no `address` given, and {RESOLV_CONF} names no usable nameserver; set \
                             [resolver] address = \"127.0.0.1\" (a validating resolver)"
                        ),
                    );
                    (fallback, ResolverOrigin::System)
                }
            },
        };
        let timeout = self.duration(
            kpath!["resolver", "timeout"],
            raw.timeout,
            DEFAULT_RESOLVER_TIMEOUT,
        );
        let trust_anchor = raw
            .trust_anchor
            .map(|p| self.file_path(kpath!["resolver", "trust-anchor"], p));
        let settings = ResolverSettings {
            address,
            origin,
            timeout,
            trust_anchor,
        };
        if origin == ResolverOrigin::System && settings.is_systemd_stub() {
            self.warn(
                kpath!["resolver"],
                format!(
                    "the system resolver {address} is systemd-resolved's stub, which validates DNSSEC \
                     only with DNSSEC=yes; name a validating resolver with `address`"
                ),
            );
        }
        settings
    }

    fn check(&mut self, raw: super::raw::RawCheck) -> CheckSettings {
        let defaults = CheckSettings::default();
        let mut days = |key: &str, value: Option<i64>, default: u32| match value {
            None => default,
            Some(v) => u32::try_from(v).unwrap_or_else(|_| {
                self.error(
                    kpath!["check", key],
                    format!("{v} is not a number of days (0 or more)"),
                );
                default
            }),
        };
        let rrsig_warn_days = days(
            "rrsig-warn-days",
            raw.rrsig_warn_days,
            defaults.rrsig_warn_days,
        );
        let cert_warn_days = days(
            "cert-warn-days",
            raw.cert_warn_days,
            defaults.cert_warn_days,
        );
        let max_records = self.max_records(
            kpath!["check", "max-records"],
            raw.max_records,
            defaults.max_records,
        );
        CheckSettings {
            rrsig_warn_days,
            cert_warn_days,
            max_records,
        }
    }

    fn max_records(&mut self, at: Vec<Seg>, value: Option<i64>, default: usize) -> usize {
        match value {
            None => default,
            Some(v) => match usize::try_from(v) {
                Ok(n) if n >= MIN_MAX_RECORDS => n,
                _ => {
                    self.error(
                        at,
                        format!(
                            "{v} is too small; a rollover needs room for at least {MIN_MAX_RECORDS} \
                             records (current and next)"
                        ),
                    );
                    default
                }
            },
        }
    }

    fn name(&mut self, at: Vec<Seg>, what: &str, name: &str) {
        let ok = !name.is_empty()
            && name.chars().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-')
            });
        if !ok {
            self.error(
                at,
                format!("{what} name \"{name}\" may only use a-z, 0-9, '.', '_' and '-'"),
            );
        }
    }

    fn providers(&mut self, raw: BTreeMap<String, RawProvider>) -> BTreeMap<String, Provider> {
        let mut providers = BTreeMap::new();
        for (name, raw) in raw {
            let table = kpath!["provider", &name];
            self.name(table.clone(), "a provider", &name);
            let at = |key: &str| {
                let mut p = table.clone();
                p.push(Seg::from(key));
                p
            };
            let kind = match raw {
                RawProvider::Rfc2136 {
                    server,
                    tsig_key_file,
                    tsig_env,
                    zone,
                } => {
                    let server = parse_server(&server, DNS_PORT)
                        .map_err(|message| self.error(at("server"), message))
                        .ok();
                    let tsig = match (tsig_key_file, tsig_env) {
                        (None, None) => {
                            self.warn(
                                table.clone(),
                                "has no TSIG key (`tsig-key-file` or `tsig-env`): updates go unsigned, \
                                 which works only where the server allows updates by address",
                            );
                            None
                        }
                        (file, env) => {
                            let is_file = file.is_some();
                            self.secret(&table, ("tsig-key-file", "tsig-env"), file, env, true)
                                .map(|s| {
                                    if is_file {
                                        Tsig::KeyFile(s)
                                    } else {
                                        Tsig::Env(s)
                                    }
                                })
                        }
                    };
                    let zone = zone.and_then(|z| {
                        dns_name(&z, false)
                            .map_err(|message| self.error(at("zone"), message))
                            .ok()
                    });
                    server.map(|server| ProviderKind::Rfc2136 { server, tsig, zone })
                }
                RawProvider::Cloudflare {
                    token_file,
                    token_env,
                    zone_id,
                } => {
                    let token = self.secret(
                        &table,
                        ("token-file", "token-env"),
                        token_file,
                        token_env,
                        true,
                    );
                    if zone_id.as_deref().is_some_and(|z| z.trim().is_empty()) {
                        self.error(
                            at("zone-id"),
                            "is empty; remove it to look the zone up by name",
                        );
                    }
                    token.map(|token| ProviderKind::Cloudflare { token, zone_id })
                }
                RawProvider::Powerdns {
                    url,
                    api_key_file,
                    api_key_env,
                    server_id,
                } => {
                    let url = self.url(at("url"), url);
                    let api_key = self.secret(
                        &table,
                        ("api-key-file", "api-key-env"),
                        api_key_file,
                        api_key_env,
                        true,
                    );
                    let server_id =
                        server_id.unwrap_or_else(|| DEFAULT_POWERDNS_SERVER_ID.to_owned());
                    match (url, api_key) {
                        (Some(url), Some(api_key)) => Some(ProviderKind::PowerDns {
                            url,
                            api_key,
                            server_id,
                        }),
                        _ => None,
                    }
                }
                RawProvider::Desec {
                    token_file,
                    token_env,
                } => self
                    .secret(
                        &table,
                        ("token-file", "token-env"),
                        token_file,
                        token_env,
                        true,
                    )
                    .map(|token| ProviderKind::Desec { token }),
                RawProvider::Exec { command } => self
                    .command(at("command"), command)
                    .map(|command| ProviderKind::Exec { command }),
                RawProvider::Manual {} => Some(ProviderKind::Manual),
            };
            if let Some(kind) = kind {
                providers.insert(name.clone(), Provider { name, kind });
            }
        }
        providers
    }

    fn url(&mut self, at: Vec<Seg>, url: String) -> Option<String> {
        let ok = ["http://", "https://"].iter().any(|scheme| {
            url.strip_prefix(scheme)
                .is_some_and(|rest| !rest.is_empty())
        });
        if ok {
            Some(url)
        } else {
            self.error(at, "is not an http:// or https:// URL");
            None
        }
    }

    fn command(&mut self, at: Vec<Seg>, command: Vec<String>) -> Option<Vec<String>> {
        match command.first() {
            None => {
                self.error(at, "is empty; give the program and its arguments as a list");
                None
            }
            Some(program) if program.trim().is_empty() => {
                self.error(at, "starts with an empty program name");
                None
            }
            Some(_) => Some(command),
        }
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

    fn services(
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

        let mut endpoints: Vec<Endpoint> = Vec::new();
        if raw.endpoints.is_empty() {
            self.error(
                at("endpoints"),
                "is empty; list at least one endpoint such as \"mail.example.com:25/smtp\"",
            );
        }
        for (j, endpoint) in raw.endpoints.into_iter().enumerate() {
            let here = kpath!["service", i, "endpoints", j];
            let built = match endpoint {
                RawEndpoint::Short(text) => Endpoint::parse_short(&text),
                RawEndpoint::Table(t) => match t.port.map(port_from_int).transpose() {
                    Ok(port) => Endpoint::new(&t.host, port, t.protocol),
                    Err(message) => {
                        self.error(kpath!["service", i, "endpoints", j, "port"], message);
                        continue;
                    }
                },
            };
            match built {
                Ok(endpoint) => {
                    let usual = Protocol::default_for_port(endpoint.port);
                    let compatible = |p: Protocol| {
                        p == endpoint.protocol
                            || (p == Protocol::Smtp && endpoint.protocol == Protocol::Submission)
                    };
                    if let Some(usual) = usual.filter(|p| !compatible(*p)) {
                        self.warn(
                            here.clone(),
                            format!(
                                "port {} usually speaks {usual}, not {}",
                                endpoint.port, endpoint.protocol
                            ),
                        );
                    }
                    if endpoints
                        .iter()
                        .any(|e| e.host == endpoint.host && e.port == endpoint.port)
                    {
                        self.warn(here, format!("{endpoint} is listed twice"));
                    } else {
                        endpoints.push(endpoint);
                    }
                }
                Err(message) => self.error(here, message),
            }
        }

        let chain_files = self.chain_files(i, raw.chain_file, raw.chain_files);
        let reload = match raw.reload {
            None => DEFAULT_RELOAD.iter().map(|s| (*s).to_owned()).collect(),
            Some(command) => self.command(at("reload"), command).unwrap_or_default(),
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

        if self.errors.len() > errors_before {
            return None;
        }
        Some(Service {
            name: raw.name,
            lineage,
            domains,
            endpoints,
            scheme: raw.scheme.unwrap_or(Scheme::CurrentNext),
            chain_files,
            reload,
            key_file,
            ttl,
            zone,
            provider,
            key_type: raw.key_type,
            max_records,
            acme_source,
        })
    }

    fn alerts(&mut self, raw: super::raw::RawAlerts) -> Alerts {
        let defaults = Alerts::default();
        let repeat_interval = self.duration(
            kpath!["alerts", "repeat-interval"],
            raw.repeat_interval,
            defaults.repeat_interval,
        );
        let timeout = self.duration(kpath!["alerts", "timeout"], raw.timeout, defaults.timeout);
        let mut channels = BTreeMap::new();
        for (name, raw) in raw.channel {
            let table = kpath!["alerts", "channel", &name];
            self.name(table.clone(), "an alert channel", &name);
            let at = |key: &str| {
                let mut p = table.clone();
                p.push(Seg::from(key));
                p
            };
            let channel = match raw {
                RawChannel::Webhook {
                    url,
                    url_file,
                    url_env,
                } => match (url, url_file.is_some() || url_env.is_some()) {
                    (Some(_), true) => {
                        self.error(table.clone(), "give one of `url`, `url-file` or `url-env`");
                        None
                    }
                    (Some(url), false) => self.url(at("url"), url).map(|url| Channel::Webhook {
                        url: WebhookUrl::Plain(url),
                    }),
                    (None, _) => self
                        .secret(&table, ("url-file", "url-env"), url_file, url_env, true)
                        .map(|s| Channel::Webhook {
                            url: WebhookUrl::Secret(s),
                        }),
                },
                RawChannel::Email {
                    to,
                    from,
                    via,
                    sendmail,
                    smtp_server,
                    credentials_file,
                    credentials_env,
                    tls_ca_file,
                } => {
                    let before = self.errors.len();
                    if to.0.is_empty() {
                        self.error(at("to"), "is empty; give at least one address");
                    }
                    for (j, addr) in to.0.iter().enumerate() {
                        if !addr.contains('@') {
                            self.error(
                                kpath!["alerts", "channel", &name, "to", j],
                                format!("\"{addr}\" is not a mail address"),
                            );
                        }
                    }
                    if !from.contains('@') {
                        self.error(at("from"), format!("\"{from}\" is not a mail address"));
                    }
                    let via = via.unwrap_or_default();
                    let smtp_server = match (via, smtp_server) {
                        (MailVia::Smtp, Some(server)) => {
                            parse_server(&server, DEFAULT_ALERT_SMTP_PORT)
                                .map_err(|message| self.error(at("smtp-server"), message))
                                .ok()
                        }
                        (MailVia::Smtp, None) => {
                            self.error(table.clone(), "has via = \"smtp\" but no `smtp-server`");
                            None
                        }
                        (MailVia::Sendmail, Some(_)) => {
                            self.error(at("smtp-server"), "is used only with via = \"smtp\"");
                            None
                        }
                        (MailVia::Sendmail, None) => None,
                    };
                    let tls_ca_file = match (via, tls_ca_file) {
                        (MailVia::Smtp, Some(path)) => {
                            Some(self.file_path(at("tls-ca-file"), path))
                        }
                        (MailVia::Sendmail, Some(_)) => {
                            self.error(at("tls-ca-file"), "is used only with via = \"smtp\"");
                            None
                        }
                        (_, None) => None,
                    };
                    let sendmail = sendmail
                        .map(|p| self.file_path(at("sendmail"), p))
                        .unwrap_or_else(|| PathBuf::from(DEFAULT_SENDMAIL));
                    let credentials = self.secret(
                        &table,
                        ("credentials-file", "credentials-env"),
                        credentials_file,
                        credentials_env,
                        false,
                    );
                    (self.errors.len() == before).then_some(Channel::Email {
                        to: to.0,
                        from,
                        via,
                        sendmail,
                        smtp_server,
                        credentials,
                        tls_ca_file,
                    })
                }
                RawChannel::Telegram {
                    token_file,
                    token_env,
                    chat_id,
                    api_url,
                } => {
                    if chat_id.0.trim().is_empty() {
                        self.error(at("chat-id"), "is empty");
                    }
                    let api_url = match api_url {
                        Some(url) => self
                            .url(at("api-url"), url)
                            .map(|url| url.trim_end_matches('/').to_owned()),
                        None => Some(DEFAULT_TELEGRAM_API_URL.to_owned()),
                    };
                    let token = self.secret(
                        &table,
                        ("token-file", "token-env"),
                        token_file,
                        token_env,
                        true,
                    );
                    match (token, api_url) {
                        (Some(token), Some(api_url)) => Some(Channel::Telegram {
                            token,
                            chat_id: chat_id.0,
                            api_url,
                        }),
                        _ => None,
                    }
                }
            };
            if let Some(channel) = channel {
                channels.insert(name, channel);
            }
        }
        Alerts {
            repeat_interval,
            timeout,
            channels,
        }
    }
}
