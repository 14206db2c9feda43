//! `dane-roll status [SERVICE] [--json] [--history] [--live]`: where each service's rollover
//! stands, per key slot: the phase and since when, the next action and when it is due, the keys
//! by role, the records the rollover wants against the records dane-roll published, the
//! certificate's expiry and whether the next key is published.
//!
//! By default only the state store is read (fast: one small SQLite read, and the staged
//! certificate's expiry), so monitoring can call it every minute; `--live` adds what every
//! authoritative server serves and the live handshake of every endpoint address, and exits 1
//! when a key served differs from the store's current key of its slot (drift; `run` adopts it).

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::cli::{Cli, StatusArgs};
use crate::config::Config;
use crate::exit::Status;
use crate::rollover::{Phase, ProbeVerdict, ResolverAnswer, Rollover, Slot, TlsaAt};
use crate::store::{KeyRole, Store};

use super::run::open_driver;

/// How many events `--history` shows.
const HISTORY: usize = 200;

/// Run the command.
pub(super) fn run(cli: &Cli, args: &StatusArgs) -> anyhow::Result<Status> {
    let config = Config::load_with_state_dir(&cli.config, cli.state_dir.as_deref())?;
    if let Some(name) = args.service.get() {
        config.service_or_err(name)?;
    }
    let wanted = |name: &str| args.service.get().is_none_or(|s| s == name);
    let mut rows: Vec<Value> = Vec::new();
    let history;
    let rollovers;
    {
        let store = if config.state_dir.join(crate::store::DB_FILE).exists() || args.live {
            Some(Store::open(&config.state_dir)?)
        } else {
            None
        };
        rollovers = match &store {
            Some(s) => s.rollovers()?,
            None => Vec::new(),
        };
        for service in config.services.iter().filter(|s| wanted(&s.name)) {
            let mine: Vec<&Rollover> = rollovers
                .iter()
                .filter(|r| r.request.service == service.name)
                .collect();
            let keys = match &store {
                Some(s) => s.keys(&service.name)?,
                None => Vec::new(),
            };
            if mine.is_empty() {
                // Records of ours before any rollover: adopted by `init --apply`, or published
                // by `run` for the served key.
                let ours: Vec<TlsaAt> = match &store {
                    Some(s) => s
                        .published(&service.name)?
                        .into_iter()
                        .filter(|p| p.retired_at.is_none())
                        .map(|p| p.record)
                        .collect(),
                    None => Vec::new(),
                };
                rows.push(json!({
                    "service": service.name,
                    "slot": Value::Null,
                    "phase": "none",
                    "next_action": "deploy a certificate (dane-roll deploy or an ACME hook)",
                    "keys": { "stored": keys_json(&keys, None) },
                    "records": { "published": record_strings(&ours) },
                }));
                continue;
            }
            for r in mine {
                let ours = match &store {
                    Some(s) => s.ours(&r.request.service, &r.request.slot)?,
                    None => Vec::new(),
                };
                let ttls = match &store {
                    Some(s) => s.ttls(&r.request.service, &r.request.slot, r.started)?,
                    None => Vec::new(),
                };
                let mut value = row(r, &ours, &keys);
                value["wait"] = wait_json(r, &ttls);
                if let Some(s) = &store {
                    value["owners"] = json!(crate::rollover::driver::owner_lines(s, r)?);
                }
                rows.push(value);
            }
        }
        history = match (&store, args.history) {
            (Some(s), true) => s
                .events(args.service.get(), HISTORY)?
                .into_iter()
                .map(|e| {
                    json!({
                        "time": e.event.time.to_string(),
                        "service": e.service,
                        "slot": e.slot.as_str(),
                        "phase": e.event.phase.as_str(),
                        "detail": e.event.detail,
                    })
                })
                .collect::<Vec<_>>(),
            _ => Vec::new(),
        };
    }
    let mut mismatches = Vec::new();
    if args.live {
        let driver = open_driver(cli, config.clone(), "dane-roll status", Default::default())?;
        for row in &mut rows {
            let (Some(service), Some(slot)) = (row["service"].as_str(), row["slot"].as_str())
            else {
                continue;
            };
            let Some(r) = rollovers
                .iter()
                .find(|r| r.request.service == service && r.request.slot.as_str() == slot)
            else {
                continue;
            };
            let (dns, probed) = driver.observe_live(r)?;
            row["live"] = live_json(&dns, &probed);
        }
        // The key served against the store's current key: a mismatch exits 1.
        mismatches = driver.mismatches(args.service.get())?;
    }
    let mismatch_status = if mismatches.is_empty() {
        Status::Ok
    } else {
        Status::Warning
    };
    if args.json {
        let mut doc = json!({ "services": rows });
        if args.history {
            doc["history"] = Value::Array(history);
        }
        if args.live {
            doc["mismatches"] = mismatches
                .iter()
                .map(|m| json!({ "service": m.service, "slot": m.slot.as_str(), "text": m.text }))
                .collect();
        }
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(mismatch_status);
    }
    for m in &mismatches {
        println!("MISMATCH {} ({}): {}", m.service, m.slot, m.text);
    }
    for row in &rows {
        print_row(row);
    }
    if args.history {
        println!("\nhistory:");
        for e in &history {
            println!(
                "  {} {} ({}) [{}] {}",
                e["time"].as_str().unwrap_or(""),
                e["service"].as_str().unwrap_or(""),
                e["slot"].as_str().unwrap_or(""),
                e["phase"].as_str().unwrap_or(""),
                e["detail"].as_str().unwrap_or("")
            );
        }
    }
    Ok(mismatch_status)
}

