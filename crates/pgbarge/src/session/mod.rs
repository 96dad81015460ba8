//! A run from start to end. [`copy`] takes a request once and returns an outcome; here
//! are the steps it goes through: what becomes of an interrupted run ([`pending`]), the
//! tables chosen ([`select`]) and planned ([`plan`], asking through [`Questions`]), and
//! around the copy stage ([`execute`]) the run recorded in the [`Store`], its snapshot
//! exported, its units run (all of them, or the ones a resumed run still lacks), and the
//! run cleared once everything committed.
//!
//! A resumed run reads a new snapshot (the old one died with its process). Whether the
//! source changed in between is shown from the tables' change counters recorded with the
//! run: the report names the tables that may mix two points in time, and never claims a
//! consistency it cannot show.

pub mod copy;
mod inspect;

pub use inspect::{tables, verify};

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;

use crate::catalog::{Snapshot, Table, TableName};
use crate::connect::Connection;
use crate::copy::{CopyOptions, Event, ExportedSnapshot};
use crate::error::{Error, Kind, Result};
use crate::ledger::{self, Ledger, MemoryLedger, Moved, SavedRun};
use crate::plan::units::{Op, UnitId, Work};
use crate::plan::{Action, ColumnRoute, Endpoint, LoadMode, Plan, PlanOptions};
use crate::preflight::{self, Problem};
use crate::report::RunReport;
use crate::select::{Pattern, Selection};
use crate::store::{PgStore, Store};

/// How a run starts.
pub enum Start {
    /// A new run of these units.
    Fresh(Work),
    /// The interrupted run recorded on the target, continued.
    Resume(SavedRun),
    /// The same for a followed copy, whose tables the stream brings to one instant
    /// (see [`crate::follow::resume`]): nothing is said of the two snapshots.
    ResumeFollowed(SavedRun),
}

/// Runs `start` from `source` to `target` (both connected; `source` becomes the
/// snapshot holder). On success with no failure the run is cleared from the ledger; a
/// run with failures, or interrupted, stays recorded for `--resume`.
pub async fn execute(
    source: &Connection,
    target: &Connection,
    start: Start,
    options: &CopyOptions,
    stop: impl Future<Output = ()>,
    on_event: &(dyn Fn(Event) + Send + Sync),
) -> Result<RunReport> {
    let result = run_from_snapshot(source, target, start, options, stop, on_event).await;
    if result.is_err() {
        // The snapshot's read-only transaction ends with the run: `source` is usable
        // again (to drop a follow's slot and publication, say).
        let _ = source.client.batch_execute("ROLLBACK").await;
    }
    result
}

/// [`execute`], leaving `source` in its snapshot transaction on failure.
async fn run_from_snapshot(
    source: &Connection,
    target: &Connection,
    start: Start,
    options: &CopyOptions,
    stop: impl Future<Output = ()>,
    on_event: &(dyn Fn(Event) + Send + Sync),
) -> Result<RunReport> {
    let snapshot = crate::copy::export_snapshot(source).await?;
    let runner = Runner {
        source,
        snapshot: &snapshot,
        target,
        options,
        on_event,
    };
    let followed = matches!(start, Start::ResumeFollowed(_));
    let store = PgStore::new(&options.ledger, target);
    match start {
        Start::Fresh(work) => {
            let names: Vec<TableName> = work.tables.iter().map(|t| t.source.clone()).collect();
            let changes = ledger::source_changes(&source.client, &names).await?;
            if !store.ensure().await? {
                // No schema may be created here: the run works, but cannot be resumed.
                let memory = MemoryLedger::default();
                let mut report = runner
                    .run(&work, &BTreeMap::new(), &BTreeSet::new(), &memory, stop)
                    .await?;
                report.warnings.push(format!(
                    "the role may not create the \"{}\" schema on the target, so this run was \
                     not recorded there: if it is interrupted, it starts over",
                    options.ledger.schema()
                ));
                return end(source, report).await;
            }
            let (id, run) = store.start_run(&work, &snapshot, &changes).await?;
            let ran = runner
                .run(&work, &BTreeMap::new(), &BTreeSet::new(), &run, stop)
                .await;
            flush(target, &run).await;
            let mut report = ran?;
            report.snapshot = Some(snapshot.xids.clone());
            if report.failures.is_empty() {
                finish(target, id, options).await?;
            }
            end(source, report).await
        }
        Start::Resume(saved) | Start::ResumeFollowed(saved) => {
            if saved.work.source.connection != source.info.to_string() {
                return Err(Error::usage(format!(
                    "the interrupted run recorded on the target copied from {}, not from {}: \
                     resume it with that --source, or run `pgbarge clean` to abandon it.",
                    saved.work.source.connection, source.info
                )));
            }
            // A ledger written by an earlier version gains what this one keeps there.
            store.ensure().await?;
            // The killed run's sessions may still be at work: end them, then read what
            // is committed.
            store.end_sessions(&saved).await?;
            let saved = match store.last_run().await? {
                Some(run) if run.id == saved.id => run,
                _ => {
                    return Err(Error::new(
                        Kind::Copy,
                        "the interrupted run disappeared from the target's ledger while \
                         resuming (another pgbarge finished or cleaned it); nothing was done.",
                    ))
                }
            };
            let names: Vec<TableName> =
                saved.work.tables.iter().map(|t| t.source.clone()).collect();
            let now = ledger::source_changes(&source.client, &names).await?;
            let changed = ledger::changed_tables(&saved.source_changes, &now);
            // From here on the run reads the new snapshot: what a later resume of a
            // followed copy filters the tables this one completes by.
            store.record_snapshot(saved.id, &snapshot.xids).await?;
            let run = store.resume_run(&saved);
            let ran = runner
                .run(&saved.work, &saved.done, &saved.salvaged, &run, stop)
                .await;
            flush(target, &run).await;
            let mut report = ran?;
            report.snapshot = Some(snapshot.xids.clone());
            if !followed {
                report.warnings.extend(consistency(&saved, &changed));
            }
            if report.failures.is_empty() {
                finish(target, saved.id, options).await?;
            }
            end(source, report).await
        }
    }
}

