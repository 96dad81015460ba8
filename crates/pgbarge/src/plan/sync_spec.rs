//! What a sync of one table is, as the plan decides it: the columns compared, the key
//! rows are matched by, how each column is hashed, and the statements that read and merge
//! — the copy stage carries it out with [`crate::sync`].

use serde::{Deserialize, Serialize};

use super::CopyFormat;
use crate::catalog::TableName;
use crate::error::Side;
use crate::quote::ident;
use crate::rowhash::{Hashing, ValueHash};

/// One table's sync, as the plan decides it and the copy stage carries it out.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SyncSpec {
    /// The source server and database (`user@host:port/db`): what the ledger's records
    /// of earlier syncs are kept by, so that another source's are never used.
    #[serde(default)]
    pub source_server: String,
    pub source: TableName,
    pub target: TableName,
    /// The columns compared and moved (the copied columns, in the source's order).
    pub columns: Vec<String>,
    /// The key rows are matched by: the target's primary key or a unique key on NOT NULL
    /// columns. Empty: the table has none, and rows are compared as a multiset (equal
    /// rows count; extra copies are deleted and missing ones inserted).
    pub key: Vec<String>,
    /// `--since COLUMN`, when the table has that column and a key.
    pub since: Option<String>,
    /// How each of `columns` is hashed (by text, or integers and uuids by value).
    #[serde(default)]
    pub value_hashes: Vec<ValueHash>,
    pub format: CopyFormat,
    /// The temporary table (in `pg_temp`) the source's new and changed rows load into.
    pub staging: String,
    /// The source is partitioned: its rows are its partitions' (otherwise `ONLY`, as the
    /// copy reads it: not its inheritance children).
    pub source_partitioned: bool,
    pub target_partitioned: bool,
    /// The plan's estimate of the source's rows, to size the first level.
    pub estimated_rows: i64,
    /// Copied columns that are `GENERATED ALWAYS AS IDENTITY` on the target.
    pub identity_always: Vec<String>,
}

impl SyncSpec {
    pub(crate) fn from(&self, side: Side) -> String {
        let (name, partitioned) = match side {
            Side::Source => (&self.source, self.source_partitioned),
            Side::Target => (&self.target, self.target_partitioned),
        };
        if partitioned {
            name.sql()
        } else {
            format!("ONLY {}", name.sql())
        }
    }

    pub(crate) fn keyed(&self) -> bool {
        !self.key.is_empty()
    }

    /// How column `name` is hashed.
    pub(crate) fn kind_of(&self, name: &str) -> ValueHash {
        self.columns
            .iter()
            .position(|c| c == name)
            .and_then(|i| self.value_hashes.get(i).copied())
            .unwrap_or_default()
    }

    /// The hash buckets are made of: the key's, or the whole row's.
    pub(crate) fn bucket_hash(&self, hashing: &Hashing, side: Side) -> String {
        match self.key.as_slice() {
            [] => self.row_hash(hashing, side),
            [k] => hashing.value(side, k, self.kind_of(k), 0),
            _ => {
                let kinds: Vec<ValueHash> = self.key.iter().map(|k| self.kind_of(k)).collect();
                hashing.row(side, &self.key, &kinds)
            }
        }
    }

    pub(crate) fn row_hash(&self, hashing: &Hashing, side: Side) -> String {
        hashing.row(side, &self.columns, &self.value_hashes)
    }

    /// The statement applying the staged rows: an upsert by key, or for a multiset a
    /// plain insert of the missing copies. Staged rows differ from the target's (or,
    /// with `--since`, were written since the last sync), so each is written without
    /// comparing it again.
    pub fn apply_sql(&self) -> String {
        super::Merge {
            target: &self.target,
            staging: &TableName::new("pg_temp", self.staging.clone()),
            columns: &self.columns.iter().map(String::as_str).collect::<Vec<_>>(),
            key: &self.key,
            identity_always: &self.identity_always,
            only_changed: false,
        }
        .sql()
    }

    /// `CREATE TEMPORARY TABLE` of the staging table, in the repair's transaction.
    pub fn staging_sql(&self) -> String {
        format!(
            "CREATE TEMPORARY TABLE {} (LIKE {} INCLUDING DEFAULTS) ON COMMIT DROP",
            ident(&self.staging),
            self.target.sql()
        )
    }
}
