//! A service's `endpoints`: each `"host:port/protocol"` or `{ host, port, protocol }` entry
//! read, a protocol unusual for its port warned about, an endpoint listed twice kept once.

use crate::config::endpoint::{Endpoint, Protocol, port_from_int};
use crate::config::raw::RawEndpoint;
use crate::config::source::kpath;

use super::Builder;

impl Builder<'_, '_> {
    /// The endpoints of service `i`.
    pub(super) fn endpoints(&mut self, i: usize, raw: Vec<RawEndpoint>) -> Vec<Endpoint> {
        let at = |key: &str| kpath!["service", i, key];
        let mut endpoints: Vec<Endpoint> = Vec::new();
        if raw.is_empty() {
            self.error(
                at("endpoints"),
                "is empty; list at least one endpoint such as \"mail.example.com:25/smtp\"",
            );
        }
        for (j, endpoint) in raw.into_iter().enumerate() {
            let here = kpath!["service", i, "endpoints", j];
            let built = match endpoint {
                RawEndpoint::Short(text) => Endpoint::parse_short(&text),
                RawEndpoint::Table(t) => match t.port.map(port_from_int).transpose() {
                    Ok(port) => Endpoint::new(&t.host, port, t.protocol),
                    Err(message) => {
                        self.error(kpath!["service", i, "endpoints", j, "port"], message);
                        continue;
                    }
                },
            };
            match built {
                Ok(endpoint) => {
                    let usual = Protocol::default_for_port(endpoint.port);
                    let compatible = |p: Protocol| {
                        p == endpoint.protocol
                            || (p == Protocol::Smtp && endpoint.protocol == Protocol::Submission)
                    };
                    if let Some(usual) = usual.filter(|p| !compatible(*p)) {
                        self.warn(
                            here.clone(),
                            format!(
                                "port {} usually speaks {usual}, not {}",
                                endpoint.port, endpoint.protocol
                            ),
                        );
                    }
                    if endpoints
                        .iter()
                        .any(|e| e.host == endpoint.host && e.port == endpoint.port)
                    {
                        self.warn(here, format!("{endpoint} is listed twice"));
                    } else {
                        endpoints.push(endpoint);
                    }
                }
                Err(message) => self.error(here, message),
            }
        }
        endpoints
    }
}
