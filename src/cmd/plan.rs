//! `dane-roll plan [SERVICE] [--json]`: what `dane-roll run` would do now, per pending rollover, from
//! the stored state and the clock alone: the engine's next step with nothing new observed.
//! Nothing is published, installed or saved. Then, per key slot, what `run` would do to the
//! owner names (the live key's record where it lacks first, removed endpoints, drift).

use crate::cli::{Cli, PlanArgs};
use crate::config::Config;
use crate::exit::Status;
use crate::rollover::Action;
use crate::rollover::driver::owners::SlotLook;
use crate::rollover::owners::Because;

use serde_json::{Value, json};

use super::run::open_driver;

/// Run the command.
pub(super) fn run(cli: &Cli, args: &PlanArgs) -> anyhow::Result<Status> {
    let config = Config::load_with_state_dir(&cli.config, cli.state_dir.as_deref())?;
    let driver = open_driver(cli, config, "dane-roll plan", Default::default())?;
    let planned = driver.plan(args.service.get())?;
    let owners = driver.look_all_owners(args.service.get())?;
    if args.json {
        let mut rollovers = Vec::new();
        for (r, step) in &planned {
            let next = step.next.phase.name();
            rollovers.push(json!({
                "service": r.request.service,
                "slot": r.request.slot.as_str(),
                "phase": r.phase.name(),
                "owners": crate::rollover::driver::owner_lines(driver.store(), r)?,
                "would_move_to": (next != r.phase.name()).then_some(next),
                "actions": step.actions.iter().map(describe).collect::<Vec<_>>(),
            }));
        }
        let owner_names: Vec<Value> = owners
            .iter()
            .filter(|l| !l.reconcile.is_empty())
            .map(|look| {
                json!({
                    "service": look.service,
                    "slot": look.slot.as_str(),
                    "actions": describe_owners(look),
                })
            })
            .collect();
        let doc = json!({ "rollovers": rollovers, "owner_names": owner_names });
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(Status::Ok);
    }
    if planned.is_empty() {
        println!("no rollover stored; `dane-roll deploy` begins one");
    }
    for (r, step) in planned {
        println!(
            "{} ({}): phase {}",
            r.request.service,
            r.request.slot,
            r.phase.name()
        );
        for line in crate::rollover::driver::owner_lines(driver.store(), &r)? {
            println!("  {line}");
        }
        if step.next.phase.name() != r.phase.name() {
            println!("  would move to {}", step.next.phase.name());
        }
        let mut any = false;
        for action in &step.actions {
            any = true;
            println!("  would {}", describe(action));
        }
        if !any {
            println!("  nothing to do");
        }
    }
    for look in owners.iter().filter(|l| !l.reconcile.is_empty()) {
        println!("{} ({}): owner names", look.service, look.slot);
        for line in describe_owners(look) {
            println!("  would {line}");
        }
    }
    Ok(Status::Ok)
}

/// What `run` would do to a slot's owner names, in order (live keys' records first).
fn describe_owners(look: &SlotLook) -> Vec<String> {
    let mut out = Vec::new();
    for (record, because) in &look.reconcile.publish {
        out.push(match because {
            Because::Live(from) => format!("publish {record}: the key served there ({from})"),
            Because::Next => format!("publish {record}: the next key"),
        });
    }
    for record in &look.reconcile.retire {
        out.push(format!(
            "retire {record}: its owner name is no longer configured and nothing serves there"
        ));
    }
    for (record, why) in &look.reconcile.kept {
        out.push(format!("keep {record}: {why}"));
    }
    if let Some(d) = &look.reconcile.drift {
        out.push(format!(
            "alert: key {} is served, the stored current key is {}; adopt it",
            d.served.short(),
            d.stored.map_or_else(|| "none".to_owned(), |k| k.short())
        ));
    }
    out
}

fn describe(action: &Action) -> String {
    match action {
        Action::Publish { record, ttl } => format!("publish {record} (TTL {ttl})"),
        Action::CheckDns { expected } => format!(
            "ask every authoritative server and the resolver for {}{}",
            crate::output::count(expected.len(), "record"),
            ", and install the certificate if they are served, validated and 2×TTL old"
        ),
        Action::Install { chain } => format!("install {}", chain.display()),
        Action::Reload => "reload the service".to_owned(),
        Action::Probe { endpoints, expect } => format!(
            "probe {} and expect key {}",
            endpoints.join(", "),
            expect.short()
        ),
        Action::Retire(record) => format!("retire {record}"),
        Action::ReinstallPrevious { chain } => format!("reinstall {}", chain.display()),
        Action::GenerateNextKey => "generate the next key".to_owned(),
        Action::Alert(text) => format!("alert: {text}"),
        Action::Wait {
            until: Some(t),
            reason,
        } => format!("wait until {t} ({reason})"),
        Action::Wait {
            until: None,
            reason,
        } => format!("wait ({reason})"),
    }
}
