//! `dane-roll config check`: validate the configuration, check the machine (secrets available,
//! directories present), and print the resolved configuration with defaults filled in and secrets shown
//! only as where they live (`file /path (readable)`, `env NAME (set)`), never their value.
//! With `--online`, also the preflight of every service ([`crate::preflight`]): one line per
//! problem (an error) or notice, nothing written.

use std::fmt::Write as _;

use crate::cli::Cli;
use crate::config::{
    Channel, Config, ConfigError, EmailChannel, MailVia, Problem, ProviderKind, ResolverOrigin,
    Secret, Tsig, WebhookUrl, format_duration,
};
use crate::dns::{AuthorityView, Resolver};
use crate::exit::Status;
use crate::preflight::{self, Severity};

/// Validate the configuration file and print the resolved configuration.
///
/// Exit 0 when valid (warnings are printed on standard error but do not fail), 2 on any error.
pub(super) fn check(cli: &Cli, online: bool) -> anyhow::Result<Status> {
    let config = match Config::load_with_state_dir(&cli.config, cli.state_dir.as_deref()) {
        Ok(config) => config,
        Err(err @ ConfigError::Invalid { .. }) => {
            for problem in err.problems() {
                error(problem);
            }
            return Ok(Status::Failure);
        }
        Err(err) => return Err(err.into()),
    };
    let report = config.check_environment();
    if !cli.quiet {
        print!("{}", render(&config));
    }
    for warning in config.warnings.iter().chain(&report.warnings) {
        eprintln!("dane-roll: warning: {warning}");
    }
    for problem in &report.errors {
        error(problem);
    }
    let mut failed = !report.errors.is_empty();
    if online {
        failed |= preflight(&config, cli.quiet)?;
    }
    if !failed {
        if !cli.quiet {
            println!("configuration {} is valid", config.file);
        }
        Ok(Status::Ok)
    } else {
        Ok(Status::Failure)
    }
}

/// Run the preflight of every service and print its findings; whether any is a problem.
fn preflight(config: &Config, quiet: bool) -> anyhow::Result<bool> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let resolver = Resolver::from_settings(&config.resolver)?;
    let view = AuthorityView::new(resolver);
    let mut failed = false;
    for service in &config.services {
        let findings = runtime.block_on(preflight::check_service(config, service, &view));
        let problems = findings
            .iter()
            .filter(|f| f.severity == Severity::Problem)
            .count();
        for finding in &findings {
            match finding.severity {
                Severity::Problem => eprintln!("dane-roll: error: {finding}"),
                Severity::Notice => eprintln!("dane-roll: note: {finding}"),
            }
        }
        if problems == 0 && !quiet {
            println!("service {}: preflight passed", service.name);
        }
        failed |= problems > 0;
    }
    Ok(failed)
}

fn error(problem: &Problem) {
    eprintln!("dane-roll: error: {problem}");
}

/// Where a secret lives and whether it is there: `file /etc/x (readable)`, `env NAME (not set)`.
fn secret(secret: &Secret) -> String {
    format!("{secret} ({})", secret.status())
}

/// A provider setting as `config check` lists it: as it is, or a secret, shown only as where
/// it lives (through [`secret`]).
enum Setting<'a> {
    Shown(String),
    Secret(&'a Secret),
}

