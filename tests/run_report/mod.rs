//! A monitor run's report built by hand, for the alert tests (tests/alert_incidents.rs,
//! tests/notify.rs): the run around its checks and endpoints, and the report of one SMTP
//! endpoint on port 25 at one address.

use std::net::{IpAddr, SocketAddr};

use dane_roll::config::{Endpoint, Protocol};
use dane_roll::monitor::{Check, EndpointReport, RecordSet, RecordSource, RunReport};
use dane_roll::notify::Severity;
use dane_roll::probe::{AddressReport, Verdict};

/// A run with `status`, `checks` and `endpoints`, its other fields as a `check` against the
/// resolver 127.0.0.1:53 with the default warning days reports them.
pub fn run(status: Severity, checks: Vec<Check>, endpoints: Vec<EndpointReport>) -> RunReport {
    RunReport {
        status,
        started: 1_738_324_800,
        elapsed_seconds: 0.1,
        resolver: Some("127.0.0.1:53".into()),
        rrsig_warn_days: 5,
        cert_warn_days: 14,
        domains: Vec::new(),
        checks,
        endpoints,
    }
}

/// `host`:25 at `ip`, its TLSA RRset secure (no records listed), with `status` and the
/// probe's `verdict` (the endpoint's and the address's).
pub fn smtp_endpoint(host: &str, ip: IpAddr, status: Severity, verdict: Verdict) -> EndpointReport {
    let ep = Endpoint::new(host, None, None).unwrap();
    EndpointReport {
        host: host.to_string(),
        port: 25,
        protocol: "smtp",
        mx_of: Vec::new(),
        status,
        verdict,
        tlsa: RecordSet {
            owner: ep.owner_name(),
            source: RecordSource::DnsSecure,
            records: Vec::new(),
            dns_status: Some("secure".into()),
            problem: None,
            ttl: None,
            rrsig_expiry: None,
        },
        max_records: 4,
        addresses: vec![AddressReport {
            host: host.to_string(),
            address: SocketAddr::new(ip, 25),
            protocol: Protocol::Smtp,
            verdict,
            reason: None,
            keys: Vec::new(),
            attempts: Vec::new(),
            ignored_records: Vec::new(),
            unmatched_records: Vec::new(),
            elapsed_ms: 1,
        }],
    }
}
