//! A minimal SMTP client: EHLO, STARTTLS and the certificate chain the server sends.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};
use openssl::x509::X509;

use super::MX_HOST;

/// Open an SMTP session to `addr`, EHLO, STARTTLS, and return the certificate chain the server
/// sent (leaf first). No verification: the lab judges certificates by their SPKI.
pub fn starttls_chain(addr: SocketAddr, timeout: Duration) -> io::Result<Vec<X509>> {
    let stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let mut rd = BufReader::new(stream.try_clone()?);
    let mut wr = stream;
    expect_reply(&mut rd, "220")?;
    wr.write_all(b"EHLO probe.example.test\r\n")?;
    let ehlo = expect_reply(&mut rd, "250")?;
    if !ehlo.to_ascii_uppercase().contains("STARTTLS") {
        return Err(io::Error::other(format!(
            "lab: no STARTTLS offered: {ehlo}"
        )));
    }
    wr.write_all(b"STARTTLS\r\n")?;
    expect_reply(&mut rd, "220")?;
    if !rd.buffer().is_empty() {
        return Err(io::Error::other(
            "lab: server spoke before the TLS handshake",
        ));
    }
    let mut b = SslConnector::builder(SslMethod::tls_client()).map_err(io::Error::other)?;
    b.set_verify(SslVerifyMode::NONE);
    let conn = b.build();
    let mut cfg = conn.configure().map_err(io::Error::other)?;
    cfg.set_verify_hostname(false);
    let mut tls = cfg
        .connect(MX_HOST, wr)
        .map_err(|e| io::Error::other(format!("lab: TLS handshake with {addr}: {e}")))?;
    let chain: Vec<X509> = tls
        .ssl()
        .peer_cert_chain()
        .map(|s| s.iter().map(|c| c.to_owned()).collect())
        .unwrap_or_default();
    let _ = tls.write_all(b"QUIT\r\n");
    let mut sink = [0u8; 256];
    let _ = tls.read(&mut sink);
    let _ = tls.shutdown();
    if chain.is_empty() {
        return Err(io::Error::other("lab: no certificate in the TLS handshake"));
    }
    Ok(chain)
}

/// Read one (possibly multi-line) SMTP reply; error unless its code is `code`.
fn expect_reply(rd: &mut impl BufRead, code: &str) -> io::Result<String> {
    let mut all = String::new();
    loop {
        let mut line = String::new();
        if rd.read_line(&mut line)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("lab: SMTP server closed the connection; so far: {all}"),
            ));
        }
        all.push_str(&line);
        if line.len() < 4 || line.as_bytes()[3] != b'-' {
            break;
        }
    }
    if !all.starts_with(code) {
        return Err(io::Error::other(format!(
            "lab: expected {code}, got: {}",
            all.trim()
        )));
    }
    Ok(all)
}
