//! Issue 14, "Root-safe by construction": the files dane-roll writes and reads as root, and the
//! permissions it trusts. Each test plays one attack by a local user (a symlink or hard link
//! planted where root writes, a FIFO where root reads, a configuration or state directory another
//! user can change) and checks that root does not fall for it. Runs as root (tests that need
//! another owner give files to uid 65534, `nobody`).

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use dane_roll::config::{Config, ConfigError};
use dane_roll::store::{Store, StoreError};
use dane_roll::{install, lock, pki};

const NOBODY: u32 = 65534;
const VICTIM: &[u8] = b"root:$6$precious-hash:19000:0:99999:7:::\n";

fn mode(p: &Path) -> u32 {
    fs::symlink_metadata(p).unwrap().mode() & 0o7777
}

fn chmod(p: &Path, m: u32) {
    fs::set_permissions(p, fs::Permissions::from_mode(m)).unwrap();
}

fn chown(p: &Path, uid: u32) {
    std::os::unix::fs::chown(p, Some(uid), None).unwrap();
}

/// A directory of our own (0755, root) under a fresh tempdir, and a victim file beside it that
/// an attacker would like root to overwrite.
struct Scene {
    _top: tempfile::TempDir,
    dir: PathBuf,
    victim: PathBuf,
}

impl Scene {
    fn new() -> Scene {
        let top = tempfile::tempdir().unwrap();
        let dir = top.path().join("work");
        fs::create_dir(&dir).unwrap();
        chmod(&dir, 0o755);
        let victim = top.path().join("shadow");
        fs::write(&victim, VICTIM).unwrap();
        chmod(&victim, 0o640);
        Scene {
            _top: top,
            dir,
            victim,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn victim_untouched(&self) {
        assert_eq!(
            fs::read(&self.victim).unwrap(),
            VICTIM,
            "root wrote the victim file"
        );
        assert_eq!(mode(&self.victim), 0o640, "root changed the victim's mode");
    }
}

/// Run `f` on a thread; `None` when it did not finish within `limit` (a FIFO hangs the old code).
fn within<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit).ok()
}

fn mkfifo(p: &Path) {
    let status = Command::new("mkfifo").arg(p).status().unwrap();
    assert!(status.success());
}

/// A valid configuration: one service, a Cloudflare provider with a token file.
fn config_text(dir: &Path, extra: &str) -> String {
    let token = dir.join("token");
    fs::write(&token, "t0k3n\n").unwrap();
    chmod(&token, 0o600);
    format!(
        "state-dir = \"{state}\"\n[resolver]\naddress = \"127.0.0.1\"\n\n\
         [[service]]\nname = \"mx\"\nendpoints = [\"mail.example.com:25/smtp\"]\n\
         chain-file = \"{chain}\"\nprovider = \"cf\"\n{extra}\n\n\
         [provider.cf]\nkind = \"cloudflare\"\ntoken-file = \"{token}\"\n",
        state = dir.join("state").display(),
        chain = dir.join("mx.pem").display(),
        token = token.display(),
    )
}

fn write_config(dir: &Path, extra: &str) -> PathBuf {
    let path = dir.join("dane-roll.toml");
    fs::write(&path, config_text(dir, extra)).unwrap();
    chmod(&path, 0o644);
    path
}

