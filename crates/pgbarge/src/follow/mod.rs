//! Following: after a copy, the source's changes applied to the target until a
//! cut-over — exactly once, across crashes.
//!
//! Before the copy's snapshot is taken, a publication and a logical replication slot
//! (`pgoutput`) are created on the source ([`begin`]). Every transaction that commits
//! after the slot exists is in its stream; those the copy's snapshot saw are already in
//! the copied rows and are skipped, by their transaction id against the snapshot
//! recorded with the follow — so copy and stream meet exactly, with no replication
//! protocol needed to export the slot's own snapshot.
//!
//! A round ([`Follower::round`]) reads up to [`ROUND_CHANGES`] changes (whole
//! transactions) from the slot without consuming them, applies their net effect in one
//! target transaction ([`apply`]) together with the position reached ([`state`]), and
//! only then moves the slot on. Killed at any point, a follower restarts from the
//! target's recorded position: transactions before it are skipped, none is lost.
//!
//! A change of a followed table's columns arrives as a new relation message: added and
//! dropped columns are done on the target in the same transaction; anything else stops
//! following with the table and change named, before any later change is applied.

pub mod apply;
pub mod copied;
pub mod cutover;
pub mod pgoutput;
mod pipeline;
pub mod resume;
pub mod source;
pub mod state;
pub mod triggers;

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::time::{Duration, Instant};

use futures_util::{FutureExt, TryStreamExt};
use serde::Serialize;
use tokio_postgres::types::Type;

use crate::catalog::TableName;
use crate::connect::{connect, Connection};
use crate::error::{Error, Kind, Result, Side};
use crate::quote::ident;

use apply::{Change, Shape, Statement, Window};
use pgoutput::{Lsn, Message, Relation};
use pipeline::Pipeline;
pub use state::{FollowedTable, Following};

use crate::ledger::Store;

/// Changes read from the slot per round (whole transactions: a round may hold more).
pub const ROUND_CHANGES: i32 = 200_000;

/// Rows gathered before they are written, within a round: bounds memory whatever the
/// size of a source transaction.
const WINDOW_ROWS: usize = 20_000;

/// Rows read ahead from the source while the target applies.
const READ_AHEAD: usize = 8192;

/// How long to wait between rounds when nothing new was found.
const IDLE: Duration = Duration::from_millis(250);

/// How long a running follower has to stop when another pgbarge takes over before its
/// session is ended.
const PATIENCE: Duration = Duration::from_secs(5);

/// How long a read or statement may go unanswered before the link is taken for dead. Long:
/// decoding a huge source transaction gives no row until it is decoded whole.
pub const DEFAULT_STALL: Duration = Duration::from_secs(300);

/// How long to wait for a connection already given up to answer.
const GIVE_UP: Duration = Duration::from_secs(5);

/// Microseconds from the Unix epoch to PostgreSQL's (2000-01-01).
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// A new follow's slot and publication name: `pgbarge_` and 12 hex digits.
pub fn new_name() -> String {
    format!(
        "pgbarge_{:012x}",
        (crate::retry::jitter() * (1u64 << 48) as f64) as u64
    )
}

/// Creates the publication and slot for `tables` (source → target) and records the
/// follow on the target, the copy yet to come. Call [`source::check`] first.
pub async fn begin(
    source: &Connection,
    target: &Connection,
    store: &Store,
    tables: &[(TableName, TableName)],
) -> Result<Following> {
    if !store.ensure(&target.client).await? {
        return Err(Error::new(
            Kind::Preflight,
            format!(
                "following records its position on the target, in the \"{}\" schema, and \
                 the target role may not create it. Grant it CREATE on the database, or \
                 copy without --follow.",
                store.schema()
            ),
        ));
    }
    let sources: Vec<TableName> = tables.iter().map(|(s, _)| s.clone()).collect();
    let followed: Vec<FollowedTable> = source::stream_columns(&source.client, &sources)
        .await?
        .into_iter()
        .zip(tables)
        .map(|(columns, (from, to))| FollowedTable {
            source: from.clone(),
            target: to.clone(),
            columns,
            snapshot: None,
        })
        .collect();
    let name = new_name();
    state::record(
        &target.client,
        store,
        &name,
        &name,
        &source.info.to_string(),
        &followed,
    )
    .await?;
    if let Err(e) = source::create(&source.client, &name, &name, &sources).await {
        let _ = source::drop(&source.client, &name, &name).await;
        let _ = state::forget(&target.client, store, &name).await;
        return Err(e);
    }
    state::load(&target.client, store).await?.ok_or_else(|| {
        Error::new(Kind::Copy, "the follow just recorded on the target is gone").on(Side::Target)
    })
}

/// Drops `following`'s slot and publication on the source and its record on the target.
pub async fn end(
    source: &Connection,
    target: &Connection,
    store: &Store,
    following: &Following,
) -> Result<()> {
    source::release(&source.client, &following.slot).await?;
    source::drop(&source.client, &following.slot, &following.publication).await?;
    state::forget(&target.client, store, &following.slot).await
}

/// What the follower tells whoever shows progress.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum FollowEvent {
    /// After a round that applied changes, and every few seconds while idle.
    Lag(Lag),
    /// Columns added or dropped on the target, as the source's were.
    Schema {
        table: String,
        change: String,
    },
    Warning {
        message: String,
    },
}

/// How far behind the target is.
#[derive(Debug, Clone, Serialize)]
pub struct Lag {
    pub applied_lsn: Lsn,
    pub source_lsn: Lsn,
    pub behind_bytes: u64,
    /// Since the commit of the oldest source transaction not applied (0 when caught up).
    pub behind_seconds: f64,
    /// Changes applied by this follower.
    pub changes: u64,
    pub changes_per_second: f64,
    /// WAL the slot keeps on the source, bytes.
    pub slot_wal_bytes: Option<i64>,
    pub caught_up: bool,
}

