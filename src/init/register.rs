//! The ACME client's hook, registered by `init --apply` and removed by `init --undo`: exactly
//! what was added goes, nothing else.
//!
//! - certbot: a deploy hook in `renewal-hooks/deploy/` (certbot runs every file there after each
//!   renewal, from its timer too). The Debian package ships one there; when a file of that name is
//!   present it is used as it is. Otherwise init writes the package's shim there (0755, marked as
//!   init's), the only file `--undo` removes.
//! - acme.sh: the certificate's `Le_ReloadCmd` in `DOMAIN.conf`, stored the way acme.sh's own
//!   `_savedomainconf Le_ReloadCmd … base64` stores it (`'__ACME_BASE64__START_…__ACME_BASE64__END_'`),
//!   which acme.sh reads back at every renewal. Written here rather than through
//!   `acme.sh --install-cert --reloadcmd`, because that command also rewrites the certificate's
//!   `Le_Real*Path` settings (emptied when not given) and runs the reload command at once. A
//!   reload command already there keeps running, after dane-roll's (acme.sh sees dane-roll's exit
//!   status). The conf is backed up beside it; `--undo` puts back that one line.
//! - dehydrated: `HOOK` in a drop-in of its `CONFIG_D` (Debian's `/etc/dehydrated/conf.d`), with
//!   `PRIVATE_KEY_ROLLOVER="yes"`; a hook already set (a dns-01 hook) goes on running, first,
//!   through the shim's `DANE_ROLL_OTHER_HOOK`. `--undo` removes the drop-in when it is init's.

use std::path::{Path, PathBuf};

use super::InitError;
use super::discover::acme::{AcmeCert, Client};
use super::write::write_new_mode;
use crate::cli::DEFAULT_CONFIG;
use crate::fsafe::{self, FileMode};

/// The first line after the shebang of every file init writes for a hook: only a file with it
/// is ever removed.
pub const MARK: &str = "# Written by `dane-roll init --apply`";

/// The package's certbot deploy hook, which init writes when it is not there.
const CERTBOT_SHIM: &str = include_str!("../../hooks/certbot-deploy-hook.sh");

/// acme.sh's markers of a base64-encoded value (`B64CONF_START`, `B64CONF_END`).
const B64_START: &str = "__ACME_BASE64__START_";
const B64_END: &str = "__ACME_BASE64__END_";

/// The drop-in init writes in dehydrated's `CONFIG_D`.
pub const DEHYDRATED_DROP_IN: &str = "dane-roll.sh";

/// Where the hooks go and what they call.
#[derive(Debug, Clone)]
pub struct Places {
    /// certbot's directory (`/etc/letsencrypt`).
    pub letsencrypt: PathBuf,
    /// dehydrated's configuration file (`/etc/dehydrated/config`).
    pub dehydrated_config: PathBuf,
    /// The dehydrated shim (`/usr/lib/dane-roll/dane-roll-dehydrated-hook`).
    pub dehydrated_shim: PathBuf,
    /// dane-roll, by its absolute path (the clients' timers have a short PATH).
    pub program: PathBuf,
    /// The configuration file the hook must use.
    pub config: PathBuf,
}

/// What registering did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Registered {
    /// Added now (what, where).
    Added(String),
    /// There already (the package's hook, or init's from an earlier --apply).
    Present(String),
    /// Not done, and what the operator does instead.
    NotDone(String),
}

impl std::fmt::Display for Registered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Registered::Added(t) | Registered::Present(t) | Registered::NotDone(t) => {
                f.write_str(t)
            }
        }
    }
}

fn file_err(path: &Path) -> impl FnOnce(std::io::Error) -> InitError + '_ {
    move |source| InitError::File {
        path: path.to_owned(),
        source,
    }
}

