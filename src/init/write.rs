//! The configuration `init` writes: each value with a comment saying where it came from and how
//! sure it is, written atomically and never over an existing file.
//!
//! When the provider's secret is not given (`--provider-secret-file`), the service uses the
//! `manual` provider (dane-roll prints the records to add and waits for them) and the guessed
//! provider follows, commented out: a configuration that `config check` accepts at once, rather
//! than one naming a secret file that does not exist yet.

use std::fmt::Write as _;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::InitError;
use super::classify::Role;
use super::discover::Discovery;
use super::discover::acme::Client;
use super::discover::dns::ProviderGuess;
use crate::fsafe;

/// certbot's default directory; a lineage there is written by name.
const LETSENCRYPT: &str = "/etc/letsencrypt";

/// What the configuration is written from, beside the discovery.
#[derive(Debug, Clone, Default)]
pub struct Choices {
    /// The service's name.
    pub service: String,
    /// `[resolver] address`, when given.
    pub resolver: Option<String>,
    /// `state-dir`, when given.
    pub state_dir: Option<PathBuf>,
    /// The guessed provider's secret file, when given.
    pub provider_secret_file: Option<PathBuf>,
}

/// A TOML string.
fn q(text: &str) -> String {
    toml::Value::String(text.to_owned()).to_string()
}

fn qp(path: &Path) -> String {
    q(&path.display().to_string())
}

fn list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| q(s)).collect();
    format!("[{}]", quoted.join(", "))
}

/// The service's `chain-file`: `<Postfix config dir>/dane-roll/<service>.pem`.
pub fn chain_file(d: &Discovery, service: &str) -> PathBuf {
    let dir = d
        .postfix
        .as_ref()
        .map(|p| p.config_dir.clone())
        .unwrap_or_else(|| PathBuf::from("/etc/postfix"));
    dir.join("dane-roll").join(format!("{service}.pem"))
}

/// Whether Dovecot is switched and probed with Postfix.
pub fn with_dovecot(d: &Discovery) -> bool {
    d.dovecot_same_key
        && d.dovecot
            .as_ref()
            .is_some_and(|v| v.protocols.iter().any(|p| p == "imap"))
}

/// The reload commands, in order: Postfix's, then Dovecot's when it is switched too.
pub fn reload_commands(d: &Discovery) -> Vec<Vec<String>> {
    let postfix = match d.postfix.as_ref().map(|p| &p.config_dir) {
        Some(dir) if !super::discover::postfix::is_default_dir(dir) => vec![
            "postfix".into(),
            "-c".into(),
            dir.display().to_string(),
            "reload".into(),
        ],
        _ => vec!["postfix".into(), "reload".into()],
    };
    let Some(dovecot) = d.dovecot.as_ref().filter(|_| with_dovecot(d)) else {
        return vec![postfix];
    };
    let mut doveadm = vec!["doveadm".to_owned()];
    if dovecot.config != Path::new("/etc/dovecot/dovecot.conf") {
        doveadm.push("-c".into());
        doveadm.push(dovecot.config.display().to_string());
    }
    doveadm.push("reload".into());
    vec![postfix, doveadm]
}

/// The `reload = …` value: one command as a list of words, several as a list of those.
fn reload_value(commands: &[Vec<String>]) -> String {
    match commands {
        [one] => list(one),
        many => format!(
            "[{}]",
            many.iter().map(|c| list(c)).collect::<Vec<_>>().join(", ")
        ),
    }
}

/// Whether the live TLSA records pin an issuer and never the live key: the operator publishes
/// `2 1 1`, so the service keeps doing so (`current+issuer`).
pub fn issuer_scheme(d: &Discovery) -> bool {
    let roles = || {
        d.tlsa
            .iter()
            .flat_map(|o| o.records.iter().map(|(_, role)| *role))
    };
    roles().any(|r| r == Role::Issuer) && !roles().any(|r| r == Role::LiveKey)
}

/// The configuration text.
pub fn render(d: &Discovery, choices: &Choices) -> Result<String, InitError> {
    render_text(d, choices)
        .map_err(|_| InitError::Refused("cannot format the configuration".into()))
}

