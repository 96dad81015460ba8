//! Turning plans, reports and errors into text for people (tables) or scripts (JSON).

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{CellAlignment, Table};
use pgbarge::catalog::Table as CatalogTable;
use pgbarge::plan::{Action, Content, CopyFormat, Plan};
use pgbarge::preflight::Problem;
use pgbarge::report::{human_bytes, thousands, RunReport};
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
            table.parts.len().max(1).to_string(),
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
    for table in &plan.tables {
        for note in &table.notes {
            out.push_str(&format!("note: {}: {note}\n", table.target));
        }
    }
    // Objects already on the target are counted, not listed: a re-run would list them all.
    let mut existing: std::collections::BTreeMap<String, usize> = Default::default();
    for s in plan.schema.skipped.iter().filter(|s| !s.blocking) {
        if s.why == pgbarge::plan::EXISTS && !verbose {
            let kind = [
                "materialized view",
                "view",
                "sequence",
                "function",
                "procedure",
                "aggregate",
            ]
            .into_iter()
            .find(|k| s.what.starts_with(k))
            .unwrap_or("object");
            *existing.entry(format!("{kind}s")).or_default() += 1;
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

/// The SQL the plan runs on the target, transaction by transaction, as a script psql
/// could run (the COPYs, whose rows stream from the source, are shown as comments).
fn verbose_sql(plan: &Plan) -> String {
    let mut out = String::from("\nSQL run on the target:\n");
    let mut transaction = |title: &str, statements: &[String]| {
        if statements.is_empty() {
            return;
        }
        out.push_str(&format!("-- {title}\nBEGIN;\n"));
        for s in statements {
            if s.starts_with("COPY ") {
                out.push_str(&format!("-- {s};  (rows streamed from the source)\n"));
            } else {
                out.push_str(&format!("{s};\n"));
            }
        }
        out.push_str("COMMIT;\n");
    };
    transaction("first: schemas, types, sequences, functions", &plan.prepare);
    let schema_only = plan.content == Content::SchemaOnly;
    for (g, members) in plan.truncate_groups.iter().enumerate() {
        let mut sql = vec![format!(
            "TRUNCATE {}",
            members
                .iter()
                .map(|&i| plan.tables[i].truncate_target(&plan.tables[i].target))
                .collect::<Vec<_>>()
                .join(", ")
        )];
        for &i in members {
            let t = &plan.tables[i];
            sql.extend(t.setup_sql(&t.target));
            sql.push(t.copy_in_sql(&t.load_into(&t.target)));
            sql.extend(t.finish_sql(&t.target));
        }
        transaction(&format!("truncate group {}, parents first", g + 1), &sql);
    }
    for table in plan
        .tables
        .iter()
        .filter(|t| t.action != Action::Keep && t.truncate_group.is_none())
    {
        let name = table.staging.as_ref().unwrap_or(&table.target);
        let mut sql = table.setup_sql(name);
        if !schema_only {
            if table.leaves.is_empty() {
                sql.push(table.copy_in_sql(&table.load_into(name)));
            } else {
                sql.extend(table.leaves.iter().map(|leaf| table.copy_in_sql(leaf)));
            }
        }
        sql.extend(table.finish_sql(name));
        let title = match &table.staging {
            None => table.target.to_string(),
            Some(staging) => {
                sql.push(format!(
                    "ALTER TABLE {} RENAME TO {}",
                    staging.sql(),
                    pgbarge::quote::ident(&table.target.name)
                ));
                format!(
                    "{}: its {} parts load the staging table in their own transactions, \
                     then it is renamed",
                    table.target,
                    table.parts.len()
                )
            }
        };
        sql.extend(table.after_data.iter().cloned());
        transaction(&title, &sql);
    }
    let after: Vec<String> = plan.schema.after.iter().map(|s| s.sql.clone()).collect();
    transaction("after every table is loaded", &after);
    let values: Vec<String> = plan
        .schema
        .sequence_values
        .iter()
        .filter(|s| s.readable && !schema_only)
        .map(|s| s.name.to_string())
        .collect();
    if !values.is_empty() {
        out.push_str(&format!(
            "-- and, in that last transaction, setval() of {} to the source's values{}\n",
            values.join(", "),
            if plan.schema.sequence_values.iter().any(|s| s.raise_only) {
                " (sequences already on the target only move forward)"
            } else {
                ""
            }
        ));
    }
    out
}

/// `3 sequences, 7 views, …`, or empty.
fn counts_line(counts: &std::collections::BTreeMap<String, usize>) -> String {
    counts
        .iter()
        .map(
            |(what, n)| match (n, what.strip_suffix("ies"), what.strip_suffix('s')) {
                (1, Some(stem), _) => format!("1 {stem}y"),
                (1, None, Some(one)) => format!("1 {one}"),
                _ => format!("{n} {what}"),
            },
        )
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
    format!("{t}\n{also}{}\n", report.summary())
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
    for v in report
        .tables
        .iter()
        .filter(|v| v.status == Status::NotVerified)
    {
        if let Some(e) = &v.error {
            why.push_str(&format!("not verified: {}: {e}\n", v.table));
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

/// All preflight problems, one paragraph each.
pub fn problems(problems: &[Problem]) -> String {
    let mut out = format!(
        "preflight found {} problem{}; nothing was written:\n",
        problems.len(),
        if problems.len() == 1 { "" } else { "s" }
    );
    for p in problems {
        out.push_str(&format!("\n  - {p}\n"));
    }
    out
}

/// An error as the user sees it on stderr.
pub fn error(err: &Error) -> String {
    match err.kind() {
        Kind::Preflight => err.message().to_string(),
        _ => {
            let mut s = format!("error: {}", err.message());
            if err.is_transient() {
                s.push_str("\n(This looks temporary: running the same command again may succeed.)");
            }
            s
        }
    }
}

/// An error as one JSON document, for `--json`.
pub fn error_json(err: &Error, problems: &[Problem]) -> serde_json::Value {
    serde_json::json!({
        "ok": false,
        "error": {
            "kind": err.kind(),
            "side": err.side(),
            "transient": err.is_transient(),
            "message": err.message(),
            "problems": problems,
        }
    })
}
