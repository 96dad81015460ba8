//! One table's plan: what happens to it on the target (its [`Action`]), how it is
//! created, in which pieces it loads and what is set aside around the load.

use serde::Serialize;

use super::{ColumnPlan, CopyFormat};
use crate::catalog::{TableDetail, TableKind, TableName};

/// What happens to one target table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// The table does not exist on the target: create it, then load.
    Create,
    /// The table exists and is empty: load.
    Load,
    /// The table holds rows: add to them.
    Append,
    /// The table holds rows: empty it, then load (one transaction).
    Truncate,
    /// The table holds rows and no mode was chosen: preflight refuses it.
    NeedsMode,
    /// `--schema-only` and the table exists: nothing to do.
    Keep,
    /// Drop and recreate from the source's definition, then load (one transaction).
    Replace,
    /// Insert new rows and update changed ones by primary key (one transaction).
    Upsert,
    /// Only the rows that differ move: inserted, updated, deleted (one transaction).
    Sync,
}

/// What happens to one table.
#[derive(Debug, Clone, Serialize)]
pub struct TablePlan {
    pub source: TableName,
    pub target: TableName,
    pub action: Action,
    pub format: CopyFormat,
    pub source_kind: TableKind,
    /// Source columns, in order, with how each travels (generated source columns are
    /// computed on the target and never listed).
    pub columns: Vec<ColumnPlan>,
    /// Target columns with no source column that must be given a value (NOT NULL, no
    /// default): preflight refuses such a table.
    pub target_only_required: Vec<String>,
    pub estimated_rows: Option<i64>,
    pub estimated_bytes: i64,
    /// Heap and TOAST on the source, without indexes: about what COPY moves.
    pub data_bytes: i64,
    /// How to create the table, when the action is [`Action::Create`].
    pub create: Option<CreateSpec>,
    /// Ranges of the source table's blocks loaded by separate streams at once; empty means
    /// one stream, in one transaction. Only tables pgbarge creates are split: their parts
    /// load into a staging table that takes the real name in one short transaction at the
    /// end, so no other session sees a half-loaded table.
    pub parts: Vec<Part>,
    /// The staging table split loads go into.
    pub staging: Option<TableName>,
    /// For [`Action::Upsert`]: the target's primary key columns (empty: it has none, and
    /// preflight refuses the table).
    pub upsert_key: Vec<String>,
    /// For [`Action::Sync`]: how rows are matched.
    pub sync: Option<SyncPlan>,
    /// Sequences to move past the copied values after the load, in the same transaction.
    pub sequences: Vec<SequencePlan>,
    /// For a partitioned table pgbarge creates: its leaf partitions, each loaded
    /// directly (source leaf to target leaf, no routing), in the table's one transaction.
    pub leaves: Vec<TableName>,
    /// For a partitioned table pgbarge creates on its own (not with other tables): its
    /// leaves loaded at once by separate streams, each into a staging table of its own
    /// that the table's finishing transaction attaches under the leaf's name. Empty: the
    /// leaves load one after another in the table's one transaction.
    pub leaf_loads: Vec<LeafLoad>,
    /// Secondary indexes and unique/exclusion constraints, built right after the rows
    /// are in (and, for a split table, after it takes its real name), in the load's
    /// transaction.
    pub after_data: Vec<String>,
    /// Tables of this plan (indexes into `Plan::tables`) that must be committed before
    /// this one loads: the target already has foreign keys from this table to them.
    pub load_after: Vec<usize>,
    /// Set when the table is truncated together with the tables whose foreign keys
    /// reference it (or that it references): index into `Plan::linked_groups`.
    pub linked_group: Option<usize>,
    /// Set when the table is replaced together with the other replaced tables that
    /// foreign keys or views link it to: index into `Plan::replace_groups`.
    pub replace_group: Option<usize>,
    /// The target table is partitioned.
    pub target_partitioned: bool,
    /// Tables that must exist before this one is created: its INHERITS parents, and
    /// tables whose row type a column uses.
    pub requires: Vec<TableName>,
    /// Copied columns that are `GENERATED ALWAYS AS IDENTITY` on the existing target.
    pub identity_always: Vec<String>,
    /// The existing target table's enabled user triggers (name, `tgenabled`): set aside
    /// for the load so they do not rewrite copied rows or log them, and put back as they
    /// were, in the same transaction (other sessions never see them off).
    pub quiet_triggers: Vec<(String, crate::catalog::TriggerState)>,
    /// The existing target table forces row-level security on its owner (the role):
    /// COPY FROM is refused, so the load sets FORCE aside and puts it back in the same
    /// transaction (other sessions never see it lifted).
    pub lifted_force_rls: bool,
    /// The existing target table's NOT VALID constraints (name, definition): the rows
    /// loaded may break them as the source's rows do, so they are dropped for the load
    /// and added back NOT VALID in the same transaction.
    pub unvalidated: Vec<(String, String)>,
    /// Indexes of the emptied target table set aside for the load and built again after
    /// the rows are in, in the same transaction (which holds the table exclusively since
    /// its TRUNCATE): one sort per index instead of a B-tree insert per row.
    pub rebuilt_indexes: Vec<crate::catalog::TargetIndex>,
    /// What the user should know about this table (what is not recreated, conversions).
    pub notes: Vec<String>,
}

