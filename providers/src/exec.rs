//! The operator's command as provider.
//!
//! The command runs with the action and the record as arguments and in the environment:
//! `COMMAND… add|remove OWNER TTL RDATA` or `COMMAND… list OWNER`, with `DANE_ROLL_ACTION`,
//! `DANE_ROLL_OWNER`, `DANE_ROLL_TTL` and `DANE_ROLL_RDATA` set (TTL and RDATA empty for `list`).
//! Exit 0 is success. `list` prints one record data (`3 1 1 hex`) per line; empty lines and lines
//! starting with `#` are skipped. `add` of a present record and `remove` of an absent one are
//! never asked for (the list is read first), but a command should treat them as success.
//!
//! Its environment is those four variables and [`crate::child::BASE_ENV`], nothing else; it runs
//! in its own process group, killed whole at the timeout (see [`crate::child`]).

use crate::child::{EnvPolicy, Job};
use crate::{ProviderError, Record, Settings};

/// The variables the command gets besides [`crate::child::BASE_ENV`] (`PATH`, `HOME`, `LANG`,
/// `LC_ALL`, `LC_CTYPE`, `TZ`, `TMPDIR`): nothing else of dane-roll's environment, so no secret
/// of the configuration (a `*-env` variable) can reach it.
pub const PASSED_ENV: &[&str] = &[
    "DANE_ROLL_ACTION",
    "DANE_ROLL_OWNER",
    "DANE_ROLL_TTL",
    "DANE_ROLL_RDATA",
];

/// How much of the command's standard error goes into a message.
const STDERR_TAIL: usize = 500;

/// What the command is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Add one record.
    Add,
    /// Remove one record.
    Remove,
    /// Print the records at an owner name.
    List,
}

impl Action {
    /// The word passed to the command.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Add => "add",
            Action::Remove => "remove",
            Action::List => "list",
        }
    }
}

/// A command provider.
#[derive(Debug)]
pub struct Exec {
    command: Vec<String>,
    settings: Settings,
}

impl Exec {
    /// The provider running `command` (program first).
    pub fn new(command: Vec<String>, settings: Settings) -> Result<Exec, ProviderError> {
        if command.is_empty() {
            return Err(ProviderError::InvalidRecord(
                "the exec provider needs a command".into(),
            ));
        }
        Ok(Exec { command, settings })
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Ask the command for the records at `owner`.
    pub async fn list(&self, owner: &str) -> Result<Vec<Record>, ProviderError> {
        let out = self.run(Action::List, owner, None).await?;
        let mut records = Vec::new();
        for line in out.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            records.push(
                Record::new(owner, 0, line).map_err(|e| ProviderError::Exec {
                    command: self.command[0].clone(),
                    action: "list",
                    detail: format!("printed a line that is not TLSA data: {e}"),
                })?,
            );
        }
        Ok(records)
    }

    /// Ask the command to add or remove `record`.
    pub async fn run_change(&self, action: Action, record: &Record) -> Result<(), ProviderError> {
        self.run(action, &record.owner, Some(record))
            .await
            .map(drop)
    }

    async fn run(
        &self,
        action: Action,
        owner: &str,
        record: Option<&Record>,
    ) -> Result<String, ProviderError> {
        let program = &self.command[0];
        let fail = |detail: String| ProviderError::Exec {
            command: program.clone(),
            action: action.as_str(),
            detail,
        };
        let ttl = record.map(|r| r.ttl.to_string()).unwrap_or_default();
        let rdata = record.map(|r| r.rdata.clone()).unwrap_or_default();
        let mut args: Vec<String> = self.command[1..].to_vec();
        args.extend([action.as_str().to_owned(), owner.to_owned()]);
        if record.is_some() {
            args.extend([ttl.clone(), rdata.clone()]);
        }
        let job = Job::new(program, EnvPolicy::Only(PASSED_ENV), self.settings.timeout)
            .args(args)
            .env("DANE_ROLL_ACTION", action.as_str())
            .env("DANE_ROLL_OWNER", owner)
            .env("DANE_ROLL_TTL", &ttl)
            .env("DANE_ROLL_RDATA", &rdata);
        let output = tokio::task::spawn_blocking(move || job.run())
            .await
            .map_err(|e| fail(format!("cannot run: {e}")))?
            .map_err(|e| fail(e.to_string()))?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let stderr = stderr.trim();
            let tail: String = {
                let chars: Vec<char> = stderr.chars().collect();
                chars[chars.len().saturating_sub(STDERR_TAIL)..]
                    .iter()
                    .collect()
            };
            return Err(fail(format!("{}: {tail}", output.status)));
        }
        if output.truncated {
            return Err(fail(format!(
                "printed more than {} bytes",
                crate::child::OUTPUT_CAP
            )));
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }
}
