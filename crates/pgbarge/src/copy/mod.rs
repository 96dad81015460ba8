//! The copy stage: runs a preflighted [`Plan`] with `plan.jobs` source+target connection
//! pairs at once, every source connection reading the same exported snapshot.
//!
//! Work is a queue of units, biggest first: a whole table (one target transaction:
//! create or empty, COPY, primary key, sequences, commit), or one part of a split table
//! (its own transaction, COPY into the table's staging table). The worker that finishes
//! a split table's last part builds the key and renames the staging table to the real
//! name in one short transaction, so no other session ever sees a half-loaded table.
//!
//! A failure (or the caller's `stop`) cancels every stream, rolls back, drops staging
//! tables, and returns the error: tables already committed stay, the others are as they
//! were. The stage reports what happens as [`Event`]s and never prints.

mod pump;

use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use tokio_postgres::Client;

use crate::catalog::TableName;
use crate::connect::{connect, Connection};
use crate::error::{Error, Kind, Result, Side};
use crate::plan::{Action, Content, Plan, TablePlan, NO_BODY_CHECKS};
use crate::quote::{ident, literal};
use crate::report::{RunReport, TableReport};

/// Every source connection reads in a repeatable-read, read-only transaction...
const SOURCE_BEGIN: &str = "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY";
/// ...the first one exports its snapshot, the others adopt it: the target then equals
/// the source at one instant, even while the source is being written to.
const EXPORT_SNAPSHOT: &str = "SELECT pg_catalog.pg_export_snapshot()";
const BEGIN: &str = "BEGIN";
const COMMIT: &str = "COMMIT";
const ROLLBACK: &str = "ROLLBACK";
/// The source's own `search_path` (before pgbarge emptied it for this session)...
const SOURCE_SEARCH_PATH: &str =
    "SELECT reset_val FROM pg_catalog.pg_settings WHERE name = 'search_path'";
/// ...is what the target sessions load with: check constraints, defaults and triggers
/// call functions whose bodies may name other objects unqualified, as they resolve on the
/// source. Everything pgbarge itself sends is schema-qualified, so this changes nothing else.
const SET_SEARCH_PATH: &str = "SELECT pg_catalog.set_config('search_path', $1, false)";
/// A sequence's state; read on the source after the table's data so it covers every row.
const SEQUENCE_STATE: &str = "SELECT last_value, is_called FROM ";

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
}

/// One piece of work for a worker.
#[derive(Debug, Clone, Copy)]
enum Unit {
    /// A whole table, in one transaction.
    Table(usize),
    /// Part `.1` of split table `.0`.
    Part(usize, usize),
    /// Truncate group `.0` (see `Plan::truncate_groups`): its tables in one transaction.
    Group(usize),
}

/// Per-table progress shared by the workers loading its parts.
#[derive(Default)]
struct TableState {
    started: OnceLock<Instant>,
    parts_left: AtomicUsize,
    bytes: AtomicU64,
    rows: AtomicU64,
    done: AtomicBool,
}

struct Shared<'a> {
    plan: &'a Plan,
    queue: Mutex<VecDeque<Unit>>,
    tables: Vec<TableState>,
    reports: Mutex<Vec<Option<TableReport>>>,
    failed: AtomicBool,
    /// Signalled when a table is done or the run fails: workers waiting for a table's
    /// foreign-key parents look at the queue again.
    changed: tokio::sync::Notify,
    /// Units being loaded right now.
    running: AtomicUsize,
    on_event: &'a (dyn Fn(Event) + Send + Sync),
}

