//! The pure state machine: [`stage`] begins a rollover, [`step`] moves it as far as the
//! observations allow and says what to do next. No I/O, no clock: the driver performs the
//! [`Action`]s, reports each result as an [`ActionOutcome`] in the next call's
//! [`Observations`], and persists [`StepResult::next`] with [`StepResult::events`] in one
//! transaction after every call.
//!
//! A phase changes only on an observed outcome, never on issuing an action: a process killed
//! after an action but before its outcome was recorded repeats the action on resume, and every
//! action is idempotent (adding a present record or removing an absent one changes nothing,
//! installing the same file twice is harmless). An action whose outcome was a failure is not
//! repeated in the same call: the run settles with an alert and the next run retries.

pub mod abort;
mod gate;
mod live;
mod machine;
mod protocol;
mod publish;

pub use gate::{gate, served_everywhere, validated};
pub use machine::{EngineError, PROBE_ALERT_AFTER, protected_keys, stage, stale, step};
pub use protocol::{
    Action, ActionOutcome, DnsReport, Event, Failure, FailureKind, NsAnswer, Observations,
    OwnerReport, ProbeResult, ProbeVerdict, ResolverAnswer, StageRequest, StepResult,
};
