#!/usr/bin/env bash
# Benchmark adoption (issue 16): the time from installing the Debian package to the first
# completed rollover on the lab. Builds the package (packaging/build-deb; the dev profile unless
# DANE_ROLL_DEB_PROFILE says otherwise), times its installation, then runs tests/adoption.rs
# against the installed /usr/bin/dane-roll (DANE_ROLL_BIN) and reads its ADOPTION line: `init`,
# `config check`, `init --apply` (Postfix and Dovecot switched, certbot's hook registered, the
# live key adopted), a certbot renewal under a bare environment, and the timer's `run --wait`
# to the first completed rollover (service TTL 2 s). The lab's own start (DNS, Postfix, Dovecot,
# pebble, the first certbot certificate) is the machine as the operator had it, not counted.
# The package is purged again, unless it was installed before (then that one is measured).
# Prints the figures; with --write, also writes the `## Adoption` section of docs/BENCHMARKS.md.
#
# Needs: root (the lab, dpkg), cargo, cargo-deb, bc, the lab's servers, certbot, pebble, Dovecot.
# Usage: benches/adoption.sh [--write]
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/benches/lib.sh"
cd "$root"
write=0
[ "${1:-}" = --write ] && write=1
[ "$(id -u)" = 0 ] || { echo "benches/adoption.sh: the lab and dpkg need root" >&2; exit 2; }
for tool in cargo bc; do
    command -v "$tool" >/dev/null || { echo "benches/adoption.sh: $tool is missing" >&2; exit 2; }
done

work=$(mktemp -d)
cleanup() { rm -rf "$work"; }
trap cleanup EXIT

# Built before the clock starts: the test binary and the package.
cargo test --locked --test adoption --no-run >&2
deb=$(DANE_ROLL_DEB_PROFILE=${DANE_ROLL_DEB_PROFILE:-dev} packaging/build-deb | tail -n 1)
case "$deb" in /*) ;; *) deb=./$deb ;; esac

if dpkg-query -W -f='${Status}' dane-roll 2>/dev/null | grep -q 'install ok installed'; then
    echo "dane-roll is installed as a package here already: measuring that one" >&2
    install_s=0
else
    trap 'dpkg --purge dane-roll >/dev/null 2>&1 || true; cleanup' EXIT
    t0=$(date +%s.%N)
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$deb" >/dev/null
    install_s=$(echo "$(date +%s.%N) - $t0" | bc -l)
fi

DANE_ROLL_BIN=/usr/bin/dane-roll cargo test --locked --test adoption -- --nocapture \
    >"$work/adoption.log" 2>&1 || { cat "$work/adoption.log" >&2; exit 2; }
line=$(grep '^ADOPTION' "$work/adoption.log") ||
    { cat "$work/adoption.log" >&2; echo "benches/adoption.sh: no ADOPTION line (a tool missing?)" >&2; exit 2; }
echo "$line" >&2
field() { echo "$line" | sed -E "s/.*$1 ([0-9.]+) s.*/\\1/"; }
lab=$(field "lab")
init=$(field "init")
check=$(field "config check")
apply=$(field "init --apply")
renew=$(field "certbot renew")
roll=$(field "first rollover \\(TTL 2 s\\)")
total=$(echo "$install_s + $init + $check + $apply + $renew + $roll" | bc -l)
f() { printf '%.2f' "$1"; }

section=$(cat <<EOF2
## Adoption

Measured $(date -u +%Y-%m-%d) on $(nproc) cores by \`benches/adoption.sh\` (the package built with
the ${DANE_ROLL_DEB_PROFILE:-dev} profile, installed with apt-get; tests/adoption.rs against
\`/usr/bin/dane-roll\`). The lab: BIND (signed) + Knot + validating Unbound, Postfix and Dovecot
(IMAPS) on a certbot lineage from pebble with its \`3 1 1\` published by hand, service \`ttl = 2\`.

| step | time |
| --- | --- |
| \`apt-get install ./dane-roll_*.deb\` | $(f "$install_s") s |
| \`dane-roll init\` (discovery, the configuration) | $(f "$init") s |
| \`dane-roll config check\` | $(f "$check") s |
| \`dane-roll init --apply\` (Postfix + Dovecot switched and probed, hook, adoption) | $(f "$apply") s |
| \`certbot renew\` under \`env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin\` (deploy hook included) | $(f "$renew") s |
| \`dane-roll run --wait\`: the first rollover, to done (2×TTL = 4 s of it is the wait) | $(f "$roll") s |
| **package install → first completed rollover** | **$(f "$total") s** |

Besides the operator's own editing of the configuration (the provider's server, the TTL), that is
the whole adoption; with a production TTL of 3600 s the rollover's 2-hour wait is all of it.
(The lab's start, not counted: $(f "$lab") s.)
EOF2
)
echo "$section"

if [ "$write" = 1 ]; then
    write_section "Adoption" "$section"
fi
