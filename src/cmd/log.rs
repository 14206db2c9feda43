//! Where the library's messages go: a `tracing` subscriber set up once per process by the edge.
//!
//! The library never prints; it emits `tracing` events and the commands decide. Each event is one
//! plain line on standard error, in the words operators already grep for:
//!
//! | event | line |
//! | --- | --- |
//! | `error!(target: ALERT, …)` | `dane-roll: ALERT: …` |
//! | `error!(…)` | `dane-roll: error: …` |
//! | `warn!(…)` | `dane-roll: warning: …` |
//! | `info!`, `debug!`, `trace!` | `dane-roll: …` (`-v` shows info, `-vv` debug, `-vvv` trace) |
//!
//! No colours and no timestamps: cron mails, syslog and the journal add their own. When standard
//! error is the journal (systemd's `JOURNAL_STREAM` names its device and inode), each line starts
//! with the syslog priority (`<3>`, `<4>`, `<6>`, `<7>`) so `journalctl -p warning` filters them.
//! Control characters from input are escaped as on every other line ([`crate::output::escape`]).
//! `DANE_ROLL_LOG` (an `EnvFilter` directive such as `debug` or `dane_roll::dns=trace`) overrides
//! the level the flags give.

use std::fmt;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

pub use crate::output::ALERT;

/// The environment variable that overrides the level.
pub const LOG_ENV: &str = "DANE_ROLL_LOG";

/// The level `-q` / `-v` ask for: warnings and up with `-q` (besides what went wrong, nothing),
/// info by default, then debug and trace.
pub fn level(verbose: u8, quiet: bool) -> Level {
    match (quiet, verbose) {
        (true, _) => Level::WARN,
        (false, 0) => Level::INFO,
        (false, 1) => Level::DEBUG,
        (false, _) => Level::TRACE,
    }
}

/// Install the subscriber for this process (a second call is a no-op).
pub fn init(verbose: u8, quiet: bool) {
    let filter = EnvFilter::builder()
        .with_default_directive(level(verbose, quiet).into())
        .with_env_var(LOG_ENV)
        .from_env_lossy();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .event_format(Plain {
            journal: stderr_is_journal(),
        })
        .try_init();
}

/// One plain line per event (see the module docs).
struct Plain {
    journal: bool,
}

impl<S, N> FormatEvent<S, N> for Plain
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let mut text = String::new();
        ctx.field_format()
            .format_fields(Writer::new(&mut text), event)?;
        let level = *meta.level();
        if self.journal {
            write!(writer, "<{}>", priority(level))?;
        }
        let head = match level {
            Level::ERROR if meta.target() == ALERT => "ALERT: ",
            Level::ERROR => "error: ",
            Level::WARN => "warning: ",
            _ => "",
        };
        writeln!(
            writer,
            "dane-roll: {head}{}",
            crate::output::escape_lines(&text)
        )
    }
}

/// The syslog priority of a level (RFC 5424: 3 error, 4 warning, 6 info, 7 debug).
fn priority(level: Level) -> u8 {
    match level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        _ => 7,
    }
}

/// Whether standard error is connected to the journal: `JOURNAL_STREAM` is `DEVICE:INODE` of the
/// stream systemd connected, and it must be this very stderr (a child of the service that
/// redirected stderr inherits the variable but not the stream).
fn stderr_is_journal() -> bool {
    let Some(value) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = value.to_str().and_then(|v| v.split_once(':')) else {
        return false;
    };
    let Ok(stat) = nix::sys::stat::fstat(std::os::fd::AsRawFd::as_raw_fd(&std::io::stderr()))
    else {
        return false;
    };
    dev.parse::<u64>().ok() == Some(stat.st_dev) && ino.parse::<u64>().ok() == Some(stat.st_ino)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_map_to_levels() {
        assert_eq!(level(0, true), Level::WARN);
        assert_eq!(level(0, false), Level::INFO);
        assert_eq!(level(1, false), Level::DEBUG);
        assert_eq!(level(3, false), Level::TRACE);
    }

    #[test]
    fn priorities_follow_syslog() {
        assert_eq!(priority(Level::ERROR), 3);
        assert_eq!(priority(Level::WARN), 4);
        assert_eq!(priority(Level::INFO), 6);
        assert_eq!(priority(Level::TRACE), 7);
    }
}
