//! The plan as units of work: what the copy stage runs, the renderer prints and the
//! ledger records.
//!
//! A unit is one target transaction: a stable id (from table names, so the same run
//! gives the same ids), the units it waits for, and its transaction as typed operations.
//! This is the one place a transaction is put together; the scheduler runs units, the
//! `--dry-run --verbose` script prints them, and a resumed run replays them as they were
//! saved in the ledger, skipping the ones already committed.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::ddl::{DependentRoutineDdl, DependentViewDdl, TableNameDdl};
use super::SourceRead;
use super::{Action, Content, CopyFormat, Endpoint, Plan, SequencePlan, SequenceValue, Step};
use super::{TablePlan, NO_BODY_CHECKS};
use crate::catalog::TableName;
use crate::quote::ident;

/// The version of [`Work`]'s serialised form, as stored in the ledger: a run saved by
/// another version is not resumed.
pub const WORK_FORMAT: u32 = 2;

/// A unit's stable name, stored in the ledger as the text it shows as: `prepare`,
/// `table public.t`, `part public.t 3`, `leaf public.t_1`, `finish public.t`,
/// `group public.a`, `post-data`, `post-data object 7`.
///
/// Tables are held as shown (`public.orders`, `"Sales Dept".lines`), not as a
/// [`TableName`]: that text is what the ledger keys a unit by, and nothing needs it
/// split back into a schema and a name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum UnitId {
    /// The run's first unit: schemas, types, sequences, functions, staging tables.
    Prepare,
    /// A table loaded whole.
    Table(String),
    /// Block range `index` of a split table, or of a leaf loaded apart.
    Part { table: String, index: usize },
    /// A leaf partition loaded whole into its staging table.
    Leaf(String),
    /// A split table's (or a partitioned table's) last step.
    Finish(String),
    /// Tables loaded together, named after their first member.
    Group(String),
    /// Everything made after every table.
    PostData,
    /// The record of object `k` of the post-data unit, created on its own when a failed
    /// table blocked that unit (see the copy stage's salvage).
    PostDataObject(usize),
}

impl fmt::Display for UnitId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UnitId::Prepare => f.write_str(PREPARE),
            UnitId::Table(t) => write!(f, "table {t}"),
            UnitId::Part { table, index } => write!(f, "part {table} {index}"),
            UnitId::Leaf(t) => write!(f, "leaf {t}"),
            UnitId::Finish(t) => write!(f, "finish {t}"),
            UnitId::Group(t) => write!(f, "group {t}"),
            UnitId::PostData => f.write_str(POST_DATA),
            UnitId::PostDataObject(k) => write!(f, "{POST_DATA} object {k}"),
        }
    }
}

/// A unit id read back (from the ledger) that no unit of this version is named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownUnitId(pub String);

impl fmt::Display for UnknownUnitId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown unit {:?}", self.0)
    }
}

impl std::error::Error for UnknownUnitId {}

impl FromStr for UnitId {
    type Err = UnknownUnitId;

    /// The id that shows as `text`, exactly: text that merely parses (`part t 03`)
    /// would name a unit the ledger never recorded.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let id = match text.split_once(' ') {
            None if text == PREPARE => Some(UnitId::Prepare),
            None if text == POST_DATA => Some(UnitId::PostData),
            Some(("table", t)) => Some(UnitId::Table(t.into())),
            Some(("leaf", t)) => Some(UnitId::Leaf(t.into())),
            Some(("finish", t)) => Some(UnitId::Finish(t.into())),
            Some(("group", t)) => Some(UnitId::Group(t.into())),
            // The index follows the last space: a shown name ends in a name character
            // or a quote.
            Some(("part", rest)) => rest.rsplit_once(' ').and_then(|(table, index)| {
                Some(UnitId::Part {
                    table: table.into(),
                    index: index.parse().ok()?,
                })
            }),
            Some((POST_DATA, rest)) => rest
                .strip_prefix("object ")
                .and_then(|k| k.parse().ok())
                .map(UnitId::PostDataObject),
            _ => None,
        };
        id.filter(|id| id.to_string() == text)
            .ok_or_else(|| UnknownUnitId(text.into()))
    }
}

impl From<UnitId> for String {
    fn from(id: UnitId) -> String {
        id.to_string()
    }
}

impl TryFrom<String> for UnitId {
    type Error = UnknownUnitId;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

/// What a unit does, for scheduling and reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UnitKind {
    /// Schemas, types, sequences, functions and staging tables, before any data.
    Prepare,
    /// A whole table in one transaction.
    Table,
    /// Tables emptied by one TRUNCATE and loaded, parents first, in one transaction.
    Group,
    /// One block range of a split table, into its staging table.
    Part,
    /// A split table's key and indexes, then its staging table takes the real name.
    Finish,
    /// Foreign keys, views, triggers, comments, sequence values: after every table.
    PostData,
}

