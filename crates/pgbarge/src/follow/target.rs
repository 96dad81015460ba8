//! The followed tables as the target has them: columns and types, unique keys, and
//! foreign-key order — what a relation's changes are applied with.

use std::collections::{HashMap, HashSet};

use tokio_postgres::types::Type;
use tokio_postgres::{Client, Row};

use crate::catalog::TableName;
use crate::error::{Error, Kind, Result, Side};

use super::state::FollowedTable;

/// A followed table on the target.
#[derive(Debug, Clone)]
pub(super) struct TargetTable {
    /// Its columns and their types, in order.
    pub columns: Vec<(String, String)>,
    /// Columns whose values are equal exactly when their text is (integers, uuid, text
    /// in a deterministic collation, …; not numeric, not citext): see
    /// [`super::apply::Shape::exact_key`].
    pub exact: HashSet<String>,
    /// Columns whose type is `pg_catalog`'s (whose casts from text only a superuser can
    /// make): see [`super::apply::Shape::literal_rows`]. A column added while following
    /// is not among them.
    pub builtin: HashSet<String>,
    /// Its unique keys (column names, sorted).
    pub unique_keys: Vec<Vec<String>>,
    /// Its place in the foreign-key order of the followed tables, parents first.
    pub rank: usize,
}

/// The target's columns with their types, for every followed table at once: (position
/// in the list given, 1-based; column; type).
const TARGET_COLUMNS: &str = "SELECT t.n::int, a.attname::text, \
    pg_catalog.format_type(a.atttypid, a.atttypmod), \
    a.atttypid IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype, 'oid'::regtype, \
      'uuid'::regtype, 'text'::regtype, 'varchar'::regtype, 'bpchar'::regtype, \
      'bytea'::regtype, 'bool'::regtype, 'date'::regtype, 'timestamp'::regtype, \
      'timestamptz'::regtype) \
    AND coalesce((SELECT c.collisdeterministic FROM pg_catalog.pg_collation c \
                  WHERE c.oid = a.attcollation), true), \
    (SELECT y.typnamespace = 'pg_catalog'::pg_catalog.regnamespace \
       FROM pg_catalog.pg_type y WHERE y.oid = a.atttypid) \
    FROM unnest($1::text[]) WITH ORDINALITY AS t(name, n) \
    JOIN pg_catalog.pg_attribute a ON a.attrelid = pg_catalog.to_regclass(t.name) \
    WHERE a.attnum > 0 AND NOT a.attisdropped ORDER BY t.n, a.attnum";

/// The columns of each unique index an `ON CONFLICT` can name, for every followed table:
/// (position in the list given, 1-based; columns). Not partial, not on expressions, not
/// deferrable, and valid.
const TARGET_UNIQUE_KEYS: &str = "SELECT t.n::int, \
    ARRAY(SELECT a.attname::text FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(num, ord) \
      JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.num \
      WHERE k.ord <= i.indnkeyatts ORDER BY a.attname) \
    FROM unnest($1::text[]) WITH ORDINALITY AS t(name, n) \
    JOIN pg_catalog.pg_index i ON i.indrelid = pg_catalog.to_regclass(t.name) \
    WHERE i.indisunique AND i.indisvalid AND i.indimmediate \
      AND i.indpred IS NULL AND i.indexprs IS NULL";

/// Foreign keys among the target tables: (child, parent).
const TARGET_REFERENCES: &str =
    "SELECT DISTINCT c.conrelid::regclass::text, c.confrelid::regclass::text \
    FROM pg_catalog.pg_constraint c WHERE c.contype = 'f' \
      AND c.conrelid = ANY ($1::text[]::regclass[]) AND c.confrelid = ANY ($1::text[]::regclass[]) \
      AND c.conrelid <> c.confrelid";

/// Each of `tables` as the target has it, in their order. A table gone from the target
/// is an error: following cannot go on.
pub(super) async fn read(target: &Client, tables: &[FollowedTable]) -> Result<Vec<TargetTable>> {
    let err = |e| Error::postgres(Kind::Copy, Side::Target, "reading the followed tables", e);
    let names: Vec<String> = tables.iter().map(|t| t.target.sql()).collect();
    // The three reads go out together: one round trip to a far target, not six.
    let param: [(&(dyn tokio_postgres::types::ToSql + Sync), Type); 1] =
        [(&names, Type::TEXT_ARRAY)];
    let typed = |sql| target.query_typed(sql, &param);
    let (column_rows, key_rows, reference_rows) = tokio::try_join!(
        typed(TARGET_COLUMNS),
        typed(TARGET_UNIQUE_KEYS),
        typed(TARGET_REFERENCES)
    )
    .map_err(err)?;
    let ranks = ranks(tables, &names, &reference_rows);
    let mut read: Vec<TargetTable> = tables
        .iter()
        .map(|t| TargetTable {
            columns: Vec::new(),
            exact: HashSet::new(),
            builtin: HashSet::new(),
            unique_keys: Vec::new(),
            rank: ranks.get(&t.target).copied().unwrap_or(usize::MAX),
        })
        .collect();
    // Rows name their table by its 1-based place in the list.
    let place = |row: &Row| (row.get::<_, i32>(0) - 1) as usize;
    for row in column_rows {
        if let Some(table) = read.get_mut(place(&row)) {
            if row.get::<_, bool>(3) {
                table.exact.insert(row.get(1));
            }
            if row.get::<_, bool>(4) {
                table.builtin.insert(row.get(1));
            }
            table.columns.push((row.get(1), row.get(2)));
        }
    }
    if let Some(gone) = read.iter().position(|t| t.columns.is_empty()) {
        return Err(Error::new(
            Kind::Copy,
            format!(
                "the followed table {} is not on the target any more; following cannot \
                 go on (`pgbarge follow --drop` ends it).",
                tables[gone].target
            ),
        )
        .on(Side::Target));
    }
    for row in key_rows {
        if let Some(table) = read.get_mut(place(&row)) {
            table.unique_keys.push(row.get(1));
        }
    }
    Ok(read)
}

/// Each target table's place in foreign-key order (`references`: child, parent), parents
/// first.
fn ranks(
    tables: &[FollowedTable],
    names: &[String],
    references: &[Row],
) -> HashMap<TableName, usize> {
    let edges: Vec<(String, String)> = references.iter().map(|r| (r.get(0), r.get(1))).collect();
    let mut graph = petgraph::graph::DiGraph::<usize, ()>::new();
    let nodes: Vec<_> = (0..names.len()).map(|i| graph.add_node(i)).collect();
    let index = |name: &str| {
        names
            .iter()
            .position(|n| n == name || n.rsplit('.').next() == Some(name))
    };
    for (child, parent) in &edges {
        if let (Some(c), Some(p)) = (index(child), index(parent)) {
            graph.add_edge(nodes[p], nodes[c], ());
        }
    }
    // A cycle has no order that always works: the given order, and a failing flush
    // falls back to the source's own order.
    let order: Vec<usize> = petgraph::algo::toposort(&graph, None)
        .map(|o| o.into_iter().map(|n| graph[n]).collect())
        .unwrap_or_else(|_| (0..names.len()).collect());
    order
        .into_iter()
        .enumerate()
        .map(|(rank, i)| (tables[i].target.clone(), rank))
        .collect()
}
