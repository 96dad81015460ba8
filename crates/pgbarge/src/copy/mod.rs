//! The copy stage: runs a run's [`Work`] — its units — with `jobs` source+target
//! connection pairs at once, every source connection reading the same exported snapshot.
//!
//! Each unit is one target transaction, assembled from its typed operations in one place
//! (`run_unit`): statements are pipelined around the COPY streams, and the unit's record
//! in the [`Ledger`] goes in just before COMMIT, so the unit and its record commit
//! together or not at all.
//!
//! Faults are expected: a unit that fails transiently (a reset or stalled connection, a
//! restarting server, a lock wait that timed out) is retried from its start in a new
//! transaction after a backoff, on fresh connections, once pgbarge's own stale sessions
//! are ended. A unit that fails for good blocks only the units that wait for it; the rest
//! of the run goes on (unless `fail_fast`), and the report lists every failure. A stop
//! (Ctrl-C, SIGTERM) cancels every stream; what committed stays, recorded, and a resumed
//! run skips it. The stage reports what happens as [`Event`]s and never prints.

mod bad_bytes;
pub(crate) mod pump;
pub mod schedule;
mod sequences;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use tokio_postgres::Client;

use crate::catalog::TableName;
use crate::connect::{connect, Backend, Connection};
use crate::error::{Error, Kind, Result, Side, SqlState};
use crate::ledger::{Ledger, Moved};
use crate::plan::units::{Op, Unit, UnitId, UnitKind, Work};
use crate::poison::Locked;
use crate::quote::literal;
use crate::report::{Resumed, RunReport, TableReport, UnitFailure};
use crate::retry::RetryPolicy;
use crate::sync::SyncStats;

use schedule::{Schedule, State};

/// Every source connection reads in a repeatable-read, read-only transaction...
const SOURCE_BEGIN: &str = "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY";
/// ...the first one exports its snapshot, the others adopt it: the target then equals
/// the source at one instant, even while the source is being written to. The time is
/// recorded with the run; which transactions it saw is what following skips
/// (`txid_current_snapshot` is `pg_current_snapshot` before PostgreSQL 13, same text).
const EXPORT_SNAPSHOT: &str = "SELECT pg_catalog.pg_export_snapshot(), \
     pg_catalog.transaction_timestamp()::text, pg_catalog.txid_current_snapshot()::text";
/// Advice for rows the target cannot read in its encoding.
const BAD_BYTES: &str = "The source sent bytes that are not valid in the target's encoding. \
    A SQL_ASCII source passes bytes through as they are: say what they really are with \
    --source-encoding (WIN1252 and LATIN1 are common), and the target converts them.";
const BEGIN: &str = "BEGIN";
const COMMIT: &str = "COMMIT";
const ROLLBACK: &str = "ROLLBACK";
/// The source's own `search_path` (before pgbarge emptied it for this session)...
const SOURCE_SEARCH_PATH: &str =
    "SELECT reset_val FROM pg_catalog.pg_settings WHERE name = 'search_path'";
/// ...is what each target transaction loads with, as far as it is safe: check
/// constraints, defaults and triggers call functions whose bodies may name other objects
/// unqualified, as they resolve on the source. But a schema another role may create
/// functions in would let it shadow a built-in function with a closer match (`lower`
/// taking `varchar`) and run its code as this role. So the path is `pg_catalog` first,
/// then only the source path's schemas that exist on the target and are owned by the
/// connecting role, a superuser, or (`public` from PostgreSQL 15) the owner of a database
/// owned by one of those — and in which no other role may create objects. `$user` is
/// the target role's schema, on the same terms. Computed by the target at the start of
/// each transaction (`{PATH}`: the source path's schemas as a text array), so schemas
/// the run created are found.
const SAFE_SEARCH_PATH: &str = "SELECT pg_catalog.set_config('search_path', \
    pg_catalog.concat_ws(', ', 'pg_catalog', (\
      SELECT pg_catalog.string_agg(pg_catalog.quote_ident(n.nspname), ', ' ORDER BY p.ord) \
      FROM pg_catalog.unnest({PATH}::pg_catalog.text[]) WITH ORDINALITY AS p(name, ord) \
      JOIN pg_catalog.pg_namespace n ON n.nspname = \
        CASE p.name WHEN '$user' THEN CURRENT_USER::pg_catalog.text ELSE p.name END \
      JOIN pg_catalog.pg_roles o ON o.oid = n.nspowner \
      WHERE n.nspname <> 'pg_catalog' \
        AND (o.rolsuper OR o.rolname = CURRENT_USER \
             OR (o.rolname = 'pg_database_owner' \
                 AND (SELECT d.rolsuper OR d.rolname = CURRENT_USER \
                      FROM pg_catalog.pg_database b \
                      JOIN pg_catalog.pg_roles d ON d.oid = b.datdba \
                      WHERE b.datname = pg_catalog.current_database()))) \
        AND NOT EXISTS (SELECT FROM pg_catalog.aclexplode(n.nspacl) a \
                        LEFT JOIN pg_catalog.pg_roles g ON g.oid = a.grantee \
                        WHERE a.privilege_type = 'CREATE' AND a.grantee <> n.nspowner \
                          AND NOT coalesce(g.rolsuper OR g.rolname = CURRENT_USER, false)))), \
    true)";

/// The statement setting a target transaction's search path (see [`SAFE_SEARCH_PATH`])
/// from the source's `search_path` setting.
fn search_path_sql(source_path: &str) -> String {
    let schemas: Vec<String> = split_search_path(source_path)
        .iter()
        .map(|s| literal(s))
        .collect();
    SAFE_SEARCH_PATH.replace("{PATH}", &format!("ARRAY[{}]", schemas.join(", ")))
}

