//! Which unit runs next: a pure state machine over a run's units, with no I/O, so its
//! rules are tested without servers.
//!
//! A unit is ready when every unit it waits for is committed; the biggest ready unit
//! goes first, so long work starts early and small units fill the gaps. A unit that
//! fails blocks, transitively, the units that wait for it; the others go on. Units the
//! ledger already holds (a resumed run) start out done.

use std::collections::{BTreeMap, BTreeSet};

use crate::plan::units::{UnitId, Work};

/// Where a unit stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Waiting,
    Running,
    /// Committed, in this run or (resumed) an earlier one.
    Done,
    Failed,
    /// Waits, directly or not, on a failed unit: it will not run.
    Blocked,
}

/// The run's units and where each stands.
#[derive(Debug, Clone)]
pub struct Schedule {
    states: Vec<State>,
    /// Indexes of the units each unit waits for.
    waits: Vec<Vec<usize>>,
    /// Biggest first: the order ready units are handed out in.
    order: Vec<usize>,
}

impl Schedule {
    /// The schedule of `work`, with the units in `done` already committed. A unit that
    /// waits for an id the work does not hold waits for nothing (it was planned away).
    pub fn new(work: &Work, done: &BTreeSet<UnitId>) -> Schedule {
        let index: BTreeMap<&UnitId, usize> = work
            .units
            .iter()
            .enumerate()
            .map(|(i, u)| (&u.id, i))
            .collect();
        let waits = work
            .units
            .iter()
            .map(|u| {
                u.waits_for
                    .iter()
                    .filter_map(|id| index.get(id).copied())
                    .collect()
            })
            .collect();
        let states = work
            .units
            .iter()
            .map(|u| {
                if done.contains(&u.id) {
                    State::Done
                } else {
                    State::Waiting
                }
            })
            .collect();
        let mut order: Vec<usize> = (0..work.units.len()).collect();
        // Stable: equal sizes keep the plan's order.
        order.sort_by_key(|&i| std::cmp::Reverse(work.units[i].estimated_bytes));
        Schedule {
            states,
            waits,
            order,
        }
    }

    pub fn state(&self, unit: usize) -> State {
        self.states[unit]
    }

    /// The next unit to run, marked running; `None` when nothing is ready now.
    pub fn take_ready(&mut self) -> Option<usize> {
        let ready = self.order.iter().copied().find(|&i| {
            self.states[i] == State::Waiting
                && self.waits[i].iter().all(|&w| self.states[w] == State::Done)
        })?;
        self.states[ready] = State::Running;
        Some(ready)
    }

    /// `unit` committed.
    pub fn done(&mut self, unit: usize) {
        self.states[unit] = State::Done;
    }

    /// `unit` failed for good: it and every unit waiting on it, directly or not, will not
    /// run. Returns the units newly blocked.
    pub fn fail(&mut self, unit: usize) -> Vec<usize> {
        self.states[unit] = State::Failed;
        let mut blocked = Vec::new();
        loop {
            let more: Vec<usize> = (0..self.states.len())
                .filter(|&i| self.states[i] == State::Waiting)
                .filter(|&i| {
                    self.waits[i]
                        .iter()
                        .any(|&w| matches!(self.states[w], State::Failed | State::Blocked))
                })
                .collect();
            if more.is_empty() {
                return blocked;
            }
            for i in more {
                self.states[i] = State::Blocked;
                blocked.push(i);
            }
        }
    }

    /// Nothing is running and nothing more can start: the run is over.
    pub fn finished(&self) -> bool {
        !self.states.contains(&State::Running) && self.peek().is_none()
    }

    /// Units still waiting with nothing running that could free them: their waits form a
    /// cycle (a planning error; the caller fails them rather than wait forever).
    pub fn stuck(&self) -> Vec<usize> {
        if self.states.contains(&State::Running) || self.peek().is_some() {
            return Vec::new();
        }
        (0..self.states.len())
            .filter(|&i| self.states[i] == State::Waiting)
            .collect()
    }

    fn peek(&self) -> Option<usize> {
        self.order.iter().copied().find(|&i| {
            self.states[i] == State::Waiting
                && self.waits[i].iter().all(|&w| self.states[w] == State::Done)
        })
    }

