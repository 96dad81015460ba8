//! The rows of [`describe_objects`](super::describe_objects)' queries, made into
//! [`SchemaObjects`]: a function per kind of object, and a [`Reader`] for the kinds whose
//! rows name relations by oid.

use std::collections::BTreeMap;

use tokio_postgres::Row;

use super::model::*;
use super::Rows;
use crate::catalog::queries::first_char;
use crate::catalog::{SequenceParameters, TableName, TriggerState};

/// Knows the relations the rows name by oid: the chosen tables, and their partitions
/// once [`Reader::partitions`] has read them.
pub(super) struct Reader {
    /// The chosen tables.
    chosen: BTreeMap<u32, TableName>,
    /// The relations whose objects are read: the chosen tables, then their partitions
    /// in the order found.
    pub(super) oids: Vec<u32>,
    /// Those relations' names.
    relations: BTreeMap<u32, TableName>,
    /// The chosen table each relation belongs to: itself, or a partition's root.
    table_of: BTreeMap<u32, TableName>,
}

impl Reader {
    pub(super) fn new(tables: &[(u32, TableName)]) -> Reader {
        let chosen: BTreeMap<u32, TableName> = tables.iter().cloned().collect();
        Reader {
            oids: tables.iter().map(|t| t.0).collect(),
            relations: chosen.clone(),
            table_of: chosen.clone(),
            chosen,
        }
    }

    /// Each chosen partitioned table's partition key, from
    /// [`PARTITION_KEYS`](super::sql::PARTITION_KEYS).
    pub(super) fn partition_keys(&self, rows: &[Row]) -> BTreeMap<TableName, String> {
        rows.iter()
            .filter_map(|r| Some((self.chosen.get(&r.get::<_, u32>(0))?.clone(), r.get(1))))
            .collect()
    }

    /// Each chosen partitioned table's partitions, from
    /// [`PARTITIONS`](super::sql::PARTITIONS); they join the relations whose objects are
    /// read.
    pub(super) fn partitions(&mut self, rows: &[Row]) -> BTreeMap<TableName, Vec<Partition>> {
        let mut partitions: BTreeMap<TableName, Vec<Partition>> = BTreeMap::new();
        for r in rows {
            let Some(root) = self.chosen.get(&r.get::<_, u32>(0)) else {
                continue;
            };
            let p = partition(r);
            self.oids.push(p.oid);
            self.relations.insert(p.oid, p.name.clone());
            self.table_of.insert(p.oid, root.clone());
            partitions.entry(root.clone()).or_default().push(p);
        }
        partitions
    }

    /// Everything, from the rows of the second round trip.
    pub(super) fn objects(
        &self,
        partition_keys: BTreeMap<TableName, String>,
        partitions: BTreeMap<TableName, Vec<Partition>>,
        rows: &Rows,
    ) -> SchemaObjects {
        let (row_security, policies) = self.row_security(&rows.row_security);
        SchemaObjects {
            partition_keys,
            partitions,
            table_objects: self.table_objects(&rows.table_objects),
            table_properties: self.table_properties(&rows.table_properties),
            sequences: rows.sequences.iter().map(sequence).collect(),
            views: rows.views.iter().map(view).collect(),
            routines: rows.routines.iter().map(|r| self.routine(r)).collect(),
            operators: rows.operators.iter().map(operator).collect(),
            text_search: rows.text_search.iter().map(text_search).collect(),
            casts: rows.casts.iter().map(cast).collect(),
            extensions: rows.extensions.iter().map(extension).collect(),
            comments: rows.comments.iter().filter_map(comment).collect(),
            grants: rows.grants.iter().map(grant).collect(),
            row_security,
            policies,
            collations: rows.collations.iter().map(collation).collect(),
            not_recreated: rows
                .not_recreated
                .iter()
                .map(|r| (r.get(0), r.get(1), r.get(2)))
                .collect(),
        }
    }

    /// Constraints, indexes, triggers and rules of the relations, and foreign keys of
    /// other tables that point at them (named by their own table).
    fn table_objects(&self, rows: &[Row]) -> Vec<TableObject> {
        rows.iter().filter_map(|r| self.table_object(r)).collect()
    }

