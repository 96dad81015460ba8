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

#[cfg(test)]
mod tests {
    //! The text as people read it, whole: each test fails if the rendering changes.
    //! Inputs are built by hand (the library's plan fixtures are private to it).

    use super::*;
    use pgbarge::catalog::{TableKind, TableName};
    use pgbarge::ledger::{Moved, SavedRun};
    use pgbarge::plan::units::{Unit, UnitKind, WorkTable, WORK_FORMAT};
    use pgbarge::plan::{
        Endpoint, SchemaPlan, SequencePlan, SequenceValue, SkipReason, Skipped, SourceRead, Step,
        TablePlan,
    };
    use pgbarge::preflight::ProblemKind;
    use pgbarge::report::{Resumed, TableReport, UnitFailure};
    use pgbarge::sync::{Preview, SyncStats};
    use pgbarge::verify::{Status, TableVerdict, VerifyReport};

    fn name(schema: &str, table: &str) -> TableName {
        TableName::new(schema, table)
    }

    /// `user@host:5432/shop` at PostgreSQL `version` (as `server_version_num`).
    fn endpoint(user: &str, host: &str, version: i32) -> Endpoint {
        Endpoint {
            connection: format!("{user}@{host}:5432/shop"),
            database: "shop".into(),
            host: host.into(),
            server_version: version,
        }
    }

    /// A plan for `table` with `action`: text COPY, one stream, nothing else decided.
    fn table_plan(table: TableName, action: Action) -> TablePlan {
        TablePlan::new(table, action, TableKind::Regular)
    }

    /// A plan of `tables` from a PostgreSQL 16 source to a 17 target, two streams.
    fn plan_of(tables: Vec<TablePlan>) -> Plan {
        Plan {
            source: endpoint("me", "localhost", 160004),
            target: endpoint("app", "db.example.com", 170002),
            content: Content::SchemaAndData,
            jobs: 2,
            prepare: Vec::new(),
            types: Vec::new(),
            schema: SchemaPlan::default(),
            owner: None,
            whole_schemas: Vec::new(),
            exclude_objects: Vec::new(),
            since: None,
            without_fks: false,
            grants: false,
            linked_groups: Vec::new(),
            linked_group_keys: Vec::new(),
            replace_groups: Vec::new(),
            warnings: Vec::new(),
            tables,
        }
    }

    fn skipped(what: &str, why: SkipReason, blocking: bool) -> Skipped {
        Skipped {
            what: what.into(),
            why,
            blocking,
            needed_by: Vec::new(),
        }
    }

    fn table_report(table: TableName, action: Action, rows: u64, bytes: u64) -> TableReport {
        TableReport {
            table,
            action,
            format: CopyFormat::Binary,
            rows,
            bytes,
            seconds: 2.0,
            sync: None,
        }
    }

    /// A run to the 17 target that took 4.25 s, nothing failed or retried.
    fn run_report(tables: Vec<TableReport>) -> RunReport {
        RunReport {
            content: Content::SchemaAndData,
            source: endpoint("me", "localhost", 160004),
            target: endpoint("app", "db.example.com", 170002),
            tables,
            schema: BTreeMap::new(),
            skipped: Vec::new(),
            seconds: 4.2,
            failures: Vec::new(),
            retries: 0,
            resumed: None,
            snapshot_renewed: false,
            snapshot: None,
            warnings: Vec::new(),
        }
    }

    fn failure(table: &str, message: &str, state: Option<SqlState>) -> UnitFailure {
        UnitFailure {
            unit: UnitId::Table(format!("public.{table}")),
            kind: UnitKind::Table,
            title: format!("public.{table}"),
            tables: vec![name("public", table)],
            message: message.into(),
            side: Some(pgbarge::error::Side::Target),
            sql_state: state,
            transient: false,
            blocked: Vec::new(),
        }
    }

    fn stats(rows: u64) -> SyncStats {
        SyncStats {
            source_rows: rows,
            target_rows: rows,
            ranges: 40,
            inserted: 0,
            updated: 0,
            deleted: 0,
            since_rows: false,
            reloaded: false,
            hash_bytes: 2_500,
        }
    }

