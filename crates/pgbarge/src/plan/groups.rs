//! Tables that load together in one transaction: truncated or synced tables linked by the
//! target's foreign keys, and replaced tables that keys, views or functions tie together.

use std::collections::{BTreeMap, BTreeSet};

use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::unionfind::UnionFind;
use serde::Serialize;

use super::{Action, TablePlan};
use crate::catalog::{Snapshot, TableName};

/// Truncated tables linked by the target's foreign keys cannot be emptied one by one
/// without CASCADE, and synced ones cannot delete and insert one by one (a parent's row
/// goes only after its children's, a child's comes only after its parent's): they are
/// grouped (connected components of the key graph among the tables with that action),
/// each group loaded parents first in one transaction.
pub(super) fn group_linked(
    tables: &mut [TablePlan],
    edges: &[(TableName, TableName)],
) -> (Vec<Vec<usize>>, Vec<bool>) {
    let mut result = Vec::new();
    let mut cycles = Vec::new();
    for action in [Action::Truncate, Action::Sync] {
        let members: BTreeMap<&TableName, usize> = tables
            .iter()
            .enumerate()
            .filter(|(_, t)| t.action == action)
            .map(|(i, t)| (&t.target, i))
            .collect();
        let mut linked: Vec<(usize, usize)> = Vec::new();
        for (child, parent) in edges {
            if let (Some(&c), Some(&p)) = (members.get(child), members.get(parent)) {
                linked.push((c, p));
            }
        }
        let groups = components(members.values().copied(), &linked);
        for group in groups.into_iter().filter(|m| m.len() > 1) {
            let (ordered, cyclic) = parents_first(&group, &linked);
            cycles.push(cyclic);
            let g = result.len();
            let others = ordered.len() - 1;
            let s = if others == 1 { "" } else { "s" };
            for &i in &ordered {
                tables[i].linked_group = Some(g);
                tables[i].notes.push(if action == Action::Truncate {
                    format!(
                        "truncated together with {others} other table{s} its foreign keys link \
                         it to (one TRUNCATE, no CASCADE), loaded parents first in one \
                         transaction"
                    )
                } else {
                    format!(
                        "synced together with {others} other table{s} its foreign keys link it \
                         to, in one transaction: new and changed rows parents first, then \
                         deleted rows children first"
                    )
                });
            }
            result.push(ordered);
        }
    }
    (result, cycles)
}

/// Replaced tables that other tables' foreign keys or views depend on. `DROP TABLE`
/// without CASCADE refuses such a table, and CASCADE would lose those objects; instead
/// one transaction drops the views and the other tables' keys, drops the members
/// together (keys among them go with them), creates and loads each, then adds the keys
/// back (validated against the new rows) and creates the views again as they were.
#[derive(Debug, Clone, Serialize)]
pub struct ReplaceGroup {
    /// Indexes into `Plan::tables`.
    pub members: Vec<usize>,
    /// Foreign keys of tables not replaced that point at members.
    pub foreign_keys: Vec<crate::catalog::ForeignKey>,
    /// Views built on members, each after the views it reads.
    pub views: Vec<crate::catalog::DependentView>,
    /// Functions and procedures whose signatures use members' row types.
    pub routines: Vec<crate::catalog::DependentRoutine>,
}

