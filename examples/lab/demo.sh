#!/usr/bin/env bash
# The dane-roll lab demo: a signed zone (BIND + Knot), a validating resolver (Unbound), a receiving
# Postfix (the MX) and a DANE-enforcing sending Postfix, all on loopback (127.53.N.0/24). The MX's
# TLSA 3 1 1 record is computed with `dane-roll tlsa`, published, validated, and a test mail is
# delivered "Verified". Everything is stopped at the end, also on Ctrl-C.
#
# Usage (as root, on Debian/Ubuntu, from anywhere in the repository):
#   bash examples/lab/demo.sh [--hold]          # --hold: keep the lab up until Ctrl-C
# Environment: PROFILE=release to build optimised (default: debug, faster to build);
#              NO_INSTALL=1 to never run apt-get.
#
# Nothing outside the lab is changed: servers listen on 127.53.N.x only, the sending Postfix gets
# its own /etc/resolv.conf in a private mount namespace, the machine's /etc/postfix and services
# are left alone. BIND needs 127.53.N.1 on `lo`; the lab adds it and removes it when done.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"

if [ "$(id -u)" != 0 ]; then
  echo "demo.sh: run as root (Postfix refuses to run otherwise; the lab uses ports 25/53, a loopback" >&2
  echo "alias for BIND and a mount namespace)." >&2
  exit 1
fi

# binary -> Debian package
pkgs_for_missing() {
  local pairs="named:bind9 tsig-keygen:bind9-utils dnssec-dsfromkey:bind9-utils dig:bind9-dnsutils
    nsupdate:bind9-dnsutils knotd:knot knotc:knot keymgr:knot kdig:knot-dnsutils unbound:unbound
    unbound-control:unbound postfix:postfix sendmail:postfix openssl:openssl unshare:util-linux
    setpriv:util-linux script:bsdutils ip:iproute2 pkg-config:pkg-config gcc:gcc"
  local p
  for p in $pairs; do
    if ! PATH="$PATH:/usr/sbin:/sbin" command -v "${p%%:*}" >/dev/null 2>&1; then
      echo "${p#*:}"
    fi
  done
  # Headers for the openssl crate.
  if ! pkg-config --exists openssl 2>/dev/null; then echo libssl-dev; fi
}

missing="$(pkgs_for_missing | sort -u | tr '\n' ' ')"
if [ -n "${missing// /}" ]; then
  if [ -n "${NO_INSTALL:-}" ]; then
    echo "demo.sh: missing packages: $missing (NO_INSTALL is set)" >&2
    exit 1
  fi
  echo "== installing: $missing"
  # Postfix without questions and without a system configuration ("No configuration").
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  # Do not start the packages' own services (a system named or unbound could take the lab's
  # addresses): a temporary policy-rc.d, only if the machine has none.
  policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    policy=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\nexit 101\n' > "$policy"
    chmod 755 "$policy"
    trap 'rm -f "$policy"' EXIT
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # shellcheck disable=SC2086
  apt-get install -y -qq --no-install-recommends $missing
  if [ -n "$policy" ]; then rm -f "$policy"; trap - EXIT; fi
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "demo.sh: cargo not found: install a Rust toolchain (https://rustup.rs) first" >&2
  exit 1
fi

profile="${PROFILE:-debug}"
flags=()
[ "$profile" = release ] && flags=(--release)
echo "== building dane-roll and the lab ($profile)"
cargo build "${flags[@]}" -q -p dane-roll -p dane-roll-lab --bins

target="${CARGO_TARGET_DIR:-$root/target}/$profile"
echo "== running the demo"
export DANE_ROLL="${DANE_ROLL:-$target/dane-roll}"
exec "$target/demo" "$@"
