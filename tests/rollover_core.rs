//! The rollover core without network: whole rollovers on a fake clock against a scripted world
//! (nameservers that lag, a resolver that validates or not, a service that reloads or not, a
//! probe), persisted to an on-disk store after every step, killed and resumed; and the service
//! lock between two processes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use dane_roll::config::Scheme;
use dane_roll::lock::{self, LockError};
use dane_roll::rollover::{
    Action, DnsReport, KeyHash, NsAnswer, Observations, Outcome, OwnerReport, Phase, PhaseName,
    ProbeResult, ProbeVerdict, Rollover, Slot, StageRequest, Step, Timestamp, TlsaAt, Validation,
    stage, step,
};
use dane_roll::store::{KeyEntry, KeyRole, RecordChange, Store};

const TTL: u32 = 3600;
const TWO_TTL: i64 = 2 * TTL as i64;
const T0: Timestamp = Timestamp::from_secs(1_700_000_000);
const OWNERS: [&str; 2] = ["_25._tcp.mx1.example.com.", "_25._tcp.mx2.example.com."];
const ENDPOINTS: [&str; 2] = ["mx1.example.com:25", "mx2.example.com:25"];

fn key(n: u8) -> KeyHash {
    KeyHash([n; 32])
}
const OLD: u8 = 1;
const NEW: u8 = 2;

/// Records as (owner, presentation).
type Zone = BTreeSet<(String, String)>;

/// The world the driver acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
struct World {
    /// What the provider (primary) holds.
    primary: Zone,
    /// What each secondary serves (name, records, lagging); a lagging one does not follow.
    secondaries: Vec<(String, Zone, bool)>,
    validating: bool,
    /// The TTL every nameserver serves the TLSA RRsets with. A publish sets it to the TTL
    /// published with, raised to `min_ttl` (BIND gives an RRset the TTL of its last added
    /// record; a provider may clamp it).
    ns_ttl: u32,
    /// A provider's minimum TTL.
    min_ttl: u32,
    /// Chain files → the key in them.
    files: BTreeMap<PathBuf, KeyHash>,
    installed: KeyHash,
    served: KeyHash,
    reload_failures_left: u32,
    probe_override: Option<ProbeVerdict>,
    next_keys: u8,
    /// Every action performed, in order (as text).
    log: Vec<String>,
    retired: Vec<TlsaAt>,
}

fn entry(r: &TlsaAt) -> (String, String) {
    (r.owner.clone(), r.record.to_string())
}

impl World {
    fn new() -> World {
        let mut primary = BTreeSet::new();
        for owner in OWNERS {
            primary.insert(entry(&TlsaAt::new(owner, key(OLD).dane_ee())));
        }
        // Another host's record at a shared owner name: never ours.
        primary.insert(entry(&TlsaAt::new(OWNERS[0], key(99).dane_ee())));
        let mut files = BTreeMap::new();
        files.insert(PathBuf::from("/staged/mx.pem"), key(NEW));
        files.insert(PathBuf::from("/backup/mx.pem"), key(OLD));
        World {
            secondaries: vec![
                ("ns1.example.net".into(), primary.clone(), false),
                ("ns2.example.org".into(), primary.clone(), false),
            ],
            primary,
            validating: true,
            ns_ttl: TTL,
            min_ttl: 0,
            files,
            installed: key(OLD),
            served: key(OLD),
            reload_failures_left: 0,
            probe_override: None,
            next_keys: 50,
            log: Vec::new(),
            retired: Vec::new(),
        }
    }

    fn sync(&mut self) {
        for (_, served, lagging) in &mut self.secondaries {
            if !*lagging {
                *served = self.primary.clone();
            }
        }
    }

    fn set_lagging(&mut self, ns: usize, lagging: bool) {
        self.secondaries[ns].2 = lagging;
        self.sync();
    }

    fn dns(&self) -> DnsReport {
        let records = |set: &BTreeSet<(String, String)>, owner: &str| {
            set.iter()
                .filter(|(o, _)| o == owner)
                .map(|(_, r)| r.parse().unwrap())
                .collect::<Vec<_>>()
        };
        DnsReport {
            owners: OWNERS
                .iter()
                .map(|owner| OwnerReport {
                    owner: (*owner).into(),
                    nameservers: self
                        .secondaries
                        .iter()
                        .map(|(name, set, _)| NsAnswer {
                            nameserver: name.clone(),
                            records: Ok(records(set, owner)),
                            ttl: Some(self.ns_ttl),
                        })
                        .collect(),
                    resolver_ttl: self.validating.then_some(self.ns_ttl),
                    validation: if self.validating {
                        // The resolver sees what the first nameserver serves.
                        Validation::Secure(records(&self.secondaries[0].1, owner))
                    } else {
                        Validation::Insecure
                    },
                })
                .collect(),
        }
    }