/// `dane-roll -c CONFIG config check`, killed after 20 s: (exit code, stderr); code -1 = hung.
fn config_check(config: &Path) -> (i32, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_dane-roll"))
        .env_remove("DANE_ROLL_CONFIG")
        .arg("-c")
        .arg(config)
        .args(["config", "check"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            use std::io::Read;
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            let code = status.code().unwrap_or(-2);
            assert_ne!(code, 101, "panicked: {err}");
            return (code, err);
        }
        if start.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            let _ = child.wait();
            return (-1, "hung".to_owned());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

// --- Files written as root ---------------------------------------------------------------

/// The old temporary name was `.<file>.dane-roll.tmp.<pid>`, opened with O_TRUNC and following
/// links: a link planted there made root write the key into any file.
#[test]
fn a_symlink_at_the_old_predictable_temporary_name_is_never_followed() {
    let s = Scene::new();
    let target = s.path("chain.pem");
    let planted = s.path(&format!(".chain.pem.dane-roll.tmp.{}", std::process::id()));
    symlink(&s.victim, &planted).unwrap();
    install::write_atomic_mode(&target, b"PRIVATE KEY + CHAIN", 0o600).unwrap();
    s.victim_untouched();
    assert_eq!(fs::read(&target).unwrap(), b"PRIVATE KEY + CHAIN");
    assert!(fs::symlink_metadata(&target).unwrap().is_file());
    assert_eq!(mode(&target), 0o600);
    // The planted link is left alone, still a link (it is not ours to remove).
    assert!(
        fs::symlink_metadata(&planted)
            .unwrap()
            .file_type()
            .is_symlink()
    );
}

/// The lock file was opened through a symlink and truncated.
#[test]
fn a_symlink_at_the_lock_file_is_refused_and_not_written_through() {
    let s = Scene::new();
    let state = s.path("state");
    fs::create_dir_all(state.join("locks")).unwrap();
    chmod(&state, 0o700);
    chmod(&state.join("locks"), 0o700);
    symlink(&s.victim, state.join("locks/mx.lock")).unwrap();
    let err = lock::acquire(&state, "mx", "dane-roll run", Duration::ZERO).unwrap_err();
    s.victim_untouched();
    let text = err.to_string();
    assert!(text.contains("mx.lock"), "{text}");
    assert!(text.contains("symbolic link"), "{text}");
}

/// A hard link to another file at the lock file's name, or a lock file owned by another user,
/// is not ours: it is neither truncated nor written.
#[test]
fn a_lock_file_that_is_not_ours_is_never_truncated() {
    let s = Scene::new();
    let state = s.path("state");
    fs::create_dir_all(state.join("locks")).unwrap();
    chmod(&state, 0o700);
    chmod(&state.join("locks"), 0o700);
    let lock_file = state.join("locks/mx.lock");
    fs::hard_link(&s.victim, &lock_file).unwrap();
    let err = lock::acquire(&state, "mx", "dane-roll run", Duration::ZERO).unwrap_err();
    s.victim_untouched();
    assert!(err.to_string().contains("hard link"), "{err}");
    fs::remove_file(&lock_file).unwrap();

    fs::write(&lock_file, b"someone else's\n").unwrap();
    chown(&lock_file, NOBODY);
    let err = lock::acquire(&state, "mx", "dane-roll run", Duration::ZERO).unwrap_err();
    assert!(err.to_string().contains("uid 65534"), "{err}");
    assert_eq!(fs::read(&lock_file).unwrap(), b"someone else's\n");
}

/// A key+chain file replaced a 0644 file and kept its 0644: the private key became readable by
/// every user.
#[test]
fn an_installed_key_never_inherits_0644_from_the_file_it_replaces() {
    let s = Scene::new();
    let target = s.path("mx.pem");
    fs::write(&target, b"old certificate").unwrap();
    chmod(&target, 0o644);
    chown(&target, NOBODY);
    install::write_atomic(&target, b"PRIVATE KEY + CHAIN", install::NEW_FILE_MODE).unwrap();
    assert_eq!(mode(&target), 0o600);
    // Nor its owner: the old file's owner must not receive the key.
    assert_eq!(fs::metadata(&target).unwrap().uid(), 0);
}

/// A FIFO where root reads a configuration hung `dane-roll` forever.
#[test]
fn a_fifo_as_configuration_is_refused_at_once() {
    let s = Scene::new();
    let fifo = s.path("dane-roll.toml");
    mkfifo(&fifo);
    chmod(&fifo, 0o644);
    let (code, err) = config_check(&fifo);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("FIFO"), "{err}");
}

/// A FIFO where root reads a key or a certificate.
#[test]
fn a_fifo_as_key_or_certificate_is_refused_at_once() {
    let s = Scene::new();
    let fifo = s.path("cert.pem");
    mkfifo(&fifo);
    let result = within(Duration::from_secs(5), move || {
        pki::load(&fifo).map(|_| ()).map_err(|e| e.to_string())
    });
    let err = result.expect("pki::load hung on a FIFO").unwrap_err();
    assert!(err.contains("FIFO"), "{err}");
}

/// A FIFO planted at a key path an ACME client names hung the hook's look at it.
#[test]
fn a_fifo_at_a_hook_key_path_is_not_a_key_and_does_not_hang() {
    use dane_roll::hooks::{Disk, FileState, Files};
    let s = Scene::new();
    let fifo = s.path("privkey.pem");
    mkfifo(&fifo);
    let state = within(Duration::from_secs(5), move || Disk.state(&fifo));
    assert_eq!(state.expect("the hook hung on a FIFO"), FileState::Missing);
}

/// A FIFO at `state.db` hung SQLite's open.
#[test]
fn a_fifo_as_state_database_is_refused_at_once() {
    let s = Scene::new();
    let state = s.path("state");
    fs::create_dir(&state).unwrap();
    chmod(&state, 0o700);
    mkfifo(&state.join("state.db"));
    let result = within(Duration::from_secs(5), move || {
        Store::open(&state).map(|_| ()).map_err(|e| e.to_string())
    });
    let err = result.expect("Store::open hung on a FIFO").unwrap_err();
    assert!(err.contains("FIFO"), "{err}");
}

// --- Permissions as OpenSSH's StrictModes and sudo see them --------------------------------

/// A configuration names commands run as root; one that another user can change is refused,
/// naming the path and the fix, and `config check` reports it.
#[test]
fn a_group_writable_configuration_or_directory_above_it_is_refused() {
    let s = Scene::new();
    let config = write_config(&s.dir, "");
    Config::load(&config).expect("a root-owned 0644 file in a 0755 directory is trusted");

    chmod(&config, 0o664);
    let err = Config::load(&config).unwrap_err();
    assert!(matches!(err, ConfigError::Untrusted(_)), "{err:?}");
    let text = err.to_string();
    assert!(text.contains(&config.display().to_string()), "{text}");
    assert!(text.contains("chmod go-w"), "{text}");
    let (code, stderr) = config_check(&config);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("writable by its group"), "{stderr}");
    chmod(&config, 0o644);

    chmod(&s.dir, 0o775);
    let err = Config::load(&config).unwrap_err().to_string();
    assert!(
        err.contains(&format!("the directory {} above it", s.dir.display())),
        "{err}"
    );
    chmod(&s.dir, 0o755);

    // Owned by another user: refused too.
    chown(&config, NOBODY);
    let err = Config::load(&config).unwrap_err().to_string();
    assert!(err.contains("owned by uid 65534"), "{err}");
    chown(&config, 0);
}

