//! The follower's loop: rounds until the goal, a stop or a take-over; a round that broke
//! a constraint redone strictly in the source's order; a lost link renewed and the follow
//! claimed again.

use std::future::Future;
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use serde::Serialize;

use crate::connect::connect;
use crate::error::{Error, Result, Side};

use super::follower::{Follower, PATIENCE};
use super::link::answered;
use super::pgoutput::Lsn;
use super::progress::{FollowEvent, Lag};
use super::round::Round;
use super::{source, state};

/// How long to wait between rounds when nothing new was found.
const IDLE: Duration = Duration::from_millis(250);

/// How long to wait for a connection already given up to answer.
const GIVE_UP: Duration = Duration::from_secs(5);

/// Until when to follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Goal {
    /// Until stopped (a signal, or another pgbarge taking over).
    Stopped,
    /// Until every transaction committed before this source position is applied.
    Drained(Lsn),
}

impl Goal {
    /// The source position a round reads up to, if any.
    fn upto(self) -> Option<Lsn> {
        match self {
            Goal::Drained(lsn) => Some(lsn),
            Goal::Stopped => None,
        }
    }
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

impl Follower<'_> {
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
                        self.round(Some(at), true).await?;
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
                let round = self.round(goal.upto(), strict).await?;
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
        // Another pgbarge (a cut-over, say) that claimed the follow while this one's link
        // was down has cleared its stop request again: the follower's session it records
        // is then not this one's, and the follow is theirs.
        let holder = state::claimed_by(&self.target.get().client, &self.store, &slot).await?;
        if holder != Some(self.claimed_by) {
            return Ok(false);
        }
        self.lookup = connect(&self.source.given.info, Side::Source).await?;
        self.claimed_by = state::claim(&self.target.get().client, &self.store, &slot, PATIENCE)
            .await?
            .pid;
        source::release(&self.source.get().client, &slot).await?;
        if let Some(f) = state::load(&self.target.get().client, &self.store).await? {
            self.applied = f.applied_lsn();
            self.following = f;
        }
        self.read_target().await?;
        Ok(true)
    }
}

/// A constraint the target checked (class 23): the flush's order, not the data, may be
/// at fault.
fn is_constraint(e: &Error) -> bool {
    e.sql_state().is_some_and(|s| s.code().starts_with("23"))
}
