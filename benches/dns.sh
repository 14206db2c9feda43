#!/usr/bin/env bash
# Benchmark the DNS view: N validated TLSA lookups through Unbound and N per-nameserver queries
# (one TCP connection each, TLSA + SOA, RD=0, DO) with at most CONC at once, against a sequential
# `dig` loop of the same N queries, in one run; print the figures and write them into the `## DNS`
# section of docs/BENCHMARKS.md.
#
# The lab (BIND + Knot + Unbound on 127.53.N.0/24) is held by one test process
# (`bench_lab_hold`); the lookups run in another (`bench_dns_queries`) under `/usr/bin/time -v`,
# so the peak RSS is that of the process doing the lookups alone. The lab stops when its address
# file is removed (also on exit or error); its servers are stopped by PID by the lab itself.
#
# Needs: root, cargo, jq, dig, /usr/bin/time, the lab's servers. Usage: benches/dns.sh [N] [CONC]
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/benches/lib.sh"
cd "$root"
n=${1:-500}
conc=${2:-32}
for tool in cargo jq dig /usr/bin/time; do
    command -v "$tool" >/dev/null || { echo "benches/dns.sh: $tool is missing" >&2; exit 2; }
done
[ "$(id -u)" = 0 ] || { echo "benches/dns.sh: the lab needs root (loopback aliases, port 53)" >&2; exit 2; }

bin=$(cargo test --release --test dns --no-run --message-format=json 2>/dev/null |
    jq -r 'select(.reason == "compiler-artifact" and .executable != null and .target.name == "dns") | .executable' |
    tail -n 1)
[ -x "$bin" ] || { echo "benches/dns.sh: no release test binary for tests/dns.rs" >&2; exit 2; }

work=$(mktemp -d)
holder=
cleanup() {
    rm -f "$work/lab"
    if [ -n "$holder" ]; then wait "$holder" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

DANE_ROLL_BENCH_LAB_FILE="$work/lab" "$bin" --ignored --exact bench_lab_hold --nocapture \
    >"$work/holder.log" 2>&1 &
holder=$!
for _ in $(seq 600); do
    [ -f "$work/lab" ] && break
    kill -0 "$holder" 2>/dev/null || { cat "$work/holder.log" >&2; exit 2; }
    sleep 0.1
done
[ -f "$work/lab" ] || { echo "benches/dns.sh: the lab did not start" >&2; exit 2; }
# shellcheck disable=SC1091
. "$work/lab"
export RESOLVER NS1 NS2 OWNER ZONE
echo "lab: resolver $RESOLVER, nameservers $NS1 $NS2, owner $OWNER" >&2

# dane-roll: one process, N resolver lookups then N nameserver queries.
N=$n CONC=$conc /usr/bin/time -v "$bin" --ignored --exact bench_dns_queries --nocapture \
    >"$work/bench.out" 2>"$work/time.txt" || { cat "$work/bench.out" "$work/time.txt" >&2; exit 2; }
field() { grep -o "$1=[0-9.]*" "$work/bench.out" | head -n 1 | cut -d= -f2; }
res_line=$(grep '^BENCH resolver_lookups' "$work/bench.out")
ns_line=$(grep '^BENCH nameserver_queries' "$work/bench.out")
res_secs=$(echo "$res_line" | grep -o 'secs=[0-9.]*' | cut -d= -f2)
ns_secs=$(echo "$ns_line" | grep -o 'secs=[0-9.]*' | cut -d= -f2)
rss=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$work/time.txt")
hwm=$(field vmhwm_kib)

# dig: the same queries, one process each, one after another.
now() { date +%s.%N; }
t0=$(now)
for _ in $(seq "$n"); do
    dig +dnssec +adflag +tries=1 +time=3 @"$RESOLVER" "$OWNER" TLSA >/dev/null
done
dig_res_secs=$(echo "$(now) - $t0" | bc -l)
t0=$(now)
for i in $(seq "$n"); do
    if [ $((i % 2)) = 0 ]; then ns=$NS1; else ns=$NS2; fi
    dig +norec +dnssec +tcp +tries=1 +time=3 @"$ns" "$OWNER" TLSA >/dev/null
done
dig_ns_secs=$(echo "$(now) - $t0" | bc -l)
dig_rss=$( { /usr/bin/time -v dig +dnssec +adflag @"$RESOLVER" "$OWNER" TLSA >/dev/null; } 2>&1 |
    awk -F': ' '/Maximum resident set size/ { print $2 }')
ad=$(dig +dnssec +adflag @"$RESOLVER" "$OWNER" TLSA | grep -c 'flags:.* ad' || true)

rm -f "$work/lab"
wait "$holder" || true
holder=

rate() { echo "scale=0; $n / $1" | bc -l; }
ms() { printf '%.1f' "$(echo "$1 * 1000 / $n" | bc -l)"; }
cpu=$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)
section=$(cat <<EOF
## DNS

Measured by \`benches/dns.sh\` on $(date -u +%Y-%m-%d), machine: $(nproc) cores, ${cpu:-unknown CPU},
$(dig -v 2>&1 | head -n 1). Lab: BIND (primary) + Knot (secondary) + validating Unbound on loopback
(Unbound's cache-max-ttl 5, so most lookups are answered from its cache). dane-roll: $n validated
TLSA lookups through Unbound (UDP, DO+AD, every answer checked secure), then $n per-nameserver
queries alternating BIND and Knot (one TCP connection each carrying the TLSA and SOA queries, RD=0,
DO), at most $conc at once, on a current-thread tokio runtime, in one process (release build).
dig: the same $n queries one after another, one process each (per-nameserver: the TLSA query only).

| what | dane-roll ($conc at once) | dig loop (sequential) |
| --- | --- | --- |
| $n TLSA lookups via Unbound | ${res_secs} s ($(rate "$res_secs")/s) | $(printf '%.2f' "$dig_res_secs") s ($(rate "$dig_res_secs")/s, $(ms "$dig_res_secs") ms each) |
| $n queries to nameservers (TCP) | ${ns_secs} s ($(rate "$ns_secs")/s) | $(printf '%.2f' "$dig_ns_secs") s ($(rate "$dig_ns_secs")/s, $(ms "$dig_ns_secs") ms each) |
| peak RSS (\`/usr/bin/time -v\`) | ${rss} KiB for the whole run (VmHWM ${hwm} KiB) | ${dig_rss} KiB per dig process |

dig's AD check on the same answer: $( [ "$ad" -ge 1 ] && echo "ad set" || echo "NO ad flag" ).
The dig loop pays a process start per query; the table says what the gate and the monitor cost,
not that one resolver client is faster than another. The VM's speed drifts ±15–25 % (docs/LAB.md):
compare within one run.
EOF
)
echo "$section"

write_section "DNS" "$section"
