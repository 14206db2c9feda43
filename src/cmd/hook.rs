//! `dane-roll hook certbot|acme.sh|dehydrated`: read what the ACME client hands its hook, turn it
//! into a deploy request ([`crate::hooks`]) and carry it out ([`super::deploy::execute`]).
//!
//! certbot ignores a failing deploy hook (it logs the exit code, exits 0 and never retries), so a
//! failure here is said loudly on standard error, sent to the configured alert channels, and
//! exits non-zero; what was already recorded is finished by `dane-roll run`. Where the client
//! keeps the certificate is recorded too ([`crate::hooks::source`]): when a later hook is missed
//! altogether, `dane-roll run` finds the new certificate there. dehydrated aborts on a non-zero
//! exit: every event but `deploy_cert` returns 0 at once, before the configuration is even read,
//! and prints nothing (dehydrated reads `generate_csr`'s output as a CSR). certbot runs the hooks
//! of `renewal-hooks/deploy/` for every lineage: the shim installed there sets
//! [`SKIP_UNMATCHED_ENV`], and a lineage no service is for is skipped with one line.

use crate::output::{Lines, error_text, escape};
use std::ffi::OsString;

use crate::cli::{Cli, HookClient, HookOptions};
use crate::config::Config;
use crate::exit::Status;
use crate::hooks::source::AcmeSource;
use crate::hooks::{self, Client, Disk, Env, dehydrated};
use crate::notify::{Alert, Notifier, Severity};
use crate::rollover::{DeployOptions, DeployRequest};

/// How long `hook … --wait` blocks its ACME client at most when `--timeout` is not given.
pub(super) const HOOK_WAIT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30 * 60);

/// Run the hook of one ACME client.
pub(super) fn run(cli: &Cli, client: &HookClient) -> anyhow::Result<Status> {
    let (which, options) = match client {
        HookClient::Certbot(o) => (Client::Certbot, o),
        HookClient::AcmeSh(o) => (Client::AcmeSh, o),
        HookClient::Dehydrated(a) => (Client::Dehydrated, &a.options),
    };
    if let HookClient::Dehydrated(a) = client
        && !dehydrated::is_deploy(&a.args)
    {
        if cli.verbose > 0 {
            crate::output::error_line(&format!(
                "dane-roll hook dehydrated: event `{}` ignored",
                dehydrated::event_name(&a.args)
            ));
        }
        return Ok(Status::Ok);
    }
    let env = Env::from_process();
    // The client's own variables first: without them this is not a hook run at all.
    hooks::check_env(which, &env)?;
    let config = match Config::load_with_state_dir(&cli.config, cli.state_dir.as_deref()) {
        Ok(config) => config,
        Err(err) => {
            return Err(anyhow::Error::new(Lines(format!(
                "{}\nThe new certificate ({}) was neither published nor installed. Once the \
                 configuration is fixed, run the hook again:\n    {}",
                error_text(&anyhow::Error::new(err)),
                escape(&what_was_issued(which, client, &env)),
                escape(&redo(which, client, &env))
            ))));
        }
    };
    let service = options.service.as_deref();
    let made = match client {
        HookClient::Certbot(_) => hooks::certbot::request(&config, &env, &Disk, service),
        HookClient::AcmeSh(_) => hooks::acme_sh::request(&config, &env, &Disk, service),
        HookClient::Dehydrated(a) => match dehydrated::request(&config, &a.args, &Disk, service) {
            Ok(dehydrated::Event::Deploy(request)) => Ok(request),
            Ok(dehydrated::Event::Ignore { .. }) => return Ok(Status::Ok),
            Err(e) => Err(e),
        },
    };
    let request = match made {
        Ok(request) => request,
        Err(hooks::HookError::NoService {
            certificate,
            config: file,
            fix,
            ..
        }) if which == Client::Certbot && options.service.is_none() && skip_unmatched(&env) => {
            tracing::info!(
                "hook certbot: {certificate} is for no service in {file}: skipped (certbot runs \
                 this hook for every lineage; `{fix}` in a [[service]] makes it one of ours)"
            );
            return Ok(Status::Ok);
        }
        Err(err) => {
            let subject = options.service.clone().unwrap_or_else(|| which.to_string());
            let err = anyhow::Error::new(Lines(format!(
                "{}\nOnce fixed, run the hook again:\n    {}",
                escape(&err.to_string()),
                escape(&redo(which, client, &env))
            )));
            alert(&config, &subject, &err);
            return Err(err);
        }
    };
    if cli.verbose > 0 {
        describe(which, &request);
    }
    let service = request.service.clone();
    let deploy = DeployOptions {
        wait: options.wait,
        force: options.force,
        // A hook blocks its ACME client: never unbounded.
        timeout: options
            .wait
            .then_some(options.timeout.unwrap_or(HOOK_WAIT_TIMEOUT)),
    };
    let source = match client {
        HookClient::Certbot(_) => AcmeSource::from_certbot(&env),
        HookClient::AcmeSh(_) => AcmeSource::from_acme_sh(&env),
        HookClient::Dehydrated(a) => AcmeSource::from_dehydrated(&a.args),
    };
    match super::deploy::execute(cli, request, deploy, source.as_ref()) {
        Ok(status) => Ok(status),
        Err(err) => {
            let err = anyhow::Error::new(Lines(format!(
                "{}\nThe rollover of service {service} did not go through; the mail server \
                 keeps its previous certificate. `dane-roll status {service}` shows what was \
                 recorded, and `dane-roll run` finishes it; if nothing was recorded, run the hook \
                 again once fixed:\n    {}",
                error_text(&err),
                escape(&redo(which, client, &env))
            )));
            alert(&config, &service, &err);
            Err(err)
        }
    }
}

