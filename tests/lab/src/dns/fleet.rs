//! A fleet of mail hosts in the lab zone, for the monitor's benchmarks: `bN.example.test` with an
//! A record and a `3 1 1` TLSA record each, published in batches and waited for until every
//! nameserver serves each one signed.

use std::time::Duration;

use super::DnsLab;

impl DnsLab {
    /// Publish `b1.example.test` … `bN.example.test`, each with an A record `address` and the TLSA
    /// record `rdata` at `_25._tcp`, and return the host names once every nameserver serves every
    /// record signed and the resolver's cache is flushed. Panics when the lab cannot (a fixture).
    pub fn publish_fleet(&self, n: usize, address: &str, rdata: &str) -> Vec<String> {
        let hosts: Vec<String> = (1..=n).map(|i| format!("b{i}.example.test")).collect();
        for batch in hosts.chunks(50) {
            let mut lines = vec!["zone example.test.".to_string()];
            for h in batch {
                lines.push(format!("update add {h}. 300 IN A {address}"));
                lines.push(format!("update add _25._tcp.{h}. 300 IN TLSA {rdata}"));
            }
            let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
            assert!(self.nsupdate(&refs).unwrap().is_ok());
        }
        // BIND's inline signing can lag behind a burst of updates (docs/LAB.md: the last records
        // of a burst may stay out until the next update): every record must be served signed;
        // nudge with another update when not.
        for (i, h) in hosts.iter().enumerate() {
            let owner = format!("_25._tcp.{h}");
            let mut nudges = 0;
            while self
                .wait_served_everywhere(&owner, rdata, Duration::from_secs(3))
                .is_err()
            {
                nudges += 1;
                assert!(nudges <= 20, "{owner} never served signed");
                let nudge = format!("update add nudge{i}-{nudges}.example.test. 60 IN TXT \"x\"");
                assert!(
                    self.nsupdate(&["zone example.test.", &nudge])
                        .unwrap()
                        .is_ok()
                );
            }
        }
        self.flush_resolver().unwrap();
        hosts
    }
}
