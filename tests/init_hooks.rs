//! `init --apply` registers the ACME client's hook and adopts what is live (issue 16), each
//! against the client's real layout: acme.sh's domain directory and `DOMAIN.conf` (its
//! `Le_ReloadCmd` read back the way acme.sh's `_read_conf` reads it, and run the way its
//! `_installcert` runs it after a renewal, under the bare environment of its cron line), and
//! dehydrated's `CONFIG_D` read by the real dehydrated (`dehydrated --env`).
//!
//! acme.sh is not packaged, so its two functions are mirrored in shell (acme.sh 3.x:
//! `_read_conf`, `_installcert`); dehydrated is Debian's.

mod acme_sh;
mod init_support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use acme_sh::{INSTALLCERT, READ_CONF, write_domain_files};
use dane_roll::init::discover::acme::{AcmeCert, Client};
use dane_roll::init::register::{self, Places, Registered};
use dane_roll_lab::conf::rollover_tools;
use dane_roll_lab::pki::MX_HOST;
use dane_roll_lab::require;
use dane_roll_lab::world::{JUDGE, OWNER, World, rdata, text};
use init_support::{
    BARE_PATH, BIN, Sources, assert_adopted, bare_run_wait, config_check, lab_tuned,
    postfix_on_pair,
};

fn read_reloadcmd(conf: &Path) -> String {
    let out = Command::new("sh")
        .args(["-c", READ_CONF, "sh"])
        .arg(conf)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8(out.stdout).unwrap()
}

