//! The plan: for each chosen table, what will happen on the target and how the data will
//! travel. An immutable, serialisable value — printed by `--dry-run`, rendered as JSON —
//! built purely from the [`Snapshot`] and the user's choices. Later stages only read it.

pub mod ddl;
#[cfg(test)]
pub(crate) mod fixtures;
mod schema;
mod sync_spec;
#[cfg(test)]
mod tests;
pub mod units;

use std::collections::{BTreeMap, BTreeSet};

use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::unionfind::UnionFind;
use serde::Serialize;

use crate::catalog::{
    Column, Identity, Partition, SchemaObjects, Snapshot, TableDetail, TableKind, TableName,
    TableObjectKind, TypeDefinition, UserType,
};
use crate::convert::{conversion, Conversion};
use crate::quote::{ident, ident_list, literal};
use ddl::{
    IdentityDdl, PartitionDdl, SequenceParametersDdl, TableNameDdl, TableObjectDdl,
    TableSettingDdl, TriggerStateDdl,
};

pub use schema::{SchemaOptions, SchemaPlan, SequenceValue, SkipReason, Skipped, Step};
pub use sync_spec::SyncSpec;

/// Function bodies are not checked while they are created: they may refer to tables
/// created later, as in pg_dump's output. A user-settable setting; no superuser needed.
pub const NO_BODY_CHECKS: &str = "SET LOCAL check_function_bodies = off";

/// What to do with a target table that already holds rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LoadMode {
    /// Add the source's rows to those already there.
    Append,
    /// Empty the table (TRUNCATE of that table only, never CASCADE) in the same transaction,
    /// then load.
    Truncate,
    /// Drop the target table and create it again from the source's definition, then load —
    /// one transaction.
    Replace,
    /// Insert new rows and update changed ones, by the target's primary key: the rows load
    /// into a temporary table, then one `INSERT … ON CONFLICT … DO UPDATE`.
    Upsert,
    /// Make the target's rows equal the source's, moving only the rows that differ:
    /// found by hashing on both servers, repaired by delete and upsert.
    Sync,
}

/// What moves: table definitions, rows, or both.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Content {
    /// Create missing tables, then load rows.
    #[default]
    SchemaAndData,
    /// Create missing tables, move no rows; existing tables are left alone.
    SchemaOnly,
    /// Load rows into tables that must already exist on the target.
    DataOnly,
}

/// The user's choices that shape the plan.
#[derive(Debug, Clone, Default)]
pub struct PlanOptions {
    pub content: Content,
    /// Mode for every non-empty target table.
    pub mode: Option<LoadMode>,
    /// Per-table answers (from the interactive prompt), overriding `mode`.
    pub per_table: BTreeMap<TableName, LoadMode>,
    /// Streams at once; `None` chooses from the machine's cores and the tables' sizes.
    pub jobs: Option<usize>,
    /// Tables at least this large (bytes, source estimate) are split into parts;
    /// `None` means [`DEFAULT_SPLIT_ABOVE`].
    pub split_above: Option<u64>,
    /// The size of one part of a split table; `None` means [`DEFAULT_PART_SIZE`] (or half
    /// of a smaller `split_above`).
    pub part_size: Option<u64>,
    /// Foreign keys to tables not copied, and ownership of what is created.
    pub schema: SchemaOptions,
    /// `--source-encoding`: what a SQL_ASCII source's bytes are.
    pub source_encoding: Option<String>,
    /// `--since COLUMN`: a sync moves only the rows written since the last sync (and
    /// compares keys for deletes).
    pub since: Option<String>,
}

/// The temporary table an upsert loads into before merging.
const UPSERT_TABLE: &str = "pgbarge_upsert";

/// Split tables larger than this by default: below it, one stream per table keeps up.
pub const DEFAULT_SPLIT_ABOVE: u64 = 64 << 20;
/// The default size of one part of a split table. Each part commits on its own, with its
/// record in the ledger, so this bounds the work a crash or a dropped connection loses;
/// over a 10 ms link a part this size takes seconds, so its two round trips of overhead
/// are lost in the noise.
pub const DEFAULT_PART_SIZE: u64 = 32 << 20;
/// Parts at most per table: beyond this the per-part overhead (a transaction, a ledger
/// row, a TID range scan's start) stops being negligible.
const MAX_PARTS: u64 = 10_000;
/// Tables this large share a stream well; used to choose the default number of jobs.
const MIN_PART_BYTES: u64 = 16 << 20;
/// Streams chosen by default: at least this many — over a real network each stream is
/// limited by round trips and TCP windows, not by cores...
const MIN_DEFAULT_JOBS: usize = 4;
/// ...and no more than this many, however many cores (more rarely helps one target).
const MAX_DEFAULT_JOBS: usize = 8;

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

/// The COPY format for a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CopyFormat {
    /// Every copied column has the same type on both sides.
    Binary,
    /// At least one column converts (e.g. int4 → int8); the servers' text I/O converts.
    Text,
}

impl CopyFormat {
    /// The COPY option: `(FORMAT binary)`.
    pub fn clause(self) -> &'static str {
        match self {
            CopyFormat::Binary => "(FORMAT binary)",
            CopyFormat::Text => "(FORMAT text)",
        }
    }
}

/// Rows staged in a table merged into a target table by key: `INSERT … ON CONFLICT (key)
/// DO UPDATE` (an upsert, a sync's repair), or without a key a plain insert.
pub(crate) struct Merge<'a> {
    pub target: &'a TableName,
    pub staging: &'a TableName,
    pub columns: &'a [&'a str],
    /// Empty: every staged row is inserted.
    pub key: &'a [String],
    /// Copied columns that are `GENERATED ALWAYS AS IDENTITY` on the target: they take
    /// the source's values only with OVERRIDING SYSTEM VALUE, and are never updated.
    pub identity_always: &'a [String],
    /// Rows whose values are unchanged are not touched — compared as text, as they
    /// travel: types without equality (json, point) have no other comparison, and `1.0`
    /// and `1.00` are different values to copy.
    pub only_changed: bool,
}

impl Merge<'_> {
    pub fn sql(&self) -> String {
        let cols = ident_list(self.columns.iter().copied());
        let overriding = if self.identity_always.is_empty() {
            ""
        } else {
            " OVERRIDING SYSTEM VALUE"
        };
        let insert = format!(
            "INSERT INTO {} AS pgbarge_t ({cols}){overriding} SELECT {cols} FROM {}",
            self.target.sql(),
            self.staging.sql()
        );
        if self.key.is_empty() {
            return insert;
        }
        let others: Vec<&str> = self
            .columns
            .iter()
            .copied()
            .filter(|c| !self.key.iter().any(|k| k == c))
            .filter(|c| !self.identity_always.iter().any(|k| k == c))
            .collect();
        let action = if others.is_empty() {
            "DO NOTHING".to_string()
        } else {
            let of = |prefix: &str| {
                others
                    .iter()
                    .map(|c| format!("{prefix}.{}", ident(c)))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let changed = if self.only_changed {
                format!(
                    " WHERE ROW({})::text IS DISTINCT FROM ROW({})::text",
                    of("pgbarge_t"),
                    of("EXCLUDED")
                )
            } else {
                String::new()
            };
            format!(
                "DO UPDATE SET ({}) = ROW({}){changed}",
                ident_list(others.iter().copied()),
                of("EXCLUDED")
            )
        };
        format!(
            "{insert} ON CONFLICT ({}) {action}",
            ident_list(self.key.iter().map(String::as_str))
        )
    }
}

/// How one source column reaches the target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "via", content = "reason", rename_all = "snake_case")]
pub enum ColumnRoute {
    Identical,
    Text,
    /// The target type cannot hold the values.
    Refused(String),
    /// No column of that name on the target.
    MissingOnTarget,
    /// The target column is generated: it cannot be loaded.
    GeneratedOnTarget,
}

