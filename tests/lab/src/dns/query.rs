//! DNS queries through `dig`, parsed into a small [`Answer`].
//!
//! The lab deliberately uses the `dig` CLI rather than a DNS library: what a test sees is what an
//! operator would see by hand. Queries carry the DO bit (`+dnssec`) so RRSIGs show, `+nosplit` so
//! TLSA hex comes on one line, and one try of one second so a paused server fails fast.

use std::io;
use std::net::Ipv4Addr;
use std::process::Command;

/// One resource record as `dig` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Owner name, absolute (with the trailing dot).
    pub name: String,
    /// TTL in seconds.
    pub ttl: u32,
    /// Class, `IN`.
    pub class: String,
    /// Type mnemonic: `TLSA`, `RRSIG`, `A`...
    pub rtype: String,
    /// Presentation-format data, single-spaced.
    pub rdata: String,
}

impl Record {
    /// Whether this record's data equals `rdata`, ignoring case and spacing (TLSA hex is printed
    /// upper case by dig; the hex may have been given lower case or split into groups).
    pub fn rdata_matches(&self, rdata: &str) -> bool {
        normalize_rdata(&self.rdata) == normalize_rdata(rdata)
    }

    /// For an RRSIG: the type it covers.
    pub fn covered_type(&self) -> Option<&str> {
        (self.rtype == "RRSIG")
            .then(|| self.rdata.split_whitespace().next())
            .flatten()
    }
}

/// Lower-cased data; for TLSA-like data (`u s m hex…`) the hex groups are joined.
pub fn normalize_rdata(rdata: &str) -> String {
    let words: Vec<String> = rdata
        .split_whitespace()
        .map(str::to_ascii_lowercase)
        .collect();
    let is_tlsa = words.len() >= 4
        && words[..3].iter().all(|w| w.parse::<u8>().is_ok())
        && words[3..]
            .iter()
            .all(|w| w.chars().all(|c| c.is_ascii_hexdigit()));
    if is_tlsa {
        format!(
            "{} {} {} {}",
            words[0],
            words[1],
            words[2],
            words[3..].concat()
        )
    } else {
        words.join(" ")
    }
}

/// A parsed response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Answer {
    /// `NOERROR`, `NXDOMAIN`, `SERVFAIL`, `REFUSED`...
    pub rcode: String,
    /// Header flags: `qr`, `aa`, `rd`, `ra`, `ad`, `cd`, `tc`.
    pub flags: Vec<String>,
    /// The answer section.
    pub answer: Vec<Record>,
    /// The authority section (NSEC, SOA for negative answers).
    pub authority: Vec<Record>,
    /// Extended DNS error, as dig prints it (`9 (DNSKEY Missing)`), if any.
    pub ede: Option<String>,
}

impl Answer {
    /// The response has the AD (authenticated data) flag.
    pub fn ad(&self) -> bool {
        self.has_flag("ad")
    }

    /// The response has the AA (authoritative) flag.
    pub fn aa(&self) -> bool {
        self.has_flag("aa")
    }

    /// Whether the header carries `flag`.
    pub fn has_flag(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }

    /// Answer records of type `rtype`.
    pub fn records(&self, rtype: &str) -> Vec<&Record> {
        self.answer
            .iter()
            .filter(|r| r.rtype.eq_ignore_ascii_case(rtype))
            .collect()
    }

    /// Whether the answer holds a record of type `rtype` with data `rdata`.
    pub fn contains(&self, rtype: &str, rdata: &str) -> bool {
        self.records(rtype).iter().any(|r| r.rdata_matches(rdata))
    }

    /// Whether the answer holds an RRSIG covering `rtype`.
    pub fn signed(&self, rtype: &str) -> bool {
        self.answer.iter().any(|r| {
            r.covered_type()
                .is_some_and(|t| t.eq_ignore_ascii_case(rtype))
        })
    }

    /// The SOA serial in the answer (or, for negative answers, the authority section).
    pub fn soa_serial(&self) -> Option<u32> {
        self.answer
            .iter()
            .chain(&self.authority)
            .find(|r| r.rtype == "SOA")
            .and_then(|r| r.rdata.split_whitespace().nth(2))
            .and_then(|s| s.parse().ok())
    }
}