/// Groups the replaced tables: those linked by the target's foreign keys or read by
/// one view replace together; a table nothing depends on stays on its own (no group).
pub(super) fn group_replaces(tables: &mut [TablePlan], snapshot: &Snapshot) -> Vec<ReplaceGroup> {
    let replaced: BTreeMap<TableName, usize> = tables
        .iter()
        .enumerate()
        .filter(|(_, t)| t.action == Action::Replace)
        .map(|(i, t)| (t.target.clone(), i))
        .collect();
    if replaced.is_empty() {
        return Vec::new();
    }
    let dependents = &snapshot.target_dependents;
    let mut links: Vec<(usize, usize)> = snapshot
        .target_foreign_keys
        .iter()
        .filter_map(|(child, parent)| Some((*replaced.get(child)?, *replaced.get(parent)?)))
        .collect();
    for view in &dependents.views {
        let reads: Vec<usize> = view
            .reads
            .iter()
            .filter_map(|t| replaced.get(t).copied())
            .collect();
        links.extend(reads.windows(2).map(|w| (w[0], w[1])));
    }
    for routine in &dependents.routines {
        let uses: Vec<usize> = routine
            .uses
            .iter()
            .filter_map(|t| replaced.get(t).copied())
            .collect();
        links.extend(uses.windows(2).map(|w| (w[0], w[1])));
    }
    // A parent and the tables inheriting from it are dropped together.
    links.extend(
        dependents
            .children
            .iter()
            .filter_map(|(parent, child)| Some((*replaced.get(parent)?, *replaced.get(child)?))),
    );
    let mut groups = Vec::new();
    for mut members in components(replaced.values().copied(), &links) {
        members.sort_unstable();
        // Created parents first: a child's INHERITS names them.
        let requires: Vec<(usize, usize)> = members
            .iter()
            .flat_map(|&i| {
                tables[i]
                    .requires
                    .iter()
                    .filter_map(|p| replaced.get(p).map(|&pi| (i, pi)))
                    .collect::<Vec<_>>()
            })
            .collect();
        let (members, _) = parents_first(&members, &requires);
        let names: BTreeSet<TableName> =
            members.iter().map(|&i| tables[i].target.clone()).collect();
        let foreign_keys: Vec<crate::catalog::ForeignKey> = dependents
            .foreign_keys
            .iter()
            .filter(|k| names.contains(&k.key.references) && !replaced.contains_key(&k.root))
            .map(|k| k.key.clone())
            .collect();
        let views: Vec<crate::catalog::DependentView> = dependents
            .views
            .iter()
            .filter(|v| v.reads.iter().any(|t| names.contains(t)))
            .cloned()
            .collect();
        let routines: Vec<crate::catalog::DependentRoutine> = dependents
            .routines
            .iter()
            .filter(|r| r.uses.iter().any(|t| names.contains(t)))
            .cloned()
            .collect();
        if members.len() == 1 && foreign_keys.is_empty() && views.is_empty() && routines.is_empty()
        {
            continue;
        }
        let g = groups.len();
        for &i in &members {
            tables[i].replace_group = Some(g);
            let others = members.len() - 1;
            let mut dependents = Vec::new();
            if !foreign_keys.is_empty() {
                dependents.push(crate::text::plural(
                    foreign_keys.len(),
                    "other table's foreign key",
                    "other tables' foreign keys",
                ));
            }
            if !views.is_empty() {
                dependents.push(crate::text::plural(views.len(), "view", "views"));
            }
            if !routines.is_empty() {
                dependents.push(crate::text::plural(routines.len(), "function", "functions"));
            }
            let with = if others > 0 {
                format!(
                    " with {}",
                    crate::text::plural(others, "other table", "other tables")
                )
            } else {
                String::new()
            };
            let built_on = if dependents.is_empty() {
                String::new()
            } else {
                let one = foreign_keys.len() + views.len() + routines.len() == 1;
                format!(
                    "; {} built on {} {} dropped first and created again as {} {}",
                    crate::text::short_list(&dependents, 3),
                    if members.len() == 1 { "it" } else { "them" },
                    if one { "is" } else { "are" },
                    if one { "it" } else { "they" },
                    if one { "was" } else { "were" },
                )
            };
            tables[i]
                .notes
                .push(format!("replaced in one transaction{with}{built_on}"));
        }
        groups.push(ReplaceGroup {
            members,
            foreign_keys,
            views,
            routines,
        });
    }
    groups
}

/// Connected components of `nodes` under the undirected `links`, each in the order its
/// members were first met.
fn components(nodes: impl IntoIterator<Item = usize>, links: &[(usize, usize)]) -> Vec<Vec<usize>> {
    let nodes: Vec<usize> = nodes.into_iter().collect();
    let size = nodes.iter().max().map_or(0, |m| m + 1);
    let mut sets = UnionFind::new(size);
    for &(a, b) in links {
        if nodes.contains(&a) && nodes.contains(&b) {
            sets.union(a, b);
        }
    }
    let mut groups: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for &i in &nodes {
        groups.entry(sets.find(i)).or_default().push(i);
    }
    let mut groups: Vec<Vec<usize>> = groups.into_values().collect();
    groups.sort_by_key(|g| g.iter().min().copied());
    groups
}

/// `members` ordered parents first along `links` (child, parent), and whether links
/// among them form a cycle (its members then come in no particular order among
/// themselves). A member's link to itself orders nothing.
fn parents_first(members: &[usize], links: &[(usize, usize)]) -> (Vec<usize>, bool) {
    let mut graph = DiGraph::<usize, ()>::new();
    let nodes: BTreeMap<usize, NodeIndex> =
        members.iter().map(|&m| (m, graph.add_node(m))).collect();
    for (child, parent) in links.iter().filter(|(c, p)| c != p) {
        if let (Some(&c), Some(&p)) = (nodes.get(child), nodes.get(parent)) {
            graph.update_edge(c, p, ());
        }
    }
    // Strongly connected components come in reverse topological order: with edges from
    // child to parent, parents first.
    let components = tarjan_scc(&graph);
    let cyclic = components.iter().any(|c| c.len() > 1);
    let ordered = components.into_iter().flatten().map(|n| graph[n]).collect();
    (ordered, cyclic)
}

#[cfg(test)]
mod tests {
    use super::{components, parents_first};

    #[test]
    fn linked_tables_form_groups_in_the_order_met() {
        assert_eq!(
            components([4, 1, 7, 2], &[(7, 1), (2, 9)]),
            vec![vec![1, 7], vec![2], vec![4]]
        );
    }

    #[test]
    fn parents_come_first_and_cycles_are_told() {
        // 3 references 2, which references 1; 5 references itself.
        let (order, cyclic) = parents_first(&[3, 1, 2, 5], &[(3, 2), (2, 1), (5, 5)]);
        assert_eq!(order, vec![1, 2, 3, 5]);
        assert!(!cyclic, "a self-reference is no cycle");
        let (order, cyclic) = parents_first(&[1, 2, 3], &[(1, 2), (2, 1), (3, 1)]);
        assert!(cyclic);
        assert_eq!(
            order.last(),
            Some(&3),
            "what references the cycle comes after it"
        );
    }
}
