//! Test support for the live probe: certificates made at test time (root → intermediate →
//! leaves, RSA and EC, an expired leaf), and a fake mail server on 127.0.0.1 (port 0) that speaks
//! just enough SMTP, IMAP and POP3 — or misbehaves on purpose.
//!
//! The server is blocking std code on its own threads, so tests can run `openssl s_client`
//! against it while the probe runs on tokio. Dropping it stops the accept loop; connection
//! threads end when the client goes away (and have read/write timeouts besides).

#![allow(dead_code)] // each test binary uses a part

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::ssl::{Ssl, SslContext, SslContextBuilder, SslMethod};
use openssl::x509::extension::{BasicConstraints, KeyUsage, SubjectAlternativeName};
use openssl::x509::{X509, X509NameBuilder};

/// The host name in the leaves' subjectAltName.
pub const HOST: &str = "mail.example.test";

/// A key and its certificate.
#[derive(Clone)]
pub struct Issued {
    pub key: PKey<Private>,
    pub cert: X509,
}

/// A small PKI: an EC root, an EC intermediate, and leaves under the intermediate.
pub struct Pki {
    pub root: Issued,
    pub inter: Issued,
    pub leaf_ec: Issued,
    pub leaf_rsa: Issued,
    pub leaf_expired: Issued,
    pub leaf_ed25519: Issued,
    /// A key that is served nowhere (for stale records).
    pub other_ec: Issued,
}

pub fn ec_key() -> PKey<Private> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap()
}

pub fn rsa_key() -> PKey<Private> {
    PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap()
}

/// Issue a certificate. `issuer` None means self-signed. `days` may be negative for the end
/// of validity in the past (an expired certificate).
pub fn issue(
    cn: &str,
    key: &PKey<Private>,
    issuer: Option<&Issued>,
    ca: bool,
    days_from: i64,
    days_to: i64,
) -> X509 {
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", cn).unwrap();
    let name = name.build();
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    let mut serial = BigNum::new().unwrap();
    serial.rand(64, MsbOption::MAYBE_ZERO, false).unwrap();
    b.set_serial_number(&serial.to_asn1_integer().unwrap())
        .unwrap();
    b.set_subject_name(&name).unwrap();
    match issuer {
        Some(i) => b.set_issuer_name(i.cert.subject_name()).unwrap(),
        None => b.set_issuer_name(&name).unwrap(),
    }
    b.set_pubkey(key).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    b.set_not_before(&Asn1Time::from_unix(now + days_from * 86_400).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::from_unix(now + days_to * 86_400).unwrap())
        .unwrap();
    if ca {
        b.append_extension(BasicConstraints::new().critical().ca().build().unwrap())
            .unwrap();
        b.append_extension(
            KeyUsage::new()
                .critical()
                .key_cert_sign()
                .crl_sign()
                .build()
                .unwrap(),
        )
        .unwrap();
    } else {
        b.append_extension(BasicConstraints::new().critical().build().unwrap())
            .unwrap();
        let ctx = b.x509v3_context(issuer.map(|i| i.cert.as_ref()), None);
        let san = SubjectAlternativeName::new().dns(cn).build(&ctx).unwrap();
        b.append_extension(san).unwrap();
    }
    let signer = issuer.map(|i| &i.key).unwrap_or(key);
    b.sign(signer, MessageDigest::sha256()).unwrap();
    b.build()
}

impl Pki {
    pub fn new() -> Pki {
        let root_key = ec_key();
        let root = Issued {
            cert: issue("Probe Test Root", &root_key, None, true, -1, 30),
            key: root_key,
        };
        let inter_key = ec_key();
        let inter = Issued {
            cert: issue(
                "Probe Test Intermediate",
                &inter_key,
                Some(&root),
                true,
                -1,
                30,
            ),
            key: inter_key,
        };
        let leaf = |key: PKey<Private>, from: i64, to: i64| Issued {
            cert: issue(HOST, &key, Some(&inter), false, from, to),
            key,
        };
        let leaf_ec = leaf(ec_key(), -1, 30);
        let leaf_rsa = leaf(rsa_key(), -1, 30);
        let leaf_expired = leaf(ec_key(), -30, -2);
        let leaf_ed25519 = leaf(PKey::generate_ed25519().unwrap(), -1, 30);
        let other_ec = leaf(ec_key(), -1, 30);
        Pki {
            root,
            inter,
            leaf_ec,
            leaf_rsa,
            leaf_expired,
            leaf_ed25519,
            other_ec,
        }
    }
}