impl TablePlan {
    /// Table `name` (the same on both sides) with `action` and nothing decided yet: no
    /// columns, parts, objects or notes, text COPY, no size known.
    pub fn new(name: TableName, action: Action, source_kind: TableKind) -> TablePlan {
        TablePlan {
            source: name.clone(),
            target: name,
            action,
            format: CopyFormat::Text,
            source_kind,
            columns: Vec::new(),
            target_only_required: Vec::new(),
            estimated_rows: None,
            estimated_bytes: 0,
            data_bytes: 0,
            create: None,
            parts: Vec::new(),
            staging: None,
            upsert_key: Vec::new(),
            sync: None,
            sequences: Vec::new(),
            leaves: Vec::new(),
            leaf_loads: Vec::new(),
            after_data: Vec::new(),
            load_after: Vec::new(),
            linked_group: None,
            replace_group: None,
            target_partitioned: false,
            identity_always: Vec::new(),
            requires: Vec::new(),
            quiet_triggers: Vec::new(),
            lifted_force_rls: false,
            unvalidated: Vec::new(),
            rebuilt_indexes: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// The run creates the table: it is new, or dropped and created again.
    pub(super) fn is_created(&self) -> bool {
        matches!(self.action, Action::Create | Action::Replace)
    }

    /// How many units load its rows: its parts, or its leaves' when they load apart.
    pub fn loads(&self) -> usize {
        let leaves: usize = self.leaf_loads.iter().map(|l| l.parts.len().max(1)).sum();
        self.parts.len().max(leaves).max(1)
    }

    /// The names of the columns that are copied, in order.
    pub fn copied_columns(&self) -> impl Iterator<Item = &str> {
        self.columns.iter().map(|c| c.name.as_str())
    }
}

/// `src`'s plan with `action` and its sizes on the source, nothing else decided yet.
pub(super) fn base_plan(src: &TableDetail, action: Action) -> TablePlan {
    TablePlan {
        estimated_rows: src.table.estimated_rows,
        estimated_bytes: src.table.total_bytes,
        data_bytes: src.table.data_bytes,
        ..TablePlan::new(src.table.name.clone(), action, src.table.kind)
    }
}

/// The pieces of a `CREATE TABLE`, so the same definition can create the real table or a
/// staging table that is renamed at the end.
#[derive(Debug, Clone, Serialize)]
pub struct CreateSpec {
    /// `CREATE SEQUENCE` for serial columns, run before the table.
    pub sequences: Vec<String>,
    /// Column definitions.
    pub columns: Vec<String>,
    /// (sequence, column): `ALTER SEQUENCE … OWNED BY` after the table exists.
    pub owned_by: Vec<(TableName, String)>,
    /// (constraint name, definition), added after the data is in: one sort instead of a
    /// B-tree insert per row.
    pub primary_key: Option<(String, String)>,
    /// `RANGE (…)` / `LIST (…)` / `HASH (…)` for a partitioned table...
    pub partition_by: Option<String>,
    /// ...then each partition, parents first, and the partitions' own check constraints
    /// and column options.
    pub partitions: Vec<PartitionStep>,
    /// (name, definition) of check constraints, added to the empty table so every
    /// loaded row is checked.
    pub checks: Vec<(String, String)>,
    /// `CREATE UNLOGGED TABLE`.
    pub unlogged: bool,
    /// `INHERITS (…)`: the parents, which must exist first; inherited columns are not
    /// declared again.
    pub inherits: Vec<TableName>,
    /// (column, clause) set on the empty table: `SET STORAGE EXTERNAL`, `SET COMPRESSION
    /// lz4`, `SET STATISTICS 500` — storage and compression decide how rows are written.
    pub column_options: Vec<(String, String)>,
    /// Storage parameters (`fillfactor=70`, autovacuum settings), as `WITH (…)`.
    pub options: Vec<String>,
    /// A typed table: `CREATE TABLE … OF type`, its columns' defaults and NOT NULLs as
    /// `WITH OPTIONS` (the columns come from the type).
    pub of_type: Option<String>,
    /// (column, ` DEFAULT … NOT NULL`) for a typed table.
    pub typed_options: Vec<(String, String)>,
}

/// A statement of a partitioned table's creation, after its own `CREATE TABLE`.
#[derive(Debug, Clone, Serialize)]
pub enum PartitionStep {
    /// A partition's `CREATE TABLE … PARTITION OF …` (or `CREATE TABLE` and `ATTACH`),
    /// or one of its objects.
    Sql(String),
    /// A leaf partition, created as [`PartitionStep::Sql`] would, or attached from its
    /// staging table when the leaves load apart ([`TablePlan::leaf_loads`]).
    Leaf {
        name: TableName,
        create: Vec<String>,
    },
}

/// A leaf partition loaded by its own units (see [`TablePlan::leaf_loads`]).
#[derive(Debug, Clone, Serialize)]
pub struct LeafLoad {
    /// The leaf, on the source and (the same name) on the target.
    pub name: TableName,
    /// The table its rows load into: standalone, in the leaf's schema.
    pub staging: TableName,
    /// `CREATE TABLE` of the staging table: the leaf's columns in its own order, its
    /// defaults, and its partition constraint as a CHECK, so that every row is checked
    /// as it loads and attaching needs no scan.
    pub create: String,
    /// The staging table takes the leaf's name and is attached; the CHECK goes.
    pub attach: Vec<String>,
    /// Block ranges of a big leaf, loaded at once (empty: one stream).
    pub parts: Vec<Part>,
    pub estimated_bytes: i64,
}

/// How the note on a partitioned table's load starts.
pub(super) const PARTITIONED_NOTE: &str = "partitioned:";

/// How a table in [`Action::Sync`] is compared.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct SyncPlan {
    /// The columns rows are matched by: the target's primary key, or a unique key on NOT
    /// NULL columns. Empty: there is none, and rows are compared as a multiset.
    pub key: Vec<String>,
    /// `--since COLUMN`, when the table has that column and a key.
    pub since: Option<String>,
}

/// One range of a split table: blocks `[first_block, end_block)` of the source heap, read
/// with a `ctid` range (a TID range scan from PostgreSQL 14 on). The last part is open at
/// the end, so rows in blocks added since planning are not missed. Each part loads in its
/// own transaction, so a later version can record its completion in that same transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Part {
    pub index: usize,
    pub first_block: i64,
    pub end_block: Option<i64>,
}