/// `/tmp`-like directories (sticky, world-writable) above are acceptable as long as the entry
/// below is root's or the invoker's: another user can neither rename nor remove it.
#[test]
fn a_sticky_world_writable_directory_above_is_accepted_only_over_our_own_entries() {
    let s = Scene::new();
    let config = write_config(&s.dir, "");
    chmod(&s.dir, 0o1777);
    Config::load(&config).expect("sticky directory above a root-owned file");
    chown(&config, NOBODY);
    let err = Config::load(&config).unwrap_err().to_string();
    assert!(err.contains("owned by uid 65534"), "{err}");
    chown(&config, 0);
    // Without the sticky bit, the world-writable directory is refused.
    chmod(&s.dir, 0o777);
    assert!(Config::load(&config).is_err());
    chmod(&s.dir, 0o755);
}

/// A state directory that is group-writable or owned by another user is refused for writing.
#[test]
fn a_state_directory_others_can_write_is_refused() {
    let s = Scene::new();
    let state = s.path("state");
    let store = Store::open(&state).unwrap();
    drop(store);
    assert_eq!(mode(&state), 0o700, "created 0700");

    chmod(&state, 0o770);
    let err = Store::open(&state).unwrap_err();
    assert!(matches!(err, StoreError::Untrusted(_)), "{err:?}");
    assert!(err.to_string().contains("chmod go-w"), "{err}");
    chmod(&state, 0o700);

    chown(&state, NOBODY);
    let err = Store::open(&state).unwrap_err();
    assert!(err.to_string().contains("owned by uid 65534"), "{err}");
    chown(&state, 0);
    Store::open(&state).unwrap();
}