/// Until when to follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Goal {
    /// Until stopped (a signal, or another pgbarge taking over).
    Stopped,
    /// Until every transaction committed before this source position is applied.
    Drained(Lsn),
}

/// Why following ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Ended {
    Signal,
    /// Another pgbarge (`cutover`, `follow`) asked for the follow.
    TakenOver,
    Drained,
}

#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub ended: Ended,
    pub applied_lsn: Option<Lsn>,
    pub changes: u64,
}

/// The source transaction being read, as far as skipping its changes goes.
#[derive(Debug, Default)]
struct Txn {
    /// Committed before the position applied: all of it is on the target.
    applied: bool,
    xid: u32,
    /// Seen by the follow's snapshot (tables with their own are checked apart).
    seen: bool,
}

/// Which transactions the copy's snapshot saw (`pg_current_snapshot()` text).
#[derive(Debug, Clone, PartialEq, Eq)]
struct SnapshotSeen {
    xmin: u64,
    xmax: u64,
    running: HashSet<u64>,
}

impl SnapshotSeen {
    fn parse(text: &str) -> Result<Self> {
        let bad = || Error::new(Kind::Copy, format!("cannot read the snapshot {text:?}"));
        let mut parts = text.split(':');
        let num = |p: Option<&str>| p.and_then(|s| s.parse::<u64>().ok()).ok_or_else(bad);
        let xmin = num(parts.next())?;
        let xmax = num(parts.next())?;
        let running = parts
            .next()
            .unwrap_or("")
            .split(',')
            .filter(|s| !s.is_empty())
            .map(|s| s.parse::<u64>().map_err(|_| bad()))
            .collect::<Result<_>>()?;
        Ok(SnapshotSeen {
            xmin,
            xmax,
            running,
        })
    }

    /// Whether the transaction `xid` (32 bits, as the stream gives it) had committed
    /// when the snapshot was taken. Transactions in the stream are near the snapshot in
    /// xid order, so the epoch is the one that puts `xid` closest to `xmax`.
    fn saw(&self, xid: u32) -> bool {
        let distance = xid.wrapping_sub(self.xmax as u32) as i32 as i64;
        let full = (self.xmax as i64 + distance) as u64;
        full < self.xmin || (full < self.xmax && !self.running.contains(&full))
    }
}

/// The source connection pgbarge reads with, or its replacement after a lost link.
struct Link<'a> {
    given: &'a Connection,
    renewed: Option<Connection>,
}

impl Link<'_> {
    fn get(&self) -> &Connection {
        self.renewed.as_ref().unwrap_or(self.given)
    }

    async fn renew(&mut self) -> Result<()> {
        let fresh = connect(&self.given.info, self.given.side).await?;
        self.renewed = Some(fresh);
        Ok(())
    }
}

/// How a follower works.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// How long a statement or read may go without an answer before the link is taken
    /// for dead and renewed (`--stall-timeout`).
    pub stall_timeout: Duration,
    /// How often and how long a lost link is retried (`--retries`).
    pub retry: crate::retry::RetryPolicy,
    /// Apply even though the target's ordinary triggers will fire on the changes (the
    /// role may not apply as a replica: see [`triggers`]; `--fire-triggers`).
    pub fire_triggers: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            stall_timeout: DEFAULT_STALL,
            retry: crate::retry::RetryPolicy::default(),
            fire_triggers: false,
        }
    }
}

/// A follower at work.
pub struct Follower<'a> {
    source: Link<'a>,
    target: Link<'a>,
    /// A second source connection for catalog lookups while the first streams changes.
    lookup: Connection,
    following: Following,
    /// Where the follow is recorded on the target.
    store: Store,
    /// How applied changes fire the target's triggers (see [`triggers`]), and whether
    /// the user accepted ordinary ones firing where the role cannot prevent it.
    firing: triggers::Firing,
    fire_triggers: bool,
    /// What the copy's snapshot saw: those transactions are in the copied rows.
    seen: Option<SnapshotSeen>,
    /// Tables copied from another snapshot (a resumed followed copy keeps the tables
    /// its first run completed), by relation id, filtered by that snapshot instead.
    seen_by: HashMap<u32, SnapshotSeen>,
    applied: Option<Lsn>,
    /// The stream's relation ids, as followed tables' shapes.
    shapes: HashMap<u32, Shape>,
    /// Each followed table's target columns and types, by table index.
    target_columns: Vec<Vec<(String, String)>>,
    /// Each followed table's target columns whose values are equal exactly when their
    /// text is (integers, uuid, text in a deterministic collation, …; not numeric, not
    /// citext), by table index: see [`Shape::exact_key`].
    exact_columns: Vec<HashSet<String>>,
    /// Each followed table's target columns whose type is `pg_catalog`'s (whose casts
    /// from text only a superuser can make), by table index: see
    /// [`Shape::literal_rows`]. A column added while following is not among them.
    builtin_columns: Vec<HashSet<String>>,
    /// Each followed table's unique keys on the target (column names, sorted), by table
    /// index.
    unique_keys: Vec<Vec<Vec<String>>>,
    /// Foreign-key order of the target tables, parents first.
    ranks: HashMap<TableName, usize>,
    type_names: HashMap<(u32, i32), String>,
    tables_changed: bool,
    /// The commit position of a source transaction following cannot apply (a column
    /// change it does not make): the rounds stop just before it.
    stopped_at: Option<Lsn>,
    stall: Duration,
    retry: crate::retry::RetryPolicy,
    changes: u64,
    started: Instant,
    rate: (Instant, u64),
}

