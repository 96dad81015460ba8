//! Where what outlives a process is kept, as the session's decisions see it: the
//! interrupted run and its committed units, and the follow. [`Store`] is what the
//! session asks; [`PgStore`] keeps it in the target's ledger schema, [`MemoryStore`] in
//! memory, for tests of those decisions without servers.
//!
//! Writing a unit's record in the unit's own transaction — so that the two commit
//! together — stays a capability of the ledger on the target ([`crate::ledger::Ledger`]
//! hands its SQL to the copy stage); so do a follow's position, written in the
//! transaction that applies the changes, and a sync's mark, written with its repair.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Mutex;

use tokio_postgres::Client;

use crate::copy::ExportedSnapshot;
use crate::error::Result;
use crate::follow::Following;
use crate::ledger::{self, Abandoned, Ledger, MemoryLedger, Moved, PgLedger, SavedRun};
use crate::plan::units::{UnitId, Work};
use crate::poison::Locked;
use crate::xid::XidSnapshot;

/// What the session keeps and reads back between processes.
pub trait Store: Sync {
    /// A run's ledger: where its units are recorded as they commit.
    type Ledger: Ledger;

    /// Where a store is named for people (`the "pgbarge" schema on the target`).
    fn describe(&self) -> String;

    /// Makes the store ready to record a run; `false` when it cannot be made (the
    /// role may not create the schema): the run then is not recorded.
    fn ensure(&self) -> impl Future<Output = Result<bool>> + Send;

    /// The last unfinished run, if any.
    fn last_run(&self) -> impl Future<Output = Result<Option<SavedRun>>> + Send;

    /// Records a new run of `work`, reading the source at `snapshot` (whose tables'
    /// change counters are `changes`): its id and its ledger.
    fn start_run(
        &self,
        work: &Work,
        snapshot: &ExportedSnapshot,
        changes: &BTreeMap<String, i64>,
    ) -> impl Future<Output = Result<(i64, Self::Ledger)>> + Send;

    /// Records the snapshot run `id` reads from now on (a resumed run's new one).
    fn record_snapshot(
        &self,
        id: i64,
        xids: &XidSnapshot,
    ) -> impl Future<Output = Result<()>> + Send;

    /// The ledger of `run`, resumed.
    fn resume_run(&self, run: &SavedRun) -> Self::Ledger;

    /// Forgets run `id`, finished.
    fn finish_run(&self, id: i64) -> impl Future<Output = Result<()>> + Send;

    /// Ends what is left of `run`'s sessions, so that what it committed is final.
    fn end_sessions(&self, run: &SavedRun) -> impl Future<Output = Result<()>> + Send;

    /// Abandons `run`: its staging tables dropped, the run forgotten.
    fn abandon(&self, run: &SavedRun) -> impl Future<Output = Result<Abandoned>> + Send;

    /// The follow recorded, if any.
    fn following(&self) -> impl Future<Output = Result<Option<Following>>> + Send;
}

/// The store in the target's ledger schema (see [`ledger::Store`] for where it is and
/// how it is checked before every use).
#[derive(Clone, Copy)]
pub struct PgStore<'a> {
    ledger: &'a ledger::Store,
    target: &'a Client,
    /// The target's `server_version_num` (how sessions are ended depends on it).
    server_version: i32,
}

impl<'a> PgStore<'a> {
    pub fn new(ledger: &'a ledger::Store, target: &'a crate::connect::Connection) -> Self {
        PgStore {
            ledger,
            target: &target.client,
            server_version: target.server_version_num,
        }
    }

    /// Where the ledger lives.
    pub fn ledger(&self) -> &'a ledger::Store {
        self.ledger
    }
}

impl Store for PgStore<'_> {
    type Ledger = PgLedger;

    fn describe(&self) -> String {
        format!("the \"{}\" schema on the target", self.ledger.schema())
    }

    async fn ensure(&self) -> Result<bool> {
        self.ledger.ensure(self.target).await
    }

    async fn last_run(&self) -> Result<Option<SavedRun>> {
        self.ledger.last_run(self.target).await
    }

    async fn start_run(
        &self,
        work: &Work,
        snapshot: &ExportedSnapshot,
        changes: &BTreeMap<String, i64>,
    ) -> Result<(i64, PgLedger)> {
        let ledger = self
            .ledger
            .start_run(
                self.target,
                work,
                (&snapshot.taken_at, &snapshot.xids),
                changes,
            )
            .await?;
        Ok((ledger.run_id(), ledger))
    }

    async fn record_snapshot(&self, id: i64, xids: &XidSnapshot) -> Result<()> {
        self.ledger.record_snapshot(self.target, id, xids).await
    }

    fn resume_run(&self, run: &SavedRun) -> PgLedger {
        self.ledger.resume_run(run)
    }

    async fn finish_run(&self, id: i64) -> Result<()> {
        self.ledger.finish_run(self.target, id).await
    }

    async fn end_sessions(&self, run: &SavedRun) -> Result<()> {
        self.ledger
            .end_sessions(self.target, run.id, self.server_version)
            .await
    }

    async fn abandon(&self, run: &SavedRun) -> Result<Abandoned> {
        let mut abandoned = self.ledger.abandon(self.target, run).await?;
        // A follow waiting for this copy cannot start any more.
        abandoned.orphaned_slot = crate::follow::state::load(self.target, self.ledger)
            .await
            .ok()
            .flatten()
            .filter(|f| f.snapshot.is_none())
            .map(|f| f.slot);
        Ok(abandoned)
    }

    async fn following(&self) -> Result<Option<Following>> {
        crate::follow::state::load(self.target, self.ledger).await
    }
}