    fn perform(&mut self, action: &Action) -> Option<Outcome> {
        self.log.push(format!("{action:?}"));
        Some(match action {
            Action::Publish { record, ttl } => {
                self.ns_ttl = (*ttl).max(self.min_ttl);
                self.primary.insert(entry(record));
                self.sync();
                Outcome::Published {
                    record: record.clone(),
                    result: Ok(()),
                }
            }
            Action::Retire(record) => {
                self.primary.remove(&entry(record));
                self.retired.push(record.clone());
                self.sync();
                Outcome::Retired {
                    record: record.clone(),
                    result: Ok(()),
                }
            }
            Action::CheckDns { .. } => Outcome::Dns(self.dns()),
            Action::Install { chain } => {
                self.installed = self.files[chain];
                Outcome::Installed(Ok(()))
            }
            Action::ReinstallPrevious { chain } => {
                self.installed = self.files[chain];
                Outcome::Reinstalled(Ok(()))
            }
            Action::Reload => {
                if self.reload_failures_left > 0 {
                    self.reload_failures_left -= 1;
                    Outcome::Reloaded(Err(
                        "postfix/postfix-script: fatal: the Postfix mail system is not running"
                            .into(),
                    ))
                } else {
                    self.served = self.installed;
                    Outcome::Reloaded(Ok(()))
                }
            }
            Action::Probe { endpoints, .. } => {
                let validated = self
                    .primary
                    .contains(&entry(&TlsaAt::new(OWNERS[0], self.served.dane_ee())));
                let verdict = self.probe_override.clone().unwrap_or(if validated {
                    ProbeVerdict::Match
                } else {
                    ProbeVerdict::NoMatch("no TLSA record matched".into())
                });
                Outcome::Probed(
                    endpoints
                        .iter()
                        .map(|e| ProbeResult {
                            endpoint: e.clone(),
                            address: "192.0.2.25".into(),
                            verdict: verdict.clone(),
                            live_key: Some(self.served),
                        })
                        .collect(),
                )
            }
            Action::GenerateNextKey => {
                self.next_keys += 1;
                Outcome::NextKey(Ok(key(self.next_keys)))
            }
            Action::Alert(_) | Action::Wait { .. } => return None,
            other => panic!("unexpected action {other:?}"),
        })
    }

    fn serves_everywhere(&self, record: &TlsaAt) -> bool {
        self.secondaries
            .iter()
            .all(|(_, set, _)| set.contains(&entry(record)))
    }
}

fn request() -> StageRequest {
    StageRequest {
        service: "mx".into(),
        slot: Slot::default(),
        scheme: Scheme::CurrentNext,
        ttl: TTL,
        owners: OWNERS.iter().map(|s| (*s).to_owned()).collect(),
        endpoints: ENDPOINTS.iter().map(|s| (*s).to_owned()).collect(),
        old: Some(key(OLD)),
        new: key(NEW),
        next: None,
        issuers: vec![],
        chain: "/staged/mx.pem".into(),
        previous_chain: Some("/backup/mx.pem".into()),
        confirmed_since: None,
    }
}

/// Record changes implied by the outcomes handed to a step (stored with it).
fn changes(outcomes: &[Outcome], ttl: u32) -> Vec<RecordChange> {
    outcomes
        .iter()
        .filter_map(|o| match o {
            Outcome::Published {
                record,
                result: Ok(()),
            } => Some(RecordChange::Published {
                record: record.clone(),
                ttl,
            }),
            Outcome::Retired {
                record,
                result: Ok(()),
            } => Some(RecordChange::Retired(record.clone())),
            _ => None,
        })
        .collect()
}

/// Where a simulated kill strikes: after `saves` saves, either before performing the actions
/// of the last step or after performing them (outcomes lost).
#[derive(Debug, Clone, Copy)]
struct Kill {
    saves: usize,
    after_actions: bool,
}

/// What one run did.
#[derive(Debug, Default)]
struct Run {
    steps: Vec<Step>,
    killed: bool,
}

impl Run {
    fn actions(&self) -> Vec<&Action> {
        self.steps.iter().flat_map(|s| &s.actions).collect()
    }
    fn has(&self, pred: impl Fn(&Action) -> bool) -> bool {
        self.actions().into_iter().any(pred)
    }
    fn alerts(&self) -> Vec<String> {
        self.steps
            .iter()
            .flat_map(|s| s.alerts().map(str::to_owned))
            .collect()
    }
    fn last(&self) -> &Rollover {
        &self.steps.last().unwrap().next
    }
}

/// `dane-roll run` for one service: step, persist, perform, until settled (or killed).
fn run(
    store: &mut Store,
    world: &mut World,
    now: Timestamp,
    force: bool,
    kill: &mut Option<Kill>,
) -> Run {
    let mut out = Run::default();
    let mut outcomes: Vec<Outcome> = Vec::new();
    for _ in 0..64 {
        let rollover = store.rollover("mx", &Slot::default()).unwrap().unwrap();
        let obs = Observations {
            ours: store.ours("mx", &Slot::default()).unwrap(),
            outcomes: std::mem::take(&mut outcomes),
            force,
            stored_next: store
                .key("mx", &Slot::default(), KeyRole::Next)
                .unwrap()
                .map(|k| k.hash),
            ..Observations::default()
        };
        let s = step(rollover, &obs, now);
        store
            .save(&s.next, &s.events, &changes(&obs.outcomes, TTL), now)
            .unwrap();
        let settled = s.is_settled();
        if let Some(k) = kill.as_mut()
            && k.saves == 0
            && !k.after_actions
        {
            out.steps.push(s);
            out.killed = true;
            *kill = None;
            return out;
        }
        for action in &s.actions {
            if let Some(o) = world.perform(action) {
                // A generated key is recorded at once (path and hash only), so a run killed
                // before the step that learns of it adopts it instead of making another.
                if let Outcome::NextKey(Ok(hash)) = &o {
                    store
                        .set_key(&KeyEntry {
                            service: "mx".into(),
                            slot: Slot::default(),
                            role: KeyRole::Next,
                            hash: *hash,
                            path: Some("/var/lib/dane-roll/keys/mx.next.pem".into()),
                            created: now,
                        })
                        .unwrap();
                }
                outcomes.push(o);
            }
        }
        out.steps.push(s);
        if let Some(k) = kill.as_mut() {
            if k.saves == 0 {
                out.killed = true;
                *kill = None;
                return out;
            }
            k.saves -= 1;
        }
        if settled {
            return out;
        }
    }
    panic!("run did not settle: {:?}", out.actions());
}