/// What every way of running units shares: the connections, the snapshot, the options
/// and where events go.
struct Runner<'a> {
    source: &'a Connection,
    snapshot: &'a ExportedSnapshot,
    target: &'a Connection,
    options: &'a CopyOptions,
    on_event: &'a (dyn Fn(Event) + Send + Sync),
}

impl Runner<'_> {
    /// Runs `work`'s units not in `done`, recording them in `ledger`.
    async fn run<L: Ledger>(
        &self,
        work: &Work,
        done: &BTreeMap<UnitId, Moved>,
        salvaged: &BTreeSet<usize>,
        ledger: &L,
        stop: impl Future<Output = ()>,
    ) -> Result<RunReport> {
        crate::copy::run(
            work,
            done,
            salvaged,
            self.source,
            self.snapshot,
            &self.target.info,
            ledger,
            self.options,
            stop,
            self.on_event,
        )
        .await
    }
}

/// Clears the finished run `id` from the ledger. The run's own connection to the
/// target may have died meanwhile (a restart the units rode out): then on a new one,
/// retried as the units are.
async fn finish(target: &Connection, id: i64, options: &CopyOptions) -> Result<()> {
    crate::retry::with_retries(
        &options.retry,
        Error::is_transient,
        async |attempt| {
            if attempt == 0 {
                return PgStore::new(&options.ledger, target).finish_run(id).await;
            }
            let fresh = crate::connect::connect(&target.info, crate::Side::Target).await?;
            PgStore::new(&options.ledger, &fresh).finish_run(id).await
        },
        async |_, _, _| {},
    )
    .await
}

/// Writes what the run's ledger still holds back — the row counts of the last units to
/// commit, which otherwise ride with the next unit's transaction — so that a run that
/// stays recorded (failed or interrupted) shows them when resumed. Best effort, and
/// bounded: the units themselves are recorded already.
async fn flush(target: &Connection, ledger: &impl Ledger) {
    if let Some(sql) = ledger.pending_sql() {
        let write = target.client.batch_execute(&sql);
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), write).await;
    }
}

/// Ends the snapshot holder's transaction. Best effort: it only read, and if its
/// connection was lost mid-run (the units went on from a renewed snapshot) there is
/// nothing left to end.
async fn end(source: &Connection, report: RunReport) -> Result<RunReport> {
    let _ = source.client.batch_execute("COMMIT").await;
    Ok(report)
}

/// What a resumed run can say about the instant the target shows. Tables loaded before
/// the interruption read the first snapshot, the others the new one: if no copied table
/// changed in between (by its counters), they are the same instant.
fn consistency(saved: &SavedRun, changed: &BTreeSet<String>) -> Vec<String> {
    let work = &saved.work;
    let when = saved.snapshot_at.as_deref().unwrap_or("the first run");
    // Tables with rows committed before (a finished table, or parts of a split one)...
    let before: BTreeSet<usize> = work
        .units
        .iter()
        .filter(|u| saved.done.contains_key(&u.id))
        .flat_map(|u| {
            u.completes
                .iter()
                .copied()
                .chain(u.ops.iter().filter_map(|op| match op {
                    Op::Copy { table, .. } => Some(*table),
                    _ => None,
                }))
        })
        .collect();
    if before.is_empty() {
        return Vec::new();
    }
    let changed_names: Vec<String> = work
        .tables
        .iter()
        .filter(|t| changed.contains(&t.source.to_string()))
        .map(|t| t.source.to_string())
        .collect();
    if changed_names.is_empty() {
        return vec![format!(
            "resumed with a new snapshot of the source; none of the copied tables changed \
             since the first snapshot ({when}) by their statistics counters, so the target \
             shows the source at one instant"
        )];
    }
    let mut warnings = Vec::new();
    // ...and among them split tables finished now: their parts read two snapshots.
    for (i, t) in work.tables.iter().enumerate() {
        let partly = before.contains(&i)
            && work
                .completing(i)
                .is_some_and(|u| !saved.done.contains_key(&u.id));
        if partly && changed.contains(&t.source.to_string()) {
            warnings.push(format!(
                "{}: its parts were read from two snapshots of the source ({when} and now) and \
                 the table changed in between, so it may mix two points in time; copy it again \
                 (--mode truncate) to bring it to one instant",
                t.target
            ));
        }
    }
    warnings.push(format!(
        "the source changed between the interrupted run ({when}) and this one, in {}: tables \
         loaded before the interruption show the source then, the others now",
        changed_names.join(", ")
    ));
    warnings
}

