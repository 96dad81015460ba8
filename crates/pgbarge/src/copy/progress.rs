//! Where the run stands, shared by the workers: which units are done, running or failed
//! (the [`Schedule`]), what each table has moved, the failures so far, and whether the
//! run is stopping.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use crate::error::{Error, Kind};
use crate::ledger::{Ledger, Moved};
use crate::plan::units::{Op, Unit, UnitId, Work};
use crate::poison::Locked;
use crate::report::{TableReport, UnitFailure};
use crate::sync::SyncStats;

use super::failure;
use super::options::Event;
use super::schedule::{Schedule, State};
use super::stage::{copied_tables, Stage};

/// Per-table progress shared by the units loading it.
#[derive(Default)]
pub(super) struct TableProgress {
    started: OnceLock<Instant>,
    pub bytes: AtomicU64,
    rows: AtomicU64,
    /// What its sync found, once its unit committed.
    pub sync: Mutex<Option<SyncStats>>,
}

/// The run's shared, changing state.
pub(super) struct Progress {
    pub schedule: Mutex<Schedule>,
    /// Objects of the post-data unit already created, each on its own, by a salvage
    /// (of an earlier attempt, or of this run): not created again.
    pub salvaged: Mutex<BTreeSet<usize>>,
    /// Signalled when a unit ends or the run stops: waiting workers look again.
    pub changed: tokio::sync::Notify,
    /// By index into [`Work::tables`].
    pub tables: Vec<TableProgress>,
    /// Tables completed by this run.
    completed: Mutex<BTreeSet<usize>>,
    pub stopping: AtomicBool,
    pub failures: Mutex<Vec<UnitFailure>>,
    /// Transient failures retried.
    pub retries: AtomicU32,
}

