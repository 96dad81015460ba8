//! When the post-data unit cannot commit — blocked by a failed table, or failed itself
//! (one foreign key that does not hold, one view that does not parse) — its objects are
//! created one by one instead, each in its own transaction with its record in the
//! ledger: the objects of the tables that did load are kept, and each failure is named.
//! A resume's post-data unit skips the objects recorded.

use std::collections::BTreeSet;

use crate::catalog::TableName;
use crate::connect::{connect, Connection};
use crate::error::Side;
use crate::ledger::Ledger;
use crate::plan::units::{Op, UnitId, UnitKind, Work};
use crate::plan::Step;
use crate::poison::Locked;
use crate::report::UnitFailure;

use super::progress::Progress;
use super::schedule::{Schedule, State};
use super::snapshot::Snapshot;
use super::stage::{Stage, BEGIN, COMMIT, ROLLBACK};

/// Salvages the post-data unit, if it did not commit and some table loaded, and adds
/// what came of it to the unit's failure.
pub(super) async fn salvage<'a, L: Ledger>(
    stage: &Stage<'a, L>,
    progress: &Progress,
    snapshot: &Snapshot<'a>,
) {
    let work = stage.work;
    let Some(post) = work.units.iter().position(|u| u.kind == UnitKind::PostData) else {
        return;
    };
    let Some(Salvageable {
        loaded,
        failed_itself,
    }) = salvageable(work, &progress.schedule.locked(), post)
    else {
        return;
    };
    if loaded.is_empty() {
        return;
    }
    let Ok(fresh) = connect(&stage.target_info, Side::Target).await else {
        return;
    };
    let _ = fresh
        .client
        .batch_execute("SET check_function_bodies = off")
        .await;
    let salvager = Salvager {
        stage,
        progress,
        snapshot,
        fresh,
        planned: work.tables.iter().map(|t| &t.target).collect(),
        loaded: &loaded,
    };
    let tally = salvager.create_objects(post).await;
    let note = tally.note(failed_itself, loaded.len());
    add_note(&mut progress.failures.locked(), &note);
}

/// A post-data unit that did not commit, and the tables that did load.
struct Salvageable<'w> {
    loaded: BTreeSet<&'w TableName>,
    /// The unit ran and failed (rather than being blocked by a failed table).
    failed_itself: bool,
}

/// Whether post-data unit `post` is to be salvaged, as `schedule` stands at the end of
/// the run: it is when it was blocked or failed.
fn salvageable<'w>(work: &'w Work, schedule: &Schedule, post: usize) -> Option<Salvageable<'w>> {
    let state = schedule.state(post);
    if !matches!(state, State::Blocked | State::Failed) {
        return None;
    }
    let loaded = (0..work.tables.len())
        .filter(|&i| {
            work.units
                .iter()
                .position(|u| u.completes.contains(&i))
                .is_some_and(|u| schedule.state(u) == State::Done)
        })
        .map(|i| &work.tables[i].target)
        .collect();
    Some(Salvageable {
        loaded,
        failed_itself: state == State::Failed,
    })
}

struct Salvager<'r, 's, L: Ledger> {
    stage: &'r Stage<'s, L>,
    progress: &'r Progress,
    snapshot: &'r Snapshot<'s>,
    /// A connection of its own to the target: the workers' are gone.
    fresh: Connection,
    /// The tables the run was to load...
    planned: BTreeSet<&'r TableName>,
    /// ...and those it did.
    loaded: &'r BTreeSet<&'r TableName>,
}

/// What the salvage made of the post-data objects.
#[derive(Debug, Default)]
struct Tally {
    created: usize,
    objects: usize,
    /// Objects refused: what each is, and the server's reason.
    refused: Vec<String>,
}

