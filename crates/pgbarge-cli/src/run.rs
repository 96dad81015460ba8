//! The commands: each one pass through the library's stages, with the terminal work
//! (questions, progress lines, rendering) done here.

use pgbarge::catalog::{self, TableName};
use pgbarge::connect::{connect, Connection};
use pgbarge::copy::Event;
use pgbarge::ledger::SavedRun;
use pgbarge::plan::{Content, Endpoint, PlanOptions};
use pgbarge::preflight::Problem;
use pgbarge::select::{self, Selection};
use pgbarge::session::{self, Start};
use pgbarge::{Error, Kind, Result, Side};

use crate::interact;
use crate::json;
use crate::planfile::SavedPlan;
use crate::progress::Progress;
use crate::render;
use crate::settings::{CleanSettings, CopySettings, TablesSettings, VerifySettings};

/// What a failed command leaves for `main`: the error and, for preflight, every problem.
pub struct Failure {
    pub error: Error,
    pub problems: Vec<Problem>,
    /// The command already printed its JSON document (a report listing the failures):
    /// stdout must hold one document, so the error is not printed there again.
    pub reported: bool,
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Failure {
            error,
            problems: Vec::new(),
            reported: false,
        }
    }
}

/// Prints what reading `c` found worth a warning (a `~/.pgpass` others may read, say),
/// and, with `tls`, a network connection that checks no certificate (`copy` shows that
/// in its plan instead).
fn warn_all(c: &pgbarge::conninfo::ConnInfo, side: Side, tls: bool) {
    for w in &c.warnings {
        eprintln!("warning: {w}");
    }
    if let Some(w) = c.tls_warning(&format!("the {side}")).filter(|_| tls) {
        eprintln!("warning: {w}");
    }
}

/// Connects to both sides, refusing one database given as both.
pub(crate) async fn connect_both(
    source: &pgbarge::conninfo::ConnInfo,
    target: &pgbarge::conninfo::ConnInfo,
) -> Result<(Connection, Connection)> {
    connect_pair(source, target, true).await
}

/// [`connect_both`]; `tls`: say here that a connection checks no certificate.
async fn connect_pair(
    source: &pgbarge::conninfo::ConnInfo,
    target: &pgbarge::conninfo::ConnInfo,
    tls: bool,
) -> Result<(Connection, Connection)> {
    warn_all(source, Side::Source, tls);
    warn_all(target, Side::Target, tls);
    let (source, target) =
        tokio::try_join!(connect(source, Side::Source), connect(target, Side::Target))?;
    if source.database_identity == target.database_identity {
        // Loading a table into itself would truncate or duplicate it, and a truncate would
        // wait forever on our own source snapshot.
        return Err(Error::usage(format!(
            "the source and the target are the same database (\"{}\" on the same server); \
             give a --target that points at another database or server.",
            source.database
        )));
    }
    Ok((source, target))
}

/// Compares `names` on both servers (see [`pgbarge::verify::compare_tables`]).
async fn verify_tables(
    source: &Connection,
    target: &Connection,
    names: &[TableName],
    source_encoding: Option<&str>,
) -> Result<pgbarge::verify::VerifyReport> {
    pgbarge::verify::compare_tables(&source.client, &target.client, names, source_encoding).await
}