/// One operation of a unit's transaction.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "op")]
pub enum Op {
    /// A statement on the target.
    Sql { sql: String },
    /// Rows streamed: `read` from the source (a `COPY … TO STDOUT` made where it runs,
    /// never stored as SQL) into `into` (COPY … FROM STDIN) on the target. `table`
    /// indexes [`Work::tables`], for progress.
    Copy {
        table: usize,
        read: SourceRead,
        into: String,
    },
    /// A split table's staging table takes the real name.
    Rename { from: TableName, to: String },
    /// Sets the target's serial/identity sequences of `table` from the source's state,
    /// read when the unit runs (after the rows it covers were numbered).
    SyncSequences {
        table: TableName,
        sequences: Vec<SequencePlan>,
    },
    /// An object created after the data (a foreign key, view, trigger, …), with the
    /// tables it needs: after a failed table, the objects of the others still are made.
    Object { step: Step },
    /// `setval` of the sequences created by the run, to the source's values now.
    SequenceValues { sequences: Vec<SequenceValue> },
    /// A synced table: how it differs is found by hashing on both servers (the source in
    /// the run's snapshot), then the source rows that differ stream into its staging
    /// table. The target rows only it has are deleted here (`delete_now`), or by a later
    /// [`Op::SyncDelete`] of the same unit. `table` indexes [`Work::tables`].
    SyncStage {
        table: usize,
        spec: Box<super::SyncSpec>,
        delete_now: bool,
    },
    /// The deletions the unit's [`Op::SyncStage`] of `table` found.
    SyncDelete { table: usize },
    /// The rows the unit's [`Op::SyncStage`] of `table` staged, merged into it.
    SyncApply { table: usize },
}

impl Op {
    fn sql(sql: impl Into<String>) -> Op {
        Op::Sql { sql: sql.into() }
    }

    /// The statement as it runs, for the operations that are plain SQL.
    pub fn statement(&self) -> Option<String> {
        match self {
            Op::Sql { sql } => Some(sql.clone()),
            Op::Object { step } => Some(step.sql.clone()),
            Op::Rename { from, to } => Some(format!(
                "ALTER TABLE {} RENAME TO {}",
                from.sql(),
                ident(to)
            )),
            Op::Copy { .. }
            | Op::SyncSequences { .. }
            | Op::SequenceValues { .. }
            | Op::SyncStage { .. }
            | Op::SyncDelete { .. }
            | Op::SyncApply { .. } => None,
        }
    }
}

/// One target transaction.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Unit {
    pub id: UnitId,
    pub kind: UnitKind,
    /// What it is, for people (`public.orders: part 3 of 12`).
    pub title: String,
    /// Units that must be committed before this one starts.
    pub waits_for: Vec<UnitId>,
    /// Tables (indexes into [`Work::tables`]) that are complete once this unit commits.
    pub completes: Vec<usize>,
    pub ops: Vec<Op>,
    /// Source bytes it moves, estimated: the biggest units start first.
    pub estimated_bytes: i64,
}

impl Unit {
    /// Whether the unit streams rows.
    pub fn moves_rows(&self) -> bool {
        self.ops
            .iter()
            .any(|op| matches!(op, Op::Copy { .. } | Op::SyncStage { .. }))
    }
}

/// A table of the run, as reports and progress show it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkTable {
    pub source: TableName,
    pub target: TableName,
    pub action: Action,
    pub format: CopyFormat,
    /// About what COPY moves (heap and TOAST on the source): progress is measured in
    /// the same unit as the bytes streamed.
    pub estimated_bytes: i64,
    /// The staging table a split table's parts load.
    pub staging: Option<TableName>,
    /// The staging tables a partitioned table's leaves load, when they load apart.
    #[serde(default)]
    pub leaf_staging: Vec<TableName>,
}

/// Everything the copy stage runs: the plan as units, self-contained so that it can be
/// stored with the run in the ledger and replayed by `--resume`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Work {
    pub format: u32,
    pub source: Endpoint,
    pub target: Endpoint,
    pub content: Content,
    pub jobs: usize,
    /// Objects created besides the tables, by kind, for the report.
    pub counts: BTreeMap<super::ObjectKind, usize>,
    /// Objects left out because they cannot be created on the target (and nothing copied
    /// needs them), with the reason, for the report.
    #[serde(default)]
    pub skipped: Vec<super::Skipped>,
    pub tables: Vec<WorkTable>,
    pub units: Vec<Unit>,
}

impl Work {
    /// The unit that completes table `i`, if any.
    pub fn completing(&self, i: usize) -> Option<&Unit> {
        self.units.iter().find(|u| u.completes.contains(&i))
    }

    /// Staging tables of split tables.
    pub fn staging_tables(&self) -> impl Iterator<Item = &TableName> {
        self.tables
            .iter()
            .flat_map(|t| t.staging.iter().chain(&t.leaf_staging))
    }
}

const PREPARE: &str = "prepare";
const IMMEDIATE: &str = "SET CONSTRAINTS ALL IMMEDIATE";
const POST_DATA: &str = "post-data";

impl Plan {
    /// The plan's units of work, in the order the plan lists them (the scheduler starts
    /// the biggest ready unit first).
    pub fn work(&self) -> Work {
        Builder::new(self).build()
    }
}

struct Builder<'a> {
    plan: &'a Plan,
    units: Vec<Unit>,
    /// The unit each table's completion waits on, by table index.
    done_by: Vec<Option<UnitId>>,
}

