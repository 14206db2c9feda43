//! The rollover core without network: the real driver loop ([`Driver::run`]) over a scripted
//! world ([`Effects`]: nameservers that lag, a resolver that validates or not, a service that
//! reloads or not, a probe) on a fake clock, persisted to an on-disk store, killed at any effect
//! and resumed by a new driver over the same store; and the service lock between two processes.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::rc::Rc;
use std::time::Duration;

use dane_roll::config::{Config, KeyType, Scheme, Service};
use dane_roll::dns::{Alias, AliasError};
use dane_roll::install::InstallError;
use dane_roll::lock::{self, LockError};
use dane_roll::notify::Alert;
use dane_roll::rollover::driver::{Driver, Standing};
use dane_roll::rollover::effects::{Effects, LiveKeys, ProviderFailure, Served};
use dane_roll::rollover::{
    DeployOptions, DnsReport, KeyHash, NsAnswer, OwnerReport, Phase, PhaseName, ProbeResult,
    ProbeVerdict, ResolverAnswer, Rollover, Slot, StageRequest, StepResult, Timestamp, TlsaAt,
    stage,
};
use dane_roll::store::{KeyEntry, KeyRole, RecordChange, Store};
use dane_roll::tlsa::{OwnerName, TlsaRecord};
use dane_roll_lab::pki::{self, Issued, KeyKind, TestPki, Validity};
use dane_roll_providers::{Change, ProviderError, Record, Report};
use openssl::x509::X509Ref;

const TTL: u32 = 3600;
const TWO_TTL: i64 = 2 * TTL as i64;
const T0: Timestamp = Timestamp::from_secs(1_700_000_000);
const OWNERS: [&str; 2] = ["_25._tcp.mx1.example.com.", "_25._tcp.mx2.example.com."];
const ENDPOINTS: [&str; 2] = ["mx1.example.com:25", "mx2.example.com:25"];
const STAGED: &str = "/staged/mx.pem";
const BACKUP: &str = "/backup/mx.pem";

fn key(n: u8) -> KeyHash {
    KeyHash([n; 32])
}
const OLD: u8 = 1;
const NEW: u8 = 2;

/// Records as (owner, presentation).
type Zone = BTreeSet<(String, String)>;

/// One effect the driver had on the world, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Call {
    Publish(TlsaAt),
    Retire(TlsaAt),
    Dns,
    /// The chain file installed (the staged one, or the previous one on a rollback).
    Install(PathBuf),
    Reload,
    Probe,
    NextKey,
}

/// A simulated kill: the process dies at the `calls`-th counted effect (from 0), before
/// performing it or right after (its outcome lost).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Kill {
    calls: usize,
    after: bool,
}

/// The panic payload of a simulated kill.
struct Killed;

/// The world the driver acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
struct World {
    /// The fake clock.
    now: Timestamp,
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
    /// The key slot `installed` and `served` are of (the slot the test rolls).
    slot: Slot,
    /// The keys the service's other key slots serve, each with its slot.
    others: Vec<(Slot, KeyHash)>,
    /// A served key → the keys of the certificates served after it (its issuers): what the
    /// probe reports as the chain.
    chains: BTreeMap<KeyHash, Vec<KeyHash>>,
    /// Reloads that fail the way a busy server can (the next try may pass).
    reload_failures_left: u32,
    /// Every reload fails the way only a fix clears: the service's reload command is empty.
    reload_empty: bool,
    /// What the provider answers every change with, when it fails: refused credentials
    /// (`true`, only a fix helps) or a time-out (`false`, may pass by itself).
    provider_fails: Option<bool>,
    probe_override: Option<ProbeVerdict>,
    next_keys: u8,
    /// Every effect of the current run, in order.
    log: Vec<Call>,
    /// Every alert sent in the current run (its text).
    alerts: Vec<String>,
    retired: Vec<TlsaAt>,
    kill: Option<Kill>,
}

fn entry(r: &TlsaAt) -> (String, String) {
    (r.owner.to_string(), r.record.to_string())
}

/// `record` at the owner name written `owner`.
fn record_at(owner: &str, record: TlsaRecord) -> TlsaAt {
    TlsaAt::new(&owner.parse().expect("an owner name"), record)
}

impl World {
    fn new() -> World {
        let mut primary = BTreeSet::new();
        for owner in OWNERS {
            primary.insert(entry(&record_at(owner, key(OLD).dane_ee())));
        }
        // Another host's record at a shared owner name: never ours.
        primary.insert(entry(&record_at(OWNERS[0], key(99).dane_ee())));
        let mut files = BTreeMap::new();
        files.insert(PathBuf::from(STAGED), key(NEW));
        files.insert(PathBuf::from(BACKUP), key(OLD));
        World {
            now: T0,
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
            slot: Slot::default(),
            others: Vec::new(),
            chains: BTreeMap::new(),
            reload_failures_left: 0,
            reload_empty: false,
            provider_fails: None,
            probe_override: None,
            next_keys: 50,
            log: Vec::new(),
            alerts: Vec::new(),
            retired: Vec::new(),
            kill: None,
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
                    owner: owner.parse().expect("an owner name"),
                    nameservers: self
                        .secondaries
                        .iter()
                        .map(|(name, set, _)| NsAnswer {
                            nameserver: name.clone(),
                            records: Ok(records(set, owner)),
                            ttl: Some(self.ns_ttl),
                            not_waited_for: false,
                        })
                        .collect(),
                    resolver_ttl: self.validating.then_some(self.ns_ttl),
                    validation: if self.validating {
                        // The resolver sees what the first nameserver serves.
                        ResolverAnswer::Secure(records(&self.secondaries[0].1, owner))
                    } else {
                        ResolverAnswer::Insecure
                    },
                })
                .collect(),
        }
    }

    /// The key served for `slot`: the rolled slot's, or another slot's.
    fn served_in(&self, slot: &Slot) -> KeyHash {
        if *slot == self.slot {
            return self.served;
        }
        self.others
            .iter()
            .find(|(s, _)| s == slot)
            .map_or(self.served, |(_, k)| *k)
    }

    /// Every key served, with its slot.
    fn all_served(&self) -> Vec<(Slot, KeyHash)> {
        let mut out = vec![(self.slot.clone(), self.served)];
        out.extend(self.others.iter().cloned());
        out
    }

    fn serves_everywhere(&self, record: &TlsaAt) -> bool {
        self.secondaries
            .iter()
            .all(|(_, set, _)| set.contains(&entry(record)))
    }
}

