//! pgbarge: move PostgreSQL tables from one server to another — exact, atomic per table,
//! streamed with COPY.
//!
//! A run is one pass through named stages, each a module:
//!
//! connection ([`conninfo`], [`connect`]) → catalog ([`catalog`], [`select`]) →
//! plan ([`plan`], [`convert`]) → preflight ([`preflight`]) → copy ([`copy`]) →
//! report ([`report`]); then, for a living source, [`follow`] until the cut-over.
//!
//! The library never prints and never reads the terminal; the `pgbarge` binary does.

pub mod catalog;
pub mod connect;
pub mod conninfo;
pub mod convert;
pub mod copy;
pub mod error;
pub mod follow;
pub mod ledger;
pub mod plan;
mod poison;
pub mod preflight;
pub mod quote;
pub mod report;
pub mod retry;
pub mod rowhash;
pub mod select;
pub mod session;
pub mod store;
pub mod sync;
pub mod text;
pub mod transport;
pub mod verify;
pub mod xid;

pub use error::{Error, Kind, Result, Side};