impl<'a> Builder<'a> {
    fn new(plan: &'a Plan) -> Self {
        let done_by = plan
            .tables
            .iter()
            .enumerate()
            .map(|(i, t)| {
                if t.action == Action::Keep {
                    None
                } else if let Some(g) = t.linked_group {
                    Some(group_id(&plan.tables[plan.linked_groups[g][0]]))
                } else if let Some(g) = t.replace_group {
                    Some(group_id(&plan.tables[plan.replace_groups[g].members[0]]))
                } else if !t.parts.is_empty() || !t.leaf_loads.is_empty() {
                    Some(UnitId::Finish(plan.tables[i].target.to_string()))
                } else {
                    Some(UnitId::Table(t.target.to_string()))
                }
            })
            .collect();
        Builder {
            plan,
            units: Vec::new(),
            done_by,
        }
    }

    fn build(mut self) -> Work {
        let plan = self.plan;
        self.prepare();
        for (g, members) in plan.linked_groups.iter().enumerate() {
            self.group(g, members);
        }
        for g in 0..plan.replace_groups.len() {
            self.replace_group(g);
        }
        for (i, t) in plan.tables.iter().enumerate() {
            if t.action == Action::Keep || t.linked_group.is_some() || t.replace_group.is_some() {
                continue;
            }
            if !t.leaf_loads.is_empty() {
                self.leaves(i);
            } else if t.parts.is_empty() {
                self.table(i);
            } else {
                self.split(i);
            }
        }
        self.post_data();
        Work {
            format: WORK_FORMAT,
            source: plan.source.clone(),
            target: plan.target.clone(),
            content: plan.content,
            jobs: plan.jobs,
            counts: plan.schema.counts.clone(),
            skipped: plan.left_out().cloned().collect(),
            tables: plan
                .tables
                .iter()
                .map(|t| WorkTable {
                    source: t.source.clone(),
                    target: t.target.clone(),
                    action: t.action,
                    format: t.format,
                    estimated_bytes: t.data_bytes,
                    staging: t.staging.clone().filter(|_| !t.parts.is_empty()),
                    leaf_staging: t.leaf_loads.iter().map(|l| l.staging.clone()).collect(),
                })
                .collect(),
            units: self.units,
        }
    }

    fn has_prepare(&self) -> bool {
        self.units.iter().any(|u| u.kind == UnitKind::Prepare)
    }

    /// Every data unit waits for the preparing unit and for the tables the plan orders
    /// this one after (foreign-key parents on the target, INHERITS parents, …).
    fn waits(&self, tables: &[usize]) -> Vec<UnitId> {
        let mut waits: Vec<UnitId> = Vec::new();
        if self.has_prepare() {
            waits.push(UnitId::Prepare);
        }
        for &i in tables {
            for &p in &self.plan.tables[i].load_after {
                if tables.contains(&p) {
                    continue;
                }
                if let Some(id) = &self.done_by[p] {
                    if !waits.contains(id) {
                        waits.push(id.clone());
                    }
                }
            }
        }
        waits
    }

    fn prepare(&mut self) {
        let mut ops: Vec<Op> = self.plan.prepare.iter().map(Op::sql).collect();
        for t in &self.plan.tables {
            if let (Some(staging), false) = (&t.staging, t.parts.is_empty()) {
                // A staging table of this name is a leftover of an earlier run that was
                // never resumed nor cleaned (its record is gone): it holds nothing this
                // run can use — if it is pgbarge's at all.
                ops.push(Op::sql(super::drop_leftover_staging_sql(staging)));
                ops.extend(t.setup_sql(staging).into_iter().map(Op::sql));
                ops.push(Op::sql(super::staging_marker_sql(staging)));
            }
            for leaf in &t.leaf_loads {
                ops.push(Op::sql(super::drop_leftover_staging_sql(&leaf.staging)));
                ops.push(Op::sql(&leaf.create));
                ops.push(Op::sql(super::staging_marker_sql(&leaf.staging)));
            }
        }
        if ops.is_empty() {
            return;
        }
        self.units.push(Unit {
            id: UnitId::Prepare,
            kind: UnitKind::Prepare,
            title: "first: schemas, types, sequences, functions".into(),
            waits_for: Vec::new(),
            completes: Vec::new(),
            ops,
            estimated_bytes: 0,
        });
    }

    /// The rows of table `i` into `into`: one COPY, one per leaf partition, or none for
    /// a partitioned table without partitions.
    fn copies(&self, i: usize, into: &TableName) -> Vec<Op> {
        let t = &self.plan.tables[i];
        if self.plan.content == Content::SchemaOnly {
            return Vec::new();
        }
        if !t.leaves.is_empty() {
            return t
                .leaves
                .iter()
                .map(|leaf| Op::Copy {
                    table: i,
                    read: t.range_read(leaf, None),
                    into: t.copy_in_sql(leaf),
                })
                .collect();
        }
        if t.create.as_ref().is_some_and(|c| c.partition_by.is_some()) {
            return Vec::new();
        }
        vec![Op::Copy {
            table: i,
            read: t.read(None),
            into: t.copy_in_sql(&t.load_into(into)),
        }]
    }

    fn sync_sequences(&self, t: &TablePlan) -> Option<Op> {
        (self.plan.content != Content::SchemaOnly && !t.sequences.is_empty()).then(|| {
            Op::SyncSequences {
                table: t.target.clone(),
                sequences: t.sequences.clone(),
            }
        })
    }