impl Progress {
    /// The start of a run of `work` whose units in `done` committed earlier, with the
    /// post-data objects in `salvaged` created earlier.
    pub fn new(work: &Work, done: &BTreeMap<UnitId, Moved>, salvaged: &BTreeSet<usize>) -> Self {
        let done_ids: BTreeSet<UnitId> = done.keys().cloned().collect();
        let progress = Progress {
            schedule: Mutex::new(Schedule::new(work, &done_ids)),
            salvaged: Mutex::new(salvaged.clone()),
            changed: tokio::sync::Notify::new(),
            tables: work
                .tables
                .iter()
                .map(|_| TableProgress::default())
                .collect(),
            completed: Mutex::new(BTreeSet::new()),
            stopping: AtomicBool::new(false),
            failures: Mutex::new(Vec::new()),
            retries: AtomicU32::new(0),
        };
        for (table, bytes) in earlier_part_bytes(work, done) {
            progress.tables[table]
                .bytes
                .fetch_add(bytes, Ordering::Relaxed);
        }
        progress
    }

    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// The units committed, by this run or the one it resumed.
    pub fn done_units<'w>(&self, work: &'w Work) -> BTreeSet<&'w UnitId> {
        let schedule = self.schedule.locked();
        work.units
            .iter()
            .enumerate()
            .filter(|(i, _)| schedule.state(*i) == State::Done)
            .map(|(_, u)| &u.id)
            .collect()
    }

    /// Tables completed by this run, by index.
    pub fn completed(&self) -> BTreeSet<usize> {
        self.completed.locked().clone()
    }

    /// The next unit to run, waiting while every remaining unit waits on one in flight.
    /// `None`: nothing left to run, or the run is stopping.
    pub async fn next_unit<L: Ledger>(&self, stage: &Stage<'_, L>) -> Option<usize> {
        loop {
            // Registered before looking, so a unit ending in between is not missed.
            let changed = self.changed.notified();
            if self.is_stopping() {
                return None;
            }
            {
                let mut schedule = self.schedule.locked();
                if let Some(u) = schedule.take_ready() {
                    return Some(u);
                }
                // Before `finished`, which holds as well when the units left wait on each
                // other: they fail, rather than end the run as if nothing were left.
                let stuck = schedule.stuck();
                if !stuck.is_empty() {
                    drop(schedule);
                    for u in stuck {
                        self.fail(
                            stage,
                            u,
                            Error::new(
                                Kind::Copy,
                                "internal: the remaining units wait on each other (a cycle \
                                 in the load order); copy these tables in separate runs.",
                            ),
                        );
                    }
                    continue;
                }
                if schedule.finished() {
                    return None;
                }
            }
            changed.await;
        }
    }

    /// `unit` starts: the tables it loads or completes start, if they had not.
    pub fn start<L: Ledger>(&self, stage: &Stage<'_, L>, unit: &Unit) {
        for i in copied_tables(unit).chain(unit.completes.iter().copied()) {
            let t = &stage.work.tables[i];
            if self.tables[i].started.set(Instant::now()).is_ok() {
                stage.event(Event::TableStarted {
                    table: t.target.clone(),
                    estimated_bytes: t.estimated_bytes,
                });
            }
        }
    }

    /// Unit `u` committed, having loaded `rows_by_table` and read `bytes`.
    pub fn succeed<L: Ledger>(
        &self,
        stage: &Stage<'_, L>,
        u: usize,
        rows_by_table: &[(usize, u64)],
        bytes: u64,
    ) {
        let unit = &stage.work.units[u];
        let rows: u64 = rows_by_table.iter().map(|(_, r)| r).sum();
        stage.ledger.committed(&unit.id, rows, bytes);
        for &(i, r) in rows_by_table {
            self.tables[i].rows.fetch_add(r, Ordering::SeqCst);
        }
        self.schedule.locked().done(u);
        for &i in &unit.completes {
            self.completed.locked().insert(i);
            stage.event(Event::TableFinished(self.table_report(stage.work, i)));
        }
        self.changed.notify_waiters();
    }

    /// Unit `u` failed for good with `err`: it and the units waiting on it will not run.
    pub fn fail<L: Ledger>(&self, stage: &Stage<'_, L>, u: usize, err: Error) {
        let unit = &stage.work.units[u];
        let err = failure::advised(err);
        let blocked = self.schedule.locked().fail(u);
        let failure = failure::unit_failure(stage.work, unit, &err, &blocked);
        stage.event(Event::UnitFailed {
            unit: unit.title.clone(),
            error: err.message().to_string(),
        });
        self.failures.locked().push(failure);
        self.changed.notify_waiters();
    }

    /// Table `i` as it stands now.
    pub fn table_report(&self, work: &Work, i: usize) -> TableReport {
        let t = &work.tables[i];
        let state = &self.tables[i];
        TableReport {
            table: t.target.clone(),
            action: t.action,
            format: t.format,
            rows: state.rows.load(Ordering::SeqCst),
            bytes: state.bytes.load(Ordering::SeqCst),
            sync: state.sync.locked().clone(),
            seconds: state
                .started
                .get()
                .map(|s| s.elapsed().as_secs_f64())
                .unwrap_or_default(),
        }
    }
}

