#!/usr/bin/env bash
# Benchmark dane-roll against hostile peers (issue 14), on loopback only:
#
# 1. memory under an endless reply: `dane-roll check --notify` whose webhook and Telegram
#    channels point at a local server that answers every request with a 500 status and then
#    zeros forever; the peak RSS of dane-roll (`/usr/bin/time -v`). The baseline binary, if given,
#    runs under `ulimit -v` (BASE_VMEM_KB) and a 25 s timeout so that its unbounded read ends in
#    an allocation failure instead of taking the machine's memory.
# 2. `/metrics` latency of `dane-roll serve` (REQUESTS sequential scrapes, p50/p99/max): idle, and
#    during a slowloris of SLOW connections that send a partial request head, a byte each second,
#    and reconnect when closed. serve runs with `ulimit -n 1024` (systemd's default soft limit of a
#    service); the script raises its own soft limit to fit the attack.
#
# The binaries are the debug build (`cargo build --bin dane-roll`, the one the tests use); set BIN
# to measure another (a release build: BIN=target/release/dane-roll). BASE=path of a binary built
# from before the fix (e.g. commit 22f4daa) adds the baseline rows; without it they are left out.
# Prints the figures and writes the `## Security: bounded peers` section of docs/BENCHMARKS.md.
#
# Needs: cargo, python3, /usr/bin/time.
# Usage: benches/security.sh        Environment: BIN, BASE, SLOW (5000), REQUESTS (200),
#        BASE_VMEM_KB (2097152).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/benches/lib.sh"
cd "$root"
slow=${SLOW:-5000}
requests=${REQUESTS:-200}
base_vmem=${BASE_VMEM_KB:-2097152}
for tool in cargo python3 /usr/bin/time; do
    command -v "$tool" >/dev/null || { echo "benches/security.sh: $tool is missing" >&2; exit 2; }
done
if [ -z "${BIN:-}" ]; then
    cargo build --bin dane-roll >&2
    bin=${CARGO_TARGET_DIR:-$root/target}/debug/dane-roll
else
    bin=$BIN
fi
base=${BASE:-}
# The attacker's descriptors: the slow connections and some room.
ulimit -n $((slow + 1024)) 2>/dev/null || ulimit -n "$(ulimit -Hn)"

