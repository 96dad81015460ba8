//! `--mode sync`: only the rows that differ move, and the target ends equal to the
//! source — on any key type, without a key, across foreign keys, under writes, after a
//! dropped connection, and with `--since` even for rows committed late.

mod support;

use std::time::{Duration, Instant};

use support::proxy::{Fault, FaultProxy};
use support::{servers, TestDb};

/// Tables of every kind of key, on the source.
const TABLES: &str = "
CREATE TABLE composite (region text, n int, v text, PRIMARY KEY (region, n));
INSERT INTO composite SELECT 'r' || (g % 37), g, md5(g::text) FROM generate_series(1, 30000) g;
CREATE TABLE texty (code text PRIMARY KEY, v numeric);
INSERT INTO texty SELECT 'code ' || g || E' \\u00e9 \"q\"', g / 7.0 FROM generate_series(1, 20000) g;
CREATE TABLE uuids (id uuid PRIMARY KEY, doc jsonb, tags text[], raw json, at point);
INSERT INTO uuids SELECT md5(g::text)::uuid, jsonb_build_object('g', g), ARRAY['a' || g, NULL],
  '{\"b\": 1,  \"a\": 2}', point(g, -g) FROM generate_series(1, 20000) g;
CREATE TABLE by_unique (email text NOT NULL UNIQUE, name text);
INSERT INTO by_unique SELECT 'u' || g || '@x', 'n' || g FROM generate_series(1, 5000) g;
CREATE TABLE dupes (a int, b text);
INSERT INTO dupes SELECT g % 300, 'x' || (g % 7) FROM generate_series(1, 12000) g;
INSERT INTO dupes VALUES (NULL, NULL), (NULL, NULL);
CREATE TABLE measured (id int PRIMARY KEY, price numeric, qty int,
  total numeric GENERATED ALWAYS AS (price * qty) STORED);
INSERT INTO measured (id, price, qty) SELECT g, g / 10.0, g % 5 FROM generate_series(1, 3000) g;
CREATE COLLATION ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
CREATE TABLE ci_keys (code text COLLATE ci PRIMARY KEY, n int);
INSERT INTO ci_keys SELECT 'Code' || g, g FROM generate_series(1, 3000) g;
CREATE TABLE parted (id int, day date, v text, PRIMARY KEY (id, day)) PARTITION BY RANGE (day);
CREATE TABLE parted_a PARTITION OF parted FOR VALUES FROM ('2020-01-01') TO ('2021-01-01');
CREATE TABLE parted_b PARTITION OF parted FOR VALUES FROM ('2021-01-01') TO ('2022-01-01');
INSERT INTO parted SELECT g, '2020-01-01'::date + (g % 700), 'p' || g FROM generate_series(1, 8000) g;
ANALYZE;
";

const NAMES: [&str; 8] = [
    "composite",
    "texty",
    "uuids",
    "by_unique",
    "dupes",
    "measured",
    "ci_keys",
    "parted",
];

/// Inserts, updates and deletes on every table of [`TABLES`].
const CHANGES: &str = "
UPDATE composite SET v = 'changed' WHERE n % 1000 = 0;
DELETE FROM composite WHERE n % 997 = 0;
INSERT INTO composite SELECT 'new', g, 'n' FROM generate_series(1, 40) g;
UPDATE texty SET v = -v WHERE v::int % 900 = 0;
DELETE FROM texty WHERE code LIKE 'code 1%7 %';
INSERT INTO texty VALUES ('brand new', 1), ('', 0);
UPDATE uuids SET doc = doc || '{\"edited\": true}' WHERE (doc->>'g')::int % 500 = 0;
DELETE FROM uuids WHERE (doc->>'g')::int % 333 = 0;
INSERT INTO uuids VALUES ('00000000-0000-0000-0000-000000000000', NULL, '{}', '[ ]', NULL);
UPDATE by_unique SET name = 'renamed' WHERE email LIKE 'u1%0@x';
DELETE FROM by_unique WHERE email = 'u7@x';
INSERT INTO by_unique VALUES ('u7@y', 'moved');
DELETE FROM dupes WHERE ctid IN (SELECT ctid FROM dupes WHERE a = 5 LIMIT 3);
INSERT INTO dupes VALUES (1, 'x1'), (1, 'x1'), (9999, 'new'), (NULL, NULL);
UPDATE measured SET qty = qty + 1 WHERE id % 100 = 0;
UPDATE ci_keys SET n = -n WHERE n % 100 = 0;
DELETE FROM ci_keys WHERE code = 'CODE7';
INSERT INTO ci_keys VALUES ('brand new', 0);
UPDATE parted SET day = '2021-06-01' WHERE id % 500 = 0;
DELETE FROM parted WHERE id % 777 = 0;
";

