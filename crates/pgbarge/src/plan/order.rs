//! The order tables load in: each after the tables it needs committed first.

use std::collections::BTreeMap;

use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};

use super::{Action, TablePlan};
use crate::catalog::TableName;

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