/// Abandons the interrupted run recorded in `store`, if any: drops its staging tables
/// and clears it from the ledger. Returns the run and what became of its staging tables.
pub async fn abandon(store: &impl Store) -> Result<Option<(SavedRun, ledger::Abandoned)>> {
    let Some(run) = store.last_run().await? else {
        return Ok(None);
    };
    let abandoned = store.abandon(&run).await?;
    Ok(Some((run, abandoned)))
}

/// The questions planning a run may ask its user. The CLI answers them in a terminal;
/// without one, [`NoQuestions`] answers none, and what would have been asked becomes a
/// preflight problem. Each question's default is that nobody is there to answer it.
pub trait Questions {
    /// The chosen tables' foreign keys need `missing` — every table they reference,
    /// and those reference, that is neither chosen nor on the target — asked once for
    /// the whole set: copy them too (`Some(true)`), or create the chosen tables without
    /// those keys (`Some(false)`)? `None`: nobody to ask.
    fn add_parents(&self, _missing: &[TableName]) -> Result<Option<bool>> {
        Ok(None)
    }

    /// These target tables hold rows and no mode was chosen for them — asked once for
    /// all of them. Per table, `Some(mode)` or `None` to leave it out; tables missing
    /// from the answer stay undecided. `None`: nobody to ask.
    fn modes_for(
        &self,
        _tables: &[Undecided],
    ) -> Result<Option<BTreeMap<TableName, Option<LoadMode>>>> {
        Ok(None)
    }

    /// No table was named: the user picks from `tables` (the source's, less the
    /// excluded). `None`: nobody to ask.
    fn pick_tables(&self, _tables: &[Table]) -> Result<Option<Vec<Table>>> {
        Ok(None)
    }

    /// An interrupted run is recorded on the target: go on with it (`Some(true)`), or
    /// abandon it and start anew? `None`: nobody to ask (it is not resumed).
    fn resume(&self, _run: &SavedRun) -> Result<Option<bool>> {
        Ok(None)
    }
}

/// What a copy asked for about an interrupted run recorded on the target.
#[derive(Debug, Clone, Copy, Default)]
pub struct PendingRequest {
    /// `--resume`.
    pub resume: bool,
    /// `--follow`.
    pub follow: bool,
    /// `--dry-run`: nothing is abandoned, nobody is asked.
    pub dry_run: bool,
}

/// What becomes of an interrupted run before a copy starts.
#[derive(Debug)]
pub enum Pending {
    /// None is recorded: the copy starts anew.
    Fresh,
    /// Go on with it (`--resume`, or yes when asked).
    Resume(SavedRun),
    /// `--follow --resume` whose copy is done: go on following from the position
    /// recorded on the target.
    FollowOn,
    /// Not resumed: abandoned (the staging tables listed were dropped), the copy starts
    /// anew.
    Abandoned(SavedRun, Vec<TableName>),
    /// Not resumed, in a dry run: copying would abandon it.
    WouldAbandon(SavedRun),
}

/// Decides, and for an abandoned run does, what becomes of the interrupted run
/// recorded in `store` (see [`Pending`]).
pub async fn pending(
    store: &impl Store,
    request: PendingRequest,
    questions: &dyn Questions,
) -> Result<Pending> {
    let recorded = store.last_run().await?;
    if request.follow && request.resume && recorded.is_none() {
        if let Some(f) = store.following().await? {
            if f.snapshot.is_none() {
                return Err(Error::usage(format!(
                    "--follow --resume: the copy that started following (slot {}) is no \
                     longer recorded on the target (it was cleaned), so it cannot go on. \
                     Run `pgbarge follow --drop`, then `pgbarge copy --follow` again.",
                    f.slot
                )));
            }
        }
        return Ok(Pending::FollowOn);
    }
    let Some(run) = recorded else {
        if request.resume {
            return Err(Error::usage(
                "--resume: no interrupted run is recorded on the target; nothing to resume. \
                 Run the copy without --resume.",
            ));
        }
        return Ok(Pending::Fresh);
    };
    let resume = request.resume || (!request.dry_run && questions.resume(&run)? == Some(true));
    if resume {
        return Ok(Pending::Resume(run));
    }
    if request.dry_run {
        return Ok(Pending::WouldAbandon(run));
    }
    let dropped = store.abandon(&run).await?.dropped;
    Ok(Pending::Abandoned(run, dropped))
}

