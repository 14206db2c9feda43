#!/usr/bin/env bash
# Benchmark the live DANE probe: verified STARTTLS handshakes per second of `dane-roll check`
# against a loop of `openssl s_client` (docs/LAB.md's DANE command) on the same Postfix endpoint, in
# one run, interleaved (the VM's speed drifts), and write the figures into the `## Probe` section
# of docs/BENCHMARKS.md.
#
# The Postfix is started here from a private directory on a free 127.0.0.1 port (docs/LAB.md's
# settings) and stopped by its own `postfix -c DIR stop` on exit; nothing else is touched.
#
# Needs: root, cargo, openssl, postfix, jq. Usage: benches/probe.sh [N] (default 200 handshakes
# per measurement; ROUNDS=3 rounds).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/benches/lib.sh"
cd "$root"
n=${1:-200}
rounds=${ROUNDS:-3}
host=mail.example.test
for tool in cargo openssl postfix jq script; do
    command -v "$tool" >/dev/null || { echo "benches/probe.sh: $tool is missing" >&2; exit 2; }
done
[ "$(id -u)" = 0 ] || { echo "benches/probe.sh: Postfix needs root" >&2; exit 2; }

cargo build --release --bin dane-roll >&2
bin=$(cargo build --release --bin dane-roll --message-format=json 2>/dev/null |
    jq -r 'select(.reason == "compiler-artifact" and .executable != null) | .executable' | tail -n 1)
[ -x "$bin" ] || { echo "benches/probe.sh: no release binary" >&2; exit 2; }

