//! [`Plan::build`]: the plan made from the snapshot of both servers and the user's
//! choices, pass by pass.

use std::collections::BTreeSet;

use super::columns::copy_format;
use super::create::plan_create;
use super::existing::plan_existing;
use super::groups::{cycle_keys, group_linked, group_replaces, set_aside_cycle_keys};
use super::order::{order_by_foreign_keys, wait_for_created, wait_for_required};
use super::schema::{self, Skipped};
use super::split::{default_jobs, split, split_leaves, Sizes};
use super::table::base_plan;
use super::user_types::{
    domain_checks_after_data, domain_checks_calling_functions, missing_types, plan_type,
    shell_left_out,
};
use super::{
    Action, Content, Endpoint, Plan, PlanOptions, ReplaceGroup, SchemaPlan, TablePlan, TypePlan,
};
use crate::catalog::{ForeignKey, Snapshot, TableKind, TableName, UserType};
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
        let mut builder = Builder {
            chosen,
            snapshot,
            options,
            new_schemas: Vec::new(),
            types: Vec::new(),
            types_skipped: Vec::new(),
            tables: Vec::new(),
            linked_groups: Vec::new(),
            linked_group_keys: Vec::new(),
            replace_groups: Vec::new(),
            jobs: 1,
            schema: SchemaPlan::default(),
            prepare: Vec::new(),
        };
        // The passes, in the order each needs the ones before.
        builder.types();
        builder.tables();
        builder.linked_groups();
        builder.replace_groups();
        builder.load_order();
        builder.split(source.server_version);
        builder.schema();
        builder.required_tables();
        builder.prepare();
        builder.finish(source, target)
    }
}

/// The plan as it is built, pass by pass, and what the passes tell each other.
struct Builder<'a> {
    chosen: &'a [TableName],
    snapshot: &'a Snapshot,
    options: &'a PlanOptions,
    /// Schemas the target lacks, in the order first needed: created before anything.
    new_schemas: Vec<String>,
    types: Vec<TypePlan>,
    /// Types left out, named with the other skipped objects.
    types_skipped: Vec<Skipped>,
    tables: Vec<TablePlan>,
    linked_groups: Vec<Vec<usize>>,
    linked_group_keys: Vec<Vec<ForeignKey>>,
    replace_groups: Vec<ReplaceGroup>,
    jobs: usize,
    schema: SchemaPlan,
    prepare: Vec<String>,
}

