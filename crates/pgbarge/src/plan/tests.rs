//! Plans built from snapshots of both servers, without a server: each table's decision,
//! and what preflight says of the plan.

use super::fixtures::{build, column, detail, keyed, snapshot, ty};
use super::*;
use crate::catalog::{
    ColumnDefault, ColumnType, OwnedSequence, Partition, SequenceParameters, Snapshot, TableDetail,
    TableKind, TableName, TargetIndex,
};
use crate::preflight::{check, ProblemKind};

fn int4() -> ColumnType {
    ty("integer", "int4")
}

fn text() -> ColumnType {
    ty("text", "text")
}

/// `public.orders (id integer PRIMARY KEY, note text)`.
fn orders() -> TableDetail {
    keyed(
        detail("orders", vec![column("id", int4()), column("note", text())]),
        &["id"],
    )
}

/// `public.lines (id integer PRIMARY KEY, order_id integer)`.
fn lines() -> TableDetail {
    let mut t = keyed(
        detail(
            "lines",
            vec![column("id", int4()), column("order_id", int4())],
        ),
        &["id"],
    );
    t.table.oid = 16390;
    t
}

fn mode(mode: LoadMode) -> PlanOptions {
    PlanOptions {
        mode: Some(mode),
        ..PlanOptions::default()
    }
}

fn name(table: &str) -> TableName {
    TableName::new("public", table)
}

fn problems(plan: &Plan, snapshot: &Snapshot) -> Vec<ProblemKind> {
    check(plan, snapshot, &[]).iter().map(|p| p.kind).collect()
}

#[test]
fn a_table_missing_on_the_target_is_created_then_keyed() {
    let s = snapshot(vec![orders()], vec![], &[]);
    let plan = build(&["orders"], &s, &PlanOptions::default());
    let t = &plan.tables[0];
    assert_eq!(t.action, Action::Create);
    assert_eq!(t.format, CopyFormat::Binary);
    assert!(t.columns.iter().all(|c| c.route == ColumnRoute::Identical));
    let create = t.create.as_ref().expect("a create spec");
    assert_eq!(create.columns, vec!["\"id\" integer", "\"note\" text"]);
    let setup = t.setup_sql(&t.target);
    assert_eq!(
        setup,
        vec!["CREATE TABLE \"public\".\"orders\" (\n    \"id\" integer,\n    \"note\" text\n)"]
    );
    // The key comes after the rows: one sort instead of a B-tree insert per row.
    assert_eq!(
        t.finish_sql(&t.target),
        vec!["ALTER TABLE \"public\".\"orders\" ADD CONSTRAINT \"orders_pkey\" PRIMARY KEY (id)"]
    );
    assert!(plan.prepare.is_empty(), "{:?}", plan.prepare);
    assert_eq!(
        problems(&plan, &s),
        Vec::new(),
        "a clean plan has no problem"
    );
}

#[test]
fn a_new_schema_and_a_serial_sequence_are_prepared_before_the_table() {
    let mut src = orders();
    src.table.name = TableName::new("sales", "orders");
    let seq = TableName::new("sales", "orders_id_seq");
    src.columns[0].not_null = true;
    src.columns[0].default = Some(ColumnDefault {
        expr: "nextval('sales.orders_id_seq'::regclass)".into(),
    });
    src.columns[0].sequence = Some(OwnedSequence {
        name: seq.clone(),
        identity: false,
        parameters: SequenceParameters {
            data_type: "integer".into(),
            start: 1,
            increment: 1,
            min: 1,
            max: i32::MAX.into(),
            cache: 1,
            cycle: false,
        },
        readable: true,
    });
    let s = snapshot(vec![src], vec![], &[]);
    let chosen = [TableName::new("sales", "orders")];
    let plan = Plan::build(
        fixtures::endpoint(),
        fixtures::endpoint(),
        &chosen,
        &s,
        &PlanOptions::default(),
    );
    assert_eq!(
        plan.prepare,
        vec![
            "CREATE SCHEMA IF NOT EXISTS \"sales\"".to_string(),
            "CREATE SEQUENCE \"sales\".\"orders_id_seq\" AS integer START WITH 1 INCREMENT BY 1 \
             MINVALUE 1 MAXVALUE 2147483647 CACHE 1 NO CYCLE"
                .to_string(),
        ]
    );
    let t = &plan.tables[0];
    let create = t.create.as_ref().expect("a create spec");
    assert!(create.sequences.is_empty(), "moved to the preparing step");
    assert_eq!(create.owned_by, vec![(seq.clone(), "id".to_string())]);
    assert_eq!(
        create.columns[0],
        "\"id\" integer DEFAULT nextval('sales.orders_id_seq'::regclass) NOT NULL"
    );
    assert_eq!(t.sequences.len(), 1);
    assert!(
        t.sequences[0].created,
        "a created sequence takes the source's state"
    );
    // The role may create neither the schema nor anything in the database.
    assert_eq!(problems(&plan, &s), vec![ProblemKind::MissingPrivilege]);
}

