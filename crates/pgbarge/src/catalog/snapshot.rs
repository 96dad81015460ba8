//! Everything planning and preflight need to know about both servers, read once.

use std::collections::{BTreeMap, BTreeSet};

use tokio_postgres::Client;

use super::*;
use crate::error::{Result, Side};

/// The two servers as far as the chosen tables are concerned. Pure data: planning and
/// preflight are functions of it and never go back to the servers.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// The chosen source tables in detail, and the user types they need.
    pub source: Described,
    /// Every table on the target, by name.
    pub target_tables: BTreeMap<TableName, Table>,
    /// Target tables with the same names as chosen source tables, in detail.
    pub target: Described,
    /// Which of the source's user types already exist on the target.
    pub target_types: BTreeMap<(String, String), ExistingType>,
    /// Target tables (among those named like chosen ones) that hold at least one row.
    pub target_non_empty: BTreeSet<TableName>,
    pub target_privileges: Privileges,
    /// Schemas copied whole: all their types, sequences, functions and views come along.
    pub whole_schemas: Vec<String>,
    /// What the chosen tables need besides their columns and keys, on the source.
    pub source_objects: SchemaObjects,
    /// Which of those objects (and referenced tables, and roles) the target already has:
    /// `(kind, name)` as [`existing`] takes them.
    pub target_existing: BTreeSet<ObjectRef>,
    /// Extensions the target offers, and whether a non-superuser may create each.
    pub target_extensions: BTreeMap<String, bool>,
    /// Foreign keys between the target's existing tables named like chosen ones:
    /// (referencing, referenced). Loads into them go parents first.
    pub target_foreign_keys: Vec<(TableName, TableName)>,
    /// The same foreign keys, named and defined.
    pub target_foreign_key_definitions: Vec<ForeignKey>,
    /// Enabled user triggers of those target tables: (name, `tgenabled`).
    pub target_triggers: BTreeMap<TableName, Vec<(String, TriggerState)>>,
    /// NOT VALID constraints of those target tables: (name, definition).
    pub target_unvalidated: BTreeMap<TableName, Vec<(String, String)>>,
    /// Indexes of those target tables, for loads that set them aside.
    pub target_indexes: BTreeMap<TableName, Vec<TargetIndex>>,
    /// What depends on those target tables (other tables' foreign keys, views): a
    /// replaced table drops and recreates them.
    pub target_dependents: Dependents,
    /// The servers' encodings.
    pub source_encoding: String,
    pub target_encoding: String,
    /// Large objects on the source (pgbarge does not copy them yet).
    pub source_large_objects: i64,
}

