//! Tables that load together in one transaction: truncated or synced tables linked by the
//! target's foreign keys, and replaced tables that keys, views or functions tie together.

use std::collections::{BTreeMap, BTreeSet};

use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::unionfind::UnionFind;
use serde::Serialize;

use super::{Action, TablePlan};
use crate::catalog::{Dependents, ForeignKey, Snapshot, TableName};

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

/// The foreign keys among truncate group `members` that form a cycle: no load order
/// satisfies them, so the group's transaction drops them and adds them back, validated,
/// at its end. None when the role may not alter every table they are on: the members
/// are told the load may fail on a key.
pub(super) fn cycle_keys(
    tables: &mut [TablePlan],
    members: &[usize],
    snapshot: &Snapshot,
) -> Vec<ForeignKey> {
    let names: Vec<&TableName> = members.iter().map(|&i| &tables[i].target).collect();
    let keys: Vec<ForeignKey> = snapshot
        .target_foreign_key_definitions
        .iter()
        .filter(|k| names.contains(&&k.table) && names.contains(&&k.references))
        .cloned()
        .collect();
    let may_alter = keys.iter().all(|k| {
        snapshot.target_privileges.is_superuser
            || snapshot
                .target_tables
                .get(&k.table)
                .is_some_and(|t| t.is_owner)
    });
    if may_alter {
        return keys;
    }
    for &i in members {
        tables[i].notes.push(
            "the group's foreign keys form a cycle and the role does not own every table to \
             set them aside: the load may fail on a key"
                .into(),
        );
    }
    Vec::new()
}

/// Group `members` set `keys` aside for the load: not also as NOT VALID constraints, and
/// each member says so.
pub(super) fn set_aside_cycle_keys(
    tables: &mut [TablePlan],
    members: &[usize],
    keys: &[ForeignKey],
) {
    for &i in members {
        let target = tables[i].target.clone();
        tables[i]
            .unvalidated
            .retain(|(name, _)| !keys.iter().any(|k| k.table == target && &k.name == name));
    }
    for &i in members.iter().filter(|_| !keys.is_empty()) {
        tables[i].notes.push(format!(
            "the group's foreign keys form a cycle: its {} key(s) are dropped for the load and \
             added back, validated, before the commit",
            keys.len()
        ));
    }
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
    pub foreign_keys: Vec<ForeignKey>,
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
    let links = replace_links(&replaced, snapshot);
    let mut groups = Vec::new();
    for members in components(replaced.values().copied(), &links) {
        let group = replace_group(tables, &replaced, members, &snapshot.target_dependents);
        let alone = group.members.len() == 1
            && group.foreign_keys.is_empty()
            && group.views.is_empty()
            && group.routines.is_empty();
        if alone {
            continue;
        }
        let note = group.note();
        for &i in &group.members {
            tables[i].replace_group = Some(groups.len());
            tables[i].notes.push(note.clone());
        }
        groups.push(group);
    }
    groups
}

/// Pairs of replaced tables that are dropped together: linked by a foreign key, read by
/// one view, used by one function, or a parent and its inheriting child.
fn replace_links(
    replaced: &BTreeMap<TableName, usize>,
    snapshot: &Snapshot,
) -> Vec<(usize, usize)> {
    let dependents = &snapshot.target_dependents;
    let mut links: Vec<(usize, usize)> = snapshot
        .target_foreign_keys
        .iter()
        .filter_map(|(child, parent)| Some((*replaced.get(child)?, *replaced.get(parent)?)))
        .collect();
    let tied = |tables: &[TableName]| -> Vec<(usize, usize)> {
        let indexes: Vec<usize> = tables
            .iter()
            .filter_map(|t| replaced.get(t).copied())
            .collect();
        indexes.windows(2).map(|w| (w[0], w[1])).collect()
    };
    for view in &dependents.views {
        links.extend(tied(&view.reads));
    }
    for routine in &dependents.routines {
        links.extend(tied(&routine.uses));
    }
    // A parent and the tables inheriting from it are dropped together.
    links.extend(
        dependents
            .children
            .iter()
            .filter_map(|(parent, child)| Some((*replaced.get(parent)?, *replaced.get(child)?))),
    );
    links
}

/// The replace group of `members`, created parents first (a child's INHERITS names
/// them), with what is built on them and not replaced: other tables' foreign keys,
/// views and functions.
fn replace_group(
    tables: &[TablePlan],
    replaced: &BTreeMap<TableName, usize>,
    mut members: Vec<usize>,
    dependents: &Dependents,
) -> ReplaceGroup {
    members.sort_unstable();
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
    let names: BTreeSet<TableName> = members.iter().map(|&i| tables[i].target.clone()).collect();
    ReplaceGroup {
        members,
        foreign_keys: dependents
            .foreign_keys
            .iter()
            .filter(|k| names.contains(&k.key.references) && !replaced.contains_key(&k.root))
            .map(|k| k.key.clone())
            .collect(),
        views: dependents
            .views
            .iter()
            .filter(|v| v.reads.iter().any(|t| names.contains(t)))
            .cloned()
            .collect(),
        routines: dependents
            .routines
            .iter()
            .filter(|r| r.uses.iter().any(|t| names.contains(t)))
            .cloned()
            .collect(),
    }
}

impl ReplaceGroup {
    /// The note on each member: what it is replaced with, and what built on the members
    /// is dropped first and created again.
    fn note(&self) -> String {
        use crate::text::{plural, short_list};
        let others = self.members.len() - 1;
        let mut dependents = Vec::new();
        if !self.foreign_keys.is_empty() {
            dependents.push(plural(
                self.foreign_keys.len(),
                "other table's foreign key",
                "other tables' foreign keys",
            ));
        }
        if !self.views.is_empty() {
            dependents.push(plural(self.views.len(), "view", "views"));
        }
        if !self.routines.is_empty() {
            dependents.push(plural(self.routines.len(), "function", "functions"));
        }
        let with = if others > 0 {
            format!(" with {}", plural(others, "other table", "other tables"))
        } else {
            String::new()
        };
        let built_on = if dependents.is_empty() {
            String::new()
        } else {
            let one = self.foreign_keys.len() + self.views.len() + self.routines.len() == 1;
            format!(
                "; {} built on {} {} dropped first and created again as {} {}",
                short_list(&dependents, 3),
                if self.members.len() == 1 {
                    "it"
                } else {
                    "them"
                },
                if one { "is" } else { "are" },
                if one { "it" } else { "they" },
                if one { "was" } else { "were" },
            )
        };
        format!("replaced in one transaction{with}{built_on}")
    }
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