/// The schema names of a `search_path` setting as the server reads it: comma-separated,
/// a double-quoted name as written (`""` a quote), any other folded to lower case.
fn split_search_path(path: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut chars = path.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut name = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                if c == '"' {
                    if chars.peek() == Some(&'"') {
                        chars.next();
                    } else {
                        break;
                    }
                }
                name.push(c);
            }
            while chars.peek().is_some_and(|&c| c != ',') {
                chars.next();
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                name.push(c.to_ascii_lowercase());
                chars.next();
            }
            name = name.trim_end().to_string();
        }
        if !name.is_empty() {
            names.push(name);
        }
        if chars.next().is_none() {
            return names;
        }
    }
}
/// Target sessions wait this long for a lock, then give up and retry after a backoff: a
/// waiting ACCESS EXCLUSIVE request (TRUNCATE, DROP) queues every later reader of the
/// table behind it, so pgbarge must never wait long in that queue.
const SET_LOCK_TIMEOUT: &str = "SELECT pg_catalog.set_config('lock_timeout', $1, false)";
/// Who holds a lock on the tables a unit works on (for the message while pgbarge waits).
/// Query text is visible for the role's own sessions or with pg_read_all_stats.
const LOCK_HOLDERS: &str = "SELECT a.pid, coalesce(a.application_name, ''), \
     coalesce(a.state, ''), coalesce(a.xact_start::text, ''), \
     coalesce(split_part(a.query, E'\\n', 1), '') \
     FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid \
     JOIN pg_catalog.pg_class c ON c.oid = l.relation \
     JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
     WHERE l.granted AND a.pid <> pg_catalog.pg_backend_pid() \
       AND (n.nspname, c.relname) IN \
         (SELECT s, r FROM ROWS FROM (pg_catalog.unnest($1::text[]), \
                                      pg_catalog.unnest($2::text[])) AS t(s, r)) \
     GROUP BY 1, 2, 3, 4, 5 ORDER BY 1 LIMIT 5";

/// Whether a session is working on a statement (not waiting for its client to send
/// more, which is what a session whose data was lost in transit does).
const SESSION_BUSY: &str = "SELECT state = 'active' AND wait_event IS DISTINCT FROM 'ClientRead' \
     FROM pg_catalog.pg_stat_activity WHERE pid = $1 AND backend_start::text = $2";

/// How the copy stage behaves under faults.
#[derive(Debug, Clone)]
pub struct CopyOptions {
    pub retry: RetryPolicy,
    /// A stream that moves no byte for this long is cancelled and retried as transient.
    pub stall_timeout: Duration,
    /// How long a target statement waits for a lock before it is retried.
    pub lock_timeout: Duration,
    /// Stop the whole run at the first unit that fails for good.
    pub fail_fast: bool,
    /// `--source-encoding`: what the source's bytes really are, for a SQL_ASCII source
    /// (which passes bytes through unconverted). The target sessions read with this
    /// client encoding, so the target server converts the rows to its own.
    pub source_encoding: Option<String>,
    /// Where the run is recorded on the target (`--ledger-schema`).
    pub ledger: crate::ledger::Store,
}

/// The default stall timeout: long enough for a busy server's pauses, short enough
/// that a dead link is noticed within a minute.
pub const DEFAULT_STALL_TIMEOUT: Duration = Duration::from_secs(60);
/// The default lock timeout (see `SET_LOCK_TIMEOUT`).
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(1);

impl Default for CopyOptions {
    fn default() -> Self {
        CopyOptions {
            retry: RetryPolicy::default(),
            stall_timeout: DEFAULT_STALL_TIMEOUT,
            source_encoding: None,
            lock_timeout: DEFAULT_LOCK_TIMEOUT,
            fail_fast: false,
            ledger: crate::ledger::Store::default(),
        }
    }
}

/// What the copy stage reports while it works.
#[derive(Debug, Clone)]
pub enum Event {
    TableStarted {
        table: TableName,
        estimated_bytes: i64,
    },
    /// Bytes read from the source so far for a table (all its parts together).
    Progress {
        table: TableName,
        bytes: u64,
    },
    TableFinished(TableReport),
    /// Work that moves no bytes and may take a while: building a table's keys and
    /// indexes after its rows, creating what follows the data. `table`: whose, if one's.
    Phase {
        table: Option<TableName>,
        what: &'static str,
    },
    /// A unit failed transiently and will be tried again after `delay`.
    Retrying {
        unit: String,
        attempt: u32,
        retries: u32,
        delay: Duration,
        reason: String,
    },
    /// A unit failed for good; the units waiting on it will not run.
    UnitFailed {
        unit: String,
        error: String,
    },
    /// The source connection holding the run's snapshot was lost: the units not yet
    /// started read a new snapshot.
    SnapshotRenewed {
        reason: String,
    },
}

/// The run's snapshot of the source, exported by the connection that holds it open.
#[derive(Debug, Clone)]
pub struct ExportedSnapshot {
    pub id: String,
    /// When it was taken (the source's clock), recorded with the run.
    pub taken_at: String,
    /// The transactions it sees: `xmin:xmax:running,…`.
    pub xids: String,
}

/// Opens the snapshot transaction on `source` and exports it. `source` must then stay
/// open, and idle, for the whole run.
pub async fn export_snapshot(source: &Connection) -> Result<ExportedSnapshot> {
    source
        .client
        .batch_execute(SOURCE_BEGIN)
        .await
        .map_err(|e| Error::postgres(Kind::Copy, Side::Source, "starting the snapshot", e))?;
    let row = source
        .client
        .query_one(EXPORT_SNAPSHOT, &[])
        .await
        .map_err(|e| Error::postgres(Kind::Copy, Side::Source, "exporting the snapshot", e))?;
    Ok(ExportedSnapshot {
        id: row.get(0),
        taken_at: row.get(1),
        xids: row.get(2),
    })
}

/// Per-table progress shared by the units loading it.
#[derive(Default)]
struct TableState {
    started: OnceLock<Instant>,
    bytes: AtomicU64,
    rows: AtomicU64,
    /// What its sync found, once its unit committed.
    sync: Mutex<Option<SyncStats>>,
}

/// The source connection holding the snapshot: the caller's, or a new one after it was
/// lost.
enum Holder<'a> {
    Given(&'a Connection),
    Renewed(Box<Connection>),
}

impl Holder<'_> {
    fn connection(&self) -> &Connection {
        match self {
            Holder::Given(c) => c,
            Holder::Renewed(c) => c,
        }
    }
}

struct SnapshotState<'a> {
    holder: Holder<'a>,
    id: String,
}

/// The sessions of one worker's connection pair, to end them if they go stale.
#[derive(Debug, Clone)]
struct PairBackends {
    source: Backend,
    target: Backend,
}

struct Pair {
    source: Connection,
    target: Connection,
}

impl Pair {
    fn backends(&self) -> PairBackends {
        PairBackends {
            source: self.source.backend.clone(),
            target: self.target.backend.clone(),
        }
    }
}

