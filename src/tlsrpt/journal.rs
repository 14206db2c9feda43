//! The rollover journal as a report's window sees it: the configured services with their
//! endpoints and owner names, every rollover of every key slot rebuilt from the store's events
//! (when it began, each phase and when it was entered, when it ended), and every record the
//! services ever published with when it was published and retired.
//!
//! The `rollovers` table keeps only a slot's latest rollover; the events keep them all, so the
//! spans are rebuilt from the events (a `staged` event after a final phase begins a new one).

use crate::config::Config;
use crate::rollover::{KeyHash, PhaseName, Rollover, Slot, Timestamp};
use crate::store::{PublishedRecord, Store, StoreError, StoredEvent};

/// How many events are read back (all of them, on any real store).
const EVENTS: usize = 1_000_000;

/// A configured service as the tie needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceView {
    /// Its name.
    pub name: String,
    /// Its endpoints: host (lower case, no final dot) and port.
    pub endpoints: Vec<(String, u16)>,
    /// The names its certificate carries.
    pub domains: Vec<String>,
}

/// One rollover of one key slot, rebuilt from the events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    /// The service.
    pub service: String,
    /// The key slot.
    pub slot: Slot,
    /// When it began (its first event).
    pub started: Timestamp,
    /// Each phase it entered, and when, in order.
    pub phases: Vec<(PhaseName, Timestamp)>,
    /// When it reached a final phase (or another rollover of the slot began).
    pub ended: Option<Timestamp>,
    /// The key it rolled from and the key it rolled to, when the store still holds the
    /// rollover (the slot's latest).
    pub keys: Option<(Option<KeyHash>, KeyHash)>,
}

impl Span {
    /// When the phase `name` was first entered.
    pub fn entered(&self, name: PhaseName) -> Option<Timestamp> {
        self.phases
            .iter()
            .find(|(p, _)| *p == name)
            .map(|(_, t)| *t)
    }

    /// Whether the span overlaps `[begin, end]`.
    pub fn overlaps(&self, begin: Timestamp, end: Timestamp) -> bool {
        self.started <= end && self.ended.is_none_or(|e| e >= begin)
    }

    /// The phases under way in `[begin, end]`: the one in effect at `begin`, then each entered
    /// before `end`.
    pub fn phases_in(&self, begin: Timestamp, end: Timestamp) -> Vec<(PhaseName, Timestamp)> {
        let mut out: Vec<(PhaseName, Timestamp)> = Vec::new();
        for (phase, at) in &self.phases {
            if *at <= begin {
                out.clear();
                out.push((*phase, *at));
            } else if *at <= end {
                out.push((*phase, *at));
            }
        }
        out
    }
}

/// The journal: services, rollovers, published records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Journal {
    /// The configured services.
    pub services: Vec<ServiceView>,
    /// Every rollover, by service and slot, oldest first.
    pub spans: Vec<Span>,
    /// Every record any service published.
    pub published: Vec<PublishedRecord>,
}

impl Journal {
    /// The journal of `config`'s services from `store`.
    pub fn load(config: &Config, store: &Store) -> Result<Journal, StoreError> {
        let services: Vec<ServiceView> = config
            .services
            .iter()
            .map(|s| ServiceView {
                name: s.name.clone(),
                endpoints: s
                    .endpoints
                    .iter()
                    .map(|e| (e.host.clone(), e.port))
                    .collect(),
                domains: s.domains.clone(),
            })
            .collect();
        let mut published = Vec::new();
        for s in &services {
            published.extend(store.published(&s.name)?);
        }
        let mut journal = Journal::from_parts(services, &store.events(None, EVENTS)?, published);
        journal.add_rollovers(&store.rollovers()?);
        Ok(journal)
    }

    /// Give the latest span of each slot the keys of the slot's stored rollover.
    pub fn add_rollovers(&mut self, rollovers: &[Rollover]) {
        for r in rollovers {
            if let Some(span) = self
                .spans
                .iter_mut()
                .filter(|s| s.service == r.request.service && s.slot == r.request.slot)
                .max_by_key(|s| s.started)
            {
                span.keys = Some((r.request.old, r.request.new));
            }
        }
    }

    /// The journal from its parts (`events` oldest first).
    pub fn from_parts(
        services: Vec<ServiceView>,
        events: &[StoredEvent],
        published: Vec<PublishedRecord>,
    ) -> Journal {
        let mut spans: Vec<Span> = Vec::new();
        // The index in `spans` of each slot's open rollover.
        let mut open: Vec<((String, Slot), usize)> = Vec::new();
        for e in events {
            let key = (e.service.clone(), e.slot.clone());
            let phase = e.event.phase;
            let at = e.event.time;
            let current = open.iter().position(|(k, _)| *k == key);
            let begins = match current {
                None => true,
                Some(i) => {
                    let span = &spans[open[i].1];
                    phase == PhaseName::Staged
                        && span
                            .phases
                            .last()
                            .is_some_and(|(p, _)| *p != PhaseName::Staged)
                }
            };
            if begins {
                if let Some(i) = current {
                    let (_, index) = open.remove(i);
                    let span = &mut spans[index];
                    span.ended.get_or_insert(at);
                }
                spans.push(Span {
                    service: e.service.clone(),
                    slot: e.slot.clone(),
                    started: at,
                    phases: vec![(phase, at)],
                    ended: phase.is_final().then_some(at),
                    keys: None,
                });
                open.push((key, spans.len() - 1));
                continue;
            }
            let Some(i) = current else { continue };
            let span = &mut spans[open[i].1];
            if span.phases.last().is_none_or(|(p, _)| *p != phase) {
                span.phases.push((phase, at));
            }
            if phase.is_final() {
                span.ended.get_or_insert(at);
            } else {
                span.ended = None;
            }
        }
        Journal {
            services,
            spans,
            published,
        }
    }

    /// The configured service `name`.
    pub fn service(&self, name: &str) -> Option<&ServiceView> {
        self.services.iter().find(|s| s.name == name)
    }
}
