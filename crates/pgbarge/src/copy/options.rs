//! What the copy stage is told (its [`CopyOptions`]) and what it tells back while it
//! works (its [`Event`]s): the stage never prints.

use std::time::Duration;

use crate::catalog::TableName;
use crate::report::TableReport;
use crate::retry::RetryPolicy;

/// How the copy stage behaves under faults.
#[derive(Debug, Clone)]
pub struct CopyOptions {
    pub retry: RetryPolicy,
    /// A stream that moves no byte for this long is cancelled and retried as transient.
    pub stall_timeout: Duration,
    /// How long a target statement waits for a lock before it is retried.
    pub lock_timeout: Duration,
    /// Stop the whole run at the first unit that fails for good.
    pub fail_fast: bool,
    /// `--source-encoding`: what the source's bytes really are, for a SQL_ASCII source
    /// (which passes bytes through unconverted). The target sessions read with this
    /// client encoding, so the target server converts the rows to its own.
    pub source_encoding: Option<String>,
    /// Where the run is recorded on the target (`--ledger-schema`).
    pub ledger: crate::ledger::Store,
}

/// The default stall timeout: long enough for a busy server's pauses, short enough
/// that a dead link is noticed within a minute.
pub const DEFAULT_STALL_TIMEOUT: Duration = Duration::from_secs(60);
/// The default lock timeout (see `SET_LOCK_TIMEOUT` in the pair's session setup).
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(1);

impl Default for CopyOptions {
    fn default() -> Self {
        CopyOptions {
            retry: RetryPolicy::default(),
            stall_timeout: DEFAULT_STALL_TIMEOUT,
            source_encoding: None,
            lock_timeout: DEFAULT_LOCK_TIMEOUT,
            fail_fast: false,
            ledger: crate::ledger::Store::default(),
        }
    }
}

/// What the copy stage reports while it works.
#[derive(Debug, Clone)]
pub enum Event {
    TableStarted {
        table: TableName,
        estimated_bytes: i64,
    },
    /// Bytes read from the source so far for a table (all its parts together).
    Progress {
        table: TableName,
        bytes: u64,
    },
    TableFinished(TableReport),
    /// Work that moves no bytes and may take a while: building a table's keys and
    /// indexes after its rows, creating what follows the data. `table`: whose, if one's.
    Phase {
        table: Option<TableName>,
        what: &'static str,
    },
    /// A unit failed transiently and will be tried again after `delay`.
    Retrying {
        unit: String,
        attempt: u32,
        retries: u32,
        delay: Duration,
        reason: String,
    },
    /// A unit failed for good; the units waiting on it will not run.
    UnitFailed {
        unit: String,
        error: String,
    },
    /// The source connection holding the run's snapshot was lost: the units not yet
    /// started read a new snapshot.
    SnapshotRenewed {
        reason: String,
    },
}
