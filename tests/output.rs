//! What dane-roll prints (issues 13 and 14): a closed standard output or error ends a command
//! quietly (never exit 101, never a panic message), and text from input (a service name, an
//! ACME client's variables) cannot forge a line of dane-roll's output.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_dane-roll");

/// Which of dane-roll's output streams the reader has closed before it writes.
#[derive(Clone, Copy, Debug)]
enum Closed {
    Stdout,
    Stderr,
}

/// Run `dane-roll ARGS` with one of its output streams a pipe whose reader is gone (as in
/// `dane-roll … | head -c0`); the exit code and the other stream.
fn with_closed(closed: Closed, args: &[&str]) -> (Option<i32>, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let (gone, mut other): (Box<dyn Read>, Box<dyn Read>) = match closed {
        Closed::Stdout => (
            Box::new(child.stdout.take().unwrap()),
            Box::new(child.stderr.take().unwrap()),
        ),
        Closed::Stderr => (
            Box::new(child.stderr.take().unwrap()),
            Box::new(child.stdout.take().unwrap()),
        ),
    };
    drop(gone);
    let mut text = String::new();
    other.read_to_string(&mut text).unwrap();
    let status = child.wait().unwrap();
    (status.code(), text)
}

/// A configuration with one service (manual provider) and an empty state directory.
fn config(dir: &Path, service: &str) -> std::path::PathBuf {
    let path = dir.join("dane-roll.toml");
    std::fs::write(
        &path,
        format!(
            "version = 1\nstate-dir = \"{state}\"\n\n[resolver]\naddress = \"127.0.0.1:9\"\ntimeout = \"1s\"\n\n\
             [[service]]\nname = \"{service}\"\ndomains = [\"mx.example.test\"]\n\
             endpoints = [\"mx.example.test:25/smtp\"]\nchain-file = \"{chain}\"\n\
             zone = \"example.test\"\nprovider = \"hand\"\n\n[provider.hand]\nkind = \"manual\"\n",
            state = dir.join("state").display(),
            chain = dir.join("chain.pem").display(),
        ),
    )
    .unwrap();
    path
}

#[test]
fn a_closed_output_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    let pki = dane_roll_lab::pki::TestPki::new(dane_roll_lab::pki::KeyKind::EcdsaP256).unwrap();
    let leaf = pki
        .leaf(&["mx.example.test"], dane_roll_lab::pki::KeyKind::EcdsaP256)
        .unwrap();
    let cert = dir.path().join("cert.pem");
    std::fs::write(&cert, leaf.cert.to_pem().unwrap()).unwrap();
    let cert = cert.to_str().unwrap().to_owned();
    let config = config(dir.path(), "mx");
    let config = config.to_str().unwrap().to_owned();
    let cases: Vec<(Closed, Vec<&str>)> = vec![
        (Closed::Stdout, vec!["tlsa", &cert]),
        (Closed::Stdout, vec!["tlsa", "--format", "json", &cert]),
        (Closed::Stdout, vec!["-c", &config, "status", "--history"]),
        (
            Closed::Stdout,
            vec!["-c", &config, "status", "mx", "--history"],
        ),
        (Closed::Stdout, vec!["-c", &config, "plan"]),
        (Closed::Stdout, vec!["-c", &config, "config", "check"]),
        (Closed::Stdout, vec!["--help"]),
        (Closed::Stderr, vec!["tlsa", "/nonexistent/cert.pem"]),
        (Closed::Stderr, vec!["-c", "/nonexistent.toml", "status"]),
    ];
    for (closed, args) in cases {
        let (code, other) = with_closed(closed, &args);
        assert_ne!(
            code,
            Some(101),
            "`dane-roll {}` with its {closed:?} closed panicked: {other}",
            args.join(" ")
        );
        assert!(
            !other.contains("panicked"),
            "`dane-roll {}`: {other}",
            args.join(" ")
        );
    }
}

