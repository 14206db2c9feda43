//! Secret hygiene (issue 8, safety invariant 6): every `dane-roll` command runs with
//! configurations whose TSIG keys, API tokens, alert tokens and webhook URL carry known, unique
//! secrets, and none of them may appear in standard output, standard error (also with `-vv`),
//! any JSON output, the state database (`state.db`, its `-wal` and `-shm`), the lock files, or
//! any other file dane-roll writes.
//!
//! Two runs:
//! - without servers: the secrets are used against fakes on loopback: an HTTP server that answers
//!   401 and echoes the whole request back (the X-API-Key header, the Telegram bot path with
//!   its token, the webhook path) as a careless API would, and an RFC 2136 server address where
//!   nothing listens;
//! - on the lab (real BIND + Knot + Unbound + PowerDNS on loopback): the TSIG key really signs
//!   updates and the PowerDNS key really authenticates, then wrong keys of both (BADSIG, 401).
//!
//! A command may fail for other reasons (no mail server answers the probe, the record cannot
//! age in time): only the secrets are judged here.
//!
//! And the children (issue 14): the reload command, the exec provider and sendmail dump their
//! environment; no secret and no secret variable's name may be in it, and the exec provider
//! gets only its documented variables. A webhook URL's basic-auth password, echoed back as the
//! `Authorization` header it became, is masked.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use dane_roll_lab::dns::{DnsLab, Server};
use dane_roll_lab::pki::{KeyKind, Leaf, MX_HOST, TestPki};
use dane_roll_lab::require_all;
use dane_roll_lab::tools::{BIND_TOOLS, KNOT_TOOLS, PDNS_TOOLS, UNBOUND_TOOLS};

const BIN: &str = env!("CARGO_BIN_EXE_dane-roll");
/// The longest any one command may take (a hang is a failure too).
const LIMIT: Duration = Duration::from_secs(90);
/// The variable that holds an `algorithm:name:secret` TSIG key (`tsig-env`).
const TSIG_ENV: &str = "DANE_ROLL_SECRETS_TEST_TSIG";
/// The variable that holds a PowerDNS key (`api-key-env`).
const PDNS_ENV: &str = "DANE_ROLL_SECRETS_TEST_PDNS";
const PDNS_ZONE: &str = "pdns-example.test";