/// Runs `plan`. `stop` resolving (e.g. on Ctrl-C) interrupts the run like a failure does.
pub async fn run(
    plan: &Plan,
    source: &Connection,
    target: &Connection,
    stop: impl Future<Output = ()>,
    on_event: &(dyn Fn(Event) + Send + Sync),
) -> Result<RunReport> {
    let started = Instant::now();
    let source_err =
        |what: &'static str| move |e| Error::postgres(Kind::Copy, Side::Source, what, e);
    source
        .client
        .batch_execute(SOURCE_BEGIN)
        .await
        .map_err(source_err("starting the snapshot"))?;
    let snapshot: String = source
        .client
        .query_one(EXPORT_SNAPSHOT, &[])
        .await
        .map_err(source_err("exporting the snapshot"))?
        .get(0);

    let units = work_units(plan);
    let jobs = plan.jobs.min(units.len()).max(1);
    let extra = futures_util::future::try_join_all(
        (1..jobs).map(|_| open_worker(source, target, &snapshot)),
    )
    .await?;
    let mut workers: Vec<(&Connection, &Connection)> = vec![(source, target)];
    workers.extend(extra.iter().map(|(s, t)| (s, t)));
    let search_path: String = source
        .client
        .query_one(SOURCE_SEARCH_PATH, &[])
        .await
        .map_err(source_err("reading the search_path"))?
        .get(0);
    let search_path = &search_path;
    futures_util::future::try_join_all(
        workers
            .iter()
            .map(|(_, t)| async move { t.client.query_one(SET_SEARCH_PATH, &[search_path]).await }),
    )
    .await
    .map_err(|e| Error::postgres(Kind::Copy, Side::Target, "setting the search_path", e))?;

    let shared = Shared {
        plan,
        queue: Mutex::new(units.into()),
        tables: plan
            .tables
            .iter()
            .map(|t| TableState {
                parts_left: AtomicUsize::new(t.parts.len()),
                ..TableState::default()
            })
            .collect(),
        reports: Mutex::new(vec![None; plan.tables.len()]),
        failed: AtomicBool::new(false),
        changed: tokio::sync::Notify::new(),
        running: AtomicUsize::new(0),
        on_event,
    };

    let work = async {
        prepare(plan, &target.client).await?;
        futures_util::future::try_join_all(
            workers
                .iter()
                .map(|(s, t)| worker(&shared, &s.client, &t.client)),
        )
        .await?;
        complete(plan, &source.client, &target.client).await
    };
    let outcome = tokio::select! {
        r = work => r,
        _ = stop => Err(Error::new(
            Kind::Interrupted,
            "interrupted: the tables being loaded were rolled back; tables reported done \
             are committed on the target. If the objects that follow the data (foreign keys, \
             views, triggers, sequence values) were not finished, run the same copy with \
             --schema-only to create what is missing.",
        )),
    };
    if let Err(e) = outcome {
        abandon(plan, &shared, &workers).await;
        if e.kind() == Kind::Copy {
            return Err(salvage(plan, &shared, source, target, e).await);
        }
        return Err(e);
    }
    source
        .client
        .batch_execute(COMMIT)
        .await
        .map_err(source_err("ending the snapshot"))?;
    // Back to the empty path the rest of the session (verification) expects.
    let _ = target.client.query_one(SET_SEARCH_PATH, &[&""]).await;
    let tables = shared
        .reports
        .into_inner()
        .unwrap_or_default()
        .into_iter()
        .flatten()
        .collect();
    Ok(RunReport {
        schema: plan.schema.counts.clone(),
        content: plan.content,
        source: plan.source.clone(),
        target: plan.target.clone(),
        tables,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Units biggest first, so the longest work starts early and small tables fill the gaps.
fn work_units(plan: &Plan) -> Vec<Unit> {
    let mut units: Vec<(i64, Unit)> = Vec::new();
    for (g, members) in plan.truncate_groups.iter().enumerate() {
        let bytes = members
            .iter()
            .map(|&i| plan.tables[i].estimated_bytes)
            .sum();
        units.push((bytes, Unit::Group(g)));
    }
    for (i, t) in plan.tables.iter().enumerate() {
        if t.action == Action::Keep || t.truncate_group.is_some() {
            continue;
        }
        if t.parts.is_empty() {
            units.push((t.estimated_bytes, Unit::Table(i)));
        } else {
            let each = t.estimated_bytes / t.parts.len() as i64;
            units.extend((0..t.parts.len()).map(|k| (each, Unit::Part(i, k))));
        }
    }
    units.sort_by_key(|(bytes, _)| std::cmp::Reverse(*bytes));
    units.into_iter().map(|(_, u)| u).collect()
}

/// Another source+target pair, the source reading the run's snapshot.
async fn open_worker(
    source: &Connection,
    target: &Connection,
    snapshot: &str,
) -> Result<(Connection, Connection)> {
    let (s, t) = tokio::try_join!(
        connect(&source.info, Side::Source),
        connect(&target.info, Side::Target)
    )?;
    s.client
        .batch_execute(&format!(
            "{SOURCE_BEGIN}; SET TRANSACTION SNAPSHOT {}",
            literal(snapshot)
        ))
        .await
        .map_err(|e| Error::postgres(Kind::Copy, Side::Source, "adopting the snapshot", e))?;
    Ok((s, t))
}

/// Schemas, types and split tables' staging tables, committed before any data moves so
/// that every worker's transaction sees them.
async fn prepare(plan: &Plan, target: &Client) -> Result<()> {
    let mut sql: Vec<String> = plan.prepare.clone();
    for t in &plan.tables {
        if let Some(staging) = &t.staging {
            sql.extend(t.setup_sql(staging));
        }
    }
    if sql.is_empty() {
        return Ok(());
    }
    transaction(
        target,
        sql,
        "creating schemas, types, sequences and functions",
    )
    .await
    .map_err(|e| {
        Error::new(
            Kind::Schema,
            format!(
                "{}\nNothing was loaded: the objects needed before the tables were rolled \
                     back.",
                e.message()
            ),
        )
        .on(Side::Target)
    })
}

/// Runs `statements` on the target in one transaction and one round trip.
async fn transaction(target: &Client, statements: Vec<String>, doing: &str) -> Result<()> {
    let mut sql = vec![BEGIN.to_string()];
    sql.extend(statements);
    sql.push(COMMIT.to_string());
    target
        .batch_execute(&sql.join(";\n"))
        .await
        .map_err(target_error(doing))
}

/// After every table is in: foreign keys, views, triggers, rules, comments, ownership
/// and the sequences' values, in one transaction. The tables stay loaded if this fails.
async fn complete(plan: &Plan, source: &Client, target: &Client) -> Result<()> {
    // Late functions and aggregates are created here too, bodies unchecked as in prepare.
    let mut sql: Vec<String> = std::iter::once(NO_BODY_CHECKS.to_string())
        .chain(plan.schema.after.iter().map(|s| s.sql.clone()))
        .collect();
    if plan.content != Content::SchemaOnly {
        sql.extend(sequence_values(plan, source).await?);
    }
    if sql.len() == 1 {
        return Ok(());
    }
    transaction(target, sql, "creating foreign keys, views and triggers")
        .await
        .map_err(|e| {
            Error::new(
                Kind::Schema,
                format!(
                    "{}\nEvery table is loaded and committed, but the objects created after the \
                     data (foreign keys, views, triggers, comments, sequence values) were rolled \
                     back. Fix the cause on the target, then run the copy again with --mode replace \
                     (or create them by hand: --dry-run --verbose prints their SQL).",
                    e.message()
                ),
            )
            .on(Side::Target)
        })
}

/// After a failed table: the tables that did load are committed, so the objects that
/// follow their data (foreign keys among them, their triggers, views over them, …) are
/// created now, one statement at a time on a fresh connection, skipping any that fail
/// (e.g. a view over a table that did not load). Returns `err` with what was done added.
async fn salvage(
    plan: &Plan,
    shared: &Shared<'_>,
    source: &Connection,
    target: &Connection,
    err: Error,
) -> Error {
    let done: Vec<&TableName> = plan
        .tables
        .iter()
        .zip(&shared.tables)
        .filter(|(_, state)| state.done.load(Ordering::SeqCst))
        .map(|(t, _)| &t.target)
        .collect();
    let planned: Vec<&TableName> = plan.tables.iter().map(|t| &t.target).collect();
    let steps: Vec<&crate::plan::Step> = plan
        .schema
        .after
        .iter()
        .filter(|s| {
            s.needs
                .iter()
                .all(|n| done.contains(&n) || !planned.contains(&n))
        })
        .collect();
    if done.is_empty() || plan.schema.after.is_empty() {
        return err;
    }
    let Ok(fresh) = connect(&target.info, Side::Target).await else {
        return err;
    };
    let _ = fresh
        .client
        .batch_execute("SET check_function_bodies = off")
        .await;
    let mut created = 0;
    for step in &steps {
        if fresh.client.batch_execute(&step.sql).await.is_ok() {
            created += 1;
        }
    }
    if plan.content != Content::SchemaOnly {
        if let Ok(values) = sequence_values(plan, &source.client).await {
            for v in values {
                let _ = fresh.client.batch_execute(&v).await;
            }
        }
    }
    let message = format!(
        "{}\nFor the {} table{} that did load, {created} of the {} objects that follow the data \
         (foreign keys, views, triggers, comments, …) were created, and sequences were set; run \
         again naming the tables that are not done yet to create the rest.",
        err.message(),
        done.len(),
        if done.len() == 1 { "" } else { "s" },
        plan.schema.after.len()
    );
    let mut e = Error::new(Kind::Copy, message).transient(err.is_transient());
    if let Some(side) = err.side() {
        e = e.on(side);
    }
    e
}

/// `setval` for each sequence pgbarge created on its own, to the source's state now —
/// after every row was read, so the values cover them all.
async fn sequence_values(plan: &Plan, source: &Client) -> Result<Vec<String>> {
    let readable: Vec<&crate::plan::SequenceValue> = plan
        .schema
        .sequence_values
        .iter()
        .filter(|s| s.readable)
        .collect();
    if readable.is_empty() {
        return Ok(Vec::new());
    }
    let query = readable
        .iter()
        .enumerate()
        .map(|(i, s)| {
            format!(
                "SELECT {i}::int4, last_value, is_called FROM {}",
                s.name.sql()
            )
        })
        .collect::<Vec<_>>()
        .join(" UNION ALL ");
    let rows = source
        .query(&query, &[])
        .await
        .map_err(|e| Error::postgres(Kind::Copy, Side::Source, "reading sequence values", e))?;
    Ok(rows
        .iter()
        .filter_map(|r| {
            let seq = readable.get(r.get::<_, i32>(0) as usize)?;
            let (value, called) = (r.get::<_, i64>(1), r.get::<_, bool>(2));
            let name = literal(&seq.name.sql());
            Some(if seq.raise_only {
                // Only forward: past the source's last value when the target's is behind.
                let behind = if seq.ascending {
                    format!("(last_value, is_called) < ({value}, {called})")
                } else {
                    format!("(last_value, NOT is_called) > ({value}, NOT {called})")
                };
                format!(
                    "SELECT pg_catalog.setval({name}, {value}, {called}) FROM {} WHERE {behind}",
                    seq.name.sql()
                )
            } else {
                format!("SELECT pg_catalog.setval({name}, {value}, {called})")
            })
        })
        .collect())
}

async fn worker(shared: &Shared<'_>, source: &Client, target: &Client) -> Result<()> {
    loop {
        let unit = match shared.next_unit().await {
            Ok(Some(unit)) => unit,
            Ok(None) => return Ok(()),
            Err(e) => {
                shared.failed.store(true, Ordering::SeqCst);
                shared.changed.notify_waiters();
                return Err(e);
            }
        };
        let result = match unit {
            Unit::Table(i) => load_table(shared, i, source, target).await,
            Unit::Part(i, k) => load_part(shared, i, k, source, target).await,
            Unit::Group(g) => load_group(shared, g, source, target).await,
        };
        shared.running.fetch_sub(1, Ordering::SeqCst);
        shared.changed.notify_waiters();
        if let Err(e) = result {
            shared.failed.store(true, Ordering::SeqCst);
            shared.changed.notify_waiters();
            return Err(e);
        }
    }
}

fn doing(table: &TablePlan) -> String {
    format!("loading {}", table.target)
}

fn target_error(doing: &str) -> impl Fn(tokio_postgres::Error) -> Error + '_ {
    move |e| Error::postgres(Kind::Copy, Side::Target, doing, e)
}

impl Shared<'_> {
    /// The first queued unit whose table's foreign-key parents are all loaded, waiting
    /// while every queued unit still waits on a table in progress. `None`: nothing left,
    /// or the run failed.
    async fn next_unit(&self) -> Result<Option<Unit>> {
        loop {
            // Registered before looking, so a table finishing in between is not missed.
            let changed = self.changed.notified();
            if self.failed.load(Ordering::SeqCst) {
                return Ok(None);
            }
            {
                let Ok(mut queue) = self.queue.lock() else {
                    return Ok(None);
                };
                if queue.is_empty() {
                    return Ok(None);
                }
                let done = |p: usize| self.tables[p].done.load(Ordering::SeqCst);
                let ready = |u: &Unit| match *u {
                    Unit::Table(i) | Unit::Part(i, _) => {
                        self.plan.tables[i].load_after.iter().all(|&p| done(p))
                    }
                    // Parents inside the group load first within its transaction.
                    Unit::Group(g) => {
                        let members = &self.plan.truncate_groups[g];
                        members.iter().all(|&i| {
                            self.plan.tables[i]
                                .load_after
                                .iter()
                                .all(|&p| members.contains(&p) || done(p))
                        })
                    }
                };
                if let Some(pos) = queue.iter().position(ready) {
                    self.running.fetch_add(1, Ordering::SeqCst);
                    return Ok(queue.remove(pos));
                }
                // Nothing ready and nothing loading that could make something ready:
                // the plan's order has a cycle. Fail rather than wait forever.
                if self.running.load(Ordering::SeqCst) == 0 {
                    return Err(Error::new(
                        Kind::Copy,
                        "internal: the remaining tables wait on each other (a cycle in the \
                         load order); nothing more was loaded. Copy them in separate runs.",
                    ));
                }
            }
            changed.await;
        }
    }

    fn start(&self, i: usize) {
        let t = &self.plan.tables[i];
        if self.tables[i].started.set(Instant::now()).is_ok() {
            (self.on_event)(Event::TableStarted {
                table: t.target.clone(),
                estimated_bytes: t.estimated_bytes,
            });
        }
    }

    /// A progress callback for one stream of table `i`, adding its bytes to the table's.
    fn progress(&self, i: usize) -> impl FnMut(u64) + '_ {
        let mut seen = 0;
        move |bytes| {
            let total = self.tables[i]
                .bytes
                .fetch_add(bytes - seen, Ordering::Relaxed)
                + (bytes - seen);
            seen = bytes;
            (self.on_event)(Event::Progress {
                table: self.plan.tables[i].target.clone(),
                bytes: total,
            });
        }
    }

    fn finish(&self, i: usize) {
        let t = &self.plan.tables[i];
        let state = &self.tables[i];
        state.done.store(true, Ordering::SeqCst);
        let report = TableReport {
            table: t.target.clone(),
            action: t.action,
            format: t.format,
            rows: state.rows.load(Ordering::SeqCst),
            bytes: state.bytes.load(Ordering::SeqCst),
            seconds: state
                .started
                .get()
                .map(|s| s.elapsed().as_secs_f64())
                .unwrap_or_default(),
        };
        if let Ok(mut reports) = self.reports.lock() {
            reports[i] = Some(report.clone());
        }
        self.changed.notify_waiters();
        (self.on_event)(Event::TableFinished(report));
    }
}