    fn unit(id: &str, kind: UnitKind, ops: Vec<Op>) -> Unit {
        Unit {
            id: id.parse().expect("a unit id"),
            kind,
            title: id.into(),
            waits_for: Vec::new(),
            completes: Vec::new(),
            ops,
            estimated_bytes: 0,
        }
    }

    fn sql(sql: &str) -> Op {
        Op::Sql { sql: sql.into() }
    }

    fn verdict(table: &str, status: Status, source: i64, target: Option<i64>) -> TableVerdict {
        TableVerdict {
            table: name("public", table),
            status,
            source_rows: source,
            target_rows: target,
            differing_keys: Vec::new(),
            error: None,
            seconds: 0.1,
        }
    }

    fn problem(kind: ProblemKind, message: &str, hint: &str) -> Problem {
        Problem {
            kind,
            table: None,
            message: message.into(),
            hint: hint.into(),
        }
    }

    /// `text` with psql's random `\restrict` key replaced by `KEY`.
    fn without_restrict_key(text: &str) -> String {
        let key = text
            .lines()
            .find_map(|l| l.strip_prefix("\\restrict "))
            .expect("a \\restrict line");
        assert_eq!(key.len(), 32);
        text.replace(key, "KEY")
    }

    /// Compares whole texts, printing both as they read when they differ. `expected`
    /// may start with a newline, so that its text starts at the left margin.
    #[track_caller]
    fn assert_text(rendered: &str, expected: &str) {
        let expected = expected.strip_prefix('\n').unwrap_or(expected);
        assert!(
            rendered == expected,
            "rendered:\n{rendered}\n---- expected:\n{expected}\n----"
        );
    }

    #[test]
    fn plan_lists_created_and_loaded_tables_and_object_counts() {
        let mut orders = table_plan(name("public", "orders"), Action::Create);
        orders.format = CopyFormat::Binary;
        orders.estimated_rows = Some(120_000);
        orders.estimated_bytes = 8_388_608;
        orders.parts = (0..3)
            .map(|index| pgbarge::plan::Part {
                index,
                first_block: index as i64 * 100,
                end_block: Some(index as i64 * 100 + 100),
            })
            .collect();
        let mut items = table_plan(name("Sales", "order items"), Action::Append);
        items.estimated_rows = Some(-1);
        let mut p = plan_of(vec![orders, items]);
        p.schema.counts = BTreeMap::from([
            (ObjectKind::View, 3),
            (ObjectKind::Policy, 1),
            (ObjectKind::ForeignKey, 2),
            (ObjectKind::TextSearchDictionary, 1),
            (ObjectKind::Type, 0),
        ]);
        assert_text(
            &plan(&p, false),
            r#"
Plan: 2 tables from me@localhost:5432/shop to app@db.example.com:5432/shop, 2 streams at once
┌───────────────────────┬───────────────┬────────┬───────┬───────────┬────────┐
│ Table                 ┆ Target gets   ┆ COPY   ┆ Parts ┆ Est. rows ┆   Size │
╞═══════════════════════╪═══════════════╪════════╪═══════╪═══════════╪════════╡
│ public.orders         ┆ create + load ┆ binary ┆     3 ┆  ~120,000 ┆ 8.4 MB │
│ "Sales"."order items" ┆ append        ┆ text   ┆     1 ┆         ? ┆    0 B │
└───────────────────────┴───────────────┴────────┴───────┴───────────┴────────┘
Also created: 2 foreign keys, 1 policy, 1 text search dictionary, 0 types, 3 views
"#,
        );
    }

