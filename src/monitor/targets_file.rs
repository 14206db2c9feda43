//! `serve --targets FILE`: extra targets read from a file, one per line in the syntax `check`
//! takes ([`Target::parse`]: a mail domain, `host[:port][/protocol]`), `#` starting a comment,
//! blank lines ignored; so a hosting operator can feed thousands of domains. `serve` reads it
//! at start (a bad file is an error then) and again on SIGHUP ([`reload_on_hangup`]): a file
//! that cannot be read or has a bad line keeps the previous list, and the error names the
//! line.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::exporter::Exporter;
use super::{Target, TargetMode};

/// The largest targets file read (a million short lines).
pub const MAX_TARGETS_FILE_BYTES: u64 = 32 * 1024 * 1024;

/// Why a targets file cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TargetsFileError {
    /// It could not be read.
    #[error("cannot read the targets file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// It is larger than [`MAX_TARGETS_FILE_BYTES`].
    #[error("the targets file {path} is larger than {MAX_TARGETS_FILE_BYTES} bytes")]
    TooLarge {
        /// The file.
        path: PathBuf,
    },
    /// A line is not a target.
    #[error(
        "{path}:{line}: \"{text}\" is not a target: {reason}; fix the line (one mail domain or host[:port][/protocol] per line, # for comments)"
    )]
    Line {
        /// The file.
        path: PathBuf,
        /// The line number, from 1.
        line: usize,
        /// The line as read (without its comment).
        text: String,
        /// Why.
        reason: String,
    },
}

/// The targets in `text` (the contents of `path`), in order, each once.
pub fn parse(path: &Path, text: &str) -> Result<Vec<Target>, TargetsFileError> {
    let mut out: Vec<Target> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let content = line.split('#').next().unwrap_or("").trim();
        if content.is_empty() {
            continue;
        }
        let bad = |reason: String| TargetsFileError::Line {
            path: path.to_path_buf(),
            line: n + 1,
            text: content.chars().take(200).collect(),
            reason,
        };
        if content.split_whitespace().count() > 1 {
            return Err(bad("one target per line".into()));
        }
        let target = Target::parse(content, TargetMode::Auto, None).map_err(|e| {
            let super::MonitorError::BadTarget { reason, .. } = e;
            bad(reason)
        })?;
        if !out.contains(&target) {
            out.push(target);
        }
    }
    Ok(out)
}

/// Read and parse the targets file at `path`.
pub fn read(path: &Path) -> Result<Vec<Target>, TargetsFileError> {
    let read_err = |source| TargetsFileError::Read {
        path: path.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(read_err)?;
    if meta.len() > MAX_TARGETS_FILE_BYTES {
        return Err(TargetsFileError::TooLarge {
            path: path.to_path_buf(),
        });
    }
    let text = std::fs::read_to_string(path).map_err(read_err)?;
    parse(path, &text)
}

/// `base` followed by the targets of `file` not already among them.
pub fn merged(base: &[Target], file: Vec<Target>) -> Vec<Target> {
    let mut out = base.to_vec();
    for target in file {
        if !out.contains(&target) {
            out.push(target);
        }
    }
    out
}

/// On every SIGHUP, read `path` again and give `exporter` the `base` targets plus the file's,
/// then run the checks at once; a file that cannot be used keeps the previous list (logged as
/// an error naming the line). `hangup` is the signal stream, installed by the caller before it
/// announces that it serves (so an early SIGHUP does not end the process).
pub async fn reload_on_hangup(
    exporter: Arc<Exporter>,
    base: Vec<Target>,
    path: PathBuf,
    mut hangup: tokio::signal::unix::Signal,
) {
    while hangup.recv().await.is_some() {
        let file = path.clone();
        let read = tokio::task::spawn_blocking(move || read(&file)).await;
        match read {
            Ok(Ok(targets)) => {
                let all = merged(&base, targets);
                tracing::info!(
                    "serve: SIGHUP: {} targets from {} ({} in all)",
                    all.len() - base.len(),
                    path.display(),
                    all.len()
                );
                exporter.set_targets(all);
            }
            Ok(Err(err)) => {
                tracing::error!("serve: SIGHUP: {err}; the previous targets are kept");
            }
            Err(err) => {
                tracing::error!(
                    "serve: SIGHUP: reading the targets file failed: {err}; the previous targets are kept"
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_comments_and_errors() {
        let path = Path::new("/etc/dane-roll/targets");
        let text = "# hosted domains\n\nexample.com\n  example.net   # second\nmx.example.org:587\nexample.com\n";
        let targets = parse(path, text).unwrap();
        assert_eq!(targets.len(), 3, "{targets:?}");
        let err = parse(path, "example.com\nexample.net:99999\n").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("/etc/dane-roll/targets:2:"), "{text}");
        assert!(text.contains("example.net:99999"), "{text}");
        let err = parse(path, "a.example b.example\n").unwrap_err();
        assert!(err.to_string().contains(":1:"), "{err}");
        assert!(parse(path, "# nothing\n\n").unwrap().is_empty());
    }
}
