//! The rollover phases `serve` exports, read from the store off the async runtime.
//!
//! Opening the store may wait on its write lock for the store's busy timeout (a rollover in
//! progress; a migration the store needs), and the exporter's runtime has one thread: the read
//! runs on tokio's blocking pool so `/metrics` and `/probe` keep answering meanwhile. When a read
//! fails, the phases of the last good read are kept and exported with the time of that read
//! (`dane_rollover_phase_read_timestamp_seconds`), so a scraper can tell how stale they are.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::rollover::PhaseName;
use crate::store::{DB_FILE, SessionCount, Store, StoreError};

/// One rollover's phase, for `dane_rollover_phase`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolloverPhase {
    /// The service.
    pub service: String,
    /// The key slot.
    pub slot: String,
    /// The phase.
    pub phase: PhaseName,
}

/// The phases of the last good read of the store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KnownPhases {
    /// Every stored rollover's phase.
    pub phases: Vec<RolloverPhase>,
    /// When they were read (Unix time).
    pub read_at: u64,
    /// The sessions of the stored TLS reports, by policy type and result
    /// (`dane_tlsrpt_sessions_total`).
    pub tlsrpt: Vec<SessionCount>,
}

/// The store's phases as last read, shared with the blocking reads that refresh them.
#[derive(Debug)]
pub(super) struct PhaseReader {
    state_dir: Option<PathBuf>,
    known: Arc<Mutex<Option<KnownPhases>>>,
}

impl PhaseReader {
    /// Phases from the store in `state_dir`; none when `None`.
    pub(super) fn new(state_dir: Option<PathBuf>) -> PhaseReader {
        PhaseReader {
            state_dir,
            known: Arc::new(Mutex::new(None)),
        }
    }

    /// Read the store again on the blocking pool, then give the phases of the last good read
    /// (this one unless it failed, in which case the reason is logged).
    pub(super) async fn refresh(&self) -> Option<KnownPhases> {
        let dir = self.state_dir.clone()?;
        let known = Arc::clone(&self.known);
        let read = tokio::task::spawn_blocking(move || {
            let result = read(&dir);
            if let Ok((phases, tlsrpt)) = &result
                && let Ok(mut known) = known.lock()
            {
                *known = Some(KnownPhases {
                    phases: phases.clone(),
                    read_at: unix_now(),
                    tlsrpt: tlsrpt.clone(),
                });
            }
            result
        })
        .await;
        let failed = match read {
            Ok(Ok(_)) => None,
            Ok(Err(err)) => Some(err.to_string()),
            Err(err) => Some(err.to_string()),
        };
        if let Some(err) = failed {
            tracing::warn!("serve: rollover phases kept from the last good read: {err}");
        }
        self.known.lock().ok().and_then(|k| k.clone())
    }
}

/// Every stored rollover's phase, and the TLS reports' sessions; none when the store was never
/// created.
fn read(dir: &Path) -> Result<(Vec<RolloverPhase>, Vec<SessionCount>), StoreError> {
    if !dir.join(DB_FILE).exists() {
        return Ok((Vec::new(), Vec::new()));
    }
    let store = Store::open(dir)?;
    let phases = store
        .rollovers()?
        .into_iter()
        .map(|r| RolloverPhase {
            service: r.request.service,
            slot: r.request.slot.as_str().to_string(),
            phase: r.phase.name(),
        })
        .collect();
    Ok((phases, store.tls_sessions()?))
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
