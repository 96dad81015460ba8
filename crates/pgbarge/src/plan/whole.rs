//! The whole plan: every chosen table's plan, the objects created around them, and the
//! settings of the run — what `--dry-run` prints and the later stages read.

use serde::Serialize;

use super::{Content, ReplaceGroup, SchemaPlan, SkipReason, Skipped, TablePlan, TypePlan};
use crate::catalog::TableName;

/// Where the data comes from and goes to, as reports show it (never with a password).
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Endpoint {
    /// `user@host:port/db`.
    pub connection: String,
    pub database: String,
    pub host: String,
    pub server_version: i32,
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
}