    #[test]
    fn plan_notes_warnings_and_objects_not_created() {
        let mut t = table_plan(name("public", "t"), Action::Create);
        t.notes = vec!["column c: money is copied as text".into()];
        let mut p = plan_of(vec![t]);
        p.jobs = 1;
        p.content = Content::SchemaOnly;
        p.warnings = vec!["the source is a standby".into()];
        p.schema.skipped = vec![
            skipped("view public.v", SkipReason::Exists, false),
            skipped("materialized view public.mv", SkipReason::Exists, false),
            skipped("procedure public.p()", SkipReason::Exists, false),
            skipped("function public.f()", SkipReason::Exists, false),
            skipped("function public.g()", SkipReason::Exists, false),
            skipped("schema extra", SkipReason::Exists, false),
            skipped(
                "function public.h()",
                "it is written in C".to_string().into(),
                false,
            ),
            skipped("function public.k()", "needed".to_string().into(), true),
        ];
        assert_text(
            &plan(&p, false),
            r#"
Plan: 1 table from me@localhost:5432/shop to app@db.example.com:5432/shop, 1 stream at once
┌──────────┬──────────────────┬──────┬───────┬───────────┬──────┐
│ Table    ┆ Target gets      ┆ COPY ┆ Parts ┆ Est. rows ┆ Size │
╞══════════╪══════════════════╪══════╪═══════╪═══════════╪══════╡
│ public.t ┆ create (no rows) ┆ text ┆     1 ┆         ? ┆  0 B │
└──────────┴──────────────────┴──────┴───────┴───────────┴──────┘
warning: the source is a standby
note: public.t: column c: money is copied as text
note: not created: function public.h(): it is written in C
note: already on the target, left as they are: 2 functions, 1 materialized view, 1 object, 1 procedure, 1 view (--verbose lists them)
"#,
        );
        // --verbose lists what exists one by one (the SQL script it adds is covered by
        // the resume plan's test).
        let verbose = plan(&p, true);
        let notes: Vec<&str> = verbose.lines().filter(|l| l.starts_with("note:")).collect();
        let exists = "it exists on the target; left as it is";
        assert_eq!(
            notes,
            [
                "note: public.t: column c: money is copied as text".to_string(),
                format!("note: not created: view public.v: {exists}"),
                format!("note: not created: materialized view public.mv: {exists}"),
                format!("note: not created: procedure public.p(): {exists}"),
                format!("note: not created: function public.f(): {exists}"),
                format!("note: not created: function public.g(): {exists}"),
                format!("note: not created: schema extra: {exists}"),
                "note: not created: function public.h(): it is written in C".to_string(),
            ]
        );
    }

    #[test]
    fn report_of_a_run_with_objects_syncs_and_a_resume() {
        let mut synced = table_report(name("public", "accounts"), Action::Sync, 1_500, 48_000);
        synced.sync = Some(SyncStats {
            inserted: 10,
            updated: 1_200,
            deleted: 0,
            ..stats(1_000_000)
        });
        let mut r = run_report(vec![
            table_report(
                name("public", "orders"),
                Action::Create,
                1_234_567,
                98_765_432,
            ),
            synced,
        ]);
        r.schema = BTreeMap::from([(ObjectKind::Sequence, 2), (ObjectKind::Comment, 1)]);
        r.skipped = vec![skipped(
            "function public.h()",
            "it is written in C".to_string().into(),
            false,
        )];
        r.resumed = Some(Resumed {
            units_skipped: 3,
            units_total: 9,
            rows_skipped: Some(50_000),
            bytes_skipped: 4_000_000,
            tables_done_before: vec![name("public", "customers")],
        });
        r.retries = 1;
        r.snapshot_renewed = true;
        r.warnings = vec!["public.orders may mix two points in time".into()];
        assert_text(
            &report(&r),
            r#"
┌─────────────────┬────────────────────────┬───────────┬─────────┬─────────┬─────────┐
│ Table           ┆ Done                   ┆      Rows ┆   Bytes ┆ Seconds ┆  Rows/s │
╞═════════════════╪════════════════════════╪═══════════╪═════════╪═════════╪═════════╡
│ public.orders   ┆ create + load          ┆ 1,234,567 ┆ 98.8 MB ┆    2.00 ┆ 617,284 │
│ public.accounts ┆ sync: only differences ┆     1,500 ┆ 48.0 kB ┆    2.00 ┆     750 │
└─────────────────┴────────────────────────┴───────────┴─────────┴─────────┴─────────┘
Also created: 1 comment, 2 sequences
public.accounts: 1,000,000 rows compared in 40 hash ranges; 10 inserted, 1,200 updated, 0 deleted; moved 2.5 kB of hashes and 48.0 kB of rows
not created: function public.h(): it is written in C
Resumed: 3 of 9 units had committed before and were skipped (50,000 rows, 4.0 MB; tables finished before: public.customers); the rows above were moved now.
Retried 1 time after transient failures; nothing was written twice.
warning: the source connection holding the snapshot was lost mid-run: tables loaded after that read a later snapshot of the source.
warning: public.orders may mix two points in time
2 tables, 1,236,067 rows moved to db "shop" on "db.example.com" in 4.2 s
"#,
        );
    }