fn begin(store: &mut Store, world: &mut World, req: StageRequest) -> Run {
    let s = stage(req, T0).unwrap();
    store.save(&s.next, &s.events, &[], T0).unwrap();
    // The staging step's publish actions are performed by the first run (same as a resume).
    let _ = world;
    Run {
        steps: vec![s],
        killed: false,
    }
}

fn is_install(a: &Action) -> bool {
    matches!(a, Action::Install { .. })
}
fn is_retire(a: &Action) -> bool {
    matches!(a, Action::Retire(_))
}

fn phase(store: &Store) -> PhaseName {
    store
        .rollover("mx", &Slot::default())
        .unwrap()
        .unwrap()
        .phase
        .name()
}

#[test]
fn a_whole_rollover_on_a_fake_clock() {
    let mut store = Store::open_in_memory().unwrap();
    let mut world = World::new();
    let staged = begin(&mut store, &mut world, request());
    let first = &staged.steps[0];
    assert_eq!(first.next.phase.name(), PhaseName::Staged);
    // A look at the TLSA RRsets as they are served before anything changes.
    assert!(
        matches!(&first.actions[..], [Action::CheckDns { .. }]),
        "{:?}",
        first.actions
    );

    let mut kill = None;
    let r = run(&mut store, &mut world, T0, false, &mut kill);
    // old + new at both owner names, one action per record.
    let publishes: Vec<_> = r
        .actions()
        .into_iter()
        .filter(|a| matches!(a, Action::Publish { .. }))
        .collect();
    assert_eq!(publishes.len(), 4, "{:?}", r.actions());
    assert_eq!(phase(&store), PhaseName::Published);
    assert!(!r.has(is_install));
    assert_eq!(
        r.steps.last().unwrap().wait_until(),
        Some(T0.plus(Duration::from_secs(2 * 3600)))
    );
    let Phase::Published { confirmed_at, .. } = r.last().phase else {
        panic!()
    };
    assert_eq!(confirmed_at, Some(T0));

    // One TTL later: still waiting, nothing installed.
    let r = run(
        &mut store,
        &mut world,
        Timestamp::from_secs(T0.as_secs() + TWO_TTL - 1),
        false,
        &mut kill,
    );
    assert!(!r.has(is_install), "{:?}", r.actions());
    assert_eq!(world.installed, key(OLD));

    // At T + 2×TTL: install, reload, probe, verify, retire, next key, done.
    let r = run(
        &mut store,
        &mut world,
        Timestamp::from_secs(T0.as_secs() + TWO_TTL),
        false,
        &mut kill,
    );
    assert_eq!(phase(&store), PhaseName::Done, "{:?}", r.actions());
    let kinds: Vec<&str> = r
        .actions()
        .into_iter()
        .filter(|a| a.wants_outcome())
        .map(|a| match a {
            Action::CheckDns { .. } => "dns",
            Action::Install { .. } => "install",
            Action::Reload => "reload",
            Action::Probe { .. } => "probe",
            Action::Retire(_) => "retire",
            Action::GenerateNextKey => "next-key",
            Action::Publish { .. } => "publish",
            _ => "other",
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "dns", "install", "reload", "probe", "retire", "retire", "next-key", "publish",
            "publish"
        ]
    );
    assert_eq!(world.served, key(NEW));
    // Old records gone, one by one; the other host's record survives.
    assert_eq!(world.retired.len(), 2);
    assert!(world.retired.iter().all(|r| r.is_of(&key(OLD))));
    assert!(
        world
            .primary
            .contains(&entry(&TlsaAt::new(OWNERS[0], key(99).dane_ee())))
    );
    let next = r.last().next.unwrap();
    for owner in OWNERS {
        assert!(world.serves_everywhere(&TlsaAt::new(owner, key(NEW).dane_ee())));
        assert!(world.serves_everywhere(&TlsaAt::new(owner, next.dane_ee())));
    }
    // Ours now: new and next at both owners; history recorded.
    let ours = store.ours("mx", &Slot::default()).unwrap();
    assert_eq!(ours.len(), 4, "{ours:?}");
    let history = store.events(Some("mx"), 100).unwrap();
    for p in [
        PhaseName::Staged,
        PhaseName::Published,
        PhaseName::Aged,
        PhaseName::Installed,
        PhaseName::Verified,
        PhaseName::Retired,
        PhaseName::Done,
    ] {
        assert!(
            history.iter().any(|e| e.event.phase == p),
            "no event in {p}"
        );
    }
}

