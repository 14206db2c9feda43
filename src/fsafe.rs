//! Opening and writing files safely as root.
//!
//! dane-roll runs as root from ACME hooks and a timer, in directories other users may share. This
//! module owns the rules every file access of the crate follows:
//!
//! - **Reading** ([`read_regular`], [`open_regular`]): a configuration, key, certificate or state
//!   file must be a regular file. It is opened with `O_NONBLOCK` and checked with `fstat` before a
//!   byte is read, so a FIFO or a device planted at the path is refused at once instead of hanging
//!   the process. Symbolic links are followed (certbot's `live/` directory is made of them).
//! - **Writing** ([`write_atomic`]): a temporary file with an unpredictable name (the `tempfile`
//!   crate's random suffix) created with `O_CREAT|O_EXCL|O_NOFOLLOW` mode 0600 in the target's
//!   directory, written, given its final group and mode through the open descriptor, fsynced,
//!   renamed over the target, and the directory fsynced. A symlink or file planted at any name is
//!   never opened, and the target, if it is a symbolic link, is replaced as a link: its target is
//!   never written.
//! - **Trust** ([`check_trusted`], [`check_private_dir`]): a path whose content decides what runs
//!   as root (the configuration names commands) is trusted only when nobody but root or the
//!   effective user can change it, the rule OpenSSH's `StrictModes` and sudo apply: see
//!   [`check_trusted`].

use std::collections::VecDeque;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use nix::fcntl::OFlag;

/// How many symbolic links a path may pass through before it is refused (Linux's own limit).
const MAX_LINKS: usize = 40;

/// The effective user id of this process: the "invoking user" whose files are trusted beside
/// root's.
pub fn euid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

/// The group id named `name` (a name from the group database, or a number).
pub fn group_id(name: &str) -> Option<u32> {
    if let Ok(gid) = name.parse::<u32>() {
        return Some(gid);
    }
    nix::unistd::Group::from_name(name)
        .ok()
        .flatten()
        .map(|g| g.gid.as_raw())
}

/// What a non-regular file is, in words.
fn kind_of(file_type: fs::FileType) -> &'static str {
    if file_type.is_dir() {
        "a directory"
    } else if file_type.is_fifo() {
        "a FIFO (named pipe)"
    } else if file_type.is_socket() {
        "a socket"
    } else if file_type.is_block_device() || file_type.is_char_device() {
        "a device"
    } else if file_type.is_symlink() {
        "a symbolic link"
    } else {
        "not a regular file"
    }
}

fn not_regular(file_type: fs::FileType) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!(
            "it is {}, not a regular file; point the setting at a regular file",
            kind_of(file_type)
        ),
    )
}

/// Open `path` for reading, refusing at once anything that is not a regular file (a FIFO would
/// otherwise block the open or the read forever). Symbolic links are followed.
pub fn open_regular(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags((OFlag::O_NONBLOCK | OFlag::O_CLOEXEC).bits())
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.file_type().is_file() {
        return Err(not_regular(meta.file_type()));
    }
    // O_NONBLOCK means nothing for a regular file's reads; the descriptor is used as it is.
    Ok(file)
}

/// Read all of `path`, a regular file (see [`open_regular`]).
pub fn read_regular(path: &Path) -> io::Result<Vec<u8>> {
    let mut file = open_regular(path)?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// `lstat` a path that should be a regular file if it exists: `Ok(false)` when missing, an error
/// naming what it is when it is something else (a FIFO, a device, a directory, a link).
pub fn regular_or_missing(path: &Path) -> io::Result<bool> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_file() => Ok(true),
        Ok(meta) => Err(not_regular(meta.file_type())),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(err) => Err(err),
    }
}

/// Create `path` as a new file: `O_CREAT|O_EXCL|O_NOFOLLOW`, so an existing file, and a symbolic
/// link even a dangling one, is refused (`AlreadyExists`) rather than opened.
pub fn create_new(path: &Path, mode: u32) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .custom_flags((OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC).bits())
        .open(path)
}

