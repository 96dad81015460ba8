//! Turning plans, reports and errors into text for people (tables) or scripts (JSON).

use std::collections::BTreeMap;

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{CellAlignment, Table};
use pgbarge::catalog::Table as CatalogTable;
use pgbarge::error::SqlState;
use pgbarge::plan::units::{Op, UnitId, Work};
use pgbarge::plan::{Action, Content, CopyFormat, ObjectKind, Plan};
use pgbarge::preflight::Problem;
use pgbarge::quote::printable;
use pgbarge::report::RunReport;
use pgbarge::text::{human_bytes, thousands};
use pgbarge::{Error, Kind};

fn new_table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t.set_header(header.to_vec());
    t
}

fn right(t: &mut Table, columns: &[usize]) {
    for &i in columns {
        if let Some(c) = t.column_mut(i) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
}

pub fn action(a: Action, content: Content) -> &'static str {
    match a {
        Action::Create if content == Content::SchemaOnly => "create (no rows)",
        Action::Keep => "exists: kept",
        Action::Replace => "drop + create + load",
        Action::Upsert => "upsert by key",
        Action::Sync => "sync: only differences",
        Action::Create => "create + load",
        Action::Load => "load (empty)",
        Action::Append => "append",
        Action::Truncate => "truncate + load",
        Action::NeedsMode => "REFUSED: holds rows",
    }
}

fn format(f: CopyFormat) -> &'static str {
    match f {
        CopyFormat::Binary => "binary",
        CopyFormat::Text => "text",
    }
}

fn rows_estimate(rows: Option<i64>) -> String {
    match rows {
        Some(r) if r >= 0 => format!("~{}", thousands(r as u64)),
        _ => "?".into(),
    }
}

/// The source's tables, for `pgbarge tables`.
pub fn tables(list: &[CatalogTable]) -> String {
    let mut t = new_table(&["Table", "Est. rows", "Size"]);
    for table in list {
        t.add_row(vec![
            table.name.to_string(),
            rows_estimate(table.estimated_rows),
            human_bytes(table.total_bytes.max(0) as u64),
        ]);
    }
    right(&mut t, &[1, 2]);
    t.to_string()
}

/// The plan as people read it: one row per table, then notes and (verbose) the SQL.
pub fn plan(plan: &Plan, verbose: bool) -> String {
    let mut out = format!(
        "Plan: {} table{} from {} to {}, {} stream{} at once\n",
        plan.tables.len(),
        if plan.tables.len() == 1 { "" } else { "s" },
        plan.source.connection,
        plan.target.connection,
        plan.jobs,
        if plan.jobs == 1 { "" } else { "s" },
    );
    let mut t = new_table(&["Table", "Target gets", "COPY", "Parts", "Est. rows", "Size"]);
    for table in &plan.tables {
        t.add_row(vec![
            table.target.to_string(),
            action(table.action, plan.content).to_string(),
            format(table.format).to_string(),
            table.loads().to_string(),
            rows_estimate(table.estimated_rows),
            human_bytes(table.estimated_bytes.max(0) as u64),
        ]);
    }
    right(&mut t, &[3, 4, 5]);
    out.push_str(&t.to_string());
    out.push('\n');
    if !plan.types.is_empty() {
        let names: Vec<&str> = plan.types.iter().map(|t| t.name.as_str()).collect();
        out.push_str(&format!(
            "Types to create on the target: {}\n",
            names.join(", ")
        ));
    }
    let counts = counts_line(&plan.schema.counts);
    if !counts.is_empty() {
        out.push_str(&format!("Also created: {counts}\n"));
    }
    for w in &plan.warnings {
        out.push_str(&format!("warning: {w}\n"));
    }
    for table in &plan.tables {
        for note in &table.notes {
            out.push_str(&format!("note: {}: {note}\n", table.target));
        }
    }
    // Objects already on the target are counted, not listed: a re-run would list them all.
    let mut existing: BTreeMap<ObjectKind, usize> = BTreeMap::new();
    for s in plan.schema.skipped.iter().filter(|s| !s.blocking) {
        if s.why == pgbarge::plan::SkipReason::Exists && !verbose {
            // What is skipped is known by its label only: `view public.v`.
            let kind = [
                ObjectKind::MaterializedView,
                ObjectKind::View,
                ObjectKind::Sequence,
                ObjectKind::Function,
                ObjectKind::Procedure,
                ObjectKind::Aggregate,
            ]
            .into_iter()
            .find(|k| s.what.starts_with(k.singular()))
            .unwrap_or(ObjectKind::Other);
            *existing.entry(kind).or_default() += 1;
        } else {
            out.push_str(&format!("note: not created: {}: {}\n", s.what, s.why));
        }
    }
    if !existing.is_empty() {
        out.push_str(&format!(
            "note: already on the target, left as they are: {} (--verbose lists them)\n",
            counts_line(&existing)
        ));
    }
    if verbose {
        out.push_str(&verbose_sql(plan));
    }
    out
}