/// A 0-byte (or schema-less) `state.db` beside staged key files is a lost store: dane-roll
/// must stop, not start afresh and forget the rollover.
#[test]
fn an_empty_state_database_beside_staged_files_is_corruption() {
    let s = Scene::new();
    let state = s.path("state");
    fs::create_dir_all(state.join("staged/mx/rsa")).unwrap();
    chmod(&state, 0o700);
    fs::write(state.join("staged/mx/rsa/0123.pem"), b"key+chain").unwrap();
    let db = state.join("state.db");
    fs::write(&db, b"").unwrap();
    chmod(&db, 0o600);
    let err = Store::open(&state).unwrap_err();
    assert!(matches!(err, StoreError::Lost { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("staged"), "{text}");
    assert_eq!(fs::metadata(&db).unwrap().len(), 0, "the evidence is kept");

    // Schema-less but not empty: a database whose tables were dropped.
    fs::remove_file(&db).unwrap();
    schema_less_db(&db);
    assert!(matches!(
        Store::open(&state).unwrap_err(),
        StoreError::Lost { .. }
    ));

    // Without staged files an empty state.db is a fresh store.
    fs::remove_dir_all(state.join("staged")).unwrap();
    fs::write(&db, b"").unwrap();
    Store::open(&state).unwrap();
}

/// A non-empty SQLite database without a table: one was made and dropped.
fn schema_less_db(db: &Path) {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.execute_batch("CREATE TABLE t (a); DROP TABLE t;")
        .unwrap();
    drop(conn);
    assert!(fs::metadata(db).unwrap().len() > 0);
}

// --- New API (does not exist in the code before the fix) ----------------------------------

mod new_api {
    use super::*;
    use dane_roll::fsafe::{self, FileMode};

    /// The temporary file's creation refuses any existing path (file, link, dangling link),
    /// whatever its name.
    #[test]
    fn temporary_creation_refuses_an_existing_path() {
        let s = Scene::new();
        let link = s.path("link");
        symlink(&s.victim, &link).unwrap();
        assert_eq!(
            fsafe::create_new(&link, 0o600).unwrap_err().kind(),
            std::io::ErrorKind::AlreadyExists
        );
        let dangling = s.path("dangling");
        symlink(s.path("would-be-created"), &dangling).unwrap();
        assert!(fsafe::create_new(&dangling, 0o600).is_err());
        assert!(!s.path("would-be-created").exists());
        assert!(fsafe::create_new(&s.victim, 0o600).is_err());
        s.victim_untouched();
    }

    /// `chain-file` a symbolic link: the link is replaced by a regular file; its target (which
    /// another user may have chosen) is never written.
    #[test]
    fn a_chain_file_symlink_is_replaced_not_written_through() {
        let s = Scene::new();
        let staged = s.path("staged.pem");
        fs::write(&staged, b"PRIVATE KEY + CHAIN").unwrap();
        let target = s.path("mx.pem");
        symlink(&s.victim, &target).unwrap();
        install::install_chain(&target, &staged, FileMode::PRIVATE).unwrap();
        s.victim_untouched();
        assert!(fs::symlink_metadata(&target).unwrap().is_file());
        assert_eq!(fs::read(&target).unwrap(), b"PRIVATE KEY + CHAIN");
        assert_eq!(mode(&target), 0o600);
    }

    /// `key-mode = "0640"` and `key-group` for a daemon that reads its key as non-root; a mode
    /// that lets others read the key is refused.
    #[test]
    fn key_mode_and_group_are_configured_and_applied() {
        let s = Scene::new();
        let config = write_config(&s.dir, "key-mode = \"0640\"\nkey-group = \"65534\"");
        let loaded = Config::load(&config).unwrap();
        let file = loaded.services[0].key_file;
        assert_eq!(
            file,
            FileMode {
                mode: 0o640,
                group: Some(NOBODY)
            }
        );
        let staged = s.path("staged.pem");
        fs::write(&staged, b"PRIVATE KEY + CHAIN").unwrap();
        let target = s.path("mx.pem");
        fs::write(&target, b"old").unwrap();
        chmod(&target, 0o644);
        install::install_chain(&target, &staged, file).unwrap();
        assert_eq!(mode(&target), 0o640);
        assert_eq!(fs::metadata(&target).unwrap().gid(), NOBODY);

        let config = write_config(&s.dir, "key-mode = \"0644\"");
        let err = Config::load(&config).unwrap_err().to_string();
        assert!(err.contains("key-mode"), "{err}");
        let config = write_config(&s.dir, "key-group = \"no-such-group-here\"");
        let err = Config::load(&config).unwrap_err().to_string();
        assert!(err.contains("no-such-group-here"), "{err}");
    }

    /// A staged file that is a FIFO is refused at once by the installer.
    #[test]
    fn a_fifo_as_staged_file_is_refused_at_once() {
        let s = Scene::new();
        let fifo = s.path("staged.pem");
        mkfifo(&fifo);
        let target = s.path("mx.pem");
        let result = within(Duration::from_secs(5), move || {
            install::install_chain(&target, &fifo, FileMode::PRIVATE).map_err(|e| e.to_string())
        });
        let err = result.expect("install hung on a FIFO").unwrap_err();
        assert!(err.contains("FIFO"), "{err}");
    }
}
