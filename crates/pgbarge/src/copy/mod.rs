//! The copy stage: runs a preflighted [`Plan`] — each table in its own target transaction,
//! all tables read from one consistent snapshot of the source.
//!
//! It reports what happens as [`Event`]s and never prints.

mod pump;

use std::collections::BTreeSet;
use std::time::Instant;

use tokio_postgres::Client;

use crate::catalog::TableName;
use crate::connect::Connection;
use crate::error::{Error, Kind, Result, Side};
use crate::plan::{Plan, TablePlan};
use crate::report::{RunReport, TableReport};

/// One repeatable-read, read-only transaction on the source for the whole run: every
/// table is read as of the same instant.
const SOURCE_BEGIN: &str = "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY";
const BEGIN: &str = "BEGIN";
const COMMIT: &str = "COMMIT";
const ROLLBACK: &str = "ROLLBACK";

/// A sequence's state; read on the source after the table's data so it covers every row.
const SEQUENCE_STATE: &str = "SELECT last_value, is_called FROM ";

/// Sets the target's sequence for a column (found by `pg_get_serial_sequence`, so serial and
/// identity alike) to the source's state ($3, $4) — lifted, for ascending sequences, above
/// the largest value now in the column so new rows cannot collide with copied ones.
fn set_sequence_sql(table: &TableName, column: &str, ascending: bool) -> String {
    let seq = format!(
        "pg_catalog.pg_get_serial_sequence({}, {})",
        crate::quote::literal(&table.sql()),
        crate::quote::literal(column)
    );
    if ascending {
        format!(
            "SELECT pg_catalog.setval({seq}, GREATEST($1::int8, m), CASE WHEN m > $1::int8 THEN true ELSE $2::bool END) \
             FROM (SELECT max({})::int8 AS m FROM {}) AS t",
            crate::quote::ident(column),
            table.sql()
        )
    } else {
        format!("SELECT pg_catalog.setval({seq}, $1::int8, $2::bool)")
    }
}

/// What the copy stage reports while it works.
#[derive(Debug, Clone)]
pub enum Event {
    TableStarted {
        table: TableName,
        estimated_bytes: i64,
    },
    /// Bytes read from the source so far for the table being loaded.
    Progress {
        table: TableName,
        bytes: u64,
    },
    TableFinished(TableReport),
}

/// Runs `plan`: for each table, in order, one target transaction that creates or empties
/// the table as planned, streams the data, builds the primary key, and commits. A failure
/// rolls back that table (the target keeps what it had) and stops the run; tables already
/// committed stay.
pub async fn run(
    plan: &Plan,
    source_conn: &Connection,
    target_conn: &Connection,
    on_event: &(dyn Fn(Event) + Send + Sync),
) -> Result<RunReport> {
    let (source, target) = (&source_conn.client, &target_conn.client);
    let started = Instant::now();
    source
        .batch_execute(SOURCE_BEGIN)
        .await
        .map_err(|e| Error::postgres(Kind::Copy, Side::Source, "starting the snapshot", e))?;

    let mut created_types: BTreeSet<String> = BTreeSet::new();
    let mut tables = Vec::with_capacity(plan.tables.len());
    for table in &plan.tables {
        on_event(Event::TableStarted {
            table: table.target.clone(),
            estimated_bytes: table.estimated_bytes,
        });
        let report = load_table(plan, table, source, target, &created_types, on_event).await;
        let report = match report {
            Ok(r) => r,
            Err(e) => {
                // A COPY may still be streaming on the side that did not fail: cancel it
                // rather than drain it. Then roll back; best effort, as a connection that is
                // gone has been rolled back by its server already.
                tokio::join!(source_conn.cancel(), target_conn.cancel());
                let _ = target.batch_execute(ROLLBACK).await;
                let _ = source.batch_execute(ROLLBACK).await;
                return Err(e);
            }
        };
        created_types.extend(table.needs_types.iter().cloned());
        on_event(Event::TableFinished(report.clone()));
        tables.push(report);
    }
    source
        .batch_execute(COMMIT)
        .await
        .map_err(|e| Error::postgres(Kind::Copy, Side::Source, "ending the snapshot", e))?;
    Ok(RunReport {
        source: plan.source.clone(),
        target: plan.target.clone(),
        tables,
        seconds: started.elapsed().as_secs_f64(),
    })
}

async fn load_table(
    plan: &Plan,
    table: &TablePlan,
    source: &Client,
    target: &Client,
    created_types: &BTreeSet<String>,
    on_event: &(dyn Fn(Event) + Send + Sync),
) -> Result<TableReport> {
    let started = Instant::now();
    let doing = format!("loading {}", table.target);
    let target_err = |e| Error::postgres(Kind::Copy, Side::Target, &doing, e);

    target.batch_execute(BEGIN).await.map_err(target_err)?;
    for type_name in &table.needs_types {
        if created_types.contains(type_name) {
            continue;
        }
        if let Some(t) = plan.types.iter().find(|t| &t.name == type_name) {
            for sql in &t.sql {
                target.batch_execute(sql).await.map_err(target_err)?;
            }
        }
    }
    for sql in &table.before {
        target.batch_execute(sql).await.map_err(target_err)?;
    }
    let (rows, bytes) = pump::pump(
        source,
        target,
        &table.copy_out_sql(),
        &table.copy_in_sql(),
        &doing,
        |bytes| {
            on_event(Event::Progress {
                table: table.target.clone(),
                bytes,
            })
        },
    )
    .await?;
    for sql in &table.after {
        target.batch_execute(sql).await.map_err(target_err)?;
    }
    for seq in &table.sequences {
        // Unreadable on the source: start after the copied values (ascending) or leave it.
        let (value, called) = match &seq.source {
            Some(source_seq) => {
                let row = source
                    .query_one(&format!("{SEQUENCE_STATE}{}", source_seq.sql()), &[])
                    .await
                    .map_err(|e| Error::postgres(Kind::Copy, Side::Source, &doing, e))?;
                (row.get::<_, i64>(0), row.get::<_, bool>(1))
            }
            None if seq.ascending => (1, false),
            None => continue,
        };
        target
            .execute(
                &set_sequence_sql(&table.target, &seq.column, seq.ascending),
                &[&value, &called],
            )
            .await
            .map_err(target_err)?;
    }
    target.batch_execute(COMMIT).await.map_err(target_err)?;
    Ok(TableReport {
        table: table.target.clone(),
        action: table.action,
        format: table.format,
        rows,
        bytes,
        seconds: started.elapsed().as_secs_f64(),
    })
}
