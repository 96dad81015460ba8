//! The follower: the follow claimed on the target, the connections it works with, and
//! what it knows of the followed tables on both sides.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::connect::{connect, Connection};
use crate::error::{Error, Result, Side};
use crate::ledger::Store;

use super::apply::Shape;
use super::link::Link;
use super::pgoutput::Lsn;
use super::state::{self, Following};
use super::target::{self, TargetTable};
use super::{source, triggers};
use crate::xid::XidSnapshot;

/// How long a running follower has to stop when another pgbarge takes over before its
/// session is ended.
pub(super) const PATIENCE: Duration = Duration::from_secs(5);

/// How long a read or statement may go unanswered before the link is taken for dead. Long:
/// decoding a huge source transaction gives no row until it is decoded whole.
pub const DEFAULT_STALL: Duration = Duration::from_secs(300);

/// How a follower works.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// How long a statement or read may go without an answer before the link is taken
    /// for dead and renewed (`--stall-timeout`).
    pub stall_timeout: Duration,
    /// How often and how long a lost link is retried (`--retries`).
    pub retry: crate::retry::RetryPolicy,
    /// Apply even though the target's ordinary triggers will fire on the changes (the
    /// role may not apply as a replica: see [`triggers`]; `--fire-triggers`).
    pub fire_triggers: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            stall_timeout: DEFAULT_STALL,
            retry: crate::retry::RetryPolicy::default(),
            fire_triggers: false,
        }
    }
}

/// A follower at work.
pub struct Follower<'a> {
    pub(super) source: Link<'a>,
    pub(super) target: Link<'a>,
    /// A second source connection for catalog lookups while the first streams changes.
    pub(super) lookup: Connection,
    pub(super) following: Following,
    /// Where the follow is recorded on the target.
    pub(super) store: Store,
    /// How applied changes fire the target's triggers (see [`triggers`]), and whether
    /// the user accepted ordinary ones firing where the role cannot prevent it.
    pub(super) firing: triggers::Firing,
    pub(super) fire_triggers: bool,
    /// What the copy's snapshot saw: those transactions are in the copied rows.
    pub(super) seen: Option<XidSnapshot>,
    /// Tables copied from another snapshot (a resumed followed copy keeps the tables
    /// its first run completed), by relation id, filtered by that snapshot instead.
    pub(super) seen_by: HashMap<u32, XidSnapshot>,
    pub(super) applied: Option<Lsn>,
    /// The target session that claimed the follow for this follower (see
    /// `Follower::reconnect`).
    pub(super) claimed_by: i32,
    /// The stream's relation ids, as followed tables' shapes.
    pub(super) shapes: HashMap<u32, Shape>,
    /// Each followed table as the target has it, by table index.
    pub(super) on_target: Vec<TargetTable>,
    pub(super) type_names: HashMap<(u32, i32), String>,
    pub(super) tables_changed: bool,
    /// The commit position of a source transaction following cannot apply (a column
    /// change it does not make): the rounds stop just before it.
    pub(super) stopped_at: Option<Lsn>,
    pub(super) stall: Duration,
    pub(super) retry: crate::retry::RetryPolicy,
    pub(super) changes: u64,
    pub(super) started: Instant,
    pub(super) rate: (Instant, u64),
}

impl<'a> Follower<'a> {
    /// Takes the follow recorded on `target` over (stopping a follower still running),
    /// ready to apply from the recorded position.
    pub async fn claim(
        source: &'a Connection,
        target: &'a Connection,
        store: &Store,
    ) -> Result<(Self, bool)> {
        let Some(following) = state::load(&target.client, store).await? else {
            return Err(Error::usage(
                "nothing is being followed: no follow is recorded on the target. Start one \
                 with `pgbarge copy --follow …`.",
            ));
        };
        let Some(snapshot) = following.snapshot.clone() else {
            return Err(Error::usage(format!(
                "the copy that started following (slot {}) has not finished, so the \
                 stream has nothing exact to start from yet. Finish it with `pgbarge copy \
                 --follow --resume …` (it follows once copied), or give it up with \
                 `pgbarge follow --drop`.",
                following.slot
            )));
        };
        if following.source != source.info.to_string() {
            return Err(Error::usage(format!(
                "the follow recorded on the target reads from {}, not from {}: give that \
                 --source.",
                following.source, source.info
            )));
        }
        let claimed = state::claim(&target.client, store, &following.slot, PATIENCE).await?;
        source::release(&source.client, &following.slot).await?;
        let lookup = connect(&source.info, Side::Source).await?;
        let mut follower = Follower {
            applied: following.applied_lsn(),
            claimed_by: claimed.pid,
            seen: Some(snapshot),
            seen_by: HashMap::new(),
            source: Link::new(source),
            target: Link::new(target),
            lookup,
            store: store.clone(),
            firing: triggers::Firing::default(),
            fire_triggers: false,
            on_target: Vec::new(),
            shapes: HashMap::new(),
            type_names: HashMap::new(),
            tables_changed: false,
            stopped_at: None,
            stall: DEFAULT_STALL,
            retry: crate::retry::RetryPolicy::default(),
            changes: 0,
            started: Instant::now(),
            rate: (Instant::now(), 0),
            following,
        };
        follower.read_target().await?;
        Ok((follower, claimed.replaced))
    }

    pub fn following(&self) -> &Following {
        &self.following
    }

    /// The connections in use (new ones after a lost link): source, target.
    pub fn connections(&self) -> (&Connection, &Connection) {
        (self.source.get(), self.target.get())
    }

    /// Works as `options` say from now on.
    pub fn configure(&mut self, options: &Options) {
        self.stall = options.stall_timeout;
        self.retry = options.retry;
        self.fire_triggers = options.fire_triggers;
    }

    /// Reads how the target's triggers would fire, and the target tables' columns, keys
    /// and foreign-key order; the shapes made from what was known before are dropped.
    pub(super) async fn read_target(&mut self) -> Result<()> {
        let targets: Vec<_> = self
            .following
            .tables
            .iter()
            .map(|t| t.target.clone())
            .collect();
        let session = &self.target.get().client;
        self.firing = if triggers::apply_as_replica(session).await? {
            triggers::Firing {
                replica: true,
                ..Default::default()
            }
        } else {
            triggers::differing(session, Side::Target, &targets).await?
        };
        self.on_target = target::read(&self.target.get().client, &self.following.tables).await?;
        self.shapes.clear();
        Ok(())
    }
}
