#!/bin/sh
# dane-roll: certbot deploy hook.
#
# certbot runs this after it renewed a certificate (RENEWED_LINEAGE and RENEWED_DOMAINS are set).
# It hands the new certificate to dane-roll, which publishes the new key's TLSA record and
# installs the certificate for the mail server only once every nameserver has served that record
# for 2×TTL. certbot ignores a failing hook (it exits 0 and never retries): this shim logs every
# run, and dane-roll itself alerts through the channels of [alerts] when it fails.
#
# Install (the Debian package does this one):
#   install -m 0755 certbot-deploy-hook.sh /etc/letsencrypt/renewal-hooks/deploy/dane-roll
# certbot then runs it for every lineage at every renewal: a lineage no service is for (a web
# server's) is skipped with one line and exit 0, and so is every lineage while the configuration
# file does not exist or dane-roll is not installed (a removed package leaves its conffiles). Or,
# for one lineage only (an unknown lineage is then an error; the package ships a copy here):
#   certbot reconfigure --cert-name mail.example.com \
#       --deploy-hook /usr/lib/dane-roll/certbot-deploy-hook.sh
#
# Settings (environment, or edit here):
#   DANE_ROLL          the dane-roll program          (default: /usr/bin/dane-roll, else
#                      /usr/local/bin/dane-roll, else dane-roll from PATH)
#   DANE_ROLL_CONFIG   the configuration file         (default: /etc/dane-roll/dane-roll.toml)
#   DANE_ROLL_HOOK_LOG the log file, empty for no log (default: /var/log/dane-roll-hook.log)

if [ -z "${DANE_ROLL:-}" ]; then
    # ACME clients' timers run hooks with PATH=/usr/sbin:/usr/bin:/sbin:/bin: look where the
    # Debian package and `cargo install --root /usr/local` put dane-roll before PATH.
    for p in /usr/bin/dane-roll /usr/local/bin/dane-roll; do
        if [ -x "$p" ]; then DANE_ROLL=$p; break; fi
    done
fi
DANE_ROLL=${DANE_ROLL:-dane-roll}
DANE_ROLL_HOOK_LOG=${DANE_ROLL_HOOK_LOG-/var/log/dane-roll-hook.log}
config=${DANE_ROLL_CONFIG:-/etc/dane-roll/dane-roll.toml}

log() {
    [ -n "$DANE_ROLL_HOOK_LOG" ] || return 0
    printf '%s certbot %s: %s\n' "$(date -u '+%Y-%m-%dT%H:%M:%SZ')" "${RENEWED_LINEAGE:-?}" "$*" \
        >>"$DANE_ROLL_HOOK_LOG" 2>/dev/null || true
}

case "$0" in
    */renewal-hooks/deploy/*)
        # certbot runs every hook of this directory for every lineage it renews.
        msg=""
        if ! command -v "$DANE_ROLL" >/dev/null 2>&1; then
            msg="$DANE_ROLL is not installed: lineage ${RENEWED_LINEAGE:-?} skipped"
        elif [ ! -e "$config" ]; then
            msg="no configuration at $config yet: lineage ${RENEWED_LINEAGE:-?} skipped"
        fi
        if [ -n "$msg" ]; then
            log "$msg"
            printf 'dane-roll: %s\n' "$msg" >&2
            exit 0
        fi
        DANE_ROLL_SKIP_UNMATCHED=1
        export DANE_ROLL_SKIP_UNMATCHED
        ;;
esac

log "deploy hook for ${RENEWED_DOMAINS:-?}"
if [ -n "$DANE_ROLL_HOOK_LOG" ]; then
    # Keep dane-roll's messages in the log and on certbot's output.
    out=$("$DANE_ROLL" hook certbot "$@" 2>&1)
    status=$?
    [ -n "$out" ] && printf '%s\n' "$out" >&2
    printf '%s\n' "$out" | sed 's/^/    /' >>"$DANE_ROLL_HOOK_LOG" 2>/dev/null || true
else
    "$DANE_ROLL" hook certbot "$@"
    status=$?
fi
log "dane-roll exited $status"
exit "$status"
