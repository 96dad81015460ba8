//! The ledger: which units of a run are committed on the target.
//!
//! Every unit records itself in its own transaction, just before COMMIT, so the unit and
//! its record commit together or not at all; a run that dies (SIGKILL, a lost machine)
//! is resumed by skipping exactly the recorded units. The record is SQL pipelined with
//! the unit's last statements, so it costs no round trip.
//!
//! [`Ledger`] is what the copy stage sees; [`PgLedger`] keeps the records in a schema
//! named `pgbarge` on the target (plain tables owned by the connecting role, no
//! superuser-only feature), [`MemoryLedger`] in memory (tests, and targets where the role
//! may not create a schema: such runs cannot be resumed). The run itself — its units as
//! they were planned, the source's snapshot time and change counters — is stored when it
//! starts ([`start_run`]) and removed when it finishes ([`finish_run`]).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use tokio_postgres::types::Type;
use tokio_postgres::Client;

use crate::catalog::TableName;
use crate::error::{Error, Kind, Result, Side, SqlState};
use crate::plan::units::{UnitId, Work, WORK_FORMAT};
use crate::quote::literal;

/// Where completion of units is recorded.
pub trait Ledger: Send + Sync {
    /// Statements run inside `unit`'s transaction, just before its COMMIT, recording it
    /// with the `bytes` it read from the source.
    fn record_sql(&self, unit: &UnitId, bytes: u64) -> Vec<String>;

    /// `unit` committed, having loaded `rows`.
    fn committed(&self, unit: &UnitId, rows: u64, bytes: u64);

    /// Statements to send ahead of the next unit on any target connection (pipelined,
    /// outside its transaction): what [`Ledger::committed`] learned too late to go in the
    /// unit's own transaction.
    fn pending_sql(&self) -> Option<String>;

    /// A statement each new target session of the run sends with its setup, recording
    /// the session: after a SIGKILL its server sessions may live on, and even commit the
    /// statements already sent; a resume ends them (see [`end_sessions`]) before it reads
    /// what is done.
    fn session_sql(&self) -> Option<String>;

    /// A statement recording that the run's snapshot was renewed (its holder was lost):
    /// the tables loaded from then on read a later instant than the run's recorded
    /// snapshot, so a followed copy cannot be resumed from it. Run on the target before
    /// any unit reads the new snapshot.
    fn renewed_sql(&self) -> Option<String>;
}

/// What a unit moved, as recorded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Moved {
    /// `None` when the run died before the count was written down.
    pub rows: Option<u64>,
    pub bytes: u64,
}

/// A ledger in memory: nothing survives the process.
#[derive(Debug, Default)]
pub struct MemoryLedger {
    done: Mutex<BTreeMap<UnitId, Moved>>,
}

impl MemoryLedger {
    /// The units committed so far.
    pub fn done(&self) -> BTreeMap<UnitId, Moved> {
        self.done.lock().map(|d| d.clone()).unwrap_or_default()
    }
}

impl Ledger for MemoryLedger {
    fn record_sql(&self, _unit: &UnitId, _bytes: u64) -> Vec<String> {
        Vec::new()
    }

    fn committed(&self, unit: &UnitId, rows: u64, bytes: u64) {
        if let Ok(mut done) = self.done.lock() {
            done.insert(
                unit.clone(),
                Moved {
                    rows: Some(rows),
                    bytes,
                },
            );
        }
    }

    fn pending_sql(&self) -> Option<String> {
        None
    }

    fn session_sql(&self) -> Option<String> {
        None
    }

    fn renewed_sql(&self) -> Option<String> {
        None
    }
}

/// The ledger's schema on the target. Objects in it belong to the role that runs
/// pgbarge; PUBLIC gets nothing (a new schema grants nothing, and the tables are revoked
/// explicitly in case of default privileges).
const SCHEMA: &str = "pgbarge";