fn keys_json(keys: &[crate::store::KeyEntry], slot: Option<&Slot>) -> Value {
    let mut out = serde_json::Map::new();
    for k in keys.iter().filter(|k| slot.is_none_or(|s| &k.slot == s)) {
        out.insert(k.role.as_str().to_owned(), Value::String(k.hash.to_hex()));
    }
    Value::Object(out)
}

/// What comes next and when.
fn next_action(r: &Rollover) -> (String, Option<String>) {
    match &r.phase {
        Phase::Staged { .. } => ("publish the records".into(), None),
        Phase::Published {
            confirmed_at: Some(_),
            ..
        } => (
            "install the certificate".into(),
            r.eta().map(|t| t.to_string()),
        ),
        Phase::Published { .. } => (
            "wait until every nameserver serves the records and the resolver validates them".into(),
            None,
        ),
        Phase::Aged { .. } => ("install the certificate".into(), None),
        Phase::Installed {
            reloaded: false, ..
        } => ("reload the service".into(), None),
        Phase::Installed { .. } => ("verify the live handshake".into(), None),
        Phase::Verified { .. } => ("retire the old records".into(), None),
        Phase::Retired { .. } => ("publish the next key".into(), None),
        Phase::Done { .. } => ("none".into(), None),
        Phase::RolledBack { reason, .. } => (format!("none: rolled back ({reason})"), None),
        Phase::Aborting {
            from,
            restore: true,
            reloaded: false,
            ..
        } => (
            format!(
                "abort (from {from}): put the previous certificate back and reload, then retire                  the abandoned key's records"
            ),
            None,
        ),
        Phase::Aborting { from, .. } => (
            format!(
                "abort (from {from}): retire the abandoned key's records once the live                  handshake shows the key in use"
            ),
            None,
        ),
        Phase::Aborted { from, .. } => (
            format!(
                "none: aborted by the operator in phase {from}; {} stays live",
                r.request
                    .old
                    .map_or_else(|| "the previous key".to_owned(), |k| k.short())
            ),
            None,
        ),
    }
}

fn record_strings(records: &[TlsaAt]) -> Vec<String> {
    let mut v: Vec<String> = records.iter().map(ToString::to_string).collect();
    v.sort();
    v
}

