//! What the stage hands back: the [`RunReport`] of a run that ran to its end, or the
//! message of one that was interrupted.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;

use crate::catalog::TableName;
use crate::ledger::Moved;
use crate::plan::units::{UnitId, UnitKind, Work};
use crate::poison::Locked;
use crate::report::{Resumed, RunReport, TableReport};

use super::progress::Progress;

/// The report of a run of `work` that skipped the units in `done` and took `seconds`.
pub(super) fn run_report(
    work: &Work,
    progress: &Progress,
    done: &BTreeMap<UnitId, Moved>,
    seconds: f64,
    snapshot_renewed: bool,
) -> RunReport {
    let failures = progress.failures.locked().clone();
    let tables: Vec<TableReport> = progress
        .completed()
        .into_iter()
        .map(|i| progress.table_report(work, i))
        .collect();
    let warnings = warnings(&tables);
    RunReport {
        schema: work.counts.clone(),
        skipped: work.skipped.clone(),
        content: work.content,
        source: work.source.clone(),
        target: work.target.clone(),
        tables,
        seconds,
        failures,
        retries: progress.retries.load(Ordering::SeqCst),
        resumed: resumed(work, done),
        snapshot_renewed,
        snapshot: None,
        warnings,
    }
}

/// What a resumed run found done (`None` for a run that skipped nothing).
fn resumed(work: &Work, done: &BTreeMap<UnitId, Moved>) -> Option<Resumed> {
    if done.is_empty() {
        return None;
    }
    Some(Resumed {
        units_skipped: done.len(),
        units_total: work.units.len(),
        rows_skipped: work
            .units
            .iter()
            .filter(|u| u.moves_rows())
            .filter_map(|u| done.get(&u.id))
            .map(|m| m.rows)
            .sum(),
        bytes_skipped: done.values().map(|m| m.bytes).sum(),
        tables_done_before: work
            .tables
            .iter()
            .enumerate()
            .filter(|(i, _)| {
                work.completing(*i)
                    .is_some_and(|u| done.contains_key(&u.id))
            })
            .map(|(_, t)| t.target.clone())
            .collect(),
    })
}

/// A sync that rewrote most of a table did more work than reloading it.
fn warnings(tables: &[TableReport]) -> Vec<String> {
    tables
        .iter()
        .filter_map(|t| {
            let s = t.sync.as_ref()?;
            let changed = s.inserted + s.updated + s.deleted;
            let rows = s.source_rows.max(s.target_rows);
            (rows >= 1000 && (changed * 2 > rows || s.reloaded)).then(|| {
                format!(
                    "{}: most of its {rows} rows differed; for a table that changes this \
                     much, --mode truncate is faster",
                    t.table
                )
            })
        })
        .collect()
}

