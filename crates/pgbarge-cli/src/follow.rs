//! The commands around following: `follow`, `cutover`, `status`, and following after
//! `copy --follow`'s copy.

use pgbarge::connect::{connect, Connection};
use pgbarge::follow::cutover::{self, CutoverReport, Status};
use pgbarge::follow::{self, Ended, Follower, Goal};
use pgbarge::ledger::Store;
use pgbarge::text::human_bytes;
use pgbarge::{Error, Kind, Result, Side};
use serde_json::json;

use crate::common::{connect_both, stop_signal, Failure};
use crate::progress::FollowProgress;
use crate::render;
use crate::settings::{CopySettings, CutoverSettings, FollowSettings, StatusSettings};

/// How `copy --follow` follows: its `--retries` and `--fire-triggers`.
pub fn copy_follow_options(settings: &CopySettings) -> follow::Options {
    follow::Options {
        retry: settings.copy_options.retry,
        fire_triggers: settings.fire_triggers,
        ..Default::default()
    }
}

/// Follows until Ctrl-C / SIGTERM or another pgbarge takes over.
pub async fn follow_on(
    source: &Connection,
    target: &Connection,
    store: &Store,
    (json, quiet): (bool, bool),
    options: &follow::Options,
) -> Result<(), Failure> {
    let progress = FollowProgress::new(json, quiet);
    let (mut follower, replaced) = Follower::claim(source, target, store).await?;
    follower.configure(options);
    let f = follower.following();
    if !quiet && !json {
        if replaced {
            eprintln!("note: a follower still running was stopped; this one goes on.");
        }
        eprintln!(
            "Following {} table{} from {} (slot {}). Ctrl-C stops (`pgbarge follow` goes on \
             later); `pgbarge cutover` switches to the target.",
            f.tables.len(),
            if f.tables.len() == 1 { "" } else { "s" },
            f.source,
            f.slot
        );
    }
    let slot = f.slot.clone();
    let outcome = follower
        .run(Goal::Stopped, stop_signal(), &|e| progress.event(e))
        .await;
    progress.clear();
    let outcome = outcome?;
    if json {
        outln!(
            "{}",
            json!({"event": "stopped", "ended": outcome.ended, "slot": slot,
                   "applied_lsn": outcome.applied_lsn, "changes": outcome.changes})
        );
    } else if !quiet {
        let applied = outcome
            .applied_lsn
            .map_or("the copy's snapshot".to_string(), |l| l.to_string());
        eprintln!(
            "{} at {applied}; {} change{} applied by this follower.",
            match outcome.ended {
                Ended::TakenOver => "Another pgbarge took the follow over",
                _ => "Stopped following",
            },
            outcome.changes,
            if outcome.changes == 1 { "" } else { "s" },
        );
        if outcome.ended == Ended::Signal {
            eprintln!(
                "The slot {slot} keeps the source's changes (and its WAL) until you go on \
                 with `pgbarge follow`, switch with `pgbarge cutover`, or give up with \
                 `pgbarge follow --drop`."
            );
        }
    }
    Ok(())
}

/// `pgbarge follow`
pub async fn follow(settings: FollowSettings) -> Result<(), Failure> {
    let (source, target) = connect_both(&settings.source, &settings.target).await?;
    if settings.drop {
        let dropped = cutover::abandon(&source, &target, &settings.ledger).await?;
        let message = match &dropped {
            Some(f) => format!(
                "dropped the follow from {}: slot and publication {} are gone from the \
                 source; the target keeps what was applied ({} changes).",
                f.source, f.slot, f.changes
            ),
            None => "nothing to drop: no follow is recorded on the target.".to_string(),
        };
        if settings.json {
            outln!(
                "{}",
                json!({"ok": true, "command": "follow", "dropped": dropped.map(|f| f.slot)})
            );
        } else {
            outln!("{message}");
        }
        return Ok(());
    }
    follow_on(
        &source,
        &target,
        &settings.ledger,
        (settings.json, settings.quiet),
        &settings.follow,
    )
    .await
}

/// `pgbarge cutover`
pub async fn cutover(settings: CutoverSettings) -> Result<(), Failure> {
    let (source, target) = connect_both(&settings.source, &settings.target).await?;
    let progress = FollowProgress::new(settings.json, settings.json);
    let options = cutover::Options {
        fence: settings.fence,
        source_encoding: None,
        follow: settings.follow,
    };
    let report = cutover::cutover(&source, &target, &settings.ledger, &options, &|e| {
        progress.event(e)
    })
    .await;
    progress.clear();
    let report = report?;
    if settings.json {
        crate::json::print(&json!({
            "ok": report.ready,
            "command": "cutover",
            "cutover": report,
        }));
    } else {
        out!("{}", render_cutover(&report));
    }
    if !report.ready {
        return Err(Failure {
            error: Error::new(
                Kind::Verify,
                "the cut-over stopped before dropping the slot: verification found \
                 differences (see the report). The follow stays; after looking into them, \
                 run `pgbarge cutover` again.",
            ),
            problems: Vec::new(),
            reported: settings.json,
        });
    }
    Ok(())
}

