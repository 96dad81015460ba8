//! The plan of a table the target already has: what to do with its rows (the mode), what
//! of it is set aside for the load, and how each column gets into it.

use std::collections::BTreeMap;

use super::columns;
use super::create::plan_create;
use super::table::{base_plan, sequence_plans};
use super::{Action, ColumnRoute, LoadMode, PlanOptions, SyncPlan, TablePlan};
use crate::catalog::{Column, Identity, Snapshot, TableDetail, TableKind, TableName};
use crate::text::plural;

/// The plan of loading `src`'s rows into `tgt`, the target's table of that name, as the
/// mode chosen for it says.
pub(super) fn plan_existing(
    src: &TableDetail,
    tgt: &TableDetail,
    snapshot: &Snapshot,
    options: &PlanOptions,
) -> TablePlan {
    let mode = options
        .per_table
        .get(&src.table.name)
        .copied()
        .or(options.mode);
    if mode == Some(LoadMode::Replace) {
        // The target's definition goes; the source's comes, exactly as for a new table.
        let mut plan = plan_create(src, &snapshot.source_objects);
        plan.action = Action::Replace;
        return plan;
    }
    let holds_rows = snapshot.target_non_empty.contains(&tgt.table.name);
    let mut table = ExistingTable {
        src,
        tgt,
        snapshot,
        may_alter: tgt.table.is_owner || snapshot.target_privileges.is_superuser,
        plan: base_plan(src, action(holds_rows, mode)),
    };
    table.target_shape();
    table.unvalidated();
    table.forced_row_security();
    table.triggers();
    table.indexes();
    table.columns();
    table.sequences();
    if table.plan.action == Action::Sync {
        table.plan.sync = Some(sync_plan(&mut table.plan, tgt, snapshot, options));
    }
    table.plan
}

/// What happens to a target table that holds rows (or not) in `mode` (`None`: none
/// chosen).
fn action(holds_rows: bool, mode: Option<LoadMode>) -> Action {
    match (holds_rows, mode) {
        (_, Some(LoadMode::Upsert)) => Action::Upsert,
        (true, Some(LoadMode::Sync)) => Action::Sync,
        // Emptied with the others even when it holds no rows: a refresh truncates every
        // table of a foreign-key group together, and an empty member left out of the
        // TRUNCATE would refuse it (its keys still point at the truncated tables).
        (false, Some(LoadMode::Truncate)) => Action::Truncate,
        (false, _) => Action::Load,
        (true, Some(LoadMode::Append)) => Action::Append,
        (true, Some(LoadMode::Truncate)) => Action::Truncate,
        (true, _) => Action::NeedsMode,
    }
}

/// An existing table's plan as it is built, pass by pass.
struct ExistingTable<'a> {
    src: &'a TableDetail,
    tgt: &'a TableDetail,
    snapshot: &'a Snapshot,
    /// The role owns the target table (or is a superuser): it may set aside what would
    /// get in the load's way.
    may_alter: bool,
    plan: TablePlan,
}