fn render_text(d: &Discovery, c: &Choices) -> Result<String, std::fmt::Error> {
    let mut o = String::new();
    writeln!(o, "# dane-roll configuration, written by `dane-roll init`.")?;
    writeln!(
        o,
        "# Check it with `dane-roll config check`; every key is described in docs/CONFIG.md."
    )?;
    writeln!(o, "version = 1")?;
    if let Some(dir) = &c.state_dir {
        writeln!(o, "state-dir = {}", qp(dir))?;
    }
    writeln!(o, "\n[resolver]")?;
    writeln!(
        o,
        "# The validating resolver whose answers the rollover trusts."
    )?;
    match d.validating {
        Some(true) => writeln!(o, "# found: it validates DNSSEC.")?,
        Some(false) => writeln!(
            o,
            "# WARNING: it did not validate DNSSEC when init asked; use one that does (Unbound)."
        )?,
        None => writeln!(o, "# not checked: no zone was found to ask about.")?,
    }
    match &c.resolver {
        Some(addr) => writeln!(o, "address = {}", q(addr))?,
        None => writeln!(
            o,
            "# address = \"127.0.0.1\"   # default: the first nameserver of /etc/resolv.conf"
        )?,
    }

    writeln!(o, "\n[[service]]")?;
    writeln!(o, "name = {}", q(&c.service))?;
    let names = d.live.as_ref().map(|l| l.names()).unwrap_or_default();
    if !names.is_empty() {
        writeln!(o, "# found: the names of the certificate Postfix serves.")?;
        writeln!(o, "domains = {}", list(&names))?;
    }
    acme_lines(&mut o, d)?;
    if d.hosts.is_empty() {
        writeln!(o, "# not found: the MX host names. Write them here.")?;
        writeln!(o, "endpoints = [\"mail.example.com:25/smtp\"]")?;
    } else {
        writeln!(
            o,
            "# The MX hosts that serve this certificate (port 25); add 465/587 if you serve them."
        )?;
        let mut endpoints: Vec<String> = d.hosts.iter().map(|h| format!("{h}:25/smtp")).collect();
        if with_dovecot(d) {
            writeln!(
                o,
                "# Dovecot serves the same key: IMAP over TLS on the first host, port 993."
            )?;
            endpoints.push(format!("{}:993/tls", d.hosts[0]));
        }
        writeln!(o, "endpoints = {}", list(&endpoints))?;
    }
    let live_files = d
        .live
        .as_ref()
        .map(|l| {
            l.files
                .iter()
                .map(|f| f.display().to_string())
                .collect::<Vec<_>>()
                .join(" + ")
        })
        .unwrap_or_else(|| "files init did not find".into());
    writeln!(
        o,
        "# Postfix reads its key and chain from this file once `dane-roll init --apply` has"
    )?;
    writeln!(
        o,
        "# switched it (until then it reads {live_files}). Run --apply before the first rollover."
    )?;
    writeln!(o, "chain-file = {}", qp(&chain_file(d, &c.service)))?;
    writeln!(o, "reload = {}", reload_value(&reload_commands(d)))?;
    if issuer_scheme(d) {
        writeln!(
            o,
            "# found: the live records name an issuer of the chain and not the live key."
        )?;
        writeln!(o, "scheme = \"current+issuer\"")?;
    }
    if let Some(zone) = &d.zone {
        writeln!(o, "# found: the SOA of the first endpoint.")?;
        writeln!(o, "zone = {}", q(&zone.apex))?;
    }
    writeln!(o, "provider = \"dns\"")?;
    provider_lines(&mut o, d, c)?;
    Ok(o)
}

fn acme_lines(o: &mut String, d: &Discovery) -> std::fmt::Result {
    let Some(cert) = &d.acme else {
        writeln!(
            o,
            "# not found: an ACME client for this certificate; deploy new ones with `dane-roll deploy`."
        )?;
        return writeln!(o, "acme-source = {{ client = \"none\" }}");
    };
    writeln!(
        o,
        "# {} certificate {} ({}).",
        cert.client.name(),
        cert.name,
        cert.dir.display()
    )?;
    match cert.client {
        Client::Certbot => {
            let default = Path::new(LETSENCRYPT).join("live").join(&cert.name);
            if cert.dir == default {
                writeln!(o, "lineage = {}", q(&cert.name))
            } else {
                writeln!(o, "lineage = {}", qp(&cert.dir))
            }
        }
        Client::AcmeSh => writeln!(
            o,
            "acme-source = {{ client = \"acme.sh\", key-file = {}, fullchain-file = {} }}",
            qp(&cert.key),
            qp(&cert.fullchain)
        ),
        Client::Dehydrated => writeln!(
            o,
            "acme-source = {{ client = \"dehydrated\", dir = {} }}",
            qp(&cert.dir)
        ),
    }
}

