//! The commands: each one pass through the library's stages, with the terminal work
//! (questions, progress lines, rendering) done here.

use pgbarge::catalog::{self, Snapshot, TableName};
use pgbarge::connect::{connect, Connection};
use pgbarge::copy::{self, Event};
use pgbarge::plan::{Action, Endpoint, Plan, PlanOptions};
use pgbarge::preflight::{self, Problem};
use pgbarge::select::{self, Selection};
use pgbarge::{Error, Kind, Result, Side};

use crate::interact;
use crate::planfile::SavedPlan;
use crate::progress::Progress;
use crate::render;
use crate::settings::{CopySettings, TablesSettings, VerifySettings};

/// What a failed command leaves for `main`: the error and, for preflight, every problem.
pub struct Failure {
    pub error: Error,
    pub problems: Vec<Problem>,
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Failure {
            error,
            problems: Vec::new(),
        }
    }
}

fn endpoint(c: &Connection) -> Endpoint {
    Endpoint {
        connection: c.info.to_string(),
        database: c.database.clone(),
        host: c.info.host_display().to_string(),
        server_version: c.server_version_num,
    }
}

fn warn_all(c: &pgbarge::conninfo::ConnInfo) {
    for w in &c.warnings {
        eprintln!("warning: {w}");
    }
}

/// Connects to both sides, refusing one database given as both.
async fn connect_both(
    source: &pgbarge::conninfo::ConnInfo,
    target: &pgbarge::conninfo::ConnInfo,
) -> Result<(Connection, Connection)> {
    warn_all(source);
    warn_all(target);
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

/// Compares `names` on both servers, describing them afresh (the target may have just
/// been written).
async fn verify_tables(
    source: &Connection,
    target: &Connection,
    names: &[TableName],
) -> Result<pgbarge::verify::VerifyReport> {
    let (source_tables, target_tables) = tokio::try_join!(
        catalog::list_tables(&source.client, Side::Source),
        catalog::list_tables(&target.client, Side::Target)
    )?;
    let pick = |list: &[catalog::Table]| -> Vec<catalog::Table> {
        list.iter()
            .filter(|t| names.contains(&t.name))
            .cloned()
            .collect()
    };
    let (source_chosen, target_chosen) = (pick(&source_tables), pick(&target_tables));
    let (source_described, target_described) = tokio::try_join!(
        catalog::describe(&source.client, Side::Source, &source_chosen, &[]),
        catalog::describe(&target.client, Side::Target, &target_chosen, &[])
    )?;
    pgbarge::verify::verify(
        &source.client,
        &target.client,
        names,
        &source_described,
        &target_described,
    )
    .await
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
    let report = verify_tables(&source, &target, &names).await?;
    if settings.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    } else {
        print!("{}", render::verify(&report));
    }
    Ok(differences(&report)?)
}

/// `pgbarge tables`
pub async fn tables(settings: TablesSettings) -> Result<(), Failure> {
    warn_all(&settings.source);
    let source = connect(&settings.source, Side::Source).await?;
    let mut list = catalog::list_tables(&source.client, Side::Source).await?;
    if !settings.patterns.is_empty() {
        list = select::select(&settings.patterns, &list).tables;
    }
    if settings.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&list).unwrap_or_default()
        );
    } else {
        print!("{}", render::tables(&list));
    }
    Ok(())
}

