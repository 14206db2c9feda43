//! Exit codes, and how an error reaches the user.
//!
//! Commands return a [`Status`]; `check` follows the Nagios plugin convention (0 ok, 1 warning,
//! 2 critical, 3 unknown), every other command uses 0 for success and 2 for failure, and 3 when a
//! `--wait` ran out of its `--timeout` with a rollover unfinished (nothing failed; the state is
//! saved and `dane-roll run` resumes it); `tlsrpt ingest` uses 75 (`EX_TEMPFAIL`) for a good
//! report the store cannot take now, so that a mail system's pipe delivers it again.

use std::process::ExitCode;

/// What a command reports through its exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    /// Everything as it should be (exit 0).
    Ok,
    /// Done, but something deserves a look (exit 1).
    Warning,
    /// Refused or failed (exit 2).
    Failure,
    /// The outcome cannot be told, e.g. a timeout (exit 3).
    Unknown,
    /// Ctrl-C stopped a `--wait`; the state is saved (exit 130, as for SIGINT).
    Interrupted,
    /// Nothing wrong with the input, but it cannot be kept now (the store): try again later
    /// (exit 75, sysexits' `EX_TEMPFAIL`, which a mail system's pipe delivery retries).
    TryLater,
}

impl Status {
    /// The process exit code for this status.
    pub fn code(self) -> u8 {
        match self {
            Status::Ok => 0,
            Status::Warning => 1,
            Status::Failure => 2,
            Status::Unknown => 3,
            Status::Interrupted => crate::rollover::interrupt::EXIT_CODE,
            Status::TryLater => 75,
        }
    }
}

impl From<Status> for ExitCode {
    fn from(status: Status) -> ExitCode {
        ExitCode::from(status.code())
    }
}

/// Print an error with its chain of causes on standard error and return exit code 2.
///
/// Control characters from input are escaped ([`crate::output::error_text`]).
pub fn report(err: &anyhow::Error) -> ExitCode {
    use std::io::Write;
    let text = crate::output::error_text(err);
    // A closed standard error cannot be told about anything: the exit code says it.
    let _ = writeln!(std::io::stderr().lock(), "dane-roll: error: {text}");
    Status::Failure.into()
}

/// Why a file could not be written, in words, with what to do: a full file system says so and
/// names the file ("no space left on device (PATH)") instead of the generic `hint`.
pub fn write_problem(path: &std::path::Path, err: &std::io::Error, hint: &str) -> String {
    use std::io::ErrorKind;
    match err.kind() {
        ErrorKind::StorageFull => format!(
            "no space left on device ({}); free space on that file system and try again",
            path.display()
        ),
        ErrorKind::QuotaExceeded => format!(
            "disk quota exceeded ({}); raise the quota of the user dane-roll runs as",
            path.display()
        ),
        _ => format!("{err}; {hint}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_is_named_with_the_file() {
        let full = std::io::Error::from_raw_os_error(28);
        let text = write_problem(std::path::Path::new("/etc/postfix/chain.pem"), &full, "x");
        assert!(
            text.starts_with("no space left on device (/etc/postfix/chain.pem)"),
            "{text}"
        );
        let denied = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        assert!(
            write_problem(std::path::Path::new("/a"), &denied, "check it").ends_with("; check it")
        );
    }
}