/// What an interruption leaves, the `done` units being those committed by this run and
/// by the one it resumed: which tables are committed on the target, which parts of
/// split tables are kept, and how to go on.
pub(super) fn interrupted(work: &Work, done: &BTreeSet<&UnitId>) -> String {
    let committed: Vec<&TableName> = work
        .tables
        .iter()
        .enumerate()
        .filter(|(i, _)| work.completing(*i).is_some_and(|u| done.contains(&u.id)))
        .map(|(_, t)| &t.target)
        .collect();
    let total = work
        .tables
        .iter()
        .filter(|t| t.action != crate::plan::Action::Keep)
        .count();
    let parts = work
        .units
        .iter()
        .filter(|u| u.kind == UnitKind::Part && done.contains(&u.id))
        .count();
    let mut message =
        if committed.is_empty() {
            "interrupted: no table is committed on the target".to_string()
        } else {
            format!(
            "interrupted: {} of {total} tables {} committed on the target ({}) and {} as copied",
            committed.len(),
            if committed.len() == 1 { "is" } else { "are" },
            crate::text::short_list(&committed, 5),
            if committed.len() == 1 { "stays" } else { "stay" },
        )
        };
    message.push_str("; the tables being loaded were rolled back, as they were before");
    if parts > 0 {
        message.push_str(&format!(
            ", and {} of split tables {} kept in their staging tables",
            crate::text::plural(parts, "loaded part", "loaded parts"),
            if parts == 1 { "is" } else { "are" }
        ));
    }
    message.push_str(
        ". The run is recorded on the target: run the same command with --resume to go on \
         from there, or `pgbarge clean` to drop what it left.",
    );
    message
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::copy::fixtures;
    use crate::plan::{Action, CopyFormat};
    use crate::sync::SyncStats;

    fn done(units: &[(&str, Option<u64>, u64)]) -> BTreeMap<UnitId, Moved> {
        units
            .iter()
            .map(|&(id, rows, bytes)| (fixtures::unit_id(id), Moved { rows, bytes }))
            .collect()
    }

    #[test]
    fn a_fresh_run_resumed_nothing() {
        assert!(resumed(&fixtures::work(), &BTreeMap::new()).is_none());
    }

    #[test]
    fn a_resumed_run_counts_what_it_skipped() {
        let work = fixtures::work();
        let done = done(&[
            ("prepare", None, 0),
            ("table a", Some(10), 100),
            ("part b 0", Some(5), 50),
        ]);
        let r = resumed(&work, &done).expect("resumed");
        assert_eq!(r.units_skipped, 3);
        assert_eq!(r.units_total, 7);
        assert_eq!(
            r.rows_skipped,
            Some(15),
            "prepare moves no rows: its count is not needed"
        );
        assert_eq!(r.bytes_skipped, 150);
        assert_eq!(
            r.tables_done_before,
            [fixtures::name("a")],
            "b's finish did not run"
        );
    }

    #[test]
    fn rows_skipped_are_unknown_if_one_count_was_not_written() {
        let done = done(&[("table a", Some(10), 100), ("table c", None, 30)]);
        let r = resumed(&fixtures::work(), &done).expect("resumed");
        assert_eq!(r.rows_skipped, None);
        assert_eq!(r.bytes_skipped, 130);
    }

    fn synced(rows: u64, changed: u64, reloaded: bool) -> TableReport {
        TableReport {
            table: fixtures::name("t"),
            action: Action::Sync,
            format: CopyFormat::Binary,
            rows,
            bytes: 0,
            seconds: 1.0,
            sync: Some(SyncStats {
                source_rows: rows,
                target_rows: rows,
                updated: changed,
                reloaded,
                ..Default::default()
            }),
        }
    }

    #[test]
    fn a_sync_that_rewrote_most_of_a_big_table_suggests_truncate() {
        let w = warnings(&[
            synced(2000, 1500, false),
            synced(2000, 10, false),
            synced(500, 500, true),
            synced(1000, 0, true),
        ]);
        assert_eq!(w.len(), 2, "{w:?}");
        assert_eq!(
            w[0],
            "public.t: most of its 2000 rows differed; for a table that changes this much, \
             --mode truncate is faster"
        );
        assert!(w[1].contains("most of its 1000 rows"), "a reload: {w:?}");
        let mut loaded = synced(5000, 5000, false);
        loaded.sync = None;
        assert!(warnings(&[loaded]).is_empty(), "only syncs");
    }

    #[test]
    fn an_interruption_says_what_stays_and_how_to_go_on() {
        let work = fixtures::work();
        let ids = [
            fixtures::unit_id("prepare"),
            fixtures::unit_id("table a"),
            fixtures::unit_id("part b 0"),
        ];
        let message = interrupted(&work, &ids.iter().collect());
        assert_eq!(
            message,
            "interrupted: 1 of 3 tables is committed on the target (public.a) and stays as \
             copied; the tables being loaded were rolled back, as they were before, and 1 \
             loaded part of split tables is kept in their staging tables. The run is recorded \
             on the target: run the same command with --resume to go on from there, or \
             `pgbarge clean` to drop what it left."
        );
        let message = interrupted(&work, &BTreeSet::new());
        assert!(
            message.starts_with(
                "interrupted: no table is committed on the target; the tables being loaded \
                 were rolled back, as they were before. The run"
            ),
            "{message}"
        );
    }
}
