#!/usr/bin/env bash
# The monitor at internet latency and scale (issue 17): `dane-roll check` of N endpoints behind a
# 50 ms round trip and 1 % loss each way, against
#   (a) the latency bound for its concurrency C: the round trips one check holds a probe permit
#       for × RTT × N ÷ C, plus the round trips before the first probe (named below);
#   (b) the seeds' loop (`dig` + `openssl s_client`, one host after another) on SUBSET hosts under
#       the same conditions, extrapolated to N;
#   (c) peak memory (`/usr/bin/time -v`).
# First the relay's own overhead (`lab-relay measure`: 0 ms configured, direct vs relayed).
#
# The lab is held by one test process (`bench_field_lab_hold` in tests/field_latency.rs): BIND +
# Unbound + one Postfix, N hosts bN.example.test (A → a relay in front of the Postfix, `3 1 1`
# TLSA), and a relay in front of Unbound: dane-roll and the seeds' loop reach the resolver and
# every SMTP endpoint through the relays; Unbound asks BIND directly (the far side). dane-roll
# runs as the release binary with its default key algorithms (RSA, ECDSA, EdDSA: three
# connections per address, side by side).
#
# Needs: root, cargo, jq, dig, openssl, bc, unshare, /usr/bin/time, the lab's servers.
# Usage: benches/field.sh [SIZES] [SUBSET]     e.g. benches/field.sh "1000 5000" 20
# Environment: CONCS ("16 32 64 128 256"), RTT_MS (50), LOSS (0.01), SEED (1),
#              DEFAULT_CHECK / DEFAULT_SERVE (the defaults to report; read from --help if unset).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/benches/lib.sh"
cd "$root"
sizes=${1:-1000 5000}
subset=${2:-20}
concs=${CONCS:-16 32 64 128 256}
rtt_ms=${RTT_MS:-50}
loss=${LOSS:-0.01}
seed=${SEED:-1}
for tool in cargo jq dig openssl bc unshare mount /usr/bin/time; do
    command -v "$tool" >/dev/null || { echo "benches/field.sh: $tool is missing" >&2; exit 2; }
done
[ "$(id -u)" = 0 ] || { echo "benches/field.sh: the lab needs root" >&2; exit 2; }

cargo build --release --bin dane-roll -p dane-roll --bin lab-relay -p dane-roll-lab >&2
target=${CARGO_TARGET_DIR:-$root/target}
bin=$target/release/dane-roll
relay_bin=$target/release/lab-relay
tbin=$(cargo test --release --test field_latency --no-run --message-format=json 2>/dev/null |
    jq -r 'select(.reason == "compiler-artifact" and .executable != null and .target.name == "field_latency") | .executable' |
    tail -n 1)
[ -x "$tbin" ] || { echo "benches/field.sh: no release test binary for tests/field_latency.rs" >&2; exit 2; }
default_check=${DEFAULT_CHECK:-$("$bin" check --help | tr '\n' ' ' | sed -n 's/.*--concurrency <N>[^[]*\[default: \([0-9]*\)\].*/\1/p')}
default_serve=${DEFAULT_SERVE:-$("$bin" serve --help | tr '\n' ' ' | sed -n 's/.*--concurrency <N>[^[]*\[default: \([0-9]*\)\].*/\1/p')}

