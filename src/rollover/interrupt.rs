//! Ctrl-C during a `--wait`: the first SIGINT asks the wait to stop between passes (every pass
//! saves the state first, so nothing is lost and `dane-roll run` resumes); a second one ends
//! the process at once, as Ctrl-C would without dane-roll's handler.
//!
//! The signal is taken by tokio's handler on a thread of its own (safe code: no hand-written
//! signal handler), which only sets a flag the driver reads between passes and while sleeping.

use std::sync::atomic::{AtomicBool, Ordering};

static REQUESTED: AtomicBool = AtomicBool::new(false);

/// The exit code of a process ended by SIGINT (128 + 2), which an interrupted wait returns.
pub const EXIT_CODE: u8 = 130;

/// Catch Ctrl-C from now on: the first sets [`requested`], the second exits with
/// [`EXIT_CODE`]. Without a signal handler (no thread, no runtime), Ctrl-C keeps its default.
pub fn watch() {
    let started = std::thread::Builder::new()
        .name("ctrl-c".to_owned())
        .spawn(|| {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async {
                if tokio::signal::ctrl_c().await.is_err() {
                    return;
                }
                REQUESTED.store(true, Ordering::SeqCst);
                if tokio::signal::ctrl_c().await.is_ok() {
                    std::process::exit(i32::from(EXIT_CODE));
                }
            });
        });
    if let Err(err) = started {
        tracing::debug!("Ctrl-C keeps its default: {err}");
    }
}

/// Whether Ctrl-C asked the wait to stop.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}
