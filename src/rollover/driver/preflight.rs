//! The DNSSEC preflight before a service's first publish: a service with no record of ours in
//! the store yet has its zone checked ([`crate::preflight::check_dnssec`], through
//! [`Effects::dnssec_preflight`]) before a rollover is staged. A zone that is not signed, or does
//! not validate through the resolver, would take TLSA records that no DANE sender uses: staging
//! is refused with the reason ([`DriverError::Preflight`]), unless `--force` is given, which
//! goes ahead and says so loudly.

use crate::config::Service;
use crate::rollover::Effects;

use super::{Driver, DriverError};

impl<E: Effects> Driver<E> {
    /// Refuse to stage `svc`'s first rollover into a zone that cannot carry DANE.
    pub(super) fn first_publish_preflight(
        &mut self,
        svc: &Service,
        force: bool,
    ) -> Result<(), DriverError> {
        if !self.store.published(&svc.name)?.is_empty() {
            return Ok(());
        }
        let Some(problems) = self.effects.dnssec_preflight(svc) else {
            return Ok(());
        };
        if problems.is_empty() {
            return Ok(());
        }
        let problems = problems.join("; ");
        if force {
            tracing::warn!(
                "--force: service {} is published although its zone cannot carry DANE: \
                 {problems}. DANE senders will not use these records until this is fixed.",
                svc.name
            );
            return Ok(());
        }
        Err(DriverError::Preflight {
            service: svc.name.clone(),
            problems,
        })
    }
}
