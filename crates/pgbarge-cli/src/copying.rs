//! `pgbarge copy` in a terminal: the [`Ui`] that answers and tells what the library's
//! copy session asks and says, and the rendering of its [`Outcome`].

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use pgbarge::catalog::{Table, TableName};
use pgbarge::connect::Connection;
use pgbarge::copy::Event;
use pgbarge::follow::copied::SlotFate;
use pgbarge::follow::Following;
use pgbarge::ledger::SavedRun;
use pgbarge::plan::units::Work;
use pgbarge::plan::{LoadMode, Plan};
use pgbarge::session::copy::{Copied, FollowNext, Notice, Outcome, Ui};
use pgbarge::session::{NoQuestions, Questions, Undecided};
use pgbarge::{Error, Kind, Result};

use crate::common::{show_report, Failure};
use crate::interact;
use crate::json;
use crate::planfile::SavedPlan;
use crate::progress::Progress;
use crate::render;
use crate::settings::CopySettings;

/// The copy's user: a terminal when `--interactive`, otherwise nobody to ask.
pub struct Terminal<'a> {
    settings: &'a CopySettings,
    progress: Mutex<Option<Progress>>,
}

impl<'a> Terminal<'a> {
    pub fn new(settings: &'a CopySettings) -> Self {
        Terminal {
            settings,
            progress: Mutex::new(None),
        }
    }

    fn questions(&self) -> &dyn Questions {
        match self.settings.interactive {
            true => &interact::Terminal,
            false => &NoQuestions,
        }
    }

    /// The progress line's slot; a panic elsewhere leaves it usable.
    fn progress(&self) -> MutexGuard<'_, Option<Progress>> {
        self.progress.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Saves the plan where the settings say (with the choices that made it).
    fn save_plan(&self, plan: &Plan, path: &std::path::Path) -> Result<()> {
        let s = self.settings;
        let split_above = s.split_above.unwrap_or(pgbarge::plan::DEFAULT_SPLIT_ABOVE);
        SavedPlan::from_plan(plan, split_above, s.part_size, s.mode).save(
            path,
            &plan.source.connection,
            &plan.target.connection,
        )
    }
}

impl Questions for Terminal<'_> {
    fn add_parents(&self, missing: &[TableName]) -> Result<Option<bool>> {
        self.questions().add_parents(missing)
    }

    fn modes_for(
        &self,
        tables: &[Undecided],
    ) -> Result<Option<BTreeMap<TableName, Option<LoadMode>>>> {
        self.questions().modes_for(tables)
    }

    fn pick_tables(&self, tables: &[Table]) -> Result<Option<Vec<Table>>> {
        self.questions().pick_tables(tables)
    }

    fn resume(&self, run: &SavedRun) -> Result<Option<bool>> {
        self.questions().resume(run)
    }
}

impl Ui for Terminal<'_> {
    fn notice(&self, notice: Notice<'_>) {
        let quiet = self.settings.quiet;
        match notice {
            Notice::WouldAbandon(run) => eprintln!(
                "note: an interrupted run (run {}, started {}) is recorded on the target; \
                 copying without --resume would abandon it.",
                run.id, run.started_at
            ),
            Notice::Abandoned(run, dropped) => eprintln!(
                "note: the interrupted run recorded on the target (run {}, started {}) was \
                 abandoned{}; starting anew.",
                run.id,
                run.started_at,
                match dropped.is_empty() {
                    true => String::new(),
                    false => format!(
                        ": its staging tables {} were dropped",
                        pgbarge::text::short_list(dropped, usize::MAX)
                    ),
                }
            ),
            Notice::Resuming(run) if !quiet => eprintln!(
                "Resuming run {} (started {}): {} of {} units committed before; the rest runs \
                 now.",
                run.id,
                run.started_at,
                run.done.len(),
                run.work.units.len()
            ),
            Notice::ResumingFollowed(run) if !quiet => eprintln!(
                "Resuming the followed copy (run {}, started {}): {} of {} units committed \
                 before are kept; the rest is copied now, then following starts.",
                run.id,
                run.started_at,
                run.done.len(),
                run.work.units.len()
            ),
            Notice::Resuming(_) | Notice::ResumingFollowed(_) => {}
            Notice::FollowGivenUp(old) => eprintln!(
                "note: the follow started {} never finished its copy; its slot {} was dropped.",
                old.created_at, old.slot
            ),
            Notice::Warning(w) => eprintln!("warning: {w}"),
            Notice::SlotFate(following, fate) => say_slot_fate(following, fate),
        }
    }

    fn planned(&self, plan: &Plan) -> Result<()> {
        if let Some(path) = &self.settings.save_plan {
            self.save_plan(plan, path)?;
            eprintln!("plan saved to {}", path.display());
        }
        Ok(())
    }

    fn approve(&self, plan: &Plan) -> Result<bool> {
        let s = self.settings;
        let ask = s.interactive && !s.yes;
        if !s.quiet || ask {
            eprint!("{}", render::plan(plan, s.verbose));
        }
        if !ask {
            return Ok(true);
        }
        interact::confirm(&format!(
            "Copy {} to db \"{}\" on \"{}\"?",
            pgbarge::text::plural(plan.tables.len(), "table", "tables"),
            plan.target.database,
            plan.target.host
        ))
    }

    fn copy_started(&self, work: &Work) {
        *self.progress() = Some(Progress::new(work, self.settings.quiet));
    }

    fn event(&self, event: Event) {
        if let Some(p) = self.progress().as_ref() {
            p.event(event);
        }
    }

    fn copy_ended(&self) {
        if let Some(p) = self.progress().take() {
            p.finish();
        }
    }
}

