//! What a run did, as data. The CLI renders it as a table or JSON.

use serde::Serialize;

use crate::catalog::TableName;
use crate::error::Side;
use crate::plan::units::{UnitId, UnitKind};
use crate::plan::{Action, Content, CopyFormat, Endpoint};
use crate::text::thousands;

/// A unit that failed for good (after its retries), and what it held back.
#[derive(Debug, Clone, Serialize)]
pub struct UnitFailure {
    pub unit: UnitId,
    pub kind: UnitKind,
    pub title: String,
    /// The tables it loads: each is as it was on the target.
    pub tables: Vec<TableName>,
    pub message: String,
    pub side: Option<Side>,
    /// The server's SQLSTATE, when a server refused.
    #[serde(skip)]
    pub sql_state: Option<crate::error::SqlState>,
    /// Retries ran out on an error that could pass (the link stayed down).
    pub transient: bool,
    /// Units that waited on it and did not run.
    pub blocked: Vec<String>,
}

/// What a resumed run found already done.
#[derive(Debug, Clone, Serialize)]
pub struct Resumed {
    pub units_skipped: usize,
    pub units_total: usize,
    /// Rows of the skipped units; `None` when the run died before it wrote some of
    /// their counts down (rows are counted by the target once a unit committed).
    pub rows_skipped: Option<u64>,
    pub bytes_skipped: u64,
    /// Tables completed before the interruption.
    pub tables_done_before: Vec<TableName>,
}

/// One table's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct TableReport {
    pub table: TableName,
    pub action: Action,
    pub format: CopyFormat,
    pub rows: u64,
    /// COPY bytes moved (as read from the source).
    pub bytes: u64,
    pub seconds: f64,
    /// For a synced table: what the comparison found and repaired.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sync: Option<crate::sync::SyncStats>,
}

impl TableReport {
    pub fn rows_per_second(&self) -> f64 {
        if self.seconds > 0.0 {
            self.rows as f64 / self.seconds
        } else {
            0.0
        }
    }
}

/// The outcome of a whole run.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub content: Content,
    pub source: Endpoint,
    pub target: Endpoint,
    pub tables: Vec<TableReport>,
    /// Objects created besides the tables, by kind ("views": 7, …).
    pub schema: std::collections::BTreeMap<crate::plan::ObjectKind, usize>,
    /// Objects left out: they cannot be created on the target, and nothing copied needs
    /// them.
    pub skipped: Vec<crate::plan::Skipped>,
    pub seconds: f64,
    /// Units that failed for good; the rest of the run went on.
    pub failures: Vec<UnitFailure>,
    /// Transient failures retried.
    pub retries: u32,
    /// Set when this run continued an interrupted one.
    pub resumed: Option<Resumed>,
    /// The source connection holding the snapshot was lost mid-run: units started after
    /// that read a later snapshot.
    pub snapshot_renewed: bool,
    /// The transactions the run's (first) snapshot saw, `xmin:xmax:running,…`: where a
    /// follow's stream takes over.
    #[serde(skip)]
    pub snapshot: Option<crate::xid::XidSnapshot>,
    /// What the user should know about the result (tables that may mix two points in
    /// time, …).
    pub warnings: Vec<String>,
}

impl RunReport {
    pub fn total_rows(&self) -> u64 {
        self.tables.iter().map(|t| t.rows).sum()
    }

    pub fn total_bytes(&self) -> u64 {
        self.tables.iter().map(|t| t.bytes).sum()
    }

    /// `3 tables, 1,204,332 rows moved to db "app" on "x.rds.amazonaws.com" in 4.2 s`
    pub fn summary(&self) -> String {
        let n = self.tables.len();
        let rows = self.total_rows();
        if self.content == Content::SchemaOnly {
            return format!(
                "{n} table{} defined (no rows moved) on db \"{}\" on \"{}\" in {:.1} s",
                if n == 1 { "" } else { "s" },
                self.target.database,
                self.target.host,
                self.seconds
            );
        }
        format!(
            "{} table{}, {} row{} moved to db \"{}\" on \"{}\" in {:.1} s",
            n,
            if n == 1 { "" } else { "s" },
            thousands(rows),
            if rows == 1 { "" } else { "s" },
            self.target.database,
            self.target.host,
            self.seconds
        )
    }
}