impl ExistingTable<'_> {
    /// The table, on both sides.
    fn name(&self) -> &TableName {
        &self.tgt.table.name
    }

    /// What of the target's definition the load depends on: whether it is partitioned,
    /// its `GENERATED ALWAYS` identity columns, and for an upsert its primary key.
    fn target_shape(&mut self) {
        let tgt = self.tgt;
        self.plan.target_partitioned = tgt.table.kind == TableKind::Partitioned;
        self.plan.identity_always = tgt
            .columns
            .iter()
            .filter(|c| c.identity == Some(Identity::Always))
            .map(|c| c.name.clone())
            .collect();
        if self.plan.action == Action::Upsert {
            self.plan.upsert_key = tgt
                .primary_key
                .as_ref()
                .map(|pk| pk.columns.clone())
                .unwrap_or_default();
        }
    }

    /// NOT VALID constraints: the loaded rows may break them as the source's do, so they
    /// are set aside for the load when the role may.
    fn unvalidated(&mut self) {
        let Some(constraints) = self.snapshot.target_unvalidated.get(self.name()) else {
            return;
        };
        if self.may_alter {
            self.plan.unvalidated = constraints.clone();
        } else {
            self.plan.notes.push(format!(
                "its {} NOT VALID constraint(s) check every loaded row: the role does not own \
                 the table, so it cannot set them aside",
                constraints.len()
            ));
        }
    }

    /// Row-level security forced on the owner refuses COPY FROM: set aside for the load.
    fn forced_row_security(&mut self) {
        // For its owner, row-level security applies only when forced.
        if self.tgt.table.row_security_applies && self.tgt.table.is_owner {
            self.plan.lifted_force_rls = true;
            self.plan.notes.push(
                "it forces row-level security on its owner: FORCE is set aside for the load \
                 and restored in the same transaction"
                    .into(),
            );
        }
    }

    /// User triggers would rewrite or log the copied rows: set aside when the role may.
    fn triggers(&mut self) {
        let Some(triggers) = self.snapshot.target_triggers.get(self.name()) else {
            return;
        };
        if self.may_alter {
            self.plan.quiet_triggers = triggers.clone();
            self.plan.notes.push(format!(
                "its {} trigger{} set aside during the load (copied rows are not rewritten \
                 or logged) and restored in the same transaction",
                triggers.len(),
                if triggers.len() == 1 { " is" } else { "s are" }
            ));
        } else {
            self.plan.notes.push(format!(
                "its {} trigger{} fire on the copied rows: the role does not own the table, \
                 so it cannot set them aside",
                triggers.len(),
                if triggers.len() == 1 { "" } else { "s" }
            ));
        }
    }

    /// A truncated table's indexes are set aside and built again after the rows are in
    /// (one sort each), except those foreign keys depend on, or all when the role may not.
    fn indexes(&mut self) {
        if self.plan.action != Action::Truncate || self.plan.target_partitioned {
            return;
        }
        let indexes = self
            .snapshot
            .target_indexes
            .get(self.name())
            .map(Vec::as_slice)
            .unwrap_or_default();
        let owner = self.may_alter;
        let (aside, kept): (Vec<_>, Vec<_>) = indexes.iter().partition(|i| owner && !i.referenced);
        self.plan.rebuilt_indexes = aside.into_iter().cloned().collect();
        if !self.plan.rebuilt_indexes.is_empty() {
            self.plan.notes.push(format!(
                "{} set aside for the load and built again after the rows are in, in the \
                 same transaction",
                plural(self.plan.rebuilt_indexes.len(), "index", "indexes"),
            ));
        }
        if !kept.is_empty() {
            self.plan.notes.push(format!(
                "{} maintained row by row during the load: {}",
                plural(kept.len(), "index is", "indexes are"),
                if owner {
                    "foreign keys depend on them"
                } else {
                    "the role does not own the table"
                }
            ));
        }
    }

    /// Each source column (not generated) routed to the target's column of its name, and
    /// the target's columns the source lacks that need a value.
    fn columns(&mut self) {
        let by_name: BTreeMap<&str, &Column> = self
            .tgt
            .columns
            .iter()
            .map(|c| (c.name.as_str(), c))
            .collect();
        for col in self.src.columns.iter().filter(|c| !c.generated) {
            let column = columns::routed(col, by_name.get(col.name.as_str()).copied());
            if column.route == ColumnRoute::Text {
                self.plan.notes.push(format!(
                    "column {} converts {} → {}",
                    column.name,
                    column.source_type,
                    column.target_type.as_deref().unwrap_or("?")
                ));
            }
            self.plan.columns.push(column);
        }
        self.plan.target_only_required =
            columns::required_on_target_only(&self.src.columns, &self.tgt.columns);
    }

    /// The source's sequences set after the load: only where the target itself owns a
    /// sequence on the column.
    fn sequences(&mut self) {
        let target_owned: Vec<&str> = self
            .tgt
            .columns
            .iter()
            .filter(|c| c.sequence.is_some())
            .map(|c| c.name.as_str())
            .collect();
        self.plan.sequences = sequence_plans(self.src)
            .into_iter()
            .filter(|s| target_owned.contains(&s.column.as_str()))
            .collect();
    }
}

/// How a synced table's rows are matched: by the target's primary key, else by a unique
/// key on NOT NULL columns, else as a multiset; and whether `--since` applies to it.
fn sync_plan(
    plan: &mut TablePlan,
    tgt: &TableDetail,
    snapshot: &Snapshot,
    options: &PlanOptions,
) -> SyncPlan {
    let copied: Vec<String> = plan.copied_columns().map(str::to_string).collect();
    let copied: Vec<&str> = copied.iter().map(String::as_str).collect();
    let usable =
        |key: &Vec<String>| !key.is_empty() && key.iter().all(|k| copied.contains(&k.as_str()));
    let key = tgt
        .primary_key
        .as_ref()
        .map(|pk| pk.columns.clone())
        .into_iter()
        .chain(
            snapshot
                .target_indexes
                .get(&tgt.table.name)
                .into_iter()
                .flatten()
                .filter_map(|i| i.unique_key.clone()),
        )
        .find(usable)
        .unwrap_or_default();
    if key.is_empty() {
        plan.notes.push(
            "no primary key or unique key on NOT NULL columns: compared as a multiset of \
             rows (equal rows count), extra copies deleted and missing ones inserted"
                .into(),
        );
    } else if tgt.primary_key.as_ref().map(|pk| &pk.columns) != Some(&key) {
        plan.notes.push(format!(
            "rows matched by the unique key ({})",
            key.join(", ")
        ));
    }
    let since = options.since.as_ref().and_then(|column| {
        if !copied.contains(&column.as_str()) {
            plan.notes.push(format!(
                "no column \"{column}\" to sync --since: every row is compared"
            ));
            None
        } else if key.is_empty() {
            plan.notes
                .push("--since needs a key to find deleted rows: every row is compared".into());
            None
        } else {
            Some(column.clone())
        }
    });
    SyncPlan { key, since }
}