/// The target's columns with their types, for every followed table at once: (position
/// in the list given, 1-based; column; type).
const TARGET_COLUMNS: &str = "SELECT t.n::int, a.attname::text, \
    pg_catalog.format_type(a.atttypid, a.atttypmod), \
    a.atttypid IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype, 'oid'::regtype, \
      'uuid'::regtype, 'text'::regtype, 'varchar'::regtype, 'bpchar'::regtype, \
      'bytea'::regtype, 'bool'::regtype, 'date'::regtype, 'timestamp'::regtype, \
      'timestamptz'::regtype) \
    AND coalesce((SELECT c.collisdeterministic FROM pg_catalog.pg_collation c \
                  WHERE c.oid = a.attcollation), true), \
    (SELECT y.typnamespace = 'pg_catalog'::pg_catalog.regnamespace \
       FROM pg_catalog.pg_type y WHERE y.oid = a.atttypid) \
    FROM unnest($1::text[]) WITH ORDINALITY AS t(name, n) \
    JOIN pg_catalog.pg_attribute a ON a.attrelid = pg_catalog.to_regclass(t.name) \
    WHERE a.attnum > 0 AND NOT a.attisdropped ORDER BY t.n, a.attnum";

/// An added column's default, if existing rows took it (see `Follower::added_default`).
const ADDED_DEFAULT: &str = "SELECT pg_catalog.pg_get_expr(d.adbin, d.adrelid) \
    FROM pg_catalog.pg_attribute a \
    JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
    WHERE a.attrelid = pg_catalog.to_regclass($1) AND a.attname = $2 AND a.atthasmissing";

/// The columns of each unique index an `ON CONFLICT` can name, for every followed table:
/// (position in the list given, 1-based; columns). Not partial, not on expressions, not
/// deferrable, and valid.
const TARGET_UNIQUE_KEYS: &str = "SELECT t.n::int, \
    ARRAY(SELECT a.attname::text FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(num, ord) \
      JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.num \
      WHERE k.ord <= i.indnkeyatts ORDER BY a.attname) \
    FROM unnest($1::text[]) WITH ORDINALITY AS t(name, n) \
    JOIN pg_catalog.pg_index i ON i.indrelid = pg_catalog.to_regclass(t.name) \
    WHERE i.indisunique AND i.indisvalid AND i.indimmediate \
      AND i.indpred IS NULL AND i.indexprs IS NULL";

/// Foreign keys among the target tables: (child, parent).
const TARGET_REFERENCES: &str =
    "SELECT DISTINCT c.conrelid::regclass::text, c.confrelid::regclass::text \
    FROM pg_catalog.pg_constraint c WHERE c.contype = 'f' \
      AND c.conrelid = ANY ($1::text[]::regclass[]) AND c.confrelid = ANY ($1::text[]::regclass[]) \
      AND c.conrelid <> c.confrelid";

impl<'a> Follower<'a> {
    /// Takes the follow recorded on `target` over (stopping a follower still running),
    /// ready to apply from the recorded position.
    pub async fn claim(
        source: &'a Connection,
        target: &'a Connection,
        store: &Store,
    ) -> Result<(Self, bool)> {
        let Some(following) = state::load(&target.client, store).await? else {
            return Err(Error::usage(
                "nothing is being followed: no follow is recorded on the target. Start one \
                 with `pgbarge copy --follow …`.",
            ));
        };
        let Some(snapshot) = following.snapshot.clone() else {
            return Err(Error::usage(format!(
                "the copy that started following (slot {}) has not finished, so the \
                 stream has nothing exact to start from yet. Finish it with `pgbarge copy \
                 --follow --resume …` (it follows once copied), or give it up with \
                 `pgbarge follow --drop`.",
                following.slot
            )));
        };
        if following.source != source.info.to_string() {
            return Err(Error::usage(format!(
                "the follow recorded on the target reads from {}, not from {}: give that \
                 --source.",
                following.source, source.info
            )));
        }
        let replaced = state::claim(&target.client, store, &following.slot, PATIENCE).await?;
        source::release(&source.client, &following.slot).await?;
        let lookup = connect(&source.info, Side::Source).await?;
        let mut follower = Follower {
            applied: following.applied_lsn(),
            seen: Some(SnapshotSeen::parse(&snapshot)?),
            seen_by: HashMap::new(),
            source: Link {
                given: source,
                renewed: None,
            },
            target: Link {
                given: target,
                renewed: None,
            },
            lookup,
            store: store.clone(),
            firing: triggers::Firing::default(),
            fire_triggers: false,
            target_columns: Vec::new(),
            exact_columns: Vec::new(),
            builtin_columns: Vec::new(),
            unique_keys: Vec::new(),
            ranks: HashMap::new(),
            shapes: HashMap::new(),
            type_names: HashMap::new(),
            tables_changed: false,
            stopped_at: None,
            stall: DEFAULT_STALL,
            retry: crate::retry::RetryPolicy::default(),
            changes: 0,
            started: Instant::now(),
            rate: (Instant::now(), 0),
            following,
        };
        follower.read_target().await?;
        Ok((follower, replaced))
    }

    pub fn following(&self) -> &Following {
        &self.following
    }

    /// The connections in use (new ones after a lost link): source, target.
    pub fn connections(&self) -> (&Connection, &Connection) {
        (self.source.get(), self.target.get())
    }