async fn load_table(shared: &Shared<'_>, i: usize, source: &Client, target: &Client) -> Result<()> {
    let table = &shared.plan.tables[i];
    shared.start(i);
    let doing = doing(table);
    if shared.plan.content == Content::SchemaOnly {
        // The definition only: table, key, no rows (and sequences left at their start).
        let mut sql = table.setup_sql(&table.target);
        sql.extend(table.finish_sql(&table.target));
        sql.extend(table.after_data.iter().cloned());
        transaction(target, sql, &doing).await?;
        shared.finish(i);
        return Ok(());
    }
    let setup = table.setup_sql(&table.target);
    let mut finish = table.finish_sql(&table.target);
    finish.extend(table.after_data.iter().cloned());
    finish.extend(sequence_sql(table, source, &doing).await?);
    // One COPY per stream: the table itself, or each leaf of a partitioned table that
    // pgbarge creates — all in the table's one transaction.
    let streams: Vec<(String, String)> = if !table.leaves.is_empty() {
        table
            .leaves
            .iter()
            .map(|leaf| (table.copy_leaf_out_sql(leaf), table.copy_in_sql(leaf)))
            .collect()
    } else if table
        .create
        .as_ref()
        .is_some_and(|c| c.partition_by.is_some())
    {
        // A partitioned table without partitions holds no rows.
        Vec::new()
    } else {
        vec![(
            table.copy_out_sql(None),
            table.copy_in_sql(&table.load_into(&table.target)),
        )]
    };
    if streams.is_empty() {
        let mut sql = setup;
        sql.extend(finish);
        transaction(target, sql, &doing).await?;
        shared.finish(i);
        return Ok(());
    }
    let setup = std::iter::once(BEGIN.to_string())
        .chain(setup)
        .collect::<Vec<_>>()
        .join(";\n");
    finish.push(COMMIT.to_string());
    let finish = finish.join(";\n");
    let last = streams.len() - 1;
    for (k, (copy_out, copy_in)) in streams.iter().enumerate() {
        let (rows, _) = pump::pump(
            source,
            target,
            &pump::Stream {
                copy_out,
                copy_in,
                setup: if k == 0 { &setup } else { "" },
                finish: if k == last { &finish } else { "" },
            },
            &doing,
            shared.progress(i),
        )
        .await?;
        shared.tables[i].rows.fetch_add(rows, Ordering::SeqCst);
    }
    shared.finish(i);
    Ok(())
}