/// Whether `path` is a regular file init wrote (its second line is [`MARK`]).
fn is_ours(path: &Path) -> Result<Option<bool>, InitError> {
    match fsafe::read_regular(path) {
        Ok(data) => Ok(Some(
            String::from_utf8_lossy(&data)
                .lines()
                .take(2)
                .any(|l| l.starts_with(MARK)),
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(file_err(path)(e)),
    }
}

/// Register the hook of `cert`'s client.
pub fn register(cert: &AcmeCert, places: &Places) -> Result<Registered, InitError> {
    match cert.client {
        Client::Certbot => certbot(places),
        Client::AcmeSh => acme_sh(cert, places),
        Client::Dehydrated => dehydrated(places),
    }
}

/// Remove what [`register`] added (each client's, where it finds it); what it removed.
pub fn unregister(places: &Places, acme_sh_certs: &[AcmeCert]) -> Result<Vec<String>, InitError> {
    let mut done = Vec::new();
    let hook = certbot_hook(&places.letsencrypt);
    if is_ours(&hook)? == Some(true) {
        std::fs::remove_file(&hook).map_err(file_err(&hook))?;
        done.push(format!("removed certbot's deploy hook {}", hook.display()));
    }
    for cert in acme_sh_certs {
        if let Some(text) = acme_sh_undo(cert)? {
            done.push(text);
        }
    }
    if let Some(dir) = dehydrated_config_d(&places.dehydrated_config)? {
        let drop_in = dir.join(DEHYDRATED_DROP_IN);
        if is_ours(&drop_in)? == Some(true) {
            std::fs::remove_file(&drop_in).map_err(file_err(&drop_in))?;
            done.push(format!(
                "removed dehydrated's drop-in {}",
                drop_in.display()
            ));
        }
    }
    Ok(done)
}

/// The variables the shims read: dane-roll's path and, when not the default, the configuration.
fn settings(places: &Places) -> Vec<(&'static str, String)> {
    let mut out = vec![("DANE_ROLL", places.program.display().to_string())];
    if places.config != Path::new(DEFAULT_CONFIG) {
        out.push(("DANE_ROLL_CONFIG", places.config.display().to_string()));
    }
    out
}

/// A word for the shell, single-quoted.
fn sh_quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', "'\\''"))
}

fn certbot_hook(letsencrypt: &Path) -> PathBuf {
    letsencrypt.join("renewal-hooks/deploy/dane-roll")
}

fn certbot(places: &Places) -> Result<Registered, InitError> {
    let hook = certbot_hook(&places.letsencrypt);
    match is_ours(&hook)? {
        Some(true) => {
            return Ok(Registered::Present(format!(
                "certbot's deploy hook {} (written by an earlier init --apply)",
                hook.display()
            )));
        }
        Some(false) => {
            return Ok(Registered::Present(format!(
                "certbot's deploy hook {} is there (the package's): certbot runs it after every renewal, from its timer too",
                hook.display()
            )));
        }
        None => {}
    }
    if let Some(dir) = hook.parent() {
        std::fs::create_dir_all(dir).map_err(file_err(dir))?;
    }
    let body = CERTBOT_SHIM
        .split_once('\n')
        .map_or(CERTBOT_SHIM, |(_, rest)| rest);
    let text = format!(
        "#!/bin/sh\n{MARK}: `dane-roll init --undo` removes it.\n{}{body}",
        settings(places)
            .iter()
            .map(|(k, v)| format!("{k}=${{{k}:-{}}}\n", sh_quote(v)))
            .collect::<String>()
    );
    write_new_mode(&hook, &text, 0o755)?;
    Ok(Registered::Added(format!(
        "certbot's deploy hook {} (certbot runs it after every renewal, from its timer too)",
        hook.display()
    )))
}

/// acme.sh's `DOMAIN.conf` of `cert`.
fn acme_sh_conf(cert: &AcmeCert) -> PathBuf {
    cert.dir.join(format!("{}.conf", cert.name))
}

/// The backup of a conf init changed, beside it.
fn backup_of(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".dane-roll-init.bak");
    path.with_file_name(name)
}

