//! The store's schema as a list of migrations, and the code that applies them.
//!
//! This is rusqlite_migration's way, written by hand (a const slice and `PRAGMA user_version`
//! are all it takes, and one dependency less): migration *i* (0-based) brings the schema from
//! version *i* to *i + 1*; each runs in one transaction together with the version bump, so a
//! crash leaves the database at the old version or the new one, never between. Never edit a
//! migration that has shipped: append a new one.

use rusqlite::Connection;

/// The migrations, in order. `PRAGMA user_version` says how many have been applied.
pub const MIGRATIONS: &[&str] = &[
    // 1: the initial schema.
    r#"
    CREATE TABLE rollovers (
        service TEXT NOT NULL,
        slot    TEXT NOT NULL,
        phase   TEXT NOT NULL,            -- the phase name, for queries; the JSON is authoritative
        state   TEXT NOT NULL,            -- the whole rollover::Rollover as JSON
        started INTEGER NOT NULL,
        since   INTEGER NOT NULL,         -- when the current phase began
        updated INTEGER NOT NULL,
        PRIMARY KEY (service, slot)
    ) STRICT;

    -- Every record a service published: "ours". Only these may ever be retired.
    CREATE TABLE records_published (
        id           INTEGER PRIMARY KEY,
        service      TEXT NOT NULL,
        slot         TEXT NOT NULL,
        owner        TEXT NOT NULL,
        rdata        TEXT NOT NULL,
        ttl          INTEGER NOT NULL,
        published_at INTEGER NOT NULL,
        confirmed_at INTEGER,            -- first seen on every nameserver and validated
        retired_at   INTEGER
    ) STRICT;
    CREATE UNIQUE INDEX records_active
        ON records_published (service, slot, owner, rdata) WHERE retired_at IS NULL;

    -- Keys by role. Paths and hashes only: never key material.
    CREATE TABLE keys (
        service     TEXT NOT NULL,
        slot        TEXT NOT NULL,
        role        TEXT NOT NULL CHECK (role IN ('current', 'next', 'new')),
        spki_sha256 TEXT NOT NULL CHECK (length(spki_sha256) = 64),
        key_path    TEXT,
        created     INTEGER NOT NULL,
        PRIMARY KEY (service, slot, role)
    ) STRICT;

    CREATE TABLE events (
        id      INTEGER PRIMARY KEY AUTOINCREMENT,
        time    INTEGER NOT NULL,
        service TEXT NOT NULL,
        slot    TEXT NOT NULL,
        phase   TEXT NOT NULL,
        detail  TEXT NOT NULL
    ) STRICT;
    CREATE INDEX events_by_service ON events (service, id);

    -- For monitoring: one row per check, to alert on changes and repeat at an interval.
    CREATE TABLE alert_state (
        check_id  TEXT PRIMARY KEY,
        state     TEXT NOT NULL,
        last_sent INTEGER,
        since     INTEGER NOT NULL
    ) STRICT;
    "#,
    // 2: the TTLs seen for a rollover's TLSA RRsets (the largest governs its 2×TTL wait).
    r#"
    CREATE TABLE ttl_observations (
        service    TEXT NOT NULL,
        slot       TEXT NOT NULL,
        started    INTEGER NOT NULL,       -- the rollover's start: one rollover's observations
        owner      TEXT NOT NULL,
        source     TEXT NOT NULL,          -- a nameserver (name and address) or 'resolver'
        ttl        INTEGER NOT NULL,
        first_seen INTEGER NOT NULL,
        last_seen  INTEGER NOT NULL,
        PRIMARY KEY (service, slot, started, owner, source, ttl)
    ) STRICT;
    "#,
    // 3: the times of rollovers, records, events and TTL observations in milliseconds since
    // the epoch (were seconds), so that nothing is rounded and the history is monotone. Keys'
    // `created` and the monitor's `alert_state` stay in seconds. The rollover's JSON needs no
    // change: a whole number there is read as seconds.
    r#"
    UPDATE rollovers SET started = started * 1000, since = since * 1000, updated = updated * 1000;
    UPDATE records_published SET
        published_at = published_at * 1000,
        confirmed_at = confirmed_at * 1000,
        retired_at   = retired_at * 1000;
    UPDATE events SET time = time * 1000;
    UPDATE ttl_observations SET
        started = started * 1000, first_seen = first_seen * 1000, last_seen = last_seen * 1000;
    "#,
    // 4: where each service's ACME client keeps its current certificate, as its hook last saw it
    // (`dane-roll run` looks there when a hook was missed).
    r#"
    CREATE TABLE acme_sources (
        service  TEXT PRIMARY KEY,
        client   TEXT NOT NULL,           -- certbot, acme.sh, dehydrated
        source   TEXT NOT NULL,           -- JSON: the hook's paths and names, never key material
        recorded INTEGER NOT NULL
    ) STRICT;
    "#,
    // 5: SMTP TLS reports (RFC 8460) as senders sent them, once per organisation and report id,
    // and their session counts by policy type and result, for `reports` and `serve`'s metrics.
    r#"
    CREATE TABLE tlsrpt_reports (
        id           INTEGER PRIMARY KEY,
        organization TEXT NOT NULL,
        report_id    TEXT NOT NULL,
        window_start INTEGER NOT NULL,     -- the report's date-range, milliseconds
        window_end   INTEGER NOT NULL,
        received     INTEGER NOT NULL,
        source       TEXT NOT NULL,        -- where it came from: stdin, a Maildir file, https
        report       TEXT NOT NULL,        -- the report as JSON (the senders' quirks smoothed)
        UNIQUE (organization, report_id)
    ) STRICT;
    CREATE TABLE tlsrpt_sessions (
        report      INTEGER NOT NULL REFERENCES tlsrpt_reports (id) ON DELETE CASCADE,
        policy_type TEXT NOT NULL,         -- tlsa, sts, no-policy-found
        result      TEXT NOT NULL,         -- 'successful' or an RFC 8460 result type
        sessions    INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX tlsrpt_by_window ON tlsrpt_reports (window_start);
    "#,
];

/// The schema version this build writes.
pub fn latest_version() -> u32 {
    u32::try_from(MIGRATIONS.len()).unwrap_or(u32::MAX)
}

/// The database's schema version.
pub(super) fn version(conn: &Connection) -> rusqlite::Result<u32> {
    conn.pragma_query_value(None, "user_version", |row| row.get(0))
}

/// What `migrate` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Migrated {
    /// From this version to [`latest_version`].
    Applied {
        /// The version before.
        from: u32,
    },
    /// Already current.
    Current,
    /// Written by a newer dane-roll: untouched.
    TooNew {
        /// The version found.
        found: u32,
    },
}

/// Apply every migration the database lacks, each in its own transaction.
pub(super) fn migrate(conn: &mut Connection) -> rusqlite::Result<Migrated> {
    let from = version(conn)?;
    let latest = latest_version();
    if from > latest {
        return Ok(Migrated::TooNew { found: from });
    }
    if from == latest {
        return Ok(Migrated::Current);
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(from as usize) {
        // Another process (a status poll beside the deploy that creates the store) may be
        // migrating the same file: take the write lock first (waiting up to the busy timeout),
        // then look again at what is applied, so a step is never run twice.
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        if version(&tx)? as usize > index {
            tx.commit()?;
            continue;
        }
        tx.execute_batch(sql)?;
        tx.pragma_update(
            None,
            "user_version",
            i64::try_from(index + 1).unwrap_or(i64::MAX),
        )?;
        tx.commit()?;
    }
    Ok(Migrated::Applied { from })
}