/// What a sync would repair, for a dry run: each table the plan syncs, compared on
/// both servers (reading only, in one snapshot of the source). None for a schema-only
/// plan or one that syncs nothing.
pub async fn sync_previews(
    source: &Connection,
    target: &Connection,
    plan: &Plan,
    options: &CopyOptions,
) -> Result<Vec<crate::sync::Preview>> {
    let specs: Vec<crate::plan::SyncSpec> = plan
        .tables
        .iter()
        .filter_map(|t| t.sync_spec(&plan.source))
        .collect();
    if specs.is_empty() || plan.content == crate::plan::Content::SchemaOnly {
        return Ok(Vec::new());
    }
    crate::sync::preview(
        &source.client,
        &target.client,
        &specs,
        options.source_encoding.as_deref(),
        &options.ledger,
    )
    .await
}

/// Which tables a copy takes: the patterns, `--all`, or the user's pick.
#[derive(Debug, Clone, Copy)]
pub struct SelectRequest<'a> {
    pub patterns: &'a [Pattern],
    /// `--exclude`.
    pub exclude: &'a [Pattern],
    /// `--all`.
    pub all: bool,
    /// Schemas a saved plan copies whole.
    pub whole_schemas: &'a [String],
}

/// The tables chosen, and both sides' lists they were chosen from.
#[derive(Debug)]
pub struct Selected {
    pub selection: Selection,
    pub source_tables: Vec<Table>,
    pub target_tables: Vec<Table>,
    /// Schemas copied whole (their views, functions and sequences come along), sorted.
    pub whole_schemas: Vec<String>,
}

/// Lists both sides' tables and chooses the copy's, asking `questions` to pick when no
/// pattern and no `--all` was given. A schema named whole (`app.*`, or every schema with
/// `--all`) brings its views, functions, sequences and types along with its tables —
/// even a schema that holds no table at all (views over other schemas, say).
pub async fn select(
    source: &Connection,
    target: &Connection,
    request: SelectRequest<'_>,
    questions: &dyn Questions,
) -> Result<Selected> {
    use crate::catalog;
    let (mut source_tables, target_tables) = tokio::try_join!(
        catalog::list_tables(&source.client, crate::Side::Source),
        catalog::list_tables(&target.client, crate::Side::Target)
    )?;
    catalog::count_unanalysed(&source.client, &mut source_tables).await;
    let mut selection = if request.all {
        Selection {
            tables: crate::select::all(&source_tables),
            unmatched: Vec::new(),
        }
    } else if request.patterns.is_empty() {
        let offered = crate::select::exclude(source_tables.clone(), request.exclude);
        Selection {
            tables: questions.pick_tables(&offered)?.ok_or_else(|| {
                Error::usage(
                    "no tables named, and nobody to pick them: name the tables to copy, or \
                     --all for every table.",
                )
            })?,
            unmatched: Vec::new(),
        }
    } else {
        crate::select::select(request.patterns, &source_tables)
    };
    selection.tables = crate::select::exclude(selection.tables, request.exclude);
    let source_schemas = catalog::list_schemas(&source.client, crate::Side::Source).await?;
    let mut whole_schemas: Vec<String> = if request.all {
        source_schemas.clone()
    } else {
        request
            .patterns
            .iter()
            .filter_map(|p| p.whole_schema().map(str::to_string))
            .chain(request.whole_schemas.iter().cloned())
            .filter(|s| source_schemas.contains(s))
            .collect()
    };
    whole_schemas.sort();
    whole_schemas.dedup();
    selection.unmatched.retain(|u| {
        !request.patterns.iter().any(|p| {
            p.text == u.pattern
                && p.whole_schema()
                    .is_some_and(|s| whole_schemas.iter().any(|w| w == s))
        })
    });
    if selection.tables.is_empty() && selection.unmatched.is_empty() && whole_schemas.is_empty() {
        return Err(Error::usage(if request.exclude.is_empty() {
            "the source has no tables to copy; nothing was written."
        } else {
            "no tables left to copy after --exclude; nothing was written."
        }));
    }
    Ok(Selected {
        selection,
        source_tables,
        target_tables,
        whole_schemas,
    })
}

/// A target table that holds rows, with what suggests the safe answer.
#[derive(Debug, Clone)]
pub struct Undecided {
    pub table: TableName,
    /// The target table has the source's columns with the same types, and nothing the
    /// source lacks that needs a value: most likely an earlier copy being refreshed, for
    /// which truncate is the safe answer (append would duplicate its rows).
    pub looks_like_a_copy: bool,
}