/// The scripted effects: the driver's world is `World`, shared with the test.
struct Scripted(Rc<RefCell<World>>);

impl Scripted {
    /// Perform one counted effect, dying before or after it when a kill is due.
    fn act<T>(&self, call: Call, f: impl FnOnce(&mut World) -> T) -> T {
        self.strike(false);
        let out = {
            let mut w = self.0.borrow_mut();
            w.log.push(call);
            f(&mut w)
        };
        self.strike(true);
        out
    }

    fn strike(&self, performed: bool) {
        let mut w = self.0.borrow_mut();
        let Some(k) = &mut w.kill else { return };
        if k.calls == 0 && k.after == performed {
            w.kill = None;
            drop(w);
            std::panic::panic_any(Killed);
        }
        if performed {
            k.calls -= 1;
        }
    }
}

impl Effects for Scripted {
    fn now(&self) -> Timestamp {
        self.0.borrow().now
    }

    fn sleep(&self, d: Duration) {
        let mut w = self.0.borrow_mut();
        w.now = w.now.plus(d);
    }

    fn change_record(
        &self,
        _svc: &Service,
        record: &Record,
        add: bool,
    ) -> Result<Report, ProviderFailure> {
        let at = record_at(&record.owner, record.rdata.parse().unwrap());
        let call = if add {
            Call::Publish(at.clone())
        } else {
            Call::Retire(at.clone())
        };
        self.act(call, |w| {
            if let Some(refused) = w.provider_fails {
                let error = if refused {
                    ProviderError::Unauthorized {
                        provider: "deSEC",
                        what: "token",
                    }
                } else {
                    ProviderError::Timeout {
                        server: "desec.io".into(),
                        what: "an answer".into(),
                        after: Duration::from_secs(10),
                    }
                };
                return Err(ProviderFailure::Failed {
                    kind: "desec",
                    error,
                });
            }
            let change = if add {
                w.ns_ttl = record.ttl.max(w.min_ttl);
                w.primary.insert(entry(&at));
                Change::Added
            } else {
                w.primary.remove(&entry(&at));
                w.retired.push(at.clone());
                Change::Removed
            };
            w.sync();
            Ok(Report {
                change,
                vanished: Vec::new(),
                ttl: None,
            })
        })
    }

    fn list_records(
        &self,
        _svc: &Service,
        _owner: &OwnerName,
    ) -> Result<Vec<Record>, ProviderFailure> {
        Ok(Vec::new())
    }

    fn check_dns(&self, _expected: &[TlsaAt], _gate: &[TlsaAt]) -> DnsReport {
        self.act(Call::Dns, |w| w.dns())
    }

    fn served_everywhere(
        &self,
        owner: &OwnerName,
        candidates: &[TlsaRecord],
    ) -> Option<Vec<TlsaRecord>> {
        let w = self.0.borrow();
        Some(
            candidates
                .iter()
                .filter(|r| w.serves_everywhere(&TlsaAt::new(owner, (*r).clone())))
                .cloned()
                .collect(),
        )
    }

    fn follow_cname(&self, owner: &OwnerName) -> Option<Result<Alias, AliasError>> {
        Some(Ok(Alias {
            owner: owner.clone(),
            chain: Vec::new(),
        }))
    }

    fn probe(
        &self,
        _svc: &Service,
        slot: &Slot,
        endpoints: &[String],
        _expect: KeyHash,
    ) -> Vec<ProbeResult> {
        self.act(Call::Probe, |w| {
            let served = w.served_in(slot);
            let validated = w
                .primary
                .contains(&entry(&record_at(OWNERS[0], served.dane_ee())));
            let verdict = w.probe_override.clone().unwrap_or(if validated {
                ProbeVerdict::Match
            } else {
                ProbeVerdict::NoMatch("no TLSA record matched".into())
            });
            endpoints
                .iter()
                .map(|e| ProbeResult {
                    endpoint: e.clone(),
                    address: "192.0.2.25".into(),
                    verdict: verdict.clone(),
                    live_key: Some(served),
                    chain: w.chains.get(&served).cloned().unwrap_or_default(),
                })
                .collect()
        })
    }

    fn live_keys(&self, _svc: &Service, endpoints: &[String]) -> Vec<LiveKeys> {
        let served: Vec<KeyHash> = self
            .0
            .borrow()
            .all_served()
            .into_iter()
            .map(|(_, k)| k)
            .collect();
        endpoints
            .iter()
            .map(|e| (e.clone(), "192.0.2.25".to_owned(), Ok(served.clone())))
            .collect()
    }

    fn served_at(&self, _svc: &Service, _host: &str, _port: u16) -> Served {
        Served::Keys(self.0.borrow().all_served())
    }

    fn install(&self, _svc: &Service, _target: &Path, chain: &Path) -> Result<(), InstallError> {
        self.act(Call::Install(chain.to_owned()), |w| {
            w.installed = w.files[chain];
            Ok(())
        })
    }

    fn reload(&self, _svc: &Service) -> Result<(), InstallError> {
        self.act(Call::Reload, |w| {
            if w.reload_empty {
                Err(InstallError::EmptyCommand)
            } else if w.reload_failures_left > 0 {
                w.reload_failures_left -= 1;
                Err(InstallError::Failed {
                    command: "postfix reload".to_owned(),
                    status: "exit status: 1".to_owned(),
                    output: "postfix/postfix-script: fatal: the Postfix mail system is not running"
                        .to_owned(),
                })
            } else {
                w.served = w.installed;
                Ok(())
            }
        })
    }

    fn generate_key(&self, _kind: KeyType, dir: &Path) -> Result<(KeyHash, PathBuf), String> {
        self.act(Call::NextKey, |w| {
            w.next_keys += 1;
            let k = key(w.next_keys);
            Ok((k, dir.join(format!("next-{}.key", k.to_hex()))))
        })
    }

    fn has_alert_channels(&self) -> bool {
        true
    }