    /// Reads the target tables' columns and foreign-key order.
    async fn read_target(&mut self) -> Result<()> {
        let targets: Vec<TableName> = self
            .following
            .tables
            .iter()
            .map(|t| t.target.clone())
            .collect();
        let session = &self.target.get().client;
        self.firing = if triggers::apply_as_replica(session).await? {
            triggers::Firing {
                replica: true,
                ..Default::default()
            }
        } else {
            triggers::differing(session, Side::Target, &targets).await?
        };
        let target = &self.target.get().client;
        let err = |e| Error::postgres(Kind::Copy, Side::Target, "reading the followed tables", e);
        let names: Vec<String> = self
            .following
            .tables
            .iter()
            .map(|t| t.target.sql())
            .collect();
        // The three reads go out together: one round trip to a far target, not six.
        let param: [(&(dyn tokio_postgres::types::ToSql + Sync), Type); 1] =
            [(&names, Type::TEXT_ARRAY)];
        let typed = |sql| target.query_typed(sql, &param);
        let (column_rows, key_rows, reference_rows) = tokio::try_join!(
            typed(TARGET_COLUMNS),
            typed(TARGET_UNIQUE_KEYS),
            typed(TARGET_REFERENCES)
        )
        .map_err(err)?;
        let mut columns: Vec<Vec<(String, String)>> = vec![Vec::new(); names.len()];
        let mut exact: Vec<HashSet<String>> = vec![HashSet::new(); names.len()];
        let mut builtin: Vec<HashSet<String>> = vec![HashSet::new(); names.len()];
        for row in column_rows {
            let i = (row.get::<_, i32>(0) - 1) as usize;
            if let (Some(list), Some(exact), Some(builtin)) =
                (columns.get_mut(i), exact.get_mut(i), builtin.get_mut(i))
            {
                if row.get::<_, bool>(3) {
                    exact.insert(row.get(1));
                }
                if row.get::<_, bool>(4) {
                    builtin.insert(row.get(1));
                }
                list.push((row.get(1), row.get(2)));
            }
        }
        self.exact_columns = exact;
        self.builtin_columns = builtin;
        if let Some(gone) = columns.iter().position(Vec::is_empty) {
            return Err(Error::new(
                Kind::Copy,
                format!(
                    "the followed table {} is not on the target any more; following cannot \
                     go on (`pgbarge follow --drop` ends it).",
                    self.following.tables[gone].target
                ),
            )
            .on(Side::Target));
        }
        self.target_columns = columns;
        let mut unique_keys: Vec<Vec<Vec<String>>> = vec![Vec::new(); names.len()];
        for row in key_rows {
            if let Some(list) = unique_keys.get_mut((row.get::<_, i32>(0) - 1) as usize) {
                list.push(row.get(1));
            }
        }
        self.unique_keys = unique_keys;
        let edges: Vec<(String, String)> = reference_rows
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        let mut graph = petgraph::graph::DiGraph::<usize, ()>::new();
        let nodes: Vec<_> = (0..names.len()).map(|i| graph.add_node(i)).collect();
        let index = |name: &str| {
            names
                .iter()
                .position(|n| n == name || n.rsplit('.').next() == Some(name))
        };
        for (child, parent) in &edges {
            if let (Some(c), Some(p)) = (index(child), index(parent)) {
                graph.add_edge(nodes[p], nodes[c], ());
            }
        }
        // A cycle has no order that always works: the given order, and a failing flush
        // falls back to the source's own order.
        let order: Vec<usize> = petgraph::algo::toposort(&graph, None)
            .map(|o| o.into_iter().map(|n| graph[n]).collect())
            .unwrap_or_else(|_| (0..names.len()).collect());
        self.ranks = order
            .into_iter()
            .enumerate()
            .map(|(rank, i)| (self.following.tables[i].target.clone(), rank))
            .collect();
        self.shapes.clear();
        Ok(())
    }

    /// Works as `options` say from now on.
    pub fn configure(&mut self, options: &Options) {
        self.stall = options.stall_timeout;
        self.retry = options.retry;
        self.fire_triggers = options.fire_triggers;
    }

    /// Applies changes until `goal`, or `stop` resolves, or another pgbarge takes over.
    /// Transient failures (a lost link, a restarted server) reconnect and go on from the
    /// recorded position.
    pub async fn run(
        &mut self,
        goal: Goal,
        stop: impl Future<Output = ()>,
        on_event: &(dyn Fn(FollowEvent) + Send + Sync),
    ) -> Result<Outcome> {
        if !self.fire_triggers && !self.firing.as_native() {
            return Err(self.firing.refusal());
        }
        let mut strict = false;
        let mut last_shown = Instant::now() - Duration::from_secs(60);
        tokio::pin!(stop);
        let ended = loop {
            if (&mut stop).now_or_never().is_some() {
                break Ended::Signal;
            }
            // Where WAL is on disk before the round reads: if that is past the goal and the
            // round finds nothing, nothing is left (read after, a flush in between would
            // end the drain before the round could see what it flushed).
            let flushed = match goal {
                Goal::Drained(_) => Some(source::positions(&self.source.get().client).await?.1),
                Goal::Stopped => None,
            };
            let (round, lag) = match self
                .round_retried(goal, strict, &mut last_shown, on_event)
                .await
            {
                Ok(Some(r)) => {
                    strict = false;
                    r
                }
                // Another pgbarge asked for the follow (and ended this one's session to
                // get it) while this one reconnected: let it have it.
                Ok(None) => break Ended::TakenOver,
                Err(e) if is_constraint(&e) && !strict => {
                    // The net effect broke a constraint the source's order kept: the same
                    // changes again, one at a time.
                    self.rollback().await;
                    strict = true;
                    continue;
                }
                Err(e) => {
                    self.rollback().await;
                    if let Some(at) = self.stopped_at.take() {
                        // A change following cannot make: what committed before it is
                        // applied first, so that the target stops exactly there.
                        self.round(Goal::Drained(at), true).await?;
                    }
                    return Err(e);
                }
            };
            if round.stop_requested {
                break Ended::TakenOver;
            }
            if let Some((lag, warning)) = lag {
                if let Some(w) = warning {
                    on_event(FollowEvent::Warning { message: w });
                }
                on_event(FollowEvent::Lag(lag));
            }
            for (table, change) in round.schema {
                on_event(FollowEvent::Schema { table, change });
            }
            if let (Goal::Drained(until), Some(flushed)) = (goal, flushed) {
                if round.commits == 0 && flushed >= until {
                    break Ended::Drained;
                }
            }
            if round.commits == 0 {
                if goal == Goal::Stopped
                    && state::stop_requested(
                        &self.target.get().client,
                        &self.store,
                        &self.following.slot,
                    )
                    .await?
                {
                    break Ended::TakenOver;
                }
                tokio::select! {
                    biased;
                    () = &mut stop => break Ended::Signal,
                    () = tokio::time::sleep(IDLE) => {}
                }
            }
        };
        if ended != Ended::TakenOver {
            state::release(&self.target.get().client, &self.following.slot).await;
        }
        Ok(Outcome {
            ended,
            applied_lsn: self.applied,
            changes: self.changes,
        })
    }