work=$(mktemp -d)
chmod 755 "$work" # Postfix cannot open master.lock below a 0700 directory (docs/LAB.md)
postfix_up=
cleanup() {
    if [ -n "$postfix_up" ]; then
        script -qec "postfix -c $work/etc stop" /dev/null >/dev/null 2>&1 || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

# A free port on 127.0.0.1.
port=
for candidate in $(shuf -i 20000-40000 -n 50); do
    if ! ss -ltn "sport = :$candidate" | grep -q LISTEN; then port=$candidate; break; fi
done
[ -n "$port" ] || { echo "benches/probe.sh: no free port" >&2; exit 2; }

# The server's key and certificate: EC P-256, self-signed; the record 3 1 1.
mkdir -p "$work/etc" "$work/spool" "$work/data" "$work/tls"
chown postfix "$work/data"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$work/tls/key.pem" \
    -out "$work/tls/cert.pem" -subj "/CN=$host" -addext "subjectAltName=DNS:$host" -days 30 2>/dev/null
cat "$work/tls/key.pem" "$work/tls/cert.pem" >"$work/tls/chain.pem"
digest=$(openssl x509 -in "$work/tls/cert.pem" -pubkey -noout | openssl pkey -pubin -outform DER |
    openssl dgst -sha256 | sed 's/.*= //')
rrdata="3 1 1 $digest"

cat >"$work/etc/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $work/spool
data_directory = $work/data
maillog_file_prefixes = $work, /dev/stdout
maillog_file = $work/maillog
myhostname = $host
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
local_recipient_maps =
local_transport = discard:
default_transport = discard:
relay_transport = discard:
alias_maps =
alias_database =
smtpd_tls_security_level = may
smtpd_tls_chain_files = $work/tls/chain.pem
EOF
awk -v port="$port" '/^smtp[ \t]+inet/ { print "127.0.0.1:" port " inet n - n - - smtpd"; next }
    /^[^ \t#]/ && NF >= 8 { $5 = "n" } { print }' /etc/postfix/master.cf >"$work/etc/master.cf"
script -qec "postfix -c $work/etc start" /dev/null >&2
postfix_up=1
for _ in $(seq 50); do
    ss -ltn "sport = :$port" | grep -q LISTEN && break
    sleep 0.1
done
ss -ltn "sport = :$port" | grep -q LISTEN || { echo "benches/probe.sh: Postfix did not start" >&2; exit 2; }

# Postfix's CPU so far, in clock ticks: the master with its reaped children, plus the live
# children (smtpd, anvil, tlsmgr…). Found by the master's PID, nothing else.
master_pid=$(tr -d ' ' <"$work/spool/pid/master.pid")
postfix_ticks() {
    local total f s
    read -ra f <"/proc/$master_pid/stat"
    total=$((f[13] + f[14] + f[15] + f[16]))
    for s in /proc/[0-9]*/stat; do
        read -ra f <"$s" 2>/dev/null || continue
        [ "${f[3]}" = "$master_pid" ] && total=$((total + f[13] + f[14]))
    done
    echo "$total"
}
tick=$(getconf CLK_TCK)

s_client_once() {
    openssl s_client -starttls smtp -connect "127.0.0.1:$port" -servername "$host" \
        -dane_tlsa_domain "$host" -dane_tlsa_rrdata "$rrdata" -dane_ee_no_namechecks \
        -verify_return_error </dev/null >/dev/null 2>&1
}
export -f s_client_once
export port host rrdata

# Both must verify before their speed means anything.
"$bin" check "$host:$port" --protocol smtp --address 127.0.0.1 --tlsa "$rrdata" -q >&2 ||
    { echo "benches/probe.sh: dane-roll does not verify" >&2; exit 2; }
s_client_once || { echo "benches/probe.sh: s_client does not verify" >&2; exit 2; }

addresses=()
for _ in $(seq "$n"); do addresses+=(--address 127.0.0.1); done

# One measurement: prints "wall user sys postfix" in seconds (postfix: the server's CPU during
# the run); fails if not every handshake verified.
measure() {
    local what=$1 TIMEFORMAT='%R %U %S' before after
    before=$(postfix_ticks)
    case $what in
    dane-roll-c1 | dane-roll-c8 | dane-roll-all)
        local extra=(--key-algorithm ecdsa --concurrency 1)
        [ "$what" = dane-roll-c8 ] && extra=(--key-algorithm ecdsa --concurrency 8)
        [ "$what" = dane-roll-all ] && extra=(--concurrency 8)
        { time "$bin" check "$host:$port" --protocol smtp "${addresses[@]}" --tlsa "$rrdata" \
            "${extra[@]}" --format json >"$work/out.json"; } 2>"$work/time"
        [ "$(jq '[.addresses[] | select(.verdict == "pass")] | length' "$work/out.json")" = "$n" ] ||
            { echo "benches/probe.sh: $what: not every probe passed" >&2; exit 2; }
        ;;
    s_client-seq)
        { time for _ in $(seq "$n"); do s_client_once || exit 2; done; } 2>"$work/time"
        ;;
    s_client-p8)
        { time seq "$n" | xargs -P 8 -I{} bash -c 's_client_once' || exit 2; } 2>"$work/time"
        ;;
    esac
    sleep 0.2 # let the last smtpd sessions end
    after=$(postfix_ticks)
    echo "$(cat "$work/time") $(awk -v t="$((after - before))" -v hz="$tick" 'BEGIN { print t / hz }')"
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
kinds=(dane-roll-c1 s_client-seq dane-roll-c8 s_client-p8 dane-roll-all)
declare -A results
for round in $(seq "$rounds"); do
    for kind in "${kinds[@]}"; do
        r=$(measure "$kind")
        results[$kind]+="$r;"
        echo "round $round $kind: $r (wall user sys postfix, s)" >&2
    done
done

load_after=$(cut -d' ' -f1-3 /proc/loadavg)
# Median of the rounds (by rate): handshakes/s, client CPU (user+sys) and Postfix CPU per
# handshake in ms.
summary() {
    local kind=$1
    echo "${results[$kind]}" | tr ';' '\n' | grep . |
        awk -v n="$n" '{ print n / $1, ($2 + $3) * 1000 / n, $4 * 1000 / n }' |
        sort -n | awk '{ a[NR] = $0 } END { print a[int((NR + 1) / 2)] }'
}
declare -A rate cpu server
for kind in "${kinds[@]}"; do
    read -r r c p <<<"$(summary "$kind")"
    rate[$kind]=$r
    cpu[$kind]=$c
    server[$kind]=$p
