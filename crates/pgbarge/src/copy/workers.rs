//! The workers: `jobs` at once, each taking ready units until none is left, on its own
//! pair of connections, and retrying a unit that failed transiently
//! ([`crate::retry::with_retries`]) on the same pair or a fresh one.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Mutex;

use crate::connect::Canceller;
use crate::error::{Error, Kind, Result, SqlState};
use crate::ledger::Ledger;
use crate::plan::units::Unit;
use crate::poison::Locked;

use super::options::Event;
use super::pair::{Pair, PairBackends};
use super::progress::Progress;
use super::snapshot::Snapshot;
use super::stage::{Stage, ROLLBACK};
use super::unit::{run_unit, Loaded};
use super::{failure, probes};

/// What the workers share.
pub(super) struct Workers<'r, 'a, L: Ledger> {
    stage: &'r Stage<'a, L>,
    progress: &'r Progress,
    snapshot: &'r Snapshot<'a>,
    /// Cancel handles of every open pair, by worker, so a stop cancels running queries.
    cancels: Mutex<BTreeMap<usize, [Canceller; 2]>>,
}

impl<'r, 'a, L: Ledger> Workers<'r, 'a, L> {
    pub fn new(
        stage: &'r Stage<'a, L>,
        progress: &'r Progress,
        snapshot: &'r Snapshot<'a>,
    ) -> Self {
        Workers {
            stage,
            progress,
            snapshot,
            cancels: Mutex::new(BTreeMap::new()),
        }
    }

    /// Runs `jobs` workers until no unit is left, or `stop` resolves (then the error is
    /// [`Kind::Interrupted`]). On an error, whatever still runs is cancelled.
    pub async fn run(&self, jobs: usize, stop: impl Future<Output = ()>) -> Result<()> {
        let workers = futures_util::future::try_join_all((0..jobs).map(|w| self.worker(w)));
        let outcome = tokio::select! {
            r = workers => r.map(|_| ()),
            _ = stop => Err(Error::new(Kind::Interrupted, "interrupted")),
        };
        if outcome.is_err() {
            self.progress.stopping.store(true, Ordering::SeqCst);
            self.cancel_all().await;
        }
        outcome
    }

    /// Cancels whatever every open pair is running, so no backend keeps working (and
    /// holding locks) after the run stopped. The connections close when their workers
    /// are dropped; the servers roll back.
    async fn cancel_all(&self) {
        let cancels: Vec<Canceller> = self
            .cancels
            .locked()
            .values()
            .flat_map(|p| p.iter().cloned())
            .collect();
        futures_util::future::join_all(cancels.iter().map(|c| c.cancel())).await;
    }

    /// Worker `w`: takes ready units until none is left. `Err` stops the run.
    async fn worker(&self, w: usize) -> Result<()> {
        let mut conns = Conns::default();
        while let Some(u) = self.progress.next_unit(self.stage).await {
            let unit = &self.stage.work.units[u];
            self.progress.start(self.stage, unit);
            match self.with_retries(&mut conns, unit, w).await {
                Ok((rows, bytes)) => self.progress.succeed(self.stage, u, &rows, bytes),
                Err(f) if f.stopping => return Ok(()),
                Err(f) => self.give_up(&mut conns, u, w, f.error).await?,
            }
        }
        Ok(())
    }

    /// Attempts at `unit` until one commits, it fails for good, or retries run out.
    async fn with_retries(
        &self,
        conns: &mut Conns,
        unit: &Unit,
        w: usize,
    ) -> std::result::Result<Loaded, Failed> {
        let options = &self.stage.options;
        crate::retry::with_retries(
            &options.retry,
            Failed::retryable,
            async |_| conns.attempt(self, unit, w).await,
            async |attempt, f: &Failed, delay| {
                self.progress.retries.fetch_add(1, Ordering::SeqCst);
                self.stage.event(Event::Retrying {
                    unit: unit.title.clone(),
                    attempt,
                    retries: options.retry.retries,
                    delay,
                    reason: f.reason.clone(),
                });
            },
        )
        .await
    }

