//! A round's messages taken in order: which transactions' changes are skipped (on the
//! target already), and the windows the others gather in — the net effect of each
//! window's changes written (see [`super::apply`]) once it holds [`WINDOW_ROWS`] rows,
//! or before a statement that must come after its changes (DDL, `TRUNCATE`).

use crate::error::{Error, Kind, Result, Side};

use super::apply::{Change, Statement, Window};
use super::follower::Follower;
use super::pgoutput::{Lsn, Message, Relation};

/// Rows gathered before they are written, within a round: bounds memory whatever the
/// size of a source transaction.
const WINDOW_ROWS: usize = 20_000;

/// The source transaction being read, as far as skipping its changes goes.
#[derive(Debug, Default)]
struct Txn {
    /// Committed before the position applied: all of it is on the target.
    applied: bool,
    xid: u32,
    /// Seen by the follow's snapshot (tables with their own are checked apart).
    seen: bool,
}

/// What a round's messages add up to so far: the window being gathered, the
/// transaction being read, and the round's tallies.
pub(super) struct Gathering {
    window: Window,
    txn: Txn,
    /// The commit position of the transaction being read.
    begun: Lsn,
    /// Just past the last commit read: the position the round reaches.
    pub end: Option<Lsn>,
    /// Source transactions seen (applied or skipped).
    pub commits: u64,
    pub changes: u64,
    /// The commit time of the first transaction applied (PostgreSQL microseconds).
    pub behind_since: Option<i64>,
    /// Columns added or dropped: (table, what).
    pub schema: Vec<(String, String)>,
}

impl Gathering {
    /// `strict`: every change is written on its own, in the source's order.
    pub fn new(strict: bool) -> Self {
        Gathering {
            window: if strict {
                Window::strict()
            } else {
                Window::default()
            },
            txn: Txn::default(),
            begun: Lsn::default(),
            end: None,
            commits: 0,
            changes: 0,
            behind_since: None,
            schema: Vec::new(),
        }
    }

    /// The statements writing what the window holds; it is empty afterwards. Logged
    /// (debug) with the rows it held, so that the bound can be seen at work.
    pub fn flush(&mut self) -> Vec<Statement> {
        let rows = self.window.entries();
        if rows > 0 {
            tracing::debug!(rows, limit = WINDOW_ROWS, "window flushed");
        }
        self.window.flush()
    }
}