work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# ---- 1. an endless reply ------------------------------------------------------------------------
cat >"$work/endless.py" <<'EOF'
import socket, sys, threading, time
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", 0)); srv.listen(64)
print(srv.getsockname()[1], flush=True)
chunk = b"0" * 65536
def answer(c):
    try:
        c.settimeout(2); c.recv(65536)
        c.sendall(b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n")
        end = time.time() + 30
        while time.time() < end:
            c.sendall(chunk)
    except OSError:
        pass
    finally:
        c.close()
while True:
    c, _ = srv.accept()
    threading.Thread(target=answer, args=(c,), daemon=True).start()
EOF
python3 "$work/endless.py" >"$work/endless.port" &
pids+=($!)
for _ in $(seq 100); do [ -s "$work/endless.port" ] && break; sleep 0.05; done
peer=$(cat "$work/endless.port")
dead=$(free_port)
printf '123456789:AAbench-token\n' >"$work/bot-token"
chmod 600 "$work/bot-token"
cat >"$work/alerts.toml" <<EOF
version = 1
state-dir = "$work/state"

[resolver]
address = "127.0.0.1:$dead"
timeout = "1s"

[[service]]
name = "mx"
endpoints = ["mx.example.test:25/smtp"]
chain-file = "$work/chain.pem"
provider = "manual"

[provider.manual]
kind = "manual"

[alerts]
timeout = "20s"

[alerts.channel.hook]
kind = "webhook"
url = "http://127.0.0.1:$peer/hook"

[alerts.channel.bot]
kind = "telegram"
token-file = "$work/bot-token"
chat-id = "42"
api-url = "http://127.0.0.1:$peer"
EOF

# Peak RSS (KiB), seconds and the exit status of `check --notify` with binary $1, limits $2.
endless_run() {
    local b=$1 limits=$2 out=$work/endless.out
    rm -rf "$work/state"
    local started ended
    started=$(date +%s.%N)
    set +e
    ( eval "$limits"; exec /usr/bin/time -v timeout 25 "$b" -c "$work/alerts.toml" check --notify ) \
        >"$out" 2>&1
    local code=$?
    set -e
    ended=$(date +%s.%N)
    local rss
    rss=$(awk -F: '/Maximum resident set size/ { gsub(/ /, "", $2); print $2 }' "$out")
    printf '%s %.1f %s\n' "${rss:-?}" "$(echo "$ended - $started" | bc -l)" "$code"
}

read -r new_rss new_secs new_code < <(endless_run "$bin" ":")
new_errors=$(grep -c "larger than 4 MiB\|HTTP 500" "$work/endless.out" || true)
echo "endless reply, this build: peak RSS ${new_rss} KiB, ${new_secs} s, exit $new_code" >&2
grep -m 2 "larger than\|HTTP 500" "$work/endless.out" >&2 || true
if [ -n "$base" ]; then
    read -r base_rss base_secs base_code < <(endless_run "$base" "ulimit -v $base_vmem")
    base_how=$(grep -m 1 -o "memory allocation of [0-9]* bytes failed\|Killed\|Aborted" \
        "$work/endless.out" || true)
    echo "endless reply, baseline: peak RSS ${base_rss} KiB, ${base_secs} s, exit $base_code ${base_how}" >&2
fi

# ---- 2. /metrics under a slowloris --------------------------------------------------------------
cat >"$work/scrape.py" <<'EOF'
import socket, sys, threading, time
port, slow, requests = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
addr = ("127.0.0.1", port)
HEAD = b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n"
stop = threading.Event()
opened = [0]
def open_slow():
    s = socket.socket(); s.settimeout(1)
    s.connect(addr); s.sendall(HEAD); s.setblocking(False)
    opened[0] += 1
    return s
def attack(conns):
    while not stop.is_set():
        t = time.time()
        for i, s in enumerate(conns):
            if stop.is_set():
                return
            try:
                if s is None:
                    raise OSError
                s.send(b"X")
            except OSError:
                # Closed by the server (or never opened): reconnect, as a slowloris does.
                try:
                    if s is not None:
                        s.close()
                    conns[i] = open_slow()
                except OSError:
                    conns[i] = None
        stop.wait(max(0.0, 1.0 - (time.time() - t)))
def scrape():
    t = time.perf_counter()
    try:
        s = socket.create_connection(addr, timeout=5)
        s.settimeout(5)
        s.sendall(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        data = b""
        while True:
            b = s.recv(65536)
            if not b:
                break
            data += b
        s.close()
        ok = data.startswith(b"HTTP/1.1 200") or data.startswith(b"HTTP/1.0 200")
    except OSError:
        ok = False
    return time.perf_counter() - t, ok
conns = []
if slow:
    opening = time.time() + 20  # a server that stopped accepting: the rest open in the attack loop
    for _ in range(slow):
        try:
            if time.time() > opening:
                raise OSError
            conns.append(open_slow())
        except OSError:
            conns.append(None)
    threading.Thread(target=attack, args=(conns,), daemon=True).start()
    time.sleep(2)
times, failed = [], 0
budget = time.time() + 60  # a server that does not answer: stop after a minute of 5 s failures
for _ in range(requests):
    if time.time() > budget:
        break
    took, ok = scrape()
    times.append(took)
    failed += not ok
    time.sleep(0.02)
stop.set()
times.sort()
pick = lambda q: times[min(len(times) - 1, int(q * len(times)))] * 1000
print("%.1f %.1f %.1f %d %d %d" % (pick(0.5), pick(0.99), times[-1] * 1000, failed, opened[0], len(times)))
EOF

# p50 p99 max (ms), failed scrapes, slow connections opened: /metrics of binary $1, $2 slow ones.
latency() {
    local b=$1 n=$2 port
    port=$(free_port)
    ( ulimit -n 1024; exec "$b" -c "$work/alerts.toml" serve --listen "127.0.0.1:$port" \
        --interval 600 --timeout 5 ) >"$work/serve.log" 2>&1 &
    local sp=$!
    pids+=("$sp")
    for _ in $(seq 200); do
        python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 1)" 2>/dev/null && break
        sleep 0.05
    done
    timeout 300 python3 "$work/scrape.py" "$port" "$n" "$requests" || echo "? ? ? ? 0 0"
    kill "$sp" 2>/dev/null || true
    wait "$sp" 2>/dev/null || true
}

read -r idle_p50 idle_p99 idle_max idle_fail _ idle_n < <(latency "$bin" 0)
echo "/metrics idle: p50 ${idle_p50} ms, p99 ${idle_p99} ms, max ${idle_max} ms, ${idle_fail} failed" >&2
read -r lor_p50 lor_p99 lor_max lor_fail lor_opened lor_n < <(latency "$bin" "$slow")
echo "/metrics during a $slow-connection slowloris: p50 ${lor_p50} ms, p99 ${lor_p99} ms, max ${lor_max} ms, ${lor_fail}/$lor_n failed ($lor_opened slow connections opened)" >&2
if [ -n "$base" ]; then
    read -r bidle_p50 bidle_p99 bidle_max bidle_fail _ bidle_n < <(latency "$base" 0)
    read -r blor_p50 blor_p99 blor_max blor_fail blor_opened blor_n < <(latency "$base" "$slow")
    echo "baseline /metrics during the slowloris: p50 ${blor_p50} ms, p99 ${blor_p99} ms, ${blor_fail}/$blor_n failed ($blor_opened opened)" >&2
fi

kernel=$(uname -r)
cores=$(nproc)
load=$(cut -d' ' -f1-3 /proc/loadavg)
row_base_rss=""
row_base_lat=""
if [ -n "$base" ]; then
    row_base_rss="| before the fix (\`ulimit -v $((base_vmem / 1024)) MiB\`, 25 s timeout) | $((base_rss / 1024)) MiB | ${base_secs} s, exit ${base_code}${base_how:+ ($base_how)} |"
    row_base_lat="| before the fix | ${bidle_p50} / ${bidle_p99} ms, ${bidle_fail} of $bidle_n failed | ${blor_p50} / ${blor_p99} ms (max ${blor_max}), ${blor_fail} of $blor_n failed, $blor_opened slow connections opened |"
fi
section=$(cat <<EOF
## Security: bounded peers

\`benches/security.sh\` ($(basename "$(dirname "$(dirname "$bin")")")/$(basename "$(dirname "$bin")") binary), loopback only,
$cores cores, kernel $kernel, load $load at the end.

An endless reply: \`dane-roll check --notify\` with a webhook and a Telegram channel whose
server answers 500 and then sends zeros forever (\`[alerts] timeout = "20s"\`).

| build | peak RSS | time, exit |
| --- | --- | --- |
| this build (replies read up to 4 MiB) | $((new_rss / 1024)) MiB | ${new_secs} s, exit ${new_code} |
$row_base_rss

\`/metrics\` of \`dane-roll serve\` (run with \`ulimit -n 1024\`, defaults: --max-connections 256,
--header-timeout 10 s): $requests sequential scrapes, p50 / p99, idle and during a slowloris of
$slow connections that each send a partial request head, a byte a second, and reconnect when
closed (a scrape fails after 5 s; scraping stops after a minute, so a server that does not
answer gets fewer than $requests scrapes).

| build | idle | during the slowloris |
| --- | --- | --- |
| this build | ${idle_p50} / ${idle_p99} ms, ${idle_fail} of $idle_n failed | ${lor_p50} / ${lor_p99} ms (max ${lor_max}), ${lor_fail} of $lor_n failed, $lor_opened slow connections opened |
$row_base_lat
EOF
)
section=$(printf '%s\n' "$section" | sed '/^$/N;/^\n$/D')
echo "$section"

write_section "Security: bounded peers" "$section"