work=$(mktemp -d)
holder=
cleanup() {
    rm -f "$work/lab"
    if [ -n "$holder" ]; then wait "$holder" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT
now() { date +%s.%N; }
f() { awk -v x="$1" "BEGIN { printf \"$2\", x }"; }
calc() { echo "$1" | bc -l; }
met() { if [ "$(calc "$1")" = 1 ]; then echo "met"; else echo "NOT met"; fi; }

# --- the relay's own overhead ---
"$relay_bin" measure >"$work/relay.out"
cat "$work/relay.out" >&2
rv() { awk -v k="$1" -v f="$2" '$2 == k { for (i = 3; i <= NF; i++) { split($i, kv, "="); if (kv[1] == f) print kv[2] } }' "$work/relay.out"; }
pings=$(sed -n 's/^RELAY pings=\([0-9]*\).*/\1/p' "$work/relay.out")

# Round trips one check holds a probe permit for (each of the three key algorithms on its own
# connection, side by side): TCP connect, greeting, EHLO, STARTTLS, TLS 1.3 handshake, QUIT.
probe_rtts=6
# Before the first probe: the resolver's validation probe, then the first endpoint's DNS (TLSA,
# A, AAAA and `_tcp` at once). The other endpoints' DNS overlaps the probes (its own permits).
lead_rtts=2
rtt=$(calc "$rtt_ms / 1000")
bound() { calc "$lead_rtts * $rtt + $probe_rtts * $rtt * $1 / $2"; }

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
: >"$work/rows"
: >"$work/seeds"
for n in $sizes; do
    rm -f "$work/lab" "$work/lab.stats"
    N=$n RTT_MS=$rtt_ms LOSS=$loss SEED=$seed DANE_ROLL_BENCH_LAB_FILE="$work/lab" "$tbin" \
        --ignored --exact bench_field_lab_hold --nocapture >"$work/holder.log" 2>&1 &
    holder=$!
    for _ in $(seq 6000); do
        [ -f "$work/lab" ] && break
        kill -0 "$holder" 2>/dev/null || { cat "$work/holder.log" >&2; exit 2; }
        sleep 0.1
    done
    [ -f "$work/lab" ] || { echo "benches/field.sh: the lab did not start" >&2; exit 2; }
    # shellcheck disable=SC1090
    . "$work/lab"
    echo "lab: $N hosts; resolver $RESOLVER (relay → $RESOLVER_DIRECT), SMTP $FLEET:25 (relay → $MX:25)" >&2
    mapfile -t hosts <"$HOSTS"

    for c in $concs; do
        /usr/bin/time -v "$bin" check --host "${hosts[@]}" --resolver "$RESOLVER" \
            --concurrency "$c" --timeout 3600 --format json >"$work/out.json" 2>"$work/time.txt" || true
        passed=$(jq '[.endpoints[] | select(.addresses | length > 0) | select(all(.addresses[]; .verdict == "pass"))] | length' "$work/out.json")
        status=$(jq -r .status "$work/out.json")
        wall=$(jq -r .elapsed_seconds "$work/out.json")
        rss=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$work/time.txt")
        cpu=$(awk -F': ' '/User time/ { u = $2 } /System time/ { s = $2 } END { print u + s }' "$work/time.txt")
        b=$(bound "$n" "$c")
        ratio=$(calc "$wall / $b")
        echo "$n $c $wall $b $ratio $rss $passed $status $cpu" >>"$work/rows"
        echo "N=$n conc=$c wall=$(f "$wall" %.2f)s bound=$(f "$b" %.2f)s ratio=$(f "$ratio" %.2f) rss=${rss}KiB pass=$passed/$n cpu=${cpu}s" >&2
    done

    # The seeds' loop on the first SUBSET hosts, one after another, through the same relays: the
    # seed's `danesmtp` (dig the TLSA records, then openssl s_client with them), in a mount
    # namespace whose /etc/resolv.conf names the relay in front of the lab's Unbound.
    printf 'nameserver %s\n' "$RESOLVER" >"$work/resolv.conf"
    printf '%s\n' "${hosts[@]:0:$subset}" >"$work/seed-hosts"
    write_seeds_loop "$work/seeds.sh"
    t0=$(now)
    seed_ok=$(unshare -m bash -c 'mount --bind "$1" /etc/resolv.conf && exec bash "$2" "$3"' _ \
        "$work/resolv.conf" "$work/seeds.sh" "$work/seed-hosts")
    seed_wall=$(calc "$(now) - $t0")
    echo "$n $subset $seed_wall $seed_ok" >>"$work/seeds"
    echo "N=$n seeds' loop: $subset hosts in $(f "$seed_wall" %.2f)s ($seed_ok verified)" >&2

    rm -f "$work/lab"
    wait "$holder" || true
    holder=
    [ -f "$work/lab.stats" ] && sed "s/^/N=$n relay /" "$work/lab.stats" >&2
    [ -f "$work/lab.stats" ] && sed "s/^/$n /" "$work/lab.stats" >>"$work/stats"
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# --- the section ---
cpu_model=$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)
table=$(awk -v dc="$default_check" -v ds="$default_serve" '{
    mark = ($2 == dc ? " (check default)" : "") ($2 == ds ? " (serve default)" : "")
    printf "| %d | %d%s | %.2f s | %.2f s | %.2f× | %d KiB | %d/%d | %s | %.1f s |\n", $1, $2, mark, $3, $4, $5, $6, $7, $1, $8, $9
}' "$work/rows")
seed_lines=""
goals=""
sizes_arr=($sizes)
for n in $sizes; do
    read -r _ sub seed_wall seed_ok <<<"$(awk -v n="$n" '$1 == n' "$work/seeds")"
    read -r _ _ wall b ratio rss passed _ _ <<<"$(awk -v n="$n" -v c="$default_check" '$1 == n && $2 == c' "$work/rows")"
    [ -n "${wall:-}" ] || continue
    seed_each=$(calc "$seed_wall / $sub")
    seed_total=$(calc "$seed_each * $n")
    speedup=$(calc "$seed_total / $wall")
    seed_lines+="| $n | $sub hosts in $(f "$seed_wall" %.1f) s ($seed_ok verified): $(f "$seed_each" %.3f) s per host, $(f "$seed_total" %.0f) s for $n | $(f "$wall" %.2f) s | $(f "$speedup" %.0f)× ($(met "$speedup >= 100")) |"$'\n'
    goals+="- $n endpoints at the default $default_check: $(f "$wall" %.2f) s against the bound $(f "$b" %.2f) s, $(f "$ratio" %.2f)× ($(met "$ratio <= 1.3") the goal of 1.3×); peak RSS $rss KiB"$'\n'
