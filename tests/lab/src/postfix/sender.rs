//! The DANE-enforcing sending Postfix: handing it test mails, waiting for its verdict on each,
//! and its queue.

use std::io;
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::ports::LoopbackBlock;
use crate::process::output_with_input;

use super::config::master_cf;
use super::instance::Instance;
use super::verdict::{Verdict, queue_id_in, verdict_in};
use super::{RECIPIENT, SENDER_HOST, tool};

/// A test mail handed to the sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestMail {
    /// Its Message-ID, without angle brackets.
    pub message_id: String,
    /// Its recipient.
    pub to: String,
}

/// The sending Postfix that enforces DANE: the judge of whether mail to the MX would flow.
#[derive(Debug)]
pub struct Sender {
    inst: Instance,
    addr: Ipv4Addr,
    resolver: Ipv4Addr,
}

static MAIL_SEQ: AtomicU32 = AtomicU32::new(0);

impl Sender {
    /// Start a sender in `dir`: binds to the block's SENDER address and resolves through
    /// `resolver:53` (a validating resolver) in a private mount namespace.
    pub fn start(dir: &Path, block: LoopbackBlock, resolver: Ipv4Addr) -> io::Result<Sender> {
        Self::start_on(dir, block.host(LoopbackBlock::SENDER), resolver)
    }

    /// Start a sender that binds its connections to `addr`.
    pub fn start_on(dir: &Path, addr: Ipv4Addr, resolver: Ipv4Addr) -> io::Result<Sender> {
        let d = dir.display();
        std::fs::create_dir_all(dir)?;
        let resolv = dir.join("resolv.conf");
        std::fs::write(
            &resolv,
            format!(
                "# dane-roll lab: the sender's private resolv.conf (mount namespace)\n\
                 nameserver {resolver}\noptions trust-ad edns0 timeout:2 attempts:2\n"
            ),
        )?;
        let main_cf = format!(
            "# dane-roll lab: the DANE-enforcing sender (the judge)\n\
             compatibility_level = 3.6\n\
             queue_directory = {d}/spool\n\
             data_directory = {d}/data\n\
             maillog_file_prefixes = {d}\n\
             maillog_file = {d}/maillog\n\
             myhostname = {SENDER_HOST}\n\
             mydomain = {SENDER_HOST}\n\
             myorigin = {SENDER_HOST}\n\
             mydestination =\n\
             inet_interfaces = 127.0.0.1\n\
             inet_protocols = ipv4\n\
             mynetworks = 127.0.0.0/8\n\
             local_recipient_maps =\n\
             alias_maps =\n\
             alias_database =\n\
             smtp_bind_address = {addr}\n\
             smtp_dns_support_level = dnssec\n\
             smtp_tls_security_level = dane\n\
             smtp_tls_loglevel = 1\n\
             smtp_tls_connection_reuse = no\n\
             smtp_connection_cache_on_demand = no\n\
             smtp_destination_concurrency_failed_cohort_limit = 1000\n\
             smtp_connect_timeout = 5s\n\
             maximal_queue_lifetime = 1h\n\
             bounce_queue_lifetime = 1h\n"
        );
        let master = master_cf(None, &["max_use=1"])?;
        let mut inst = Instance::create("postfix sender", dir, &main_cf, &master)?;
        inst.start(Some(&resolv))?;
        Ok(Sender {
            inst,
            addr,
            resolver,
        })
    }

    /// The address its connections come from.
    pub fn addr(&self) -> Ipv4Addr {
        self.addr
    }

    /// The resolver it asks.
    pub fn resolver(&self) -> Ipv4Addr {
        self.resolver
    }

    /// The Postfix instance (config dir, log, PIDs, stop).
    pub fn instance(&self) -> &Instance {
        &self.inst
    }

    /// `postfix reload` of the sender (drops any state its processes hold).
    pub fn reload(&self) -> io::Result<Duration> {
        self.inst.reload()
    }

