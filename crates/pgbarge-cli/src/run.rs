//! The commands: each one pass through the library's stages, with the terminal work
//! (questions, progress lines, rendering) done here.

use pgbarge::catalog::{self, TableName};
use pgbarge::connect::{connect, Connection};
use pgbarge::ledger::SavedRun;
use pgbarge::plan::Endpoint;
use pgbarge::select;
use pgbarge::session::{self, Start};
use pgbarge::{Error, Kind, Result, Side};

use crate::common::{
    connect_both, connect_pair, differences, execute, show_report, verify_tables, warn_all, Failure,
};
use crate::interact;
use crate::json;
use crate::planfile::SavedPlan;
use crate::render;
use crate::settings::{CleanSettings, CopySettings, TablesSettings, VerifySettings};

/// `pgbarge verify`
pub async fn verify(settings: VerifySettings) -> Result<(), Failure> {
    let (source, target) = connect_both(&settings.source, &settings.target).await?;
    let source_tables = select::exclude(
        catalog::list_tables(&source.client, Side::Source).await?,
        &settings.exclude,
    );
    let names: Vec<TableName> = if settings.patterns.is_empty() {
        source_tables.iter().map(|t| t.name.clone()).collect()
    } else {
        let selection = select::select(&settings.patterns, &source_tables);
        if let Some(u) = selection.unmatched.first() {
            let hint = match u.suggestions.first() {
                Some(s) => format!(" Did you mean {s}?"),
                None => String::new(),
            };
            return Err(Error::usage(format!(
                "no table on the source matches \"{}\".{hint}",
                u.pattern
            ))
            .into());
        }
        selection.tables.iter().map(|t| t.name.clone()).collect()
    };
    let report = verify_tables(
        &source,
        &target,
        &names,
        settings.source_encoding.as_deref(),
    )
    .await?;
    if settings.json {
        json::print(&json::verify(
            &Endpoint::of(&source),
            &Endpoint::of(&target),
            &report,
        ));
    } else {
        out!("{}", render::verify(&report));
    }
    Ok(differences(&report)?)
}

/// `pgbarge tables`
pub async fn tables(settings: TablesSettings) -> Result<(), Failure> {
    warn_all(&settings.source, Side::Source, true);
    let source = connect(&settings.source, Side::Source).await?;
    let mut list = catalog::list_tables(&source.client, Side::Source).await?;
    catalog::count_unanalysed(&source.client, &mut list).await;
    if !settings.patterns.is_empty() {
        list = select::select(&settings.patterns, &list).tables;
    }
    if settings.json {
        json::print(&json::tables(&Endpoint::of(&source), &list));
    } else {
        out!("{}", render::tables(&list));
    }
    Ok(())
}