/// A truncate group: one `TRUNCATE` of all its tables, then each table's COPY, parents
/// first, all in one transaction — every statement pipelined around the COPYs as for a
/// single table.
async fn load_group(shared: &Shared<'_>, g: usize, source: &Client, target: &Client) -> Result<()> {
    let plan = shared.plan;
    let members = &plan.truncate_groups[g];
    let names: Vec<String> = members
        .iter()
        .map(|&i| plan.tables[i].truncate_target(&plan.tables[i].target))
        .collect();
    let last = members.len() - 1;
    for (pos, &i) in members.iter().enumerate() {
        let table = &plan.tables[i];
        shared.start(i);
        let doing = doing(table);
        let mut setup = Vec::new();
        let cycle = &plan.truncate_group_keys[g];
        if pos == 0 {
            setup.push(BEGIN.to_string());
            // Keys no load order satisfies: off for the load, back (validated) at the end.
            setup.extend(cycle.iter().map(|k| k.table.drop_constraint_sql(&k.name)));
            setup.push(format!("TRUNCATE {}", names.join(", ")));
        }
        setup.extend(table.setup_sql(&table.target));
        let mut finish = table.finish_sql(&table.target);
        finish.extend(sequence_sql(table, source, &doing).await?);
        if pos == last {
            finish.extend(
                cycle
                    .iter()
                    .map(|k| k.table.add_constraint_sql(&k.name, &k.definition)),
            );
            finish.push(COMMIT.to_string());
        }
        let (rows, _) = pump::pump(
            source,
            target,
            &pump::Stream {
                copy_out: &table.copy_out_sql(None),
                copy_in: &table.copy_in_sql(&table.load_into(&table.target)),
                setup: &setup.join(";\n"),
                finish: &finish.join(";\n"),
            },
            &doing,
            shared.progress(i),
        )
        .await?;
        shared.tables[i].rows.fetch_add(rows, Ordering::SeqCst);
    }
    // Committed: only now are they done.
    for &i in members {
        shared.finish(i);
    }
    Ok(())
}

