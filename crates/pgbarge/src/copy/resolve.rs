//! A unit's operations made into what its transaction sends: statements (sequence
//! states and sync differences read from the source now) and, in between, COPY streams.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::Result;
use crate::ledger::Ledger;
use crate::plan::units::{Op, Unit};
use crate::plan::SyncSpec;
use crate::rowhash::Hashing;
use crate::sync::SyncStats;

use super::options::Event;
use super::pair::Pair;
use super::stage::Stage;
use super::{probes, sequences};

/// One step of a unit's transaction, resolved.
#[derive(Debug, PartialEq)]
pub(super) enum Piece {
    Sql(String),
    /// Rows streamed from `out` on the source into `into` on the target; `table` indexes
    /// `Work::tables`, for progress.
    Copy {
        table: usize,
        out: String,
        into: String,
    },
}

/// A unit's transaction, resolved.
pub(super) struct Resolved {
    pub pieces: Vec<Piece>,
    /// What the syncs of its tables found, to record once it commits.
    pub synced: Vec<(usize, SyncStats)>,
}

/// Resolves `unit`'s operations on `pair`, leaving out the post-data objects in `skip`
/// (created already).
pub(super) async fn resolve<L: Ledger>(
    stage: &Stage<'_, L>,
    unit: &Unit,
    skip: &BTreeSet<usize>,
    pair: &Pair,
) -> Result<Resolved> {
    let mut resolver = Resolver {
        stage,
        pair,
        doing: format!("loading {}", unit.title),
        out: Resolved {
            pieces: Vec::new(),
            synced: Vec::new(),
        },
        deletes: BTreeMap::new(),
        applies: BTreeMap::new(),
    };
    for (k, op) in unit.ops.iter().enumerate() {
        match op {
            Op::Object { .. } if skip.contains(&k) => {}
            op => resolver.op(op).await?,
        }
    }
    Ok(resolver.out)
}

struct Resolver<'r, 's, L: Ledger> {
    stage: &'r Stage<'s, L>,
    pair: &'r Pair,
    doing: String,
    out: Resolved,
    /// Deletions found by a sync stage, for the unit's later SyncDelete.
    deletes: BTreeMap<usize, String>,
    /// Merges of the rows a sync stage staged, for the unit's later SyncApply.
    applies: BTreeMap<usize, String>,
}

impl<L: Ledger> Resolver<'_, '_, L> {
    fn sql(&mut self, statements: impl IntoIterator<Item = String>) {
        self.out
            .pieces
            .extend(statements.into_iter().map(Piece::Sql));
    }

    async fn op(&mut self, op: &Op) -> Result<()> {
        let source = &self.pair.source.client;
        match op {
            Op::Copy { table, read, into } => self.out.pieces.push(Piece::Copy {
                table: *table,
                out: read.sql(),
                into: into.clone(),
            }),
            Op::SyncSequences { table, sequences } => {
                let sql = sequences::sequence_sql(table, sequences, source, &self.doing).await?;
                self.sql(sql);
            }
            Op::SequenceValues { sequences } => {
                let sql = sequences::sequence_values(sequences, source).await?;
                self.sql(sql);
            }
            Op::SyncStage {
                table,
                spec,
                delete_now,
            } => self.sync_stage(*table, spec, *delete_now).await?,
            Op::SyncDelete { table } => {
                let delete = self.deletes.remove(table);
                self.sql(delete);
            }
            Op::SyncApply { table } => {
                let apply = self.applies.remove(table);
                self.sql(apply);
            }
            other => self.sql(other.statement()),
        }
        Ok(())
    }

