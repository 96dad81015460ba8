//! Verification: are a table's rows the same on both servers?
//!
//! Each side computes, on the server, a row count and an order-independent checksum —
//! the sum of a 64-bit hash of every row's text form over the columns both sides have — so
//! no rows travel and row order does not matter. Both sessions use pgbarge's portable
//! settings (UTC, ISO dates, shortest-exact floats), so equal values give equal text on
//! any server version from 12 on. When the sums differ and the table has a primary key,
//! the rows are hashed into buckets by key, the differing buckets are compared row by
//! row, and a sample of differing keys is reported.

use std::collections::BTreeMap;

use serde::Serialize;
use tokio_postgres::Client;

use crate::catalog::{self, Described, TableName};
use crate::error::{Error, Kind, Result, Side};
use crate::rowhash::{both, key_expr, Hashing, ValueHash};

/// Buckets rows are spread over when looking for differing keys.
const BUCKETS: i64 = 1024;
/// Differing keys reported per table, at most.
const SAMPLE: usize = 10;

/// What verification found for one table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Equal,
    Different,
    MissingOnTarget,
    /// A server refused to compute the checksum (e.g. row-level security applies to the
    /// role); the other tables are still compared.
    NotVerified,
}

#[derive(Debug, Clone, Serialize)]
pub struct TableVerdict {
    pub table: TableName,
    pub status: Status,
    pub source_rows: i64,
    pub target_rows: Option<i64>,
    /// Up to ten primary keys (as row text) whose rows differ or exist on one side only.
    pub differing_keys: Vec<String>,
    /// Why the table could not be compared.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub seconds: f64,
}

/// The whole verification.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub tables: Vec<TableVerdict>,
    pub seconds: f64,
}

impl VerifyReport {
    pub fn all_equal(&self) -> bool {
        self.tables.iter().all(|t| t.status == Status::Equal)
    }
}

/// Compares `names` on both servers, describing them afresh (the target may have just
/// been written).
pub async fn compare_tables(
    source: &Client,
    target: &Client,
    names: &[TableName],
    source_encoding: Option<&str>,
) -> Result<VerifyReport> {
    let (source_tables, target_tables) = tokio::try_join!(
        catalog::list_tables(source, Side::Source),
        catalog::list_tables(target, Side::Target)
    )?;
    let pick = |list: &[catalog::Table]| -> Vec<catalog::Table> {
        list.iter()
            .filter(|t| names.contains(&t.name))
            .cloned()
            .collect()
    };
    let (source_chosen, target_chosen) = (pick(&source_tables), pick(&target_tables));
    let (source_described, target_described) = tokio::try_join!(
        catalog::describe(source, Side::Source, &source_chosen, &[]),
        catalog::describe(target, Side::Target, &target_chosen, &[])
    )?;
    verify(
        source,
        target,
        names,
        &source_described,
        &target_described,
        source_encoding,
    )
    .await
}

