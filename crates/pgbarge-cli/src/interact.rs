//! Questions asked in a terminal: picking tables, deciding about non-empty target tables,
//! confirming the plan. Only called when stdin and stderr are terminals.

use crate::terminal::cancelled_error;
use inquire::{Confirm, InquireError, Select};
use pgbarge::catalog::{Table, TableName};
use pgbarge::plan::LoadMode;
use pgbarge::session::Undecided;
use pgbarge::{Error, Kind, Result};
use std::collections::BTreeMap;

fn cancelled(e: InquireError) -> Error {
    match e {
        InquireError::OperationCanceled | InquireError::OperationInterrupted => cancelled_error(),
        other => Error::new(Kind::Usage, format!("cannot ask in this terminal: {other}")),
    }
}

/// Lets the user pick tables from the source's list (type to filter, space to pick), with
/// [`crate::picker`].
pub fn pick_tables(tables: &[Table]) -> Result<Vec<Table>> {
    if tables.is_empty() {
        return Err(Error::usage(
            "the source database has no tables to copy (pgbarge lists ordinary and partitioned \
             tables outside the system schemas).",
        ));
    }
    crate::picker::pick(tables)
}

const APPEND: &str = "append: add the source's rows to those already there";
const TRUNCATE: &str = "truncate: empty the target table first (same transaction)";
const SYNC: &str = "sync: move only the rows that differ (insert, update, delete)";
const UPSERT: &str = "upsert: insert new rows, update changed ones (by primary key)";
const REPLACE: &str = "replace: drop the target table, recreate it from the source";
const SKIP: &str = "skip: leave it out of this copy";
const EACH: &str = "choose for each table";

fn mode_of(answer: &str) -> Option<LoadMode> {
    match answer {
        APPEND => Some(LoadMode::Append),
        TRUNCATE => Some(LoadMode::Truncate),
        SYNC => Some(LoadMode::Sync),
        UPSERT => Some(LoadMode::Upsert),
        REPLACE => Some(LoadMode::Replace),
        _ => None,
    }
}

/// The safe answer, offered as the default: truncate for what looks like an earlier
/// copy being refreshed, skip when in doubt — never append, which would duplicate rows
/// (or fail at once on a primary key).
fn safe_default(copies: bool) -> usize {
    if copies {
        1
    } else {
        5
    }
}

/// Asks what to do with target tables that hold rows, once for all of them (with a way
/// to choose table by table); `None` for a table means leave it out.
pub fn ask_modes(tables: &[Undecided]) -> Result<BTreeMap<TableName, Option<LoadMode>>> {
    let choices = vec![APPEND, TRUNCATE, SYNC, UPSERT, REPLACE, SKIP];
    let all_copies = tables.iter().all(|t| t.looks_like_a_copy);
    if let [one] = tables {
        let answer = Select::new(
            &format!(
                "{} on the target already holds rows. What should pgbarge do?",
                one.table
            ),
            choices,
        )
        .with_starting_cursor(safe_default(one.looks_like_a_copy))
        .prompt()
        .map_err(cancelled)?;
        return Ok(BTreeMap::from([(one.table.clone(), mode_of(answer))]));
    }
    let names: Vec<String> = tables.iter().take(5).map(|t| t.table.to_string()).collect();
    let more = tables.len().saturating_sub(names.len());
    let mut options = choices.clone();
    options.push(EACH);
    let answer = Select::new(
        &format!(
            "{} target tables already hold rows ({}{}). What should pgbarge do with them?",
            tables.len(),
            names.join(", "),
            if more > 0 {
                format!(", and {more} more")
            } else {
                String::new()
            }
        ),
        options,
    )
    .with_starting_cursor(safe_default(all_copies))
    .prompt()
    .map_err(cancelled)?;
    if answer != EACH {
        let mode = mode_of(answer);
        return Ok(tables.iter().map(|t| (t.table.clone(), mode)).collect());
    }
    let mut modes = BTreeMap::new();
    for t in tables {
        let answer = Select::new(
            &format!("{}: what should pgbarge do?", t.table),
            choices.clone(),
        )
        .with_starting_cursor(safe_default(t.looks_like_a_copy))
        .prompt()
        .map_err(cancelled)?;
        modes.insert(t.table.clone(), mode_of(answer));
    }
    Ok(modes)
}

/// After an interactive copy: save the choices as a plan file? Returns the path if so.
/// The copy is done by then: Esc or Ctrl-C here only means "no" (not "cancelled;
/// nothing was written", exit 130).
pub fn offer_save_plan() -> Result<Option<std::path::PathBuf>> {
    let declined = |e: InquireError| match e {
        InquireError::OperationCanceled | InquireError::OperationInterrupted => Ok(None),
        other => Err(cancelled(other)),
    };
    match Confirm::new("Save these choices as a plan, to run the same copy again with --plan?")
        .with_default(false)
        .prompt()
    {
        Ok(true) => {}
        Ok(false) => return Ok(None),
        Err(e) => return declined(e),
    }
    match inquire::Text::new("Plan file:")
        .with_default("pgbarge-plan.toml")
        .prompt()
    {
        Ok(path) => Ok(Some(path.into())),
        Err(e) => declined(e),
    }
}

/// The chosen tables need `parents` (foreign keys, and the parents' own), which are
/// not chosen and not on the target: copy them too (yes), or create the tables without
/// those keys (no). One question for the whole set.
pub fn offer_parents(parents: &[TableName]) -> Result<bool> {
    let names: Vec<String> = parents.iter().take(8).map(|p| p.to_string()).collect();
    let more = parents.len().saturating_sub(names.len());
    Confirm::new(&format!(
        "The chosen tables' foreign keys need {}{}, not chosen. Copy {} too?",
        names.join(", "),
        if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        },
        if parents.len() == 1 { "it" } else { "them" }
    ))
    .with_default(true)
    .with_help_message("no: create the tables without those foreign keys")
    .prompt()
    .map_err(cancelled)
}

/// Asks to go ahead with the printed plan.
pub fn confirm(question: &str) -> Result<bool> {
    Confirm::new(question)
        .with_default(false)
        .prompt()
        .map_err(cancelled)
}

/// An interrupted run is recorded on the target: resume it (yes), or abandon it and start
/// anew (no)?
pub fn offer_resume(run: &pgbarge::ledger::SavedRun) -> Result<bool> {
    Confirm::new(&format!(
        "Resume the interrupted run recorded on the target (started {}, {} of {} units done)?",
        run.started_at,
        run.done.len(),
        run.work.units.len()
    ))
    .with_help_message("no: abandon it (its staging tables are dropped) and start anew")
    .with_default(true)
    .prompt()
    .map_err(cancelled)
}

/// The questions a run asks, answered in the terminal.
pub struct Terminal;

impl pgbarge::session::Questions for Terminal {
    fn pick_tables(&self, tables: &[Table]) -> Result<Option<Vec<Table>>> {
        pick_tables(tables).map(Some)
    }

    fn resume(&self, run: &pgbarge::ledger::SavedRun) -> Result<Option<bool>> {
        offer_resume(run).map(Some)
    }

    fn add_parents(&self, missing: &[TableName]) -> Result<Option<bool>> {
        offer_parents(missing).map(Some)
    }

    fn modes_for(
        &self,
        tables: &[Undecided],
    ) -> Result<Option<BTreeMap<TableName, Option<LoadMode>>>> {
        ask_modes(tables).map(Some)
    }
}
