#!/usr/bin/env bash
# Benchmark the monitor: `dane-roll check` on N endpoints of the lab (bN.example.test in the signed
# zone, each with an A record to one Postfix and a `3 1 1` TLSA record), against the seeds' way
# (per host: `dig` the TLSA records, then `openssl s_client -starttls smtp -dane_tlsa_rrdata …`,
# in sequence, by name through the lab's resolver; a subset of SUBSET hosts, extrapolated) and
# against the ceiling (STARTTLS sessions per second the same Postfix serves to a minimal OpenSSL
# client, no DNS, no DANE, best concurrency). ROUNDS rounds of dane-roll then the ceiling,
# interleaved; the CPU of dane-roll, of the ceiling client and of Postfix per session is counted.
# Prints the figures and writes the `## Monitor` section of docs/BENCHMARKS.md.
#
# The lab is held by one test process (`bench_monitor_lab_hold` in tests/monitor.rs); dane-roll
# runs as the release binary under `/usr/bin/time -v`; the ceiling client is `bench_starttls_ceiling`.
# The lab stops when its address file is removed (also on exit or error).
#
# Needs: root, cargo, jq, dig, openssl, bc, unshare, /usr/bin/time, the lab's servers.
# Usage: benches/monitor.sh [N] [SUBSET] [CONC]   (CONC: dane-roll's --concurrency; default its own)
# Environment: ROUNDS (3), SESSIONS per ceiling measurement (1000), CONCS ("1 2 4 8 16").
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/benches/lib.sh"
cd "$root"
n=${1:-500}
subset=${2:-50}
conc=${3:-}
rounds=${ROUNDS:-3}
sessions=${SESSIONS:-1000}
ceiling_concs=${CONCS:-1 2 4 8 16}
for tool in cargo jq dig openssl bc unshare mount /usr/bin/time; do
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
echo "lab: resolver $RESOLVER, Postfix $MX (master $POSTFIX_PID), $N hosts" >&2
[ "${POSTFIX_PID:-0}" != 0 ] || { echo "benches/monitor.sh: the lab gave no Postfix PID" >&2; exit 2; }
mapfile -t hosts <"$HOSTS"

now() { date +%s.%N; }

# Postfix's CPU so far, in clock ticks: the master with its reaped children, plus the live
# children (smtpd, tlsmgr…). Found by the master's PID, nothing else.
postfix_ticks() {
    local total f s
    read -ra f <"/proc/$POSTFIX_PID/stat"
    total=$((f[13] + f[14] + f[15] + f[16]))
    for s in /proc/[0-9]*/stat; do
        read -ra f 2>/dev/null <"$s" || continue
        [ "${f[3]}" = "$POSTFIX_PID" ] && total=$((total + f[13] + f[14]))
    done
    echo "$total"
}
tick=$(getconf CLK_TCK)
cpu_of() { awk -F': ' '/User time/ { u = $2 } /System time/ { s = $2 } END { print u + s }' "$1"; }
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
default_conc=$("$bin" check --help | tr '\n' ' ' | sed -n 's/.*--concurrency <N>[^[]*\[default: \([0-9]*\)\].*/\1/p')
[ -n "$default_conc" ] || { echo "benches/monitor.sh: no default --concurrency in dane-roll check --help" >&2; exit 2; }
dr_concs=${conc:-${DR_CONCS:-4 8 $default_conc}}
conc_args=(--concurrency "${conc:-$default_conc}")