impl Builder<'_> {
    /// Notes that `schema` must be created, unless the target has it.
    fn need_schema(&mut self, schema: &str) {
        let exists = self
            .snapshot
            .target_privileges
            .create_in_schema
            .contains_key(schema);
        if !exists && !self.new_schemas.iter().any(|s| s == schema) {
            self.new_schemas.push(schema.to_string());
        }
    }

    /// The types the target lacks, in creation order (dependencies first): created
    /// before the tables, or left out.
    fn types(&mut self) {
        let snapshot = self.snapshot;
        let options = &self.options.schema;
        for ut in missing_types(snapshot) {
            if let Some(skipped) = shell_left_out(ut, snapshot, options) {
                self.types_skipped.push(skipped);
                continue;
            }
            self.need_schema(&ut.schema);
            match plan_type(ut, self.chosen, snapshot, options) {
                Ok(plan) => self.types.push(plan),
                Err(skipped) => self.types_skipped.push(skipped),
            }
        }
    }

    /// Each chosen table's plan, in the order chosen: created when the target lacks it,
    /// kept by `--schema-only`, else loaded as its mode says; then its COPY format. A
    /// partition chosen along with its partitioned table comes with the table.
    fn tables(&mut self) {
        let (snapshot, options) = (self.snapshot, self.options);
        let objects = &snapshot.source_objects;
        let with_parent: BTreeSet<&TableName> = objects
            .partitions
            .iter()
            .filter(|(root, _)| self.chosen.contains(root))
            .flat_map(|(_, parts)| parts.iter().map(|p| &p.name))
            .collect();
        let chosen = self
            .chosen
            .iter()
            .filter(|name| !with_parent.contains(name))
            .filter_map(|name| snapshot.source.tables.get(name));
        for src in chosen {
            let mut plan = match snapshot.target.tables.get(&src.table.name) {
                None => plan_create(src, objects),
                Some(_) if options.content == Content::SchemaOnly => base_plan(src, Action::Keep),
                Some(tgt) => plan_existing(src, tgt, snapshot, options),
            };
            if plan.action == Action::Create {
                self.need_schema(&plan.target.schema);
            }
            let (format, note) = copy_format(&src.columns, &plan.columns);
            plan.format = format;
            plan.notes.extend(note);
            self.tables.push(plan);
        }
    }

    /// Truncated and synced tables linked by the target's foreign keys load together,
    /// and a cycle of keys among them is set aside for the load.
    fn linked_groups(&mut self) {
        let (groups, cyclic) = group_linked(&mut self.tables, &self.snapshot.target_foreign_keys);
        for (members, cyclic) in groups.iter().zip(cyclic) {
            let keys = if cyclic {
                cycle_keys(&mut self.tables, members, self.snapshot)
            } else {
                Vec::new()
            };
            set_aside_cycle_keys(&mut self.tables, members, &keys);
            self.linked_group_keys.push(keys);
        }
        self.linked_groups = groups;
    }

    /// Replaced tables that foreign keys, views or functions tie together.
    fn replace_groups(&mut self) {
        self.replace_groups = group_replaces(&mut self.tables, self.snapshot);
    }

    /// Which tables wait for which: loads into existing tables after the tables they
    /// reference, values naming relations after the tables the run creates.
    fn load_order(&mut self) {
        order_by_foreign_keys(&mut self.tables, &self.snapshot.target_foreign_keys);
        wait_for_created(&mut self.tables);
    }

    /// How many streams load at once, and which tables (or leaves) load in parts. No
    /// rows move with `--schema-only`: nothing is split.
    fn split(&mut self, source_version: i32) {
        self.jobs = (self.options.jobs)
            .unwrap_or_else(|| default_jobs(&self.tables))
            .max(1);
        if self.options.content == Content::SchemaOnly {
            return;
        }
        let sizes = Sizes::new(self.options, self.jobs, source_version);
        let snapshot = self.snapshot;
        for table in &mut self.tables {
            let Some(src) = snapshot.source.tables.get(&table.source) else {
                continue;
            };
            match snapshot.source_objects.partitions.get(&table.source) {
                Some(tree) if src.table.kind == TableKind::Partitioned => {
                    split_leaves(table, src, tree, &sizes)
                }
                _ => split(table, src, &sizes),
            }
        }
    }

    /// The objects besides the tables (see `schema.rs`), knowing which tables the run
    /// creates, copies and keeps; with the types left out, and the domains' NOT VALID
    /// checks first after the data (before the comments that may name them).
    fn schema(&mut self) {
        let snapshot = self.snapshot;
        let objects = &snapshot.source_objects;
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
            self.need_schema(s);
        }
        let mut schema =
            schema::plan_schema(snapshot, &self.tables_in_plan(), &self.options.schema);
        schema.skipped.append(&mut self.types_skipped);
        schema
            .after
            .splice(0..0, domain_checks_after_data(snapshot));
        if !self.types.is_empty() {
            let created = self
                .types
                .iter()
                .filter(|t| t.unsupported.is_none())
                .count();
            schema.counts.insert(super::ObjectKind::Type, created);
        }
        self.schema = schema;
    }

    /// What the schema planner needs to know of the tables.
    fn tables_in_plan(&self) -> schema::TablesInPlan<'_> {
        let snapshot = self.snapshot;
        let creates = || self.tables.iter().filter(|t| t.is_created());
        let mut created: BTreeSet<&TableName> = creates().map(|t| &t.target).collect();
        created.extend(creates().flat_map(|t| &t.leaves));
        for t in creates() {
            if let Some(parts) = snapshot.source_objects.partitions.get(&t.source) {
                created.extend(parts.iter().map(|p| &p.name));
            }
        }
        let mut copied: BTreeSet<&TableName> = self.tables.iter().map(|t| &t.target).collect();
        copied.extend(created.iter().copied());
        schema::TablesInPlan {
            created,
            copied,
            kept: (self.tables.iter())
                .filter(|t| t.action == Action::Keep)
                .map(|t| &t.target)
                .collect(),
            types_created: missing_types(snapshot).map(UserType::sql_name).collect(),
            schemas_created: self.new_schemas.clone(),
            owned_sequences: creates()
                .filter_map(|t| snapshot.source.tables.get(&t.source))
                .flat_map(|d| d.columns.iter().filter_map(|c| c.sequence.as_ref()))
                .map(|s| s.name.clone())
                .collect(),
        }
    }

    /// Created tables wait for the created tables they require; those missing are named
    /// with the foreign keys' missing parents.
    fn required_tables(&mut self) {
        wait_for_required(
            &mut self.tables,
            self.snapshot,
            &mut self.schema.missing_parents,
        );
    }

    /// The preparing transaction, before any table: schemas, extensions, collations,
    /// sequences, types, the created tables' serial sequences, the objects the tables
    /// need, then the domain checks that call those functions.
    fn prepare(&mut self) {
        let schema = &self.schema;
        let prepare = &mut self.prepare;
        prepare.extend(
            (self.new_schemas.iter()).map(|s| format!("CREATE SCHEMA IF NOT EXISTS {}", ident(s))),
        );
        prepare.extend(schema.create_extensions.iter().map(|s| s.sql.clone()));
        prepare.extend(schema.create_collations.iter().map(|s| s.sql.clone()));
        prepare.extend(schema.create_sequences.iter().map(|s| s.sql.clone()));
        prepare.extend(self.types.iter().flat_map(|t| t.sql.iter().cloned()));
        // The sequences of created tables' serial columns, before any table, as pg_dump
        // orders them: another table's default may draw from one (`LIKE … INCLUDING ALL`
        // shares it), and that table may be created first. `OWNED BY` comes with the
        // owning table. (A replaced table drops its own with it, so it creates them again
        // in its transaction.)
        for t in self
            .tables
            .iter_mut()
            .filter(|t| t.action == Action::Create)
        {
            if let Some(c) = t.create.as_mut() {
                prepare.append(&mut c.sequences);
            }
        }
        if !schema.before.is_empty() {
            prepare.push(NO_BODY_CHECKS.to_string());
            prepare.extend(schema.before.iter().map(|s| s.sql.clone()));
        }
        prepare.extend(domain_checks_calling_functions(self.snapshot, &self.types));
    }

    /// The plan, with the settings the run keeps.
    fn finish(self, source: Endpoint, target: Endpoint) -> Plan {
        let options = self.options;
        Plan {
            source,
            target,
            content: options.content,
            jobs: self.jobs,
            prepare: self.prepare,
            types: self.types,
            schema: self.schema,
            owner: options.schema.owner.clone(),
            whole_schemas: self.snapshot.whole_schemas.clone(),
            exclude_objects: (options.schema.exclude_objects.iter())
                .map(|p| p.text.clone())
                .collect(),
            since: options.since.clone(),
            without_fks: options.schema.without_fks,
            grants: options.schema.grants,
            linked_groups: self.linked_groups,
            linked_group_keys: self.linked_group_keys,
            replace_groups: self.replace_groups,
            warnings: encoding_warning(self.snapshot, options)
                .into_iter()
                .collect(),
            tables: self.tables,
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
