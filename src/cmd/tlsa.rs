//! `dane-roll tlsa`: records from certificates, chains and keys, printed as RDATA, zone-file
//! lines, nsupdate commands or JSON, with lints on standard error.

use std::path::Path;

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::cli::{TlsaArgs, TlsaFormat};
use crate::exit::Status;
use crate::pki::{self, KeyKind, Material, PkiError};
use crate::tlsa::{Lint, Matching, OwnerName, Selector, Subject, TlsaRecord, Usage};

/// Where a record came from, for JSON.
pub(crate) struct Source<'a> {
    pub(crate) file: &'a Path,
    subject: Option<String>,
    key_type: String,
    kind: &'static str,
}

/// One computed record and its origin.
pub(crate) struct Computed<'a> {
    pub(crate) record: TlsaRecord,
    pub(crate) source: Source<'a>,
    pub(crate) lints: Vec<Lint>,
}

/// Compute and print the records for the given files.
pub(super) fn run(cli: &crate::cli::Cli, args: &TlsaArgs) -> anyhow::Result<Status> {
    let usage = Usage::try_from(args.usage)?;
    let selector = Selector::try_from(args.selector)?;
    let matching = Matching::try_from(args.mtype)?;
    let owner = match (&args.host, args.format) {
        (Some(host), _) => Some(OwnerName::for_endpoint(&check_host(host)?, args.port)),
        (None, TlsaFormat::Rr | TlsaFormat::Nsupdate) => bail!(
            "--format {} needs --host: the host name the records are for (the MX host)",
            if args.format == TlsaFormat::Rr {
                "rr"
            } else {
                "nsupdate"
            }
        ),
        (None, _) => None,
    };

    let materials = args
        .files
        .iter()
        .map(|path| pki::load(path))
        .collect::<Result<Vec<_>, _>>()?;
    let computed = compute(&materials, usage, selector, matching, args.port)?;

    let mut warned: Vec<String> = Vec::new();
    for lint in computed.iter().flat_map(|c| &c.lints) {
        let text = lint.to_string();
        if !warned.contains(&text) {
            eprintln!("dane-roll: warning: {text}");
            warned.push(text);
        }
    }

    let mut out = String::new();
    match args.format {
        TlsaFormat::Rdata => {
            for c in &computed {
                out.push_str(&format!("{}\n", c.record));
            }
        }
        TlsaFormat::Rr | TlsaFormat::Nsupdate => {
            let nsupdate = args.format == TlsaFormat::Nsupdate;
            if nsupdate {
                let (server, zone) = nsupdate_target(cli, args, owner.as_ref())?;
                if let Some((host, port)) = server {
                    out.push_str(&format!("server {host} {port}\n"));
                }
                if let Some(zone) = zone {
                    out.push_str(&format!("zone {zone}.\n"));
                }
            }
            let owner = owner.as_ref().map_or("", OwnerName::as_str);
            let prefix = if nsupdate { "update add " } else { "" };
            for c in &computed {
                out.push_str(&format!(
                    "{prefix}{owner} {} IN TLSA {}\n",
                    args.ttl, c.record
                ));
            }
            if nsupdate {
                out.push_str("send\n");
            }
        }
        TlsaFormat::Json => {
            let items: Vec<Value> = computed
                .iter()
                .map(|c| to_json(c, owner.as_ref().map(OwnerName::as_str), args.ttl))
                .collect();
            out = serde_json::to_string_pretty(&items)?;
            out.push('\n');
        }
    }
    print!("{out}");
    Ok(Status::Ok)
}

/// The distinct records for loaded files, with their origin and lints, as `dane-roll tlsa` and
/// `dane-roll publish` compute them: keys must belong to a given certificate, identical records
/// (a key and its certificate, a CA in two chains) count once, and a fatal lint is an error.
pub(crate) fn compute<'a>(
    materials: &'a [Material],
    usage: Usage,
    selector: Selector,
    matching: Matching,
    port: u16,
) -> anyhow::Result<Vec<Computed<'a>>> {
    check_keys_match(materials)?;

    let mut computed: Vec<Computed<'_>> = Vec::new();
    for material in materials {
        for (subject, source) in subjects(material, usage, selector, materials)? {
            let record = TlsaRecord::compute(usage, selector, matching, &subject)
                .with_context(|| material.path().display().to_string())?;
            if computed.iter().any(|c| c.record == record) {
                continue;
            }
            let mut lints = record.lints(port);
            // A DANE-TA record pins a CA certificate: an intermediate the CA may rotate, or a
            // root (see `Lint::for_trust_anchor`).
            if usage == Usage::DaneTa
                && let Subject::Certificate(ca) = &subject
            {
                lints.push(Lint::for_trust_anchor(ca));
            }
            computed.push(Computed {
                record,
                source,
                lints,
            });
        }
    }

    if let Some(fatal) = computed
        .iter()
        .find_map(|c| c.lints.iter().find(|l| l.is_fatal()).map(|l| (c, l)))
    {
        bail!("{}: {}", fatal.0.source.file.display(), fatal.1);
    }
    Ok(computed)
}

