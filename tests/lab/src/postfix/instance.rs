//! One Postfix instance: its directory layout, start (optionally in a private mount namespace
//! with its own resolv.conf), the Postfix commands run against its config, reload, and stop by
//! PID with every child it had.

use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::process::{Daemon, tail};

use super::config::{mkdir_owned, postfix_ids, set_mode, write_config};
use super::proctree::{ProcId, alive, process_tree};
use super::{START_TIMEOUT, STOP_GRACE, tool};

/// Quote for /bin/sh.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// One Postfix instance: config dir, queue, data dir, log, and its master once started.
#[derive(Debug)]
pub struct Instance {
    name: String,
    dir: PathBuf,
    master: Option<Daemon>,
}

impl Instance {
    /// Lay out `dir` (etc/, spool/ with Postfix's owners and modes, data/) and write the configs.
    pub(super) fn create(
        name: &str,
        dir: &Path,
        main_cf: &str,
        master_cf: &str,
    ) -> io::Result<Instance> {
        let (postfix_uid, postdrop_gid) = postfix_ids()?;
        let inst = Instance {
            name: name.to_string(),
            dir: dir.to_path_buf(),
            master: None,
        };
        std::fs::create_dir_all(inst.etc())?;
        set_mode(dir, 0o755)?;
        set_mode(&inst.etc(), 0o755)?;
        write_config(&inst.etc().join("main.cf"), main_cf)?;
        write_config(&inst.etc().join("master.cf"), master_cf)?;
        // What `post-install create-missing` would make (postfix-files), without its 2 s.
        let spool = inst.spool();
        std::fs::create_dir_all(&spool)?;
        set_mode(&spool, 0o755)?;
        for d in [
            "active", "bounce", "corrupt", "defer", "deferred", "flush", "hold", "incoming",
            "private", "saved", "trace",
        ] {
            mkdir_owned(&spool.join(d), Some(postfix_uid), None, 0o700)?;
        }
        mkdir_owned(
            &spool.join("maildrop"),
            Some(postfix_uid),
            Some(postdrop_gid),
            0o730,
        )?;
        mkdir_owned(
            &spool.join("public"),
            Some(postfix_uid),
            Some(postdrop_gid),
            0o710,
        )?;
        mkdir_owned(&spool.join("pid"), None, None, 0o755)?;
        mkdir_owned(&dir.join("data"), Some(postfix_uid), None, 0o700)?;
        Ok(inst)
    }

    /// The instance's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The config directory (`postfix -c` argument).
    pub fn etc(&self) -> PathBuf {
        self.dir.join("etc")
    }

    /// The queue directory.
    pub fn spool(&self) -> PathBuf {
        self.dir.join("spool")
    }

    /// The instance's log (maillog_file).
    pub fn maillog(&self) -> PathBuf {
        self.dir.join("maillog")
    }

    /// The master's PID, once started.
    pub fn master_pid(&self) -> Option<u32> {
        self.master.as_ref().map(Daemon::pid)
    }

    /// The master and all its children (pickup, qmgr, smtpd, ...), now.
    pub fn pids(&self) -> Vec<u32> {
        match self.master_pid() {
            Some(pid) => process_tree(pid).into_iter().map(|p| p.pid).collect(),
            None => Vec::new(),
        }
    }

