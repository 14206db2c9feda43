//! Issue 2: `dane-roll config check` run as a user would, through the real binary: the examples pass,
//! every kind of mistake gives a message naming the thing and exit 2 (never a panic's 101), and no
//! secret value ever reaches the output.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tempfile::TempDir;

/// A value planted in secret files and variables; it must never be printed.
const PLANTED: &str = "s3cr3t-PLANTED-value-9f8e7d6c5b4a";

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(config: &Path, envs: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dane-roll"));
    cmd.env_remove("DANE_ROLL_CONFIG")
        .arg("-c")
        .arg(config)
        .args(["config", "check"]);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out: Output = cmd.output().expect("run dane-roll");
    let run = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert_ne!(run.code, 101, "panicked:\n{}", run.stderr);
    assert!(
        !run.stdout.contains(PLANTED) && !run.stderr.contains(PLANTED),
        "secret leaked"
    );
    run
}

/// A scratch directory with a state dir, a chain directory and a readable-only-by-owner secret file.
struct Lab {
    dir: TempDir,
}

impl Lab {
    fn new() -> Lab {
        let lab = Lab {
            dir: TempDir::new().expect("tempdir"),
        };
        fs::create_dir_all(lab.path("state")).unwrap();
        fs::create_dir_all(lab.path("postfix")).unwrap();
        lab.secret("token", PLANTED);
        lab
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn secret(&self, name: &str, value: &str) -> PathBuf {
        let path = self.path(name);
        fs::write(&path, format!("{value}\n")).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        path
    }

    /// Write `body` after a valid head (state dir, resolver) and return the file.
    fn config(&self, body: &str) -> PathBuf {
        let text = format!(
            "state-dir = \"{}\"\n[resolver]\naddress = \"127.0.0.1\"\n\n{body}",
            self.path("state").display()
        );
        let path = self.path("dane-roll.toml");
        fs::write(&path, text).unwrap();
        path
    }

    fn service(&self, extra: &str) -> String {
        format!(
            "[[service]]\nname = \"mx\"\nlineage = \"mail.example.com\"\nendpoints = [\"mail.example.com:25/smtp\"]\n\
             chain-file = \"{}\"\nprovider = \"cf\"\n{extra}\n",
            self.path("postfix/mx.pem").display()
        )
    }

    fn provider(&self) -> String {
        format!(
            "[provider.cf]\nkind = \"cloudflare\"\ntoken-file = \"{}\"\n",
            self.path("token").display()
        )
    }

    fn valid(&self) -> String {
        format!("{}\n{}", self.service(""), self.provider())
    }
}

fn assert_error(run: &Run, needles: &[&str]) {
    assert_eq!(
        run.code, 2,
        "stdout:\n{}\nstderr:\n{}",
        run.stdout, run.stderr
    );
    for needle in needles {
        assert!(
            run.stderr.contains(needle),
            "{needle:?} not in:\n{}",
            run.stderr
        );
    }
}

/// Copy an example with its absolute paths moved into the lab, plant its secrets, and check it.
fn check_example(name: &str, envs: &[(&str, &str)]) -> Run {
    let lab = Lab::new();
    let text = fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("examples")
            .join(name),
    )
    .expect("example");
    let etc = lab.path("etc-dane-roll");
    fs::create_dir_all(&etc).unwrap();
    fs::create_dir_all(lab.path("postfix/dane-roll")).unwrap();
    let text = text
        .replace("/etc/dane-roll/", &format!("{}/", etc.display()))
        .replace(
            "/etc/postfix/",
            &format!("{}/", lab.path("postfix").display()),
        )
        .replace(
            "/var/lib/dane-roll",
            &lab.path("state").display().to_string(),
        );
    for line in text.lines().filter(|l| l.contains("-file = ")) {
        let file = line.split('"').nth(1).unwrap();
        lab.secret(
            Path::new(file)
                .strip_prefix(lab.dir.path())
                .unwrap()
                .to_str()
                .unwrap(),
            PLANTED,
        );
    }
    let path = lab.path(name);
    fs::write(&path, text).unwrap();
    let run = run(&path, envs);
    assert_eq!(
        run.code, 0,
        "{name}:\nstdout:\n{}\nstderr:\n{}",
        run.stdout, run.stderr
    );
    assert!(!run.stderr.contains("error"), "{}", run.stderr);
    run
}