/// Set (to `1`) by the certbot shim when certbot runs it from `renewal-hooks/deploy/`, that is
/// for every lineage it renews: a lineage no service is for (a web server's) is then skipped with
/// one line and exit 0 instead of failing. A lineage's own `--deploy-hook` keeps the error.
pub(super) const SKIP_UNMATCHED_ENV: &str = "DANE_ROLL_SKIP_UNMATCHED";

fn skip_unmatched(env: &Env) -> bool {
    env.text(SKIP_UNMATCHED_ENV).as_deref() == Some("1")
}

/// Print what the hook is about to hand the driver (paths only).
fn describe(which: Client, r: &DeployRequest) {
    crate::output::error_line(&format!(
        "dane-roll hook {which}: service {}, certificate {}{}, key {}{}",
        r.service,
        r.cert.display(),
        r.chain
            .as_ref()
            .map(|c| format!(" + chain {}", c.display()))
            .unwrap_or_default(),
        r.key.display(),
        r.next_key
            .as_ref()
            .map(|n| format!(", next key {}", n.display()))
            .unwrap_or_default(),
    ));
}

/// The certificate as the client named it, for messages.
fn what_was_issued(which: Client, client: &HookClient, env: &Env) -> String {
    let var = |name: &str| env.text(name).unwrap_or_else(|| format!("{name} not set"));
    match (which, client) {
        (_, HookClient::Dehydrated(a)) => {
            let args: Vec<String> = a
                .args
                .iter()
                .skip(1)
                .take(1)
                .map(|s| s.to_string_lossy().into_owned())
                .collect();
            format!("dehydrated's certificate for {}", args.join(" "))
        }
        (Client::AcmeSh, _) => format!("acme.sh's certificate for {}", var("Le_Domain")),
        _ => format!("certbot lineage {}", var("RENEWED_LINEAGE")),
    }
}

/// The command line that runs this hook again with the same inputs, for the operator to paste.
fn redo(which: Client, client: &HookClient, env: &Env) -> String {
    let quote = |s: &str| {
        if !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"/._-:=@+,".contains(&b))
        {
            s.to_owned()
        } else {
            format!("'{}'", s.replace('\'', r"'\''"))
        }
    };
    let assign = |names: &[&str]| -> String {
        names
            .iter()
            .filter_map(|n| env.text(n).map(|v| format!("{n}={} ", quote(&v))))
            .collect()
    };
    match client {
        HookClient::Certbot(o) => format!(
            "{}dane-roll hook certbot{}",
            assign(&["RENEWED_LINEAGE", "RENEWED_DOMAINS"]),
            flags(o)
        ),
        HookClient::AcmeSh(o) => format!(
            "{}dane-roll hook acme.sh{}",
            assign(&[
                "Le_Domain",
                "CERT_PATH",
                "CERT_KEY_PATH",
                "CA_CERT_PATH",
                "CERT_FULLCHAIN_PATH",
                "Le_ForceNewDomainKey",
                "Le_Next_Domain_Key",
            ]),
            flags(o)
        ),
        HookClient::Dehydrated(a) => {
            let args: Vec<String> = a
                .args
                .iter()
                .map(|s: &OsString| quote(&s.to_string_lossy()))
                .collect();
            format!(
                "dane-roll hook {which}{} {}",
                flags(&a.options),
                args.join(" ")
            )
        }
    }
}

fn flags(o: &HookOptions) -> String {
    let mut s = String::new();
    if o.wait {
        s.push_str(" --wait");
    }
    if o.force {
        s.push_str(" --force");
    }
    if let Some(name) = &o.service {
        s.push_str(&format!(" --service {name}"));
    }
    s
}

/// Tell the configured alert channels (none configured: nothing; a channel that fails is said
/// on standard error, never instead of the error itself).
fn alert(config: &Config, subject: &str, err: &anyhow::Error) {
    if config.alerts.channels.is_empty() {
        return;
    }
    let alert = Alert::new(
        format!("hook/{subject}"),
        subject,
        Severity::Critical,
        "an ACME client's new certificate was not handed over to dane-roll",
        format!(
            "{err:#}\n\nThe ACME client does not retry. The mail server still serves its \
             previous certificate, whose TLSA record is published: mail flows."
        ),
    );
    let sent = Notifier::new(&config.alerts)
        .and_then(|n| n.send_blocking(&alert))
        .and_then(|delivery| delivery.into_result());
    if let Err(e) = sent {
        crate::output::error_line(&format!("dane-roll: warning: alert not sent: {e}"));
    }
}
