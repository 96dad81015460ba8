//! Runs one unit as one target transaction on a worker's pair: its statements
//! pipelined around its COPY streams, its ledger record just before COMMIT, so the unit
//! and its record commit together or not at all.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Kind, Result, Side};
use crate::ledger::Ledger;
use crate::plan::units::{Unit, UnitKind, Work};
use crate::poison::Locked;

use super::options::Event;
use super::pair::Pair;
use super::progress::Progress;
use super::resolve::{resolve, Piece};
use super::stage::{Stage, BEGIN, COMMIT};
use super::{probes, pump};

/// What a committed unit moved: rows per table (by index) and the bytes read.
pub(super) type Loaded = (Vec<(usize, u64)>, u64);

/// Runs `unit` as one transaction on `pair`. Returns rows per table and the bytes read.
pub(super) async fn run_unit<L: Ledger>(
    stage: &Stage<'_, L>,
    progress: &Progress,
    unit: &Unit,
    pair: &Pair,
) -> Result<Loaded> {
    let skip = match unit.kind {
        UnitKind::PostData => progress.salvaged.locked().clone(),
        _ => BTreeSet::new(),
    };
    let resolved = resolve(stage, unit, &skip, pair).await?;
    // The last units' row counts go first, in a transaction of their own: in the same
    // batch without one they would join this unit's transaction (a query of several
    // statements is one transaction) and be lost with it if it fails.
    let mut head: Vec<String> = match stage.ledger.pending_sql() {
        Some(sql) => vec![BEGIN.to_string(), sql, COMMIT.to_string()],
        None => Vec::new(),
    };
    head.push(BEGIN.to_string());
    head.push(stage.search_path.clone());
    let (segments, tail) = split_at_copies(head, resolved.pieces);
    let run = UnitRun {
        stage,
        progress,
        unit,
        pair,
        doing: doing(unit),
    };
    let loaded = if segments.is_empty() {
        run.statements(tail).await?;
        (Vec::new(), 0)
    } else {
        run.streams(&segments, &tail).await?
    };
    // Recorded now that the unit committed (a retry finds them again).
    for (table, stats) in resolved.synced {
        *progress.tables[table].sync.locked() = Some(stats);
    }
    Ok(loaded)
}

/// A COPY stream of a unit, with the statements sent before it.
#[derive(Debug, PartialEq)]
struct Segment {
    setup: Vec<String>,
    table: usize,
    out: String,
    into: String,
}

/// The unit's `pieces`, after the `head` statements, cut at each COPY: the statements
/// before each stream, and those after the last.
fn split_at_copies(head: Vec<String>, pieces: Vec<Piece>) -> (Vec<Segment>, Vec<String>) {
    let mut segments = Vec::new();
    let mut statements = head;
    for piece in pieces {
        match piece {
            Piece::Sql(sql) => statements.push(sql),
            Piece::Copy { table, out, into } => segments.push(Segment {
                setup: std::mem::take(&mut statements),
                table,
                out,
                into,
            }),
        }
    }
    (segments, statements)
}

/// The statements ending a unit's transaction: the last of its own, its ledger
/// `record`, COMMIT.
fn commit_sql(tail: &[String], record: Vec<String>) -> String {
    let mut sql = tail.to_vec();
    sql.extend(record);
    sql.push(COMMIT.to_string());
    sql.join(";\n")
}

/// What a unit is doing, for error messages.
fn doing(unit: &Unit) -> String {
    match unit.kind {
        UnitKind::Prepare => "creating schemas, types, sequences and functions".into(),
        UnitKind::PostData => "creating foreign keys, views and triggers".into(),
        _ => format!("loading {}", unit.title),
    }
}

fn kind_of(unit: &Unit) -> Kind {
    match unit.kind {
        UnitKind::PostData | UnitKind::Prepare => Kind::Schema,
        _ => Kind::Copy,
    }
}

/// The long, silent work a unit without streams does, for progress: `None` when there
/// is nothing worth showing.
fn phase(unit: &Unit, work: &Work) -> Option<Event> {
    let table = unit.completes.first().map(|&i| &work.tables[i]);
    match unit.kind {
        UnitKind::Finish => Some(Event::Phase {
            table: table.map(|t| t.target.clone()),
            what: if table.is_some_and(|t| !t.leaf_staging.is_empty()) {
                "leaves attached, then keys and indexes"
            } else {
                "keys and indexes, then the real name"
            },
        }),
        UnitKind::PostData => Some(Event::Phase {
            table: None,
            what: "foreign keys, views, triggers, sequence values",
        }),
        _ => None,
    }
}

/// One attempt at a unit on a pair.
struct UnitRun<'r, 's, L: Ledger> {
    stage: &'r Stage<'s, L>,
    progress: &'r Progress,
    unit: &'r Unit,
    pair: &'r Pair,
    doing: String,
}

impl<L: Ledger> UnitRun<'_, '_, L> {
    /// A unit without streams: its statements and COMMIT in one request, watched for a
    /// dead connection as a stream is.
    async fn statements(&self, tail: Vec<String>) -> Result<()> {
        let (stage, unit) = (self.stage, self.unit);
        if let Some(e) = phase(unit, stage.work) {
            stage.event(e);
        }
        let sql = commit_sql(&tail, stage.ledger.record_sql(&unit.id, 0));
        let busy = || probes::busy(&stage.target_info, &self.pair.target.backend);
        let stall = stage.options.stall_timeout;
        pump::watched(self.pair.target.client.batch_execute(&sql), stall, &busy)
            .await
            .ok_or_else(|| {
                Error::new(
                    kind_of(unit),
                    format!(
                        "target server: {} failed: no answer for {} s and the server is not \
                         working on it: the connection looks dead",
                        self.doing,
                        stall.as_secs()
                    ),
                )
                .on(Side::Target)
                .transient(true)
            })?
            .map_err(|e| Error::postgres(kind_of(unit), Side::Target, &self.doing, e))
    }