#[test]
fn example_certbot_postfix_bind_passes() {
    let run = check_example("certbot-postfix-bind.toml", &[]);
    assert!(
        run.stdout.contains("_25._tcp.mail.example.com."),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("_587._tcp.mail.example.com."),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("tsig.key (readable)"), "{}", run.stdout);
}

#[test]
fn example_acmesh_postfix_cloudflare_passes() {
    let run = check_example(
        "acmesh-postfix-cloudflare.toml",
        &[
            ("DANE_ROLL_WEBHOOK_URL", PLANTED),
            ("DANE_ROLL_TELEGRAM_TOKEN", PLANTED),
        ],
    );
    assert!(
        run.stdout.contains("env DANE_ROLL_WEBHOOK_URL (set)"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("[::1]:53"), "{}", run.stdout);
}

#[test]
fn example_powerdns_passes() {
    let run = check_example("powerdns.toml", &[("PDNS_API_KEY", PLANTED)]);
    assert!(
        run.stdout.contains("_993._tcp.mail.example.org."),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("env PDNS_API_KEY (set)"),
        "{}",
        run.stdout
    );
}

#[test]
fn example_without_its_env_var_fails_naming_it() {
    let lab = Lab::new();
    let text =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/powerdns.toml"))
            .unwrap();
    let text = text
        .replace(
            "/etc/postfix/",
            &format!("{}/", lab.path("postfix").display()),
        )
        .replace(
            "/var/lib/dane-roll",
            &lab.path("state").display().to_string(),
        );
    fs::create_dir_all(lab.path("postfix/dane-roll")).unwrap();
    let path = lab.path("p.toml");
    fs::write(&path, text).unwrap();
    let run = run(&path, &[]);
    assert_error(
        &run,
        &[
            "provider \"pdns\"",
            "api-key-env",
            "PDNS_API_KEY is not set",
        ],
    );
}

#[test]
fn valid_config_prints_resolved_settings_and_masks_secrets() {
    let lab = Lab::new();
    let run = run(&lab.config(&lab.valid()), &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains("token-file") || run.stdout.contains("token "),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("(readable)"), "{}", run.stdout);
    assert!(run.stdout.contains("ttl           3600"), "{}", run.stdout);
    assert!(
        run.stdout.contains("reload        postfix reload"),
        "{}",
        run.stdout
    );
}

#[test]
fn ttl_outside_advised_range_is_a_warning_not_an_error() {
    let lab = Lab::new();
    let body = format!("{}\n{}", lab.service("ttl = 300"), lab.provider());
    let run = run(&lab.config(&body), &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("dane-roll: warning:") && run.stderr.contains("key ttl"),
        "{}",
        run.stderr
    );
}

#[test]
fn typo_key_names_line_key_and_suggestion() {
    let lab = Lab::new();
    let body = format!("{}\n{}", lab.service("tll = 3600"), lab.provider());
    let run = run(&lab.config(&body), &[]);
    assert_error(
        &run,
        &[
            "dane-roll.toml:",
            "service \"mx\"",
            "`tll`",
            "did you mean `ttl`?",
        ],
    );
    assert!(
        run.stderr.contains("dane-roll.toml:11:1:"),
        "{}",
        run.stderr
    );
}

#[test]
fn wrong_type_names_the_key() {
    let lab = Lab::new();
    let body = format!("{}\n{}", lab.service("ttl = \"an hour\""), lab.provider());
    let run = run(&lab.config(&body), &[]);
    assert_error(&run, &["service \"mx\", key ttl", "invalid type"]);
}

#[test]
fn missing_secret_file_is_an_error_naming_provider_and_key() {
    let lab = Lab::new();
    fs::remove_file(lab.path("token")).unwrap();
    let run = run(&lab.config(&lab.valid()), &[]);
    assert_error(&run, &["provider \"cf\", key token-file", "not found"]);
}

#[test]
fn unset_env_var_is_an_error_naming_it() {
    let lab = Lab::new();
    let body = format!(
        "{}\n[provider.cf]\nkind = \"cloudflare\"\ntoken-env = \"DANE_ROLL_TEST_UNSET_TOKEN\"\n",
        lab.service("")
    );
    let run = run(&lab.config(&body), &[]);
    assert_error(
        &run,
        &[
            "provider \"cf\", key token-env",
            "DANE_ROLL_TEST_UNSET_TOKEN is not set",
        ],
    );
}

#[test]
fn literal_secret_is_refused_without_echoing_it() {
    let lab = Lab::new();
    let body = format!(
        "{}\n[provider.cf]\nkind = \"cloudflare\"\ntoken = \"{PLANTED}\"\n",
        lab.service("")
    );
    let run = run(&lab.config(&body), &[]);
    assert_error(
        &run,
        &["provider \"cf\", key token", "token-file", "token-env"],
    );
}

#[test]
fn syntax_error_on_a_secret_line_masks_it() {
    let lab = Lab::new();
    let body = format!(
        "{}\n[provider.cf]\nkind = \"cloudflare\"\ntoken = \"{PLANTED}\n",
        lab.service("")
    );
    let run = run(&lab.config(&body), &[]);
    assert_error(&run, &["dane-roll.toml:", "***"]);
}

#[test]
fn secret_values_never_appear_in_output() {
    let lab = Lab::new();
    let body = format!(
        "{}\n{}\n[provider.env]\nkind = \"desec\"\ntoken-env = \"DANE_ROLL_TEST_TOKEN\"\n",
        lab.service(""),
        lab.provider()
    );
    // `run` asserts that PLANTED (in the token file and the variable) is absent from both streams.
    let run = run(&lab.config(&body), &[("DANE_ROLL_TEST_TOKEN", PLANTED)]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains("env DANE_ROLL_TEST_TOKEN (set)"),
        "{}",
        run.stdout
    );
}

#[test]
fn env_key_holding_a_token_instead_of_a_name_is_refused_without_echo() {
    let lab = Lab::new();
    let body = format!(
        "{}\n[provider.cf]\nkind = \"cloudflare\"\ntoken-env = \"{PLANTED}\"\n",
        lab.service("")
    );
    let run = run(&lab.config(&body), &[]);
    assert_error(&run, &["key token-env", "not an environment variable name"]);
}

#[test]
fn duplicate_service_is_an_error() {
    let lab = Lab::new();
    let body = format!(
        "{}\n{}\n{}",
        lab.service(""),
        lab.service("").replace("mail.example.com\"\n", "other\"\n"),
        lab.provider()
    );
    let run = run(&lab.config(&body), &[]);
    assert_error(&run, &["service \"mx\" is defined twice (first at line"]);
}

#[test]
fn unknown_provider_reference_is_an_error_listing_known_ones() {
    let lab = Lab::new();
    let body = format!(
        "{}\n{}",
        lab.service("")
            .replace("provider = \"cf\"", "provider = \"cff\""),
        lab.provider()
    );
    let run = run(&lab.config(&body), &[]);
    assert_error(
        &run,
        &[
            "service \"mx\", key provider",
            "`cff`",
            "did you mean `cf`?",
        ],
    );
}

#[test]
fn unknown_provider_kind_lists_known_kinds() {
    let lab = Lab::new();
    let body = format!("{}\n[provider.cf]\nkind = \"route66\"\n", lab.service(""));
    let run = run(&lab.config(&body), &[]);
    assert_error(
        &run,
        &[
            "provider \"cf\"",
            "route66",
            "route53",
            "hetzner",
            "google",
            "rfc2136",
            "cloudflare",
            "powerdns",
            "manual",
        ],
    );
}

#[test]
fn bad_port_is_an_error() {
    let lab = Lab::new();
    let body = format!(
        "{}\n{}",
        lab.service("")
            .replace("mail.example.com:25/smtp", "mail.example.com:70000/smtp"),
        lab.provider()
    );
    let run = run(&lab.config(&body), &[]);
    assert_error(
        &run,
        &[
            "service \"mx\", key endpoints[1]",
            "\"70000\" is not a port",
        ],
    );
}

#[test]
fn bad_port_in_table_form_is_an_error() {
    let lab = Lab::new();
    let body = format!(
        "{}\n{}",
        lab.service("").replace(
            "\"mail.example.com:25/smtp\"",
            "{ host = \"mail.example.com\", port = 0 }"
        ),
        lab.provider()
    );
    let run = run(&lab.config(&body), &[]);
    assert_error(
        &run,
        &["service \"mx\", key endpoints[1].port", "0 is not a port"],
    );
}

#[test]
fn bad_protocol_is_an_error() {
    let lab = Lab::new();
    let body = format!(
        "{}\n{}",
        lab.service("").replace("25/smtp", "25/smpt"),
        lab.provider()
    );
    let run = run(&lab.config(&body), &[]);
    assert_error(&run, &["key endpoints[1]", "unknown protocol \"smpt\""]);
    let body = format!(
        "{}\n{}",
        lab.service("").replace(
            "\"mail.example.com:25/smtp\"",
            "{ host = \"mail.example.com\", protocol = \"smpt\" }"
        ),
        lab.provider()
    );
    let run = self::run(&lab.config(&body), &[]);
    assert_error(&run, &["unknown variant `smpt`", "did you mean `smtp`?"]);
}

#[test]
fn bad_duration_is_an_error() {
    let lab = Lab::new();
    let body = format!(
        "{}\n{}\n[alerts]\nrepeat-interval = \"6 hours\"\n",
        lab.service(""),
        lab.provider()
    );
    let run = run(&lab.config(&body), &[]);
    assert_error(&run, &["[alerts], key repeat-interval", "unknown unit"]);
}

#[test]
fn missing_config_file_says_how_to_start() {
    let lab = Lab::new();
    let run = run(&lab.path("nope.toml"), &[]);
    assert_error(
        &run,
        &["nope.toml not found; create it (see examples/) or pass -c FILE"],
    );
}

#[test]
fn config_from_environment_variable() {
    let lab = Lab::new();
    let path = lab.config(&lab.valid());
    let out = Command::new(env!("CARGO_BIN_EXE_dane-roll"))
        .env("DANE_ROLL_CONFIG", &path)
        .args(["config", "check"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn empty_file_is_an_error() {
    let lab = Lab::new();
    let path = lab.path("empty.toml");
    fs::write(&path, "# nothing yet\n\n").unwrap();
    assert_error(&run(&path, &[]), &["empty.toml", "empty"]);
}

#[test]
fn garbage_file_is_a_syntax_error_with_location() {
    let lab = Lab::new();
    let path = lab.path("garbage.toml");
    fs::write(&path, "this is [not toml\n").unwrap();
    assert_error(&run(&path, &[]), &["garbage.toml:1:"]);
}

#[test]
fn non_utf8_file_is_an_error() {
    let lab = Lab::new();
    let path = lab.path("latin1.toml");
    fs::write(&path, b"# caf\xe9\nversion = 1\n").unwrap();
    assert_error(&run(&path, &[]), &["latin1.toml", "not UTF-8"]);
}

#[test]
fn unsupported_version_is_an_error() {
    let lab = Lab::new();
    let path = lab.config(&format!("version = 2\n{}", lab.valid()));
    // `version` lands after the [resolver] table here, so put it first instead.
    let text = fs::read_to_string(&path)
        .unwrap()
        .replace("version = 2\n", "");
    fs::write(&path, format!("version = 2\n{text}")).unwrap();
    assert_error(
        &run(&path, &[]),
        &["key version", "version 2 is not supported"],
    );
}

#[test]
fn missing_chain_directory_is_an_error() {
    let lab = Lab::new();
    let body = format!(
        "{}\n{}",
        lab.service("").replace("postfix/mx.pem", "nowhere/mx.pem"),
        lab.provider()
    );
    let run = run(&lab.config(&body), &[]);
    assert_error(&run, &["service \"mx\", key chain-file", "does not exist"]);
}

#[test]
fn current_issuer_is_a_warning_and_issuer_ahead_file_needs_it() {
    let lab = Lab::new();
    // current+issuer: a warning that says why (CAs rotate intermediates) and what to use.
    let body = format!(
        "{}\n{}",
        lab.service("scheme = \"current+issuer\"\nissuer-ahead-file = \"ahead.pem\""),
        lab.provider()
    );
    let warned = run(&lab.config(&body), &[]);
    assert_eq!(warned.code, 0, "{}", warned.stderr);
    assert!(
        warned.stderr.contains("dane-roll: warning:")
            && warned.stderr.contains("key scheme")
            && warned.stderr.contains("rotate their")
            && warned.stderr.contains("current+next"),
        "{}",
        warned.stderr
    );
    // issuer-ahead-file with another scheme: an error naming the key and what to do.
    let body = format!(
        "{}\n{}",
        lab.service("issuer-ahead-file = \"ahead.pem\""),
        lab.provider()
    );
    let refused = run(&lab.config(&body), &[]);
    assert_error(
        &refused,
        &["key issuer-ahead-file", "scheme = \"current+issuer\""],
    );
}
