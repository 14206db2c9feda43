//! The files a Postfix instance is made of: main.cf and master.cf (written dated in the past),
//! and the spool directories with the owners and modes Postfix expects.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

/// The uid of the `postfix` user and the gid of the `postdrop` group.
pub(super) fn postfix_ids() -> io::Result<(u32, u32)> {
    fn field(file: &str, name: &str) -> io::Result<u32> {
        let text = std::fs::read_to_string(file)?;
        text.lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .find(|f| f.first() == Some(&name) && f.len() > 2)
            .and_then(|f| f[2].parse().ok())
            .ok_or_else(|| {
                io::Error::other(format!("lab: no {name} in {file} (is postfix installed?)"))
            })
    }
    Ok((
        field("/etc/passwd", "postfix")?,
        field("/etc/group", "postdrop")?,
    ))
}

/// The stock Debian master.cf with every chroot column `n`, the pipe(8) services dropped, the
/// `smtp inet` listener replaced by `listener` (or dropped), and `smtp_opts` appended to the
/// `smtp unix` client service.
pub(super) fn master_cf(listener: Option<&str>, smtp_opts: &[&str]) -> io::Result<String> {
    let stock = [
        "/usr/share/postfix/master.cf.dist",
        "/etc/postfix/master.cf",
    ]
    .iter()
    .find_map(|p| std::fs::read_to_string(p).ok())
    .ok_or_else(|| io::Error::other("lab: no stock master.cf (postfix not installed?)"))?;
    let mut out = String::from("# dane-roll lab: stock master.cf, chroot off\n");
    let mut skip = false;
    for line in stock.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        if line.starts_with(char::is_whitespace) {
            if !skip {
                out.push_str(line);
                out.push('\n');
            }
            continue;
        }
        let mut f: Vec<&str> = line.split_whitespace().collect();
        skip = false;
        if f.len() < 8 || f.get(7) == Some(&"pipe") {
            skip = true;
            continue;
        }
        if f[0] == "smtp" && f[1] == "inet" {
            if let Some(l) = listener {
                out.push_str(l);
                out.push('\n');
            }
            continue;
        }
        f[4] = "n";
        out.push_str(&f.join(" "));
        out.push('\n');
        if f[0] == "smtp" && f[1] == "unix" {
            for o in smtp_opts {
                out.push_str(&format!("  -o {o}\n"));
            }
        }
    }
    Ok(out)
}

/// Write a config file dated 10 s back: Postfix re-reads (300 ms sleeps, up to ~2 s) a
/// dictionary file whose mtime is within the last second or so, as if it were being edited.
pub(super) fn write_config(path: &Path, text: &str) -> io::Result<()> {
    std::fs::write(path, text)?;
    let past = std::time::SystemTime::now() - Duration::from_secs(10);
    std::fs::File::options()
        .write(true)
        .open(path)?
        .set_modified(past)
}

pub(super) fn set_mode(p: &Path, mode: u32) -> io::Result<()> {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
}

pub(super) fn mkdir_owned(
    p: &Path,
    uid: Option<u32>,
    gid: Option<u32>,
    mode: u32,
) -> io::Result<()> {
    match std::fs::create_dir(p) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    std::os::unix::fs::chown(p, uid, gid)?;
    set_mode(p, mode)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn master_cf_has_listener_and_no_chroot() {
        let m = master_cf(Some("127.53.9.10:25 inet n - n - - smtpd"), &["max_use=1"]).unwrap();
        assert!(m.contains("127.53.9.10:25 inet n - n - - smtpd"));
        assert!(!m.lines().any(|l| l.starts_with("smtp inet")));
        assert!(m.contains("  -o max_use=1"));
        for l in m.lines().filter(|l| !l.starts_with([' ', '#'])) {
            assert_eq!(l.split_whitespace().nth(4), Some("n"), "{l}");
        }
        assert!(!m.contains("pipe"));
    }
}
