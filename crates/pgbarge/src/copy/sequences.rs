//! Sequence values: the source's state, read when a unit runs, as `setval` statements
//! for the target.

use tokio_postgres::Client;

use crate::catalog::TableName;
use crate::error::{Error, Kind, Result, Side};
use crate::plan::{SequencePlan, SequenceValue};
use crate::quote::{ident, literal};

/// A sequence's state; read on the source after the table's data so it covers every row.
const SEQUENCE_STATE: &str = "SELECT last_value, is_called FROM ";

/// `setval` for each sequence pgbarge created on its own, to the source's state now —
/// after every row was read, so the values cover them all.
pub(super) async fn sequence_values(
    sequences: &[SequenceValue],
    source: &Client,
) -> Result<Vec<String>> {
    let readable: Vec<&SequenceValue> = sequences.iter().filter(|s| s.readable).collect();
    if readable.is_empty() {
        return Ok(Vec::new());
    }
    let query = readable
        .iter()
        .enumerate()
        .map(|(i, s)| {
            format!(
                "SELECT {i}::int4, last_value, is_called FROM {}",
                s.name.sql()
            )
        })
        .collect::<Vec<_>>()
        .join(" UNION ALL ");
    let rows = source
        .query(&query, &[])
        .await
        .map_err(|e| Error::postgres(Kind::Copy, Side::Source, "reading sequence values", e))?;
    Ok(rows
        .iter()
        .filter_map(|r| {
            let seq = readable.get(r.get::<_, i32>(0) as usize)?;
            let (value, called) = (r.get::<_, i64>(1), r.get::<_, bool>(2));
            let name = literal(&seq.name.sql());
            Some(if seq.raise_only {
                // Only forward: past the source's last value when the target's is behind.
                let behind = if seq.ascending {
                    format!("(last_value, is_called) < ({value}, {called})")
                } else {
                    format!("(last_value, NOT is_called) > ({value}, NOT {called})")
                };
                format!(
                    "SELECT pg_catalog.setval({name}, {value}, {called}) FROM {} WHERE {behind}",
                    seq.name.sql()
                )
            } else {
                format!("SELECT pg_catalog.setval({name}, {value}, {called})")
            })
        })
        .collect())
}

/// Statements setting the target's sequence for each of the table's serial/identity
/// columns (found by `pg_get_serial_sequence`) to the source sequence's state: exactly,
/// for a sequence the run created; otherwise lifted, for ascending sequences, above the
/// largest value in the column so new rows cannot collide with copied ones. The source's state is read now: every row in the run's snapshot was
/// numbered before this moment, so the value covers them all.
pub(super) async fn sequence_sql(
    table: &TableName,
    sequences: &[SequencePlan],
    source: &Client,
    doing: &str,
) -> Result<Vec<String>> {
    let mut sql = Vec::new();
    for seq in sequences {
        // Unreadable on the source: start after the copied values (ascending) or leave it.
        let (value, called, read) = match &seq.source {
            Some(source_seq) => {
                let row = source
                    .query_one(&format!("{SEQUENCE_STATE}{}", source_seq.sql()), &[])
                    .await
                    .map_err(|e| Error::postgres(Kind::Copy, Side::Source, doing, e))?;
                (row.get::<_, i64>(0), row.get::<_, bool>(1), true)
            }
            None if seq.ascending => (1, false, false),
            None => continue,
        };
        let target_seq = format!(
            "pg_catalog.pg_get_serial_sequence({}, {})",
            literal(&table.sql()),
            literal(&seq.column)
        );
        sql.push(if seq.created && read {
            // Created by this run: the source's state, exactly (as pg_dump gives it).
            format!("SELECT pg_catalog.setval({target_seq}, {value}, {called})")
        } else if seq.ascending && seq.numeric {
            format!(
                "SELECT pg_catalog.setval({target_seq}, GREATEST({value}, m), \
                 CASE WHEN m > {value} THEN true ELSE {called} END) \
                 FROM (SELECT max({})::int8 AS m FROM {}) AS t",
                ident(&seq.column),
                table.sql()
            )
        } else {
            format!("SELECT pg_catalog.setval({target_seq}, {value}, {called})")
        });
    }
    Ok(sql)
}
