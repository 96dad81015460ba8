//! The documents `--json` prints: one shape per command, written down in the README
//! ("JSON output") and checked against it by `tests/json.rs`.
//!
//! They are built here from the library's values rather than by serialising those whole,
//! so that internal fields (oids, pages, privileges, SQL) stay out and a change inside
//! the library does not silently change what scripts read. Every document is an object
//! with `ok` and `command`; tables are `schema` and `name` fields; sizes are bytes;
//! keys are snake_case; output is pretty-printed and ends with a newline, for success
//! and error alike.

use std::collections::BTreeMap;

use pgbarge::catalog::{Table, TableKind, TableName};
use pgbarge::ledger::SavedRun;
use pgbarge::plan::{Endpoint, Plan};
use pgbarge::preflight::Problem;
use pgbarge::report::RunReport;
use pgbarge::verify::VerifyReport;
use pgbarge::Error;
use serde::Serialize;
use serde_json::{json, Value};

/// Prints `doc` to stdout, pretty, with a final newline.
pub fn print(doc: &Value) {
    outln!(
        "{}",
        serde_json::to_string_pretty(doc).unwrap_or_else(|_| "{}".into())
    );
}

/// A server as documents show it (the connection without any password).
#[derive(Serialize)]
struct Server<'a> {
    connection: &'a str,
    database: &'a str,
    host: &'a str,
    server_version: i32,
}

fn server(e: &Endpoint) -> Server<'_> {
    Server {
        connection: &e.connection,
        database: &e.database,
        host: &e.host,
        server_version: e.server_version,
    }
}

fn table_ref(t: &TableName) -> Value {
    json!({ "schema": t.schema, "name": t.name })
}

/// Merges `schema` and `name` of `t` into `fields`.
fn with_table(t: &TableName, mut fields: Value) -> Value {
    if let Value::Object(map) = &mut fields {
        map.insert("schema".into(), t.schema.clone().into());
        map.insert("name".into(), t.name.clone().into());
    }
    fields
}

/// `pgbarge tables --json`.
pub fn tables(source: &Endpoint, list: &[Table]) -> Value {
    json!({
        "ok": true,
        "command": "tables",
        "source": server(source),
        "tables": list.iter().map(|t| with_table(&t.name, json!({
            "kind": match t.kind {
                TableKind::Regular => "table",
                TableKind::Partitioned => "partitioned",
            },
            "partition": t.is_partition,
            "estimated_rows": t.estimated_rows,
            "size_bytes": t.total_bytes,
        }))).collect::<Vec<_>>(),
    })
}

/// `pgbarge copy --dry-run --json`: what would happen, nothing written.
pub fn plan(plan: &Plan) -> Value {
    let rows: i64 = plan
        .tables
        .iter()
        .filter_map(|t| t.estimated_rows)
        .map(|r| r.max(0))
        .sum();
    let bytes: i64 = plan.tables.iter().map(|t| t.data_bytes.max(0)).sum();
    let mut notes: Vec<String> = plan.warnings.clone();
    notes.extend(
        plan.tables
            .iter()
            .flat_map(|t| t.notes.iter().map(move |n| format!("{}: {n}", t.target))),
    );

    json!({
        "ok": true,
        "command": "copy",
        "dry_run": true,
        "source": server(&plan.source),
        "target": server(&plan.target),
        "jobs": plan.jobs,
        "totals": {
            "tables": plan.tables.len(),
            "estimated_rows": rows,
            "estimated_bytes": bytes,
        },
        "tables": plan.tables.iter().map(|t| with_table(&t.target, json!({
            "action": t.action,
            "format": t.format,
            "parts": t.loads(),
            "estimated_rows": t.estimated_rows,
            "estimated_bytes": t.data_bytes,
            "notes": t.notes,
        }))).collect::<Vec<_>>(),
        "objects": plan.schema.counts,
        "skipped": skipped(plan.left_out()),
        "notes": notes,
    })
}

/// `pgbarge copy --dry-run --resume --json`: what a resume would run.
pub fn resume_plan(run: &SavedRun) -> Value {
    let left: Vec<Value> = run
        .work
        .units
        .iter()
        .filter(|u| !run.done.contains_key(&u.id))
        .map(|u| json!({ "unit": u.id, "title": u.title }))
        .collect();
    json!({
        "ok": true,
        "command": "copy",
        "dry_run": true,
        "resume": {
            "run": run.id,
            "started_at": run.started_at,
            "units_total": run.work.units.len(),
            "units_done": run.done.len(),
            "units_left": left,
        },
        "source": server(&run.work.source),
        "target": server(&run.work.target),
    })
}