/// Renders what a copy ended with, and follows when a followed copy is ready.
pub async fn show(
    settings: &CopySettings,
    (source, target): (&Connection, &Connection),
    outcome: Outcome,
) -> Result<(), Failure> {
    match outcome {
        Outcome::Refused(problems) => Err(Failure {
            error: Error::new(Kind::Preflight, render::problems(&problems)),
            problems,
            reported: false,
        }),
        Outcome::DryRun { plan, previews } => {
            if settings.json {
                let mut doc = json::plan(&plan);
                doc["sync"] = match previews.is_empty() {
                    true => serde_json::Value::Null,
                    false => serde_json::json!(previews),
                };
                json::print(&doc);
            } else {
                out!("{}", render::plan(&plan, settings.verbose));
                out!("{}", render::sync_previews(&previews));
                outln!("Dry run: preflight passed; nothing was written.");
            }
            Ok(())
        }
        Outcome::ResumeDryRun(run) => {
            if settings.json {
                json::print(&json::resume_plan(&run));
            } else {
                out!("{}", render::resume_plan(&run, settings.verbose));
                outln!("Dry run: nothing was written.");
            }
            Ok(())
        }
        Outcome::FollowOn => follow_on(settings, source, target).await,
        Outcome::Copied(copied) => copied_run(settings, (source, target), *copied).await,
    }
}

/// The report of a copy that ran; then, for a followed copy, following or what became
/// of its slot; after picking tables by hand, the offer to keep the choice.
async fn copied_run(
    settings: &CopySettings,
    (source, target): (&Connection, &Connection),
    copied: Copied,
) -> Result<(), Failure> {
    let shown = show_report(settings, &copied.report, copied.verified.as_ref());
    match copied.follow {
        Some(FollowNext::Ready(_)) => {
            shown?;
            return follow_on(settings, source, target).await;
        }
        Some(FollowNext::Stopped(following, fate)) => {
            say_slot_fate(&following, fate);
            return shown;
        }
        Some(FollowNext::GaveUp(following, fate)) => {
            shown?;
            say_slot_fate(&following, fate);
            return Err(Error::new(
                Kind::Copy,
                "following has not started: the copy did not end complete and from one \
                 snapshot (see above).",
            )
            .into());
        }
        None => shown?,
    }
    let picked = !settings.all && settings.patterns.is_empty() && !settings.resume;
    if let (Some(plan), true) = (&copied.plan, picked && settings.save_plan.is_none()) {
        if let Some(path) = interact::offer_save_plan()? {
            Terminal::new(settings).save_plan(plan, &path)?;
            eprintln!(
                "plan saved; run it again with: pgbarge copy --plan {} --source … --target …",
                path.display()
            );
        }
    }
    Ok(())
}

/// Follows after the copy, with `copy`'s settings.
async fn follow_on(
    settings: &CopySettings,
    source: &Connection,
    target: &Connection,
) -> Result<(), Failure> {
    crate::follow::follow_on(
        source,
        target,
        &settings.copy_options.ledger,
        (settings.json, settings.quiet),
        &crate::follow::copy_follow_options(settings),
    )
    .await
}

/// What became of a followed copy's slot, and what to do.
fn say_slot_fate(following: &Following, fate: SlotFate) {
    match fate {
        SlotFate::Kept => eprintln!(
            "The slot {} is kept: `pgbarge copy --follow --resume …` finishes the copy and \
             follows (`pgbarge follow --drop` gives it up and frees the WAL it holds).",
            following.slot
        ),
        SlotFate::Dropped => eprintln!(
            "Following was given up: the copy cannot go on from the snapshots it read (its \
             snapshot was lost mid-run, or it is not recorded on the target), so the stream \
             has no exact point to start from. The slot was dropped; run `pgbarge copy \
             --follow` again."
        ),
    }
}
