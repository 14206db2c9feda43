//! TSIG keys and RFC 2136 updates through `nsupdate`.
//!
//! Keys are made at run time with `tsig-keygen -a hmac-sha256`; the secret lives only in the lab
//! directory and is never printed (`Debug` hides it).

use std::fmt;
use std::io::{self, Write};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::process::output_with_input;

/// A TSIG key and the BIND-syntax file that holds it (usable with `nsupdate -k`, `dig -k` and
/// `include` in named.conf).
#[derive(Clone)]
pub struct TsigKey {
    /// Key name, `dane-roll-key`.
    pub name: String,
    /// Algorithm, `hmac-sha256`.
    pub algorithm: String,
    /// Base64 secret.
    pub secret: String,
    /// The key file.
    pub file: PathBuf,
}

impl fmt::Debug for TsigKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TsigKey")
            .field("name", &self.name)
            .field("algorithm", &self.algorithm)
            .field("secret", &"<hidden>")
            .field("file", &self.file)
            .finish()
    }
}

impl TsigKey {
    /// Generate a new hmac-sha256 key named `name` into `file` (mode 0600).
    pub fn generate(name: &str, file: &Path) -> io::Result<TsigKey> {
        use std::os::unix::fs::OpenOptionsExt;
        let out = Command::new(super::tool("tsig-keygen"))
            .args(["-a", "hmac-sha256", name])
            .output()?;
        if !out.status.success() {
            return Err(io::Error::other(format!(
                "tsig-keygen failed: {}",
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let secret = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("secret "))
            .map(|s| s.trim().trim_end_matches(';').trim_matches('"').to_string())
            .ok_or_else(|| io::Error::other("tsig-keygen printed no secret"))?;
        std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o600)
            .open(file)?
            .write_all(text.as_bytes())?;
        Ok(TsigKey {
            name: name.to_string(),
            algorithm: "hmac-sha256".to_string(),
            secret,
            file: file.to_path_buf(),
        })
    }
}

/// How an update is authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateAuth {
    /// The lab's TSIG key (accepted).
    LabKey,
    /// No TSIG at all (BIND answers REFUSED).
    Unsigned,
    /// The right key name with a different secret (NOTAUTH, TSIG error BADSIG).
    WrongSecret,
    /// A key name the server does not know (NOTAUTH, TSIG error BADKEY).
    UnknownKey,
}

/// What became of an update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpdateOutcome {
    /// The server answered NOERROR.
    Ok,
    /// The server rejected it; the text is nsupdate's, e.g. `REFUSED`, `NOTAUTH(BADSIG)`,
    /// `NOTAUTH(BADKEY)`, `NOTAUTH` (zone not served), `YXDOMAIN` (prerequisite failed).
    Rejected(String),
    /// No verdict from the server (timeout, syntax error); nsupdate's message.
    Failed(String),
}

impl UpdateOutcome {
    /// Whether the update was accepted.
    pub fn is_ok(&self) -> bool {
        matches!(self, UpdateOutcome::Ok)
    }

    /// `NOERROR`, the rejection rcode text, or `FAILED: …`.
    pub fn text(&self) -> String {
        match self {
            UpdateOutcome::Ok => "NOERROR".to_string(),
            UpdateOutcome::Rejected(r) => r.clone(),
            UpdateOutcome::Failed(m) => format!("FAILED: {m}"),
        }
    }
}

/// Run `nsupdate` against `server`:53 with `lines` (a `server` line is prepended and `send`
/// appended when missing). `key` is the key file to sign with, if any.
pub fn nsupdate(server: Ipv4Addr, key: Option<&Path>, lines: &[&str]) -> io::Result<UpdateOutcome> {
    let mut script = format!("server {server} 53\n");
    for l in lines {
        script.push_str(l.trim());
        script.push('\n');
    }
    if !lines.iter().any(|l| l.trim() == "send") {
        script.push_str("send\n");
    }
    let mut cmd = Command::new(super::tool("nsupdate"));
    cmd.args(["-t", "5", "-u", "1"]);
    if let Some(k) = key {
        cmd.arg("-k").arg(k);
    }
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let out = output_with_input(&mut cmd, script.as_bytes())?;
    if out.status.success() {
        return Ok(UpdateOutcome::Ok);
    }
    let err = String::from_utf8_lossy(&out.stderr);
    Ok(
        match err
            .lines()
            .find_map(|l| l.trim().strip_prefix("update failed: "))
        {
            Some(rcode) => UpdateOutcome::Rejected(rcode.trim().to_string()),
            None => UpdateOutcome::Failed(err.trim().to_string()),
        },
    )
}