    /// Table `i` loaded whole in the current transaction: set up (create or empty), rows,
    /// key and what was set aside, indexes, sequences.
    fn load_ops(&self, i: usize) -> Vec<Op> {
        let t = &self.plan.tables[i];
        let mut ops: Vec<Op> = t.setup_sql(&t.target).into_iter().map(Op::sql).collect();
        match t.sync_spec(&self.plan.source) {
            // Alone, a synced table deletes first: a row inserted with the unique value
            // of one deleted does not collide with it.
            Some(spec) if self.plan.content != Content::SchemaOnly => {
                ops.push(Op::SyncStage {
                    table: i,
                    spec: Box::new(spec),
                    delete_now: true,
                });
                ops.push(Op::SyncApply { table: i });
            }
            _ => ops.extend(self.copies(i, &t.target)),
        }
        ops.extend(self.load_tail(i));
        ops
    }

    /// What follows table `i`'s rows in its transaction: the key and what was set aside,
    /// indexes, sequences.
    fn load_tail(&self, i: usize) -> Vec<Op> {
        let t = &self.plan.tables[i];
        let mut ops = Vec::new();
        if matches!(
            t.action,
            Action::Load | Action::Append | Action::Truncate | Action::Upsert | Action::Sync
        ) {
            // Deferred foreign-key checks of the loaded rows run now: ALTER TABLE (the
            // key and triggers put back) is refused while such events are pending.
            ops.push(Op::sql(IMMEDIATE));
        }
        ops.extend(t.finish_sql(&t.target).into_iter().map(Op::sql));
        ops.extend(t.after_data.iter().map(Op::sql));
        ops.extend(self.sync_sequences(t));
        ops.extend(t.restore_sql(&t.target).map(Op::sql));
        ops
    }

    fn table(&mut self, i: usize) {
        let t = &self.plan.tables[i];
        let ops = self.load_ops(i);
        self.units.push(Unit {
            id: UnitId::Table(t.target.to_string()),
            kind: UnitKind::Table,
            title: t.target.to_string(),
            waits_for: self.waits(&[i]),
            completes: vec![i],
            ops,
            estimated_bytes: t.estimated_bytes,
        });
    }

    fn split(&mut self, i: usize) {
        let t = &self.plan.tables[i];
        let Some(staging) = &t.staging else {
            // Parts without a staging table cannot happen (see `split`): load it whole.
            return self.table(i);
        };
        let waits = self.waits(&[i]);
        let each = t.estimated_bytes / t.parts.len() as i64;
        let mut part_ids = Vec::new();
        for p in &t.parts {
            let id = UnitId::Part {
                table: t.target.to_string(),
                index: p.index,
            };
            part_ids.push(id.clone());
            self.units.push(Unit {
                id,
                kind: UnitKind::Part,
                title: format!("{}: part {} of {}", t.target, p.index + 1, t.parts.len()),
                waits_for: waits.clone(),
                completes: Vec::new(),
                ops: vec![Op::Copy {
                    table: i,
                    read: t.read(Some(p)),
                    into: t.copy_in_sql(staging),
                }],
                estimated_bytes: each,
            });
        }
        let mut ops: Vec<Op> = t.finish_sql(staging).into_iter().map(Op::sql).collect();
        ops.push(Op::sql(super::staging_unmark_sql(staging)));
        ops.push(Op::Rename {
            from: staging.clone(),
            to: t.target.name.clone(),
        });
        ops.extend(t.after_data.iter().map(Op::sql));
        ops.extend(self.sync_sequences(t));
        self.units.push(Unit {
            id: UnitId::Finish(t.target.to_string()),
            kind: UnitKind::Finish,
            title: format!(
                "{}: key and indexes on the staging table its {} parts loaded, then it takes \
                 the real name",
                t.target,
                t.parts.len()
            ),
            waits_for: part_ids,
            completes: vec![i],
            ops,
            estimated_bytes: 0,
        });
    }

