//! Everything a copied table needs besides its columns and primary key, read from the
//! source the way pg_dump does — set-based catalog queries, with the definitions rendered
//! by the server's own `pg_get_*def()` functions (so they are valid SQL for its version,
//! with every name qualified under pgbarge's empty `search_path`):
//!
//! - partitions of chosen partitioned tables, with their bounds;
//! - check, unique, exclusion and foreign-key constraints, secondary indexes, triggers
//!   and rules of the chosen tables and their partitions;
//! - sequences the tables' defaults draw from (and all of a schema's, for a schema-wide
//!   copy), functions and aggregates that defaults, constraints, triggers and views call
//!   (all of a schema's, for a schema-wide copy), views and materialized views of the
//!   schemas copied whole, extensions the columns' types come from, and comments.
//!
//! Objects that belong to an extension are never listed: creating the extension brings
//! them.

mod model;
mod read;
mod sql;

use std::collections::BTreeMap;

use tokio_postgres::types::Type;
use tokio_postgres::{Client, Row};

use super::TableName;
use crate::error::{Error, Kind, Result, Side};
pub use model::*;
use read::Reader;
use sql::*;

fn catalog_error(what: &'static str) -> impl FnOnce(tokio_postgres::Error) -> Error {
    move |e| Error::postgres(Kind::Catalog, Side::Source, what, e)
}

/// Every non-system schema on the source (what `--all` copies whole).
pub async fn list_schemas(client: &Client, side: Side) -> Result<Vec<String>> {
    let rows = client
        .query(SCHEMAS, &[])
        .await
        .map_err(move |e| Error::postgres(Kind::Catalog, side, "listing schemas", e))?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Reads what the chosen tables (`tables`: oid and name) need besides their columns, and
/// everything in `whole_schemas`. Two round trips: partitions first (their objects are
/// read with the tables'), then the rest, pipelined.
pub async fn describe_objects(
    client: &Client,
    tables: &[(u32, TableName)],
    whole_schemas: &[String],
) -> Result<SchemaObjects> {
    let source = Source {
        client,
        whole_schemas,
    };
    let mut reader = Reader::new(tables);
    let chosen = reader.oids.clone();
    let (partition_rows, key_rows) = tokio::try_join!(
        source.by_oids(PARTITIONS, &chosen, "reading partitions"),
        source.by_oids(PARTITION_KEYS, &chosen, "reading partition keys"),
    )?;
    let partition_keys = reader.partition_keys(&key_rows);
    let partitions = reader.partitions(&partition_rows);
    let rows = Rows::fetch(&source, &reader.oids).await?;
    Ok(reader.objects(partition_keys, partitions, &rows))
}

/// The source connection, and the schemas copied whole that most queries take as `$2`.
struct Source<'a> {
    client: &'a Client,
    whole_schemas: &'a [String],
}

impl Source<'_> {
    /// Runs `sql` over the relations `oids` (`$1`).
    async fn by_oids(
        &self,
        sql: &'static str,
        oids: &[u32],
        what: &'static str,
    ) -> Result<Vec<Row>> {
        self.client
            .query_typed(sql, &[(&oids, Type::OID_ARRAY)])
            .await
            .map_err(catalog_error(what))
    }

    /// Runs `sql` over the relations `oids` (`$1`) and the schemas copied whole (`$2`).
    async fn with_schemas(
        &self,
        sql: &'static str,
        oids: &[u32],
        what: &'static str,
    ) -> Result<Vec<Row>> {
        self.client
            .query_typed(
                sql,
                &[
                    (&oids, Type::OID_ARRAY),
                    (&self.whole_schemas, Type::TEXT_ARRAY),
                ],
            )
            .await
            .map_err(catalog_error(what))
    }
}

/// The rows of the second round trip, one set per query.
struct Rows {
    table_objects: Vec<Row>,
    sequences: Vec<Row>,
    views: Vec<Row>,
    routines: Vec<Row>,
    operators: Vec<Row>,
    text_search: Vec<Row>,
    casts: Vec<Row>,
    extensions: Vec<Row>,
    comments: Vec<Row>,
    grants: Vec<Row>,
    collations: Vec<Row>,
    row_security: Vec<Row>,
    table_properties: Vec<Row>,
    not_recreated: Vec<Row>,
}

impl Rows {
    /// Sends every query at once over the chosen tables and their partitions (`oids`):
    /// tokio-postgres pipelines them on the one connection.
    async fn fetch(source: &Source<'_>, oids: &[u32]) -> Result<Rows> {
        let (
            table_objects,
            sequences,
            views,
            routines,
            operators,
            text_search,
            casts,
            extensions,
            comments,
            grants,
            collations,
            row_security,
            table_properties,
            not_recreated,
        ) = tokio::try_join!(
            source.by_oids(
                TABLE_OBJECTS,
                oids,
                "reading constraints, indexes and triggers"
            ),
            source.with_schemas(SEQUENCES, oids, "reading sequences"),
            source.with_schemas(VIEWS, oids, "reading views"),
            source.with_schemas(FUNCTIONS, oids, "reading functions"),
            source.with_schemas(OPERATORS, oids, "reading operators"),
            source.with_schemas(
                TEXT_SEARCH,
                oids,
                "reading text search dictionaries and configurations"
            ),
            source.with_schemas(CASTS, oids, "reading casts"),
            source.with_schemas(EXTENSIONS, oids, "reading extensions"),
            source.with_schemas(COMMENTS, oids, "reading comments"),
            source.with_schemas(GRANTS, oids, "reading privileges"),
            source.with_schemas(COLLATIONS, oids, "reading collations"),
            source.by_oids(ROW_SECURITY, oids, "reading row-level security policies"),
            source.by_oids(
                TABLE_PROPERTIES,
                oids,
                "reading storage and statistics settings"
            ),
            source.with_schemas(
                NOT_RECREATED,
                oids,
                "reading objects pgbarge does not recreate"
            ),
        )?;
        Ok(Rows {
            table_objects,
            sequences,
            views,
            routines,
            operators,
            text_search,
            casts,
            extensions,
            comments,
            grants,
            collations,
            row_security,
            table_properties,
            not_recreated,
        })
    }
}

/// Extensions the server offers, with whether a non-superuser may create them (trusted).
pub async fn available_extensions(client: &Client, side: Side) -> Result<BTreeMap<String, bool>> {
    let rows = client
        .query(AVAILABLE_EXTENSIONS, &[])
        .await
        .map_err(|e| Error::postgres(Kind::Catalog, side, "listing available extensions", e))?;
    Ok(rows
        .iter()
        .map(|r| (r.get(0), r.get::<_, Option<bool>>(1).unwrap_or(false)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_settings_decode_the_catalog_codes() {
        let setting = |kind: &str, name: &str, value: &str| {
            TableSetting::decode(kind, Some(name.into()), Some(value.into()))
        };
        assert_eq!(
            setting("storage", "body", "e"),
            Some(TableSetting::Storage {
                column: "body".into(),
                storage: "EXTERNAL"
            })
        );
        assert_eq!(
            setting("compression", "body", "l"),
            Some(TableSetting::Compression {
                column: "body".into(),
                method: "lz4"
            })
        );
        assert_eq!(
            setting("replica identity", "", "f"),
            Some(TableSetting::ReplicaIdentity(ReplicaIdentity::Full))
        );
        assert_eq!(
            setting("replica identity", "t_key", "i"),
            Some(TableSetting::ReplicaIdentity(ReplicaIdentity::Index(
                "t_key".into()
            )))
        );
        assert!(TableSetting::decode("something new", None, None).is_none());
    }
}
