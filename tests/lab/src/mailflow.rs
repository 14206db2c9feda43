//! A steady flow of test mails through the DANE-enforcing sender while something else happens,
//! and the judgement of every one of them at the end, from the sender's log.
//!
//! [`while_sending`] hands a test mail to the sender every `interval` on a second thread while a
//! closure runs on the calling thread (the lab's servers must stay on the thread that started
//! them), and returns what the closure returned and every mail sent. [`judge`] then reads the
//! sender's log: each mail's delivery attempts in order (a mail deferred and delivered later has
//! two) and its final outcome. Unlike [`crate::postfix::Sender::verdict`], which reports the
//! first attempt, this follows a mail to the end.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use crate::postfix::{RECIPIENT, Sender, TestMail, Verdict, attempt};

/// One mail handed to the sender.
#[derive(Debug, Clone)]
pub struct SentMail {
    /// The mail (Message-ID, recipient).
    pub mail: TestMail,
    /// When it was handed over, from the start of the flow.
    pub at: Duration,
    /// When it was handed over, wall clock.
    pub wall: SystemTime,
}

/// What became of the mails of a flow.
#[derive(Debug, Clone)]
pub struct Flow {
    /// Every mail handed over, in order.
    pub sent: Vec<SentMail>,
    /// Hand-overs that failed (sendmail errors), with the time.
    pub send_errors: Vec<(Duration, String)>,
}

/// Run `work` on this thread while a second thread hands a test mail to `tx` every `interval`.
pub fn while_sending<R>(tx: &Sender, interval: Duration, work: impl FnOnce() -> R) -> (R, Flow) {
    while_sending_to(tx, interval, &|_| RECIPIENT.to_owned(), work)
}

/// [`while_sending`], the recipient of the n-th mail (from 0) given by `to`: a flow that spreads
/// over several host names (an endpoint added while it runs).
pub fn while_sending_to<R>(
    tx: &Sender,
    interval: Duration,
    to: &(dyn Fn(usize) -> String + Sync),
    work: impl FnOnce() -> R,
) -> (R, Flow) {
    let stop = AtomicBool::new(false);
    let t0 = Instant::now();
    std::thread::scope(|scope| {
        let mailer = scope.spawn(|| {
            let mut flow = Flow {
                sent: Vec::new(),
                send_errors: Vec::new(),
            };
            let mut next = Instant::now();
            while !stop.load(Ordering::SeqCst) {
                let at = t0.elapsed();
                let recipient = to(flow.sent.len() + flow.send_errors.len());
                match tx.send_test_mail(&recipient) {
                    Ok(mail) => flow.sent.push(SentMail {
                        mail,
                        at,
                        wall: SystemTime::now(),
                    }),
                    Err(e) => flow.send_errors.push((at, e.to_string())),
                }
                next += interval;
                // Never a burst to catch up after a stall: the flow stays about one a period.
                let now = Instant::now();
                if next < now {
                    next = now;
                }
                while Instant::now() < next && !stop.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
            flow
        });
        // Also when `work` panics: the scope joins the mailer, which must stop then too.
        let guard = StopOnDrop(&stop);
        let out = work();
        drop(guard);
        let flow = mailer.join().unwrap_or_else(|_| Flow {
            sent: Vec::new(),
            send_errors: vec![(t0.elapsed(), "the mailer thread panicked".into())],
        });
        (out, flow)
    })
}

/// Sets the flag when dropped.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// The fate of one mail.
#[derive(Debug, Clone)]
pub struct Fate {
    /// The mail.
    pub sent: SentMail,
    /// Its queue ID, once the sender logged it.
    pub queue_id: Option<String>,
    /// Every delivery attempt in log order: [`Verdict::Verified`], [`Verdict::SentUnverified`],
    /// [`Verdict::Deferred`] or [`Verdict::Bounced`].
    pub attempts: Vec<Verdict>,
}

impl Fate {
    /// The last attempt's outcome ([`Verdict::Pending`] when none was logged).
    pub fn last(&self) -> Verdict {
        self.attempts.last().cloned().unwrap_or(Verdict::Pending)
    }

    /// Whether it was deferred at least once.
    pub fn was_deferred(&self) -> bool {
        self.attempts.iter().any(Verdict::is_deferred)
    }
}

/// Every mail's attempts, from the sender's log as it is now.
pub fn judge(tx: &Sender, sent: &[SentMail]) -> io::Result<Vec<Fate>> {
    let log = std::fs::read_to_string(tx.instance().maillog())?;
    Ok(judge_log(&log, sent))
}

/// [`judge`] over a log's text.
pub fn judge_log(log: &str, sent: &[SentMail]) -> Vec<Fate> {
    let lines: Vec<&str> = log.lines().collect();
    // Queue ID by Message-ID, and the status lines by queue ID, in one pass each.
    let mut qids = std::collections::HashMap::new();
    let mut status: std::collections::HashMap<&str, Vec<usize>> = Default::default();
    for (i, l) in lines.iter().enumerate() {
        let Some((_, rest)) = l.split_once("]: ") else {
            continue;
        };
        let Some((qid, what)) = rest.split_once(": ") else {
            continue;
        };
        if let Some(mid) = what
            .strip_prefix("message-id=<")
            .and_then(|m| m.strip_suffix('>'))
        {
            qids.insert(mid, qid);
        } else if what.contains(" status=") {
            status.entry(qid).or_default().push(i);
        }
    }
    sent.iter()
        .map(|s| {
            let qid = qids.get(s.mail.message_id.as_str()).copied();
            let attempts = qid
                .and_then(|q| status.get(q))
                .into_iter()
                .flatten()
                .filter_map(|&i| attempt(&lines, i))
                .collect();
            Fate {
                sent: s.clone(),
                queue_id: qid.map(str::to_owned),
                attempts,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "\
Nov 23 08:50:10 s postfix/cleanup[1]: AAA: message-id=<m1@s>
Nov 23 08:50:10 s postfix/cleanup[1]: BBB: message-id=<m2@s>
Nov 23 08:50:10 s postfix/smtp[7]: Verified TLS connection established to mx[1.2.3.4]:25: TLSv1.3
Nov 23 08:50:10 s postfix/smtp[7]: AAA: to=<a@b>, relay=mx, status=sent (250 ok)
Nov 23 08:50:11 s postfix/smtp[8]: BBB: to=<a@b>, relay=mx, status=deferred (Server certificate not verified)
Nov 23 08:50:19 s postfix/smtp[9]: Verified TLS connection established to mx[1.2.3.4]:25: TLSv1.3
Nov 23 08:50:19 s postfix/smtp[9]: BBB: to=<a@b>, relay=mx, status=sent (250 ok)
";

    fn mail(id: &str) -> SentMail {
        SentMail {
            mail: TestMail {
                message_id: id.into(),
                to: "a@b".into(),
            },
            at: Duration::ZERO,
            wall: SystemTime::now(),
        }
    }

    #[test]
    fn follows_a_mail_to_its_last_attempt() {
        let f = judge_log(LOG, &[mail("m1@s"), mail("m2@s"), mail("m3@s")]);
        assert!(f[0].last().is_verified() && !f[0].was_deferred());
        assert_eq!(f[1].attempts.len(), 2);
        assert!(f[1].was_deferred() && f[1].last().is_verified());
        assert_eq!(f[2].last(), Verdict::Pending);
        assert_eq!(f[2].queue_id, None);
    }
}
