//! The TLSA set a sender saw: a `tlsa` policy's `policy-string`, one record per string in
//! presentation form (RFC 8460 §4.3.1.1; Microsoft's packed form is unpacked by
//! [`super::quirks`]).

use mail_auth::report::tlsrpt::{PolicyDetails, PolicyType};

use crate::tlsa::TlsaRecord;

/// The records of a `tlsa` policy, and the strings that are not records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeenSet {
    /// The records the sender saw.
    pub records: Vec<TlsaRecord>,
    /// Strings of the policy that do not read as a TLSA record.
    pub unreadable: Vec<String>,
}

impl SeenSet {
    /// The set of `policy`, empty unless it is a `tlsa` policy.
    pub fn of(policy: &PolicyDetails) -> SeenSet {
        let mut set = SeenSet::default();
        if policy.policy_type != PolicyType::Tlsa {
            return set;
        }
        for text in &policy.policy_string {
            match text.parse::<TlsaRecord>() {
                Ok(record) if !set.records.contains(&record) => set.records.push(record),
                Ok(_) => {}
                Err(_) => set.unreadable.push(text.clone()),
            }
        }
        set
    }

    /// Whether the policy named no record.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}
