//! What `dane-roll run` says about the ACME sources it looked at before driving the rollovers
//! ([`crate::rollover::driver::reconcile`]): one line per certificate a missed hook did not hand
//! over, a warning per source it could not read or would not act on.

use crate::cli::Cli;
use crate::exit::Status;
use crate::rollover::PhaseName;
use crate::rollover::driver::reconcile::{Look, Reconciled, Verdict};

/// Print what reconciling found and did; the status it deserves (warning: a source unreadable or
/// held; failure: starting or installing failed).
pub(super) fn report(cli: &Cli, found: &[(Look, Reconciled)]) -> Status {
    let mut status = Status::Ok;
    for (look, done) in found {
        let (service, client, location) = (&look.service, look.client, &look.location);
        let origin = if look.recorded {
            "recorded by its last hook"
        } else {
            "as configured"
        };
        match (done, &look.verdict) {
            (Reconciled::Started(s), verdict) => {
                if !cli.quiet {
                    let key = match verdict {
                        Verdict::NewKey(key) => format!(" has the new key {}", key.short()),
                        _ => String::new(),
                    };
                    println!(
                        "{service} ({}): the {client} hook was missed: {client}'s certificate in \
                         {location}{key}; the timer picked it up and started the rollover \
                         (phase {})",
                        s.slot, s.phase
                    );
                }
                if s.phase == PhaseName::RolledBack || !s.failures.is_empty() {
                    status = Status::Failure;
                }
            }
            (
                Reconciled::Renewed {
                    slot,
                    verified,
                    problem,
                },
                _,
            ) => {
                if *verified {
                    if !cli.quiet {
                        println!(
                            "{service} ({slot}): the {client} hook was missed: {client} renewed \
                             the certificate in {location} with the same key; the timer \
                             installed it (DNS unchanged)"
                        );
                    }
                } else {
                    eprintln!(
                        "dane-roll: error: service {service} ({slot}): the renewal from \
                         {location} is installed, but the live handshake does not verify: {}; \
                         check the service with `dane-roll check`",
                        problem.as_deref().unwrap_or_default()
                    );
                    status = Status::Failure;
                }
            }
            (Reconciled::Failed(why), _) => {
                eprintln!(
                    "dane-roll: error: service {service}: the {client} hook was missed and the \
                     certificate in {location} could not be taken over: {why}; the next run \
                     tries again"
                );
                status = Status::Failure;
            }
            (_, Verdict::Unreadable(why)) => {
                let fix = if look.recorded {
                    "; the next successful hook records the source again (a service whose \
                     certificate no longer comes from this client: set its `acme-source`, or \
                     `acme-source = { client = \"none\" }`)"
                } else {
                    "; if the client keeps it elsewhere, set the service's `lineage` to \
                     certbot's live directory (full path) or its `acme-source`"
                };
                eprintln!(
                    "dane-roll: warning: service {service}: {client}'s current certificate \
                     ({origin}: {location}) cannot be read, so a missed hook would go unnoticed; \
                     nothing was changed: {why}{fix}"
                );
                status = worse(status, Status::Warning);
            }
            (_, Verdict::Held(why)) => {
                eprintln!(
                    "dane-roll: warning: service {service}: {client}'s certificate in {location} \
                     is not the installed one, and is left alone: {why}"
                );
                status = worse(status, Status::Warning);
            }
            (_, Verdict::Queued { behind }) if !cli.quiet => {
                println!(
                    "{service}: {client}'s certificate in {location} is looked at again once the \
                     rollover to {} under way ends",
                    behind.short()
                );
            }
            (_, Verdict::Older) if cli.verbose > 0 => {
                eprintln!(
                    "dane-roll: service {service}: the installed certificate is newer than \
                     {client}'s in {location} (deployed otherwise since): left as it is"
                );
            }
            _ => {}
        }
    }
    status
}

fn worse(a: Status, b: Status) -> Status {
    if b.code() > a.code() { b } else { a }
}
