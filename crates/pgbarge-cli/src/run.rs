//! The commands: each one pass through the library's stages, with the terminal work
//! (questions, progress lines, rendering) done here.

use pgbarge::catalog::TableName;
use pgbarge::connect::connect;
use pgbarge::plan::Endpoint;
use pgbarge::session;
use pgbarge::{Error, Result, Side};

use crate::common::{connect_both, connect_pair, differences, stop_signal, warn_all, Failure};
use crate::copying;
use crate::json;
use crate::render;
use crate::settings::{CleanSettings, CopySettings, TablesSettings, VerifySettings};

/// `pgbarge verify`
pub async fn verify(settings: VerifySettings) -> Result<(), Failure> {
    let (source, target) = connect_both(&settings.source, &settings.target).await?;
    let report = session::verify(
        &source,
        &target,
        (&settings.patterns, &settings.exclude),
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
    let list = session::tables(&source, &settings.patterns).await?;
    if settings.json {
        json::print(&json::tables(&Endpoint::of(&source), &list));
    } else {
        out!("{}", render::tables(&list));
    }
    Ok(())
}

/// `pgbarge copy`: the settings go to the library's copy session once; what it ends
/// with is rendered.
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
    let ui = copying::Terminal::new(&settings);
    let versions = (source.server_version_num, target.server_version_num);
    let outcome = session::copy::run(
        &source,
        &target,
        settings.copy_request(),
        &ui,
        stop_signal(),
    )
    .await
    .map_err(|e| {
        let hint = render::older_target_hint(e.sql_state(), versions.0, versions.1);
        e.context(hint)
    })?;
    copying::show(&settings, (&source, &target), outcome).await
}

/// `pgbarge clean`
pub async fn clean(settings: CleanSettings) -> Result<(), Failure> {
    warn_all(&settings.target, Side::Target, true);
    let target = connect(&settings.target, Side::Target).await?;
    let store = pgbarge::store::PgStore::new(&settings.ledger, &target);
    let abandoned = session::abandon(&store).await?;
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
