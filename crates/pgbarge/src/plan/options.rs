//! What the user chose: what moves (definitions, rows), what becomes of rows already on
//! the target, and how big the pieces of a load are.

use std::collections::BTreeMap;

use serde::Serialize;

use super::SchemaOptions;
use crate::catalog::TableName;

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

/// Split tables larger than this by default: below it, one stream per table keeps up.
pub const DEFAULT_SPLIT_ABOVE: u64 = 64 << 20;

/// The default size of one part of a split table. Each part commits on its own, with its
/// record in the ledger, so this bounds the work a crash or a dropped connection loses;
/// over a 10 ms link a part this size takes seconds, so its two round trips of overhead
/// are lost in the noise.
pub const DEFAULT_PART_SIZE: u64 = 32 << 20;
