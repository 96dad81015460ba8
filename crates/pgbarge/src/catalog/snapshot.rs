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
    /// set-based queries whatever the number of tables; then the target is asked which of
    /// the objects the source's need it has already.
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
        let (from_source, from_target) = tokio::try_join!(
            SourceRead::read(source, chosen, whole_schemas),
            TargetRead::read(target, &counterparts)
        )?;
        let type_names: Vec<(String, String)> = from_source
            .described
            .types
            .iter()
            .map(|t| (t.schema.clone(), t.name.clone()))
            .collect();
        let wanted = wanted(&from_source.objects, chosen, whole_schemas, roles);
        let (target_types, target_existing) = tokio::try_join!(
            find_types(target, Side::Target, &type_names),
            existing(target, Side::Target, &wanted)
        )?;
        Ok(Snapshot {
            source: from_source.described,
            target_tables: by_name,
            target: from_target.described,
            target_types,
            target_non_empty: from_target.non_empty,
            target_privileges: from_target.privileges,
            whole_schemas: whole_schemas.to_vec(),
            source_objects: from_source.objects,
            target_existing,
            target_extensions: from_target.extensions,
            target_foreign_keys: from_target.foreign_keys,
            target_triggers: from_target.triggers,
            target_unvalidated: from_target.unvalidated,
            target_foreign_key_definitions: from_target.foreign_key_definitions,
            target_dependents: from_target.dependents,
            target_indexes: from_target.indexes,
            source_encoding: from_source.encoding,
            target_encoding: from_target.encoding,
            source_large_objects: from_source.large_objects,
        })
    }
}

/// What the snapshot reads from the source.
struct SourceRead {
    described: Described,
    objects: SchemaObjects,
    large_objects: i64,
    encoding: String,
}

impl SourceRead {
    /// The chosen tables and what they need, and the schemas copied whole.
    async fn read(client: &Client, chosen: &[Table], whole_schemas: &[String]) -> Result<Self> {
        let chosen_names: Vec<(u32, TableName)> =
            chosen.iter().map(|t| (t.oid, t.name.clone())).collect();
        let (described, objects, large_objects, encoding) = tokio::try_join!(
            describe(client, Side::Source, chosen, whole_schemas),
            describe_objects(client, &chosen_names, whole_schemas),
            large_object_count(client, Side::Source),
            server_encoding(client, Side::Source)
        )?;
        Ok(SourceRead {
            described,
            objects,
            large_objects,
            encoding,
        })
    }
}

/// What the snapshot reads from the target: mostly about the tables named like chosen
/// ones (see the [`Snapshot`] fields of the same names).
struct TargetRead {
    described: Described,
    non_empty: BTreeSet<TableName>,
    privileges: Privileges,
    extensions: BTreeMap<String, bool>,
    foreign_keys: Vec<(TableName, TableName)>,
    triggers: BTreeMap<TableName, Vec<(String, TriggerState)>>,
    unvalidated: BTreeMap<TableName, Vec<(String, String)>>,
    foreign_key_definitions: Vec<ForeignKey>,
    dependents: Dependents,
    indexes: BTreeMap<TableName, Vec<TargetIndex>>,
    encoding: String,
}

impl TargetRead {
    /// Pipelined on the target connection: one round trip or so for all of it.
    async fn read(client: &Client, counterparts: &[Table]) -> Result<Self> {
        // Emptiness can only be checked where the role may read; a table it cannot read is
        // treated as holding rows (preflight then also reports any missing INSERT right).
        let (readable, unreadable): (Vec<&Table>, Vec<&Table>) = counterparts
            .iter()
            .partition(|t| t.can_select && !t.row_security_applies);
        let readable: Vec<&TableName> = readable.iter().map(|t| &t.name).collect();
        let side = Side::Target;
        let (
            described,
            non_empty,
            privileges,
            extensions,
            foreign_keys,
            triggers,
            unvalidated,
            foreign_key_definitions,
            dependents,
            indexes,
            encoding,
        ) = tokio::try_join!(
            describe(client, side, counterparts, &[]),
            non_empty_tables(client, side, &readable),
            target_privileges(client),
            available_extensions(client, side),
            foreign_key_edges(client, side, counterparts),
            user_triggers(client, side, counterparts),
            unvalidated_constraints(client, side, counterparts),
            foreign_keys(client, side, counterparts),
            dependents(client, counterparts),
            target_indexes(client, side, counterparts),
            server_encoding(client, side)
        )?;
        Ok(TargetRead {
            described,
            non_empty: non_empty
                .into_iter()
                .chain(unreadable.into_iter().map(|t| t.name.clone()))
                .collect(),
            privileges,
            extensions,
            foreign_keys,
            triggers,
            unvalidated,
            foreign_key_definitions,
            dependents,
            indexes,
            encoding,
        })
    }
}

/// Everything the target is asked whether it has, sorted and without repeats: the
/// objects the source's `objects` need or stand for, and the roles they (and `roles`,
/// the run's new owners) name.
fn wanted(
    objects: &SchemaObjects,
    chosen: &[Table],
    whole_schemas: &[String],
    roles: &[String],
) -> Vec<ObjectRef> {
    let mut schemas: Vec<&String> = chosen.iter().map(|t| &t.name.schema).collect();
    schemas.extend(whole_schemas);
    let mut wanted = objects_wanted(objects);
    wanted.extend(roles_wanted(objects, &schemas, roles));
    wanted.sort();
    wanted.dedup();
    wanted
}

/// The source's objects as the target may have them already (then they are left as
/// they are), and the relations they need there.
fn objects_wanted(o: &SchemaObjects) -> Vec<ObjectRef> {
    let mut wanted: Vec<ObjectRef> = Vec::new();
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
    wanted
}

/// The roles source privileges are granted to (for --grants) and policies name; and for
/// each new owner in `roles`, whether it exists, whether the connected role is a member,
/// and whether it may create in `schemas`.
fn roles_wanted(o: &SchemaObjects, schemas: &[&String], roles: &[String]) -> Vec<ObjectRef> {
    let mut wanted: Vec<ObjectRef> = o
        .grants
        .iter()
        .filter_map(|g| g.grantee.clone())
        .map(ObjectRef::Role)
        .collect();
    wanted.extend(
        o.policies
            .iter()
            .flat_map(|p| p.roles.iter().flatten())
            .map(|r| ObjectRef::Role(r.clone())),
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
    wanted
}