#[test]
fn a_lagging_nameserver_holds_and_the_wait_counts_from_confirmation() {
    let mut store = Store::open_in_memory().unwrap();
    let mut world = World::new();
    world.set_lagging(1, true);
    begin(&mut store, &mut world, request());
    let mut kill = None;
    let r = run(&mut store, &mut world, T0, false, &mut kill);
    assert_eq!(phase(&store), PhaseName::Published);
    let waits: Vec<_> = r
        .actions()
        .into_iter()
        .filter_map(|a| match a {
            Action::Wait { until, reason } => Some((*until, reason.clone())),
            _ => None,
        })
        .collect();
    assert!(
        matches!(&waits[..], [(None, reason)] if reason.contains("ns2.example.org lags")),
        "{waits:?}"
    );

    // Ten TTLs later the secondary still lags: nothing is installed.
    let later = Timestamp::from_secs(T0.as_secs() + 10 * TTL as i64);
    let r = run(&mut store, &mut world, later, false, &mut kill);
    assert!(!r.has(is_install));
    // It catches up; the wait starts now, not at publication.
    world.set_lagging(1, false);
    let r = run(&mut store, &mut world, later, false, &mut kill);
    assert!(!r.has(is_install));
    assert_eq!(
        r.last().eta(),
        Some(Timestamp::from_secs(later.as_secs() + TWO_TTL))
    );
    let r = run(
        &mut store,
        &mut world,
        Timestamp::from_secs(later.as_secs() + TWO_TTL - 1),
        false,
        &mut kill,
    );
    assert!(!r.has(is_install));
    let r = run(
        &mut store,
        &mut world,
        Timestamp::from_secs(later.as_secs() + TWO_TTL),
        false,
        &mut kill,
    );
    assert!(r.has(is_install));
    assert_eq!(phase(&store), PhaseName::Done);
}

#[test]
fn a_resolver_that_does_not_validate_holds() {
    let mut store = Store::open_in_memory().unwrap();
    let mut world = World::new();
    world.validating = false;
    begin(&mut store, &mut world, request());
    let mut kill = None;
    run(&mut store, &mut world, T0, false, &mut kill);
    let r = run(
        &mut store,
        &mut world,
        Timestamp::from_secs(T0.as_secs() + 100 * TWO_TTL),
        false,
        &mut kill,
    );
    assert!(!r.has(is_install));
    assert!(r.has(
        |a| matches!(a, Action::Wait { reason, .. } if reason.contains("not DNSSEC-validated"))
    ));
    // It validates at last: the records have been served everywhere for far more than
    // 2×TTL (the wait counts from that), so the install follows at once.
    world.validating = true;
    let t1 = Timestamp::from_secs(T0.as_secs() + 100 * TWO_TTL + 5);
    let r = run(&mut store, &mut world, t1, false, &mut kill);
    assert!(r.has(is_install));
}

#[test]
fn the_wait_counts_from_served_everywhere_not_from_validation() {
    // A resolver's cache of the RRset without the new record lives up to one TTL after every
    // nameserver serves it: that falls inside the 2×TTL wait, and must not lengthen it.
    let mut store = Store::open_in_memory().unwrap();
    let mut world = World::new();
    world.validating = false;
    begin(&mut store, &mut world, request());
    let mut kill = None;
    let r = run(&mut store, &mut world, T0, false, &mut kill);
    assert_eq!(
        r.last().eta(),
        Some(Timestamp::from_secs(T0.as_secs() + TWO_TTL))
    );
    world.validating = true;
    let r = run(
        &mut store,
        &mut world,
        Timestamp::from_secs(T0.as_secs() + TWO_TTL - 1),
        false,
        &mut kill,
    );
    assert!(!r.has(is_install), "installed before 2×TTL");
    let r = run(
        &mut store,
        &mut world,
        Timestamp::from_secs(T0.as_secs() + TWO_TTL),
        false,
        &mut kill,
    );
    assert!(r.has(is_install));
}

#[test]
fn records_that_vanish_restart_the_wait_with_an_alert() {
    let mut store = Store::open_in_memory().unwrap();
    let mut world = World::new();
    begin(&mut store, &mut world, request());
    let mut kill = None;
    run(&mut store, &mut world, T0, false, &mut kill);
    // Someone removes the new record at mx2 behind our back.
    world
        .primary
        .remove(&entry(&TlsaAt::new(OWNERS[1], key(NEW).dane_ee())));
    world.sync();
    let r = run(
        &mut store,
        &mut world,
        Timestamp::from_secs(T0.as_secs() + TWO_TTL),
        false,
        &mut kill,
    );
    assert!(!r.has(is_install));
    assert!(
        r.alerts().iter().any(|a| a.contains("starts again")),
        "{:?}",
        r.alerts()
    );
    assert_eq!(r.last().eta(), None);
}