    fn notify(&self, _store: &mut Store, alert: &Alert) -> Result<Vec<String>, String> {
        if alert.severity.is_bad() {
            self.0.borrow_mut().alerts.push(alert.detail.clone());
        }
        Ok(Vec::new())
    }
}

/// A state directory, the configuration of service `mx`, and the world.
struct Rig {
    _dir: tempfile::TempDir,
    config: Config,
    world: Rc<RefCell<World>>,
    /// The key slot the test rolls (the world's).
    slot: Slot,
}

/// Service `mx`'s certificate and scheme: one chain file (`{d}` is the directory of the
/// configuration), `current+next`.
const ONE_CHAIN: &str = r#"chain-file = "{d}/mx.pem"
scheme = "current+next""#;

/// What one `run` did.
#[derive(Debug)]
struct Run {
    standing: Option<Standing>,
    log: Vec<Call>,
    alerts: Vec<String>,
    /// The stored rollover after the run.
    rollover: Rollover,
    killed: bool,
}

impl Run {
    fn has(&self, pred: impl Fn(&Call) -> bool) -> bool {
        self.log.iter().any(pred)
    }
    fn alerts(&self) -> &[String] {
        &self.alerts
    }
    fn last(&self) -> &Rollover {
        &self.rollover
    }
    fn standing(&self) -> &Standing {
        self.standing.as_ref().expect("a standing")
    }
}

/// Silence the panics of simulated kills (and only those).
fn quiet_kills() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !info.payload().is::<Killed>() {
                default(info);
            }
        }));
    });
}

impl Rig {
    fn new(world: World) -> Rig {
        Rig::with_certificates(world, ONE_CHAIN)
    }

    /// A rig whose service `mx` has `certificates` (its chain file(s) and scheme; `{d}` stands
    /// for the directory of the configuration).
    fn with_certificates(world: World, certificates: &str) -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let conf = d.join("dane-roll.toml");
        let certificates = certificates.replace("{d}", &d.display().to_string());
        std::fs::write(
            &conf,
            format!(
                r#"version = 1
state-dir = "{d}/state"

[[service]]
name = "mx"
domains = ["mx1.example.com", "mx2.example.com"]
endpoints = ["{e0}/smtp", "{e1}/smtp"]
{certificates}
reload = ["/bin/true"]
key-type = "ec256"
ttl = {TTL}
provider = "dns"

[provider.dns]
kind = "exec"
command = ["/bin/false"]
"#,
                d = d.display(),
                e0 = ENDPOINTS[0],
                e1 = ENDPOINTS[1],
            ),
        )
        .unwrap();
        let config = Config::load(&conf).unwrap();
        Rig {
            _dir: dir,
            config,
            slot: world.slot.clone(),
            world: Rc::new(RefCell::new(world)),
        }
    }

    fn store(&self) -> Store {
        Store::open(&self.config.state_dir).unwrap()
    }

    fn world(&self) -> std::cell::RefMut<'_, World> {
        self.world.borrow_mut()
    }

    /// Stage the rollover as a deploy does; its first actions are performed by the first run.
    fn begin(&self, req: StageRequest) -> StepResult {
        let s = stage(req, T0).unwrap();
        self.store().save(&s.next, &s.events, &[], T0).unwrap();
        s
    }

    /// `dane-roll run mx` at `now`: a new driver (a new process) over the same store.
    fn run(&self, now: Timestamp, force: bool) -> Run {
        self.run_with(now, force, false)
    }

    fn run_with(&self, now: Timestamp, force: bool, wait: bool) -> Run {
        self.run_options(now, force, wait, None)
    }

    fn run_options(
        &self,
        now: Timestamp,
        force: bool,
        wait: bool,
        timeout: Option<Duration>,
    ) -> Run {
        quiet_kills();
        {
            let mut w = self.world();
            w.now = now;
            w.log.clear();
            w.alerts.clear();
        }
        let options = DeployOptions {
            wait,
            force,
            timeout,
        };
        let result = catch_unwind(AssertUnwindSafe(|| {
            let mut driver = Driver::with_effects(
                self.config.clone(),
                self.store(),
                Scripted(self.world.clone()),
            );
            driver.run(Some("mx"), options).unwrap()
        }));
        let (standing, killed) = match result {
            Ok(mut standings) => (standings.pop(), false),
            Err(payload) if payload.is::<Killed>() => (None, true),
            Err(payload) => std::panic::resume_unwind(payload),
        };
        let w = self.world();
        Run {
            standing,
            log: w.log.clone(),
            alerts: w.alerts.clone(),
            rollover: self.store().rollover("mx", &self.slot).unwrap().unwrap(),
            killed,
        }
    }

    fn phase(&self) -> PhaseName {
        self.store()
            .rollover("mx", &self.slot)
            .unwrap()
            .unwrap()
            .phase
            .name()
    }
}

fn request() -> StageRequest {
    StageRequest {
        service: "mx".into(),
        slot: Slot::default(),
        scheme: Scheme::CurrentNext,
        ttl: TTL,
        owners: OWNERS
            .iter()
            .map(|s| s.parse().expect("an owner name"))
            .collect(),
        endpoints: ENDPOINTS.iter().map(|s| (*s).to_owned()).collect(),
        old: Some(key(OLD)),
        new: key(NEW),
        next: None,
        issuers: vec![],
        chain: STAGED.into(),
        previous_chain: Some(BACKUP.into()),
        confirmed_since: None,
    }
}

fn at(secs: i64) -> Timestamp {
    Timestamp::from_secs(T0.as_secs() + secs)
}

fn is_install(c: &Call) -> bool {
    matches!(c, Call::Install(chain) if chain == Path::new(STAGED))
}
fn is_reinstall(c: &Call) -> bool {
    matches!(c, Call::Install(chain) if chain == Path::new(BACKUP))
}
fn is_retire(c: &Call) -> bool {
    matches!(c, Call::Retire(_))
}

