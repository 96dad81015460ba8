//! Following: after a copy, the source's changes applied to the target until a
//! cut-over — exactly once, across crashes.
//!
//! Before the copy's snapshot is taken, a publication and a logical replication slot
//! (`pgoutput`) are created on the source ([`begin`]). Every transaction that commits
//! after the slot exists is in its stream; those the copy's snapshot saw are already in
//! the copied rows and are skipped, by their transaction id against the snapshot
//! recorded with the follow — so copy and stream meet exactly, with no replication
//! protocol needed to export the slot's own snapshot.
//!
//! A round (`round`) reads up to [`ROUND_CHANGES`] changes (whole
//! transactions) from the slot without consuming them, applies their net effect in one
//! target transaction ([`apply`]) together with the position reached ([`state`]), and
//! only then moves the slot on. Killed at any point, a follower restarts from the
//! target's recorded position: transactions before it are skipped, none is lost.
//!
//! A change of a followed table's columns arrives as a new relation message: added and
//! dropped columns are done on the target in the same transaction; anything else stops
//! following with the table and change named, before any later change is applied.
//!
//! The follower's parts, in the order a change meets them: `lifecycle` begins and ends
//! a follow; `follower` claims it and knows the followed tables (`target`: as the target
//! has them); `run` loops over rounds and recovers from lost links (`link`); `round`
//! reads a round from the slot and commits it; `window` takes its messages in, skipping
//! what the copy's `snapshot` saw, and gathers them in windows; `relation` takes a
//! table's columns in; `pipeline` sends the statements; `progress` tells how far behind
//! the target is.

pub mod apply;
pub mod copied;
pub mod cutover;
mod follower;
mod lifecycle;
mod link;
pub mod pgoutput;
mod pipeline;
mod progress;
mod relation;
pub mod resume;
mod round;
mod run;
pub mod source;
pub mod state;
mod target;
pub mod triggers;
mod window;

pub use follower::{Follower, Options, DEFAULT_STALL};
pub use lifecycle::{begin, end, new_name};
pub use progress::{FollowEvent, Lag};
pub use round::ROUND_CHANGES;
pub use run::{Ended, Goal, Outcome};
pub use state::{FollowedTable, Following};

// Named from here by the modules that predate the split (cutover).
use follower::PATIENCE;
use pgoutput::Lsn;
