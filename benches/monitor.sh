#!/usr/bin/env bash
# Benchmark the monitor: `dane-roll check` on N endpoints of the lab (bN.example.test in the signed
# zone, each with an A record to one Postfix and a `3 1 1` TLSA record), against the seeds' way
# (per host: `dig` the TLSA records, then `openssl s_client -starttls smtp -dane_tlsa_rrdata …`,
# in sequence; a subset of SUBSET hosts, extrapolated) and against the ceiling (STARTTLS sessions
# per second the same Postfix serves to a minimal OpenSSL client, no DNS, no DANE, best
# concurrency). Prints the figures and writes the `## Monitor` section of docs/BENCHMARKS.md.
#
# The lab is held by one test process (`bench_monitor_lab_hold` in tests/monitor.rs); dane-roll
# runs as the release binary under `/usr/bin/time -v`; the ceiling client is `bench_starttls_ceiling`.
# The lab stops when its address file is removed (also on exit or error).
#
# Needs: root, cargo, jq, dig, openssl, /usr/bin/time, the lab's servers.
# Usage: benches/monitor.sh [N] [SUBSET] [CONC]
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
n=${1:-500}
subset=${2:-50}
conc=${3:-8}
for tool in cargo jq dig openssl bc /usr/bin/time; do
    command -v "$tool" >/dev/null || { echo "benches/monitor.sh: $tool is missing" >&2; exit 2; }
done
[ "$(id -u)" = 0 ] || { echo "benches/monitor.sh: the lab needs root" >&2; exit 2; }

cargo build --release --bin dane-roll >&2
bin=$root/target/release/dane-roll
tbin=$(cargo test --release --test monitor --no-run --message-format=json 2>/dev/null |
    jq -r 'select(.reason == "compiler-artifact" and .executable != null and .target.name == "monitor") | .executable' |
    tail -n 1)
[ -x "$tbin" ] || { echo "benches/monitor.sh: no release test binary for tests/monitor.rs" >&2; exit 2; }