#[test]
fn a_whole_rollover_on_a_fake_clock() {
    let rig = Rig::new(World::new());
    let first = rig.begin(request());
    assert_eq!(first.next.phase.name(), PhaseName::Staged);
    // A look at the TLSA RRsets as they are served before anything changes.
    assert!(
        matches!(
            &first.actions[..],
            [dane_roll::rollover::Action::CheckDns { .. }]
        ),
        "{:?}",
        first.actions
    );

    let r = rig.run(T0, false);
    // old + new at both owner names, one change per record.
    let publishes = r
        .log
        .iter()
        .filter(|c| matches!(c, Call::Publish(_)))
        .count();
    assert_eq!(publishes, 4, "{:?}", r.log);
    assert_eq!(rig.phase(), PhaseName::Published);
    assert!(!r.has(is_install));
    assert_eq!(r.standing().wait_until, Some(at(2 * 3600)));
    let Phase::Published { confirmed_at, .. } = r.last().phase else {
        panic!()
    };
    assert_eq!(confirmed_at, Some(T0));

    // One TTL later: still waiting, nothing installed.
    let r = rig.run(at(TWO_TTL - 1), false);
    assert!(!r.has(is_install), "{:?}", r.log);
    assert_eq!(rig.world().installed, key(OLD));

    // At T + 2×TTL: install, reload, probe, verify, retire, next key, done.
    let r = rig.run(at(TWO_TTL), false);
    assert_eq!(rig.phase(), PhaseName::Done, "{:?}", r.log);
    let kinds: Vec<&str> = r
        .log
        .iter()
        .map(|c| match c {
            Call::Dns => "dns",
            Call::Install(_) => "install",
            Call::Reload => "reload",
            Call::Probe => "probe",
            Call::Retire(_) => "retire",
            Call::NextKey => "next-key",
            Call::Publish(_) => "publish",
        })
        .collect();
    // Then, the rollover done, `run` looks once whether the next key's records are served
    // everywhere and validated (so that a rollover to it needs no new wait).
    assert_eq!(
        kinds,
        [
            "dns", "install", "reload", "probe", "retire", "retire", "next-key", "publish",
            "publish", "dns"
        ]
    );
    let w = rig.world();
    assert_eq!(w.served, key(NEW));
    // Old records gone, one by one; the other host's record survives.
    assert_eq!(w.retired.len(), 2);
    assert!(w.retired.iter().all(|r| r.is_of(&key(OLD))));
    assert!(
        w.primary
            .contains(&entry(&record_at(OWNERS[0], key(99).dane_ee())))
    );
    let next = r.last().request.next.unwrap();
    for owner in OWNERS {
        assert!(w.serves_everywhere(&record_at(owner, key(NEW).dane_ee())));
        assert!(w.serves_everywhere(&record_at(owner, next.dane_ee())));
    }
    // Ours now: new and next at both owners; history recorded.
    let store = rig.store();
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
fn a_wait_on_a_fake_clock_takes_no_real_time() {
    // `run --wait` sleeps through the 2×TTL wait on the driver's clock: on a fake one the time
    // moves on at once. (The driver slept on the system clock: it never ended here.)
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rig = Rig::new(World::new());
        rig.begin(request());
        let r = rig.run_with(T0, false, true);
        let now = rig.world().now;
        tx.send((r.last().phase.name(), r.has(is_install), now))
            .ok();
    });
    let (phase, installed, now) = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("a --wait run on a fake clock did not end within 60 s: it sleeps for real");
    assert_eq!(phase, PhaseName::Done);
    assert!(installed);
    // The clock moved by the 2×TTL wait (and the few milliseconds added to be sure it passed).
    assert!(
        now >= at(TWO_TTL) && now <= at(TWO_TTL + 1),
        "the fake clock stands at {now}, not T0 + 2×TTL"
    );
}

/// `run --wait --timeout 1h` against a provider that fails every change, on a fake clock: where
/// the clock stands when the run returns, and how the rollover stands.
fn wait_against_a_failing_provider(refused: bool) -> (Timestamp, Standing) {
    let mut world = World::new();
    world.provider_fails = Some(refused);
    let rig = Rig::new(world);
    rig.begin(request());
    let r = rig.run_options(T0, false, true, Some(Duration::from_secs(3600)));
    let standing = r.standing().clone();
    let now = rig.world().now;
    (now, standing)
}

#[test]
fn a_wait_stops_at_once_on_a_failure_only_a_fix_can_clear() {
    // Refused credentials fail the same way on every try: `--wait` says it needs a fix and
    // returns (it used to retry with backoff until its --timeout ran out).
    let (now, s) = wait_against_a_failing_provider(true);
    assert!(s.needs_fix, "{s:?}");
    assert_eq!(s.phase, PhaseName::Staged);
    assert!(s.failures.iter().any(|f| f.contains("token")), "{s:?}");
    assert!(now < at(60), "the wait went on until {now}");

    // A time-out may pass by itself: the wait retries until its time is up.
    let (now, s) = wait_against_a_failing_provider(false);
    assert!(!s.needs_fix, "{s:?}");
    assert!(!s.failures.is_empty(), "{s:?}");
    assert!(now >= at(3600), "a retryable failure gave up at {now}");
}

#[test]
fn a_lagging_nameserver_holds_and_the_wait_counts_from_confirmation() {
    let mut world = World::new();
    world.set_lagging(1, true);
    let rig = Rig::new(world);
    rig.begin(request());
    let r = rig.run(T0, false);
    assert_eq!(rig.phase(), PhaseName::Published);
    let s = r.standing();
    assert!(
        s.wait_until.is_none()
            && s.waiting_for
                .as_deref()
                .is_some_and(|w| w.contains("ns2.example.org lags")),
        "{s:?}"
    );

    // Ten TTLs later the secondary still lags: nothing is installed.
    let later = at(10 * TTL as i64);
    let r = rig.run(later, false);
    assert!(!r.has(is_install));
    // It catches up; the wait starts now, not at publication.
    rig.world().set_lagging(1, false);
    let r = rig.run(later, false);
    assert!(!r.has(is_install));
    assert_eq!(
        r.last().eta(),
        Some(Timestamp::from_secs(later.as_secs() + TWO_TTL))
    );
    let r = rig.run(Timestamp::from_secs(later.as_secs() + TWO_TTL - 1), false);
    assert!(!r.has(is_install));
    let r = rig.run(Timestamp::from_secs(later.as_secs() + TWO_TTL), false);
    assert!(r.has(is_install));
    assert_eq!(rig.phase(), PhaseName::Done);
}