/// The `Le_ReloadCmd=` line of a conf, if any (the last one: the shell's `eval` keeps it).
fn reload_line(text: &str) -> Option<&str> {
    text.lines().rfind(|l| l.starts_with("Le_ReloadCmd="))
}

/// The value of a `Le_ReloadCmd='…'` line as acme.sh's `_read_conf` reads it (quotes removed,
/// base64 decoded between the markers).
pub fn acme_sh_value(line: &str) -> Option<String> {
    let raw = line.strip_prefix("Le_ReloadCmd=")?;
    let raw = raw
        .strip_prefix('\'')
        .and_then(|r| r.strip_suffix('\''))
        .or_else(|| raw.strip_prefix('"').and_then(|r| r.strip_suffix('"')))
        .unwrap_or(raw);
    match raw
        .strip_prefix(B64_START)
        .and_then(|r| r.strip_suffix(B64_END))
    {
        Some(b64) => openssl::base64::decode_block(b64.trim())
            .ok()
            .map(|v| String::from_utf8_lossy(&v).into_owned()),
        None => Some(raw.to_owned()),
    }
}

/// The line acme.sh's `_savedomainconf Le_ReloadCmd VALUE base64` writes.
pub fn acme_sh_line(value: &str) -> String {
    // acme.sh encodes with `openssl base64 -e | tr -d '\r\n'`: standard alphabet, one line.
    let b64 = openssl::base64::encode_block(value.as_bytes());
    format!("Le_ReloadCmd='{B64_START}{b64}{B64_END}'")
}

/// The reload command that hands a renewal to dane-roll, then runs `old` (if any) whatever
/// dane-roll did, and exits with dane-roll's status (acme.sh `eval`s it in a subshell).
pub fn acme_sh_command(places: &Places, old: Option<&str>) -> String {
    let env = if places.config == Path::new(DEFAULT_CONFIG) {
        String::new()
    } else {
        format!(
            "env DANE_ROLL_CONFIG={} ",
            sh_quote(&places.config.display().to_string())
        )
    };
    let ours = format!("{env}{} hook acme.sh", places.program.display());
    match old.map(str::trim).filter(|o| !o.is_empty()) {
        None => ours,
        Some(old) => format!("{ours}; dane_roll_status=$?; {old}; exit $dane_roll_status"),
    }
}

fn acme_sh(cert: &AcmeCert, places: &Places) -> Result<Registered, InitError> {
    let conf = acme_sh_conf(cert);
    let original = fsafe::read_regular(&conf).map_err(file_err(&conf))?;
    let text = String::from_utf8_lossy(&original).into_owned();
    let old = reload_line(&text).and_then(acme_sh_value);
    if old.as_deref().is_some_and(|o| o.contains(" hook acme.sh")) {
        return Ok(Registered::Present(format!(
            "acme.sh's reload command for {} hands renewals to dane-roll already ({})",
            cert.name,
            conf.display()
        )));
    }
    let backup = backup_of(&conf);
    write_new_mode(&backup, &text, 0o600).map_err(|e| match e {
        InitError::Exists(_) => InitError::Refused(format!(
            "{} exists: acme.sh's conf was changed by an earlier init --apply (run `dane-roll init --undo` first)",
            backup.display()
        )),
        other => other,
    })?;
    let line = acme_sh_line(&acme_sh_command(places, old.as_deref()));
    let mut lines: Vec<String> = text
        .lines()
        .filter(|l| !l.starts_with("Le_ReloadCmd="))
        .map(str::to_owned)
        .collect();
    lines.push(line);
    let mut new_text = lines.join("\n");
    new_text.push('\n');
    rewrite(&conf, &new_text)?;
    let kept = match old.filter(|o| !o.trim().is_empty()) {
        Some(o) => format!("; its reload command `{o}` runs after dane-roll's"),
        None => String::new(),
    };
    Ok(Registered::Added(format!(
        "acme.sh's reload command for {} (Le_ReloadCmd in {}, backed up to {}){kept}",
        cert.name,
        conf.display(),
        backup.display()
    )))
}