/// `pgbarge copy`
pub async fn copy(settings: CopySettings) -> Result<(), Failure> {
    // Fail at once, before connecting, when there is nothing to copy and nobody to ask.
    // (--resume needs no tables: the interrupted run's are recorded on the target.)
    if settings.patterns.is_empty() && !settings.all && !settings.interactive && !settings.resume {
        return Err(Error::usage(
            "no tables named, and no terminal to pick them in. Name the tables to copy, e.g. \
             `pgbarge copy --source … --target … public.orders 'sales.*'`, use --all for every \
             table, or run in a terminal to pick them interactively.",
        )
        .into());
    }

    let (source, target) = connect_pair(&settings.source, &settings.target, false).await?;
    let store = &settings.copy_options.ledger;
    let questions: &dyn session::Questions = if settings.interactive {
        &interact::Terminal
    } else {
        &session::NoQuestions
    };
    // An interrupted run on the target: go on with it (--resume, or yes in a terminal),
    // or abandon it before starting anew.
    let pending = session::PendingRequest {
        resume: settings.resume,
        follow: settings.follow,
        dry_run: settings.dry_run,
    };
    match session::pending(&target, store, pending, questions).await? {
        session::Pending::Fresh => {}
        session::Pending::FollowOn => {
            return crate::follow::follow_on(
                &source,
                &target,
                store,
                (settings.json, settings.quiet),
                &crate::follow::copy_follow_options(&settings),
            )
            .await;
        }
        session::Pending::Resume(run) if settings.follow && !settings.dry_run => {
            return crate::follow::resume_copy(&settings, &source, &target, run).await;
        }
        session::Pending::Resume(run) => return resume_run(&settings, &source, &target, run).await,
        session::Pending::WouldAbandon(run) => eprintln!(
            "note: an interrupted run (run {}, started {}) is recorded on the target; \
             copying without --resume would abandon it.",
            run.id, run.started_at
        ),
        session::Pending::Abandoned(run, dropped) => eprintln!(
            "note: the interrupted run recorded on the target (run {}, started {}) was \
             abandoned{}; starting anew.",
            run.id,
            run.started_at,
            if dropped.is_empty() {
                String::new()
            } else {
                format!(
                    ": its staging tables {} were dropped",
                    pgbarge::text::short_list(&dropped, usize::MAX)
                )
            }
        ),
    }
    let picked = !settings.all && settings.patterns.is_empty();
    let session::Selected {
        selection,
        source_tables,
        target_tables,
        whole_schemas,
    } = session::select(
        &source,
        &target,
        session::SelectRequest {
            patterns: &settings.patterns,
            exclude: &settings.exclude,
            all: settings.all,
            whole_schemas: &settings.whole_schemas,
        },
        questions,
    )
    .await?;
    let options = settings.plan_options();
    let request = session::PlanRequest {
        selection,
        source_tables: &source_tables,
        target_tables: &target_tables,
        whole_schemas: &whole_schemas,
        with_parents: settings.with_parents,
        options,
        ledger: store,
    };
    let session::Planned { plan, problems, .. } =
        session::plan(&source, &target, request, questions).await?;

    if !problems.is_empty() {
        let error = Error::new(Kind::Preflight, render::problems(&problems));
        return Err(Failure {
            error,
            problems,
            reported: false,
        });
    }
    let objects = plan.prepare.len() + plan.schema.after.len();
    if plan.tables.is_empty() && objects == 0 {
        return Err(Error::usage("nothing left to copy; nothing was written.").into());
    }

    let split_above = settings
        .split_above
        .unwrap_or(pgbarge::plan::DEFAULT_SPLIT_ABOVE);
    if let Some(path) = &settings.save_plan {
        SavedPlan::from_plan(&plan, split_above, settings.part_size, settings.mode).save(
            path,
            &plan.source.connection,
            &plan.target.connection,
        )?;
        eprintln!("plan saved to {}", path.display());
    }
    if settings.dry_run {
        // A sync's dry run shows what it would repair: the comparison reads, never writes.
        let previews =
            session::sync_previews(&source, &target, &plan, &settings.copy_options).await?;
        if settings.json {
            let mut doc = json::plan(&plan);
            doc["sync"] = if previews.is_empty() {
                serde_json::Value::Null
            } else {
                serde_json::json!(previews)
            };
            json::print(&doc);
        } else {
            out!("{}", render::plan(&plan, settings.verbose));
            out!("{}", render::sync_previews(&previews));
            outln!("Dry run: preflight passed; nothing was written.");
        }
        return Ok(());
    }

    if !settings.quiet || (settings.interactive && !settings.yes) {
        eprint!("{}", render::plan(&plan, settings.verbose));
    }
    if settings.interactive && !settings.yes {
        let question = format!(
            "Copy {} table{} to db \"{}\" on \"{}\"?",
            plan.tables.len(),
            if plan.tables.len() == 1 { "" } else { "s" },
            plan.target.database,
            plan.target.host
        );
        if !interact::confirm(&question)? {
            return Err(
                Error::new(Kind::Interrupted, "not confirmed; nothing was written.").into(),
            );
        }
    }

    let following = if settings.follow {
        Some(crate::follow::prepare(&source, &target, store, &plan, settings.fire_triggers).await?)
    } else {
        None
    };
    let work = plan.work();
    let report = match execute(&settings, &source, &target, Start::Fresh(work)).await {
        Ok(report) => report,
        Err(failure) => {
            if let Some(f) = &following {
                crate::follow::copy_stopped(&source, &target, store, f, false).await;
            }
            return Err(failure);
        }
    };
    let verified = if settings.verify {
        let names: Vec<TableName> = plan.tables.iter().map(|t| t.target.clone()).collect();
        Some(
            verify_tables(
                &source,
                &target,
                &names,
                settings.copy_options.source_encoding.as_deref(),
            )
            .await?,
        )
    } else {
        None
    };
    let shown = show_report(&settings, &report, verified.as_ref());
    if let Some(f) = &following {
        if shown.is_err() {
            crate::follow::copy_stopped(&source, &target, store, f, report.snapshot_renewed).await;
            return shown;
        }
        return crate::follow::after_copy(&source, &target, store, f, &report, &settings).await;
    }
    shown?;
    // After picking by hand, offer to keep the choices for next time.
    if picked && settings.save_plan.is_none() {
        if let Some(path) = interact::offer_save_plan()? {
            SavedPlan::from_plan(&plan, split_above, settings.part_size, settings.mode).save(
                &path,
                &plan.source.connection,
                &plan.target.connection,
            )?;
            eprintln!(
                "plan saved; run it again with: pgbarge copy --plan {} --source … --target …",
                path.display()
            );
        }
    }
    Ok(())
}