/// Nobody to ask (no terminal, a script).
pub struct NoQuestions;

impl Questions for NoQuestions {}

/// What to plan: the chosen tables and the choices that shape the plan.
pub struct PlanRequest<'a> {
    /// The chosen tables (in order), and the patterns that matched none.
    pub selection: Selection,
    /// Every table of the source and of the target, as listed.
    pub source_tables: &'a [Table],
    pub target_tables: &'a [Table],
    /// Schemas copied whole (their views, functions and sequences come along).
    pub whole_schemas: &'a [String],
    /// `--with-parents`: add the tables foreign keys need without asking.
    pub with_parents: bool,
    pub options: PlanOptions,
    /// Where the run is recorded on the target: nothing of the run may go there.
    pub ledger: &'a ledger::Store,
}

/// A plan, what preflight found, and the catalog it was built from.
pub struct Planned {
    pub plan: Plan,
    pub problems: Vec<Problem>,
    pub snapshot: Snapshot,
}

/// Tables of schemas copied whole that need an object the target role cannot create,
/// with the reason: they are left out and the others load, as `pg_restore` would fail
/// them alone (`--strict` refuses the run instead). Tables named one by one are not: the
/// user asked for them, and preflight says why they cannot be copied.
fn refusals(
    plan: &Plan,
    whole_schemas: &[String],
    options: &PlanOptions,
) -> BTreeMap<TableName, String> {
    let mut refused = BTreeMap::new();
    if options.schema.strict {
        return refused;
    }
    let blocking = plan
        .schema
        .skipped
        .iter()
        .filter(|s| s.blocking)
        .map(|s| (s.what.clone(), s.why.text(), &s.needed_by));
    let types = plan.types.iter().filter_map(|t| {
        let why = t.unsupported.as_deref()?;
        Some((format!("type {}", t.name), why, &t.used_by))
    });
    for (what, why, tables) in blocking.chain(types) {
        for table in tables.iter().filter(|t| whole_schemas.contains(&t.schema)) {
            refused
                .entry(table.clone())
                .or_insert_with(|| format!("it needs {what}, which is not created: {why}"));
        }
    }
    refused
}

/// The run would put objects in the ledger's schema on the target (a source schema of
/// that name copied whole, or a table in it): refused, as its tables could collide with
/// the ledger's and the ledger, once empty, is dropped.
fn ledger_collision(
    plan: &Plan,
    whole_schemas: &[String],
    ledger: &ledger::Store,
) -> Option<Problem> {
    let schema = ledger.schema();
    let tables: Vec<String> = plan
        .tables
        .iter()
        .filter(|t| t.source.schema == schema || t.target.schema == schema)
        .map(|t| t.target.to_string())
        .collect();
    if tables.is_empty() && !whole_schemas.iter().any(|s| s == schema) {
        return None;
    }
    Some(Problem {
        kind: preflight::ProblemKind::LedgerSchema,
        table: None,
        message: format!(
            "the run copies the source's schema {}{}, and pgbarge keeps its own records \
             on the target in a schema of that name",
            crate::quote::ident(schema),
            if tables.is_empty() {
                String::new()
            } else {
                format!(" (tables {})", tables.join(", "))
            }
        ),
        hint: "Keep pgbarge's records elsewhere: --ledger-schema NAME (e.g. pgbarge_ledger), \
               the same for every later command of this run."
            .into(),
    })
}

/// What loading rows into the plan's existing target tables runs that belongs to a role
/// other than the connecting one (or a superuser): their triggers, defaults, checks and
/// index expressions run as the connecting role with every row. Loading must run them;
/// the plan names them, so that nobody's code runs unseen.
async fn foreign_load_code(
    target: &Connection,
    plan: &Plan,
    target_tables: &[Table],
) -> Result<Vec<String>> {
    let existing: Vec<Table> = plan
        .tables
        .iter()
        .filter(|t| !matches!(t.action, Action::Create | Action::Replace | Action::Keep))
        .filter_map(|t| target_tables.iter().find(|x| x.name == t.target).cloned())
        .collect();
    if existing.is_empty() {
        return Ok(Vec::new());
    }
    let found =
        crate::catalog::foreign_code(&target.client, crate::Side::Target, &existing).await?;
    Ok(found
        .into_iter()
        .map(|(table, code)| {
            format!(
                "loading {table} runs code of other roles as {}: {}",
                target.info.user,
                code.join("; ")
            )
        })
        .collect())
}