fn scalar(db: &TestDb, sql: &str) -> i64 {
    db.source_sql(sql).trim().parse().expect("a number")
}

#[test]
fn sync_repairs_every_kind_of_key_and_duplicate_rows_moving_only_the_differences() {
    let db = TestDb::new("sync_keys");
    db.source_sql(TABLES);
    db.copy(&NAMES).assert_ok();
    // The target drifts on its own too: a row only it has, a row it changed, a row it
    // lost; and it has a trigger that must not fire on the repair.
    db.target_sql_as_app(
        "INSERT INTO composite VALUES ('target only', 1, 'x');
         UPDATE texty SET v = 0 WHERE code = 'code 5 é \"q\"';
         DELETE FROM uuids WHERE (doc->>'g')::int = 42;
         DELETE FROM dupes WHERE a = 9;
         CREATE TABLE audit (n int);
         CREATE FUNCTION log_it() RETURNS trigger LANGUAGE plpgsql AS
           $$ BEGIN INSERT INTO audit VALUES (1); RETURN NEW; END $$;
         CREATE TRIGGER logged AFTER INSERT OR UPDATE OR DELETE ON composite
           FOR EACH ROW EXECUTE FUNCTION log_it();",
    );
    db.source_sql(CHANGES);

    let mut args = NAMES.to_vec();
    args.extend(["--mode", "sync", "--jobs", "2"]);
    let run = db.copy(&args);
    run.assert_ok();
    for t in NAMES {
        db.assert_same(t);
    }
    let out = &run.stdout;
    assert!(
        out.contains("public.composite: 30,"),
        "rows compared are reported: {out}"
    );
    assert!(out.contains("40 inserted"), "composite's new rows: {out}");
    assert!(
        out.contains("30 updated"),
        "composite's changed rows: {out}"
    );
    assert!(
        out.contains("44 inserted, 0 updated, 3 deleted"),
        "duplicates counted as copies: {out}"
    );
    // A second sync finds nothing left to move.
    let mut again = args.clone();
    again.push("--json");
    let report = db.copy(&again);
    report.assert_ok();
    let json: serde_json::Value = serde_json::from_str(&report.stdout).expect("JSON report");
    for t in json["tables"].as_array().expect("tables") {
        assert_eq!(t["rows"], 0, "nothing left to move: {t}");
        assert_eq!(t["sync"]["inserted"], 0, "{t}");
        assert_eq!(t["sync"]["deleted"], 0, "{t}");
    }
    assert_eq!(db.target_sql("SELECT count(*) FROM audit").trim(), "0");
    // The source has not changed since: a changed target is still found and repaired.
    db.target_sql_as_app(
        "UPDATE texty SET v = 42 WHERE code = 'brand new'; DELETE FROM by_unique;",
    );
    db.copy(&args).assert_ok();
    db.assert_same("texty");
    db.assert_same("by_unique");
    // Generated columns are the server's, and equal.
    db.assert_same("measured");

    let verify = support::pgbarge(&{
        let mut a = vec!["verify".to_string(), "--source".into(), db.source_conn()];
        a.extend(["--target".into(), db.target_conn()]);
        a.extend(NAMES.iter().map(|s| s.to_string()));
        a
    });
    verify.assert_ok();
    assert!(verify.stdout.contains("8 equal"), "{}", verify.stdout);
}

#[test]
fn sync_of_tables_linked_by_foreign_keys_moves_children_and_parents_in_one_transaction() {
    let db = TestDb::new("sync_fk");
    db.source_sql(
        "CREATE TABLE parent (id int PRIMARY KEY, name text);
         CREATE TABLE child (id int PRIMARY KEY, parent_id int NOT NULL REFERENCES parent, v text);
         INSERT INTO parent SELECT g, 'p' || g FROM generate_series(1, 100) g;
         INSERT INTO child SELECT g, 1 + g % 100, 'c' || g FROM generate_series(1, 1000) g;",
    );
    db.copy(&["parent", "child"]).assert_ok();
    // A parent goes with its children; children move to a new parent before their old
    // one goes; a new parent comes with a new child.
    db.source_sql(
        "DELETE FROM child WHERE parent_id = 10; DELETE FROM parent WHERE id = 10;
         INSERT INTO parent VALUES (500, 'new');
         UPDATE child SET parent_id = 500 WHERE parent_id = 20;
         DELETE FROM parent WHERE id = 20;
         INSERT INTO child VALUES (5000, 500, 'new child');",
    );
    let run = db.copy(&["parent", "child", "--mode", "sync"]);
    run.assert_ok();
    db.assert_same("parent");
    db.assert_same("child");
}