work=$(mktemp -d)
holder=
cleanup() {
    rm -f "$work/lab"
    if [ -n "$holder" ]; then wait "$holder" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

N=$n DANE_ROLL_BENCH_LAB_FILE="$work/lab" "$tbin" --ignored --exact bench_monitor_lab_hold \
    --nocapture >"$work/holder.log" 2>&1 &
holder=$!
for _ in $(seq 3000); do
    [ -f "$work/lab" ] && break
    kill -0 "$holder" 2>/dev/null || { cat "$work/holder.log" >&2; exit 2; }
    sleep 0.1
done
[ -f "$work/lab" ] || { echo "benches/monitor.sh: the lab did not start" >&2; exit 2; }
# shellcheck disable=SC1090
. "$work/lab"
echo "lab: resolver $RESOLVER, Postfix $MX, $N hosts" >&2
mapfile -t hosts <"$HOSTS"

now() { date +%s.%N; }

# dane-roll: every host, one process, the key algorithm the server has (ECDSA).
/usr/bin/time -v "$bin" check --host "${hosts[@]}" --resolver "$RESOLVER" --key-algorithm ecdsa \
    --concurrency "$conc" --timeout 600 --format json >"$work/out.json" 2>"$work/time.txt" || true
status=$(jq -r .status "$work/out.json")
passed=$(jq '[.endpoints[].addresses[] | select(.verdict == "pass")] | length' "$work/out.json")
checks=$(jq '.checks | length' "$work/out.json")
wall=$(jq -r .elapsed_seconds "$work/out.json")
[ "$passed" = "$n" ] || { echo "benches/monitor.sh: only $passed of $n addresses pass (status $status)" >&2; exit 2; }
rss=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$work/time.txt")
proc_wall=$(awk -F': ' '/Elapsed \(wall clock\)/ { print $2 }' "$work/time.txt")

# The same with all three key algorithms (what `check` does by default).
t0=$(now)
"$bin" check --host "${hosts[@]}" --resolver "$RESOLVER" --concurrency "$conc" --timeout 600 \
    --format json >"$work/all.json" || true
all_wall=$(echo "$(now) - $t0" | bc -l)
all_passed=$(jq '[.endpoints[].addresses[] | select(.verdict == "pass")] | length' "$work/all.json")

# The seeds' way, on the first SUBSET hosts: dig the TLSA records, then s_client with them.
# openssl connects to the address (the lab's names are not in the system resolver).
seed_ok=0
t0=$(now)
for h in "${hosts[@]:0:$subset}"; do
    opts=(-starttls smtp -connect "$MX:25" -verify 9 -verify_return_error -brief
        -dane_ee_no_namechecks -dane_tlsa_domain "$h")
    set -- $(dig +short +nosplit -t tlsa "@$RESOLVER" "_25._tcp.$h" | grep -Ei '^[23] [01] [012] [0-9a-f]+$')
    while [ $# -ge 4 ]; do
        opts+=(-dane_tlsa_rrdata "$1 $2 $3 $4")
        shift 4
    done
    if openssl s_client "${opts[@]}" </dev/null >/dev/null 2>&1; then seed_ok=$((seed_ok + 1)); fi
done
seed_wall=$(echo "$(now) - $t0" | bc -l)
[ "$seed_ok" = "$subset" ] || { echo "benches/monitor.sh: the seeds' loop verified $seed_ok of $subset" >&2; exit 2; }

# The ceiling: a minimal OpenSSL client, each concurrency; the best rate.
MX=$MX SESSIONS=1000 CONCS="1 2 4 8 16" "$tbin" --ignored --exact bench_starttls_ceiling \
    --nocapture >"$work/ceiling.out" 2>&1
grep '^BENCH ceiling' "$work/ceiling.out" >&2
best=$(grep '^BENCH ceiling' "$work/ceiling.out" | awk '{ split($4, r, "="); split($3, c, "=");
    if (r[2] > best) { best = r[2]; conc = c[2] } } END { print best, conc }')
read -r ceiling ceiling_conc <<<"$best"

rm -f "$work/lab"
wait "$holder" || true
holder=

f() { awk -v x="$1" "BEGIN { printf \"$2\", x }"; }
rate=$(echo "$n / $wall" | bc -l)
check_rate=$(echo "$checks / $wall" | bc -l)
seed_each=$(echo "$seed_wall / $subset" | bc -l)
seed_total=$(echo "$seed_each * $n" | bc -l)
seed_rate=$(echo "1 / $seed_each" | bc -l)
speedup=$(echo "$rate / $seed_rate" | bc -l)
of_ceiling=$(echo "$rate / $ceiling" | bc -l)
all_rate=$(echo "$n / $all_wall" | bc -l)
met() { if [ "$(echo "$1" | bc -l)" = 1 ]; then echo "met"; else echo "NOT met"; fi; }
cpu=$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)
section=$(cat <<EOF
## Monitor

Measured by \`benches/monitor.sh $n $subset $conc\` on $(date -u +%Y-%m-%d), machine: $(nproc) cores,
${cpu:-unknown CPU}, $(openssl version | cut -d' ' -f1-2), Postfix $(postconf -d -h mail_version 2>/dev/null).
Lab: BIND (signed zone) + validating Unbound + one receiving Postfix (EC P-256 certificate, TLS 1.3)
on loopback; $n endpoints \`bN.example.test:25\`, each with an A record to that Postfix and a
\`3 1 1\` TLSA record, added by UPDATE in batches of 50 and checked served signed first.
\`dane-roll check --host … --key-algorithm ecdsa --concurrency $conc\` (release build) checks all $n in one
process: the validation probe, per endpoint TLSA + A + AAAA + \`_tcp\` through Unbound, one
STARTTLS handshake per address, and every check of the list. The server has only an ECDSA key,
so the figure is measured with \`--key-algorithm ecdsa\`; the default (RSA, ECDSA and EdDSA
attempts: three connections per address, two of which end in a handshake failure) is shown too.

| what | figure |
| --- | --- |
| \`dane-roll check\`, $n endpoints (ECDSA) | $(f "$wall" "%.2f") s: $(f "$rate" "%.0f") endpoints/s, $(f "$check_rate" "%.0f") checks/s ($checks checks), all $passed addresses pass, status $status |
| peak RSS (\`/usr/bin/time -v\`) | $rss KiB (process wall $proc_wall) |
| \`dane-roll check\`, $n endpoints, all three key algorithms | $(f "$all_wall" "%.2f") s: $(f "$all_rate" "%.0f") endpoints/s ($all_passed pass) |
| seeds' loop (\`dig\` + \`openssl s_client\` per host, sequential), $subset hosts | $(f "$seed_wall" "%.2f") s: $(f "$seed_each" "%.3f") s per host, $(f "$seed_rate" "%.1f") hosts/s; extrapolated to $n: $(f "$seed_total" "%.0f") s |
| ceiling: minimal OpenSSL STARTTLS client, best of 1/2/4/8/16 at once | $(f "$ceiling" "%.0f") sessions/s (at $ceiling_conc) |

Targets: ≥ 50× the seeds' loop: $(f "$speedup" "%.1f")× ($(met "$speedup >= 50")); ≥ 80 % of the ceiling:
$(f "$(echo "$of_ceiling * 100" | bc -l)" "%.0f") % ($(met "$of_ceiling >= 0.8")); ≤ 30 MB peak memory: $rss KiB ($(met "$rss <= 30720")).
The seeds' loop is extrapolated from $subset hosts (each one \`dig\` and one \`s_client\` process;
\`s_client\` connects to the address because the lab's names are not in the system resolver).
Client and server share the same $(nproc) cores, so the ceiling (a client that does almost nothing
but the handshake) is what Postfix can serve; dane-roll does more per endpoint (DNS, DANE
verification, reading the chain). The VM's speed drifts ±15–25 % (LAB.md): compare within one run.
EOF
)
echo "$section"

doc="$root/docs/BENCHMARKS.md"
[ -f "$doc" ] || printf '# Benchmarks\n' >"$doc"
# Replace the `## Monitor` section (up to the next `## ` heading) or append it.
SECTION="$section" awk '
    BEGIN { section = ENVIRON["SECTION"] }
    /^## / { if (skip) skip = 0 }
    /^## Monitor[[:space:]]*$/ { print section; print ""; skip = 1; done = 1; next }
    !skip { print }
    END { if (!done) { print ""; print section } }
' "$doc" >"$work/BENCHMARKS.md"
cat "$work/BENCHMARKS.md" >"$doc"
echo "wrote the ## Monitor section of docs/BENCHMARKS.md" >&2