#[test]
fn force_skips_only_the_wait_and_says_so() {
    let mut store = Store::open_in_memory().unwrap();
    let mut world = World::new();
    world.set_lagging(0, true);
    begin(&mut store, &mut world, request());
    let mut kill = None;
    // Forced while a nameserver lags: refused, loudly.
    let r = run(&mut store, &mut world, T0, true, &mut kill);
    assert!(!r.has(is_install));
    assert!(
        r.alerts().iter().any(|a| a.contains("--force skips only")),
        "{:?}",
        r.alerts()
    );
    world.set_lagging(0, false);
    let r = run(
        &mut store,
        &mut world,
        Timestamp::from_secs(T0.as_secs() + 60),
        true,
        &mut kill,
    );
    assert!(r.has(is_install));
    assert!(
        r.alerts().iter().any(|a| a.contains("FORCED")),
        "{:?}",
        r.alerts()
    );
    assert_eq!(
        r.steps.iter().find_map(|s| s.next.forced),
        Some(Timestamp::from_secs(T0.as_secs() + 60))
    );
    let history = store.events(Some("mx"), 100).unwrap();
    assert!(
        history.iter().any(|e| e.event.detail.contains("--force")),
        "{history:?}"
    );
    assert_eq!(phase(&store), PhaseName::Done);
}

#[test]
fn a_failed_reload_keeps_the_phase_and_retries_next_run() {
    let mut store = Store::open_in_memory().unwrap();
    let mut world = World::new();
    world.reload_failures_left = 1;
    begin(&mut store, &mut world, request());
    let mut kill = None;
    run(&mut store, &mut world, T0, false, &mut kill);
    let t = Timestamp::from_secs(T0.as_secs() + TWO_TTL);
    let r = run(&mut store, &mut world, t, false, &mut kill);
    let Phase::Installed {
        reloaded: false,
        reload_failures: 1,
        ..
    } = r.last().phase
    else {
        panic!("{:?}", r.last().phase)
    };
    assert!(r.alerts().iter().any(|a| a.contains("reload failed")));
    assert!(!r.has(is_retire));
    assert_eq!(
        r.actions()
            .into_iter()
            .filter(|a| matches!(a, Action::Reload))
            .count(),
        1,
        "no retry in the same run"
    );
    let r = run(
        &mut store,
        &mut world,
        Timestamp::from_secs(t.as_secs() + 60),
        false,
        &mut kill,
    );
    assert!(r.has(|a| matches!(a, Action::Reload)));
    assert_eq!(phase(&store), PhaseName::Done);
}

#[test]
fn a_failed_verification_rolls_back_and_keeps_the_old_records() {
    let mut store = Store::open_in_memory().unwrap();
    let mut world = World::new();
    world.probe_override = Some(ProbeVerdict::NoMatch("certificate does not match".into()));
    begin(&mut store, &mut world, request());
    let mut kill = None;
    run(&mut store, &mut world, T0, false, &mut kill);
    let r = run(
        &mut store,
        &mut world,
        Timestamp::from_secs(T0.as_secs() + TWO_TTL),
        false,
        &mut kill,
    );
    assert_eq!(phase(&store), PhaseName::RolledBack);
    assert!(r.has(|a| matches!(a, Action::ReinstallPrevious { .. })));
    assert!(!r.has(is_retire));
    assert!(world.retired.is_empty());
    assert_eq!(world.installed, key(OLD));
    assert_eq!(world.served, key(OLD));
    for owner in OWNERS {
        assert!(world.serves_everywhere(&TlsaAt::new(owner, key(OLD).dane_ee())));
    }
    assert!(r.alerts().iter().any(|a| a.contains("rolling back")));
    let Phase::RolledBack {
        reinstalled: true,
        reloaded: true,
        ..
    } = r.last().phase
    else {
        panic!("{:?}", r.last().phase)
    };
    // Later runs do nothing more.
    let r = run(
        &mut store,
        &mut world,
        Timestamp::from_secs(T0.as_secs() + 10 * TWO_TTL),
        false,
        &mut kill,
    );
    assert!(r.steps.iter().all(|s| s.actions.is_empty()));
}

#[test]
fn an_unreachable_endpoint_holds_verification_without_retiring() {
    let mut store = Store::open_in_memory().unwrap();
    let mut world = World::new();
    world.probe_override = Some(ProbeVerdict::Unknown("connection timed out".into()));
    begin(&mut store, &mut world, request());
    let mut kill = None;
    run(&mut store, &mut world, T0, false, &mut kill);
    let mut alerts = Vec::new();
    for i in 0..6 {
        let r = run(
            &mut store,
            &mut world,
            Timestamp::from_secs(T0.as_secs() + TWO_TTL + i * 60),
            false,
            &mut kill,
        );
        assert!(!r.has(is_retire));
        alerts.extend(r.alerts());
    }
    assert_eq!(phase(&store), PhaseName::Installed);
    assert_eq!(
        alerts
            .iter()
            .filter(|a| a.contains("could not verify"))
            .count(),
        1
    );
    world.probe_override = None;
    run(
        &mut store,
        &mut world,
        Timestamp::from_secs(T0.as_secs() + 3 * TWO_TTL),
        false,
        &mut kill,
    );
    assert_eq!(phase(&store), PhaseName::Done);
}

