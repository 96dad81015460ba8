//! A small run for the stage's tests: three tables to load (one split in two parts),
//! one kept as it is, and the units around them.

use std::sync::{Arc, Mutex};

use crate::catalog::TableName;
use crate::conninfo::{ConnInfo, Environment};
use crate::ledger::MemoryLedger;
use crate::plan::units::{Op, Unit, UnitId, UnitKind, Work, WorkTable, WORK_FORMAT};
use crate::plan::{Action, Content, CopyFormat, Endpoint, SourceRead, Step};
use crate::poison::Locked;

use super::options::{CopyOptions, Event};
use super::stage::Stage;

pub const PREPARE: usize = 0;
pub const TABLE_A: usize = 1;
pub const PART_B0: usize = 2;
pub const PART_B1: usize = 3;
pub const FINISH_B: usize = 4;
pub const POST_DATA: usize = 6;

/// A unit id as the ledger writes it.
pub fn unit_id(text: &str) -> UnitId {
    text.parse().expect("a unit id")
}

pub fn name(n: &str) -> TableName {
    TableName::new("public", n)
}

fn table(n: &str, action: Action, estimated_bytes: i64) -> WorkTable {
    WorkTable {
        source: name(n),
        target: name(n),
        action,
        format: CopyFormat::Binary,
        estimated_bytes,
        staging: None,
        leaf_staging: Vec::new(),
    }
}

pub fn copy(table: usize, n: &str) -> Op {
    Op::Copy {
        table,
        read: SourceRead {
            table: name(n),
            columns: vec!["id".into()],
            tree: false,
            blocks: None,
            format: CopyFormat::Binary,
        },
        into: format!("COPY {n} FROM STDIN"),
    }
}

pub fn object(what: &str, needs: &[&str]) -> Op {
    Op::Object {
        step: Step {
            what: what.into(),
            sql: format!("CREATE {what}"),
            needs: needs.iter().map(|n| name(n)).collect(),
        },
    }
}

pub fn unit(id: &str, kind: UnitKind, waits: &[&str], completes: &[usize], ops: Vec<Op>) -> Unit {
    Unit {
        id: unit_id(id),
        kind,
        title: id.into(),
        waits_for: waits.iter().map(|w| unit_id(w)).collect(),
        completes: completes.to_vec(),
        ops,
        estimated_bytes: 0,
    }
}

/// Tables a (0), b (1, split), c (2), k (3, kept); units as the constants above name
/// them, post-data waiting for every other.
pub fn work() -> Work {
    let endpoint = Endpoint {
        connection: "u@h:5432/db".into(),
        database: "db".into(),
        host: "h".into(),
        server_version: 150000,
    };
    let after_prepare = &["prepare"];
    Work {
        format: WORK_FORMAT,
        source: endpoint.clone(),
        target: endpoint,
        content: Content::SchemaAndData,
        jobs: 2,
        counts: Default::default(),
        skipped: Vec::new(),
        tables: vec![
            table("a", Action::Create, 1000),
            table("b", Action::Create, 5000),
            table("c", Action::Truncate, 300),
            table("k", Action::Keep, 0),
        ],
        units: vec![
            unit("prepare", UnitKind::Prepare, &[], &[], Vec::new()),
            unit(
                "table a",
                UnitKind::Table,
                after_prepare,
                &[0],
                vec![copy(0, "a")],
            ),
            unit(
                "part b 0",
                UnitKind::Part,
                after_prepare,
                &[],
                vec![copy(1, "b")],
            ),
            unit(
                "part b 1",
                UnitKind::Part,
                after_prepare,
                &[],
                vec![copy(1, "b")],
            ),
            unit(
                "finish b",
                UnitKind::Finish,
                &["part b 0", "part b 1"],
                &[1],
                Vec::new(),
            ),
            unit(
                "table c",
                UnitKind::Table,
                after_prepare,
                &[2],
                vec![copy(2, "c")],
            ),
            unit(
                "post-data",
                UnitKind::PostData,
                &[
                    "prepare", "table a", "part b 0", "part b 1", "finish b", "table c",
                ],
                &[],
                vec![
                    object("view on a", &["a"]),
                    object("view on b", &["b"]),
                    object("function", &[]),
                ],
            ),
        ],
    }
}

/// What a [`Stage`] borrows, with the events it reports kept for the test to read.
pub struct Harness {
    pub work: Work,
    pub ledger: MemoryLedger,
    options: CopyOptions,
    info: ConnInfo,
    events: Arc<Mutex<Vec<Event>>>,
    on_event: Box<dyn Fn(Event) + Send + Sync>,
}

impl Harness {
    pub fn new(work: Work) -> Self {
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = events.clone();
        let env = Environment::new(Vec::<(String, String)>::new(), None);
        Harness {
            work,
            ledger: MemoryLedger::default(),
            options: CopyOptions::default(),
            info: ConnInfo::parse("host=h user=u dbname=db", &env).expect("a valid conninfo"),
            events,
            on_event: Box::new(move |e| sink.locked().push(e)),
        }
    }

    pub fn stage(&self) -> Stage<'_, MemoryLedger> {
        Stage {
            work: &self.work,
            source_info: self.info.clone(),
            target_info: self.info.clone(),
            ledger: &self.ledger,
            options: &self.options,
            search_path: String::new(),
            hashing: tokio::sync::OnceCell::new(),
            on_event: &*self.on_event,
        }
    }

    /// The events reported so far, taken.
    pub fn events(&self) -> Vec<Event> {
        std::mem::take(&mut *self.events.locked())
    }
}
