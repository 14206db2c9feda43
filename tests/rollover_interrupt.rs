//! Ctrl-C during `--wait` (issue 16): the wait stops between passes, says that the state is
//! saved and that `dane-roll run` resumes, and exits 130; a `run --wait` then finishes the
//! rollover with mail Verified. On the lab (real DNS servers, Postfix, the DANE sender).
//!
//! Skipped outside CI when a server is missing (see `dane_roll_lab::require`).

use std::process::Command;
use std::time::{Duration, Instant};

use dane_roll_lab::conf::rollover_tools;
use dane_roll_lab::require;
use dane_roll_lab::world::{World, spawn, text};

const BIN: &str = env!("CARGO_BIN_EXE_dane-roll");
/// A TTL long enough that the wait is surely under way when Ctrl-C comes (2×TTL = 20 s).
const TTL: u32 = 10;

#[test]
fn ctrl_c_during_wait_saves_the_state_and_run_resumes() {
    if !require(&rollover_tools(true)) {
        return;
    }
    let w = World::start(BIN, TTL);
    let (new, cert, key) = w.new_leaf("new");
    let child = spawn(&mut w.cmd(&World::deploy_args(&cert, &key, &["--wait"])));
    let t0 = Instant::now();
    while w.phase() != "published" {
        assert!(t0.elapsed() < Duration::from_secs(60), "never published");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Inside the 2×TTL wait: Ctrl-C, as a terminal sends it (SIGINT).
    std::thread::sleep(Duration::from_secs(1));
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let t1 = Instant::now();
    let out = child.wait_with_output().unwrap();
    let stopped = t1.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{}", text(&out));
    assert!(
        stderr.contains("interrupted") && stderr.contains("state is saved"),
        "{stderr}"
    );
    assert!(stderr.contains("`dane-roll run`"), "{stderr}");
    assert!(stopped < Duration::from_secs(5), "took {stopped:?} to stop");
    assert_eq!(w.phase(), "published", "nothing moved back or on");

    let out = w.run(&["run", "--wait"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let served = w.rx.served_chain().unwrap();
    assert_eq!(served[0].to_der().unwrap(), new.cert.to_der().unwrap());
    w.assert_mail_verified("after the resumed rollover");
}
