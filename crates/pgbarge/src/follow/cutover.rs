//! Ending a follow: the cut-over (fence, drain, sequences, verify, drop), giving it up
//! (`follow --drop`), and what `status` shows.
//!
//! Every step can be run again: a cut-over interrupted after its slot was dropped finds
//! no slot, skips the drain and finishes the rest.

use std::time::Instant;

use serde::Serialize;

use crate::catalog::TableName;
use crate::connect::Connection;
use crate::error::{Error, Kind, Result, Side};
use crate::verify::VerifyReport;

use super::source::{self, SlotState};
use super::state::{self, Following};
use super::{end, FollowEvent, Follower, Goal, Lsn};
use crate::ledger::Store;

/// What a cut-over did.
#[derive(Debug, Serialize)]
pub struct CutoverReport {
    pub slot: String,
    /// Every followed table verified equal, and the slot dropped. When false, the
    /// follow stays (the verification's verdicts say what differs).
    pub ready: bool,
    /// Sessions ended by `--fence`.
    pub fenced_sessions: Option<u64>,
    /// The statement that lets the source take writes again, after a fence.
    pub unfence: Option<String>,
    pub drained_to: Option<Lsn>,
    /// Changes applied while draining.
    pub changes: u64,
    pub sequences: usize,
    pub verify: VerifyReport,
    /// From the fence (or the start, without one) to ready.
    pub downtime_seconds: f64,
}

/// How a cut-over goes.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Make the source's database read-only first, ending the sessions on it.
    pub fence: bool,
    /// `--source-encoding`, for the verification.
    pub source_encoding: Option<String>,
    /// How the last changes are applied.
    pub follow: super::Options,
}

/// Cuts over to the target: stops the follower (wherever it runs), fences the source if
/// asked, applies every change committed before now, moves the target's sequences past
/// the source's, verifies the followed tables and drops the slot and publication.
/// Differences found by the verification stop it before the drop (`Kind::Verify`): the
/// follow stays, to look into.
pub async fn cutover(
    source: &Connection,
    target: &Connection,
    store: &Store,
    options: &Options,
    on_event: &(dyn Fn(FollowEvent) + Send + Sync),
) -> Result<CutoverReport> {
    let (fence, source_encoding) = (options.fence, options.source_encoding.as_deref());
    let started = Instant::now();
    let (mut follower, _) = Follower::claim(source, target, store).await?;
    follower.configure(&options.follow);
    let slot = follower.following().slot.clone();
    let database = source.database.clone();
    let (mut fenced, mut unfence) = (None, None);
    let mut clock = started;
    if fence {
        let (s, _) = follower.connections();
        let keep = vec![s.backend.pid, follower.lookup.backend.pid];
        fenced = Some(source::fence(&follower.lookup.client, &database, &keep).await?);
        unfence = Some(source::unfence_sql(&database));
        clock = Instant::now();
    }
    let (drained_to, changes) = if source::slot_state(&follower.lookup.client, &slot)
        .await?
        .is_some()
    {
        let (now, _) = source::positions(&follower.lookup.client).await?;
        let outcome = follower
            .run(Goal::Drained(now), std::future::pending(), on_event)
            .await
            .map_err(|e| fence_note(e, unfence.as_deref()))?;
        (Some(now), outcome.changes)
    } else {
        on_event(FollowEvent::Warning {
            message: format!(
                "the slot {slot} is gone from the source (an earlier cut-over dropped it): \
                 nothing left to drain"
            ),
        });
        (None, 0)
    };
    let (source_conn, target_conn) = follower.connections();
    let sequences = source::sequence_sql(&follower.lookup.client).await?;
    for sql in &sequences {
        target_conn
            .client
            .batch_execute(sql)
            .await
            .map_err(|e| Error::postgres(Kind::Copy, Side::Target, "setting sequences", e))
            .map_err(|e| fence_note(e, unfence.as_deref()))?;
    }
    let names: Vec<TableName> = follower
        .following()
        .tables
        .iter()
        .map(|t| t.target.clone())
        .collect();
    let verify = crate::verify::compare_tables(
        &source_conn.client,
        &target_conn.client,
        &names,
        source_encoding,
    )
    .await
    .map_err(|e| fence_note(e, unfence.as_deref()))?;
    let ready = verify.all_equal();
    if ready {
        let following = follower.following().clone();
        end(source_conn, target_conn, store, &following).await?;
    } else {
        state::release(&target_conn.client, &slot).await;
    }
    Ok(CutoverReport {
        slot,
        ready,
        fenced_sessions: fenced,
        unfence,
        drained_to,
        changes,
        sequences: sequences.len(),
        verify,
        downtime_seconds: clock.elapsed().as_secs_f64(),
    })
}