async fn load_part(
    shared: &Shared<'_>,
    i: usize,
    k: usize,
    source: &Client,
    target: &Client,
) -> Result<()> {
    let table = &shared.plan.tables[i];
    let Some(staging) = &table.staging else {
        return Err(Error::new(
            Kind::Copy,
            "internal: split table without staging table",
        ));
    };
    shared.start(i);
    let doing = doing(table);
    let (rows, _) = pump::pump(
        source,
        target,
        &pump::Stream {
            copy_out: &table.copy_out_sql(Some(&table.parts[k])),
            copy_in: &table.copy_in_sql(staging),
            setup: BEGIN,
            finish: COMMIT,
        },
        &doing,
        shared.progress(i),
    )
    .await?;
    shared.tables[i].rows.fetch_add(rows, Ordering::SeqCst);
    if shared.tables[i].parts_left.fetch_sub(1, Ordering::SeqCst) == 1 {
        // The last part is in: key, real name and sequences in one short transaction.
        let mut sql = table.finish_sql(staging);
        sql.push(format!(
            "ALTER TABLE {} RENAME TO {}",
            staging.sql(),
            ident(&table.target.name)
        ));
        sql.extend(table.after_data.iter().cloned());
        sql.extend(sequence_sql(table, source, &doing).await?);
        transaction(target, sql, &doing).await?;
        shared.finish(i);
    }
    Ok(())
}

