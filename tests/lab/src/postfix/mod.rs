//! The mail half of the lab: a receiving Postfix (the MX whose certificate dane-roll rolls) and a
//! DANE-enforcing sending Postfix (the judge of whether mail would still flow).
//!
//! ```text
//! 127.53.N.10:25  receiver  smtpd, STARTTLS with DIR/tls/chain.pem (key + chain, one file),
//!                           accepts mail for example.test and discards it
//! 127.53.N.11     sender    smtp_tls_security_level = dane, smtp_dns_support_level = dnssec;
//!                           runs in a private mount namespace whose /etc/resolv.conf points at
//!                           the lab's validating resolver (nameserver 127.53.N.3, trust-ad)
//! ```
//!
//! Each instance has its own config directory, queue and data directory under the lab directory
//! and is started with `postfix -c DIR/etc start`; its master daemonizes, so it is adopted from
//! its pid file as a [`Daemon`](crate::process::Daemon). Dropping an instance runs `postfix
//! stop`, stops the master by PID and waits until every child it had is gone (SIGKILL after a
//! grace period).
//!
//! Pitfalls handled here (beyond docs/LAB.md):
//! - `inet_interfaces = 127.53.N.10` is fatal ("no local interface found"): Postfix checks
//!   inet_interfaces against the interface list, and only 127.0.0.1 is on `lo`. The listener's
//!   address is given in master.cf instead (`127.53.N.10:25 inet ... smtpd`), which Postfix binds
//!   as is, and `inet_interfaces = 127.0.0.1`. The sender's `smtp_bind_address = 127.53.N.11` is
//!   not checked either.
//! - The first start of a fresh spool takes ~2.5 s (post-install create-missing and the checks in
//!   postfix-script); the spool is made here with the right owners and modes and
//!   `quick-start` is touched, so a start takes ~0.1 s.
//! - Postfix re-reads main.cf in 300 ms sleeps for ~2 s when its mtime is within the last
//!   second (a file being edited): the configs are written dated 10 s back, or every start of a
//!   fresh instance costs 2 s.
//! - The sender's smtp processes cache TLSA lookups: its smtp service runs with `-o max_use=1`
//!   (a fresh process, so fresh lookups, for every delivery) and the failed-cohort limit is raised
//!   so that one deferral does not mark the destination dead for the next test mail.
//! - TLS lines ("Verified TLS connection established to ...") carry no queue ID; the verdict
//!   pairs them with the delivery by the smtp process ID.

mod config;
mod instance;
mod proctree;
mod receiver;
mod sender;
mod starttls;
mod verdict;

pub use instance::Instance;
pub use receiver::Receiver;
pub use sender::{Sender, TestMail};
pub use starttls::starttls_chain;
pub use verdict::Verdict;
pub(crate) use verdict::attempt;

use std::path::PathBuf;
use std::time::Duration;

use crate::{pki, tools};

/// How long an instance gets to start, and a child to exit after the master stopped.
const START_TIMEOUT: Duration = Duration::from_secs(20);
const STOP_GRACE: Duration = Duration::from_secs(5);

/// The domain the receiver accepts mail for, and its MX host.
pub const DOMAIN: &str = "example.test";
/// The MX host name (the receiver's `myhostname`, the TLSA base domain).
pub const MX_HOST: &str = pki::MX_HOST;
/// The sender's host name.
pub const SENDER_HOST: &str = "sender.example.test";
/// The default test recipient.
pub const RECIPIENT: &str = "someone@example.test";

fn tool(name: &str) -> PathBuf {
    tools::which(name).unwrap_or_else(|| PathBuf::from(name))
}
