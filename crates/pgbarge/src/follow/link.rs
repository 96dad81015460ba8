//! The follower's links to the servers: a connection that can be renewed after it is
//! lost, and requests that fail as transient when a server goes silent.

use std::future::Future;
use std::time::Duration;

use crate::connect::{connect, Connection};
use crate::error::{Error, Kind, Result, Side};

/// The source connection pgbarge reads with, or its replacement after a lost link.
pub(super) struct Link<'a> {
    pub given: &'a Connection,
    pub renewed: Option<Connection>,
}

impl<'a> Link<'a> {
    /// The connection given, not renewed yet.
    pub fn new(given: &'a Connection) -> Self {
        Link {
            given,
            renewed: None,
        }
    }

    pub fn get(&self) -> &Connection {
        self.renewed.as_ref().unwrap_or(self.given)
    }

    pub async fn renew(&mut self) -> Result<()> {
        let fresh = connect(&self.given.info, self.given.side).await?;
        self.renewed = Some(fresh);
        Ok(())
    }
}

/// Awaits `work`, failing as transient after `limit` without an answer from `side`: a
/// link that went silent (the connection is renewed and the round redone).
pub(super) async fn answered<T>(
    limit: Duration,
    side: Side,
    work: impl Future<Output = Result<T>>,
) -> Result<T> {
    match tokio::time::timeout(limit, work).await {
        Ok(result) => result,
        Err(_) => Err(Error::new(
            Kind::Copy,
            format!(
                "the {} server gave no answer for {} s",
                match side {
                    Side::Source => "source",
                    Side::Target => "target",
                },
                limit.as_secs()
            ),
        )
        .on(side)
        .transient(true)),
    }
}
