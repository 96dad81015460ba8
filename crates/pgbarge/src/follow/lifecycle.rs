//! A follow begun and ended: the source's publication and slot, and the follow's record
//! on the target.

use crate::catalog::TableName;
use crate::connect::Connection;
use crate::error::{Error, Kind, Result, Side};
use crate::ledger::Store;

use super::source;
use super::state::{self, FollowedTable, Following};

/// A new follow's slot and publication name: `pgbarge_` and 12 hex digits.
pub fn new_name() -> String {
    format!(
        "pgbarge_{:012x}",
        (crate::retry::jitter() * (1u64 << 48) as f64) as u64
    )
}

/// Creates the publication and slot for `tables` (source → target) and records the
/// follow on the target, the copy yet to come. Call [`source::check`] first.
pub async fn begin(
    source: &Connection,
    target: &Connection,
    store: &Store,
    tables: &[(TableName, TableName)],
) -> Result<Following> {
    if !store.ensure(&target.client).await? {
        return Err(Error::new(
            Kind::Preflight,
            format!(
                "following records its position on the target, in the \"{}\" schema, and \
                 the target role may not create it. Grant it CREATE on the database, or \
                 copy without --follow.",
                store.schema()
            ),
        ));
    }
    let sources: Vec<TableName> = tables.iter().map(|(s, _)| s.clone()).collect();
    let followed: Vec<FollowedTable> = source::stream_columns(&source.client, &sources)
        .await?
        .into_iter()
        .zip(tables)
        .map(|(columns, (from, to))| FollowedTable {
            source: from.clone(),
            target: to.clone(),
            columns,
            snapshot: None,
        })
        .collect();
    let name = new_name();
    state::record(
        &target.client,
        store,
        &name,
        &name,
        &source.info.to_string(),
        &followed,
    )
    .await?;
    if let Err(e) = source::create(&source.client, &name, &name, &sources).await {
        let _ = source::drop(&source.client, &name, &name).await;
        let _ = state::forget(&target.client, store, &name).await;
        return Err(e);
    }
    state::load(&target.client, store).await?.ok_or_else(|| {
        Error::new(Kind::Copy, "the follow just recorded on the target is gone").on(Side::Target)
    })
}

/// Drops `following`'s slot and publication on the source and its record on the target.
pub async fn end(
    source: &Connection,
    target: &Connection,
    store: &Store,
    following: &Following,
) -> Result<()> {
    source::release(&source.client, &following.slot).await?;
    source::drop(&source.client, &following.slot, &following.publication).await?;
    state::forget(&target.client, store, &following.slot).await
}