/// One key the server serves, with the chain sent after the leaf.
#[derive(Clone)]
pub struct Served {
    pub leaf: Issued,
    pub chain: Vec<X509>,
}

/// How the fake server behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A well-behaved SMTP server with STARTTLS.
    Smtp,
    /// IMAP with STARTTLS.
    Imap,
    /// POP3 with STLS.
    Pop3,
    /// TLS from the first byte.
    Tls,
    /// EHLO without STARTTLS.
    NoStarttls,
    /// `454 4.7.0 TLS not available` to STARTTLS.
    Refuse454,
    /// A greeting that is not SMTP.
    GarbageGreeting,
    /// The greeting one byte a second.
    Drip,
    /// STARTTLS accepted, then the connection closes in the middle of the handshake.
    CloseMidHandshake,
    /// A 100 kB greeting line.
    LongLine,
    /// Bytes after the 220 to STARTTLS, before TLS.
    DataAfterStarttls,
    /// Accepts and says nothing.
    Silent,
}

/// The fake server; stops accepting when dropped.
pub struct FakeServer {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

fn server_context() -> SslContext {
    let mut b = SslContextBuilder::new(SslMethod::tls_server()).unwrap();
    b.set_session_cache_mode(openssl::ssl::SslSessionCacheMode::OFF);
    b.build()
}

impl FakeServer {
    pub fn start(mode: Mode, served: Vec<Served>) -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let context = server_context();
        let served = Arc::new(served);
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let context = context.clone();
                let served = Arc::clone(&served);
                std::thread::spawn(move || {
                    let _ = conn.set_read_timeout(Some(Duration::from_secs(20)));
                    let _ = conn.set_write_timeout(Some(Duration::from_secs(20)));
                    let _ = serve(conn, mode, &context, &served);
                });
            }
        });
        FakeServer {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr); // wake the accept loop
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Read one line, byte by byte (so nothing after it is consumed).
fn read_line(conn: &mut TcpStream) -> std::io::Result<String> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        if conn.read(&mut byte)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        line.push(byte[0]);
        if byte[0] == b'\n' || line.len() > 8192 {
            return Ok(String::from_utf8_lossy(&line).trim_end().to_string());
        }
    }
}

fn serve(
    mut conn: TcpStream,
    mode: Mode,
    context: &SslContext,
    served: &[Served],
) -> std::io::Result<()> {
    match mode {
        Mode::Tls => return tls(conn, context, served, false),
        Mode::Silent => {
            std::thread::sleep(Duration::from_secs(10));
            return Ok(());
        }
        Mode::GarbageGreeting => {
            conn.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n")?;
            std::thread::sleep(Duration::from_millis(500));
            return Ok(());
        }
        Mode::Drip => {
            for byte in b"220 slow.example.test ESMTP\r\n" {
                conn.write_all(&[*byte])?;
                std::thread::sleep(Duration::from_secs(1));
            }
            return Ok(());
        }
        Mode::LongLine => {
            let mut greeting = b"220-".to_vec();
            greeting.extend(std::iter::repeat_n(b'x', 100_000));
            greeting.extend_from_slice(b"\r\n220 ok\r\n");
            conn.write_all(&greeting)?;
            std::thread::sleep(Duration::from_millis(500));
            return Ok(());
        }
        Mode::Imap => {
            conn.write_all(b"* OK [CAPABILITY IMAP4rev1 STARTTLS] fake ready\r\n")?;
            loop {
                let line = read_line(&mut conn)?;
                let (tag, command) = line.split_once(' ').unwrap_or((&line, ""));
                if command.eq_ignore_ascii_case("CAPABILITY") {
                    conn.write_all(b"* CAPABILITY IMAP4rev1 STARTTLS\r\n")?;
                    conn.write_all(format!("{tag} OK done\r\n").as_bytes())?;
                } else if command.eq_ignore_ascii_case("STARTTLS") {
                    conn.write_all(format!("{tag} OK begin TLS\r\n").as_bytes())?;
                    return tls(conn, context, served, false);
                } else {
                    conn.write_all(format!("{tag} BAD what\r\n").as_bytes())?;
                }
            }
        }
        Mode::Pop3 => {
            conn.write_all(b"+OK fake POP3\r\n")?;
            loop {
                let line = read_line(&mut conn)?;
                if line.eq_ignore_ascii_case("STLS") {
                    conn.write_all(b"+OK begin TLS\r\n")?;
                    return tls(conn, context, served, false);
                } else if line.eq_ignore_ascii_case("CAPA") {
                    conn.write_all(b"+OK\r\nSTLS\r\n.\r\n")?;
                } else {
                    conn.write_all(b"-ERR what\r\n")?;
                }
            }
        }
        _ => {}
    }
    // SMTP and its misbehaving variants.
    conn.write_all(b"220-mail.example.test ESMTP fake\r\n220 at your service\r\n")?;
    loop {
        let line = read_line(&mut conn)?;
        let upper = line.to_ascii_uppercase();
        if upper.starts_with("EHLO") {
            if mode == Mode::NoStarttls {
                conn.write_all(b"250-mail.example.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n")?;
            } else {
                conn.write_all(
                    b"250-mail.example.test\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-STARTTLS\r\n250 8BITMIME\r\n",
                )?;
            }
        } else if upper.starts_with("STARTTLS") {
            match mode {
                Mode::Refuse454 => {
                    conn.write_all(b"454 4.7.0 TLS not available due to local problem\r\n")?
                }
                Mode::DataAfterStarttls => {
                    conn.write_all(b"220 2.0.0 Ready to start TLS\r\n250 injected\r\n")?;
                    std::thread::sleep(Duration::from_millis(500));
                    return Ok(());
                }
                Mode::CloseMidHandshake => {
                    conn.write_all(b"220 2.0.0 Ready to start TLS\r\n")?;
                    let mut hello = [0u8; 64];
                    let _ = conn.read(&mut hello)?;
                    return Ok(()); // closes with the ClientHello half read
                }
                _ => {
                    conn.write_all(b"220 2.0.0 Ready to start TLS\r\n")?;
                    return tls(conn, context, served, true);
                }
            }
        } else if upper.starts_with("QUIT") {
            conn.write_all(b"221 2.0.0 Bye\r\n")?;
            return Ok(());
        } else {
            conn.write_all(b"502 5.5.2 Error: command not recognized\r\n")?;
        }
    }
}

