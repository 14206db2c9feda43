//! The hook lines of the README, run as written, the way the ACME clients' timers run them
//! (issue 16): a bare environment (`env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin`) and the
//! configuration at its default path, `/etc/dane-roll/dane-roll.toml`, with no
//! `DANE_ROLL_CONFIG` and no `-c`.
//!
//! The lines name `/usr/bin/dane-roll` (the Debian package's path) and, for dehydrated,
//! `/usr/lib/dane-roll/dane-roll-dehydrated-hook`; the configuration is at the default path. A
//! test must not write those paths on the machine, so each client runs in a private mount
//! namespace (`unshare -m`) with overlays over `/usr/bin`, `/usr/lib` and `/etc` whose upper
//! layers (in the lab directory) hold this build as `/usr/bin/dane-roll`, the shim, and the
//! test's configuration: what the package installs, seen by that process tree only.
//!
//! certbot and dehydrated run for real against pebble; acme.sh is not packaged, so its
//! `_installcert` is mirrored: a subshell that exports `CERT_PATH`, `CERT_KEY_PATH`,
//! `CA_CERT_PATH`, `CERT_FULLCHAIN_PATH`, `Le_Domain`, `Le_ForceNewDomainKey` and
//! `Le_Next_Domain_Key`, then `cd "$DOMAIN_PATH" && eval "$_reload_cmd"` (acme.sh 3.x,
//! `_installcert`). The service has `domains` and no `lineage`: `rotate` derives the lineage.

mod acme_mail;
mod acme_sh;

use std::ffi::{OsStr, OsString};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use acme_mail::*;
use acme_sh::{INSTALLCERT, acme_sh_issue};
use dane_roll::rollover::KeyHash;
use dane_roll_lab::acme::{Certbot, Dehydrated, Pebble};
use dane_roll_lab::conf::rollover_tools;
use dane_roll_lab::pki::{self, KeyKind, MX_HOST};
use dane_roll_lab::require;

/// The directories overlaid (`/` turned into `_`).
const LAYERS: [&str; 4] = ["usr_bin", "usr_local_bin", "usr_lib", "etc"];

/// The PATH certbot's and dehydrated's timers (systemd, cron) give their hooks.
const BARE_PATH: &str = "/usr/sbin:/usr/bin:/sbin:/bin";

/// The README's hook lines, read from the README itself so that the test runs what it says.
struct ReadmeLines {
    certbot_deploy_hook: String,
    acme_sh_reloadcmd: String,
    dehydrated_hook: String,
}