/// The final mode and group of a file dane-roll writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileMode {
    /// The permission bits (a private key: 0600 unless configured).
    pub mode: u32,
    /// The group to give the file; `None` keeps the writer's.
    pub group: Option<u32>,
}

impl FileMode {
    /// Owner read/write only, the writer's group: the mode of every private key by default.
    pub const PRIVATE: FileMode = FileMode {
        mode: 0o600,
        group: None,
    };

    /// `mode`, the writer's group.
    pub const fn mode(mode: u32) -> FileMode {
        FileMode { mode, group: None }
    }
}

/// The directory holding `path` (`.` for a bare name).
fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Write `data` to `path` atomically as a new file with `mode` (see the module's rules). The
/// file belongs to the writer; nothing (mode, owner, group) is taken from the file it replaces,
/// and when `path` is a symbolic link the link itself is replaced by the file.
pub fn write_atomic(path: &Path, data: &[u8], mode: FileMode) -> io::Result<()> {
    let dir = parent_dir(path);
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?
        .to_string_lossy()
        .into_owned();
    if let Ok(meta) = fs::symlink_metadata(path)
        && meta.is_dir()
    {
        return Err(not_regular(meta.file_type()));
    }
    // Created 0600 whatever the final mode: the key is never readable by others, not even for a
    // moment. The name has 12 random characters and is created O_EXCL|O_NOFOLLOW: nothing
    // planted in the directory is ever opened.
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".dane-roll.tmp")
        .rand_bytes(12)
        .make_in(&dir, |p| create_new(p, 0o600))?;
    let file = tmp.as_file_mut();
    file.write_all(data)?;
    if let Some(gid) = mode.group {
        std::os::unix::fs::fchown(&*file, None, Some(gid))?;
    }
    file.set_permissions(fs::Permissions::from_mode(mode.mode & 0o7777))?;
    file.sync_all()?;
    // On failure the temporary file is removed when `tmp` drops.
    tmp.persist(path).map_err(|e| e.error)?;
    File::open(&dir)?.sync_all()
}

/// Why a path is not trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Distrust {
    /// Owned by someone other than root or the effective user.
    Owner {
        /// The owner's uid.
        uid: u32,
    },
    /// Writable by its group or by everyone.
    Writable {
        /// Its permission bits.
        mode: u32,
    },
    /// Not the kind of file expected (a FIFO where a file should be, a file above another).
    Kind(&'static str),
    /// Too many symbolic links (a loop).
    Loop,
    /// It could not be examined.
    Unreadable(String),
}

/// A path refused by [`check_trusted`] or [`check_private_dir`]: which element, why, and how to
/// fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.describe())]
pub struct Untrusted {
    /// The path that was checked (the configuration file, the state directory).
    pub path: PathBuf,
    /// The element of it that failed: the path itself or a directory above it.
    pub culprit: PathBuf,
    /// Why.
    pub why: Distrust,
}

impl Untrusted {
    fn describe(&self) -> String {
        let at = if self.culprit == self.path {
            format!("{}", self.path.display())
        } else {
            format!(
                "{} (the directory {} above it)",
                self.path.display(),
                self.culprit.display()
            )
        };
        let c = self.culprit.display();
        match &self.why {
            Distrust::Owner { uid } => format!(
                "{at} is not trusted: {c} is owned by uid {uid}, not by root or the user \
                 dane-roll runs as (uid {}); fix it with `chown root {c}`",
                euid()
            ),
            Distrust::Writable { mode } => format!(
                "{at} is not trusted: {c} is writable by {} (mode {:04o}), so another user could \
                 change what dane-roll does as root; fix it with `chmod go-w {c}`",
                if mode & 0o002 != 0 {
                    "everyone"
                } else {
                    "its group"
                },
                mode & 0o7777
            ),
            Distrust::Kind(kind) => format!("{at} is not usable: {c} is {kind}"),
            Distrust::Loop => format!("{at}: too many symbolic links from {c}"),
            Distrust::Unreadable(why) => format!("{at}: cannot examine {c}: {why}"),
        }
    }
}

