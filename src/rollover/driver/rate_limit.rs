//! A DNS provider's rate limit, remembered between runs: when an API answers with a
//! `Retry-After` longer than the provider's own retry budget (`ProviderError::RateLimited`), the
//! time it may be asked again is written to `<state-dir>/rate-limit/<provider>` (whole seconds
//! since the epoch), so that the next `run` (a timer, a minute later) does not hammer the API
//! before then. A plain file and not the store: it is a hint, lost harmlessly, and needs no
//! migration.

use std::fs;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use crate::rollover::Timestamp;

const DIR: &str = "rate-limit";

fn file(state_dir: &Path, provider: &str) -> PathBuf {
    let safe: String = provider
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    state_dir.join(DIR).join(safe)
}

/// When `provider` may be asked again, if a rate limit was recorded.
pub(super) fn read(state_dir: &Path, provider: &str) -> Option<Timestamp> {
    let bytes = crate::fsafe::read_regular(&file(state_dir, provider)).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    text.trim().parse().ok().map(Timestamp::from_millis)
}

/// Remember that `provider` may be asked again at `until`, in milliseconds (written through the
/// project's one safe writer, so a reader never sees half a number and no link is followed).
pub(super) fn write(state_dir: &Path, provider: &str, until: Timestamp) -> Result<(), String> {
    let path = file(state_dir, provider);
    let fail = |e: io::Error| format!("cannot record the rate limit in {}: {e}", path.display());
    let dir = state_dir.join(DIR);
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(fail)?;
    crate::fsafe::write_atomic(
        &path,
        format!("{}\n", until.as_millis()).as_bytes(),
        crate::fsafe::FileMode::PRIVATE,
    )
    .map_err(fail)
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::{DIR, read, write};
    use crate::rollover::Timestamp;

    #[test]
    fn remembered_between_runs() {
        let dir = std::env::temp_dir().join(format!("dane-roll-rl-{}", std::process::id()));
        assert_eq!(read(&dir, "cloud/x"), None);
        write(&dir, "cloud/x", Timestamp::from_millis(1_000)).unwrap();
        assert_eq!(read(&dir, "cloud/x"), Some(Timestamp::from_millis(1_000)));
        assert!(dir.join(DIR).join("cloud_x").exists());
        let _ = fs::remove_dir_all(&dir);
    }
}
