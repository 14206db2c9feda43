//! The ACME clients' hook inputs (`hooks::{certbot, acme_sh, dehydrated}`): environment variables
//! and arguments, as any bytes, to a deploy request or an error that says what to fix. Nothing
//! panics; a request names a configured service (the one asked for with `--service`) and only
//! files the client has written.
//!
//! The input is lines of bytes, so that seeds are real hook runs:
//!
//! ```text
//! certbot | acme.sh | dehydrated   the client (first line; anything else picks by its length)
//! --service NAME                   the hook's --service option
//! NAME=VALUE                       an environment variable (values may be any bytes)
//! @ARG                             one argument (dehydrated's event and its arguments)
//! +PATH  ~PATH                     a file with content, a file of white space only
//! *                                every other file has content (else it is missing)
//! ```

#![no_main]

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use dane_roll::config::Config;
use dane_roll::hooks::{self, Client, DeployRequest, Env, FileState, Files, HookError};
use dane_roll::hooks::{acme_sh, certbot, dehydrated};
use libfuzzer_sys::fuzz_target;

const CONFIG: &str = r#"
[resolver]
address = "127.0.0.1"

[[service]]
name = "mx"
lineage = "mail.example.com"
domains = ["mail.example.com", "smtp.example.com"]
endpoints = ["mail.example.com:25/smtp"]
chain-file = "/etc/postfix/mx.pem"
provider = "dns"

[[service]]
name = "mx-ec"
lineage = "/etc/letsencrypt/live/mail-ec"
domains = ["mx2.example.com"]
endpoints = ["mx2.example.com:25/smtp"]
chain-file = "/etc/postfix/mx2.pem"
provider = "dns"

[[service]]
name = "a"
domains = ["shared.example.com"]
endpoints = ["shared.example.com:25/smtp"]
chain-file = "/etc/postfix/a.pem"
provider = "dns"

[[service]]
name = "b"
domains = ["shared.example.com"]
endpoints = ["shared.example.com:587/submission"]
chain-file = "/etc/postfix/b.pem"
provider = "dns"

[provider.dns]
kind = "rfc2136"
server = "192.0.2.53"
tsig-env = "TSIG"
"#;

fn config() -> &'static Config {
    static CONFIG_: OnceLock<Config> = OnceLock::new();
    CONFIG_.get_or_init(|| {
        Config::from_str_named(CONFIG, "/etc/dane-roll/dane-roll.toml").expect("the fuzz config")
    })
}

/// The files the client wrote, as the input says.
struct Fake {
    files: BTreeMap<PathBuf, FileState>,
    others: FileState,
}

impl Files for Fake {
    fn state(&self, path: &Path) -> FileState {
        self.files.get(path).copied().unwrap_or(self.others)
    }
}

fuzz_target!(|data: &[u8]| {
    let mut lines = data.split(|&b| b == b'\n');
    let first = lines.next().unwrap_or_default();
    let client = match first {
        b"certbot" => Client::Certbot,
        b"acme.sh" => Client::AcmeSh,
        b"dehydrated" => Client::Dehydrated,
        _ => [Client::Certbot, Client::AcmeSh, Client::Dehydrated][first.len() % 3],
    };
    let mut vars: Vec<(String, OsString)> = Vec::new();
    let mut args: Vec<OsString> = Vec::new();
    let mut service: Option<String> = None;
    let mut fake = Fake {
        files: BTreeMap::new(),
        others: FileState::Missing,
    };
    let os = |bytes: &[u8]| OsString::from_vec(bytes.to_vec());
    for line in lines {
        if let Some(name) = line.strip_prefix(b"--service ") {
            service = Some(String::from_utf8_lossy(name).into_owned());
        } else if let Some(arg) = line.strip_prefix(b"@") {
            args.push(os(arg));
        } else if let Some(path) = line.strip_prefix(b"+") {
            fake.files
                .insert(PathBuf::from(os(path)), FileState::Present);
        } else if let Some(path) = line.strip_prefix(b"~") {
            fake.files.insert(PathBuf::from(os(path)), FileState::Empty);
        } else if line == b"*" {
            fake.others = FileState::Present;
        } else if let Some(eq) = line.iter().position(|&b| b == b'=') {
            // The process environment drops names that are not UTF-8; so does this.
            if let Ok(name) = std::str::from_utf8(&line[..eq]) {
                vars.push((name.to_owned(), os(&line[eq + 1..])));
            }
        }
    }
    let env = Env::from_pairs(vars);
    let config = config();
    let service = service.as_deref();

    let checked = hooks::check_env(client, &env);
    let made = match client {
        Client::Certbot => certbot::request(config, &env, &fake, service),
        Client::AcmeSh => acme_sh::request(config, &env, &fake, service),
        Client::Dehydrated => {
            let _ = (dehydrated::event_name(&args), dehydrated::is_deploy(&args));
            match dehydrated::request(config, &args, &fake, service) {
                Ok(dehydrated::Event::Deploy(request)) => Ok(request),
                Ok(dehydrated::Event::Ignore { event }) => {
                    assert!(
                        !dehydrated::is_deploy(&args),
                        "deploy_cert ignored as {event:?}"
                    );
                    return;
                }
                Err(err) => Err(err),
            }
        }
    };
    match made {
        Ok(request) => {
            assert!(
                checked.is_ok(),
                "a request although check_env said {checked:?}"
            );
            judge(config, &fake, service, &request);
        }
        Err(err) => {
            let _ = err.to_string();
            if let HookError::MissingFile { path, .. } = &err {
                assert!(!fake.present(path), "{} is there: {err}", path.display());
            }
        }
    }
    if let Err(err) = checked {
        let _ = err.to_string();
    }
});

/// What every request must be.
fn judge(config: &Config, fake: &Fake, service: Option<&str>, request: &DeployRequest) {
    assert!(
        config.service(&request.service).is_some(),
        "unknown service {:?}",
        request.service
    );
    if let Some(name) = service {
        assert_eq!(request.service, name, "--service {name} not followed");
    }
    for path in [
        Some(&request.key),
        Some(&request.cert),
        request.chain.as_ref(),
    ]
    .into_iter()
    .flatten()
    .chain(request.next_key.as_ref())
    {
        assert!(
            fake.present(path),
            "{} is not a file with content",
            String::from_utf8_lossy(path.as_os_str().as_bytes())
        );
    }
    let _ = format!("{request:?}");
}