fn provider_lines(o: &mut String, d: &Discovery, c: &Choices) -> std::fmt::Result {
    writeln!(o, "\n[provider.dns]")?;
    let guess = d.provider.as_ref();
    let secret_key = |g: &ProviderGuess| match g {
        ProviderGuess::Rfc2136 { .. } => "tsig-key-file",
        ProviderGuess::Cloudflare | ProviderGuess::Desec => "token-file",
    };
    let body = |g: &ProviderGuess, secret: &str| {
        let mut lines = vec![format!("kind = {}", q(g.kind()))];
        if let ProviderGuess::Rfc2136 { server } = g {
            lines.push(format!("server = {}", q(server)));
        }
        lines.push(format!("{} = {}", secret_key(g), q(secret)));
        lines
    };
    let names = d.nameservers.join(", ");
    match (guess, &c.provider_secret_file) {
        (Some(g), Some(secret)) => {
            writeln!(o, "# guessed from the nameservers ({names}).")?;
            for line in body(g, &secret.display().to_string()) {
                writeln!(o, "{line}")?;
            }
        }
        (Some(g), None) => {
            writeln!(
                o,
                "# dane-roll prints the records to add and remove, and waits until DNS serves them."
            )?;
            writeln!(o, "kind = \"manual\"")?;
            writeln!(
                o,
                "# guessed from the nameservers ({names}): to publish by itself, put the secret in"
            )?;
            writeln!(
                o,
                "# a file (mode 600), replace the line above with these, and run `dane-roll config check`:"
            )?;
            let placeholder = match g {
                ProviderGuess::Rfc2136 { .. } => "/etc/dane-roll/tsig.key",
                _ => "/etc/dane-roll/dns-token",
            };
            for line in body(g, placeholder) {
                writeln!(o, "# {line}")?;
            }
        }
        (None, _) => {
            writeln!(
                o,
                "# not found: the zone's provider. dane-roll prints the records to add and remove."
            )?;
            writeln!(o, "kind = \"manual\"")?;
        }
    }
    Ok(())
}

/// Create `dir` (and its parents) when missing; the directories created are 0700.
pub fn ensure_private_dir(dir: &Path) -> Result<(), InitError> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        ensure_private_dir(parent)?;
    }
    let err = |source| InitError::File {
        path: dir.to_owned(),
        source,
    };
    std::fs::create_dir(dir).map_err(err)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(err)
}

/// Write `text` to `path` as a new file (mode 0600): through an unpredictable temporary
/// created `O_EXCL|O_NOFOLLOW` beside it, fsynced, then linked into place only if nothing is
/// there (an existing file, or a link, is never replaced), and the directory fsynced.
pub fn write_new(path: &Path, text: &str) -> Result<(), InitError> {
    write_new_mode(path, text, 0o600)
}

