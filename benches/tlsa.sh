#!/usr/bin/env bash
# Benchmark `dane-roll tlsa` against the OpenSSL pipeline, whole-process times with hyperfine, and
# write the figures into the `## dane-roll tlsa` section of docs/BENCHMARKS.md.
#
# Needs: cargo, openssl, hyperfine, jq. Usage: benches/tlsa.sh (from anywhere in the tree).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/benches/lib.sh"
cd "$root"
for tool in cargo openssl hyperfine jq; do
    command -v "$tool" >/dev/null || { echo "benches/tlsa.sh: $tool is missing" >&2; exit 2; }
done

cargo build --release --bin dane-roll >&2
bin=$(cargo build --release --bin dane-roll --message-format=json 2>/dev/null |
    jq -r 'select(.reason == "compiler-artifact" and .executable != null) | .executable' | tail -n 1)
[ -x "$bin" ] || { echo "benches/tlsa.sh: no release binary" >&2; exit 2; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

# A root -> intermediate -> leaf chain, EC P-256.
for name in root inter leaf; do
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$name.key" 2>/dev/null
done
printf 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n' >ca.ext
printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nsubjectAltName=DNS:mail.example.test\n' >leaf.ext
openssl req -x509 -new -key root.key -subj "/CN=Bench Root" -days 30 -out root.pem
openssl req -new -key inter.key -subj "/CN=Bench Intermediate" |
    openssl x509 -req -CA root.pem -CAkey root.key -CAcreateserial -days 30 -extfile ca.ext -out inter.pem 2>/dev/null
openssl req -new -key leaf.key -subj "/CN=mail.example.test" |
    openssl x509 -req -CA inter.pem -CAkey inter.key -CAcreateserial -days 30 -extfile leaf.ext -out leaf.pem 2>/dev/null
cat leaf.pem inter.pem root.pem >chain.pem

# The records must agree before their times mean anything.
ours=$("$bin" tlsa chain.pem)
theirs=$(openssl x509 -in chain.pem -pubkey -noout | openssl pkey -pubin -outform DER | openssl dgst -sha256 | sed 's/.*= //')
[ "$ours" = "3 1 1 $theirs" ] || { echo "benches/tlsa.sh: records differ: $ours vs $theirs" >&2; exit 2; }

pipeline="openssl x509 -in chain.pem -pubkey -noout | openssl pkey -pubin -outform DER | openssl dgst -sha256"
hyperfine -N --warmup 3 --runs 30 --export-json hyperfine.json \
    -n "dane-roll tlsa --usage 2 chain.pem" "$bin tlsa --usage 2 chain.pem" \
    -n "dane-roll tlsa chain.pem" "$bin tlsa chain.pem" \
    -n "OpenSSL pipeline (leaf, 3 1 1)" "sh -c '$pipeline'" >&2

rows=$(jq -r '.results[] | "| `\(.command)` | \(.median * 1000 | . * 100 | round / 100) | \(.mean * 1000 | . * 100 | round / 100) ± \(.stddev * 1000 | . * 100 | round / 100) |"' hyperfine.json)
echo "median whole-process times (ms):"
jq -r '.results[] | "  \(.command): \(.median * 1000 | . * 100 | round / 100) ms"' hyperfine.json

cpu=$(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')
section=$(cat <<EOF
## dane-roll tlsa

Measured by \`benches/tlsa.sh\` on $(date -u +%Y-%m-%d), machine: $(nproc) cores, ${cpu:-unknown CPU},
$(openssl version | cut -d' ' -f1-2). Whole-process times (start, read \`chain.pem\`, print, exit) of
a 3-certificate EC P-256 chain (root → intermediate → leaf), hyperfine \`-N --warmup 3 --runs 30\`.
The OpenSSL pipeline is three processes under \`sh -c\` and computes only the leaf's \`3 1 1\`.

| command | median (ms) | mean ± σ (ms) |
| --- | --- | --- |
$rows
EOF
)

write_section "dane-roll tlsa" "$section"
