//! A relation message taken in: the followed table's shape for the changes that follow,
//! and its columns on the target made to match the source's again — added and dropped
//! ones done, any other change stopping following with the table and change named.

use crate::catalog::TableName;
use crate::error::{Error, Kind, Result, Side};
use crate::quote::ident;

use super::apply::Shape;
use super::follower::Follower;
use super::pgoutput::Relation;
use super::source::StreamColumn;
use super::state::FollowedTable;

/// An added column's default, if existing rows took it (see `Follower::added_default`).
const ADDED_DEFAULT: &str = "SELECT pg_catalog.pg_get_expr(d.adbin, d.adrelid) \
    FROM pg_catalog.pg_attribute a \
    JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
    WHERE a.attrelid = pg_catalog.to_regclass($1) AND a.attname = $2 AND a.atthasmissing";

/// A column added or dropped on the target as on the source.
pub(super) struct ColumnChange {
    /// The `ALTER TABLE` that makes it.
    pub sql: String,
    /// The target table, and what was done (for [`super::FollowEvent::Schema`]).
    pub table: String,
    pub change: String,
}

/// How a relation message's columns differ from the target table's: (name, type).
struct ColumnDiff {
    added: Vec<(String, String)>,
    dropped: Vec<String>,
}

impl ColumnDiff {
    /// `stream`'s columns against the target's (`on_target`) and those recorded with the
    /// follow (`table`'s). A column whose type changed (unless the target already has
    /// the new type, or the recorded one is it), or columns dropped and added at once
    /// (a rename, most likely), are not done: `Err` says which, for the user.
    fn between(
        stream: &[(String, String)],
        table: &FollowedTable,
        on_target: &[(String, String)],
    ) -> std::result::Result<Self, String> {
        let target_type = |n: &str| {
            on_target
                .iter()
                .find(|(c, _)| c == n)
                .map(|(_, t)| t.as_str())
        };
        let stored_type = |n: &str| {
            table
                .columns
                .iter()
                .find(|c| c.name == n)
                .map(|c| c.sql_type.as_str())
        };
        let added: Vec<(String, String)> = stream
            .iter()
            .filter(|(n, _)| target_type(n).is_none())
            .cloned()
            .collect();
        let dropped: Vec<String> = table
            .columns
            .iter()
            .filter(|c| !stream.iter().any(|(n, _)| n == &c.name) && target_type(&c.name).is_some())
            .map(|c| c.name.clone())
            .collect();
        let retyped = stream.iter().find_map(|(n, t)| {
            let now = target_type(n)?;
            (now != t.as_str() && stored_type(n) != Some(t.as_str()))
                .then(|| format!("column {n:?} changed type from {now} to {t}"))
        });
        if let Some(what) = retyped {
            return Err(what);
        }
        if !added.is_empty() && !dropped.is_empty() {
            return Err(format!(
                "column(s) {} replaced by {} (renamed?)",
                dropped.join(", "),
                added
                    .iter()
                    .map(|(n, _)| n.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        Ok(ColumnDiff { added, dropped })
    }

    fn is_empty(&self) -> bool {
        self.added.is_empty() && self.dropped.is_empty()
    }

    /// The target's columns as they are once the changes are done.
    fn apply_to(&self, on_target: &mut Vec<(String, String)>) {
        on_target.retain(|(n, _)| !self.dropped.contains(n));
        on_target.extend(self.added.iter().cloned());
    }
}

impl Follower<'_> {
    /// Takes a relation message in: the table's shape for the changes that follow, and
    /// the columns to add or drop on the target so that they match the source's again.
    /// Nothing for a table not followed.
    pub(super) async fn relation(&mut self, relation: Relation) -> Result<Vec<ColumnChange>> {
        let name = TableName::new(relation.schema.clone(), relation.name.clone());
        let Some(i) = self.following.tables.iter().position(|t| t.source == name) else {
            return Ok(Vec::new());
        };
        self.filter_by_own_snapshot(i, relation.id)?;
        let stream = self.stream_columns(&relation).await?;
        let table = self.following.tables[i].clone();
        let diff = ColumnDiff::between(&stream, &table, &self.on_target[i].columns)
            .map_err(|what| stopped(&name, &table.target, &what))?;
        let changes = self.column_changes(&name, &table.target, &diff).await?;
        let columns = self.record_columns(i, &stream);
        if !diff.is_empty() {
            diff.apply_to(&mut self.on_target[i].columns);
        }
        let shape = self.shape(i, &table.target, stream, &columns);
        self.shapes.insert(relation.id, shape);
        Ok(changes)
    }

    /// Filters table `i`'s changes (relation `id`) by the snapshot it was copied from
    /// when that is its own (see [`crate::xid::XidSnapshot`]), else by the follow's.
    fn filter_by_own_snapshot(&mut self, i: usize, id: u32) -> Result<()> {
        match &self.following.tables[i].snapshot {
            Some(own) => {
                self.seen_by.insert(id, own.clone());
            }
            None => {
                self.seen_by.remove(&id);
            }
        }
        Ok(())
    }

    /// The message's columns with their types' names.
    async fn stream_columns(&mut self, relation: &Relation) -> Result<Vec<(String, String)>> {
        let mut stream = Vec::new();
        for c in &relation.columns {
            stream.push((
                c.name.clone(),
                self.type_name(c.type_oid, c.type_modifier).await?,
            ));
        }
        Ok(stream)
    }

    /// The type name of a source type (`format_type`), looked up once.
    async fn type_name(&mut self, oid: u32, modifier: i32) -> Result<String> {
        if let Some(name) = self.type_names.get(&(oid, modifier)) {
            return Ok(name.clone());
        }
        let name: String = self
            .lookup
            .client
            .query_one("SELECT pg_catalog.format_type($1, $2)", &[&oid, &modifier])
            .await
            .map_err(|e| Error::postgres(Kind::Copy, Side::Source, "reading a column type", e))?
            .get(0);
        self.type_names.insert((oid, modifier), name.clone());
        Ok(name)
    }

    /// `diff`'s columns added to and dropped from `target` (the source's `source`), the
    /// added first.
    async fn column_changes(
        &self,
        source: &TableName,
        target: &TableName,
        diff: &ColumnDiff,
    ) -> Result<Vec<ColumnChange>> {
        let mut changes = Vec::new();
        for (n, t) in &diff.added {
            // Rows already there took the column's default without a change in the
            // stream: the target's get the same default.
            let default = self.added_default(source, n).await?;
            changes.push(ColumnChange {
                sql: format!(
                    "ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} {t}{}",
                    target.sql(),
                    ident(n),
                    default.map(|d| format!(" DEFAULT {d}")).unwrap_or_default()
                ),
                table: target.to_string(),
                change: format!("added column {n} {t}"),
            });
        }
        for n in &diff.dropped {
            changes.push(ColumnChange {
                sql: format!(
                    "ALTER TABLE {} DROP COLUMN IF EXISTS {}",
                    target.sql(),
                    ident(n)
                ),
                table: target.to_string(),
                change: format!("dropped column {n}"),
            });
        }
        Ok(changes)
    }

    /// The default an added column gave the rows already in the table, when it gave
    /// them one without rewriting it (`atthasmissing`: a constant default). Read from
    /// the source's catalog now.
    async fn added_default(&self, table: &TableName, column: &str) -> Result<Option<String>> {
        let row = self
            .lookup
            .client
            .query_opt(ADDED_DEFAULT, &[&table.sql(), &column])
            .await
            .map_err(|e| {
                Error::postgres(Kind::Copy, Side::Source, "reading a column default", e)
            })?;
        Ok(row.and_then(|r| r.get(0)))
    }

    /// Table `i`'s columns as now known, recorded with the follow (with the position of
    /// the round) when they changed. Keys stay those recorded from the catalog.
    fn record_columns(&mut self, i: usize, stream: &[(String, String)]) -> Vec<StreamColumn> {
        let table = &mut self.following.tables[i];
        let columns: Vec<StreamColumn> = stream
            .iter()
            .map(|(n, t)| StreamColumn {
                name: n.clone(),
                sql_type: t.clone(),
                key: table.columns.iter().any(|c| &c.name == n && c.key),
            })
            .collect();
        if columns != table.columns {
            table.columns = columns.clone();
            self.tables_changed = true;
        }
        columns
    }

    /// The shape table `i`'s changes are applied in: the stream's columns with the
    /// target's types, the key (every column, for a table without one), and what the
    /// target's unique keys and column types allow.
    fn shape(
        &self,
        i: usize,
        target: &TableName,
        stream: Vec<(String, String)>,
        columns: &[StreamColumn],
    ) -> Shape {
        let on_target = &self.on_target[i];
        let types: Vec<String> = stream
            .iter()
            .map(|(n, t)| {
                on_target
                    .columns
                    .iter()
                    .find(|(c, _)| c == n)
                    .map(|(_, ty)| ty.clone())
                    .unwrap_or_else(|| t.clone())
            })
            .collect();
        let mut key: Vec<usize> = (0..columns.len()).filter(|&k| columns[k].key).collect();
        let multiset = key.is_empty();
        if multiset {
            key = (0..columns.len()).collect();
        }
        let mut key_names: Vec<String> = key.iter().map(|&k| columns[k].name.clone()).collect();
        key_names.sort();
        let arbiter = !multiset && on_target.unique_keys.contains(&key_names);
        let exact_key = key_names.iter().all(|k| on_target.exact.contains(k));
        let literal_rows = stream.iter().any(|(n, _)| !on_target.builtin.contains(n));
        Shape {
            target: target.clone(),
            columns: stream.into_iter().map(|(n, _)| n).collect(),
            types,
            key,
            multiset,
            arbiter,
            exact_key,
            rank: on_target.rank,
            literal_rows,
        }
    }
}

/// Following stopped at a change of `source`'s columns it does not make (`what`).
fn stopped(source: &TableName, target: &TableName, what: &str) -> Error {
    Error::new(
        Kind::Schema,
        format!(
            "following stopped: on the source, {source}: {what}. Every transaction \
             committed before that change is applied on the target, none after. \
             Make the same change to {target} on the target, then run `pgbarge follow` to \
             go on."
        ),
    )
}
