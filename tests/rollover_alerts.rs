//! Alerts from the rollover driver on the lab: a reload that fails raises one alert (not one
//! per run), and once the reload works and the rollover moves on, one recovery message follows.
//! The alert channel is a webhook received by the lab's HTTP sink (`dane_roll_lab::sink`); the rest is real
//! (BIND + Knot, validating Unbound, the receiving Postfix, the `dane-roll` binary), `ttl = 2`.

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use dane_roll_lab::conf::{RolloverConf, rollover_tools};
use dane_roll_lab::dns::DnsLab;
use dane_roll_lab::pki::{KeyKind, MX_HOST, TestPki};
use dane_roll_lab::postfix::Receiver;
use dane_roll_lab::sink::Sink;
use dane_roll_lab::world::{World, text};
use dane_roll_lab::{LabDir, loopback_block, require};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_dane-roll");
const TTL: u32 = 2;
const OWNER: &str = "_25._tcp.mail.example.test.";

#[test]
fn a_failing_reload_alerts_once_and_recovers_once() {
    if !require(&rollover_tools(false)) {
        return;
    }
    let lab = LabDir::new().unwrap();
    let block = loopback_block();
    let dns = DnsLab::builder()
        .block(block)
        .dir(lab.path())
        .start()
        .expect("DNS lab starts");
    let ca = TestPki::new(KeyKind::EcdsaP256).unwrap();
    let old = ca.leaf(&[MX_HOST], KeyKind::EcdsaP256).unwrap();
    dns.add_tlsa(OWNER, TTL, &old.tlsa_311().unwrap()).unwrap();
    let rx = Receiver::start(
        &lab.sub("receiver").unwrap(),
        block,
        &old.key_and_chain_pem().unwrap(),
    )
    .unwrap();
    let sink = Sink::start();

    // The reload fails while the flag file exists.
    let files = lab.sub("files").unwrap();
    let flag = files.join("reload-broken");
    let reload = files.join("reload.sh");
    std::fs::write(
        &reload,
        format!(
            "#!/bin/sh\nif [ -e '{flag}' ]; then echo 'reload refused (test flag)' >&2; exit 1; fi\n\
             exec postfix -c '{etc}' reload\n",
            flag = flag.display(),
            etc = rx.instance().etc().display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&reload, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(&flag, "").unwrap();

    let conf = lab.path().join("dane-roll.toml");
    let mut settings = RolloverConf::new(lab.path(), &dns, &rx);
    settings.reload = vec![reload.display().to_string()];
    settings.extra = format!(
        "[alerts]\nrepeat-interval = \"6h\"\n\n[alerts.channel.ops]\nkind = \"webhook\"\n\
         url = \"http://{}/hook\"\n",
        sink.addr
    );
    settings.write(&conf).unwrap();
    let dane_roll = |args: &[&str]| -> Output {
        Command::new(BIN)
            .arg("-c")
            .arg(&conf)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let phase = || -> String {
        let out = dane_roll(&["status", "--json"]);
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        v["services"][0]["phase"].as_str().unwrap_or("?").to_owned()
    };

    let new = ca.leaf(&[MX_HOST], KeyKind::EcdsaP256).unwrap();
    let cert = files.join("new.crt");
    let key = files.join("new.key");
    std::fs::write(&cert, new.fullchain_pem().unwrap()).unwrap();
    std::fs::write(&key, new.key.private_key_to_pem_pkcs8().unwrap()).unwrap();
    let out = dane_roll(&World::deploy_args(&cert, &key, &[]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    // Runs (as a timer would) until the install is done and the reload has failed a few times.
    let check = "rollover/mx/ec/installed";
    let t0 = Instant::now();
    let mut failed_runs = 0;
    while failed_runs < 3 {
        let out = dane_roll(&["run"]);
        if String::from_utf8_lossy(&out.stderr).contains("reload refused (test flag)") {
            failed_runs += 1;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "the reload never failed: phase {}\n{}",
            phase(),
            text(&out)
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    assert_eq!(phase(), "installed");
    let sent = sink.about(check);
    assert_eq!(
        sent.len(),
        1,
        "one alert for {failed_runs} failing runs: {sent:#?}"
    );
    assert_eq!(sent[0]["severity"], "critical");
    assert_eq!(sent[0]["recovered"], false);
    assert!(
        sent[0]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("reload")),
        "{sent:#?}"
    );

    // The reload works again: the rollover completes and the alert is closed, once.
    std::fs::remove_file(&flag).unwrap();
    let out = dane_roll(&["run", "--wait"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(phase(), "done");
    let sent = sink.about(check);
    assert_eq!(sent.len(), 2, "{sent:#?}");
    assert_eq!(sent[1]["severity"], "ok");
    assert_eq!(sent[1]["recovered"], true);
    let out = dane_roll(&["run"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(sink.about(check).len(), 2, "no second recovery");
}
