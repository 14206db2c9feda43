//! The guard that owns one server process and stops exactly it, by PID.
//!
//! A [`Daemon`] is either a child we spawned in the foreground (named -f, unbound -d, knotd,
//! pdns_server, pebble) or a process that daemonized itself and was adopted from its pid file
//! (Postfix's master). Dropping the guard sends SIGTERM, waits, then SIGKILL: a panicking test
//! leaves nothing running. Spawned children also get `setpriv --pdeathsig KILL`, so they die with
//! the thread that started them even if the test process is killed outright; a lab must therefore
//! stay on the thread that started it.
//!
//! `output_with_input` runs a short-lived tool fed on its standard input (nsupdate, nft, …).

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;

/// How long a server gets to exit after SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// One server process owned by the lab.
#[derive(Debug)]
pub struct Daemon {
    name: String,
    pid: u32,
    child: Option<Child>,
    log: Option<PathBuf>,
    stopped: bool,
}

impl Daemon {
    /// Spawn `cmd` in the foreground, stdout and stderr appended to `log`.
    pub fn spawn(name: &str, cmd: &mut Command, log: &Path) -> io::Result<Daemon> {
        let out = File::options().create(true).append(true).open(log)?;
        let err = out.try_clone()?;
        let mut wrapped = match crate::tools::which("setpriv") {
            Some(setpriv) => {
                let mut w = Command::new(setpriv);
                w.args(["--pdeathsig", "KILL", "--"]).arg(cmd.get_program());
                w
            }
            None => Command::new(cmd.get_program()),
        };
        wrapped.args(cmd.get_args());
        for (k, v) in cmd.get_envs() {
            match v {
                Some(v) => wrapped.env(k, v),
                None => wrapped.env_remove(k),
            };
        }
        if let Some(dir) = cmd.get_current_dir() {
            wrapped.current_dir(dir);
        }
        let child = wrapped
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("lab: cannot start {name}: {e}")))?;
        Ok(Daemon {
            name: name.to_string(),
            pid: child.id(),
            child: Some(child),
            log: Some(log.to_path_buf()),
            stopped: false,
        })
    }

    /// Take ownership of a process that daemonized itself, by the PID in `pid_file`.
    pub fn adopt(name: &str, pid_file: &Path, log: Option<&Path>) -> io::Result<Daemon> {
        let text = std::fs::read_to_string(pid_file)?;
        let pid: u32 = text.trim().parse().map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("lab: {} holds no PID: {text:?}", pid_file.display()),
            )
        })?;
        Ok(Daemon {
            name: name.to_string(),
            pid,
            child: None,
            log: log.map(Path::to_path_buf),
            stopped: false,
        })
    }

    /// The server's name, as given at start.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The process ID.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Whether the process still runs (a zombie child counts as gone, and is reaped).
    pub fn is_running(&mut self) -> bool {
        if self.stopped {
            return false;
        }
        match &mut self.child {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => signal::kill(self.nix_pid(), None).is_ok() && !is_zombie(self.pid),
        }
    }

    /// Send a signal (SIGSTOP/SIGCONT make a server lag; SIGHUP reloads some).
    pub fn signal(&self, sig: Signal) -> io::Result<()> {
        signal::kill(self.nix_pid(), sig).map_err(io::Error::from)
    }

    /// Poll `ready` every 20 ms until it says yes, the timeout passes, or the process dies. The
    /// error carries the end of the server's log.
    pub fn wait_ready(
        &mut self,
        what: &str,
        timeout: Duration,
        mut ready: impl FnMut() -> bool,
    ) -> io::Result<Duration> {
        let start = Instant::now();
        loop {
            if ready() {
                return Ok(start.elapsed());
            }
            if !self.is_running() {
                return Err(io::Error::other(format!(
                    "lab: {} exited before {what}; log:\n{}",
                    self.name,
                    self.log_tail(40)
                )));
            }
            if start.elapsed() > timeout {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "lab: {} not {what} after {timeout:?}; log:\n{}",
                        self.name,
                        self.log_tail(40)
                    ),
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The last `lines` lines of the server's log, if it has one.
    pub fn log_tail(&self, lines: usize) -> String {
        let Some(log) = &self.log else {
            return String::from("(no log)");
        };
        tail(log, lines)
    }

    /// Stop the process: SIGTERM, wait up to 5 s, then SIGKILL. Idempotent.
    pub fn stop(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        let pid = self.nix_pid();
        let _ = signal::kill(pid, Signal::SIGCONT); // a SIGSTOPped server cannot exit
        let _ = signal::kill(pid, Signal::SIGTERM);
        if !self.wait_gone(STOP_GRACE) {
            eprintln!(
                "lab: {} (pid {}) ignored SIGTERM; killing",
                self.name, self.pid
            );
            let _ = signal::kill(pid, Signal::SIGKILL);
            self.wait_gone(STOP_GRACE);
        }
    }

    fn wait_gone(&mut self, timeout: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < timeout {
            let gone = match &mut self.child {
                Some(child) => !matches!(child.try_wait(), Ok(None)),
                None => signal::kill(self.nix_pid(), None).is_err() || is_zombie(self.pid),
            };
            if gone {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }

    fn nix_pid(&self) -> Pid {
        Pid::from_raw(self.pid as i32)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Whether a process is a zombie (exited, not yet reaped by its parent).
fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

/// Run `cmd` to its end with `input` on its standard input (closed once written); what it wrote,
/// as far as `cmd` pipes its standard output and error.
pub(crate) fn output_with_input(cmd: &mut Command, input: &[u8]) -> io::Result<Output> {
    let mut child = cmd.stdin(Stdio::piped()).spawn()?;
    child
        .stdin
        .take()
        .ok_or_else(|| {
            let program = cmd.get_program().to_string_lossy();
            io::Error::other(format!("lab: {program}: no stdin"))
        })?
        .write_all(input)?;
    child.wait_with_output()
}

/// The last `lines` lines of a file (at most its last 64 KiB).
pub fn tail(path: &Path, lines: usize) -> String {
    let Ok(mut f) = File::open(path) else {
        return format!("({} unreadable)", path.display());
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(64 * 1024)));
    let mut buf = String::new();
    let _ = f.read_to_string(&mut buf);
    let all: Vec<&str> = buf.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
