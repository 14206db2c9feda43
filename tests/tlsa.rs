//! `dane-roll tlsa` against real tools (issue 2): keys and chains made by the `openssl` CLI at
//! test time, every record compared with the OpenSSL pipeline and with `ldns-dane -c … create`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_dane-roll");
const HOST: &str = "mail.example.test";

/// Run a tool, feeding `stdin`; panic with its stderr if it fails.
fn tool(program: &str, args: &[&str], stdin: Option<&[u8]>) -> Vec<u8> {
    use std::io::Write;
    let mut child = Command::new(program)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin piped");
        pipe.write_all(input).expect("write stdin");
    }
    let out = child.wait_with_output().expect("wait");
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn openssl(args: &[&str]) -> Vec<u8> {
    tool("openssl", args, None)
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

/// Run dane-roll with stdin closed.
fn dane_roll(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run dane-roll")
}

/// Run `dane-roll tlsa ARGS`, require exit 0, return stdout and stderr.
fn tlsa_ok(args: &[&str]) -> (String, String) {
    let mut all = vec!["tlsa"];
    all.extend_from_slice(args);
    let out = dane_roll(&all);
    let stdout = String::from_utf8(out.stdout).expect("utf-8 stdout");
    let stderr = String::from_utf8(out.stderr).expect("utf-8 stderr");
    assert_eq!(out.status.code(), Some(0), "tlsa {args:?}: {stderr}");
    (stdout, stderr)
}

/// Run `dane-roll tlsa ARGS`, require exit 2 and no output on stdout, return stderr.
fn tlsa_fails(args: &[&str]) -> String {
    let mut all = vec!["tlsa"];
    all.extend_from_slice(args);
    let out = dane_roll(&all);
    let stderr = String::from_utf8(out.stderr).expect("utf-8 stderr");
    assert_eq!(
        out.status.code(),
        Some(2),
        "tlsa {args:?} should fail: {stderr}"
    );
    assert!(
        out.stdout.is_empty(),
        "tlsa {args:?} printed {:?}",
        out.stdout
    );
    assert!(stderr.starts_with("dane-roll: error: "), "{stderr}");
    stderr
}

/// The key algorithms of the issue, as `openssl genpkey` options, with the type dane-roll names.
const ALGORITHMS: &[(&str, &[&str], &str)] = &[
    (
        "rsa",
        &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
        "RSA 2048",
    ),
    (
        "p256",
        &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
        "EC P-256",
    ),
    (
        "p384",
        &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"],
        "EC P-384",
    ),
    (
        "p521",
        &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-521"],
        "EC P-521",
    ),
    ("ed25519", &["-algorithm", "ED25519"], "Ed25519"),
    ("ed448", &["-algorithm", "ED448"], "Ed448"),
];

/// A root → intermediate → leaf chain of one key type, in PEM and DER, with the leaf's key in
/// every form the issue lists.
struct Pki {
    _dir: tempfile::TempDir,
    dir: PathBuf,
}

impl Pki {
    fn new(alg: &str) -> Pki {
        let (_, genpkey, _) = ALGORITHMS
            .iter()
            .find(|(name, _, _)| *name == alg)
            .expect("known algorithm");
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().to_path_buf();
        let f = |name: &str| p.join(name);
        for name in ["root", "inter", "leaf"] {
            let mut args = vec!["genpkey"];
            args.extend_from_slice(genpkey);
            let out = f(&format!("{name}.key"));
            args.extend_from_slice(&["-out", s(&out)]);
            openssl(&args);
        }
        std::fs::write(
            f("ca.ext"),
            "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n",
        )
        .expect("write");
        std::fs::write(
            f("leaf.ext"),
            format!(
                "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n\
                 subjectAltName=DNS:{HOST}\n"
            ),
        )
        .expect("write");
        openssl(&[
            "req",
            "-x509",
            "-new",
            "-key",
            s(&f("root.key")),
            "-subj",
            "/CN=Test Root",
            "-days",
            "30",
            "-out",
            s(&f("root.pem")),
        ]);
        for (name, cn, issuer, ext) in [
            ("inter", "/CN=Test Intermediate", "root", "ca.ext"),
            ("leaf", &format!("/CN={HOST}"), "inter", "leaf.ext"),
        ] {
            openssl(&[
                "req",
                "-new",
                "-key",
                s(&f(&format!("{name}.key"))),
                "-subj",
                cn,
                "-out",
                s(&f(&format!("{name}.csr"))),
            ]);
            openssl(&[
                "x509",
                "-req",
                "-in",
                s(&f(&format!("{name}.csr"))),
                "-CA",
                s(&f(&format!("{issuer}.pem"))),
                "-CAkey",
                s(&f(&format!("{issuer}.key"))),
                "-CAcreateserial",
                "-days",
                "30",
                "-extfile",
                s(&f(ext)),
                "-out",
                s(&f(&format!("{name}.pem"))),
            ]);
        }
        let mut chain = Vec::new();
        for name in ["leaf", "inter", "root"] {
            chain.extend(std::fs::read(f(&format!("{name}.pem"))).expect("read"));
        }
        std::fs::write(f("chain.pem"), chain).expect("write chain");
        openssl(&[
            "x509",
            "-in",
            s(&f("leaf.pem")),
            "-outform",
            "DER",
            "-out",
            s(&f("leaf.der")),
        ]);
        let key = s(&f("leaf.key")).to_string();
        openssl(&[
            "pkey",
            "-in",
            &key,
            "-outform",
            "DER",
            "-out",
            s(&f("leaf.key.der")),
        ]);
        openssl(&[
            "pkey",
            "-in",
            &key,
            "-pubout",
            "-out",
            s(&f("leaf.pub.pem")),
        ]);
        openssl(&[
            "pkey",
            "-in",
            &key,
            "-pubout",
            "-outform",
            "DER",
            "-out",
            s(&f("leaf.pub.der")),
        ]);
        // Traditional ("RSA PRIVATE KEY", "EC PRIVATE KEY") form; Ed25519/Ed448 have none and
        // stay PKCS#8.
        if alg.starts_with("ed") {
            std::fs::copy(f("leaf.key"), f("leaf.trad.pem")).expect("copy");
        } else {
            openssl(&[
                "pkey",
                "-in",
                &key,
                "-traditional",
                "-out",
                s(&f("leaf.trad.pem")),
            ]);
        }
        Pki { _dir: dir, dir: p }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn arg(&self, name: &str) -> String {
        s(&self.path(name)).to_string()
    }
}

/// The data the OpenSSL pipeline gives: selector 1 `x509 -pubkey | pkey -pubin -outform DER`,
/// selector 0 `x509 -outform DER`, then `dgst -sha256`/`-sha512` or the raw DER as hex.
fn openssl_data(cert: &Path, selector: u8, mtype: u8) -> String {
    let der = if selector == 1 {
        let pem = openssl(&["x509", "-in", s(cert), "-pubkey", "-noout"]);
        tool(
            "openssl",
            &["pkey", "-pubin", "-outform", "DER"],
            Some(&pem),
        )
    } else {
        openssl(&["x509", "-in", s(cert), "-outform", "DER"])
    };
    digest(&der, mtype)
}

/// The data for a key file: `openssl pkey -pubout -outform DER`, then as above.
fn openssl_key_data(key: &Path, mtype: u8) -> String {
    let mut args = vec!["pkey", "-in", s(key), "-pubout", "-outform", "DER"];
    if s(key).contains(".pub.") {
        args.push("-pubin");
    }
    let der = openssl(&args);
    digest(&der, mtype)
}

fn digest(der: &[u8], mtype: u8) -> String {
    let alg = match mtype {
        0 => return hex::encode(der),
        1 => "-sha256",
        _ => "-sha512",
    };
    let out = String::from_utf8(tool("openssl", &["dgst", alg], Some(der))).expect("utf-8");
    // "SHA2-256(stdin)= <hex>"
    out.rsplit("= ")
        .next()
        .expect("dgst output")
        .trim()
        .to_string()
}

/// `ldns-dane -c CERT -n [-o OFFSET] create HOST 25 U S M`, offline: it reads the chain from the
/// file and does not check the name. Returns the RDATA with white space normalised.
/// ldns-dane does every usage × selector × matching type this way (`-o` picks a CA certificate,
/// counted from the end of the chain), but it reads only certificates: bare keys, DER input and the
/// output formats are covered by the OpenSSL pipeline and exact text instead.
fn ldns_dane(cert: &Path, offset: Option<u8>, usage: u8, selector: u8, mtype: u8) -> String {
    let (u, sel, m) = (usage.to_string(), selector.to_string(), mtype.to_string());
    let off = offset.map(|o| o.to_string());
    let mut args = vec!["-c", s(cert), "-n"];
    if let Some(off) = &off {
        args.extend_from_slice(&["-o", off]);
    }
    args.extend_from_slice(&["create", HOST, "25", &u, &sel, &m]);
    let out = String::from_utf8(tool("ldns-dane", &args, None)).expect("utf-8");
    let line = out.lines().next().expect("one record");
    let rdata = line.split("TLSA").nth(1).expect("a TLSA line");
    rdata.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Every key type × selector × matching type, from PEM and DER certificates, chains and keys,
/// against OpenSSL and ldns-dane.
fn check_algorithm(alg: &str) {
    let pki = Pki::new(alg);
    let key_type = ALGORITHMS.iter().find(|a| a.0 == alg).expect("known").2;
    for selector in 0..=1u8 {
        for mtype in 0..=2u8 {
            let sel = selector.to_string();
            let m = mtype.to_string();
            let flags = ["--selector", sel.as_str(), "--mtype", m.as_str()];
            let leaf = openssl_data(&pki.path("leaf.pem"), selector, mtype);
            let want = format!("3 {selector} {mtype} {leaf}\n");
            // usage 3: the leaf, from a PEM cert, a DER cert and the full chain.
            for file in ["leaf.pem", "leaf.der", "chain.pem"] {
                let (out, _) = tlsa_ok(&[&flags[..], &[&pki.arg(file)]].concat());
                assert_eq!(out, want, "{alg} {file} {selector} {mtype}");
            }
            assert_eq!(
                format!(
                    "{}\n",
                    ldns_dane(&pki.path("chain.pem"), None, 3, selector, mtype)
                ),
                want,
                "ldns-dane {alg} 3 {selector} {mtype}"
            );
            // usage 2: the intermediate and the root, never the leaf.
            let inter = openssl_data(&pki.path("inter.pem"), selector, mtype);
            let root = openssl_data(&pki.path("root.pem"), selector, mtype);
            let (out, _) =
                tlsa_ok(&[&["--usage", "2"], &flags[..], &[&pki.arg("chain.pem")]].concat());
            assert_eq!(
                out,
                format!("2 {selector} {mtype} {inter}\n2 {selector} {mtype} {root}\n"),
                "{alg} usage 2 {selector} {mtype}"
            );
            // ldns-dane counts from the end of the chain: -o 1 the intermediate, -o 0 the root.
            let lines: Vec<&str> = out.lines().collect();
            assert_eq!(
                ldns_dane(&pki.path("chain.pem"), Some(1), 2, selector, mtype),
                lines[0]
            );
            assert_eq!(
                ldns_dane(&pki.path("chain.pem"), Some(0), 2, selector, mtype),
                lines[1]
            );
            assert!(!out.contains(&leaf), "usage 2 must never emit the leaf");

            // Key files: selector 1 only.
            let keys = [
                "leaf.key",
                "leaf.key.der",
                "leaf.trad.pem",
                "leaf.pub.pem",
                "leaf.pub.der",
            ];
            for file in keys {
                if selector == 1 {
                    let (out, _) = tlsa_ok(&[&flags[..], &[&pki.arg(file)]].concat());
                    let from_key = openssl_key_data(&pki.path(file), mtype);
                    assert_eq!(out, format!("3 1 {mtype} {from_key}\n"), "{alg} {file}");
                    assert_eq!(out, want, "{alg} {file}: key and certificate agree");
                } else {
                    let err = tlsa_fails(&[&flags[..], &[&pki.arg(file)]].concat());
                    assert!(err.contains("needs a certificate"), "{err}");
                    assert!(err.contains(file), "names the file: {err}");
                }
            }
        }
    }
    // The key type in JSON, for a certificate and for a key.
    for file in ["leaf.pem", "leaf.key"] {
        let (out, _) = tlsa_ok(&["--format", "json", &pki.arg(file)]);
        let json: serde_json::Value = serde_json::from_str(&out).expect("json");
        assert_eq!(json[0]["source"]["key_type"], key_type, "{alg} {file}");
    }
}

#[test]
fn rsa_2048() {
    check_algorithm("rsa");
}

#[test]
fn rsa_pkcs1_public_key() {
    let pki = Pki::new("rsa");
    let pkcs1 = pki.path("leaf.rsapub.pem");
    openssl(&[
        "rsa",
        "-in",
        &pki.arg("leaf.key"),
        "-RSAPublicKey_out",
        "-out",
        s(&pkcs1),
    ]);
    let text = std::fs::read_to_string(&pkcs1).expect("read");
    assert!(text.starts_with("-----BEGIN RSA PUBLIC KEY-----"), "{text}");
    let (out, _) = tlsa_ok(&[s(&pkcs1)]);
    assert_eq!(
        out,
        format!("3 1 1 {}\n", openssl_data(&pki.path("leaf.pem"), 1, 1))
    );
}

#[test]
fn ec_p256() {
    check_algorithm("p256");
}

#[test]
fn ec_p384() {
    check_algorithm("p384");
}

#[test]
fn ec_p521() {
    check_algorithm("p521");
}

#[test]
fn ed25519() {
    check_algorithm("ed25519");
}

#[test]
fn ed448() {
    check_algorithm("ed448");
}

#[test]
fn formats_rr_nsupdate_json() {
    let pki = Pki::new("p256");
    let leaf = openssl_data(&pki.path("leaf.pem"), 1, 1);
    let chain = pki.arg("chain.pem");

    let (out, _) = tlsa_ok(&["--format", "rr", "--host", "Mail.Example.Test.", &chain]);
    assert_eq!(
        out,
        format!("_25._tcp.mail.example.test. 3600 IN TLSA 3 1 1 {leaf}\n")
    );
    let (out, _) = tlsa_ok(&[
        "--format", "nsupdate", "--host", HOST, "--port", "465", "--ttl", "1800", &chain,
    ]);
    // No configuration to learn the server from: nsupdate asks the zone's primary itself.
    assert_eq!(
        out,
        format!("update add _465._tcp.mail.example.test. 1800 IN TLSA 3 1 1 {leaf}\nsend\n")
    );
    // With --server and --zone: a script nsupdate runs as it is.
    let (out, _) = tlsa_ok(&[
        "--format",
        "nsupdate",
        "--host",
        HOST,
        "--server",
        "192.0.2.53:5353",
        "--zone",
        "Example.Test.",
        &chain,
    ]);
    assert_eq!(
        out,
        format!(
            "server 192.0.2.53 5353\nzone example.test.\n\
             update add _25._tcp.mail.example.test. 3600 IN TLSA 3 1 1 {leaf}\nsend\n"
        )
    );
    let err = tlsa_fails(&[
        "--format", "nsupdate", "--host", HOST, "--server", "a b;send", &chain,
    ]);
    assert!(
        err.contains("--server") && err.contains("HOST[:PORT]"),
        "{err}"
    );
    let err = tlsa_fails(&[
        "--format", "nsupdate", "--host", HOST, "--zone", "x\nsend", &chain,
    ]);
    assert!(
        err.contains("--zone") && err.contains("not a zone name"),
        "{err}"
    );
    for format in ["rr", "nsupdate"] {
        let err = tlsa_fails(&["--format", format, &chain]);
        assert!(err.contains("needs --host"), "{err}");
    }
    let err = tlsa_fails(&["--format", "rr", "--host", "bad host;", &chain]);
    assert!(err.contains("not a host name"), "{err}");

    let (out, _) = tlsa_ok(&["--format", "json", "--host", HOST, "--usage", "2", &chain]);
    let json: serde_json::Value = serde_json::from_str(&out).expect("json");
    let items = json.as_array().expect("array");
    assert_eq!(items.len(), 2);
    let inter = openssl_data(&pki.path("inter.pem"), 1, 1);
    assert_eq!(items[0]["usage"], 2);
    assert_eq!(items[0]["selector"], 1);
    assert_eq!(items[0]["matching_type"], 1);
    assert_eq!(items[0]["data"], inter.as_str());
    assert_eq!(items[0]["owner"], "_25._tcp.mail.example.test.");
    assert_eq!(items[0]["ttl"], 3600);
    assert_eq!(items[0]["source"]["file"], chain.as_str());
    assert_eq!(items[0]["source"]["subject"], "CN=Test Intermediate");
    assert_eq!(items[0]["source"]["key_type"], "EC P-256");
    assert_eq!(items[1]["source"]["subject"], "CN=Test Root");
    // DANE-TA pins a CA: the intermediate is a warning (CAs rotate them), the root a note.
    assert_eq!(
        items[0]["lints"][0]["code"], "dane-ta-intermediate",
        "{json:#}"
    );
    assert_eq!(items[1]["lints"][0]["code"], "dane-ta-root", "{json:#}");

    // No host: no owner; a key: no subject.
    let (out, _) = tlsa_ok(&["--format", "json", &pki.arg("leaf.key")]);
    let json: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert!(json[0].get("owner").is_none());
    assert!(json[0]["source"].get("subject").is_none());
    assert_eq!(json[0]["source"]["kind"], "private key");
    assert_eq!(json[0]["data"], leaf.as_str());
}

#[test]
fn lints_warn_on_stderr_and_in_json() {
    let pki = Pki::new("p256");
    let leaf = pki.arg("leaf.pem");
    // Selector 0 changes at every renewal.
    let (out, err) = tlsa_ok(&["--selector", "0", &leaf]);
    assert!(out.starts_with("3 0 1 "));
    assert!(err.starts_with("dane-roll: warning: selector 0"), "{err}");
    // PKIX usages on port 25 are ignored by SMTP.
    let (_, err) = tlsa_ok(&["--usage", "1", &leaf]);
    assert!(
        err.contains("dane-roll: warning: usage 1 (PKIX-EE)"),
        "{err}"
    );
    assert!(err.contains("RFC 7672"), "{err}");
    let (_, err) = tlsa_ok(&["--usage", "1", "--port", "443", &leaf]);
    assert!(err.is_empty(), "no PKIX warning off port 25: {err}");
    let (out, err) = tlsa_ok(&["--usage", "0", &pki.arg("chain.pem")]);
    assert_eq!(out.lines().count(), 2, "usage 0 takes the CA certificates");
    assert_eq!(
        err.matches("warning").count(),
        1,
        "one warning, not one per record: {err}"
    );
    let (out, _) = tlsa_ok(&["--format", "json", "--selector", "0", "--usage", "1", &leaf]);
    let json: serde_json::Value = serde_json::from_str(&out).expect("json");
    let codes: Vec<&str> = json[0]["lints"]
        .as_array()
        .expect("lints")
        .iter()
        .map(|l| l["code"].as_str().expect("code"))
        .collect();
    assert_eq!(codes, ["whole-certificate", "pkix-usage-on-smtp"]);
    // DANE-TA of an intermediate: why it is fragile, and the scheme to use instead.
    let (_, err) = tlsa_ok(&["--usage", "2", &pki.arg("inter.pem")]);
    assert!(
        err.contains("dane-roll: warning: DANE-TA(2) pins the intermediate CN=Test Intermediate")
            && err.contains("rotate")
            && err.contains("current+next"),
        "{err}"
    );
    let (_, err) = tlsa_ok(&["--usage", "2", &pki.arg("root.pem")]);
    assert!(
        err.contains("pins the root CN=Test Root") && err.contains("change too"),
        "{err}"
    );
    // DANE-EE of the leaf: no such warning.
    let (_, err) = tlsa_ok(&[&leaf]);
    assert!(err.is_empty(), "{err}");
    // The empty-input digest cannot come out of a real certificate; the refusal is unit-tested
    // in src/tlsa.rs (`lints`).
}

#[test]
fn key_and_certificate_pairing() {
    let pki = Pki::new("p256");
    let (leaf, key, inter_key) = (
        pki.arg("leaf.pem"),
        pki.arg("leaf.key"),
        pki.arg("inter.key"),
    );
    // A matching pair gives one record, in either order, for selector 1 and 0.
    let (alone, _) = tlsa_ok(&[&leaf]);
    assert_eq!(tlsa_ok(&[&leaf, &key]).0, alone);
    assert_eq!(tlsa_ok(&[&key, &leaf]).0, alone);
    let (sel0, _) = tlsa_ok(&["--selector", "0", &key, &leaf]);
    assert_eq!(sel0.lines().count(), 1);
    assert!(sel0.starts_with("3 0 1 "));
    // A usage-2 run with the leaf key beside the chain ignores the key.
    let (ta, _) = tlsa_ok(&["--usage", "2", &pki.arg("chain.pem"), &key]);
    assert_eq!(ta.lines().count(), 2);
    // A key that does not belong: exit 2, naming both files.
    let err = tlsa_fails(&[&leaf, &inter_key]);
    assert!(err.contains("does not belong"), "{err}");
    assert!(err.contains(&inter_key) && err.contains(&leaf), "{err}");
    // The same inside one file (cert + wrong key concatenated).
    let combined = pki.path("combined.pem");
    let mut text = std::fs::read(pki.path("leaf.pem")).expect("read");
    text.extend(std::fs::read(pki.path("inter.key")).expect("read"));
    std::fs::write(&combined, &text).expect("write");
    let err = tlsa_fails(&[s(&combined)]);
    assert!(err.contains("does not belong"), "{err}");
    // A cert + its own key in one file is fine.
    let mut text = std::fs::read(pki.path("leaf.pem")).expect("read");
    text.extend(std::fs::read(pki.path("leaf.key")).expect("read"));
    std::fs::write(&combined, &text).expect("write");
    assert_eq!(tlsa_ok(&[s(&combined)]).0, alone);
    // Duplicates are printed once, in first-seen order.
    let chain = pki.arg("chain.pem");
    let (twice, _) = tlsa_ok(&["--usage", "2", &chain, &pki.arg("inter.pem"), &chain]);
    assert_eq!(twice, tlsa_ok(&["--usage", "2", &chain]).0);
}

#[test]
fn usage_2_needs_a_ca() {
    let pki = Pki::new("p256");
    let err = tlsa_fails(&["--usage", "2", &pki.arg("leaf.pem")]);
    assert!(
        err.contains("no CA certificate") && err.contains("leaf.pem"),
        "{err}"
    );
    let err = tlsa_fails(&["--usage", "2", &pki.arg("inter.key")]);
    assert!(
        err.contains("no certificate") && err.contains("inter.key"),
        "{err}"
    );
    // A lone CA certificate is fine, also the self-signed root.
    for ca in ["inter.pem", "root.pem"] {
        let (out, _) = tlsa_ok(&["--usage", "2", &pki.arg(ca)]);
        let want = openssl_data(&pki.path(ca), 1, 1);
        assert_eq!(out, format!("2 1 1 {want}\n"));
    }
}

#[test]
fn bad_inputs_fail_cleanly() {
    let pki = Pki::new("p256");
    let p = |name: &str| pki.path(name);
    let write = |name: &str, bytes: &[u8]| std::fs::write(p(name), bytes).expect("write");

    // (file, what stderr must say)
    let mut cases: Vec<(String, &str)> = Vec::new();
    cases.push((pki.arg("missing.pem"), "cannot read"));
    write("empty.pem", b"");
    cases.push((pki.arg("empty.pem"), "is empty"));
    write("garbage.txt", b"hello, this is not a certificate\n");
    cases.push((pki.arg("garbage.txt"), "neither a PEM nor a DER"));
    write("binary.bin", &[0x30, 0x03, 0x02, 0x01, 0x05]);
    cases.push((pki.arg("binary.bin"), "no certificate or key"));
    // A CSR and DH parameters: say what was found.
    cases.push((pki.arg("leaf.csr"), "certificate request (CSR)"));
    let dh = openssl(&[
        "genpkey",
        "-genparam",
        "-algorithm",
        "DH",
        "-pkeyopt",
        "group:ffdhe2048",
    ]);
    write("dh.pem", &dh);
    cases.push((pki.arg("dh.pem"), "Diffie-Hellman parameters"));
    // Truncated DER and a damaged PEM body.
    let der = std::fs::read(p("leaf.der")).expect("read");
    write("truncated.der", &der[..der.len() / 2]);
    cases.push((pki.arg("truncated.der"), "truncated DER"));
    let pem = String::from_utf8(std::fs::read(p("leaf.pem")).expect("read")).expect("utf-8");
    let lines: Vec<&str> = pem.lines().collect();
    let cut = [&lines[..3], &lines[lines.len() - 1..]].concat().join("\n");
    write("cut.pem", cut.as_bytes());
    cases.push((pki.arg("cut.pem"), "damaged"));
    // Encrypted keys: PKCS#8 PEM, traditional PEM, PKCS#8 DER. Never a prompt.
    let key = pki.arg("leaf.key");
    for (name, extra) in [
        (
            "enc8.pem",
            vec!["pkey", "-in", &key, "-aes256", "-passout", "pass:secret"],
        ),
        (
            "enctrad.pem",
            vec![
                "pkey",
                "-in",
                &key,
                "-traditional",
                "-aes256",
                "-passout",
                "pass:x",
            ],
        ),
        (
            "enc8.der",
            vec![
                "pkcs8",
                "-topk8",
                "-in",
                &key,
                "-v2",
                "aes256",
                "-outform",
                "DER",
                "-passout",
                "pass:secret",
            ],
        ),
    ] {
        write(name, &openssl(&extra));
        cases.push((pki.arg(name), "is encrypted"));
    }
    for (file, says) in &cases {
        let err = tlsa_fails(&[file]);
        let says = if *says == "is encrypted" {
            "holds an encrypted private key"
        } else {
            says
        };
        assert!(err.contains(says), "{file}: expected {says:?} in {err}");
        assert!(err.contains(file.as_str()), "names the file: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    // An encrypted key says what to do.
    let err = tlsa_fails(&[&pki.arg("enc8.pem")]);
    assert!(err.contains("needs the unencrypted key") && err.contains("pass the certificate"));
    // One bad file among good ones still fails, with nothing printed.
    tlsa_fails(&[&pki.arg("leaf.pem"), &pki.arg("empty.pem")]);
}

#[test]
fn text_around_pem_blocks_is_ignored() {
    // `openssl x509 -text` and pkcs12 exports put text before the block.
    let pki = Pki::new("ed25519");
    let text = openssl(&["x509", "-in", &pki.arg("leaf.pem"), "-text"]);
    std::fs::write(pki.path("text.pem"), text).expect("write");
    let (out, _) = tlsa_ok(&[&pki.arg("text.pem")]);
    assert_eq!(
        out,
        format!("3 1 1 {}\n", openssl_data(&pki.path("leaf.pem"), 1, 1))
    );
}

#[test]
fn nsupdate_takes_server_and_zone_from_the_configured_provider() {
    let pki = Pki::new("p256");
    let leaf = openssl_data(&pki.path("leaf.pem"), 1, 1);
    let chain = pki.arg("chain.pem");
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("c.toml");
    std::fs::write(
        &conf,
        "[resolver]\naddress = \"127.0.0.1\"\n\n[[service]]\nname = \"mx\"\n\
         endpoints = [\"mail.example.test:25/smtp\"]\nchain-file = \"/etc/postfix/mx.pem\"\n\
         zone = \"Example.Test\"\nprovider = \"bind\"\n\n[provider.bind]\nkind = \"rfc2136\"\n\
         server = \"192.0.2.53:5353\"\ntsig-env = \"TSIG\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&conf, std::fs::Permissions::from_mode(0o600)).unwrap();
    let conf = conf.display().to_string();
    let (out, _) = tlsa_ok(&["-c", &conf, "--format", "nsupdate", "--host", HOST, &chain]);
    assert_eq!(
        out,
        format!(
            "server 192.0.2.53 5353\nzone example.test.\n\
             update add _25._tcp.mail.example.test. 3600 IN TLSA 3 1 1 {leaf}\nsend\n"
        )
    );
    // A flag wins over the configuration.
    let (out, _) = tlsa_ok(&[
        "-c",
        &conf,
        "--format",
        "nsupdate",
        "--host",
        HOST,
        "--server",
        "ns1.example.test",
        &chain,
    ]);
    assert!(
        out.starts_with("server ns1.example.test 53\nzone example.test.\n"),
        "{out}"
    );
}