    #[test]
    fn report_of_a_schema_only_run() {
        let mut r = run_report(vec![table_report(
            name("public", "t"),
            Action::Create,
            0,
            0,
        )]);
        r.content = Content::SchemaOnly;
        assert_text(
            &report(&r),
            r#"
┌──────────┬──────────────────┬──────┬───────┬─────────┬────────┐
│ Table    ┆ Done             ┆ Rows ┆ Bytes ┆ Seconds ┆ Rows/s │
╞══════════╪══════════════════╪══════╪═══════╪═════════╪════════╡
│ public.t ┆ create (no rows) ┆    0 ┆   0 B ┆    2.00 ┆      0 │
└──────────┴──────────────────┴──────┴───────┴─────────┴────────┘
1 table defined (no rows moved) on db "shop" on "db.example.com" in 4.2 s
"#,
        );
    }

    #[test]
    fn failures_list_blocked_units_and_what_to_do() {
        let mut items = failure(
            "items",
            "duplicate key value",
            Some(SqlState::UNIQUE_VIOLATION),
        );
        items.blocked = vec!["post-data".into(), "public.lines".into()];
        let mut r = run_report(Vec::new());
        r.failures = vec![items, failure("notes", "connection reset", None)];
        assert_text(
            &failures(&r),
            r#"
2 units of the run failed; every other unit committed:
  - public.items: duplicate key value
    not run, as it waited on this: post-data; public.lines
  - public.notes: connection reset
The tables of failed units are exactly as they were on the target. Fix the cause, then run the same command with --resume: only what failed runs again."#,
        );
    }

    #[test]
    fn a_syntax_error_on_an_older_target_gets_a_hint() {
        let mut r = run_report(Vec::new());
        r.source.server_version = 170002;
        r.target.server_version = 150004;
        r.failures = vec![failure(
            "t",
            "syntax error at or near \"NULLS\"",
            Some(SqlState::SYNTAX_ERROR),
        )];
        assert_text(
            &failures(&r),
            r#"
1 unit of the run failed; every other unit committed:
  - public.t: syntax error at or near "NULLS"
The source is PostgreSQL 17 and the target 15: a definition uses syntax the older server does not know. Change it on the source (or create that object on the target by hand), then run again.
The tables of failed units are exactly as they were on the target. Fix the cause, then run the same command with --resume: only what failed runs again."#,
        );
        // Not for another error, nor when the target is as new as the source.
        let other = Some(&SqlState::UNDEFINED_FUNCTION);
        assert_eq!(older_target_hint(other, 170002, 150004), "");
        let syntax = Some(&SqlState::SYNTAX_ERROR);
        assert_eq!(older_target_hint(syntax, 170002, 170000), "");
        assert_eq!(older_target_hint(syntax, 150004, 170002), "");
    }