    /// A synced table: finds how the target differs from the source by hashing on both,
    /// then repairs it — the differing source rows streamed into a staging table and
    /// merged, the target's extra rows deleted — and records the sync.
    async fn sync_stage(&mut self, table: usize, spec: &SyncSpec, delete_now: bool) -> Result<()> {
        let (stage, pair) = (self.stage, self.pair);
        let hashing = hashing(stage, pair).await?;
        let busy = || probes::busy(&stage.target_info, &pair.target.backend);
        let watch = crate::sync::Watch {
            stall: stage.options.stall_timeout,
            busy: &busy,
        };
        stage.event(Event::Phase {
            table: Some(spec.target.clone()),
            what: "comparing by hash ranges",
        });
        let (source, target) = (&pair.source.client, &pair.target.client);
        let recorded = crate::sync::recorded(target, &stage.options.ledger, spec).await?;
        let diff = crate::sync::diff(source, target, hashing, spec, recorded, Some(&watch)).await?;
        self.sql([crate::sync::RESET_PLANS.to_string()]);
        let repair = crate::sync::repair(spec, hashing, &diff, &stage.options.ledger);
        let delete = place_delete(
            repair.delete,
            delete_now || spec.key.is_empty(),
            repair.reload,
        );
        self.sql(delete.before);
        if let Some(upsert) = repair.upsert {
            self.sql([upsert.create_staging]);
            self.out.pieces.push(Piece::Copy {
                table,
                out: upsert.copy_out,
                into: upsert.copy_in,
            });
            self.applies.insert(table, upsert.apply);
        }
        // A reload's delete reads the staging table the COPY filled.
        self.sql(delete.after);
        if let Some(d) = delete.later {
            self.deletes.insert(table, d);
        }
        self.sql(repair.record);
        self.out.synced.push((table, diff.stats));
        Ok(())
    }
}

/// How rows hash alike on both servers: asked by the run's first sync.
async fn hashing<'r, L: Ledger>(stage: &'r Stage<'_, L>, pair: &Pair) -> Result<&'r Hashing> {
    stage
        .hashing
        .get_or_try_init(|| {
            Hashing::choose(
                &pair.source.client,
                &pair.target.client,
                stage.options.source_encoding.as_deref(),
            )
        })
        .await
}

/// Where a sync's deletion goes in its unit.
#[derive(Debug, PartialEq)]
struct DeletePlace {
    /// Before the upsert's COPY.
    before: Option<String>,
    /// After the upsert's COPY.
    after: Option<String>,
    /// At the unit's later [`Op::SyncDelete`].
    later: Option<String>,
}

/// Deletes go first when `now` — alone (a row inserted with the unique value of one
/// deleted does not collide), or a multiset's, which nothing can point at and which
/// must not delete the copies it inserts — and after the group's upserts in a group (a
/// parent's row goes after the children's rows that pointed at it moved). A `reload`'s
/// delete reads the staging table, so it goes after the COPY.
fn place_delete(delete: Option<String>, now: bool, reload: bool) -> DeletePlace {
    let (now, later) = match delete {
        Some(d) if now => (Some(d), None),
        Some(d) => (None, Some(d)),
        None => (None, None),
    };
    let (before, after) = if reload { (None, now) } else { (now, None) };
    DeletePlace {
        before,
        after,
        later,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn place(delete: Option<&str>, now: bool, reload: bool) -> DeletePlace {
        place_delete(delete.map(String::from), now, reload)
    }

    #[test]
    fn a_delete_due_now_goes_before_the_copy_unless_it_reads_a_reload() {
        let d = Some("DELETE".to_string());
        assert_eq!(
            place(Some("DELETE"), true, false),
            DeletePlace {
                before: d.clone(),
                after: None,
                later: None
            }
        );
        assert_eq!(
            place(Some("DELETE"), true, true),
            DeletePlace {
                before: None,
                after: d,
                later: None
            }
        );
    }

    #[test]
    fn a_group_delete_waits_for_the_units_sync_delete() {
        for reload in [false, true] {
            assert_eq!(
                place(Some("DELETE"), false, reload),
                DeletePlace {
                    before: None,
                    after: None,
                    later: Some("DELETE".into())
                }
            );
        }
        assert_eq!(
            place(None, true, true),
            DeletePlace {
                before: None,
                after: None,
                later: None
            }
        );
    }
}