#[test]
fn a_resolver_that_does_not_validate_holds() {
    let mut world = World::new();
    world.validating = false;
    let rig = Rig::new(world);
    rig.begin(request());
    rig.run(T0, false);
    let r = rig.run(at(100 * TWO_TTL), false);
    assert!(!r.has(is_install));
    assert!(
        r.standing()
            .waiting_for
            .as_deref()
            .is_some_and(|w| w.contains("not DNSSEC-validated")),
        "{:?}",
        r.standing()
    );
    // It validates at last: the records have been served everywhere for far more than
    // 2×TTL (the wait counts from that), so the install follows at once.
    rig.world().validating = true;
    let r = rig.run(at(100 * TWO_TTL + 5), false);
    assert!(r.has(is_install));
}

#[test]
fn the_wait_counts_from_served_everywhere_not_from_validation() {
    // A resolver's cache of the RRset without the new record lives up to one TTL after every
    // nameserver serves it: that falls inside the 2×TTL wait, and must not lengthen it.
    let mut world = World::new();
    world.validating = false;
    let rig = Rig::new(world);
    rig.begin(request());
    let r = rig.run(T0, false);
    assert_eq!(r.last().eta(), Some(at(TWO_TTL)));
    rig.world().validating = true;
    let r = rig.run(at(TWO_TTL - 1), false);
    assert!(!r.has(is_install), "installed before 2×TTL");
    let r = rig.run(at(TWO_TTL), false);
    assert!(r.has(is_install));
}

#[test]
fn records_that_vanish_restart_the_wait_with_an_alert() {
    let rig = Rig::new(World::new());
    rig.begin(request());
    rig.run(T0, false);
    // Someone removes the new record at mx2 behind our back.
    {
        let mut w = rig.world();
        w.primary
            .remove(&entry(&record_at(OWNERS[1], key(NEW).dane_ee())));
        w.sync();
    }
    let r = rig.run(at(TWO_TTL), false);
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
    let mut world = World::new();
    world.set_lagging(0, true);
    let rig = Rig::new(world);
    rig.begin(request());
    // Forced while a nameserver lags: refused, loudly.
    let r = rig.run(T0, true);
    assert!(!r.has(is_install));
    assert!(
        r.alerts().iter().any(|a| a.contains("--force skips only")),
        "{:?}",
        r.alerts()
    );
    rig.world().set_lagging(0, false);
    let r = rig.run(at(60), true);
    assert!(r.has(is_install));
    assert!(
        r.alerts().iter().any(|a| a.contains("FORCED")),
        "{:?}",
        r.alerts()
    );
    assert_eq!(r.last().forced, Some(at(60)));
    let history = rig.store().events(Some("mx"), 100).unwrap();
    assert!(
        history.iter().any(|e| e.event.detail.contains("--force")),
        "{history:?}"
    );
    assert_eq!(rig.phase(), PhaseName::Done);
}

#[test]
fn a_failed_reload_keeps_the_phase_and_retries_next_run() {
    let mut world = World::new();
    world.reload_failures_left = 1;
    let rig = Rig::new(world);
    rig.begin(request());
    rig.run(T0, false);
    let t = at(TWO_TTL);
    let r = rig.run(t, false);
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
        r.log.iter().filter(|c| **c == Call::Reload).count(),
        1,
        "no retry in the same run"
    );
    let r = rig.run(Timestamp::from_secs(t.as_secs() + 60), false);
    assert!(r.has(|c| *c == Call::Reload));
    assert_eq!(rig.phase(), PhaseName::Done);
}

#[test]
fn a_wait_stops_at_once_on_a_reload_only_a_fix_can_clear() {
    // An empty reload command fails the same way on every try: past the 2×TTL wait and the
    // install, `--wait` says it needs a fix and returns instead of retrying until --timeout.
    let mut world = World::new();
    world.reload_empty = true;
    let rig = Rig::new(world);
    rig.begin(request());
    let r = rig.run_options(T0, false, true, Some(Duration::from_secs(3 * 3600)));
    let s = r.standing().clone();
    assert!(s.needs_fix, "{s:?}");
    assert_eq!(s.phase, PhaseName::Installed);
    assert!(
        s.failures
            .iter()
            .any(|f| f.contains("reload command is empty")),
        "{s:?}"
    );
    let now = rig.world().now;
    assert!(now < at(TWO_TTL + 600), "the wait went on until {now}");
}

