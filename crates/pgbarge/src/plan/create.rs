//! The plan of a table created on the target from the source's definition: a table the
//! target lacks, or one `--mode replace` drops and creates again.

use super::columns;
use super::ddl::{
    IdentityDdl, PartitionDdl, SequenceParametersDdl, TableObjectDdl, TableSettingDdl,
};
use super::table::{base_plan, sequence_plans, PARTITIONED_NOTE};
use super::{Action, CreateSpec, PartitionStep, SequencePlan, TablePlan};
use crate::catalog::{Column, Partition, SchemaObjects, TableDetail, TableName, TableObjectKind};
use crate::quote::ident;

/// The plan of `src` created on the target as the source defines it: its columns,
/// serial sequences, partitions, constraints, indexes and column settings.
pub(super) fn plan_create(src: &TableDetail, objects: &SchemaObjects) -> TablePlan {
    let mut table = NewTable {
        src,
        objects,
        name: &src.table.name,
        plan: base_plan(src, Action::Create),
        spec: CreateSpec::of(src, objects),
    };
    table.requires();
    table.columns();
    table.partitions();
    table.own_objects();
    table.properties();
    table.plan.create = Some(table.spec);
    table.plan
}

impl CreateSpec {
    /// The table as the source declares it, before its columns, partitions and objects
    /// are added.
    fn of(src: &TableDetail, objects: &SchemaObjects) -> CreateSpec {
        CreateSpec {
            sequences: Vec::new(),
            columns: Vec::new(),
            owned_by: Vec::new(),
            primary_key: src
                .primary_key
                .as_ref()
                .map(|pk| (pk.name.clone(), pk.definition.clone())),
            partition_by: objects.partition_keys.get(&src.table.name).cloned(),
            partitions: Vec::new(),
            checks: Vec::new(),
            unlogged: src.table.unlogged,
            options: src.table.options.clone(),
            inherits: src.inherits.clone(),
            column_options: Vec::new(),
            of_type: src.table.of_type.clone(),
            typed_options: src.columns.iter().filter_map(typed_option).collect(),
        }
    }
}

/// A typed table's column options (its `WITH OPTIONS` clause): its default and NOT NULL.
fn typed_option(c: &Column) -> Option<(String, String)> {
    let mut clause = String::new();
    if let (Some(d), false) = (&c.default, c.generated) {
        clause.push_str(&format!(" DEFAULT {}", d.expr));
    }
    if c.not_null {
        clause.push_str(" NOT NULL");
    }
    (!clause.is_empty()).then(|| (c.name.clone(), clause))
}

/// A created table's plan as it is built, pass by pass.
struct NewTable<'a> {
    src: &'a TableDetail,
    objects: &'a SchemaObjects,
    name: &'a TableName,
    plan: TablePlan,
    spec: CreateSpec,
}