    /// One round and the lag read with it (so that a source that stopped answering its
    /// questions is a lost link like any other, not the end of following), tried again
    /// on new connections after a transient failure, as the retry policy allows.
    /// `Ok(None)`: another pgbarge asked for the follow meanwhile.
    async fn round_retried(
        &mut self,
        goal: Goal,
        strict: bool,
        last_shown: &mut Instant,
        on_event: &(dyn Fn(FollowEvent) + Send + Sync),
    ) -> Result<Option<(Round, Option<(Lag, Option<String>)>)>> {
        let policy = self.retry;
        crate::retry::with_retries(
            &policy,
            Error::is_transient,
            async |attempt| {
                if attempt > 0 && !self.reconnect().await? {
                    return Ok(None);
                }
                let round = self.round(goal, strict).await?;
                let caught_up = round.changes == 0;
                let lag = if !caught_up || last_shown.elapsed() > Duration::from_secs(2) {
                    *last_shown = Instant::now();
                    let stall = self.stall;
                    let lag = self.lag(round.behind_since, caught_up);
                    Some(answered(stall, Side::Source, lag).await?)
                } else {
                    None
                };
                Ok(Some((round, lag)))
            },
            async |attempt, e: &Error, _| {
                on_event(FollowEvent::Warning {
                    message: format!("{}; reconnecting (attempt {attempt})", e.message()),
                })
            },
        )
        .await
    }

    /// Rolls the round's transaction back; a connection that does not answer is given
    /// up (its session is ended by the next claim).
    async fn rollback(&self) {
        let _ =
            tokio::time::timeout(GIVE_UP, self.target.get().client.batch_execute("ROLLBACK")).await;
    }

    /// New connections after a transient failure, the follow claimed again. The old
    /// target session, if it still answers, lets go of its transaction and lock first;
    /// if it does not (a dead link), the claim ends it, and the slot's reader too.
    /// `Ok(false)`: another pgbarge has asked for the follow (its claim may be what
    /// ended this one's session), so this one stops instead of taking it back.
    async fn reconnect(&mut self) -> Result<bool> {
        self.rollback().await;
        let _ = tokio::time::timeout(
            GIVE_UP,
            state::release(&self.target.get().client, &self.following.slot),
        )
        .await;
        self.source.renew().await?;
        self.target.renew().await?;
        let slot = self.following.slot.clone();
        if state::stop_requested(&self.target.get().client, &self.store, &slot).await? {
            return Ok(false);
        }
        self.lookup = connect(&self.source.given.info, Side::Source).await?;
        state::claim(&self.target.get().client, &self.store, &slot, PATIENCE).await?;
        source::release(&self.source.get().client, &slot).await?;
        if let Some(f) = state::load(&self.target.get().client, &self.store).await? {
            self.applied = f.applied_lsn();
            self.following = f;
        }
        self.read_target().await?;
        Ok(true)
    }

    /// The lag now, and a warning when the slot is close to being invalidated.
    async fn lag(
        &mut self,
        behind_since: Option<i64>,
        caught_up: bool,
    ) -> Result<(Lag, Option<String>)> {
        let slot = source::slot_state(&self.lookup.client, &self.following.slot).await?;
        let current = match &slot {
            Some(s) => s.current,
            None => source::positions(&self.lookup.client).await?.0,
        };
        // Before the first change applied, the slot's own start is where the target is.
        let applied = match (self.applied, slot.as_ref().and_then(|s| s.confirmed)) {
            (Some(a), _) => a,
            (None, Some(confirmed)) => confirmed,
            (None, None) => current,
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros() as i64)
            .unwrap_or_default();
        let behind_seconds = match behind_since {
            Some(commit) if !caught_up => ((now - PG_EPOCH_MICROS - commit).max(0)) as f64 / 1e6,
            _ => 0.0,
        };
        let (since, counted) = self.rate;
        let elapsed = since.elapsed().as_secs_f64().max(1e-3);
        let rate = (self.changes - counted) as f64 / elapsed;
        if elapsed > 5.0 {
            self.rate = (Instant::now(), self.changes);
        }
        let warning = slot.as_ref().and_then(|s| s.warning(&self.following.slot));
        Ok((
            Lag {
                applied_lsn: applied,
                source_lsn: current,
                behind_bytes: current.0.saturating_sub(applied.0),
                behind_seconds,
                changes: self.changes,
                changes_per_second: if self.started.elapsed().as_secs_f64() > 0.0 {
                    rate
                } else {
                    0.0
                },
                slot_wal_bytes: slot.and_then(|s| s.wal_held),
                caught_up,
            },
            warning,
        ))
    }