#[test]
fn an_existing_empty_table_is_loaded_and_one_with_rows_needs_a_mode() {
    let s = snapshot(vec![orders()], vec![orders()], &[]);
    let plan = build(&["orders"], &s, &PlanOptions::default());
    let t = &plan.tables[0];
    assert_eq!(t.action, Action::Load);
    assert!(t.create.is_none());
    assert!(t.setup_sql(&t.target).is_empty());
    assert_eq!(problems(&plan, &s), Vec::new());

    let s = snapshot(vec![orders()], vec![orders()], &["orders"]);
    let plan = build(&["orders"], &s, &PlanOptions::default());
    assert_eq!(plan.tables[0].action, Action::NeedsMode);
    assert_eq!(problems(&plan, &s), vec![ProblemKind::TargetHoldsRows]);

    // The interactive answer for the table wins over --mode.
    let options = PlanOptions {
        per_table: [(name("orders"), LoadMode::Append)].into(),
        ..mode(LoadMode::Truncate)
    };
    let plan = build(&["orders"], &s, &options);
    assert_eq!(plan.tables[0].action, Action::Append);
    assert!(plan.tables[0].setup_sql(&name("orders")).is_empty());
}

#[test]
fn truncate_empties_the_table_in_the_load_and_rebuilds_its_indexes() {
    let mut s = snapshot(vec![orders()], vec![orders()], &["orders"]);
    s.target_indexes.insert(
        name("orders"),
        vec![TargetIndex {
            name: "orders_note".into(),
            definition: "CREATE INDEX orders_note ON public.orders USING btree (note)".into(),
            constraint: None,
            referenced: false,
            replica_identity: false,
            clustered: false,
            comment: None,
            constraint_comment: None,
            unique_key: None,
        }],
    );
    let plan = build(&["orders"], &s, &mode(LoadMode::Truncate));
    let t = &plan.tables[0];
    assert_eq!(t.action, Action::Truncate);
    assert_eq!(
        t.setup_sql(&t.target),
        vec![
            "TRUNCATE ONLY \"public\".\"orders\"",
            "DROP INDEX \"public\".\"orders_note\""
        ]
    );
    assert_eq!(
        t.finish_sql(&t.target),
        vec!["CREATE INDEX orders_note ON public.orders USING btree (note)"]
    );

    // An empty table is emptied too: a group's TRUNCATE must name every member.
    let s = snapshot(vec![orders()], vec![orders()], &[]);
    let plan = build(&["orders"], &s, &mode(LoadMode::Truncate));
    assert_eq!(plan.tables[0].action, Action::Truncate);
}

