//! The command line, for people (issue 16), through the real binary and no network: a service is
//! named the same way by every command (`NAME` or `--service NAME`, never two different names),
//! `plan --json`, and what `status` says of a service with no rollover yet.

use std::path::Path;
use std::process::Command;

use tempfile::TempDir;

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

/// A configuration with service `mx` (manual provider: nothing leaves the machine) and an
/// empty state directory.
fn setup() -> TempDir {
    let dir = TempDir::new().unwrap();
    std::fs::create_dir(dir.path().join("state")).unwrap();
    std::fs::set_permissions(
        dir.path().join("state"),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    let conf = format!(
        "state-dir = \"{state}\"\n\n[resolver]\naddress = \"127.0.0.1\"\n\n[[service]]\n\
         name = \"mx\"\nendpoints = [\"mail.example.test:25/smtp\"]\nchain-file = \"{chain}\"\n\
         provider = \"hand\"\n\n[provider.hand]\nkind = \"manual\"\n",
        state = dir.path().join("state").display(),
        chain = dir.path().join("mx.pem").display(),
    );
    std::fs::write(dir.path().join("c.toml"), conf).unwrap();
    dir
}

fn run(dir: &Path, args: &[&str]) -> Out {
    let out = Command::new(env!("CARGO_BIN_EXE_dane-roll"))
        .env_remove("DANE_ROLL_CONFIG")
        .arg("-c")
        .arg(dir.join("c.toml"))
        .args(args)
        .output()
        .unwrap();
    let out = Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert_ne!(out.code, 101, "panicked: {}", out.stderr);
    out
}

#[test]
fn a_service_is_named_either_way_and_never_twice_differently() {
    let dir = setup();
    let d = dir.path();
    // The same answer both ways, for a command that took only a positional name before...
    let positional = run(d, &["status", "mx"]);
    let flag = run(d, &["status", "--service", "mx"]);
    assert_eq!(positional.code, 0, "{}", positional.stderr);
    assert_eq!(positional.stdout, flag.stdout);
    let both = run(d, &["status", "mx", "--service", "mx"]);
    assert_eq!(both.stdout, flag.stdout);
    // ... and for one that took only --service before: the same refusal of an unknown name.
    let flag = run(d, &["prune", "--service", "nope", "--dry-run"]);
    let positional = run(d, &["prune", "nope", "--dry-run"]);
    assert_eq!(flag.code, 2);
    assert_eq!(positional.code, 2);
    assert!(positional.stderr.contains("nope"), "{}", positional.stderr);
    assert_eq!(positional.stderr, flag.stderr);

    // Two different names: a usage error naming both.
    for command in [
        "status", "plan", "run", "next-key", "abort", "rotate", "prune", "deploy",
    ] {
        let mut args = vec![command, "mx", "--service", "other"];
        if command == "deploy" {
            args.extend(["--cert", "c.pem", "--key", "k.pem"]);
        }
        let out = run(d, &args);
        assert_eq!(out.code, 2, "{command}: {}", out.stderr);
        assert!(
            out.stderr.contains("two services named") && out.stderr.contains("other"),
            "{command}: {}",
            out.stderr
        );
    }
    // None where one is needed: say both ways.
    for command in ["abort", "rotate", "prune"] {
        let out = run(d, &[command]);
        assert_eq!(out.code, 2, "{command}: {}", out.stderr);
        assert!(
            out.stderr.contains(&format!("dane-roll {command} NAME"))
                && out.stderr.contains("--service NAME"),
            "{command}: {}",
            out.stderr
        );
    }
    // publish: the first argument is the service unless --service names it.
    let out = run(d, &["publish", "cert.pem"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("name the service"), "{}", out.stderr);
    let out = run(d, &["publish", "nope", "cert.pem"]);
    assert!(out.stderr.contains("nope"), "{}", out.stderr);
    assert!(!out.stderr.contains("name the service"), "{}", out.stderr);
}

#[test]
fn status_without_a_rollover_and_plan_as_json() {
    let dir = setup();
    let out = run(dir.path(), &["status"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout
            .starts_with("mx: no key known, no rollover yet\n"),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("(-)"), "{}", out.stdout);

    let out = run(dir.path(), &["plan", "--json"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let plan: serde_json::Value = serde_json::from_str(&out.stdout).expect("one JSON document");
    assert_eq!(plan["rollovers"], serde_json::json!([]));
    assert!(plan["owner_names"].is_array(), "{plan}");
}