/// Adds how to lift the fence to an error that stopped a fenced cut-over.
fn fence_note(e: Error, unfence: Option<&str>) -> Error {
    match unfence {
        Some(sql) => e.context(format!(
            "The source is still fenced (read-only for new sessions); to let it take \
             writes again, run on it: {sql}"
        )),
        None => e,
    }
}

/// Gives up the follow: stops its follower, drops the slot and publication, removes it
/// from the ledger. The target keeps what was applied.
pub async fn abandon(
    source: &Connection,
    target: &Connection,
    store: &Store,
) -> Result<Option<Following>> {
    let Some(following) = state::load(&target.client, store).await? else {
        return Ok(None);
    };
    state::claim(&target.client, store, &following.slot, super::PATIENCE).await?;
    end(source, target, store, &following).await?;
    Ok(Some(following))
}

/// A slot on the source that looks like pgbarge's but no follow on this target owns.
#[derive(Debug, Clone, Serialize)]
pub struct StraySlot {
    pub slot: String,
    pub active: bool,
    pub wal_held: Option<i64>,
}

/// The interrupted copy recorded on the target, as `status` shows it.
#[derive(Debug, Serialize)]
pub struct PendingRun {
    pub id: i64,
    pub started_at: String,
    pub units_done: usize,
    pub units: usize,
}

/// What `pgbarge status` shows.
#[derive(Debug, Serialize)]
pub struct Status {
    pub run: Option<PendingRun>,
    pub follow: Option<Following>,
    /// A follower's session is open on the target (it reads the slot only in bursts, so
    /// the slot's own `active` says little).
    pub follower_running: bool,
    pub slot: Option<SlotState>,
    pub stray_slots: Vec<StraySlot>,
}

const STRAY_SLOTS: &str = "SELECT slot_name::text, active, \
    pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_insert_lsn(), restart_lsn)::int8 \
    FROM pg_catalog.pg_replication_slots \
    WHERE slot_name LIKE 'pgbarge\\_%' AND database = current_database() \
      AND slot_name <> ALL ($1::text[]) ORDER BY slot_name";

/// The target's ledger and, with `source`, the slots there.
pub async fn status(
    source: Option<&Connection>,
    target: &Connection,
    store: &Store,
) -> Result<Status> {
    let run = store.last_run(&target.client).await?.map(|r| PendingRun {
        id: r.id,
        started_at: r.started_at.clone(),
        units_done: r.done.len(),
        units: r.work.units.len(),
    });
    let follow = state::load(&target.client, store).await?;
    let follower_running = match &follow {
        Some(f) => state::follower_running(&target.client, store, &f.slot).await?,
        None => false,
    };
    let mut slot = None;
    let mut stray_slots = Vec::new();
    if let Some(source) = source {
        if let Some(f) = &follow {
            slot = source::slot_state(&source.client, &f.slot).await?;
        }
        let ours: Vec<String> = follow.iter().map(|f| f.slot.clone()).collect();
        stray_slots = source
            .client
            .query(STRAY_SLOTS, &[&ours])
            .await
            .map_err(|e| Error::postgres(Kind::Catalog, Side::Source, "listing slots", e))?
            .iter()
            .map(|r| StraySlot {
                slot: r.get(0),
                active: r.get(1),
                wal_held: r.get(2),
            })
            .collect();
    }
    Ok(Status {
        run,
        follow,
        follower_running,
        slot,
        stray_slots,
    })
}