/// Run `dane-roll ARGS` with `envs`; its standard output and error.
fn run(args: &[&str], envs: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(args).stdin(Stdio::null());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// What an attacker would like to see in a log as a line of its own.
const FORGED: &str = "\nFAKE LINE: dane-roll: rollover done\r\u{1b}[2K";

/// Panic if `text` holds a line dane-roll did not write: one starting with the forged text, or
/// a raw carriage return or escape.
fn assert_unforged(what: &str, text: &str) {
    for line in text.lines() {
        assert!(
            !line.starts_with("FAKE LINE"),
            "{what}: a forged line reached the output:\n{text}"
        );
    }
    assert!(
        !text.contains('\r') && !text.contains('\u{1b}'),
        "{what}: a control character reached the output: {text:?}"
    );
}

/// What is run: a description, the arguments, the environment.
type Case = (String, Vec<String>, Vec<(&'static str, String)>);

#[test]
fn input_cannot_forge_a_line() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), "mx");
    let config = config.to_str().unwrap().to_owned();
    let name = format!("mx{FORGED}");
    let lineage = format!("/etc/letsencrypt/live/mx.example.test{FORGED}");
    let mut cases: Vec<Case> = Vec::new();
    let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    for cmd in ["status", "plan", "run", "next-key"] {
        cases.push((
            format!("{cmd} NAME"),
            args(&["-c", &config, cmd, &name]),
            vec![],
        ));
    }
    cases.push((
        "hook certbot with RENEWED_LINEAGE".into(),
        args(&["-c", &config, "hook", "certbot"]),
        vec![
            ("RENEWED_LINEAGE", lineage.clone()),
            ("RENEWED_DOMAINS", format!("x.example.test{FORGED}")),
        ],
    ));
    cases.push((
        "hook certbot --service NAME".into(),
        args(&["-c", &config, "hook", "certbot", "--service", &name]),
        vec![
            ("RENEWED_LINEAGE", lineage.clone()),
            ("RENEWED_DOMAINS", "mx.example.test".into()),
        ],
    ));
    // A configuration whose service name holds a line feed (a TOML escape).
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        std::fs::read_to_string(&config).unwrap().replace(
            "name = \"mx\"",
            "name = \"mx\\nFAKE LINE: ok\\r\\u001b[2K\"",
        ),
    )
    .unwrap();
    let bad = bad.to_str().unwrap().to_owned();
    cases.push((
        "a service name with a line feed".into(),
        args(&["-c", &bad, "status"]),
        vec![],
    ));
    cases.push((
        "config check of it".into(),
        args(&["-c", &bad, "config", "check"]),
        vec![],
    ));
    for (what, args, envs) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let envs: Vec<(&str, &str)> = envs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (code, stdout, stderr) = run(&args, &envs);
        assert_ne!(code, Some(0), "{what}: {stdout}{stderr}");
        assert_ne!(code, Some(101), "{what}: {stderr}");
        assert_unforged(&format!("{what} (stdout)"), &stdout);
        assert_unforged(&format!("{what} (stderr)"), &stderr);
        // The input is still shown, escaped: the operator can see what was passed.
        assert!(
            stderr.contains("FAKE LINE") || stdout.contains("FAKE LINE"),
            "{what}: the input is not named at all:\n{stdout}{stderr}"
        );
    }
}

/// Text that is Rust's `Debug` formatting, never meant for a user: `Unknown("…")`,
/// `Outcome { … }`, `Some(…)`, a `Duration` to the nanosecond.
fn debug_formatting(text: &str) -> Option<String> {
    for word in text.split(|c: char| c.is_whitespace() || c == ':' || c == ',') {
        let name_end = word.find(['(', '{']).unwrap_or(word.len());
        let name = &word[..name_end];
        let rest = &word[name_end..];
        let camel = name.len() > 1
            && name.starts_with(|c: char| c.is_ascii_uppercase())
            && name.chars().skip(1).any(|c| c.is_ascii_lowercase())
            && name.chars().all(|c| c.is_ascii_alphanumeric());
        if camel && (rest.starts_with("(\"") || rest.starts_with("(Some") || rest == "{") {
            return Some(word.to_owned());
        }
    }
    for line in text.lines() {
        if let Some(i) = line.find(" {") {
            let before = line[..i].rsplit(' ').next().unwrap_or("");
            if before == "Outcome" || before == "ChannelFailure" {
                return Some(line.to_owned());
            }
        }
        // 2.000153487s: a Duration's Debug form.
        let digits = line.split(|c: char| !(c.is_ascii_digit() || c == '.' || c == 's'));
        for d in digits {
            if let Some(frac) = d.strip_suffix('s').and_then(|d| d.split_once('.'))
                && frac.1.len() >= 4
                && frac.1.chars().all(|c| c.is_ascii_digit())
            {
                return Some(line.to_owned());
            }
        }
    }
    None
}