fn render_cutover(r: &CutoverReport) -> String {
    let mut out = String::new();
    if let Some(n) = r.fenced_sessions {
        out.push_str(&format!(
            "Fenced the source: read-only for new transactions, {n} session{} ended.\n",
            if n == 1 { "" } else { "s" }
        ));
    }
    match &r.drained_to {
        Some(lsn) => out.push_str(&format!(
            "Drained to {lsn}: {} change{} applied.\n",
            r.changes,
            if r.changes == 1 { "" } else { "s" }
        )),
        None => out.push_str("Nothing to drain: the slot was already dropped.\n"),
    }
    out.push_str(&format!(
        "{} sequence{} checked on the target (moved forward where behind the source).\n",
        r.sequences,
        if r.sequences == 1 { "" } else { "s" }
    ));
    out.push_str(&render::verify(&r.verify));
    if r.ready {
        out.push_str(&format!(
            "Target ready: every followed table is equal; slot and publication {} dropped. \
             Downtime {:.1} s ({}).\n",
            r.slot,
            r.downtime_seconds,
            if r.fenced_sessions.is_some() {
                "from the fence to ready"
            } else {
                "from the start of the cut-over to ready"
            }
        ));
    }
    if let Some(sql) = &r.unfence {
        out.push_str(&format!(
            "The source stays read-only for new sessions; to let it take writes again, run \
             on it: {sql}\n"
        ));
    }
    out
}

/// `pgbarge status`
pub async fn status(settings: StatusSettings) -> Result<(), Failure> {
    let target = connect(&settings.target, Side::Target).await?;
    let source = match &settings.source {
        Some(info) => Some(connect(info, Side::Source).await?),
        None => None,
    };
    let status = cutover::status(source.as_ref(), &target, &settings.ledger).await?;
    if settings.json {
        crate::json::print(&json!({"ok": true, "command": "status", "status": status}));
    } else {
        out!("{}", render_status(&status, source.is_some()));
    }
    Ok(())
}

fn render_status(s: &Status, with_source: bool) -> String {
    let mut out = String::new();
    match &s.run {
        Some(run) => out.push_str(&format!(
            "Interrupted copy: run {}, started {}, {} of {} units committed (`pgbarge copy \
             {}--resume` goes on, `pgbarge clean` abandons it).\n",
            run.id,
            run.started_at,
            run.units_done,
            run.units,
            // A follow still waiting for its copy: this is that copy.
            if s.follow.as_ref().is_some_and(|f| f.snapshot.is_none()) {
                "--follow "
            } else {
                ""
            }
        )),
        None => out.push_str("No interrupted copy recorded on the target.\n"),
    }
    match &s.follow {
        None => out.push_str("Nothing is being followed.\n"),
        Some(f) => {
            out.push_str(&format!(
                "Following {} ({} table{}) through slot {}, since {}.\n",
                f.source,
                f.tables.len(),
                if f.tables.len() == 1 { "" } else { "s" },
                f.slot,
                f.created_at
            ));
            match (&f.snapshot, &f.applied) {
                (None, _) => out.push_str(
                    "  Its copy has not finished: `pgbarge copy --follow --resume …` goes on, \
                     `pgbarge follow --drop` removes the slot.\n",
                ),
                (Some(_), None) => out.push_str("  Copied; no change applied yet.\n"),
                (Some(_), Some(lsn)) => out.push_str(&format!(
                    "  Applied up to {lsn} at {} ({} changes).\n",
                    f.applied_at.as_deref().unwrap_or("?"),
                    f.changes
                )),
            }
            match &s.slot {
                Some(slot) => {
                    // Before the first change applied, the slot's start is where the
                    // target is.
                    let at = f.applied.or(slot.confirmed);
                    let behind = at.map(|a| slot.current.0.saturating_sub(a.0));
                    out.push_str(&format!(
                        "  Source at {}: {} behind; {}; the slot holds {} of WAL{}.\n",
                        slot.current,
                        behind.map(human_bytes).unwrap_or_else(|| "?".into()),
                        if s.follower_running {
                            "a follower is running"
                        } else if f.snapshot.is_none() {
                            "no follower is running"
                        } else {
                            "no follower is running (`pgbarge follow` goes on)"
                        },
                        human_bytes(slot.wal_held.unwrap_or(0).max(0) as u64),
                        slot.wal_status
                            .as_ref()
                            .map(|w| format!(" (wal_status {w})"))
                            .unwrap_or_default()
                    ));
                    if let Some(w) = slot.warning(&f.slot) {
                        out.push_str(&format!("  warning: {w}\n"));
                    }
                }
                None if with_source => out.push_str(
                    "  Its slot is not on the source (dropped or invalidated): following \
                     cannot go on; `pgbarge follow --drop` clears the record.\n",
                ),
                None => out.push_str("  Give --source to see the slot's lag and WAL held.\n"),
            }
        }
    }
    for stray in &s.stray_slots {
        out.push_str(&format!(
            "Slot {} on the source belongs to no follow on this target ({}; holds {} of \
             WAL). If nothing uses it: SELECT pg_drop_replication_slot('{}');\n",
            stray.slot,
            if stray.active { "active" } else { "inactive" },
            human_bytes(stray.wal_held.unwrap_or(0).max(0) as u64),
            stray.slot
        ));
    }
    out
}
