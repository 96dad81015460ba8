//! The run's snapshot of the source: exported once by the connection that then holds it
//! open, adopted by every worker's source connection, and renewed if its holder is lost.

use crate::xid::XidSnapshot;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::connect::{connect, Connection};
use crate::error::{Error, Kind, Result, Side};
use crate::ledger::Ledger;
use crate::plan::SequenceValue;
use crate::quote::literal;

use super::options::Event;
use super::sequences;
use super::stage::{Stage, ROLLBACK};

/// Every source connection reads in a repeatable-read, read-only transaction...
const SOURCE_BEGIN: &str = "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY";
/// ...the first one exports its snapshot, the others adopt it: the target then equals
/// the source at one instant, even while the source is being written to. The time is
/// recorded with the run; which transactions it saw is what following skips
/// (`txid_current_snapshot` is `pg_current_snapshot` before PostgreSQL 13, same text).
const EXPORT_SNAPSHOT: &str = "SELECT pg_catalog.pg_export_snapshot(), \
     pg_catalog.transaction_timestamp()::text, pg_catalog.txid_current_snapshot()::text";

/// The run's snapshot of the source, exported by the connection that holds it open.
#[derive(Debug, Clone)]
pub struct ExportedSnapshot {
    pub id: String,
    /// When it was taken (the source's clock), recorded with the run.
    pub taken_at: String,
    /// The transactions it sees: `xmin:xmax:running,…`.
    pub xids: XidSnapshot,
}

/// Opens the snapshot transaction on `source` and exports it. `source` must then stay
/// open, and idle, for the whole run.
pub async fn export_snapshot(source: &Connection) -> Result<ExportedSnapshot> {
    source
        .client
        .batch_execute(SOURCE_BEGIN)
        .await
        .map_err(|e| Error::postgres(Kind::Copy, Side::Source, "starting the snapshot", e))?;
    let row = source
        .client
        .query_one(EXPORT_SNAPSHOT, &[])
        .await
        .map_err(|e| Error::postgres(Kind::Copy, Side::Source, "exporting the snapshot", e))?;
    let err = |e| Error::postgres(Kind::Copy, Side::Source, "reading the snapshot", e);
    Ok(ExportedSnapshot {
        id: row.try_get(0).map_err(err)?,
        taken_at: row.try_get(1).map_err(err)?,
        xids: row.try_get(2).map_err(err)?,
    })
}

/// The statements that start a source transaction on snapshot `id`. A SQL_ASCII source
/// validates what it sends against the client encoding: the declared `encoding` lets its
/// bytes through as they are (the target converts them).
fn adopt_sql(encoding: Option<&str>, id: &str) -> String {
    let encoding = encoding
        .map(|e| format!("SET client_encoding = {}; ", literal(e)))
        .unwrap_or_default();
    format!(
        "{encoding}{SOURCE_BEGIN}; SET TRANSACTION SNAPSHOT {}",
        literal(id)
    )
}

/// The source connection holding the snapshot: the caller's, or a new one after it was
/// lost.
enum Holder<'a> {
    Given(&'a Connection),
    Renewed(Box<Connection>),
}

impl Holder<'_> {
    fn connection(&self) -> &Connection {
        match self {
            Holder::Given(c) => c,
            Holder::Renewed(c) => c,
        }
    }
}

/// The snapshot being read now, and its holder.
struct Current<'a> {
    holder: Holder<'a>,
    id: String,
}

/// The run's snapshot, shared by the workers: adopted by each new source connection,
/// renewed (once per loss) by whichever worker first finds its holder gone.
pub(super) struct Snapshot<'a> {
    current: tokio::sync::Mutex<Current<'a>>,
    /// Set when a unit read from a renewed snapshot.
    renewed: AtomicBool,
}

impl<'a> Snapshot<'a> {
    /// Snapshot `id`, held open by `holder`.
    pub fn new(holder: &'a Connection, id: &str) -> Self {
        Snapshot {
            current: tokio::sync::Mutex::new(Current {
                holder: Holder::Given(holder),
                id: id.to_string(),
            }),
            renewed: AtomicBool::new(false),
        }
    }

    /// Whether the snapshot was renewed during the run.
    pub fn renewed(&self) -> bool {
        self.renewed.load(Ordering::SeqCst)
    }

    /// Starts `source`'s transaction on the run's snapshot. If the connection holding it
    /// is gone, so is the snapshot: a new one is exported (on a new holder) and adopted,
    /// and the report will say that the tables loaded from then on read a later instant
    /// (as does the ledger, through `target`, before the lock on the snapshot is let go:
    /// no unit reads the new snapshot before that is recorded).
    pub async fn adopt<L: Ledger>(
        &self,
        stage: &Stage<'_, L>,
        source: &Connection,
        target: &Connection,
    ) -> Result<()> {
        let encoding = stage.options.source_encoding.as_deref();
        let err = |e| Error::postgres(Kind::Copy, Side::Source, "adopting the snapshot", e);
        let mut current = self.current.lock().await;
        let first = source
            .client
            .batch_execute(&adopt_sql(encoding, &current.id))
            .await;
        let Err(first) = first else {
            return Ok(());
        };
        let holder_alive = tokio::time::timeout(
            Duration::from_secs(10),
            current.holder.connection().client.simple_query("SELECT 1"),
        )
        .await
        .is_ok_and(|r| r.is_ok());
        if holder_alive {
            return Err(err(first));
        }
        self.renew(stage, &mut current, target, &first).await?;
        source
            .client
            .batch_execute(&format!("{ROLLBACK}; {}", adopt_sql(encoding, &current.id)))
            .await
            .map_err(err)
    }

    /// Records on `target` that the snapshot is renewed, then exports a new one on a new
    /// holder. `lost`: why adopting the old one failed.
    async fn renew<L: Ledger>(
        &self,
        stage: &Stage<'_, L>,
        current: &mut Current<'a>,
        target: &Connection,
        lost: &tokio_postgres::Error,
    ) -> Result<()> {
        if let Some(sql) = stage.ledger.renewed_sql() {
            target.client.batch_execute(&sql).await.map_err(|e| {
                Error::postgres(Kind::Copy, Side::Target, "recording the new snapshot", e)
            })?;
        }
        let fresh = connect(&stage.source_info, Side::Source).await?;
        let exported = export_snapshot(&fresh).await?;
        current.holder = Holder::Renewed(Box::new(fresh));
        current.id = exported.id;
        self.renewed.store(true, Ordering::SeqCst);
        stage.event(Event::SnapshotRenewed {
            reason: crate::error::describe_pg(lost),
        });
        Ok(())
    }

    /// The `setval` statements of `sequences`, read on the holder, in the snapshot.
    pub async fn sequence_values(&self, sequences: &[SequenceValue]) -> Result<Vec<String>> {
        let current = self.current.lock().await;
        sequences::sequence_values(sequences, &current.holder.connection().client).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_transaction_adopts_the_snapshot_in_the_declared_encoding() {
        assert_eq!(
            adopt_sql(None, "00000003-1"),
            "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; \
             SET TRANSACTION SNAPSHOT '00000003-1'"
        );
        assert_eq!(
            adopt_sql(Some("WIN1252"), "x'y"),
            "SET client_encoding = 'WIN1252'; \
             BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; \
             SET TRANSACTION SNAPSHOT 'x''y'"
        );
    }
}