fn readme_lines() -> ReadmeLines {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = readme
        .split("### ACME client hook lines")
        .nth(1)
        .expect("the README's hook-line section");
    let block = section
        .split("```sh\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("its sh block");
    let quoted = |start: &str, flag: &str| -> String {
        let line = block
            .lines()
            .find(|l| l.starts_with(start))
            .unwrap_or_else(|| panic!("no line starting {start:?} in:\n{block}"));
        let rest = line.split(&format!("{flag} \"")).nth(1).unwrap();
        rest.split('"').next().unwrap().to_owned()
    };
    let dehydrated = block
        .lines()
        .find_map(|l| l.strip_prefix("# dehydrated: HOOK="))
        .expect("the dehydrated HOOK= line");
    ReadmeLines {
        certbot_deploy_hook: quoted("certbot certonly", "--deploy-hook"),
        acme_sh_reloadcmd: quoted("acme.sh --install-cert", "--reloadcmd"),
        dehydrated_hook: dehydrated.split_whitespace().next().unwrap().to_owned(),
    }
}

/// dane-roll as the Debian package installs it, in a private mount namespace.
struct Installed {
    root: PathBuf,
}

impl Installed {
    /// The upper layers under `dir`: this build as `/usr/bin/dane-roll` (the package's path; or
    /// `/usr/local/bin/dane-roll` with `local`, as `cargo install --root /usr/local` puts it),
    /// the dehydrated shim in `/usr/lib/dane-roll/`, `conf` as `/etc/dane-roll/dane-roll.toml`
    /// (0700 directory, 0600 file, as the package and StrictModes want them).
    fn new(dir: &Path, conf: &Path, local: bool) -> Installed {
        let root = dir.to_path_buf();
        for layer in LAYERS {
            std::fs::create_dir_all(root.join(layer).join("upper")).unwrap();
            std::fs::create_dir_all(root.join(layer).join("work")).unwrap();
        }
        let bin = if local { "usr_local_bin" } else { "usr_bin" };
        std::os::unix::fs::symlink(BIN, root.join(bin).join("upper/dane-roll")).unwrap();
        let lib = root.join("usr_lib/upper/dane-roll");
        std::fs::create_dir_all(&lib).unwrap();
        let shim = lib.join("dane-roll-dehydrated-hook");
        std::fs::copy(
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/hooks/dane-roll-dehydrated-hook"
            ),
            &shim,
        )
        .unwrap();
        std::fs::set_permissions(&shim, std::fs::Permissions::from_mode(0o755)).unwrap();
        let etc = root.join("etc/upper/dane-roll");
        std::fs::create_dir_all(&etc).unwrap();
        std::fs::set_permissions(&etc, std::fs::Permissions::from_mode(0o700)).unwrap();
        let file = etc.join("dane-roll.toml");
        std::fs::copy(conf, &file).unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        Installed { root }
    }

    /// `program args…` in the namespace under `env -i PATH=BARE_PATH` plus `env` only.
    fn command<S: AsRef<OsStr>>(
        &self,
        program: impl AsRef<OsStr>,
        args: impl IntoIterator<Item = S>,
        env: &[(&str, &OsStr)],
    ) -> Command {
        const MOUNT: &str = r#"set -e
r=$1; shift
for d in usr/bin usr/local/bin usr/lib etc; do
    n=$(echo "$d" | tr / _)
    mount -t overlay overlay -o "lowerdir=/$d,upperdir=$r/$n/upper,workdir=$r/$n/work" "/$d"
done
exec "$@""#;
        let mut c = Command::new("unshare");
        c.args(["-m", "--propagation", "private", "sh", "-c", MOUNT, "sh"])
            .arg(&self.root)
            .args(["env", "-i"])
            .arg(format!("PATH={BARE_PATH}"));
        for (k, v) in env {
            let mut kv = OsString::from(k);
            kv.push("=");
            kv.push(v);
            c.arg(kv);
        }
        c.arg(program).args(args).stdin(Stdio::null());
        c
    }

    /// A lab client's command (program, arguments, its own environment) run this way.
    fn wrap(&self, cmd: &Command) -> Command {
        let envs: Vec<(String, OsString)> = cmd
            .get_envs()
            .filter_map(|(k, v)| Some((k.to_str()?.to_owned(), v?.to_owned())))
            .collect();
        let env: Vec<(&str, &OsStr)> = envs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_os_str()))
            .collect();
        self.command(cmd.get_program(), cmd.get_args(), &env)
    }

    /// `/usr/bin/dane-roll ARGS…` as the timer runs it: no `-c`, the default configuration.
    fn dane_roll(&self, args: &[&str], env: &[(&str, &OsStr)]) -> Output {
        self.command("/usr/bin/dane-roll", args, env)
            .output()
            .unwrap()
    }
}

#[test]
fn readme_lines_name_programs_the_bare_path_finds() {
    let lines = readme_lines();
    for line in [&lines.certbot_deploy_hook, &lines.acme_sh_reloadcmd] {
        let program = line.split_whitespace().next().unwrap();
        assert!(
            program.starts_with('/')
                || BARE_PATH
                    .split(':')
                    .any(|d| Path::new(d).join(program).is_file()),
            "{line:?}: {program} is neither a path nor in {BARE_PATH}"
        );
        assert!(
            !line.contains("DANE_ROLL_CONFIG"),
            "the default path: {line}"
        );
    }
    assert!(lines.dehydrated_hook.starts_with('/'));
}

