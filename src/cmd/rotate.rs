//! `dane-roll rotate SERVICE`: make certbot renew the service's lineage with the next key dane-roll
//! published long ago ([`crate::rotate`]), so that the rollover certbot's deploy hook starts needs
//! no wait. acme.sh and dehydrated hold their next key themselves and use it at their next
//! renewal: for those services this says so and what to run.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};

use crate::cli::{Cli, RotateArgs};
use crate::config::{AcmeFiles, Config, Service};
use crate::exit::Status;
use crate::lock;
use crate::rollover::{DeployOptions, DeployRequest, Origin, Slot};
use crate::rotate::{self, Lineage, RENEW_ARGS};
use crate::store::{KeyEntry, KeyRole, Store};

/// What acme.sh and dehydrated users run instead.
const NATIVE: &str = "acme.sh (--always-force-new-domain-key) and dehydrated \
                      (PRIVATE_KEY_ROLLOVER=yes) rotate natively: their hook publishes the next \
                      key (<key>.next, privkey.roll.pem) as soon as it appears, and the next \
                      renewal uses it. To rotate now, renew: `acme.sh --renew -d DOMAIN --force` \
                      or `dehydrated --cron --force --domain DOMAIN`";

/// Stage the next key, run certbot, check the result, undo on failure.
pub(super) fn run(cli: &Cli, args: &RotateArgs) -> anyhow::Result<Status> {
    let config = Config::load_with_state_dir(&cli.config, cli.state_dir.as_deref())?;
    let service = config.service_or_err(args.service.name())?;
    let config_dir = rotate::certbot_config_dir(&args.certbot_args);
    let live = certbot_live(&config, service, &config_dir)?;
    // Two rotations of one service must not overlap; the rollover itself takes the service's
    // own lock (in the deploy hook), so this is a lock of its own.
    let _rotating = lock::acquire(
        &config.state_dir,
        &format!("{}.rotate", service.name),
        "dane-roll rotate",
        Duration::ZERO,
    )?;

    let store = Store::open(&config.state_dir)?;
    refuse_if_rolling(&store, service)?;
    let next = next_key(&store, service, args.slot.as_deref())?;
    let next_path = next.path.clone().with_context(|| {
        format!(
            "service {} ({}): the store has the next key's hash but not its file; generate a \
             new next key with `dane-roll next-key {}`",
            service.name, next.slot, service.name
        )
    })?;
    let on_disk = rotate::key_hash(&next_path)?;
    if on_disk != next.hash {
        bail!(
            "the next key file {} holds key {}, but the published next key of service {} is {}: \
             the file was replaced. Not rotating to an unpublished key; run `dane-roll next-key \
             {}` to publish a new one",
            next_path.display(),
            on_disk.short(),
            service.name,
            next.hash.short(),
            service.name
        );
    }

    let lineage = Lineage::open(&live).with_context(|| NATIVE.to_owned())?;
    let current = rotate::key_hash(&lineage.privkey_link())?;
    if current == next.hash {
        let served = rotate::cert_key_hash(&lineage.cert()).ok();
        if served == Some(next.hash) {
            println!(
                "{}: certbot's lineage {} already has the next key {}; nothing to rotate",
                service.name,
                lineage.live.display(),
                next.hash.short()
            );
            return Ok(Status::Ok);
        }
    }
    let hook = rotate::stored_deploy_hook(&config_dir, &lineage.name());
    // The lineage's own hook, or the one certbot runs for every lineage (the Debian package's).
    let hook_is_ours = hook.as_deref().is_some_and(|h| h.contains("dane-roll"))
        || rotate::directory_deploy_hook(&config_dir).is_some();
    if !hook_is_ours {
        eprintln!(
            "dane-roll: warning: certbot has no dane-roll deploy hook stored for {} ({}); \
             rotate hands the new certificate over itself. Add it for the renewals to come: \
             `certbot renew --cert-name {} --deploy-hook \"{} hook certbot\"` (stored at \
             that renewal; `certbot reconfigure` does it at once on certbot 2.3 and later)",
            lineage.name(),
            hook.as_deref().unwrap_or("none"),
            lineage.name(),
            program().display()
        );
    }

    println!(
        "{}: rotating certbot lineage {} from key {} to the published next key {} ({})",
        service.name,
        lineage.live.display(),
        current.short(),
        next.hash.short(),
        next_path.display()
    );
    let staged = lineage.stage(&next_path)?;
    let outcome = run_certbot(cli, args, &lineage.name());
    let code = match outcome {
        Ok(status) if status.success() => None,
        Ok(status) => Some(status.to_string()),
        Err(e) => Some(format!("could not be started: {e}")),
    };
    if let Some(why) = code {
        let undone = staged.undo();
        let state = match &undone {
            Ok(()) => "the lineage is as it was (privkey.pem points at the old key again, the \
                       staged copy is deleted)"
                .to_owned(),
            Err(e) => {
                format!("putting the lineage back failed too: {e}; check privkey.pem by hand")
            }
        };
        bail!(
            "certbot renew for {} failed ({why}); {state}. Nothing changed in DNS or on the mail \
             server. certbot's log is in its --logs-dir (default /var/log/letsencrypt)",
            lineage.name()
        );
    }
    let served = rotate::cert_key_hash(&lineage.cert())?;
    let finished = staged.finish();
    if served != next.hash {
        bail!(
            "certbot renewed {} but the new certificate has key {}, not the next key {}: certbot \
             did not reuse the staged key (is `reuse_key` overridden in its renewal \
             configuration?). The deploy hook rolls to that key with the full wait",
            lineage.name(),
            served.short(),
            next.hash.short()
        );
    }
    if let Err(e) = finished {
        eprintln!("dane-roll: warning: the staged copy of the key stays: {e}");
    }
    println!(
        "{}: certbot issued a certificate for the next key {}",
        service.name,
        next.hash.short()
    );
    if hook_is_ours {
        println!(
            "{}: certbot's deploy hook handed it to dane-roll; `dane-roll status {}` shows the \
             rollover",
            service.name, service.name
        );
        return Ok(Status::Ok);
    }
    let request = DeployRequest {
        service: service.name.clone(),
        cert: lineage.live.join("fullchain.pem"),
        key: lineage.privkey_link(),
        chain: None,
        next_key: None,
        origin: Origin::Certbot {
            lineage: lineage.live.clone(),
        },
    };
    let source = crate::hooks::source::AcmeSource::Certbot {
        lineage: lineage.live.clone(),
        domains: service.domains.clone(),
    };
    super::deploy::execute(
        cli,
        request,
        DeployOptions {
            wait: args.wait,
            force: false,
            timeout: None,
        },
        Some(&source),
    )
}

