//! A whole TLSA RRset as the RRset-level APIs read and write it (Route 53, Google Cloud DNS,
//! Gandi LiveDNS, deSEC), the records it holds, and the one record-level change made of it: the
//! RRset as just read, plus or minus one record. Every other record in it, ours or not, is
//! written back as it was.

use crate::{Record, normalize_rdata};

/// An RRset's TTL and the data of its records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RrSet {
    /// The TTL every record of the set is served with.
    pub(crate) ttl: u32,
    /// Each record's data (`3 1 1 <hex>`), as the API gave it.
    pub(crate) values: Vec<String>,
}

impl RrSet {
    /// Whether it holds `rdata` (compared normalized: case, spacing).
    pub(crate) fn holds(&self, rdata: &str) -> bool {
        self.values.iter().any(|v| same_rdata(v, rdata))
    }
}

/// The records of the owner's RRset (none when there is no RRset); data that is not TLSA data
/// is left out.
pub(crate) fn records(owner: &str, set: Option<&RrSet>) -> Vec<Record> {
    set.map_or_else(Vec::new, |set| {
        set.values
            .iter()
            .filter_map(|v| Record::new(owner, set.ttl, v).ok())
            .collect()
    })
}

/// Whether two TLSA data strings are the same record: normalized when both can be read,
/// else as given.
pub(crate) fn same_rdata(a: &str, b: &str) -> bool {
    match (normalize_rdata(a), normalize_rdata(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// The RRset after adding (`add`) or removing `record` from `current`, the RRset as just read;
/// `None` when there is nothing to do (already there, or already gone). A new RRset takes the
/// record's TTL; an existing one keeps its own.
pub(crate) fn changed(current: Option<&RrSet>, record: &Record, add: bool) -> Option<RrSet> {
    let present = current.is_some_and(|s| s.holds(&record.rdata));
    if present == add {
        return None;
    }
    Some(match current {
        None => RrSet {
            ttl: record.ttl,
            values: vec![record.rdata.clone()],
        },
        Some(set) => {
            let mut values = set.values.clone();
            if add {
                values.push(record.rdata.clone());
            } else {
                values.retain(|v| !same_rdata(v, &record.rdata));
            }
            RrSet {
                ttl: set.ttl,
                values,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::{RrSet, changed};
    use crate::Record;

    const A: &str = "3 1 1 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "3 1 1 bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    fn record(rdata: &str) -> Record {
        Record::new("_25._tcp.mx.example.com.", 300, rdata).unwrap()
    }

    #[test]
    fn one_record_changes_and_the_others_stay() {
        let set = RrSet {
            ttl: 3600,
            values: vec![A.to_uppercase()],
        };
        let added = changed(Some(&set), &record(B), true).unwrap();
        assert_eq!(added.ttl, 3600, "an existing RRset keeps its TTL");
        assert_eq!(added.values, [A.to_uppercase(), B.to_owned()]);
        assert_eq!(changed(Some(&set), &record(A), true), None, "already there");
        let removed = changed(Some(&added), &record(A), false).unwrap();
        assert_eq!(removed.values, [B]);
        assert_eq!(changed(None, &record(A), false), None, "already gone");
        assert_eq!(changed(None, &record(A), true).unwrap().ttl, 300);
    }
}
