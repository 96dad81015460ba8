//! A run from start to end, around the copy stage: the ledger found or created on the
//! target, the snapshot exported, the run recorded, its units run (all of them, or the
//! ones a resumed run still lacks), and the run cleared from the ledger once everything
//! committed.
//!
//! A resumed run reads a new snapshot (the old one died with its process). Whether the
//! source changed in between is shown from the tables' change counters recorded with the
//! run: the report names the tables that may mix two points in time, and never claims a
//! consistency it cannot show.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;

use crate::catalog::TableName;
use crate::connect::Connection;
use crate::copy::{self, CopyOptions, Event};
use crate::error::{Error, Kind, Result};
use crate::ledger::{self, MemoryLedger, SavedRun};
use crate::plan::units::{Op, Work};
use crate::report::RunReport;

/// How a run starts.
pub enum Start {
    /// A new run of these units.
    Fresh(Work),
    /// The interrupted run recorded on the target, continued.
    Resume(SavedRun),
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
    let snapshot = copy::export_snapshot(source).await?;
    match start {
        Start::Fresh(work) => {
            let names: Vec<TableName> = work.tables.iter().map(|t| t.source.clone()).collect();
            let changes = ledger::source_changes(&source.client, &names).await?;
            if !ledger::ensure(&target.client).await? {
                // No schema may be created here: the run works, but cannot be resumed.
                let memory = MemoryLedger::default();
                let mut report = copy::run(
                    &work,
                    &BTreeMap::new(),
                    source,
                    &snapshot,
                    &target.info,
                    &memory,
                    options,
                    stop,
                    on_event,
                )
                .await?;
                report.warnings.push(format!(
                    "the role may not create the \"{}\" schema on the target, so this run was \
                     not recorded there: if it is interrupted, it starts over",
                    ledger::schema()
                ));
                return end(source, report).await;
            }
            let run =
                ledger::start_run(&target.client, &work, &snapshot.taken_at, &changes).await?;
            let report = copy::run(
                &work,
                &BTreeMap::new(),
                source,
                &snapshot,
                &target.info,
                &run,
                options,
                stop,
                on_event,
            )
            .await?;
            if report.failures.is_empty() {
                finish(target, run.run_id(), options).await?;
            }
            end(source, report).await
        }
        Start::Resume(saved) => {
            if saved.work.source.connection != source.info.to_string() {
                return Err(Error::usage(format!(
                    "the interrupted run recorded on the target copied from {}, not from {}: \
                     resume it with that --source, or run `pgbarge clean` to abandon it.",
                    saved.work.source.connection, source.info
                )));
            }
            // The killed run's sessions may still be at work: end them, then read what
            // is committed.
            ledger::end_sessions(&target.client, saved.id, target.server_version_num).await?;
            let saved = match ledger::last_run(&target.client).await? {
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
            let run = ledger::resume_run(&saved);
            let mut report = copy::run(
                &saved.work,
                &saved.done,
                source,
                &snapshot,
                &target.info,
                &run,
                options,
                stop,
                on_event,
            )
            .await?;
            report.warnings.extend(consistency(&saved, &changed));
            if report.failures.is_empty() {
                finish(target, saved.id, options).await?;
            }
            end(source, report).await
        }
    }
}

/// Clears the finished run `id` from the ledger. The run's own connection to the
/// target may have died meanwhile (a restart the units rode out): then on a new one,
/// retried as the units are.
async fn finish(target: &Connection, id: i64, options: &CopyOptions) -> Result<()> {
    let mut err = match ledger::finish_run(&target.client, id).await {
        Ok(()) => return Ok(()),
        Err(e) if e.is_transient() => e,
        Err(e) => return Err(e),
    };
    for attempt in 1..=options.retry.retries {
        tokio::time::sleep(options.retry.delay(attempt, crate::retry::jitter())).await;
        let outcome = match crate::connect::connect(&target.info, crate::Side::Target).await {
            Ok(fresh) => ledger::finish_run(&fresh.client, id).await,
            Err(e) => Err(e),
        };
        match outcome {
            Ok(()) => return Ok(()),
            Err(e) if e.is_transient() => err = e,
            Err(e) => return Err(e),
        }
    }
    Err(err)
}

/// Ends the snapshot holder's transaction.
async fn end(source: &Connection, report: RunReport) -> Result<RunReport> {
    source
        .client
        .batch_execute("COMMIT")
        .await
        .map_err(|e| Error::postgres(Kind::Copy, crate::Side::Source, "ending the snapshot", e))?;
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

/// Abandons the interrupted run recorded on `target`, if any: drops its staging tables
/// and clears it from the ledger. Returns the run and the tables dropped.
pub async fn abandon(target: &Connection) -> Result<Option<(SavedRun, Vec<TableName>)>> {
    let Some(run) = ledger::last_run(&target.client).await? else {
        return Ok(None);
    };
    let dropped = ledger::abandon(&target.client, &run).await?;
    Ok(Some((run, dropped)))
}