#[test]
fn no_debug_formatting_reaches_the_user() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), "mx");
    let pki = dane_roll_lab::pki::TestPki::new(dane_roll_lab::pki::KeyKind::EcdsaP256).unwrap();
    let leaf = pki
        .leaf(&["mx.example.test"], dane_roll_lab::pki::KeyKind::EcdsaP256)
        .unwrap();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, leaf.fullchain_pem().unwrap()).unwrap();
    std::fs::write(&key, leaf.key.private_key_to_pem_pkcs8().unwrap()).unwrap();
    // The chain file holds the same key: a renewal, installed and probed at once; nothing
    // listens, so the probe's verdict is "not known" and is reported.
    let mut chain = leaf.key.private_key_to_pem_pkcs8().unwrap();
    chain.extend(leaf.fullchain_pem().unwrap());
    std::fs::write(dir.path().join("chain.pem"), chain).unwrap();
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("zone = ", "reload = [\"true\"]\nzone = ");
    std::fs::write(&config, text).unwrap();
    let (c, k, f) = (
        config.to_str().unwrap(),
        key.to_str().unwrap(),
        cert.to_str().unwrap(),
    );
    for args in [
        vec![
            "-c",
            c,
            "deploy",
            "--service",
            "mx",
            "--cert",
            f,
            "--key",
            k,
        ],
        vec!["-c", c, "status", "mx", "--history"],
        vec!["-c", c, "status", "mx", "--json"],
        vec!["-c", c, "status", "--live"],
    ] {
        let (_, stdout, stderr) = run(&args, &[]);
        for (stream, text) in [("stdout", &stdout), ("stderr", &stderr)] {
            assert!(
                debug_formatting(text).is_none(),
                "`dane-roll {}` ({stream}) shows Debug formatting {:?}:\n{text}",
                args[2..].join(" "),
                debug_formatting(text)
            );
        }
    }
}

/// A full file system under the chain file: the install says "no space left on device (FILE)",
/// not "check that the directory exists and is writable".
#[test]
fn a_full_disk_is_named_with_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let small = dir.path().join("small");
    std::fs::create_dir(&small).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
        .arg(&small)
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("skipped: cannot mount a tmpfs here (needs root)");
        return;
    }
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(self.0).status();
        }
    }
    let _unmount = Unmount(&small);
    let config = config(dir.path(), "mx");
    let pki = dane_roll_lab::pki::TestPki::new(dane_roll_lab::pki::KeyKind::EcdsaP256).unwrap();
    let leaf = pki
        .leaf(&["mx.example.test"], dane_roll_lab::pki::KeyKind::EcdsaP256)
        .unwrap();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, leaf.fullchain_pem().unwrap()).unwrap();
    std::fs::write(&key, leaf.key.private_key_to_pem_pkcs8().unwrap()).unwrap();
    // The installed chain (same key: a renewal installs at once) on the small file system,
    // which is then filled up.
    let chain = small.join("chain.pem");
    let mut pem = leaf.key.private_key_to_pem_pkcs8().unwrap();
    pem.extend(leaf.fullchain_pem().unwrap());
    std::fs::write(&chain, pem).unwrap();
    let _ = Command::new("dd")
        .args(["if=/dev/zero", "bs=4k", "count=100"])
        .arg(format!("of={}", small.join("fill").display()))
        .stderr(Stdio::null())
        .status();
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace(
            &dir.path().join("chain.pem").display().to_string(),
            &chain.display().to_string(),
        )
        .replace("zone = ", "reload = [\"true\"]\nzone = ");
    std::fs::write(&config, text).unwrap();
    let (code, stdout, stderr) = run(
        &[
            "-c",
            config.to_str().unwrap(),
            "deploy",
            "--service",
            "mx",
            "--cert",
            cert.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(code, Some(2), "{stdout}{stderr}");
    let expected = format!("no space left on device ({})", chain.display());
    assert!(stderr.contains(&expected), "wanted {expected:?}:\n{stderr}");
}