/// Query `server`:53 for `name`/`rtype` with the DO bit. `recursion` sets RD (for the resolver).
///
/// A server that does not answer (stopped, paused) is an error of kind `TimedOut` or
/// `ConnectionRefused`; any DNS response, SERVFAIL included, is an `Ok(Answer)`.
pub fn dig(server: Ipv4Addr, name: &str, rtype: &str, recursion: bool) -> io::Result<Answer> {
    let out = Command::new(crate::dns::tool("dig"))
        .arg(format!("@{server}"))
        .args([
            "-p", "53", "+dnssec", "+nosplit", "+time=1", "+tries=1", "+nocmd", "+nostats",
        ])
        .arg(if recursion { "+rec" } else { "+norec" })
        .args([name, rtype])
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() || !text.contains("->>HEADER<<-") {
        let kind = if text.contains("connection refused") {
            io::ErrorKind::ConnectionRefused
        } else {
            io::ErrorKind::TimedOut
        };
        return Err(io::Error::new(
            kind,
            format!(
                "dig @{server} {name} {rtype}: no answer: {}{}",
                text.trim(),
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        ));
    }
    Ok(parse_dig(&text))
}

/// Parse dig's default output (header comments and sections).
pub fn parse_dig(text: &str) -> Answer {
    #[derive(PartialEq)]
    enum Section {
        None,
        Answer,
        Authority,
        Other,
    }
    let mut ans = Answer::default();
    let mut section = Section::None;
    for line in text.lines() {
        let line = line.trim_end();
        if let Some(rest) = line.split_once("status: ").map(|(_, r)| r) {
            ans.rcode = rest.split(',').next().unwrap_or("").trim().to_string();
        } else if let Some(rest) = line.strip_prefix(";; flags:") {
            let flags = rest.split(';').next().unwrap_or("");
            ans.flags = flags.split_whitespace().map(str::to_string).collect();
        } else if let Some(rest) = line.strip_prefix("; EDE:") {
            ans.ede = Some(rest.trim().to_string());
        } else if line.starts_with(";; ANSWER SECTION") {
            section = Section::Answer;
        } else if line.starts_with(";; AUTHORITY SECTION") {
            section = Section::Authority;
        } else if line.starts_with(";;") && line.ends_with("SECTION:") {
            section = Section::Other;
        } else if line.is_empty() {
            section = Section::None;
        } else if !line.starts_with(';') {
            let Some(rec) = parse_record(line) else {
                continue;
            };
            match section {
                Section::Answer => ans.answer.push(rec),
                Section::Authority => ans.authority.push(rec),
                _ => {}
            }
        }
    }
    ans
}

/// Parse one zone-file style line `name ttl class type rdata…` (the form dig and AXFR print).
pub fn parse_record(line: &str) -> Option<Record> {
    let mut words = line.split_whitespace();
    let name = words.next()?.to_string();
    let ttl = words.next()?.parse().ok()?;
    let class = words.next()?.to_string();
    let rtype = words.next()?.to_string();
    let rdata = words.collect::<Vec<_>>().join(" ");
    Some(Record {
        name,
        ttl,
        class,
        rtype,
        rdata,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
;; Got answer:
;; ->>HEADER<<- opcode: QUERY, status: NOERROR, id: 59037
;; flags: qr rd ra ad; QUERY: 1, ANSWER: 2, AUTHORITY: 0, ADDITIONAL: 1

;; OPT PSEUDOSECTION:
; EDNS: version: 0, flags: do; udp: 1232
; EDE: 9 (DNSKEY Missing)
;; QUESTION SECTION:
;_25._tcp.mail.example.test.\tIN\tTLSA

;; ANSWER SECTION:
_25._tcp.mail.example.test. 300\tIN\tTLSA\t3 1 1 AAAA
_25._tcp.mail.example.test. 300\tIN\tRRSIG\tTLSA 13 5 300 20261207075203 20261123075032 45031 example.test. /Pq7==

";

    #[test]
    fn parses_header_and_sections() {
        let a = parse_dig(SAMPLE);
        assert_eq!(a.rcode, "NOERROR");
        assert!(a.ad() && !a.aa());
        assert_eq!(a.ede.as_deref(), Some("9 (DNSKEY Missing)"));
        assert_eq!(a.answer.len(), 2);
        assert!(a.contains("TLSA", "3 1 1 aa aa"));
        assert!(!a.contains("TLSA", "3 1 1 aaab"));
        assert!(a.signed("TLSA") && !a.signed("A"));
    }
}