/// Statements setting the target's sequence for each of the table's serial/identity
/// columns (found by `pg_get_serial_sequence`) to the source sequence's state — lifted, for
/// ascending sequences, above the largest value in the column so new rows cannot collide
/// with copied ones. The source's state is read now: every row in the run's snapshot was
/// numbered before this moment, so the value covers them all.
async fn sequence_sql(table: &TablePlan, source: &Client, doing: &str) -> Result<Vec<String>> {
    let mut sql = Vec::new();
    for seq in &table.sequences {
        // Unreadable on the source: start after the copied values (ascending) or leave it.
        let (value, called) = match &seq.source {
            Some(source_seq) => {
                let row = source
                    .query_one(&format!("{SEQUENCE_STATE}{}", source_seq.sql()), &[])
                    .await
                    .map_err(|e| Error::postgres(Kind::Copy, Side::Source, doing, e))?;
                (row.get::<_, i64>(0), row.get::<_, bool>(1))
            }
            None if seq.ascending => (1, false),
            None => continue,
        };
        let target_seq = format!(
            "pg_catalog.pg_get_serial_sequence({}, {})",
            literal(&table.target.sql()),
            literal(&seq.column)
        );
        sql.push(if seq.ascending {
            format!(
                "SELECT pg_catalog.setval({target_seq}, GREATEST({value}, m), \
                 CASE WHEN m > {value} THEN true ELSE {called} END) \
                 FROM (SELECT max({})::int8 AS m FROM {}) AS t",
                ident(&seq.column),
                table.target.sql()
            )
        } else {
            format!("SELECT pg_catalog.setval({target_seq}, {value}, {called})")
        });
    }
    Ok(sql)
}

