//! The second step of loading: the raw serde spec ([`super::raw`]) checked and turned into the runtime
//! [`Config`], with defaults filled in. Every error found is collected (not just the first), each
//! located in the file and naming its service or provider and key. Nothing here touches the file
//! system except through the `system_resolver` callback: files and secrets are checked by
//! [`super::environment`].
//!
//! One file per section (`resolver`, `check`, `providers`, `services`, `alerts`), each an
//! `impl Builder` block; `values` holds the checks every section shares.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use super::error::Problem;
use super::raw::RawConfig;
use super::source::{Seg, Source, kpath};

mod alerts;
mod check;
mod endpoints;
mod providers;
mod resolver;
mod services;
mod values;
use super::{CONFIG_VERSION, Config, DEFAULT_STATE_DIR};

/// Check `raw` and build the runtime configuration, or return every error found.
pub(super) fn build(
    raw: RawConfig,
    src: &Source<'_>,
    base_dir: Option<&Path>,
    system_resolver: impl FnOnce() -> Option<SocketAddr>,
) -> Result<Config, Vec<Problem>> {
    let mut b = Builder {
        src,
        base_dir,
        errors: Vec::new(),
        warnings: Vec::new(),
    };

    let version = match raw.version {
        None => CONFIG_VERSION,
        Some(v) if v == i64::from(CONFIG_VERSION) => CONFIG_VERSION,
        Some(v) => {
            b.error(
                kpath!["version"],
                format!(
                    "version {v} is not supported; this dane-roll reads version {CONFIG_VERSION}"
                ),
            );
            CONFIG_VERSION
        }
    };
    let state_dir = match raw.state_dir {
        Some(dir) => b.file_path(kpath!["state-dir"], dir),
        None => PathBuf::from(DEFAULT_STATE_DIR),
    };
    let resolver = b.resolver(raw.resolver, system_resolver);
    let check = b.check(raw.check);
    let providers = b.providers(raw.providers);
    let services = b.services(raw.services, &providers, &check);
    let alerts = b.alerts(raw.alerts);

    let used: HashSet<&str> = services.iter().map(|s| s.provider.as_str()).collect();
    for name in providers
        .keys()
        .filter(|name| !used.contains(name.as_str()))
    {
        b.warn(kpath!["provider", name], "is not used by any service");
    }
    if services.is_empty() {
        b.warn(
            Vec::new(),
            "no [[service]] is configured; rollovers and monitoring need at least one",
        );
    }

    if !b.errors.is_empty() {
        sort(&mut b.errors);
        return Err(b.errors);
    }
    sort(&mut b.warnings);
    Ok(Config {
        file: src.name.to_owned(),
        version,
        state_dir,
        resolver,
        services,
        providers,
        alerts,
        check,
        warnings: b.warnings,
        text: src.text().to_owned(),
    })
}

/// Problems in file order (those without a location last, in the order found).
fn sort(problems: &mut [Problem]) {
    problems.sort_by_key(|p| p.location.map_or((usize::MAX, 0), |l| (l.line, l.column)));
}

struct Builder<'s, 'a> {
    src: &'s Source<'a>,
    base_dir: Option<&'s Path>,
    errors: Vec<Problem>,
    warnings: Vec<Problem>,
}

impl Builder<'_, '_> {
    fn error(&mut self, at: Vec<Seg>, message: impl Into<String>) {
        self.errors.push(self.src.problem(&at, message));
    }

    fn warn(&mut self, at: Vec<Seg>, message: impl Into<String>) {
        self.warnings.push(self.src.problem(&at, message));
    }
}