/// An nsupdate `server`: host and port.
type Server = (String, u16);

/// The `server` and `zone` of an nsupdate script: `--server` and `--zone`, else what the
/// configuration says of the service with the owner name `owner` (an `rfc2136` provider's
/// server; the service's or the provider's zone). A configuration that is missing or does not
/// load only leaves them out: `tlsa` works without one.
fn nsupdate_target(
    cli: &crate::cli::Cli,
    args: &TlsaArgs,
    owner: Option<&OwnerName>,
) -> anyhow::Result<(Option<Server>, Option<String>)> {
    let mut server = args.server.as_deref().map(server_arg).transpose()?;
    let mut zone = args
        .zone
        .as_deref()
        .map(|z| {
            check_host(z).map_err(|_| {
                anyhow::anyhow!("--zone '{z}' is not a zone name: give the zone, e.g. example.com")
            })
        })
        .transpose()?;
    if server.is_some() && zone.is_some() {
        return Ok((server, zone.map(|z| z.to_ascii_lowercase())));
    }
    let config = match crate::config::Config::load(&cli.config) {
        Ok(config) => config,
        Err(err) => {
            tracing::debug!("no server or zone from the configuration: {err}");
            return Ok((server, zone.map(|z| z.to_ascii_lowercase())));
        }
    };
    let service = config
        .services
        .iter()
        .find(|s| s.endpoints.iter().any(|e| Some(&e.owner_name()) == owner));
    if let Some(service) = service
        && let Some(provider) = config.providers.get(&service.provider)
        && let crate::config::ProviderKind::Rfc2136 {
            server: configured,
            zone: provider_zone,
            ..
        } = &provider.kind
    {
        server.get_or_insert_with(|| (configured.host.clone(), configured.port));
        if zone.is_none() {
            zone = service.zone.clone().or_else(|| provider_zone.clone());
        }
    }
    Ok((
        server,
        zone.map(|z| z.trim_end_matches('.').to_ascii_lowercase()),
    ))
}

/// `--server HOST[:PORT]` (an IPv6 address in brackets when a port follows): an address or a
/// host name, never anything that could add a line to the script.
fn server_arg(text: &str) -> anyhow::Result<(String, u16)> {
    use std::net::{IpAddr, SocketAddr};
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok((addr.ip().to_string(), addr.port()));
    }
    if let Ok(ip) = text.trim_matches(['[', ']']).parse::<IpAddr>() {
        return Ok((ip.to_string(), 53));
    }
    let (host, port) = match text.rsplit_once(':') {
        Some((host, port)) => match port.parse::<u16>() {
            Ok(port) if port > 0 => (host, port),
            _ => bail!("--server '{text}': the port must be a number from 1 to 65535"),
        },
        None => (text, 53),
    };
    let host = check_host(host).map_err(|_| {
        anyhow::anyhow!(
            "--server '{text}' is not HOST[:PORT]: give the primary server's address or name, \
             e.g. 192.0.2.53 or ns1.example.com:53"
        )
    })?;
    Ok((host, port))
}

/// The host must be a plausible DNS name: it goes into a zone file or an nsupdate script.
fn check_host(host: &str) -> anyhow::Result<String> {
    let trimmed = host.trim_end_matches('.');
    let valid = !trimmed.is_empty()
        && trimmed.len() <= 253
        && trimmed.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    if !valid {
        bail!("--host '{host}' is not a host name: give the MX host, e.g. mail.example.com");
    }
    Ok(trimmed.to_string())
}

