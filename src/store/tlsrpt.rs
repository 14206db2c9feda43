//! The `tlsrpt_reports` and `tlsrpt_sessions` tables (migration 5): SMTP TLS reports as senders
//! sent them, each once per organisation and report id, with their session counts by policy
//! type and result. A report and its counts are written in one transaction; a report already
//! stored is left as it is.

use rusqlite::{OptionalExtension, params};

use super::{Store, StoreError, classify};
use crate::rollover::Timestamp;

/// A report to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTlsReport {
    /// The sending organisation.
    pub organization: String,
    /// The report's id.
    pub report_id: String,
    /// The window it covers.
    pub window: (Timestamp, Timestamp),
    /// Where it came from (stdin, a Maildir file, https).
    pub source: String,
    /// The report as JSON.
    pub json: String,
    /// Its sessions: policy type, result (`successful` or a result type), count.
    pub sessions: Vec<SessionCount>,
}

/// Sessions of one policy type and result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionCount {
    /// `tlsa`, `sts`, `no-policy-found`.
    pub policy_type: String,
    /// `successful` or an RFC 8460 result type.
    pub result: String,
    /// How many.
    pub sessions: u64,
}

/// A stored report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredTlsReport {
    /// Its row.
    pub id: i64,
    /// The sending organisation.
    pub organization: String,
    /// The report's id.
    pub report_id: String,
    /// The window it covers.
    pub window: (Timestamp, Timestamp),
    /// When it was stored.
    pub received: Timestamp,
    /// Where it came from.
    pub source: String,
    /// The report as JSON.
    pub json: String,
}

impl Store {
    /// Store `report` unless a report with its organisation and id is stored already; `true`
    /// when it was new.
    pub fn add_tls_report(
        &mut self,
        report: &NewTlsReport,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let path = self.path.clone();
        let err = |e| classify(&path, e);
        let tx = self.conn.transaction().map_err(err)?;
        let known: Option<i64> = tx
            .query_row(
                "SELECT id FROM tlsrpt_reports WHERE organization = ?1 AND report_id = ?2",
                params![report.organization, report.report_id],
                |row| row.get(0),
            )
            .optional()
            .map_err(err)?;
        if known.is_some() {
            return Ok(false);
        }
        tx.execute(
            "INSERT INTO tlsrpt_reports
                 (organization, report_id, window_start, window_end, received, source, report)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                report.organization,
                report.report_id,
                report.window.0.as_millis(),
                report.window.1.as_millis(),
                now.as_millis(),
                report.source,
                report.json
            ],
        )
        .map_err(err)?;
        let id = tx.last_insert_rowid();
        for s in &report.sessions {
            tx.execute(
                "INSERT INTO tlsrpt_sessions (report, policy_type, result, sessions)
                 VALUES (?1, ?2, ?3, ?4)",
                params![
                    id,
                    s.policy_type,
                    s.result,
                    i64::try_from(s.sessions).unwrap_or(i64::MAX)
                ],
            )
            .map_err(err)?;
        }
        tx.commit().map_err(err)?;
        Ok(true)
    }

    /// Every stored report whose window ends at or after `since` (all when `None`), oldest
    /// window first.
    pub fn tls_reports(
        &self,
        since: Option<Timestamp>,
    ) -> Result<Vec<StoredTlsReport>, StoreError> {
        type Row = (i64, String, String, i64, i64, i64, String, String);
        let rows: Vec<Row> = self.select(
            "SELECT id, organization, report_id, window_start, window_end, received, source,
                    report
             FROM tlsrpt_reports WHERE ?1 IS NULL OR window_end >= ?1
             ORDER BY window_start, organization, id",
            params![since.map(Timestamp::as_millis)],
            |row| row.try_into(),
        )?;
        Ok(rows
            .into_iter()
            .map(
                |(id, organization, report_id, start, end, received, source, json)| {
                    StoredTlsReport {
                        id,
                        organization,
                        report_id,
                        window: (Timestamp::from_millis(start), Timestamp::from_millis(end)),
                        received: Timestamp::from_millis(received),
                        source,
                        json,
                    }
                },
            )
            .collect())
    }

    /// The sessions of every stored report, summed by policy type and result.
    pub fn tls_sessions(&self) -> Result<Vec<SessionCount>, StoreError> {
        let rows: Vec<(String, String, i64)> = self.select(
            "SELECT policy_type, result, SUM(sessions) FROM tlsrpt_sessions
             GROUP BY policy_type, result ORDER BY policy_type, result",
            [],
            |row| row.try_into(),
        )?;
        Ok(rows
            .into_iter()
            .map(|(policy_type, result, n)| SessionCount {
                policy_type,
                result,
                sessions: u64::try_from(n).unwrap_or(0),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(id: &str) -> NewTlsReport {
        NewTlsReport {
            organization: "Example Org".into(),
            report_id: id.into(),
            window: (Timestamp::from_secs(100), Timestamp::from_secs(200)),
            source: "stdin".into(),
            json: "{}".into(),
            sessions: vec![
                SessionCount {
                    policy_type: "tlsa".into(),
                    result: "successful".into(),
                    sessions: 5,
                },
                SessionCount {
                    policy_type: "tlsa".into(),
                    result: "tlsa-invalid".into(),
                    sessions: 2,
                },
            ],
        }
    }

    #[test]
    fn a_report_is_stored_once_and_its_sessions_counted_once() {
        let mut store = Store::open_in_memory().unwrap();
        let now = Timestamp::from_secs(300);
        assert!(store.add_tls_report(&report("r1"), now).unwrap());
        assert!(!store.add_tls_report(&report("r1"), now).unwrap());
        assert!(store.add_tls_report(&report("r2"), now).unwrap());
        assert_eq!(store.tls_reports(None).unwrap().len(), 2);
        let sessions = store.tls_sessions().unwrap();
        let invalid = sessions
            .iter()
            .find(|s| s.result == "tlsa-invalid")
            .unwrap();
        assert_eq!(invalid.sessions, 4);
        assert!(
            store
                .tls_reports(Some(Timestamp::from_secs(201)))
                .unwrap()
                .is_empty()
        );
    }
}