/// Bytes of split tables' parts committed earlier, by table: they count towards their
/// tables' progress.
fn earlier_part_bytes(work: &Work, done: &BTreeMap<UnitId, Moved>) -> Vec<(usize, u64)> {
    work.units
        .iter()
        .filter(|u| u.completes.is_empty())
        .filter_map(|unit| match (done.get(&unit.id), unit.ops.first()) {
            (Some(moved), Some(Op::Copy { table, .. })) => Some((*table, moved.bytes)),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::copy::fixtures::{self, Harness, FINISH_B, PART_B0, POST_DATA, PREPARE, TABLE_A};
    use crate::error::Side;
    use crate::plan::units::UnitKind;

    fn moved(rows: u64, bytes: u64) -> Moved {
        Moved {
            rows: Some(rows),
            bytes,
        }
    }

    #[test]
    fn parts_committed_earlier_count_towards_their_table() {
        let work = fixtures::work();
        let done = BTreeMap::from([
            (fixtures::unit_id("part b 1"), moved(7, 70)),
            (fixtures::unit_id("table a"), moved(1, 100)),
        ]);
        assert_eq!(earlier_part_bytes(&work, &done), vec![(1, 70)]);
        let progress = Progress::new(&work, &done, &BTreeSet::new());
        assert_eq!(progress.table_report(&work, 1).bytes, 70);
        assert_eq!(
            progress.table_report(&work, 0).bytes,
            0,
            "a was done, not in progress"
        );
        assert_eq!(progress.done_units(&work).len(), 2);
    }

    #[test]
    fn a_committed_unit_is_recorded_and_completes_its_tables() {
        let h = Harness::new(fixtures::work());
        let stage = h.stage();
        let progress = Progress::new(&h.work, &BTreeMap::new(), &BTreeSet::new());
        assert_eq!(progress.schedule.locked().take_ready(), Some(PREPARE));
        progress.succeed(&stage, PREPARE, &[], 0);
        assert_eq!(progress.schedule.locked().take_ready(), Some(TABLE_A));
        progress.start(&stage, &h.work.units[TABLE_A]);
        progress.succeed(&stage, TABLE_A, &[(0, 12)], 340);

        assert_eq!(progress.completed(), BTreeSet::from([0]));
        assert_eq!(
            h.ledger.done().get(&fixtures::unit_id("table a")),
            Some(&moved(12, 340))
        );
        let events = h.events();
        assert!(
            matches!(&events[..], [
                Event::TableStarted { table, estimated_bytes: 1000 },
                Event::TableFinished(report),
            ] if *table == fixtures::name("a") && report.rows == 12),
            "{events:?}"
        );
    }

    #[test]
    fn a_failed_unit_blocks_what_waits_on_it_and_is_reported() {
        let h = Harness::new(fixtures::work());
        let stage = h.stage();
        let progress = Progress::new(&h.work, &BTreeMap::new(), &BTreeSet::new());
        progress.schedule.locked().take_ready();
        progress.succeed(&stage, PREPARE, &[], 0);
        h.events();
        let err = Error::new(Kind::Copy, "source server: boom").on(Side::Source);
        progress.fail(&stage, PART_B0, err);

        let failures = progress.failures.locked().clone();
        let [failure] = &failures[..] else {
            panic!("one failure: {failures:?}");
        };
        assert_eq!(failure.kind, UnitKind::Part);
        assert_eq!(failure.tables, vec![fixtures::name("b")]);
        assert_eq!(failure.message, "source server: boom");
        assert_eq!(failure.side, Some(Side::Source));
        assert_eq!(failure.blocked, ["finish b", "post-data"]);
        let schedule = progress.schedule.locked();
        assert_eq!(schedule.state(FINISH_B), State::Blocked);
        assert_eq!(schedule.state(POST_DATA), State::Blocked);
        assert_eq!(
            schedule.state(TABLE_A),
            State::Waiting,
            "a does not wait on b"
        );
        assert!(matches!(
            &h.events()[..],
            [Event::UnitFailed { unit, error }] if unit == "part b 0" && error == "source server: boom"
        ));
    }

    #[tokio::test]
    async fn units_that_wait_on_each_other_fail_instead_of_being_left_out() {
        let mut work = fixtures::work();
        // table a and table c each wait on the other: a planning error.
        let (a, c) = (fixtures::unit_id("table a"), fixtures::unit_id("table c"));
        let c_index = work.units.iter().position(|u| u.id == c).expect("table c");
        work.units[TABLE_A].waits_for.push(c);
        work.units[c_index].waits_for.push(a);
        let h = Harness::new(work);
        let stage = h.stage();
        let progress = Progress::new(&h.work, &BTreeMap::new(), &BTreeSet::new());
        let mut ran = Vec::new();
        while let Some(u) = progress.next_unit(&stage).await {
            ran.push(u);
            progress.start(&stage, &h.work.units[u]);
            progress.succeed(&stage, u, &[], 0);
        }
        assert!(
            !ran.contains(&TABLE_A) && !ran.contains(&c_index),
            "{ran:?}"
        );
        let failures = progress.failures.locked().clone();
        let failed: Vec<String> = failures.iter().map(|f| f.unit.to_string()).collect();
        assert!(
            failed.contains(&"table a".to_string()) && failed.contains(&"table c".to_string()),
            "{failed:?}"
        );
        assert!(
            failures[0].message.contains("wait on each other"),
            "{failures:?}"
        );
    }
}
