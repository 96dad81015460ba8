//! The plan: for each chosen table, what will happen on the target and how the data will
//! travel. An immutable, serialisable value — printed by `--dry-run`, rendered as JSON —
//! built purely from the [`Snapshot`](crate::catalog::Snapshot) and the user's choices.
//! Later stages only read it.
//!
//! [`Plan::build`] (`build.rs`) runs the stages in order:
//! - `user_types.rs`: the types the copied columns need that the target lacks;
//! - each chosen table's plan (`table.rs`): created from the source's definition
//!   (`create.rs`) or loaded into the target's table (`existing.rs`), each column routed
//!   as it travels (`columns.rs`);
//! - `groups.rs`: tables that load together in one transaction, and `order.rs`: which
//!   tables wait for which;
//! - `split.rs`: how many streams, and big tables split into parts and staging tables;
//! - `schema.rs`: the objects around the tables, before and after the data.
//!
//! What the plan runs is read from it: `statements.rs` (a table's SQL), `merge.rs`,
//! `sync_spec.rs`, and `units.rs` (the units of work the copy stage schedules).

mod build;
mod columns;
mod create;
pub mod ddl;
mod existing;
#[cfg(test)]
pub(crate) mod fixtures;
mod groups;
mod merge;
mod object_kind;
mod options;
mod order;
mod schema;
mod split;
mod statements;
mod sync_spec;
mod table;
#[cfg(test)]
mod tests;
pub mod units;
mod user_types;
mod whole;

pub use build::NO_BODY_CHECKS;
pub use columns::{ColumnPlan, ColumnRoute, CopyFormat};
pub use groups::ReplaceGroup;
pub(crate) use merge::Merge;
pub use object_kind::ObjectKind;
pub use options::{Content, LoadMode, PlanOptions, DEFAULT_PART_SIZE, DEFAULT_SPLIT_ABOVE};
pub use schema::{SchemaOptions, SchemaPlan, SequenceValue, SkipReason, Skipped, Step};
pub use split::{
    drop_leftover_staging_sql, staging_marker_sql, staging_unmark_sql, STAGING_MARKER,
};
pub use statements::SourceRead;
pub use sync_spec::SyncSpec;
pub use table::{
    Action, CreateSpec, LeafLoad, Part, PartitionStep, SequencePlan, SyncPlan, TablePlan,
};
pub use user_types::TypePlan;
pub use whole::{Endpoint, Plan};