    /// How many units are in `state`.
    pub fn count(&self, state: State) -> usize {
        self.states.iter().filter(|&&s| s == state).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::units::{Unit, UnitKind, WORK_FORMAT};
    use crate::plan::{Content, Endpoint};

    fn unit(id: &str, bytes: i64, waits: &[&str]) -> Unit {
        Unit {
            id: id.parse().expect("a unit id"),
            kind: UnitKind::Table,
            title: id.into(),
            waits_for: waits
                .iter()
                .map(|w| w.parse().expect("a unit id"))
                .collect(),
            completes: Vec::new(),
            ops: Vec::new(),
            estimated_bytes: bytes,
        }
    }

    fn work(units: Vec<Unit>) -> Work {
        let endpoint = Endpoint {
            connection: "u@h:5432/db".into(),
            database: "db".into(),
            host: "h".into(),
            server_version: 150000,
        };
        Work {
            format: WORK_FORMAT,
            source: endpoint.clone(),
            target: endpoint,
            content: Content::SchemaAndData,
            jobs: 2,
            counts: Default::default(),
            skipped: Vec::new(),
            tables: Vec::new(),
            units,
        }
    }

    /// prepare → parts p0, p1 (p1 bigger) → finish; small table t; post-data after all.
    fn split_run() -> Work {
        work(vec![
            unit("prepare", 0, &[]),
            unit("part t 0", 10, &["prepare"]),
            unit("part t 1", 20, &["prepare"]),
            unit("finish t", 0, &["part t 0", "part t 1"]),
            unit("table s", 5, &["prepare"]),
            unit(
                "post-data",
                0,
                &["prepare", "part t 0", "part t 1", "finish t", "table s"],
            ),
        ])
    }

    fn drain(s: &mut Schedule) -> Vec<usize> {
        let mut order = Vec::new();
        while let Some(u) = s.take_ready() {
            order.push(u);
            s.done(u);
        }
        order
    }

    #[test]
    fn dependencies_first_then_biggest_first() {
        let mut s = Schedule::new(&split_run(), &BTreeSet::new());
        assert_eq!(s.take_ready(), Some(0), "prepare alone is ready");
        assert_eq!(s.take_ready(), None, "everything else waits for it");
        s.done(0);
        assert_eq!(drain(&mut s), vec![2, 1, 4, 3, 5]);
        assert!(s.finished());
    }

    #[test]
    fn a_resumed_run_skips_what_the_ledger_holds() {
        let done: BTreeSet<UnitId> = ["prepare", "part t 1"]
            .iter()
            .map(|u| u.parse().expect("a unit id"))
            .collect();
        let mut s = Schedule::new(&split_run(), &done);
        assert_eq!(drain(&mut s), vec![1, 4, 3, 5]);
        assert_eq!(s.count(State::Done), 6);
    }

    #[test]
    fn a_failure_blocks_only_what_waits_on_it() {
        let mut s = Schedule::new(&split_run(), &BTreeSet::new());
        s.take_ready();
        s.done(0);
        assert_eq!(s.take_ready(), Some(2));
        let blocked = s.fail(2);
        assert_eq!(blocked, vec![3, 5], "finish t, then post-data");
        // The independent table still loads.
        assert_eq!(drain(&mut s), vec![1, 4]);
        assert!(s.finished());
        assert_eq!(s.state(3), State::Blocked);
    }

    #[test]
    fn running_units_hold_back_their_dependents() {
        let mut s = Schedule::new(&split_run(), &BTreeSet::new());
        s.take_ready();
        s.done(0);
        let a = s.take_ready().expect("a part");
        let b = s.take_ready().expect("the other part");
        let c = s.take_ready().expect("table s");
        assert_eq!(s.take_ready(), None, "finish waits for both parts");
        assert!(!s.finished());
        s.done(a);
        s.done(c);
        assert_eq!(s.take_ready(), None);
        s.done(b);
        assert_eq!(s.take_ready(), Some(3));
    }

    #[test]
    fn a_cycle_is_reported_not_waited_on() {
        let mut s = Schedule::new(
            &work(vec![
                unit("table a", 1, &["table b"]),
                unit("table b", 1, &["table a"]),
            ]),
            &BTreeSet::new(),
        );
        assert_eq!(s.take_ready(), None);
        assert_eq!(s.stuck(), vec![0, 1]);
    }
}