/// The SQL the plan runs on the target, unit by unit (one transaction each), as a
/// script psql could run: the COPYs, whose rows stream from the source, and the values
/// read from the source when a unit runs are shown as comments.
fn verbose_sql(plan: &Plan) -> String {
    units_sql(&plan.work(), &Default::default())
}

/// `work`'s units as SQL, leaving out those in `done`.
fn units_sql(work: &Work, done: &BTreeMap<UnitId, pgbarge::ledger::Moved>) -> String {
    // psql runs no meta-command (`\!` a shell command, `\o` a file) between \restrict
    // and \unrestrict with the same key (psql 15.14, 16.10, 17.6 and later): nothing in
    // the script can leave SQL, whatever its names hold. Names in comments are escaped
    // as well (a newline in one would end the comment), for an older psql.
    let key = restrict_key();
    let mut out = format!("\nSQL run on the target:\n\\restrict {key}\n");
    for unit in work.units.iter().filter(|u| !done.contains_key(&u.id)) {
        out.push_str(&format!(
            "-- {} [{}]\nBEGIN;\n",
            printable(&unit.title),
            printable(&unit.id.to_string())
        ));
        for op in &unit.ops {
            match op {
                Op::Copy { into, .. } => out.push_str(&format!(
                    "-- {};  (rows streamed from the source)\n",
                    printable(into)
                )),
                // (Table names show with their control characters escaped.)
                Op::SyncSequences { table, sequences } => out.push_str(&format!(
                    "-- setval() of {}'s sequence{} to the source's value{} (never below the \
                     copied ids)\n",
                    table,
                    if sequences.len() == 1 { "" } else { "s" },
                    if sequences.len() == 1 { "" } else { "s" },
                )),
                Op::SequenceValues { sequences } => out.push_str(&format!(
                    "-- setval() of {} to the source's values{}\n",
                    sequences
                        .iter()
                        .map(|s| s.name.to_string())
                        .collect::<Vec<_>>()
                        .join(", "),
                    if sequences.iter().any(|s| s.raise_only) {
                        " (sequences already on the target only move forward)"
                    } else {
                        ""
                    }
                )),
                other => {
                    if let Some(sql) = other.statement() {
                        out.push_str(&format!("{sql};\n"));
                    }
                }
            }
        }
        out.push_str("-- and the unit's record in the pgbarge ledger\nCOMMIT;\n");
    }
    out.push_str(&format!("\\unrestrict {key}\n"));
    out
}

/// A key for psql's `\restrict` that no script could guess: 32 random letters and digits.
fn restrict_key() -> String {
    use std::hash::{BuildHasher, Hasher};
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let state = std::collections::hash_map::RandomState::new();
    (0..32)
        .map(|i| {
            let mut h = state.build_hasher();
            h.write_usize(i);
            char::from(ALPHABET[(h.finish() % ALPHABET.len() as u64) as usize])
        })
        .collect()
}

/// What `copy --resume` will do: the units not committed yet.
pub fn resume_plan(run: &pgbarge::ledger::SavedRun, verbose: bool) -> String {
    let left = run.work.units.len() - run.done.len();
    let mut out = format!(
        "Resume: run {} from {} to {}: {} unit{} left of {}\n",
        run.id,
        run.work.source.connection,
        run.work.target.connection,
        left,
        if left == 1 { "" } else { "s" },
        run.work.units.len()
    );
    for unit in run
        .work
        .units
        .iter()
        .filter(|u| !run.done.contains_key(&u.id))
    {
        out.push_str(&format!("  {}\n", unit.title));
    }
    if verbose {
        out.push_str(&units_sql(&run.work, &run.done));
    }
    out
}

/// The units that failed, one paragraph each, and what to do.
pub fn failures(report: &RunReport) -> String {
    let n = report.failures.len();
    let mut out = format!(
        "{n} unit{} of the run failed; every other unit committed:",
        if n == 1 { "" } else { "s" }
    );
    for f in &report.failures {
        out.push_str(&format!("\n  - {}: {}", f.title, f.message));
        out.push_str(&older_target_hint(
            f.sql_state.as_ref(),
            report.source.server_version,
            report.target.server_version,
        ));
        if !f.blocked.is_empty() {
            out.push_str(&format!(
                "\n    not run, as it waited on this: {}",
                f.blocked.join("; ")
            ));
        }
    }
    out.push_str(
        "\nThe tables of failed units are exactly as they were on the target. Fix the cause, \
         then run the same command with --resume: only what failed runs again.",
    );
    out
}

