//! What a follow keeps in the target's ledger (its `follow` table): its slot and
//! publication, the tables with the columns the stream carries, the copy's snapshot, and
//! the source position applied — written in the same transaction as the changes it
//! covers, so that a restarted follower knows exactly what the target holds.
//!
//! One follower works at a time: it holds a session advisory lock on the target. Another
//! pgbarge (a `cutover`, a resumed `follow`) asks it to stop through the row, and ends
//! its session if it does not answer (a killed follower's session can outlive it).

use crate::xid::XidSnapshot;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio_postgres::types::Type;
use tokio_postgres::Client;

use crate::catalog::TableName;
use crate::error::{Error, Kind, Result, Side, SqlState};
use crate::ledger::Store;
use crate::quote::literal;

use super::pgoutput::Lsn;
use super::source::StreamColumn;

/// A followed table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FollowedTable {
    pub source: TableName,
    pub target: TableName,
    /// The columns the stream carries, as last seen: a change of them is DDL.
    pub columns: Vec<StreamColumn>,
    /// The snapshot the table was copied from, when not the follow's own: a followed
    /// copy resumed after an interruption keeps the tables it had completed, copied
    /// from its first snapshot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<XidSnapshot>,
}

/// The follow recorded on the target.
#[derive(Debug, Clone, Serialize)]
pub struct Following {
    pub slot: String,
    pub publication: String,
    /// The source as `user@host:port/db`.
    pub source: String,
    pub tables: Vec<FollowedTable>,
    /// The copy's snapshot (`pg_current_snapshot()` text): the transactions it saw are
    /// in the copied rows, and are skipped in the stream. `None` while the copy runs.
    pub snapshot: Option<XidSnapshot>,
    /// Just past the last source transaction applied.
    pub applied: Option<Lsn>,
    pub applied_at: Option<String>,
    /// Changes applied so far.
    pub changes: i64,
    pub created_at: String,
}

impl Following {
    pub fn applied_lsn(&self) -> Option<Lsn> {
        self.applied
    }
}

const INSERT: &str = "INSERT INTO {L}.follow (slot, publication, source, tables) \
    VALUES ($1, $2, $3, $4::text::jsonb)";

const LOAD: &str = "SELECT slot, publication, source, tables::text, snapshot, \
    applied_lsn, date_trunc('second', applied_at)::text, changes, \
    date_trunc('second', created_at)::text FROM {L}.follow ORDER BY created_at DESC LIMIT 1";

/// The follower's lock: one key per slot.
const TRY_LOCK: &str =
    "SELECT pg_catalog.pg_try_advisory_lock(pg_catalog.hashtext('pgbarge follow ' || $1))";
const UNLOCK: &str =
    "SELECT pg_catalog.pg_advisory_unlock(pg_catalog.hashtext('pgbarge follow ' || $1))";

fn err(doing: &'static str) -> impl Fn(tokio_postgres::Error) -> Error {
    move |e| Error::postgres(Kind::Copy, Side::Target, doing, e)
}

