#!/usr/bin/env bash
# Benchmark the DER readings of src/der.rs against the hand-written reader they replaced (the
# file as it was at commit $BASE, default cdddd79), in one run on the same inputs, and write the
# figures into the `## DER readings` section of docs/BENCHMARKS.md.
#
# Both files are compiled into one small release program (src/der.rs uses nothing of the crate
# but x509-parser, so it builds alone), with OpenSSL's own decoder of the same certificates for
# scale. The readings are what the probe does per served certificate (SubjectPublicKeyInfo and
# notAfter), what `status` does per service (notAfter) and what loading a DER file does
# (splitting concatenated objects). This is a focused micro-benchmark: the full
# `benches/probe.sh` and `benches/rollover.sh` measure whole handshakes and `status` runs.
#
# Needs: cargo, git, openssl. Usage: benches/der.sh [ITERATIONS] (default 200000 per reading;
# ROUNDS=5 interleaved rounds, median reported).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/benches/lib.sh"
cd "$root"
iterations=${1:-200000}
rounds=${ROUNDS:-5}
base=${BASE:-cdddd79}
for tool in cargo git openssl; do
    command -v "$tool" >/dev/null || { echo "benches/der.sh: $tool is missing" >&2; exit 2; }
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The inputs: an EC P-256 leaf, an RSA 2048 leaf and an RSA 4096 CA, as certbot's files hold them.
mkdir -p "$work/certs"
make_cert() { # name, then `openssl req` options
    local name=$1
    shift
    openssl req -x509 -nodes -keyout "$work/certs/$name.key" -out "$work/certs/$name.pem" \
        -subj "/CN=$name.example.test" -days 90 "$@" 2>"$work/certs/$name.err" ||
        { cat "$work/certs/$name.err" >&2; exit 2; }
    openssl x509 -in "$work/certs/$name.pem" -outform DER -out "$work/certs/$name.der"
}
make_cert ec -newkey ec -pkeyopt ec_paramgen_curve:P-256 -addext subjectAltName=DNS:mail.example.test
make_cert rsa -newkey rsa:2048 -addext subjectAltName=DNS:mail.example.test,DNS:mx2.example.test
make_cert ca -newkey rsa:4096 -addext basicConstraints=critical,CA:TRUE

# The program: both readers side by side.
mkdir -p "$work/bench/src"
git show "$base:src/der.rs" >"$work/bench/src/before.rs"
cp Cargo.lock "$work/bench/Cargo.lock" # the versions the crate builds with
x509_version=$(sed -n 's/^x509-parser = .*version = "\([^"]*\)".*/\1/p; s/^x509-parser = "\([^"]*\)"/\1/p' Cargo.toml)
cat >"$work/bench/Cargo.toml" <<EOF
[package]
name = "der-bench"
version = "0.0.0"
edition = "2024"
publish = false

[dependencies]
x509-parser = { version = "$x509_version", default-features = false }
openssl = "0.10"

[profile.release]
debug = false

[workspace]
EOF
cat >"$work/bench/src/main.rs" <<EOF
#![allow(dead_code)]
use std::hint::black_box;
use std::time::Instant;

#[path = "$work/bench/src/before.rs"]
mod before;
#[path = "$root/src/der.rs"]
mod after;

/// Nanoseconds per call of \`f\` over \`n\` calls.
fn time(n: u32, mut f: impl FnMut()) -> f64 {
    let start = Instant::now();
    for _ in 0..n {
        f();
    }
    start.elapsed().as_nanos() as f64 / f64::from(n)
}

