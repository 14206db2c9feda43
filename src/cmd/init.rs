//! `dane-roll init`: discover, print what was found (and how sure), write the configuration
//! (or print it), and with `--apply` switch Postfix to the service's `chain-file`; `--undo`
//! switches back. The work is in [`crate::init`]; this module prints and decides exit codes.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};

use crate::cli::{Cli, InitArgs};
use crate::config::{
    ChainFiles, Config, DNS_PORT, RESOLV_CONF, first_nameserver, parse_socket_addr,
};
use crate::dns::Resolver;
use crate::exit::Status;
use crate::init::adopt;
use crate::init::apply::{self, Switch, Unconfirmed};
use crate::init::discover::dovecot::Doveconf;
use crate::init::discover::postfix::Postconf;
use crate::init::discover::{self, Discovery, Sources};
use crate::init::register::{self, Places, Registered};
use crate::init::write::{self, Choices};
use crate::init::{Certainty, InitError};
use crate::rollover::{Clock, SystemClock};

/// How long the reload of `--apply` and `--undo` may take.
const RELOAD_TIMEOUT: Duration = Duration::from_secs(120);
/// How long one DNS query of discovery may take.
const DNS_TIMEOUT: Duration = Duration::from_secs(5);

/// Run `dane-roll init`.
pub(super) fn run(cli: &Cli, args: &InitArgs) -> anyhow::Result<Status> {
    let postconf = Postconf {
        program: args.postconf.clone(),
        config_dir: args.postfix_dir.clone(),
    };
    if args.undo {
        return undo(cli, args, &postconf, &doveconf(args));
    }
    let resolver = resolver(args)?;
    let sources = Sources {
        postconf: postconf.clone(),
        doveconf: doveconf(args),
        letsencrypt: args.letsencrypt_dir.clone(),
        acme_sh: acme_sh_homes(args),
        dehydrated: match &args.dehydrated_dir {
            Some(dir) => vec![dir.clone()],
            None => vec!["/etc/dehydrated".into(), "/var/lib/dehydrated".into()],
        },
        domains: args.domains.clone(),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let found = runtime.block_on(discover::discover(&sources, resolver.as_ref()));
    report(&found, args.print);

    let choices = Choices {
        service: args.service.clone(),
        resolver: args.resolver.clone(),
        state_dir: cli.state_dir.clone(),
        provider_secret_file: args.provider_secret_file.clone(),
    };
    let text = write::render(&found, &choices)?;
    // What init writes must load; a value discovery found that the format refuses (a name
    // with a character a service name cannot have, say) is caught here, not by the hook.
    let loads = Config::from_str_named(&text, &cli.config.display().to_string()).map_err(|e| {
        format!(
            "the configuration init would write does not load: {e}; fix it by hand (--print) or run init again with other values"
        )
    });
    if args.print {
        print!("{text}");
        return Ok(match loads {
            Ok(_) => Status::Ok,
            Err(why) => {
                tracing::warn!("{why}");
                Status::Warning
            }
        });
    }
    if let Err(why) = loads {
        bail!("{why}");
    }
    if std::fs::symlink_metadata(&cli.config).is_ok() {
        if !args.apply {
            return Err(InitError::Exists(cli.config.clone()).into());
        }
        println!(
            "using the existing configuration {} (init never overwrites one)",
            cli.config.display()
        );
    } else {
        if found.live.is_none() || found.postfix.is_none() {
            bail!(
                "nothing to configure: Postfix's key and certificate were not found (see above); \
                 write the configuration by hand (docs/CONFIG.md) or print a draft with --print"
            );
        }
        write::write_new(&cli.config, &text)?;
        if let Some(dir) = write::chain_file(&found, &args.service).parent() {
            write::ensure_private_dir(dir)?;
        }
        println!("wrote {}", cli.config.display());
    }
    if !args.apply {
        next_steps(cli, &found, &args.service);
        return Ok(Status::Ok);
    }
    apply_switch(cli, args, &found, &runtime)
}

/// acme.sh's homes: `--acme-sh-home`, else `$HOME/.acme.sh` then `/root/.acme.sh`.
fn acme_sh_homes(args: &InitArgs) -> Vec<PathBuf> {
    match &args.acme_sh_home {
        Some(dir) => vec![dir.clone()],
        None => {
            let mut homes: Vec<PathBuf> = std::env::var_os("HOME")
                .map(|h| PathBuf::from(h).join(".acme.sh"))
                .into_iter()
                .collect();
            homes.push(PathBuf::from("/root/.acme.sh"));
            homes.dedup();
            homes
        }
    }
}

/// Where `--apply` registers the ACME client's hook, and what the hook calls.
fn hook_places(cli: &Cli, args: &InitArgs) -> Places {
    Places {
        letsencrypt: args.letsencrypt_dir.clone(),
        dehydrated_config: args.dehydrated_config.clone(),
        dehydrated_shim: args.dehydrated_hook.clone(),
        // By its path: the clients' timers run hooks with a PATH that may lack it.
        program: std::env::current_exe().unwrap_or_else(|_| PathBuf::from("/usr/bin/dane-roll")),
        // Absolute: the hook runs from the client's directory.
        config: std::fs::canonicalize(&cli.config).unwrap_or_else(|_| cli.config.clone()),
    }
}

fn doveconf(args: &InitArgs) -> Doveconf {
    Doveconf {
        program: args.doveconf.clone(),
        config: args.dovecot_config.clone(),
    }
}

/// The resolver discovery asks: `--resolver`, else the system's first nameserver.
fn resolver(args: &InitArgs) -> anyhow::Result<Option<Resolver>> {
    let address = match &args.resolver {
        Some(text) => Some(
            parse_socket_addr(text, DNS_PORT).map_err(|e| anyhow::anyhow!("--resolver: {e}"))?,
        ),
        None => std::fs::read_to_string(RESOLV_CONF)
            .ok()
            .and_then(|t| first_nameserver(&t)),
    };
    if address.is_none() {
        tracing::warn!(
            "no resolver: /etc/resolv.conf names none and --resolver was not given; DNS is not looked at"
        );
    }
    Ok(address.map(|a| Resolver::new(a, DNS_TIMEOUT)))
}

/// Print the findings: on standard output, or on standard error when the configuration goes
/// to standard output (`--print`).
fn report(found: &Discovery, to_stderr: bool) {
    for note in &found.notes {
        let mark = match note.certainty {
            Certainty::Found => "found",
            Certainty::Guessed => "guessed",
            Certainty::NotFound => "NOT FOUND",
        };
        let line = format!("{:<9} {:<9} {}", note.topic, mark, note.text);
        if to_stderr {
            crate::output::error_line(&line);
        } else {
            crate::output::line(&line);
        }
    }
}

fn next_steps(cli: &Cli, found: &Discovery, service: &str) {
    let c = cli.config.display();
    println!("next:");
    println!("  1. read {c}: every value says where it came from; fix what is guessed");
    println!("  2. dane-roll -c {c} config check");
    println!(
        "  3. dane-roll -c {c} init --apply   (switches Postfix to dane-roll's file, registers the ACME hook, adopts the live key; --undo goes back)"
    );
    println!("  4. (done by --apply) the ACME client calls dane-roll after each renewal; by hand:");
    // By its path: ACME clients' timers run hooks with a PATH that lacks /usr/local/bin.
    let program =
        std::env::current_exe().unwrap_or_else(|_| std::path::PathBuf::from("/usr/bin/dane-roll"));
    for line in crate::init::hook::hook_lines(found.acme.as_ref(), &cli.config, service, &program) {
        crate::output::line(&format!("       {line}"));
    }
    println!(
        "  5. run `dane-roll run` every few minutes: systemctl enable --now dane-roll.timer (hooks/), or the cron line"
    );
}

fn apply_switch(
    cli: &Cli,
    args: &InitArgs,
    found: &Discovery,
    runtime: &tokio::runtime::Runtime,
) -> anyhow::Result<Status> {
    let config = Config::load_with_state_dir(&cli.config, cli.state_dir.as_deref())?;
    let service = config.service_or_err(&args.service)?;
    let ChainFiles::One(chain_file) = &service.chain_files else {
        bail!(
            "service {}: --apply switches one chain-file; with chain-files, point smtpd_tls_chain_files at them by hand",
            service.name
        );
    };
    let (Some(postfix), Some(live)) = (&found.postfix, &found.live) else {
        bail!(
            "--apply: Postfix's key and certificate were not found (see above); nothing to switch"
        );
    };
    let key_and_chain = live
        .key_and_chain_pem()
        .context("cannot encode the live key and chain")?;
    let spki = live.spki_sha256().context("cannot hash the live key")?;
    let postconf = Postconf {
        program: args.postconf.clone(),
        config_dir: Some(postfix.config_dir.clone()),
    };
    // Before anything changes: Postfix must serve the key in its files now. Otherwise (a
    // renewal not reloaded yet) the switch would put a key in service that DNS may not have.
    let resolver = Resolver::from_settings(&config.resolver)?;
    match runtime.block_on(apply::verify(&resolver, &service.endpoints, &spki)) {
        Ok(_) => {}
        Err(Unconfirmed::OtherKey(why)) => {
            tracing::error!(
                "before the switch: {why}; Postfix does not serve the key in its files ({}), so nothing was changed: reload Postfix once DNS has that key's record, then run --apply again",
                live.files
                    .iter()
                    .map(|f| f.display().to_string())
                    .collect::<Vec<_>>()
                    .join(" + ")
            );
            return Ok(Status::Failure);
        }
        Err(Unconfirmed::Unreachable(why)) => {
            tracing::error!(
                "before the switch: {why}; --apply judges the switch by a live handshake on every endpoint and cannot make one, so nothing was changed"
            );
            return Ok(Status::Failure);
        }
    }
    let dovecot = dovecot_switch(args, found, &service.reload);
    apply::switch(&Switch {
        postconf: &postconf,
        main_cf: postfix.main_cf(),
        chain_file,
        key_and_chain: &key_and_chain,
        reload: &service.reload,
        timeout: RELOAD_TIMEOUT,
        dovecot: dovecot.as_ref().map(|(c, p)| (c, p.clone())),
    })?;
    println!(
        "switched: smtpd_tls_chain_files = {} (main.cf backed up to {}); probing",
        chain_file.display(),
        apply::backup_path(&postfix.main_cf()).display()
    );
    match runtime.block_on(apply::verify(&resolver, &service.endpoints, &spki)) {
        Ok(probes) => {
            println!("verified: {probes} handshakes present the key Postfix served before");
            let mut status = Status::Ok;
            if let Err(err) = adopt_live(&config, service, found, live, chain_file) {
                tracing::warn!(
                    "the switch is done, but the live key and records were not adopted into the store: {err}; `dane-roll run` adopts the served key as drift instead"
                );
                status = Status::Warning;
            }
            match &found.acme {
                Some(cert) => match register::register(cert, &hook_places(cli, args)) {
                    Ok(Registered::Added(what)) => println!("hook     added {what}"),
                    Ok(Registered::Present(what)) => println!("hook     present: {what}"),
                    Ok(Registered::NotDone(what)) => {
                        tracing::warn!("the ACME hook is not registered: {what}");
                        status = Status::Warning;
                    }
                    Err(err) => {
                        tracing::warn!("the ACME hook is not registered: {err}");
                        status = Status::Warning;
                    }
                },
                None => println!(
                    "hook     no ACME client found: hand each new certificate over with `dane-roll deploy`"
                ),
            }
            println!(
                "undo with: dane-roll -c {} init --undo",
                cli.config.display()
            );
            Ok(status)
        }
        Err(why) => {
            tracing::error!("the handshake after the switch does not match: {why}; switching back");
            let drop_in = dovecot.as_ref().map(|(_, p)| p.as_path());
            apply::restore(&postfix.main_cf(), drop_in, &service.reload, RELOAD_TIMEOUT)?;
            println!("switched back: main.cf restored, Postfix reloaded");
            Ok(Status::Failure)
        }
    }
}

/// Put the live key (now in `chain_file`), the ACME client's next key and their records at the
/// service's owner names into the store (under the service's lock).
fn adopt_live(
    config: &Config,
    service: &crate::config::Service,
    found: &Discovery,
    live: &crate::init::discover::Live,
    chain_file: &std::path::Path,
) -> anyhow::Result<()> {
    let Some(adoption) = adopt::plan(service, live, found.acme.as_ref(), &found.tlsa) else {
        bail!("the live key is of no key slot dane-roll rolls (RSA, EC, Ed25519)");
    };
    let (_held, mut store) = super::locked_store(config, &service.name, "dane-roll init --apply")?;
    adopt::adopt(
        &mut store,
        &service.name,
        &adoption,
        chain_file,
        service.ttl,
        SystemClock.now(),
    )?;
    println!(
        "adopted  the served key {} as the current {} key",
        adoption.current.short(),
        adoption.slot
    );
    if let Some((next, path)) = &adoption.next {
        println!(
            "adopted  the ACME client's next key {} ({}) as next",
            next.short(),
            path.display()
        );
    }
    for record in &adoption.records {
        println!("adopted  {record} as ours");
    }
    Ok(())
}

/// Dovecot's part of the switch: only when it serves Postfix's key and the service's reload
/// command reloads it too (else a later rollover would leave it serving the old key).
fn dovecot_switch(
    args: &InitArgs,
    found: &Discovery,
    reload: &[Vec<String>],
) -> Option<(Doveconf, PathBuf)> {
    let dovecot = found.dovecot.as_ref().filter(|_| found.dovecot_same_key)?;
    if !reload
        .iter()
        .flatten()
        .any(|w| w.contains("doveadm") || w.contains("dovecot"))
    {
        tracing::warn!(
            "Dovecot serves the same key but the service's reload command does not reload it: Dovecot is left on its own files"
        );
        return None;
    }
    Some((doveconf(args), dovecot.drop_in()))
}

fn undo(
    cli: &Cli,
    args: &InitArgs,
    postconf: &Postconf,
    doveconf: &Doveconf,
) -> anyhow::Result<Status> {
    let acme_sh: Vec<_> = acme_sh_homes(args)
        .iter()
        .flat_map(|home| crate::init::discover::acme::acme_sh(home))
        .collect();
    for done in register::unregister(&hook_places(cli, args), &acme_sh)? {
        println!("{done}");
    }
    let postfix = postconf.discover()?;
    let drop_in = doveconf.config_file().parent().map(|d| {
        d.join("conf.d")
            .join(crate::init::discover::dovecot::DROP_IN)
    });
    let reload = match Config::load_with_state_dir(&cli.config, cli.state_dir.as_deref()) {
        Ok(config) => config
            .services
            .first()
            .map(|s| s.reload.clone())
            .unwrap_or_default(),
        Err(_) => Vec::new(),
    };
    let reload = if reload.is_empty() {
        let d = Discovery {
            postfix: Some(postfix.clone()),
            ..Discovery::default()
        };
        write::reload_commands(&d)
    } else {
        reload
    };
    apply::restore(
        &postfix.main_cf(),
        drop_in.as_deref(),
        &reload,
        RELOAD_TIMEOUT,
    )?;
    println!(
        "restored {} from its backup; Postfix reloaded",
        postfix.main_cf().display()
    );
    Ok(Status::Ok)
}
