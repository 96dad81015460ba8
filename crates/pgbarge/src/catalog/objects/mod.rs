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
mod sql;

use std::collections::BTreeMap;

use tokio_postgres::types::Type;
use tokio_postgres::Client;

use super::queries::first_char;
use super::{SequenceParameters, TableName, TriggerState};
use crate::error::{Error, Kind, Result, Side};
pub use model::*;
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
    let chosen: Vec<u32> = tables.iter().map(|t| t.0).collect();
    let names: BTreeMap<u32, TableName> = tables.iter().cloned().collect();
    let (partition_rows, key_rows) = tokio::try_join!(
        async {
            client
                .query_typed(PARTITIONS, &[(&chosen, Type::OID_ARRAY)])
                .await
                .map_err(catalog_error("reading partitions"))
        },
        async {
            client
                .query_typed(PARTITION_KEYS, &[(&chosen, Type::OID_ARRAY)])
                .await
                .map_err(catalog_error("reading partition keys"))
        }
    )?;
    let mut objects = SchemaObjects::default();
    for r in &key_rows {
        if let Some(name) = names.get(&r.get::<_, u32>(0)) {
            objects.partition_keys.insert(name.clone(), r.get(1));
        }
    }
    let mut oids = chosen.clone();
    // The chosen table each relation belongs to: itself, or a partition's root.
    let mut table_of = names.clone();
    for r in &partition_rows {
        let Some(root) = names.get(&r.get::<_, u32>(0)) else {
            continue;
        };
        let p = Partition {
            oid: r.get(1),
            name: TableName::new(r.get::<_, String>(2), r.get::<_, String>(3)),
            parent: TableName::new(r.get::<_, String>(4), r.get::<_, String>(5)),
            bound: r.get(6),
            partition_key: r.get(7),
            options: r.get(8),
            columns: r
                .get::<_, Vec<String>>(9)
                .iter()
                .filter_map(|c| {
                    let mut f = c.splitn(4, '\t');
                    Some(PartitionColumn {
                        name: f.next()?.to_string(),
                        ty: f.next()?.to_string(),
                        not_null: f.next()? == "true",
                        default: f.next().filter(|d| !d.is_empty()).map(str::to_string),
                    })
                })
                .collect(),
            parent_not_null: r.get(10),
            parent_columns: r.get(11),
            parent_generated: r.get(12),
            defaults: r
                .get::<_, Vec<String>>(13)
                .iter()
                .filter_map(|d| {
                    let (column, expr) = d.split_once('\t')?;
                    Some((column.to_string(), expr.to_string()))
                })
                .collect(),
            pages: r.get(14),
            bytes: r.get(15),
            constraint: r.get(16),
        };
        oids.push(p.oid);
        table_of.insert(p.oid, root.clone());
        objects.partitions.entry(root.clone()).or_default().push(p);
    }

    let by_oids = |sql: &'static str, what: &'static str| {
        let oids = &oids;
        async move {
            client
                .query_typed(sql, &[(oids, Type::OID_ARRAY)])
                .await
                .map_err(catalog_error(what))
        }
    };
    let params = |sql: &'static str, what: &'static str| {
        let oids = &oids;
        async move {
            client
                .query_typed(
                    sql,
                    &[(oids, Type::OID_ARRAY), (&whole_schemas, Type::TEXT_ARRAY)],
                )
                .await
                .map_err(catalog_error(what))
        }
    };
    let (
        object_rows,
        sequence_rows,
        view_rows,
        routine_rows,
        operator_rows,
        text_search_rows,
        cast_rows,
        extension_rows,
        comment_rows,
        grant_rows,
        collation_rows,
        security_rows,
        property_rows,
        not_recreated_rows,
    ) = tokio::try_join!(
        by_oids(TABLE_OBJECTS, "reading constraints, indexes and triggers"),
        params(SEQUENCES, "reading sequences"),
        params(VIEWS, "reading views"),
        params(FUNCTIONS, "reading functions"),
        params(OPERATORS, "reading operators"),
        params(
            TEXT_SEARCH,
            "reading text search dictionaries and configurations"
        ),
        params(CASTS, "reading casts"),
        params(EXTENSIONS, "reading extensions"),
        params(COMMENTS, "reading comments"),
        params(GRANTS, "reading privileges"),
        params(COLLATIONS, "reading collations"),
        by_oids(ROW_SECURITY, "reading row-level security policies"),
        by_oids(TABLE_PROPERTIES, "reading storage and statistics settings"),
        params(NOT_RECREATED, "reading objects pgbarge does not recreate"),
    )?;
    objects.casts = cast_rows
        .iter()
        .map(|r| Cast {
            source: r.get(0),
            target: r.get(1),
            method: match (r.get::<_, &str>(2), r.get::<_, Option<String>>(3)) {
                ("f", Some(f)) => CastMethod::Function(f),
                ("i", _) => CastMethod::InOut,
                _ => CastMethod::Binary,
            },
            context: match first_char(r.get(4)) {
                Some('a') => CastContext::Assignment,
                Some('i') => CastContext::Implicit,
                _ => CastContext::Explicit,
            },
            comment: r.get(5),
        })
        .collect();
    objects.text_search = text_search_rows
        .iter()
        .map(|r| TextSearch {
            kind: if r.get::<_, &str>(0) == "dictionary" {
                TextSearchKind::Dictionary
            } else {
                TextSearchKind::Configuration
            },
            schema: r.get(1),
            name: r.get(2),
            base: (r.get(3), r.get(4)),
            options: r.get(5),
            mappings: r
                .get::<_, Vec<String>>(6)
                .iter()
                .filter_map(|m| m.split_once('\t'))
                .map(|(token, dictionaries)| (token.to_string(), dictionaries.to_string()))
                .collect(),
            comment: r.get(7),
        })
        .collect();
    objects.not_recreated = not_recreated_rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();

    let rel_names: BTreeMap<u32, TableName> = names
        .into_iter()
        .chain(
            objects
                .partitions
                .values()
                .flatten()
                .map(|p| (p.oid, p.name.clone())),
        )
        .collect();

    objects.table_properties = property_rows
        .iter()
        .filter_map(|r| {
            Some(TableProperty {
                table: rel_names.get(&r.get::<_, u32>(0))?.clone(),
                setting: TableSetting::decode(r.get(1), r.get(2), r.get(3))?,
            })
        })
        .collect();
    objects.collations = collation_rows
        .iter()
        .map(|r| Collation {
            schema: r.get(0),
            name: r.get(1),
            icu: first_char(r.get(2)) == Some('i'),
            deterministic: r.get(3),
            lc_collate: r.get(4),
            lc_ctype: r.get(5),
            icu_locale: r.get(6),
        })
        .collect();
    for r in &security_rows {
        let Some(table) = rel_names.get(&r.get::<_, u32>(0)) else {
            continue;
        };
        match r.get::<_, Option<String>>(3) {
            None => objects.row_security.push((
                table.clone(),
                r.get::<_, Option<bool>>(1).unwrap_or(false),
                r.get::<_, Option<bool>>(2).unwrap_or(false),
            )),
            Some(name) => objects.policies.push(Policy {
                table: table.clone(),
                name,
                permissive: r.get::<_, Option<bool>>(4).unwrap_or(true),
                command: first_char(r.get(5)).unwrap_or('*'),
                roles: r
                    .get::<_, Option<Vec<Option<String>>>>(6)
                    .unwrap_or_default(),
                using: r.get(7),
                with_check: r.get(8),
            }),
        }
    }
    objects.grants = grant_rows
        .iter()
        .map(|r| Grant {
            kind: r.get(0),
            schema: r.get(1),
            name: r.get(2),
            arguments: r.get(3),
            privilege: r.get(4),
            grantee: r.get(5),
            grantable: r.get(6),
            revoke_public: r.get(7),
        })
        .collect();
    for r in &object_rows {
        // Foreign keys of tables not chosen carry their table's name.
        let table = match (
            rel_names.get(&r.get::<_, u32>(0)),
            r.get::<_, Option<String>>(8),
            r.get::<_, Option<String>>(9),
        ) {
            (Some(t), _, _) => t.clone(),
            (None, Some(schema), Some(name)) => TableName::new(schema, name),
            _ => continue,
        };
        let object: String = r.get(1);
        let sub: String = r.get(2);
        let kind = match (object.as_str(), sub.as_str()) {
            ("constraint", "c") => TableObjectKind::Check,
            ("constraint", "u") => TableObjectKind::Unique,
            ("constraint", "p") => TableObjectKind::PrimaryKey,
            ("constraint", "x") => TableObjectKind::Exclusion,
            ("constraint", _) => TableObjectKind::ForeignKey,
            ("index", _) => TableObjectKind::Index,
            ("trigger", _) => TableObjectKind::Trigger,
            _ => TableObjectKind::Rule,
        };
        let references = match (r.get::<_, Option<String>>(5), r.get::<_, Option<String>>(6)) {
            (Some(s), Some(n)) if kind == TableObjectKind::ForeignKey => Some(TableName::new(s, n)),
            _ => None,
        };
        objects.table_objects.push(TableObject {
            kind,
            table,
            name: r.get(3),
            definition: r.get(4),
            references,
            validated: r.get(7),
            enabled: if kind == TableObjectKind::Trigger {
                TriggerState::from_code(sub.chars().next())
            } else {
                TriggerState::Enabled
            },
            calls: r.get(10),
        });
    }
    objects.sequences = sequence_rows
        .iter()
        .map(|r| Sequence {
            name: TableName::new(r.get::<_, String>(1), r.get::<_, String>(2)),
            parameters: SequenceParameters {
                data_type: r.get(3),
                start: r.get(4),
                increment: r.get(5),
                min: r.get(6),
                max: r.get(7),
                cache: r.get(8),
                cycle: r.get(9),
            },
            readable: r.get(10),
            unlogged: r.get(11),
        })
        .collect();
    objects.views = view_rows
        .iter()
        .map(|r| {
            let schemas: Vec<String> = r.get(7);
            let names: Vec<String> = r.get(8);
            let mut reads: Vec<TableName> = schemas
                .into_iter()
                .zip(names)
                .map(|(s, n)| TableName::new(s, n))
                .collect();
            reads.dedup();
            View {
                name: TableName::new(r.get::<_, String>(1), r.get::<_, String>(2)),
                materialized: r.get(3),
                query: r.get(4),
                populated: r.get(5),
                options: r.get::<_, Option<Vec<String>>>(6).unwrap_or_default(),
                reads,
                indexes: r.get(9),
                rules_and_triggers: r.get(10),
                calls: r.get(11),
                compression: r
                    .get::<_, Vec<String>>(12)
                    .iter()
                    .filter_map(|c| c.split_once('\t'))
                    .map(|(column, method)| (column.to_string(), method.to_string()))
                    .collect(),
            }
        })
        .collect();
    let pair = |v: Option<Vec<String>>| match v.as_deref() {
        Some([schema, name]) => Some((schema.clone(), name.clone())),
        _ => None,
    };
    objects.operators = operator_rows
        .iter()
        .map(|r| Operator {
            signature: r.get(0),
            schema: r.get(1),
            name: r.get(2),
            left: r.get(3),
            right: r.get(4),
            function: (r.get(5), r.get(6)),
            function_signature: r.get(7),
            commutator: pair(r.get(8)),
            negator: pair(r.get(9)),
            restrict: pair(r.get(10)),
            join: pair(r.get(11)),
            hashes: r.get(12),
            merges: r.get(13),
            comment: r.get(14),
        })
        .collect();
    objects.routines = routine_rows
        .iter()
        .map(|r| {
            let kind = RoutineKind::from_prokind(first_char(r.get(4)));
            let aggregate = (kind == RoutineKind::Aggregate).then(|| Aggregate {
                kind: match first_char(r.get(9)) {
                    Some('o') => AggregateKind::OrderedSet,
                    Some('h') => AggregateKind::HypotheticalSet,
                    _ => AggregateKind::Normal,
                },
                transition: r.get::<_, Option<String>>(10).unwrap_or_default(),
                state_type: r.get::<_, Option<String>>(11).unwrap_or_default(),
                final_function: r.get(12),
                combine_function: r.get(13),
                initial_value: r.get(14),
                more: r
                    .get::<_, Option<String>>(15)
                    .and_then(|j| serde_json::from_str(&j).ok())
                    .unwrap_or_default(),
            });
            Routine {
                signature: r.get(3),
                schema: r.get(1),
                name: r.get(2),
                kind,
                definition: r.get(5),
                language: r.get(6),
                trusted_language: r.get(7),
                arguments: r.get(8),
                aggregate,
                uses_row_type: r.get(16),
                required_by: {
                    let mut by: Vec<TableName> = r
                        .get::<_, Vec<u32>>(17)
                        .iter()
                        .filter_map(|oid| table_of.get(oid).cloned())
                        .collect();
                    by.sort();
                    by.dedup();
                    by
                },
                row_types: r
                    .get::<_, Vec<String>>(18)
                    .iter()
                    .filter_map(|k| k.split_once('\t'))
                    .map(|(schema, name)| TableName::new(schema, name))
                    .collect(),
            }
        })
        .collect();
    objects.extensions = extension_rows
        .iter()
        .map(|r| Extension {
            name: r.get(0),
            schema: r.get(1),
        })
        .collect();
    objects.comments = comment_rows
        .iter()
        .filter_map(|r| {
            Some(Comment {
                kind: CommentOn::decode(r.get(0))?,
                schema: r.get(1),
                name: r.get(2),
                detail: r.get(3),
                text: r.get(4),
            })
        })
        .collect();
    Ok(objects)
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
