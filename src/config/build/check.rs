//! `[check]`: the monitor's thresholds.

use super::Builder;
use crate::config::alerts::CheckSettings;
use crate::config::source::kpath;

impl Builder<'_, '_> {
    pub(super) fn check(&mut self, raw: crate::config::raw::RawCheck) -> CheckSettings {
        let defaults = CheckSettings::default();
        let mut days = |key: &str, value: Option<i64>, default: u32| match value {
            None => default,
            Some(v) => u32::try_from(v).unwrap_or_else(|_| {
                self.error(
                    kpath!["check", key],
                    format!("{v} is not a number of days (0 or more)"),
                );
                default
            }),
        };
        let rrsig_warn_days = days(
            "rrsig-warn-days",
            raw.rrsig_warn_days,
            defaults.rrsig_warn_days,
        );
        let cert_warn_days = days(
            "cert-warn-days",
            raw.cert_warn_days,
            defaults.cert_warn_days,
        );
        let max_records = self.max_records(
            kpath!["check", "max-records"],
            raw.max_records,
            defaults.max_records,
        );
        CheckSettings {
            rrsig_warn_days,
            cert_warn_days,
            max_records,
        }
    }
}
