//! The plan of a table the target already has: what to do with its rows (the mode), what
//! of it is set aside for the load, and how each column gets into it.

use std::collections::BTreeMap;

use super::create::plan_create;
use super::table::{base_plan, sequence_plans};
use super::{Action, ColumnPlan, ColumnRoute, LoadMode, PlanOptions, SyncPlan, TablePlan};
use crate::catalog::{Column, Identity, Snapshot, TableDetail, TableKind};
use crate::convert::{conversion, Conversion};

pub(super) fn plan_existing(
    src: &TableDetail,
    tgt: &TableDetail,
    snapshot: &Snapshot,
    options: &PlanOptions,
) -> TablePlan {
    let holds_rows = snapshot.target_non_empty.contains(&tgt.table.name);
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
    let action = match (holds_rows, mode) {
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
    };
    let mut plan = base_plan(src, action);
    plan.target_partitioned = tgt.table.kind == TableKind::Partitioned;
    plan.identity_always = tgt
        .columns
        .iter()
        .filter(|c| c.identity == Some(Identity::Always))
        .map(|c| c.name.clone())
        .collect();
    if let Some(constraints) = snapshot.target_unvalidated.get(&tgt.table.name) {
        if tgt.table.is_owner || snapshot.target_privileges.is_superuser {
            plan.unvalidated = constraints.clone();
        } else {
            plan.notes.push(format!(
                "its {} NOT VALID constraint(s) check every loaded row: the role does not own \
                 the table, so it cannot set them aside",
                constraints.len()
            ));
        }
    }
    // For its owner, row-level security applies only when forced.
    if tgt.table.row_security_applies && tgt.table.is_owner {
        plan.lifted_force_rls = true;
        plan.notes.push(
            "it forces row-level security on its owner: FORCE is set aside for the load and \
             restored in the same transaction"
                .into(),
        );
    }
    if let Some(triggers) = snapshot.target_triggers.get(&tgt.table.name) {
        if tgt.table.is_owner || snapshot.target_privileges.is_superuser {
            plan.quiet_triggers = triggers.clone();
            plan.notes.push(format!(
                "its {} trigger{} set aside during the load (copied rows are not rewritten \
                 or logged) and restored in the same transaction",
                triggers.len(),
                if triggers.len() == 1 { " is" } else { "s are" }
            ));
        } else {
            plan.notes.push(format!(
                "its {} trigger{} fire on the copied rows: the role does not own the table, \
                 so it cannot set them aside",
                triggers.len(),
                if triggers.len() == 1 { "" } else { "s" }
            ));
        }
    }
    if action == Action::Truncate && !plan.target_partitioned {
        let indexes = snapshot
            .target_indexes
            .get(&tgt.table.name)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let owner = tgt.table.is_owner || snapshot.target_privileges.is_superuser;
        let (aside, kept): (Vec<_>, Vec<_>) = indexes.iter().partition(|i| owner && !i.referenced);
        plan.rebuilt_indexes = aside.into_iter().cloned().collect();
        if !plan.rebuilt_indexes.is_empty() {
            plan.notes.push(format!(
                "{} set aside for the load and built again after the rows are in, in the \
                 same transaction",
                crate::text::plural(plan.rebuilt_indexes.len(), "index", "indexes"),
            ));
        }
        if !kept.is_empty() {
            plan.notes.push(format!(
                "{} maintained row by row during the load: {}",
                crate::text::plural(kept.len(), "index is", "indexes are"),
                if owner {
                    "foreign keys depend on them"
                } else {
                    "the role does not own the table"
                }
            ));
        }
    }
    if action == Action::Upsert {
        plan.upsert_key = tgt
            .primary_key
            .as_ref()
            .map(|pk| pk.columns.clone())
            .unwrap_or_default();
    }
    let by_name: BTreeMap<&str, &Column> =
        tgt.columns.iter().map(|c| (c.name.as_str(), c)).collect();
    for col in src.columns.iter().filter(|c| !c.generated) {
        let target_col = by_name.get(col.name.as_str());
        let route = match target_col {
            None => ColumnRoute::MissingOnTarget,
            Some(t) if t.generated => ColumnRoute::GeneratedOnTarget,
            Some(t) => match conversion(&col.ty, &t.ty) {
                Conversion::Identical => ColumnRoute::Identical,
                Conversion::ViaText => ColumnRoute::Text,
                Conversion::Refused(why) => ColumnRoute::Refused(why),
            },
        };
        if route == ColumnRoute::Text {
            plan.notes.push(format!(
                "column {} converts {} → {}",
                col.name,
                col.ty.sql,
                target_col.map(|t| t.ty.sql.as_str()).unwrap_or("?")
            ));
        }
        plan.columns.push(ColumnPlan {
            name: col.name.clone(),
            source_type: col.ty.sql.clone(),
            target_type: target_col.map(|t| t.ty.sql.clone()),
            route,
            value_hash: target_col
                .map(|t| crate::rowhash::ValueHash::of(&col.ty, &t.ty))
                .unwrap_or_default(),
        });
    }
    let source_names: Vec<&str> = src.columns.iter().map(|c| c.name.as_str()).collect();
    plan.target_only_required = tgt
        .columns
        .iter()
        .filter(|c| !source_names.contains(&c.name.as_str()))
        .filter(|c| c.not_null && c.default.is_none() && c.identity.is_none() && !c.generated)
        .map(|c| c.name.clone())
        .collect();
    // Only where the target itself owns a sequence on the column.
    let target_owned: Vec<&str> = tgt
        .columns
        .iter()
        .filter(|c| c.sequence.is_some())
        .map(|c| c.name.as_str())
        .collect();
    plan.sequences = sequence_plans(src)
        .into_iter()
        .filter(|s| target_owned.contains(&s.column.as_str()))
        .collect();
    if action == Action::Sync {
        plan.sync = Some(sync_plan(&mut plan, tgt, snapshot, options));
    }
    plan
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