#[test]
fn a_pre_published_next_key_needs_no_new_wait() {
    let mut store = Store::open_in_memory().unwrap();
    let mut world = World::new();
    for owner in OWNERS {
        world
            .primary
            .insert(entry(&TlsaAt::new(owner, key(NEW).dane_ee())));
    }
    world.sync();
    let mut req = request();
    req.next = Some(key(NEW));
    req.confirmed_since = Some(Timestamp::from_secs(T0.as_secs() - 30 * 86_400));
    begin(&mut store, &mut world, req);
    let mut kill = None;
    let r = run(&mut store, &mut world, T0, false, &mut kill);
    assert!(r.has(is_install));
    assert_eq!(phase(&store), PhaseName::Done);
}

#[test]
fn a_lagging_next_key_record_does_not_hold_the_install() {
    // acme.sh and dehydrated hand over their next key with the new one: its records go out in
    // the same rollover, but the gate waits only for the key being installed.
    let mut store = Store::open_in_memory().unwrap();
    let mut world = World::new();
    for owner in OWNERS {
        world
            .primary
            .insert(entry(&TlsaAt::new(owner, key(NEW).dane_ee())));
    }
    world.sync();
    world.set_lagging(1, true);
    let mut req = request();
    req.next = Some(key(3));
    begin(&mut store, &mut world, req);
    let mut kill = None;
    let r = run(&mut store, &mut world, T0, false, &mut kill);
    assert!(!r.has(is_install));
    assert_eq!(
        r.last().eta(),
        Some(Timestamp::from_secs(T0.as_secs() + TWO_TTL)),
        "{:?}",
        r.alerts()
    );
    let next_on_ns2 = OWNERS.iter().any(|o| {
        world.secondaries[1]
            .1
            .contains(&entry(&TlsaAt::new(o, key(3).dane_ee())))
    });
    assert!(
        !next_on_ns2,
        "ns2 lags: the next key's records are not there"
    );
    let r = run(
        &mut store,
        &mut world,
        Timestamp::from_secs(T0.as_secs() + TWO_TTL),
        false,
        &mut kill,
    );
    assert!(r.has(is_install));
    // The next key's records were published and are never retired.
    assert!(!world.retired.iter().any(|r| r.is_of(&key(3))));
    assert!(OWNERS.iter().all(|o| {
        world
            .primary
            .contains(&entry(&TlsaAt::new(o, key(3).dane_ee())))
    }));
}

/// The final state of a rollover run to the end from `kill`, for comparison.
fn outcome_with_kill(kill_at: Option<Kill>) -> (PhaseName, World, Vec<TlsaAt>, bool) {
    let dir = tempfile::tempdir().unwrap();
    let mut world = World::new();
    {
        let mut store = Store::open(dir.path()).unwrap();
        begin(&mut store, &mut world, request());
    }
    let mut kill = kill_at;
    let mut fired = false;
    let times = [
        T0,
        Timestamp::from_secs(T0.as_secs() + TTL as i64),
        Timestamp::from_secs(T0.as_secs() + TWO_TTL),
    ];
    for now in times {
        loop {
            // Every run opens the store afresh: a process killed mid-run leaves only the disk.
            let mut store = Store::open(dir.path()).unwrap();
            let r = run(&mut store, &mut world, now, false, &mut kill);
            drop(store);
            fired |= r.killed;
            if !r.killed {
                break;
            }
        }
    }
    let store = Store::open(dir.path()).unwrap();
    let mut ours = store.ours("mx", &Slot::default()).unwrap();
    ours.sort_by_key(|r| r.to_string());
    (phase(&store), world, ours, fired)
}

#[test]
fn a_kill_between_any_two_steps_resumes_to_the_same_outcome() {
    let (phase0, world0, ours0, _) = outcome_with_kill(None);
    assert_eq!(phase0, PhaseName::Done);
    let mut kills = 0;
    'saves: for saves in 0.. {
        for after_actions in [false, true] {
            let (p, w, ours, fired) = outcome_with_kill(Some(Kill {
                saves,
                after_actions,
            }));
            if !fired {
                break 'saves;
            }
            let ctx = format!("kill after {saves} saves (after actions: {after_actions})");
            assert_eq!(p, PhaseName::Done, "{ctx}");
            assert_eq!(w.primary, world0.primary, "{ctx}");
            assert_eq!(w.served, world0.served, "{ctx}");
            assert!(w.retired.iter().all(|r| r.is_of(&key(OLD))), "{ctx}");
            assert_eq!(ours, ours0, "{ctx}");
            kills += 1;
        }
    }
    // Every step of the whole rollover (staged … done, over three runs) was a kill point.
    assert!(kills >= 2 * 12, "only {kills} kill points");
}

/// The child half of the two-process lock test: holds the lock until its stdin closes.
#[test]
fn lock_holder_child() {
    let Ok(dir) = std::env::var("DANE_ROLL_TEST_LOCK_DIR") else {
        return;
    };
    let held = lock::acquire(
        Path::new(&dir),
        "mx",
        "dane-roll hook certbot",
        Duration::ZERO,
    )
    .unwrap();
    println!("LOCKED {}", std::process::id());
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
    drop(held);
}