    /// One round: the next changes from the slot, applied in one target transaction with
    /// the position they reach; then the slot moved on.
    async fn round(&mut self, goal: Goal, strict: bool) -> Result<Round> {
        let started = Instant::now();
        let upto = match goal {
            Goal::Drained(lsn) => Some(lsn),
            Goal::Stopped => None,
        };
        let source = self.source.get();
        let stall = self.stall;
        let stream = answered(
            stall,
            Side::Source,
            source::peek(
                &source.client,
                &self.following.slot,
                &self.following.publication,
                upto,
                ROUND_CHANGES,
            ),
        )
        .await?;
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<tokio_postgres::Row>>(READ_AHEAD);
        // Rows are read ahead while the target applies the ones before: the source's
        // decoding and the target's writing overlap.
        let reader = async move {
            futures_util::pin_mut!(stream);
            loop {
                let next = answered(stall, Side::Source, async {
                    stream.try_next().await.map_err(source::peek_error)
                })
                .await;
                let item = match next {
                    Ok(Some(row)) => Ok(row),
                    Ok(None) => break,
                    Err(e) => Err(e),
                };
                let failed = item.is_err();
                if tx.send(item).await.is_err() || failed {
                    break;
                }
            }
        };
        // The target connection goes to the round's pipeline;
        // the rest of the follower stays free for the relations the round meets.
        let given = self.target.given;
        let link = std::mem::replace(
            &mut self.target,
            Link {
                given,
                renewed: None,
            },
        );
        let round = {
            let mut pipeline = Pipeline::new(&link.get().client, stall);
            let ((), round) =
                tokio::join!(reader, self.apply_rows(rx, &mut pipeline, strict, started));
            round
        };
        self.target = link;
        round
    }