fn main() {
    let n: u32 = std::env::args().nth(1).unwrap().parse().unwrap();
    let dir = std::env::args().nth(2).unwrap();
    let certs: Vec<(String, Vec<u8>)> = ["ec", "rsa", "ca"]
        .iter()
        .map(|name| (name.to_string(), std::fs::read(format!("{dir}/{name}.der")).unwrap()))
        .collect();
    // Both readers must agree before they are timed.
    for (name, der) in &certs {
        let facts = after::certificate(der).expect(name);
        assert_eq!(Some(facts.spki), before::certificate_spki(der), "{name}");
        assert_eq!(Some(facts.not_after), before::certificate_not_after(der), "{name}");
    }
    let chain: Vec<u8> = certs.iter().flat_map(|(_, d)| d.clone()).collect();
    let split = |announced: fn(&[u8]) -> Option<usize>, chain: &[u8]| {
        let mut rest = chain;
        let mut count = 0;
        while let Some(len) = announced(rest).filter(|l| *l <= rest.len()) {
            rest = &rest[len..];
            count += 1;
        }
        count
    };
    assert_eq!(split(before::announced_length, &chain), 3);
    assert_eq!(split(after::announced_length, &chain), 3);
    for (name, der) in &certs {
        let der = der.as_slice();
        let row = |reading: &str, b: f64, a: f64| println!("{name}\t{reading}\t{b:.0}\t{a:.0}");
        row(
            "SPKI + notAfter (probe, per certificate)",
            time(n, || {
                black_box(before::certificate_spki(black_box(der)));
                black_box(before::certificate_not_after(black_box(der)));
            }),
            time(n, || {
                black_box(after::certificate(black_box(der)));
            }),
        );
        row(
            "notAfter (status, per service)",
            time(n, || {
                black_box(before::certificate_not_after(black_box(der)));
            }),
            time(n, || {
                black_box(after::certificate_not_after(black_box(der)));
            }),
        );
        let openssl = time(n / 20 + 1, || {
            black_box(openssl::x509::X509::from_der(black_box(der)).unwrap());
        });
        println!("{name}\tOpenSSL X509::from_der (for scale)\t{openssl:.0}\t{openssl:.0}");
    }
    println!(
        "chain\tsplitting 3 concatenated certificates\t{:.0}\t{:.0}",
        time(n, || {
            black_box(split(before::announced_length, black_box(&chain)));
        }),
        time(n, || {
            black_box(split(after::announced_length, black_box(&chain)));
        })
    );
}
EOF

target=${CARGO_TARGET_DIR:-$root/target}/der-bench
CARGO_TARGET_DIR=$target cargo build --release --locked --manifest-path "$work/bench/Cargo.toml" >&2 ||
    CARGO_TARGET_DIR=$target cargo build --release --manifest-path "$work/bench/Cargo.toml" >&2
bin=$target/release/der-bench

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for round in $(seq "$rounds"); do
    "$bin" "$iterations" "$work/certs" >"$work/round.$round"
    echo "round $round of $rounds done" >&2
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# Median of the rounds for each row (nanoseconds per call).
table=$(python3 - "$work" "$rounds" <<'PY'
import statistics, sys
work, rounds = sys.argv[1], int(sys.argv[2])
rows = {}
order = []
for r in range(1, rounds + 1):
    for line in open(f"{work}/round.{r}"):
        cert, reading, before, after = line.rstrip("\n").split("\t")
        key = (cert, reading)
        if key not in rows:
            rows[key] = ([], [])
            order.append(key)
        rows[key][0].append(float(before))
        rows[key][1].append(float(after))
names = {"ec": "EC P-256 leaf", "rsa": "RSA 2048 leaf", "ca": "RSA 4096 CA", "chain": "all three"}
for key in order:
    b, a = (statistics.median(v) for v in rows[key])
    if key[1].startswith("OpenSSL"):
        print(f"| {names[key[0]]} | {key[1]} | {b / 1000:.2f} | | |")
    else:
        print(f"| {names[key[0]]} | {key[1]} | {b / 1000:.2f} | {a / 1000:.2f} | {a / b:.1f}x |")
PY
)

cpu_model=$(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -n 1)
section=$(cat <<EOF
## DER readings

Measured by \`benches/der.sh $iterations\` on $(date -u +%Y-%m-%d), machine: $(nproc) cores, $cpu_model.
The DER readings of \`src/der.rs\` through \`x509-parser\` (after) against the hand-written reader
they replaced (before: \`src/der.rs\` at commit $base), compiled into one release program, on
certificates made by \`openssl req\`; microseconds per call, median of $rounds rounds of
$iterations calls each. OpenSSL's \`X509::from_der\` of the same certificate is there for scale: it
is what both readers avoid. Load average (1, 5, 15 min) before: $load_before; after: $load_after
(other work shares the cores).

| certificate | reading | before (µs) | after (µs) | after / before |
| --- | --- | --- | --- | --- |
$table

The hand-written reader walked only to the fields it needed; \`x509-parser\` checks the whole
certificate's structure (extensions are not decoded), so it costs more per certificate, and
stays well under OpenSSL's decoder. One probe handshake costs about a millisecond (\`## Probe\`),
so either reading is a small part of it.
EOF
)
echo "$section"

write_section "DER readings" "$section"