/// Compares each of `tables` (described on the source; `target` holds those that exist on
/// the target) on both servers.
pub async fn verify(
    source: &Client,
    target: &Client,
    tables: &[TableName],
    source_described: &Described,
    target_described: &Described,
    source_encoding: Option<&str>,
) -> Result<VerifyReport> {
    let started = std::time::Instant::now();
    let hashing = Hashing::choose(source, target, source_encoding).await?;
    let mut verdicts = Vec::new();
    for name in tables {
        let table_started = std::time::Instant::now();
        let Some(src) = source_described.tables.get(name) else {
            continue;
        };
        let tgt = target_described.tables.get(name);
        let verdict = match verify_table(source, target, &hashing, name, src, tgt).await {
            Ok(v) => v,
            Err(e) => TableVerdict {
                table: name.clone(),
                status: Status::NotVerified,
                source_rows: 0,
                target_rows: None,
                differing_keys: Vec::new(),
                error: Some(e.message().to_string()),
                seconds: 0.0,
            },
        };
        verdicts.push(TableVerdict {
            seconds: table_started.elapsed().as_secs_f64(),
            ..verdict
        });
    }
    Ok(VerifyReport {
        tables: verdicts,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// One table's verdict (`tgt`: the table as described on the target, if it is there).
async fn verify_table(
    source: &Client,
    target: &Client,
    hashing: &Hashing,
    name: &TableName,
    src: &crate::catalog::TableDetail,
    tgt: Option<&crate::catalog::TableDetail>,
) -> Result<TableVerdict> {
    let count_sql = |side: Side, columns: &[String], kinds: &[ValueHash]| {
        format!(
            "SELECT count(*), coalesce(sum({})::numeric, 0)::text FROM {}",
            hashing.row(side, columns, kinds),
            name.sql()
        )
    };
    let Some(tgt) = tgt else {
        let rows = source
            .query_one(&count_sql(Side::Source, &[], &[]), &[])
            .await
            .map_err(|e| Error::postgres(Kind::Catalog, Side::Source, "counting rows", e))?
            .get(0);
        return Ok(TableVerdict {
            table: name.clone(),
            status: Status::MissingOnTarget,
            source_rows: rows,
            target_rows: None,
            differing_keys: Vec::new(),
            error: None,
            seconds: 0.0,
        });
    };
    // Columns both sides have, in the source's order, and how each is hashed.
    let (columns, kinds): (Vec<String>, Vec<ValueHash>) = src
        .columns
        .iter()
        .filter_map(|c| {
            let t = tgt.columns.iter().find(|t| t.name == c.name)?;
            Some((c.name.clone(), ValueHash::of(&c.ty, &t.ty)))
        })
        .unzip();
    let doing = format!("checksumming {name}");
    let ((s_rows, s_sum), (t_rows, t_sum)) = both(
        source,
        target,
        |side| count_sql(side, &columns, &kinds),
        &doing,
        |rows| {
            rows.first()
                .map(|r| (r.get::<_, i64>(0), r.get::<_, String>(1)))
                .unwrap_or_default()
        },
    )
    .await?;
    let mut equal = s_rows == t_rows && s_sum == t_sum;
    let mut error = None;
    if equal {
        if let Some(lo) = large_objects(source, target, name, src).await? {
            equal = false;
            error = Some(lo);
        }
    }
    let differing_keys = match (&src.primary_key, equal) {
        (Some(pk), false) => {
            differing_keys(
                source,
                target,
                hashing,
                name,
                (&columns, &kinds),
                &pk.columns,
            )
            .await?
        }
        _ => Vec::new(),
    };
    Ok(TableVerdict {
        table: name.clone(),
        status: if equal {
            Status::Equal
        } else {
            Status::Different
        },
        source_rows: s_rows,
        target_rows: Some(t_rows),
        differing_keys,
        error,
        seconds: 0.0,
    })
}

/// The large objects a table's `oid`/`lo` columns point at, compared by content: equal
/// numbers are not enough when the objects themselves did not travel. `Some(why)`: they
/// differ (or are missing on the target). Only when the source holds large objects at
/// all (otherwise an `oid` column is just a number).
async fn large_objects(
    source: &Client,
    target: &Client,
    name: &TableName,
    src: &crate::catalog::TableDetail,
) -> Result<Option<String>> {
    let columns: Vec<&str> = src
        .columns
        .iter()
        .filter(|c| crate::catalog::refers_to_large_objects(&c.ty) && !c.ty.name.starts_with('_'))
        .map(|c| c.name.as_str())
        .collect();
    if columns.is_empty() || crate::catalog::large_object_count(source, Side::Source).await? == 0 {
        return Ok(None);
    }
    let refs = columns
        .iter()
        .map(|c| {
            let col = crate::quote::ident(c);
            // The value's text as an oid: a cast to oid from a type named `lo` that
            // another role made could run her function.
            format!(
                "SELECT {}::pg_catalog.oid AS o FROM {t} WHERE {col} IS NOT NULL",
                crate::rowhash::output_text(&col),
                t = name.sql()
            )
        })
        .collect::<Vec<_>>()
        .join(" UNION ALL ");
    let sql = format!(
        "SELECT count(*), coalesce(sum(pg_catalog.hashtextextended(\
         pg_catalog.encode(pg_catalog.lo_get(o), 'hex'), 0))::numeric, 0)::text FROM ({refs}) AS r"
    );
    let doing = format!("comparing the large objects of {name}");
    let read = |r: &tokio_postgres::Row| (r.get::<_, i64>(0), r.get::<_, String>(1));
    let (s, t) = tokio::join!(source.query_one(&sql, &[]), target.query_one(&sql, &[]));
    let s = s
        .map(|r| read(&r))
        .map_err(|e| Error::postgres(Kind::Catalog, Side::Source, &doing, e))?;
    // `its column doc points at`, `its columns a, b point at`.
    let (noun, verb) = if columns.len() == 1 {
        ("column", "points")
    } else {
        ("columns", "point")
    };
    let which = format!("its {noun} {} {verb} at", columns.join(", "));
    match t {
        Ok(row) if read(&row) == s => Ok(None),
        Ok(_) => Ok(Some(format!("the large objects {which} differ"))),
        Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_OBJECT) => {
            Ok(Some(format!(
                "large objects {which} are missing on the target ({})",
                crate::error::describe_pg(&e)
            )))
        }
        Err(e) => Err(Error::postgres(Kind::Catalog, Side::Target, &doing, e)),
    }
}

/// Keys of rows that differ: bucket checksums by key first, then the rows of the
/// differing buckets (a few at most) compared one by one.
async fn differing_keys(
    source: &Client,
    target: &Client,
    hashing: &Hashing,
    name: &TableName,
    (columns, kinds): (&[String], &[ValueHash]),
    key: &[String],
) -> Result<Vec<String>> {
    let doing = format!("looking for differing rows of {name}");
    let bucket = |side: Side| format!("({} & {})", hashing.hash(side, &key_expr(key)), BUCKETS - 1);
    let bucket_sql = |side: Side| {
        format!(
            "SELECT {}, count(*), sum({})::numeric::text FROM {} GROUP BY 1",
            bucket(side),
            hashing.row(side, columns, kinds),
            name.sql()
        )
    };
    let read_buckets = |rows: &[tokio_postgres::Row]| -> BTreeMap<i64, (i64, String)> {
        rows.iter()
            .map(|r| (r.get(0), (r.get(1), r.get(2))))
            .collect()
    };
    let (s, t) = both(source, target, bucket_sql, &doing, read_buckets).await?;
    let mut differing: Vec<i64> = s
        .keys()
        .chain(t.keys())
        .filter(|b| s.get(b) != t.get(b))
        .copied()
        .collect();
    differing.sort_unstable();
    differing.dedup();
    differing.truncate(4);
    if differing.is_empty() {
        return Ok(Vec::new());
    }
    let listed = differing
        .iter()
        .map(|b| b.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let rows_sql = |side: Side| {
        format!(
            "SELECT {}, {} FROM {} WHERE {} IN ({listed})",
            hashing.text(side, &key_expr(key)),
            hashing.row(side, columns, kinds),
            name.sql(),
            bucket(side)
        )
    };
    let read_rows = |rows: &[tokio_postgres::Row]| -> BTreeMap<String, i64> {
        rows.iter().map(|r| (r.get(0), r.get(1))).collect()
    };
    let (s, t) = both(source, target, rows_sql, &doing, read_rows).await?;
    let mut keys: Vec<String> = s
        .keys()
        .chain(t.keys())
        .filter(|k| s.get(*k) != t.get(*k))
        .cloned()
        .collect();
    keys.sort();
    keys.dedup();
    keys.truncate(SAMPLE);
    Ok(keys)
}