    /// A partitioned table whose leaves load apart: each leaf (or each block range of a
    /// big one) into its staging table, then one transaction creates the table, attaches
    /// the leaves under their names and builds the key and indexes.
    fn leaves(&mut self, i: usize) {
        let t = &self.plan.tables[i];
        let waits = self.waits(&[i]);
        let mut loads = Vec::new();
        for leaf in &t.leaf_loads {
            let into = t.copy_in_sql(&leaf.staging);
            if leaf.parts.is_empty() {
                loads.push(Unit {
                    id: UnitId::Leaf(leaf.name.to_string()),
                    kind: UnitKind::Part,
                    title: format!("{}: leaf {}", t.target, leaf.name),
                    waits_for: waits.clone(),
                    completes: Vec::new(),
                    ops: vec![Op::Copy {
                        table: i,
                        read: t.range_read(&leaf.name, None),
                        into,
                    }],
                    estimated_bytes: leaf.estimated_bytes,
                });
                continue;
            }
            let each = leaf.estimated_bytes / leaf.parts.len() as i64;
            for p in &leaf.parts {
                loads.push(Unit {
                    id: UnitId::Part {
                        table: leaf.name.to_string(),
                        index: p.index,
                    },
                    kind: UnitKind::Part,
                    title: format!(
                        "{}: leaf {}, part {} of {}",
                        t.target,
                        leaf.name,
                        p.index + 1,
                        leaf.parts.len()
                    ),
                    waits_for: waits.clone(),
                    completes: Vec::new(),
                    ops: vec![Op::Copy {
                        table: i,
                        read: t.range_read(&leaf.name, Some(p)),
                        into: into.clone(),
                    }],
                    estimated_bytes: each,
                });
            }
        }
        let mut ops: Vec<Op> = t.setup_sql(&t.target).into_iter().map(Op::sql).collect();
        ops.extend(t.finish_sql(&t.target).into_iter().map(Op::sql));
        ops.extend(t.after_data.iter().map(Op::sql));
        ops.extend(self.sync_sequences(t));
        let finish = Unit {
            id: UnitId::Finish(t.target.to_string()),
            kind: UnitKind::Finish,
            title: format!(
                "{}: created, its {} leaves attached, then its key and indexes",
                t.target,
                t.leaf_loads.len()
            ),
            waits_for: loads.iter().map(|u| u.id.clone()).collect(),
            completes: vec![i],
            ops,
            estimated_bytes: 0,
        };
        self.units.extend(loads);
        self.units.push(finish);
    }

    /// Replaced tables with what depends on them, in one transaction: the views and the
    /// other tables' keys go, the tables go together, each is created and loaded, then
    /// the keys come back (checked against the new rows) and the views are created again.
    fn replace_group(&mut self, g: usize) {
        let plan = self.plan;
        let group = &plan.replace_groups[g];
        let mut ops: Vec<Op> = group
            .views
            .iter()
            .rev()
            .map(|v| Op::sql(v.drop_sql()))
            .collect();
        ops.extend(group.routines.iter().map(|r| Op::sql(r.drop_sql())));
        ops.extend(
            group
                .foreign_keys
                .iter()
                .map(|k| Op::sql(k.table.drop_constraint_sql(&k.name))),
        );
        let names: Vec<String> = group
            .members
            .iter()
            .map(|&i| plan.tables[i].target.sql())
            .collect();
        ops.push(Op::sql(format!("DROP TABLE {}", names.join(", "))));
        let mut bytes = 0;
        for &i in &group.members {
            ops.extend(self.load_ops(i));
            bytes += plan.tables[i].estimated_bytes;
        }
        ops.extend(
            group
                .foreign_keys
                .iter()
                .map(|k| Op::sql(k.table.add_constraint_sql(&k.name, &k.definition))),
        );
        if !group.routines.is_empty() {
            ops.push(Op::sql(NO_BODY_CHECKS));
            ops.extend(
                group
                    .routines
                    .iter()
                    .flat_map(|r| r.create_sql())
                    .map(Op::sql),
            );
        }
        ops.extend(group.views.iter().flat_map(|v| v.create_sql()).map(Op::sql));
        let first = &plan.tables[group.members[0]];
        self.units.push(Unit {
            id: group_id(first),
            kind: UnitKind::Group,
            title: format!(
                "{} replaced together with what depends on {}",
                crate::text::short_list(
                    &group
                        .members
                        .iter()
                        .map(|&i| &plan.tables[i].target)
                        .collect::<Vec<_>>(),
                    3
                ),
                if group.members.len() == 1 {
                    "it"
                } else {
                    "them"
                }
            ),
            waits_for: self.waits(&group.members),
            completes: group.members.clone(),
            ops,
            estimated_bytes: bytes,
        });
    }

    fn group(&mut self, g: usize, members: &[usize]) {
        let plan = self.plan;
        let names: Vec<String> = members
            .iter()
            .map(|&i| plan.tables[i].truncate_target(&plan.tables[i].target))
            .collect();
        let cycle = &plan.linked_group_keys[g];
        // Keys no load order satisfies: off for the load, back (validated) at the end.
        let mut ops: Vec<Op> = cycle
            .iter()
            .map(|k| Op::sql(k.table.drop_constraint_sql(&k.name)))
            .collect();
        let synced: Vec<(usize, super::SyncSpec)> = members
            .iter()
            .filter_map(|&i| plan.tables[i].sync_spec(&plan.source).map(|s| (i, s)))
            .collect();
        if synced.is_empty() {
            ops.push(Op::sql(format!("TRUNCATE {}", names.join(", "))));
            for &i in members {
                ops.extend(self.load_ops(i));
            }
        } else {
            // New and changed rows parents first (a child's new row needs its parent),
            // then deleted rows children first (a parent's row goes after the rows that
            // pointed at it, which the upserts may have moved).
            for &i in members {
                let t = &plan.tables[i];
                ops.extend(t.setup_sql(&t.target).into_iter().map(Op::sql));
            }
            for (i, spec) in &synced {
                ops.push(Op::SyncStage {
                    table: *i,
                    spec: Box::new(spec.clone()),
                    delete_now: false,
                });
            }
            ops.extend(synced.iter().map(|(i, _)| Op::SyncApply { table: *i }));
            ops.extend(
                synced
                    .iter()
                    .rev()
                    .map(|(i, _)| Op::SyncDelete { table: *i }),
            );
            for &i in members {
                ops.extend(self.load_tail(i));
            }
        }
        ops.extend(
            cycle
                .iter()
                .map(|k| Op::sql(k.table.add_constraint_sql(&k.name, &k.definition))),
        );
        let first = &plan.tables[members[0]];
        self.units.push(Unit {
            id: group_id(first),
            kind: UnitKind::Group,
            title: format!(
                "{} group {} ({} tables), parents first",
                if synced.is_empty() {
                    "truncate"
                } else {
                    "sync"
                },
                g + 1,
                members.len()
            ),
            waits_for: self.waits(members),
            completes: members.to_vec(),
            ops,
            estimated_bytes: members
                .iter()
                .map(|&i| plan.tables[i].estimated_bytes)
                .sum(),
        });
    }