/// Whether `meta`'s owner is root or the effective user.
fn owner_ok(meta: &fs::Metadata, me: u32) -> bool {
    meta.uid() == 0 || meta.uid() == me
}

/// Check that `path` (a file or directory that must exist) can be changed by nobody but root
/// and the effective user: the rule of OpenSSH's `StrictModes` and of sudo for its sudoers file.
///
/// The path is walked from `/` one element at a time, symbolic links resolved as the kernel does
/// (each link is an element too, and its target is walked in turn). Every element, `/`, each
/// directory, each link and the file, must be owned by root or the effective user (uid), and
/// must not be writable by its group or by others, with one exception: a directory with the
/// sticky bit (`/tmp`, mode 1777) may be writable by everyone, because there another user can
/// neither rename nor remove the entry below it, and that entry is itself required to be owned
/// by root or the effective user. The final element must be a regular file or a directory.
pub fn check_trusted(path: &Path) -> Result<(), Untrusted> {
    walk(path, |_, _| Ok(()))
}

/// Check a private directory dane-roll writes into (the state directory): the path is trusted
/// ([`check_trusted`]) and the directory itself is owned by the effective user and not writable
/// by group or others (the sticky exception does not apply to it).
pub fn check_private_dir(dir: &Path) -> Result<(), Untrusted> {
    let me = euid();
    walk(dir, |culprit, meta| {
        let fail = |why| {
            Err(Untrusted {
                path: dir.to_owned(),
                culprit: culprit.to_owned(),
                why,
            })
        };
        if !meta.is_dir() {
            return fail(Distrust::Kind(kind_of(meta.file_type())));
        }
        if meta.uid() != me {
            return fail(Distrust::Owner { uid: meta.uid() });
        }
        if meta.mode() & 0o022 != 0 {
            return fail(Distrust::Writable { mode: meta.mode() });
        }
        Ok(())
    })
}

/// Walk `path` from the root (see [`check_trusted`]) and hand the final element to `last`.
fn walk(
    path: &Path,
    last: impl Fn(&Path, &fs::Metadata) -> Result<(), Untrusted>,
) -> Result<(), Untrusted> {
    let me = euid();
    let fail = |culprit: &Path, why| Untrusted {
        path: path.to_owned(),
        culprit: culprit.to_owned(),
        why,
    };
    let absolute = if path.is_absolute() {
        path.to_owned()
    } else {
        let cwd = std::env::current_dir()
            .map_err(|e| fail(Path::new("."), Distrust::Unreadable(e.to_string())))?;
        cwd.join(path)
    };
    let mut todo: VecDeque<PathBuf> = VecDeque::new();
    push_front(&mut todo, &absolute);
    let mut here = PathBuf::from("/");
    let mut links = 0;
    let stat = |p: &Path| {
        fs::symlink_metadata(p).map_err(|e| fail(p, Distrust::Unreadable(e.to_string())))
    };
    // The directory we stand in, and whether it is sticky and writable by others (then the
    // entry below must be owned by root or us, which every element is required to be anyway).
    let root = stat(&here)?;
    check_element(&root, me, false).map_err(|why| fail(&here, why))?;
    let mut current = root;
    while let Some(step) = todo.pop_front() {
        if step.as_os_str() == "/" {
            here = PathBuf::from("/");
            current = stat(&here)?;
            continue;
        }
        if step.as_os_str() == "." {
            continue;
        }
        if step.as_os_str() == ".." {
            here.pop();
            if here.as_os_str().is_empty() {
                here = PathBuf::from("/");
            }
            current = stat(&here)?;
            continue;
        }
        if !current.is_dir() {
            return Err(fail(&here, Distrust::Kind(kind_of(current.file_type()))));
        }
        let next = here.join(&step);
        let meta = stat(&next)?;
        let final_step = todo.is_empty();
        if meta.file_type().is_symlink() {
            if !owner_ok(&meta, me) {
                return Err(fail(&next, Distrust::Owner { uid: meta.uid() }));
            }
            links += 1;
            if links > MAX_LINKS {
                return Err(fail(&next, Distrust::Loop));
            }
            let target = fs::read_link(&next)
                .map_err(|e| fail(&next, Distrust::Unreadable(e.to_string())))?;
            push_front(&mut todo, &target);
            continue;
        }
        check_element(&meta, me, !final_step).map_err(|why| fail(&next, why))?;
        if final_step {
            if !meta.is_file() && !meta.is_dir() {
                return Err(fail(&next, Distrust::Kind(kind_of(meta.file_type()))));
            }
            last(&next, &meta)?;
        }
        here = next;
        current = meta;
    }
    Ok(())
}