impl NewTable<'_> {
    /// Tables that must exist before it: its INHERITS parents, and the tables whose row
    /// type a column has.
    fn requires(&mut self) {
        self.plan.requires = self.src.inherits.clone();
        for t in self
            .src
            .columns
            .iter()
            .filter_map(|c| c.row_type_of.as_ref())
        {
            if t != self.name && !self.plan.requires.contains(t) {
                self.plan.requires.push(t.clone());
            }
        }
    }

    /// Column definitions, the serial sequences that come along, and every column not
    /// generated copied as it is.
    fn columns(&mut self) {
        let src = self.src;
        for col in &src.columns {
            let serial = col.sequence.iter().filter(|s| !s.identity);
            for seq in serial.chain(&col.leftover_sequences) {
                // A serial column's sequence (or one an identity column still owns) comes
                // along, created before the table.
                self.spec
                    .sequences
                    .push(seq.parameters.create_sql(&seq.name));
                self.spec
                    .owned_by
                    .push((seq.name.clone(), col.name.clone()));
            }
            // An inherited column comes with the parent (INHERITS); declaring it again
            // would only merge it.
            if !col.inherited || src.inherits.is_empty() {
                self.spec.columns.push(column_ddl(col));
            }
            if !col.generated {
                self.plan.columns.push(columns::identical(col));
            }
        }
        self.plan.sequences = sequence_plans(src)
            .into_iter()
            .map(|s| SequencePlan { created: true, ..s })
            .collect();
    }

    /// A partitioned table's partitions, parents first; default partitions after their
    /// siblings, so that attaching a loaded sibling never scans a loaded default
    /// partition for its rows. Leaves are loaded directly.
    fn partitions(&mut self) {
        let Some(parts) = self.objects.partitions.get(self.name) else {
            return;
        };
        let depth = |p: &Partition| {
            std::iter::successors(Some(&p.parent), |t| {
                parts.iter().find(|q| &q.name == *t).map(|q| &q.parent)
            })
            .count()
        };
        let mut ordered: Vec<&Partition> = parts.iter().collect();
        ordered.sort_by_key(|p| (depth(p), p.bound == "DEFAULT"));
        for p in ordered {
            if p.partition_key.is_none() {
                self.plan.leaves.push(p.name.clone());
                self.spec.partitions.push(PartitionStep::Leaf {
                    name: p.name.clone(),
                    create: p.create_sql(),
                });
            } else {
                self.spec
                    .partitions
                    .extend(p.create_sql().into_iter().map(PartitionStep::Sql));
            }
        }
        self.plan.notes.push(format!(
            "{PARTITIONED_NOTE} {} partitions created, rows loaded into each leaf directly",
            parts.len()
        ));
    }

    /// The table's own constraints and indexes, and its partitions': checks on the empty
    /// table, keys and indexes right after its rows; the rest waits for every table.
    fn own_objects(&mut self) {
        let (objects, name) = (self.objects, self.name);
        for o in objects
            .table_objects
            .iter()
            .filter(|o| in_tree(objects, name, &o.table))
        {
            let add = o.add_constraint_sql();
            match o.kind {
                // NOT VALID: rows on the source break it, so it is added after the data
                // (with the foreign keys), as pg_dump does.
                TableObjectKind::Check if !o.validated => {}
                // Calls a function that takes a table's row type, created after the
                // tables: added after the data, with it.
                TableObjectKind::Check if objects.check_waits_for_functions(o) => {}
                TableObjectKind::Check if &o.table == self.name => self
                    .spec
                    .checks
                    .push((o.name.clone(), o.definition.clone())),
                TableObjectKind::Check => self.spec.partitions.push(PartitionStep::Sql(add)),
                TableObjectKind::PrimaryKey
                | TableObjectKind::Unique
                | TableObjectKind::Exclusion => self.plan.after_data.push(add),
                // On a partitioned table pg_get_indexdef says `ON ONLY`, which would leave
                // the index invalid with no partition indexes: created on the whole tree.
                // (pg_get_indexdef prints ONLY for partitioned tables alone, at any
                // level.) One that is invalid on the source (built ON ONLY, its
                // partitions' indexes never attached) stays so.
                TableObjectKind::Index if o.validated => self
                    .plan
                    .after_data
                    .push(o.definition.replacen(" ON ONLY ", " ON ", 1)),
                TableObjectKind::Index => self.plan.after_data.push(o.definition.clone()),
                // Foreign keys, triggers and rules wait until every table is loaded.
                TableObjectKind::ForeignKey | TableObjectKind::Trigger | TableObjectKind::Rule => {}
            }
        }
    }

    /// Column settings (storage, compression, statistics) and table properties: the
    /// table's own columns are set on the empty table, before the rows.
    fn properties(&mut self) {
        let (objects, name) = (self.objects, self.name);
        for p in objects
            .table_properties
            .iter()
            .filter(|p| in_tree(objects, name, &p.table))
        {
            match p.setting.column_clause() {
                Some((column, clause)) if p.table == *self.name => {
                    self.spec.column_options.push((column.to_string(), clause))
                }
                Some(_) => self
                    .spec
                    .partitions
                    .push(PartitionStep::Sql(p.setting.sql(&p.table))),
                None => self.plan.after_data.push(p.setting.sql(&p.table)),
            }
        }
    }
}

/// Whether `t` is table `name` or one of its partitions.
fn in_tree(objects: &SchemaObjects, name: &TableName, t: &TableName) -> bool {
    t == name
        || objects
            .partitions
            .get(name)
            .is_some_and(|ps| ps.iter().any(|p| &p.name == t))
}

/// A column's definition in `CREATE TABLE`: type, collation, generation or identity (with
/// its sequence's options) or default, NOT NULL.
fn column_ddl(col: &Column) -> String {
    let mut def = format!("{} {}", ident(&col.name), col.ty.sql);
    if let Some(coll) = &col.collation {
        def.push_str(&format!(" COLLATE {coll}"));
    }
    match (&col.default, col.generated, col.identity) {
        (Some(d), true, _) => def.push_str(&format!(" GENERATED ALWAYS AS ({}) STORED", d.expr)),
        (_, _, Some(identity)) => {
            def.push(' ');
            def.push_str(identity.clause());
            // The identity's sequence as on the source: name, start, step, bounds.
            if let Some(s) = &col.sequence {
                def.push_str(&format!(
                    " (SEQUENCE NAME {} {})",
                    s.name.sql(),
                    s.parameters.options()
                ));
            }
        }
        // Sequences and functions a default uses are created before the table.
        (Some(d), false, None) => def.push_str(&format!(" DEFAULT {}", d.expr)),
        (None, _, None) => {}
    }
    if col.not_null {
        def.push_str(" NOT NULL");
    }
    def
}
