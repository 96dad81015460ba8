//! A followed copy's life around the copy stage (`copy --follow`): before it, what
//! logical decoding needs is checked and the slot and publication are made; after it,
//! the copy's snapshot is handed to the stream — or, when the copy stopped short, the
//! slot is kept for `copy --follow --resume`, or dropped when the copy cannot go on from
//! the snapshots it read. A resumed followed copy is made ready here too.

use crate::catalog::TableName;
use crate::connect::Connection;
use crate::error::{Error, Kind, Result, Side};
use crate::ledger::{SavedRun, Store};
use crate::plan::Plan;
use crate::preflight::{Problem, ProblemKind};
use crate::report::RunReport;

use super::source::WalStatus;
use super::{source, state, triggers, Following};

/// Follow needs PostgreSQL 13 on the source (partitions published as their root).
const MIN_SOURCE_VERSION: i32 = 130_000;

/// A followed copy ready to copy: its follow recorded, its slot made.
#[derive(Debug)]
pub struct Prepared {
    pub following: Following,
    /// What is worth a warning (the source keeps WAL without a limit, say).
    pub warnings: Vec<String>,
    /// A follow whose copy never finished, given up first (its slot dropped).
    pub gave_up: Option<Following>,
}

/// Checks everything following `plan`'s tables needs — logical decoding on the source,
/// PostgreSQL 13, and (unless `fire_triggers`) a target that applies as native
/// replication does — then records the follow and makes the slot and publication. A
/// follow whose copy never finished is given up first. `Ok(Err(problems))`: preflight
/// problems, nothing made.
pub async fn prepare(
    source: &Connection,
    target: &Connection,
    store: &Store,
    plan: &Plan,
    fire_triggers: bool,
) -> Result<std::result::Result<Prepared, Vec<Problem>>> {
    let mut gave_up = None;
    if let Some(existing) = state::load(&target.client, store).await? {
        if existing.snapshot.is_some() {
            return Err(Error::usage(format!(
                "the target is already following {} (slot {}, since {}): go on with \
                 `pgbarge follow`, switch with `pgbarge cutover`, or give it up with \
                 `pgbarge follow --drop` before copying with --follow again.",
                existing.source, existing.slot, existing.created_at
            )));
        }
        super::end(source, target, store, &existing).await?;
        gave_up = Some(existing);
    }
    let names: Vec<TableName> = plan.tables.iter().map(|t| t.source.clone()).collect();
    let (mut problems, warnings) = source::check(&source.client, &names).await?;
    if source.server_version_num < MIN_SOURCE_VERSION {
        problems.push(Problem {
            kind: ProblemKind::LogicalDecoding,
            table: None,
            message: format!(
                "following needs PostgreSQL 13 or later on the source (it runs {}).",
                source.server_version_num / 10_000
            ),
            hint: "Copy without --follow.".into(),
        });
    }
    // The tables' triggers, copied with them or already on the target, fire on applied
    // changes as under native replication only if the role may apply as a replica.
    if !fire_triggers && !triggers::may_apply_as_replica(&target.client).await? {
        let targets: Vec<TableName> = plan.tables.iter().map(|t| t.target.clone()).collect();
        let firing = triggers::differing(&source.client, Side::Source, &names)
            .await?
            .merge(triggers::differing(&target.client, Side::Target, &targets).await?);
        if !firing.as_native() {
            problems.push(Problem {
                kind: ProblemKind::ApplyTriggers,
                table: None,
                message: firing.refusal().message().to_string(),
                hint: String::new(),
            });
        }
    }
    if !problems.is_empty() {
        return Ok(Err(problems));
    }
    let pairs: Vec<(TableName, TableName)> = plan
        .tables
        .iter()
        .map(|t| (t.source.clone(), t.target.clone()))
        .collect();
    let following = super::begin(source, target, store, &pairs).await?;
    Ok(Ok(Prepared {
        following,
        warnings,
        gave_up,
    }))
}

/// What became of a followed copy's slot when the copy stopped short.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotFate {
    /// Kept: the copy is recorded on the target and read one snapshot, so `copy
    /// --follow --resume` goes on.
    Kept,
    /// Dropped with the publication: the copy's snapshot was lost mid-run, or the copy
    /// is not recorded, so the stream has no exact point to start from.
    Dropped,
}