/// A provider's settings in the order they are listed, each after its key; defaults say what
/// happens instead.
fn provider_settings(kind: &ProviderKind) -> Vec<(&'static str, Setting<'_>)> {
    let shown = |text: &dyn std::fmt::Display| Setting::Shown(text.to_string());
    let or = |value: &Option<String>, default: &str| {
        Setting::Shown(value.as_deref().unwrap_or(default).to_owned())
    };
    match kind {
        ProviderKind::Rfc2136 { server, tsig, zone } => vec![
            ("server", shown(server)),
            match tsig {
                Some(Tsig::KeyFile(s)) => ("tsig-key-file", Setting::Secret(s)),
                Some(Tsig::Env(s)) => ("tsig-env", Setting::Secret(s)),
                None => ("tsig", shown(&"none (unsigned updates)")),
            },
            ("zone", or(zone, "discovered")),
        ],
        ProviderKind::Cloudflare { token, zone_id } => vec![
            ("token", Setting::Secret(token)),
            ("zone-id", or(zone_id, "looked up by name")),
        ],
        ProviderKind::PowerDns {
            url,
            api_key,
            server_id,
        } => vec![
            ("url", shown(url)),
            ("api-key", Setting::Secret(api_key)),
            ("server-id", shown(server_id)),
        ],
        ProviderKind::Desec { token }
        | ProviderKind::Hetzner { token }
        | ProviderKind::Gandi { token } => vec![("token", Setting::Secret(token))],
        ProviderKind::Route53 {
            access_key_id,
            secret_key,
            hosted_zone_id,
        } => vec![
            ("access-key-id", shown(access_key_id)),
            ("secret-key", Setting::Secret(secret_key)),
            ("hosted-zone-id", or(hosted_zone_id, "looked up by name")),
        ],
        ProviderKind::Ovh {
            endpoint,
            application_key,
            application_secret,
            consumer_key,
        } => vec![
            ("endpoint", shown(endpoint)),
            ("application-key", shown(application_key)),
            ("application-secret", Setting::Secret(application_secret)),
            ("consumer-key", Setting::Secret(consumer_key)),
        ],
        ProviderKind::Inwx {
            user,
            password,
            totp_secret,
            url,
        } => {
            let mut settings = vec![
                ("user", shown(user)),
                ("password", Setting::Secret(password)),
                match totp_secret {
                    Some(t) => ("totp-secret", Setting::Secret(t)),
                    None => ("totp-secret", shown(&"none (no two-factor authentication)")),
                },
            ];
            if let Some(url) = url {
                settings.push(("url", shown(url)));
            }
            settings
        }
        ProviderKind::Transip {
            login,
            private_key,
            global_key,
        } => vec![
            ("login", shown(login)),
            ("private-key", Setting::Secret(private_key)),
            ("global-key", shown(global_key)),
        ],
        ProviderKind::Google {
            credentials,
            project,
            managed_zone,
        } => vec![
            ("credentials", Setting::Secret(credentials)),
            ("project", or(project, "the key's project_id")),
            ("managed-zone", or(managed_zone, "found by DNS name")),
        ],
        ProviderKind::Exec { command } => vec![("command", shown(&command.join(" ")))],
        _ => Vec::new(),
    }
}

/// The resolved configuration as readable text.
fn render(config: &Config) -> String {
    let mut out = String::new();
    let _ = write_config(&mut out, config);
    out
}

