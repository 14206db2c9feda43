//! Private keys do not pile up in the state directory. Each rollover leaves key-bearing files
//! in `staged/<service>/<slot>/`: the staged key+chain (`<hash>.pem`), the backup of the file it
//! replaced (`previous-<hash>.pem`) and generated next keys (`next-<hash>.key`).
//!
//! The retention: when a rollover is done, its slot keeps the key+chain it installed, the
//! previous one (kept for a rollback until the rollover after it is done) and every key the
//! store still names (current, next, new); every other such file of the slot is deleted.

use std::fs;
use std::path::PathBuf;

use super::Driver;
use crate::rollover::{Effects, PhaseName, Slot};

impl<E: Effects> Driver<E> {
    /// Apply the retention to `service`'s `slot` if its rollover is done (under the service's
    /// lock). A file that cannot be deleted is logged and left for the next time.
    pub(super) fn retire_old_keys(
        &self,
        service: &str,
        slot: &Slot,
    ) -> Result<(), super::DriverError> {
        let Some(r) = self.store.rollover(service, slot)? else {
            return Ok(());
        };
        if r.phase.name() != PhaseName::Done {
            return Ok(());
        }
        let mut keep: Vec<PathBuf> = vec![r.request.chain.clone()];
        keep.extend(r.request.previous_chain.clone());
        keep.extend(
            self.store
                .keys(service)?
                .into_iter()
                .filter(|k| &k.slot == slot)
                .filter_map(|k| k.path),
        );
        let dir = self.staged_dir(service, slot)?;
        let Ok(entries) = fs::read_dir(&dir) else {
            return Ok(());
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            let key_bearing = name.ends_with(".pem") || name.ends_with(".key");
            let regular = entry.file_type().is_ok_and(|t| t.is_file());
            if !key_bearing || !regular || keep.contains(&path) {
                continue;
            }
            match fs::remove_file(&path) {
                Ok(()) => tracing::debug!("deleted {} (retention of old keys)", path.display()),
                Err(err) => tracing::warn!(
                    "cannot delete the old key file {}: {err}; the next completed rollover tries again",
                    path.display()
                ),
            }
        }
        Ok(())
    }
}