#[test]
fn certbot_readme_hook_line_under_a_bare_environment_then_rotate_with_domains_alone() {
    if !require(&rollover_tools(true)) || !require(&["pebble", "curl", "certbot"]) {
        return;
    }
    let lines = readme_lines();
    // No `lineage`: the service has its `domains` only.
    let mail = Mail::start(|_| None);
    let pebble = Pebble::start(&mail.lab.sub("pebble").unwrap(), mail.block).unwrap();
    let cb = Certbot::new(&mail.lab.sub("certbot").unwrap(), &pebble).unwrap();
    let installed = Installed::new(&mail.lab.sub("installed").unwrap(), &mail.conf, false);
    let live = cb.live_dir(MX_HOST);

    // 1. The README's certonly line, its deploy hook as written.
    let mut certonly = cb.command("certonly");
    certonly.args([
        "--manual",
        "--preferred-challenges",
        "dns",
        "--manual-auth-hook",
        "/bin/true",
        "--agree-tos",
        "--register-unsafely-without-email",
        "-d",
        MX_HOST,
        "--reuse-key",
        "--key-type",
        "ecdsa",
        "--deploy-hook",
        &lines.certbot_deploy_hook,
    ]);
    let out = installed.wrap(&certonly).output().unwrap();
    ok(&out, "certbot certonly with the README's deploy hook");
    let k1 = cert_key(&live.join("cert.pem"));
    assert!(
        mail.tlsa_everywhere().contains(&rdata(&k1)),
        "the hook published the new key:\n{}",
        text(&out)
    );
    // The timer's line.
    ok(
        &installed.dane_roll(&["run", "--wait"], &[]),
        "dane-roll run --wait",
    );
    assert_eq!(mail.served(), k1, "the MX serves certbot's certificate");
    mail.verified("after the first certificate");

    // 2. rotate with `domains` alone: the lineage is derived, certbot renews with the next key,
    //    its stored deploy hook (the README's line) hands it over under the bare environment.
    let (n1, _) = mail.next_key().expect("a published next key");
    let rotate_args = mail.rotate_args(&cb.config_dir(), &pebble);
    let args: Vec<&str> = rotate_args.iter().map(String::as_str).collect();
    let ca = pebble.ca_file().as_os_str();
    let out = installed.dane_roll(&args, &[("REQUESTS_CA_BUNDLE", ca)]);
    let said = ok(&out, "dane-roll rotate mx (domains alone)");
    assert!(
        said.contains(&format!(
            "certbot's lineage {} is for its domains",
            live.display()
        )),
        "{said}"
    );
    assert!(
        said.contains("certbot issued a certificate for the next key"),
        "{said}"
    );
    assert!(
        said.contains("certbot's deploy hook handed it to dane-roll"),
        "the stored README hook ran: {said}"
    );
    ok(
        &installed.dane_roll(&["run", "--wait"], &[]),
        "dane-roll run --wait",
    );
    assert_eq!(cert_key(&live.join("cert.pem")), n1);
    assert_eq!(mail.served(), n1, "the MX serves the next key");
    assert!(!mail.tlsa_everywhere().contains(&rdata(&k1)), "K1 retired");
    mail.verified("after rotate");
    mail.nothing_deferred();
}

