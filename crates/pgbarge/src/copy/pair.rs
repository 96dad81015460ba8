//! A worker's pair of connections: a target session set up for loading, and a source
//! session reading the run's snapshot.

use std::time::Duration;

use crate::connect::{connect, Backend, Canceller, Connection};
use crate::error::{Error, Kind, Result, Side};
use crate::ledger::Ledger;
use crate::quote::literal;

use super::snapshot::Snapshot;
use super::stage::Stage;

/// Target sessions wait this long for a lock, then give up and retry after a backoff: a
/// waiting ACCESS EXCLUSIVE request (TRUNCATE, DROP) queues every later reader of the
/// table behind it, so pgbarge must never wait long in that queue.
const SET_LOCK_TIMEOUT: &str = "SELECT pg_catalog.set_config('lock_timeout', $1, false)";

pub(super) struct Pair {
    pub source: Connection,
    pub target: Connection,
}

/// The sessions of one worker's connection pair, to end them if they go stale.
#[derive(Debug, Clone)]
pub(super) struct PairBackends {
    source: Backend,
    target: Backend,
}

impl Pair {
    /// A new pair, the source reading the run's snapshot (renewed if its holder was
    /// lost). `stale`: the sessions of this worker's previous pair, ended first so that
    /// they release their locks.
    pub async fn open<L: Ledger>(
        stage: &Stage<'_, L>,
        snapshot: &Snapshot<'_>,
        stale: Option<&PairBackends>,
    ) -> Result<Pair> {
        let (target, source) = tokio::try_join!(
            connect(&stage.target_info, Side::Target),
            connect(&stage.source_info, Side::Source)
        )?;
        if let Some(stale) = stale {
            tokio::join!(
                target.end_session(&stale.target),
                source.end_session(&stale.source)
            );
        }
        let session = target_session_sql(
            stage.ledger.session_sql(),
            stage.options.source_encoding.as_deref(),
            stage.options.lock_timeout,
        );
        target
            .client
            .batch_execute(&session)
            .await
            .map_err(|e| Error::postgres(Kind::Copy, Side::Target, "setting up the session", e))?;
        snapshot.adopt(stage, &source, &target).await?;
        Ok(Pair { source, target })
    }

    pub fn backends(&self) -> PairBackends {
        PairBackends {
            source: self.source.backend.clone(),
            target: self.target.backend.clone(),
        }
    }

    /// What cancels the pair's running queries, source first.
    pub fn cancellers(&self) -> [Canceller; 2] {
        [self.source.canceller(), self.target.canceller()]
    }
}

/// A new target session's setup: the ledger's record of it, the client encoding the
/// source's bytes really are in (`--source-encoding`), and the lock timeout.
fn target_session_sql(
    ledger_session: Option<String>,
    source_encoding: Option<&str>,
    lock_timeout: Duration,
) -> String {
    format!(
        "{}{}{}",
        ledger_session.map(|s| format!("{s}; ")).unwrap_or_default(),
        source_encoding
            .map(|e| format!("SET client_encoding = {}; ", literal(e)))
            .unwrap_or_default(),
        SET_LOCK_TIMEOUT.replace("$1", &literal(&format!("{}ms", lock_timeout.as_millis()))),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_target_session_records_itself_then_sets_encoding_and_lock_timeout() {
        assert_eq!(
            target_session_sql(None, None, Duration::from_secs(1)),
            "SELECT pg_catalog.set_config('lock_timeout', '1000ms', false)"
        );
        assert_eq!(
            target_session_sql(
                Some("INSERT INTO s VALUES (1)".into()),
                Some("LATIN1"),
                Duration::from_millis(250)
            ),
            "INSERT INTO s VALUES (1); SET client_encoding = 'LATIN1'; \
             SELECT pg_catalog.set_config('lock_timeout', '250ms', false)"
        );
    }
}