/// A secret no program could print by accident: random, and tagged so a failure says which.
fn unique(tag: &str) -> String {
    let mut bytes = [0u8; 12];
    openssl::rand::rand_bytes(&mut bytes).unwrap();
    format!("{tag}{}", hex(&bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A TSIG secret: base64 of random bytes (what `tsig-keygen` writes).
fn tsig_secret() -> String {
    let mut bytes = [0u8; 32];
    openssl::rand::rand_bytes(&mut bytes).unwrap();
    openssl::base64::encode_block(&bytes)
}

/// A BIND key file as `tsig-keygen` writes it.
fn tsig_key_file(path: &Path, name: &str, secret: &str) {
    std::fs::write(
        path,
        format!("key \"{name}\" {{\n\talgorithm hmac-sha256;\n\tsecret \"{secret}\";\n}};\n"),
    )
    .unwrap();
    set_mode(path, 0o600);
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A loopback port where nothing listens (bound, then released).
fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

// ----- the careless API: errors that quote the credentials back -----

/// The statuses the echo server answers with, in turn: each takes another error path.
const STATUSES: [u16; 5] = [401, 422, 400, 403, 404];

/// An HTTP server on loopback that answers every request with an error (401, 422, 400, 403,
/// 404 in turn) whose JSON body quotes the credentials and the whole request back, as some APIs
/// do in their error messages.
struct EchoServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    hits: Arc<AtomicUsize>,
    thread: Option<JoinHandle<()>>,
}

impl EchoServer {
    fn start() -> EchoServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let hits = Arc::new(AtomicUsize::new(0));
        let (s, h) = (stop.clone(), hits.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let hit = h.fetch_add(1, Ordering::Relaxed);
                        let _ = Self::answer(stream, hit);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        EchoServer {
            addr,
            stop,
            hits,
            thread: Some(thread),
        }
    }

    fn answer(mut stream: TcpStream, hit: usize) -> std::io::Result<()> {
        stream.set_nonblocking(false)?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        let mut request = Vec::new();
        let mut buf = [0u8; 4096];
        // Headers, then as much body as Content-Length says.
        let body_start = loop {
            let n = stream.read(&mut buf)?;
            if n == 0 {
                return Ok(());
            }
            request.extend_from_slice(&buf[..n]);
            if let Some(pos) = request.windows(4).position(|w| w == b"\r\n\r\n") {
                break pos + 4;
            }
            if request.len() > 1 << 20 {
                return Ok(());
            }
        };
        let head = String::from_utf8_lossy(&request[..body_start]).to_ascii_lowercase();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        while request.len() < body_start + length {
            let n = stream.read(&mut buf)?;
            if n == 0 {
                break;
            }
            request.extend_from_slice(&buf[..n]);
        }
        let echoed = String::from_utf8_lossy(&request).into_owned();
        let status = STATUSES[hit % STATUSES.len()];
        // What a careless API quotes back: the credentials it was sent (the path, which holds a
        // bot token or a webhook token, and the key headers), many times over, shifted a little
        // on every request so that some copy straddles wherever a message is cut short.
        let mut credentials: Vec<String> = Vec::new();
        let path = echoed.split_whitespace().nth(1).unwrap_or("");
        credentials.push(path.to_owned());
        credentials.extend(path.split('/').filter(|p| p.len() >= 16).map(str::to_owned));
        for line in echoed.lines() {
            let lower = line.to_ascii_lowercase();
            if lower.starts_with("x-api-key:") || lower.starts_with("authorization:") {
                let value = line.split_once(':').map(|(_, v)| v.trim()).unwrap_or("");
                credentials.push(value.trim_start_matches("Bearer ").to_owned());
            }
        }
        let mut quoted = "~".repeat((hit * 7) % 53);
        for _ in 0..12 {
            for c in &credentials {
                quoted.push_str(c);
                quoted.push(' ');
            }
        }
        let body = serde_json::json!({
            "ok": false,
            "error_code": status,
            "description": format!("{quoted}(you sent: {echoed})"),
            "error": format!("{quoted}(you sent: {echoed})"),
        })
        .to_string();
        write!(
            stream,
            "HTTP/1.1 {status} Refused\r\nContent-Type: application/json\r\n\
             WWW-Authenticate: Bearer error=\"invalid_token\", token=\"{}\"\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            credentials.join(" ").replace('"', ""),
            body.len()
        )?;
        stream.flush()
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

// ----- running commands and judging what they leave -----

/// The secrets of one run, by name, and everything checked against them.
struct Judge {
    /// (what, secret)
    secrets: Vec<(String, String)>,
    /// Files that legitimately hold a secret (the inputs), never scanned.
    inputs: BTreeSet<PathBuf>,
    /// What was run, for the summary.
    ran: Vec<String>,
    /// Commands that printed JSON.
    json_outputs: usize,
    /// Whether a SQLite WAL (`state.db-wal`) was among the files scanned.
    wal_scanned: std::cell::Cell<bool>,
}

impl Judge {
    fn new() -> Judge {
        Judge {
            secrets: Vec::new(),
            inputs: BTreeSet::new(),
            ran: Vec::new(),
            json_outputs: 0,
            wal_scanned: std::cell::Cell::new(false),
        }
    }

    fn secret(&mut self, what: &str, value: &str) {
        assert!(value.len() >= 16, "{what}: too short to search for");
        self.secrets.push((what.to_owned(), value.to_owned()));
    }

    fn input(&mut self, path: &Path) {
        self.inputs.insert(path.to_path_buf());
    }

    /// The needles for one secret: the whole of it, and its first and last 16 characters (a
    /// message that cuts a secret short still leaks it).
    fn needles(secret: &str) -> Vec<&str> {
        let n = secret.len();
        vec![secret, &secret[..16], &secret[n - 16..]]
    }

    /// Panic if `bytes` (described by `place`) hold any secret.
    fn check(&self, place: &str, bytes: &[u8]) {
        for (what, secret) in &self.secrets {
            for needle in Self::needles(secret) {
                if let Some(at) = find(bytes, needle.as_bytes()) {
                    let from = at.saturating_sub(200);
                    let to = (at + needle.len() + 200).min(bytes.len());
                    panic!(
                        "the {what} leaked into {place}:\n…{}…",
                        String::from_utf8_lossy(&bytes[from..to])
                    );
                }
            }
        }
    }

    /// Run `dane-roll ARGS` (plain and with `-vv`) with `envs`; check its output; return the
    /// plain run's stdout, stderr and exit code.
    fn run(&mut self, config: &Path, args: &[&str], envs: &[(&str, &str)]) -> Ran {
        let mut first = None;
        for verbose in [false, true] {
            let mut cmd = Command::new(BIN);
            cmd.arg("-c").arg(config);
            if verbose {
                cmd.arg("-vv");
            }
            cmd.args(args);
            for (k, v) in envs {
                cmd.env(k, v);
            }
            let ran = bounded(cmd, LIMIT);
            let name = format!(
                "`dane-roll {}{}`",
                if verbose { "-vv " } else { "" },
                args.join(" ")
            );
            self.check(&format!("the standard output of {name}"), &ran.stdout);
            self.check(&format!("the standard error of {name}"), &ran.stderr);
            if serde_json::from_slice::<serde_json::Value>(&ran.stdout).is_ok() {
                self.json_outputs += 1;
            }
            self.ran.push(format!("{name} → {:?}", ran.code));
            if std::env::var_os("DANE_ROLL_SECRETS_SHOW").is_some() {
                eprintln!("=== {name}\n{}", ran.text());
            }
            if first.is_none() {
                first = Some(ran);
            }
        }
        first.unwrap()
    }

    /// Every file below `dir` but the inputs: the state database and its WAL, lock files,
    /// staged keys and chains, anything else written.
    fn scan(&self, dir: &Path, skip: &[&Path]) -> Vec<PathBuf> {
        let mut scanned = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            if skip.iter().any(|s| d.starts_with(s)) {
                continue;
            }
            for entry in std::fs::read_dir(&d).unwrap() {
                let path = entry.unwrap().path();
                let meta = std::fs::symlink_metadata(&path).unwrap();
                if meta.is_dir() {
                    stack.push(path);
                } else if meta.is_file() && !self.inputs.contains(&path) {
                    let bytes = std::fs::read(&path).unwrap();
                    self.check(&format!("the file {}", path.display()), &bytes);
                    if path.to_string_lossy().ends_with("-wal") && !bytes.is_empty() {
                        self.wal_scanned.set(true);
                    }
                    scanned.push(path);
                }
            }
        }
        scanned
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// What a command did.
struct Ran {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    code: Option<i32>,
}

impl Ran {
    fn text(&self) -> String {
        format!(
            "exit {:?}\nstdout:\n{}\nstderr:\n{}",
            self.code,
            String::from_utf8_lossy(&self.stdout),
            String::from_utf8_lossy(&self.stderr)
        )
    }
}

/// Run `cmd` with stdin closed; kill it (and fail) if it takes longer than `limit`.
fn bounded(mut cmd: Command, limit: Duration) -> Ran {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd.spawn().expect("run dane-roll");
    finish(child, limit, true)
}

fn finish(mut child: Child, limit: Duration, must_exit: bool) -> Ran {
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let err_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let t0 = Instant::now();
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        if t0.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            assert!(!must_exit, "a command ran longer than {limit:?}");
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Ran {
        stdout: reader.join().unwrap(),
        stderr: err_reader.join().unwrap(),
        code,
    }
}

// ----- the files and configurations -----

/// A certificate, its key and a next key on disk, and the layouts certbot, acme.sh and
/// dehydrated leave for their hooks.
struct Material {
    cert: PathBuf,
    key: PathBuf,
    next: PathBuf,
    certbot_live: PathBuf,
    certbot_config: PathBuf,
    acme_dir: PathBuf,
    dehydrated_dir: PathBuf,
}

fn write_leaf(dir: &Path, name: &str, leaf: &Leaf) -> (PathBuf, PathBuf) {
    let cert = dir.join(format!("{name}.crt"));
    let key = dir.join(format!("{name}.key"));
    std::fs::write(&cert, leaf.fullchain_pem().unwrap()).unwrap();
    std::fs::write(&key, leaf.key.private_key_to_pem_pkcs8().unwrap()).unwrap();
    set_mode(&key, 0o600);
    (cert, key)
}

fn material(dir: &Path) -> Material {
    let ca = TestPki::new(KeyKind::EcdsaP256).unwrap();
    let files = dir.join("files");
    std::fs::create_dir_all(&files).unwrap();
    let leaf = ca.leaf(&[MX_HOST], KeyKind::EcdsaP256).unwrap();
    let (cert, key) = write_leaf(&files, "leaf", &leaf);
    let next_leaf = ca.leaf(&[MX_HOST], KeyKind::EcdsaP256).unwrap();
    let (_, next) = write_leaf(&files, "next", &next_leaf);

    // certbot: archive/NAME/{cert,chain,fullchain,privkey}1.pem, live/NAME/* links to them.
    let certbot_config = dir.join("letsencrypt");
    let archive = certbot_config.join("archive").join(MX_HOST);
    let certbot_live = certbot_config.join("live").join(MX_HOST);
    std::fs::create_dir_all(&archive).unwrap();
    std::fs::create_dir_all(&certbot_live).unwrap();
    let leaf2 = ca.leaf(&[MX_HOST], KeyKind::EcdsaP256).unwrap();
    std::fs::write(archive.join("cert1.pem"), leaf2.cert.to_pem().unwrap()).unwrap();
    std::fs::write(
        archive.join("chain1.pem"),
        leaf2
            .chain
            .iter()
            .flat_map(|c| c.to_pem().unwrap())
            .collect::<Vec<u8>>(),
    )
    .unwrap();
    std::fs::write(
        archive.join("fullchain1.pem"),
        leaf2.fullchain_pem().unwrap(),
    )
    .unwrap();
    std::fs::write(
        archive.join("privkey1.pem"),
        leaf2.key.private_key_to_pem_pkcs8().unwrap(),
    )
    .unwrap();
    for kind in ["cert", "chain", "fullchain", "privkey"] {
        std::os::unix::fs::symlink(
            format!("../../archive/{MX_HOST}/{kind}1.pem"),
            certbot_live.join(format!("{kind}.pem")),
        )
        .unwrap();
    }

    // acme.sh: ~/.acme.sh/DOMAIN_ecc/{DOMAIN.cer, DOMAIN.key, ca.cer, fullchain.cer, DOMAIN.key.next}
    let acme_dir = dir.join("acme.sh").join(format!("{MX_HOST}_ecc"));
    std::fs::create_dir_all(&acme_dir).unwrap();
    let leaf3 = ca.leaf(&[MX_HOST], KeyKind::EcdsaP256).unwrap();
    let (c3, k3) = write_leaf(&acme_dir, MX_HOST, &leaf3);
    std::fs::rename(c3, acme_dir.join("fullchain.cer")).unwrap();
    std::fs::rename(&k3, acme_dir.join(format!("{MX_HOST}.key"))).unwrap();
    std::fs::write(
        acme_dir.join(format!("{MX_HOST}.cer")),
        leaf3.cert.to_pem().unwrap(),
    )
    .unwrap();
    let next3 = dane_roll_lab::pki::new_key(KeyKind::EcdsaP256).unwrap();
    std::fs::write(
        acme_dir.join(format!("{MX_HOST}.key.next")),
        next3.private_key_to_pem_pkcs8().unwrap(),
    )
    .unwrap();

    // dehydrated: certs/DOMAIN/{privkey,cert,fullchain,chain}.pem and privkey.roll.pem
    let dehydrated_dir = dir.join("dehydrated").join("certs").join(MX_HOST);
    std::fs::create_dir_all(&dehydrated_dir).unwrap();
    let leaf4 = ca.leaf(&[MX_HOST], KeyKind::EcdsaP256).unwrap();
    let (c4, k4) = write_leaf(&dehydrated_dir, "x", &leaf4);
    std::fs::rename(c4, dehydrated_dir.join("fullchain.pem")).unwrap();
    std::fs::rename(k4, dehydrated_dir.join("privkey.pem")).unwrap();
    std::fs::write(
        dehydrated_dir.join("cert.pem"),
        leaf4.cert.to_pem().unwrap(),
    )
    .unwrap();
    std::fs::write(dehydrated_dir.join("chain.pem"), b"").unwrap();
    let roll = dane_roll_lab::pki::new_key(KeyKind::EcdsaP256).unwrap();
    std::fs::write(
        dehydrated_dir.join("privkey.roll.pem"),
        roll.private_key_to_pem_pkcs8().unwrap(),
    )
    .unwrap();

    Material {
        cert,
        key,
        next,
        certbot_live,
        certbot_config,
        acme_dir,
        dehydrated_dir,
    }
}

/// One `[[service]]`.
struct Svc<'a> {
    name: &'a str,
    host: &'a str,
    zone: &'a str,
    provider: &'a str,
    lineage: bool,
}

/// A configuration with `services`, `providers` (TOML text), telegram and webhook alerts to the
/// echo server, the resolver at `resolver`.
fn write_config(
    dir: &Path,
    name: &str,
    resolver: &str,
    services: &[Svc<'_>],
    providers: &str,
    alerts: &str,
) -> PathBuf {
    let postfix = dir.join("postfix");
    std::fs::create_dir_all(&postfix).unwrap();
    let mut text = format!(
        "version = 1\nstate-dir = \"{}\"\n\n[resolver]\naddress = \"{resolver}\"\ntimeout = \"2s\"\n\n",
        dir.join("state").display()
    );
    for s in services {
        text.push_str(&format!(
            "[[service]]\nname = \"{name}\"\n{lineage}domains = [\"{host}\"]\n\
             endpoints = [\"{host}:25/smtp\"]\nchain-file = \"{chain}\"\nreload = [\"true\"]\n\
             ttl = 2\nzone = \"{zone}\"\nprovider = \"{provider}\"\nkey-type = \"ec256\"\n\n",
            name = s.name,
            lineage = if s.lineage {
                format!("lineage = \"{}\"\n", s.host)
            } else {
                String::new()
            },
            host = s.host,
            chain = postfix.join(format!("{}.pem", s.name)).display(),
            zone = s.zone,
            provider = s.provider,
        ));
    }
    text.push_str(providers);
    text.push_str(alerts);
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Telegram (token in a file, API at the echo server) and a webhook whose URL carries a token.
fn alerts(j: &mut Judge, dir: &Path, echo: &EchoServer) -> String {
    let tg_token = format!("5550001:{}", unique("TgTokenSECRET"));
    let tg_file = dir.join("telegram.token");
    std::fs::write(&tg_file, format!("{tg_token}\n")).unwrap();
    set_mode(&tg_file, 0o600);
    j.secret("Telegram bot token", &tg_token);
    j.input(&tg_file);
    let hook_secret = unique("WebhookSECRET");
    let hook_file = dir.join("webhook.url");
    std::fs::write(
        &hook_file,
        format!("{}/hooks/T000/{hook_secret}\n", echo.url()),
    )
    .unwrap();
    set_mode(&hook_file, 0o600);
    j.secret("webhook URL token", &hook_secret);
    j.input(&hook_file);
    format!(
        "[alerts]\nrepeat-interval = \"1s\"\ntimeout = \"3s\"\n\n\
         [alerts.channel.tg]\nkind = \"telegram\"\ntoken-file = \"{}\"\nchat-id = \"@dane_roll_test\"\n\
         api-url = \"{}\"\n\n[alerts.channel.hook]\nkind = \"webhook\"\nurl-file = \"{}\"\n",
        tg_file.display(),
        echo.url(),
        hook_file.display()
    )
}

/// Every command, with `config` (services named in `services`, the first one `mx` with a
/// certbot lineage), whatever the outcome. `envs` carry the `-env` secrets.
fn every_command(
    j: &mut Judge,
    config: &Path,
    m: &Material,
    services: &[&str],
    envs: &[(&str, &str)],
) {
    let s = |p: &Path| p.to_str().unwrap().to_owned();
    let (cert, key, next) = (s(&m.cert), s(&m.key), s(&m.next));

    j.run(config, &["config", "check"], envs);
    j.run(
        config,
        &["tlsa", "--format", "json", "--host", MX_HOST, &cert],
        envs,
    );
    j.run(
        config,
        &["tlsa", "--format", "nsupdate", "--host", MX_HOST, &key],
        envs,
    );
    j.run(config, &["status"], envs);
    j.run(config, &["plan"], envs);
    for svc in services {
        j.run(
            config,
            &["publish", "--service", svc, "--timeout", "5", &key, &next],
            envs,
        );
        j.run(config, &["plan", svc], envs);
        j.run(
            config,
            &[
                "deploy",
                "--service",
                svc,
                "--cert",
                &cert,
                "--key",
                &key,
                "--next-key",
                &next,
                "--lock-wait",
                "2",
            ],
            envs,
        );
        j.run(config, &["run", svc, "--lock-wait", "2"], envs);
        j.run(config, &["run", svc, "--force", "--lock-wait", "2"], envs);
        j.run(config, &["status", svc, "--json", "--history"], envs);
        j.run(config, &["status", svc, "--live"], envs);
        j.run(config, &["next-key", svc], envs);
        j.run(config, &["prune", "--service", svc], envs);
    }
    j.run(config, &["run", "--lock-wait", "2"], envs);
    j.run(config, &["status", "--json"], envs);
    j.run(
        config,
        &["check", "--format", "json", "--timeout", "5", "--notify"],
        envs,
    );
    j.run(
        config,
        &["check", "--format", "nagios", "--timeout", "5"],
        envs,
    );
    j.run(
        config,
        &[
            "check",
            "--host",
            MX_HOST,
            "--format",
            "text",
            "--timeout",
            "5",
            "--notify",
            "--details",
        ],
        envs,
    );

    // The ACME clients' hooks, as each runs them.
    let live = s(&m.certbot_live);
    let mut certbot_env = envs.to_vec();
    certbot_env.extend([
        ("RENEWED_LINEAGE", live.as_str()),
        ("RENEWED_DOMAINS", MX_HOST),
    ]);
    j.run(config, &["hook", "certbot"], &certbot_env);
    j.run(
        config,
        &["hook", "certbot", "--service", services[0]],
        &certbot_env,
    );
    // A lineage no service is for: the failure is alerted (to the echo server).
    let mut unknown_env = envs.to_vec();
    unknown_env.extend([
        (
            "RENEWED_LINEAGE",
            "/etc/letsencrypt/live/unknown.example.test",
        ),
        ("RENEWED_DOMAINS", "unknown.example.test"),
    ]);
    let ran = j.run(config, &["hook", "certbot"], &unknown_env);
    assert_ne!(
        ran.code,
        Some(0),
        "an unknown lineage must fail: {}",
        ran.text()
    );

    let acme = |f: &str| s(&m.acme_dir.join(f));
    let (acme_cer, acme_key, acme_ca, acme_full, acme_next) = (
        acme(&format!("{MX_HOST}.cer")),
        acme(&format!("{MX_HOST}.key")),
        acme("ca.cer"),
        acme("fullchain.cer"),
        acme(&format!("{MX_HOST}.key.next")),
    );
    let mut acme_env = envs.to_vec();
    acme_env.extend([
        ("Le_Domain", MX_HOST),
        ("CERT_PATH", acme_cer.as_str()),
        ("CERT_KEY_PATH", acme_key.as_str()),
        ("CA_CERT_PATH", acme_ca.as_str()),
        ("CERT_FULLCHAIN_PATH", acme_full.as_str()),
        ("Le_ForceNewDomainKey", "1"),
        ("Le_Next_Domain_Key", acme_next.as_str()),
    ]);
    j.run(config, &["hook", "acme.sh"], &acme_env);

    let dh = |f: &str| s(&m.dehydrated_dir.join(f));
    let (dh_key, dh_cert, dh_full, dh_chain) = (
        dh("privkey.pem"),
        dh("cert.pem"),
        dh("fullchain.pem"),
        dh("chain.pem"),
    );
    j.run(
        config,
        &[
            "hook",
            "dehydrated",
            "deploy_cert",
            MX_HOST,
            &dh_key,
            &dh_cert,
            &dh_full,
            &dh_chain,
            "1700000000",
        ],
        envs,
    );
    j.run(
        config,
        &["hook", "dehydrated", "deploy_cert", MX_HOST],
        envs,
    );
    j.run(
        config,
        &["hook", "dehydrated", "deploy_challenge", MX_HOST, "t", "v"],
        envs,
    );

    // rotate: certbot is a stand-in that fails, so the lineage is put back.
    let certbot_dir = format!("--config-dir={}", s(&m.certbot_config));
    let certbot_arg = format!("--certbot-arg={certbot_dir}");
    j.run(
        config,
        &["rotate", services[0], "--certbot", "false", &certbot_arg],
        envs,
    );
    j.run(
        config,
        &["rotate", services[0], "--certbot", "true", &certbot_arg],
        envs,
    );

    // Killed while it waits (as a crash or a reboot would): the store's WAL may stay behind.
    let args = ["run", "--wait", "--lock-wait", "2"];
    killed(j, config, &args, envs, Duration::from_secs(3));
    let args = [
        "deploy",
        "--service",
        services[0],
        "--cert",
        &cert,
        "--key",
        &key,
        "--wait",
        "--lock-wait",
        "2",
    ];
    killed(j, config, &args, envs, Duration::from_secs(3));

    serve(j, config, envs);
}

/// Run `dane-roll -vv ARGS` and SIGKILL it (by its handle) after `after` if still running.
fn killed(j: &mut Judge, config: &Path, args: &[&str], envs: &[(&str, &str)], after: Duration) {
    let mut cmd = Command::new(BIN);
    cmd.arg("-c")
        .arg(config)
        .arg("-vv")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let ran = finish(cmd.spawn().unwrap(), after, false);
    let name = format!("`dane-roll -vv {}`", args.join(" "));
    j.check(&format!("the standard output of {name}"), &ran.stdout);
    j.check(&format!("the standard error of {name}"), &ran.stderr);
    // What the kill left (the WAL and its index among it) is scanned now: the next command
    // that opens the store checkpoints the WAL and removes it.
    let state = config.parent().unwrap().join("state");
    let left: Vec<String> = j
        .scan(&state, &[])
        .iter()
        .filter_map(|p| p.strip_prefix(&state).ok())
        .map(|p| p.display().to_string())
        .collect();
    j.ran.push(format!(
        "{name} → {} (state dir scanned after: {})",
        match ran.code {
            Some(code) => format!("exit {code}"),
            None => "killed".to_owned(),
        },
        left.join(", ")
    ));
}

/// `dane-roll serve` for a few seconds: at least one round of checks, one scrape of /metrics.
fn serve(j: &mut Judge, config: &Path, envs: &[(&str, &str)]) {
    let port = closed_port();
    let listen = format!("127.0.0.1:{port}");
    let mut cmd = Command::new(BIN);
    cmd.arg("-c")
        .arg(config)
        .args([
            "-vv",
            "serve",
            "--listen",
            &listen,
            "--interval",
            "1",
            "--timeout",
            "5",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let child = cmd.spawn().unwrap();
    let t0 = Instant::now();
    let mut metrics = Vec::new();
    while t0.elapsed() < Duration::from_secs(15) {
        if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
            let _ = write!(
                stream,
                "GET /metrics HTTP/1.1\r\nHost: {listen}\r\nConnection: close\r\n\r\n"
            );
            metrics.clear();
            let _ = stream.read_to_end(&mut metrics);
            if t0.elapsed() > Duration::from_secs(6) {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    // The store while serve has it open (its WAL among the files), then serve killed as a
    // crash would (SIGKILL, by its handle): what it leaves is scanned at the end too.
    let state = config.parent().unwrap().join("state");
    let open = j.scan(&state, &[]);
    j.ran.push(format!(
        "state dir scanned while `serve` runs: {}",
        open.iter()
            .filter_map(|p| p.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(", ")
    ));
    let ran = finish(child, Duration::ZERO, false);
    j.check("the /metrics page of `dane-roll serve`", &metrics);
    j.check("the standard output of `dane-roll -vv serve`", &ran.stdout);
    j.check("the standard error of `dane-roll -vv serve`", &ran.stderr);
    j.ran.push(format!(
        "`dane-roll -vv serve` ({} bytes of metrics)",
        metrics.len()
    ));
}

/// Say what was judged; require that the store was among the files.
fn summary(j: &Judge, dir: &Path, scanned: &[PathBuf]) {
    let state: Vec<String> = scanned
        .iter()
        .filter_map(|p| p.strip_prefix(dir.join("state")).ok())
        .map(|p| p.display().to_string())
        .collect();
    eprintln!(
        "secrets: {} secrets, {} command runs ({} JSON outputs), {} files scanned (state dir: \
         {}; a WAL among them during the run: {}), no leak",
        j.secrets.len(),
        j.ran.len(),
        j.json_outputs,
        scanned.len(),
        state.join(", "),
        if j.wal_scanned.get() { "yes" } else { "no" }
    );
    assert!(
        state.iter().any(|p| p == "state.db"),
        "the state database was not scanned: {state:?}"
    );
    for r in &j.ran {
        eprintln!("  {r}");
    }
}

#[test]
fn no_secret_leaks_against_fakes() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let echo = EchoServer::start();
    let mut j = Judge::new();
    let m = material(dir);

    // The TSIG key: in a file, and in the environment, for a server where nothing listens.
    let tsig = tsig_secret();
    let tsig_file = dir.join("tsig.key");
    tsig_key_file(&tsig_file, "dane-roll-key", &tsig);
    j.secret("TSIG secret (tsig-key-file)", &tsig);
    j.input(&tsig_file);
    let tsig_env_secret = tsig_secret();
    let tsig_env = format!("hmac-sha256:dane-roll-env-key:{tsig_env_secret}");
    j.secret("TSIG secret (tsig-env)", &tsig_env_secret);
    // PowerDNS keys, sent to the echo server: in a file and in the environment.
    let pdns_key = unique("PdnsApiKeySECRET");
    let pdns_file = dir.join("pdns.key");
    std::fs::write(&pdns_file, format!("{pdns_key}\n")).unwrap();
    set_mode(&pdns_file, 0o600);
    j.secret("PowerDNS API key (api-key-file)", &pdns_key);
    j.input(&pdns_file);
    let pdns_env_key = unique("PdnsEnvKeySECRET");
    j.secret("PowerDNS API key (api-key-env)", &pdns_env_key);

    let closed = closed_port();
    let providers = format!(
        "[provider.echo]\nkind = \"powerdns\"\nurl = \"{url}\"\napi-key-file = \"{pdns}\"\n\n\
         [provider.echoenv]\nkind = \"powerdns\"\nurl = \"{url}/api/v1\"\napi-key-env = \"{PDNS_ENV}\"\n\n\
         [provider.tsig]\nkind = \"rfc2136\"\nserver = \"127.0.0.1:{closed}\"\ntsig-key-file = \"{tsig}\"\n\n\
         [provider.tsigenv]\nkind = \"rfc2136\"\nserver = \"127.0.0.1:{closed}\"\ntsig-env = \"{TSIG_ENV}\"\n\n",
        url = echo.url(),
        pdns = pdns_file.display(),
        tsig = tsig_file.display(),
    );
    let alerts = alerts(&mut j, dir, &echo);
    let services = [
        Svc {
            name: "mx",
            host: MX_HOST,
            zone: "example.test",
            provider: "echo",
            lineage: true,
        },
        Svc {
            name: "mx-env",
            host: "mx-env.example.test",
            zone: "example.test",
            provider: "echoenv",
            lineage: false,
        },
        Svc {
            name: "mx-tsig",
            host: "mx-tsig.example.test",
            zone: "example.test",
            provider: "tsig",
            lineage: false,
        },
        Svc {
            name: "mx-tsigenv",
            host: "mx-tsigenv.example.test",
            zone: "example.test",
            provider: "tsigenv",
            lineage: false,
        },
    ];
    // A resolver where nothing listens: every lookup fails fast.
    let resolver = format!("127.0.0.1:{}", closed_port());
    let config = write_config(
        dir,
        "dane-roll.toml",
        &resolver,
        &services,
        &providers,
        &alerts,
    );
    let envs = [
        (TSIG_ENV, tsig_env.as_str()),
        (PDNS_ENV, pdns_env_key.as_str()),
    ];

    // The secret is really used: the echo server is asked, with the key.
    let ran = j.run(
        &config,
        &["publish", "--service", "mx", "--timeout", "5", &s(&m.key)],
        &envs,
    );
    assert_eq!(
        ran.code,
        Some(2),
        "an API error is a failure: {}",
        ran.text()
    );
    assert!(
        echo.hits.load(Ordering::Relaxed) > 0,
        "the echo server was never asked"
    );
    assert!(
        String::from_utf8_lossy(&ran.stderr).contains("HTTP 4"),
        "the error names the status: {}",
        ran.text()
    );

    every_command(
        &mut j,
        &config,
        &m,
        &["mx", "mx-env", "mx-tsig", "mx-tsigenv"],
        &envs,
    );
    assert!(
        echo.hits.load(Ordering::Relaxed) > 5,
        "the alerts and the API calls reached the echo server"
    );
    let state = dir.join("state");
    assert!(state.join("state.db").exists(), "the store was written");
    let scanned = j.scan(dir, &[]);
    summary(&j, dir, &scanned);
}

fn s(p: &Path) -> String {
    p.to_str().unwrap().to_owned()
}

#[test]
fn no_secret_leaks_on_the_lab() {
    if !require_all(&[BIND_TOOLS, KNOT_TOOLS, UNBOUND_TOOLS, PDNS_TOOLS]) {
        return;
    }
    let lab = DnsLab::builder()
        .pdns(true)
        .start()
        .expect("the lab starts");
    let pdns = lab.pdns().expect("PowerDNS runs");
    let created = pdns.create_zone(PDNS_ZONE, false).unwrap();
    assert_eq!(created.status, 201, "{}", created.body);
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let echo = EchoServer::start();
    let mut j = Judge::new();
    let m = material(dir);

    // The lab's own TSIG key (BIND accepts updates signed with it), copied for the config.
    let tsig_file = dir.join("tsig.key");
    std::fs::copy(&lab.tsig().file, &tsig_file).unwrap();
    j.secret("lab TSIG secret", &lab.tsig().secret);
    j.input(&tsig_file);
    let pdns_file = dir.join("pdns.key");
    std::fs::write(&pdns_file, pdns.api_key()).unwrap();
    set_mode(&pdns_file, 0o600);
    j.secret("lab PowerDNS API key", pdns.api_key());
    j.input(&pdns_file);
    let echo_key = unique("EchoApiKeySECRET");
    let echo_file = dir.join("echo.key");
    std::fs::write(&echo_file, &echo_key).unwrap();
    set_mode(&echo_file, 0o600);
    j.secret("echoed API key", &echo_key);
    j.input(&echo_file);
    // Wrong keys: the right TSIG key name with another secret (BADSIG), another PowerDNS key (401).
    let wrong_tsig = tsig_secret();
    let wrong_tsig_file = dir.join("wrong-tsig.key");
    tsig_key_file(&wrong_tsig_file, &lab.tsig().name, &wrong_tsig);
    j.secret("wrong TSIG secret", &wrong_tsig);
    j.input(&wrong_tsig_file);
    let wrong_pdns = unique("WrongPdnsKeySECRET");
    j.secret("wrong PowerDNS API key", &wrong_pdns);

    let alerts = alerts(&mut j, dir, &echo);
    let bind = format!("{}:53", lab.addr(Server::Bind));
    let pdns_host = format!("mail.{PDNS_ZONE}");
    let fake_host = "mx-fake.example.test".to_owned();
    let services = [
        Svc {
            name: "mx",
            host: MX_HOST,
            zone: lab.zone(),
            provider: "bind",
            lineage: true,
        },
        Svc {
            name: "mx-pdns",
            host: &pdns_host,
            zone: PDNS_ZONE,
            provider: "pdns",
            lineage: false,
        },
        Svc {
            name: "mx-echo",
            host: &fake_host,
            zone: lab.zone(),
            provider: "echo",
            lineage: false,
        },
    ];
    let providers = |tsig: &Path, pdns_key: &str| {
        format!(
            "[provider.bind]\nkind = \"rfc2136\"\nserver = \"{bind}\"\ntsig-key-file = \"{tsig}\"\n\n\
             [provider.pdns]\nkind = \"powerdns\"\nurl = \"{pdns_url}\"\n{pdns_key}\n\n\
             [provider.echo]\nkind = \"powerdns\"\nurl = \"{echo}\"\napi-key-file = \"{echo_file}\"\n\n",
            tsig = tsig.display(),
            pdns_url = pdns.api_url(),
            echo = echo.url(),
            echo_file = echo_file.display(),
        )
    };
    let resolver = lab.resolver_addr().to_string();
    let good = write_config(
        dir,
        "dane-roll.toml",
        &resolver,
        &services,
        &providers(
            &tsig_file,
            &format!("api-key-file = \"{}\"", pdns_file.display()),
        ),
        &alerts,
    );
    let wrong = write_config(
        dir,
        "dane-roll-wrong.toml",
        &resolver,
        &services,
        &providers(&wrong_tsig_file, &format!("api-key-env = \"{PDNS_ENV}\"")),
        &alerts,
    );
    let wrong_env = [(PDNS_ENV, wrong_pdns.as_str())];

    // The secrets are really used: records reach BIND (signed with the TSIG key) and PowerDNS.
    let ran = j.run(
        &good,
        &["publish", "--service", "mx", "--timeout", "10", &s(&m.key)],
        &[],
    );
    assert_eq!(
        ran.code,
        Some(0),
        "publish with the lab's TSIG key: {}",
        ran.text()
    );
    let ran = j.run(
        &good,
        &[
            "publish",
            "--service",
            "mx-pdns",
            "--timeout",
            "10",
            &s(&m.key),
        ],
        &[],
    );
    assert_eq!(
        ran.code,
        Some(0),
        "publish with the PowerDNS key: {}",
        ran.text()
    );
    let answer = lab
        .query(pdns.addr(), &format!("_25._tcp.{pdns_host}."), "TLSA")
        .unwrap();
    assert!(
        !answer.records("TLSA").is_empty(),
        "PowerDNS has the record: {answer:?}"
    );
    // And the wrong ones are refused, by name.
    let ran = j.run(
        &wrong,
        &["publish", "--service", "mx", "--timeout", "10", &s(&m.next)],
        &wrong_env,
    );
    assert_eq!(ran.code, Some(2), "a wrong TSIG key fails: {}", ran.text());
    let ran = j.run(
        &wrong,
        &[
            "publish",
            "--service",
            "mx-pdns",
            "--timeout",
            "10",
            &s(&m.next),
        ],
        &wrong_env,
    );
    assert_eq!(
        ran.code,
        Some(2),
        "a wrong PowerDNS key fails: {}",
        ran.text()
    );
    assert!(
        String::from_utf8_lossy(&ran.stderr).contains("401"),
        "{}",
        ran.text()
    );

    every_command(&mut j, &good, &m, &["mx", "mx-pdns", "mx-echo"], &[]);
    every_command(&mut j, &wrong, &m, &["mx", "mx-pdns"], &wrong_env);

    let lab_dir: PathBuf = lab.dir().to_path_buf();
    let scanned = j.scan(dir, &[lab_dir.as_path()]);
    summary(&j, dir, &scanned);
}

/// The environment a child wrote with `env` into `path`: (name, value) pairs.
fn env_dump(path: &Path) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| {
        panic!(
            "{} was not written (the child never ran?): {e}",
            path.display()
        )
    });
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// Issue 14 ("Secrets"): the children dane-roll starts as root (the reload command, the exec
/// provider, sendmail) never get the variables that hold the configuration's secrets, by value
/// or by name; the exec provider gets only what docs/CONFIG.md says it receives.
#[test]
fn no_secret_reaches_a_child() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let echo = EchoServer::start();
    let mut j = Judge::new();
    let ca = TestPki::new(KeyKind::EcdsaP256).unwrap();
    let leaf = ca.leaf(&[MX_HOST], KeyKind::EcdsaP256).unwrap();
    let (cert, key) = write_leaf(dir, "leaf", &leaf);
    let next = dane_roll_lab::pki::new_key(KeyKind::EcdsaP256).unwrap();
    let next_key = dir.join("next.key");
    std::fs::write(&next_key, next.private_key_to_pem_pkcs8().unwrap()).unwrap();
    set_mode(&next_key, 0o600);
    // The installed chain file holds the same key: the deploy is a renewal, so dane-roll
    // installs and reloads at once (no DNS wait), and publishes the next key through exec.
    let chain = dir.join("chain.pem");
    let mut pem = leaf.key.private_key_to_pem_pkcs8().unwrap();
    pem.extend(leaf.fullchain_pem().unwrap());
    std::fs::write(&chain, pem).unwrap();
    set_mode(&chain, 0o600);

    // Secrets, each in its own variable, as `*-env` keys name them.
    let mut vars: Vec<(&str, String, &str)> = vec![
        (
            "DANE_ROLL_CHILD_TSIG",
            format!("hmac-sha256:k:{}", tsig_secret()),
            "tsig-env",
        ),
        (
            "DANE_ROLL_CHILD_PDNS",
            unique("ChildPdnsSECRET"),
            "api-key-env",
        ),
        (
            "DANE_ROLL_CHILD_TG",
            format!("5550001:{}", unique("ChildTgSECRET")),
            "token-env",
        ),
    ];
    for (name, value, key) in &vars {
        j.secret(&format!("{key} {name}"), value);
    }
    // The webhook URL: its origin is no secret (it is shown), the token after it is.
    let hook_token = unique("ChildHookSECRET");
    j.secret("url-env DANE_ROLL_CHILD_HOOK (its token)", &hook_token);
    vars.push((
        "DANE_ROLL_CHILD_HOOK",
        format!("{}/hooks/{hook_token}", echo.url()),
        "url-env",
    ));
    let dump = |what: &str| dir.join(format!("{what}.env"));
    let script = |what: &str, body: &str| {
        let path = dir.join(format!("{what}.sh"));
        std::fs::write(
            &path,
            format!("#!/bin/sh\nenv > {}\n{body}\n", dump(what).display()),
        )
        .unwrap();
        set_mode(&path, 0o755);
        path
    };
    let records = dir.join("records");
    let exec = script(
        "exec",
        &format!(
            "case \"$1\" in list) cat {r} 2>/dev/null ;; add) echo \"$4\" >> {r} ;; esac\nexit 0",
            r = records.display()
        ),
    );
    let reload = script("reload", "exit 0");
    let sendmail = script(
        "sendmail",
        &format!("cat > {}\nexit 0", dir.join("mail").display()),
    );
    let config = dir.join("dane-roll.toml");
    std::fs::write(
        &config,
        format!(
            "version = 1\nstate-dir = \"{state}\"\n\n[resolver]\naddress = \"127.0.0.1:{closed}\"\n\
             timeout = \"1s\"\n\n\
             [[service]]\nname = \"mx\"\ndomains = [\"{MX_HOST}\"]\nendpoints = [\"{MX_HOST}:25/smtp\"]\n\
             chain-file = \"{chain}\"\nreload = [\"{reload}\"]\nttl = 2\nzone = \"example.test\"\n\
             provider = \"ex\"\nkey-type = \"ec256\"\n\n\
             [provider.ex]\nkind = \"exec\"\ncommand = [\"{exec}\"]\n\n\
             [provider.pdns]\nkind = \"powerdns\"\nurl = \"{echo}\"\napi-key-env = \"{pdns}\"\n\n\
             [provider.tsig]\nkind = \"rfc2136\"\nserver = \"127.0.0.1:{closed}\"\ntsig-env = \"{tsig}\"\n\n\
             [alerts]\ntimeout = \"3s\"\n\n\
             [alerts.channel.mail]\nkind = \"email\"\nto = \"postmaster@example.test\"\n\
             from = \"dane-roll@example.test\"\nsendmail = \"{sendmail}\"\n\n\
             [alerts.channel.tg]\nkind = \"telegram\"\ntoken-env = \"{tg}\"\nchat-id = \"@x\"\n\
             api-url = \"{echo}\"\n\n\
             [alerts.channel.hook]\nkind = \"webhook\"\nurl-env = \"{hook}\"\n",
            state = dir.join("state").display(),
            closed = closed_port(),
            chain = chain.display(),
            reload = reload.display(),
            exec = exec.display(),
            echo = echo.url(),
            sendmail = sendmail.display(),
            tsig = vars[0].0,
            pdns = vars[1].0,
            tg = vars[2].0,
            hook = vars[3].0,
        ),
    )
    .unwrap();
    let mut envs: Vec<(&str, &str)> = vars.iter().map(|(n, v, _)| (*n, v.as_str())).collect();
    envs.push(("DANE_ROLL_CHILD_PLAIN", "not-a-secret"));

    let ran = j.run(
        &config,
        &[
            "deploy",
            "--service",
            "mx",
            "--cert",
            &s(&cert),
            "--key",
            &s(&key),
            "--next-key",
            &s(&next_key),
            "--lock-wait",
            "2",
        ],
        &envs,
    );
    j.run(
        &config,
        &["check", "--host", MX_HOST, "--timeout", "3", "--notify"],
        &envs,
    );
    let _ = ran;

    let children = [
        ("the reload command", dump("reload")),
        ("the exec provider", dump("exec")),
        ("sendmail", dump("sendmail")),
    ];
    for (what, path) in &children {
        let env = env_dump(path);
        let text = std::fs::read(path).unwrap();
        j.check(&format!("the environment of {what}"), &text);
        for (name, _, key) in &vars {
            assert!(
                env.iter().all(|(k, _)| k != name),
                "{what} got the variable {name} ({key} of the configuration)"
            );
        }
    }
    // The reload command and sendmail keep the rest of the environment; the exec provider
    // gets only what docs/CONFIG.md lists.
    assert!(
        env_dump(&dump("reload"))
            .iter()
            .any(|(k, _)| k == "DANE_ROLL_CHILD_PLAIN")
    );
    let exec_env = env_dump(&dump("exec"));
    let allowed = [
        "PATH",
        "HOME",
        "LANG",
        "LC_ALL",
        "LC_CTYPE",
        "TZ",
        "TMPDIR",
        "DANE_ROLL_ACTION",
        "DANE_ROLL_OWNER",
        "DANE_ROLL_TTL",
        "DANE_ROLL_RDATA",
        "PWD",
        "SHLVL",
        "_",
        "OLDPWD",
    ];
    for (k, _) in &exec_env {
        assert!(
            allowed.contains(&k.as_str()),
            "the exec provider got {k}: {exec_env:?}"
        );
    }
    assert!(
        exec_env
            .iter()
            .any(|(k, v)| k == "DANE_ROLL_ACTION" && !v.is_empty())
    );
    // sendmail got the mail itself on its standard input.
    let mail = std::fs::read_to_string(dir.join("mail")).unwrap_or_default();
    assert!(mail.contains("Auto-Submitted: auto-generated"), "{mail}");
}

/// Issue 14: a webhook URL with basic auth (`http://user:password@host/…`) is sent as an
/// `Authorization: Basic …` header; a receiver that echoes the request back in its error must
/// not get the password, or its base64 form, into dane-roll's messages.
#[test]
fn a_webhook_password_echoed_back_is_masked() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let echo = EchoServer::start();
    let mut j = Judge::new();
    let password = unique("HookPasswordSECRET");
    let basic = openssl::base64::encode_block(format!("alice:{password}").as_bytes());
    j.secret("webhook password", &password);
    j.secret("webhook basic-auth header value", &basic);
    let url = echo
        .url()
        .replace("http://", &format!("http://alice:{password}@"));
    let hook_file = dir.join("webhook.url");
    std::fs::write(&hook_file, format!("{url}/hook\n")).unwrap();
    set_mode(&hook_file, 0o600);
    j.input(&hook_file);
    let config = dir.join("dane-roll.toml");
    std::fs::write(
        &config,
        format!(
            "version = 1\nstate-dir = \"{state}\"\n\n[resolver]\naddress = \"127.0.0.1:{closed}\"\n\
             timeout = \"1s\"\n\n[alerts]\ntimeout = \"3s\"\n\n\
             [alerts.channel.hook]\nkind = \"webhook\"\nurl-file = \"{hook}\"\n",
            state = dir.join("state").display(),
            closed = closed_port(),
            hook = hook_file.display(),
        ),
    )
    .unwrap();
    let ran = j.run(
        &config,
        &["check", "--host", MX_HOST, "--timeout", "2", "--notify"],
        &[],
    );
    assert!(
        echo.hits.load(Ordering::Relaxed) > 0,
        "the webhook was never called: {}",
        ran.text()
    );
    assert!(
        String::from_utf8_lossy(&ran.stderr).contains("HTTP 4"),
        "the refusal is reported: {}",
        ran.text()
    );
}
