//! Running a command dane-roll starts (as root, from an ACME hook or a timer): a reload command,
//! the exec provider, sendmail.
//!
//! Every child gets:
//! - a scrubbed environment: never a variable the configuration names as holding a secret
//!   ([`hide_env`], filled when a configuration is loaded), and for [`EnvPolicy::Only`] nothing
//!   but the listed variables;
//! - a bounded time: it runs in a process group of its own, and the whole group is killed
//!   (SIGKILL) when the time is up, so a shell's children go too;
//! - bounded output: at most [`OUTPUT_CAP`] bytes of each stream are kept (the rest is read and
//!   dropped, so a chatty child never blocks on a full pipe);
//! - no wait on grandchildren: once the child has exited, its pipes are read for at most
//!   [`PIPE_GRACE`] more; a grandchild left holding them (`sleep 400 &`) is not waited for.
//!
//! Written by hand over `std::process` (plus `nix` for killing a process group without
//! `unsafe`): the crates that wrap a child with a timeout wait for the pipes to close.

use std::collections::BTreeSet;
use std::ffi::{OsStr, OsString};
use std::io::{self, Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, RwLock};
use std::thread;
use std::time::{Duration, Instant};

/// How much of each output stream is kept.
pub const OUTPUT_CAP: usize = 1 << 20;
/// How long the pipes are read after the child has exited.
pub const PIPE_GRACE: Duration = Duration::from_millis(300);

/// Variables kept for [`EnvPolicy::Only`] in every case: what a program needs to find its
/// tools and speak the operator's language.
pub const BASE_ENV: &[&str] = &["PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR"];

/// Names of variables that hold secrets: never passed to a child.
static HIDDEN: RwLock<BTreeSet<String>> = RwLock::new(BTreeSet::new());

/// Never pass these variables to a child (the `*-env` names of a configuration).
pub fn hide_env<I, S>(names: I)
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let mut hidden = HIDDEN.write().unwrap_or_else(|e| e.into_inner());
    hidden.extend(names.into_iter().map(Into::into));
}

/// Whether `name` is a variable no child may see.
pub fn is_hidden(name: &str) -> bool {
    HIDDEN
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .contains(name)
}

/// Which of dane-roll's variables a child sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnvPolicy {
    /// All of them but the hidden ones.
    Inherit,
    /// Only [`BASE_ENV`] and these (never a hidden one).
    Only(&'static [&'static str]),
}

/// One command to run.
#[derive(Debug, Clone)]
pub struct Job {
    program: OsString,
    args: Vec<OsString>,
    policy: EnvPolicy,
    set: Vec<(String, String)>,
    input: Option<Vec<u8>>,
    timeout: Duration,
}

/// What a child did.
#[derive(Debug)]
pub struct Output {
    /// How it ended.
    pub status: ExitStatus,
    /// Its standard output (at most [`OUTPUT_CAP`] bytes).
    pub stdout: Vec<u8>,
    /// Its standard error (at most [`OUTPUT_CAP`] bytes).
    pub stderr: Vec<u8>,
    /// Whether a stream said more than was kept.
    pub truncated: bool,
}

/// Why a child did not give a result.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChildError {
    /// It could not be started.
    #[error("cannot start: {0}")]
    Spawn(io::Error),
    /// It ran past its time and was killed with its process group.
    #[error("no result within {} s; killed", .0.as_secs_f64())]
    Timeout(Duration),
    /// Waiting for it failed.
    #[error("cannot wait for it: {0}")]
    Wait(io::Error),
}

impl Job {
    /// `program` with a scrubbed environment per `policy` and `timeout`.
    pub fn new(program: impl AsRef<OsStr>, policy: EnvPolicy, timeout: Duration) -> Job {
        Job {
            program: program.as_ref().to_owned(),
            args: Vec::new(),
            policy,
            set: Vec::new(),
            input: None,
            timeout,
        }
    }

    /// Add arguments.
    pub fn args<I, S>(mut self, args: I) -> Job
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Set a variable for the child (not a hidden one: those are dropped).
    pub fn env(mut self, name: &str, value: &str) -> Job {
        self.set.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Give the child `input` on its standard input (otherwise it reads /dev/null).
    pub fn input(mut self, input: Vec<u8>) -> Job {
        self.input = Some(input);
        self
    }

    /// The environment the child gets.
    pub fn environment(&self) -> Vec<(OsString, OsString)> {
        let keep = |name: &OsStr| {
            let Some(name) = name.to_str() else {
                // A name that is not Unicode is not one the configuration can name; it is
                // passed on only when everything is.
                return self.policy == EnvPolicy::Inherit;
            };
            !is_hidden(name)
                && match self.policy {
                    EnvPolicy::Inherit => true,
                    EnvPolicy::Only(extra) => BASE_ENV.contains(&name) || extra.contains(&name),
                }
        };
        let mut env: Vec<(OsString, OsString)> =
            std::env::vars_os().filter(|(k, _)| keep(k)).collect();
        for (k, v) in &self.set {
            if is_hidden(k) {
                continue;
            }
            env.retain(|(name, _)| name != OsStr::new(k));
            env.push((k.into(), v.into()));
        }
        env
    }

    /// Run it and wait, at most the timeout.
    pub fn run(&self) -> Result<Output, ChildError> {
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args)
            .env_clear()
            .envs(self.environment())
            .stdin(if self.input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let mut child = cmd.spawn().map_err(ChildError::Spawn)?;
        if let (Some(mut stdin), Some(input)) = (child.stdin.take(), self.input.clone()) {
            // A child that does not read its input must not block us: written on a thread.
            thread::spawn(move || {
                let _ = stdin.write_all(&input);
            });
        }
        let out = Stream::read(child.stdout.take());
        let err = Stream::read(child.stderr.take());
        let start = Instant::now();
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if start.elapsed() >= self.timeout => {
                    kill_group(child.id());
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(ChildError::Timeout(self.timeout));
                }
                Ok(None) => thread::sleep(Duration::from_millis(5)),
                Err(e) => {
                    kill_group(child.id());
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(ChildError::Wait(e));
                }
            }
        };
        // The child is gone; a grandchild may still hold the pipes. Read on for a moment only.
        let grace = Instant::now() + PIPE_GRACE;
        out.wait_until(grace);
        err.wait_until(grace);
        let (stdout, t1) = out.take();
        let (stderr, t2) = err.take();
        Ok(Output {
            status,
            stdout,
            stderr,
            truncated: t1 || t2,
        })
    }
}

