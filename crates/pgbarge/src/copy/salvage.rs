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