# Rounds, interleaved (the VM's speed drifts, and other work shares the machine): dane-roll on
# every host (one process, the key algorithm the server has) at each concurrency of DR_CONCS,
# then the ceiling client at each of CONCS; each side's best counts, as the issue measures the
# ceiling "at the best concurrency". Per run: the rate, the client's and Postfix's CPU per session.
: >"$work/rounds"
max_rss=0
for round in $(seq "$rounds"); do
    : >"$work/dr.out"
    for c in $dr_concs; do
        p0=$(postfix_ticks)
        /usr/bin/time -v "$bin" check --host "${hosts[@]}" --resolver "$RESOLVER" --key-algorithm ecdsa \
            --concurrency "$c" --timeout 600 --format json >"$work/out.json" 2>"$work/time.txt" || true
        sleep 0.3 # the last sessions end
        p1=$(postfix_ticks)
        status=$(jq -r .status "$work/out.json")
        passed=$(jq '[.endpoints[].addresses[] | select(.verdict == "pass")] | length' "$work/out.json")
        checks=$(jq '.checks | length' "$work/out.json")
        wall=$(jq -r .elapsed_seconds "$work/out.json")
        [ "$passed" = "$n" ] || { echo "benches/monitor.sh: only $passed of $n addresses pass (status $status)" >&2; exit 2; }
        rss=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$work/time.txt")
        [ "$rss" -gt "$max_rss" ] && max_rss=$rss
        proc_wall=$(awk -F': ' '/Elapsed \(wall clock\)/ { print $2 }' "$work/time.txt")
        dr_cpu=$(echo "$(cpu_of "$work/time.txt") * 1000 / $n" | bc -l)
        dr_pf=$(echo "($p1 - $p0) * 1000 / $tick / $n" | bc -l)
        rate=$(echo "$n / $wall" | bc -l)
        echo "$rate $wall $checks $rss $proc_wall $dr_cpu $dr_pf $c" >>"$work/dr.out"
        echo "round $round: dane-roll conc=$c rate=$(printf %.1f "$rate") client_ms=$(printf %.2f "$dr_cpu") postfix_ms=$(printf %.2f "$dr_pf") rss=$rss" >&2
    done
    dr_best=$(awk '$1 > best { best = $1; line = $0 } END { print line }' "$work/dr.out")
    dr_default=$(awk -v c="$default_conc" '$8 == c { print $1 }' "$work/dr.out")

    : >"$work/ceiling.out"
    for c in $ceiling_concs; do
        q0=$(postfix_ticks)
        MX=$MX SESSIONS=$sessions CONCS="$c" /usr/bin/time -v "$tbin" --ignored --exact \
            bench_starttls_ceiling --nocapture >"$work/c.out" 2>"$work/c.time"
        sleep 0.3
        q1=$(postfix_ticks)
        line=$(grep '^BENCH ceiling' "$work/c.out")
        ccpu=$(echo "$(cpu_of "$work/c.time") * 1000 / $sessions" | bc -l)
        cpf=$(echo "($q1 - $q0) * 1000 / $tick / $sessions" | bc -l)
        echo "$line client_ms=$ccpu postfix_ms=$cpf" >>"$work/ceiling.out"
    done
    sed "s/^/round $round: /" "$work/ceiling.out" >&2
    # The best concurrency of this round: "rate conc client_ms postfix_ms".
    best=$(awk '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
        if (v["rate"] > best) { best = v["rate"]; line = v["rate"] " " v["conc"] " " v["client_ms"] " " v["postfix_ms"] } }
        END { print line }' "$work/ceiling.out")
    echo "$dr_best $best ${dr_default:-0}" >>"$work/rounds"
    echo "round $round: dane-roll best $(echo "$dr_best" | awk '{ printf "%.0f/s at %s", $1, $8 }'), ceiling $best" >&2
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# The median round by dane-roll's share of its round's ceiling.
read -r rate wall checks rss proc_wall dr_cpu dr_pf dr_conc ceiling ceiling_conc c_cpu c_pf default_rate <<<"$(
    awk '{ print $1 / $9, $0 }' "$work/rounds" | sort -g | awk '{ a[NR] = $0 } END { print a[int((NR + 1) / 2)] }' |
        cut -d' ' -f2-)"
shares=$(awk '{ printf "%s%.0f %%", (NR > 1 ? ", " : ""), 100 * $1 / $9 }' "$work/rounds")
default_shares=$(awk '{ printf "%s%.0f %%", (NR > 1 ? ", " : ""), 100 * $13 / $9 }' "$work/rounds")
check_rate=$(echo "$checks / $wall" | bc -l)

# The same with all three key algorithms (what `check` does by default).
t0=$(now)
"$bin" check --host "${hosts[@]}" --resolver "$RESOLVER" "${conc_args[@]}" --timeout 600 \
    --format json >"$work/all.json" || true
all_wall=$(echo "$(now) - $t0" | bc -l)
all_passed=$(jq '[.endpoints[].addresses[] | select(.verdict == "pass")] | length' "$work/all.json")