    /// Hand a test mail to the sender (`sendmail -C`), with a unique Message-ID.
    pub fn send_test_mail(&self, to: &str) -> io::Result<TestMail> {
        let n = MAIL_SEQ.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let message_id = format!("lab.{}.{n}.{nanos}@{SENDER_HOST}", std::process::id());
        let msg = format!(
            "From: <lab@{SENDER_HOST}>\r\nTo: <{to}>\r\nSubject: dane-roll lab test {n}\r\n\
             Message-ID: <{message_id}>\r\n\r\nA test mail from the dane-roll lab.\r\n"
        );
        let out = output_with_input(
            Command::new(tool("sendmail"))
                .arg("-C")
                .arg(self.inst.etc())
                .args(["-i", "-f", &format!("lab@{SENDER_HOST}"), "--", to])
                .stdout(Stdio::null())
                .stderr(Stdio::piped()),
            msg.as_bytes(),
        )?;
        if !out.status.success() {
            return Err(io::Error::other(format!(
                "lab: sendmail failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(TestMail {
            message_id,
            to: to.to_string(),
        })
    }

    /// The queue ID the mail got (from cleanup's `message-id=` log line), once logged.
    pub fn queue_id(&self, mail: &TestMail) -> Option<String> {
        let log = std::fs::read_to_string(self.inst.maillog()).ok()?;
        queue_id_in(&log, &mail.message_id)
    }

    /// What became of `mail` so far, from the sender's log.
    pub fn verdict_now(&self, mail: &TestMail) -> Verdict {
        let Ok(log) = std::fs::read_to_string(self.inst.maillog()) else {
            return Verdict::Pending;
        };
        let Some(qid) = queue_id_in(&log, &mail.message_id) else {
            return Verdict::Pending;
        };
        verdict_in(&log, &qid)
    }

    /// Wait until the sender logged an outcome for `mail` (sent, deferred or bounced), at most
    /// `timeout`; [`Verdict::Pending`] if none came.
    pub fn verdict(&self, mail: &TestMail, timeout: Duration) -> Verdict {
        let t0 = Instant::now();
        loop {
            let v = self.verdict_now(mail);
            if v != Verdict::Pending || t0.elapsed() > timeout {
                return v;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Send a test mail to [`RECIPIENT`] and wait for the verdict.
    pub fn send_and_judge(&self, timeout: Duration) -> io::Result<Verdict> {
        let mail = self.send_test_mail(RECIPIENT)?;
        Ok(self.verdict(&mail, timeout))
    }

    /// `postqueue -f`: retry every deferred mail now.
    pub fn flush(&self) -> io::Result<()> {
        self.inst.run("postqueue", &["-f"]).map(|_| ())
    }

    /// The queue, one JSON object per mail (`postqueue -j`).
    pub fn queue(&self) -> io::Result<Vec<serde_json::Value>> {
        let out = self.inst.run("postqueue", &["-j"])?;
        out.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).map_err(io::Error::other))
            .collect()
    }

    /// How many mails wait in the deferred queue.
    pub fn deferred_count(&self) -> io::Result<usize> {
        Ok(self
            .queue()?
            .iter()
            .filter(|m| m["queue_name"] == "deferred")
            .count())
    }

    /// Whether the queue is empty.
    pub fn queue_empty(&self) -> io::Result<bool> {
        Ok(self.queue()?.is_empty())
    }

    /// Delete every queued mail (`postsuper -d ALL`).
    pub fn clear_queue(&self) -> io::Result<()> {
        self.inst.run("postsuper", &["-d", "ALL"]).map(|_| ())
    }

    /// How many mails the sender bounced so far (status=bounced lines in its log).
    pub fn bounced_count(&self) -> usize {
        std::fs::read_to_string(self.inst.maillog())
            .map(|l| l.matches("status=bounced").count())
            .unwrap_or(0)
    }

    /// Stop it now (also done on drop); the time it took.
    pub fn stop(&mut self) -> Duration {
        self.inst.stop()
    }
}