#[test]
fn a_sync_dry_run_shows_the_differences_and_writes_nothing() {
    let db = TestDb::new("sync_dry");
    db.source_sql(
        "CREATE TABLE t (id int PRIMARY KEY, v text);
         INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 5000) g;",
    );
    db.copy(&["t"]).assert_ok();
    db.source_sql("UPDATE t SET v = 'x' WHERE id = 7; DELETE FROM t WHERE id = 9;");
    let before = db.target_sql("SELECT count(*), sum(hashtext(t::text)) FROM t");
    let run = db.copy(&["t", "--mode", "sync", "--dry-run"]);
    run.assert_ok();
    assert!(
        run.stdout.contains("would insert 0, update 1, delete 1"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("(7)") && run.stdout.contains("(9)"),
        "{}",
        run.stdout
    );
    let json = db.copy(&["t", "--mode", "sync", "--dry-run", "--json"]);
    json.assert_ok();
    let doc: serde_json::Value = serde_json::from_str(&json.stdout).expect("JSON");
    assert_eq!(doc["sync"][0]["stats"]["updated"], 1, "{doc}");
    assert_eq!(
        db.target_sql("SELECT count(*), sum(hashtext(t::text)) FROM t"),
        before,
        "nothing written"
    );

    // A table the role may not delete from is refused before anything runs.
    db.source_sql("CREATE TABLE theirs (id int PRIMARY KEY); INSERT INTO theirs VALUES (1);");
    db.target_sql(
        "CREATE TABLE theirs (id int PRIMARY KEY); INSERT INTO theirs VALUES (2);
         GRANT SELECT, INSERT, UPDATE ON theirs TO app;",
    );
    let refused = db.copy(&["theirs", "--mode", "sync"]);
    assert_eq!(refused.code, 3, "{}", refused.stderr);
    assert!(
        refused
            .stderr
            .contains("GRANT SELECT, INSERT, UPDATE, DELETE ON \"public\".\"theirs\""),
        "{}",
        refused.stderr
    );
}

#[test]
fn a_sync_while_the_source_is_written_ends_equal_to_one_instant() {
    let db = TestDb::new("sync_live");
    db.source_sql(
        "CREATE TABLE a (n int PRIMARY KEY, pad text);
         CREATE TABLE b (n int PRIMARY KEY);
         CREATE TABLE c (id int PRIMARY KEY, v int);
         INSERT INTO a SELECT -g, repeat('p', 50) FROM generate_series(1, 100000) g;
         INSERT INTO c VALUES (1, 0);
         ANALYZE;",
    );
    db.copy(&["a", "b", "c"]).assert_ok();
    // A writer commits, one transaction each: row n into a and b, and c.v = n; and it
    // deletes an old row of a.
    let mut writer = servers().source.spawn_psql(
        &db.name,
        "DO $$ BEGIN FOR i IN 1..1000000 LOOP \
               INSERT INTO a VALUES (i, 'w'); INSERT INTO b VALUES (i); \
               DELETE FROM a WHERE a.n = -i; UPDATE c SET v = i WHERE id = 1; COMMIT; \
             END LOOP; END $$",
    );
    let written = || scalar(&db, "SELECT coalesce(max(n), 0) FROM b");
    let deadline = Instant::now() + Duration::from_secs(30);
    while written() < 100 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let run = db.copy(&["a", "b", "c", "--mode", "sync", "--jobs", "3"]);
    let _ = writer.kill();
    let _ = writer.wait();
    run.assert_ok();
    let target = |sql: &str| -> i64 { db.target_sql(sql).trim().parse().expect("a number") };
    let k = target("SELECT v FROM c");
    assert!(k >= 100, "the sync saw the writes: {k}");
    assert_eq!(target("SELECT count(*) FROM b"), k);
    assert_eq!(target("SELECT coalesce(max(n), 0) FROM b"), k);
    assert_eq!(target("SELECT count(*) FROM a WHERE n > 0"), k);
    assert_eq!(target("SELECT count(*) FROM a WHERE n < 0"), 100_000 - k);
    assert_eq!(
        target("SELECT coalesce(max(n), 0) FROM a WHERE n < 0"),
        -k - 1
    );
}