/// Creates the ledger if it is missing. Idempotent; one round trip.
const CREATE: &str = "CREATE SCHEMA IF NOT EXISTS pgbarge;
REVOKE ALL ON SCHEMA pgbarge FROM PUBLIC;
CREATE TABLE IF NOT EXISTS pgbarge.run (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    started_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    source text NOT NULL,
    snapshot_at timestamptz,
    work jsonb NOT NULL,
    source_changes jsonb NOT NULL
);
CREATE TABLE IF NOT EXISTS pgbarge.unit (
    run_id bigint NOT NULL REFERENCES pgbarge.run ON DELETE CASCADE,
    unit text NOT NULL,
    rows bigint,
    bytes bigint NOT NULL,
    committed_at timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    PRIMARY KEY (run_id, unit)
);
CREATE TABLE IF NOT EXISTS pgbarge.session (
    run_id bigint NOT NULL REFERENCES pgbarge.run ON DELETE CASCADE,
    pid int NOT NULL,
    started timestamptz NOT NULL
);
CREATE TABLE IF NOT EXISTS pgbarge.synced (
    target_table text PRIMARY KEY,
    source text NOT NULL,
    source_changes bigint NOT NULL,
    synced_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
CREATE TABLE IF NOT EXISTS pgbarge.watermark (
    target_table text NOT NULL,
    column_name text NOT NULL,
    source text NOT NULL,
    value text,
    snapshot text NOT NULL,
    synced_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (target_table, column_name)
);
CREATE TABLE IF NOT EXISTS pgbarge.follow (
    slot text PRIMARY KEY,
    publication text NOT NULL,
    source text NOT NULL,
    tables jsonb NOT NULL,
    snapshot text,
    applied_lsn pg_lsn,
    applied_at timestamptz,
    changes bigint NOT NULL DEFAULT 0,
    stop_requested boolean NOT NULL DEFAULT false,
    follower_pid int,
    created_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
DO $$ BEGIN
    -- The run's snapshot (which transactions it saw), kept since a followed copy can be
    -- resumed; a ledger from before gains the column.
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_attribute WHERE attrelid = 'pgbarge.run'::regclass
                   AND attname = 'snapshot' AND NOT attisdropped) THEN
        ALTER TABLE pgbarge.run ADD COLUMN snapshot text;
    END IF;
END $$;
REVOKE ALL ON ALL TABLES IN SCHEMA pgbarge FROM PUBLIC";

/// Whether a ledger table exists (a role may read this for any schema).
const EXISTS: &str = "SELECT pg_catalog.to_regclass($1) IS NOT NULL";

const INSERT_RUN: &str =
    "INSERT INTO pgbarge.run (source, snapshot_at, work, source_changes, snapshot) \
     VALUES ($1, $2::text::timestamptz, $3::text::jsonb, $4::text::jsonb, $5) RETURNING id";

/// The newest run not finished, with its committed units. (The snapshot is read through
/// `to_jsonb`: a ledger written by an earlier version, not yet given the column, has
/// none.)
const LAST_RUN: &str =
    "SELECT id, date_trunc('second', started_at)::text, source, snapshot_at::text, work::text, \
     source_changes::text, pg_catalog.to_jsonb(r) ->> 'snapshot' \
     FROM pgbarge.run r ORDER BY id DESC LIMIT 1";
const RUN_UNITS: &str = "SELECT unit, rows, bytes FROM pgbarge.unit WHERE run_id = $1";

/// A finished (or abandoned) run leaves nothing behind; with no run left, neither does
/// the ledger — unless it holds what the next sync of a table uses (the last sync's
/// record and `--since` watermark) or a follow in progress. One round trip.
const FINISH_RUN: &str = "DELETE FROM pgbarge.run WHERE id = {ID}; {TIDY}";

/// Drops the ledger when nothing is left in it.
const TIDY: &str = "DO $$ BEGIN
    IF NOT EXISTS (SELECT FROM pgbarge.run) AND NOT EXISTS (SELECT FROM pgbarge.synced)
       AND NOT EXISTS (SELECT FROM pgbarge.watermark)
       AND NOT EXISTS (SELECT FROM pgbarge.follow) THEN
        DROP SCHEMA pgbarge CASCADE;
    END IF;
END $$";

/// A run recorded on the target.
#[derive(Debug, Clone)]
pub struct SavedRun {
    pub id: i64,
    pub started_at: String,
    /// The source as `user@host:port/db`.
    pub source: String,
    /// When the run's snapshot of the source was taken.
    pub snapshot_at: Option<String>,
    /// The transactions that snapshot saw (`xmin:xmax:running,…`); `None` in a run
    /// recorded by an earlier version.
    pub snapshot: Option<String>,
    pub work: Work,
    /// Per source table, its change counter when the run started (see
    /// [`source_changes`]).
    pub source_changes: BTreeMap<String, i64>,
    pub done: BTreeMap<UnitId, Moved>,
    /// Objects of the post-data unit (by position) that were created one by one after a
    /// failed table blocked that unit: a resume does not create them again.
    pub salvaged: BTreeSet<usize>,
}

/// The ledger on the target, for one run.
#[derive(Debug)]
pub struct PgLedger {
    run_id: i64,
    pending: Mutex<Vec<String>>,
}

impl PgLedger {
    pub fn run_id(&self) -> i64 {
        self.run_id
    }
}

impl Ledger for PgLedger {
    fn record_sql(&self, unit: &UnitId, bytes: u64) -> Vec<String> {
        vec![format!(
            "INSERT INTO pgbarge.unit (run_id, unit, bytes) VALUES ({}, {}, {bytes})",
            self.run_id,
            literal(&unit.0)
        )]
    }

    fn committed(&self, unit: &UnitId, rows: u64, _bytes: u64) {
        if let Ok(mut pending) = self.pending.lock() {
            pending.push(format!(
                "UPDATE pgbarge.unit SET rows = {rows} WHERE run_id = {} AND unit = {}",
                self.run_id,
                literal(&unit.0)
            ));
        }
    }

    fn pending_sql(&self) -> Option<String> {
        let mut pending = self.pending.lock().ok()?;
        if pending.is_empty() {
            return None;
        }
        Some(std::mem::take(&mut *pending).join(";\n"))
    }

    fn session_sql(&self) -> Option<String> {
        Some(format!(
            "INSERT INTO pgbarge.session SELECT {}, pid, backend_start \
             FROM pg_catalog.pg_stat_activity WHERE pid = pg_catalog.pg_backend_pid()",
            self.run_id
        ))
    }

    fn renewed_sql(&self) -> Option<String> {
        Some(format!(
            "UPDATE pgbarge.run SET snapshot = NULL WHERE id = {}",
            self.run_id
        ))
    }
}

/// The run's sessions still alive on the target (their process ids and start times
/// match), ended; from PostgreSQL 14 on each end is waited for (up to 5 s).
const END_SESSIONS: &str = "SELECT pg_catalog.pg_terminate_backend(a.pid{WAIT}) \
     FROM pgbarge.session s JOIN pg_catalog.pg_stat_activity a \
       ON a.pid = s.pid AND a.backend_start = s.started \
     WHERE s.run_id = $1 AND a.pid <> pg_catalog.pg_backend_pid()";
const SESSIONS_ALIVE: &str = "SELECT count(*) FROM pgbarge.session s \
     JOIN pg_catalog.pg_stat_activity a ON a.pid = s.pid AND a.backend_start = s.started \
     WHERE s.run_id = $1 AND a.pid <> pg_catalog.pg_backend_pid()";

/// Ends what is left of run `id`'s sessions on the target, and waits (up to 30 s) until
/// they are gone: a session of a killed pgbarge may still be running — or committing —
/// the statements it was sent, holding the locks a resume needs. Only after this is the
/// ledger's list of committed units final. A role may end its own sessions.
pub async fn end_sessions(target: &Client, id: i64, server_version: i32) -> Result<()> {
    let wait = if server_version >= 140_000 {
        ", 5000"
    } else {
        ""
    };
    let err = target_error("ending the sessions of the interrupted run");
    target
        .query(&END_SESSIONS.replace("{WAIT}", wait), &[&id])
        .await
        .map_err(&err)?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let alive: i64 = target
            .query_one(SESSIONS_ALIVE, &[&id])
            .await
            .map_err(&err)?
            .get(0);
        if alive == 0 {
            return Ok(());
        }
        if std::time::Instant::now() > deadline {
            return Err(Error::new(
                Kind::Copy,
                format!(
                    "{} of the interrupted run {} still alive on the target 30 s after being \
                     ended; try again in a moment.",
                    crate::report::plural(alive as usize, "session", "sessions"),
                    if alive == 1 { "is" } else { "are" }
                ),
            )
            .on(Side::Target)
            .transient(true));
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

fn target_error(doing: &'static str) -> impl Fn(tokio_postgres::Error) -> Error {
    move |e| Error::postgres(Kind::Copy, Side::Target, doing, e)
}

/// Creates the ledger on the target if it is missing. `Ok(false)`: the role may not
/// create a schema in this database, so runs cannot be resumed (the caller says so).
pub async fn ensure(target: &Client) -> Result<bool> {
    match target.batch_execute(CREATE).await {
        Ok(()) => Ok(true),
        Err(e) if e.code() == Some(&SqlState::INSUFFICIENT_PRIVILEGE) => Ok(false),
        // Two runs creating it at once: the other one won.
        Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => Ok(true),
        Err(e) => Err(target_error("creating the pgbarge ledger schema")(e)),
    }
}

/// Whether the ledger holds `table` (`pgbarge.unit`, …): an older ledger may lack one,
/// and a target never written to has none.
pub async fn has(target: &Client, table: &str) -> Result<bool> {
    Ok(target
        .query_typed_one(EXISTS, &[(&table, Type::TEXT)])
        .await
        .map_err(target_error("reading the pgbarge ledger"))?
        .get(0))
}

/// The last unfinished run recorded on the target, if any.
pub async fn last_run(target: &Client) -> Result<Option<SavedRun>> {
    if !has(target, "pgbarge.unit").await? {
        return Ok(None);
    }
    let Some(row) = target
        .query_opt(LAST_RUN, &[])
        .await
        .map_err(target_error("reading the pgbarge ledger"))?
    else {
        return Ok(None);
    };
    let id: i64 = row.get(0);
    let work_text: String = row.get(4);
    let work: Work = serde_json::from_str(&work_text).map_err(|e| {
        Error::new(
            Kind::Usage,
            format!(
                "the interrupted run recorded on the target (run {id}) was saved by another \
                 version of pgbarge and cannot be resumed ({e}); run `pgbarge clean` to \
                 remove it, then copy again."
            ),
        )
    })?;
    if work.format != WORK_FORMAT {
        return Err(Error::new(
            Kind::Usage,
            format!(
                "the interrupted run recorded on the target (run {id}) was saved by another \
                 version of pgbarge; run `pgbarge clean` to remove it, then copy again."
            ),
        ));
    }
    let changes_text: String = row.get(5);
    let source_changes = serde_json::from_str(&changes_text).unwrap_or_default();
    let rows = target
        .query(RUN_UNITS, &[&id])
        .await
        .map_err(target_error("reading the pgbarge ledger"))?;
    let mut done = BTreeMap::new();
    let mut salvaged = BTreeSet::new();
    for r in rows {
        let unit = UnitId(r.get(0));
        if let Some(k) = unit.as_post_data_object() {
            salvaged.insert(k);
            continue;
        }
        let moved = Moved {
            rows: r.get::<_, Option<i64>>(1).map(|n| n.max(0) as u64),
            bytes: r.get::<_, i64>(2).max(0) as u64,
        };
        done.insert(unit, moved);
    }
    Ok(Some(SavedRun {
        id,
        started_at: row.get(1),
        source: row.get(2),
        snapshot_at: row.get(3),
        snapshot: row.get(6),
        work,
        source_changes,
        done,
        salvaged,
    }))
}

/// Records a new run and returns its ledger.
pub async fn start_run(
    target: &Client,
    work: &Work,
    snapshot: &crate::copy::ExportedSnapshot,
    source_changes: &BTreeMap<String, i64>,
) -> Result<PgLedger> {
    let work_json = serde_json::to_string(work)
        .map_err(|e| Error::new(Kind::Copy, format!("internal: cannot save the run: {e}")))?;
    let changes = serde_json::to_string(source_changes).unwrap_or_else(|_| "{}".into());
    let row = target
        .query_one(
            INSERT_RUN,
            &[
                &work.source.connection,
                &snapshot.taken_at,
                &work_json,
                &changes,
                &snapshot.xids,
            ],
        )
        .await
        .map_err(target_error("recording the run in the pgbarge ledger"))?;
    Ok(PgLedger {
        run_id: row.get(0),
        pending: Mutex::new(Vec::new()),
    })
}

/// Records the snapshot a resumed run reads from now on (see [`SavedRun::snapshot`]).
pub async fn record_snapshot(target: &Client, id: i64, xids: &str) -> Result<()> {
    target
        .execute_typed(
            "UPDATE pgbarge.run SET snapshot = $2 WHERE id = $1",
            &[(&id, Type::INT8), (&xids, Type::TEXT)],
        )
        .await
        .map_err(target_error("recording the run's snapshot"))?;
    Ok(())
}

/// The ledger of a run being resumed.
pub fn resume_run(run: &SavedRun) -> PgLedger {
    PgLedger {
        run_id: run.id,
        pending: Mutex::new(Vec::new()),
    }
}

/// Removes run `id` from the ledger, and the ledger itself when no run is left.
pub async fn finish_run(target: &Client, id: i64) -> Result<()> {
    target
        .batch_execute(
            &FINISH_RUN
                .replace("{ID}", &id.to_string())
                .replace("{TIDY}", TIDY),
        )
        .await
        .map_err(target_error(
            "clearing the finished run from the pgbarge ledger",
        ))
}

/// Drops the ledger if it holds nothing any more (no run, sync record or follow).
pub async fn tidy(target: &Client) -> Result<()> {
    target
        .batch_execute(TIDY)
        .await
        .map_err(target_error("tidying the pgbarge ledger"))
}

/// Abandons `run`: drops the staging tables its split tables were loading (nothing
/// else of an unfinished run is visible: every other unit committed whole or not at all)
/// and removes it from the ledger. Returns the staging tables dropped.
pub async fn abandon(target: &Client, run: &SavedRun) -> Result<Vec<TableName>> {
    end_sessions(target, run.id, run.work.target.server_version).await?;
    let staging: Vec<TableName> = run.work.staging_tables().cloned().collect();
    if !staging.is_empty() {
        let drop = staging
            .iter()
            .map(|s| format!("DROP TABLE IF EXISTS {}", s.sql()))
            .collect::<Vec<_>>()
            .join(";\n");
        target.batch_execute(&drop).await.map_err(target_error(
            "dropping the staging tables of the interrupted run",
        ))?;
    }
    finish_run(target, run.id).await?;
    Ok(staging)
}

/// Per source table (`schema.name` as text), a counter that moves whenever rows are
/// inserted, updated or deleted: `n_tup_ins + n_tup_upd + n_tup_del`. Read when a run
/// starts and when it resumes; a table whose counter moved in between may have changed.
const SOURCE_CHANGES: &str = "SELECT schemaname::text, relname::text, \
     (n_tup_ins + n_tup_upd + n_tup_del)::int8 FROM pg_catalog.pg_stat_all_tables \
     WHERE (schemaname, relname) IN (SELECT s, r FROM unnest($1::text[], $2::text[]) AS t(s, r))";

/// The change counters of `tables` on the source (tables the statistics do not cover are
/// left out: their changes cannot be shown).
pub async fn source_changes(
    source: &Client,
    tables: &[TableName],
) -> Result<BTreeMap<String, i64>> {
    let schemas: Vec<&str> = tables.iter().map(|t| t.schema.as_str()).collect();
    let names: Vec<&str> = tables.iter().map(|t| t.name.as_str()).collect();
    Ok(source
        .query(SOURCE_CHANGES, &[&schemas, &names])
        .await
        .map_err(|e| Error::postgres(Kind::Copy, Side::Source, "reading table statistics", e))?
        .into_iter()
        .map(|r| {
            let name = TableName::new(r.get::<_, String>(0), r.get::<_, String>(1));
            (name.to_string(), r.get(2))
        })
        .collect())
}

/// The tables among `before` whose counters differ in `now` (or are missing there):
/// they may have changed between the two reads.
pub fn changed_tables(
    before: &BTreeMap<String, i64>,
    now: &BTreeMap<String, i64>,
) -> BTreeSet<String> {
    before
        .iter()
        .filter(|(table, n)| now.get(*table) != Some(n))
        .map(|(table, _)| table.clone())
        .collect()
}

/// The ledger's schema name, for messages and for leaving it out of comparisons.
pub fn schema() -> &'static str {
    SCHEMA
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_ledger_records_after_commit_only() {
        let ledger = MemoryLedger::default();
        let unit = UnitId("part public.t 3".into());
        assert!(ledger.record_sql(&unit, 10).is_empty());
        assert!(ledger.done().is_empty());
        ledger.committed(&unit, 5, 10);
        assert_eq!(
            ledger.done().get(&unit),
            Some(&Moved {
                rows: Some(5),
                bytes: 10
            })
        );
        assert_eq!(ledger.pending_sql(), None);
    }

    #[test]
    fn pg_ledger_records_in_the_transaction_and_counts_rows_later() {
        let ledger = PgLedger {
            run_id: 7,
            pending: Mutex::new(Vec::new()),
        };
        let unit = UnitId("table public.it's".into());
        let sql = ledger.record_sql(&unit, 42);
        assert_eq!(
            sql,
            vec!["INSERT INTO pgbarge.unit (run_id, unit, bytes) VALUES (7, 'table public.it''s', 42)"]
        );
        assert_eq!(ledger.pending_sql(), None);
        ledger.committed(&unit, 3, 42);
        let pending = ledger.pending_sql().expect("a pending update");
        assert!(pending.contains("SET rows = 3"), "{pending}");
        assert_eq!(ledger.pending_sql(), None, "drained once sent");
    }

    #[test]
    fn changed_tables_are_those_whose_counters_moved_or_vanished() {
        let before: BTreeMap<String, i64> =
            [("a".into(), 1), ("b".into(), 5), ("c".into(), 9)].into();
        let now: BTreeMap<String, i64> = [("a".into(), 1), ("b".into(), 6)].into();
        let changed = changed_tables(&before, &now);
        assert_eq!(changed, ["b".to_string(), "c".to_string()].into());
    }
}