/// Replace acme.sh's conf with `text` atomically, keeping its mode and its owner: acme.sh may
/// run as another user than init (`~user/.acme.sh`), and must still write its conf afterwards.
fn rewrite(conf: &Path, text: &str) -> Result<(), InitError> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::symlink_metadata(conf).map_err(file_err(conf))?;
    let mode = meta.mode() & 0o7777;
    fsafe::write_atomic(conf, text.as_bytes(), FileMode::mode(mode)).map_err(file_err(conf))?;
    if meta.uid() != fsafe::euid() {
        // lchown: were the new file swapped for a link meanwhile, only the link would change.
        std::os::unix::fs::lchown(conf, Some(meta.uid()), Some(meta.gid()))
            .map_err(file_err(conf))?;
    }
    Ok(())
}

/// Put back the `Le_ReloadCmd` line of `cert`'s conf from init's backup, when the line is still
/// the one init wrote (acme.sh rewrites other lines at each renewal: those stay).
fn acme_sh_undo(cert: &AcmeCert) -> Result<Option<String>, InitError> {
    let conf = acme_sh_conf(cert);
    let backup = backup_of(&conf);
    let saved = match fsafe::read_regular(&backup) {
        Ok(data) => String::from_utf8_lossy(&data).into_owned(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(file_err(&backup)(e)),
    };
    let now =
        String::from_utf8_lossy(&fsafe::read_regular(&conf).map_err(file_err(&conf))?).into_owned();
    let current = reload_line(&now).and_then(acme_sh_value);
    if !current
        .as_deref()
        .is_some_and(|c| c.contains(" hook acme.sh"))
    {
        tracing::warn!(
            "{}: Le_ReloadCmd was changed since init --apply; left as it is (init's backup: {})",
            conf.display(),
            backup.display()
        );
        return Ok(None);
    }
    let mut lines: Vec<String> = now
        .lines()
        .filter(|l| !l.starts_with("Le_ReloadCmd="))
        .map(str::to_owned)
        .collect();
    if let Some(line) = reload_line(&saved) {
        lines.push(line.to_owned());
    }
    let mut text = lines.join("\n");
    text.push('\n');
    rewrite(&conf, &text)?;
    std::fs::remove_file(&backup).map_err(file_err(&backup))?;
    Ok(Some(format!(
        "acme.sh's reload command for {} put back ({})",
        cert.name,
        conf.display()
    )))
}

/// dehydrated's settings as it loads them: the config file, then `CONFIG_D/*.sh`.
fn dehydrated_values(config: &Path) -> Result<(Option<PathBuf>, String), InitError> {
    // Sourced by a shell exactly as dehydrated sources them (its own bash does the same as root).
    const SCRIPT: &str = r#"set -e
. "$1"
if [ -n "${CONFIG_D:-}" ]; then
  case "$CONFIG_D" in /*) ;; *) CONFIG_D="$(dirname "$1")/$CONFIG_D" ;; esac
  for f in "$CONFIG_D"/*.sh; do [ -f "$f" ] && . "$f"; done
fi
printf '%s\n%s\n' "${CONFIG_D:-}" "${HOOK:-}""#;
    let line = format!("sh -c … {}", config.display());
    let job = dane_roll_providers::child::Job::new(
        Path::new("/bin/sh"),
        dane_roll_providers::child::EnvPolicy::Inherit,
        std::time::Duration::from_secs(20),
    )
    .args(["-c", SCRIPT, "sh"])
    .args([config.display().to_string()]);
    let out = job.run().map_err(|e| InitError::Command {
        command: line.clone(),
        reason: e.to_string(),
    })?;
    if !out.status.success() {
        return Err(InitError::Command {
            command: line,
            reason: format!(
                "{} {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        });
    }
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut lines = text.lines();
    let dir = lines.next().unwrap_or("").trim();
    let hook = lines.next().unwrap_or("").trim().to_owned();
    let dir = (!dir.is_empty()).then(|| PathBuf::from(dir));
    Ok((dir, hook))
}

/// dehydrated's `CONFIG_D`, when its config file exists and sets one.
fn dehydrated_config_d(config: &Path) -> Result<Option<PathBuf>, InitError> {
    if !config.is_file() {
        return Ok(None);
    }
    Ok(dehydrated_values(config)?.0)
}

fn dehydrated(places: &Places) -> Result<Registered, InitError> {
    let config = &places.dehydrated_config;
    let by_hand = |why: String| {
        Ok(Registered::NotDone(format!(
            "{why}: set HOOK={} and PRIVATE_KEY_ROLLOVER=\"yes\" in dehydrated's config by hand",
            places.dehydrated_shim.display()
        )))
    };
    if !config.is_file() {
        return by_hand(format!(
            "{} not found (--dehydrated-config FILE)",
            config.display()
        ));
    }
    if !places.dehydrated_shim.is_file() {
        return by_hand(format!(
            "the shim {} is not installed (the package's; else install hooks/dane-roll-dehydrated-hook there)",
            places.dehydrated_shim.display()
        ));
    }
    let (dir, hook) = dehydrated_values(config)?;
    let Some(dir) = dir else {
        return by_hand(format!("{} sets no CONFIG_D", config.display()));
    };
    let drop_in = dir.join(DEHYDRATED_DROP_IN);
    if is_ours(&drop_in)? == Some(true) {
        return Ok(Registered::Present(format!(
            "dehydrated's drop-in {} (written by an earlier init --apply)",
            drop_in.display()
        )));
    }
    if Path::new(&hook) == places.dehydrated_shim {
        return Ok(Registered::Present(format!(
            "dehydrated's HOOK is {} already",
            places.dehydrated_shim.display()
        )));
    }
    let mut text = format!(
        "# dane-roll: dehydrated hands each new certificate to dane-roll.\n{MARK}: `dane-roll init --undo` removes it.\n"
    );
    let mut said = String::new();
    if !hook.is_empty() {
        text.push_str(&format!(
            "# The hook set before (it runs first, for every event): {hook}\nexport DANE_ROLL_OTHER_HOOK={}\n",
            sh_quote(&hook)
        ));
        said = format!("; the hook set before ({hook}) runs first, through DANE_ROLL_OTHER_HOOK");
    }
    for (k, v) in settings(places) {
        text.push_str(&format!("export {k}={}\n", sh_quote(&v)));
    }
    text.push_str(&format!(
        "HOOK={}\nPRIVATE_KEY_ROLLOVER=\"yes\"\n",
        sh_quote(&places.dehydrated_shim.display().to_string())
    ));
    std::fs::create_dir_all(&dir).map_err(file_err(&dir))?;
    write_new_mode(&drop_in, &text, 0o644)?;
    Ok(Registered::Added(format!(
        "dehydrated's HOOK in {}{said}",
        drop_in.display()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn places(dir: &Path) -> Places {
        Places {
            letsencrypt: dir.join("le"),
            dehydrated_config: dir.join("dehydrated/config"),
            dehydrated_shim: dir.join("shim"),
            program: PathBuf::from("/usr/bin/dane-roll"),
            config: PathBuf::from(DEFAULT_CONFIG),
        }
    }

    /// A certificate of `client` named `name` in `dir`: registering looks at no more.
    fn cert(client: Client, name: &str, dir: PathBuf) -> AcmeCert {
        AcmeCert {
            client,
            name: name.into(),
            dir,
            key: PathBuf::new(),
            fullchain: PathBuf::new(),
            next_key: None,
        }
    }

    #[test]
    fn acme_sh_value_round_trips_as_acme_sh_stores_it() {
        let cmd = "/usr/bin/dane-roll hook acme.sh; s=$?; systemctl reload nginx | true";
        let line = acme_sh_line(cmd);
        assert!(
            line.starts_with("Le_ReloadCmd='__ACME_BASE64__START_"),
            "{line}"
        );
        assert_eq!(acme_sh_value(&line).as_deref(), Some(cmd));
        assert_eq!(
            acme_sh_value("Le_ReloadCmd='service postfix reload'").as_deref(),
            Some("service postfix reload")
        );
    }

    #[test]
    fn acme_sh_conf_of_another_user_stays_theirs_and_undo_puts_the_line_back() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let dir = tempfile::tempdir().unwrap();
        let p = places(dir.path());
        let cert = cert(
            Client::AcmeSh,
            "mail.example.com",
            dir.path().join("mail.example.com_ecc"),
        );
        std::fs::create_dir_all(&cert.dir).unwrap();
        let conf = acme_sh_conf(&cert);
        let before = "Le_Domain='mail.example.com'\nLe_ReloadCmd='service postfix reload'\nLe_NextRenewTime='1'\n";
        std::fs::write(&conf, before).unwrap();
        std::fs::set_permissions(&conf, std::fs::Permissions::from_mode(0o640)).unwrap();
        let root = fsafe::euid() == 0;
        if root {
            std::os::unix::fs::chown(&conf, Some(65534), Some(65534)).unwrap();
        }
        let added = register(&cert, &p).unwrap();
        assert!(matches!(added, Registered::Added(_)), "{added}");
        let meta = std::fs::metadata(&conf).unwrap();
        assert_eq!(meta.mode() & 0o777, 0o640);
        if root {
            assert_eq!((meta.uid(), meta.gid()), (65534, 65534));
        }
        let text = std::fs::read_to_string(&conf).unwrap();
        let value = acme_sh_value(reload_line(&text).unwrap()).unwrap();
        assert_eq!(
            value,
            "/usr/bin/dane-roll hook acme.sh; dane_roll_status=$?; service postfix reload; exit $dane_roll_status"
        );
        assert!(matches!(
            register(&cert, &p).unwrap(),
            Registered::Present(_)
        ));
        // acme.sh rewrites its other lines at a renewal: --undo keeps them.
        std::fs::write(
            &conf,
            text.replace("Le_NextRenewTime='1'", "Le_NextRenewTime='2'"),
        )
        .unwrap();
        assert_eq!(
            unregister(&p, std::slice::from_ref(&cert)).unwrap().len(),
            1
        );
        let after = std::fs::read_to_string(&conf).unwrap();
        assert!(
            after.contains("Le_ReloadCmd='service postfix reload'"),
            "{after}"
        );
        assert!(after.contains("Le_NextRenewTime='2'"), "{after}");
        assert!(!backup_of(&conf).exists());
    }

    #[test]
    fn certbot_hook_written_once_and_removed_only_when_ours() {
        let dir = tempfile::tempdir().unwrap();
        let p = places(dir.path());
        let cert = cert(Client::Certbot, "mail", dir.path().join("le/live/mail"));
        let added = register(&cert, &p).unwrap();
        assert!(matches!(added, Registered::Added(_)), "{added}");
        let hook = certbot_hook(&p.letsencrypt);
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(&hook).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o755);
        assert!(matches!(
            register(&cert, &p).unwrap(),
            Registered::Present(_)
        ));
        assert_eq!(unregister(&p, &[]).unwrap().len(), 1);
        assert!(!hook.exists());
        // The package's file: used, never removed.
        std::fs::write(&hook, CERTBOT_SHIM).unwrap();
        assert!(matches!(
            register(&cert, &p).unwrap(),
            Registered::Present(_)
        ));
        assert!(unregister(&p, &[]).unwrap().is_empty());
        assert_eq!(std::fs::read_to_string(&hook).unwrap(), CERTBOT_SHIM);
    }
}
