//! The STARTTLS client's reading of a server (`probe::start_tls`): SMTP replies (codes,
//! continuation lines, the EHLO keywords), IMAP and POP3 greetings, line and line-count limits,
//! and bytes sent after the reply to STARTTLS. The input's first byte picks the protocol, the
//! read size and the limits; the rest is what the server sends. Nothing panics, every error can
//! be printed, and a message quoting the server stays short.

#![no_main]

use std::io;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};
use std::time::Duration;

use dane_roll::config::Protocol;
use dane_roll::probe::{self, Limits};
use libfuzzer_sys::fuzz_target;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A server that sends `data` in reads of at most `chunk` bytes, then closes, and takes
/// whatever the client writes.
struct Server<'a> {
    data: &'a [u8],
    chunk: usize,
}

impl AsyncRead for Server<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let n = self.data.len().min(self.chunk).min(buf.remaining());
        let (now, later) = self.data.split_at(n);
        buf.put_slice(now);
        self.data = later;
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Server<'_> {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a tokio runtime")
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&knobs, sent)) = data.split_first() else {
        return;
    };
    let protocol = match knobs & 0b11 {
        0 | 1 => Protocol::Smtp,
        2 => Protocol::Imap,
        _ => Protocol::Pop3,
    };
    let chunk = [1, 7, 1024, 64 * 1024][usize::from((knobs >> 2) & 0b11)];
    let (max_line, max_lines) = match (knobs >> 4) & 0b11 {
        0 | 1 => (probe::MAX_LINE, probe::MAX_LINES),
        2 => (16, 3),
        _ => (usize::from(knobs >> 6), usize::from(knobs >> 7)),
    };
    let limits = Limits {
        step: Duration::from_secs(60),
        max_line,
        max_lines,
    };
    let mut server = Server { data: sent, chunk };
    let outcome = runtime().block_on(probe::start_tls(
        &mut server,
        protocol,
        "fuzz.invalid",
        &limits,
    ));
    if let Err(err) = outcome {
        let message = err.to_string();
        // A quoted line is cut to 120 characters, each escaped to at most 10 bytes.
        assert!(message.len() < 2048, "{} bytes: {message}", message.len());
        let _ = err.is_definitive();
    }
});