fn write_config(out: &mut String, config: &Config) -> std::fmt::Result {
    writeln!(
        out,
        "configuration {} (version {})",
        config.file, config.version
    )?;
    writeln!(out, "state-dir {}", config.state_dir.display())?;
    let r = &config.resolver;
    let address = match r.origin {
        ResolverOrigin::Configured => r.address.to_string(),
        ResolverOrigin::System => format!("system ({})", r.address),
    };
    writeln!(out, "\n[resolver]")?;
    writeln!(out, "  address       {address}")?;
    writeln!(out, "  timeout       {}", format_duration(r.timeout))?;
    match &r.trust_anchor {
        Some(anchor) => writeln!(
            out,
            "  trust-anchor  {} (validated in process)",
            anchor.display()
        )?,
        None => writeln!(
            out,
            "  trust-anchor  none (the resolver's AD bit is trusted)"
        )?,
    }

    for service in &config.services {
        writeln!(out, "\n[[service]] {}", service.name)?;
        writeln!(
            out,
            "  lineage       {}",
            service.lineage.as_deref().unwrap_or("-")
        )?;
        let domains = if service.domains.is_empty() {
            "-".to_owned()
        } else {
            service.domains.join(", ")
        };
        writeln!(out, "  domains       {domains}")?;
        writeln!(out, "  endpoints")?;
        for endpoint in &service.endpoints {
            writeln!(
                out,
                "    {:<34} TLSA at {}",
                endpoint.to_string(),
                endpoint.owner_name()
            )?;
        }
        writeln!(out, "  scheme        {}", service.scheme)?;
        writeln!(out, "  chain-file    {}", service.chain_files)?;
        for (key, path) in service.split_files.all() {
            writeln!(out, "  {key:<14}{}", path.display())?;
        }
        writeln!(out, "  reload        {}", service.reload_line())?;
        writeln!(out, "  key-mode      {}", service.key_file)?;
        writeln!(
            out,
            "  ttl           {} (a rollover waits at least 2×TTL = {})",
            service.ttl,
            format_duration(std::time::Duration::from_secs(2 * u64::from(service.ttl)))
        )?;
        writeln!(
            out,
            "  zone          {}",
            service.zone.as_deref().unwrap_or("discovered")
        )?;
        writeln!(out, "  provider      {}", service.provider)?;
        match service.key_type {
            Some(key_type) => writeln!(out, "  key-type      {key_type}")?,
            None => writeln!(out, "  key-type      same as the current key")?,
        }
        writeln!(out, "  max-records   {}", service.max_records)?;
    }

    for provider in config.providers.values() {
        writeln!(
            out,
            "\n[provider.{}] kind {}",
            provider.name,
            provider.kind.name()
        )?;
        for (key, setting) in provider_settings(&provider.kind) {
            let value = match setting {
                Setting::Shown(text) => text,
                Setting::Secret(s) => secret(s),
            };
            writeln!(out, "  {key:<13} {value}")?;
        }
    }

    writeln!(out, "\n[alerts]")?;
    writeln!(
        out,
        "  repeat-interval {}",
        format_duration(config.alerts.repeat_interval)
    )?;
    for (name, channel) in &config.alerts.channels {
        write!(out, "  channel {name} ({}): ", channel.kind())?;
        match channel {
            Channel::Webhook {
                url: WebhookUrl::Plain(url),
            } => writeln!(out, "{}", url_origin(url))?,
            Channel::Webhook {
                url: WebhookUrl::Secret(s),
            } => writeln!(out, "url from {}", secret(s))?,
            Channel::Email(EmailChannel {
                to,
                from,
                via,
                sendmail,
                smtp_server,
                credentials,
                ..
            }) => {
                write!(out, "to {} from {from} via ", to.join(", "))?;
                match (via, smtp_server) {
                    (MailVia::Smtp, Some(server)) => write!(out, "smtp {server}")?,
                    _ => write!(out, "{}", sendmail.display())?,
                }
                match credentials {
                    Some(c) => writeln!(out, ", credentials {}", secret(c))?,
                    None => writeln!(out)?,
                }
            }
            Channel::Telegram { token, chat_id, .. } => {
                writeln!(out, "chat {chat_id}, token {}", secret(token))?
            }
        }
    }

    let c = &config.check;
    writeln!(out, "\n[check]")?;
    writeln!(out, "  rrsig-warn-days {}", c.rrsig_warn_days)?;
    writeln!(out, "  cert-warn-days  {}", c.cert_warn_days)?;
    writeln!(out, "  max-records     {}", c.max_records)?;
    writeln!(out)
}