fn row(r: &Rollover, ours: &[TlsaAt], keys: &[crate::store::KeyEntry]) -> Value {
    use crate::rollover::PhaseName;
    let expected = match r.phase.name() {
        PhaseName::Aborting | PhaseName::Aborted => r.abandon_set(),
        PhaseName::RolledBack => r.publish_set(),
        _ if r.is_final() => r.keep_set(),
        _ => r.publish_set(),
    };
    let (action, eta) = next_action(r);
    let next = keys
        .iter()
        .find(|k| k.slot == r.request.slot && k.role == KeyRole::Next)
        .map(|k| k.hash)
        .or(r.request.next);
    let next_published = next.is_some_and(|n| {
        r.request
            .owners
            .iter()
            .all(|o| ours.iter().any(|rec| rec.owner == *o && rec.is_of(&n)))
    });
    let chain_pem = crate::fsafe::read_regular(&r.request.chain).ok();
    let not_after = chain_pem.as_deref().and_then(leaf_not_after);
    // A wait that is a large share of a short-lived certificate's lifetime, with no next key
    // published ahead (`rollover::lifetime`).
    let lifetime_advice = chain_pem
        .as_deref()
        .and_then(leaf_validity)
        .and_then(|(from, until)| u64::try_from(until - from).ok())
        .and_then(|secs| {
            crate::rollover::lifetime::advice(&crate::rollover::lifetime::LifetimeFacts {
                lifetime: std::time::Duration::from_secs(secs),
                wait: r.wait(),
                next_published,
            })
        });
    let ours_set: BTreeSet<String> = record_strings(ours).into_iter().collect();
    let expected_s = record_strings(&expected);
    let missing: Vec<&String> = expected_s
        .iter()
        .filter(|e| !ours_set.contains(*e))
        .collect();
    json!({
        "service": r.request.service,
        "slot": r.request.slot.as_str(),
        "phase": r.phase.name().as_str(),
        "since": r.phase.since().to_string(),
        "started": r.started.to_string(),
        "next_action": action,
        "eta": eta,
        "forced": r.forced.map(|t| t.to_string()),
        "keys": {
            "old": r.request.old.map(|k| k.to_hex()),
            "new": r.request.new.to_hex(),
            "next": next.map(|k| k.to_hex()),
            "stored": keys_json(keys, Some(&r.request.slot)),
        },
        "next_key_published": next_published,
        "records": {
            "expected": expected_s,
            "published": record_strings(ours),
            "not_published": missing,
        },
        "certificate": not_after.map(|(text, secs)| json!({
            "file": r.request.chain.display().to_string(),
            "not_after": text,
            "expired": secs < now_secs(),
        })),
        "short_lived": lifetime_advice,
    })
}

/// The TTL that governs the 2×TTL wait and where it was seen, with every TTL seen.
fn wait_json(r: &Rollover, ttls: &[crate::store::TtlObservation]) -> Value {
    let governing = r.governing_ttl();
    let seen_at = match r.ttl_source() {
        Some(s) => json!({ "source": s.source, "owner": s.owner, "time": s.time.to_string() }),
        None => json!("configuration"),
    };
    json!({
        "ttl": governing,
        "seconds": r.wait().as_secs(),
        "configured_ttl": r.request.ttl,
        "governed_by": seen_at,
        "observed": ttls.iter().map(|t| json!({
            "owner": t.owner,
            "source": t.source,
            "ttl": t.ttl,
            "first_seen": t.first_seen.to_string(),
            "last_seen": t.last_seen.to_string(),
        })).collect::<Vec<_>>(),
    })
}

fn live_json(dns: &crate::rollover::DnsReport, probed: &[crate::rollover::ProbeResult]) -> Value {
    let owners: Vec<Value> = dns
        .owners
        .iter()
        .map(|o| {
            json!({
                "owner": o.owner,
                "nameservers": o.nameservers.iter().map(|n| json!({
                    "nameserver": n.nameserver,
                    "records": match &n.records {
                        Ok(r) => json!(r.iter().map(ToString::to_string).collect::<Vec<_>>()),
                        Err(e) => json!({ "error": e }),
                    },
                })).collect::<Vec<_>>(),
                "validated": match &o.validation {
                    ResolverAnswer::Secure(r) => json!(r.iter().map(ToString::to_string).collect::<Vec<_>>()),
                    other => json!({ "not_secure": other.to_string() }),
                },
            })
        })
        .collect();
    let endpoints: Vec<Value> = probed
        .iter()
        .map(|p| {
            json!({
                "endpoint": p.endpoint,
                "address": p.address,
                "match": matches!(p.verdict, ProbeVerdict::Match),
                "verdict": p.verdict.to_string(),
                "live_key": p.live_key.map(|k| k.to_hex()),
            })
        })
        .collect();
    json!({ "dns": owners, "endpoints": endpoints })
}

