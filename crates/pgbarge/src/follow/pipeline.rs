//! A round's target transaction as a pipeline: statements are sent back to back, in
//! order, without waiting for the one before to finish, so that the next statement's rows
//! cross the network while the server runs the last one, and the follower goes on
//! decoding. A few are in flight at most; the first error ends the round (the server
//! aborts the transaction, and the statements queued behind it fail with it).
//!
//! Measured (200,000 changes, through the simulated link): awaiting each statement left
//! the link idle while the server worked and the server idle while rows travelled.
//!
//! Statements go out typed (every parameter is `text[]`), parsed, bound and run in one
//! message: no prepare and its round trip, which stopped the pipeline for 40 ms through
//! the link each time a round met a statement it had not prepared (two or three a run,
//! more with partial updates).

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::{Duration, Instant};

use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, SimpleQueryMessage};

use super::apply::Statement;
use super::link::answered;
use crate::error::{Error, Kind, Result, Side};

/// Statements sent and not yet answered, at most.
const IN_FLIGHT: usize = 4;

type Pending<'c> = Pin<Box<dyn Future<Output = Result<()>> + Send + 'c>>;

fn target_error(e: tokio_postgres::Error) -> Error {
    Error::postgres(Kind::Copy, Side::Target, "applying changes", e)
}

/// One round's statements on the target.
pub(super) struct Pipeline<'c> {
    client: &'c Client,
    stall: Duration,
    in_flight: VecDeque<Pending<'c>>,
    open: bool,
    /// The statements, the bytes of their rows, and the time spent waiting for the
    /// target.
    pub statements: usize,
    pub bytes: usize,
    pub waited: Duration,
}

impl<'c> Pipeline<'c> {
    pub fn new(client: &'c Client, stall: Duration) -> Self {
        Pipeline {
            client,
            stall,
            in_flight: VecDeque::new(),
            open: false,
            statements: 0,
            bytes: 0,
            waited: Duration::ZERO,
        }
    }

    /// Sends `statements` (the transaction begun before the first).
    pub async fn send(&mut self, statements: Vec<Statement>) -> Result<()> {
        if !self.open {
            let client = self.client;
            self.launch(Box::pin(async move {
                client.batch_execute("BEGIN").await.map_err(target_error)
            }))
            .await?;
            self.open = true;
        }
        for statement in statements {
            self.statements += 1;
            self.bytes += statement
                .params
                .iter()
                .flatten()
                .map(|v| v.as_ref().map_or(4, |t| t.len() + 4))
                .sum::<usize>();
            let client = self.client;
            if statement.params.is_empty() {
                // DDL or TRUNCATE.
                let sql = statement.sql;
                self.launch(Box::pin(async move {
                    client.batch_execute(&sql).await.map_err(target_error)
                }))
                .await?;
                continue;
            }
            let Statement { sql, params, .. } = statement;
            self.launch(Box::pin(async move {
                let typed: Vec<(&(dyn ToSql + Sync), Type)> = params
                    .iter()
                    .map(|p| (p as &(dyn ToSql + Sync), Type::TEXT_ARRAY))
                    .collect();
                client
                    .execute_typed(&sql, &typed)
                    .await
                    .map(|_| ())
                    .map_err(target_error)
            }))
            .await?;
        }
        Ok(())
    }

    /// Starts `work`: its first poll sends the request, so requests leave in the order
    /// they are launched. Waits for the oldest when too many are in flight.
    async fn launch(&mut self, mut work: Pending<'c>) -> Result<()> {
        let first = std::future::poll_fn(|cx| Poll::Ready(work.as_mut().poll(cx))).await;
        if let Poll::Ready(result) = first {
            return result;
        }
        self.in_flight.push_back(work);
        while self.in_flight.len() > IN_FLIGHT {
            self.wait_oldest().await?;
        }
        Ok(())
    }

    async fn wait_oldest(&mut self) -> Result<()> {
        if let Some(work) = self.in_flight.pop_front() {
            let started = Instant::now();
            let result = answered(self.stall, Side::Target, work).await;
            self.waited += started.elapsed();
            result?;
        }
        Ok(())
    }

    /// Waits for everything sent, then runs `record` (the position reached) and commits
    /// — or runs `record` alone when no change was sent. Returns `record`'s answer.
    pub async fn finish(&mut self, record: &str) -> Result<Vec<SimpleQueryMessage>> {
        while !self.in_flight.is_empty() {
            self.wait_oldest().await?;
        }
        let client = self.client;
        let open = self.open;
        let started = Instant::now();
        let rows = answered(self.stall, Side::Target, async {
            let sql = if open {
                format!("{record}; COMMIT")
            } else {
                record.to_string()
            };
            client.simple_query(&sql).await.map_err(target_error)
        })
        .await?;
        self.waited += started.elapsed();
        self.open = false;
        Ok(rows)
    }
}