#[test]
fn dehydrated_readme_hook_line_under_a_bare_environment() {
    if !require(&rollover_tools(true)) || !require(&["pebble", "curl", "dehydrated"]) {
        return;
    }
    let lines = readme_lines();
    let mail = Mail::start(|_| None);
    let pebble = Pebble::start(&mail.lab.sub("pebble").unwrap(), mail.block).unwrap();
    let dh = Dehydrated::new(&mail.lab.sub("dehydrated").unwrap(), &pebble).unwrap();
    let installed = Installed::new(&mail.lab.sub("installed").unwrap(), &mail.conf, false);
    // The README's settings, nothing else: no DANE_ROLL, no DANE_ROLL_CONFIG.
    let mut config = std::fs::read_to_string(dh.config_file()).unwrap();
    config.push_str(&format!(
        "HOOK=\"{}\"\nPRIVATE_KEY_RENEW=\"yes\"\nPRIVATE_KEY_ROLLOVER=\"yes\"\n",
        lines.dehydrated_hook
    ));
    std::fs::write(dh.config_file(), config).unwrap();

    let mut cron = Command::new("dehydrated");
    cron.arg("--config").arg(dh.config_file()).args([
        "--cron",
        "--accept-terms",
        "--domain",
        MX_HOST,
    ]);
    let out = installed.wrap(&cron).output().unwrap();
    ok(&out, "dehydrated --cron with the README's HOOK");
    let dir = dh.cert_dir(MX_HOST);
    let k1 = key_of(&dir.join("privkey.pem"));
    let r1 = key_of(&dir.join("privkey.roll.pem"));
    let records = mail.tlsa_everywhere();
    assert!(
        records.contains(&rdata(&k1)) && records.contains(&rdata(&r1)),
        "the hook published the key and the roll key: {records:?}\n{}",
        text(&out)
    );
    ok(
        &installed.dane_roll(&["run", "--wait"], &[]),
        "dane-roll run --wait",
    );
    assert_eq!(mail.served(), k1);
    assert_eq!(mail.next_key().map(|n| n.0), Some(r1));
    mail.verified("after");
    mail.nothing_deferred();
}

#[test]
fn acme_sh_readme_reloadcmd_under_a_bare_environment() {
    acme_sh_reloadcmd(false);
}

/// Installed with `cargo install --root /usr/local`: the README's line with the path it says to
/// write then. `/usr/local/bin` is not in the bare PATH, so a bare `dane-roll` is not found.
#[test]
fn acme_sh_readme_reloadcmd_after_cargo_install_under_a_bare_environment() {
    acme_sh_reloadcmd(true);
}

fn acme_sh_reloadcmd(local: bool) {
    if !require(&rollover_tools(true)) {
        return;
    }
    let lines = readme_lines();
    let reloadcmd = if local {
        lines
            .acme_sh_reloadcmd
            .replace("/usr/bin/dane-roll", "/usr/local/bin/dane-roll")
    } else {
        lines.acme_sh_reloadcmd.clone()
    };
    let mail = Mail::start(|_| None);
    let installed = Installed::new(&mail.lab.sub("installed").unwrap(), &mail.conf, local);
    let ca = pki::TestPki::new(KeyKind::EcdsaP256).unwrap();
    let dir = mail.acme_sh_dir();
    let next = pki::new_key(KeyKind::EcdsaP256).unwrap();
    let n1 = KeyHash::of_spki_der(&next.public_key_to_der().unwrap());
    let k1 = acme_sh_issue(&ca, &dir, pki::new_key(KeyKind::EcdsaP256).unwrap(), &next);

    // acme.sh's cron line runs `acme.sh --cron` with sh (`#!/usr/bin/env sh`).
    let args: Vec<&OsStr> = vec![
        OsStr::new("-c"),
        OsStr::new(INSTALLCERT),
        OsStr::new("sh"),
        OsStr::new(&reloadcmd),
        dir.as_os_str(),
        OsStr::new(MX_HOST),
    ];
    let out = installed.command("sh", args, &[]).output().unwrap();
    let said = ok(&out, "acme.sh's _installcert with the README's reloadcmd");
    assert!(said.contains("Reload successful"), "{said}");
    let records = mail.tlsa_everywhere();
    assert!(records.contains(&rdata(&k1)), "{records:?}\n{said}");
    assert!(records.contains(&rdata(&n1)), "<key>.next: {records:?}");
    let program = if local {
        "/usr/local/bin/dane-roll"
    } else {
        "/usr/bin/dane-roll"
    };
    let out = installed
        .command(program, ["run", "--wait"], &[])
        .output()
        .unwrap();
    ok(&out, "dane-roll run --wait");
    assert_eq!(mail.served(), k1);
    mail.verified("after");
    mail.nothing_deferred();
}