impl<L: Ledger> Salvager<'_, '_, L> {
    /// Creates the post-data unit's objects whose tables are in (or not the run's), and
    /// sets the sequences; the objects salvaged before are counted as created.
    async fn create_objects(&self, post: usize) -> Tally {
        let mut tally = Tally::default();
        let done = self.progress.salvaged.locked().clone();
        for (k, op) in self.stage.work.units[post].ops.iter().enumerate() {
            match op {
                Op::Object { .. } if done.contains(&k) => {
                    tally.objects += 1;
                    tally.created += 1;
                }
                Op::Object { step } => {
                    tally.objects += 1;
                    if !needs_met(step, self.loaded, &self.planned) {
                        continue;
                    }
                    match self.create(k, step).await {
                        Ok(()) => tally.created += 1,
                        Err(refused) => tally.refused.push(refused),
                    }
                }
                Op::SequenceValues { sequences } => {
                    let values = self.snapshot.sequence_values(sequences).await;
                    for v in values.into_iter().flatten() {
                        let _ = self.fresh.client.batch_execute(&v).await;
                    }
                }
                _ => {}
            }
        }
        tally
    }

    /// Creates post-data object `k` in its own transaction with its record, so a
    /// resume's post-data unit knows not to create it again. `Err`: why it was refused.
    async fn create(&self, k: usize, step: &Step) -> Result<(), String> {
        let stage = self.stage;
        let id = UnitId::PostDataObject(k);
        let mut sql = vec![
            BEGIN.to_string(),
            stage.search_path.clone(),
            step.sql.clone(),
        ];
        sql.extend(stage.ledger.record_sql(&id, 0));
        sql.push(COMMIT.to_string());
        match self.fresh.client.batch_execute(&sql.join(";\n")).await {
            Ok(()) => {
                stage.ledger.committed(&id, 0, 0);
                self.progress.salvaged.locked().insert(k);
                Ok(())
            }
            Err(e) => {
                let _ = self.fresh.client.batch_execute(ROLLBACK).await;
                Err(format!("{}: {}", step.what, crate::error::describe_pg(&e)))
            }
        }
    }
}

/// Whether every table `step` needs is `loaded`, or not one the run was to load.
fn needs_met(step: &Step, loaded: &BTreeSet<&TableName>, planned: &BTreeSet<&TableName>) -> bool {
    step.needs
        .iter()
        .all(|n| loaded.contains(n) || !planned.contains(n))
}

impl Tally {
    /// What the salvage did, for the post-data unit's failure: of `loaded` tables, when
    /// the unit was blocked by the others.
    fn note(&self, failed_itself: bool, loaded: usize) -> String {
        let (created, objects) = (self.created, self.objects);
        let mut note = if failed_itself {
            format!(
                "\nThe objects that follow the data were then created one by one: {created} \
                 of {objects} were, and sequences were set."
            )
        } else {
            format!(
                "\nFor the {} that did load, {created} of the {objects} objects that follow \
                 the data (foreign keys, views, triggers, comments, …) were created, and \
                 sequences were set.",
                crate::text::plural(loaded, "table", "tables"),
            )
        };
        if !self.refused.is_empty() {
            note.push_str(&format!(
                " {} failed:\n{}",
                crate::text::plural(self.refused.len(), "object", "objects"),
                self.refused
                    .iter()
                    .take(20)
                    .map(|r| format!("    - {r}"))
                    .collect::<Vec<_>>()
                    .join("\n")
            ));
            if self.refused.len() > 20 {
                note.push_str(&format!("\n    - and {} more", self.refused.len() - 20));
            }
        }
        note.push_str(
            "\nFix the cause, then run the same command with --resume to finish the rest.",
        );
        note
    }
}

