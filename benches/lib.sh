# What the benchmark scripts share (sourced by them, after they set `root`): writing their
# section of docs/BENCHMARKS.md, and the seeds' loop the monitor benchmarks compare against.

# write_section HEADING TEXT: replace the `## HEADING` section of docs/BENCHMARKS.md (up to the
# next `## ` heading) with TEXT, or append it; the other sections stay as they are.
write_section() {
    local heading=$1 text=$2 doc="$root/docs/BENCHMARKS.md" tmp
    [ -f "$doc" ] || printf '# Benchmarks\n' >"$doc"
    tmp=$(mktemp)
    HEADING="## $heading" SECTION="$text" awk '
        BEGIN { section = ENVIRON["SECTION"]; heading = ENVIRON["HEADING"] }
        { line = $0; sub(/[[:space:]]+$/, "", line) }
        /^## / { if (skip) skip = 0 }
        line == heading { print section; print ""; skip = 1; done = 1; next }
        !skip { print }
        END { if (!done) { print ""; print section } }
    ' "$doc" >"$tmp"
    cat "$tmp" >"$doc"
    rm -f "$tmp"
    echo "wrote the ## $heading section of docs/BENCHMARKS.md" >&2
}

# write_seeds_loop FILE: the seeds' loop as a script at FILE, run as `bash FILE HOSTS`: for each
# host of the file HOSTS, one after another, `dig +short` its TLSA records, then `openssl
# s_client -starttls smtp -dane_tlsa_rrdata …` with stdin /dev/null (so s_client ends after the
# handshake); it prints how many verified.
write_seeds_loop() {
    cat >"$1" <<'SEEDS'
danesmtp() {
    local host=$1; shift
    local opts=(-starttls smtp -connect "$host:25" \
                -verify 9 -verify_return_error -brief \
                -dane_ee_no_namechecks -dane_tlsa_domain "$host")
    set -- $(dig +short +nosplit -t tlsa "_25._tcp.$host" | grep -Ei '^[23] [01] [012] [0-9a-f]+$')
    while [ $# -ge 4 ]
    do
        opts=("${opts[@]}" "-dane_tlsa_rrdata" "$1 $2 $3 $4")
        shift 4
    done
    openssl s_client "${opts[@]}" </dev/null
}
ok=0
while read -r h; do
    if danesmtp "$h" >/dev/null 2>&1; then ok=$((ok + 1)); fi
done <"$1"
echo "$ok"
SEEDS
}