    /// Start the master. With `resolv_conf`, it runs in a private mount namespace where that file
    /// is bind-mounted over /etc/resolv.conf (the machine's own file is never touched). Runs under
    /// `script` so that fatal errors Postfix reports before its log is open reach us.
    pub(super) fn start(&mut self, resolv_conf: Option<&Path>) -> io::Result<Duration> {
        let t0 = Instant::now();
        std::fs::write(self.spool().join("quick-start"), b"")?;
        let etc = self.etc();
        let postfix = tool("postfix");
        let start = format!(
            "exec {} -c {} start",
            sh_quote(&postfix.to_string_lossy()),
            sh_quote(&etc.to_string_lossy())
        );
        let inner = match resolv_conf {
            None => start,
            Some(r) => format!(
                "exec {} -m --propagation private /bin/sh -c {}",
                sh_quote(&tool("unshare").to_string_lossy()),
                sh_quote(&format!(
                    "mount --bind {} /etc/resolv.conf && {start}",
                    sh_quote(&r.to_string_lossy())
                ))
            ),
        };
        let out = Command::new(tool("script"))
            .args(["-qec", &inner, "/dev/null"])
            .stdin(Stdio::null())
            .output()?;
        let text = String::from_utf8_lossy(&out.stdout).replace('\r', "");
        let pid_file = self.spool().join("pid/master.pid");
        if !out.status.success() {
            return Err(io::Error::other(format!(
                "lab: {} did not start ({}): {}\n{}{}",
                self.name,
                out.status,
                text.trim(),
                String::from_utf8_lossy(&out.stderr),
                self.check_output()
            )));
        }
        // `postfix start` waits for the master (master -w): the pid file is there now.
        let mut master = Daemon::adopt(&self.name, &pid_file, Some(&self.maillog()))?;
        // Not the log: postlogd starts on demand and the master's first lines reach the file
        // only later. The master's public/pickup and public/qmgr FIFOs exist once it listens.
        let spool = self.spool();
        master.wait_ready("listening", START_TIMEOUT, || {
            spool.join("public/pickup").exists() && spool.join("public/qmgr").exists()
        })?;
        self.master = Some(master);
        Ok(t0.elapsed())
    }

    /// `postfix check` output (for error messages).
    fn check_output(&self) -> String {
        Command::new(tool("postfix"))
            .arg("-c")
            .arg(self.etc())
            .arg("check")
            .output()
            .map(|o| {
                format!(
                    "postfix check: {}{}",
                    String::from_utf8_lossy(&o.stdout),
                    String::from_utf8_lossy(&o.stderr)
                )
            })
            .unwrap_or_default()
    }

    /// Run a Postfix command with `-c etc` (postfix, postqueue, postsuper): its output.
    pub(super) fn run(&self, cmd: &str, args: &[&str]) -> io::Result<String> {
        let out = Command::new(tool(cmd))
            .arg("-c")
            .arg(self.etc())
            .args(args)
            .stdin(Stdio::null())
            .output()?;
        if !out.status.success() {
            return Err(io::Error::other(format!(
                "lab: {cmd} -c {} {} failed ({}): {}",
                self.etc().display(),
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// `postfix reload`, then wait until the master logged the reload (a new session after this
    /// gets a freshly started smtpd/smtp reading the new configuration and key files).
    pub fn reload(&self) -> io::Result<Duration> {
        let t0 = Instant::now();
        let count = || {
            std::fs::read_to_string(self.maillog())
                .map(|l| l.matches("reload -- version").count())
                .unwrap_or(0)
        };
        let before = count();
        self.run("postfix", &["reload"])?;
        while count() <= before {
            if t0.elapsed() > START_TIMEOUT {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("lab: {} did not log its reload", self.name),
                ));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(t0.elapsed())
    }

    /// The last `n` lines of the instance's log.
    pub fn log_tail(&self, n: usize) -> String {
        tail(&self.maillog(), n)
    }

    /// Stop: `postfix stop`, then the master by PID, then wait for (and if need be kill) every
    /// child it had. Idempotent; also done on drop.
    pub fn stop(&mut self) -> Duration {
        let t0 = Instant::now();
        let Some(mut master) = self.master.take() else {
            return t0.elapsed();
        };
        let tree = process_tree(master.pid());
        let _ = Command::new(tool("postfix"))
            .arg("-c")
            .arg(self.etc())
            .arg("stop")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        master.stop();
        // The master signals its children as it exits; some (qmgr, an idle smtpd) take up to a
        // second or two to notice. They are ours: tell them directly.
        for p in tree.iter().filter(|p| alive(**p)) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(p.pid as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        let deadline = Instant::now() + STOP_GRACE;
        loop {
            let left: Vec<ProcId> = tree.iter().copied().filter(|p| alive(*p)).collect();
            if left.is_empty() {
                break;
            }
            if Instant::now() > deadline {
                for p in left {
                    eprintln!(
                        "lab: {} child {} outlived its master; killing",
                        self.name, p.pid
                    );
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(p.pid as i32),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        t0.elapsed()
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.stop();
    }
}