/// [`write_new`] with the final permission bits `mode` (set on the temporary, created 0600,
/// before it is linked into place).
pub fn write_new_mode(path: &Path, text: &str, mode: u32) -> Result<(), InitError> {
    let err = |source| InitError::File {
        path: path.to_owned(),
        source,
    };
    if std::fs::symlink_metadata(path).is_ok() {
        return Err(InitError::Exists(path.to_owned()));
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    ensure_private_dir(&dir)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".dane-roll-init.")
        .suffix(".tmp")
        .rand_bytes(12)
        .make_in(&dir, |p| fsafe::create_new(p, 0o600))
        .map_err(err)?;
    tmp.as_file_mut().write_all(text.as_bytes()).map_err(err)?;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(mode & 0o7777))
        .map_err(err)?;
    tmp.as_file().sync_all().map_err(err)?;
    match tmp.persist_noclobber(path) {
        Ok(_) => {}
        Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(InitError::Exists(path.to_owned()));
        }
        Err(e) => return Err(err(e.error)),
    }
    std::fs::File::open(&dir)
        .and_then(|f| f.sync_all())
        .map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::init::classify::OwnerRecords;
    use crate::init::discover::dns::Zone;

    fn discovery(provider: Option<ProviderGuess>) -> Discovery {
        Discovery {
            hosts: vec!["mail.example.com".into()],
            zone: Some(Zone {
                apex: "example.com".into(),
                primary: "ns1.example.com".into(),
            }),
            nameservers: vec!["ns1.example.com".into()],
            provider,
            validating: Some(true),
            ..Discovery::default()
        }
    }

    #[test]
    fn the_written_configuration_loads() {
        let choices = Choices {
            service: "mx".into(),
            resolver: Some("127.0.0.1:53".into()),
            ..Choices::default()
        };
        for guess in [
            None,
            Some(ProviderGuess::Cloudflare),
            Some(ProviderGuess::Rfc2136 {
                server: "ns1.example.com".into(),
            }),
        ] {
            let text = render(&discovery(guess), &choices).unwrap();
            let config = Config::from_str_named(&text, "init.toml")
                .unwrap_or_else(|e| panic!("{e}\n{text}"));
            let service = config.service("mx").unwrap();
            assert_eq!(service.endpoints[0].host, "mail.example.com");
            assert_eq!(service.zone.as_deref(), Some("example.com"));
            assert!(text.contains("kind = \"manual\""), "{text}");
        }
        let with_secret = Choices {
            provider_secret_file: Some("/etc/dane-roll/tsig.key".into()),
            ..choices
        };
        let text = render(
            &discovery(Some(ProviderGuess::Rfc2136 {
                server: "ns1.example.com".into(),
            })),
            &with_secret,
        )
        .unwrap();
        assert!(text.contains("\nkind = \"rfc2136\""), "{text}");
        Config::from_str_named(&text, "init.toml").unwrap();
    }

    #[test]
    fn issuer_records_keep_the_issuer_scheme() {
        let record = |usage| {
            crate::tlsa::TlsaRecord::new(
                usage,
                crate::tlsa::Selector::Spki,
                crate::tlsa::Matching::Sha256,
                vec![7; 32],
            )
            .unwrap()
        };
        let mut d = discovery(None);
        let choices = Choices {
            service: "mx".into(),
            ..Choices::default()
        };
        d.tlsa = vec![OwnerRecords {
            owner: crate::tlsa::OwnerName::for_endpoint("mail.example.com", 25),
            status: "secure".into(),
            records: vec![(record(crate::tlsa::Usage::DaneTa), Role::Issuer)],
        }];
        let text = render(&d, &choices).unwrap();
        assert!(text.contains("\nscheme = \"current+issuer\""), "{text}");
        let config = Config::from_str_named(&text, "init.toml").unwrap();
        assert_eq!(
            config.service("mx").unwrap().scheme,
            crate::config::Scheme::CurrentIssuer
        );
        // A record of the live key beside it: the default scheme.
        d.tlsa[0]
            .records
            .push((record(crate::tlsa::Usage::DaneEe), Role::LiveKey));
        assert!(!render(&d, &choices).unwrap().contains("scheme ="));
    }

    #[test]
    fn dovecot_reload_is_a_second_command_of_the_list() {
        let mut d = discovery(None);
        d.dovecot = Some(crate::init::discover::dovecot::DovecotTls {
            config: "/srv/dovecot/dovecot.conf".into(),
            cert: "/etc/ssl/c.pem".into(),
            key: "/etc/ssl/k.pem".into(),
            protocols: vec!["imap".into()],
        });
        d.dovecot_same_key = true;
        let choices = Choices {
            service: "mx".into(),
            ..Choices::default()
        };
        let text = render(&d, &choices).unwrap();
        assert!(
            text.contains(
                "\nreload = [[\"postfix\", \"reload\"], [\"doveadm\", \"-c\", \"/srv/dovecot/dovecot.conf\", \"reload\"]]\n"
            ),
            "{text}"
        );
        let config = Config::from_str_named(&text, "init.toml").unwrap();
        assert_eq!(config.service("mx").unwrap().reload.len(), 2);
        // Without Dovecot: one command, as a list of words.
        d.dovecot_same_key = false;
        assert!(
            render(&d, &choices)
                .unwrap()
                .contains("\nreload = [\"postfix\", \"reload\"]\n")
        );
    }

    #[test]
    fn never_over_an_existing_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/dane-roll.toml");
        write_new(&path, "version = 1\n").unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        let again = write_new(&path, "other\n").unwrap_err();
        assert!(matches!(again, InitError::Exists(_)), "{again}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "version = 1\n");
        // A dangling link is not followed.
        let link = dir.path().join("link.toml");
        std::os::unix::fs::symlink(dir.path().join("nowhere"), &link).unwrap();
        assert!(matches!(
            write_new(&link, "x").unwrap_err(),
            InitError::Exists(_)
        ));
        assert!(!dir.path().join("nowhere").exists());
    }
}
