//! Every table of the Pagila sample database (enums, domains, arrays, full-text, a
//! partitioned table) copied into an empty target arrives identical.

mod support;

use support::TestDb;

#[test]
fn every_pagila_table_arrives_identical() {
    let db = TestDb::new("pagila");
    db.load_pagila();

    let tables = db.source_tables("public");
    assert!(
        tables.len() >= 15,
        "Pagila has at least 15 tables, found {tables:?}"
    );

    // Named one by one (not `public.*`, which would bring the whole schema's types).
    let mut args: Vec<&str> = tables.iter().map(String::as_str).collect();
    args.push("--yes");
    let run = db.copy(&args);
    run.assert_ok();
    assert!(run.stdout.contains("15 tables,"), "{}", run.stdout);
    let mut total = 0;
    for t in &tables {
        total += db.assert_same(t);
    }
    assert!(
        total > 40_000,
        "Pagila holds tens of thousands of rows, compared {total}"
    );
    // The enum and domain the columns need were created by the non-superuser role (and
    // only those: the unused domain "bıgınt" is not).
    let types = db.target_sql(
        "SELECT string_agg(typname, ',' ORDER BY typname) FROM pg_type \
         WHERE typnamespace = 'public'::regnamespace AND typtype IN ('e', 'd')",
    );
    assert_eq!(types.trim(), "mpaa_rating,year");
}

/// The second day: the same `--all` copy again after the source changed, as a refresh by
/// truncate, by replace (Pagila's views, materialized view and `rewards_report` depend on
/// its tables), and by replaying the plan saved on the first day.
#[test]
fn pagila_refreshes_with_truncate_replace_and_a_replayed_plan() {
    let db = TestDb::new("pagila_refresh");
    db.load_pagila();
    let plan = std::env::temp_dir().join(format!("pgbarge-pagila-{}.toml", std::process::id()));
    let plan_arg = plan.display().to_string();
    db.copy(&["--all", "--yes", "--save-plan", &plan_arg])
        .assert_ok();

    let tables = db.source_tables("public");
    let change = |round: i32| {
        db.source_sql(&format!(
            "UPDATE actor SET last_name = 'ROUND{round}' WHERE actor_id = {round};
             DELETE FROM film_actor WHERE actor_id = {round} AND film_id IN
               (SELECT film_id FROM film_actor WHERE actor_id = {round} LIMIT 2);
             INSERT INTO category (name) VALUES ('Round {round}');"
        ));
    };
    let same = || {
        for t in &tables {
            db.assert_same(t);
        }
    };
    let view_count = || {
        db.target_sql(
            "SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace \
             AND relkind IN ('v', 'm')",
        )
    };
    let views_before = view_count();

    change(1);
    let run = db.copy(&["--all", "--mode", "truncate", "--yes", "--verify"]);
    run.assert_ok();
    same();

    change(2);
    let run = db.copy(&["--all", "--mode", "replace", "--yes", "--verify"]);
    run.assert_ok();
    same();
    assert_eq!(view_count(), views_before, "the views were created again");
    let populated = "SELECT relispopulated FROM pg_class WHERE relname = 'rental_by_category'";
    assert_eq!(
        db.target_sql(populated),
        db.source_sql(populated),
        "the materialized view is back, populated as it was"
    );
    assert_eq!(
        db.target_sql("SELECT count(*) FROM actor_info WHERE last_name = 'ROUND2'")
            .trim(),
        "1"
    );
    assert_eq!(
        db.target_sql("SELECT count(*) FROM pg_proc WHERE proname = 'rewards_report'")
            .trim(),
        "1"
    );
    assert_eq!(
        db.target_sql("SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND convalidated")
            .trim(),
        db.source_sql("SELECT count(*) FROM pg_constraint WHERE contype = 'f'")
            .trim(),
        "every foreign key is back and validated"
    );
    // The schema is the source's after a replace too.
    db.assert_same_schema();

    change(3);
    db.copy(&["--plan", &plan_arg, "--mode", "truncate", "--yes"])
        .assert_ok();
    same();
    let _ = std::fs::remove_file(&plan);
}