#[test]
fn a_second_process_waits_then_gets_the_lock() {
    use std::io::{BufRead, BufReader, Write};
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "lock_holder_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("DANE_ROLL_TEST_LOCK_DIR", dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let pid = loop {
        let line = lines.next().expect("child ended before locking").unwrap();
        // libtest prints "test lock_holder_child ... " on the same line.
        if let Some((_, pid)) = line.split_once("LOCKED ") {
            break pid.trim().to_owned();
        }
    };
    let err = lock::acquire(
        dir.path(),
        "mx",
        "dane-roll run",
        Duration::from_millis(300),
    )
    .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, LockError::Busy { .. }));
    assert!(
        text.contains(&format!("PID {pid} (dane-roll hook certbot) since")),
        "{text}"
    );
    // Release in a moment, while this process waits.
    let mut stdin = child.stdin.take().unwrap();
    let releaser = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        writeln!(stdin).unwrap();
    });
    let held = lock::acquire(dir.path(), "mx", "dane-roll run", Duration::from_secs(20)).unwrap();
    releaser.join().unwrap();
    assert!(child.wait().unwrap().success());
    drop(held);
}

#[test]
fn a_flock_cli_holder_blocks_until_it_exits() {
    let dir = tempfile::tempdir().unwrap();
    // Create the lock file and directory first, as dane-roll would.
    drop(lock::acquire(dir.path(), "mx", "setup", Duration::ZERO).unwrap());
    let path = lock::lock_path(dir.path(), "mx").unwrap();
    let Ok(mut child) = Command::new("flock")
        .arg(&path)
        .args(["-c", "echo held; cat >/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
    else {
        eprintln!("SKIPPED: flock(1) not found; install util-linux");
        return;
    };
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut out, &mut line).unwrap();
    assert_eq!(line.trim(), "held");
    assert!(matches!(
        lock::acquire(
            dir.path(),
            "mx",
            "dane-roll run",
            Duration::from_millis(200)
        ),
        Err(LockError::Busy { .. })
    ));
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success());
    let held = lock::acquire(dir.path(), "mx", "dane-roll run", Duration::from_secs(5)).unwrap();
    drop(held);
}

/// The step at which the install was asked for, with the phase's confirmation time.
fn install_due(store: &mut Store, world: &mut World, from: Timestamp, to: Timestamp) -> Timestamp {
    let mut kill = None;
    let mut t = from;
    while t <= to {
        let r = run(store, world, t, false, &mut kill);
        if r.has(is_install) {
            return t;
        }
        t = Timestamp::from_secs(t.as_secs() + 60);
    }
    panic!("no install by {to}");
}

#[test]
fn a_ttl_served_larger_before_the_change_governs_the_wait() {
    // The RRset was served with 3×TTL (set by hand) until our first change, which lowered it
    // to the configured TTL: resolvers may hold the old RRset, without the new record, 3×TTL.
    let mut store = Store::open_in_memory().unwrap();
    let mut world = World::new();
    world.ns_ttl = 3 * TTL;
    begin(&mut store, &mut world, request());
    let mut kill = None;
    let r = run(&mut store, &mut world, T0, false, &mut kill);
    assert_eq!(world.ns_ttl, TTL, "our publish set the configured TTL");
    assert_eq!(r.last().governing_ttl(), 3 * TTL);
    let seen = r.last().ttl_source().expect("where the TTL was seen");
    assert_eq!(seen.source, "ns1.example.net");
    assert_eq!(
        r.last().eta(),
        Some(Timestamp::from_secs(T0.as_secs() + 3 * TWO_TTL))
    );
    let at = install_due(
        &mut store,
        &mut world,
        T0,
        Timestamp::from_secs(T0.as_secs() + 4 * TWO_TTL),
    );
    assert_eq!(
        at,
        Timestamp::from_secs(T0.as_secs() + 3 * TWO_TTL),
        "installed before 2×(the TTL served)"
    );
    assert_eq!(phase(&store), PhaseName::Done);
    // Kept in the stored rollover, for `status`.
    let stored = store.rollover("mx", &Slot::default()).unwrap().unwrap();
    assert_eq!(stored.governing_ttl(), 3 * TTL);
    let history = store.events(Some("mx"), 100).unwrap();
    assert!(
        history
            .iter()
            .any(|e| e.event.detail.contains(&format!("TTL {} s", 3 * TTL))),
        "{history:?}"
    );
}

#[test]
fn a_provider_that_clamps_the_ttl_is_named_once_and_its_ttl_used() {
    let mut store = Store::open_in_memory().unwrap();
    let mut world = World::new();
    world.min_ttl = 2 * TTL;
    begin(&mut store, &mut world, request());
    let mut kill = None;
    let r = run(&mut store, &mut world, T0, false, &mut kill);
    assert_eq!(r.last().governing_ttl(), 2 * TTL);
    assert_eq!(
        r.last().eta(),
        Some(Timestamp::from_secs(T0.as_secs() + 2 * TWO_TTL))
    );
    let at = install_due(
        &mut store,
        &mut world,
        T0,
        Timestamp::from_secs(T0.as_secs() + 4 * TWO_TTL),
    );
    assert_eq!(at, Timestamp::from_secs(T0.as_secs() + 2 * TWO_TTL));
    let history = store.events(Some("mx"), 200).unwrap();
    let warnings: Vec<_> = history
        .iter()
        .filter(|e| {
            e.event.detail.starts_with("warning:") && e.event.detail.contains("not the configured")
        })
        .collect();
    assert_eq!(warnings.len(), 1, "{history:?}");
}