/// Whether `name` is one pgbarge gives a slot and publication (see
/// [`super::new_name`]): `pgbarge_` and 12 lower-case hex digits.
pub fn is_our_name(name: &str) -> bool {
    name.strip_prefix("pgbarge_").is_some_and(|hex| {
        hex.len() == 12
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// The tables as the follow records them.
pub(super) fn tables_json(tables: &[FollowedTable]) -> Result<String> {
    serde_json::to_string(tables)
        .map_err(|e| Error::new(Kind::Copy, format!("cannot record the tables: {e}")))
}

/// Records a new follow (the ledger must exist: see [`Store::ensure`]).
pub async fn record(
    target: &Client,
    store: &Store,
    slot: &str,
    publication: &str,
    source: &str,
    tables: &[FollowedTable],
) -> Result<()> {
    let tables = tables_json(tables)?;
    target
        .execute(&store.sql(INSERT), &[&slot, &publication, &source, &tables])
        .await
        .map_err(err("recording the follow"))?;
    Ok(())
}

/// The follow recorded on the target, if any.
pub async fn load(target: &Client, store: &Store) -> Result<Option<Following>> {
    if !store.holds(target, "follow").await? {
        return Ok(None);
    }
    let Some(row) = target
        .query_typed_opt(&store.sql(LOAD), &[])
        .await
        .map_err(err("reading the follow"))?
    else {
        return Ok(None);
    };
    let tables: String = row.get(3);
    let (slot, publication): (String, String) = (row.get(0), row.get(1));
    // The names drive what is done on the source, often as a superuser (the slot read,
    // advanced and dropped, the publication dropped): only names pgbarge gives are
    // taken from the target, never another subscriber's slot.
    if !is_our_name(&slot) || publication != slot {
        return Err(Error::new(
            Kind::Copy,
            format!(
                "the follow recorded on the target names slot {} and publication {}, \
                 which pgbarge did not create (its are named pgbarge_ and 12 hex digits, \
                 the same for both): nothing was done on the source. Remove that record \
                 from the ledger's follow table if it is not yours.",
                crate::quote::printable(&slot),
                crate::quote::printable(&publication)
            ),
        )
        .on(Side::Target));
    }
    Ok(Some(Following {
        slot,
        publication,
        source: row.get(2),
        tables: serde_json::from_str(&tables).map_err(|e| {
            Error::new(
                Kind::Copy,
                format!("the follow recorded on the target cannot be read: {e}"),
            )
        })?,
        snapshot: row
            .try_get(4)
            .map_err(err("reading the follow's snapshot"))?,
        applied: row.get(5),
        applied_at: row.get(6),
        changes: row.get(7),
        created_at: row.get(8),
    }))
}

/// Sets the copy's snapshot once the copy committed: following may start.
/// `tables` carry the snapshot of those copied by an interrupted run, when resumed.
pub async fn copied(
    target: &Client,
    store: &Store,
    slot: &str,
    snapshot: &XidSnapshot,
    tables: &[FollowedTable],
) -> Result<()> {
    let tables = tables_json(tables)?;
    target
        .execute(
            &store.sql(
                "UPDATE {L}.follow SET snapshot = $2, tables = $3::text::jsonb WHERE slot = $1",
            ),
            &[&slot, &snapshot, &tables],
        )
        .await
        .map_err(err("recording the copy's snapshot"))?;
    Ok(())
}

/// Records `tables` (with the snapshots they were copied from) while the copy goes on.
pub async fn record_tables(
    target: &Client,
    store: &Store,
    slot: &str,
    tables: &[FollowedTable],
) -> Result<()> {
    let tables = tables_json(tables)?;
    target
        .execute(
            &store.sql("UPDATE {L}.follow SET tables = $2::text::jsonb WHERE slot = $1"),
            &[&slot, &tables],
        )
        .await
        .map_err(err("recording the followed tables"))?;
    Ok(())
}

/// The statement, run in the transaction that applied changes up to `lsn`, recording
/// it; it returns whether another pgbarge asked this follower to stop.
pub fn position_sql(
    store: &Store,
    slot: &str,
    lsn: Lsn,
    changes: usize,
    tables: Option<&str>,
) -> String {
    format!(
        "UPDATE {} SET applied_lsn = {}, applied_at = pg_catalog.now(), \
         changes = changes + {changes}{} WHERE slot = {} RETURNING stop_requested",
        store.table("follow"),
        literal(&lsn.to_string()),
        tables
            .map(|t| format!(", tables = {}::jsonb", literal(t)))
            .unwrap_or_default(),
        literal(slot)
    )
}

/// Whether another pgbarge asked the follower to stop — or ended the follow (a
/// cut-over, `follow --drop`), which removes its record.
pub async fn stop_requested(target: &Client, store: &Store, slot: &str) -> Result<bool> {
    match target
        .query_opt(
            &store.sql("SELECT stop_requested FROM {L}.follow WHERE slot = $1"),
            &[&slot],
        )
        .await
    {
        Ok(row) => Ok(row.is_none_or(|r| r.get(0))),
        Err(e) if e.code() == Some(&SqlState::UNDEFINED_TABLE) => Ok(true),
        Err(e) => Err(err("reading the follow")(e)),
    }
}

/// A claim of the follow: this session's process id, recorded as the follower's.
#[derive(Debug, Clone, Copy)]
pub struct Claimed {
    /// Another follower had to be stopped.
    pub replaced: bool,
    pub pid: i32,
}

/// Makes this session the follower: asks the one running (if any) to stop, waits for
/// it, and after `patience` ends its session (a killed process's server session lives
/// on until the server notices).
pub async fn claim(
    target: &Client,
    store: &Store,
    slot: &str,
    patience: Duration,
) -> Result<Claimed> {
    let started = Instant::now();
    let mut asked = false;
    loop {
        // Typed statements, here and below: one round trip each to a far target.
        let got: bool = target
            .query_typed_one(TRY_LOCK, &[(&slot, Type::TEXT)])
            .await
            .map_err(err("taking over the follow"))?
            .get(0);
        if got {
            let pid: i32 = target
                .query_typed_one(
                    &store.sql(
                        "UPDATE {L}.follow SET stop_requested = false, \
                         follower_pid = pg_catalog.pg_backend_pid() WHERE slot = $1 \
                         RETURNING follower_pid",
                    ),
                    &[(&slot, Type::TEXT)],
                )
                .await
                .map_err(err("taking over the follow"))?
                .get(0);
            return Ok(Claimed {
                replaced: asked,
                pid,
            });
        }
        if !asked {
            target
                .execute(
                    &store.sql("UPDATE {L}.follow SET stop_requested = true WHERE slot = $1"),
                    &[&slot],
                )
                .await
                .map_err(err("asking the follower to stop"))?;
            asked = true;
        }
        if started.elapsed() > patience {
            target
                .execute(
                    &store.sql(
                        "SELECT pg_catalog.pg_terminate_backend(follower_pid) FROM {L}.follow \
                         WHERE slot = $1 AND follower_pid <> pg_catalog.pg_backend_pid()",
                    ),
                    &[&slot],
                )
                .await
                .map_err(err("ending the previous follower's session"))?;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The process id of the session that last claimed the follow (see [`claim`]).
pub async fn claimed_by(target: &Client, store: &Store, slot: &str) -> Result<Option<i32>> {
    Ok(target
        .query_typed_opt(
            &store.sql("SELECT follower_pid FROM {L}.follow WHERE slot = $1"),
            &[(&slot, Type::TEXT)],
        )
        .await
        .map_err(err("reading the follow"))?
        .and_then(|r| r.get(0)))
}

/// Whether the session of the follower that last claimed the follow is still open.
pub async fn follower_running(target: &Client, store: &Store, slot: &str) -> Result<bool> {
    Ok(target
        .query_one(
            &store.sql(
                "SELECT EXISTS (SELECT FROM {L}.follow f \
                   JOIN pg_catalog.pg_stat_activity a ON a.pid = f.follower_pid \
                  WHERE f.slot = $1 AND a.pid <> pg_catalog.pg_backend_pid())",
            ),
            &[&slot],
        )
        .await
        .map_err(err("reading the follow"))?
        .get(0))
}

/// Gives the follow up (released by another pgbarge, or by this one stopping).
pub async fn release(target: &Client, slot: &str) {
    let _ = target.query_one(UNLOCK, &[&slot]).await;
}

/// Removes the follow from the ledger (and the ledger, if nothing else is in it).
pub async fn forget(target: &Client, store: &Store, slot: &str) -> Result<()> {
    target
        .execute(
            &store.sql("DELETE FROM {L}.follow WHERE slot = $1"),
            &[&slot],
        )
        .await
        .map_err(err("removing the follow"))?;
    store.tidy(target).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_names_pgbarge_gives_are_ours() {
        assert!(is_our_name(&super::super::new_name()));
        assert!(is_our_name("pgbarge_0123456789ab"));
        for other in [
            "pgbarge_0123456789AB",
            "pgbarge_123",
            "sub_0123456789ab",
            "pgbarge_0123456789abc",
        ] {
            assert!(!is_our_name(other), "{other}");
        }
    }
}