# The seeds' way (seed 000, `danesmtp`; seed 002 gives s_client </dev/null), on the first
# SUBSET hosts, one after the other: `dig` the TLSA records through the system resolver, then
# `openssl s_client` to HOST:25 by name. The lab's names live only in the lab's resolver, so the
# loop runs in a private mount namespace whose /etc/resolv.conf names it (as the lab's sender
# Postfix does); dig and s_client's getaddrinfo ask it like they would ask the machine's. The
# seed's `(sleep 1; printf "QUIT\r\n") |` would add a second per host: the loop uses seed 002's
# `</dev/null` (s_client ends after the handshake) so the figure is the work, not the sleep.
case $RESOLVER in *:*) echo "benches/monitor.sh: resolver $RESOLVER is not on port 53" >&2; exit 2 ;; esac
printf 'nameserver %s\n' "$RESOLVER" >"$work/resolv.conf"
printf '%s\n' "${hosts[@]:0:$subset}" >"$work/seed-hosts"
write_seeds_loop "$work/seeds.sh"
t0=$(now)
seed_ok=$(unshare -m bash -c 'mount --bind "$1" /etc/resolv.conf && exec bash "$2" "$3"' _ \
    "$work/resolv.conf" "$work/seeds.sh" "$work/seed-hosts")
seed_wall=$(echo "$(now) - $t0" | bc -l)
[ "$seed_ok" = "$subset" ] || { echo "benches/monitor.sh: the seeds' loop verified $seed_ok of $subset" >&2; exit 2; }

rm -f "$work/lab"
wait "$holder" || true
holder=

f() { awk -v x="$1" "BEGIN { printf \"$2\", x }"; }
seed_each=$(echo "$seed_wall / $subset" | bc -l)
seed_total=$(echo "$seed_each * $n" | bc -l)
seed_rate=$(echo "1 / $seed_each" | bc -l)
speedup=$(echo "$rate / $seed_rate" | bc -l)
of_ceiling=$(echo "$rate / $ceiling" | bc -l)
all_rate=$(echo "$n / $all_wall" | bc -l)
# What the shared cores allow a client of CPU c (ms per session) with Postfix's p: cores × 1000 / (p + c).
bound() { echo "$(nproc) * 1000 / ($1 + $2)" | bc -l; }
met() { if [ "$(echo "$1" | bc -l)" = 1 ]; then echo "met"; else echo "NOT met"; fi; }
cpu=$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)
probe_ceiling=$(awk '/handshake ceiling on these/ { getline; if (match($0, /~[0-9]+/)) print substr($0, RSTART, RLENGTH); exit }' \
    "$root/docs/BENCHMARKS.md")