#[test]
fn a_failed_verification_rolls_back_and_keeps_the_old_records() {
    let mut world = World::new();
    world.probe_override = Some(ProbeVerdict::NoMatch("certificate does not match".into()));
    let rig = Rig::new(world);
    rig.begin(request());
    rig.run(T0, false);
    let r = rig.run(at(TWO_TTL), false);
    assert_eq!(rig.phase(), PhaseName::RolledBack);
    assert!(r.has(is_reinstall));
    assert!(!r.has(is_retire));
    {
        let w = rig.world();
        assert!(w.retired.is_empty());
        assert_eq!(w.installed, key(OLD));
        assert_eq!(w.served, key(OLD));
        for owner in OWNERS {
            assert!(w.serves_everywhere(&record_at(owner, key(OLD).dane_ee())));
        }
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
    let r = rig.run(at(10 * TWO_TTL), false);
    assert!(r.log.is_empty(), "{:?}", r.log);
}

#[test]
fn an_unreachable_endpoint_holds_verification_without_retiring() {
    let mut world = World::new();
    world.probe_override = Some(ProbeVerdict::Unknown("connection timed out".into()));
    let rig = Rig::new(world);
    rig.begin(request());
    rig.run(T0, false);
    let mut alerts = Vec::new();
    for i in 0..6 {
        let r = rig.run(at(TWO_TTL + i * 60), false);
        assert!(!r.has(is_retire));
        alerts.extend(r.alerts().to_vec());
    }
    assert_eq!(rig.phase(), PhaseName::Installed);
    assert_eq!(
        alerts
            .iter()
            .filter(|a| a.contains("could not verify"))
            .count(),
        1,
        "{alerts:?}"
    );
    rig.world().probe_override = None;
    rig.run(at(3 * TWO_TTL), false);
    assert_eq!(rig.phase(), PhaseName::Done);
}

#[test]
fn a_pre_published_next_key_needs_no_new_wait() {
    let mut world = World::new();
    for owner in OWNERS {
        world
            .primary
            .insert(entry(&record_at(owner, key(NEW).dane_ee())));
    }
    world.sync();
    let rig = Rig::new(world);
    let mut req = request();
    req.next = Some(key(NEW));
    req.confirmed_since = Some(Timestamp::from_secs(T0.as_secs() - 30 * 86_400));
    rig.begin(req);
    let r = rig.run(T0, false);
    assert!(r.has(is_install));
    assert_eq!(rig.phase(), PhaseName::Done);
}

#[test]
fn a_lagging_next_key_record_does_not_hold_the_install() {
    // acme.sh and dehydrated hand over their next key with the new one: its records go out in
    // the same rollover, but the gate waits only for the key being installed.
    let mut world = World::new();
    for owner in OWNERS {
        world
            .primary
            .insert(entry(&record_at(owner, key(NEW).dane_ee())));
    }
    world.sync();
    world.set_lagging(1, true);
    let rig = Rig::new(world);
    let mut req = request();
    req.next = Some(key(3));
    rig.begin(req);
    let r = rig.run(T0, false);
    assert!(!r.has(is_install));
    assert_eq!(r.last().eta(), Some(at(TWO_TTL)), "{:?}", r.alerts());
    let next_on_ns2 = OWNERS.iter().any(|o| {
        rig.world().secondaries[1]
            .1
            .contains(&entry(&record_at(o, key(3).dane_ee())))
    });
    assert!(
        !next_on_ns2,
        "ns2 lags: the next key's records are not there"
    );
    let r = rig.run(at(TWO_TTL), false);
    assert!(r.has(is_install));
    // The next key's records were published and are never retired.
    let w = rig.world();
    assert!(!w.retired.iter().any(|r| r.is_of(&key(3))));
    assert!(
        OWNERS
            .iter()
            .all(|o| { w.primary.contains(&entry(&record_at(o, key(3).dane_ee()))) })
    );
}

/// The records of `zone`, the run's next key `next` written as `NEXT`: a kill between writing
/// a next key and storing it costs one key file (a second one is generated), nothing else.
fn normalized(zone: &[(String, String)], next: Option<KeyHash>) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = zone
        .iter()
        .map(|(owner, rdata)| {
            let record: TlsaRecord = rdata.parse().unwrap();
            match next {
                Some(k) if k.matches(&record) => (owner.clone(), "NEXT".to_owned()),
                _ => (owner.clone(), rdata.clone()),
            }
        })
        .collect();
    out.sort();
    out
}

/// The final state of a rollover run to the end, for comparison.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    phase: PhaseName,
    /// The provider's records (the next key's written as `NEXT`).
    primary: Vec<(String, String)>,
    served: KeyHash,
    retired: Vec<TlsaAt>,
    /// Ours in the store (the next key's written as `NEXT`).
    ours: Vec<(String, String)>,
}

/// The final state of a rollover run to the end with `kill`, and whether the kill struck.
fn outcome_with_kill(kill: Option<Kill>) -> (Outcome, bool) {
    let rig = Rig::new(World::new());
    rig.begin(request());
    rig.world().kill = kill;
    let mut fired = false;
    for now in [T0, at(TTL as i64), at(TWO_TTL)] {
        loop {
            // Every run is a new driver over the store on disk: a process killed mid-run
            // leaves only the disk.
            let r = rig.run(now, false);
            fired |= r.killed;
            if !r.killed {
                break;
            }
        }
    }
    let store = rig.store();
    let next = store
        .rollover("mx", &Slot::default())
        .unwrap()
        .unwrap()
        .request
        .next;
    let ours: Vec<(String, String)> = store
        .ours("mx", &Slot::default())
        .unwrap()
        .iter()
        .map(entry)
        .collect();
    let w = rig.world();
    let primary: Vec<(String, String)> = w.primary.iter().cloned().collect();
    let outcome = Outcome {
        phase: rig.phase(),
        primary: normalized(&primary, next),
        served: w.served,
        retired: w.retired.clone(),
        ours: normalized(&ours, next),
    };
    (outcome, fired)
}

#[test]
fn a_kill_between_any_two_steps_resumes_to_the_same_outcome() {
    let (first, _) = outcome_with_kill(None);
    assert_eq!(first.phase, PhaseName::Done);
    let mut kills = 0;
    'calls: for calls in 0.. {
        for after in [false, true] {
            let (o, fired) = outcome_with_kill(Some(Kill { calls, after }));
            if !fired {
                break 'calls;
            }
            let ctx = format!("kill at effect {calls} (after performing it: {after})");
            assert_eq!(o.phase, PhaseName::Done, "{ctx}");
            assert_eq!(o.primary, first.primary, "{ctx}");
            assert_eq!(o.served, first.served, "{ctx}");
            assert!(o.retired.iter().all(|r| r.is_of(&key(OLD))), "{ctx}");
            assert_eq!(o.ours, first.ours, "{ctx}");
            kills += 1;
        }
    }
    // Every effect of the whole rollover (staged … done, over three runs) was a kill point.
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

