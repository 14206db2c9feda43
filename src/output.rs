//! How text reaches standard output and standard error: the printing edge.
//!
//! - Text from input (a service name typed on the command line, an ACME client's
//!   `RENEWED_LINEAGE`, a server's banner) may hold control characters; [`escape`] shows each as
//!   an escape (`\n`, `\r`, `\u{1b}`), so no input can end a line early, rewrite one (`\r`), or
//!   drive the terminal, and no log line can be forged. [`line()`] and [`error_line`] print one
//!   escaped line each.
//! - A closed output (`dane-roll status --history | head -1`) is not a failure of the command:
//!   [`line()`] and [`error_line`] drop what cannot be written, and [`guard`] turns std's panic on
//!   a failed `println!` into a quiet exit with [`CLOSED_OUTPUT`] (never 101).

use std::borrow::Cow;
use std::io::Write;
use std::process::ExitCode;

/// The exit code of a command whose output was closed under it: what a shell reports for a
/// program ended by SIGPIPE (128 + 13).
pub const CLOSED_OUTPUT: u8 = 141;

/// Whether `c` must not reach a terminal or a log as itself: C0 and C1 controls and DEL, and
/// the Unicode marks that reorder a line (bidirectional overrides and isolates).
fn is_unsafe(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `n` things in words with the plural right: `count(1, "record")` is `1 record`,
/// `count(2, "record")` is `2 records` (every noun dane-roll counts takes an `s`).
pub fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// `text` with every control character escaped (a tab stays a tab), for one line.
pub fn escape(text: &str) -> Cow<'_, str> {
    escape_but(text, &['\t'])
}

/// `text` with every control character but line feeds and tabs escaped: for text whose lines
/// dane-roll made itself (a configuration problem with its snippet), each input part already
/// passed through [`escape`].
pub fn escape_lines(text: &str) -> Cow<'_, str> {
    escape_but(text, &['\t', '\n'])
}

fn escape_but<'a>(text: &'a str, keep: &[char]) -> Cow<'a, str> {
    if !text.chars().any(|c| is_unsafe(c) && !keep.contains(&c)) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if is_unsafe(c) && !keep.contains(&c) {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// A message of several lines made by dane-roll (an error and how to run the hook again), each
/// part that may quote input already escaped: printed with its line breaks.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Lines(pub String);

/// An error and its causes as shown to the user: one line with every control character
/// escaped, unless it is one of dane-roll's own multi-line messages (a configuration's problems,
/// [`Lines`]), whose parts were escaped when it was made.
pub fn error_text(err: &anyhow::Error) -> String {
    // `{err:#}`, but a cause whose text its parent already quotes is not repeated.
    let mut text = err.to_string();
    for cause in err.chain().skip(1) {
        let said = cause.to_string();
        if !text.contains(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
    }
    let lines = err.chain().any(|e| {
        e.downcast_ref::<crate::config::ConfigError>().is_some()
            || e.downcast_ref::<Lines>().is_some()
    });
    if lines {
        escape_lines(&text).into_owned()
    } else {
        escape(&text).into_owned()
    }
}

/// The `tracing` target of an alert: an `error!` event with it is printed `dane-roll: ALERT: …`.
pub const ALERT: &str = "dane_roll::alert";

/// Print one line on standard output, escaped; nothing if the output is closed.
pub fn line(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", escape(text));
}

/// Print one line on standard error, escaped; nothing if it is closed.
pub fn error_line(text: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{}", escape(text));
}

/// Run `command`; if it stops because its output was closed (std panics on a failed `println!`),
/// end quietly with [`CLOSED_OUTPUT`]. Any other panic goes on as before.
pub fn guard(command: impl FnOnce() -> ExitCode) -> ExitCode {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !payload_text(info.payload()).is_some_and(is_closed_output) {
            default(info);
        }
    }));
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(command)) {
        Ok(code) => code,
        Err(payload) => {
            if payload_text(&*payload).is_some_and(is_closed_output) {
                ExitCode::from(CLOSED_OUTPUT)
            } else {
                std::panic::resume_unwind(payload)
            }
        }
    }
}

/// A panic's message.
fn payload_text(payload: &(dyn std::any::Any + Send)) -> Option<&str> {
    payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
}

/// std's message when `print!`/`eprint!` cannot write: `failed printing to stdout: Broken pipe
/// (os error 32)`.
fn is_closed_output(message: &str) -> bool {
    message.starts_with("failed printing to std")
        && (message.contains("os error 32") || message.contains("Broken pipe"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_escaped_and_plain_text_is_borrowed() {
        assert_eq!(
            escape("mx\nFAKE LINE\r\u{1b}[2J\u{85}\u{202e}"),
            "mx\\nFAKE LINE\\r\\u{1b}[2J\\u{85}\\u{202e}"
        );
        assert!(matches!(escape("mail.example.com\tok"), Cow::Borrowed(_)));
        assert_eq!(escape_lines("a\nb\rc"), "a\nb\\rc");
    }

    #[test]
    fn closed_output_panics_are_recognised() {
        assert!(is_closed_output(
            "failed printing to stdout: Broken pipe (os error 32)"
        ));
        assert!(!is_closed_output("index out of bounds"));
    }
}