    /// A unit's streams, one after the other; the last is followed by `tail` and COMMIT.
    async fn streams(&self, segments: &[Segment], tail: &[String]) -> Result<Loaded> {
        let mut rows = Vec::new();
        let mut total = 0u64;
        let last = segments.len() - 1;
        for (k, segment) in segments.iter().enumerate() {
            let finish = (k == last).then_some(tail);
            let (r, b) = self.stream(segment, total, finish).await?;
            rows.push((segment.table, r));
            total += b;
        }
        Ok((rows, total))
    }

    /// One stream, after `before` bytes of the unit's earlier streams; `finish`: the
    /// statements that end the transaction after it, if it is the last. Its bytes count
    /// towards its table's progress as they move, and are taken back if it fails.
    async fn stream(
        &self,
        segment: &Segment,
        before: u64,
        finish: Option<&[String]>,
    ) -> Result<(u64, u64)> {
        let stage = self.stage;
        let state = &self.progress.tables[segment.table];
        let name = &stage.work.tables[segment.table].target;
        let mut seen = 0u64;
        let added = AtomicU64::new(0);
        let progress = |bytes: u64| {
            let delta = bytes.saturating_sub(seen);
            seen = bytes;
            added.fetch_add(delta, Ordering::Relaxed);
            let now = state.bytes.fetch_add(delta, Ordering::Relaxed) + delta;
            stage.event(Event::Progress {
                table: name.clone(),
                bytes: now,
            });
        };
        let finish = |bytes: u64| {
            let Some(tail) = finish else {
                return String::new();
            };
            if !tail.is_empty() {
                stage.event(Event::Phase {
                    table: Some(name.clone()),
                    what: "keys and indexes",
                });
            }
            commit_sql(tail, stage.ledger.record_sql(&self.unit.id, before + bytes))
        };
        let busy = || probes::busy(&stage.target_info, &self.pair.target.backend);
        let streamed = pump::pump(
            &self.pair.source.client,
            &self.pair.target.client,
            &pump::Stream {
                copy_out: &segment.out,
                copy_in: &segment.into,
                setup: &segment.setup.join(";\n"),
            },
            finish,
            &self.doing,
            stage.options.stall_timeout,
            &busy,
            progress,
        )
        .await;
        if streamed.is_err() {
            // What this attempt counted is gone with its transaction.
            state
                .bytes
                .fetch_sub(added.load(Ordering::Relaxed), Ordering::Relaxed);
        }
        streamed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::copy::fixtures::{self, FINISH_B, POST_DATA, PREPARE, TABLE_A};

    fn sql(s: &str) -> Piece {
        Piece::Sql(s.into())
    }

    fn copy(table: usize) -> Piece {
        Piece::Copy {
            table,
            out: format!("out {table}"),
            into: format!("into {table}"),
        }
    }

    fn strings(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn statements_go_with_the_stream_after_them_or_after_the_last() {
        let pieces = vec![sql("s1"), copy(0), sql("s2"), sql("s3"), copy(1), sql("s4")];
        let (segments, tail) = split_at_copies(strings(&["BEGIN", "path"]), pieces);
        assert_eq!(
            segments,
            [
                Segment {
                    setup: strings(&["BEGIN", "path", "s1"]),
                    table: 0,
                    out: "out 0".into(),
                    into: "into 0".into(),
                },
                Segment {
                    setup: strings(&["s2", "s3"]),
                    table: 1,
                    out: "out 1".into(),
                    into: "into 1".into(),
                },
            ]
        );
        assert_eq!(tail, ["s4"]);

        let (segments, tail) = split_at_copies(strings(&["BEGIN"]), vec![sql("s1")]);
        assert!(segments.is_empty());
        assert_eq!(tail, ["BEGIN", "s1"]);
    }

    #[test]
    fn the_record_goes_just_before_commit() {
        assert_eq!(
            commit_sql(&strings(&["ALTER t"]), strings(&["INSERT record"])),
            "ALTER t;\nINSERT record;\nCOMMIT"
        );
        assert_eq!(commit_sql(&[], Vec::new()), "COMMIT");
    }

    #[test]
    fn units_without_streams_show_their_long_silent_work() {
        let mut work = fixtures::work();
        let finish = |work: &Work| match phase(&work.units[FINISH_B], work) {
            Some(Event::Phase { table, what }) => (table, what),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            finish(&work),
            (
                Some(fixtures::name("b")),
                "keys and indexes, then the real name"
            )
        );
        work.tables[1].leaf_staging = vec![fixtures::name("b_1")];
        assert_eq!(finish(&work).1, "leaves attached, then keys and indexes");
        assert!(matches!(
            phase(&work.units[POST_DATA], &work),
            Some(Event::Phase { table: None, .. })
        ));
        assert!(phase(&work.units[PREPARE], &work).is_none());
    }

    #[test]
    fn schema_units_fail_as_schema_errors() {
        let work = fixtures::work();
        assert_eq!(kind_of(&work.units[PREPARE]), Kind::Schema);
        assert_eq!(kind_of(&work.units[POST_DATA]), Kind::Schema);
        assert_eq!(kind_of(&work.units[TABLE_A]), Kind::Copy);
        assert_eq!(doing(&work.units[TABLE_A]), "loading table a");
        assert_eq!(
            doing(&work.units[POST_DATA]),
            "creating foreign keys, views and triggers"
        );
    }
}