    fn post_data(&mut self) {
        let plan = self.plan;
        let mut ops: Vec<Op> = plan
            .schema
            .after
            .iter()
            .map(|step| Op::Object { step: step.clone() })
            .collect();
        let readable: Vec<SequenceValue> = plan
            .schema
            .sequence_values
            .iter()
            .filter(|s| s.readable)
            .cloned()
            .collect();
        if plan.content != Content::SchemaOnly && !readable.is_empty() {
            ops.push(Op::SequenceValues {
                sequences: readable,
            });
        }
        if ops.is_empty() {
            return;
        }
        // Late functions and aggregates are created here, bodies unchecked as in prepare.
        ops.insert(0, Op::sql(NO_BODY_CHECKS));
        let waits_for = self.units.iter().map(|u| u.id.clone()).collect();
        self.units.push(Unit {
            id: UnitId::PostData,
            kind: UnitKind::PostData,
            title: "after every table is loaded: foreign keys, views, triggers, comments, \
                    sequence values"
                .into(),
            waits_for,
            completes: Vec::new(),
            ops,
            estimated_bytes: 0,
        });
    }
}

fn group_id(first: &TablePlan) -> UnitId {
    UnitId::Group(first.target.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::TableKind;
    use crate::plan::fixtures::{plan, table};
    use crate::plan::Part;

    #[test]
    fn a_replace_group_drops_and_recreates_what_depends_on_it_in_one_transaction() {
        use crate::catalog::{AclEntry, DependentView, ForeignKey};
        let mut tables = vec![
            table("actor", Action::Replace, 0),
            table("film_actor", Action::Replace, 0),
            table("other", Action::Replace, 0),
        ];
        tables[0].replace_group = Some(0);
        tables[1].replace_group = Some(0);
        let mut p = plan(tables);
        let view = |name: &str, reads: &str| DependentView {
            view: crate::catalog::View {
                name: TableName::new("public", name),
                materialized: false,
                query: format!(" SELECT * FROM {reads};"),
                populated: true,
                options: Vec::new(),
                reads: Vec::new(),
                indexes: Vec::new(),
                rules_and_triggers: Vec::new(),
                calls: Vec::new(),
                compression: Vec::new(),
            },
            reads: vec![TableName::new("public", "actor")],
            owner: "app".into(),
            may_drop: true,
            owned: true,
            grants: vec![AclEntry {
                privilege: "SELECT".into(),
                grantee: None,
                grantable: false,
            }],
            comment: None,
            column_comments: Vec::new(),
        };
        p.replace_groups.push(crate::plan::ReplaceGroup {
            members: vec![0, 1],
            foreign_keys: vec![ForeignKey {
                table: TableName::new("public", "kept"),
                references: TableName::new("public", "actor"),
                name: "kept_actor_fk".into(),
                definition: "FOREIGN KEY (a) REFERENCES actor(id)".into(),
            }],
            // In creation order: the second reads the first.
            views: vec![view("v1", "actor"), view("v2", "v1")],
            routines: Vec::new(),
        });
        let work = p.work();
        let group = unit(&work, "group public.actor");
        assert_eq!(group.completes, vec![0, 1]);
        let sql: Vec<String> = group.ops.iter().filter_map(Op::statement).collect();
        let at = |prefix: &str| {
            sql.iter()
                .position(|s| s.starts_with(prefix))
                .unwrap_or_else(|| panic!("no {prefix}… in {sql:#?}"))
        };
        assert!(at("DROP VIEW \"public\".\"v2\"") < at("DROP VIEW \"public\".\"v1\""));
        assert!(at("DROP VIEW \"public\".\"v1\"") < at("ALTER TABLE \"public\".\"kept\" DROP"));
        assert!(at("ALTER TABLE \"public\".\"kept\" DROP") < at("DROP TABLE"));
        assert_eq!(
            sql[at("DROP TABLE")],
            "DROP TABLE \"public\".\"actor\", \"public\".\"film_actor\"",
            "the members go in one statement, so keys among them need no CASCADE"
        );
        assert_eq!(copies(group), 2);
        assert!(at("ALTER TABLE \"public\".\"kept\" ADD") < at("CREATE VIEW \"public\".\"v1\""));
        assert!(at("CREATE VIEW \"public\".\"v1\"") < at("CREATE VIEW \"public\".\"v2\""));
        assert!(at("GRANT SELECT ON \"public\".\"v2\"") > at("CREATE VIEW \"public\".\"v2\""));
        // A replaced table nothing depends on is still its own unit, dropping itself.
        let other = unit(&work, "table public.other");
        assert!(other
            .ops
            .iter()
            .filter_map(Op::statement)
            .any(|s| s == "DROP TABLE \"public\".\"other\""));
        assert!(work
            .units
            .iter()
            .all(|u| u.id.to_string() != "table public.actor"));
    }

    #[test]
    fn leaves_load_apart_and_the_finish_attaches_them() {
        use crate::plan::{CreateSpec, LeafLoad, PartitionStep};
        let mut t = table("ev", Action::Create, 0);
        t.source_kind = TableKind::Partitioned;
        let leaf = |name: &str| TableName::new("public", name);
        t.create = Some(CreateSpec {
            sequences: Vec::new(),
            columns: vec!["\"at\" date NOT NULL".into()],
            owned_by: Vec::new(),
            primary_key: None,
            partition_by: Some("RANGE (at)".into()),
            partitions: vec![
                PartitionStep::Leaf {
                    name: leaf("ev_1"),
                    create: vec!["CREATE TABLE ev_1 PARTITION OF ev …".into()],
                },
                PartitionStep::Sql("ALTER TABLE ev_1 ADD CONSTRAINT local …".into()),
            ],
            checks: Vec::new(),
            unlogged: false,
            inherits: Vec::new(),
            column_options: Vec::new(),
            options: Vec::new(),
            of_type: None,
            typed_options: Vec::new(),
        });
        t.leaves = vec![leaf("ev_1")];
        let load = LeafLoad {
            name: leaf("ev_1"),
            staging: leaf("_pgbarge_2_ev_1"),
            create: "CREATE TABLE _pgbarge_2_ev_1 …".into(),
            attach: vec!["ALTER TABLE … RENAME TO ev_1".into(), "ATTACH ev_1".into()],
            parts: Vec::new(),
            estimated_bytes: 500,
        };
        let whole = plan(vec![t.clone()]).work();
        let one = unit(&whole, "table public.ev");
        let sql: Vec<String> = one.ops.iter().filter_map(Op::statement).collect();
        assert!(sql.contains(&"CREATE TABLE ev_1 PARTITION OF ev …".to_string()));
        assert_eq!(copies(one), 1, "without leaf loads, one transaction");

        t.leaf_loads = vec![
            load.clone(),
            LeafLoad {
                parts: vec![
                    Part {
                        index: 0,
                        first_block: 0,
                        end_block: Some(5),
                    },
                    Part {
                        index: 1,
                        first_block: 5,
                        end_block: None,
                    },
                ],
                name: leaf("ev_2"),
                staging: leaf("_pgbarge_3_ev_2"),
                ..load
            },
        ];
        let work = plan(vec![t]).work();
        let prepare: Vec<String> = unit(&work, "prepare")
            .ops
            .iter()
            .filter_map(Op::statement)
            .collect();
        assert!(prepare.contains(&"CREATE TABLE _pgbarge_2_ev_1 …".to_string()));
        let whole_leaf = unit(&work, "leaf public.ev_1");
        assert!(matches!(&whole_leaf.ops[..],
            [Op::Copy { read, into, .. }] if read.sql().starts_with("COPY \"public\".\"ev_1\"")
                && into.contains("_pgbarge_2_ev_1")));
        let part = unit(&work, "part public.ev_2 1");
        assert!(matches!(&part.ops[..], [Op::Copy { read, .. }] if read.sql().contains("ctid >=")));
        let finish = unit(&work, "finish public.ev");
        assert_eq!(
            ids(&finish.waits_for),
            vec![
                "leaf public.ev_1",
                "part public.ev_2 0",
                "part public.ev_2 1"
            ]
        );
        assert_eq!(finish.completes, vec![0]);
        assert_eq!(copies(finish), 0);
        let sql: Vec<String> = finish.ops.iter().filter_map(Op::statement).collect();
        let at = |s: &str| sql.iter().position(|x| x == s).expect(s);
        assert!(at("ATTACH ev_1") < at("ALTER TABLE ev_1 ADD CONSTRAINT local …"));
        assert!(!sql.iter().any(|s| s.contains("PARTITION OF")));
        assert_eq!(work.staging_tables().count(), 2);
    }

    fn unit<'a>(work: &'a Work, id: &str) -> &'a Unit {
        work.units
            .iter()
            .find(|u| u.id.to_string() == id)
            .unwrap_or_else(|| panic!("no unit {id}"))
    }

    /// How many COPY streams a unit runs.
    fn copies(unit: &Unit) -> usize {
        unit.ops
            .iter()
            .filter(|op| matches!(op, Op::Copy { .. }))
            .count()
    }

    fn ids(ids: &[UnitId]) -> Vec<String> {
        ids.iter().map(UnitId::to_string).collect()
    }

    #[test]
    fn the_units_hold_no_statement_for_the_source() {
        // The run is stored on the target; what is read back from there must never
        // become SQL on the source (often run as a superuser).
        let work = plan(vec![table("big", Action::Create, 2)]).work();
        let text = serde_json::to_string(&work).expect("serialises");
        assert!(!text.contains("TO STDOUT"), "{text}");
    }

    #[test]
    fn a_split_table_is_parts_then_a_finish_that_renames() {
        let work = plan(vec![
            table("big", Action::Create, 3),
            table("small", Action::Create, 0),
        ])
        .work();
        let prepare = unit(&work, "prepare");
        let statements: Vec<String> = prepare.ops.iter().filter_map(Op::statement).collect();
        let first = statements.first().map(String::as_str).unwrap_or_default();
        assert!(
            first.starts_with("DO $pgbarge$")
                && first.contains("DROP TABLE \"public\".\"_pgbarge_1_big\""),
            "a leftover staging table of that name is dropped first, if it is pgbarge's: {first}"
        );
        assert!(
            first.contains("obj_description") && first.contains("relowner"),
            "only when marked and owned by the role: {first}"
        );
        assert_eq!(
            statements.last().map(String::as_str),
            Some("COMMENT ON TABLE \"public\".\"_pgbarge_1_big\" IS 'pgbarge staging table'"),
            "the staging table is marked as pgbarge's"
        );
        for p in 0..3 {
            let part = unit(&work, &format!("part public.big {p}"));
            assert_eq!(ids(&part.waits_for), vec!["prepare"]);
            assert!(part.completes.is_empty(), "a part completes no table");
            assert!(
                matches!(&part.ops[..], [Op::Copy { into, .. }] if into.contains("_pgbarge_1_big"))
            );
        }
        let finish = unit(&work, "finish public.big");
        assert_eq!(
            ids(&finish.waits_for),
            vec![
                "part public.big 0",
                "part public.big 1",
                "part public.big 2"
            ]
        );
        assert_eq!(finish.completes, vec![0]);
        assert!(finish
            .ops
            .iter()
            .any(|op| matches!(op, Op::Rename { to, .. } if to == "big")));
        assert_eq!(unit(&work, "table public.small").completes, vec![1]);
        let post = unit(&work, "post-data");
        assert_eq!(
            post.waits_for.len(),
            work.units.len() - 1,
            "after everything"
        );
        assert_eq!(work.staging_tables().count(), 1);
    }

    #[test]
    fn a_table_waits_for_the_unit_that_completes_its_parent() {
        let mut parent = table("customers", Action::Truncate, 0);
        parent.linked_group = None;
        let mut child = table("orders", Action::Append, 0);
        child.load_after = vec![0];
        let mut p = plan(vec![parent, child]);
        p.prepare = vec!["CREATE SCHEMA IF NOT EXISTS \"s\"".into()];
        let work = p.work();
        assert_eq!(
            ids(&unit(&work, "table public.orders").waits_for),
            vec!["prepare", "table public.customers"]
        );
    }

    #[test]
    fn a_truncate_group_is_one_unit_completing_all_its_tables() {
        let mut a = table("a", Action::Truncate, 0);
        let mut b = table("b", Action::Truncate, 0);
        a.linked_group = Some(0);
        b.linked_group = Some(0);
        let mut p = plan(vec![a, b]);
        p.linked_groups = vec![vec![0, 1]];
        p.linked_group_keys = vec![Vec::new()];
        let work = p.work();
        let group = unit(&work, "group public.a");
        assert_eq!(group.completes, vec![0, 1]);
        assert_eq!(copies(group), 2);
        assert!(matches!(&group.ops[0], Op::Sql { sql } if sql.starts_with("TRUNCATE ")));
        assert_eq!(work.units.len(), 2, "the group and the post-data unit");
    }

    #[test]
    fn unit_ids_show_as_the_ledger_text_and_read_back_from_it() {
        let odd = TableName::new("Sales Dept", "lines 2").to_string();
        let cases = [
            (UnitId::Prepare, "prepare".to_string()),
            (UnitId::Table("public.t".into()), "table public.t".into()),
            (
                UnitId::Part {
                    table: odd.clone(),
                    index: 12,
                },
                format!("part {odd} 12"),
            ),
            (UnitId::Leaf("public.t_1".into()), "leaf public.t_1".into()),
            (UnitId::Finish(odd.clone()), format!("finish {odd}")),
            (UnitId::Group("public.a".into()), "group public.a".into()),
            (UnitId::PostData, "post-data".into()),
            (UnitId::PostDataObject(7), "post-data object 7".into()),
        ];
        for (id, text) in cases {
            assert_eq!(id.to_string(), text);
            assert_eq!(text.parse::<UnitId>(), Ok(id.clone()), "{text}");
            let json = serde_json::to_string(&id).expect("serialises");
            assert_eq!(json, serde_json::to_string(&text).expect("a string"));
            assert_eq!(serde_json::from_str::<UnitId>(&json).ok(), Some(id));
        }
        for text in [
            "",
            "part public.t",
            "part public.t 03",
            "post-data object x",
            "copy t",
        ] {
            assert_eq!(text.parse::<UnitId>(), Err(UnknownUnitId(text.into())));
        }
    }

    #[test]
    fn work_survives_the_ledger_round_trip() {
        let work = plan(vec![table("big", Action::Create, 2)]).work();
        let text = serde_json::to_string(&work).expect("serialises");
        let back: Work = serde_json::from_str(&text).expect("deserialises");
        assert_eq!(serde_json::to_string(&back).expect("again"), text);
        assert_eq!(back.format, WORK_FORMAT);
    }
}
