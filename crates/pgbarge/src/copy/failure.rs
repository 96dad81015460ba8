//! What a unit's failure for good says: the error with what the user can do about it,
//! the tables it leaves as they were, and the units it keeps from running.

use std::collections::{BTreeMap, BTreeSet};

use crate::catalog::TableName;
use crate::error::{Error, SqlState};
use crate::ledger::Ledger;
use crate::plan::units::{Op, Unit, UnitKind, Work};
use crate::report::UnitFailure;

use super::bad_bytes;
use super::stage::{copied_tables, Stage};

/// Advice for rows the target cannot read in its encoding.
const BAD_BYTES: &str = "The source sent bytes that are not valid in the target's encoding. \
    A SQL_ASCII source passes bytes through as they are: say what they really are with \
    --source-encoding (WIN1252 and LATIN1 are common), and the target converts them.";

/// The target could not read bytes the source sent in its encoding.
fn is_bad_bytes(err: &Error) -> bool {
    matches!(err.sql_state(), Some(state)
        if *state == SqlState::CHARACTER_NOT_IN_REPERTOIRE
            || *state == SqlState::UNTRANSLATABLE_CHARACTER)
}

/// For bytes the target could not read: names the source row and column holding them
/// (without `--source-encoding`, as UTF-8 is what a SQL_ASCII source is read as).
pub(super) async fn locate_bad_bytes<L: Ledger>(
    stage: &Stage<'_, L>,
    err: Error,
    unit: &Unit,
) -> Error {
    let table = copied_tables(unit)
        .next()
        .map(|i| &stage.work.tables[i].source);
    let column = err.server_context().and_then(bad_bytes::column_of);
    match table {
        Some(table) if is_bad_bytes(&err) && stage.options.source_encoding.is_none() => {
            match bad_bytes::locate(&stage.source_info, table, column).await {
                Some(row) => err.context(row),
                None => err,
            }
        }
        _ => err,
    }
}

/// Adds what the user needs to know to a unit's final error.
pub(super) fn explain(err: Error, unit: &Unit, work: &Work) -> Error {
    if err.sql_state() == Some(&SqlState::DISK_FULL) {
        return err.context(disk_full(unit, work));
    }
    err
}

/// What to do when the target ran out of disk space loading `unit`.
fn disk_full(unit: &Unit, work: &Work) -> String {
    let bytes: i64 = unit
        .completes
        .iter()
        .map(|&i| work.tables[i].estimated_bytes)
        .sum::<i64>()
        .max(unit.estimated_bytes);
    format!(
        "The target ran out of disk space loading {} (about {} on the source): free some \
         or grow its storage, then run the same command with --resume.",
        unit.title,
        crate::text::human_bytes(bytes.max(0) as u64)
    )
}

/// `err` with the advice its cause calls for, as the failure's report says it.
pub(super) fn advised(err: Error) -> Error {
    if is_bad_bytes(&err) {
        err.context(BAD_BYTES)
    } else {
        err
    }
}

/// The report of `unit` failing for good with `err`, which kept the `blocked` units
/// from running.
pub(super) fn unit_failure(
    work: &Work,
    unit: &Unit,
    err: &Error,
    blocked: &[usize],
) -> UnitFailure {
    let tables: BTreeSet<TableName> = unit
        .completes
        .iter()
        .copied()
        .chain(copied_tables(unit))
        .map(|i| work.tables[i].target.clone())
        .collect();
    UnitFailure {
        unit: unit.id.clone(),
        kind: unit.kind,
        title: unit.title.clone(),
        tables: tables.into_iter().collect(),
        message: err.message().to_string(),
        side: err.side(),
        sql_state: err.sql_state().cloned(),
        transient: err.is_transient(),
        blocked: blocked_titles(work, blocked),
    }
}

/// The titles of `blocked` units, for a failure's report: the parts of one table are
/// counted rather than listed.
fn blocked_titles(work: &Work, blocked: &[usize]) -> Vec<String> {
    let mut parts: BTreeMap<usize, usize> = BTreeMap::new();
    let mut titles = Vec::new();
    for &b in blocked {
        let unit = &work.units[b];
        match (unit.kind, unit.ops.first()) {
            (UnitKind::Part, Some(Op::Copy { table, .. })) => {
                *parts.entry(*table).or_default() += 1
            }
            _ => titles.push(unit.title.clone()),
        }
    }
    for (table, n) in parts {
        titles.push(format!(
            "{}: {n} part{}",
            work.tables[table].target,
            if n == 1 { "" } else { "s" }
        ));
    }
    titles
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::copy::fixtures::{self, copy, unit, FINISH_B, PART_B0, PART_B1, POST_DATA};
    use crate::error::{Kind, Side};

    #[test]
    fn blocked_parts_of_a_table_are_counted_not_listed() {
        let work = fixtures::work();
        assert_eq!(
            blocked_titles(&work, &[PART_B0, FINISH_B, PART_B1, POST_DATA]),
            ["finish b", "post-data", "public.b: 2 parts"]
        );
        assert_eq!(blocked_titles(&work, &[PART_B1]), ["public.b: 1 part"]);
        assert!(blocked_titles(&work, &[]).is_empty());
    }

    #[test]
    fn a_failure_names_each_table_of_its_unit_once() {
        let work = fixtures::work();
        let group = unit(
            "group c",
            UnitKind::Group,
            &[],
            &[2, 0],
            vec![copy(0, "a"), copy(2, "c")],
        );
        let err = Error::new(Kind::Copy, "target server: gone")
            .on(Side::Target)
            .transient(true);
        let failure = unit_failure(&work, &group, &err, &[POST_DATA]);
        assert_eq!(failure.unit.to_string(), "group c");
        assert_eq!(failure.kind, UnitKind::Group);
        assert_eq!(failure.tables, [fixtures::name("a"), fixtures::name("c")]);
        assert_eq!(failure.message, "target server: gone");
        assert_eq!(failure.side, Some(Side::Target));
        assert!(failure.transient);
        assert_eq!(failure.sql_state, None);
        assert_eq!(failure.blocked, ["post-data"]);
    }

    #[test]
    fn a_full_disk_is_sized_by_the_tables_the_unit_completes() {
        let work = fixtures::work();
        let mut finish = work.units[FINISH_B].clone();
        assert_eq!(
            disk_full(&finish, &work),
            "The target ran out of disk space loading finish b (about 5.0 kB on the source): \
             free some or grow its storage, then run the same command with --resume."
        );
        finish.estimated_bytes = 2_000_000;
        assert!(disk_full(&finish, &work).contains("(about 2.0 MB on the source)"));
    }

    #[test]
    fn only_undecodable_bytes_get_the_encoding_advice() {
        let err = advised(Error::new(Kind::Copy, "target server: boom"));
        assert_eq!(err.message(), "target server: boom");
    }
}
