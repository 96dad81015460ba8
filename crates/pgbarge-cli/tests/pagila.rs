//! Every table of the Pagila sample database (enums, domains, arrays, full-text, a
//! partitioned table) copied into an empty target arrives identical.

mod support;

use support::{pagila_dir, TestDb};

#[test]
fn every_pagila_table_arrives_identical() {
    let dir = pagila_dir();
    let db = TestDb::new("pagila");
    let source = &support::servers().source;
    source.psql_file(&db.name, &dir.join("pagila-schema.sql"));
    source.psql_file(&db.name, &dir.join("pagila-data.sql"));
    db.source_sql("ANALYZE");

    let tables: Vec<String> = db
        .source_sql(
            "SELECT format('%I.%I', schemaname, tablename) FROM pg_tables \
             WHERE schemaname = 'public' ORDER BY 1",
        )
        .lines()
        .map(str::to_string)
        .collect();
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