/// A followed copy that stopped before its end (interrupted, or with failed units):
/// its slot is kept when the copy can be resumed, dropped otherwise (or when
/// `renewed`: its snapshot was lost and renewed mid-run).
pub async fn stopped(
    source: &Connection,
    target: &Connection,
    store: &Store,
    following: &Following,
    renewed: bool,
) -> SlotFate {
    let resumable = !renewed
        && matches!(
            store.last_run(&target.client).await,
            Ok(Some(run)) if run.snapshot.is_some()
        );
    if resumable {
        return SlotFate::Kept;
    }
    let _ = super::end(source, target, store, following).await;
    SlotFate::Dropped
}

/// After the copy: its snapshot recorded, so that the stream takes over exactly where
/// it ends (`Ok(None)`: follow now). A copy that did not end complete and from one
/// snapshot cannot be followed exactly: `Ok(Some(fate))` says what became of the slot.
pub async fn copied(
    source: &Connection,
    target: &Connection,
    store: &Store,
    following: &Following,
    report: &RunReport,
) -> Result<Option<SlotFate>> {
    match (&report.snapshot, report.snapshot_renewed) {
        (Some(snapshot), false) if report.failures.is_empty() => {
            state::copied(
                &target.client,
                store,
                &following.slot,
                snapshot,
                &following.tables,
            )
            .await?;
            Ok(None)
        }
        (_, renewed) => Ok(Some(
            stopped(source, target, store, following, renewed).await,
        )),
    }
}

/// Makes the interrupted followed copy `run` ready to go on (`copy --follow --resume`):
/// its follow checked (still waiting for its copy, from this source, its slot alive),
/// the killed run's sessions ended and its split tables' parts undone, and each table
/// the run completed given the snapshot it was copied from. Returns the follow and the
/// run as it now stands.
pub async fn resume(
    source: &Connection,
    target: &Connection,
    store: &Store,
    run: SavedRun,
) -> Result<(Following, SavedRun)> {
    let following = match state::load(&target.client, store).await? {
        Some(f) if f.snapshot.is_none() => f,
        _ => {
            return Err(Error::usage(
                "--follow --resume: the interrupted copy recorded on the target is not a \
                 followed copy still waiting to follow (it was not started with --follow, \
                 or its follow was given up). Finish it with `pgbarge copy --resume`, or \
                 abandon it with `pgbarge clean` and start `pgbarge copy --follow` again.",
            ))
        }
    };
    if following.source != source.info.to_string() {
        return Err(Error::usage(format!(
            "the follow recorded on the target reads from {}, not from {}: give that \
             --source.",
            following.source, source.info
        )));
    }
    let unrecorded = || {
        Error::usage(
            "--follow --resume: the interrupted copy's snapshot is not recorded (it was \
             renewed mid-run, or the run was recorded by an earlier version), so its tables \
             cannot be matched with the stream. Run `pgbarge follow --drop` and `pgbarge \
             clean`, then `pgbarge copy --follow` again.",
        )
    };
    if run.snapshot.is_none() {
        return Err(unrecorded());
    }
    match source::slot_state(&source.client, &following.slot).await? {
        Some(slot) if slot.wal_status != Some(WalStatus::Lost) => {}
        _ => {
            return Err(Error::new(
                Kind::Copy,
                format!(
                    "--follow --resume: the replication slot {} is gone or invalidated on \
                     the source, so the changes since the copy began are lost. Run `pgbarge \
                     follow --drop` and `pgbarge clean`, then `pgbarge copy --follow` again.",
                    following.slot
                ),
            ))
        }
    }
    let (run, whole) = super::resume::prepare(target, store, run).await?;
    // As read again, once the killed run's sessions were ended.
    let first = run.snapshot.clone().ok_or_else(unrecorded)?;
    // A table completed by an earlier resume keeps the snapshot recorded for it then;
    // the others completed before this resume read the run's last snapshot. Recorded
    // now: if this resume is interrupted too, the next one starts from them.
    let mut following = following;
    for i in whole {
        let copied = &run.work.tables[i].source;
        if let Some(t) = following.tables.iter_mut().find(|t| &t.source == copied) {
            t.snapshot.get_or_insert_with(|| first.clone());
        }
    }
    state::record_tables(&target.client, store, &following.slot, &following.tables).await?;
    Ok((following, run))
}
