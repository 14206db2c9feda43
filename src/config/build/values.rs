//! The value checks every section shares: paths (relative to the file), durations, secrets,
//! names, URLs, commands and record-count bounds.

use std::path::PathBuf;
use std::time::Duration;

use super::Builder;
use crate::config::duration::parse_duration;
use crate::config::raw::RawDuration;
use crate::config::secret::is_env_name;
use crate::config::source::Seg;
use crate::config::{MIN_MAX_RECORDS, Secret};

impl Builder<'_, '_> {
    /// A path from the file: relative paths are taken from the configuration file's directory.
    pub(super) fn file_path(&mut self, at: Vec<Seg>, path: PathBuf) -> PathBuf {
        if path.as_os_str().is_empty() {
            self.error(at, "is empty; write a path");
            return path;
        }
        match self.base_dir {
            Some(base) if path.is_relative() => base.join(path),
            _ => path,
        }
    }

    pub(super) fn duration(
        &mut self,
        at: Vec<Seg>,
        raw: Option<RawDuration>,
        default: Duration,
    ) -> Duration {
        let parsed = match raw {
            None => return default,
            Some(RawDuration::Seconds(secs)) => u64::try_from(secs)
                .map(Duration::from_secs)
                .map_err(|_| format!("{secs} is negative; write a duration such as \"30s\"")),
            Some(RawDuration::Text(text)) => parse_duration(&text),
        };
        match parsed {
            Ok(d) if d.is_zero() => {
                self.error(at, "must be longer than zero");
                default
            }
            Ok(d) => d,
            Err(message) => {
                self.error(at, message);
                default
            }
        }
    }

    /// The required API token of the table at `table`: `token-file` or `token-env`.
    pub(super) fn token(
        &mut self,
        table: &[Seg],
        file: Option<PathBuf>,
        env: Option<String>,
    ) -> Option<Secret> {
        self.secret(table, ("token-file", "token-env"), file, env, true)
    }

    /// A secret named by `FILE_KEY` or `ENV_KEY` in the table at `table`.
    pub(super) fn secret(
        &mut self,
        table: &[Seg],
        (file_key, env_key): (&str, &str),
        file: Option<PathBuf>,
        env: Option<String>,
        required: bool,
    ) -> Option<Secret> {
        let at = |key: &str| {
            let mut p = table.to_vec();
            p.push(Seg::from(key));
            p
        };
        match (file, env) {
            (Some(_), Some(_)) => {
                self.error(
                    at(env_key),
                    format!("give either `{file_key}` or `{env_key}`, not both"),
                );
                None
            }
            (Some(file), None) => {
                let file = self.file_path(at(file_key), file);
                Some(Secret::from_file(file))
            }
            (None, Some(name)) => {
                if is_env_name(&name) {
                    Some(Secret::from_env(name))
                } else {
                    self.error(
                        at(env_key),
                        "is not an environment variable name ([A-Za-z_][A-Za-z0-9_]*); it takes the \
                         name of the variable that holds the secret, not the secret (the value is not shown)",
                    );
                    None
                }
            }
            (None, None) => {
                if required {
                    self.error(
                        table.to_vec(),
                        format!(
                            "needs `{file_key}` (a file holding the secret) or `{env_key}` (an \
                             environment variable holding it)"
                        ),
                    );
                }
                None
            }
        }
    }

    pub(super) fn max_records(
        &mut self,
        at: Vec<Seg>,
        value: Option<i64>,
        default: usize,
    ) -> usize {
        match value {
            None => default,
            Some(v) => match usize::try_from(v) {
                Ok(n) if n >= MIN_MAX_RECORDS => n,
                _ => {
                    self.error(
                        at,
                        format!(
                            "{v} is too small; a rollover needs room for at least {MIN_MAX_RECORDS} \
                             records (current and next)"
                        ),
                    );
                    default
                }
            },
        }
    }

    pub(super) fn name(&mut self, at: Vec<Seg>, what: &str, name: &str) {
        let ok = !name.is_empty()
            && name.chars().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-')
            });
        if !ok {
            self.error(
                at,
                format!("{what} name \"{name}\" may only use a-z, 0-9, '.', '_' and '-'"),
            );
        }
    }

    pub(super) fn url(&mut self, at: Vec<Seg>, url: String) -> Option<String> {
        let ok = ["http://", "https://"].iter().any(|scheme| {
            url.strip_prefix(scheme)
                .is_some_and(|rest| !rest.is_empty())
        });
        if ok {
            Some(url)
        } else {
            self.error(at, "is not an http:// or https:// URL");
            None
        }
    }

    pub(super) fn command(&mut self, at: Vec<Seg>, command: Vec<String>) -> Option<Vec<String>> {
        match command.first() {
            None => {
                self.error(at, "is empty; give the program and its arguments as a list");
                None
            }
            Some(program) if program.trim().is_empty() => {
                self.error(at, "starts with an empty program name");
                None
            }
            Some(_) => Some(command),
        }
    }
}
