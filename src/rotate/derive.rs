//! Which certbot lineage a service without `lineage` is for: the one under
//! `<config_dir>/live/` whose certificate shares the most names with the service's `domains`
//! (the rule the hooks use to find a service from a certificate, [`crate::config::Config::service_for_domains`],
//! turned around). `rotate` needs a lineage; with `domains` alone it derives one this way, and
//! when none or several fit it says which `lineage = "…"` line to add.

use std::fs;
use std::path::{Path, PathBuf};

/// What looking for a service's lineage found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Derived {
    /// One lineage shares the most names: its live directory.
    One(PathBuf),
    /// No lineage shares a name; the lineages certbot has (names, sorted).
    None(Vec<String>),
    /// Several share equally many names (names, sorted).
    Tied(Vec<String>),
}

/// The lineage under `<config_dir>/live/` for a service with these `domains`.
pub fn lineage_for_domains(config_dir: &Path, domains: &[String]) -> Derived {
    let live = config_dir.join("live");
    let mut all = Vec::new();
    let mut scored: Vec<(usize, String)> = Vec::new();
    for entry in fs::read_dir(&live).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let cert = entry.path().join("cert.pem");
        if !cert.is_file() {
            continue; // certbot's README, a stray file
        }
        let names = cert_names(&cert).unwrap_or_else(|| vec![normal(&name)]);
        let shared = domains
            .iter()
            .filter(|d| names.contains(&normal(d)))
            .count();
        all.push(name.clone());
        if shared > 0 {
            scored.push((shared, name));
        }
    }
    all.sort();
    let Some(top) = scored.iter().map(|(n, _)| *n).max() else {
        return Derived::None(all);
    };
    let mut best: Vec<String> = scored
        .into_iter()
        .filter(|(n, _)| *n == top)
        .map(|(_, name)| name)
        .collect();
    best.sort();
    if best.len() == 1 {
        Derived::One(live.join(&best[0]))
    } else {
        Derived::Tied(best)
    }
}

/// A name compared case-insensitively, without the root's dot.
fn normal(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// The DNS names of the certificate in `path` (its subjectAltName entries).
fn cert_names(path: &Path) -> Option<Vec<String>> {
    let pem = fs::read(path).ok()?;
    let cert = openssl::x509::X509::from_pem(&pem).ok()?;
    let names = cert.subject_alt_names()?;
    Some(
        names
            .iter()
            .filter_map(|n| n.dnsname().map(normal))
            .collect(),
    )
}
