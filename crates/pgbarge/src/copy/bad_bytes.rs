//! When the target refuses a row's bytes (invalid in its encoding), which row and column
//! on the source hold them: the target says only "line N" of a stream the user never saw.

use futures_util::{pin_mut, TryStreamExt};
use tokio_postgres::types::ToSql;

use crate::catalog::TableName;
use crate::connect::{connect, Connection};
use crate::conninfo::ConnInfo;
use crate::error::Side;
use crate::quote::ident;
use crate::rowhash::output_text;

/// The source table's primary key columns, in key order.
const PRIMARY_KEY: &str = "
SELECT a.attname::text
FROM pg_catalog.pg_index i
JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
WHERE i.indrelid = $1::text::pg_catalog.regclass AND i.indisprimary
ORDER BY array_position(i.indkey::int2[], a.attnum)";

/// The table's columns, in order.
const COLUMNS: &str = "
SELECT a.attname::text FROM pg_catalog.pg_attribute a
WHERE a.attrelid = $1::text::pg_catalog.regclass AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum";

/// The column the target names in its error context (`COPY t, line 3, column body: …`).
pub fn column_of(context: &str) -> Option<&str> {
    let rest = &context[context.find(", column ")? + ", column ".len()..];
    Some(rest.split(':').next().unwrap_or(rest).trim())
}

/// "The first such row on the source: key (3), column body.", found by reading the key
/// and `column` (every column when the error does not say) of `table` as raw bytes and
/// checking them as UTF-8 (what a SQL_ASCII source is read as). `None` when no such row
/// is found or the lookup fails: the failure is reported as it was.
pub async fn locate(info: &ConnInfo, table: &TableName, column: Option<&str>) -> Option<String> {
    let source: Connection = connect(info, Side::Source).await.ok()?;
    let client = &source.client;
    let rows = client.query(PRIMARY_KEY, &[&table.sql()]).await.ok()?;
    let key: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    // Values as text through their types' output functions, never a cast: a cast of a
    // type another role owns could run its function here (see
    // [`crate::rowhash::output_text`]).
    let key_sql = if key.is_empty() {
        "ctid::pg_catalog.text".to_string()
    } else {
        let parts: Vec<String> = key.iter().map(|k| output_text(&ident(k))).collect();
        format!("pg_catalog.concat_ws(', ', {})", parts.join(", "))
    };
    let columns: Vec<String> = match column {
        Some(c) => vec![c.to_string()],
        None => client
            .query(COLUMNS, &[&table.sql()])
            .await
            .ok()?
            .iter()
            .map(|r| r.get(0))
            .collect(),
    };
    // The stored bytes as they are: conversions to or from SQL_ASCII change nothing
    // (textsend would convert to the client's encoding, and fail as the copy did).
    let raw = |expr: &str| format!("pg_catalog.convert_to({expr}, 'SQL_ASCII')");
    let values: Vec<String> = columns
        .iter()
        .map(|c| raw(&output_text(&ident(c))))
        .collect();
    let sql = format!(
        "SELECT {}, {} FROM {}",
        raw(&key_sql),
        values.join(", "),
        table.sql()
    );
    let params: [&(dyn ToSql + Sync); 0] = [];
    let stream = client.query_raw(&sql, params).await.ok()?;
    pin_mut!(stream);
    while let Ok(Some(row)) = stream.try_next().await {
        let bad = (0..columns.len()).find(|&i| {
            row.get::<_, Option<&[u8]>>(i + 1)
                .is_some_and(|v| std::str::from_utf8(v).is_err())
        });
        if let Some(i) = bad {
            let key_bytes: &[u8] = row.get(0);
            let which = if key.is_empty() { "at ctid" } else { "key" };
            return Some(format!(
                "The first such row on the source: {table} {which} ({}), column {}.",
                String::from_utf8_lossy(key_bytes),
                ident(&columns[i])
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::column_of;

    #[test]
    fn the_column_comes_from_the_error_context() {
        assert_eq!(
            column_of("COPY notes, line 1, column body: \"caf\\xe9\""),
            Some("body")
        );
        assert_eq!(column_of("COPY notes, line 1, column body"), Some("body"));
        assert_eq!(column_of("COPY notes, line 1"), None);
    }
}