/// Reads both catalogs, builds the plan and runs preflight, asking `questions` what
/// the choices leave open: tables the foreign keys need (read again with them, until
/// nothing is missing) and what to do with target tables that hold rows.
pub async fn plan(
    source: &Connection,
    target: &Connection,
    request: PlanRequest<'_>,
    questions: &dyn Questions,
) -> Result<Planned> {
    let PlanRequest {
        mut selection,
        source_tables,
        target_tables,
        whole_schemas,
        with_parents,
        mut options,
        ledger,
    } = request;
    let roles: Vec<String> = options.schema.owner.iter().cloned().collect();
    let (from, to) = (Endpoint::of(source), Endpoint::of(target));
    let read = |tables: Vec<Table>| {
        let roles = &roles;
        async move {
            Snapshot::read(
                &source.client,
                &target.client,
                &tables,
                target_tables,
                whole_schemas,
                roles,
            )
            .await
        }
    };
    // Foreign keys to tables left behind: find every table they need (and those need),
    // reading again with them until nothing is missing, then ask once for the set.
    let first = read(selection.tables.clone()).await?;
    let mut snapshot = first.clone();
    let mut wanted = selection.tables.clone();
    let mut added: Vec<TableName> = Vec::new();
    // With --without-fks nothing is missing: the keys are left out.
    if !options.schema.without_fks {
        loop {
            let names: Vec<TableName> = wanted.iter().map(|t| t.name.clone()).collect();
            let probe = Plan::build(from.clone(), to.clone(), &names, &snapshot, &options);
            let before = wanted.len();
            for parent in probe.missing_parents() {
                if let Some(t) = source_tables.iter().find(|t| t.name == parent) {
                    if !wanted.iter().any(|c| c.name == t.name) {
                        wanted.push(t.clone());
                        added.push(parent);
                    }
                }
            }
            if wanted.len() == before {
                break;
            }
            snapshot = read(wanted.clone()).await?;
        }
    }
    if !added.is_empty() {
        let add = with_parents
            || match questions.add_parents(&added)? {
                Some(yes) => {
                    // No: the chosen tables are created without those keys.
                    options.schema.without_fks = !yes;
                    yes
                }
                None => false,
            };
        if add {
            selection.tables = wanted;
        } else {
            snapshot = first;
        }
    }
    let mut chosen: Vec<TableName> = selection.tables.iter().map(|t| t.name.clone()).collect();
    loop {
        let plan = Plan::build(from.clone(), to.clone(), &chosen, &snapshot, &options);
        let mut refused = refusals(&plan, whole_schemas, &options);
        refused.retain(|t, _| chosen.contains(t));
        if !refused.is_empty() && chosen.iter().any(|c| !refused.contains_key(c)) {
            chosen.retain(|c| !refused.contains_key(c));
            options.schema.refused.extend(refused);
            // Read again without them: the types and functions only they needed go.
            let tables: Vec<Table> = selection
                .tables
                .iter()
                .filter(|t| chosen.contains(&t.name))
                .cloned()
                .collect();
            snapshot = read(tables).await?;
            continue;
        }
        let mut problems = preflight::check(&plan, &snapshot, &selection.unmatched);
        problems.extend(ledger_collision(&plan, whole_schemas, ledger));
        let mut plan = plan;
        plan.warnings.extend(
            [(source, "the source"), (target, "the target")]
                .into_iter()
                .filter_map(|(c, what)| c.info.tls_warning(what)),
        );
        plan.warnings
            .extend(foreign_load_code(target, &plan, target_tables).await?);
        let undecided: Vec<Undecided> = plan
            .tables
            .iter()
            .filter(|t| t.action == Action::NeedsMode)
            .map(|t| Undecided {
                table: t.target.clone(),
                looks_like_a_copy: t.target_only_required.is_empty()
                    && t.columns.iter().all(|c| c.route == ColumnRoute::Identical),
            })
            .collect();
        let answers = match undecided.is_empty() {
            true => None,
            false => questions.modes_for(&undecided)?,
        };
        let mut answered = false;
        for (table, mode) in answers.into_iter().flatten() {
            match mode {
                Some(mode) => {
                    options.per_table.insert(table, mode);
                }
                None => chosen.retain(|c| c != &table),
            }
            answered = true;
        }
        if !answered {
            return Ok(Planned {
                plan,
                problems,
                snapshot,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::fixtures::{plan, table};
    use crate::plan::{SkipReason, Skipped};
    use crate::store::{Memory, MemoryStore};

    fn orders() -> TableName {
        TableName::new("public", "orders")
    }

    /// A run of `tables` (each split in `parts` when > 0), as the ledger would give it
    /// back, with the units in `done` committed before the interruption.
    fn saved(tables: Vec<crate::plan::TablePlan>, done: &[usize]) -> SavedRun {
        let work = plan(tables).work();
        let done = done
            .iter()
            .map(|&i| {
                let moved = Moved {
                    rows: Some(10),
                    bytes: 100,
                };
                (work.units[i].id.clone(), moved)
            })
            .collect();
        SavedRun {
            id: 7,
            started_at: "2026-12-07 10:00:00+00".into(),
            source: "me@localhost:5432/app".into(),
            snapshot_at: Some("2026-12-07 10:00:01+00".into()),
            snapshot: None,
            work,
            source_changes: BTreeMap::new(),
            done,
            salvaged: BTreeSet::new(),
        }
    }

    fn unit_of(run: &SavedRun, title_part: &str) -> usize {
        run.work
            .units
            .iter()
            .position(|u| u.title.contains(title_part))
            .unwrap_or_else(|| panic!("no unit {title_part}: {:?}", run.work.units))
    }

    #[test]
    fn a_resume_with_nothing_committed_before_says_nothing_of_two_instants() {
        let run = saved(vec![table("orders", Action::Create, 0)], &[]);
        let changed = BTreeSet::from(["public.orders".to_string()]);
        assert!(consistency(&run, &changed).is_empty());
    }

    #[test]
    fn a_resume_after_no_change_shows_one_instant() {
        let mut run = saved(vec![table("orders", Action::Create, 0)], &[]);
        let first = run
            .work
            .units
            .iter()
            .position(|u| !u.ops.is_empty())
            .unwrap_or(0);
        run.done.insert(
            run.work.units[first].id.clone(),
            Moved {
                rows: Some(1),
                bytes: 1,
            },
        );
        let said = consistency(&run, &BTreeSet::new());
        assert_eq!(said.len(), 1, "{said:?}");
        assert!(said[0].contains("at one instant"), "{said:?}");
    }

    #[test]
    fn a_split_table_finished_after_a_change_is_named_as_mixing_two_instants() {
        let tables = vec![
            table("orders", Action::Create, 3),
            table("items", Action::Create, 0),
        ];
        let mut run = saved(tables, &[]);
        // One part of orders committed before the interruption; the rest did not.
        let part = unit_of(&run, "orders");
        run.done.insert(
            run.work.units[part].id.clone(),
            Moved {
                rows: Some(1),
                bytes: 1,
            },
        );
        let changed = BTreeSet::from(["public.orders".to_string()]);
        let said = consistency(&run, &changed);
        assert!(
            said.iter()
                .any(|w| w.starts_with("public.orders: its parts were read from two snapshots")),
            "{said:?}"
        );
        assert!(
            said.last().is_some_and(|w| w.contains("in public.orders")),
            "{said:?}"
        );
        // items did not change: it is not named.
        assert!(!said.iter().any(|w| w.contains("items")), "{said:?}");
    }

    fn blocked_by_a_function(needed_by: Vec<TableName>) -> Plan {
        let mut p = plan(vec![
            table("orders", Action::Create, 0),
            table("items", Action::Create, 0),
        ]);
        p.schema.skipped.push(Skipped {
            what: "function app.f()".into(),
            why: SkipReason::Because("it is written in language c".into()),
            blocking: true,
            needed_by,
        });
        p
    }

    #[test]
    fn a_whole_schema_copy_leaves_out_the_tables_that_need_what_cannot_be_created() {
        let p = blocked_by_a_function(vec![orders()]);
        let refused = refusals(&p, &["public".into()], &PlanOptions::default());
        assert_eq!(refused.keys().collect::<Vec<_>>(), vec![&orders()]);
        assert!(
            refused[&orders()].contains("function app.f()")
                && refused[&orders()].contains("language c"),
            "{refused:?}"
        );
    }

    #[test]
    fn named_tables_and_strict_copies_are_refused_whole_not_narrowed() {
        let p = blocked_by_a_function(vec![orders()]);
        // Tables named one by one: preflight refuses the copy instead.
        assert!(refusals(&p, &[], &PlanOptions::default()).is_empty());
        // --strict: the same.
        let mut strict = PlanOptions::default();
        strict.schema.strict = true;
        assert!(refusals(&p, &["public".into()], &strict).is_empty());
    }

    #[test]
    fn copying_a_schema_named_like_the_ledger_is_a_problem_with_the_way_out() {
        let store = ledger::Store::default();
        let mut p = plan(vec![table("orders", Action::Create, 0)]);
        assert!(ledger_collision(&p, &[], &store).is_none());
        p.tables[0].target = TableName::new("pgbarge", "orders");
        let problem = ledger_collision(&p, &[], &store).expect("a collision");
        assert_eq!(problem.kind, preflight::ProblemKind::LedgerSchema);
        assert!(
            problem.message.contains("pgbarge.orders"),
            "{}",
            problem.message
        );
        assert!(problem.hint.contains("--ledger-schema"), "{}", problem.hint);
        // An empty schema of that name, copied whole, collides too; another name does not.
        let empty = plan(Vec::new());
        assert!(ledger_collision(&empty, &["pgbarge".into()], &store).is_some());
        let elsewhere = ledger::Store::new("pgbarge_ledger").expect("a plain name");
        assert!(ledger_collision(&p, &[], &elsewhere).is_none());
    }

    /// Answers the resume question with `answer`, and nothing else.
    struct Answer(Option<bool>);

    impl Questions for Answer {
        fn resume(&self, _: &SavedRun) -> Result<Option<bool>> {
            Ok(self.0)
        }
    }

    fn request(resume: bool, follow: bool, dry_run: bool) -> PendingRequest {
        PendingRequest {
            resume,
            follow,
            dry_run,
        }
    }

    /// A store holding an interrupted run whose split table has a staging table.
    fn interrupted() -> MemoryStore {
        let store = MemoryStore::default();
        store.start(7, plan(vec![table("orders", Action::Create, 3)]).work());
        store
    }

    fn following(copied: bool) -> crate::follow::Following {
        crate::follow::Following {
            slot: "pgbarge_0123456789ab".into(),
            publication: "pgbarge_0123456789ab".into(),
            source: "me@localhost:5432/app".into(),
            tables: Vec::new(),
            snapshot: copied.then(|| "100:100:".parse().expect("a snapshot")),
            applied: None,
            applied_at: None,
            changes: 0,
            created_at: "2026-12-07 10:00:00+00".into(),
        }
    }

    fn decide(store: &MemoryStore, req: PendingRequest, answer: Option<bool>) -> Result<Pending> {
        tokio_test_block_on(pending(store, req, &Answer(answer)))
    }

    fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime")
            .block_on(f)
    }

    #[test]
    fn with_nothing_recorded_a_copy_starts_anew_and_resume_is_refused() {
        let store = MemoryStore::default();
        assert!(matches!(
            decide(&store, request(false, false, false), None),
            Ok(Pending::Fresh)
        ));
        let refused = decide(&store, request(true, false, false), None).unwrap_err();
        assert_eq!(refused.kind(), Kind::Usage);
        assert!(
            refused.message().contains("no interrupted run"),
            "{refused}"
        );
    }

    #[test]
    fn an_interrupted_run_resumes_when_asked_for_or_answered_yes() {
        let store = interrupted();
        for (req, answer) in [
            (request(true, false, false), None),
            (request(false, false, false), Some(true)),
            (request(true, false, true), None),
        ] {
            match decide(&store, req, answer) {
                Ok(Pending::Resume(run)) => assert_eq!(run.id, 7),
                other => panic!("{req:?} {answer:?}: {other:?}"),
            }
        }
        assert!(store.memory().abandoned.is_empty());
    }

    #[test]
    fn an_interrupted_run_not_resumed_is_abandoned_but_never_in_a_dry_run() {
        let store = interrupted();
        // A dry run says what copying would do, and does nothing; nobody is asked.
        match decide(&store, request(false, false, true), Some(true)) {
            Ok(Pending::WouldAbandon(run)) => assert_eq!(run.id, 7),
            other => panic!("{other:?}"),
        }
        assert!(store.memory().run.is_some());
        // Answered no (or nobody to ask): abandoned, its staging table dropped.
        match decide(&store, request(false, false, false), Some(false)) {
            Ok(Pending::Abandoned(run, dropped)) => {
                assert_eq!(run.id, 7);
                assert_eq!(dropped.len(), 1, "{dropped:?}");
                assert!(dropped[0].name.starts_with("_pgbarge_"), "{dropped:?}");
            }
            other => panic!("{other:?}"),
        }
        let memory = store.memory();
        assert_eq!(memory.abandoned, vec![7]);
        assert!(memory.run.is_none());
    }

    #[test]
    fn follow_resume_goes_on_following_unless_its_copy_was_cleaned() {
        // The copy is done and following: go on from the recorded position.
        let store = MemoryStore::new(Memory {
            following: Some(following(true)),
            ..Memory::default()
        });
        assert!(matches!(
            decide(&store, request(true, true, false), None),
            Ok(Pending::FollowOn)
        ));
        // The follow waits for a copy no longer recorded: refused, with the way out.
        let store = MemoryStore::new(Memory {
            following: Some(following(false)),
            ..Memory::default()
        });
        let refused = decide(&store, request(true, true, false), None).unwrap_err();
        assert!(refused.message().contains("follow --drop"), "{refused}");
    }

    #[test]
    fn clean_abandons_the_run_and_names_the_follow_that_waited_for_it() {
        let store = interrupted();
        let nothing = MemoryStore::default();
        assert!(tokio_test_block_on(abandon(&nothing))
            .expect("clean")
            .is_none());
        {
            let mut memory = store.memory();
            memory.following = Some(following(false));
            let store = MemoryStore::new(memory);
            let (run, abandoned) = tokio_test_block_on(abandon(&store))
                .expect("clean")
                .expect("a run");
            assert_eq!(run.id, 7);
            assert_eq!(
                abandoned.orphaned_slot.as_deref(),
                Some("pgbarge_0123456789ab")
            );
        }
    }
}