/// The rule for one element: owner root or `me`; not writable by group or others unless it is a
/// sticky directory that is passed through (`dir_above`).
fn check_element(meta: &fs::Metadata, me: u32, dir_above: bool) -> Result<(), Distrust> {
    if !owner_ok(meta, me) {
        return Err(Distrust::Owner { uid: meta.uid() });
    }
    let sticky_dir = meta.is_dir() && meta.mode() & 0o1000 != 0;
    if meta.mode() & 0o022 != 0 && !(sticky_dir && dir_above) {
        return Err(Distrust::Writable { mode: meta.mode() });
    }
    Ok(())
}

/// Put the elements of `path` in front of `todo`, in order (an absolute path starts with `/`).
fn push_front(todo: &mut VecDeque<PathBuf>, path: &Path) {
    let steps: Vec<PathBuf> = path
        .components()
        .filter_map(|c| match c {
            Component::RootDir => Some(PathBuf::from("/")),
            Component::CurDir => None,
            Component::ParentDir => Some(PathBuf::from("..")),
            Component::Normal(n) => Some(PathBuf::from(n)),
            Component::Prefix(_) => None,
        })
        .collect();
    for step in steps.into_iter().rev() {
        todo.push_front(step);
    }
}

impl fmt::Display for FileMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04o}", self.mode)?;
        if let Some(gid) = self.group {
            write!(f, " group {gid}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    //! What the tests of file writers check: a file's mode, and that no temporary is left.

    use std::fs;
    use std::os::unix::fs::PermissionsExt;
    use std::path::{Path, PathBuf};

    /// The permission bits of `p` itself (not of what a link points to).
    pub(crate) fn mode(p: &Path) -> u32 {
        fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
    }

    /// The temporaries left in `dir` (any name with `.tmp` in it).
    pub(crate) fn temporaries(dir: &Path) -> Vec<PathBuf> {
        fs::read_dir(dir)
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().contains(".tmp"))
            .map(|e| e.path())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::{mode, temporaries};
    use super::*;
    use std::os::unix::fs::symlink;

    fn chmod(p: &Path, m: u32) {
        fs::set_permissions(p, fs::Permissions::from_mode(m)).unwrap();
    }

    #[test]
    fn create_new_refuses_an_existing_file_and_a_planted_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        fs::write(&victim, b"precious").unwrap();
        let planted = dir.path().join("planted");
        symlink(&victim, &planted).unwrap();
        let err = create_new(&planted, 0o600).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists, "{err}");
        let dangling = dir.path().join("dangling");
        symlink(dir.path().join("nothing-yet"), &dangling).unwrap();
        assert!(create_new(&dangling, 0o600).is_err());
        assert!(!dir.path().join("nothing-yet").exists());
        assert!(create_new(&victim, 0o600).is_err());
        assert_eq!(fs::read(&victim).unwrap(), b"precious");
    }

    #[test]
    fn atomic_write_takes_nothing_from_the_old_file_and_replaces_a_link_not_its_target() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("chain.pem");
        fs::write(&p, b"old").unwrap();
        chmod(&p, 0o644);
        write_atomic(&p, b"new", FileMode::PRIVATE).unwrap();
        assert_eq!(mode(&p), 0o600);
        assert_eq!(fs::read(&p).unwrap(), b"new");

        let elsewhere = dir.path().join("elsewhere.pem");
        fs::write(&elsewhere, b"untouched").unwrap();
        let link = dir.path().join("link.pem");
        symlink(&elsewhere, &link).unwrap();
        write_atomic(&link, b"key", FileMode::mode(0o640)).unwrap();
        assert!(fs::symlink_metadata(&link).unwrap().is_file());
        assert_eq!(mode(&link), 0o640);
        assert_eq!(fs::read(&elsewhere).unwrap(), b"untouched");
        assert_eq!(temporaries(dir.path()), Vec::<PathBuf>::new());
    }

    #[test]
    fn a_fifo_is_refused_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let err = read_regular(&fifo).unwrap_err();
        assert!(err.to_string().contains("FIFO"), "{err}");
        assert!(regular_or_missing(&fifo).is_err());
        assert!(!regular_or_missing(&dir.path().join("none")).unwrap());
    }

    #[test]
    fn trust_follows_links_and_accepts_sticky_directories_above_our_own_entries() {
        let top = tempfile::tempdir().unwrap();
        let base = top.path().join("base");
        fs::create_dir(&base).unwrap();
        chmod(&base, 0o755);
        let f = base.join("config.toml");
        fs::write(&f, b"").unwrap();
        chmod(&f, 0o644);
        check_trusted(&f).unwrap();

        chmod(&f, 0o664);
        let err = check_trusted(&f).unwrap_err();
        assert_eq!(err.culprit, f);
        assert!(err.to_string().contains("chmod go-w"), "{err}");
        chmod(&f, 0o644);

        chmod(&base, 0o775);
        let err = check_trusted(&f).unwrap_err();
        assert_eq!(err.culprit, base);
        chmod(&base, 0o755);

        // Sticky and world-writable: fine while the entry below is ours, not once it is not.
        chmod(&base, 0o1777);
        check_trusted(&f).unwrap();
        std::os::unix::fs::chown(&f, Some(65534), None).unwrap();
        let err = check_trusted(&f).unwrap_err();
        assert!(matches!(err.why, Distrust::Owner { uid: 65534 }), "{err}");
        std::os::unix::fs::chown(&f, Some(0), None).unwrap();
        // A sticky directory is no exception for the final element itself.
        assert!(check_private_dir(&base).is_err());
        chmod(&base, 0o755);

        // A link is followed: a trusted link to a file in a writable directory is not trusted.
        let open = top.path().join("open");
        fs::create_dir(&open).unwrap();
        chmod(&open, 0o777);
        let target = open.join("real.toml");
        fs::write(&target, b"").unwrap();
        let link = base.join("link.toml");
        symlink(&target, &link).unwrap();
        let err = check_trusted(&link).unwrap_err();
        assert_eq!(err.culprit, open);
        // A relative link with `..`.
        let rel = base.join("rel.toml");
        symlink("../base/config.toml", &rel).unwrap();
        check_trusted(&rel).unwrap();
        // A loop of links ends with an error, not a hang.
        symlink(base.join("b"), base.join("a")).unwrap();
        symlink(base.join("a"), base.join("b")).unwrap();
        let err = check_trusted(&base.join("a")).unwrap_err();
        assert_eq!(err.why, Distrust::Loop, "{err}");
        // A missing file is reported, naming it.
        let err = check_trusted(&base.join("missing.toml")).unwrap_err();
        assert!(err.to_string().contains("missing.toml"), "{err}");
    }
}