#[test]
fn tables_linked_by_foreign_keys_truncate_together_parents_first() {
    let mut referenced = orders();
    referenced.others.referenced_by = vec![name("lines")];
    let mut s = snapshot(
        vec![lines(), orders()],
        vec![lines(), referenced],
        &["lines", "orders"],
    );
    s.target_foreign_keys = vec![(name("lines"), name("orders"))];
    let plan = build(&["lines", "orders"], &s, &mode(LoadMode::Truncate));
    assert_eq!(plan.linked_groups, vec![vec![1, 0]], "orders first");
    assert!(plan.linked_group_keys.iter().all(Vec::is_empty), "no cycle");
    for t in &plan.tables {
        assert_eq!(t.linked_group, Some(0));
        assert!(
            !t.setup_sql(&t.target)
                .iter()
                .any(|s| s.starts_with("TRUNCATE")),
            "the group truncates its members in one statement"
        );
    }
    assert_eq!(problems(&plan, &s), Vec::new());

    // Alone, orders cannot be truncated without CASCADE.
    let plan = build(&["orders"], &s, &mode(LoadMode::Truncate));
    assert_eq!(
        problems(&plan, &s),
        vec![ProblemKind::ReferencedByForeignKeys]
    );
}

#[test]
fn upsert_merges_by_the_targets_primary_key() {
    let s = snapshot(vec![orders()], vec![orders()], &["orders"]);
    let plan = build(&["orders"], &s, &mode(LoadMode::Upsert));
    let t = &plan.tables[0];
    assert_eq!(t.action, Action::Upsert);
    assert_eq!(t.upsert_key, vec!["id"]);
    assert_eq!(
        t.load_into(&t.target),
        TableName::new("pg_temp", "pgbarge_upsert")
    );
    assert!(
        t.finish_sql(&t.target)[0].contains("ON CONFLICT (\"id\") DO UPDATE SET (\"note\")"),
        "{:?}",
        t.finish_sql(&t.target)
    );
    assert_eq!(problems(&plan, &s), Vec::new());

    let unkeyed = detail("orders", orders().columns);
    let s = snapshot(vec![orders()], vec![unkeyed], &["orders"]);
    let plan = build(&["orders"], &s, &mode(LoadMode::Upsert));
    assert!(plan.tables[0].upsert_key.is_empty());
    assert_eq!(problems(&plan, &s), vec![ProblemKind::NoUpsertKey]);
}

#[test]
fn sync_matches_by_key_and_uses_since_only_with_one() {
    let options = PlanOptions {
        since: Some("note".into()),
        ..mode(LoadMode::Sync)
    };
    let s = snapshot(vec![orders()], vec![orders()], &["orders"]);
    let plan = build(&["orders"], &s, &options);
    let t = &plan.tables[0];
    assert_eq!(t.action, Action::Sync);
    let sync = t.sync.as_ref().expect("a sync plan");
    assert_eq!(sync.key, vec!["id"]);
    assert_eq!(sync.since.as_deref(), Some("note"));

    let unkeyed = detail("orders", orders().columns);
    let s = snapshot(vec![orders()], vec![unkeyed], &["orders"]);
    let plan = build(&["orders"], &s, &options);
    let t = &plan.tables[0];
    let sync = t.sync.as_ref().expect("a sync plan");
    assert!(sync.key.is_empty(), "compared as a multiset");
    assert_eq!(sync.since, None);
    assert!(t.notes.iter().any(|n| n.starts_with("--since needs a key")));

    // Nothing to compare against: an empty target is simply loaded.
    let s = snapshot(vec![orders()], vec![orders()], &[]);
    let plan = build(&["orders"], &s, &options);
    assert_eq!(plan.tables[0].action, Action::Load);
    assert!(plan.tables[0].sync.is_none());
}

#[test]
fn replace_recreates_the_table_from_the_source() {
    let mut target = orders();
    target.columns.pop();
    let s = snapshot(vec![orders()], vec![target], &["orders"]);
    let plan = build(&["orders"], &s, &mode(LoadMode::Replace));
    let t = &plan.tables[0];
    assert_eq!(t.action, Action::Replace);
    assert_eq!(t.replace_group, None, "nothing depends on it");
    let setup = t.setup_sql(&t.target);
    assert_eq!(setup[0], "DROP TABLE \"public\".\"orders\"");
    assert!(setup[1].starts_with("CREATE TABLE \"public\".\"orders\" ("));
    // The source's columns, not the target's: nothing is missing.
    assert!(t.columns.iter().all(|c| c.route == ColumnRoute::Identical));
    assert_eq!(problems(&plan, &s), Vec::new());
}