/// The TLS half: the handshake with every served key, then (SMTP) answer QUIT.
fn tls(
    conn: TcpStream,
    context: &SslContext,
    served: &[Served],
    smtp: bool,
) -> std::io::Result<()> {
    let mut ssl = Ssl::new(context).map_err(std::io::Error::other)?;
    for s in served {
        ssl.set_certificate(&s.leaf.cert)
            .map_err(std::io::Error::other)?;
        ssl.set_private_key(&s.leaf.key)
            .map_err(std::io::Error::other)?;
        for c in &s.chain {
            ssl.add_chain_cert(c.clone())
                .map_err(std::io::Error::other)?;
        }
    }
    let mut tls = ssl.accept(conn).map_err(std::io::Error::other)?;
    if smtp {
        let mut buf = [0u8; 512];
        while let Ok(n) = tls.read(&mut buf) {
            if n == 0 {
                break;
            }
            if buf[..n].to_ascii_uppercase().starts_with(b"QUIT") {
                let _ = tls.write_all(b"221 2.0.0 Bye\r\n");
                break;
            }
        }
    }
    let _ = tls.shutdown();
    Ok(())
}

/// The result of `openssl s_client` with DANE: whether it verified, and the verify code it
/// printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SClient {
    pub ok: bool,
    pub code: Option<i32>,
}

/// Run `openssl s_client` with DANE against `addr` (docs/LAB.md's command), offering `sigalgs`.
pub fn s_client(
    addr: SocketAddr,
    starttls: Option<&str>,
    host: &str,
    records: &[String],
    sigalgs: &str,
) -> SClient {
    let mut cmd = std::process::Command::new("openssl");
    cmd.arg("s_client");
    if let Some(proto) = starttls {
        cmd.args(["-starttls", proto]);
    }
    cmd.args(["-connect", &addr.to_string(), "-servername", host])
        .args(["-dane_tlsa_domain", host]);
    for r in records {
        cmd.args(["-dane_tlsa_rrdata", r]);
    }
    cmd.args([
        "-dane_ee_no_namechecks",
        "-verify_return_error",
        "-sigalgs",
        sigalgs,
    ])
    .stdin(std::process::Stdio::null());
    let out = cmd.output().expect("openssl s_client runs");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    let code = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Verify return code: "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .or_else(|| {
            text.lines()
                .find_map(|l| l.split_once("verify error:num="))
                .and_then(|(_, rest)| rest.split(':').next())
                .and_then(|n| n.parse().ok())
        });
    SClient {
        ok: out.status.success(),
        code,
    }
}
