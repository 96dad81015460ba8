//! What the follower tells whoever shows progress: its events, and how far behind the
//! target is.

use std::time::Instant;

use serde::Serialize;

use crate::error::Result;

use super::follower::Follower;
use super::pgoutput::Lsn;
use super::source;

/// Microseconds from the Unix epoch to PostgreSQL's (2000-01-01).
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

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

impl Follower<'_> {
    /// The lag now, and a warning when the slot is close to being invalidated.
    pub(super) async fn lag(
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
}