impl Follower<'_> {
    /// Takes the next message of the round in: the statements to send now, if any.
    pub(super) async fn take(
        &mut self,
        message: Message,
        gathering: &mut Gathering,
    ) -> Result<Vec<Statement>> {
        let skip = self.skips_message(&message, &gathering.txn);
        // Counted as read: a window may cancel changes out (an insert deleted again),
        // and they were still applied.
        if !skip
            && matches!(
                message,
                Message::Insert { .. }
                    | Message::Update { .. }
                    | Message::Delete { .. }
                    | Message::Truncate { .. }
            )
        {
            gathering.changes += 1;
        }
        let mut statements = match message {
            Message::Begin {
                final_lsn,
                xid,
                commit_time,
            } => {
                self.begin_transaction(gathering, final_lsn, xid, commit_time);
                Vec::new()
            }
            Message::Commit { end_lsn, .. } => {
                gathering.end = Some(end_lsn);
                gathering.commits += 1;
                Vec::new()
            }
            Message::Relation(relation) => self.relation_message(relation, gathering).await?,
            Message::Insert { relation, new } if !skip => {
                self.add(gathering, relation, Change::Insert(new))?
            }
            Message::Update { relation, old, new } if !skip => {
                self.add(gathering, relation, Change::Update { old, new })?
            }
            Message::Delete { relation, old } if !skip => {
                self.add(gathering, relation, Change::Delete(old))?
            }
            Message::Truncate {
                relations,
                restart_identity,
                ..
            } if !skip => self.truncate(gathering, &relations, restart_identity),
            _ => Vec::new(),
        };
        if gathering.window.entries() >= WINDOW_ROWS {
            statements.extend(gathering.flush());
        }
        Ok(statements)
    }

    /// A transaction begins: whether its changes are on the target already (applied
    /// before, or seen by the follow's snapshot); the commit time of the first that is
    /// not says how far behind the target is.
    fn begin_transaction(
        &self,
        gathering: &mut Gathering,
        final_lsn: Lsn,
        xid: u32,
        commit_time: i64,
    ) {
        gathering.begun = final_lsn;
        gathering.txn = Txn {
            applied: self.applied.is_some_and(|a| final_lsn < a),
            xid,
            seen: self.seen.as_ref().is_some_and(|s| s.saw(xid)),
        };
        if !gathering.txn.applied && !gathering.txn.seen && gathering.behind_since.is_none() {
            gathering.behind_since = Some(commit_time);
        }
    }

    /// A relation message: the table's shape taken in (see [`Follower::relation`]), and
    /// the columns it adds or drops on the target, after the window so far. A change
    /// following cannot make stops the rounds before the transaction that made it.
    async fn relation_message(
        &mut self,
        relation: Relation,
        gathering: &mut Gathering,
    ) -> Result<Vec<Statement>> {
        let changes = match self.relation(relation).await {
            Ok(changes) => changes,
            Err(e) => {
                self.stopped_at = Some(gathering.begun);
                return Err(e);
            }
        };
        if changes.is_empty() {
            return Ok(Vec::new());
        }
        let mut statements = gathering.flush();
        for change in changes {
            gathering.schema.push((change.table, change.change));
            statements.push(Statement {
                sql: change.sql,
                params: Vec::new(),
            });
        }
        Ok(statements)
    }

    /// Adds a row change to the window; statements to run now if it could not be merged.
    fn add(
        &self,
        gathering: &mut Gathering,
        relation: u32,
        change: Change,
    ) -> Result<Vec<Statement>> {
        let shape = self.shapes.get(&relation).ok_or_else(|| {
            Error::new(
                Kind::Copy,
                format!("a change of relation {relation} arrived before its description"),
            )
            .on(Side::Source)
        })?;
        Ok(gathering.window.add(shape, change))
    }

    /// A `TRUNCATE` of the tables whose changes are not skipped, after the window so far.
    fn truncate(
        &self,
        gathering: &mut Gathering,
        relations: &[u32],
        restart_identity: bool,
    ) -> Vec<Statement> {
        let names: Vec<String> = relations
            .iter()
            .filter(|r| !self.skips(**r, &gathering.txn))
            .filter_map(|r| self.shapes.get(r))
            .map(|s| s.target.sql())
            .collect();
        if names.is_empty() {
            return Vec::new();
        }
        let mut statements = gathering.flush();
        statements.push(Statement {
            sql: format!(
                "TRUNCATE {}{}",
                names.join(", "),
                if restart_identity {
                    " RESTART IDENTITY"
                } else {
                    ""
                }
            ),
            params: Vec::new(),
        });
        statements
    }

    /// Whether `message`'s changes are skipped (a truncate's: when every table's are).
    fn skips_message(&self, message: &Message, txn: &Txn) -> bool {
        match message {
            Message::Insert { relation, .. }
            | Message::Update { relation, .. }
            | Message::Delete { relation, .. } => self.skips(*relation, txn),
            Message::Truncate { relations, .. } => relations.iter().all(|r| self.skips(*r, txn)),
            _ => false,
        }
    }

    /// Whether the current transaction's changes of `relation` are skipped: applied
    /// before, or seen by the snapshot the table was copied from.
    fn skips(&self, relation: u32, txn: &Txn) -> bool {
        txn.applied
            || self
                .seen_by
                .get(&relation)
                .map_or(txn.seen, |s| s.saw(txn.xid))
    }
}