#[test]
fn a_ttl_below_the_configured_one_never_shortens_the_wait() {
    let mut store = Store::open_in_memory().unwrap();
    let mut world = World::new();
    world.ns_ttl = TTL / 4;
    begin(&mut store, &mut world, request());
    let mut kill = None;
    let r = run(&mut store, &mut world, T0, false, &mut kill);
    assert_eq!(r.last().governing_ttl(), TTL);
    assert_eq!(
        r.last().eta(),
        Some(Timestamp::from_secs(T0.as_secs() + TWO_TTL))
    );
}

#[test]
fn a_ttl_raised_after_confirmation_does_not_move_the_install() {
    // Once every nameserver serves the new record, an RRset cached from then on holds it: a
    // TTL raised later does not hide the new record from anyone.
    let mut store = Store::open_in_memory().unwrap();
    let mut world = World::new();
    begin(&mut store, &mut world, request());
    let mut kill = None;
    run(&mut store, &mut world, T0, false, &mut kill);
    world.ns_ttl = 5 * TTL;
    let at = install_due(
        &mut store,
        &mut world,
        T0,
        Timestamp::from_secs(T0.as_secs() + 4 * TWO_TTL),
    );
    assert_eq!(at, Timestamp::from_secs(T0.as_secs() + TWO_TTL));
}

/// A renewal that kept its key decides "same key, so a renewal" under the service lock and must
/// act on it under the same lock: were the lock dropped and taken again, another process could
/// stage a rollover to another key in between, and the renewal would then install over it. The
/// lock file is opened once per acquisition, so counting its opens (inotify) shows whether the
/// deploy let go of it between the decision and the install.
#[test]
fn a_renewal_holds_the_lock_from_decision_to_install() {
    use dane_roll::rollover::driver::{DeployOutcome, Driver};
    use dane_roll::rollover::{DeployOptions, DeployRequest, Origin, SystemClock};
    use dane_roll_lab::pki::{self, KeyKind, MX_HOST, TestPki, Validity};
    use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};

    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let conf = d.join("dane-roll.toml");
    std::fs::write(
        &conf,
        format!(
            r#"version = 1
state-dir = "{d}/state"

[resolver]
address = "127.0.0.1:9"
timeout = "1s"

[[service]]
name = "mx"
domains = ["{MX_HOST}"]
endpoints = ["{MX_HOST}:25/smtp"]
chain-file = "{d}/mx.pem"
reload = ["/bin/true"]
ttl = 2
provider = "dns"

[provider.dns]
kind = "exec"
command = ["/bin/false"]
"#,
            d = d.display()
        ),
    )
    .unwrap();
    let ca = TestPki::new(KeyKind::EcdsaP256).unwrap();
    let leaf = ca
        .leaf_for_key(
            &[MX_HOST],
            pki::new_key(KeyKind::EcdsaP256).unwrap(),
            Validity::Days(90),
        )
        .unwrap();
    let key_pem = leaf.key.private_key_to_pem_pkcs8().unwrap();
    let chain_pem = leaf.fullchain_pem().unwrap();
    pki::write_atomic(&d.join("privkey.pem"), &key_pem, 0o600).unwrap();
    pki::write_atomic(&d.join("fullchain.pem"), &chain_pem, 0o644).unwrap();
    // The same key is installed already: deploying it again is a renewal.
    let mut installed = key_pem.clone();
    installed.extend(&chain_pem);
    pki::write_atomic(&d.join("mx.pem"), &installed, 0o600).unwrap();

    let config = dane_roll::config::Config::load(&conf).unwrap();
    // The lock file exists before the watch is set on it.
    drop(lock::acquire(&config.state_dir, "mx", "setup", Duration::ZERO).unwrap());
    let lock_file = lock::lock_path(&config.state_dir, "mx").unwrap();
    let inotify = Inotify::init(InitFlags::IN_NONBLOCK).unwrap();
    // Opens and closes: two opens in a row with nothing between would be merged into one event.
    inotify
        .add_watch(
            &lock_file,
            AddWatchFlags::IN_OPEN
                | AddWatchFlags::IN_CLOSE_WRITE
                | AddWatchFlags::IN_CLOSE_NOWRITE,
        )
        .unwrap();

    let store = Store::open(&config.state_dir).unwrap();
    let mut driver: Driver = Driver::new(config, store, SystemClock).unwrap();
    let outcome = driver
        .deploy(
            &DeployRequest {
                service: "mx".into(),
                cert: d.join("fullchain.pem"),
                key: d.join("privkey.pem"),
                chain: None,
                next_key: None,
                origin: Origin::Manual,
            },
            DeployOptions::default(),
        )
        .unwrap();
    assert!(
        matches!(outcome, DeployOutcome::Renewed { .. }),
        "{outcome:?}"
    );
    let mut opens = 0;
    while let Ok(events) = inotify.read_events() {
        opens += events
            .iter()
            .filter(|e| e.mask.contains(AddWatchFlags::IN_OPEN))
            .count();
    }
    assert_eq!(
        opens, 1,
        "the service lock was taken {opens} times: it was let go between the renewal's \
         decision and its install"
    );
}
