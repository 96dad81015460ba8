//! Data arrives unchanged: awkward values of every kind, odd names, empty and large
//! tables, each compared as sorted COPY text on both sides.

mod support;

use support::TestDb;

const AWKWARD: &str = r#"
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy, "very"');
CREATE DOMAIN positive AS numeric CHECK (VALUE > 0);
CREATE TYPE pair AS (label text, m mood, n int4[]);
CREATE TABLE awkward (
    id int PRIMARY KEY,
    t text, vc varchar(50), b bytea, j json, jb jsonb,
    n numeric, f8 float8, f4 float4,
    ts timestamp, tstz timestamptz, d date, iv interval,
    arr int4[], arr2 text[][], m mood, ms mood[], dom positive, p pair, ps pair[],
    u uuid, bo bool, c char(3)
);
INSERT INTO awkward VALUES
 (1, 'comma, separated', 'a,b', '\x00ff00', '{"b": 1,  "a": [1, 2]}', '{"b": 1, "a": [1, 2]}',
  'NaN', '-0', 'NaN', 'infinity', '-infinity', '0044-03-15 BC', '1 year 2 mons -3 days 04:05:06.789',
  '{1,NULL,3}', '{{a,b},{NULL,"d e"}}', 'sad', '{sad,ok}', 1.5, '(x,ok,"{1,2}")', ARRAY['(y,sad,)'::pair, NULL],
  '00000000-0000-0000-0000-000000000000', true, 'ab'),
 (2, E'quote " and \'single\' and tab\tand CR\rLF\nend', '', '\x', '{}', '[]',
  repeat('9', 1000)::numeric, 'Infinity', '-Infinity', '-infinity', 'infinity', '-infinity', '-178000000 years',
  '{}', '{}', 'happy, "very"', '{}', 99999999999999999999.123456789, NULL, '{}',
  'ffffffff-ffff-ffff-ffff-ffffffffffff', false, ''),
 (3, E'backslash \\ and literal \\N and \\t', NULL, NULL, 'null', 'null',
  '-0.000000000000000000000000000001', 4.9e-324, 1.4e-45, '2000-02-29 23:59:59.999999', '1970-01-01 00:00:00+00', 'infinity', '0',
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (4, '\N', 'ünïcödé 🚢 𝄞', '\x5c4e', '"\u00e9"', '{"emoji": "🚢", "nested": {"z": null, "a": 1e400}}',
  '1e-1000', 2.2250738585072014e-308, -3.4e38, '1999-12-31 23:59:59', '2038-01-19 03:14:07+00', '2000-01-01', '-1 days',
  '{-2147483648,2147483647}', '{{"\\","\""},{",","{}"}}', 'ok', '{happy\,\ \"very\",NULL}', 0.0001, '("",sad,{})', '{}',
  NULL, NULL, 'x'),
 (5, '', NULL, '\x0000', '[1,   2]', '{"a": "\\N"}', '0', '1.7976931348623157e308', 'Infinity',
  '294276-12-31 23:59:59.999999', '4713-01-01 00:00:00+00 BC', '5874897-12-31', '178000000 years',
  '{0}', '{{NULL}}', NULL, '{NULL}', 42, '(,,)', '{NULL}', NULL, NULL, NULL);
CREATE TABLE "MixedCase" ("Id" int PRIMARY KEY, "Value Text" text, "select" int);
INSERT INTO "MixedCase" VALUES (1, 'x', 1), (2, NULL, NULL);
CREATE SCHEMA "Sales Dept";
CREATE TABLE "Sales Dept"."order lines" (id bigint PRIMARY KEY, note text NOT NULL DEFAULT 'none', qty int DEFAULT 1);
INSERT INTO "Sales Dept"."order lines" SELECT g, 'line ' || g, g % 7 FROM generate_series(1, 1000) g;
CREATE TABLE empty_one (id int PRIMARY KEY, x text);
CREATE TABLE big (id bigint PRIMARY KEY, n int, t text, ts timestamptz, f float8);
INSERT INTO big SELECT g, g % 1000, md5(g::text) || E'\t,"\n' || g, '2020-01-01'::timestamptz + g * interval '1 second', g / 7.0
  FROM generate_series(1, 200000) g;
ANALYZE;
"#;

#[test]
fn awkward_values_arrive_identical() {
    let db = TestDb::new("awkward");
    db.source_sql(AWKWARD);
    let run = db.copy(&[
        "awkward",
        "MixedCase",
        r#""Sales Dept"."order lines""#,
        "empty_one",
        "big",
        "--yes",
    ]);
    run.assert_ok();

    assert_eq!(db.assert_same("public.awkward"), 5);
    assert_eq!(db.assert_same(r#"public."MixedCase""#), 2);
    assert_eq!(db.assert_same(r#""Sales Dept"."order lines""#), 1000);
    assert_eq!(db.assert_same("public.empty_one"), 0);
    assert_eq!(db.assert_same("public.big"), 200_000);

    // The report says how much moved, and the empty table is reported, not an error.
    assert!(
        run.stdout.contains("5 tables, 201,007 rows moved"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("public.empty_one"), "{}", run.stdout);

    // Types, NOT NULL, defaults and keys came with the created tables.
    let cols = db.target_sql(
        "SELECT string_agg(format('%s %s %s %s', attname, format_type(atttypid, atttypmod), attnotnull, \
         pg_get_expr(adbin, adrelid)), '; ' ORDER BY attnum) FROM pg_attribute \
         LEFT JOIN pg_attrdef ON adrelid = attrelid AND adnum = attnum \
         WHERE attrelid = '\"Sales Dept\".\"order lines\"'::regclass AND attnum > 0",
    );
    assert_eq!(
        cols.trim(),
        "id bigint t ; note text t 'none'::text; qty integer f 1"
    );
    let pk = db.target_sql(
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'public.awkward'::regclass AND contype = 'p'",
    );
    assert_eq!(pk.trim(), "PRIMARY KEY (id)");
    // Created tables belong to the login role, which is not a superuser.
    let owner = db.target_sql("SELECT tableowner FROM pg_tables WHERE tablename = 'awkward'");
    assert_eq!(owner.trim(), "app");
}

#[test]
fn json_report_and_conversion_through_text() {
    let db = TestDb::new("convert");
    db.source_sql(
        "CREATE TABLE t (id int4 PRIMARY KEY, name varchar(20), amount numeric(12,2), tags int4[]);
         INSERT INTO t VALUES (1, 'a, \"b\"', 12.5, '{1,NULL}'), (2, NULL, NULL, NULL), (2147483647, E'x\\ny', -0.01, '{}');",
    );
    // The target has wider types: the data must travel as text and arrive unchanged.
    db.target_sql_as_app(
        "CREATE TABLE t (id int8 PRIMARY KEY, name text, amount numeric(14,2), tags int8[], extra text DEFAULT 'd');",
    );
    let run = db.copy(&["t", "--json", "--quiet"]);
    run.assert_ok();
    let report: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON report");
    assert_eq!(report["tables"][0]["rows"], 3);
    assert_eq!(report["tables"][0]["format"], "text");
    assert_eq!(report["tables"][0]["action"], "load");
    assert_eq!(
        db.target_sql("SELECT string_agg(format('%s|%s|%s|%s|%s', id, name, amount, tags, extra), ';' ORDER BY id) FROM t").trim(),
        "1|a, \"b\"|12.50|{1,NULL}|d;2||||d;2147483647|x\ny|-0.01|{}|d"
    );
}

#[test]
fn modes_append_and_truncate() {
    let db = TestDb::new("modes");
    db.source_sql("CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, 'src' FROM generate_series(1, 10) g;");
    db.target_sql_as_app(
        "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (100, 'old');",
    );

    db.copy(&["t", "--mode", "append"]).assert_ok();
    assert_eq!(
        db.target_sql("SELECT count(*), min(id), max(id) FROM t")
            .trim(),
        "11|1|100"
    );

    db.copy(&["t", "--mode", "truncate"]).assert_ok();
    assert_eq!(
        db.target_sql("SELECT count(*), min(id), max(id) FROM t")
            .trim(),
        "10|1|10"
    );
    db.assert_same("t");
}

#[test]
fn dry_run_plans_without_writing() {
    let db = TestDb::new("dryrun");
    db.source_sql(
        "CREATE TABLE a (id int PRIMARY KEY); CREATE TABLE b (id int); INSERT INTO a VALUES (1);",
    );
    let run = db.copy(&["public.*", "--dry-run", "--verbose"]);
    run.assert_ok();
    assert!(
        run.stdout.contains("CREATE TABLE \"public\".\"a\""),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("nothing was written"), "{}", run.stdout);
    assert!(!db.target_has_table("public", "a"));
    let json = db.copy(&["a", "--dry-run", "--json"]);
    json.assert_ok();
    let plan: serde_json::Value = serde_json::from_str(&json.stdout).expect("JSON plan");
    assert_eq!(plan["tables"][0]["action"], "create");
    assert_eq!(plan["tables"][0]["format"], "binary");
}

#[test]
fn serial_and_identity_columns_keep_numbering() {
    let db = TestDb::new("sequences");
    db.source_sql(
        "CREATE TABLE s (id bigserial PRIMARY KEY, v text);
         CREATE TABLE i (id int GENERATED ALWAYS AS IDENTITY (START WITH 100) PRIMARY KEY, v text);
         INSERT INTO s (v) SELECT 'x' FROM generate_series(1, 10);
         DELETE FROM s WHERE id > 7;
         INSERT INTO i (v) VALUES ('a'), ('b');",
    );
    db.copy(&["s", "i"]).assert_ok();
    db.assert_same("s");
    db.assert_same("i");
    // New rows on the target continue where the source's sequences are, as the app expects.
    assert_eq!(
        db.target_sql_as_app("INSERT INTO s (v) VALUES ('new') RETURNING id")
            .trim(),
        "11"
    );
    assert_eq!(
        db.target_sql_as_app("INSERT INTO i (v) VALUES ('new') RETURNING id")
            .trim(),
        "102"
    );
    // The sequence belongs to the column on the target too (dropped with it, shown by \d).
    assert_eq!(
        db.target_sql("SELECT pg_get_serial_sequence('s', 'id')")
            .trim(),
        "public.s_id_seq"
    );

    // Appending to a table whose own sequence is behind lifts it past the copied ids.
    let db = TestDb::new("sequences_append");
    db.source_sql("CREATE TABLE t (id serial PRIMARY KEY, v text); INSERT INTO t (v) SELECT 'src' FROM generate_series(1, 50);");
    db.target_sql_as_app("CREATE TABLE t (id serial PRIMARY KEY, v text); INSERT INTO t (id, v) VALUES (500, 'old');");
    db.copy(&["t", "--mode", "append"]).assert_ok();
    assert_eq!(
        db.target_sql_as_app("INSERT INTO t (v) VALUES ('new') RETURNING id")
            .trim(),
        "501"
    );
}

#[test]
fn all_tables_with_exclusions() {
    let db = TestDb::new("all");
    db.source_sql(
        "CREATE SCHEMA a; CREATE SCHEMA b;
         CREATE TABLE a.t1 (id int PRIMARY KEY); INSERT INTO a.t1 VALUES (1);
         CREATE TABLE a.t2 (id int PRIMARY KEY); INSERT INTO a.t2 VALUES (2);
         CREATE TABLE b.t3 (id int PRIMARY KEY); INSERT INTO b.t3 VALUES (3);
         CREATE TABLE a.log (at date, v text) PARTITION BY RANGE (at);
         CREATE TABLE a.log_2024 PARTITION OF a.log FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
         CREATE TABLE a.log_2025 PARTITION OF a.log FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
         INSERT INTO a.log VALUES ('2024-05-01', 'x'), ('2025-05-01', 'y');",
    );
    let run = db.copy(&["--all", "--exclude", "b.*", "--exclude", "a.t2"]);
    run.assert_ok();
    // The partitioned table carries its partitions' rows; partitions are not copied again.
    assert!(
        run.stdout.contains("2 tables, 3 rows moved"),
        "{}",
        run.stdout
    );
    db.assert_same("a.t1");
    db.assert_same("a.log");
    for (schema, name) in [("a", "t2"), ("b", "t3")] {
        assert!(
            !db.target_has_table(schema, name),
            "{schema}.{name} was excluded"
        );
    }
    // The partitions are recreated as partitions, each holding its own rows.
    assert_eq!(
        db.target_sql("SELECT count(*) FROM ONLY a.log_2024; SELECT relispartition FROM pg_class WHERE oid = 'a.log_2025'::regclass")
            .trim(),
        "1\nt"
    );
    // --all and table names do not mix.
    assert_eq!(db.copy(&["--all", "a.t1"]).code, 2);
}

#[test]
fn schema_only_and_data_only() {
    let db = TestDb::new("content");
    db.source_sql(
        "CREATE TYPE colour AS ENUM ('red', 'blue');
         CREATE TABLE items (id serial PRIMARY KEY, c colour NOT NULL DEFAULT 'red', note text);
         INSERT INTO items (c, note) VALUES ('blue', 'x'), ('red', 'y');
         CREATE TABLE kept (id int PRIMARY KEY); INSERT INTO kept VALUES (1);",
    );
    db.target_sql_as_app(
        "CREATE TABLE kept (id int PRIMARY KEY, extra text); INSERT INTO kept VALUES (9, 'mine');",
    );

    // Definitions only: the missing table (with its type, sequence and key) appears empty;
    // the existing one is left exactly as it was.
    let run = db.copy(&["items", "kept", "--schema-only"]);
    run.assert_ok();
    assert!(run.stdout.contains("create (no rows)"), "{}", run.stdout);
    assert_eq!(db.target_sql("SELECT count(*) FROM items").trim(), "0");
    assert_eq!(
        db.target_sql("SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'items'::regclass AND contype = 'p'").trim(),
        "PRIMARY KEY (id)"
    );
    assert_eq!(
        db.target_sql("SELECT string_agg(id || extra, ',') FROM kept")
            .trim(),
        "9mine"
    );

    // Rows only: into the tables that now exist; a table missing on the target is refused.
    db.source_sql("CREATE TABLE not_there (id int);");
    let run = db.copy(&["items", "not_there", "--data-only"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(run.stderr.contains("public.not_there: does not exist on the target, and --data-only does not create tables"), "{}", run.stderr);
    db.copy(&["items", "--data-only", "--verify"]).assert_ok();
    db.assert_same("items");
}

#[test]
fn modes_replace_and_upsert() {
    let db = TestDb::new("modes2");
    db.source_sql(
        "CREATE TABLE t (id int PRIMARY KEY, v text, n int);
         INSERT INTO t SELECT g, 'v' || g, g FROM generate_series(1, 100) g;",
    );
    // Target: rows 1-50 as on the source, 51-60 changed, 500 only on the target.
    db.target_sql_as_app(
        "CREATE TABLE t (id int PRIMARY KEY, v text, n int, extra text DEFAULT 'mine');
         INSERT INTO t (id, v, n) SELECT g, 'v' || g, g FROM generate_series(1, 50) g;
         INSERT INTO t (id, v, n) SELECT g, 'old', -g FROM generate_series(51, 60) g;
         INSERT INTO t (id, v, n) VALUES (500, 'target only', 0);",
    );
    let before = db.target_sql("SELECT xmin FROM t WHERE id = 10");

    db.copy(&["t", "--mode", "upsert"]).assert_ok();
    // New rows inserted, changed ones updated, the target-only row kept, unchanged rows
    // not rewritten at all.
    assert_eq!(
        db.target_sql("SELECT count(*), sum(n) FROM t").trim(),
        "101|5050"
    );
    assert_eq!(db.target_sql("SELECT v FROM t WHERE id = 55").trim(), "v55");
    assert_eq!(
        db.target_sql("SELECT v, extra FROM t WHERE id = 500")
            .trim(),
        "target only|mine"
    );
    assert_eq!(db.target_sql("SELECT xmin FROM t WHERE id = 10"), before);

    // Values compare as they travel: a json column (no equality operator) is no
    // obstacle, and 1.00 is not 1.0.
    db.source_sql(
        "CREATE TABLE doc (id int PRIMARY KEY, j json, n numeric);
         INSERT INTO doc VALUES (1, '{\"a\": 1}', 1.00), (2, '[1]', 2);",
    );
    db.target_sql_as_app(
        "CREATE TABLE doc (id int PRIMARY KEY, j json, n numeric);
         INSERT INTO doc VALUES (1, '{\"a\": 1}', 1.0), (2, '[]', 2);",
    );
    db.copy(&["doc", "--mode", "upsert"]).assert_ok();
    db.assert_same("doc");

    // Replace: the target's table goes, the source's definition and rows come.
    db.copy(&["t", "--mode", "replace"]).assert_ok();
    db.assert_same("t");
    assert_eq!(
        db.target_sql("SELECT count(*) FROM pg_attribute WHERE attrelid = 't'::regclass AND attname = 'extra'").trim(),
        "0"
    );

    // Upsert needs a key to match rows by.
    db.target_sql_as_app("CREATE TABLE nokey (id int, v text); INSERT INTO nokey VALUES (1, 'x');");
    db.source_sql("CREATE TABLE nokey (id int, v text);");
    let run = db.copy(&["nokey", "--mode", "upsert"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr.contains("this target table has none"),
        "{}",
        run.stderr
    );
}

#[test]
fn saved_plan_replays_and_refuses_a_dropped_table() {
    let db = TestDb::new("saved_plan");
    db.source_sql(
        "CREATE SCHEMA s; CREATE TABLE s.a (id int PRIMARY KEY); INSERT INTO s.a VALUES (1), (2);
         CREATE TABLE s.\"B b\" (id int PRIMARY KEY); INSERT INTO s.\"B b\" VALUES (3);",
    );
    db.target_sql_as_app(
        "CREATE SCHEMA s; CREATE TABLE s.a (id int PRIMARY KEY); INSERT INTO s.a VALUES (9);",
    );
    let file = std::env::temp_dir().join(format!("pgbarge-plan-{}.toml", std::process::id()));
    let path = file.to_str().expect("utf-8 path");

    let run = db.copy(&[
        "s.*",
        "--mode",
        "truncate",
        "--jobs",
        "2",
        "--save-plan",
        path,
    ]);
    run.assert_ok();
    let text = std::fs::read_to_string(&file).expect("plan saved");
    assert!(
        text.contains("mode = \"truncate\"") && text.contains("name = \"B b\""),
        "{text}"
    );
    assert!(
        !text.contains("app-secret"),
        "no password in a plan: {text}"
    );

    // Replay against a target changed since: the same choices, the same result.
    db.target_sql_as_app("INSERT INTO s.a VALUES (10); DROP TABLE s.\"B b\";");
    db.copy(&["--plan", path]).assert_ok();
    db.assert_same("s.a");
    db.assert_same("s.\"B b\"");

    // A plan saved by a first copy (tables created: no mode recorded) replays once the
    // target holds rows, with --mode given at replay, and records the mode when saved.
    let first =
        std::env::temp_dir().join(format!("pgbarge-plan-first-{}.toml", std::process::id()));
    let first_path = first.to_str().expect("utf-8 path");
    let fresh = TestDb::new("saved_plan_first");
    fresh.source_sql("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1);");
    fresh.copy(&["t", "--save-plan", first_path]).assert_ok();
    fresh.source_sql("INSERT INTO t VALUES (2);");
    let refused = fresh.copy(&["--plan", first_path]);
    assert_eq!(refused.code, 3, "holds rows, no mode: {}", refused.stderr);
    fresh
        .copy(&[
            "--plan",
            first_path,
            "--mode",
            "truncate",
            "--yes",
            "--save-plan",
            first_path,
        ])
        .assert_ok();
    fresh.assert_same("t");
    let text = std::fs::read_to_string(&first).expect("plan saved again");
    assert!(text.contains("mode = \"truncate\""), "{text}");
    fresh.source_sql("INSERT INTO t VALUES (3);");
    fresh.copy(&["--plan", first_path]).assert_ok();
    fresh.assert_same("t");
    let _ = std::fs::remove_file(&first);

    // A table dropped on the source since: refused before anything is written.
    db.source_sql("DROP TABLE s.\"B b\"; INSERT INTO s.a VALUES (4);");
    let run = db.copy(&["--plan", path]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("no table on the source matches \"\"s\".\"B b\"\""),
        "{}",
        run.stderr
    );
    assert_eq!(db.target_sql("SELECT count(*) FROM s.a").trim(), "2");
    // A plan and table names do not mix.
    assert_eq!(db.copy(&["--plan", path, "s.a"]).code, 2);
    let _ = std::fs::remove_file(&file);
}

#[test]
fn progress_names_the_phases_that_move_no_bytes() {
    let db = TestDb::new("phases");
    db.source_sql(
        "CREATE TABLE t (id int PRIMARY KEY, v text); CREATE INDEX ON t (v);
         CREATE TABLE c (id int PRIMARY KEY, t_id int REFERENCES t);
         INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 1000) g;
         INSERT INTO c VALUES (1, 1);",
    );
    // Without a terminal, progress is plain lines on stderr.
    let run = db.copy(&["t", "c"]);
    run.assert_ok();
    for line in [
        "copying public.t …",
        "public.t: keys and indexes …",
        "now     foreign keys, views, triggers, sequence values …",
        "done    public.t: 1,000 rows",
    ] {
        assert!(run.stderr.contains(line), "{line}\n{}", run.stderr);
    }
    let keys = run.stderr.find("public.t: keys and indexes").unwrap_or(0);
    let done = run.stderr.find("done    public.t").unwrap_or(0);
    assert!(
        keys < done,
        "the phase comes before the done line:\n{}",
        run.stderr
    );
}

#[test]
fn tables_never_analysed_show_their_row_count_not_a_question_mark() {
    let db = TestDb::new("unanalysed");
    db.source_sql(
        "CREATE TABLE fresh (id int PRIMARY KEY); INSERT INTO fresh SELECT generate_series(1, 1234);",
    );
    let run = support::pgbarge(&["tables", "--source", &db.source_conn(), "--json"]);
    run.assert_ok();
    let list: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON list");
    let fresh = list["tables"]
        .as_array()
        .expect("a list")
        .iter()
        .find(|t| t["name"] == "fresh")
        .expect("the table is listed");
    assert_eq!(fresh["estimated_rows"], 1234, "{fresh}");
    let text = support::pgbarge(&["tables", "--source", &db.source_conn()]);
    assert!(text.stdout.contains("~1,234"), "{}", text.stdout);
}

/// A refresh by truncate sets the emptied table's indexes aside and builds them after the
/// rows are in (faster than maintaining them row by row), then puts everything back as it
/// was: constraint names, options, partial and expression indexes, clustering, replica
/// identity, comments. A primary key another table's foreign key needs stays.
#[test]
fn a_refresh_sets_indexes_aside_and_builds_them_again_as_they_were() {
    let db = TestDb::new("rebuild");
    db.source_sql(
        "CREATE TABLE parent (id int PRIMARY KEY, code text NOT NULL, note text);
         CREATE TABLE child (id int PRIMARY KEY, parent_id int REFERENCES parent);
         INSERT INTO parent SELECT g, 'c' || g, CASE WHEN g % 3 = 0 THEN 'n' END
             FROM generate_series(1, 1000) g;
         INSERT INTO child SELECT g, g FROM generate_series(1, 100) g;",
    );
    db.copy(&["--all", "--yes"]).assert_ok();
    db.target_sql_as_app(
        "ALTER TABLE parent ADD CONSTRAINT parent_code_key UNIQUE (code);
         CREATE INDEX parent_lower ON parent (lower(code)) WHERE note IS NOT NULL;
         CREATE INDEX parent_note ON parent (note) WITH (fillfactor = 70);
         COMMENT ON INDEX parent_note IS 'notes';
         COMMENT ON CONSTRAINT parent_code_key ON parent IS 'codes';
         ALTER TABLE parent CLUSTER ON parent_note;
         ALTER TABLE parent REPLICA IDENTITY USING INDEX parent_code_key;",
    );
    let before = support::normalised_dump(&support::servers().target.dump_schema(&db.name));
    db.source_sql(
        "UPDATE parent SET note = 'changed' WHERE id < 10; DELETE FROM child WHERE id > 90;",
    );

    let dry = db.copy(&["--all", "--mode", "truncate", "--dry-run"]);
    dry.assert_ok();
    assert!(
        dry.stdout.contains("public.parent: 3 indexes set aside for the load")
            && dry.stdout.contains("public.parent: 1 index is maintained row by row during the load: foreign keys depend on them")
            && dry.stdout.contains("public.child: 1 index set aside"),
        "{}",
        dry.stdout
    );
    db.copy(&["--all", "--mode", "truncate", "--yes", "--verify"])
        .assert_ok();
    db.assert_same("public.parent");
    db.assert_same("public.child");
    let after = support::normalised_dump(&support::servers().target.dump_schema(&db.name));
    assert_eq!(before, after, "the indexes are back as they were");
    assert_eq!(
        db.target_sql(
            "SELECT count(*) FROM pg_index WHERE indrelid IN ('parent'::regclass, 'child'::regclass) \
             AND indisvalid"
        )
        .trim(),
        "5"
    );
}

/// A column whose type has no binary send/receive functions (aclitem, even inside an
/// array or a domain) makes its table travel as text COPY, decided from the catalog,
/// instead of failing mid-copy; the other tables stay binary.
#[test]
fn a_type_without_binary_io_travels_as_text() {
    let db = TestDb::new("no_binary");
    db.source_sql(
        "CREATE DOMAIN acls AS aclitem[];
         CREATE TABLE perms (id int PRIMARY KEY, a aclitem, l acls);
         INSERT INTO perms VALUES (1, 'postgres=arwd/postgres', '{postgres=r/postgres}'),
                                  (2, NULL, '{}');
         CREATE TABLE plain (id int PRIMARY KEY);
         INSERT INTO plain VALUES (1);",
    );
    let run = db.copy(&["perms", "plain", "--json"]);
    run.assert_ok();
    let report: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON report");
    let format = |name: &str| {
        report["tables"]
            .as_array()
            .and_then(|t| t.iter().find(|t| t["name"] == name))
            .map(|t| t["format"].clone())
    };
    assert_eq!(format("perms"), Some("text".into()), "{report}");
    assert_eq!(format("plain"), Some("binary".into()), "{report}");
    db.assert_same("perms");
    let dry = db.copy(&["perms", "--mode", "truncate", "--dry-run"]);
    assert!(
        dry.stdout
            .contains("copied as text: the type of a and l have no binary send/receive"),
        "{}",
        dry.stdout
    );
}

/// Runs `pgbarge copy ARGS` for `db` and returns its peak resident memory in bytes
/// (`VmHWM`, read from /proc while it runs: the peak only grows).
fn peak_memory_of_copy(db: &TestDb, args: &[&str]) -> u64 {
    let mut child = db.spawn_copy(&db.target_conn(), args);
    let pid = child.id();
    let mut peak = 0;
    loop {
        if let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
            let hwm = status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok());
            if let Some(kb) = hwm {
                peak = peak.max(kb * 1024);
            }
        }
        if let Ok(Some(status)) = child.try_wait() {
            assert!(status.success(), "pgbarge copy {args:?} failed");
            return peak;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

#[test]
fn a_huge_value_streams_in_pieces_never_held_whole() {
    let db = TestDb::new("huge_value");
    const ROW: u64 = 100 << 20;
    db.source_sql(&format!(
        "CREATE TABLE tiny (id int PRIMARY KEY); INSERT INTO tiny VALUES (1);
         CREATE TABLE huge (id int PRIMARY KEY, v text, b bytea);
         ALTER TABLE huge ALTER v SET STORAGE EXTERNAL, ALTER b SET STORAGE EXTERNAL;
         INSERT INTO huge SELECT 1, repeat(md5('v'), {n}), NULL;
         INSERT INTO huge SELECT 2, NULL, convert_to(repeat(md5('b'), {n}), 'UTF8');",
        n = ROW / 32
    ));
    let idle = peak_memory_of_copy(&db, &["tiny", "--yes", "--quiet"]);
    let huge = peak_memory_of_copy(&db, &["huge", "--yes", "--quiet"]);
    // A row used to be read whole, then copied twice more: 3.5 times its size. Now a
    // connection holds a piece of it at a time.
    assert!(
        huge < idle + ROW,
        "a {} MB value took {} MB (a one-row copy: {} MB)",
        ROW >> 20,
        huge >> 20,
        idle >> 20
    );
    db.assert_same("public.huge");
}

/// The library's example program (`crates/pgbarge/examples/copy_tables.rs`), built as
/// `cargo test --workspace` builds every example; built here when a single test file
/// runs.
fn example_program() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    let debug = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("tests run from target/<profile>/deps");
    let program = debug.join("examples/copy_tables");
    if !program.is_file() {
        let built = std::process::Command::new(env!("CARGO"))
            .args(["build", "-p", "pgbarge", "--example", "copy_tables"])
            .status()
            .expect("run cargo");
        assert!(built.success(), "cargo build --example copy_tables failed");
    }
    program
}

#[test]
fn a_program_copies_two_tables_through_the_library() {
    let db = TestDb::new("library_example");
    db.source_sql(
        "CREATE TABLE customers (id int PRIMARY KEY, name text);
         CREATE TABLE orders (id int PRIMARY KEY, customer int REFERENCES customers, total numeric);
         INSERT INTO customers SELECT g, 'c' || g FROM generate_series(1, 50) g;
         INSERT INTO orders SELECT g, g % 50 + 1, g * 1.5 FROM generate_series(1, 1000) g;",
    );
    let out = support::clean_command(example_program().to_str().expect("a UTF-8 path"))
        .args([
            &db.source_conn(),
            &db.target_conn(),
            "public.customers",
            "public.orders",
        ])
        .output()
        .expect("run the example");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the example failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("public.orders: 1000 rows"), "{stdout}");
    assert!(stdout.contains("verified: equal"), "{stdout}");
    assert_eq!(db.assert_same("customers"), 50);
    assert_eq!(db.assert_same("orders"), 1000);
}