fn verify_body(report: &VerifyReport) -> Value {
    let equal = report
        .tables
        .iter()
        .filter(|t| t.status == pgbarge::verify::Status::Equal)
        .count();
    json!({
        "ok": report.all_equal(),
        "totals": {
            "tables": report.tables.len(),
            "equal": equal,
            "different": report.tables.len() - equal,
            "seconds": report.seconds,
        },
        "tables": report.tables.iter().map(|t| with_table(&t.table, json!({
            "status": t.status,
            "source_rows": t.source_rows,
            "target_rows": t.target_rows,
            "differing_keys": t.differing_keys,
            "error": t.error,
            "seconds": t.seconds,
        }))).collect::<Vec<_>>(),
    })
}

/// `pgbarge verify --json`.
pub fn verify(source: &Endpoint, target: &Endpoint, report: &VerifyReport) -> Value {
    let mut doc = json!({
        "command": "verify",
        "source": server(source),
        "target": server(target),
    });
    merge(&mut doc, verify_body(report));
    doc
}

/// `pgbarge copy --json` (with `--verify`, the verdicts under `verify`).
pub fn report(report: &RunReport, verified: Option<&VerifyReport>) -> Value {
    json!({
        "ok": report.failures.is_empty() && verified.is_none_or(VerifyReport::all_equal),
        "command": "copy",
        "dry_run": false,
        "source": server(&report.source),
        "target": server(&report.target),
        "totals": {
            "tables": report.tables.len(),
            "rows": report.total_rows(),
            "bytes": report.total_bytes(),
            "seconds": report.seconds,
        },
        "tables": report.tables.iter().map(|t| with_table(&t.table, json!({
            "action": t.action,
            "format": t.format,
            "rows": t.rows,
            "bytes": t.bytes,
            "seconds": t.seconds,
            "sync": t.sync,
        }))).collect::<Vec<_>>(),
        "objects": report.schema,
        "skipped": skipped(report.skipped.iter()),
        "failures": report.failures.iter().map(|f| json!({
            "unit": f.unit,
            "title": f.title,
            "tables": f.tables.iter().map(table_ref).collect::<Vec<_>>(),
            "message": f.message,
            "side": f.side,
            "transient": f.transient,
            "blocked": f.blocked,
        })).collect::<Vec<_>>(),
        "retries": report.retries,
        "resumed": report.resumed.as_ref().map(|r| json!({
            "units_skipped": r.units_skipped,
            "units_total": r.units_total,
            "rows_skipped": r.rows_skipped,
            "bytes_skipped": r.bytes_skipped,
            "tables_done_before": r.tables_done_before.iter().map(table_ref).collect::<Vec<_>>(),
        })),
        "snapshot_renewed": report.snapshot_renewed,
        "warnings": report.warnings,
        "verify": verified.map(verify_body),
    })
}

/// `pgbarge clean --json`.
pub fn clean(target: &Endpoint, abandoned: Option<(&SavedRun, &[TableName])>) -> Value {
    json!({
        "ok": true,
        "command": "clean",
        "target": server(target),
        "abandoned": abandoned.map(|(run, dropped)| json!({
            "run": run.id,
            "started_at": run.started_at,
            "units_done": run.done.len(),
            "units_total": run.work.units.len(),
            "dropped": dropped.iter().map(table_ref).collect::<Vec<_>>(),
        })),
    })
}

/// Any command's failure: what went wrong, on which side, whether a retry may help, and
/// preflight's problems one by one.
pub fn error(command: &str, err: &Error, problems: &[Problem]) -> Value {
    json!({
        "ok": false,
        "command": command,
        "error": {
            "kind": err.kind(),
            "side": err.side(),
            "transient": err.is_transient(),
            "message": err.message(),
            "problems": problems.iter().map(|p| json!({
                "kind": p.kind,
                "table": p.table.as_ref().map(table_ref),
                "message": p.message,
                "hint": p.hint,
            })).collect::<Vec<_>>(),
        }
    })
}

/// Objects left out, with the reason.
fn skipped<'a>(list: impl Iterator<Item = &'a pgbarge::plan::Skipped>) -> Vec<Value> {
    list.map(|s| json!({ "what": s.what, "why": s.why }))
        .collect()
}

fn merge(doc: &mut Value, more: Value) {
    if let (Value::Object(a), Value::Object(b)) = (doc, more) {
        let b: BTreeMap<String, Value> = b.into_iter().collect();
        a.extend(b);
    }
}
