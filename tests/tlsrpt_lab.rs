//! Issue 18 on the lab: a real rollover (BIND + Knot, Unbound, the receiving Postfix, the real
//! `dane-roll` binary, TTL 2 s) and TLS reports made from what the store recorded of it: the
//! report window covers the rollover, and the records are the ones the lab served. Two senders:
//! one whose report (Microsoft's shape: the `tlsa` policy-string packed into one string, upper
//! case, no `mx-host`) shows it saw only the OLD record and failed, and one that saw the new and
//! next records (ours). `dane-roll reports` must tie the first to the rollover's install ("saw
//! only the old record after the install at …: the wait was too short") and the second to ours.

use dane_roll_lab::conf::rollover_tools;
use dane_roll_lab::dns::Server;
use dane_roll_lab::dns::query::normalize_rdata;
use dane_roll_lab::pki::MX_HOST;
use dane_roll_lab::require;
use dane_roll_lab::world::{OWNER, World, rdata, text};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_dane-roll");
const TTL: u32 = 2;

fn ingest(w: &World, report: &Value) -> std::process::Output {
    use std::io::Write;
    let mut child = w
        .cmd(&["tlsrpt", "ingest"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(report.to_string().as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn a_report_covering_a_rollover_is_tied_to_its_install_and_records() {
    if !require(&rollover_tools(true)) {
        return;
    }
    let mut w = World::start(BIN, TTL);
    w.provider_rfc2136(w.dns.addr(Server::Bind));
    let (new, cert, key) = w.new_leaf("new");
    let out = w.deploy(&cert, &key, &["--wait"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    // The store's real times and records.
    let status = w.status_json();
    let history = status["history"].as_array().unwrap();
    let time_of = |phase: &str| {
        history
            .iter()
            .find(|e| e["phase"] == phase)
            .and_then(|e| e["time"].as_str())
            .unwrap_or_else(|| panic!("no {phase} event: {history:#?}"))
            .to_owned()
    };
    let installed = time_of("installed");
    let staged = time_of("staged");
    let next = status["services"][0]["keys"]["next"]
        .as_str()
        .map(|h| normalize_rdata(&format!("3 1 1 {h}")))
        .unwrap();
    let day = &staged[..10];
    let window = json!({
        "start-datetime": format!("{day}T00:00:00Z"),
        "end-datetime": format!("{day}T23:59:59Z"),
    });
    // Microsoft's shape, the old record only.
    let old_upper = {
        let r = rdata(&w.old);
        let (fields, hex) = r.rsplit_once(' ').unwrap();
        format!("{fields} {}", hex.to_uppercase())
    };
    let stale = json!({
        "organization-name": "Microsoft Corporation",
        "date-range": window,
        "contact-info": "tlsrpt-noreply@microsoft.com",
        "report-id": "134096256001234567+example.test",
        "policies": [{
            "policy": {
                "policy-type": "tlsa",
                "policy-string": [serde_json::to_string(&[old_upper]).unwrap()],
                "policy-domain": "example.test"
            },
            "summary": {"total-successful-session-count": 4, "total-failure-session-count": 2},
            "failure-details": [{
                "result-type": "tlsa-invalid",
                "receiving-mx-hostname": MX_HOST,
                "failed-session-count": 2
            }]
        }]
    });
    // Another sender saw the records the rollover left: new and next.
    let fresh = json!({
        "organization-name": "Example Sender",
        "date-range": window,
        "contact-info": "tlsrpt@sender.example",
        "report-id": format!("{day}_example.test"),
        "policies": [{
            "policy": {
                "policy-type": "tlsa",
                "policy-string": [rdata(&new), next],
                "policy-domain": "example.test",
                "mx-host": [MX_HOST]
            },
            "summary": {"total-successful-session-count": 9, "total-failure-session-count": 1},
            "failure-details": [{
                "result-type": "tlsa-invalid",
                "sending-mta-ip": "192.0.2.7",
                "receiving-mx-hostname": MX_HOST,
                "failed-session-count": 1
            }]
        }]
    });
    for report in [&stale, &fresh] {
        let out = ingest(&w, report);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        assert!(text(&out).contains("stored report"), "{}", text(&out));
    }
    let out = w.run(&["reports", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let view: Value = serde_json::from_slice(&out.stdout).unwrap();
    let failures = view["failures"].as_array().unwrap();
    let of = |org: &str| {
        failures
            .iter()
            .find(|f| f["organization"] == org)
            .unwrap_or_else(|| panic!("no failure of {org}: {view:#}"))
    };

    let ms = &of("Microsoft Corporation")["tie"];
    assert_eq!(ms["verdict"], "old-after-install", "{ms:#}");
    let explanation = ms["explanation"].as_str().unwrap();
    assert!(
        explanation.starts_with(&format!(
            "Microsoft Corporation saw only the old record after the install at {installed}: \
             the wait was too short"
        )),
        "{explanation}"
    );
    assert_eq!(ms["service"], "mx");
    assert_eq!(ms["owner"], OWNER);
    assert_eq!(ms["rollover"]["service"], "mx");
    assert_eq!(ms["rollover"]["slot"], "ec");
    assert_eq!(ms["rollover"]["started"], staged.as_str());
    let phases: Vec<&str> = ms["rollover"]["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p[0].as_str().unwrap())
        .collect();
    assert!(
        phases.contains(&"installed") && phases.contains(&"done"),
        "{phases:?}"
    );
    assert_eq!(ms["seen"][0]["key"], "old", "{ms:#}");

    let ours = &of("Example Sender")["tie"];
    assert_eq!(ours["verdict"], "ours", "{ours:#}");
    assert!(
        ours["explanation"]
            .as_str()
            .unwrap()
            .starts_with("Example Sender saw ours"),
        "{ours:#}"
    );
    let seen = ours["seen"].as_array().unwrap();
    assert_eq!(seen.len(), 2);
    assert!(seen.iter().all(|s| s["ours"] == true), "{ours:#}");
    assert_eq!(seen[0]["key"], "new");
    // Per rollover: both reports fall in this one.
    let label = format!("mx/ec begun {staged}");
    assert_eq!(view["by_rollover"][&label]["failed"], 3, "{view:#}");
    assert_eq!(view["by_rollover"][&label]["successful"], 13, "{view:#}");
}
