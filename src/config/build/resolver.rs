//! `[resolver]`: the validating resolver's address (or the system's), its timeout and trust
//! anchor.

use std::net::SocketAddr;

use super::Builder;
use crate::config::resolver::{
    DEFAULT_RESOLVER_TIMEOUT, DNS_PORT, RESOLV_CONF, ResolverOrigin, ResolverSettings,
    parse_socket_addr,
};
use crate::config::source::kpath;

impl Builder<'_, '_> {
    pub(super) fn resolver(
        &mut self,
        raw: crate::config::raw::RawResolver,
        system_resolver: impl FnOnce() -> Option<SocketAddr>,
    ) -> ResolverSettings {
        let fallback = SocketAddr::from(([127, 0, 0, 1], DNS_PORT));
        let (address, origin) = match raw.address {
            Some(text) => match parse_socket_addr(&text, DNS_PORT) {
                Ok(addr) => (addr, ResolverOrigin::Configured),
                Err(message) => {
                    self.error(kpath!["resolver", "address"], message);
                    (fallback, ResolverOrigin::Configured)
                }
            },
            None => match system_resolver() {
                Some(addr) => (addr, ResolverOrigin::System),
                None => {
                    self.error(
                        kpath!["resolver"],
                        format!(
                            "no `address` given, and {RESOLV_CONF} names no usable nameserver; set \
                             [resolver] address = \"127.0.0.1\" (a validating resolver)"
                        ),
                    );
                    (fallback, ResolverOrigin::System)
                }
            },
        };
        let timeout = self.duration(
            kpath!["resolver", "timeout"],
            raw.timeout,
            DEFAULT_RESOLVER_TIMEOUT,
        );
        let trust_anchor = raw
            .trust_anchor
            .map(|p| self.file_path(kpath!["resolver", "trust-anchor"], p));
        let settings = ResolverSettings {
            address,
            origin,
            timeout,
            trust_anchor,
        };
        if origin == ResolverOrigin::System && settings.is_systemd_stub() {
            self.warn(
                kpath!["resolver"],
                format!(
                    "the system resolver {address} is systemd-resolved's stub, which validates DNSSEC \
                     only with DNSSEC=yes; name a validating resolver with `address`"
                ),
            );
        }
        settings
    }
}
