//! The phases up to the install: `staged` (look at the TTLs served, publish every record),
//! `published` (wait until every nameserver serves the records, then 2×TTL, and the resolver
//! validates them) and `aged` (re-check the gate, install).

use crate::rollover::phase::Phase;
use crate::rollover::{OwnerName, Timestamp, ttl};

use super::gate::{gate, served_everywhere, validated, with_not_waited_for};
use super::machine::Ctx;
use super::protocol::{Action, ActionOutcome, DnsReport};

impl Ctx<'_> {
    pub(super) fn staged(&mut self) -> bool {
        if !self.r.looked {
            // Look at the TLSA RRsets as resolvers may hold them now, before our first change:
            // a TTL larger than the configured one lengthens the wait.
            let Some(dns) = self.latest_dns() else {
                let expected = self.r.publish_set();
                self.actions.push(Action::CheckDns { expected });
                return false;
            };
            let owners = self.r.request.owners.clone();
            let mut seen = self.r.ttl_seen.take();
            ttl::fold(&mut seen, &owners, dns, self.now);
            self.r.ttl_seen = seen;
            self.r.looked = true;
            let detail = match &self.r.ttl_seen {
                Some(s) => format!(
                    "before publishing: {} serves the TLSA RRset at {} with TTL {} s",
                    s.source, s.owner, s.ttl
                ),
                None => "before publishing: no TLSA RRset is served at the owner names".to_owned(),
            };
            self.event(detail);
        }
        let set = self.r.publish_set();
        if !self.publish_all(&set, &[]) {
            return false;
        }
        let confirmed_at = self.r.request.confirmed_since;
        self.go(
            Phase::Published {
                since: self.now,
                confirmed_at,
                checks: 0,
            },
            format!("all {} records published", set.len()),
        )
    }

    pub(super) fn published(&mut self, confirmed_at: Option<Timestamp>, checks: u32) -> bool {
        let Some(dns) = self.latest_dns() else {
            let expected = self.r.publish_set();
            self.actions.push(Action::CheckDns { expected });
            return false;
        };
        let wanted = self.r.gate_set();
        let served = served_everywhere(&wanted, dns);
        let valid = validated(&wanted, dns);
        let since = self.r.phase.since();
        let checks = checks.saturating_add(1);
        let gate_owners: Vec<OwnerName> = self.r.gate_set().into_iter().map(|r| r.owner).collect();
        if confirmed_at.is_none() {
            // Every TTL seen until the records are confirmed (this look included) counts.
            let before = self.r.wait();
            let mut seen = self.r.ttl_seen.take();
            ttl::fold(&mut seen, &gate_owners, dns, self.now);
            self.r.ttl_seen = seen;
            if self.r.wait() > before
                && let Some(s) = &self.r.ttl_seen
            {
                let detail = format!(
                    "{} serves the TLSA RRset at {} with TTL {} s: the wait is 2×{} s",
                    s.source, s.owner, s.ttl, s.ttl
                );
                self.event(detail);
            }
        }
        if served.is_ok()
            && !self.r.ttl_warned
            && let Some((t, owner, ns)) =
                ttl::served_after_change(&gate_owners, dns, self.r.request.ttl)
        {
            self.r.ttl_warned = true;
            let configured = self.r.request.ttl;
            self.event(format!(
                "warning: {ns} serves {owner} with TTL {t} s, not the configured {configured} s \
                 (the provider or an operator set it); the wait counts {} s",
                self.r.governing_ttl()
            ));
        }
        if let Err(reasons) = served {
            let reason = with_not_waited_for(reasons.join("; "), dns);
            self.nameservers_down(dns, since);
            if confirmed_at.is_some() {
                self.alert(format!(
                    "the records are no longer served everywhere ({reason}); the 2×TTL wait \
                     starts again once they are"
                ));
            }
            if self.obs.force {
                self.alert(format!(
                    "--force skips only the 2×TTL wait; it cannot install before every \
                     nameserver serves the records and they validate ({reason})"
                ));
            }
            self.r.phase = Phase::Published {
                since,
                confirmed_at: None,
                checks,
            };
            self.wait(None, reason);
            return false;
        }
        // Served everywhere: the wait counts from the first time that was seen.
        let t = confirmed_at.unwrap_or(self.now);
        let due = t.plus(self.r.wait());
        if confirmed_at.is_none() {
            self.event(format!(
                "served by every nameserver at {t}; install due at {due} once the resolver \
                 validates them"
            ));
        }
        self.r.phase = Phase::Published {
            since,
            confirmed_at: Some(t),
            checks,
        };
        if let Err(reasons) = valid {
            let reason = with_not_waited_for(reasons.join("; "), dns);
            if self.obs.force {
                self.alert(format!(
                    "--force skips only the 2×TTL wait; it cannot install before every \
                     nameserver serves the records and they validate ({reason})"
                ));
            }
            if self.now >= due {
                // Past the wait and still not validated: something is wrong (signing,
                // DS, the resolver); hold without a due time and say why.
                self.wait(None, reason);
            } else {
                // Caches of the RRset without the new record expire within the wait.
                self.wait(
                    Some(due),
                    format!("2×TTL ({} s) after {t}; {reason}", self.r.wait().as_secs()),
                );
            }
            return false;
        }
        if self.now >= due {
            return self.go(
                Phase::Aged {
                    since: self.now,
                    forced: false,
                    install_failures: 0,
                },
                format!("served everywhere for 2×TTL since {t}, and validated"),
            );
        }
        if self.obs.force {
            self.r.forced = Some(self.now);
            self.alert(format!(
                "FORCED: installing {} before the 2×TTL wait ended (due {due}); \
                 resolvers that cached the old records may fail DANE until then",
                self.r.request.new.short()
            ));
            return self.go(
                Phase::Aged {
                    since: self.now,
                    forced: true,
                    install_failures: 0,
                },
                format!(
                    "wait skipped by --force ({} s early)",
                    self.now.until(due).as_secs()
                ),
            );
        }
        self.wait(
            Some(due),
            format!("2×TTL ({} s) after {t}", self.r.wait().as_secs()),
        );
        false
    }

    /// A nameserver that gives no usable answer longer than the 2×TTL wait after the records
    /// were published: one alert per rollover naming it, with the ways out (it comes back, it
    /// leaves the NS set, or `dane-roll run --skip-nameserver NAME`, recorded).
    fn nameservers_down(&mut self, dns: &DnsReport, since: Timestamp) {
        if self.r.nameserver_down_alerted || self.now < since.plus(self.r.wait()) {
            return;
        }
        let mut down: Vec<&str> = dns
            .owners
            .iter()
            .flat_map(|o| &o.nameservers)
            .filter(|ns| !ns.not_waited_for && ns.records.is_err())
            .map(|ns| ns.nameserver.as_str())
            .collect();
        down.sort_unstable();
        down.dedup();
        if down.is_empty() {
            return;
        }
        self.r.nameserver_down_alerted = true;
        let wait = self.r.wait().as_secs();
        self.alert(format!(
            "{} gave no usable answer for more than the 2×TTL wait ({wait} s) and holds the \
             gate: the new certificate is not installed until it serves the records. Bring it \
             back, remove it from the zone's NS set, or proceed without it with \
             `dane-roll run --skip-nameserver NAME` (recorded in the history)",
            down.join(", ")
        ));
    }

    pub(super) fn aged(&mut self, forced: bool, install_failures: u32) -> bool {
        let since = self.r.phase.since();
        if let Some(result) = self.latest(|o| match o {
            ActionOutcome::Installed(r) => Some(r.clone()),
            _ => None,
        }) {
            return match result {
                Ok(()) => self.go(
                    Phase::Installed {
                        since: self.now,
                        reloaded: false,
                        reload_failures: 0,
                        probes: 0,
                    },
                    format!(
                        "key and chain installed from {}",
                        self.r.request.chain.display()
                    ),
                ),
                Err(err) => {
                    self.r.phase = Phase::Aged {
                        since,
                        forced,
                        install_failures: install_failures.saturating_add(1),
                    };
                    self.alert(format!("install failed: {err}; the next run retries"));
                    false
                }
            };
        }
        let Some(dns) = self.latest_dns() else {
            let expected = self.r.publish_set();
            self.actions.push(Action::CheckDns { expected });
            return false;
        };
        match gate(&self.r.gate_set(), dns) {
            Ok(()) => {
                self.actions.push(Action::Install {
                    chain: self.r.request.chain.clone(),
                });
                false
            }
            Err(reasons) => {
                self.alert(format!(
                    "the records are no longer served everywhere or no longer validate ({}); \
                     back to waiting",
                    reasons.join("; ")
                ));
                self.go(
                    Phase::Published {
                        since: self.now,
                        confirmed_at: None,
                        checks: 0,
                    },
                    "install held: records not confirmed".to_owned(),
                )
            }
        }
    }
}