/// Every key must belong to the leaf certificate of some file, when certificates are given.
fn check_keys_match(materials: &[Material]) -> anyhow::Result<()> {
    let leaves: Vec<(&Path, &openssl::x509::X509Ref)> = materials
        .iter()
        .filter_map(|m| m.leaf().map(|leaf| (m.path(), leaf)))
        .collect();
    let Some(&(first_path, first_leaf)) = leaves.first() else {
        return Ok(());
    };
    for material in materials {
        let Some(key) = material.key() else { continue };
        let mut matched = false;
        for (_, leaf) in &leaves {
            if pki::cert_matches_key(leaf, key.public_key())? {
                matched = true;
                break;
            }
        }
        if !matched {
            return Err(PkiError::KeyMismatch {
                key: material.path().to_path_buf(),
                cert: first_path.to_path_buf(),
                subject: pki::subject_line(first_leaf),
            }
            .into());
        }
    }
    Ok(())
}

/// What the records of one file are computed from.
///
/// End-entity usages (3, 1) take the leaf, or the key when there is no certificate; a key that
/// belongs to a certificate given elsewhere adds nothing. Trust-anchor usages (2, 0) take every
/// CA certificate, never the leaf, and refuse a bare key: whose key it is cannot be told.
fn subjects<'a>(
    material: &'a Material,
    usage: Usage,
    selector: Selector,
    all: &'a [Material],
) -> anyhow::Result<Vec<(Subject<'a>, Source<'a>)>> {
    let file = material.path();
    let cert_source = |cert: &openssl::x509::X509Ref| -> anyhow::Result<Source<'a>> {
        Ok(Source {
            file,
            subject: Some(pki::subject_line(cert)),
            key_type: pki::key_type(&*cert.public_key()?).to_string(),
            kind: "certificate",
        })
    };
    // A key whose certificate is given in another file adds nothing: the certificate stands for it.
    let key_of_given_cert = material.certificates().is_empty()
        && material.key().is_some_and(|key| {
            all.iter()
                .filter_map(Material::leaf)
                .any(|leaf| pki::cert_matches_key(leaf, key.public_key()).unwrap_or(false))
        });
    if key_of_given_cert {
        return Ok(Vec::new());
    }
    if usage.is_trust_anchor() {
        let cas: Vec<_> = material.ca_certificates().collect();
        if cas.is_empty() {
            if material.certificates().is_empty() {
                bail!(
                    "{}: holds a key but no certificate; usage {usage} ({}) needs the CA \
                     certificate: pass the chain (e.g. fullchain.pem) or the issuer certificate",
                    file.display(),
                    usage.acronym()
                );
            }
            bail!(
                "{}: holds no CA certificate, only the server's own (leaf) certificate; usage \
                 {usage} ({}) needs the issuer: pass the chain (e.g. fullchain.pem) or the \
                 issuer certificate, or use --usage 3",
                file.display(),
                usage.acronym()
            );
        }
        return cas
            .into_iter()
            .map(|ca| Ok((Subject::Certificate(ca), cert_source(ca)?)))
            .collect();
    }
    if let Some(leaf) = material.leaf() {
        return Ok(vec![(Subject::Certificate(leaf), cert_source(leaf)?)]);
    }
    let Some(key) = material.key() else {
        return Ok(Vec::new());
    };
    if selector == Selector::Cert {
        bail!(
            "{}: {}",
            file.display(),
            crate::tlsa::TlsaError::SelectorNeedsCertificate
        );
    }
    Ok(vec![(
        Subject::PublicKey(key.public_key()),
        Source {
            file,
            subject: None,
            key_type: key.key_type().to_string(),
            kind: match key.kind() {
                KeyKind::Private => "private key",
                KeyKind::Public => "public key",
            },
        },
    )])
}

fn to_json(c: &Computed<'_>, owner: Option<&str>, ttl: u32) -> Value {
    let mut item = json!({
        "usage": u8::from(c.record.usage),
        "selector": u8::from(c.record.selector),
        "matching_type": u8::from(c.record.matching),
        "data": c.record.data_hex(),
        "rdata": c.record.to_string(),
        "ttl": ttl,
        "source": {
            "file": c.source.file.display().to_string(),
            "kind": c.source.kind,
            "key_type": c.source.key_type,
        },
        "lints": c.lints.iter().map(|l| json!({
            "code": l.code(),
            "fatal": l.is_fatal(),
            "message": l.to_string(),
        })).collect::<Vec<_>>(),
    });
    if let Some(owner) = owner {
        item["owner"] = json!(owner);
    }
    if let Some(subject) = &c.source.subject {
        item["source"]["subject"] = json!(subject);
    }
    item
}
