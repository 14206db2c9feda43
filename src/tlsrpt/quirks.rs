//! What large senders' reports need before `mail-auth`'s RFC 8460 types read them. Each quirk
//! is seen in reports that circulate publicly (the fixtures under `tests/data/tlsrpt/` are made
//! from them), and each is smoothed on the JSON value, so that the stored report is the
//! canonical form:
//!
//! - Microsoft (`Microsoft Corporation`, Exchange Online) writes a `tlsa` policy's
//!   `policy-string` as ONE string holding a JSON array of the records
//!   (`["[\"3 1 1 6007…\",\"3 1 1 837C…\"]"]`), with upper-case hex, where RFC 8460 §4.3.1.1
//!   wants one string per record: the array is unpacked. Microsoft also leaves out `mx-host`,
//!   `sending-mta-ip` and `failure-details` (all optional in `mail-auth`'s types) and writes
//!   report ids like `133944884956529435+example.com` (kept as they are).
//! - Some reporters write an address they do not know as an empty string (`"sending-mta-ip":
//!   ""`, `"receiving-ip": ""`): not an IP address, so the field is dropped, as if absent.
//! - Google (`Google Inc.`) sends RFC 8460 as written (gzip attachment named
//!   `google.com!DOMAIN!BEGIN!END!001.json.gz`, `application/tlsrpt+gzip`); it reports `sts`
//!   and `no-policy-found` policies, not `tlsa`.
//! - Postfix's TLSRPT reporter (and others) write `"contact-info": null` and leave out
//!   `policy-domain` for `no-policy-found`: both optional in the types, nothing to do.

use serde_json::Value;

/// Smooth every known quirk in a report's JSON, in place.
pub fn smooth(report: &mut Value) {
    let Some(policies) = report.get_mut("policies").and_then(Value::as_array_mut) else {
        return;
    };
    for policy in policies {
        if let Some(details) = policy.get_mut("policy") {
            unpack_policy_string(details);
        }
        if let Some(failures) = policy
            .get_mut("failure-details")
            .and_then(Value::as_array_mut)
        {
            for failure in failures {
                drop_unknown_addresses(failure);
            }
        }
    }
}

/// Microsoft: `["[\"3 1 1 …\",\"3 1 1 …\"]"]` becomes `["3 1 1 …", "3 1 1 …"]`.
fn unpack_policy_string(policy: &mut Value) {
    let Some(strings) = policy
        .get_mut("policy-string")
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    let [Value::String(only)] = strings.as_slice() else {
        return;
    };
    if !only.trim_start().starts_with('[') {
        return;
    }
    let Ok(inner) = serde_json::from_str::<Vec<String>>(only) else {
        return;
    };
    *strings = inner.into_iter().map(Value::String).collect();
}

/// An address field that is not an IP address (an empty string) is dropped.
fn drop_unknown_addresses(failure: &mut Value) {
    let Some(fields) = failure.as_object_mut() else {
        return;
    };
    for key in ["sending-mta-ip", "receiving-ip"] {
        let bad = match fields.get(key) {
            Some(Value::String(text)) => text.trim().parse::<std::net::IpAddr>().is_err(),
            Some(Value::Null) => true,
            _ => false,
        };
        if bad {
            fields.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn microsofts_packed_policy_string_is_unpacked() {
        let mut report = json!({"policies": [{"policy": {"policy-type": "tlsa",
            "policy-string": ["[\"3 1 1 AB\",\"3 1 1 CD\"]"]}}]});
        smooth(&mut report);
        assert_eq!(
            report["policies"][0]["policy"]["policy-string"],
            json!(["3 1 1 AB", "3 1 1 CD"])
        );
    }

    #[test]
    fn plain_policy_strings_and_sts_lines_stay() {
        let mut report = json!({"policies": [{"policy": {"policy-type": "sts",
            "policy-string": ["version: STSv1", "mode: enforce"]}}]});
        let before = report.clone();
        smooth(&mut report);
        assert_eq!(report, before);
    }

    #[test]
    fn empty_addresses_are_dropped_and_good_ones_kept() {
        let mut report = json!({"policies": [{"failure-details": [
            {"sending-mta-ip": "", "receiving-ip": "192.0.2.1", "result-type": "tlsa-invalid"}
        ]}]});
        smooth(&mut report);
        let failure = &report["policies"][0]["failure-details"][0];
        assert!(failure.get("sending-mta-ip").is_none());
        assert_eq!(failure["receiving-ip"], "192.0.2.1");
    }
}