    #[test]
    fn verify_shows_equal_and_differing_tables() {
        let mut different = verdict("orders", Status::Different, 1_000, Some(998));
        different.differing_keys = vec!["(7)".into(), "(42)".into()];
        let mut refused = verdict("secrets", Status::NotVerified, 5, Some(5));
        refused.error = Some("permission denied for table secrets".into());
        let mut r = VerifyReport {
            tables: vec![
                verdict("customers", Status::Equal, 12_345, Some(12_345)),
                different,
                verdict("gone", Status::MissingOnTarget, 3, None),
                refused,
            ],
            seconds: 1.3,
        };
        assert_text(
            &verify(&r),
            r#"
┌──────────────────┬─────────────┬─────────────┬───────────────────┬─────────────────────────┐
│ Table            ┆ Source rows ┆ Target rows ┆ Result            ┆ Differing keys (sample) │
╞══════════════════╪═════════════╪═════════════╪═══════════════════╪═════════════════════════╡
│ public.customers ┆      12,345 ┆      12,345 ┆ equal             ┆                         │
│ public.orders    ┆       1,000 ┆         998 ┆ DIFFERENT         ┆ (7) (42)                │
│ public.gone      ┆           3 ┆           - ┆ MISSING on target ┆                         │
│ public.secrets   ┆           5 ┆           5 ┆ NOT VERIFIED      ┆                         │
└──────────────────┴─────────────┴─────────────┴───────────────────┴─────────────────────────┘
not verified: public.secrets: permission denied for table secrets
verified 4 tables: 1 equal, 3 not, in 1.3 s
"#,
        );
        r.tables.truncate(1);
        assert_text(
            &verify(&r),
            r#"
┌──────────────────┬─────────────┬─────────────┬────────┬─────────────────────────┐
│ Table            ┆ Source rows ┆ Target rows ┆ Result ┆ Differing keys (sample) │
╞══════════════════╪═════════════╪═════════════╪════════╪═════════════════════════╡
│ public.customers ┆      12,345 ┆      12,345 ┆ equal  ┆                         │
└──────────────────┴─────────────┴─────────────┴────────┴─────────────────────────┘
verified 1 table: 1 equal, 0 not, in 1.3 s
"#,
        );
    }

    #[test]
    fn problems_sharing_a_fix_are_listed_together() {
        let holds = "say what to do with them: --mode append, truncate or replace.";
        let list = [
            problem(ProblemKind::TargetHoldsRows, "public.a holds rows.", holds),
            problem(
                ProblemKind::MissingTable,
                "public.x does not exist.",
                "Check the name.",
            ),
            problem(ProblemKind::TargetHoldsRows, "public.b holds rows.", holds),
            // Without advice, nothing is shared: each is listed on its own.
            problem(ProblemKind::LargeObjects, "public.c has oid columns.", ""),
            problem(ProblemKind::LargeObjects, "public.d has oid columns.", ""),
        ];
        assert_text(
            &problems(&list),
            r#"
preflight found 5 problems; nothing was written:

  - public.a holds rows.
  - public.b holds rows.
    For these 2: say what to do with them: --mode append, truncate or replace.

  - public.x does not exist. Check the name.

  - public.c has oid columns.

  - public.d has oid columns.
"#,
        );
        assert_text(
            &problems(&list[1..2]),
            r#"
preflight found 1 problem; nothing was written:

  - public.x does not exist. Check the name.
"#,
        );
    }