struct Ctx<'a, L: Ledger> {
    work: &'a Work,
    source_info: crate::conninfo::ConnInfo,
    target_info: crate::conninfo::ConnInfo,
    ledger: &'a L,
    options: &'a CopyOptions,
    snapshot: tokio::sync::Mutex<SnapshotState<'a>>,
    /// Sets a target transaction's search path from the source's (see
    /// [`SAFE_SEARCH_PATH`]).
    search_path: String,
    schedule: Mutex<Schedule>,
    /// Objects of the post-data unit already created, each on its own, by a salvage
    /// (of an earlier attempt, or of this run): not created again.
    salvaged: Mutex<BTreeSet<usize>>,
    /// Signalled when a unit ends or the run stops: waiting workers look again.
    changed: tokio::sync::Notify,
    tables: Vec<TableState>,
    /// Tables completed by this run.
    completed: Mutex<BTreeSet<usize>>,
    stopping: AtomicBool,
    failures: Mutex<Vec<UnitFailure>>,
    retries: AtomicU32,
    /// Cancel handles of every open pair, by worker, so a stop cancels running queries.
    cancels: Mutex<BTreeMap<usize, [crate::connect::Canceller; 2]>>,
    /// Set when a unit read from a renewed snapshot.
    renewed: AtomicBool,
    /// How rows hash alike on both servers, for syncs: asked once.
    hashing: tokio::sync::OnceCell<crate::rowhash::Hashing>,
    on_event: &'a (dyn Fn(Event) + Send + Sync),
}

/// What an interruption leaves: which tables are committed on the target (by this run
/// or the one it resumed), which parts of split tables are kept, and how to go on.
fn interrupted<L: Ledger>(ctx: &Ctx<'_, L>) -> String {
    let work = ctx.work;
    // Done units are those committed by this run and by the one it resumed.
    let schedule = ctx.schedule.locked();
    let done: BTreeSet<&UnitId> = work
        .units
        .iter()
        .enumerate()
        .filter(|(i, _)| schedule.state(*i) == State::Done)
        .map(|(_, u)| &u.id)
        .collect();
    drop(schedule);
    let committed: Vec<&TableName> = work
        .tables
        .iter()
        .enumerate()
        .filter(|(i, _)| work.completing(*i).is_some_and(|u| done.contains(&u.id)))
        .map(|(_, t)| &t.target)
        .collect();
    let total = work
        .tables
        .iter()
        .filter(|t| t.action != crate::plan::Action::Keep)
        .count();
    let parts = work
        .units
        .iter()
        .filter(|u| u.kind == UnitKind::Part && done.contains(&u.id))
        .count();
    let mut message =
        if committed.is_empty() {
            "interrupted: no table is committed on the target".to_string()
        } else {
            format!(
            "interrupted: {} of {total} tables {} committed on the target ({}) and {} as copied",
            committed.len(),
            if committed.len() == 1 { "is" } else { "are" },
            crate::text::short_list(&committed, 5),
            if committed.len() == 1 { "stays" } else { "stay" },
        )
        };
    message.push_str("; the tables being loaded were rolled back, as they were before");
    if parts > 0 {
        message.push_str(&format!(
            ", and {} of split tables {} kept in their staging tables",
            crate::text::plural(parts, "loaded part", "loaded parts"),
            if parts == 1 { "is" } else { "are" }
        ));
    }
    message.push_str(
        ". The run is recorded on the target: run the same command with --resume to go on \
         from there, or `pgbarge clean` to drop what it left.",
    );
    message
}

/// Runs `work`, skipping the units in `done` (committed by an earlier, interrupted
/// attempt of the same run). `source` holds `snapshot` open; `target` is used for the
/// stage's own bookkeeping. `stop` resolving (Ctrl-C, SIGTERM) interrupts the run.
///
/// Returns the report, which lists the units that failed for good; an `Err` means the
/// run as a whole stopped (interrupted, `fail_fast`, or nothing could be prepared).
#[allow(clippy::too_many_arguments)]
pub async fn run<L: Ledger>(
    work: &Work,
    done: &BTreeMap<UnitId, Moved>,
    salvaged: &BTreeSet<usize>,
    source: &Connection,
    snapshot: &ExportedSnapshot,
    target_info: &crate::conninfo::ConnInfo,
    ledger: &L,
    options: &CopyOptions,
    stop: impl Future<Output = ()>,
    on_event: &(dyn Fn(Event) + Send + Sync),
) -> Result<RunReport> {
    let started = Instant::now();
    let search_path = search_path_sql(
        &source
            .client
            .query_one(SOURCE_SEARCH_PATH, &[])
            .await
            .map_err(|e| Error::postgres(Kind::Copy, Side::Source, "reading the search_path", e))?
            .get::<_, String>(0),
    );
    let done_ids: BTreeSet<UnitId> = done.keys().cloned().collect();
    let schedule = Schedule::new(work, &done_ids);
    let pending = work.units.len() - schedule.count(State::Done);
    let ctx = Ctx {
        work,
        source_info: source.info.clone(),
        target_info: target_info.clone(),
        ledger,
        options,
        snapshot: tokio::sync::Mutex::new(SnapshotState {
            holder: Holder::Given(source),
            id: snapshot.id.clone(),
        }),
        search_path,
        salvaged: Mutex::new(salvaged.clone()),
        schedule: Mutex::new(schedule),
        changed: tokio::sync::Notify::new(),
        tables: work.tables.iter().map(|_| TableState::default()).collect(),
        completed: Mutex::new(BTreeSet::new()),
        stopping: AtomicBool::new(false),
        failures: Mutex::new(Vec::new()),
        retries: AtomicU32::new(0),
        cancels: Mutex::new(BTreeMap::new()),
        renewed: AtomicBool::new(false),
        hashing: tokio::sync::OnceCell::new(),
        on_event,
    };
    // Bytes of split tables' parts committed earlier count towards their tables.
    for unit in work.units.iter().filter(|u| u.completes.is_empty()) {
        let (Some(moved), Some(Op::Copy { table, .. })) = (done.get(&unit.id), unit.ops.first())
        else {
            continue;
        };
        ctx.tables[*table]
            .bytes
            .fetch_add(moved.bytes, Ordering::Relaxed);
    }

    let jobs = work.jobs.min(pending).max(1);
    let workers = futures_util::future::try_join_all((0..jobs).map(|w| worker(&ctx, w)));
    let outcome = tokio::select! {
        r = workers => r.map(|_| ()),
        _ = stop => Err(Error::new(Kind::Interrupted, "interrupted")),
    };
    if let Err(e) = outcome {
        ctx.stopping.store(true, Ordering::SeqCst);
        cancel_all(&ctx).await;
        if e.kind() == Kind::Interrupted {
            return Err(Error::new(Kind::Interrupted, interrupted(&ctx)));
        }
        return Err(e);
    }
    if !ctx.failures.locked().is_empty() {
        salvage(&ctx).await;
    }
    let failures = ctx.failures.locked().clone();
    let completed = ctx.completed.locked().clone();
    let tables = completed
        .iter()
        .map(|&i| table_report(&ctx, i))
        .collect::<Vec<_>>();
    let skipped = done_ids.len();
    // A sync that rewrote most of a table did more work than reloading it.
    let warnings = tables
        .iter()
        .filter_map(|t| {
            let s = t.sync.as_ref()?;
            let changed = s.inserted + s.updated + s.deleted;
            let rows = s.source_rows.max(s.target_rows);
            (rows >= 1000 && (changed * 2 > rows || s.reloaded)).then(|| {
                format!(
                    "{}: most of its {rows} rows differed; for a table that changes this \
                     much, --mode truncate is faster",
                    t.table
                )
            })
        })
        .collect();
    Ok(RunReport {
        schema: work.counts.clone(),
        skipped: work.skipped.clone(),
        content: work.content,
        source: work.source.clone(),
        target: work.target.clone(),
        tables,
        seconds: started.elapsed().as_secs_f64(),
        failures,
        retries: ctx.retries.load(Ordering::SeqCst),
        resumed: (skipped > 0).then(|| Resumed {
            units_skipped: skipped,
            units_total: work.units.len(),
            rows_skipped: work
                .units
                .iter()
                .filter(|u| u.moves_rows())
                .filter_map(|u| done.get(&u.id))
                .map(|m| m.rows)
                .sum(),
            bytes_skipped: done.values().map(|m| m.bytes).sum(),
            tables_done_before: work
                .tables
                .iter()
                .enumerate()
                .filter(|(i, _)| {
                    work.completing(*i)
                        .is_some_and(|u| done.contains_key(&u.id))
                })
                .map(|(_, t)| t.target.clone())
                .collect(),
        }),
        snapshot_renewed: ctx.renewed.load(Ordering::SeqCst),
        snapshot: None,
        warnings,
    })
}

