//! The processes dane-roll starts (issues 13 and 14): a reload command that leaves a grandchild
//! holding its output neither hangs dane-roll nor keeps the service's lock, and one that runs
//! past its time is killed with every process it started.

use std::path::Path;
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Kill the process whose id is in `pidfile` (a grandchild a test left behind), if any.
fn kill_left(pidfile: &Path) {
    if let Ok(pid) = std::fs::read_to_string(pidfile) {
        let _ = Command::new("kill").arg(pid.trim()).status();
    }
}

#[test]
fn a_reload_leaving_a_grandchild_on_its_output_returns_in_time_and_frees_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let pidfile = dir.path().join("grandchild.pid");
    let lock = dane_roll::lock::acquire(&state, "mx", "test", Duration::ZERO).unwrap();
    let script = format!("sleep 400 & echo $! > {}; exit 0", pidfile.display());
    let command = vec!["sh".to_owned(), "-c".to_owned(), script];
    let (tx, rx) = mpsc::channel();
    let t0 = Instant::now();
    std::thread::spawn(move || {
        let _ = tx.send(dane_roll::install::reload(
            &command,
            dane_roll::install::RELOAD_TIMEOUT,
        ));
    });
    let outcome = rx.recv_timeout(Duration::from_secs(15));
    let took = t0.elapsed();
    let result = outcome.map_err(|_| {
        kill_left(&pidfile);
        format!("reload still waiting after {took:?} on a grandchild that holds its output")
    });
    result.unwrap().unwrap();
    assert!(took < Duration::from_secs(5), "reload took {took:?}");
    eprintln!("reload with a grandchild holding its output returned after {took:?}");
    drop(lock);
    // The grandchild did not inherit the lock: it is free while the grandchild still runs.
    let again = dane_roll::lock::acquire(&state, "mx", "test", Duration::ZERO);
    kill_left(&pidfile);
    again.expect("the lock is free once the reload is done");
}

#[test]
fn a_reload_past_its_time_is_killed_with_its_process_group() {
    let dir = tempfile::tempdir().unwrap();
    let mark = dir.path().join("survived");
    let script = format!("(sleep 2; touch {}) & sleep 60", mark.display());
    let t0 = Instant::now();
    let err = dane_roll::install::reload(
        &["sh".to_owned(), "-c".to_owned(), script],
        Duration::from_millis(300),
    )
    .unwrap_err();
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    let text = err.to_string();
    assert!(text.contains("within 0.3 s"), "{text}");
    std::thread::sleep(Duration::from_millis(2500));
    assert!(
        !mark.exists(),
        "a process of the reload outlived its time limit"
    );
}