    /// Unit `u` failed for good with `failed`: its pair is given up (it may be
    /// mid-stream), and the failure recorded — or, with `fail_fast`, the run stopped.
    async fn give_up(&self, conns: &mut Conns, u: usize, w: usize, failed: Error) -> Result<()> {
        let (stage, unit) = (self.stage, &self.stage.work.units[u]);
        if let Some(p) = conns.pair.take() {
            let _ = p.target.client.batch_execute(ROLLBACK).await;
            self.cancels.locked().remove(&w);
        }
        let err = failure::locate_bad_bytes(stage, failed, unit).await;
        let err = failure::explain(err, unit, stage.work);
        if stage.options.fail_fast {
            self.progress.stopping.store(true, Ordering::SeqCst);
            self.progress.changed.notify_waiters();
            return Err(err);
        }
        self.progress.fail(stage, u, err);
        Ok(())
    }
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

impl Failed {
    /// Whether another attempt could succeed.
    fn retryable(&self) -> bool {
        !self.stopping && self.error.is_transient()
    }
}

impl Conns {
    /// One attempt at `unit`. A transient failure leaves the connections ready for the
    /// next attempt (see [`Conns::recover`]).
    async fn attempt<L: Ledger>(
        &mut self,
        workers: &Workers<'_, '_, L>,
        unit: &Unit,
        w: usize,
    ) -> std::result::Result<Loaded, Failed> {
        let error = match self.run(workers, unit, w).await {
            Ok(loaded) => return Ok(loaded),
            Err(error) => error,
        };
        let stopping = workers.progress.is_stopping();
        let mut reason = error.message().to_string();
        if !stopping && error.is_transient() {
            if let Some(holders) = self.recover(workers, unit, w, &error).await {
                reason = format!("waiting for a lock held by {holders}");
            }
        }
        Err(Failed {
            error,
            reason,
            stopping,
        })
    }

    /// Runs `unit` on the pair, opened first if there is none.
    async fn run<L: Ledger>(
        &mut self,
        workers: &Workers<'_, '_, L>,
        unit: &Unit,
        w: usize,
    ) -> Result<Loaded> {
        let pair = match self.pair.take() {
            Some(p) => p,
            None => {
                let p = Pair::open(workers.stage, workers.snapshot, self.stale.as_ref()).await?;
                self.stale = None;
                workers.cancels.locked().insert(w, p.cancellers());
                p
            }
        };
        let pair = self.pair.insert(pair);
        run_unit(workers.stage, workers.progress, unit, pair).await
    }

    /// After a transient failure: a lost race or a lock wait rolls back and keeps the
    /// pair, and returns who holds the lock (if anyone can be named); anything else gives
    /// the pair up, its sessions to be ended before the next one works.
    async fn recover<L: Ledger>(
        &mut self,
        workers: &Workers<'_, '_, L>,
        unit: &Unit,
        w: usize,
        error: &Error,
    ) -> Option<String> {
        let raced = lost_race(error.is_catalog_race(), error.sql_state());
        let kept = match &self.pair {
            Some(p) if raced => p.target.client.batch_execute(ROLLBACK).await.is_ok(),
            _ => false,
        };
        match (&self.pair, kept) {
            (Some(p), true) => {
                let holders =
                    probes::lock_holders(workers.stage.work, unit, &p.target.client).await;
                (!holders.is_empty()).then_some(holders)
            }
            _ => {
                if let Some(p) = self.pair.take() {
                    self.stale = Some(p.backends());
                    workers.cancels.locked().remove(&w);
                }
                None
            }
        }
    }
}

/// Whether a transient failure was a lost race (for a catalog name, a lock, a
/// serializable snapshot) rather than a broken connection: the pair is then kept.
fn lost_race(catalog_race: bool, state: Option<&SqlState>) -> bool {
    catalog_race
        || matches!(
            state,
            Some(s) if *s == SqlState::LOCK_NOT_AVAILABLE
                || *s == SqlState::T_R_DEADLOCK_DETECTED
                || *s == SqlState::T_R_SERIALIZATION_FAILURE
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Side;

    #[test]
    fn a_lost_race_keeps_the_pair_a_broken_link_does_not() {
        assert!(lost_race(true, None));
        assert!(lost_race(false, Some(&SqlState::LOCK_NOT_AVAILABLE)));
        assert!(lost_race(false, Some(&SqlState::T_R_DEADLOCK_DETECTED)));
        assert!(lost_race(false, Some(&SqlState::T_R_SERIALIZATION_FAILURE)));
        assert!(!lost_race(false, None), "a reset connection has no state");
        assert!(!lost_race(false, Some(&SqlState::ADMIN_SHUTDOWN)));
    }

    #[test]
    fn only_a_transient_failure_outside_a_stop_is_retried() {
        let failed = |transient, stopping| Failed {
            error: Error::new(Kind::Copy, "x")
                .on(Side::Target)
                .transient(transient),
            reason: String::new(),
            stopping,
        };
        assert!(failed(true, false).retryable());
        assert!(!failed(false, false).retryable());
        assert!(!failed(true, true).retryable());
    }
}
