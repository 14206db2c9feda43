//! The exposition: one run's report (and the rollover phases read from the store) turned into
//! the metrics of the table in the exporter's module docs.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::notify::Severity;
use crate::probe::Verdict;
use crate::rollover::PhaseName;

use super::super::beside::Mode;
use super::super::checks::{self, CheckKind, rank};
use super::super::{RecordSource, RunReport};
use super::phases::KnownPhases;

/// Every phase, for `dane_rollover_phase`'s state set.
const PHASES: [PhaseName; 10] = PhaseName::ALL;

type Labels = Vec<(String, String)>;
type FloatGauge = Gauge<f64, AtomicU64>;

/// The exposition of one run: every metric of the table in the module docs; the rollover
/// phases when the store was read.
pub fn encode_run(run: &RunReport, phases: Option<&KnownPhases>) -> String {
    let mut registry = Registry::default();
    let family = |registry: &mut Registry, name: &str, help: &str| {
        let f = Family::<Labels, FloatGauge>::default();
        registry.register(name, help, f.clone());
        f
    };
    let lab = |pairs: &[(&str, String)]| -> Labels {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), v.clone()))
            .collect()
    };

    single(
        &mut registry,
        "dane_status",
        "Worst check status of the run: 0 ok, 1 warning, 2 critical, 3 unknown",
        f64::from(code(run.status)),
    );

    let check_status = family(
        &mut registry,
        "dane_check_status",
        "Worst status per check kind and endpoint: 0 ok, 1 warning, 2 critical, 3 unknown",
    );
    let mut worst: Vec<((String, String, CheckKind), Severity)> = Vec::new();
    for c in &run.checks {
        let key = (
            c.host.clone().unwrap_or_default(),
            c.port.map(|p| p.to_string()).unwrap_or_default(),
            c.kind,
        );
        match worst.iter_mut().find(|(k, _)| *k == key) {
            Some((_, s)) if rank(c.status) > rank(*s) => *s = c.status,
            Some(_) => {}
            None => worst.push((key, c.status)),
        }
    }
    for ((host, port, kind), s) in worst {
        check_status
            .get_or_create(&lab(&[
                ("host", host),
                ("port", port),
                ("check", kind.as_str().to_string()),
            ]))
            .set(f64::from(code(s)));
    }

    let records = family(
        &mut registry,
        "dane_tlsa_records",
        "TLSA records at the endpoint's owner name",
    );
    let secure = family(
        &mut registry,
        "dane_tlsa_secure",
        "1 when the TLSA RRset is DNSSEC-secure and holds a record usable for SMTP",
    );
    let ttl = family(
        &mut registry,
        "dane_tlsa_ttl_seconds",
        "TTL of the TLSA RRset",
    );
    let rrsig = family(
        &mut registry,
        "dane_rrsig_expiry_timestamp_seconds",
        "When the RRSIG over the TLSA RRset expires (Unix time)",
    );
    let up = family(
        &mut registry,
        "dane_endpoint_probe_success",
        "1 when the probe of the address saw a key (the outcome is known)",
    );
    let matched = family(
        &mut registry,
        "dane_endpoint_match",
        "1 when the key the address serves for the algorithm matches a usable TLSA record",
    );
    let cert = family(
        &mut registry,
        "dane_cert_expiry_timestamp_seconds",
        "When the leaf certificate served for the algorithm expires (Unix time)",
    );
    for ep in &run.endpoints {
        let hp = [("host", ep.host.clone()), ("port", ep.port.to_string())];
        records
            .get_or_create(&lab(&hp))
            .set(ep.tlsa.records.len() as f64);
        let is_secure = ep.tlsa.source == RecordSource::DnsSecure;
        secure
            .get_or_create(&lab(&hp))
            .set(if is_secure { 1.0 } else { 0.0 });
        if let Some(t) = ep.tlsa.ttl {
            ttl.get_or_create(&lab(&hp)).set(f64::from(t));
        }
        if let Some(expiry) = ep.tlsa.rrsig_expiry {
            rrsig.get_or_create(&lab(&hp)).set(expiry as f64);
        }
        for report in &ep.addresses {
            let address = report.address.ip().to_string();
            let mut hpa = hp.to_vec();
            hpa.push(("address", address));
            let known = report.verdict != Verdict::Unknown && !report.keys.is_empty();
            up.get_or_create(&lab(&hpa))
                .set(if known { 1.0 } else { 0.0 });
            for (algorithm, key) in checks::keys_by_algorithm(report) {
                let mut l = hpa.clone();
                l.push(("algorithm", algorithm.as_str().to_string()));
                matched
                    .get_or_create(&lab(&l))
                    .set(if key.matched { 1.0 } else { 0.0 });
                if let Some(end) = checks::not_after_secs(key) {
                    cert.get_or_create(&lab(&l)).set(end as f64);
                }
            }
        }
    }

    let sts: Vec<_> = run
        .domains
        .iter()
        .filter_map(|d| Some((d, d.mta_sts.as_ref()?)))
        .collect();
    if !sts.is_empty() {
        let mode = family(
            &mut registry,
            "dane_mta_sts_policy",
            "1 for the mode of the mail domain's MTA-STS policy (enforce, testing, none), 0 for the others",
        );
        let max_age = family(
            &mut registry,
            "dane_mta_sts_max_age_seconds",
            "max_age of the mail domain's MTA-STS policy",
        );
        for (d, policy) in sts {
            for m in [Mode::Enforce, Mode::Testing, Mode::None] {
                mode.get_or_create(&lab(&[
                    ("domain", d.domain.clone()),
                    ("mode", m.as_str().to_string()),
                ]))
                .set(if m == policy.mode { 1.0 } else { 0.0 });
            }
            max_age
                .get_or_create(&lab(&[("domain", d.domain.clone())]))
                .set(policy.max_age as f64);
        }
    }

    let stored = phases;
    if let Some(known) = phases {
        single(
            &mut registry,
            "dane_rollover_phase_read_timestamp_seconds",
            "When the rollover phases were last read from the store (Unix time)",
            known.read_at as f64,
        );
    }
    let phases = phases.map_or(&[][..], |k| &k.phases[..]);
    if !phases.is_empty() {
        let phase = family(
            &mut registry,
            "dane_rollover_phase",
            "1 for the phase the rollover of a service's key slot is in, 0 for the others",
        );
        for p in phases {
            for name in PHASES {
                phase
                    .get_or_create(&lab(&[
                        ("service", p.service.clone()),
                        ("slot", p.slot.clone()),
                        ("phase", name.as_str().to_string()),
                    ]))
                    .set(if name == p.phase { 1.0 } else { 0.0 });
            }
        }
    }

    if let Some(known) = stored.filter(|k| !k.tlsrpt.is_empty()) {
        let sessions = Family::<Labels, Counter>::default();
        registry.register(
            "dane_tlsrpt_sessions",
            "Sessions the stored SMTP TLS reports count, by result and policy type",
            sessions.clone(),
        );
        for s in &known.tlsrpt {
            sessions
                .get_or_create(&lab(&[
                    ("result", s.result.clone()),
                    ("policy_type", s.policy_type.clone()),
                ]))
                .inc_by(s.sessions);
        }
    }

    single(
        &mut registry,
        "dane_check_duration_seconds",
        "How long the last run of the checks took",
        run.elapsed_seconds,
    );
    single(
        &mut registry,
        "dane_last_check_timestamp_seconds",
        "When the last run of the checks started (Unix time)",
        run.started as f64,
    );
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = encode(&mut out, &registry);
    out
}

/// Register a gauge without labels holding `value`.
fn single(registry: &mut Registry, name: &str, help: &str, value: f64) {
    let gauge = FloatGauge::default();
    registry.register(name, help, gauge.clone());
    gauge.set(value);
}

/// The status on the metric scale: 0 ok, 1 warning, 2 critical, 3 unknown (Nagios codes).
pub fn code(s: Severity) -> u8 {
    match s {
        Severity::Ok => 0,
        Severity::Warning => 1,
        Severity::Critical => 2,
        Severity::Unknown => 3,
    }
}
