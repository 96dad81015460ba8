//! The order tables load in: each after the tables it needs committed first.

use std::collections::BTreeMap;

use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};

use super::columns::text_only;
use super::{Action, TablePlan};
use crate::catalog::{Snapshot, TableName};

/// Loads into existing tables check the target's foreign keys row by row, so a table
/// must wait for the tables it references (when both are loaded by this run). A cycle of
/// keys cannot be ordered: its tables get a note instead, and load in any order.
pub(super) fn order_by_foreign_keys(tables: &mut [TablePlan], edges: &[(TableName, TableName)]) {
    let index: BTreeMap<&TableName, usize> = tables
        .iter()
        .enumerate()
        .filter(|(_, t)| t.action != Action::Keep)
        .map(|(i, t)| (&t.target, i))
        .collect();
    let mut after: Vec<Vec<usize>> = vec![Vec::new(); tables.len()];
    for (child, parent) in edges {
        if let (Some(&c), Some(&p)) = (index.get(child), index.get(parent)) {
            let existing = |i: usize| !matches!(tables[i].action, Action::Create | Action::Replace);
            if existing(c) && !after[c].contains(&p) {
                after[c].push(p);
            }
        }
    }
    // Tables on a cycle of keys (a self-reference counts) cannot be ordered.
    let mut graph = DiGraph::<usize, ()>::new();
    let nodes: Vec<NodeIndex> = (0..tables.len()).map(|i| graph.add_node(i)).collect();
    for (c, parents) in after.iter().enumerate() {
        for &p in parents {
            graph.update_edge(nodes[c], nodes[p], ());
        }
    }
    let cyclic: Vec<usize> = tarjan_scc(&graph)
        .into_iter()
        .filter(|c| c.len() > 1 || graph.contains_edge(c[0], c[0]))
        .flatten()
        .map(|n| graph[n])
        .collect();
    for i in cyclic {
        after[i].clear();
        if tables[i].linked_group.is_some() {
            // Its truncate group loads the cycle in one transaction (see there).
            continue;
        }
        tables[i].notes.push(
            "its foreign keys on the target form a cycle with other copied tables, so it is \
             not ordered after them; load may fail on a key that is not yet satisfied"
                .into(),
        );
    }
    for (t, a) in tables.iter_mut().zip(after) {
        t.load_after = a;
    }
}

/// A regclass/regtype value's text input names a relation or type, which must exist
/// when the row loads: tables with such columns wait for the other tables this run
/// creates (not for each other, so there is no cycle), except those that need them
/// first (their row type, INHERITS).
pub(super) fn wait_for_created(tables: &mut [TablePlan]) {
    let names_objects = |t: &TablePlan| {
        t.columns
            .iter()
            .any(|c| text_only(&c.source_type) && !c.source_type.starts_with("tsquery"))
    };
    let created_plain: Vec<usize> = (0..tables.len())
        .filter(|&i| tables[i].is_created() && !names_objects(&tables[i]))
        .collect();
    let naming: Vec<usize> = (0..tables.len())
        .filter(|&r| names_objects(&tables[r]))
        .collect();
    for r in naming {
        for &i in &created_plain {
            let needs_r = tables[i].requires.contains(&tables[r].target);
            if !needs_r && !tables[r].load_after.contains(&i) {
                tables[r].load_after.push(i);
            }
        }
    }
}

/// A created table waits for the tables it requires (INHERITS parents, row types) when
/// the run creates them too; those neither copied nor on the target are `missing`, as
/// a foreign key's parents are.
pub(super) fn wait_for_required(
    tables: &mut [TablePlan],
    snapshot: &Snapshot,
    missing: &mut BTreeMap<TableName, Vec<TableName>>,
) {
    let index: BTreeMap<TableName, usize> = tables
        .iter()
        .enumerate()
        .map(|(i, t)| (t.target.clone(), i))
        .collect();
    for i in 0..tables.len() {
        for parent in tables[i].requires.clone() {
            match index.get(&parent) {
                Some(&p) if tables[p].is_created() => {
                    if !tables[i].load_after.contains(&p) {
                        tables[i].load_after.push(p);
                    }
                }
                Some(_) => {}
                None if snapshot.target_tables.contains_key(&parent) => {}
                None => missing
                    .entry(tables[i].target.clone())
                    .or_default()
                    .push(parent),
            }
        }
    }
}
