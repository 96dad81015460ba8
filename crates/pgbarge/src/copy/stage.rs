//! What the copy stage is given, and keeps unchanged, for the whole run.

use crate::conninfo::ConnInfo;
use crate::ledger::Ledger;
use crate::plan::units::{Op, Unit, Work};
use crate::rowhash::Hashing;

use super::options::{CopyOptions, Event};

/// The transaction statements every part of the stage sends.
pub(super) const BEGIN: &str = "BEGIN";
pub(super) const COMMIT: &str = "COMMIT";
pub(super) const ROLLBACK: &str = "ROLLBACK";

/// The run's fixed inputs: what to run, where to connect, where to record it, and how
/// to report. Shared read-only by every worker.
pub(super) struct Stage<'a, L: Ledger> {
    pub work: &'a Work,
    pub source_info: ConnInfo,
    pub target_info: ConnInfo,
    pub ledger: &'a L,
    pub options: &'a CopyOptions,
    /// Sets a target transaction's search path from the source's (see
    /// [`super::search_path`]).
    pub search_path: String,
    /// How rows hash alike on both servers, for syncs: asked once, by the first sync.
    pub hashing: tokio::sync::OnceCell<Hashing>,
    pub on_event: &'a (dyn Fn(Event) + Send + Sync),
}

impl<L: Ledger> Stage<'_, L> {
    pub fn event(&self, e: Event) {
        (self.on_event)(e)
    }
}

/// The tables (indexes into [`Work::tables`]) whose rows `unit` streams, in its order.
pub(super) fn copied_tables(unit: &Unit) -> impl Iterator<Item = usize> + '_ {
    unit.ops.iter().filter_map(|op| match op {
        Op::Copy { table, .. } => Some(*table),
        _ => None,
    })
}
