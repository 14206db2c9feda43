//! Tests of certbot lineage staging, hook detection and key hashing.
use super::*;
use std::os::unix::fs::{PermissionsExt, symlink};

fn key_pem() -> Vec<u8> {
    let group = openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap();
    let key =
        openssl::pkey::PKey::from_ec_key(openssl::ec::EcKey::generate(&group).unwrap()).unwrap();
    key.private_key_to_pem_pkcs8().unwrap()
}

/// A lineage as certbot lays it out: archive/x/{cert,chain,fullchain,privkey}{1,2}.pem and
/// live/x/*.pem relative links to version 2.
fn lineage(root: &Path) -> Lineage {
    let archive = root.join("archive/x");
    let live = root.join("live/x");
    fs::create_dir_all(&archive).unwrap();
    fs::create_dir_all(&live).unwrap();
    for v in 1..=2 {
        for kind in KINDS {
            fs::write(archive.join(format!("{kind}{v}.pem")), key_pem()).unwrap();
        }
    }
    for kind in KINDS {
        symlink(
            format!("../../archive/x/{kind}2.pem"),
            live.join(format!("{kind}.pem")),
        )
        .unwrap();
    }
    Lineage::open(&live).unwrap()
}

/// A [`lineage`] in a new temporary directory, and a new key in `next.key` beside it.
fn lineage_and_next_key() -> (tempfile::TempDir, Lineage, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let l = lineage(dir.path());
    let next = dir.path().join("next.key");
    fs::write(&next, key_pem()).unwrap();
    (dir, l, next)
}

/// Point the live `privkey.pem` link at archive version `version`, as certbot does.
fn certbot_links_privkey(l: &Lineage, version: u32) {
    fs::remove_file(l.privkey_link()).unwrap();
    symlink(
        format!("../../archive/x/privkey{version}.pem"),
        l.privkey_link(),
    )
    .unwrap();
}

#[test]
fn config_dir_from_passed_through_arguments() {
    let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(certbot_config_dir(&[]), Path::new("/etc/letsencrypt"));
    assert_eq!(
        certbot_config_dir(&args(&["--work-dir", "/w", "--config-dir", "/c"])),
        Path::new("/c")
    );
    assert_eq!(
        certbot_config_dir(&args(&["--config-dir=/a", "--config-dir", "/b"])),
        Path::new("/b")
    );
    assert_eq!(
        live_dir("mail.example.com", Path::new("/c")),
        Path::new("/c/live/mail.example.com")
    );
    assert_eq!(
        live_dir("/x/live/y", Path::new("/c")),
        Path::new("/x/live/y")
    );
}

#[test]
fn versions_are_parsed_strictly() {
    assert_eq!(version_of(OsStr::new("privkey12.pem")), Some(12));
    assert_eq!(version_of(OsStr::new("fullchain3.pem")), Some(3));
    assert_eq!(version_of(OsStr::new("privkey.pem")), None);
    assert_eq!(version_of(OsStr::new("privkey1.pem.bak")), None);
    assert_eq!(version_of(OsStr::new("other7.pem")), None);
}

