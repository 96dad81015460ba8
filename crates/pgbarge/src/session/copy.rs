//! `copy` from request to outcome, for any front end: what becomes of an interrupted
//! run, which tables, the plan and its preflight, the copy (fresh or resumed), verify,
//! and a followed copy's slot. The caller connects, answers through a [`Ui`], and
//! renders the [`Outcome`]; everything decided in between is decided here.
//!
//! ```no_run
//! # async fn example() -> pgbarge::Result<()> {
//! use pgbarge::conninfo::{ConnInfo, Environment};
//! use pgbarge::connect::connect;
//! use pgbarge::session::copy::{self, CopyRequest, Outcome, Quiet};
//! use pgbarge::Side;
//!
//! let env = Environment::from_process();
//! let source = connect(&ConnInfo::parse("postgres://localhost/app", &env)?, Side::Source).await?;
//! let target = connect(&ConnInfo::parse("postgres://cloud/app", &env)?, Side::Target).await?;
//! let request = CopyRequest::tables(&["public.orders", "public.customers"])?;
//! match copy::run(&source, &target, request, &Quiet, std::future::pending()).await? {
//!     Outcome::Copied(copied) => println!("{} rows", copied.report.total_rows()),
//!     other => println!("{other:?}"),
//! }
//! # Ok(())
//! # }
//! ```

use std::future::Future;

use crate::catalog::TableName;
use crate::connect::Connection;
use crate::copy::{CopyOptions, Event};
use crate::error::{Error, Kind, Result};
use crate::follow::copied::{self as followed, SlotFate};
use crate::follow::Following;
use crate::ledger::SavedRun;
use crate::plan::units::Work;
use crate::plan::{Plan, PlanOptions};
use crate::preflight::Problem;
use crate::report::RunReport;
use crate::select::Pattern;
use crate::store::PgStore;
use crate::sync::Preview;
use crate::verify::VerifyReport;

use super::{Pending, PendingRequest, Questions, Start};

/// Everything a copy was asked for, given once.
#[derive(Debug, Clone, Default)]
pub struct CopyRequest {
    /// The tables to copy (empty: every table with `all`, or picked through the
    /// [`Ui`]; a resumed run needs none).
    pub patterns: Vec<Pattern>,
    pub exclude: Vec<Pattern>,
    /// Every source table, and every schema whole.
    pub all: bool,
    /// Schemas copied whole (a saved plan's).
    pub whole_schemas: Vec<String>,
    /// Copy the tables the chosen ones' foreign keys need, without asking.
    pub with_parents: bool,
    pub plan: PlanOptions,
    pub copy: CopyOptions,
    /// Go on with the interrupted run recorded on the target.
    pub resume: bool,
    /// Follow the source's changes after the copy.
    pub follow: Option<FollowRequest>,
    /// Plan and check only; nothing is written, nothing abandoned.
    pub dry_run: bool,
    /// Compare the copied tables on both servers afterwards.
    pub verify: bool,
}

/// How a followed copy follows.
#[derive(Debug, Clone, Copy, Default)]
pub struct FollowRequest {
    /// Apply even though the target's ordinary triggers will fire on the changes (the
    /// role may not apply as a replica; `--fire-triggers`).
    pub fire_triggers: bool,
}

impl CopyRequest {
    /// A request for the tables matching `patterns` (`schema.table`, `*` wildcards),
    /// with every other setting at its default.
    pub fn tables(patterns: &[&str]) -> Result<CopyRequest> {
        Ok(CopyRequest {
            patterns: patterns
                .iter()
                .map(|p| Pattern::parse(p))
                .collect::<Result<_>>()?,
            ..CopyRequest::default()
        })
    }
}