    #[test]
    fn resume_plan_lists_the_units_left_and_their_sql() {
        let table = name("public", "orders");
        let read = SourceRead {
            table: table.clone(),
            columns: vec!["id".into()],
            tree: false,
            blocks: None,
            format: CopyFormat::Binary,
        };
        let sequence = SequencePlan {
            column: "id".into(),
            source: Some(name("public", "orders_id_seq")),
            ascending: true,
            created: true,
            numeric: true,
        };
        let value = |n: &str, raise_only| SequenceValue {
            name: name("public", n),
            readable: true,
            raise_only,
            ascending: true,
        };
        let units = vec![
            unit("prepare", UnitKind::Prepare, vec![sql("CREATE SCHEMA app")]),
            unit(
                "table public.orders",
                UnitKind::Table,
                vec![
                    sql("TRUNCATE public.orders"),
                    Op::Copy {
                        table: 0,
                        read,
                        into: "COPY public.orders (id) FROM STDIN (FORMAT binary)".into(),
                    },
                    Op::SyncSequences {
                        table: table.clone(),
                        sequences: vec![sequence],
                    },
                ],
            ),
            unit(
                "post-data",
                UnitKind::PostData,
                vec![
                    Op::Object {
                        step: Step {
                            what: "view public.v".into(),
                            sql: "CREATE VIEW public.v AS SELECT 1".into(),
                            needs: Vec::new(),
                        },
                    },
                    Op::SequenceValues {
                        sequences: vec![value("s1", false), value("s2", true)],
                    },
                ],
            ),
        ];
        let run = SavedRun {
            id: 7,
            started_at: "2024-05-01 10:00:00+00".into(),
            source: "me@localhost:5432/shop".into(),
            snapshot_at: None,
            snapshot: None,
            work: Work {
                format: WORK_FORMAT,
                source: endpoint("me", "localhost", 160004),
                target: endpoint("app", "db.example.com", 170002),
                content: Content::SchemaAndData,
                jobs: 2,
                counts: BTreeMap::new(),
                skipped: Vec::new(),
                tables: vec![WorkTable {
                    source: table.clone(),
                    target: table,
                    action: Action::Truncate,
                    format: CopyFormat::Binary,
                    estimated_bytes: 0,
                    staging: None,
                    leaf_staging: Vec::new(),
                }],
                units,
            },
            source_changes: BTreeMap::new(),
            done: BTreeMap::from([(UnitId::Prepare, Moved::default())]),
            salvaged: Default::default(),
        };
        assert_text(
            &resume_plan(&run, false),
            r#"
Resume: run 7 from me@localhost:5432/shop to app@db.example.com:5432/shop: 2 units left of 3
  table public.orders
  post-data
"#,
        );
        assert_text(
            &without_restrict_key(&resume_plan(&run, true)),
            r#"
Resume: run 7 from me@localhost:5432/shop to app@db.example.com:5432/shop: 2 units left of 3
  table public.orders
  post-data

SQL run on the target:
\restrict KEY
-- table public.orders [table public.orders]
BEGIN;
TRUNCATE public.orders;
-- COPY public.orders (id) FROM STDIN (FORMAT binary);  (rows streamed from the source)
-- setval() of public.orders's sequence to the source's value (never below the copied ids)
-- and the unit's record in the pgbarge ledger
COMMIT;
-- post-data [post-data]
BEGIN;
CREATE VIEW public.v AS SELECT 1;
-- setval() of public.s1, public.s2 to the source's values (sequences already on the target only move forward)
-- and the unit's record in the pgbarge ledger
COMMIT;
\unrestrict KEY
"#,
        );
    }

    #[test]
    fn sync_previews_say_what_would_change() {
        let sample = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
        let previews = [
            Preview {
                table: name("public", "orders"),
                stats: SyncStats {
                    inserted: 12,
                    updated: 1_030,
                    deleted: 2,
                    target_rows: 119_990,
                    ..stats(120_000)
                },
                upsert_sample: sample(&["(1001)", "(1002)"]),
                delete_sample: sample(&["(7)"]),
            },
            Preview {
                table: name("public", "same"),
                stats: SyncStats {
                    ranges: 1,
                    ..stats(1)
                },
                upsert_sample: Vec::new(),
                delete_sample: Vec::new(),
            },
            Preview {
                table: name("public", "events"),
                stats: SyncStats {
                    since_rows: true,
                    inserted: 3,
                    deleted: 1,
                    ..stats(5_000)
                },
                upsert_sample: Vec::new(),
                delete_sample: Vec::new(),
            },
            Preview {
                table: name("public", "log"),
                stats: SyncStats {
                    reloaded: true,
                    ..stats(70)
                },
                upsert_sample: Vec::new(),
                delete_sample: Vec::new(),
            },
        ];
        assert_text(
            &sync_previews(&previews),
            r#"
Sync public.orders: 120,000 rows compared in 40 hash ranges; would insert 12, update 1,030, delete 2
  to insert or update, e.g. (1001) (1002)
  to delete, e.g. (7)
Sync public.same: 1 row compared in 1 hash range; no difference
Sync public.events: 5,000 rows compared in 40 hash ranges; would move the rows written since the last sync, insert 3 missing and delete 1
Sync public.log: 70 rows compared in 40 hash ranges; so many rows differ that it would merge every source row and delete the rows only on the target
"#,
        );
    }
}
