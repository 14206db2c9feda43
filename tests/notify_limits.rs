//! Issue 14 (bounded work against hostile peers): a webhook receiver or a Telegram API URL that
//! answers with an endless body. Before, the channel read the whole body (`Response::text`) until
//! the alert's time limit: gigabytes on loopback, and the process aborted. Now the body is read up
//! to 4 MiB, and the memory of the test process stays bounded.
//!
//! The peer is a thread on 127.0.0.1 that writes a status line, headers, then zeros forever. It
//! watches this process's resident memory and stops writing once it grew by [`RSS_GUARD`], so that
//! the unbounded code fails the test instead of exhausting the machine.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use dane_roll::config::{Channel, Secret, WebhookUrl};
use dane_roll::notify::telegram::Telegram;
use dane_roll::notify::webhook::Webhook;
use dane_roll::notify::{Alert, ChannelError, Sent, Severity};

/// Growth of the resident memory at which the peer gives up (the cap is 4 MiB).
const RSS_GUARD: u64 = 256 << 20;

/// This process's resident memory, bytes (`VmRSS` of /proc/self/status).
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .unwrap()
}

/// A peer answering one request with `head` and then an endless body.
struct EndlessPeer {
    url: String,
    /// The memory guard tripped: the client kept reading far past any sane limit.
    tripped: Arc<AtomicBool>,
    /// Body bytes written.
    written: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl EndlessPeer {
    fn start(head: &'static str) -> EndlessPeer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let tripped = Arc::new(AtomicBool::new(false));
        let written = Arc::new(AtomicU64::new(0));
        let (t, w) = (Arc::clone(&tripped), Arc::clone(&written));
        let baseline = rss();
        let thread = std::thread::spawn(move || {
            let Ok((mut stream, _)) = listener.accept() else {
                return;
            };
            stream
                .set_read_timeout(Some(Duration::from_millis(500)))
                .unwrap();
            // The request (its head and small body); what is left unread does not matter.
            let mut buf = [0u8; 65536];
            let _ = stream.read(&mut buf);
            if stream.write_all(head.as_bytes()).is_err() {
                return;
            }
            let chunk = vec![b'0'; 64 * 1024];
            let started = Instant::now();
            loop {
                if stream.write_all(&chunk).is_err() {
                    return; // the client hung up: what a bounded reader does
                }
                let total = w.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                if total % (4 << 20) == 0 && rss().saturating_sub(baseline) > RSS_GUARD {
                    t.store(true, Ordering::Relaxed);
                    return;
                }
                if started.elapsed() > Duration::from_secs(30) {
                    return;
                }
            }
        });
        EndlessPeer {
            url,
            tripped,
            written,
            thread: Some(thread),
        }
    }

    /// Wait for the peer to stop; (tripped, bytes written).
    fn finish(mut self) -> (bool, u64) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        (
            self.tripped.load(Ordering::Relaxed),
            self.written.load(Ordering::Relaxed),
        )
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn alert() -> Alert {
    Alert::new("c", "s", Severity::Critical, "broken", "detail")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

const HEAD_200: &str = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n";
const HEAD_500: &str =
    "HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n";

/// A webhook alert sent to an [`EndlessPeer`] answering with `head`, asserted bounded
/// ([`assert_bounded`]): what the send returned.
fn webhook_to_endless_peer(head: &'static str) -> Result<Sent, ChannelError> {
    let peer = EndlessPeer::start(head);
    let hook = Webhook::new(
        WebhookUrl::Plain(format!("{}/hook", peer.url)),
        client(),
        Duration::from_secs(20),
    );
    let started = Instant::now();
    let result = runtime().block_on(hook.send(&alert()));
    assert_bounded(peer, started);
    result
}

/// The test's outcome: bounded memory, and done well within the alert's time limit.
fn assert_bounded(peer: EndlessPeer, started: Instant) {
    let elapsed = started.elapsed();
    let (tripped, written) = peer.finish();
    assert!(
        !tripped,
        "the reply was read without limit: resident memory grew by more than {} MiB ({} MiB \
         written)",
        RSS_GUARD >> 20,
        written >> 20
    );
    assert!(
        elapsed < Duration::from_secs(10),
        "took {elapsed:?}: the body was read until the time limit"
    );
}

#[test]
fn webhook_accepting_with_an_endless_body_is_delivered_in_bounded_memory() {
    let result = webhook_to_endless_peer(HEAD_200);
    assert!(
        matches!(result, Ok(Sent::Http { status: 200 })),
        "{result:?}"
    );
}

#[test]
fn webhook_failing_with_an_endless_body_is_a_bounded_error() {
    let result = webhook_to_endless_peer(HEAD_500);
    match result {
        Err(ChannelError::HttpStatus {
            status: 500,
            message,
            ..
        }) => assert!(message.chars().count() <= 201, "{message}"),
        other => panic!("want HTTP 500 quoted shortly, got {other:?}"),
    }
}

#[test]
fn telegram_with_an_endless_body_is_a_clear_error_in_bounded_memory() {
    let peer = EndlessPeer::start(HEAD_200);
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "123456789:AAbounded-test-token\n").unwrap();
    let channel = Channel::Telegram {
        token: Secret::from_file(&token),
        chat_id: "42".into(),
        api_url: peer.url.clone(),
    };
    let bot = Telegram::from_channel(&channel, client(), Duration::from_secs(20)).unwrap();
    let started = Instant::now();
    let result = runtime().block_on(bot.send(&alert()));
    assert_bounded(peer, started);
    let err = result.expect_err("an endless reply is not an acknowledgement");
    assert!(matches!(err, ChannelError::ReplyTooLarge { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("larger than 4 MiB"), "{text}");
    assert!(!text.contains("AAbounded"), "{text}");
}