/// The line of a service with no rollover ever started, saying whether dane-roll knows its
/// keys (adopted: the served key is stored as current); `None` for a rollover's row.
fn no_rollover(row: &Value) -> Option<String> {
    if row["phase"] != "none" || !row["slot"].is_null() {
        return None;
    }
    let keys = row["keys"]["stored"]
        .as_object()
        .is_some_and(|k| !k.is_empty());
    let what = if keys {
        "adopted, no rollover yet"
    } else {
        "no key known, no rollover yet"
    };
    Some(format!(
        "{}: {what}",
        row["service"].as_str().unwrap_or("-")
    ))
}

fn print_row(row: &Value) {
    let s = |v: &Value| v.as_str().unwrap_or("-").to_owned();
    let slot = row["slot"].as_str().unwrap_or("-");
    if let Some(headline) = no_rollover(row) {
        println!("{headline}");
        println!("  next: {}", s(&row["next_action"]));
        return;
    }
    println!("{} ({slot}): {}", s(&row["service"]), s(&row["phase"]));
    if row["phase"] == "none" {
        println!("  next: {}", s(&row["next_action"]));
        return;
    }
    println!(
        "  since {} (started {})",
        s(&row["since"]),
        s(&row["started"])
    );
    for line in row["owners"].as_array().into_iter().flatten() {
        println!("  {}", s(line));
    }
    match row["eta"].as_str() {
        Some(eta) => println!("  next: {} at {eta}", s(&row["next_action"])),
        None => println!("  next: {}", s(&row["next_action"])),
    }
    if let Some(ttl) = row["wait"]["ttl"].as_u64() {
        let wait = row["wait"]["seconds"].as_u64().unwrap_or(2 * ttl);
        match row["wait"]["governed_by"].as_object() {
            Some(at) => println!(
                "  wait: 2×TTL = {wait} s; TTL {ttl} s served by {} at {} (seen {}), not the \
                 configured {} s",
                at.get("source").and_then(Value::as_str).unwrap_or("-"),
                at.get("owner").and_then(Value::as_str).unwrap_or("-"),
                at.get("time").and_then(Value::as_str).unwrap_or("-"),
                row["wait"]["configured_ttl"].as_u64().unwrap_or(0)
            ),
            None => println!("  wait: 2×TTL = {wait} s; TTL {ttl} s from the configuration"),
        }
    }
    let short = |v: &Value| {
        v.as_str()
            .map_or("-".to_owned(), |h| h.chars().take(12).collect())
    };
    println!(
        "  keys: old {}, new {}, next {} ({})",
        short(&row["keys"]["old"]),
        short(&row["keys"]["new"]),
        short(&row["keys"]["next"]),
        if row["next_key_published"] == true {
            "published"
        } else {
            "not published"
        }
    );
    if let Some(cert) = row["certificate"].as_object() {
        println!(
            "  certificate: {} until {}{}",
            cert.get("file").and_then(Value::as_str).unwrap_or("-"),
            cert.get("not_after").and_then(Value::as_str).unwrap_or("-"),
            if cert.get("expired") == Some(&Value::Bool(true)) {
                " (EXPIRED)"
            } else {
                ""
            }
        );
    }
    if let Some(advice) = row["short_lived"].as_str() {
        println!("  short-lived: {advice}");
    }
    let expected = row["records"]["expected"].as_array().map_or(0, Vec::len);
    let missing = row["records"]["not_published"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    println!(
        "  records: {expected} expected, {} published by dane-roll{}",
        row["records"]["published"].as_array().map_or(0, Vec::len),
        if missing.is_empty() {
            String::new()
        } else {
            format!(", not published: {}", missing.len())
        }
    );
    if let Some(live) = row.get("live") {
        for o in live["dns"].as_array().into_iter().flatten() {
            println!("  {}:", s(&o["owner"]));
            for n in o["nameservers"].as_array().into_iter().flatten() {
                let seen = match n["records"].as_array() {
                    Some(r) => crate::output::count(r.len(), "record"),
                    None => format!("error {}", n["records"]["error"]),
                };
                println!("    {}: {seen}", s(&n["nameserver"]));
            }
            match o["validated"].as_array() {
                Some(r) => println!(
                    "    resolver: {} validated",
                    crate::output::count(r.len(), "record")
                ),
                None => println!(
                    "    resolver: {}",
                    o["validated"]["not_secure"].as_str().unwrap_or("")
                ),
            }
        }
        for e in live["endpoints"].as_array().into_iter().flatten() {
            println!(
                "  {} ({}): {} (live key {})",
                s(&e["endpoint"]),
                s(&e["address"]),
                if e["match"] == true {
                    "matches"
                } else {
                    "NO MATCH"
                },
                short(&e["live_key"])
            );
        }
    }
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// The leaf certificate's notBefore and notAfter in a key+chain PEM file, seconds since the
/// epoch (read as [`leaf_not_after`] reads it).
fn leaf_validity(pem_text: &[u8]) -> Option<(i64, i64)> {
    let blocks = pem::parse_many(pem_text).ok()?;
    let der = blocks.iter().find(|b| b.tag() == "CERTIFICATE")?.contents();
    let facts = crate::der::certificate(der)?;
    Some((facts.not_before, facts.not_after))
}

/// The leaf certificate's notAfter in a key+chain PEM file: RFC 3339 text and seconds since
/// the epoch.
///
/// Read from the DER by `x509-parser` (`crate::der`), not OpenSSL, because OpenSSL 3 sets up its
/// decoders for every certificate it parses (about 0.3 ms each, most of `status`'s time with 50
/// services), and this is all `status` needs of the certificate.
fn leaf_not_after(pem_text: &[u8]) -> Option<(String, i64)> {
    let blocks = pem::parse_many(pem_text).ok()?;
    let der = blocks.iter().find(|b| b.tag() == "CERTIFICATE")?.contents();
    let secs = crate::der::certificate_not_after(der)?;
    Some((
        crate::rollover::Timestamp::from_secs(secs).to_string(),
        secs,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_service_without_a_rollover_says_whether_it_is_adopted() {
        let row = |keys: Value| {
            json!({ "service": "mx", "slot": null, "phase": "none",
                                        "keys": { "stored": keys } })
        };
        assert_eq!(
            no_rollover(&row(json!({ "current": "ab" }))).as_deref(),
            Some("mx: adopted, no rollover yet")
        );
        assert_eq!(
            no_rollover(&row(json!({}))).as_deref(),
            Some("mx: no key known, no rollover yet")
        );
        let done = json!({ "service": "mx", "slot": "ec", "phase": "none" });
        assert_eq!(no_rollover(&done), None);
    }

    #[test]
    fn not_after_read_by_hand_agrees_with_openssl() {
        let key = crate::pki::generate_key(crate::config::KeyType::Ec256).unwrap();
        let mut name = openssl::x509::X509NameBuilder::new().unwrap();
        name.append_entry_by_text("CN", "mail.example.com").unwrap();
        let name = name.build();
        for days in [1, 400, 20_000] {
            let mut b = openssl::x509::X509::builder().unwrap();
            b.set_version(2).unwrap();
            b.set_subject_name(&name).unwrap();
            b.set_issuer_name(&name).unwrap();
            b.set_pubkey(&key).unwrap();
            b.set_not_before(&openssl::asn1::Asn1Time::days_from_now(0).unwrap())
                .unwrap();
            b.set_not_after(&openssl::asn1::Asn1Time::days_from_now(days).unwrap())
                .unwrap();
            b.sign(&key, openssl::hash::MessageDigest::sha256())
                .unwrap();
            let cert = b.build();
            let mut file = key.private_key_to_pem_pkcs8().unwrap();
            file.extend(cert.to_pem().unwrap());
            let (text, secs) = leaf_not_after(&file).unwrap();
            let want = crate::probe::CertInfo::of(&cert).not_after;
            assert_eq!(text, want, "{days} days");
            let epoch = openssl::asn1::Asn1Time::from_unix(0).unwrap();
            let diff = epoch.diff(cert.not_after()).unwrap();
            assert_eq!(secs, i64::from(diff.days) * 86_400 + i64::from(diff.secs));
        }
        assert_eq!(leaf_not_after(b"garbage"), None);
    }
}