/// After a failure or interruption: stop every stream on both servers now (rather than
/// when they notice we are gone), roll back, and drop the staging tables of split tables
/// that did not finish. Best effort on each connection; servers roll back on disconnect.
async fn abandon(plan: &Plan, shared: &Shared<'_>, workers: &[(&Connection, &Connection)]) {
    futures_util::future::join_all(workers.iter().flat_map(|(s, t)| [s.cancel(), t.cancel()]))
        .await;
    for (s, t) in workers {
        let _ = s.client.batch_execute(ROLLBACK).await;
        let _ = t.client.batch_execute(ROLLBACK).await;
    }
    let leftovers: Vec<&TableName> = plan
        .tables
        .iter()
        .zip(&shared.tables)
        .filter(|(_, state)| !state.done.load(Ordering::SeqCst))
        .filter_map(|(t, _)| t.staging.as_ref())
        .collect();
    if leftovers.is_empty() {
        return;
    }
    let drop = leftovers
        .iter()
        .map(|s| format!("DROP TABLE IF EXISTS {}", s.sql()))
        .collect::<Vec<_>>()
        .join("; ");
    for (_, t) in workers {
        if t.client.batch_execute(&drop).await.is_ok() {
            return;
        }
    }
    // Every target connection is gone: one more, just to clean up.
    if let Some((_, t)) = workers.first() {
        if let Ok(fresh) = connect(&t.info, Side::Target).await {
            let _ = fresh.client.batch_execute(&drop).await;
        }
    }
}