#[derive(Debug, Clone, Serialize)]
pub struct ColumnPlan {
    pub name: String,
    pub source_type: String,
    pub target_type: Option<String>,
    pub route: ColumnRoute,
    /// How a sync hashes its values on both sides.
    #[serde(skip)]
    pub value_hash: crate::rowhash::ValueHash,
}

/// One user-defined type to create on the target before the first table that needs it.
#[derive(Debug, Clone, Serialize)]
pub struct TypePlan {
    /// `schema.name` as shown to users.
    pub name: String,
    pub schema: String,
    /// Statements creating it (the schema first, if missing).
    pub sql: Vec<String>,
    /// Set for kinds pgbarge cannot create (base types, extension types): preflight
    /// reports.
    pub unsupported: Option<String>,
    /// The chosen tables with a column of it (or of its array type), when unsupported.
    pub used_by: Vec<TableName>,
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

/// A stable 64-bit hash (FNV-1a) for names derived from table names: the same in every
/// run, short enough for an identifier whatever the table's name.
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// How the note on a partitioned table's load starts.
const PARTITIONED_NOTE: &str = "partitioned:";

/// The name of the CHECK a staging leaf carries until it is attached.
const LEAF_BOUND: &str = "_pgbarge_bound";

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

/// What one COPY reads from the source, kept as data — in the plan, its units and the
/// run recorded on the target — and made a statement only where it runs ([`Self::sql`]):
/// nothing read back from the target becomes SQL on the source, where pgbarge is often
/// a superuser.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct SourceRead {
    pub table: TableName,
    /// The columns copied, in order (none: a table without columns, whose rows still
    /// count).
    pub columns: Vec<String>,
    /// A partitioned table, read with its partitions (a query, not `COPY table`).
    pub tree: bool,
    /// Only the rows in blocks `[first, end)` (`ONLY` the table itself).
    pub blocks: Option<(i64, Option<i64>)>,
    pub format: CopyFormat,
}

