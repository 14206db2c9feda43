//! `dane-roll publish` end to end on the lab (issue 4): a configuration written here, an
//! rfc2136 provider with the lab's TSIG key file, a key made by the `openssl` crate. The records
//! appear on both authoritative servers (BIND and its Knot secondary), a second run adds
//! nothing, another host's record at the owner name survives, and the TSIG secret never
//! appears in the output, also when the key is wrong.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use dane_roll_lab::dns::{DnsLab, Server};
use dane_roll_lab::require_all;
use dane_roll_lab::tools::{BIND_TOOLS, KNOT_TOOLS, UNBOUND_TOOLS};
use openssl::ec::{EcGroup, EcKey};
use openssl::nid::Nid;
use openssl::pkey::PKey;

const BIN: &str = env!("CARGO_BIN_EXE_dane-roll");
const WAIT: Duration = Duration::from_secs(20);

/// A new P-256 key in `path` (PKCS#8 PEM) and its `3 1 1` record data.
fn key(path: &Path) -> String {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    let key = PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap();
    std::fs::write(path, key.private_key_to_pem_pkcs8().unwrap()).unwrap();
    let spki = key.public_key_to_der().unwrap();
    let hash: String = openssl::sha::sha256(&spki)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("3 1 1 {hash}")
}

fn config(lab: &DnsLab, dir: &Path, key_file: &Path) -> std::path::PathBuf {
    let text = format!(
        r#"version = 1
state-dir = "{dir}/state"

[resolver]
address = "{resolver}"

[[service]]
name = "mx"
endpoints = ["{host}:25/smtp", "{host}:465/tls"]
chain-file = "{dir}/chain.pem"
ttl = 300
provider = "lab"

[provider.lab]
kind = "rfc2136"
server = "{server}"
tsig-key-file = "{key}"
"#,
        dir = dir.display(),
        resolver = lab.resolver_addr(),
        host = lab.mx_host(),
        server = lab.addr(Server::Bind),
        key = key_file.display(),
    );
    let path = dir.join(format!(
        "dane-roll-{}.toml",
        key_file.file_stem().unwrap().to_string_lossy()
    ));
    std::fs::write(&path, text).unwrap();
    path
}

fn publish(config: &Path, files: &[&Path]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.arg("-c")
        .arg(config)
        .args(["publish", "--service", "mx"]);
    cmd.args(files);
    cmd.output().unwrap()
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn publish_adds_records_on_every_authoritative_server() {
    if !require_all(&[BIND_TOOLS, KNOT_TOOLS, UNBOUND_TOOLS]) {
        return;
    }
    let lab = DnsLab::start().expect("lab starts");
    let dir = tempfile::tempdir().unwrap();
    let secret = lab.tsig().secret.clone();
    let conf = config(&lab, dir.path(), &lab.tsig().file);
    let owners = [
        format!("_25._tcp.{}.", lab.mx_host()),
        format!("_465._tcp.{}.", lab.mx_host()),
    ];
    let other = format!("3 1 1 {}", "0f".repeat(32));
    lab.add_tlsa(&owners[0], 300, &other).unwrap();

    let current = dir.path().join("current.key");
    let next = dir.path().join("next.key");
    let (r1, r2) = (key(&current), key(&next));

    let out = publish(&conf, &[&current, &next]);
    let (stdout, stderr) = text(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    assert_eq!(
        stdout.matches("added").count(),
        4,
        "2 keys × 2 owner names: {stdout}"
    );
    assert!(
        !stdout.contains(&secret) && !stderr.contains(&secret),
        "secret leaked"
    );
    for owner in &owners {
        for rdata in [&r1, &r2] {
            assert!(
                stdout.contains(&format!("{owner} 300 IN TLSA {rdata}")),
                "{stdout}"
            );
            lab.wait_served_everywhere(owner, rdata, WAIT)
                .unwrap_or_else(|e| panic!("{owner} {rdata} on BIND and Knot: {e}"));
        }
    }
    let knot = lab
        .query(lab.addr(Server::Knot), &owners[0], "TLSA")
        .unwrap();
    assert!(
        knot.contains("TLSA", &other),
        "the other record survives: {knot:?}"
    );

    // Again: nothing to do, said so.
    let out = publish(&conf, &[&current]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(stdout.matches("present").count(), 2, "{stdout}");
    assert!(!stdout.contains("added"), "{stdout}");

    // The right key name with another secret: exit 2, the BADSIG explanation, no secret.
    let wrong_key = dir.path().join("wrong.key");
    std::fs::write(
        &wrong_key,
        format!(
            "key \"{}\" {{\n\talgorithm hmac-sha256;\n\tsecret \"d3Jvbmctc2VjcmV0LXdyb25nLXNlY3JldC13cm9uZyE=\";\n}};\n",
            lab.tsig().name
        ),
    )
    .unwrap();
    let wrong_conf = config(&lab, dir.path(), &wrong_key);
    let fresh = dir.path().join("fresh.key");
    let r3 = key(&fresh);
    let out = publish(&wrong_conf, &[&fresh]);
    let (stdout, stderr) = text(&out);
    assert_eq!(
        out.status.code(),
        Some(2),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    assert!(
        stderr.contains("the key secret differs from the server's"),
        "{stderr}"
    );
    let all = format!("{stdout}{stderr}");
    assert!(
        !all.contains(&secret) && !all.contains("d3Jvbmctc2VjcmV0"),
        "secret leaked: {all}"
    );
    let bind = lab
        .query(lab.addr(Server::Bind), &owners[0], "TLSA")
        .unwrap();
    assert!(
        !bind.contains("TLSA", &r3),
        "nothing published with a bad key"
    );

    // An unknown service: exit 2 with the known ones named.
    let mut cmd = Command::new(BIN);
    let out = cmd
        .arg("-c")
        .arg(&conf)
        .args(["publish", "--service", "nope"])
        .arg(&fresh)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("the services are: mx"));
}