/// The time at which the install was asked for, running every minute from `from` to `to`.
fn install_due(rig: &Rig, from: Timestamp, to: Timestamp) -> Timestamp {
    let mut t = from;
    while t <= to {
        let r = rig.run(t, false);
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
    let mut world = World::new();
    world.ns_ttl = 3 * TTL;
    let rig = Rig::new(world);
    rig.begin(request());
    let r = rig.run(T0, false);
    assert_eq!(
        rig.world().ns_ttl,
        TTL,
        "our publish set the configured TTL"
    );
    assert_eq!(r.last().governing_ttl(), 3 * TTL);
    let seen = r.last().ttl_source().expect("where the TTL was seen");
    assert_eq!(seen.source, "ns1.example.net");
    assert_eq!(r.last().eta(), Some(at(3 * TWO_TTL)));
    let due = install_due(&rig, T0, at(4 * TWO_TTL));
    assert_eq!(due, at(3 * TWO_TTL), "installed before 2×(the TTL served)");
    assert_eq!(rig.phase(), PhaseName::Done);
    // Kept in the stored rollover, for `status`.
    let store = rig.store();
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
    let mut world = World::new();
    world.min_ttl = 2 * TTL;
    let rig = Rig::new(world);
    rig.begin(request());
    let r = rig.run(T0, false);
    assert_eq!(r.last().governing_ttl(), 2 * TTL);
    assert_eq!(r.last().eta(), Some(at(2 * TWO_TTL)));
    let due = install_due(&rig, T0, at(4 * TWO_TTL));
    assert_eq!(due, at(2 * TWO_TTL));
    let history = rig.store().events(Some("mx"), 200).unwrap();
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
    let mut world = World::new();
    world.ns_ttl = TTL / 4;
    let rig = Rig::new(world);
    rig.begin(request());
    let r = rig.run(T0, false);
    assert_eq!(r.last().governing_ttl(), TTL);
    assert_eq!(r.last().eta(), Some(at(TWO_TTL)));
}

#[test]
fn a_ttl_raised_after_confirmation_does_not_move_the_install() {
    // Once every nameserver serves the new record, an RRset cached from then on holds it: a
    // TTL raised later does not hide the new record from anyone.
    let rig = Rig::new(World::new());
    rig.begin(request());
    rig.run(T0, false);
    rig.world().ns_ttl = 5 * TTL;
    let due = install_due(&rig, T0, at(4 * TWO_TTL));
    assert_eq!(due, at(TWO_TTL));
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

/// Store `records` (at every owner name) as published by `slot` of service `mx`: ours.
fn ours(store: &mut Store, slot: &Slot, records: &[TlsaRecord]) {
    let published: Vec<RecordChange> = OWNERS
        .iter()
        .flat_map(|o| records.iter().map(|r| record_at(o, r.clone())))
        .map(|record| RecordChange::Published { record, ttl: TTL })
        .collect();
    store.record_changes("mx", slot, &published, T0).unwrap();
}

/// `ec` rolls under `current+issuer` to key 2, whose chain is issued by `issuer`: staged at
/// T0, done at T0+2×TTL.
fn roll_ec_to(rig: &Rig, issuer: KeyHash) -> Run {
    rig.begin(StageRequest {
        slot: Slot::Ec,
        scheme: Scheme::CurrentIssuer,
        issuers: vec![issuer],
        ..request()
    });
    rig.run(T0, false);
    let r = rig.run(at(TWO_TTL), false);
    assert_eq!(rig.phase(), PhaseName::Done, "{:?}", r.log);
    r
}

/// Store `hash` as the key of `role` in `slot` of service `mx`.
fn set_key(store: &mut Store, slot: &Slot, role: KeyRole, hash: KeyHash) {
    store
        .set_key(&KeyEntry {
            service: "mx".into(),
            slot: slot.clone(),
            role,
            hash,
            path: None,
            created: T0,
        })
        .unwrap();
}

/// The configuration of two key slots, `ec` and `rsa`, under `current+issuer`.
const TWO_SLOTS: &str = r#"chain-files = { ec = "{d}/ec.pem", rsa = "{d}/rsa.pem" }
scheme = "current+issuer""#;

/// Two key slots of one `current+issuer` service (`ec` and `rsa`, each its own certificate
/// and rollover, their records at the same owner names) whose chains share the issuer R10: a
/// rollover of `ec` to a key issued by R11 retires `ec`'s old `3 1 1`, never R10's `2 1 1`
/// while `rsa`'s served chain is issued by R10. Once `rsa`'s chain is issued by R11 too (a
/// renewal), nothing wants R10 and `run` retires it.
#[test]
fn a_rollover_keeps_the_issuer_record_another_key_slot_needs() {
    let (rsa, r10, r11) = (key(30), key(40), key(41));
    let mut world = World::new();
    world.slot = Slot::Ec;
    world.others = vec![(Slot::Rsa, rsa)];
    world.chains = [
        (key(OLD), vec![r10]),
        (key(NEW), vec![r11]),
        (rsa, vec![r10]),
    ]
    .into_iter()
    .collect();
    // As two earlier rollovers left the zone: each slot's key and the shared issuer R10.
    for owner in OWNERS {
        world
            .primary
            .insert(entry(&record_at(owner, rsa.dane_ee())));
        world
            .primary
            .insert(entry(&record_at(owner, r10.dane_ta())));
    }
    world.sync();
    let rig = Rig::with_certificates(world, TWO_SLOTS);
    // ... and the store: both slots' records are ours, `rsa`'s rollover is done with R10 as
    // its issuer, each slot has its current key.
    let mut store = rig.store();
    let rsa_done = {
        let mut r = stage(
            StageRequest {
                slot: Slot::Rsa,
                scheme: Scheme::CurrentIssuer,
                old: None,
                new: rsa,
                issuers: vec![r10],
                chain: "/staged/rsa.pem".into(),
                previous_chain: None,
                ..request()
            },
            T0,
        )
        .unwrap()
        .next;
        r.phase = Phase::Done { since: T0 };
        r
    };
    store.save(&rsa_done, &[], &[], T0).unwrap();
    for (slot, leaf) in [(Slot::Ec, key(OLD)), (Slot::Rsa, rsa)] {
        ours(&mut store, &slot, &[leaf.dane_ee(), r10.dane_ta()]);
        set_key(&mut store, &slot, KeyRole::Current, leaf);
    }
    drop(store);

    // `ec` rolls from key 1 (issued by R10) to key 2 (issued by R11).
    let r = roll_ec_to(&rig, r11);
    let w = rig.world();
    assert_eq!(w.served, key(NEW));
    for owner in OWNERS {
        // The rollover retired `ec`'s old key ...
        assert!(
            !w.serves_everywhere(&record_at(owner, key(OLD).dane_ee())),
            "{:?}",
            r.log
        );
        assert!(w.serves_everywhere(&record_at(owner, r11.dane_ta())));
        // ... but not the issuer `rsa`'s served chain still needs.
        assert!(
            w.serves_everywhere(&record_at(owner, r10.dane_ta())),
            "the shared issuer R10's record at {owner} was retired while key slot rsa's chain \
             is issued by R10: {:?}",
            r.log
        );
        assert!(w.serves_everywhere(&record_at(owner, rsa.dane_ee())));
    }
    drop(w);

    // `rsa` renewed with its key from R11 (its finished rollover keeps R11 as its issuer, as
    // a renewal leaves it): now no slot wants R10, and `run` retires its record once the probe
    // shows no served chain holding it.
    rig.world().chains.insert(rsa, vec![r11]);
    let mut store = rig.store();
    let mut renewed = store.rollover("mx", &Slot::Rsa).unwrap().unwrap();
    renewed.request.issuers = vec![r11];
    store.save(&renewed, &[], &[], at(TWO_TTL)).unwrap();
    ours(&mut store, &Slot::Rsa, &[r11.dane_ta()]);
    drop(store);
    let r = rig.run(at(TWO_TTL + 60), false);
    let w = rig.world();
    for owner in OWNERS {
        assert!(
            !w.primary.contains(&entry(&record_at(owner, r10.dane_ta()))),
            "{:?}",
            r.log
        );
        assert!(w.serves_everywhere(&record_at(owner, r11.dane_ta())));
        assert!(w.serves_everywhere(&record_at(owner, rsa.dane_ee())));
        assert!(w.serves_everywhere(&record_at(owner, key(NEW).dane_ee())));
    }
}

/// The same while the other key slot is mid-rollover: `rsa` installed a chain from R11 but
/// still serves its previous one, from R10 (a reload not taken yet), when `ec`'s rollover from
/// R10 to R11 is verified. Only `rsa`'s previous chain file says R10 is still served: its
/// record stays until `rsa`'s new chain is verified, then `rsa`'s rollover retires it.
#[test]
fn a_rollover_keeps_the_issuer_of_the_chain_another_key_slot_still_serves_mid_rollover() {
    let ca = TestPki::new(KeyKind::EcdsaP256).unwrap();
    let r10_ca = &ca.intermediate;
    let r11_ca = ca.another_intermediate("R11").unwrap();
    let hash = |cert: &X509Ref| {
        pki::spki_sha256_hex(cert)
            .unwrap()
            .parse::<KeyHash>()
            .unwrap()
    };
    let (r10, r11) = (hash(&r10_ca.cert), hash(&r11_ca.cert));
    let leaf = |from: &Issued| {
        let key = pki::new_key(KeyKind::Rsa2048).unwrap();
        ca.leaf_from(from, &["mx1.example.com"], key, Validity::Days(90))
            .unwrap()
    };
    let (rsa_old_leaf, rsa_new_leaf) = (leaf(r10_ca), leaf(&r11_ca));
    let (rsa_old, rsa_new) = (hash(&rsa_old_leaf.cert), hash(&rsa_new_leaf.cert));

    let mut world = World::new();
    world.slot = Slot::Ec;
    world.others = vec![(Slot::Rsa, rsa_old)];
    world.chains = [
        (key(OLD), vec![r10]),
        (key(NEW), vec![r11]),
        (rsa_old, vec![r10]),
        (rsa_new, vec![r11]),
    ]
    .into_iter()
    .collect();
    let rsa_records = [
        rsa_old.dane_ee(),
        rsa_new.dane_ee(),
        r10.dane_ta(),
        r11.dane_ta(),
    ];
    for owner in OWNERS {
        for record in &rsa_records {
            world
                .primary
                .insert(entry(&record_at(owner, record.clone())));
        }
    }
    world.sync();
    let rig = Rig::with_certificates(world, TWO_SLOTS);
    // `rsa`'s chain file holds the new chain; its previous one is kept for a rollback.
    let dir = rig.config.state_dir.parent().unwrap().to_path_buf();
    let previous = dir.join("rsa-previous.pem");
    rsa_new_leaf
        .write_key_and_chain(&dir.join("rsa.pem"))
        .unwrap();
    rsa_old_leaf.write_key_and_chain(&previous).unwrap();
    let mut store = rig.store();
    let rsa_installed = {
        let mut r = stage(
            StageRequest {
                slot: Slot::Rsa,
                scheme: Scheme::CurrentIssuer,
                old: Some(rsa_old),
                new: rsa_new,
                issuers: vec![r11],
                chain: "/staged/rsa.pem".into(),
                previous_chain: Some(previous),
                ..request()
            },
            T0,
        )
        .unwrap()
        .next;
        r.phase = Phase::Installed {
            since: T0,
            reloaded: true,
            reload_failures: 0,
            probes: 0,
        };
        r
    };
    store.save(&rsa_installed, &[], &[], T0).unwrap();
    ours(&mut store, &Slot::Rsa, &rsa_records);
    set_key(&mut store, &Slot::Rsa, KeyRole::Current, rsa_old);
    set_key(&mut store, &Slot::Rsa, KeyRole::New, rsa_new);
    ours(&mut store, &Slot::Ec, &[key(OLD).dane_ee(), r10.dane_ta()]);
    set_key(&mut store, &Slot::Ec, KeyRole::Current, key(OLD));
    drop(store);

    let r = roll_ec_to(&rig, r11);
    let rsa_phase = |rig: &Rig| {
        let r = rig.store().rollover("mx", &Slot::Rsa).unwrap().unwrap();
        r.phase.name()
    };
    assert_eq!(rsa_phase(&rig), PhaseName::Installed);
    {
        let w = rig.world();
        for owner in OWNERS {
            let old = record_at(owner, key(OLD).dane_ee());
            assert!(!w.serves_everywhere(&old), "{:?}", r.log);
            assert!(
                w.serves_everywhere(&record_at(owner, r10.dane_ta())),
                "R10's record at {owner} was retired while key slot rsa still serves a chain \
                 from R10: {:?}",
                r.log
            );
        }
    }

    // `rsa`'s new chain is served now: its rollover is verified and retires R10's record.
    rig.world().others = vec![(Slot::Rsa, rsa_new)];
    let r = rig.run(at(TWO_TTL + 60), false);
    assert_eq!(rsa_phase(&rig), PhaseName::Done, "{:?}", r.log);
    let w = rig.world();
    for owner in OWNERS {
        for gone in [r10.dane_ta(), rsa_old.dane_ee()] {
            let gone = record_at(owner, gone);
            assert!(!w.primary.contains(&entry(&gone)), "{gone}: {:?}", r.log);
        }
        for kept in [r11.dane_ta(), rsa_new.dane_ee(), key(NEW).dane_ee()] {
            assert!(w.serves_everywhere(&record_at(owner, kept)));
        }
    }
}