/// A hint when an older target refused a statement's syntax: likely syntax the newer
/// source has and the target lacks.
pub fn older_target_hint(state: Option<&SqlState>, from: i32, to: i32) -> String {
    let (from, to) = (from / 10000, to / 10000);
    if from > to && state == Some(&SqlState::SYNTAX_ERROR) {
        format!(
            "\nThe source is PostgreSQL {from} and the target {to}: a definition uses syntax \
             the older server does not know. Change it on the source (or create that object on \
             the target by hand), then run again."
        )
    } else {
        String::new()
    }
}

/// `3 sequences, 7 views, …`, or empty.
fn counts_line(counts: &BTreeMap<ObjectKind, usize>) -> String {
    counts
        .iter()
        .map(|(kind, n)| match n {
            1 => format!("1 {}", kind.singular()),
            _ => format!("{n} {}", kind.plural()),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The final report: a row per table and the summary line.
pub fn report(report: &RunReport) -> String {
    let mut t = new_table(&["Table", "Done", "Rows", "Bytes", "Seconds", "Rows/s"]);
    for r in &report.tables {
        t.add_row(vec![
            r.table.to_string(),
            action(r.action, report.content).to_string(),
            thousands(r.rows),
            human_bytes(r.bytes),
            format!("{:.2}", r.seconds),
            thousands(r.rows_per_second().round() as u64),
        ]);
    }
    right(&mut t, &[2, 3, 4, 5]);
    let counts = counts_line(&report.schema);
    let also = if counts.is_empty() {
        String::new()
    } else {
        format!("Also created: {counts}\n")
    };
    let mut extra = String::new();
    for r in &report.tables {
        if let Some(s) = &r.sync {
            extra.push_str(&format!("{}: {}\n", r.table, sync_line(s, r.bytes)));
        }
    }
    for s in &report.skipped {
        extra.push_str(&format!("not created: {}: {}\n", s.what, s.why));
    }
    if let Some(r) = &report.resumed {
        extra.push_str(&format!(
            "Resumed: {} of {} units had committed before and were skipped ({}{}{}); \
             the rows above were moved now.\n",
            r.units_skipped,
            r.units_total,
            r.rows_skipped
                .map(|n| format!("{} rows, ", thousands(n)))
                .unwrap_or_default(),
            human_bytes(r.bytes_skipped),
            if r.tables_done_before.is_empty() {
                String::new()
            } else {
                format!(
                    "; tables finished before: {}",
                    r.tables_done_before
                        .iter()
                        .map(|t| t.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        ));
    }
    if report.retries > 0 {
        extra.push_str(&format!(
            "Retried {} time{} after transient failures; nothing was written twice.\n",
            report.retries,
            if report.retries == 1 { "" } else { "s" }
        ));
    }
    if report.snapshot_renewed {
        extra.push_str(
            "warning: the source connection holding the snapshot was lost mid-run: tables \
             loaded after that read a later snapshot of the source.\n",
        );
    }
    for w in &report.warnings {
        extra.push_str(&format!("warning: {w}\n"));
    }
    format!("{t}\n{also}{extra}{}\n", report.summary())
}

/// What a sync compared and repaired: `1,000,000 rows compared in 5,120 hash ranges;
/// 500 inserted, 1,000 updated, 500 deleted; moved 210 KiB of hashes and 480 KiB of rows`.
pub fn sync_line(s: &pgbarge::sync::SyncStats, row_bytes: u64) -> String {
    let changes = if s.reloaded {
        "so many rows differed that every source row was merged and the rows only on the \
         target deleted"
            .to_string()
    } else if s.since_rows {
        format!(
            "rows written since the last sync moved, {} missing inserted, {} deleted",
            thousands(s.inserted),
            thousands(s.deleted)
        )
    } else if s.differs() {
        format!(
            "{} inserted, {} updated, {} deleted",
            thousands(s.inserted),
            thousands(s.updated),
            thousands(s.deleted)
        )
    } else {
        "no difference".into()
    };
    format!(
        "{} compared in {}; {changes}; moved {} of hashes and {} of rows",
        counted(s.source_rows.max(s.target_rows), "row", "rows"),
        counted(s.ranges, "hash range", "hash ranges"),
        human_bytes(s.hash_bytes),
        human_bytes(row_bytes)
    )
}

/// `1 row`, `1,204 rows`.
fn counted(n: u64, one: &str, many: &str) -> String {
    format!("{} {}", thousands(n), if n == 1 { one } else { many })
}

/// What `--mode sync --dry-run` found: per table, what it would repair, with a few keys.
pub fn sync_previews(previews: &[pgbarge::sync::Preview]) -> String {
    let mut out = String::new();
    for p in previews {
        let s = &p.stats;
        out.push_str(&format!(
            "Sync {}: {} compared in {}; ",
            p.table,
            counted(s.source_rows.max(s.target_rows), "row", "rows"),
            counted(s.ranges, "hash range", "hash ranges")
        ));
        if s.reloaded {
            out.push_str(
                "so many rows differ that it would merge every source row and delete the \
                 rows only on the target",
            );
        } else if s.since_rows {
            out.push_str(&format!(
                "would move the rows written since the last sync, insert {} missing and \
                 delete {}",
                thousands(s.inserted),
                thousands(s.deleted)
            ));
        } else if s.differs() {
            out.push_str(&format!(
                "would insert {}, update {}, delete {}",
                thousands(s.inserted),
                thousands(s.updated),
                thousands(s.deleted)
            ));
        } else {
            out.push_str("no difference");
        }
        out.push('\n');
        if !p.upsert_sample.is_empty() {
            out.push_str(&format!(
                "  to insert or update, e.g. {}\n",
                p.upsert_sample.join(" ")
            ));
        }
        if !p.delete_sample.is_empty() {
            out.push_str(&format!(
                "  to delete, e.g. {}\n",
                p.delete_sample.join(" ")
            ));
        }
    }
    out
}

/// Verification verdicts: a row per table and a summary line.
pub fn verify(report: &pgbarge::verify::VerifyReport) -> String {
    use pgbarge::verify::Status;
    let mut t = new_table(&[
        "Table",
        "Source rows",
        "Target rows",
        "Result",
        "Differing keys (sample)",
    ]);
    for v in &report.tables {
        t.add_row(vec![
            v.table.to_string(),
            thousands(v.source_rows.max(0) as u64),
            v.target_rows
                .map(|r| thousands(r.max(0) as u64))
                .unwrap_or_else(|| "-".into()),
            match v.status {
                Status::Equal => "equal",
                Status::Different => "DIFFERENT",
                Status::MissingOnTarget => "MISSING on target",
                Status::NotVerified => "NOT VERIFIED",
            }
            .to_string(),
            v.differing_keys.join(" "),
        ]);
    }
    right(&mut t, &[1, 2]);
    let mut why = String::new();
    for v in &report.tables {
        match (&v.error, v.status) {
            (Some(e), Status::NotVerified) => {
                why.push_str(&format!("not verified: {}: {e}\n", v.table))
            }
            (Some(e), Status::Different) => why.push_str(&format!("different: {}: {e}\n", v.table)),
            _ => {}
        }
    }
    let equal = report
        .tables
        .iter()
        .filter(|v| v.status == Status::Equal)
        .count();
    format!(
        "{t}\n{why}verified {} table{}: {equal} equal, {} not, in {:.1} s\n",
        report.tables.len(),
        if report.tables.len() == 1 { "" } else { "s" },
        report.tables.len() - equal,
        report.seconds
    )
}

/// All preflight problems, one paragraph each; problems that share a fix (the same kind
/// and the same advice, as "say what to do with them" for 15 tables that hold rows) are
/// listed together with the advice given once.
pub fn problems(problems: &[Problem]) -> String {
    let mut out = format!(
        "preflight found {} problem{}; nothing was written:\n",
        problems.len(),
        if problems.len() == 1 { "" } else { "s" }
    );
    let mut groups: Vec<Vec<&Problem>> = Vec::new();
    for p in problems {
        match groups
            .iter_mut()
            .find(|g| g[0].kind == p.kind && g[0].hint == p.hint && !p.hint.is_empty())
        {
            Some(group) => group.push(p),
            None => groups.push(vec![p]),
        }
    }
    for group in groups {
        match group.as_slice() {
            [one] => out.push_str(&format!("\n  - {one}\n")),
            many => {
                out.push('\n');
                for p in many {
                    out.push_str(&format!("  - {}\n", p.message));
                }
                out.push_str(&format!("    For these {}: {}\n", many.len(), many[0].hint));
            }
        }
    }
    out
}

/// An error as the user sees it on stderr.
pub fn error(err: &Error) -> String {
    match err.kind() {
        Kind::Preflight => err.message().to_string(),
        _ => {
            let mut s = format!("error: {}", err.message());
            // A first connection refused or a name not found is more often a typo than
            // an outage: only failures in the middle of a run are called temporary.
            if err.is_transient() && err.kind() != Kind::Connect {
                s.push_str("\n(This looks temporary: running the same command again may succeed.)");
            }
            s
        }
    }
}