section=$(cat <<EOF
## Monitor

Measured by \`benches/monitor.sh $n $subset${conc:+ $conc}\` (ROUNDS=$rounds) on $(date -u +%Y-%m-%d), machine: $(nproc) cores,
${cpu:-unknown CPU}, $(openssl version | cut -d' ' -f1-2), Postfix $(postconf -d -h mail_version 2>/dev/null).
Load average (1, 5, 15 min) before the rounds: $load_before; after: $load_after (other sessions
compile and run tests on the same cores: wall-clock figures are noisy, CPU per session less so).
Lab: BIND (signed zone) + validating Unbound + one receiving Postfix (the lab's settings, EC P-256
certificate, TLS 1.3) on loopback; $n endpoints \`bN.example.test:25\`, each with an A record to
that Postfix and a \`3 1 1\` TLSA record, added by UPDATE in batches of 50 and checked served
signed first. \`dane-roll check --host … --key-algorithm ecdsa --concurrency C\` (release build,
C each of $(echo "$dr_concs" | tr ' ' '/'); $default_conc is the default) checks all $n in one process: the validation probe, per endpoint TLSA + A + AAAA +
\`_tcp\` through Unbound, one STARTTLS handshake per address, and every check of the list. The
server has only an ECDSA key, so the figure is measured with \`--key-algorithm ecdsa\`; the default
(RSA, ECDSA and EdDSA attempts: three connections per address, two of which end in a handshake
failure) is shown too. Rounds: $rounds, each dane-roll then the ceiling client at every concurrency;
each side's best concurrency counts, and the round shown is the median by dane-roll's share of its
own round's ceiling.

| what | figure |
| --- | --- |
| \`dane-roll check\`, $n endpoints (ECDSA), best of $(echo "$dr_concs" | tr ' ' '/') at once | $(f "$wall" "%.2f") s: $(f "$rate" "%.0f") endpoints/s at $dr_conc, $(f "$check_rate" "%.0f") checks/s ($checks checks), all $n addresses pass, status $status; at the default $default_conc: $(f "$default_rate" "%.0f") endpoints/s |
| CPU per endpoint: dane-roll (user+sys, whole process) / Postfix | $(f "$dr_cpu" "%.2f") ms / $(f "$dr_pf" "%.2f") ms |
| peak RSS (\`/usr/bin/time -v\`) | $rss KiB (process wall $proc_wall); highest of every run $max_rss KiB |
| \`dane-roll check\`, $n endpoints, all three key algorithms | $(f "$all_wall" "%.2f") s: $(f "$all_rate" "%.0f") endpoints/s ($all_passed pass) |
| seeds' loop (\`dig\` + \`openssl s_client\` per host, sequential), $subset hosts | $(f "$seed_wall" "%.2f") s: $(f "$seed_each" "%.3f") s per host, $(f "$seed_rate" "%.1f") hosts/s; extrapolated to $n: $(f "$seed_total" "%.0f") s |
| ceiling: minimal OpenSSL STARTTLS client, best of $(echo "$ceiling_concs" | tr ' ' '/') at once | $(f "$ceiling" "%.0f") sessions/s (at $ceiling_conc) |
| CPU per session: ceiling client / Postfix | $(f "$c_cpu" "%.2f") ms / $(f "$c_pf" "%.2f") ms |
| dane-roll's share of the ceiling, each round (best concurrency; default) | $shares; $default_shares |

Targets: ≥ 50× the seeds' loop: $(f "$speedup" "%.1f")× ($(met "$speedup >= 50")); ≥ 80 % of the ceiling:
$(f "$(echo "$of_ceiling * 100" | bc -l)" "%.0f") % ($(met "$of_ceiling >= 0.8")); ≤ 30 MB peak memory: $max_rss KiB ($(met "$max_rss <= 30720")).

The seeds' loop is seed 000's \`danesmtp\` (\`dig +short\` for the TLSA records, then \`openssl
s_client -starttls smtp -connect HOST:25 -dane_tlsa_domain HOST -dane_tlsa_rrdata …\`), run in a
mount namespace whose /etc/resolv.conf names the lab's Unbound, so that \`dig\` and s_client's
own name lookup ask it as they would ask the machine's resolver; stdin is \`/dev/null\` (seed 002)
instead of the seed's \`(sleep 1; printf "QUIT\\r\\n") |\`, which would add a second per host. It is
extrapolated from $subset hosts; most of each host's time is the start-up of two processes.

Client and server share the same $(nproc) cores, so no client reaches Postfix's own ceiling: at
saturation a client that spends c ms of CPU per session, with Postfix's p, gets at most
$(nproc) × 1000 / (p + c) sessions/s. With this round's figures that is $(f "$(bound "$c_pf" "$c_cpu")" "%.0f")/s for the ceiling
client and $(f "$(bound "$dr_pf" "$dr_cpu")" "%.0f")/s for dane-roll. The Probe section's ceiling (${probe_ceiling:-~850} handshakes/s) is
$(nproc) cores / Postfix's CPU alone, a client that costs nothing: no client on the same cores can
measure it. dane-roll's CPU per endpoint includes its DNS (four validated lookups), reading the
chain and the DANE verdict, the process's start-up and the report; the ceiling client does only
the session.

The lab's Postfix was checked for throttling: no rate or count limit applies (anvil exempts
\`mynetworks\`, which holds the clients' 127.0.0.1), its log shows no process-limit warning (100
smtpd processes allowed, at most 16 sessions at once here), the client's reverse lookup is answered
from /etc/hosts, and no postscreen runs. Turning off \`smtpd_peername_lookup\`, TLS logging and
session tickets moved Postfix's CPU per session from 1.76–1.89 ms to 1.53–1.79 ms (two runs each,
load 7–8: within the noise), so the lab keeps its settings. Postfix's CPU per session grows with
the sessions at once (more smtpd processes on 2 cores), which is why both sides' best concurrency
is low here; against remote servers, where each step waits a round trip, more at once pays.
EOF
)
echo "$section"

write_section "Monitor" "$section"