/// The error for a verification that found differences (the verdicts are printed).
fn differences(report: &pgbarge::verify::VerifyReport) -> Result<()> {
    if report.all_equal() {
        Ok(())
    } else {
        Err(Error::new(
            Kind::Verify,
            "verification found differences between source and target (see the report).",
        ))
    }
}

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
    // An interrupted run on the target: go on with it (--resume, or yes in a terminal),
    // or abandon it before starting anew.
    let store = &settings.copy_options.ledger;
    let pending = store.last_run(&target.client).await?;
    if settings.follow && settings.resume && pending.is_none() {
        if let Some(f) = pgbarge::follow::state::load(&target.client, store).await? {
            if f.snapshot.is_none() {
                return Err(Error::usage(format!(
                    "--follow --resume: the copy that started following (slot {}) is no \
                     longer recorded on the target (it was cleaned), so it cannot go on. \
                     Run `pgbarge follow --drop`, then `pgbarge copy --follow` again.",
                    f.slot
                ))
                .into());
            }
        }
        // The copy is done: go on following from the position recorded on the target.
        return crate::follow::follow_on(
            &source,
            &target,
            store,
            (settings.json, settings.quiet),
            None,
            settings.fire_triggers,
        )
        .await;
    }
    if settings.resume || pending.is_some() {
        let resume = match &pending {
            None => {
                return Err(Error::usage(
                    "--resume: no interrupted run is recorded on the target; nothing to resume. \
                     Run the copy without --resume.",
                )
                .into())
            }
            Some(_) if settings.resume => true,
            Some(run) if settings.interactive && !settings.dry_run => interact::offer_resume(run)?,
            Some(_) => false,
        };
        if resume {
            let Some(run) = pending else {
                return Ok(());
            };
            if settings.follow && !settings.dry_run {
                return crate::follow::resume_copy(&settings, &source, &target, run).await;
            }
            return resume_run(&settings, &source, &target, run).await;
        }
        if let Some(run) = &pending {
            if settings.dry_run {
                eprintln!(
                    "note: an interrupted run (run {}, started {}) is recorded on the target; \
                     copying without --resume would abandon it.",
                    run.id, run.started_at
                );
            } else {
                let dropped = store.abandon(&target.client, run).await?.dropped;
                eprintln!(
                    "note: the interrupted run recorded on the target (run {}, started {}) was \
                     abandoned{}; starting anew.",
                    run.id,
                    run.started_at,
                    if dropped.is_empty() {
                        String::new()
                    } else {
                        format!(
                            ": its staging tables {} were dropped",
                            dropped
                                .iter()
                                .map(|t| t.to_string())
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    }
                );
            }
        }
    }
    let (mut source_tables, target_tables) = tokio::try_join!(
        catalog::list_tables(&source.client, Side::Source),
        catalog::list_tables(&target.client, Side::Target)
    )?;
    catalog::count_unanalysed(&source.client, &mut source_tables).await;

    let picked = !settings.all && settings.patterns.is_empty();
    let mut selection = if settings.all {
        Selection {
            tables: select::all(&source_tables),
            unmatched: Vec::new(),
        }
    } else if settings.patterns.is_empty() {
        Selection {
            tables: interact::pick_tables(&select::exclude(
                source_tables.clone(),
                &settings.exclude,
            ))?,
            unmatched: Vec::new(),
        }
    } else {
        select::select(&settings.patterns, &source_tables)
    };
    selection.tables = select::exclude(selection.tables, &settings.exclude);
    // A schema named whole (`app.*`, or every schema with --all) brings its views,
    // functions, sequences and types along with its tables — even a schema that holds no
    // table at all (views over other schemas, say).
    let source_schemas = catalog::list_schemas(&source.client, Side::Source).await?;
    let mut whole_schemas: Vec<String> = if settings.all {
        source_schemas.clone()
    } else {
        settings
            .patterns
            .iter()
            .filter_map(|p| p.whole_schema().map(str::to_string))
            .chain(settings.whole_schemas.iter().cloned())
            .filter(|s| source_schemas.contains(s))
            .collect()
    };
    whole_schemas.sort();
    whole_schemas.dedup();
    selection.unmatched.retain(|u| {
        !settings.patterns.iter().any(|p| {
            p.text == u.pattern
                && p.whole_schema()
                    .is_some_and(|s| whole_schemas.iter().any(|w| w == s))
        })
    });
    if selection.tables.is_empty() && selection.unmatched.is_empty() && whole_schemas.is_empty() {
        return Err(Error::usage(if settings.exclude.is_empty() {
            "the source has no tables to copy; nothing was written."
        } else {
            "no tables left to copy after --exclude; nothing was written."
        })
        .into());
    }
    let options = PlanOptions {
        per_table: settings.per_table.clone(),
        mode: settings.mode,
        content: settings.content,
        jobs: settings.jobs,
        split_above: settings.split_above,
        part_size: settings.part_size,
        schema: pgbarge::plan::SchemaOptions {
            without_fks: settings.without_fks,
            owner: settings.owner.clone(),
            grants: settings.grants,
            strict: settings.strict,
            refused: Default::default(),
            exclude_objects: settings.exclude_objects.clone(),
        },
        source_encoding: settings.copy_options.source_encoding.clone(),
        since: settings.since.clone(),
    };
    let request = session::PlanRequest {
        selection,
        source_tables: &source_tables,
        target_tables: &target_tables,
        whole_schemas: &whole_schemas,
        with_parents: settings.with_parents,
        options,
        ledger: store,
    };
    let questions: &dyn session::Questions = if settings.interactive {
        &interact::Terminal
    } else {
        &session::NoQuestions
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
        let specs: Vec<pgbarge::sync::SyncSpec> = plan
            .tables
            .iter()
            .filter_map(|t| t.sync_spec(&plan.source))
            .collect();
        let previews = if specs.is_empty() || settings.content == Content::SchemaOnly {
            Vec::new()
        } else {
            pgbarge::sync::preview(
                &source.client,
                &target.client,
                &specs,
                settings.copy_options.source_encoding.as_deref(),
                store,
            )
            .await?
        };
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
        return crate::follow::after_copy(
            &source,
            &target,
            store,
            f,
            &report,
            settings.json,
            settings.quiet,
            settings.fire_triggers,
        )
        .await;
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

/// Runs `start` with progress on stderr; Ctrl-C and SIGTERM stop it the way a failure
/// does (streams cancelled, the units in flight rolled back, the run left resumable).
pub(crate) async fn execute(
    settings: &CopySettings,
    source: &Connection,
    target: &Connection,
    start: Start,
) -> Result<pgbarge::report::RunReport, Failure> {
    let work = match &start {
        Start::Fresh(work) => work,
        Start::Resume(run) | Start::ResumeFollowed(run) => &run.work,
    };
    let progress = Progress::new(work, settings.quiet);
    let on_event = |event: Event| progress.event(event);
    let (from, to) = (work.source.server_version, work.target.server_version);
    let result = session::execute(
        source,
        target,
        start,
        &settings.copy_options,
        stop_signal(),
        &on_event,
    )
    .await;
    progress.finish();
    result.map_err(|e| copy_failure(e, from, to))
}

/// Resolves on Ctrl-C (SIGINT) or SIGTERM (systemd, Kubernetes, `kill`) — also when the
/// signal came before the call. One listener lives from the first call to the end of the
/// process, so a signal between two stages (`copy --follow` going from copying to
/// following) stops the next one instead of being lost with nobody listening.
pub(crate) async fn stop_signal() {
    static STOPPED: std::sync::OnceLock<tokio::sync::watch::Receiver<bool>> =
        std::sync::OnceLock::new();
    let mut stopped = STOPPED
        .get_or_init(|| {
            let (tx, rx) = tokio::sync::watch::channel(false);
            tokio::spawn(async move {
                received().await;
                let _ = tx.send(true);
                // Keep the sender: a closed channel would end every wait.
                std::future::pending::<()>().await;
            });
            rx
        })
        .clone();
    if stopped.wait_for(|s| *s).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// The next SIGINT or SIGTERM.
async fn received() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
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

/// Prints the report (and verdicts); a run with failed units, or differences, is an
/// error after the report.
pub(crate) fn show_report(
    settings: &CopySettings,
    report: &pgbarge::report::RunReport,
    verified: Option<&pgbarge::verify::VerifyReport>,
) -> Result<(), Failure> {
    if settings.json {
        // One document: the copy report, with the verdicts under "verify" when asked for.
        json::print(&json::report(report, verified));
    } else {
        out!("{}", render::report(report));
        if let Some(v) = verified {
            out!("{}", render::verify(v));
        }
    }
    if !report.failures.is_empty() {
        return Err(Failure {
            error: Error::new(Kind::Copy, render::failures(report)),
            problems: Vec::new(),
            reported: settings.json,
        });
    }
    if let Some(v) = verified {
        differences(v)?;
    }
    Ok(())
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
    if abandoned.is_some() {
        if let Ok(Some(f)) = pgbarge::follow::state::load(&target.client, &settings.ledger).await {
            if f.snapshot.is_none() {
                eprintln!(
                    "note: the follow waiting for that copy (slot {}) cannot start any more; \
                     `pgbarge follow --drop` removes its slot and publication.",
                    f.slot
                );
            }
        }
    }
    Ok(())
}

/// Adds to an error that stopped the run what the user needs to know: what the target
/// holds now. `from` and `to` are the servers' versions.
fn copy_failure(err: Error, from: i32, to: i32) -> Failure {
    let hint = render::older_target_hint(err.message(), from, to);
    if err.kind() != Kind::Copy {
        return err.context(hint).into();
    }
    err.context(
        "The units being loaded were rolled back: their tables are on the target exactly as \
         they were. What committed stays, recorded on the target; run the same command with \
         --resume to go on from there.",
    )
    .context(hint)
    .into()
}
