//! A round: the next changes read from the slot (ahead, while the target applies), their
//! windows sent to the target in one transaction with the position they reach, then the
//! slot moved on.

use std::time::{Duration, Instant};

use futures_util::TryStreamExt;
use tokio::sync::mpsc::{Receiver, Sender};
use tokio_postgres::{Row, RowStream};

use crate::error::{Error, Kind, Result, Side};

use super::follower::Follower;
use super::link::{answered, Link};
use super::pgoutput::{self, Lsn, Message};
use super::pipeline::Pipeline;
use super::window::Gathering;
use super::{source, state};

/// Changes read from the slot per round (whole transactions: a round may hold more).
pub const ROUND_CHANGES: i32 = 200_000;

/// Rows read ahead from the source while the target applies.
const READ_AHEAD: usize = 8192;

/// What one round did.
#[derive(Debug, Default)]
pub(super) struct Round {
    /// Source transactions seen (applied or skipped).
    pub commits: u64,
    pub changes: u64,
    /// The commit time of the first transaction applied (PostgreSQL microseconds).
    pub behind_since: Option<i64>,
    pub stop_requested: bool,
    /// Columns added or dropped: (table, what).
    pub schema: Vec<(String, String)>,
    /// Statements sent to the target, the bytes of their parameters, and the time spent
    /// waiting for them (logged at debug level).
    pub statements: usize,
    pub bytes: usize,
    pub applying: Duration,
}

/// The round's rows as the reader hands them over, and how long the round waited for
/// them (logged at debug level).
struct Arrivals {
    rows: Receiver<Result<Row>>,
    /// When the round started.
    started: Instant,
    /// Seconds from the start to the first row.
    first_row: Option<f64>,
    waiting: Duration,
}

impl Arrivals {
    async fn next(&mut self) -> Option<Result<Row>> {
        let asked = Instant::now();
        let row = self.rows.recv().await?;
        self.waiting += asked.elapsed();
        let started = self.started;
        self.first_row
            .get_or_insert_with(|| started.elapsed().as_secs_f64());
        Some(row)
    }
}

impl Follower<'_> {
    /// One round: the next changes from the slot (those committed before `upto`, if
    /// given), applied in one target transaction with the position they reach; then the
    /// slot moved on.
    pub(super) async fn round(&mut self, upto: Option<Lsn>, strict: bool) -> Result<Round> {
        let started = Instant::now();
        let source = self.source.get();
        let stall = self.stall;
        let stream = answered(
            stall,
            Side::Source,
            source::peek(
                &source.client,
                &self.following.slot,
                &self.following.publication,
                upto,
                ROUND_CHANGES,
            ),
        )
        .await?;
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Row>>(READ_AHEAD);
        // Rows are read ahead while the target applies the ones before: the source's
        // decoding and the target's writing overlap.
        let reader = read_ahead(stream, tx, stall);
        // The target connection goes to the round's pipeline;
        // the rest of the follower stays free for the relations the round meets.
        let given = self.target.given;
        let link = std::mem::replace(&mut self.target, Link::new(given));
        let arrivals = Arrivals {
            rows: rx,
            started,
            first_row: None,
            waiting: Duration::ZERO,
        };
        let round = {
            let mut pipeline = Pipeline::new(&link.get().client, stall);
            let ((), round) =
                tokio::join!(reader, self.apply_rows(arrivals, &mut pipeline, strict));
            round
        };
        self.target = link;
        round
    }

    /// Applies the rows of one round as they arrive, then ends it (see
    /// [`Follower::finish_round`]).
    async fn apply_rows(
        &mut self,
        mut arrivals: Arrivals,
        pipeline: &mut Pipeline<'_>,
        strict: bool,
    ) -> Result<Round> {
        let mut gathering = Gathering::new(strict);
        while let Some(data) = arrivals.next().await {
            let statements = self.take(decode(&data?)?, &mut gathering).await?;
            if !statements.is_empty() {
                pipeline.send(statements).await?;
            }
        }
        let rest = gathering.flush();
        if !rest.is_empty() {
            pipeline.send(rest).await?;
        }
        self.finish_round(gathering, pipeline, &arrivals).await
    }

    /// Ends the round: the position reached recorded in its transaction, which commits,
    /// and the slot moved on past it. Nothing is sent when no transaction ended in the
    /// stream.
    async fn finish_round(
        &mut self,
        gathered: Gathering,
        pipeline: &mut Pipeline<'_>,
        arrivals: &Arrivals,
    ) -> Result<Round> {
        let mut round = Round {
            commits: gathered.commits,
            changes: gathered.changes,
            behind_since: gathered.behind_since,
            schema: gathered.schema,
            statements: pipeline.statements,
            bytes: pipeline.bytes,
            ..Round::default()
        };
        let Some(end) = gathered.end else {
            // Nothing committed in the stream: nothing was sent either.
            return Ok(round);
        };
        let tables = if self.tables_changed {
            Some(state::tables_json(&self.following.tables)?)
        } else {
            None
        };
        let record = state::position_sql(
            &self.store,
            &self.following.slot,
            end,
            round.changes as usize,
            tables.as_deref(),
        );
        let rows = pipeline.finish(&record).await?;
        round.applying = pipeline.waited;
        self.tables_changed = false;
        self.applied = Some(end);
        self.changes += round.changes;
        tracing::debug!(
            changes = round.changes,
            commits = round.commits,
            statements = round.statements,
            bytes = round.bytes,
            apply_s = round.applying.as_secs_f64(),
            first_row_s = arrivals.first_row.unwrap_or_default(),
            waiting_rows_s = arrivals.waiting.as_secs_f64(),
            round_s = arrivals.started.elapsed().as_secs_f64(),
            "round applied"
        );
        round.stop_requested = rows.iter().any(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0) == Some("t"),
            _ => false,
        });
        answered(
            self.stall,
            Side::Source,
            source::advance(&self.source.get().client, &self.following.slot, end),
        )
        .await?;
        Ok(round)
    }
}

/// Reads the slot's rows into `tx` until the stream ends, fails (the failure is sent
/// too), goes `stall` without a row, or the round stops taking them.
async fn read_ahead(stream: RowStream, tx: Sender<Result<Row>>, stall: Duration) {
    futures_util::pin_mut!(stream);
    loop {
        let next = answered(stall, Side::Source, async {
            stream.try_next().await.map_err(source::peek_error)
        })
        .await;
        let item = match next {
            Ok(Some(row)) => Ok(row),
            Ok(None) => break,
            Err(e) => Err(e),
        };
        let failed = item.is_err();
        if tx.send(item).await.is_err() || failed {
            break;
        }
    }
}

/// A row of the slot as the message it holds.
fn decode(row: &Row) -> Result<Message> {
    pgoutput::decode(row.get::<_, &[u8]>(0))
        .map_err(|e| Error::new(Kind::Copy, e.to_string()).on(Side::Source))
}