/// The live directory of the service's certbot lineage: its `lineage`, its certbot
/// `acme-source`, else the one lineage whose certificate shares the most names with its
/// `domains`; when none or several fit, the `lineage = "…"` line to add.
fn certbot_live(config: &Config, service: &Service, config_dir: &Path) -> anyhow::Result<PathBuf> {
    if let Some(name) = &service.lineage {
        return Ok(rotate::live_dir(name, config_dir));
    }
    match &service.acme_source {
        Some(AcmeFiles::Certbot { dir }) => return Ok(dir.clone()),
        // Another client's files (or none): no certbot lineage to look for.
        Some(_) => bail!(
            "service {} has no certbot `lineage` in {} and its `acme-source` is not certbot's: \
             `dane-roll rotate` drives certbot only. {NATIVE}",
            service.name,
            config.file
        ),
        None => {}
    }
    let add = |names: &[String]| match names {
        [] => "lineage = \"NAME\" (certbot's --cert-name)".to_owned(),
        names => names
            .iter()
            .map(|n| format!("lineage = \"{n}\""))
            .collect::<Vec<_>>()
            .join(" or "),
    };
    let (why, fix) = match rotate::lineage_for_domains(config_dir, &service.domains) {
        rotate::Derived::One(live) => {
            println!(
                "{}: no `lineage` in the configuration; certbot's lineage {} is for its domains",
                service.name,
                live.display()
            );
            return Ok(live);
        }
        rotate::Derived::None(all) if all.is_empty() => (
            format!(
                "certbot has no lineage in {}",
                config_dir.join("live").display()
            ),
            add(&[]),
        ),
        rotate::Derived::None(all) => (
            format!(
                "none of certbot's lineages in {} ({}) is for its domains ({})",
                config_dir.join("live").display(),
                all.join(", "),
                service.domains.join(", ")
            ),
            add(&all),
        ),
        rotate::Derived::Tied(tied) => (
            format!(
                "several of certbot's lineages are for its domains equally ({})",
                tied.join(", ")
            ),
            add(&tied),
        ),
    };
    bail!(
        "service {} has no certbot `lineage` in {}, and {why}: add {fix} to its [[service]] \
         (certbot kept elsewhere: --certbot-arg=--config-dir=DIR). `dane-roll rotate` drives \
         certbot only. {NATIVE}",
        service.name,
        config.file
    );
}

/// This program, as hook lines should name it (certbot's timer runs them with a short PATH).
fn program() -> PathBuf {
    std::env::current_exe().unwrap_or_else(|_| PathBuf::from("/usr/bin/dane-roll"))
}

/// Refuse while a rollover of the service is under way: its records and key are in motion.
fn refuse_if_rolling(store: &Store, service: &Service) -> anyhow::Result<()> {
    if let Some(r) = store
        .rollovers()?
        .into_iter()
        .find(|r| r.request.service == service.name && !r.is_final())
    {
        bail!(
            "service {} has a rollover under way ({}, phase {}); let it finish (`dane-roll run \
             --wait`) before rotating",
            service.name,
            r.request.slot,
            r.phase.name().as_str()
        );
    }
    Ok(())
}

/// The published next key of the service (of `slot`, or the only one).
fn next_key(store: &Store, service: &Service, slot: Option<&str>) -> anyhow::Result<KeyEntry> {
    let mut nexts: Vec<KeyEntry> = store
        .keys(&service.name)?
        .into_iter()
        .filter(|k| k.role == KeyRole::Next)
        .collect();
    if let Some(slot) = slot {
        let slot: Slot = slot.parse()?;
        nexts.retain(|k| k.slot == slot);
    }
    match nexts.len() {
        1 => Ok(nexts.remove(0)),
        0 => bail!(
            "service {} has no published next key{}; publish one with `dane-roll next-key {}` \
             and rotate once its record has been out for 2×TTL",
            service.name,
            slot.map(|s| format!(" in slot {s}")).unwrap_or_default(),
            service.name
        ),
        _ => bail!(
            "service {} has next keys in several slots ({}); say which with --slot",
            service.name,
            nexts
                .iter()
                .map(|k| k.slot.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// `certbot renew --cert-name NAME --force-renewal --reuse-key --no-random-sleep-on-renew` plus
/// the passed-through arguments; its deploy hook finds our configuration in DANE_ROLL_CONFIG.
fn run_certbot(
    cli: &Cli,
    args: &RotateArgs,
    name: &str,
) -> std::io::Result<std::process::ExitStatus> {
    let mut cmd = Command::new(&args.certbot);
    cmd.arg("renew")
        .args(&args.certbot_args)
        .args(["--cert-name", name])
        .args(RENEW_ARGS)
        .env("DANE_ROLL_CONFIG", absolute(&cli.config))
        .stdin(Stdio::null());
    cmd.status()
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}
