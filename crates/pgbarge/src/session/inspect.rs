//! The commands that only read: `tables` (the source's tables and their sizes) and
//! `verify` (the chosen tables compared on both servers).

use crate::catalog::{self, Table, TableName};
use crate::connect::Connection;
use crate::error::{Error, Result, Side};
use crate::select::{self, Pattern};
use crate::verify::VerifyReport;

/// The source's tables, with their sizes (a count for small tables never analysed),
/// those `patterns` match (every one without patterns).
pub async fn tables(source: &Connection, patterns: &[Pattern]) -> Result<Vec<Table>> {
    let mut list = catalog::list_tables(&source.client, Side::Source).await?;
    catalog::count_unanalysed(&source.client, &mut list).await;
    if !patterns.is_empty() {
        list = select::select(patterns, &list).tables;
    }
    Ok(list)
}

/// Compares the source tables `patterns` name (every one without patterns), less
/// `exclude`, with the target's tables of the same names. A pattern that matches no
/// table is a usage error, with the closest name.
pub async fn verify(
    source: &Connection,
    target: &Connection,
    (patterns, exclude): (&[Pattern], &[Pattern]),
    source_encoding: Option<&str>,
) -> Result<VerifyReport> {
    let source_tables = select::exclude(
        catalog::list_tables(&source.client, Side::Source).await?,
        exclude,
    );
    let names: Vec<TableName> = if patterns.is_empty() {
        source_tables.iter().map(|t| t.name.clone()).collect()
    } else {
        let selection = select::select(patterns, &source_tables);
        if let Some(u) = selection.unmatched.first() {
            let hint = match u.suggestions.first() {
                Some(s) => format!(" Did you mean {s}?"),
                None => String::new(),
            };
            return Err(Error::usage(format!(
                "no table on the source matches \"{}\".{hint}",
                u.pattern
            )));
        }
        selection.tables.iter().map(|t| t.name.clone()).collect()
    };
    crate::verify::compare_tables(&source.client, &target.client, &names, source_encoding).await
}