done
# Postfix's handshake ceiling on these cores: cores / Postfix CPU per session (from the dane-roll
# runs at concurrency 8), as if the client cost nothing.
ceiling=$(awk -v c="$(nproc)" -v p="${server[dane-roll-c8]}" 'BEGIN { printf "%.0f", c * 1000 / p }')
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
fmt() { awk -v x="$1" 'BEGIN { printf "%.0f", x }'; }
fmt2() { awk -v x="$1" 'BEGIN { printf "%.2f", x }'; }

cores=$(nproc)
cpu_model=$(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //' || echo unknown)
section=$(cat <<EOF
## Probe

Measured by \`benches/probe.sh $n\` on $(date -u +%Y-%m-%d), machine: $cores cores, $cpu_model,
$(openssl version | cut -d' ' -f1-2), Postfix $(postconf -d -h mail_version 2>/dev/null) on 127.0.0.1 (docs/LAB.md's settings, EC P-256
certificate, TLS 1.3). Each measurement is $n verified STARTTLS handshakes against the record
\`3 1 1\`; median of $rounds interleaved rounds. \`dane-roll check\` gets the address $n times
(\`--address\` repeated) in one process; \`openssl s_client\` is one process per handshake
(docs/LAB.md's DANE command), so its figure includes process start-up. Client CPU is user+sys of the
client processes per handshake (Postfix's own CPU is not counted). Load average (1, 5, 15 min)
before the rounds: $load_before; after: $load_after (other work shares the cores).

| client | handshakes/s | client CPU per handshake (ms) | Postfix CPU per handshake (ms) |
| --- | --- | --- | --- |
| \`dane-roll check --key-algorithm ecdsa --concurrency 1\` | $(fmt "${rate[dane-roll-c1]}") | $(fmt2 "${cpu[dane-roll-c1]}") | $(fmt2 "${server[dane-roll-c1]}") |
| \`openssl s_client\` loop, sequential | $(fmt "${rate[s_client-seq]}") | $(fmt2 "${cpu[s_client-seq]}") | $(fmt2 "${server[s_client-seq]}") |
| \`dane-roll check --key-algorithm ecdsa --concurrency 8\` | $(fmt "${rate[dane-roll-c8]}") | $(fmt2 "${cpu[dane-roll-c8]}") | $(fmt2 "${server[dane-roll-c8]}") |
| \`openssl s_client\`, 8 in parallel (\`xargs -P 8\`) | $(fmt "${rate[s_client-p8]}") | $(fmt2 "${cpu[s_client-p8]}") | $(fmt2 "${server[s_client-p8]}") |
| \`dane-roll check --concurrency 8\` (RSA, ECDSA, EdDSA attempts) | $(fmt "${rate[dane-roll-all]}") addresses/s | $(fmt2 "${cpu[dane-roll-all]}") per address | $(fmt2 "${server[dane-roll-all]}") per address |

Ratios: dane-roll / s_client sequential $(ratio "${rate[dane-roll-c1]}" "${rate[s_client-seq]}"), with 8 at once
$(ratio "${rate[dane-roll-c8]}" "${rate[s_client-p8]}"). Most of an \`openssl s_client\` run is process start-up
(OpenSSL 3 loads its configuration and providers each time). Inside one process an OpenSSL
client handshake costs ~0.9–1.1 ms (docs/LAB.md); dane-roll's figure adds reading the chain, the DANE
result and the QUIT exchange, and most of it is OpenSSL 3.0's own handshake and key decoding
(perf: the TLS handshake ~63 %, OpenSSL's key decoder ~17 % of the client's time).

Postfix's handshake ceiling on these $(nproc) cores, from its CPU per session with a client that
cost nothing: ~$ceiling handshakes/s; dane-roll at concurrency 8 reaches
$(ratio "${rate[dane-roll-c8]}" "$ceiling") of it while sharing the cores with Postfix (client and server both
on the same $(nproc) cores, so at saturation the ratio is at most Postfix CPU / (Postfix CPU + client CPU)).
With all three key algorithms an address costs three connections (two end in a handshake failure
alert, which Postfix logs as a TLS library problem); \`--key-algorithm\` limits the probe to the
families a server is known to hold.
EOF
)
echo "$section"

write_section "Probe" "$section"