/// SIGKILL to the child's process group (its id: it leads the group it was started in).
fn kill_group(pid: u32) {
    if let Ok(pid) = i32::try_from(pid) {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

/// What a stream's reader has so far.
#[derive(Default)]
struct Kept {
    bytes: Vec<u8>,
    truncated: bool,
    ended: bool,
}

/// One output stream read on a thread into a bounded buffer.
struct Stream {
    state: Arc<(Mutex<Kept>, std::sync::Condvar)>,
}

impl Stream {
    fn read(pipe: Option<impl Read + Send + 'static>) -> Stream {
        let state = Arc::new((Mutex::new(Kept::default()), std::sync::Condvar::new()));
        let Some(mut pipe) = pipe else {
            state.0.lock().unwrap_or_else(|e| e.into_inner()).ended = true;
            return Stream { state };
        };
        let shared = state.clone();
        thread::spawn(move || {
            let mut buf = [0u8; 8192];
            loop {
                let n = pipe.read(&mut buf).unwrap_or(0);
                let (lock, cvar) = &*shared;
                let mut s = lock.lock().unwrap_or_else(|e| e.into_inner());
                if n == 0 {
                    s.ended = true;
                    cvar.notify_all();
                    return;
                }
                let room = OUTPUT_CAP.saturating_sub(s.bytes.len());
                if n > room {
                    s.truncated = true;
                }
                s.bytes.extend_from_slice(&buf[..n.min(room)]);
            }
        });
        Stream { state }
    }

    fn wait_until(&self, deadline: Instant) {
        let (lock, cvar) = &*self.state;
        let mut s = lock.lock().unwrap_or_else(|e| e.into_inner());
        while !s.ended {
            let now = Instant::now();
            if now >= deadline {
                return;
            }
            s = cvar
                .wait_timeout(s, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    fn take(&self) -> (Vec<u8>, bool) {
        let mut s = self.state.0.lock().unwrap_or_else(|e| e.into_inner());
        (std::mem::take(&mut s.bytes), s.truncated)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str, timeout: Duration) -> Job {
        Job::new("sh", EnvPolicy::Inherit, timeout).args(["-c", script])
    }

    #[test]
    fn output_status_and_input() {
        let out = sh("cat; echo err >&2; exit 3", Duration::from_secs(10))
            .input(b"hello".to_vec())
            .run()
            .unwrap();
        assert_eq!(out.stdout, b"hello");
        assert_eq!(out.stderr, b"err\n");
        assert_eq!(out.status.code(), Some(3));
        assert!(!out.truncated);
    }

    #[test]
    fn a_grandchild_holding_the_pipes_is_not_waited_for() {
        let t0 = Instant::now();
        let out = sh("sleep 30 & echo started", Duration::from_secs(20))
            .run()
            .unwrap();
        assert!(out.status.success());
        assert_eq!(out.stdout, b"started\n");
        assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    }

    #[test]
    fn timeout_kills_the_whole_group() {
        let dir = std::env::temp_dir().join(format!("dane-roll-child-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let mark = dir.join("survived");
        let script = format!("(sleep 1; touch {}) & sleep 30", mark.display());
        let t0 = Instant::now();
        let err = sh(&script, Duration::from_millis(200)).run().unwrap_err();
        assert!(matches!(err, ChildError::Timeout(_)), "{err}");
        assert!(t0.elapsed() < Duration::from_secs(5));
        thread::sleep(Duration::from_millis(1500));
        assert!(!mark.exists(), "a grandchild outlived the timeout");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn output_is_bounded() {
        let out = sh(
            "head -c 3000000 /dev/zero; echo done >&2",
            Duration::from_secs(20),
        )
        .run()
        .unwrap();
        assert_eq!(out.stdout.len(), OUTPUT_CAP);
        assert!(out.truncated);
        assert_eq!(out.stderr, b"done\n");
    }

    #[test]
    fn hidden_and_unlisted_variables_never_reach_the_child() {
        hide_env(["DANE_ROLL_CHILD_TEST_HIDDEN"]);
        let job = Job::new(
            "env",
            EnvPolicy::Only(&["DANE_ROLL_X"]),
            Duration::from_secs(5),
        )
        .env("DANE_ROLL_X", "1")
        .env("DANE_ROLL_CHILD_TEST_HIDDEN", "set anyway");
        let names: Vec<String> = job
            .environment()
            .into_iter()
            .map(|(k, _)| k.to_string_lossy().into_owned())
            .collect();
        assert!(names.contains(&"DANE_ROLL_X".to_owned()));
        assert!(!names.contains(&"DANE_ROLL_CHILD_TEST_HIDDEN".to_owned()));
        assert!(
            names
                .iter()
                .all(|n| BASE_ENV.contains(&n.as_str()) || n == "DANE_ROLL_X"),
            "{names:?}"
        );
    }
}