/// A URL shown without its path and query, which may carry a token: `https://hooks.example.com/…`.
fn url_origin(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = host.rsplit('@').next().unwrap_or(host);
    if host.len() == rest.len() {
        format!("{scheme}://{host}")
    } else {
        format!("{scheme}://{host}/…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One provider of each kind, each optional setting both given and left out, secrets in
    /// variables no test sets and files that do not exist.
    const PROVIDERS: &str = r#"
service = [{ name = "mx", endpoints = ["mail.example.com:25/smtp"], chain-file = "/etc/postfix/mx.pem", provider = "a" }]
[resolver]
address = "127.0.0.1"
[provider]
a = { kind = "rfc2136", server = "192.0.2.53", tsig-env = "DANE_ROLL_UNSET_TSIG" }
a2 = { kind = "rfc2136", server = "192.0.2.53:5353", tsig-key-file = "/nonexistent/tsig.key", zone = "example.com" }
a3 = { kind = "rfc2136", server = "192.0.2.53" }
b = { kind = "cloudflare", token-file = "/nonexistent/token" }
b2 = { kind = "cloudflare", token-env = "DANE_ROLL_UNSET_CF", zone-id = "abc" }
c = { kind = "powerdns", url = "http://127.0.0.1:8081", api-key-env = "DANE_ROLL_UNSET_PDNS" }
d = { kind = "desec", token-env = "DANE_ROLL_UNSET_DESEC" }
e = { kind = "hetzner", token-file = "/nonexistent/token" }
f = { kind = "gandi", token-env = "DANE_ROLL_UNSET_GANDI" }
g = { kind = "route53", access-key-id = "AKIAEXAMPLE", secret-key-env = "DANE_ROLL_UNSET_AWS" }
g2 = { kind = "route53", access-key-id = "AKIAEXAMPLE", secret-key-env = "DANE_ROLL_UNSET_AWS", hosted-zone-id = "Z1" }
h = { kind = "ovh", application-key = "ak", application-secret-env = "DANE_ROLL_UNSET_OVH", consumer-key-file = "/nonexistent/consumer" }
i = { kind = "inwx", user = "u", password-env = "DANE_ROLL_UNSET_INWX" }
i2 = { kind = "inwx", user = "u", password-env = "DANE_ROLL_UNSET_INWX", totp-secret-file = "/nonexistent/totp", url = "https://api.ote.domrobot.com/jsonrpc/" }
j = { kind = "transip", login = "l", private-key-file = "/nonexistent/transip.pem" }
k = { kind = "google", credentials-file = "/nonexistent/google.json" }
k2 = { kind = "google", credentials-env = "DANE_ROLL_UNSET_GOOGLE", project = "p", managed-zone = "mz" }
l = { kind = "exec", command = ["/usr/local/bin/dns-hook", "two words"] }
m = { kind = "manual" }
"#;

    /// Each provider's settings, as `config check` has always listed them: the key padded to
    /// 13 columns, secrets only as where they live, defaults in words.
    const LISTED: &str = r#"
[provider.a] kind rfc2136
  server        192.0.2.53:53
  tsig-env      env DANE_ROLL_UNSET_TSIG (not set)
  zone          discovered

[provider.a2] kind rfc2136
  server        192.0.2.53:5353
  tsig-key-file file /nonexistent/tsig.key (not found)
  zone          example.com

[provider.a3] kind rfc2136
  server        192.0.2.53:53
  tsig          none (unsigned updates)
  zone          discovered

[provider.b] kind cloudflare
  token         file /nonexistent/token (not found)
  zone-id       looked up by name

[provider.b2] kind cloudflare
  token         env DANE_ROLL_UNSET_CF (not set)
  zone-id       abc

[provider.c] kind powerdns
  url           http://127.0.0.1:8081
  api-key       env DANE_ROLL_UNSET_PDNS (not set)
  server-id     localhost

[provider.d] kind desec
  token         env DANE_ROLL_UNSET_DESEC (not set)

[provider.e] kind hetzner
  token         file /nonexistent/token (not found)

[provider.f] kind gandi
  token         env DANE_ROLL_UNSET_GANDI (not set)

[provider.g] kind route53
  access-key-id AKIAEXAMPLE
  secret-key    env DANE_ROLL_UNSET_AWS (not set)
  hosted-zone-id looked up by name

[provider.g2] kind route53
  access-key-id AKIAEXAMPLE
  secret-key    env DANE_ROLL_UNSET_AWS (not set)
  hosted-zone-id Z1

[provider.h] kind ovh
  endpoint      ovh-eu
  application-key ak
  application-secret env DANE_ROLL_UNSET_OVH (not set)
  consumer-key  file /nonexistent/consumer (not found)

[provider.i] kind inwx
  user          u
  password      env DANE_ROLL_UNSET_INWX (not set)
  totp-secret   none (no two-factor authentication)

[provider.i2] kind inwx
  user          u
  password      env DANE_ROLL_UNSET_INWX (not set)
  totp-secret   file /nonexistent/totp (not found)
  url           https://api.ote.domrobot.com/jsonrpc/

[provider.j] kind transip
  login         l
  private-key   file /nonexistent/transip.pem (not found)
  global-key    false

[provider.k] kind google
  credentials   file /nonexistent/google.json (not found)
  project       the key's project_id
  managed-zone  found by DNS name

[provider.k2] kind google
  credentials   env DANE_ROLL_UNSET_GOOGLE (not set)
  project       p
  managed-zone  mz

[provider.l] kind exec
  command       /usr/local/bin/dns-hook two words

[provider.m] kind manual
"#;

    #[test]
    fn every_provider_kind_lists_its_settings_with_secrets_as_where_they_live() {
        let config = Config::from_str_named(PROVIDERS, "test.toml").unwrap();
        let text = render(&config);
        let start = text.find("\n[provider.").unwrap();
        let end = text.find("\n[alerts]").unwrap();
        let listed = &text[start..end];
        assert_eq!(listed, LISTED);
    }
}