    /// Applies the rows of one round (see [`Follower::round`]) as they arrive.
    async fn apply_rows(
        &mut self,
        mut rows: tokio::sync::mpsc::Receiver<Result<tokio_postgres::Row>>,
        pipeline: &mut Pipeline<'_>,
        strict: bool,
        started: Instant,
    ) -> Result<Round> {
        let stall = self.stall;
        let mut window = if strict {
            Window::strict()
        } else {
            Window::default()
        };
        let mut round = Round::default();
        let mut txn = Txn::default();
        let mut end: Option<Lsn> = None;
        let mut begun = Lsn::default();
        let mut first_row: Option<f64> = None;
        let mut waiting_rows = Duration::ZERO;
        loop {
            let asked = Instant::now();
            let Some(data) = rows.recv().await else {
                break;
            };
            waiting_rows += asked.elapsed();
            first_row.get_or_insert_with(|| started.elapsed().as_secs_f64());
            let data = data?;
            let message = pgoutput::decode(data.get::<_, &[u8]>(0))
                .map_err(|e| Error::new(Kind::Copy, e.to_string()).on(Side::Source))?;
            let mut statements = Vec::new();
            let skip = match &message {
                Message::Insert { relation, .. }
                | Message::Update { relation, .. }
                | Message::Delete { relation, .. } => self.skips(*relation, &txn),
                Message::Truncate { relations, .. } => {
                    relations.iter().all(|r| self.skips(*r, &txn))
                }
                _ => false,
            };
            // Counted as read: a window may cancel changes out (an insert deleted again),
            // and they were still applied.
            if !skip
                && matches!(
                    message,
                    Message::Insert { .. }
                        | Message::Update { .. }
                        | Message::Delete { .. }
                        | Message::Truncate { .. }
                )
            {
                round.changes += 1;
            }
            match message {
                Message::Begin {
                    final_lsn,
                    xid,
                    commit_time,
                } => {
                    begun = final_lsn;
                    txn = Txn {
                        applied: self.applied.is_some_and(|a| final_lsn < a),
                        xid,
                        seen: self.seen.as_ref().is_some_and(|s| s.saw(xid)),
                    };
                    if !txn.applied && !txn.seen && round.behind_since.is_none() {
                        round.behind_since = Some(commit_time);
                    }
                }
                Message::Commit { end_lsn, .. } => {
                    end = Some(end_lsn);
                    round.commits += 1;
                }
                Message::Relation(relation) => {
                    let ddl = match self.relation(relation, &mut round).await {
                        Ok(ddl) => ddl,
                        Err(e) => {
                            self.stopped_at = Some(begun);
                            return Err(e);
                        }
                    };
                    if !ddl.is_empty() {
                        statements.extend(window.flush());
                        statements.extend(ddl.into_iter().map(|sql| Statement {
                            sql,
                            params: Vec::new(),
                        }));
                    }
                }
                Message::Insert { relation, new } if !skip => {
                    statements.extend(self.add(&mut window, relation, Change::Insert(new))?);
                }
                Message::Update { relation, old, new } if !skip => {
                    statements.extend(self.add(
                        &mut window,
                        relation,
                        Change::Update { old, new },
                    )?);
                }
                Message::Delete { relation, old } if !skip => {
                    statements.extend(self.add(&mut window, relation, Change::Delete(old))?);
                }
                Message::Truncate {
                    relations,
                    restart_identity,
                    ..
                } if !skip => {
                    let names: Vec<String> = relations
                        .iter()
                        .filter(|r| !self.skips(**r, &txn))
                        .filter_map(|r| self.shapes.get(r))
                        .map(|s| s.target.sql())
                        .collect();
                    if !names.is_empty() {
                        statements.extend(window.flush());
                        statements.push(Statement {
                            sql: format!(
                                "TRUNCATE {}{}",
                                names.join(", "),
                                if restart_identity {
                                    " RESTART IDENTITY"
                                } else {
                                    ""
                                }
                            ),
                            params: Vec::new(),
                        });
                    }
                }
                _ => {}
            }
            if window.entries() >= WINDOW_ROWS {
                statements.extend(window.flush());
            }
            if !statements.is_empty() {
                pipeline.send(statements).await?;
            }
        }
        let rest = window.flush();
        if !rest.is_empty() {
            pipeline.send(rest).await?;
        }
        round.statements = pipeline.statements;
        round.bytes = pipeline.bytes;
        let Some(end) = end else {
            // Nothing committed in the stream: nothing was sent either.
            return Ok(round);
        };
        let tables = if self.tables_changed {
            Some(state::tables_json(&self.following.tables)?)
        } else {
            None
        };
        let record = state::position_sql(
            &self.store,
            &self.following.slot,
            end,
            round.changes as usize,
            tables.as_deref(),
        );
        let rows = pipeline.finish(&record).await?;
        round.applying = pipeline.waited;
        self.tables_changed = false;
        self.applied = Some(end);
        self.changes += round.changes;
        tracing::debug!(
            changes = round.changes,
            commits = round.commits,
            statements = round.statements,
            bytes = round.bytes,
            apply_s = round.applying.as_secs_f64(),
            first_row_s = first_row.unwrap_or_default(),
            waiting_rows_s = waiting_rows.as_secs_f64(),
            round_s = started.elapsed().as_secs_f64(),
            "round applied"
        );
        round.stop_requested = rows.iter().any(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0) == Some("t"),
            _ => false,
        });
        answered(
            stall,
            Side::Source,
            source::advance(&self.source.get().client, &self.following.slot, end),
        )
        .await?;
        Ok(round)
    }

    /// Adds a row change to the window; statements to run now if it could not be merged.
    fn add(&self, window: &mut Window, relation: u32, change: Change) -> Result<Vec<Statement>> {
        let shape = self.shapes.get(&relation).ok_or_else(|| {
            Error::new(
                Kind::Copy,
                format!("a change of relation {relation} arrived before its description"),
            )
            .on(Side::Source)
        })?;
        Ok(window.add(shape, change))
    }

    /// The type name of a source type (`format_type`), looked up once.
    async fn type_name(&mut self, oid: u32, modifier: i32) -> Result<String> {
        if let Some(name) = self.type_names.get(&(oid, modifier)) {
            return Ok(name.clone());
        }
        let name: String = self
            .lookup
            .client
            .query_one("SELECT pg_catalog.format_type($1, $2)", &[&oid, &modifier])
            .await
            .map_err(|e| Error::postgres(Kind::Copy, Side::Source, "reading a column type", e))?
            .get(0);
        self.type_names.insert((oid, modifier), name.clone());
        Ok(name)
    }

    /// The default an added column gave the rows already in the table, when it gave
    /// them one without rewriting it (`atthasmissing`: a constant default). Read from
    /// the source's catalog now.
    async fn added_default(&self, table: &TableName, column: &str) -> Result<Option<String>> {
        let row = self
            .lookup
            .client
            .query_opt(ADDED_DEFAULT, &[&table.sql(), &column])
            .await
            .map_err(|e| {
                Error::postgres(Kind::Copy, Side::Source, "reading a column default", e)
            })?;
        Ok(row.and_then(|r| r.get(0)))
    }

    /// Whether the current transaction's changes of `relation` are skipped: applied
    /// before, or seen by the snapshot the table was copied from.
    fn skips(&self, relation: u32, txn: &Txn) -> bool {
        txn.applied
            || self
                .seen_by
                .get(&relation)
                .map_or(txn.seen, |s| s.saw(txn.xid))
    }

    /// Takes a relation message in: the table's shape for the changes that follow, and
    /// the DDL that makes the target's columns match the source's again.
    async fn relation(&mut self, relation: Relation, round: &mut Round) -> Result<Vec<String>> {
        let name = TableName::new(relation.schema.clone(), relation.name.clone());
        let Some(i) = self.following.tables.iter().position(|t| t.source == name) else {
            return Ok(Vec::new());
        };
        match &self.following.tables[i].snapshot {
            Some(own) => {
                self.seen_by.insert(relation.id, SnapshotSeen::parse(own)?);
            }
            None => {
                self.seen_by.remove(&relation.id);
            }
        }
        let mut stream = Vec::new();
        for c in &relation.columns {
            stream.push((
                c.name.clone(),
                self.type_name(c.type_oid, c.type_modifier).await?,
            ));
        }
        let table = self.following.tables[i].clone();
        let on_target = &self.target_columns[i];
        let target_type = |n: &str| {
            on_target
                .iter()
                .find(|(c, _)| c == n)
                .map(|(_, t)| t.clone())
        };
        let stored_type = |n: &str| {
            table
                .columns
                .iter()
                .find(|c| c.name == n)
                .map(|c| c.sql_type.clone())
        };
        let added: Vec<&(String, String)> = stream
            .iter()
            .filter(|(n, _)| target_type(n).is_none())
            .collect();
        let dropped: Vec<&str> = table
            .columns
            .iter()
            .filter(|c| !stream.iter().any(|(n, _)| n == &c.name) && target_type(&c.name).is_some())
            .map(|c| c.name.as_str())
            .collect();
        let retyped: Vec<String> = stream
            .iter()
            .filter_map(|(n, t)| {
                let now = target_type(n)?;
                (now != *t && stored_type(n).as_ref() != Some(t))
                    .then(|| format!("column {n:?} changed type from {now} to {t}"))
            })
            .collect();
        let renamed = (!added.is_empty() && !dropped.is_empty()).then(|| {
            format!(
                "column(s) {} replaced by {} (renamed?)",
                dropped.join(", "),
                added
                    .iter()
                    .map(|(n, _)| n.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        });
        if let Some(what) = retyped.into_iter().next().or(renamed) {
            return Err(Error::new(
                Kind::Schema,
                format!(
                    "following stopped: on the source, {}: {what}. Every transaction \
                     committed before that change is applied on the target, none after. \
                     Make the same change to {} on the target, then run `pgbarge follow` to \
                     go on.",
                    name, table.target
                ),
            ));
        }
        let mut ddl = Vec::new();
        for (n, t) in &added {
            // Rows already there took the column's default without a change in the
            // stream: the target's get the same default.
            let default = self.added_default(&name, n).await?;
            ddl.push(format!(
                "ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} {t}{}",
                table.target.sql(),
                ident(n),
                default.map(|d| format!(" DEFAULT {d}")).unwrap_or_default()
            ));
            round
                .schema
                .push((table.target.to_string(), format!("added column {n} {t}")));
        }
        for n in &dropped {
            ddl.push(format!(
                "ALTER TABLE {} DROP COLUMN IF EXISTS {}",
                table.target.sql(),
                ident(n)
            ));
            round
                .schema
                .push((table.target.to_string(), format!("dropped column {n}")));
        }
        // The columns as now known; keys stay those recorded from the catalog.
        let columns: Vec<source::StreamColumn> = stream
            .iter()
            .map(|(n, t)| source::StreamColumn {
                name: n.clone(),
                sql_type: t.clone(),
                key: table.columns.iter().any(|c| &c.name == n && c.key),
            })
            .collect();
        if columns != table.columns {
            self.following.tables[i].columns = columns.clone();
            self.tables_changed = true;
        }
        if !ddl.is_empty() {
            let on_target = &mut self.target_columns[i];
            on_target.retain(|(n, _)| !dropped.contains(&n.as_str()));
            on_target.extend(added.iter().map(|(n, t)| (n.clone(), t.clone())));
        }
        let on_target = &self.target_columns[i];
        let types: Vec<String> = stream
            .iter()
            .map(|(n, t)| {
                on_target
                    .iter()
                    .find(|(c, _)| c == n)
                    .map(|(_, ty)| ty.clone())
                    .unwrap_or_else(|| t.clone())
            })
            .collect();
        let mut key: Vec<usize> = (0..columns.len()).filter(|&k| columns[k].key).collect();
        let multiset = key.is_empty();
        if multiset {
            key = (0..columns.len()).collect();
        }
        let mut key_names: Vec<String> = key.iter().map(|&k| columns[k].name.clone()).collect();
        key_names.sort();
        let arbiter = !multiset && self.unique_keys[i].contains(&key_names);
        let exact_key = key_names.iter().all(|k| self.exact_columns[i].contains(k));
        let literal_rows = stream
            .iter()
            .any(|(n, _)| !self.builtin_columns[i].contains(n));
        self.shapes.insert(
            relation.id,
            Shape {
                target: table.target.clone(),
                columns: stream.into_iter().map(|(n, _)| n).collect(),
                types,
                key,
                multiset,
                arbiter,
                exact_key,
                rank: self.ranks.get(&table.target).copied().unwrap_or(usize::MAX),
                literal_rows,
            },
        );
        Ok(ddl)
    }
}

/// Awaits `work`, failing as transient after `limit` without an answer from `side`: a
/// link that went silent (the connection is renewed and the round redone).
async fn answered<T>(
    limit: Duration,
    side: Side,
    work: impl Future<Output = Result<T>>,
) -> Result<T> {
    match tokio::time::timeout(limit, work).await {
        Ok(result) => result,
        Err(_) => Err(Error::new(
            Kind::Copy,
            format!(
                "the {} server gave no answer for {} s",
                match side {
                    Side::Source => "source",
                    Side::Target => "target",
                },
                limit.as_secs()
            ),
        )
        .on(side)
        .transient(true)),
    }
}

/// What one round did.
#[derive(Debug, Default)]
struct Round {
    /// Source transactions seen (applied or skipped).
    commits: u64,
    changes: u64,
    /// The commit time of the first transaction applied (PostgreSQL microseconds).
    behind_since: Option<i64>,
    stop_requested: bool,
    /// Columns added or dropped: (table, what).
    schema: Vec<(String, String)>,
    /// Statements sent to the target, the bytes of their parameters, and the time spent
    /// waiting for them (logged at debug level).
    statements: usize,
    bytes: usize,
    applying: Duration,
}

/// A constraint the target checked (class 23): the flush's order, not the data, may be
/// at fault.
fn is_constraint(e: &Error) -> bool {
    e.sql_state().is_some_and(|s| s.code().starts_with("23"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_snapshot_tells_which_transactions_it_saw() {
        let s = SnapshotSeen::parse("100:105:101,103").unwrap();
        assert!(s.saw(99));
        assert!(s.saw(100) && s.saw(102) && s.saw(104));
        assert!(!s.saw(101) && !s.saw(103));
        assert!(!s.saw(105) && !s.saw(4000));
        assert!(SnapshotSeen::parse("nonsense").is_err());
    }

    #[test]
    fn xids_are_placed_in_the_snapshots_epoch() {
        // xmax just past a wraparound of the 32-bit counter: xid 5 is new, not old.
        let xmax = (1u64 << 32) + 3;
        let s = SnapshotSeen::parse(&format!("{}:{xmax}:", xmax - 10)).unwrap();
        assert!(!s.saw(5));
        assert!(s.saw(u32::MAX - 2));
    }
}
