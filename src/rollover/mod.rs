//! The rollover engine: the plan (which records a service wants), the phases of one key
//! rollover, and the pure state machine that moves a rollover one step.
//!
//! The shape follows NLnet Labs' `keyset.rs`: a serde enum of phases ([`Phase`]) inside a
//! [`Rollover`]; [`step`] takes the stored rollover, what was observed ([`Observations`]: outcomes
//! of the actions a driver performed, the records this service published) and the time, and
//! returns the next rollover and a list of [`Action`]s. The engine does no I/O: the driver
//! performs the actions (publish, DNS checks, install, reload, probe, retire) and feeds the
//! outcomes back, so a whole rollover runs in tests on a fake clock ([`env::FakeClock`]).
//!
//! The safety invariants of a rollover are enforced here:
//! 1. no [`Action::Install`] before every nameserver has served the records for 2×TTL, counted
//!    from the first time every one of them served them (`confirmed_at`, not from when the
//!    resolver first validated them), and the resolver validates them (`--force` skips only
//!    the wait, and then an event and an alert say so; never the check);
//! 2. no [`Action::Retire`] of a record matching the new (live) key, the next key or a key the
//!    driver reports as protected: seen live, or an issuer a key slot of the service wants
//!    ([`engine::stale`], [`plan::retirable`]);
//! 3. [`Action::Retire`] only once the live handshake on every endpoint address matched the
//!    new key ([`Phase::Verified`]);
//! 4. records are added and removed one at a time ([`Action::Publish`], [`Action::Retire`] carry
//!    one record each), and only records this service published ("ours") are ever retired.

pub mod driver;
pub mod effects;
pub mod engine;
pub mod env;
pub mod interrupt;
pub mod lifetime;
pub mod owners;
pub mod phase;
pub mod plan;
pub mod reporter;
pub mod request;
pub mod ttl;
mod types;

#[cfg(test)]
mod tests;

/// Owner names are a TLSA notion ([`crate::tlsa::OwnerName`]); the rollover code names them here too.
pub use crate::tlsa::OwnerName;
pub use effects::Effects;
pub use engine::abort::{AbortRefused, abort};
pub use engine::{
    Action, ActionOutcome, DnsReport, EngineError, Event, Failure, FailureKind, NsAnswer,
    Observations, OwnerReport, ProbeResult, ProbeVerdict, ResolverAnswer, StageRequest, StepResult,
    stage, step,
};
pub use env::{Clock, FakeClock, SystemClock};
pub use phase::{Phase, PhaseName, Rollover};
pub use plan::KeySet;
pub use reporter::{Reporter, Silent};
pub use request::{DeployOptions, DeployRequest, Origin};
pub use ttl::TtlSeen;
pub use types::{KeyHash, KeyHashError, Slot, SlotError, Timestamp, TlsaAt};
