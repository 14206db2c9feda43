//! Checks of the machine a configuration is used on: secrets available (without reading them),
//! directories present, programs found. Used by `dane-roll config check`; loading never does this, so a
//! command that does not need a secret still runs where it is missing.

use std::fs;
use std::path::{Path, PathBuf};

use super::error::Problem;
use super::secret::{SecretSource, SecretStatus, world_readable};
use super::source::{Seg, Source, kpath};
use super::{Config, Secret};

/// What the machine check found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvironmentReport {
    /// Things that will make dane-roll fail (a missing secret, a missing directory).
    pub errors: Vec<Problem>,
    /// Things worth a look (a secret readable by everyone, a program not on PATH).
    pub warnings: Vec<Problem>,
}

pub(super) fn check(config: &Config) -> EnvironmentReport {
    let src = Source::parse(&config.file, &config.text).ok();
    let mut report = EnvironmentReport::default();
    let problem = |at: Vec<Seg>, message: String| match &src {
        Some(src) => src.problem(&at, message),
        None => Problem {
            file: config.file.clone(),
            location: None,
            subject: super::Subject::File,
            key: None,
            message,
            snippet: None,
        },
    };

    let mut secrets: Vec<(Vec<Seg>, &Secret)> = Vec::new();
    for (name, provider) in &config.providers {
        for (key, secret) in provider.kind.secrets() {
            secrets.push((kpath!["provider", name, key], secret));
        }
    }
    for (name, channel) in &config.alerts.channels {
        for (key, secret) in channel.secrets() {
            secrets.push((kpath!["alerts", "channel", name, key], secret));
        }
    }
    for (at, secret) in secrets {
        let status = secret.status();
        let (what, hint) = match secret.source() {
            SecretSource::File(p) => (format!("file {}", p.display()), ""),
            SecretSource::Env(n) => (
                format!("environment variable {n}"),
                "; set it where dane-roll runs (the hook's and the timer's environment)",
            ),
        };
        match status {
            SecretStatus::Readable {
                world_readable: true,
            } => report.warnings.push(problem(
                at,
                format!("{what} can be read by every user; make it readable only by dane-roll (chmod 600)"),
            )),
            status if status.is_available() => {}
            status => report.errors.push(problem(at, format!("{what} is {status}{hint}"))),
        }
    }

    if let Some(anchor) = &config.resolver.trust_anchor
        && let Some(message) = unreadable_file(anchor)
    {
        report
            .errors
            .push(problem(kpath!["resolver", "trust-anchor"], message));
    }

    match fs::metadata(&config.state_dir) {
        Ok(meta) if !meta.is_dir() => report.errors.push(problem(
            kpath!["state-dir"],
            format!(
                "{} exists but is not a directory",
                config.state_dir.display()
            ),
        )),
        Ok(_) => {
            if let Err(untrusted) = crate::fsafe::check_private_dir(&config.state_dir) {
                report.errors.push(problem(
                    kpath!["state-dir"],
                    format!("{untrusted}; dane-roll refuses to write there"),
                ));
            }
        }
        Err(_) => report.warnings.push(problem(
            kpath!["state-dir"],
            format!(
                "{} does not exist yet; create it for the user dane-roll runs as",
                config.state_dir.display()
            ),
        )),
    }

    // A loaded configuration holds every [[service]] of the file, in file order.
    for (i, service) in config.services.iter().enumerate() {
        let at = |key: &str| kpath!["service", i, key];
        for (algorithm, chain) in service.chain_files.all() {
            let key = service.chain_files.key();
            let here = || match algorithm {
                Some(a) => kpath!["service", i, key, a],
                None => at(key),
            };
            match chain.parent().filter(|p| !p.as_os_str().is_empty()) {
                Some(dir) if !dir.is_dir() => report.errors.push(problem(
                    here(),
                    format!(
                        "directory {} does not exist, so {} cannot be written",
                        dir.display(),
                        chain.display()
                    ),
                )),
                _ => {}
            }
            if let Ok(target) = fs::read_link(chain) {
                report.warnings.push(problem(
                    here(),
                    format!(
                        "{} is a symbolic link (to {}): an install replaces the link with a \
                         regular file and never writes its target; point the setting at the \
                         file itself",
                        chain.display(),
                        target.display()
                    ),
                ));
            }
            match fs::metadata(chain) {
                Ok(meta) if !meta.is_file() => report.errors.push(problem(
                    here(),
                    format!("{} exists but is not a regular file", chain.display()),
                )),
                Ok(meta) if world_readable(&meta) => report.warnings.push(problem(
                    here(),
                    format!(
                        "{} holds the private key and can be read by every user (chmod 600)",
                        chain.display()
                    ),
                )),
                _ => {}
            }
        }
        for program in service.reload.iter().filter_map(|c| c.first()) {
            if find_program(program).is_none() {
                report.warnings.push(problem(
                    at("reload"),
                    format!(
                        "program {program} is not found (on PATH here; the hook's PATH may differ)"
                    ),
                ));
            }
        }
    }

    for (name, provider) in &config.providers {
        if let super::ProviderKind::Exec { command } = &provider.kind
            && let Some(program) = command.first().filter(|p| find_program(p).is_none())
        {
            report.warnings.push(problem(
                kpath!["provider", name, "command"],
                format!(
                    "program {program} is not found (on PATH here; the hook's PATH may differ)"
                ),
            ));
        }
    }
    report
}

fn unreadable_file(path: &Path) -> Option<String> {
    match fs::metadata(path) {
        Err(_) => Some(format!("file {} is not found", path.display())),
        Ok(meta) if !meta.is_file() => Some(format!("{} is not a regular file", path.display())),
        Ok(_) => fs::File::open(path)
            .err()
            .map(|err| format!("file {} cannot be read: {err}", path.display())),
    }
}

/// The program as it would be run: a path as given, or the first match on PATH.
pub(super) fn find_program(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        let path = PathBuf::from(program);
        return path.is_file().then_some(path);
    }
    let dirs = std::env::var_os("PATH")?;
    std::env::split_paths(&dirs)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}
