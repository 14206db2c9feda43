//! Exit codes, and how an error reaches the user.
//!
//! Commands return a [`Status`]; `check` follows the Nagios plugin convention (0 ok, 1 warning,
//! 2 critical, 3 unknown), every other command uses 0 for success and 2 for failure.

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
}

impl Status {
    /// The process exit code for this status.
    pub fn code(self) -> u8 {
        match self {
            Status::Ok => 0,
            Status::Warning => 1,
            Status::Failure => 2,
            Status::Unknown => 3,
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
