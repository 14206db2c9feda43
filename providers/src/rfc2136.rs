//! RFC 2136 dynamic update with TSIG (RFC 8945), one record at a time.
//!
//! An add is an UPDATE with the record in the update section and the zone's class (§2.5.1; a
//! duplicate is ignored by the server); a remove is an UPDATE with class NONE and the record's
//! RDATA (§2.5.4): it deletes that one record and nothing else at the owner name. Listing is a
//! query over TCP to the same server, signed when a key is set, which also serves as the
//! read-back. The zone is the configured one, or the one whose SOA the server names for the owner.
//!
//! Messages are built with hickory-proto (`update_message`) and sent over our own small TCP
//! exchange instead of `hickory_net::client::Client`: the client's TSIG verifier checks the reply's
//! MAC before anything else, so a BADSIG/BADKEY reply (an unsigned TSIG record with an error
//! code) surfaces as an unrelated message about truncated MACs, and its multiplexer rewrites the
//! message id after signing. Here the reply's TSIG error and RCODE are read first, then its MAC
//! is verified.

mod key;

use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use hickory_proto::op::{Message, MessageType, Query, ResponseCode, update_message};
use hickory_proto::rr::rdata::TLSA;
use hickory_proto::rr::rdata::tsig::TsigError;
use hickory_proto::rr::{DNSClass, Name, RData, RecordSet, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::{ProviderError, Record, Settings, absolute};

pub use key::{TSIG_FUDGE, TsigKey};

/// An RFC 2136 server, its zone and key.
#[derive(Debug)]
pub struct Rfc2136 {
    host: String,
    port: u16,
    zone: Option<String>,
    key: Option<TsigKey>,
    settings: Settings,
}

/// What a query or update got back.
struct Reply {
    message: Message,
}

impl Rfc2136 {
    /// A provider for the primary `host:port` (an address or a name), updating `zone` (found
    /// from the server's SOA for each owner name when `None`), signed with `key` when given.
    pub fn new(
        host: &str,
        port: u16,
        zone: Option<&str>,
        key: Option<TsigKey>,
        settings: Settings,
    ) -> Rfc2136 {
        Rfc2136 {
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
            port,
            zone: zone.map(absolute),
            key,
            settings,
        }
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    fn server(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    fn key_name(&self) -> String {
        self.key
            .as_ref()
            .map(|k| k.name().to_owned())
            .unwrap_or_default()
    }

    /// The TLSA records at `owner` (absolute), from the server over TCP.
    pub async fn list(&self, owner: &str) -> Result<Vec<Record>, ProviderError> {
        let name = dns_name(owner)?;
        let reply = self.query(name.clone(), RecordType::TLSA).await?;
        match reply.message.metadata.response_code {
            ResponseCode::NoError | ResponseCode::NXDomain => {}
            code => return Err(self.query_error(code, owner)),
        }
        let mut out = Vec::new();
        for rr in &reply.message.answers {
            if rr.name != name {
                continue;
            }
            if let RData::TLSA(tlsa) = &rr.data {
                out.push(Record::from_fields(
                    owner,
                    rr.ttl,
                    u8::from(tlsa.cert_usage),
                    u8::from(tlsa.selector),
                    u8::from(tlsa.matching),
                    &hex(&tlsa.cert_data),
                )?);
            }
        }
        Ok(out)
    }

    /// Add one record (RFC 2136 §2.5.1).
    pub async fn add(&self, record: &Record) -> Result<(), ProviderError> {
        let (zone, rrset) = self.prepare(record, record.ttl).await?;
        let message = update_message::append(rrset, zone.clone(), false, false);
        self.update(message, &zone).await
    }

    /// Delete exactly this record by its RDATA (RFC 2136 §2.5.4, class NONE).
    pub async fn remove(&self, record: &Record) -> Result<(), ProviderError> {
        let (zone, rrset) = self.prepare(record, 0).await?;
        let message = update_message::delete_by_rdata(rrset, zone.clone(), false);
        self.update(message, &zone).await
    }

    /// The zone and a one-record RRset for `record`.
    async fn prepare(&self, record: &Record, ttl: u32) -> Result<(Name, RecordSet), ProviderError> {
        let owner = dns_name(&record.owner)?;
        let zone = match &self.zone {
            Some(zone) => dns_name(zone)?,
            None => self.find_zone(&owner).await?,
        };
        // update_message asserts this; an owner outside the zone is the caller's error, not a panic.
        if !zone.zone_of(&owner) {
            return Err(ProviderError::InvalidRecord(format!(
                "{} is not in zone {}",
                record.owner,
                zone.to_ascii()
            )));
        }
        let (usage, selector, matching, data) = record.fields()?;
        let data = unhex(&data)?;
        let mut rrset = RecordSet::with_ttl(owner, RecordType::TLSA, ttl);
        rrset.add_rdata(RData::TLSA(TLSA::new(
            usage.into(),
            selector.into(),
            matching.into(),
            data,
        )));
        Ok((zone, rrset))
    }

    /// The zone holding `owner`: the SOA the server answers with, or names in the authority section.
    async fn find_zone(&self, owner: &Name) -> Result<Name, ProviderError> {
        let reply = self.query(owner.clone(), RecordType::SOA).await?;
        let code = reply.message.metadata.response_code;
        if !matches!(code, ResponseCode::NoError | ResponseCode::NXDomain) {
            return Err(match code {
                ResponseCode::Refused | ResponseCode::NotAuth => ProviderError::NoZone {
                    server: self.server(),
                    zone: owner.to_ascii(),
                    detail: format!(
                        "the server answered {code} for its SOA: it serves no zone holding this name; set zone in the provider or service"
                    ),
                },
                other => self.query_error(other, &owner.to_ascii()),
            });
        }
        reply
            .message
            .answers
            .iter()
            .chain(reply.message.authorities.iter())
            .find(|rr| rr.record_type() == RecordType::SOA)
            .map(|rr| rr.name.clone())
            .ok_or_else(|| ProviderError::NoZone {
                server: self.server(),
                zone: owner.to_ascii(),
                detail: "the server's answer names no SOA; set zone in the provider or service"
                    .into(),
            })
    }

    fn query_error(&self, code: ResponseCode, owner: &str) -> ProviderError {
        match code {
            ResponseCode::Refused => ProviderError::NoZone {
                server: self.server(),
                zone: owner.to_owned(),
                detail:
                    "the server refused the query (REFUSED): it is not authoritative for this name"
                        .into(),
            },
            ResponseCode::NotAuth => ProviderError::NotAuth {
                server: self.server(),
                zone: owner.to_owned(),
            },
            other => ProviderError::Rcode {
                server: self.server(),
                rcode: other.to_string(),
                what: "query",
            },
        }
    }

    async fn query(&self, name: Name, rtype: RecordType) -> Result<Reply, ProviderError> {
        let mut message = Message::query();
        message.metadata.recursion_desired = false;
        let mut query = Query::new();
        query
            .set_name(name)
            .set_query_class(DNSClass::IN)
            .set_query_type(rtype);
        message.add_query(query);
        self.exchange(message, "query").await
    }

    async fn update(&self, message: Message, zone: &Name) -> Result<(), ProviderError> {
        let reply = self.exchange(message, "update").await?;
        let zone_text = zone.to_ascii();
        match reply.message.metadata.response_code {
            ResponseCode::NoError => Ok(()),
            ResponseCode::Refused => Err(ProviderError::Refused {
                server: self.server(),
                zone: zone_text,
            }),
            ResponseCode::NotAuth => Err(ProviderError::NotAuth {
                server: self.server(),
                zone: zone_text,
            }),
            code @ (ResponseCode::NXDomain | ResponseCode::NotZone) => Err(ProviderError::NoZone {
                server: self.server(),
                zone: zone_text,
                detail: format!("the server answered {code} to the update"),
            }),
            other => Err(ProviderError::Rcode {
                server: self.server(),
                rcode: other.to_string(),
                what: "update",
            }),
        }
    }

    /// Sign (when a key is set), send over TCP, read the reply, check its TSIG.
    async fn exchange(&self, mut message: Message, what: &str) -> Result<Reply, ProviderError> {
        let mut verifier = None;
        if let Some(key) = &self.key {
            let signer = key.signer()?;
            verifier = message.finalize(&signer, unix_now()).map_err(|e| {
                ProviderError::Key(format!("cannot sign with key {}: {e}", key.name()))
            })?;
        }
        let id = message.metadata.id;
        let bytes = message
            .to_vec()
            .map_err(|e| ProviderError::InvalidRecord(e.to_string()))?;
        let timeout = self.settings.timeout;
        let buffer = tokio::time::timeout(timeout, self.send(&bytes))
            .await
            .map_err(|_| ProviderError::Timeout {
                server: self.server(),
                what: format!("DNS {what} over TCP"),
                after: timeout,
            })??;
        let reply = Message::from_vec(&buffer).map_err(|e| ProviderError::BadReply {
            server: self.server(),
            detail: format!("cannot decode the DNS message: {e}"),
        })?;
        if reply.metadata.id != id || reply.metadata.message_type != MessageType::Response {
            return Err(ProviderError::BadReply {
                server: self.server(),
                detail: "the reply does not answer our message (id differs)".into(),
            });
        }
        // The TSIG error code first: a BADSIG/BADKEY reply carries no MAC that could verify.
        if let Some(sig) = reply.signature() {
            match &sig.data.error {
                Some(TsigError::BadSig) => {
                    return Err(ProviderError::TsigBadSig {
                        server: self.server(),
                        key: self.key_name(),
                    });
                }
                Some(TsigError::BadKey) => {
                    return Err(ProviderError::TsigBadKey {
                        server: self.server(),
                        key: self.key_name(),
                    });
                }
                Some(TsigError::BadTime) => {
                    return Err(ProviderError::TsigBadTime {
                        server: self.server(),
                    });
                }
                Some(other) => {
                    return Err(ProviderError::Tsig {
                        server: self.server(),
                        detail: format!("the server reported TSIG error {other:?}"),
                    });
                }
                None => {}
            }
        }
        if let Some(mut verifier) = verifier {
            let unsigned_refusal = reply.signature().is_none()
                && matches!(
                    reply.metadata.response_code,
                    ResponseCode::Refused | ResponseCode::NotAuth | ResponseCode::FormErr
                );
            if !unsigned_refusal {
                verifier.verify(&buffer).map_err(|e| ProviderError::Tsig {
                    server: self.server(),
                    detail: format!(
                        "the reply's TSIG signature does not verify ({e}): is it the server that has this key?"
                    ),
                })?;
            }
        }
        Ok(Reply { message: reply })
    }

    async fn send(&self, bytes: &[u8]) -> Result<Vec<u8>, ProviderError> {
        let connect_err = |e: std::io::Error| ProviderError::Connect {
            server: self.server(),
            detail: e.to_string(),
        };
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((self.host.as_str(), self.port))
            .await
            .map_err(connect_err)?
            .collect();
        let mut last = None;
        let mut stream = None;
        for addr in addrs {
            match TcpStream::connect(addr).await {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        let mut stream = stream.ok_or_else(|| {
            connect_err(last.unwrap_or_else(|| std::io::Error::other("the name has no address")))
        })?;
        let len = u16::try_from(bytes.len())
            .map_err(|_| ProviderError::InvalidRecord("message too large".into()))?;
        let mut out = Vec::with_capacity(bytes.len() + 2);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(bytes);
        stream.write_all(&out).await.map_err(connect_err)?;
        let mut len = [0u8; 2];
        stream
            .read_exact(&mut len)
            .await
            .map_err(|e| ProviderError::BadReply {
                server: self.server(),
                detail: format!("the connection closed before a reply: {e}"),
            })?;
        let mut buffer = vec![0u8; usize::from(u16::from_be_bytes(len))];
        stream
            .read_exact(&mut buffer)
            .await
            .map_err(|e| ProviderError::BadReply {
                server: self.server(),
                detail: format!("the reply was cut short: {e}"),
            })?;
        Ok(buffer)
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

fn dns_name(text: &str) -> Result<Name, ProviderError> {
    Name::from_ascii(absolute(text))
        .map_err(|e| ProviderError::InvalidRecord(format!("\"{text}\" is not a DNS name: {e}")))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Result<Vec<u8>, ProviderError> {
    (0..text.len())
        .step_by(2)
        .map(|i| {
            text.get(i..i + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                .ok_or_else(|| ProviderError::InvalidRecord(format!("\"{text}\" is not hex")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        assert_eq!(hex(&unhex("00ff10").unwrap()), "00ff10");
    }
}