/// A target sequence (`serial` or identity) to set after the load so that new rows do not
/// collide with copied ones: a sequence the run creates takes the source's exact state
/// (`last_value`, `is_called`), as pg_dump gives it; one that was already on the target
/// only moves forward, to the source's value and never below the largest copied value.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct SequencePlan {
    pub column: String,
    /// The source sequence to read the value from (`None`: not readable by the role).
    pub source: Option<TableName>,
    /// Only ascending sequences are also kept above the column's maximum.
    pub ascending: bool,
    /// The run creates the target's sequence (with its table): it takes the source's
    /// state exactly.
    #[serde(default)]
    pub created: bool,
    /// The column is numeric, so the sequence can be kept above its largest value (a
    /// sequence may be OWNED BY a column of any type).
    #[serde(default = "numeric_by_default")]
    pub numeric: bool,
}

fn numeric_by_default() -> bool {
    true
}

/// Sequences owned by the source table's columns, to be synchronised after the load.
pub(super) fn sequence_plans(src: &TableDetail) -> Vec<SequencePlan> {
    src.columns
        .iter()
        .filter_map(|c| {
            c.sequence.as_ref().map(|seq| SequencePlan {
                column: c.name.clone(),
                source: seq.readable.then(|| seq.name.clone()),
                ascending: seq.parameters.increment > 0,
                created: false,
                numeric: c.ty.category == 'N',
            })
        })
        .collect()
}
