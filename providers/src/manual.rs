//! No automation: the operator makes the change. Add and remove return the zone-file and
//! nsupdate lines to apply, as [`Change::Pending`]; the gate then watches DNS to see when the
//! records are out.

use crate::{Change, Record};

/// The manual provider.
#[derive(Debug, Default)]
pub struct Manual;

impl Manual {
    /// The lines that add `record`.
    pub fn add(&self, record: &Record) -> Change {
        Change::Pending {
            instructions: format!(
                "add this record to the zone:\n  {}\nor with nsupdate:\n  update add {}\n",
                record.zone_line(),
                record.zone_line()
            ),
        }
    }

    /// The lines that remove `record` (only this record, not the others at the owner name).
    pub fn remove(&self, record: &Record) -> Change {
        Change::Pending {
            instructions: format!(
                "remove this record (only this one) from the zone:\n  {}\nor with nsupdate:\n  update delete {} IN TLSA {}\n",
                record.zone_line(),
                record.owner,
                record.rdata
            ),
        }
    }
}