fn table_report<L: Ledger>(ctx: &Ctx<'_, L>, i: usize) -> TableReport {
    let t = &ctx.work.tables[i];
    let state = &ctx.tables[i];
    TableReport {
        table: t.target.clone(),
        action: t.action,
        format: t.format,
        rows: state.rows.load(Ordering::SeqCst),
        bytes: state.bytes.load(Ordering::SeqCst),
        sync: state.sync.locked().clone(),
        seconds: state
            .started
            .get()
            .map(|s| s.elapsed().as_secs_f64())
            .unwrap_or_default(),
    }
}

/// Cancels whatever every open pair is running, so no backend keeps working (and
/// holding locks) after the run stopped. The connections close when their workers are
/// dropped; the servers roll back.
async fn cancel_all<L: Ledger>(ctx: &Ctx<'_, L>) {
    let cancels: Vec<crate::connect::Canceller> = ctx
        .cancels
        .locked()
        .values()
        .flat_map(|p| p.iter().cloned())
        .collect();
    futures_util::future::join_all(cancels.iter().map(|c| c.cancel())).await;
}

impl<L: Ledger> Ctx<'_, L> {
    fn event(&self, e: Event) {
        (self.on_event)(e)
    }

    /// The next unit to run, waiting while every remaining unit waits on one in flight.
    /// `None`: nothing left to run, or the run is stopping.
    async fn next_unit(&self) -> Option<usize> {
        loop {
            // Registered before looking, so a unit ending in between is not missed.
            let changed = self.changed.notified();
            if self.stopping.load(Ordering::SeqCst) {
                return None;
            }
            {
                let mut schedule = self.schedule.locked();
                if let Some(u) = schedule.take_ready() {
                    return Some(u);
                }
                if schedule.finished() {
                    return None;
                }
                let stuck = schedule.stuck();
                if !stuck.is_empty() {
                    drop(schedule);
                    for u in stuck {
                        self.fail(
                            u,
                            Error::new(
                                Kind::Copy,
                                "internal: the remaining units wait on each other (a cycle \
                                 in the load order); copy these tables in separate runs.",
                            ),
                        );
                    }
                    continue;
                }
            }
            changed.await;
        }
    }

    fn start(&self, unit: &Unit) {
        for op in &unit.ops {
            if let Op::Copy { table, .. } = op {
                self.start_table(*table);
            }
        }
        for &i in &unit.completes {
            self.start_table(i);
        }
    }

    fn start_table(&self, i: usize) {
        let t = &self.work.tables[i];
        if self.tables[i].started.set(Instant::now()).is_ok() {
            self.event(Event::TableStarted {
                table: t.target.clone(),
                estimated_bytes: t.estimated_bytes,
            });
        }
    }

    fn succeed(&self, u: usize, rows_by_table: &[(usize, u64)], bytes: u64) {
        let unit = &self.work.units[u];
        let rows: u64 = rows_by_table.iter().map(|(_, r)| r).sum();
        self.ledger.committed(&unit.id, rows, bytes);
        for &(i, r) in rows_by_table {
            self.tables[i].rows.fetch_add(r, Ordering::SeqCst);
        }
        {
            let mut s = self.schedule.locked();
            s.done(u);
        }
        for &i in &unit.completes {
            {
                let mut c = self.completed.locked();
                c.insert(i);
            }
            self.event(Event::TableFinished(table_report(self, i)));
        }
        self.changed.notify_waiters();
    }

    /// For bytes the target could not read: names the source row and column holding
    /// them (without `--source-encoding`, as UTF-8 is what a SQL_ASCII source is read as).
    async fn locate_bad_bytes(&self, err: Error, unit: &Unit) -> Error {
        let table = unit.ops.iter().find_map(|op| match op {
            Op::Copy { table, .. } => Some(&self.work.tables[*table].source),
            _ => None,
        });
        let column = err.server_context().and_then(bad_bytes::column_of);
        match table {
            Some(table) if is_bad_bytes(&err) && self.options.source_encoding.is_none() => {
                match bad_bytes::locate(&self.source_info, table, column).await {
                    Some(row) => err.context(row),
                    None => err,
                }
            }
            _ => err,
        }
    }

    fn fail(&self, u: usize, err: Error) {
        let unit = &self.work.units[u];
        let err = if is_bad_bytes(&err) {
            err.context(BAD_BYTES)
        } else {
            err
        };
        let blocked = self.schedule.locked().fail(u);
        let tables: Vec<TableName> = unit
            .completes
            .iter()
            .chain(unit.ops.iter().filter_map(|op| match op {
                Op::Copy { table, .. } => Some(table),
                _ => None,
            }))
            .map(|&i| self.work.tables[i].target.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        self.event(Event::UnitFailed {
            unit: unit.title.clone(),
            error: err.message().to_string(),
        });
        {
            let mut f = self.failures.locked();
            f.push(UnitFailure {
                unit: unit.id.clone(),
                kind: unit.kind,
                title: unit.title.clone(),
                tables,
                message: err.message().to_string(),
                side: err.side(),
                sql_state: err.sql_state().cloned(),
                transient: err.is_transient(),
                blocked: blocked_titles(self.work, &blocked),
            });
        }
        self.changed.notify_waiters();
    }

    /// A new source+target pair, the source reading the run's snapshot (renewed if its
    /// holder was lost). `stale`: the sessions of this worker's previous pair, ended
    /// first so that they release their locks.
    async fn open_pair(&self, stale: Option<&PairBackends>) -> Result<Pair> {
        let (target, source) = tokio::try_join!(
            connect(&self.target_info, Side::Target),
            connect(&self.source_info, Side::Source)
        )?;
        if let Some(stale) = stale {
            tokio::join!(
                target.end_session(&stale.target),
                source.end_session(&stale.source)
            );
        }
        let session = format!(
            "{}{}{}",
            self.ledger
                .session_sql()
                .map(|s| format!("{s}; "))
                .unwrap_or_default(),
            self.options
                .source_encoding
                .as_ref()
                .map(|e| format!("SET client_encoding = {}; ", literal(e)))
                .unwrap_or_default(),
            SET_LOCK_TIMEOUT.replace(
                "$1",
                &literal(&format!("{}ms", self.options.lock_timeout.as_millis()))
            ),
        );
        target
            .client
            .batch_execute(&session)
            .await
            .map_err(|e| Error::postgres(Kind::Copy, Side::Target, "setting up the session", e))?;
        self.adopt_snapshot(&source, &target).await?;
        Ok(Pair { source, target })
    }

    /// Starts `source`'s transaction on the run's snapshot. If the connection holding it
    /// is gone, so is the snapshot: a new one is exported (on a new holder) and adopted,
    /// and the report will say that the tables loaded from then on read a later instant
    /// (as does the ledger, through `target`, before the lock on the snapshot is let go:
    /// no unit reads the new snapshot before that is recorded).
    async fn adopt_snapshot(&self, source: &Connection, target: &Connection) -> Result<()> {
        // A SQL_ASCII source validates what it sends against the client encoding: the
        // declared one lets its bytes through as they are (the target converts them).
        let encoding = self
            .options
            .source_encoding
            .as_ref()
            .map(|e| format!("SET client_encoding = {}; ", literal(e)))
            .unwrap_or_default();
        let adopt = |id: &str| {
            format!(
                "{encoding}{SOURCE_BEGIN}; SET TRANSACTION SNAPSHOT {}",
                literal(id)
            )
        };
        let err = |e| Error::postgres(Kind::Copy, Side::Source, "adopting the snapshot", e);
        let mut snapshot = self.snapshot.lock().await;
        let first = source.client.batch_execute(&adopt(&snapshot.id)).await;
        let Err(first) = first else {
            return Ok(());
        };
        let holder_alive = tokio::time::timeout(
            Duration::from_secs(10),
            snapshot.holder.connection().client.simple_query("SELECT 1"),
        )
        .await
        .is_ok_and(|r| r.is_ok());
        if holder_alive {
            return Err(err(first));
        }
        if let Some(sql) = self.ledger.renewed_sql() {
            target.client.batch_execute(&sql).await.map_err(|e| {
                Error::postgres(Kind::Copy, Side::Target, "recording the new snapshot", e)
            })?;
        }
        let fresh = connect(&self.source_info, Side::Source).await?;
        let exported = export_snapshot(&fresh).await?;
        snapshot.holder = Holder::Renewed(Box::new(fresh));
        snapshot.id = exported.id;
        self.renewed.store(true, Ordering::SeqCst);
        self.event(Event::SnapshotRenewed {
            reason: crate::error::describe_pg(&first),
        });
        source
            .client
            .batch_execute(&format!("{ROLLBACK}; {}", adopt(&snapshot.id)))
            .await
            .map_err(err)
    }

    /// Whether the target session `backend` is working on a statement, asked on a new
    /// connection. A target that cannot be reached, or a session gone, is not busy.
    fn busy<'b>(&'b self, backend: &'b Backend) -> pump::Busy<'b> {
        Box::pin(async move {
            let Ok(probe) = connect(&self.target_info, Side::Target).await else {
                return false;
            };
            probe
                .client
                .query_opt(SESSION_BUSY, &[&backend.pid, &backend.started])
                .await
                .ok()
                .flatten()
                .and_then(|r| r.get::<_, Option<bool>>(0))
                .unwrap_or(false)
        })
    }

    /// Who holds locks on the tables `unit` works on, as one line for the user.
    async fn lock_holders(&self, unit: &Unit, target: &Client) -> String {
        let mut names: Vec<&TableName> = unit
            .completes
            .iter()
            .map(|&i| &self.work.tables[i].target)
            .collect();
        names.extend(unit.ops.iter().filter_map(|op| match op {
            Op::Copy { table, .. } => Some(&self.work.tables[*table].target),
            _ => None,
        }));
        let schemas: Vec<&str> = names.iter().map(|t| t.schema.as_str()).collect();
        let tables: Vec<&str> = names.iter().map(|t| t.name.as_str()).collect();
        let Ok(rows) = target.query(LOCK_HOLDERS, &[&schemas, &tables]).await else {
            return String::new();
        };
        rows.iter()
            .map(|r| {
                format!(
                    "pid {} ({}, {}, in a transaction since {}): {}",
                    r.get::<_, i32>(0),
                    match r.get::<_, String>(1) {
                        a if a.is_empty() => "no application_name".to_string(),
                        a => format!("application_name {a}"),
                    },
                    r.get::<_, String>(2),
                    r.get::<_, String>(3),
                    r.get::<_, String>(4)
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// One worker: takes ready units until none is left, on its own connection pair, and
/// retries a unit that failed transiently ([`crate::retry::with_retries`]).
async fn worker<L: Ledger>(ctx: &Ctx<'_, L>, w: usize) -> Result<()> {
    let mut conns = Conns::default();
    while let Some(u) = ctx.next_unit().await {
        let unit = &ctx.work.units[u];
        ctx.start(unit);
        let outcome = crate::retry::with_retries(
            &ctx.options.retry,
            |f: &Failed| !f.stopping && f.error.is_transient(),
            async |_| conns.attempt(ctx, unit, w).await,
            async |attempt, f: &Failed, delay| {
                ctx.retries.fetch_add(1, Ordering::SeqCst);
                ctx.event(Event::Retrying {
                    unit: unit.title.clone(),
                    attempt,
                    retries: ctx.options.retry.retries,
                    delay,
                    reason: f.reason.clone(),
                });
            },
        )
        .await;
        let failed = match outcome {
            Ok((rows, bytes)) => {
                ctx.succeed(u, &rows, bytes);
                continue;
            }
            Err(f) if f.stopping => return Ok(()),
            Err(f) => f.error,
        };
        // For good. A new pair for the next unit: this one may be mid-stream.
        if let Some(p) = conns.pair.take() {
            let _ = p.target.client.batch_execute(ROLLBACK).await;
            ctx.cancels.locked().remove(&w);
        }
        let err = ctx.locate_bad_bytes(failed, unit).await;
        let err = explain(err, unit, ctx.work);
        if ctx.options.fail_fast {
            ctx.stopping.store(true, Ordering::SeqCst);
            ctx.changed.notify_waiters();
            return Err(err);
        }
        ctx.fail(u, err);
    }
    Ok(())
}

/// A worker's connections: its pair, and the server sessions of a pair it gave up on
/// (which may live on, holding the unit's locks, until the next pair ends them).
#[derive(Default)]
struct Conns {
    pair: Option<Pair>,
    stale: Option<PairBackends>,
}

/// A unit's attempt that failed: the error, what to say if it is retried, and whether
/// the run is stopping (then nothing is retried).
struct Failed {
    error: Error,
    reason: String,
    stopping: bool,
}

impl Conns {
    /// One attempt at `unit`, on the pair (opened first if there is none). A transient
    /// failure leaves the connections ready for the next attempt: a lost race or a lock
    /// wait rolls back and keeps them (and names who holds the lock); anything else
    /// gives the pair up, its sessions to be ended before the next one works.
    async fn attempt<L: Ledger>(
        &mut self,
        ctx: &Ctx<'_, L>,
        unit: &Unit,
        w: usize,
    ) -> std::result::Result<(Vec<(usize, u64)>, u64), Failed> {
        let result = match &self.pair {
            Some(p) => run_unit(ctx, unit, p).await,
            None => match ctx.open_pair(self.stale.as_ref()).await {
                Ok(p) => {
                    self.stale = None;
                    ctx.cancels
                        .locked()
                        .insert(w, [p.source.canceller(), p.target.canceller()]);
                    let p = self.pair.insert(p);
                    run_unit(ctx, unit, p).await
                }
                Err(e) => Err(e),
            },
        };
        let error = match result {
            Ok(done) => return Ok(done),
            Err(error) => error,
        };
        let stopping = ctx.stopping.load(Ordering::SeqCst);
        let mut reason = error.message().to_string();
        if !stopping && error.is_transient() {
            let raced = error.is_catalog_race()
                || matches!(
                    error.sql_state(),
                    Some(s) if *s == SqlState::LOCK_NOT_AVAILABLE
                        || *s == SqlState::T_R_DEADLOCK_DETECTED
                        || *s == SqlState::T_R_SERIALIZATION_FAILURE
                );
            let kept = match &self.pair {
                Some(p) if raced => p.target.client.batch_execute(ROLLBACK).await.is_ok(),
                _ => false,
            };
            match (&self.pair, kept) {
                (Some(p), true) => {
                    let holders = ctx.lock_holders(unit, &p.target.client).await;
                    if !holders.is_empty() {
                        reason = format!("waiting for a lock held by {holders}");
                    }
                }
                _ => {
                    if let Some(p) = self.pair.take() {
                        self.stale = Some(p.backends());
                        ctx.cancels.locked().remove(&w);
                    }
                }
            }
        }
        Err(Failed {
            error,
            reason,
            stopping,
        })
    }
}

/// The titles of `blocked` units, for a failure's report: the parts of one table are
/// counted rather than listed.
fn blocked_titles(work: &Work, blocked: &[usize]) -> Vec<String> {
    let mut parts: BTreeMap<usize, usize> = BTreeMap::new();
    let mut titles = Vec::new();
    for &b in blocked {
        let unit = &work.units[b];
        match (unit.kind, unit.ops.first()) {
            (UnitKind::Part, Some(Op::Copy { table, .. })) => {
                *parts.entry(*table).or_default() += 1
            }
            _ => titles.push(unit.title.clone()),
        }
    }
    for (table, n) in parts {
        titles.push(format!(
            "{}: {n} part{}",
            work.tables[table].target,
            if n == 1 { "" } else { "s" }
        ));
    }
    titles
}

/// The target could not read bytes the source sent in its encoding.
fn is_bad_bytes(err: &Error) -> bool {
    matches!(err.sql_state(), Some(state)
        if *state == SqlState::CHARACTER_NOT_IN_REPERTOIRE
            || *state == SqlState::UNTRANSLATABLE_CHARACTER)
}

/// Adds what the user needs to know to a unit's final error.
fn explain(err: Error, unit: &Unit, work: &Work) -> Error {
    if err.sql_state() == Some(&SqlState::DISK_FULL) {
        let bytes: i64 = unit
            .completes
            .iter()
            .map(|&i| work.tables[i].estimated_bytes)
            .sum::<i64>()
            .max(unit.estimated_bytes);
        return err.context(format!(
            "The target ran out of disk space loading {} (about {} on the source): free some \
             or grow its storage, then run the same command with --resume.",
            unit.title,
            crate::text::human_bytes(bytes.max(0) as u64)
        ));
    }
    err
}

/// What a unit is doing, for error messages.
fn doing(unit: &Unit) -> String {
    match unit.kind {
        UnitKind::Prepare => "creating schemas, types, sequences and functions".into(),
        UnitKind::PostData => "creating foreign keys, views and triggers".into(),
        _ => format!("loading {}", unit.title),
    }
}

/// Runs `unit` as one transaction on `pair`: its statements pipelined around its COPY
/// streams, its ledger record just before COMMIT. Returns rows per table and the bytes
/// read.
async fn run_unit<L: Ledger>(
    ctx: &Ctx<'_, L>,
    unit: &Unit,
    pair: &Pair,
) -> Result<(Vec<(usize, u64)>, u64)> {
    let doing = doing(unit);
    let skip = match unit.kind {
        UnitKind::PostData => ctx.salvaged.locked().clone(),
        _ => BTreeSet::new(),
    };
    let (pieces, synced) = resolve(ctx, unit, &skip, pair).await?;
    // Recorded now, counted only if the unit commits (a retry finds them again).
    let record_sync = || {
        for (table, stats) in &synced {
            {
                let mut s = ctx.tables[*table].sync.locked();
                *s = Some(stats.clone());
            }
        }
    };
    let mut head: Vec<String> = ctx.ledger.pending_sql().into_iter().collect();
    head.push(BEGIN.to_string());
    head.push(ctx.search_path.clone());
    // Statements before each COPY, and after the last.
    let mut segments: Vec<(Vec<String>, usize, String, String)> = Vec::new();
    let mut statements = head;
    for piece in pieces {
        match piece {
            Piece::Sql(sql) => statements.push(sql),
            Piece::Copy { table, out, into } => {
                segments.push((std::mem::take(&mut statements), table, out, into));
            }
        }
    }
    let tail = statements;
    let busy = || ctx.busy(&pair.target.backend);
    if segments.is_empty() {
        let table = unit.completes.first().map(|&i| &ctx.work.tables[i]);
        match unit.kind {
            UnitKind::Finish => ctx.event(Event::Phase {
                table: table.map(|t| t.target.clone()),
                what: if table.is_some_and(|t| !t.leaf_staging.is_empty()) {
                    "leaves attached, then keys and indexes"
                } else {
                    "keys and indexes, then the real name"
                },
            }),
            UnitKind::PostData => ctx.event(Event::Phase {
                table: None,
                what: "foreign keys, views, triggers, sequence values",
            }),
            _ => {}
        }
        let mut sql = tail;
        sql.extend(ctx.ledger.record_sql(&unit.id, 0));
        sql.push(COMMIT.to_string());
        let sql = sql.join(";\n");
        pump::watched(
            pair.target.client.batch_execute(&sql),
            ctx.options.stall_timeout,
            &busy,
        )
        .await
        .ok_or_else(|| {
            Error::new(
                kind_of(unit),
                format!(
                    "target server: {doing} failed: no answer for {} s and the server is not \
                     working on it: the connection looks dead",
                    ctx.options.stall_timeout.as_secs()
                ),
            )
            .on(Side::Target)
            .transient(true)
        })?
        .map_err(|e| Error::postgres(kind_of(unit), Side::Target, &doing, e))?;
        record_sync();
        return Ok((Vec::new(), 0));
    }
    let mut rows = Vec::new();
    let mut total = 0u64;
    let last = segments.len() - 1;
    for (k, (setup, table, out, into)) in segments.iter().enumerate() {
        let state = &ctx.tables[*table];
        let name = &ctx.work.tables[*table].target;
        let mut seen = 0u64;
        let added = AtomicU64::new(0);
        let progress = |bytes: u64| {
            let delta = bytes.saturating_sub(seen);
            seen = bytes;
            added.fetch_add(delta, Ordering::Relaxed);
            let now = state.bytes.fetch_add(delta, Ordering::Relaxed) + delta;
            ctx.event(Event::Progress {
                table: name.clone(),
                bytes: now,
            });
        };
        let before = total;
        let finish = |bytes: u64| {
            if k != last {
                return String::new();
            }
            if !tail.is_empty() {
                ctx.event(Event::Phase {
                    table: Some(name.clone()),
                    what: "keys and indexes",
                });
            }
            let mut sql = tail.clone();
            sql.extend(ctx.ledger.record_sql(&unit.id, before + bytes));
            sql.push(COMMIT.to_string());
            sql.join(";\n")
        };
        let streamed = pump::pump(
            &pair.source.client,
            &pair.target.client,
            &pump::Stream {
                copy_out: out,
                copy_in: into,
                setup: &setup.join(";\n"),
            },
            finish,
            &doing,
            ctx.options.stall_timeout,
            &busy,
            progress,
        )
        .await;
        match streamed {
            Ok((r, b)) => {
                rows.push((*table, r));
                total += b;
            }
            Err(e) => {
                // What this attempt counted is gone with its transaction.
                state
                    .bytes
                    .fetch_sub(added.load(Ordering::Relaxed), Ordering::Relaxed);
                return Err(e);
            }
        }
    }
    record_sync();
    Ok((rows, total))
}

fn kind_of(unit: &Unit) -> Kind {
    match unit.kind {
        UnitKind::PostData | UnitKind::Prepare => Kind::Schema,
        _ => Kind::Copy,
    }
}

/// When the post-data unit cannot commit — blocked by a failed table, or failed itself
/// (one foreign key that does not hold, one view that does not parse) — its objects are
/// created one by one instead, each in its own transaction with its record in the
/// ledger: the objects of the tables that did load are kept, and each failure is named.
/// A resume's post-data unit skips the objects recorded.
async fn salvage<L: Ledger>(ctx: &Ctx<'_, L>) {
    let work = ctx.work;
    let Some(post) = work.units.iter().position(|u| u.kind == UnitKind::PostData) else {
        return;
    };
    let (loaded, failed_itself): (BTreeSet<&TableName>, bool) = {
        let schedule = ctx.schedule.locked();
        let state = schedule.state(post);
        if !matches!(state, State::Blocked | State::Failed) {
            return;
        }
        (
            (0..work.tables.len())
                .filter(|&i| {
                    work.units
                        .iter()
                        .position(|u| u.completes.contains(&i))
                        .is_some_and(|u| schedule.state(u) == State::Done)
                })
                .map(|i| &work.tables[i].target)
                .collect(),
            state == State::Failed,
        )
    };
    if loaded.is_empty() {
        return;
    }
    let planned: BTreeSet<&TableName> = work.tables.iter().map(|t| &t.target).collect();
    let Ok(fresh) = connect(&ctx.target_info, Side::Target).await else {
        return;
    };
    let _ = fresh
        .client
        .batch_execute("SET check_function_bodies = off")
        .await;
    let (mut created, mut objects) = (0, 0);
    let mut refused: Vec<String> = Vec::new();
    let done = ctx.salvaged.locked().clone();
    for (k, op) in work.units[post].ops.iter().enumerate() {
        match op {
            Op::Object { .. } if done.contains(&k) => {
                objects += 1;
                created += 1;
            }
            Op::Object { step } => {
                objects += 1;
                let ready = step
                    .needs
                    .iter()
                    .all(|n| loaded.contains(n) || !planned.contains(n));
                if !ready {
                    continue;
                }
                // Each in its own transaction with its record, so a resume's post-data
                // unit knows not to create it again.
                let id = UnitId::PostDataObject(k);
                let mut sql = vec![BEGIN.to_string(), ctx.search_path.clone(), step.sql.clone()];
                sql.extend(ctx.ledger.record_sql(&id, 0));
                sql.push(COMMIT.to_string());
                match fresh.client.batch_execute(&sql.join(";\n")).await {
                    Ok(()) => {
                        ctx.ledger.committed(&id, 0, 0);
                        {
                            let mut s = ctx.salvaged.locked();
                            s.insert(k);
                        }
                        created += 1;
                    }
                    Err(e) => {
                        let _ = fresh.client.batch_execute(ROLLBACK).await;
                        refused.push(format!("{}: {}", step.what, crate::error::describe_pg(&e)));
                    }
                }
            }
            Op::SequenceValues { sequences } => {
                let holder = ctx.snapshot.lock().await;
                let client = &holder.holder.connection().client;
                let values = sequences::sequence_values(sequences, client).await;
                for v in values.into_iter().flatten() {
                    let _ = fresh.client.batch_execute(&v).await;
                }
            }
            _ => {}
        }
    }
    let mut note = if failed_itself {
        format!(
            "\nThe objects that follow the data were then created one by one: {created} of \
             {objects} were, and sequences were set."
        )
    } else {
        format!(
            "\nFor the {} that did load, {created} of the {objects} objects that follow the \
             data (foreign keys, views, triggers, comments, …) were created, and sequences \
             were set.",
            crate::text::plural(loaded.len(), "table", "tables"),
        )
    };
    if !refused.is_empty() {
        note.push_str(&format!(
            " {} failed:\n{}",
            crate::text::plural(refused.len(), "object", "objects"),
            refused
                .iter()
                .take(20)
                .map(|r| format!("    - {r}"))
                .collect::<Vec<_>>()
                .join("\n")
        ));
        if refused.len() > 20 {
            note.push_str(&format!("\n    - and {} more", refused.len() - 20));
        }
    }
    note.push_str("\nFix the cause, then run the same command with --resume to finish the rest.");
    {
        let mut f = ctx.failures.locked();
        let target = f
            .iter()
            .position(|x| x.kind == UnitKind::PostData)
            .unwrap_or(0);
        if let Some(failure) = f.get_mut(target) {
            failure.message.push_str(&note);
        }
    }
}

/// The statements of a unit, resolved (sequence states read from the source now), with
/// its COPY streams in between.
enum Piece {
    Sql(String),
    Copy {
        table: usize,
        out: String,
        into: String,
    },
}

async fn resolve<L: Ledger>(
    ctx: &Ctx<'_, L>,
    unit: &Unit,
    skip: &BTreeSet<usize>,
    pair: &Pair,
) -> Result<(Vec<Piece>, Vec<(usize, SyncStats)>)> {
    let source = &pair.source.client;
    let doing = format!("loading {}", unit.title);
    let mut pieces = Vec::new();
    let mut synced = Vec::new();
    // Deletions found by a sync stage, for the unit's later SyncDelete.
    let mut deletes: BTreeMap<usize, String> = BTreeMap::new();
    // Merges of the rows a sync stage staged, for the unit's later SyncApply.
    let mut applies: BTreeMap<usize, String> = BTreeMap::new();
    for (k, op) in unit.ops.iter().enumerate() {
        match op {
            Op::Object { .. } if skip.contains(&k) => {}
            Op::Copy { table, read, into } => pieces.push(Piece::Copy {
                table: *table,
                out: read.sql(),
                into: into.clone(),
            }),
            Op::SyncSequences { table, sequences } => pieces.extend(
                sequences::sequence_sql(table, sequences, source, &doing)
                    .await?
                    .into_iter()
                    .map(Piece::Sql),
            ),
            Op::SequenceValues { sequences } => pieces.extend(
                sequences::sequence_values(sequences, source)
                    .await?
                    .into_iter()
                    .map(Piece::Sql),
            ),
            Op::SyncStage {
                table,
                spec,
                delete_now,
            } => {
                let hashing = ctx
                    .hashing
                    .get_or_try_init(|| {
                        crate::rowhash::Hashing::choose(
                            source,
                            &pair.target.client,
                            ctx.options.source_encoding.as_deref(),
                        )
                    })
                    .await?;
                let busy = || ctx.busy(&pair.target.backend);
                let watch = crate::sync::Watch {
                    stall: ctx.options.stall_timeout,
                    busy: &busy,
                };
                ctx.event(Event::Phase {
                    table: Some(spec.target.clone()),
                    what: "comparing by hash ranges",
                });
                let recorded =
                    crate::sync::recorded(&pair.target.client, &ctx.options.ledger, spec).await?;
                let diff = crate::sync::diff(
                    source,
                    &pair.target.client,
                    hashing,
                    spec,
                    recorded,
                    Some(&watch),
                )
                .await?;
                pieces.push(Piece::Sql(crate::sync::RESET_PLANS.into()));
                let repair = crate::sync::repair(spec, hashing, &diff, &ctx.options.ledger);
                // Deletes go first when alone (a row inserted with the unique value of
                // one deleted does not collide), after the group's upserts in a group
                // (a parent's row goes after the children's rows that pointed at it
                // moved) — except a multiset's, which nothing can point at, and which
                // must not delete the copies it inserts.
                let (now, later) = match repair.delete {
                    Some(d) if *delete_now || spec.key.is_empty() => (Some(d), None),
                    Some(d) => (None, Some(d)),
                    None => (None, None),
                };
                let (before, after) = if repair.reload {
                    (None, now)
                } else {
                    (now, None)
                };
                pieces.extend(before.map(Piece::Sql));
                if let Some(upsert) = repair.upsert {
                    pieces.push(Piece::Sql(upsert.create_staging));
                    pieces.push(Piece::Copy {
                        table: *table,
                        out: upsert.copy_out,
                        into: upsert.copy_in,
                    });
                    applies.insert(*table, upsert.apply);
                }
                // A reload's delete reads the staging table the COPY filled.
                pieces.extend(after.map(Piece::Sql));
                if let Some(d) = later {
                    deletes.insert(*table, d);
                }
                pieces.extend(repair.record.into_iter().map(Piece::Sql));
                synced.push((*table, diff.stats));
            }
            Op::SyncDelete { table } => pieces.extend(deletes.remove(table).map(Piece::Sql)),
            Op::SyncApply { table } => pieces.extend(applies.remove(table).map(Piece::Sql)),
            other => pieces.extend(other.statement().map(Piece::Sql)),
        }
    }
    Ok((pieces, synced))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_search_path_setting_splits_as_the_server_reads_it() {
        assert_eq!(split_search_path("\"$user\", public"), ["$user", "public"]);
        assert_eq!(
            split_search_path(" App ,\"Sales, \"\"EU\"\"\" , x "),
            ["app", "Sales, \"EU\"", "x"]
        );
        assert!(split_search_path("").is_empty());
        assert!(split_search_path("\"\"").is_empty());
    }

    #[test]
    fn the_target_search_path_is_computed_by_the_target_per_transaction() {
        let sql = search_path_sql("\"$user\", public, it's");
        assert!(sql.contains("ARRAY['$user', 'public', 'it''s']"), "{sql}");
        assert!(sql.ends_with("true)"), "local to the transaction: {sql}");
    }
}
