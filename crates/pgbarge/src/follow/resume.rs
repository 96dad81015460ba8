//! Going on with a followed copy that was interrupted before its copy finished.
//!
//! The stream is exact per table: a table's rows were copied from one snapshot of the
//! source, and the stream skips, for that table, the transactions that snapshot saw
//! (the slot was created before any of the copy's snapshots, so every other transaction
//! is in it). The interrupted run read one snapshot and the resumed run reads another:
//! each table completed before the interruption keeps the first, the others are copied
//! whole from the second. A split table with only some parts committed would mix the
//! two, so its committed parts are undone (its staging table emptied, their records
//! removed) and it loads whole from the second snapshot.

use std::collections::BTreeSet;

use crate::catalog::TableName;
use crate::connect::Connection;
use crate::error::{Error, Kind, Result, Side};
use crate::ledger::{SavedRun, Store};
use crate::plan::units::{Op, UnitId, Work};

/// How an interrupted run's tables stand, for a followed resume.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Restart {
    /// Tables (indexes into [`Work::tables`]) complete from the first snapshot.
    pub whole: Vec<usize>,
    /// Committed units of tables only partly loaded: to run again.
    pub redo: Vec<UnitId>,
    /// The staging tables those units loaded: emptied first.
    pub empty: Vec<TableName>,
}

/// Which tables of `work` are complete among the `done` units, and what must be undone
/// so that every other table loads from one snapshot.
pub fn restart(work: &Work, done: &BTreeSet<&UnitId>) -> Restart {
    let mut out = Restart::default();
    for (i, table) in work.tables.iter().enumerate() {
        if work.completing(i).is_some_and(|u| done.contains(&u.id)) {
            out.whole.push(i);
            continue;
        }
        let loaded: Vec<&UnitId> = work
            .units
            .iter()
            .filter(|u| done.contains(&u.id) && moves_rows_of(&u.ops, i))
            .map(|u| &u.id)
            .collect();
        if !loaded.is_empty() {
            out.redo.extend(loaded.into_iter().cloned());
            out.empty
                .extend(table.staging.iter().chain(&table.leaf_staging).cloned());
        }
    }
    out
}

/// Whether `ops` move rows of table `i`.
fn moves_rows_of(ops: &[Op], i: usize) -> bool {
    ops.iter().any(|op| match op {
        Op::Copy { table, .. } | Op::SyncStage { table, .. } => *table == i,
        _ => false,
    })
}

/// Makes the interrupted `run` ready to resume with its tables each from one snapshot:
/// ends what is left of its server sessions (a killed client's session can still hold
/// its locks, and even commit), reads what is committed, and undoes what [`restart`]
/// finds (on the target, in one transaction). Returns the run as it now stands and the
/// tables complete from its first snapshot.
pub async fn prepare(
    target: &Connection,
    store: &Store,
    run: SavedRun,
) -> Result<(SavedRun, Vec<usize>)> {
    store
        .end_sessions(&target.client, run.id, target.server_version_num)
        .await?;
    let mut run = match store.last_run(&target.client).await? {
        Some(now) if now.id == run.id => now,
        _ => {
            return Err(Error::new(
                Kind::Copy,
                "the interrupted run disappeared from the target's ledger while resuming \
                 (another pgbarge finished or cleaned it); nothing was done.",
            ))
        }
    };
    let plan = restart(&run.work, &run.done.keys().collect());
    if !plan.redo.is_empty() {
        let mut sql = vec!["BEGIN".to_string()];
        sql.extend(plan.empty.iter().map(|t| format!("TRUNCATE {}", t.sql())));
        sql.push(store.forget_units_sql(run.id, &plan.redo));
        sql.push("COMMIT".into());
        target
            .client
            .batch_execute(&sql.join(";\n"))
            .await
            .map_err(|e| {
                Error::postgres(
                    Kind::Copy,
                    Side::Target,
                    "undoing the parts of a table loaded from the first snapshot",
                    e,
                )
            })?;
        for unit in &plan.redo {
            run.done.remove(unit);
        }
    }
    Ok((run, plan.whole))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::fixtures::{plan, table};
    use crate::plan::units::UnitKind;
    use crate::plan::Action;

    #[test]
    fn tables_are_kept_whole_redone_or_left_to_the_second_snapshot() {
        let work = plan(vec![
            table("small", Action::Create, 0),
            table("big", Action::Create, 3),
            table("other", Action::Create, 0),
        ])
        .work();
        let ids = |pred: &dyn Fn(&crate::plan::units::Unit) -> bool| -> Vec<UnitId> {
            work.units
                .iter()
                .filter(|u| pred(u))
                .map(|u| u.id.clone())
                .collect()
        };
        let prepare_unit = ids(&|u| u.kind == UnitKind::Prepare);
        let small = ids(&|u| u.completes == vec![0]);
        let big_parts = ids(&|u| u.kind == UnitKind::Part);
        assert_eq!(prepare_unit.len(), 1, "{:#?}", work.units);
        assert_eq!(small.len(), 1);
        assert_eq!(big_parts.len(), 3);

        // Prepared, small loaded, one part of big committed; other not begun.
        let done: Vec<&UnitId> = prepare_unit
            .iter()
            .chain(&small)
            .chain(&big_parts[..1])
            .collect();
        let r = restart(&work, &done.into_iter().collect());
        assert_eq!(r.whole, vec![0]);
        assert_eq!(r.redo, big_parts[..1].to_vec());
        assert_eq!(
            r.empty,
            work.tables[1].staging.iter().cloned().collect::<Vec<_>>()
        );
        assert_eq!(r.empty.len(), 1);

        // Nothing loaded: nothing to undo, nothing whole.
        assert_eq!(restart(&work, &BTreeSet::new()), Restart::default());
    }
}