/// `pgbarge copy`
pub async fn copy(settings: CopySettings) -> Result<(), Failure> {
    // Fail at once, before connecting, when there is nothing to copy and nobody to ask.
    if settings.patterns.is_empty() && !settings.all && !settings.interactive {
        return Err(Error::usage(
            "no tables named, and no terminal to pick them in. Name the tables to copy, e.g. \
             `pgbarge copy --source … --target … public.orders 'sales.*'`, use --all for every \
             table, or run in a terminal to pick them interactively.",
        )
        .into());
    }

    let (source, target) = connect_both(&settings.source, &settings.target).await?;
    let (source_tables, target_tables) = tokio::try_join!(
        catalog::list_tables(&source.client, Side::Source),
        catalog::list_tables(&target.client, Side::Target)
    )?;

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
    let roles: Vec<String> = settings.owner.iter().cloned().collect();
    let mut options = PlanOptions {
        per_table: settings.per_table.clone(),
        mode: settings.mode,
        content: settings.content,
        jobs: settings.jobs,
        split_above: settings.split_above,
        schema: pgbarge::plan::SchemaOptions {
            without_fks: settings.without_fks,
            owner: settings.owner.clone(),
            grants: settings.grants,
        },
    };
    // Foreign keys to tables left behind: add them (--with-parents, or yes in a
    // terminal) and read again, until nothing is missing; or leave those keys out.
    let snapshot = loop {
        let snapshot = Snapshot::read(
            &source.client,
            &target.client,
            &selection.tables,
            &target_tables,
            &whole_schemas,
            &roles,
        )
        .await?;
        let names: Vec<TableName> = selection.tables.iter().map(|t| t.name.clone()).collect();
        let probe = Plan::build(
            endpoint(&source),
            endpoint(&target),
            &names,
            &snapshot,
            &options,
        );
        let missing = missing_parents(&probe);
        if missing.is_empty() || options.schema.without_fks {
            break snapshot;
        }
        let add =
            settings.with_parents || (settings.interactive && interact::offer_parents(&missing)?);
        if !add {
            if settings.interactive {
                options.schema.without_fks = true;
            }
            break snapshot;
        }
        let before = selection.tables.len();
        for parent in &missing {
            if let Some(t) = source_tables.iter().find(|t| &t.name == parent) {
                if !selection.tables.iter().any(|c| c.name == t.name) {
                    selection.tables.push(t.clone());
                }
            }
        }
        if selection.tables.len() == before {
            break snapshot;
        }
    };

    let mut chosen: Vec<TableName> = selection.tables.iter().map(|t| t.name.clone()).collect();
    let (plan, problems) = loop {
        let plan = Plan::build(
            endpoint(&source),
            endpoint(&target),
            &chosen,
            &snapshot,
            &options,
        );
        let problems = preflight::check(&plan, &snapshot, &selection.unmatched);
        // In a terminal, a table that holds rows is a question, not an error.
        let undecided: Vec<TableName> = plan
            .tables
            .iter()
            .filter(|t| t.action == Action::NeedsMode)
            .map(|t| t.target.clone())
            .collect();
        if settings.interactive && !undecided.is_empty() {
            for table in undecided {
                match interact::ask_mode(&table)? {
                    Some(mode) => {
                        options.per_table.insert(table, mode);
                    }
                    None => chosen.retain(|t| t != &table),
                }
            }
            continue;
        }
        break (plan, problems);
    };

    if !problems.is_empty() {
        let error = Error::new(Kind::Preflight, render::problems(&problems));
        return Err(Failure { error, problems });
    }
    let objects = plan.prepare.len() + plan.schema.after.len();
    if plan.tables.is_empty() && objects == 0 {
        return Err(Error::usage("nothing left to copy; nothing was written.").into());
    }

    let split_above = settings
        .split_above
        .unwrap_or(pgbarge::plan::DEFAULT_SPLIT_ABOVE);
    if let Some(path) = &settings.save_plan {
        SavedPlan::from_plan(&plan, split_above).save(
            path,
            &plan.source.connection,
            &plan.target.connection,
        )?;
        eprintln!("plan saved to {}", path.display());
    }
    if settings.dry_run {
        if settings.json {
            println!(
                "{}",
                serde_json::to_string_pretty(&plan).unwrap_or_default()
            );
        } else {
            print!("{}", render::plan(&plan, settings.verbose));
            println!("Dry run: preflight passed; nothing was written.");
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

    let progress = Progress::new(&plan, settings.quiet);
    let on_event = |event: Event| progress.event(event);

    // Ctrl-C stops the run the way a failure does: streams cancelled, tables rolled back.
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let result = copy::run(&plan, &source, &target, ctrl_c, &on_event).await;
    progress.finish();
    let report = result.map_err(|e| copy_failure(e, &plan))?;
    let verified = if settings.verify {
        let names: Vec<TableName> = plan.tables.iter().map(|t| t.target.clone()).collect();
        Some(verify_tables(&source, &target, &names).await?)
    } else {
        None
    };
    if settings.json {
        // One document: the copy report, with the verdicts under "verify" when asked for.
        let mut doc = serde_json::to_value(&report).unwrap_or_default();
        doc["ok"] = serde_json::Value::Bool(true);
        if let Some(v) = &verified {
            doc["verify"] = serde_json::to_value(v).unwrap_or_default();
        }
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    } else {
        print!("{}", render::report(&report));
        if let Some(v) = &verified {
            print!("{}", render::verify(v));
        }
    }
    if let Some(v) = &verified {
        differences(v)?;
    }
    // After picking by hand, offer to keep the choices for next time.
    if picked && settings.save_plan.is_none() {
        if let Some(path) = interact::offer_save_plan()? {
            SavedPlan::from_plan(&plan, split_above).save(
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

/// The tables the plan's created tables reference and that are neither copied nor on
/// the target, each once.
fn missing_parents(plan: &Plan) -> Vec<TableName> {
    let mut missing: Vec<TableName> = plan
        .schema
        .missing_parents
        .values()
        .flatten()
        .cloned()
        .collect();
    missing.sort();
    missing.dedup();
    missing
}

/// Adds to a copy error what the user needs to know: what the target holds now.
fn copy_failure(err: Error, plan: &Plan) -> Failure {
    // A definition from a newer server can use syntax an older target does not know.
    let (from, to) = (
        plan.source.server_version / 10000,
        plan.target.server_version / 10000,
    );
    let older_target = if from > to && err.message().contains("syntax error") {
        format!(
            "\nThe source is PostgreSQL {from} and the target {to}: a definition uses syntax \
             the older server does not know. Change it on the source (or create that object on \
             the target by hand), then run again."
        )
    } else {
        String::new()
    };
    if err.kind() != Kind::Copy {
        if older_target.is_empty() {
            return err.into();
        }
        let mut e = Error::new(err.kind(), format!("{}{older_target}", err.message()));
        if let Some(side) = err.side() {
            e = e.on(side);
        }
        return e.into();
    }
    let disk_full = err.side() == Some(Side::Target)
        && (err.message().contains("No space left") || err.message().contains("could not extend"));
    let message = format!(
        "{}\nThe table being loaded was rolled back: on the target it is exactly as it was \
         before. Tables reported done are committed; run again naming the tables that \
         are not done yet.{}{older_target}",
        err.message(),
        if disk_full {
            " The target ran out of disk space: free some or grow its storage first."
        } else {
            ""
        }
    );
    let mut e = Error::new(Kind::Copy, message).transient(err.is_transient());
    if let Some(side) = err.side() {
        e = e.on(side);
    }
    e.into()
}