impl SourceRead {
    /// `COPY … TO STDOUT`, every name quoted.
    pub fn sql(&self) -> String {
        let format = self.format.clause();
        if let Some((first, end)) = self.blocks {
            let upper = end
                .map(|end| format!(" AND ctid < '({end},0)'::pg_catalog.tid"))
                .unwrap_or_default();
            return format!(
                "COPY (SELECT {} FROM ONLY {} WHERE ctid >= '({first},0)'::pg_catalog.tid{upper}) \
                 TO STDOUT {format}",
                ident_list(self.columns.iter().map(String::as_str)),
                self.table.sql(),
            );
        }
        if self.tree {
            return format!(
                "COPY (SELECT {} FROM {}) TO STDOUT {format}",
                ident_list(self.columns.iter().map(String::as_str)),
                self.table.sql(),
            );
        }
        let list = if self.columns.is_empty() {
            String::new()
        } else {
            format!(" ({})", ident_list(self.columns.iter().map(String::as_str)))
        };
        format!("COPY {}{list} TO STDOUT {format}", self.table.sql())
    }
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

impl TablePlan {
    /// Table `name` (the same on both sides) with `action` and nothing decided yet: no
    /// columns, parts, objects or notes, text COPY, no size known.
    pub(crate) fn new(name: TableName, action: Action, source_kind: TableKind) -> TablePlan {
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

    /// Statements run before the data, in the load's transaction (or, for a split table,
    /// the setup transaction), creating or emptying `name`.
    pub fn setup_sql(&self, name: &TableName) -> Vec<String> {
        let mut sql = Vec::new();
        match self.action {
            // A replace group drops its members together, with what depends on them.
            Action::Replace if self.replace_group.is_none() => {
                sql.push(format!("DROP TABLE {}", name.sql()))
            }
            Action::Upsert => sql.push(format!(
                "CREATE TEMPORARY TABLE {} (LIKE {} INCLUDING DEFAULTS) ON COMMIT DROP",
                crate::quote::ident(UPSERT_TABLE),
                name.sql()
            )),
            _ => {}
        }
        if let Some(c) = &self.create {
            sql.extend(c.sequences.iter().cloned());
            let partition_by = c
                .partition_by
                .as_ref()
                .map(|k| format!(" PARTITION BY {k}"))
                .unwrap_or_default();
            let with = if c.options.is_empty() {
                String::new()
            } else {
                format!(" WITH ({})", c.options.join(", "))
            };
            let inherits = if c.inherits.is_empty() {
                String::new()
            } else {
                format!(
                    " INHERITS ({})",
                    c.inherits
                        .iter()
                        .map(TableName::sql)
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            let unlogged = if c.unlogged { "UNLOGGED " } else { "" };
            sql.push(match &c.of_type {
                Some(ty) => {
                    let options: Vec<String> = c
                        .typed_options
                        .iter()
                        .map(|(column, clause)| format!("{} WITH OPTIONS{clause}", ident(column)))
                        .collect();
                    let options = if options.is_empty() {
                        String::new()
                    } else {
                        format!(" (\n    {}\n)", options.join(",\n    "))
                    };
                    format!(
                        "CREATE {unlogged}TABLE {} OF {ty}{options}{partition_by}{with}",
                        name.sql()
                    )
                }
                None => format!(
                    "CREATE {unlogged}TABLE {} (\n    {}\n){inherits}{partition_by}{with}",
                    name.sql(),
                    c.columns.join(",\n    ")
                ),
            });
            sql.extend(c.column_options.iter().map(|(column, clause)| {
                format!(
                    "ALTER TABLE {} ALTER COLUMN {} {clause}",
                    name.sql(),
                    ident(column)
                )
            }));
            for step in &c.partitions {
                match step {
                    PartitionStep::Sql(s) => sql.push(s.clone()),
                    PartitionStep::Leaf { name, create } => {
                        match self.leaf_loads.iter().find(|l| &l.name == name) {
                            Some(load) => sql.extend(load.attach.iter().cloned()),
                            None => sql.extend(create.iter().cloned()),
                        }
                    }
                }
            }
            sql.extend(
                c.checks
                    .iter()
                    .map(|(check, def)| name.add_constraint_sql(check, def)),
            );
            for (seq, col) in &c.owned_by {
                sql.push(format!(
                    "ALTER SEQUENCE {} OWNED BY {}.{}",
                    seq.sql(),
                    name.sql(),
                    ident(col)
                ));
            }
        }
        for (constraint, _) in &self.unvalidated {
            sql.push(name.drop_constraint_sql(constraint));
        }
        if self.lifted_force_rls {
            sql.push(format!(
                "ALTER TABLE {} NO FORCE ROW LEVEL SECURITY",
                name.sql()
            ));
        }
        for (trigger, _) in &self.quiet_triggers {
            sql.push(format!(
                "ALTER TABLE {} DISABLE TRIGGER {}",
                name.sql(),
                ident(trigger)
            ));
        }
        if self.action == Action::Truncate && self.linked_group.is_none() {
            sql.push(format!("TRUNCATE {}", self.truncate_target(name)));
        }
        for index in &self.rebuilt_indexes {
            sql.push(match &index.constraint {
                Some((constraint, _)) => name.drop_constraint_sql(constraint),
                None => format!(
                    "DROP INDEX {}",
                    crate::quote::qualified(&name.schema, &index.name)
                ),
            });
        }
        sql
    }

    /// The indexes set aside for the load, built again as they were: the index or its
    /// constraint, then clustering, replica identity and comments.
    fn rebuild_sql(&self, name: &TableName) -> Vec<String> {
        let mut sql = Vec::new();
        for index in &self.rebuilt_indexes {
            let qualified = crate::quote::qualified(&name.schema, &index.name);
            match &index.constraint {
                Some((constraint, def)) => sql.push(name.add_constraint_sql(constraint, def)),
                None => sql.push(index.definition.clone()),
            }
            if index.clustered {
                sql.push(format!(
                    "ALTER TABLE {} CLUSTER ON {}",
                    name.sql(),
                    ident(&index.name)
                ));
            }
            if index.replica_identity {
                sql.push(format!(
                    "ALTER TABLE {} REPLICA IDENTITY USING INDEX {}",
                    name.sql(),
                    ident(&index.name)
                ));
            }
            if let Some(c) = &index.comment {
                sql.push(format!("COMMENT ON INDEX {qualified} IS {}", literal(c)));
            }
            if let (Some((constraint, _)), Some(c)) = (&index.constraint, &index.constraint_comment)
            {
                sql.push(format!(
                    "COMMENT ON CONSTRAINT {} ON {} IS {}",
                    ident(constraint),
                    name.sql(),
                    literal(c)
                ));
            }
        }
        sql
    }

    /// What `TRUNCATE` names: `ONLY` the table (never inheritance children), except for
    /// a partitioned table, whose rows are its partitions'.
    pub fn truncate_target(&self, name: &TableName) -> String {
        if self.target_partitioned {
            name.sql()
        } else {
            format!("ONLY {}", name.sql())
        }
    }

    /// Where the COPY goes: the table itself, or for an upsert the temporary table the
    /// rows are merged from.
    pub fn load_into(&self, name: &TableName) -> TableName {
        if self.action == Action::Upsert {
            TableName::new("pg_temp", UPSERT_TABLE)
        } else {
            name.clone()
        }
    }

    /// Statements run after the data: the primary key, or an upsert's merge.
    pub fn finish_sql(&self, name: &TableName) -> Vec<String> {
        let mut sql: Vec<String> = if self.action == Action::Upsert {
            vec![self.upsert_sql(name)]
        } else {
            self.create
                .iter()
                .filter_map(|c| c.primary_key.as_ref())
                .map(|(pk, def)| name.add_constraint_sql(pk, def))
                .collect()
        };
        sql.extend(self.rebuild_sql(name));
        // What was set aside for the load, put back as it was.
        sql.extend(self.quiet_triggers.iter().map(|(trigger, enabled)| {
            format!(
                "ALTER TABLE {} {} TRIGGER {}",
                name.sql(),
                enabled.alter_clause(),
                ident(trigger)
            )
        }));
        sql.extend(
            self.unvalidated
                .iter()
                .map(|(constraint, def)| name.add_constraint_sql(constraint, def)),
        );
        sql
    }

    /// The load's last statement, after its sequences are set (which reads the table):
    /// row-level security forced again, if it was set aside.
    pub fn restore_sql(&self, name: &TableName) -> Option<String> {
        self.lifted_force_rls
            .then(|| format!("ALTER TABLE {} FORCE ROW LEVEL SECURITY", name.sql()))
    }

    /// `INSERT … ON CONFLICT (key) DO UPDATE`, touching only rows whose values changed.
    fn upsert_sql(&self, name: &TableName) -> String {
        Merge {
            target: name,
            staging: &TableName::new("pg_temp", UPSERT_TABLE),
            columns: &self.copied_columns().collect::<Vec<_>>(),
            key: &self.upsert_key,
            identity_always: &self.identity_always,
            only_changed: true,
        }
        .sql()
    }

    /// For [`Action::Sync`]: what the copy stage compares and repairs, from `source`.
    pub fn sync_spec(&self, source: &Endpoint) -> Option<SyncSpec> {
        let sync = self.sync.as_ref().filter(|_| self.action == Action::Sync)?;
        Some(SyncSpec {
            source_server: source.connection.clone(),
            source: self.source.clone(),
            target: self.target.clone(),
            columns: self.copied_columns().map(str::to_string).collect(),
            key: sync.key.clone(),
            since: sync.since.clone(),
            value_hashes: self.columns.iter().map(|c| c.value_hash).collect(),
            format: self.format,
            staging: format!("pgbarge_sync_{:016x}", fnv1a(&self.target.to_string())),
            source_partitioned: self.source_kind == TableKind::Partitioned,
            target_partitioned: self.target_partitioned,
            estimated_rows: self.estimated_rows.unwrap_or(0),
            identity_always: self.identity_always.clone(),
        })
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

    fn format_clause(&self) -> &'static str {
        self.format.clause()
    }

    /// What one COPY reads from the source: the whole table, or blocks `part` of it. A
    /// partitioned table is read through a query so that its partitions' rows are
    /// included.
    pub fn read(&self, part: Option<&Part>) -> SourceRead {
        if part.is_some() {
            return self.range_read(&self.source, part);
        }
        SourceRead {
            tree: self.source_kind == TableKind::Partitioned,
            ..self.range_read(&self.source, None)
        }
    }

    /// What one COPY reads of source table `from` (one of this table's leaves), or of
    /// blocks `part` of it.
    pub fn range_read(&self, from: &TableName, part: Option<&Part>) -> SourceRead {
        SourceRead {
            table: from.clone(),
            columns: self.copied_columns().map(str::to_string).collect(),
            tree: false,
            blocks: part.map(|p| (p.first_block, p.end_block)),
            format: self.format,
        }
    }

    /// ` ("a", "b")` for a COPY statement, or nothing for a table without columns (whose
    /// rows still count: `COPY t ()` is a syntax error, `COPY t` copies them). Generated
    /// columns are left out by COPY itself when no list is given.
    fn column_list(&self) -> String {
        if self.columns.is_empty() {
            String::new()
        } else {
            format!(" ({})", ident_list(self.copied_columns()))
        }
    }

    /// `COPY … FROM STDIN` into `name` (the target table, or its staging table).
    pub fn copy_in_sql(&self, name: &TableName) -> String {
        format!(
            "COPY {}{} FROM STDIN {}",
            name.sql(),
            self.column_list(),
            self.format_clause()
        )
    }
}

/// Where the data comes from and goes to, as reports show it (never with a password).
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Endpoint {
    /// `user@host:port/db`.
    pub connection: String,
    pub database: String,
    pub host: String,
    pub server_version: i32,
}

/// The whole plan.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub source: Endpoint,
    pub target: Endpoint,
    pub content: Content,
    /// How many source+target connection pairs work at once.
    pub jobs: usize,
    /// Schemas, extensions, types, sequences and functions the tables need, created in
    /// one transaction before any table.
    pub prepare: Vec<String>,
    pub types: Vec<TypePlan>,
    /// Objects besides the tables: what is created before them (also in `prepare`),
    /// what after all data is in, and what is not created.
    pub schema: SchemaPlan,
    /// `--owner`: the role every created object is given to.
    pub owner: Option<String>,
    /// Schemas copied whole (their views, functions and sequences come along).
    pub whole_schemas: Vec<String>,
    /// `--exclude-object` patterns, as typed (saved with the plan).
    pub exclude_objects: Vec<String>,
    /// `--since COLUMN` of the synced tables (saved with the plan).
    pub since: Option<String>,
    /// Foreign keys to tables not copied are left out.
    pub without_fks: bool,
    /// `--grants`: privileges are copied.
    pub grants: bool,
    /// Tables in `--mode truncate` linked by the target's foreign keys: each group is
    /// emptied by one `TRUNCATE` (no CASCADE needed, every referencing table is in it) and
    /// loaded, parents first, in one transaction.
    pub linked_groups: Vec<Vec<usize>>,
    /// Per truncate group: foreign keys among its tables that form a cycle (no load order
    /// satisfies them), dropped at the start of the group's transaction and added back,
    /// validated, at its end. Empty for groups without a cycle.
    pub linked_group_keys: Vec<Vec<crate::catalog::ForeignKey>>,
    /// Tables in `--mode replace` that other tables' foreign keys or views depend on.
    pub replace_groups: Vec<ReplaceGroup>,
    /// What the user should know about the run as a whole.
    pub warnings: Vec<String>,
    /// In the order they were chosen; the copy stage starts the biggest first.
    pub tables: Vec<TablePlan>,
}

impl Endpoint {
    /// The endpoint a connection reaches, as reports show it.
    pub fn of(c: &crate::connect::Connection) -> Endpoint {
        Endpoint {
            connection: c.info.to_string(),
            database: c.database.clone(),
            host: c.info.host_display().to_string(),
            server_version: c.server_version_num,
        }
    }
}

impl Plan {
    /// Objects left out because they cannot be created on the target, though nothing
    /// copied needs them (not those already there).
    pub fn left_out(&self) -> impl Iterator<Item = &Skipped> {
        self.schema
            .skipped
            .iter()
            .filter(|s| !s.blocking && s.why != SkipReason::Exists)
    }

    /// The tables the plan's created tables reference (foreign keys, INHERITS) that are
    /// neither copied nor on the target, each once.
    pub fn missing_parents(&self) -> Vec<TableName> {
        let mut missing: Vec<TableName> = self
            .schema
            .missing_parents
            .values()
            .flatten()
            .cloned()
            .collect();
        missing.sort();
        missing.dedup();
        missing
    }

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

/// Replaced tables that other tables' foreign keys or views depend on. `DROP TABLE`
/// without CASCADE refuses such a table, and CASCADE would lose those objects; instead
/// one transaction drops the views and the other tables' keys, drops the members
/// together (keys among them go with them), creates and loads each, then adds the keys
/// back (validated against the new rows) and creates the views again as they were.
#[derive(Debug, Clone, Serialize)]
pub struct ReplaceGroup {
    /// Indexes into `Plan::tables`.
    pub members: Vec<usize>,
    /// Foreign keys of tables not replaced that point at members.
    pub foreign_keys: Vec<crate::catalog::ForeignKey>,
    /// Views built on members, each after the views it reads.
    pub views: Vec<crate::catalog::DependentView>,
    /// Functions and procedures whose signatures use members' row types.
    pub routines: Vec<crate::catalog::DependentRoutine>,
}

/// Groups the replaced tables: those linked by the target's foreign keys or read by
/// one view replace together; a table nothing depends on stays on its own (no group).
fn group_replaces(tables: &mut [TablePlan], snapshot: &Snapshot) -> Vec<ReplaceGroup> {
    let replaced: BTreeMap<TableName, usize> = tables
        .iter()
        .enumerate()
        .filter(|(_, t)| t.action == Action::Replace)
        .map(|(i, t)| (t.target.clone(), i))
        .collect();
    if replaced.is_empty() {
        return Vec::new();
    }
    let dependents = &snapshot.target_dependents;
    let mut links: Vec<(usize, usize)> = snapshot
        .target_foreign_keys
        .iter()
        .filter_map(|(child, parent)| Some((*replaced.get(child)?, *replaced.get(parent)?)))
        .collect();
    for view in &dependents.views {
        let reads: Vec<usize> = view
            .reads
            .iter()
            .filter_map(|t| replaced.get(t).copied())
            .collect();
        links.extend(reads.windows(2).map(|w| (w[0], w[1])));
    }
    for routine in &dependents.routines {
        let uses: Vec<usize> = routine
            .uses
            .iter()
            .filter_map(|t| replaced.get(t).copied())
            .collect();
        links.extend(uses.windows(2).map(|w| (w[0], w[1])));
    }
    // A parent and the tables inheriting from it are dropped together.
    links.extend(
        dependents
            .children
            .iter()
            .filter_map(|(parent, child)| Some((*replaced.get(parent)?, *replaced.get(child)?))),
    );
    let mut groups = Vec::new();
    for mut members in components(replaced.values().copied(), &links) {
        members.sort_unstable();
        // Created parents first: a child's INHERITS names them.
        let requires: Vec<(usize, usize)> = members
            .iter()
            .flat_map(|&i| {
                tables[i]
                    .requires
                    .iter()
                    .filter_map(|p| replaced.get(p).map(|&pi| (i, pi)))
                    .collect::<Vec<_>>()
            })
            .collect();
        let (members, _) = parents_first(&members, &requires);
        let names: BTreeSet<TableName> =
            members.iter().map(|&i| tables[i].target.clone()).collect();
        let foreign_keys: Vec<crate::catalog::ForeignKey> = dependents
            .foreign_keys
            .iter()
            .filter(|k| names.contains(&k.key.references) && !replaced.contains_key(&k.root))
            .map(|k| k.key.clone())
            .collect();
        let views: Vec<crate::catalog::DependentView> = dependents
            .views
            .iter()
            .filter(|v| v.reads.iter().any(|t| names.contains(t)))
            .cloned()
            .collect();
        let routines: Vec<crate::catalog::DependentRoutine> = dependents
            .routines
            .iter()
            .filter(|r| r.uses.iter().any(|t| names.contains(t)))
            .cloned()
            .collect();
        if members.len() == 1 && foreign_keys.is_empty() && views.is_empty() && routines.is_empty()
        {
            continue;
        }
        let g = groups.len();
        for &i in &members {
            tables[i].replace_group = Some(g);
            let others = members.len() - 1;
            let mut dependents = Vec::new();
            if !foreign_keys.is_empty() {
                dependents.push(crate::text::plural(
                    foreign_keys.len(),
                    "other table's foreign key",
                    "other tables' foreign keys",
                ));
            }
            if !views.is_empty() {
                dependents.push(crate::text::plural(views.len(), "view", "views"));
            }
            if !routines.is_empty() {
                dependents.push(crate::text::plural(routines.len(), "function", "functions"));
            }
            let with = if others > 0 {
                format!(
                    " with {}",
                    crate::text::plural(others, "other table", "other tables")
                )
            } else {
                String::new()
            };
            let built_on = if dependents.is_empty() {
                String::new()
            } else {
                let one = foreign_keys.len() + views.len() + routines.len() == 1;
                format!(
                    "; {} built on {} {} dropped first and created again as {} {}",
                    crate::text::short_list(&dependents, 3),
                    if members.len() == 1 { "it" } else { "them" },
                    if one { "is" } else { "are" },
                    if one { "it" } else { "they" },
                    if one { "was" } else { "were" },
                )
            };
            tables[i]
                .notes
                .push(format!("replaced in one transaction{with}{built_on}"));
        }
        groups.push(ReplaceGroup {
            members,
            foreign_keys,
            views,
            routines,
        });
    }
    groups
}

/// Connected components of `nodes` under the undirected `links`, each in the order its
/// members were first met.
fn components(nodes: impl IntoIterator<Item = usize>, links: &[(usize, usize)]) -> Vec<Vec<usize>> {
    let nodes: Vec<usize> = nodes.into_iter().collect();
    let size = nodes.iter().max().map_or(0, |m| m + 1);
    let mut sets = UnionFind::new(size);
    for &(a, b) in links {
        if nodes.contains(&a) && nodes.contains(&b) {
            sets.union(a, b);
        }
    }
    let mut groups: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for &i in &nodes {
        groups.entry(sets.find(i)).or_default().push(i);
    }
    let mut groups: Vec<Vec<usize>> = groups.into_values().collect();
    groups.sort_by_key(|g| g.iter().min().copied());
    groups
}

/// `members` ordered parents first along `links` (child, parent), and whether links
/// among them form a cycle (its members then come in no particular order among
/// themselves). A member's link to itself orders nothing.
fn parents_first(members: &[usize], links: &[(usize, usize)]) -> (Vec<usize>, bool) {
    let mut graph = DiGraph::<usize, ()>::new();
    let nodes: BTreeMap<usize, NodeIndex> =
        members.iter().map(|&m| (m, graph.add_node(m))).collect();
    for (child, parent) in links.iter().filter(|(c, p)| c != p) {
        if let (Some(&c), Some(&p)) = (nodes.get(child), nodes.get(parent)) {
            graph.update_edge(c, p, ());
        }
    }
    // Strongly connected components come in reverse topological order: with edges from
    // child to parent, parents first.
    let components = tarjan_scc(&graph);
    let cyclic = components.iter().any(|c| c.len() > 1);
    let ordered = components.into_iter().flatten().map(|n| graph[n]).collect();
    (ordered, cyclic)
}

/// Truncated tables linked by the target's foreign keys cannot be emptied one by one
/// without CASCADE, and synced ones cannot delete and insert one by one (a parent's row
/// goes only after its children's, a child's comes only after its parent's): they are
/// grouped (connected components of the key graph among the tables with that action),
/// each group loaded parents first in one transaction.
fn group_linked(
    tables: &mut [TablePlan],
    edges: &[(TableName, TableName)],
) -> (Vec<Vec<usize>>, Vec<bool>) {
    let mut result = Vec::new();
    let mut cycles = Vec::new();
    for action in [Action::Truncate, Action::Sync] {
        let members: BTreeMap<&TableName, usize> = tables
            .iter()
            .enumerate()
            .filter(|(_, t)| t.action == action)
            .map(|(i, t)| (&t.target, i))
            .collect();
        let mut linked: Vec<(usize, usize)> = Vec::new();
        for (child, parent) in edges {
            if let (Some(&c), Some(&p)) = (members.get(child), members.get(parent)) {
                linked.push((c, p));
            }
        }
        let groups = components(members.values().copied(), &linked);
        for group in groups.into_iter().filter(|m| m.len() > 1) {
            let (ordered, cyclic) = parents_first(&group, &linked);
            cycles.push(cyclic);
            let g = result.len();
            let others = ordered.len() - 1;
            let s = if others == 1 { "" } else { "s" };
            for &i in &ordered {
                tables[i].linked_group = Some(g);
                tables[i].notes.push(if action == Action::Truncate {
                    format!(
                        "truncated together with {others} other table{s} its foreign keys link \
                         it to (one TRUNCATE, no CASCADE), loaded parents first in one \
                         transaction"
                    )
                } else {
                    format!(
                        "synced together with {others} other table{s} its foreign keys link it \
                         to, in one transaction: new and changed rows parents first, then \
                         deleted rows children first"
                    )
                });
            }
            result.push(ordered);
        }
    }
    (result, cycles)
}

/// Loads into existing tables check the target's foreign keys row by row, so a table
/// must wait for the tables it references (when both are loaded by this run). A cycle of
/// keys cannot be ordered: its tables get a note instead, and load in any order.
fn order_by_foreign_keys(tables: &mut [TablePlan], edges: &[(TableName, TableName)]) {
    let index: BTreeMap<&TableName, usize> = tables
        .iter()
        .enumerate()
        .filter(|(_, t)| t.action != Action::Keep)
        .map(|(i, t)| (&t.target, i))
        .collect();
    let mut after: Vec<Vec<usize>> = vec![Vec::new(); tables.len()];
    for (child, parent) in edges {
        if let (Some(&c), Some(&p)) = (index.get(child), index.get(parent)) {
            let existing = |i: usize| !matches!(tables[i].action, Action::Create | Action::Replace);
            if existing(c) && !after[c].contains(&p) {
                after[c].push(p);
            }
        }
    }
    // Tables on a cycle of keys (a self-reference counts) cannot be ordered.
    let mut graph = DiGraph::<usize, ()>::new();
    let nodes: Vec<NodeIndex> = (0..tables.len()).map(|i| graph.add_node(i)).collect();
    for (c, parents) in after.iter().enumerate() {
        for &p in parents {
            graph.update_edge(nodes[c], nodes[p], ());
        }
    }
    let cyclic: Vec<usize> = tarjan_scc(&graph)
        .into_iter()
        .filter(|c| c.len() > 1 || graph.contains_edge(c[0], c[0]))
        .flatten()
        .map(|n| graph[n])
        .collect();
    for i in cyclic {
        after[i].clear();
        if tables[i].linked_group.is_some() {
            // Its truncate group loads the cycle in one transaction (see there).
            continue;
        }
        tables[i].notes.push(
            "its foreign keys on the target form a cycle with other copied tables, so it is \
             not ordered after them; load may fail on a key that is not yet satisfied"
                .into(),
        );
    }
    for (t, a) in tables.iter_mut().zip(after) {
        t.load_after = a;
    }
}

/// Types whose binary COPY form cannot travel between servers: the `reg*` types are
/// sent as bare OIDs, which name other objects (or nothing) on the target, and an empty
/// `tsquery` is refused by binary input. Their text form is what pg_dump moves.
fn text_only(type_sql: &str) -> bool {
    matches!(
        type_sql.trim_end_matches("[]"),
        "regclass"
            | "regtype"
            | "regproc"
            | "regprocedure"
            | "regoper"
            | "regoperator"
            | "regconfig"
            | "regdictionary"
            | "regnamespace"
            | "regrole"
            | "regcollation"
            | "tsquery"
    )
}

/// As many streams as the machine has cores, within [`MIN_DEFAULT_JOBS`] and
/// [`MAX_DEFAULT_JOBS`], but no more than there is work to share: one per table, or more
/// when a table is big enough to split.
fn default_jobs(tables: &[TablePlan]) -> usize {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(MIN_DEFAULT_JOBS, MAX_DEFAULT_JOBS);
    let splittable: usize = tables
        .iter()
        .map(|t| (t.estimated_bytes.max(0) as u64 / MIN_PART_BYTES).max(1) as usize)
        .sum();
    cores.min(splittable).max(1)
}

/// Splits `table` into block ranges of about `part_size` bytes when it is worth it and
/// safe: a table pgbarge creates (so parts can load into a staging table that is renamed
/// atomically), a plain heap (not a partitioned parent), a source that scans TID ranges
/// efficiently (PostgreSQL 14+), and at least `split_above` bytes. Parts load at once
/// when there are several jobs, and each commits on its own, so even with one job a crash
/// loses at most the part in flight. The number of parts is a multiple of `jobs`: 9
/// parts over 4 streams would end with one part loading alone, at a single stream's
/// speed (measured over the simulated link: 35% slower than 8 parts).
fn split(table: &mut TablePlan, src: &TableDetail, sizes: &Sizes) {
    let bytes = src.table.total_bytes.max(0) as u64;
    let pages = src.table.pages;
    if bytes < sizes.split_above.max(1) || pages < 2 {
        return;
    }
    let why_not = if !src.inherits.is_empty() {
        Some("not split: it inherits from another table, which must exist before it")
    } else if table.action != Action::Create {
        Some("not split: loading an existing table stays one transaction, so other sessions never see it half-loaded")
    } else if src.table.kind != TableKind::Regular {
        Some("not split: a partitioned table is read through its parent in one stream")
    } else if sizes.version < 140_000 {
        Some("not split: the source is older than PostgreSQL 14 (no TID range scans)")
    } else {
        None
    };
    if let Some(why) = why_not {
        table.notes.push(why.to_string());
        return;
    }
    table.parts = block_ranges(bytes, pages, sizes.part_size, sizes.jobs);
    table.staging = Some(staging_name(&table.target, src.table.oid));
}

/// What decides whether and how tables are split.
struct Sizes {
    split_above: u64,
    part_size: u64,
    jobs: usize,
    /// The source's server version.
    version: i32,
}

/// About `bytes / part_size` ranges of `pages` blocks, at least 2, a multiple of `jobs`.
fn block_ranges(bytes: u64, pages: i64, part_size: u64, jobs: usize) -> Vec<Part> {
    let jobs = jobs.max(1) as u64;
    let count = bytes
        .div_ceil(part_size.max(1))
        .div_ceil(jobs)
        .saturating_mul(jobs)
        .clamp(2, MAX_PARTS)
        .min(pages.max(1) as u64) as usize;
    let per = (pages + count as i64 - 1) / count as i64;
    (0..count)
        .map(|i| Part {
            index: i,
            first_block: i as i64 * per,
            end_block: (i + 1 < count).then_some((i as i64 + 1) * per),
        })
        .collect()
}

/// A staging table's name for source table `oid`: short, unique per source table, and
/// clearly ours if a crash ever leaves it behind.
fn staging_name(table: &TableName, oid: u32) -> TableName {
    let prefix: String = table.name.chars().take(30).collect();
    TableName::new(&table.schema, format!("_pgbarge_{oid}_{prefix}"))
}

/// The comment that marks a staging table pgbarge created: with its `_pgbarge_` name
/// and its owner, what a later run or `clean` checks before it drops one.
pub const STAGING_MARKER: &str = "pgbarge staging table";

/// Statements marking `staging` as pgbarge's (for `clean` and a later run's leftover
/// check), run where it is created...
pub fn staging_marker_sql(staging: &TableName) -> String {
    format!(
        "COMMENT ON TABLE {} IS {}",
        staging.sql(),
        literal(STAGING_MARKER)
    )
}

/// ...and its removal, run where it takes the real name.
pub fn staging_unmark_sql(staging: &TableName) -> String {
    format!("COMMENT ON TABLE {} IS NULL", staging.sql())
}

/// Drops `staging` if it is a leftover of an earlier run that was never resumed nor
/// cleaned (its record is gone, or it ran without one) — only when the catalog says it
/// is pgbarge's (owned by the connecting role, marked): a table of that name that is not
/// is left alone, and creating the staging table then fails on it.
pub fn drop_leftover_staging_sql(staging: &TableName) -> String {
    let check = format!(
        "SELECT FROM pg_catalog.pg_class c WHERE c.oid = pg_catalog.to_regclass({}) \
           AND c.relowner = (SELECT r.oid FROM pg_catalog.pg_roles r \
                             WHERE r.rolname = CURRENT_USER) \
           AND pg_catalog.obj_description(c.oid, 'pg_class') = {}",
        literal(&staging.sql()),
        literal(STAGING_MARKER)
    );
    let body = format!(
        "BEGIN IF EXISTS ({check}) THEN DROP TABLE {}; END IF; END",
        staging.sql()
    );
    format!("DO {}", crate::quote::dollar(&body))
}

/// Loads the leaves of a big partitioned table pgbarge creates at once, each into a
/// staging table of its own (see [`TablePlan::leaf_loads`]), big leaves in block ranges
/// as [`split`] does for tables. A table created with others (a replace group) keeps
/// one transaction.
fn split_leaves(table: &mut TablePlan, src: &TableDetail, tree: &[Partition], sizes: &Sizes) {
    let bytes = src.table.total_bytes.max(0) as u64;
    if bytes < sizes.split_above.max(1) || table.leaves.is_empty() {
        return;
    }
    if table.action != Action::Create {
        table.notes.push(
            "leaves loaded one after another: loading an existing table stays one transaction"
                .into(),
        );
        return;
    }
    for leaf in tree.iter().filter(|p| table.leaves.contains(&p.name)) {
        let staging = staging_name(&leaf.name, leaf.oid);
        let leaf_bytes = leaf.bytes.max(0) as u64;
        let parts =
            if sizes.version >= 140_000 && leaf_bytes >= sizes.split_above && leaf.pages >= 2 {
                block_ranges(leaf_bytes, leaf.pages, sizes.part_size, 1)
            } else {
                Vec::new()
            };
        table.leaf_loads.push(LeafLoad {
            create: leaf_staging_sql(leaf, &staging, &src.columns),
            attach: vec![
                staging_unmark_sql(&staging),
                format!(
                    "ALTER TABLE {} RENAME TO {}",
                    staging.sql(),
                    ident(&leaf.name.name)
                ),
                format!(
                    "ALTER TABLE {} ATTACH PARTITION {} {}",
                    leaf.parent.sql(),
                    leaf.name.sql(),
                    leaf.bound
                ),
            ]
            .into_iter()
            .chain(bound_check(leaf).map(|_| leaf.name.drop_constraint_sql(LEAF_BOUND)))
            .collect(),
            name: leaf.name.clone(),
            staging,
            parts,
            estimated_bytes: leaf.bytes,
        });
    }
    // This says more than the note of how partitions are loaded.
    table.notes.retain(|n| !n.starts_with(PARTITIONED_NOTE));
    table.notes.push(format!(
        "{PARTITIONED_NOTE} its {} leaves load at once, each into a table of its own that \
         is attached at the end",
        table.leaf_loads.len()
    ));
}

/// The CHECK a staging leaf carries: its partition constraint, unless that names the
/// source's objects (a hash partition's checks the parent's oid).
fn bound_check(leaf: &Partition) -> Option<&str> {
    leaf.constraint
        .as_deref()
        .filter(|c| !c.contains("satisfies_hash_partition"))
}

/// `CREATE TABLE` of `leaf`'s staging table: its columns in its own order with the
/// table's types, collations and generation expressions, its own defaults and NOT NULLs
/// (identity columns are plain: the partitioned table's identity covers them once
/// attached), its storage options and its partition constraint.
fn leaf_staging_sql(leaf: &Partition, staging: &TableName, columns: &[Column]) -> String {
    let mut defs: Vec<String> = leaf
        .columns
        .iter()
        .map(|c| {
            let mut def = format!("{} {}", ident(&c.name), c.ty);
            let table_column = columns.iter().find(|t| t.name == c.name);
            if let Some(coll) = table_column.and_then(|t| t.collation.as_ref()) {
                def.push_str(&format!(" COLLATE {coll}"));
            }
            match table_column {
                Some(Column {
                    default: Some(d),
                    generated: true,
                    ..
                }) => def.push_str(&format!(" GENERATED ALWAYS AS ({}) STORED", d.expr)),
                _ => {
                    if let Some((_, d)) = leaf.defaults.iter().find(|(n, _)| n == &c.name) {
                        def.push_str(&format!(" DEFAULT {d}"));
                    }
                }
            }
            if c.not_null {
                def.push_str(" NOT NULL");
            }
            def
        })
        .collect();
    if let Some(check) = bound_check(leaf) {
        defs.push(format!("CONSTRAINT {} CHECK ({check})", ident(LEAF_BOUND)));
    }
    let with = if leaf.options.is_empty() {
        String::new()
    } else {
        format!(" WITH ({})", leaf.options.join(", "))
    };
    format!(
        "CREATE TABLE {} (\n    {}\n){with}",
        staging.sql(),
        defs.join(",\n    ")
    )
}

fn base_plan(src: &TableDetail, action: Action) -> TablePlan {
    TablePlan {
        estimated_rows: src.table.estimated_rows,
        estimated_bytes: src.table.total_bytes,
        data_bytes: src.table.data_bytes,
        ..TablePlan::new(src.table.name.clone(), action, src.table.kind)
    }
}

fn plan_create(src: &TableDetail, objects: &SchemaObjects) -> TablePlan {
    let mut plan = base_plan(src, Action::Create);
    let name = &src.table.name;
    let mut spec = CreateSpec {
        sequences: Vec::new(),
        columns: Vec::new(),
        owned_by: Vec::new(),
        primary_key: src
            .primary_key
            .as_ref()
            .map(|pk| (pk.name.clone(), pk.definition.clone())),
        partition_by: objects.partition_keys.get(name).cloned(),
        partitions: Vec::new(),
        checks: Vec::new(),
        unlogged: src.table.unlogged,
        options: src.table.options.clone(),
        inherits: src.inherits.clone(),
        column_options: Vec::new(),
        of_type: src.table.of_type.clone(),
        typed_options: src
            .columns
            .iter()
            .filter_map(|c| {
                let mut clause = String::new();
                if let (Some(d), false) = (&c.default, c.generated) {
                    clause.push_str(&format!(" DEFAULT {}", d.expr));
                }
                if c.not_null {
                    clause.push_str(" NOT NULL");
                }
                (!clause.is_empty()).then(|| (c.name.clone(), clause))
            })
            .collect(),
    };
    plan.requires = src.inherits.clone();
    for t in src.columns.iter().filter_map(|c| c.row_type_of.as_ref()) {
        if t != name && !plan.requires.contains(t) {
            plan.requires.push(t.clone());
        }
    }
    for col in &src.columns {
        let serial = col.sequence.iter().filter(|s| !s.identity);
        for seq in serial.chain(&col.leftover_sequences) {
            // A serial column's sequence (or one an identity column still owns) comes
            // along, created before the table.
            spec.sequences.push(seq.parameters.create_sql(&seq.name));
            spec.owned_by.push((seq.name.clone(), col.name.clone()));
        }
        // An inherited column comes with the parent (INHERITS); declaring it again would
        // only merge it.
        if !col.inherited || src.inherits.is_empty() {
            spec.columns.push(column_ddl(col));
        }
        if !col.generated {
            plan.columns.push(ColumnPlan {
                name: col.name.clone(),
                source_type: col.ty.sql.clone(),
                target_type: Some(col.ty.sql.clone()),
                route: ColumnRoute::Identical,
                value_hash: crate::rowhash::ValueHash::of(&col.ty, &col.ty),
            });
        }
    }
    plan.sequences = sequence_plans(src)
        .into_iter()
        .map(|s| SequencePlan { created: true, ..s })
        .collect();
    if let Some(parts) = objects.partitions.get(name) {
        // Parents first; default partitions after their siblings, so that attaching a
        // loaded sibling never scans a loaded default partition for its rows.
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
                plan.leaves.push(p.name.clone());
                spec.partitions.push(PartitionStep::Leaf {
                    name: p.name.clone(),
                    create: p.create_sql(),
                });
            } else {
                spec.partitions
                    .extend(p.create_sql().into_iter().map(PartitionStep::Sql));
            }
        }
        plan.notes.push(format!(
            "{PARTITIONED_NOTE} {} partitions created, rows loaded into each leaf directly",
            parts.len()
        ));
    }
    // The table's own objects, and its partitions'.
    let in_tree = |t: &TableName| {
        t == name
            || objects
                .partitions
                .get(name)
                .is_some_and(|ps| ps.iter().any(|p| &p.name == t))
    };
    for o in objects.table_objects.iter().filter(|o| in_tree(&o.table)) {
        let add = o.add_constraint_sql();
        match o.kind {
            // NOT VALID: rows on the source break it, so it is added after the data
            // (with the foreign keys), as pg_dump does.
            TableObjectKind::Check if !o.validated => {}
            // Calls a function that takes a table's row type, created after the tables:
            // added after the data, with it.
            TableObjectKind::Check if objects.check_waits_for_functions(o) => {}
            TableObjectKind::Check if &o.table == name => {
                spec.checks.push((o.name.clone(), o.definition.clone()))
            }
            TableObjectKind::Check => spec.partitions.push(PartitionStep::Sql(add)),
            TableObjectKind::PrimaryKey | TableObjectKind::Unique | TableObjectKind::Exclusion => {
                plan.after_data.push(add)
            }
            // On a partitioned table pg_get_indexdef says `ON ONLY`, which would leave
            // the index invalid with no partition indexes: created on the whole tree.
            // (pg_get_indexdef prints ONLY for partitioned tables alone, at any level.)
            // One that is invalid on the source (built ON ONLY, its partitions' indexes
            // never attached) stays so.
            TableObjectKind::Index if o.validated => {
                plan.after_data
                    .push(o.definition.replacen(" ON ONLY ", " ON ", 1))
            }
            TableObjectKind::Index => plan.after_data.push(o.definition.clone()),
            // Foreign keys, triggers and rules wait until every table is loaded.
            TableObjectKind::ForeignKey | TableObjectKind::Trigger | TableObjectKind::Rule => {}
        }
    }
    for p in objects
        .table_properties
        .iter()
        .filter(|p| in_tree(&p.table))
    {
        match p.setting.column_clause() {
            // The table's own columns are set on the empty table, before the rows.
            Some((column, clause)) if p.table == *name => {
                spec.column_options.push((column.to_string(), clause))
            }
            Some(_) => spec
                .partitions
                .push(PartitionStep::Sql(p.setting.sql(&p.table))),
            None => plan.after_data.push(p.setting.sql(&p.table)),
        }
    }
    plan.create = Some(spec);
    plan
}

/// Sequences owned by the source table's columns, to be synchronised after the load.
fn sequence_plans(src: &TableDetail) -> Vec<SequencePlan> {
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

fn plan_existing(
    src: &TableDetail,
    tgt: &TableDetail,
    snapshot: &Snapshot,
    options: &PlanOptions,
) -> TablePlan {
    let holds_rows = snapshot.target_non_empty.contains(&tgt.table.name);
    let mode = options
        .per_table
        .get(&src.table.name)
        .copied()
        .or(options.mode);
    if mode == Some(LoadMode::Replace) {
        // The target's definition goes; the source's comes, exactly as for a new table.
        let mut plan = plan_create(src, &snapshot.source_objects);
        plan.action = Action::Replace;
        return plan;
    }
    let action = match (holds_rows, mode) {
        (_, Some(LoadMode::Upsert)) => Action::Upsert,
        (true, Some(LoadMode::Sync)) => Action::Sync,
        // Emptied with the others even when it holds no rows: a refresh truncates every
        // table of a foreign-key group together, and an empty member left out of the
        // TRUNCATE would refuse it (its keys still point at the truncated tables).
        (false, Some(LoadMode::Truncate)) => Action::Truncate,
        (false, _) => Action::Load,
        (true, Some(LoadMode::Append)) => Action::Append,
        (true, Some(LoadMode::Truncate)) => Action::Truncate,
        (true, _) => Action::NeedsMode,
    };
    let mut plan = base_plan(src, action);
    plan.target_partitioned = tgt.table.kind == TableKind::Partitioned;
    plan.identity_always = tgt
        .columns
        .iter()
        .filter(|c| c.identity == Some(Identity::Always))
        .map(|c| c.name.clone())
        .collect();
    if let Some(constraints) = snapshot.target_unvalidated.get(&tgt.table.name) {
        if tgt.table.is_owner || snapshot.target_privileges.is_superuser {
            plan.unvalidated = constraints.clone();
        } else {
            plan.notes.push(format!(
                "its {} NOT VALID constraint(s) check every loaded row: the role does not own \
                 the table, so it cannot set them aside",
                constraints.len()
            ));
        }
    }
    // For its owner, row-level security applies only when forced.
    if tgt.table.row_security_applies && tgt.table.is_owner {
        plan.lifted_force_rls = true;
        plan.notes.push(
            "it forces row-level security on its owner: FORCE is set aside for the load and \
             restored in the same transaction"
                .into(),
        );
    }
    if let Some(triggers) = snapshot.target_triggers.get(&tgt.table.name) {
        if tgt.table.is_owner || snapshot.target_privileges.is_superuser {
            plan.quiet_triggers = triggers.clone();
            plan.notes.push(format!(
                "its {} trigger{} set aside during the load (copied rows are not rewritten \
                 or logged) and restored in the same transaction",
                triggers.len(),
                if triggers.len() == 1 { " is" } else { "s are" }
            ));
        } else {
            plan.notes.push(format!(
                "its {} trigger{} fire on the copied rows: the role does not own the table, \
                 so it cannot set them aside",
                triggers.len(),
                if triggers.len() == 1 { "" } else { "s" }
            ));
        }
    }
    if action == Action::Truncate && !plan.target_partitioned {
        let indexes = snapshot
            .target_indexes
            .get(&tgt.table.name)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let owner = tgt.table.is_owner || snapshot.target_privileges.is_superuser;
        let (aside, kept): (Vec<_>, Vec<_>) = indexes.iter().partition(|i| owner && !i.referenced);
        plan.rebuilt_indexes = aside.into_iter().cloned().collect();
        if !plan.rebuilt_indexes.is_empty() {
            plan.notes.push(format!(
                "{} set aside for the load and built again after the rows are in, in the \
                 same transaction",
                crate::text::plural(plan.rebuilt_indexes.len(), "index", "indexes"),
            ));
        }
        if !kept.is_empty() {
            plan.notes.push(format!(
                "{} maintained row by row during the load: {}",
                crate::text::plural(kept.len(), "index is", "indexes are"),
                if owner {
                    "foreign keys depend on them"
                } else {
                    "the role does not own the table"
                }
            ));
        }
    }
    if action == Action::Upsert {
        plan.upsert_key = tgt
            .primary_key
            .as_ref()
            .map(|pk| pk.columns.clone())
            .unwrap_or_default();
    }
    let by_name: BTreeMap<&str, &Column> =
        tgt.columns.iter().map(|c| (c.name.as_str(), c)).collect();
    for col in src.columns.iter().filter(|c| !c.generated) {
        let target_col = by_name.get(col.name.as_str());
        let route = match target_col {
            None => ColumnRoute::MissingOnTarget,
            Some(t) if t.generated => ColumnRoute::GeneratedOnTarget,
            Some(t) => match conversion(&col.ty, &t.ty) {
                Conversion::Identical => ColumnRoute::Identical,
                Conversion::ViaText => ColumnRoute::Text,
                Conversion::Refused(why) => ColumnRoute::Refused(why),
            },
        };
        if route == ColumnRoute::Text {
            plan.notes.push(format!(
                "column {} converts {} → {}",
                col.name,
                col.ty.sql,
                target_col.map(|t| t.ty.sql.as_str()).unwrap_or("?")
            ));
        }
        plan.columns.push(ColumnPlan {
            name: col.name.clone(),
            source_type: col.ty.sql.clone(),
            target_type: target_col.map(|t| t.ty.sql.clone()),
            route,
            value_hash: target_col
                .map(|t| crate::rowhash::ValueHash::of(&col.ty, &t.ty))
                .unwrap_or_default(),
        });
    }
    let source_names: Vec<&str> = src.columns.iter().map(|c| c.name.as_str()).collect();
    plan.target_only_required = tgt
        .columns
        .iter()
        .filter(|c| !source_names.contains(&c.name.as_str()))
        .filter(|c| c.not_null && c.default.is_none() && c.identity.is_none() && !c.generated)
        .map(|c| c.name.clone())
        .collect();
    // Only where the target itself owns a sequence on the column.
    let target_owned: Vec<&str> = tgt
        .columns
        .iter()
        .filter(|c| c.sequence.is_some())
        .map(|c| c.name.as_str())
        .collect();
    plan.sequences = sequence_plans(src)
        .into_iter()
        .filter(|s| target_owned.contains(&s.column.as_str()))
        .collect();
    if action == Action::Sync {
        plan.sync = Some(sync_plan(&mut plan, tgt, snapshot, options));
    }
    plan
}

/// How a synced table's rows are matched: by the target's primary key, else by a unique
/// key on NOT NULL columns, else as a multiset; and whether `--since` applies to it.
fn sync_plan(
    plan: &mut TablePlan,
    tgt: &TableDetail,
    snapshot: &Snapshot,
    options: &PlanOptions,
) -> SyncPlan {
    let copied: Vec<String> = plan.copied_columns().map(str::to_string).collect();
    let copied: Vec<&str> = copied.iter().map(String::as_str).collect();
    let usable =
        |key: &Vec<String>| !key.is_empty() && key.iter().all(|k| copied.contains(&k.as_str()));
    let key = tgt
        .primary_key
        .as_ref()
        .map(|pk| pk.columns.clone())
        .into_iter()
        .chain(
            snapshot
                .target_indexes
                .get(&tgt.table.name)
                .into_iter()
                .flatten()
                .filter_map(|i| i.unique_key.clone()),
        )
        .find(usable)
        .unwrap_or_default();
    if key.is_empty() {
        plan.notes.push(
            "no primary key or unique key on NOT NULL columns: compared as a multiset of \
             rows (equal rows count), extra copies deleted and missing ones inserted"
                .into(),
        );
    } else if tgt.primary_key.as_ref().map(|pk| &pk.columns) != Some(&key) {
        plan.notes.push(format!(
            "rows matched by the unique key ({})",
            key.join(", ")
        ));
    }
    let since = options.since.as_ref().and_then(|column| {
        if !copied.contains(&column.as_str()) {
            plan.notes.push(format!(
                "no column \"{column}\" to sync --since: every row is compared"
            ));
            None
        } else if key.is_empty() {
            plan.notes
                .push("--since needs a key to find deleted rows: every row is compared".into());
            None
        } else {
            Some(column.clone())
        }
    });
    SyncPlan { key, since }
}

/// `CREATE TYPE … AS RANGE`, naming the multirange type only where it is not the one
/// PostgreSQL would derive (so the statement also works on a target older than 14).
fn range_ddl(
    schema: &str,
    name: &str,
    r: &crate::catalog::RangeDefinition,
) -> Result<String, String> {
    if r.canonical {
        return Err(
            "it has a canonical function, which only a superuser can create (it is written in C)"
                .into(),
        );
    }
    let q = |(s, n): &(String, String)| crate::quote::qualified(s, n);
    let mut parts = vec![
        format!("SUBTYPE = {}", r.subtype),
        format!("SUBTYPE_OPCLASS = {}", q(&r.opclass)),
    ];
    if let Some(c) = &r.collation {
        parts.push(format!("COLLATION = {}", q(c)));
    }
    if let Some(d) = &r.diff {
        if d.0 != "pg_catalog" {
            return Err(format!(
                "its subtype_diff function {} is user-defined, and pgbarge creates types \
                 before functions",
                q(d)
            ));
        }
        parts.push(format!("SUBTYPE_DIFF = {}", q(d)));
    }
    if let Some((ms, mn)) = &r.multirange {
        let derived = match name.find("range") {
            Some(i) => format!("{}multirange{}", &name[..i], &name[i + "range".len()..]),
            None => format!("{name}_multirange"),
        };
        if ms != schema || *mn != derived {
            parts.push(format!(
                "MULTIRANGE_TYPE_NAME = {}",
                q(&(ms.clone(), mn.clone()))
            ));
        }
    }
    Ok(format!(
        "CREATE TYPE {} AS RANGE ({})",
        crate::quote::qualified(schema, name),
        parts.join(", ")
    ))
}

/// `CREATE TYPE` / `CREATE DOMAIN` for a user type, or why it cannot be created.
fn type_ddl(t: &UserType) -> Result<String, String> {
    let name = t.sql_name();
    match &t.definition {
        TypeDefinition::Enum { labels } => Ok(format!(
            "CREATE TYPE {name} AS ENUM ({})",
            labels
                .iter()
                .map(|l| literal(l))
                .collect::<Vec<_>>()
                .join(", ")
        )),
        TypeDefinition::Composite { attributes } => {
            Ok(format!("CREATE TYPE {name} AS ({})", attributes.join(", ")))
        }
        TypeDefinition::Domain {
            base,
            not_null,
            default,
            checks,
        } => {
            let mut s = format!("CREATE DOMAIN {name} AS {base}");
            if let Some(d) = default {
                s.push_str(&format!(" DEFAULT {d}"));
            }
            if *not_null {
                s.push_str(" NOT NULL");
            }
            for c in checks.iter().filter(|c| c.validated && !c.calls_function) {
                s.push_str(&format!(" CONSTRAINT {} {}", ident(&c.name), c.definition));
            }
            Ok(s)
        }
        TypeDefinition::Range(range) => range_ddl(&t.schema, &t.name, range),
        TypeDefinition::Shell => Ok(format!("CREATE TYPE {}", t.sql_name())),
        TypeDefinition::Unsupported { typtype } => Err(match typtype {
            'r' => "its definition could not be read".to_string(),
            'b' => "it is a base type, usually from an extension (CREATE EXTENSION on the target)"
                .to_string(),
            other => format!("types of kind '{other}' are not created by pgbarge"),
        }),
    }
}
