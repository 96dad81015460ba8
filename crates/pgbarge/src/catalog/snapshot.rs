//! Everything planning and preflight need to know about both servers, read once.

use std::collections::{BTreeMap, BTreeSet};

use tokio_postgres::Client;

use super::*;
use crate::error::{Result, Side};

/// The two servers as far as the chosen tables are concerned. Pure data: planning and
/// preflight are functions of it and never go back to the servers.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// The chosen source tables in detail, and the user types they need.
    pub source: Described,
    /// Every table on the target, by name.
    pub target_tables: BTreeMap<TableName, Table>,
    /// Target tables with the same names as chosen source tables, in detail.
    pub target: Described,
    /// Which of the source's user types already exist on the target.
    pub target_types: BTreeMap<(String, String), ExistingType>,
    /// Target tables (among those named like chosen ones) that hold at least one row.
    pub target_non_empty: BTreeSet<TableName>,
    pub target_privileges: Privileges,
}

impl Snapshot {
    /// Reads the snapshot: source and target are queried concurrently, each with a few
    /// set-based queries whatever the number of tables.
    pub async fn read(
        source: &Client,
        target: &Client,
        chosen: &[Table],
        target_tables: &[Table],
    ) -> Result<Snapshot> {
        let by_name: BTreeMap<TableName, Table> = target_tables
            .iter()
            .map(|t| (t.name.clone(), t.clone()))
            .collect();
        let counterparts: Vec<Table> = chosen
            .iter()
            .filter_map(|t| by_name.get(&t.name).cloned())
            .collect();
        // Emptiness can only be checked where the role may read; a table it cannot read is
        // treated as holding rows (preflight then also reports any missing INSERT right).
        let readable: Vec<&TableName> = counterparts
            .iter()
            .filter(|t| t.can_select)
            .map(|t| &t.name)
            .collect();
        let unreadable = counterparts
            .iter()
            .filter(|t| !t.can_select)
            .map(|t| t.name.clone());

        let source_fut = describe(source, Side::Source, chosen);
        // Pipelined on the target connection: one round trip or so for all of it.
        let target_fut = async {
            tokio::try_join!(
                describe(target, Side::Target, &counterparts),
                non_empty_tables(target, Side::Target, &readable),
                target_privileges(target)
            )
        };
        let (source_described, (target_described, non_empty, privileges)) =
            tokio::try_join!(source_fut, target_fut)?;

        let type_names: Vec<(String, String)> = source_described
            .types
            .iter()
            .map(|t| (t.schema.clone(), t.name.clone()))
            .collect();
        let target_types = find_types(target, Side::Target, &type_names).await?;

        Ok(Snapshot {
            source: source_described,
            target_tables: by_name,
            target: target_described,
            target_types,
            target_non_empty: non_empty.into_iter().chain(unreadable).collect(),
            target_privileges: privileges,
        })
    }
}