#[test]
fn preflight_refuses_a_replace_or_truncate_the_role_may_not_do() {
    let mut s = snapshot(vec![orders()], vec![orders()], &["orders"]);
    let role = s
        .target_tables
        .get_mut(&name("orders"))
        .expect("on the target");
    role.is_owner = false;
    role.can_truncate = false;
    let plan = build(&["orders"], &s, &mode(LoadMode::Replace));
    let found = check(&plan, &s, &[]);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].kind, ProblemKind::MissingPrivilege);
    assert!(found[0].message.contains("does not own it"), "{}", found[0]);

    let plan = build(&["orders"], &s, &mode(LoadMode::Truncate));
    let found = check(&plan, &s, &[]);
    assert_eq!(found.len(), 1);
    assert!(found[0]
        .hint
        .contains("GRANT TRUNCATE ON \"public\".\"orders\" TO \"app\""));
}

#[test]
fn a_widening_type_change_travels_as_text_and_a_narrowing_one_is_refused() {
    let target = keyed(
        detail(
            "orders",
            vec![column("id", ty("bigint", "int8")), column("note", text())],
        ),
        &["id"],
    );
    let s = snapshot(vec![orders()], vec![target.clone()], &[]);
    let plan = build(&["orders"], &s, &PlanOptions::default());
    let t = &plan.tables[0];
    assert_eq!(t.columns[0].route, ColumnRoute::Text);
    assert_eq!(t.columns[0].target_type.as_deref(), Some("bigint"));
    assert_eq!(
        t.format,
        CopyFormat::Text,
        "one converted column: all as text"
    );
    assert!(t
        .notes
        .contains(&"column id converts integer → bigint".to_string()));
    assert_eq!(problems(&plan, &s), Vec::new());

    // The other way: bigint values do not all fit in an integer.
    let s = snapshot(vec![target], vec![orders()], &[]);
    let plan = build(&["orders"], &s, &PlanOptions::default());
    assert!(matches!(
        plan.tables[0].columns[0].route,
        ColumnRoute::Refused(_)
    ));
    assert_eq!(problems(&plan, &s), vec![ProblemKind::TypeMismatch]);
}

#[test]
fn columns_on_one_side_only() {
    let mut source = orders();
    let mut total = column("total", int4());
    total.generated = true;
    total.default = Some(ColumnDefault {
        expr: "id * 2".into(),
    });
    source.columns.push(total);
    source.columns.push(column("code", text()));
    let mut code = column("code", text());
    code.generated = true;
    let mut region = column("region", text());
    region.not_null = true;
    let target = detail(
        "orders",
        vec![column("id", int4()), code, region, column("memo", text())],
    );
    let s = snapshot(vec![source], vec![target], &[]);
    let plan = build(&["orders"], &s, &PlanOptions::default());
    let t = &plan.tables[0];
    let routes: Vec<(&str, &ColumnRoute)> = t
        .columns
        .iter()
        .map(|c| (c.name.as_str(), &c.route))
        .collect();
    // A generated source column is computed on the target, never copied.
    assert_eq!(
        routes,
        vec![
            ("id", &ColumnRoute::Identical),
            ("note", &ColumnRoute::MissingOnTarget),
            ("code", &ColumnRoute::GeneratedOnTarget),
        ]
    );
    // Only a target column that must be given a value is named.
    assert_eq!(t.target_only_required, vec!["region"]);
    assert_eq!(
        problems(&plan, &s),
        vec![
            ProblemKind::MissingColumn,
            ProblemKind::GeneratedOnTarget,
            ProblemKind::RequiredTargetColumn
        ]
    );
}

