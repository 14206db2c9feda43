//! A TLSA lookup that also reads the TTL the zone gives the RRset (its RRSIG's original TTL), from
//! the one answer: a resolver's answer carries only what is left of its cached copy, and the
//! monitor's TTL check wants the zone's. Asking [`Resolver::tlsa`] and then the RRSIG was a sixth
//! of a check's DNS work.

use hickory_proto::dnssec::rdata::DNSSECRData;
use hickory_proto::op::Message;
use hickory_proto::rr::{Name, RData, RecordType};

use super::resolve::{Lookup, Resolver, classify, tlsa_records};
use super::{DnsError, Status, parse_name};
use crate::tlsa::TlsaRecord;

impl Resolver {
    /// The TLSA records at `owner` and, when they are secure, the TTL the zone gives them (the
    /// RRSIG's original TTL), from one query. An alias (CNAME) goes through
    /// [`Resolver::tlsa`], which follows chains the resolver left incomplete.
    pub async fn tlsa_with_zone_ttl(
        &self,
        owner: &str,
    ) -> Result<(Lookup<TlsaRecord>, Option<u32>), DnsError> {
        let name = parse_name(owner)?;
        let answer = self.raw(&name, RecordType::TLSA).await?;
        let lookup = classify(&answer, &name, RecordType::TLSA);
        if lookup.is_alias() {
            let lookup = self.tlsa(owner).await?;
            let ttl = if lookup.status == Status::Secure {
                match self.raw(&lookup.owner, RecordType::TLSA).await {
                    Ok(answer) => original_ttl(&answer, &lookup.owner),
                    Err(_) => None,
                }
            } else {
                None
            };
            return Ok((lookup, ttl));
        }
        let ttl = if lookup.status == Status::Secure {
            original_ttl(&answer, &lookup.owner)
        } else {
            None
        };
        Ok((tlsa_records(lookup), ttl))
    }
}

/// The original TTL of the signed TLSA RRset at `owner` in `answer`, from its RRSIG.
fn original_ttl(answer: &Message, owner: &Name) -> Option<u32> {
    answer.answers.iter().find_map(|r| match &r.data {
        RData::DNSSEC(DNSSECRData::RRSIG(sig))
            if r.name == *owner && sig.input().type_covered == RecordType::TLSA =>
        {
            Some(sig.input().original_ttl)
        }
        _ => None,
    })
}