/// `pgbarge copy --resume`: the units of the interrupted run recorded on the target that
/// have not committed, from a new snapshot.
async fn resume_run(
    settings: &CopySettings,
    source: &Connection,
    target: &Connection,
    run: SavedRun,
) -> Result<(), Failure> {
    if !settings.quiet {
        eprintln!(
            "Resuming run {} (started {}): {} of {} units committed before; the rest runs now.",
            run.id,
            run.started_at,
            run.done.len(),
            run.work.units.len()
        );
    }
    if settings.dry_run {
        if settings.json {
            json::print(&json::resume_plan(&run));
        } else {
            out!("{}", render::resume_plan(&run, settings.verbose));
            outln!("Dry run: nothing was written.");
        }
        return Ok(());
    }
    let names: Vec<TableName> = run.work.tables.iter().map(|t| t.target.clone()).collect();
    let report = execute(settings, source, target, Start::Resume(run)).await?;
    let verified = if settings.verify && report.failures.is_empty() {
        Some(
            verify_tables(
                source,
                target,
                &names,
                settings.copy_options.source_encoding.as_deref(),
            )
            .await?,
        )
    } else {
        None
    };
    show_report(settings, &report, verified.as_ref())
}

/// `pgbarge clean`
pub async fn clean(settings: CleanSettings) -> Result<(), Failure> {
    warn_all(&settings.target, Side::Target, true);
    let target = connect(&settings.target, Side::Target).await?;
    let abandoned = session::abandon(&target, &settings.ledger).await?;
    let list = |tables: &[TableName]| {
        tables
            .iter()
            .map(|t| t.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let message = match &abandoned {
        None => "nothing to clean: no interrupted run is recorded on the target.".to_string(),
        Some((run, staging)) => {
            let mut message = format!(
                "abandoned run {} (started {}): {} of {} units had committed and stay; {}.",
                run.id,
                run.started_at,
                run.done.len(),
                run.work.units.len(),
                if staging.dropped.is_empty() {
                    "no staging table to drop".to_string()
                } else {
                    format!(
                        "dropped staging table{} {}",
                        if staging.dropped.len() == 1 { "" } else { "s" },
                        list(&staging.dropped)
                    )
                }
            );
            if !staging.kept.is_empty() {
                message.push_str(&format!(
                    " Left alone, though the run listed them: {} (the catalog does not show \
                     them as pgbarge's staging tables: another owner, or no pgbarge mark).",
                    list(&staging.kept)
                ));
            }
            message
        }
    };
    if settings.json {
        json::print(&json::clean(
            &Endpoint::of(&target),
            abandoned
                .as_ref()
                .map(|(run, staging)| (run, staging.dropped.as_slice())),
        ));
    } else {
        outln!("{message}");
    }
    if let Some(slot) = abandoned
        .as_ref()
        .and_then(|(_, a)| a.orphaned_slot.as_ref())
    {
        eprintln!(
            "note: the follow waiting for that copy (slot {slot}) cannot start any more; \
             `pgbarge follow --drop` removes its slot and publication."
        );
    }
    Ok(())
}