#[test]
fn schema_only_keeps_existing_tables_and_data_only_creates_none() {
    let options = PlanOptions {
        content: Content::SchemaOnly,
        ..PlanOptions::default()
    };
    let s = snapshot(vec![orders(), lines()], vec![orders()], &["orders"]);
    let plan = build(&["orders", "lines"], &s, &options);
    let actions: Vec<Action> = plan.tables.iter().map(|t| t.action).collect();
    assert_eq!(actions, vec![Action::Keep, Action::Create]);
    assert_eq!(problems(&plan, &s), Vec::new());

    let options = PlanOptions {
        content: Content::DataOnly,
        ..PlanOptions::default()
    };
    let plan = build(&["orders", "lines"], &s, &options);
    let actions: Vec<Action> = plan.tables.iter().map(|t| t.action).collect();
    assert_eq!(actions, vec![Action::NeedsMode, Action::Create]);
    let found: Vec<(ProblemKind, Option<TableName>)> = check(&plan, &s, &[])
        .into_iter()
        .map(|p| (p.kind, p.table))
        .collect();
    assert_eq!(
        found,
        vec![
            (ProblemKind::TargetHoldsRows, Some(name("orders"))),
            (ProblemKind::MissingTable, Some(name("lines"))),
        ]
    );
}

#[test]
fn a_big_new_table_is_split_and_an_existing_one_is_not() {
    let mut big = orders();
    big.table.total_bytes = 200 << 20;
    big.table.pages = 25_600;
    let options = PlanOptions {
        jobs: Some(4),
        ..PlanOptions::default()
    };
    let s = snapshot(vec![big.clone()], vec![], &[]);
    let plan = build(&["orders"], &s, &options);
    let t = &plan.tables[0];
    // 200 MiB in parts of 32 MiB, rounded up to a multiple of the 4 streams.
    assert_eq!(t.parts.len(), 8);
    assert_eq!(t.parts[0].first_block, 0);
    assert_eq!(
        t.parts[7].end_block, None,
        "the last part is open at the end"
    );
    assert_eq!(
        t.staging,
        Some(TableName::new("public", "_pgbarge_16384_orders"))
    );

    let s = snapshot(vec![big.clone()], vec![orders()], &[]);
    let plan = build(&["orders"], &s, &options);
    let t = &plan.tables[0];
    assert!(t.parts.is_empty());
    assert!(t
        .notes
        .iter()
        .any(|n| n.starts_with("not split: loading an existing")));

    // --schema-only moves no rows, so nothing is split.
    let options = PlanOptions {
        content: Content::SchemaOnly,
        ..options
    };
    let s = snapshot(vec![big], vec![], &[]);
    assert!(build(&["orders"], &s, &options).tables[0].parts.is_empty());
}

#[test]
fn a_partition_chosen_with_its_table_comes_with_it() {
    let mut root = orders();
    root.table.kind = TableKind::Partitioned;
    let mut s = snapshot(
        vec![root, detail("orders_2024", orders().columns)],
        vec![],
        &[],
    );
    s.source_objects
        .partition_keys
        .insert(name("orders"), "RANGE (id)".into());
    s.source_objects.partitions.insert(
        name("orders"),
        vec![Partition {
            oid: 16400,
            name: name("orders_2024"),
            parent: name("orders"),
            bound: "FOR VALUES FROM (1) TO (100)".into(),
            partition_key: None,
            options: Vec::new(),
            columns: Vec::new(),
            parent_not_null: Vec::new(),
            parent_columns: Vec::new(),
            parent_generated: false,
            defaults: Vec::new(),
            pages: 1,
            bytes: 8192,
            constraint: None,
        }],
    );
    let plan = build(&["orders", "orders_2024"], &s, &PlanOptions::default());
    assert_eq!(
        plan.tables.len(),
        1,
        "the partition is not a table of its own"
    );
    let t = &plan.tables[0];
    assert_eq!(t.leaves, vec![name("orders_2024")]);
    assert!(t.read(None).tree, "read through the partitioned table");
    let setup = t.setup_sql(&t.target);
    assert!(setup[0].ends_with(" PARTITION BY RANGE (id)"), "{setup:?}");
    assert_eq!(
        setup[1],
        "CREATE TABLE \"public\".\"orders_2024\" PARTITION OF \"public\".\"orders\" FOR VALUES \
         FROM (1) TO (100)"
    );
}