/// A store in memory: what a test puts in it, and what the session does to it.
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<Memory>,
}

/// What a [`MemoryStore`] holds.
#[derive(Debug, Default, Clone)]
pub struct Memory {
    /// `false`: the store cannot be made (as a role without CREATE).
    pub unavailable: bool,
    pub run: Option<SavedRun>,
    pub following: Option<Following>,
    /// Runs whose sessions were ended, and runs abandoned, in order.
    pub ended: Vec<i64>,
    pub abandoned: Vec<i64>,
}

impl MemoryStore {
    pub fn new(memory: Memory) -> Self {
        MemoryStore {
            state: Mutex::new(memory),
        }
    }

    /// What the store holds now.
    pub fn memory(&self) -> Memory {
        self.state.locked().clone()
    }

    /// Records `unit` of the run as committed (what a run's ledger would do).
    pub fn commit(&self, unit: UnitId, moved: Moved) {
        if let Some(run) = self.state.locked().run.as_mut() {
            run.done.insert(unit, moved);
        }
    }

    /// Starts recording a run of `work`.
    pub fn start(&self, id: i64, work: Work) {
        self.state.locked().run = Some(SavedRun {
            id,
            started_at: String::new(),
            source: work.source.connection.clone(),
            snapshot_at: None,
            snapshot: None,
            work,
            source_changes: BTreeMap::new(),
            done: BTreeMap::new(),
            salvaged: Default::default(),
        });
    }
}

impl Store for MemoryStore {
    type Ledger = MemoryLedger;

    fn describe(&self) -> String {
        "memory".into()
    }

    async fn ensure(&self) -> Result<bool> {
        Ok(!self.state.locked().unavailable)
    }

    async fn last_run(&self) -> Result<Option<SavedRun>> {
        Ok(self.state.locked().run.clone())
    }

    async fn start_run(
        &self,
        work: &Work,
        snapshot: &ExportedSnapshot,
        _changes: &BTreeMap<String, i64>,
    ) -> Result<(i64, MemoryLedger)> {
        let id = self.state.locked().run.as_ref().map_or(1, |r| r.id + 1);
        self.start(id, work.clone());
        self.record_snapshot(id, &snapshot.xids).await?;
        Ok((id, MemoryLedger::default()))
    }

    async fn record_snapshot(&self, id: i64, xids: &XidSnapshot) -> Result<()> {
        if let Some(run) = self.state.locked().run.as_mut().filter(|r| r.id == id) {
            run.snapshot = Some(xids.clone());
        }
        Ok(())
    }

    /// A fresh ledger: what it records, [`MemoryStore::commit`] keeps.
    fn resume_run(&self, _run: &SavedRun) -> MemoryLedger {
        MemoryLedger::default()
    }

    async fn finish_run(&self, id: i64) -> Result<()> {
        let mut state = self.state.locked();
        if state.run.as_ref().is_some_and(|r| r.id == id) {
            state.run = None;
        }
        Ok(())
    }

    async fn end_sessions(&self, run: &SavedRun) -> Result<()> {
        self.state.locked().ended.push(run.id);
        Ok(())
    }

    async fn abandon(&self, run: &SavedRun) -> Result<Abandoned> {
        let mut state = self.state.locked();
        state.abandoned.push(run.id);
        state.run = None;
        Ok(Abandoned {
            dropped: run.work.staging_tables().cloned().collect(),
            kept: Vec::new(),
            orphaned_slot: state
                .following
                .as_ref()
                .filter(|f| f.snapshot.is_none())
                .map(|f| f.slot.clone()),
        })
    }

    async fn following(&self) -> Result<Option<Following>> {
        Ok(self.state.locked().following.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::fixtures::{plan, table};
    use crate::plan::Action;

    fn block_on<F: Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime")
            .block_on(f)
    }

    #[test]
    fn a_memory_store_keeps_a_run_and_its_units_until_it_finishes() {
        let store = MemoryStore::default();
        let work = plan(vec![table("orders", Action::Create, 0)]).work();
        let snapshot = ExportedSnapshot {
            id: "00000003-1".into(),
            taken_at: "now".into(),
            xids: "100:104:101".parse().expect("a snapshot"),
        };
        let (id, _ledger) =
            block_on(store.start_run(&work, &snapshot, &BTreeMap::new())).expect("started");
        let unit = work.units[0].id.clone();
        store.commit(
            unit.clone(),
            Moved {
                rows: Some(3),
                bytes: 30,
            },
        );
        let run = block_on(store.last_run()).expect("read").expect("a run");
        assert_eq!(run.id, id);
        assert_eq!(
            run.snapshot.map(|s| s.to_string()).as_deref(),
            Some("100:104:101")
        );
        assert_eq!(run.done.get(&unit).and_then(|m| m.rows), Some(3));
        let later = "200:200:".parse().expect("a snapshot");
        block_on(store.record_snapshot(id, &later)).expect("recorded");
        let run = block_on(store.last_run()).expect("read").expect("a run");
        assert_eq!(run.snapshot, Some(later));
        block_on(store.finish_run(id + 1)).expect("another run: nothing");
        assert!(store.memory().run.is_some());
        block_on(store.finish_run(id)).expect("finished");
        assert!(block_on(store.last_run()).expect("read").is_none());
    }
}
