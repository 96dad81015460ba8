//! The copy stage: runs a run's [`Work`] — its units — with `jobs` source+target
//! connection pairs at once, every source connection reading the same exported snapshot.
//!
//! Each unit is one target transaction, assembled from its typed operations in one place
//! (`unit.rs`): statements are pipelined around the COPY streams, and the unit's record
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
//!
//! The stage, in the order a run goes through it:
//! - `options.rs`: what it is told ([`CopyOptions`]) and tells back ([`Event`]);
//! - `stage.rs`, `progress.rs`, `snapshot.rs`: what the workers share — the run's fixed
//!   inputs, where it stands (with the pure `schedule.rs`), and the source snapshot;
//! - `workers.rs`: the workers, their retries, and their connection pairs (`pair.rs`);
//! - `unit.rs`: one unit's transaction, its operations resolved by `resolve.rs`, its
//!   streams moved by `pump.rs`, its stalls and lock waits examined by `probes.rs`;
//! - `failure.rs`: what a unit that failed for good reports;
//! - `salvage.rs`: the post-data objects created one by one when their unit could not be;
//! - `report.rs`: the run's report, or what an interruption left.

mod bad_bytes;
mod failure;
#[cfg(test)]
mod fixtures;
mod options;
mod pair;
mod probes;
mod progress;
pub(crate) mod pump;
mod report;
mod resolve;
mod salvage;
pub mod schedule;
mod search_path;
mod sequences;
mod snapshot;
mod stage;
mod unit;
mod workers;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::time::Instant;

use crate::connect::Connection;
use crate::error::{Error, Kind, Result};
use crate::ledger::{Ledger, Moved};
use crate::plan::units::{UnitId, Work};
use crate::poison::Locked;
use crate::report::RunReport;

pub use options::{CopyOptions, Event, DEFAULT_LOCK_TIMEOUT, DEFAULT_STALL_TIMEOUT};
pub use snapshot::{export_snapshot, ExportedSnapshot};

use progress::Progress;
use schedule::State;
use snapshot::Snapshot;
use stage::Stage;
use workers::Workers;

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
    let stage = Stage {
        work,
        source_info: source.info.clone(),
        target_info: target_info.clone(),
        ledger,
        options,
        search_path: search_path::target_search_path(source).await?,
        hashing: tokio::sync::OnceCell::new(),
        on_event,
    };
    let progress = Progress::new(work, done, salvaged);
    let snapshot = Snapshot::new(source, &snapshot.id);
    let pending = work.units.len() - progress.schedule.locked().count(State::Done);
    let jobs = work.jobs.min(pending).max(1);
    if let Err(e) = Workers::new(&stage, &progress, &snapshot)
        .run(jobs, stop)
        .await
    {
        if e.kind() == Kind::Interrupted {
            let done = progress.done_units(work);
            return Err(Error::new(
                Kind::Interrupted,
                report::interrupted(work, &done),
            ));
        }
        return Err(e);
    }
    if !progress.failures.locked().is_empty() {
        salvage::salvage(&stage, &progress, &snapshot).await;
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok(report::run_report(
        work,
        &progress,
        done,
        seconds,
        snapshot.renewed(),
    ))
}