/// acme.sh with a next key on disk and its record published by hand beside the live one:
/// `init --apply` adopts both keys and both records, and stores dane-roll's reload command in
/// `DOMAIN.conf` before the one that was there; a renewal as acme.sh runs it (bare
/// environment) hands the next key to dane-roll, whose run rolls to it and retires the old
/// key's adopted record; `--undo` puts the old reload command back.
#[test]
fn acme_sh_reloadcmd_registered_next_key_adopted_and_a_renewal_rolls() {
    if !require(&rollover_tools(true)) || !require(&["openssl"]) {
        return;
    }
    let w = World::start(BIN, 2);
    let etc = w.rx.instance().etc();
    let home = w.files.join("acme.sh");
    let dir = home.join(format!("{MX_HOST}_ecc"));
    std::fs::create_dir_all(&dir).unwrap();
    let (next, _, _) = w.new_leaf("next");
    write_domain_files(&dir, &w.old, &next.key);
    let marker = w.files.join("old-reloadcmd-ran");
    let old_cmd = format!("touch {}", marker.display());
    let old_line = format!(
        "Le_ReloadCmd='__ACME_BASE64__START_{}__ACME_BASE64__END_'",
        openssl::base64::encode_block(old_cmd.as_bytes())
    );
    let acme_conf = dir.join(format!("{MX_HOST}.conf"));
    let conf_text = format!(
        "Le_Domain='{MX_HOST}'\nLe_Alt='no'\nLe_Keylength='ec-256'\nLe_RealKeyPath=''\n{old_line}\nLe_NextRenewTime='1'\n"
    );
    std::fs::write(&acme_conf, &conf_text).unwrap();
    assert_eq!(
        read_reloadcmd(&acme_conf),
        old_cmd,
        "the mirror reads acme.sh's format"
    );
    postfix_on_pair(
        &w,
        &dir.join("fullchain.cer"),
        &dir.join(format!("{MX_HOST}.key")),
    );
    // The operator published the next key's record beside the live one.
    let next_tlsa = next.tlsa_311().unwrap();
    w.dns.add_tlsa(OWNER, 2, &next_tlsa).unwrap();
    w.dns
        .wait_served_everywhere(OWNER, &next_tlsa, JUDGE)
        .unwrap();
    w.dns.flush_resolver().unwrap();
    w.assert_mail_verified("Postfix on acme.sh's files");

    let conf = w.files.join("dane-roll.toml");
    let tsig = w.tsig_file();
    let resolver = w.dns.resolver_addr().to_string();
    let mut sources = Sources::new(&etc, &w.files);
    sources.letsencrypt = w.files.join("no-le");
    sources.acme_sh = home.clone();
    sources.dehydrated_config = Some(w.files.join("no-dehydrated/config"));
    let init = |extra: &[&str]| {
        sources
            .command(Path::new(BIN), Some(&w.state), &conf)
            .args(["--resolver", &resolver])
            .args(extra)
            .output()
            .unwrap()
    };
    let secret = tsig.display().to_string();
    let out = init(&["--provider-secret-file", &secret]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(
        said.contains("matches the ACME client's next key"),
        "{said}"
    );
    let written = std::fs::read_to_string(&conf).unwrap();
    let tuned = lab_tuned(&written, &w);
    std::fs::write(&conf, tuned).unwrap();
    let check = config_check(&conf);
    assert_eq!(check.status.code(), Some(0), "{}", text(&check));

    let apply = init(&["--apply"]);
    let said = text(&apply);
    assert_eq!(apply.status.code(), Some(0), "{said}");
    w.assert_mail_verified("after --apply");
    let next_hex = next.spki_sha256_hex().unwrap();
    assert_adopted(&conf, &w.old, Some(&next_hex));
    let status = init_support::status_json(&conf);
    let published = status["services"][0]["records"]["published"].to_string();
    assert!(
        published.contains(&rdata(&next)),
        "the next key's record is ours: {status:#}"
    );
    // The reload command acme.sh reads back: dane-roll's, then the one that was there.
    let program = std::fs::canonicalize(BIN).unwrap();
    let reloadcmd = read_reloadcmd(&acme_conf);
    assert!(
        reloadcmd.starts_with(&format!(
            "env DANE_ROLL_CONFIG='{}' {} hook acme.sh; ",
            std::fs::canonicalize(&conf).unwrap().display(),
            program.display()
        )) && reloadcmd.contains(&old_cmd),
        "{reloadcmd}\n{said}"
    );
    let acme_text = std::fs::read_to_string(&acme_conf).unwrap();
    assert!(acme_text.contains("Le_NextRenewTime='1'"), "{acme_text}");

    // A renewal as acme.sh makes it: the next key becomes the key, a new next key beside it.
    let (next2, _, _) = w.new_leaf("next2");
    write_domain_files(&dir, &next, &next2.key);
    let out = Command::new("env")
        .args(["-i", BARE_PATH, "sh", "-c", INSTALLCERT, "sh"])
        .arg(&reloadcmd)
        .arg(&dir)
        .arg(MX_HOST)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let said = text(&out);
    assert!(
        out.status.success() && said.contains("Reload successful"),
        "{said}"
    );
    assert!(
        marker.exists(),
        "the reload command that was there ran: {said}"
    );
    w.assert_mail_verified("after acme.sh's renewal, before the rollover");
    // The timer's run: the rollover to the next key, its record adopted and served for long.
    let run = bare_run_wait(Path::new(BIN), &conf);
    assert_eq!(run.status.code(), Some(0), "{}", text(&run));
    assert_eq!(w.served_spki(), next_hex);
    let (old_rr, next_rr) = (rdata(&w.old), rdata(&next));
    w.wait_tlsa(
        OWNER,
        "the next key's record kept, the old key's retired",
        |set| set.contains(&next_rr) && !set.contains(&old_rr),
    );
    w.assert_mail_verified("after the rollover to acme.sh's next key");

    // --undo: the reload command that was there, as it was; acme.sh's other lines kept.
    let undo = init(&["--undo"]);
    assert_eq!(undo.status.code(), Some(0), "{}", text(&undo));
    assert_eq!(read_reloadcmd(&acme_conf), old_cmd);
    let acme_text = std::fs::read_to_string(&acme_conf).unwrap();
    assert!(acme_text.contains(&old_line), "{acme_text}");
    assert!(
        !dir.join(format!("{MX_HOST}.conf.dane-roll-init.bak"))
            .exists()
    );
}

/// dehydrated's HOOK in a drop-in of its `CONFIG_D`, as the real dehydrated loads it; a
/// challenge hook set before keeps running (first) through the shim; `--undo`'s removal
/// leaves dehydrated as it was.
#[test]
fn dehydrated_hook_in_its_conf_d_as_dehydrated_reads_it() {
    if !require(&["dehydrated"]) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::create_dir_all(dir.join("conf.d")).unwrap();
    let challenge = dir.join("challenge.sh");
    std::fs::write(&challenge, "#!/bin/sh\nexit 0\n").unwrap();
    std::fs::set_permissions(&challenge, std::fs::Permissions::from_mode(0o755)).unwrap();
    let config = dir.join("config");
    std::fs::write(
        &config,
        format!(
            "BASEDIR={d}\nCONFIG_D={d}/conf.d\nCHALLENGETYPE=\"dns-01\"\nHOOK={c}\n",
            d = dir.display(),
            c = challenge.display()
        ),
    )
    .unwrap();
    let shim = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/hooks/dane-roll-dehydrated-hook"
    ));
    let places = Places {
        letsencrypt: dir.join("le"),
        dehydrated_config: config.clone(),
        dehydrated_shim: shim.clone(),
        program: PathBuf::from(BIN),
        config: dir.join("dane-roll.toml"),
    };
    let cert = AcmeCert {
        client: Client::Dehydrated,
        name: MX_HOST.into(),
        dir: dir.join("certs").join(MX_HOST),
        key: PathBuf::new(),
        fullchain: PathBuf::new(),
        next_key: None,
    };
    let hook_seen = || {
        let out = Command::new("env")
            .args(["-i", BARE_PATH, "dehydrated", "--config"])
            .arg(&config)
            .arg("--env")
            .output()
            .unwrap();
        let said = text(&out);
        assert!(out.status.success(), "{said}");
        said.lines()
            .find_map(|l| l.strip_prefix("declare -- HOOK="))
            .map(|v| v.trim_matches('"').to_owned())
            .unwrap_or_else(|| panic!("no HOOK in {said}"))
    };
    assert_eq!(hook_seen(), challenge.display().to_string());

    let added = register::register(&cert, &places).unwrap();
    assert!(matches!(added, Registered::Added(_)), "{added}");
    assert_eq!(hook_seen(), shim.display().to_string());
    let drop_in = std::fs::read_to_string(dir.join("conf.d/dane-roll.sh")).unwrap();
    for want in [
        format!("export DANE_ROLL_OTHER_HOOK='{}'", challenge.display()),
        format!("export DANE_ROLL='{BIN}'"),
        format!(
            "export DANE_ROLL_CONFIG='{}'",
            dir.join("dane-roll.toml").display()
        ),
        "PRIVATE_KEY_ROLLOVER=\"yes\"".to_owned(),
    ] {
        assert!(drop_in.contains(&want), "missing {want:?} in\n{drop_in}");
    }
    // The shim passes a challenge event on to the hook that was there, and answers it.
    let out = Command::new("env")
        .args(["-i", BARE_PATH])
        .arg(format!("DANE_ROLL_OTHER_HOOK={}", challenge.display()))
        .arg(&shim)
        .args(["deploy_challenge", MX_HOST, "token", "value"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(matches!(
        register::register(&cert, &places).unwrap(),
        Registered::Present(_)
    ));

    let removed = register::unregister(&places, &[]).unwrap();
    assert_eq!(removed.len(), 1, "{removed:?}");
    assert!(!dir.join("conf.d/dane-roll.sh").exists());
    assert_eq!(hook_seen(), challenge.display().to_string());
}