impl Snapshot {
    /// Reads the snapshot: source and target are queried concurrently, each with a few
    /// set-based queries whatever the number of tables.
    pub async fn read(
        source: &Client,
        target: &Client,
        chosen: &[Table],
        target_tables: &[Table],
        whole_schemas: &[String],
        roles: &[String],
    ) -> Result<Snapshot> {
        let by_name: BTreeMap<TableName, Table> = target_tables
            .iter()
            .map(|t| (t.name.clone(), t.clone()))
            .collect();
        let counterparts: Vec<Table> = chosen
            .iter()
            .filter_map(|t| by_name.get(&t.name).cloned())
            .collect();
        // Emptiness can only be checked where the role may read; a table it cannot read is
        // treated as holding rows (preflight then also reports any missing INSERT right).
        let readable: Vec<&TableName> = counterparts
            .iter()
            .filter(|t| t.can_select && !t.row_security_applies)
            .map(|t| &t.name)
            .collect();
        let unreadable = counterparts
            .iter()
            .filter(|t| !t.can_select || t.row_security_applies)
            .map(|t| t.name.clone());

        let chosen_names: Vec<(u32, TableName)> =
            chosen.iter().map(|t| (t.oid, t.name.clone())).collect();
        let source_fut = async {
            tokio::try_join!(
                describe(source, Side::Source, chosen, whole_schemas),
                describe_objects(source, &chosen_names, whole_schemas),
                large_object_count(source, Side::Source),
                server_encoding(source, Side::Source)
            )
        };
        // Pipelined on the target connection: one round trip or so for all of it.
        let target_fut = async {
            tokio::try_join!(
                describe(target, Side::Target, &counterparts, &[]),
                non_empty_tables(target, Side::Target, &readable),
                target_privileges(target),
                available_extensions(target, Side::Target),
                foreign_key_edges(target, Side::Target, &counterparts),
                user_triggers(target, Side::Target, &counterparts),
                unvalidated_constraints(target, Side::Target, &counterparts),
                foreign_keys(target, Side::Target, &counterparts),
                dependents(target, &counterparts),
                target_indexes(target, Side::Target, &counterparts),
                server_encoding(target, Side::Target)
            )
        };
        let (
            (source_described, source_objects, source_large_objects, source_encoding),
            (
                target_described,
                non_empty,
                privileges,
                target_extensions,
                target_foreign_keys,
                target_triggers,
                target_unvalidated,
                target_foreign_key_definitions,
                target_dependents,
                target_indexes,
                target_encoding,
            ),
        ) = tokio::try_join!(source_fut, target_fut)?;

        let type_names: Vec<(String, String)> = source_described
            .types
            .iter()
            .map(|t| (t.schema.clone(), t.name.clone()))
            .collect();
        let mut wanted: Vec<ObjectRef> = Vec::new();
        let o = &source_objects;
        wanted.extend(
            o.extensions
                .iter()
                .map(|e| ObjectRef::Extension(e.name.clone())),
        );
        wanted.extend(
            o.sequences
                .iter()
                .map(|s| ObjectRef::Relation(s.name.clone())),
        );
        wanted.extend(o.collations.iter().map(|c| ObjectRef::Collation {
            schema: c.schema.clone(),
            name: c.name.clone(),
        }));
        wanted.extend(
            o.routines
                .iter()
                .map(|r| ObjectRef::Routine(r.signature.clone())),
        );
        wanted.extend(
            o.operators
                .iter()
                .map(|op| ObjectRef::Operator(op.signature.clone())),
        );
        wanted.extend(o.text_search.iter().map(|t| t.object_ref()));
        wanted.extend(o.casts.iter().map(|c| c.object_ref()));
        wanted.extend(
            o.routines
                .iter()
                .flat_map(|r| &r.row_types)
                .cloned()
                .map(ObjectRef::Relation),
        );
        for v in &o.views {
            wanted.push(ObjectRef::Relation(v.name.clone()));
            wanted.extend(v.reads.iter().cloned().map(ObjectRef::Relation));
        }
        for fk in o.table_objects.iter().filter(|t| t.references.is_some()) {
            wanted.extend(fk.references.iter().cloned().map(ObjectRef::Relation));
            wanted.push(ObjectRef::Relation(fk.table.clone()));
            wanted.push(ObjectRef::Constraint {
                table: fk.table.clone(),
                name: fk.name.clone(),
            });
        }
        let mut schemas: Vec<&String> = chosen.iter().map(|t| &t.name.schema).collect();
        schemas.extend(whole_schemas);
        // Roles that source privileges are granted to (for --grants).
        wanted.extend(
            o.grants
                .iter()
                .filter_map(|g| g.grantee.clone())
                .map(ObjectRef::Role),
        );
        wanted.extend(
            o.policies
                .iter()
                .flat_map(|p| p.roles.iter().flatten())
                .map(|r| ObjectRef::Role(r.clone())),
        );
        // Triggers by name, so a --schema-only run can add those an existing table lacks.
        wanted.extend(
            o.table_objects
                .iter()
                .filter(|t| t.kind == TableObjectKind::Trigger)
                .map(|t| ObjectRef::Trigger {
                    table: t.table.clone(),
                    name: t.name.clone(),
                }),
        );
        for role in roles {
            wanted.push(ObjectRef::Role(role.clone()));
            wanted.push(ObjectRef::MemberOf(role.clone()));
            // A new owner needs CREATE on the schema its objects are in.
            wanted.extend(schemas.iter().map(|s| ObjectRef::MayCreateIn {
                role: role.clone(),
                schema: (*s).clone(),
            }));
        }
        wanted.sort();
        wanted.dedup();
        let (target_types, target_existing) = tokio::try_join!(
            find_types(target, Side::Target, &type_names),
            existing(target, Side::Target, &wanted)
        )?;

        Ok(Snapshot {
            source: source_described,
            target_tables: by_name,
            target: target_described,
            target_types,
            target_non_empty: non_empty.into_iter().chain(unreadable).collect(),
            target_privileges: privileges,
            whole_schemas: whole_schemas.to_vec(),
            source_objects,
            target_existing,
            target_extensions,
            target_foreign_keys,
            target_triggers,
            target_unvalidated,
            target_foreign_key_definitions,
            target_dependents,
            target_indexes,
            source_encoding,
            target_encoding,
            source_large_objects,
        })
    }
}
