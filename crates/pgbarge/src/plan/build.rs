//! [`Plan::build`]: the plan made from the snapshot of both servers and the user's
//! choices, pass by pass.

use std::collections::{BTreeMap, BTreeSet};

use super::columns::text_only;
use super::create::plan_create;
use super::existing::plan_existing;
use super::groups::{group_linked, group_replaces};
use super::order::order_by_foreign_keys;
use super::schema::{self, SkipReason, Skipped, Step};
use super::split::{default_jobs, split, split_leaves, Sizes};
use super::table::base_plan;
use super::user_types::type_ddl;
use super::{
    Action, ColumnRoute, Content, CopyFormat, Endpoint, Plan, PlanOptions, TablePlan, TypePlan,
    DEFAULT_PART_SIZE, DEFAULT_SPLIT_ABOVE,
};
use crate::catalog::{Snapshot, TableKind, TableName, TypeDefinition, UserType};
use crate::quote::ident;

/// Function bodies are not checked while they are created: they may refer to tables
/// created later, as in pg_dump's output. A user-settable setting; no superuser needed.
pub const NO_BODY_CHECKS: &str = "SET LOCAL check_function_bodies = off";

impl Plan {
    /// Builds the plan for `chosen` tables (in that order) from what both servers hold.
    pub fn build(
        source: Endpoint,
        target: Endpoint,
        chosen: &[TableName],
        snapshot: &Snapshot,
        options: &PlanOptions,
    ) -> Plan {
        let schema_exists = |s: &str| snapshot.target_privileges.create_in_schema.contains_key(s);
        let mut new_schemas: Vec<String> = Vec::new();
        let mut types = Vec::new();
        // Types of whole schemas left out, named with the other skipped objects.
        let mut types_skipped: Vec<Skipped> = Vec::new();
        // Types the target lacks, in creation order (dependencies first).
        for ut in &snapshot.source.types {
            if snapshot
                .target_types
                .contains_key(&(ut.schema.clone(), ut.name.clone()))
            {
                continue;
            }
            if matches!(ut.definition, TypeDefinition::Shell)
                && !snapshot.target_privileges.is_superuser
            {
                // Nothing can use a shell type; only a superuser may declare one.
                types_skipped.push(Skipped {
                    what: format!("type {}", TableName::new(&ut.schema, &ut.name)),
                    why: SkipReason::Because(
                        "it is a shell type (CREATE TYPE name;), and only a superuser may \
                         declare one"
                            .into(),
                    ),
                    blocking: options.schema.strict,
                    needed_by: Vec::new(),
                });
                continue;
            }
            if !schema_exists(&ut.schema) && !new_schemas.contains(&ut.schema) {
                new_schemas.push(ut.schema.clone());
            }
            let array = format!("_{}", ut.name);
            let used_directly = chosen.iter().any(|name| {
                snapshot.source.tables.get(name).is_some_and(|t| {
                    t.columns.iter().any(|c| {
                        c.ty.schema == ut.schema && (c.ty.name == ut.name || c.ty.name == array)
                    })
                })
            });
            let kind = match ut.definition {
                TypeDefinition::Domain { .. } => "domain",
                _ => "type",
            };
            let excluded = options.schema.excluded(kind, &ut.schema, &ut.name);
            if let (Some(why), false) = (&excluded, used_directly) {
                types_skipped.push(Skipped {
                    what: format!("{kind} {}", TableName::new(&ut.schema, &ut.name)),
                    why: why.clone().into(),
                    blocking: false,
                    needed_by: Vec::new(),
                });
                continue;
            }
            // Left out but a chosen table's column has it: like a type the role cannot
            // create, that table is refused (or left out of a whole-schema copy).
            let (sql, unsupported) = match (excluded, type_ddl(ut)) {
                (Some(why), _) => (Vec::new(), Some(why)),
                (None, Ok(ddl)) => (vec![ddl], None),
                (None, Err(why)) => (Vec::new(), Some(why)),
            };
            let used_by = chosen
                .iter()
                .filter(|_| unsupported.is_some())
                .filter(|name| {
                    snapshot.source.tables.get(name).is_some_and(|t| {
                        t.columns.iter().any(|c| {
                            c.ty.schema == ut.schema && (c.ty.name == ut.name || c.ty.name == array)
                        })
                    })
                })
                .cloned()
                .collect();
            types.push(TypePlan {
                name: TableName::new(&ut.schema, &ut.name).to_string(),
                schema: ut.schema.clone(),
                sql,
                unsupported,
                used_by,
            });
        }

        // A partition chosen along with its partitioned table comes with the table.
        let objects = &snapshot.source_objects;
        let with_parent: BTreeSet<&TableName> = objects
            .partitions
            .iter()
            .filter(|(root, _)| chosen.contains(root))
            .flat_map(|(_, parts)| parts.iter().map(|p| &p.name))
            .collect();
        let mut tables: Vec<TablePlan> = chosen
            .iter()
            .filter(|name| !with_parent.contains(name))
            .filter_map(|name| snapshot.source.tables.get(name))
            .map(|src| {
                let mut plan = match snapshot.target.tables.get(&src.table.name) {
                    None => plan_create(src, objects),
                    Some(_) if options.content == Content::SchemaOnly => {
                        base_plan(src, Action::Keep)
                    }
                    Some(tgt) => plan_existing(src, tgt, snapshot, options),
                };
                if plan.action == Action::Create
                    && !schema_exists(&plan.target.schema)
                    && !new_schemas.contains(&plan.target.schema)
                {
                    new_schemas.push(plan.target.schema.clone());
                }
                let no_binary: Vec<&str> = src
                    .columns
                    .iter()
                    .filter(|c| !c.generated && !c.ty.binary_io)
                    .map(|c| c.name.as_str())
                    .collect();
                if !no_binary.is_empty() {
                    plan.notes.push(format!(
                        "copied as text: the type of {} {} no binary send/receive functions",
                        crate::text::short_list(&no_binary, 5),
                        if no_binary.len() == 1 { "has" } else { "have" }
                    ));
                }
                if no_binary.is_empty()
                    && plan
                        .columns
                        .iter()
                        .all(|c| c.route == ColumnRoute::Identical && !text_only(&c.source_type))
                {
                    plan.format = CopyFormat::Binary;
                }
                plan
            })
            .collect();

        let (linked_groups, cyclic) = group_linked(&mut tables, &snapshot.target_foreign_keys);
        let linked_group_keys: Vec<Vec<crate::catalog::ForeignKey>> = linked_groups
            .iter()
            .zip(&cyclic)
            .map(|(members, &cyclic)| {
                if !cyclic {
                    return Vec::new();
                }
                let names: Vec<&TableName> = members.iter().map(|&i| &tables[i].target).collect();
                let keys: Vec<crate::catalog::ForeignKey> = snapshot
                    .target_foreign_key_definitions
                    .iter()
                    .filter(|k| names.contains(&&k.table) && names.contains(&&k.references))
                    .cloned()
                    .collect();
                let may_alter = keys.iter().all(|k| {
                    snapshot.target_privileges.is_superuser
                        || snapshot
                            .target_tables
                            .get(&k.table)
                            .is_some_and(|t| t.is_owner)
                });
                if may_alter {
                    keys
                } else {
                    for &i in members {
                        tables[i].notes.push(
                            "the group's foreign keys form a cycle and the role does not own \
                             every table to set them aside: the load may fail on a key"
                                .into(),
                        );
                    }
                    Vec::new()
                }
            })
            .collect();
        for (members, keys) in linked_groups.iter().zip(&linked_group_keys) {
            // A key the group sets aside is not also set aside as NOT VALID.
            for &i in members {
                let target = tables[i].target.clone();
                tables[i]
                    .unvalidated
                    .retain(|(name, _)| !keys.iter().any(|k| k.table == target && &k.name == name));
            }
            for &i in members.iter().filter(|_| !keys.is_empty()) {
                tables[i].notes.push(format!(
                    "the group's foreign keys form a cycle: its {} key(s) are dropped for the \
                     load and added back, validated, before the commit",
                    keys.len()
                ));
            }
        }
        let replace_groups = group_replaces(&mut tables, snapshot);
        order_by_foreign_keys(&mut tables, &snapshot.target_foreign_keys);
        // A regclass/regtype value's text input names a relation or type, which must
        // exist when the row loads: such tables wait for the other tables this run
        // creates (not for each other, so there is no cycle).
        let names_objects = |t: &TablePlan| {
            t.columns
                .iter()
                .any(|c| text_only(&c.source_type) && !c.source_type.starts_with("tsquery"))
        };
        let created_plain: Vec<usize> = (0..tables.len())
            .filter(|&i| {
                matches!(tables[i].action, Action::Create | Action::Replace)
                    && !names_objects(&tables[i])
            })
            .collect();
        let naming: Vec<usize> = (0..tables.len())
            .filter(|&r| names_objects(&tables[r]))
            .collect();
        for r in naming {
            for &i in &created_plain {
                // Not on a table that needs this one first (its row type, INHERITS).
                let needs_r = tables[i].requires.contains(&tables[r].target);
                if !needs_r && !tables[r].load_after.contains(&i) {
                    tables[r].load_after.push(i);
                }
            }
        }
        let jobs = options.jobs.unwrap_or_else(|| default_jobs(&tables)).max(1);
        let split_above = options.split_above.unwrap_or(DEFAULT_SPLIT_ABOVE);
        // Parts of the chosen size, or half a lower threshold (so a table just above it
        // still gets two parts).
        let part_size = options
            .part_size
            .unwrap_or(DEFAULT_PART_SIZE)
            .min((split_above / 2).max(1))
            .max(1);
        for (table, src) in tables
            .iter_mut()
            .filter(|_| options.content != Content::SchemaOnly)
            .filter_map(|t| snapshot.source.tables.get(&t.source).map(|s| (t, s)))
        {
            let sizes = Sizes {
                split_above,
                part_size,
                jobs,
                version: source.server_version,
            };
            match objects.partitions.get(&table.source) {
                Some(tree) if src.table.kind == TableKind::Partitioned => {
                    split_leaves(table, src, tree, &sizes)
                }
                _ => split(table, src, &sizes),
            }
        }

        let creates = |t: &&TablePlan| matches!(t.action, Action::Create | Action::Replace);
        let mut created: BTreeSet<&TableName> =
            tables.iter().filter(creates).map(|t| &t.target).collect();
        created.extend(tables.iter().filter(creates).flat_map(|t| &t.leaves));
        for t in tables.iter().filter(creates) {
            if let Some(parts) = objects.partitions.get(&t.source) {
                created.extend(parts.iter().map(|p| &p.name));
            }
        }
        let mut copied: BTreeSet<&TableName> = tables.iter().map(|t| &t.target).collect();
        copied.extend(created.iter().copied());
        // Schemas that only hold sequences, functions or views still need creating.
        let object_schemas = objects
            .sequences
            .iter()
            .map(|s| &s.name.schema)
            .chain(objects.routines.iter().map(|r| &r.schema))
            .chain(objects.views.iter().map(|v| &v.name.schema))
            .chain(objects.extensions.iter().map(|e| &e.schema))
            .chain(objects.collations.iter().map(|c| &c.schema))
            .chain(snapshot.whole_schemas.iter());
        for s in object_schemas {
            if !schema_exists(s) && !new_schemas.contains(s) {
                new_schemas.push(s.clone());
            }
        }
        let types_created: Vec<String> = snapshot
            .source
            .types
            .iter()
            .filter(|ut| {
                !snapshot
                    .target_types
                    .contains_key(&(ut.schema.clone(), ut.name.clone()))
            })
            .map(UserType::sql_name)
            .collect();
        let owned_sequences: Vec<TableName> = tables
            .iter()
            .filter(creates)
            .filter_map(|t| snapshot.source.tables.get(&t.source))
            .flat_map(|d| d.columns.iter().filter_map(|c| c.sequence.as_ref()))
            .map(|s| s.name.clone())
            .collect();
        let mut schema = schema::plan_schema(
            snapshot,
            &schema::TablesInPlan {
                created,
                copied,
                kept: tables
                    .iter()
                    .filter(|t| t.action == Action::Keep)
                    .map(|t| &t.target)
                    .collect(),
                types_created,
                schemas_created: new_schemas.clone(),
                owned_sequences,
            },
            &options.schema,
        );
        schema.skipped.extend(types_skipped);

        // A domain's NOT VALID check comes after the data, as pg_dump adds it: the copied
        // values may break it, as the source's do. First of that step, before the
        // comments that may name it.
        let mut domain_checks = Vec::new();
        for ut in snapshot.source.types.iter().filter(|ut| {
            !snapshot
                .target_types
                .contains_key(&(ut.schema.clone(), ut.name.clone()))
        }) {
            if let TypeDefinition::Domain { checks, .. } = &ut.definition {
                for c in checks.iter().filter(|c| !c.validated) {
                    domain_checks.push(Step {
                        what: format!("domain check {} of {}", c.name, ut.sql_name()),
                        sql: format!(
                            "ALTER DOMAIN {} ADD CONSTRAINT {} {}",
                            ut.sql_name(),
                            ident(&c.name),
                            c.definition
                        ),
                        needs: Vec::new(),
                    });
                }
            }
        }
        schema.after.splice(0..0, domain_checks);
        // A created table that inherits waits for its parents when they are created too;
        // parents neither copied nor on the target are missing, like a foreign key's.
        if !types.is_empty() {
            let created = types.iter().filter(|t| t.unsupported.is_none()).count();
            schema.counts.insert("types".into(), created);
        }
        let index: BTreeMap<TableName, usize> = tables
            .iter()
            .enumerate()
            .map(|(i, t)| (t.target.clone(), i))
            .collect();
        for i in 0..tables.len() {
            for parent in tables[i].requires.clone() {
                match index.get(&parent) {
                    Some(&p) if matches!(tables[p].action, Action::Create | Action::Replace) => {
                        if !tables[i].load_after.contains(&p) {
                            tables[i].load_after.push(p);
                        }
                    }
                    Some(_) => {}
                    None if snapshot.target_tables.contains_key(&parent) => {}
                    None => schema
                        .missing_parents
                        .entry(tables[i].target.clone())
                        .or_default()
                        .push(parent),
                }
            }
        }

        let mut prepare: Vec<String> = new_schemas
            .iter()
            .map(|s| format!("CREATE SCHEMA IF NOT EXISTS {}", ident(s)))
            .collect();
        prepare.extend(schema.create_extensions.iter().map(|s| s.sql.clone()));
        prepare.extend(schema.create_collations.iter().map(|s| s.sql.clone()));
        prepare.extend(schema.create_sequences.iter().map(|s| s.sql.clone()));
        prepare.extend(types.iter().flat_map(|t| t.sql.iter().cloned()));
        // The sequences of created tables' serial columns, before any table, as pg_dump
        // orders them: another table's default may draw from one (`LIKE … INCLUDING ALL`
        // shares it), and that table may be created first. `OWNED BY` comes with the
        // owning table. (A replaced table drops its own with it, so it creates them again
        // in its transaction.)
        for t in tables.iter_mut().filter(|t| t.action == Action::Create) {
            if let Some(c) = t.create.as_mut() {
                prepare.append(&mut c.sequences);
            }
        }
        if !schema.before.is_empty() {
            prepare.push(NO_BODY_CHECKS.to_string());
            prepare.extend(schema.before.iter().map(|s| s.sql.clone()));
        }
        // Domain checks that call functions, once the functions exist (the domains hold
        // no value yet, so they are checked at once).
        for t in snapshot.source.types.iter().filter(|t| {
            types.iter().any(|p| {
                p.unsupported.is_none() && p.name == TableName::new(&t.schema, &t.name).to_string()
            })
        }) {
            if let TypeDefinition::Domain { checks, .. } = &t.definition {
                prepare.extend(
                    checks
                        .iter()
                        .filter(|c| c.validated && c.calls_function)
                        .map(|c| {
                            format!(
                                "ALTER DOMAIN {} ADD CONSTRAINT {} {}",
                                t.sql_name(),
                                ident(&c.name),
                                c.definition
                            )
                        }),
                );
            }
        }
        Plan {
            source,
            target,
            content: options.content,
            jobs,
            prepare,
            types,
            schema,
            owner: options.schema.owner.clone(),
            whole_schemas: snapshot.whole_schemas.clone(),
            exclude_objects: options
                .schema
                .exclude_objects
                .iter()
                .map(|p| p.text.clone())
                .collect(),
            since: options.since.clone(),
            without_fks: options.schema.without_fks,
            grants: options.schema.grants,
            linked_groups,
            linked_group_keys,
            replace_groups,
            warnings: encoding_warning(snapshot, options).into_iter().collect(),
            tables,
        }
    }
}

/// A SQL_ASCII source stores whatever bytes it was given and sends them unconverted: a
/// target in a real encoding reads them as its own and refuses those that are not
/// valid there.
fn encoding_warning(snapshot: &Snapshot, options: &PlanOptions) -> Option<String> {
    (snapshot.source_encoding == "SQL_ASCII"
        && snapshot.target_encoding != "SQL_ASCII"
        && options.source_encoding.is_none())
    .then(|| {
        format!(
            "the source database is SQL_ASCII: it keeps bytes as they were given, without an \
             encoding, and sends them as they are to the {} target. Plain ASCII text copies \
             fine; other bytes (accents written by a WIN1252 or LATIN1 client) are refused \
             by the target — say what they are with --source-encoding WIN1252 (or LATIN1, …) \
             and the target converts them.",
            snapshot.target_encoding
        )
    })
}