/// Adds `note` to the post-data unit's failure or, when it was blocked, to the run's
/// first failure.
fn add_note(failures: &mut [UnitFailure], note: &str) {
    let target = failures
        .iter()
        .position(|x| x.kind == UnitKind::PostData)
        .unwrap_or(0);
    if let Some(failure) = failures.get_mut(target) {
        failure.message.push_str(note);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::copy::fixtures::{self, name, PART_B0, POST_DATA, PREPARE, TABLE_A};
    use crate::error::Side;

    /// The fixture's run with prepare and a committed, and part b 0 failed.
    fn b_failed(work: &Work) -> Schedule {
        let mut s = Schedule::new(work, &BTreeSet::new());
        for u in [PREPARE, TABLE_A] {
            while s.take_ready() != Some(u) {}
            s.done(u);
        }
        s.fail(PART_B0);
        s
    }

    #[test]
    fn a_blocked_post_data_unit_is_salvaged_for_the_tables_that_loaded() {
        let work = fixtures::work();
        let s = salvageable(&work, &b_failed(&work), POST_DATA).expect("blocked");
        assert_eq!(s.loaded, BTreeSet::from([&name("a")]));
        assert!(!s.failed_itself);
    }

    #[test]
    fn a_post_data_unit_that_failed_itself_or_committed() {
        let work = fixtures::work();
        let mut s = Schedule::new(&work, &BTreeSet::new());
        while let Some(u) = s.take_ready() {
            if u == POST_DATA {
                s.fail(u);
            } else {
                s.done(u);
            }
        }
        let salvage = salvageable(&work, &s, POST_DATA).expect("failed");
        assert!(salvage.failed_itself);
        assert_eq!(salvage.loaded.len(), 3, "a, b, c");
        let all: BTreeSet<UnitId> = work.units.iter().map(|u| u.id.clone()).collect();
        assert!(salvageable(&work, &Schedule::new(&work, &all), POST_DATA).is_none());
    }

    #[test]
    fn an_object_waits_for_the_run_tables_it_needs() {
        let (a, b, other) = (name("a"), name("b"), TableName::new("x", "y"));
        let loaded = BTreeSet::from([&a]);
        let planned = BTreeSet::from([&a, &b]);
        let step = |needs: Vec<TableName>| Step {
            what: "view".into(),
            sql: String::new(),
            needs,
        };
        assert!(needs_met(&step(vec![a.clone()]), &loaded, &planned));
        assert!(!needs_met(
            &step(vec![a.clone(), b.clone()]),
            &loaded,
            &planned
        ));
        assert!(
            needs_met(&step(vec![other]), &loaded, &planned),
            "not the run's"
        );
        assert!(needs_met(&step(Vec::new()), &loaded, &planned));
    }

    #[test]
    fn the_note_counts_what_was_created_and_lists_what_was_refused() {
        let tally = Tally {
            created: 2,
            objects: 3,
            refused: vec!["view v: no such column".into()],
        };
        assert_eq!(
            tally.note(false, 1),
            "\nFor the 1 table that did load, 2 of the 3 objects that follow the data \
             (foreign keys, views, triggers, comments, …) were created, and sequences were \
             set. 1 object failed:\n    - view v: no such column\nFix the cause, then run \
             the same command with --resume to finish the rest."
        );
        let tally = Tally {
            created: 0,
            objects: 25,
            refused: (0..25).map(|i| format!("fk {i}")).collect(),
        };
        let note = tally.note(true, 2);
        assert!(note.starts_with(
            "\nThe objects that follow the data were then created one by one: 0 of 25 were"
        ));
        assert!(note.contains("25 objects failed:\n    - fk 0\n"), "{note}");
        assert!(note.contains("    - fk 19\n    - and 5 more\n"), "{note}");
        assert!(!note.contains("fk 20"), "{note}");
    }

    fn failure(kind: UnitKind) -> UnitFailure {
        let work = fixtures::work();
        let unit = work.units.iter().find(|u| u.kind == kind).expect("a unit");
        let err = crate::error::Error::new(crate::error::Kind::Copy, "boom").on(Side::Target);
        super::super::failure::unit_failure(&work, unit, &err, &[])
    }

    #[test]
    fn the_note_goes_to_the_post_data_failure_or_else_the_first() {
        let mut failures = vec![failure(UnitKind::Part), failure(UnitKind::PostData)];
        add_note(&mut failures, " (note)");
        assert_eq!(failures[0].message, "boom");
        assert_eq!(failures[1].message, "boom (note)");
        let mut failures = vec![failure(UnitKind::Part), failure(UnitKind::Table)];
        add_note(&mut failures, " (note)");
        assert_eq!(failures[0].message, "boom (note)");
        add_note(&mut [], "nowhere");
    }
}
