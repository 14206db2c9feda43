//! Files and reloads for more than Postfix (issue 16): a service that also names `cert-file`,
//! `key-file` and `fullchain-file` (as Dovecot reads them) and two reload commands gets every
//! output written, with its mode, before the reloads run in order, on the lab (real BIND, Knot,
//! Unbound, the receiving Postfix and the DANE-enforcing sender that judges the mail).
//!
//! Skipped outside CI when a server is missing (see `dane_roll_lab::require`).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use dane_roll_lab::conf::{quote, rollover_tools};
use dane_roll_lab::require;
use dane_roll_lab::world::{World, text};

const BIN: &str = env!("CARGO_BIN_EXE_dane-roll");
const TTL: u32 = 2;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn a_rollover_writes_every_output_and_runs_each_reload_in_order() {
    if !require(&rollover_tools(true)) {
        return;
    }
    let mut w = World::start(BIN, TTL);
    let out_dir = w.files.join("dovecot");
    std::fs::create_dir(&out_dir).unwrap();
    let (cert_file, key_file, fullchain_file) = (
        out_dir.join("cert.pem"),
        out_dir.join("key.pem"),
        out_dir.join("fullchain.pem"),
    );
    // The second reload stands for `doveadm reload`: it records that it ran, and what the key
    // file held when it did (so the outputs were in place before it).
    let marker = w.files.join("second-reload.log");
    let second = w.files.join("second-reload.sh");
    std::fs::write(
        &second,
        format!(
            "#!/bin/sh\nsha256sum {} >> {}\n",
            quote(&key_file.display().to_string()),
            quote(&marker.display().to_string())
        ),
    )
    .unwrap();
    std::fs::set_permissions(&second, std::fs::Permissions::from_mode(0o755)).unwrap();
    w.rewrite(|c| {
        c.service_extra = format!(
            "cert-file = {}\nkey-file = {}\nfullchain-file = {}\n",
            quote(&cert_file.display().to_string()),
            quote(&key_file.display().to_string()),
            quote(&fullchain_file.display().to_string()),
        );
        c.more_reloads = vec![vec![second.display().to_string()]];
    });
    let out = w.run(&["config", "check"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    let (new, cert, key) = w.new_leaf("new");
    let out = w.run(&World::deploy_args(&cert, &key, &["--wait"]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    // Postfix (the first reload) serves the new certificate, and mail is Verified.
    let served = w.rx.served_chain().unwrap();
    assert_eq!(served[0].to_der().unwrap(), new.cert.to_der().unwrap());
    w.assert_mail_verified("after the rollover");

    // Every output holds its part of the new key and chain, with its mode.
    let key_pem = std::fs::read(&key_file).unwrap();
    assert_eq!(key_pem, new.key.private_key_to_pem_pkcs8().unwrap());
    assert_eq!(
        std::fs::read(&cert_file).unwrap(),
        new.cert.to_pem().unwrap()
    );
    let mut chain = new.cert.to_pem().unwrap();
    for c in &new.chain {
        chain.extend(c.to_pem().unwrap());
    }
    assert!(!new.chain.is_empty(), "the lab's leaf has an issuer");
    assert_eq!(std::fs::read(&fullchain_file).unwrap(), chain);
    assert_eq!(mode(&key_file), 0o600);
    assert_eq!(mode(&cert_file), 0o644);
    assert_eq!(mode(&fullchain_file), 0o644);

    // The second reload ran, and the new key was already in place when it did.
    let log = std::fs::read_to_string(&marker).unwrap();
    let digest = openssl::sha::sha256(&key_pem);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    assert!(
        log.lines().any(|l| l.starts_with(&hex)),
        "the second reload never saw the new key file: {log}"
    );
}

/// Every key-bearing file under `staged/`, by name, with its contents.
fn staged_files(state: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut dirs = vec![state.join("staged")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                let name = path.strip_prefix(state).unwrap().display().to_string();
                out.push((name, std::fs::read(&path).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn old_private_keys_are_deleted_once_the_rollover_after_them_is_done() {
    if !require(&rollover_tools(true)) {
        return;
    }
    let w = World::start(BIN, TTL);
    let old_key = w.old.key.private_key_to_pem_pkcs8().unwrap();
    let holds = |files: &[(String, Vec<u8>)], key: &[u8]| -> Vec<String> {
        files
            .iter()
            .filter(|(_, data)| data.windows(key.len()).any(|win| win == key))
            .map(|(name, _)| name.clone())
            .collect()
    };

    // First rollover: the old key stays (as the backup for a rollback of this rollover).
    let (first, cert, key) = w.new_leaf("first");
    let out = w.run(&World::deploy_args(&cert, &key, &["--wait"]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let files = staged_files(&w.state);
    assert!(
        !holds(&files, &old_key).is_empty(),
        "the previous key is kept: {files:?}"
    );

    // Second rollover: done, so the key before the previous one is gone; the previous one
    // (the first) stays for a rollback until the rollover after it is done.
    let (second, cert, key) = w.new_leaf("second");
    let out = w.run(&World::deploy_args(&cert, &key, &["--wait"]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    w.assert_mail_verified("after two rollovers");
    let files = staged_files(&w.state);
    let names: Vec<&String> = files.iter().map(|(n, _)| n).collect();
    assert_eq!(holds(&files, &old_key), Vec::<String>::new(), "{names:?}");
    let first_key = first.key.private_key_to_pem_pkcs8().unwrap();
    let second_key = second.key.private_key_to_pem_pkcs8().unwrap();
    assert_eq!(
        holds(&files, &first_key).len(),
        1,
        "only the backup: {names:?}"
    );
    assert!(!holds(&files, &second_key).is_empty(), "{names:?}");
    // And the generated next key (the store names it) stays.
    assert!(
        names
            .iter()
            .any(|n| n.contains("next-") && n.ends_with(".key")),
        "{names:?}"
    );
}