#[test]
fn since_moves_only_new_rows_and_never_misses_one_committed_late() {
    let db = TestDb::new("sync_since");
    db.source_sql(
        "CREATE TABLE ev (id bigserial PRIMARY KEY, v text,
           updated_at timestamptz NOT NULL DEFAULT clock_timestamp());
         INSERT INTO ev (v, updated_at)
           SELECT 'v' || g, '2020-01-01'::timestamptz + g * interval '1.000001 second'
           FROM generate_series(1, 20000) g;
         CREATE TABLE plain (id int PRIMARY KEY, v text);
         INSERT INTO plain SELECT g, 'p' FROM generate_series(1, 100) g;",
    );
    db.copy(&["ev", "plain"]).assert_ok();
    let sync = || db.copy(&["ev", "plain", "--mode", "sync", "--since", "updated_at"]);
    // The first sync compares every row and records where it ended.
    let first = sync();
    first.assert_ok();
    assert!(
        first.stdout.contains("public.plain: 100 rows compared"),
        "{}",
        first.stdout
    );
    assert!(
        first.stderr.contains("no column \"updated_at\""),
        "a table without the column is named: {}",
        first.stderr
    );

    // A transaction starts and changes a row (its updated_at is its own clock's), and
    // stays open while others commit later rows and the next sync runs.
    let mut late = servers().source.spawn_psql(
        &db.name,
        "BEGIN; UPDATE ev SET v = 'late', updated_at = clock_timestamp() WHERE id = 5; \
             SELECT pg_sleep(6); COMMIT;",
    );
    std::thread::sleep(Duration::from_millis(1500));
    db.source_sql(
        "UPDATE ev SET v = 'early', updated_at = clock_timestamp() WHERE id = 10;
         DELETE FROM ev WHERE id = 20;
         INSERT INTO ev (v) VALUES ('inserted');",
    );
    let second = sync();
    second.assert_ok();
    assert_eq!(
        db.target_sql("SELECT v FROM ev WHERE id = 10").trim(),
        "early"
    );
    assert_eq!(
        db.target_sql("SELECT count(*) FROM ev WHERE id = 20")
            .trim(),
        "0"
    );
    // Only the rows written since moved, not the table.
    let moved: serde_json::Value = serde_json::from_str(
        &db.copy(&[
            "ev",
            "--mode",
            "sync",
            "--since",
            "updated_at",
            "--json",
            "--dry-run",
        ])
        .stdout,
    )
    .expect("JSON");
    assert_eq!(moved["sync"][0]["stats"]["deleted"], 0, "{moved}");
    let status = late.wait().expect("the late writer ends");
    assert!(status.success());
    assert_eq!(db.target_sql("SELECT v FROM ev WHERE id = 5").trim(), "v5");
    // Its row's updated_at is older than the watermark the second sync recorded: the
    // third still moves it, because the second's snapshot could not see its writer.
    let third = sync();
    third.assert_ok();
    db.assert_same("ev");
    assert_eq!(
        db.target_sql("SELECT v FROM ev WHERE id = 5").trim(),
        "late"
    );
    let json = db.copy(&["ev", "--mode", "sync", "--since", "updated_at", "--json"]);
    json.assert_ok();
    let doc: serde_json::Value = serde_json::from_str(&json.stdout).expect("JSON");
    assert_eq!(doc["tables"][0]["rows"], 0, "nothing new: {doc}");
    // The watermark is kept on the target between runs.
    assert_eq!(
        db.target_sql("SELECT count(*) FROM pgbarge.watermark")
            .trim(),
        "1"
    );
}

#[test]
fn a_connection_reset_during_a_sync_is_retried_and_ends_equal() {
    let db = TestDb::new("sync_reset");
    db.source_sql(
        "CREATE TABLE t (id int PRIMARY KEY, v text);
         INSERT INTO t SELECT g, repeat(md5(g::text), 3) FROM generate_series(1, 60000) g;",
    );
    db.copy(&["t"]).assert_ok();
    db.source_sql("UPDATE t SET v = v || 'x' WHERE id % 3 = 0; DELETE FROM t WHERE id % 11 = 0;");
    let proxy = FaultProxy::start(servers().target.port);
    proxy.arm(Fault::Reset, 600 << 10);
    let run = db.copy_to(&db.target_conn_via(proxy.port), &["t", "--mode", "sync"]);
    run.assert_ok();
    assert_eq!(proxy.fired(), 1, "the reset happened");
    assert!(run.stdout.contains("Retried 1 time"), "{}", run.stdout);
    db.assert_same("t");
}

#[test]
fn a_table_where_most_rows_changed_is_merged_whole() {
    let db = TestDb::new("sync_reload");
    db.source_sql(
        "CREATE TABLE wide (id int PRIMARY KEY, v int);
         INSERT INTO wide SELECT g, g FROM generate_series(1, 600000) g;
         CREATE TABLE bag (v int);
         INSERT INTO bag SELECT g % 1000 FROM generate_series(1, 600000) g;
         ANALYZE;",
    );
    db.copy(&["wide", "bag"]).assert_ok();
    db.source_sql(
        "UPDATE wide SET v = -v; DELETE FROM wide WHERE id % 1000 = 0;
         INSERT INTO wide VALUES (-1, 0);
         UPDATE bag SET v = v + 1;",
    );
    db.target_sql_as_app("INSERT INTO wide VALUES (-2, 0);");
    let run = db.copy(&["wide", "bag", "--mode", "sync"]);
    run.assert_ok();
    assert!(
        run.stdout.contains("every source row was merged"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("--mode truncate is faster"),
        "{}",
        run.stdout
    );
    db.assert_same("wide");
    db.assert_same("bag");
}