/// What a copy tells and asks its user, beyond [`Questions`]. Every method has a
/// default that says nothing and approves, which suits a program.
pub trait Ui: Questions + Sync {
    /// Something worth saying as it happens (see [`Notice`]).
    fn notice(&self, _notice: Notice<'_>) {}

    /// The plan passed preflight (called in a dry run too): a front end may save it.
    fn planned(&self, _plan: &Plan) -> Result<()> {
        Ok(())
    }

    /// Before anything is written: go on with `plan`? `false` stops the copy.
    fn approve(&self, _plan: &Plan) -> Result<bool> {
        Ok(true)
    }

    /// The copy stage starts on `work`; its events follow, then [`Ui::copy_ended`].
    fn copy_started(&self, _work: &Work) {}

    /// Progress of the copy stage.
    fn event(&self, _event: Event) {}

    /// The copy stage ended (well or not).
    fn copy_ended(&self) {}
}

/// A [`Ui`] that asks nothing and says nothing: what would have been asked becomes a
/// preflight problem.
pub struct Quiet;

impl Questions for Quiet {}

impl Ui for Quiet {}

/// What a copy says as it goes.
#[derive(Debug)]
pub enum Notice<'a> {
    /// A dry run found an interrupted run that copying would abandon.
    WouldAbandon(&'a SavedRun),
    /// The interrupted run was abandoned (these staging tables dropped); the copy
    /// starts anew.
    Abandoned(&'a SavedRun, &'a [TableName]),
    /// The interrupted run goes on.
    Resuming(&'a SavedRun),
    /// The interrupted followed copy goes on, then following starts.
    ResumingFollowed(&'a SavedRun),
    /// A follow whose copy never finished was given up (its slot dropped).
    FollowGivenUp(&'a Following),
    /// Worth a warning (from preparing a follow).
    Warning(&'a str),
    /// A followed copy failed: what became of its slot.
    SlotFate(&'a Following, SlotFate),
}

/// How a copy ended, when it did not fail.
#[derive(Debug)]
pub enum Outcome {
    /// Preflight found problems; nothing was written.
    Refused(Vec<Problem>),
    /// A dry run: the plan, and what its syncs would repair.
    DryRun {
        plan: Box<Plan>,
        previews: Vec<Preview>,
    },
    /// A dry run of a resume: the run that would go on.
    ResumeDryRun(Box<SavedRun>),
    /// `--follow --resume` with the copy done: following goes on from the position
    /// recorded on the target.
    FollowOn,
    /// The copy ran; its failures, if any, are in the report.
    Copied(Box<Copied>),
}

/// What a copy that ran did.
#[derive(Debug)]
pub struct Copied {
    /// The plan it ran (none for a resumed run: the run recorded its units).
    pub plan: Option<Plan>,
    pub report: RunReport,
    /// With [`CopyRequest::verify`] (and no failure for a resumed run).
    pub verified: Option<VerifyReport>,
    /// A followed copy: ready to follow, or what became of its slot.
    pub follow: Option<FollowNext>,
}

/// What comes after a followed copy's copy stage.
#[derive(Debug)]
pub enum FollowNext {
    /// The stream takes over where the copy's snapshot ends.
    Ready(Following),
    /// The copy had failures (or differences): the slot is kept or dropped.
    Stopped(Following, SlotFate),
    /// The copy did not end complete and from one snapshot: following cannot start.
    GaveUp(Following, SlotFate),
}

/// Runs the copy `request` asks for, from `source` to `target`, until done or `stop`
/// resolves (an interrupted run stays recorded for a resume).
pub async fn run(
    source: &Connection,
    target: &Connection,
    request: CopyRequest,
    ui: &dyn Ui,
    stop: impl Future<Output = ()>,
) -> Result<Outcome> {
    let copy = Copy {
        source,
        target,
        request: &request,
        ui,
    };
    let pending = super::pending(
        &PgStore::new(&request.copy.ledger, target),
        PendingRequest {
            resume: request.resume,
            follow: request.follow.is_some(),
            dry_run: request.dry_run,
        },
        ui,
    )
    .await?;
    match pending {
        Pending::Fresh => {}
        Pending::FollowOn => return Ok(Outcome::FollowOn),
        Pending::Resume(run) if request.follow.is_some() && !request.dry_run => {
            return copy.resume_followed(run, stop).await
        }
        Pending::Resume(run) => return copy.resume(run, stop).await,
        Pending::WouldAbandon(run) => ui.notice(Notice::WouldAbandon(&run)),
        Pending::Abandoned(run, dropped) => ui.notice(Notice::Abandoned(&run, &dropped)),
    }
    copy.fresh(stop).await
}

/// One copy's connections, request and user.
struct Copy<'a> {
    source: &'a Connection,
    target: &'a Connection,
    request: &'a CopyRequest,
    ui: &'a dyn Ui,
}

impl Copy<'_> {
    /// A new run: selection, plan, preflight, then (unless a dry run) the copy.
    async fn fresh(&self, stop: impl Future<Output = ()>) -> Result<Outcome> {
        let plan = match self.plan().await? {
            Ok(plan) => plan,
            Err(problems) => return Ok(Outcome::Refused(problems)),
        };
        self.ui.planned(&plan)?;
        if self.request.dry_run {
            // A sync's dry run shows what it would repair: the comparison reads only.
            let previews =
                super::sync_previews(self.source, self.target, &plan, &self.request.copy).await?;
            return Ok(Outcome::DryRun {
                plan: Box::new(plan),
                previews,
            });
        }
        if !self.ui.approve(&plan)? {
            return Err(Error::new(
                Kind::Interrupted,
                "not confirmed; nothing was written.",
            ));
        }
        let following = match self.request.follow {
            Some(follow) => match self.prepare_follow(&plan, follow.fire_triggers).await? {
                Ok(following) => Some(following),
                Err(problems) => return Ok(Outcome::Refused(problems)),
            },
            None => None,
        };
        let report = self
            .execute(Start::Fresh(plan.work()), following.as_ref(), stop)
            .await?;
        let verified = match self.request.verify {
            true => Some(self.verify(plan.tables.iter().map(|t| &t.target)).await?),
            false => None,
        };
        let follow = match following {
            Some(f) => Some(self.after_copy(f, &report, verified.as_ref()).await?),
            None => None,
        };
        Ok(Outcome::Copied(Box::new(Copied {
            plan: Some(plan),
            report,
            verified,
            follow,
        })))
    }

    /// Selects the tables and plans them: the plan, or the preflight problems.
    async fn plan(&self) -> Result<std::result::Result<Plan, Vec<Problem>>> {
        let request = self.request;
        let selected = super::select(
            self.source,
            self.target,
            super::SelectRequest {
                patterns: &request.patterns,
                exclude: &request.exclude,
                all: request.all,
                whole_schemas: &request.whole_schemas,
            },
            self.ui,
        )
        .await?;
        let planned = super::plan(
            self.source,
            self.target,
            super::PlanRequest {
                selection: selected.selection,
                source_tables: &selected.source_tables,
                target_tables: &selected.target_tables,
                whole_schemas: &selected.whole_schemas,
                with_parents: request.with_parents,
                options: request.plan.clone(),
                ledger: &request.copy.ledger,
            },
            self.ui,
        )
        .await?;
        if !planned.problems.is_empty() {
            return Ok(Err(planned.problems));
        }
        let plan = planned.plan;
        if plan.tables.is_empty() && plan.prepare.is_empty() && plan.schema.after.is_empty() {
            return Err(Error::usage("nothing left to copy; nothing was written."));
        }
        Ok(Ok(plan))
    }

    /// The interrupted run, continued from a new snapshot.
    async fn resume(&self, run: SavedRun, stop: impl Future<Output = ()>) -> Result<Outcome> {
        self.ui.notice(Notice::Resuming(&run));
        if self.request.dry_run {
            return Ok(Outcome::ResumeDryRun(Box::new(run)));
        }
        let names: Vec<TableName> = run.work.tables.iter().map(|t| t.target.clone()).collect();
        let report = self.execute(Start::Resume(run), None, stop).await?;
        let verified = match self.request.verify && report.failures.is_empty() {
            true => Some(self.verify(names.iter()).await?),
            false => None,
        };
        Ok(Outcome::Copied(Box::new(Copied {
            plan: None,
            report,
            verified,
            follow: None,
        })))
    }

    /// The interrupted followed copy: the tables it completed keep its snapshot, the
    /// others are copied from a new one, then following starts (see
    /// [`followed::resume`]).
    async fn resume_followed(
        &self,
        run: SavedRun,
        stop: impl Future<Output = ()>,
    ) -> Result<Outcome> {
        let (following, run) =
            followed::resume(self.source, self.target, &self.request.copy.ledger, run).await?;
        self.ui.notice(Notice::ResumingFollowed(&run));
        let report = self
            .execute(Start::ResumeFollowed(run), Some(&following), stop)
            .await?;
        let follow = self.after_copy(following, &report, None).await?;
        Ok(Outcome::Copied(Box::new(Copied {
            plan: None,
            report,
            verified: None,
            follow: Some(follow),
        })))
    }

    /// The copy stage, told to the [`Ui`]. When it fails, a followed copy's slot is
    /// kept or dropped (and the [`Ui`] told which) before the error returns.
    async fn execute(
        &self,
        start: Start,
        following: Option<&Following>,
        stop: impl Future<Output = ()>,
    ) -> Result<RunReport> {
        let work = match &start {
            Start::Fresh(work) => work,
            Start::Resume(run) | Start::ResumeFollowed(run) => &run.work,
        };
        self.ui.copy_started(work);
        let on_event = |event: Event| self.ui.event(event);
        let result = super::execute(
            self.source,
            self.target,
            start,
            &self.request.copy,
            stop,
            &on_event,
        )
        .await;
        self.ui.copy_ended();
        match result {
            Ok(report) => Ok(report),
            Err(error) => {
                if let Some(f) = following {
                    let fate = self.stopped(f, false).await;
                    self.ui.notice(Notice::SlotFate(f, fate));
                }
                Err(rolled_back(error))
            }
        }
    }

    /// Checks what following needs and makes the slot and publication (see
    /// [`followed::prepare`]).
    async fn prepare_follow(
        &self,
        plan: &Plan,
        fire_triggers: bool,
    ) -> Result<std::result::Result<Following, Vec<Problem>>> {
        let prepared = match followed::prepare(
            self.source,
            self.target,
            &self.request.copy.ledger,
            plan,
            fire_triggers,
        )
        .await?
        {
            Ok(prepared) => prepared,
            Err(problems) => return Ok(Err(problems)),
        };
        if let Some(old) = &prepared.gave_up {
            self.ui.notice(Notice::FollowGivenUp(old));
        }
        for w in &prepared.warnings {
            self.ui.notice(Notice::Warning(w));
        }
        Ok(Ok(prepared.following))
    }

    /// After a followed copy's copy stage: ready to follow, or the slot kept or
    /// dropped when the copy has failures or differences, or cannot be followed.
    async fn after_copy(
        &self,
        following: Following,
        report: &RunReport,
        verified: Option<&VerifyReport>,
    ) -> Result<FollowNext> {
        let differs = verified.is_some_and(|v| !v.all_equal());
        if !report.failures.is_empty() || differs {
            let fate = self.stopped(&following, report.snapshot_renewed).await;
            return Ok(FollowNext::Stopped(following, fate));
        }
        let (source, target, store) = (self.source, self.target, &self.request.copy.ledger);
        Ok(
            match followed::copied(source, target, store, &following, report).await? {
                Some(fate) => FollowNext::GaveUp(following, fate),
                None => FollowNext::Ready(following),
            },
        )
    }

    async fn stopped(&self, following: &Following, renewed: bool) -> SlotFate {
        let store = &self.request.copy.ledger;
        followed::stopped(self.source, self.target, store, following, renewed).await
    }

    /// Compares `tables` on both servers.
    async fn verify(&self, tables: impl Iterator<Item = &TableName>) -> Result<VerifyReport> {
        let names: Vec<TableName> = tables.cloned().collect();
        crate::verify::compare_tables(
            &self.source.client,
            &self.target.client,
            &names,
            self.request.copy.source_encoding.as_deref(),
        )
        .await
    }
}

/// A failed copy stage, with what the user can count on: a unit commits whole or not
/// at all, and what committed is recorded for `--resume`.
fn rolled_back(error: Error) -> Error {
    if error.kind() != Kind::Copy {
        return error;
    }
    error.context(
        "The units being loaded were rolled back: their tables are on the target exactly as \
         they were. What committed stays, recorded on the target; run the same command with \
         --resume to go on from there.",
    )
}