done
first=${sizes_arr[0]}
last=${sizes_arr[${#sizes_arr[@]}-1]}
rss_first=$(awk -v n="$first" -v c="$default_check" '$1 == n && $2 == c { print $6 }' "$work/rows")
rss_last=$(awk -v n="$last" -v c="$default_check" '$1 == n && $2 == c { print $6 }' "$work/rows")
rss_line=""
if [ "$first" != "$last" ] && [ -n "$rss_first" ] && [ -n "$rss_last" ]; then
    # KiB per endpoint added between the sizes: linear growth keeps it; less than linear (the
    # goal) brings it near zero (under 1 KiB an endpoint).
    slope=$(calc "($rss_last - $rss_first) / ($last - $first)")
    rss_line="Peak RSS at $last endpoints: $rss_last KiB ($(met "$rss_last <= 40960") ≤ 40 MB); from $first to $last endpoints it grew by $(f "$slope" %.1f) KiB per endpoint ($(met "$slope < 1") less than linearly)."
fi
stats=$(sed 's/^/    /' "$work/stats" 2>/dev/null || true)

section=$(cat <<EOF
## Field

Measured by \`benches/field.sh "$sizes" $subset\` (CONCS="$concs", RTT_MS=$rtt_ms, LOSS=$loss, SEED=$seed) on
$(date -u +%Y-%m-%d), machine: $(nproc) cores, ${cpu_model:-unknown CPU}, $(openssl version | cut -d' ' -f1-2),
Postfix $(postconf -d -h mail_version 2>/dev/null). Load average (1, 5, 15 min) before: $load_before; after:
$load_after (other sessions compile and test on the same cores).

Lab: BIND (signed zone) + validating Unbound + one receiving Postfix (process limit 1000, EC P-256
certificate, TLS 1.3) on loopback; N hosts \`bN.example.test\`, each with a \`3 1 1\` TLSA record and
an A record naming a relay in front of that Postfix; dane-roll's resolver is a relay in front of
Unbound. Both relays (the lab's user-space relay, docs/LAB.md "Field conditions") add a $rtt_ms ms
round trip and $(f "$(calc "$loss * 100")" %g) % loss each way (TCP: a lost segment arrives a retransmission timeout late).
\`dane-roll check --host … --resolver RELAY --concurrency C\` (release build, default key
algorithms: RSA, ECDSA and EdDSA, three connections per address side by side; the server has only
an ECDSA key, so two of them end in a handshake failure).

The bound for concurrency C: ($lead_rtts + $probe_rtts × N ÷ C) × RTT. The round trips, each named: before the
first probe, the resolver's validation probe (1) and the first endpoint's DNS (1: TLSA, A, AAAA and
\`_tcp\` at once; every other endpoint's DNS runs under its own 64 permits, overlapped with the
probes); then per endpoint, holding one of the C probe permits: TCP connect (1), greeting (1), EHLO
(1), STARTTLS (1), TLS 1.3 handshake (1), QUIT (1) = $probe_rtts. Loss is not in the bound: a lost
datagram costs a resend (hickory's UDP client sends again after 333 ms), a lost segment a
retransmission timeout (200 ms + the round trip; a lost SYN 1 s).

| endpoints | C | wall | bound | wall ÷ bound | peak RSS | all pass | status | CPU (user+sys) |
| --- | --- | --- | --- | --- | --- | --- | --- | --- |
$table

The seeds' loop (seed 000's \`danesmtp\`: \`dig +short\` the TLSA records, then \`openssl s_client
-starttls smtp -dane_tlsa_rrdata …\` with stdin \`/dev/null\`), one host after another, through the
same relays, against \`dane-roll check\` at the default concurrency ($default_check):

| endpoints | seeds' loop (extrapolated) | dane-roll | dane-roll ÷ seeds |
| --- | --- | --- | --- |
$seed_lines
Goals:
$goals$rss_line

Defaults chosen from these figures: \`check --concurrency\` $default_check, \`serve --concurrency\` $default_serve
(the reasons are in src/monitor/run.rs beside the constants).

The relay's own overhead (\`lab-relay measure\`, 0 ms configured, $pings echoes, median / 99th percentile):
UDP round trip direct $(rv udp_rtt_direct_us p50) / $(rv udp_rtt_direct_us p99) µs, relayed $(rv udp_rtt_relay_us p50) / $(rv udp_rtt_relay_us p99) µs;
TCP round trip direct $(rv tcp_rtt_direct_us p50) / $(rv tcp_rtt_direct_us p99) µs, relayed $(rv tcp_rtt_relay_us p50) / $(rv tcp_rtt_relay_us p99) µs;
TCP echo throughput direct $(rv tcp_echo_gbit direct) Gbit/s, relayed $(rv tcp_echo_gbit relay) Gbit/s. Relay counters per run:

$stats
EOF
)
echo "$section"

write_section "Field" "$section"