#[test]
fn stage_then_undo_leaves_the_lineage_as_it_was() {
    let (_dir, l, next) = lineage_and_next_key();
    assert_eq!(l.name(), "x");
    assert_eq!(l.max_version().unwrap(), 2);
    let pem = fs::read(&next).unwrap();
    let before = fs::read_link(l.privkey_link()).unwrap();

    let staged = l.stage(&next).unwrap();
    let file = l.archive.join("privkey3.pem");
    assert_eq!(staged.staged_file(), file);
    assert_eq!(fs::read(&file).unwrap(), pem);
    assert_eq!(
        fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        fs::read_link(l.privkey_link()).unwrap(),
        Path::new("../../archive/x/privkey3.pem"),
        "relative, like certbot's"
    );
    assert_eq!(
        key_hash(&l.privkey_link()).unwrap(),
        key_hash(&next).unwrap()
    );
    let leftovers: Vec<_> = fs::read_dir(&l.live)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().contains("dane-roll"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    staged.undo().unwrap();
    assert_eq!(fs::read_link(l.privkey_link()).unwrap(), before);
    assert!(!file.exists(), "the staged copy is deleted");
}

#[test]
fn finish_deletes_an_unused_copy_and_keeps_a_used_one() {
    let (_dir, l, next) = lineage_and_next_key();

    // certbot wrote version 4 as a file and moved the links there: the copy is unused.
    let staged = l.stage(&next).unwrap();
    fs::copy(staged.staged_file(), l.archive.join("privkey4.pem")).unwrap();
    certbot_links_privkey(&l, 4);
    assert!(staged.finish().unwrap());
    assert!(!l.archive.join("privkey3.pem").exists());

    // A version that is a link to the copy keeps it.
    let staged = l.stage(&next).unwrap();
    let file = staged.staged_file().to_path_buf();
    symlink(file.file_name().unwrap(), l.archive.join("privkey9.pem")).unwrap();
    certbot_links_privkey(&l, 9);
    assert!(!staged.finish().unwrap());
    assert!(file.exists());
}

#[test]
fn undo_leaves_a_link_certbot_moved_on() {
    let (_dir, l, next) = lineage_and_next_key();
    let staged = l.stage(&next).unwrap();
    certbot_links_privkey(&l, 1);
    staged.undo().unwrap();
    assert_eq!(
        fs::read_link(l.privkey_link()).unwrap(),
        Path::new("../../archive/x/privkey1.pem")
    );
}

#[test]
fn refusals_name_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let err = Lineage::open(&dir.path().join("live/none")).unwrap_err();
    assert!(
        err.to_string()
            .contains("live/none is not a certbot lineage"),
        "{err}"
    );
    let l = lineage(dir.path());
    let der = dir.path().join("next.der");
    fs::write(&der, [0x30, 0x03, 0x02, 0x01, 0x00]).unwrap();
    let err = l.stage(&der).unwrap_err();
    assert!(matches!(err, RotateError::NotPem { .. }), "{err:?}");
    assert_eq!(l.max_version().unwrap(), 2, "nothing staged");
}

#[test]
fn stored_hook_is_read_from_the_renewal_conf() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir_all(dir.path().join("renewal")).unwrap();
    fs::write(
        dir.path().join("renewal/x.conf"),
        "version = 2.1.0\n[renewalparams]\nreuse_key = True\nrenew_hook = /usr/bin/dane-roll hook certbot --wait\n",
    )
    .unwrap();
    assert_eq!(
        stored_deploy_hook(dir.path(), "x").as_deref(),
        Some("/usr/bin/dane-roll hook certbot --wait")
    );
    assert_eq!(stored_deploy_hook(dir.path(), "y"), None);
}

#[test]
fn a_dane_roll_hook_in_the_deploy_directory_is_found() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(directory_deploy_hook(dir.path()), None);
    let hooks = dir.path().join("renewal-hooks/deploy");
    fs::create_dir_all(&hooks).unwrap();
    let other = hooks.join("reload-nginx");
    fs::write(&other, "#!/bin/sh\nsystemctl reload nginx\n").unwrap();
    fs::set_permissions(&other, fs::Permissions::from_mode(0o755)).unwrap();
    let ours = hooks.join("dane-roll");
    fs::write(
        &ours,
        "#!/bin/sh\nexec /usr/lib/dane-roll/dane-roll-certbot-hook\n",
    )
    .unwrap();
    fs::set_permissions(&ours, fs::Permissions::from_mode(0o644)).unwrap();
    assert_eq!(
        directory_deploy_hook(dir.path()),
        None,
        "not executable: certbot skips it"
    );
    fs::set_permissions(&ours, fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(directory_deploy_hook(dir.path()), Some(ours));
}