    fn table_object(&self, r: &Row) -> Option<TableObject> {
        // Foreign keys of tables not chosen carry their table's name.
        let table = match (
            self.relations.get(&r.get::<_, u32>(0)),
            r.get::<_, Option<String>>(8),
            r.get::<_, Option<String>>(9),
        ) {
            (Some(t), _, _) => t.clone(),
            (None, Some(schema), Some(name)) => TableName::new(schema, name),
            _ => return None,
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
        Some(TableObject {
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
        })
    }

    /// The relations' storage, statistics, replica identity and clustering settings.
    fn table_properties(&self, rows: &[Row]) -> Vec<TableProperty> {
        rows.iter()
            .filter_map(|r| {
                Some(TableProperty {
                    table: self.relations.get(&r.get::<_, u32>(0))?.clone(),
                    setting: TableSetting::decode(r.get(1), r.get(2), r.get(3))?,
                })
            })
            .collect()
    }

    /// Which relations have row-level security on (and forced), and their policies: the
    /// rows of [`ROW_SECURITY`](super::sql::ROW_SECURITY) are one or the other.
    fn row_security(&self, rows: &[Row]) -> (Vec<(TableName, bool, bool)>, Vec<Policy>) {
        let mut enabled = Vec::new();
        let mut policies = Vec::new();
        for r in rows {
            let Some(table) = self.relations.get(&r.get::<_, u32>(0)) else {
                continue;
            };
            match r.get::<_, Option<String>>(3) {
                None => enabled.push((
                    table.clone(),
                    r.get::<_, Option<bool>>(1).unwrap_or(false),
                    r.get::<_, Option<bool>>(2).unwrap_or(false),
                )),
                Some(name) => policies.push(Policy {
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
        (enabled, policies)
    }

    /// A function, procedure or aggregate, with the chosen tables that need it.
    fn routine(&self, r: &Row) -> Routine {
        let kind = RoutineKind::from_prokind(first_char(r.get(4)));
        let mut required_by: Vec<TableName> = r
            .get::<_, Vec<u32>>(17)
            .iter()
            .filter_map(|oid| self.table_of.get(oid).cloned())
            .collect();
        required_by.sort();
        required_by.dedup();
        Routine {
            signature: r.get(3),
            schema: r.get(1),
            name: r.get(2),
            kind,
            definition: r.get(5),
            language: r.get(6),
            trusted_language: r.get(7),
            arguments: r.get(8),
            aggregate: (kind == RoutineKind::Aggregate).then(|| aggregate(r)),
            uses_row_type: r.get(16),
            required_by,
            row_types: r
                .get::<_, Vec<String>>(18)
                .iter()
                .filter_map(|k| k.split_once('\t'))
                .map(|(schema, name)| TableName::new(schema, name))
                .collect(),
        }
    }
}

/// A partition, as a row of [`PARTITIONS`](super::sql::PARTITIONS) has it.
fn partition(r: &Row) -> Partition {
    Partition {
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
    }
}

fn sequence(r: &Row) -> Sequence {
    Sequence {
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
    }
}

fn view(r: &Row) -> View {
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
}

/// An aggregate's part of a row of [`FUNCTIONS`](super::sql::FUNCTIONS).
fn aggregate(r: &Row) -> Aggregate {
    Aggregate {
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
    }
}

fn operator(r: &Row) -> Operator {
    Operator {
        signature: r.get(0),
        schema: r.get(1),
        name: r.get(2),
        left: r.get(3),
        right: r.get(4),
        function: (r.get(5), r.get(6)),
        function_signature: r.get(7),
        commutator: schema_and_name(r.get(8)),
        negator: schema_and_name(r.get(9)),
        restrict: schema_and_name(r.get(10)),
        join: schema_and_name(r.get(11)),
        hashes: r.get(12),
        merges: r.get(13),
        comment: r.get(14),
    }
}

/// (schema, name) from a two-element array.
fn schema_and_name(v: Option<Vec<String>>) -> Option<(String, String)> {
    match v.as_deref() {
        Some([schema, name]) => Some((schema.clone(), name.clone())),
        _ => None,
    }
}

fn text_search(r: &Row) -> TextSearch {
    TextSearch {
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
    }
}

fn cast(r: &Row) -> Cast {
    Cast {
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
    }
}

fn extension(r: &Row) -> Extension {
    Extension {
        name: r.get(0),
        schema: r.get(1),
    }
}

/// A comment, unless on a kind of object this version does not know.
fn comment(r: &Row) -> Option<Comment> {
    Some(Comment {
        kind: CommentOn::decode(r.get(0))?,
        schema: r.get(1),
        name: r.get(2),
        detail: r.get(3),
        text: r.get(4),
    })
}

fn grant(r: &Row) -> Grant {
    Grant {
        kind: r.get(0),
        schema: r.get(1),
        name: r.get(2),
        arguments: r.get(3),
        privilege: r.get(4),
        grantee: r.get(5),
        grantable: r.get(6),
        revoke_public: r.get(7),
    }
}

fn collation(r: &Row) -> Collation {
    Collation {
        schema: r.get(0),
        name: r.get(1),
        icu: first_char(r.get(2)) == Some('i'),
        deterministic: r.get(3),
        lc_collate: r.get(4),
        lc_ctype: r.get(5),
        icu_locale: r.get(6),
    }
}
