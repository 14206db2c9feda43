//! Fetching an MTA-STS policy as senders do (RFC 8461 §3.3): `GET
//! https://mta-sts.DOMAIN/.well-known/mta-sts.txt`, the server's certificate valid under the
//! Web PKI for that name, no redirect followed, a 2xx answer of type `text/plain`, at most
//! [`POLICY_MAX_BYTES`] and within a time limit. reqwest (already the alert webhooks' client)
//! does HTTP and TLS; the name `mta-sts.DOMAIN` is looked up through the monitor's resolver, so
//! the fetch asks the same DNS as every other check.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use crate::dns::Resolver;
use crate::notify::error_with_causes;

use super::super::fence::internal_range;
use super::webpki::Trust;

/// The largest policy read; a larger body is refused unread (senders bound it too; 64 KiB
/// holds thousands of `mx:` lines).
pub const POLICY_MAX_BYTES: usize = 64 * 1024;
/// The time one fetch may take unless the run has less left.
pub const POLICY_TIMEOUT: Duration = Duration::from_secs(10);

/// An HTTPS client for policies: one per run, shared by every domain.
#[derive(Clone)]
pub struct Fetcher {
    client: reqwest::Client,
}

/// reqwest's host lookups through the monitor's resolver; with `refuse_internal` (the
/// exporter's `/probe` fence), loopback, link-local and private addresses are left out, so a
/// policy host cannot make `serve` connect inside its own network.
struct ViaResolver {
    resolver: Resolver,
    refuse_internal: bool,
}

/// The addresses a fetch may connect to (port 0: the URL's).
fn admissible(ips: Vec<IpAddr>, refuse_internal: bool) -> Vec<SocketAddr> {
    ips.into_iter()
        .filter(|ip| !refuse_internal || internal_range(*ip).is_none())
        .map(|ip| SocketAddr::new(ip, 0))
        .collect()
}

impl reqwest::dns::Resolve for ViaResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let resolver = self.resolver.clone();
        let refuse_internal = self.refuse_internal;
        let host = name.as_str().to_string();
        Box::pin(async move {
            let lookup = resolver
                .addresses(&host)
                .await
                .map_err(|e| -> Box<dyn std::error::Error + Send + Sync> { Box::new(e) })?;
            if lookup.records.is_empty() {
                return Err(format!("{host} has no address ({})", lookup.status).into());
            }
            let addrs = admissible(lookup.records, refuse_internal);
            if addrs.is_empty() {
                return Err(format!(
                    "{host} has only loopback, link-local or private addresses, which serve's \
                     /probe does not connect to (--allow-private-targets)"
                )
                .into());
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

impl Fetcher {
    /// A client trusting `trust`, asking `resolver`, each fetch within `timeout`; with
    /// `refuse_internal`, never connecting to an internal address.
    pub fn new(
        resolver: Resolver,
        trust: &Trust,
        timeout: Duration,
        refuse_internal: bool,
    ) -> Result<Fetcher, String> {
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .user_agent(concat!("dane-roll/", env!("CARGO_PKG_VERSION")))
            .dns_resolver(Arc::new(ViaResolver {
                resolver,
                refuse_internal,
            }));
        if let Some(pem) = trust.pem() {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| format!("the CA bundle cannot be used for HTTPS: {e}"))?;
            builder = builder.tls_certs_only(certs);
        }
        let client = builder
            .build()
            .map_err(|e| format!("cannot set up the HTTPS client: {}", error_with_causes(&e)))?;
        Ok(Fetcher { client })
    }

    /// The policy text of `domain`; why it cannot be had, in words.
    pub async fn policy(&self, domain: &str) -> Result<String, String> {
        let url = format!("https://mta-sts.{domain}/.well-known/mta-sts.txt");
        let mut response = self
            .client
            .get(&url)
            .send()
            .await
            .map_err(|e| format!("{url}: {}", error_with_causes(&e)))?;
        let status = response.status();
        if status.is_redirection() {
            let to = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("?");
            return Err(format!(
                "{url} answered {status}, a redirect to {to}: senders do not follow redirects \
                 (RFC 8461 §3.3); serve the policy at that URL"
            ));
        }
        if !status.is_success() {
            return Err(format!("{url} answered {status}"));
        }
        let media = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if media != "text/plain" {
            return Err(format!(
                "{url} is served as \"{media}\", not text/plain (RFC 8461 §3.2)"
            ));
        }
        let too_big = || {
            format!("{url} is larger than {POLICY_MAX_BYTES} bytes: senders refuse such a policy")
        };
        if response
            .content_length()
            .is_some_and(|n| n > POLICY_MAX_BYTES as u64)
        {
            return Err(too_big());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| format!("{url}: {}", error_with_causes(&e)))?
        {
            if body.len() + chunk.len() > POLICY_MAX_BYTES {
                return Err(too_big());
            }
            body.extend_from_slice(&chunk);
        }
        String::from_utf8(body).map_err(|_| format!("{url} is not UTF-8 text"))
    }
}

#[cfg(test)]
mod tests {
    use super::admissible;

    #[test]
    fn the_fence_leaves_out_internal_addresses() {
        let ips = vec![
            "127.0.0.1".parse().unwrap(),
            "10.1.2.3".parse().unwrap(),
            "192.0.2.7".parse().unwrap(),
        ];
        assert_eq!(admissible(ips.clone(), false).len(), 3);
        let kept = admissible(ips, true);
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].ip().to_string(), "192.0.2.7");
    }
}
