//! `pgbarge verify` and `copy --verify`: checksums computed on the servers tell equal
//! tables from different ones, and name the keys that differ.

mod support;

use support::{pgbarge, TestDb};

const EXIT_VERIFY: i32 = 6;

fn verify(db: &TestDb, args: &[&str]) -> support::Run {
    let mut full = vec![
        "verify".to_string(),
        "--source".into(),
        db.source_conn(),
        "--target".into(),
        db.target_conn(),
    ];
    full.extend(args.iter().map(|s| s.to_string()));
    pgbarge(&full)
}

#[test]
fn copy_then_verify_then_one_changed_value_is_found() {
    let db = TestDb::new("verify");
    db.source_sql(
        "CREATE TABLE big (id bigint PRIMARY KEY, n int, t text, f float8, j jsonb);
         INSERT INTO big SELECT g, g % 97, md5(g::text), g / 3.0, jsonb_build_object('g', g)
           FROM generate_series(1, 300000) g;
         CREATE TABLE nokey (v text); INSERT INTO nokey VALUES ('a'), ('b'), (NULL);",
    );
    let run = db.copy(&["big", "nokey", "--verify", "--quiet"]);
    run.assert_ok();
    assert!(
        run.stdout.contains("verified 2 tables: 2 equal, 0 not"),
        "{}",
        run.stdout
    );

    // Row order does not matter: rewrite the target table in another physical order.
    db.target_sql("CLUSTER big USING big_pkey; UPDATE big SET n = n WHERE id % 2 = 0;");
    let run = verify(&db, &["big"]);
    run.assert_ok();

    // One changed value in 300,000 rows, one extra row on a keyless table.
    db.target_sql("UPDATE big SET t = t || 'x' WHERE id = 123456; INSERT INTO nokey VALUES ('c');");
    let run = verify(&db, &["--json"]);
    assert_eq!(run.code, EXIT_VERIFY, "{}\n{}", run.stdout, run.stderr);
    let report: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON");
    let big = report["tables"]
        .as_array()
        .and_then(|t| t.iter().find(|v| v["name"] == "big"))
        .expect("big reported");
    assert_eq!(big["status"], "different");
    assert_eq!(big["source_rows"], 300_000);
    assert_eq!(big["target_rows"], 300_000);
    assert_eq!(big["differing_keys"], serde_json::json!(["(123456)"]));
    let nokey = report["tables"]
        .as_array()
        .and_then(|t| t.iter().find(|v| v["name"] == "nokey"))
        .expect("nokey reported");
    assert_eq!(nokey["status"], "different");
    assert_eq!(nokey["target_rows"], 4);
    assert!(
        run.stderr.contains("verification found differences"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_table_missing_on_the_target_is_reported() {
    let db = TestDb::new("verify_missing");
    db.source_sql(
        "CREATE TABLE only_here (id int PRIMARY KEY); INSERT INTO only_here VALUES (1), (2);",
    );
    let run = verify(&db, &["only_here"]);
    assert_eq!(run.code, EXIT_VERIFY, "{}", run.stderr);
    assert!(run.stdout.contains("MISSING on target"), "{}", run.stdout);
    let run = verify(&db, &["only_hre"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("Did you mean public.only_here?"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_table_the_target_role_cannot_read_whole_is_reported_and_the_rest_compared() {
    let db = TestDb::new("verify_rls");
    db.source_sql(
        "CREATE TABLE open (id int PRIMARY KEY); INSERT INTO open VALUES (1), (2);
         CREATE TABLE guarded (id int PRIMARY KEY); INSERT INTO guarded VALUES (1);
         ALTER TABLE guarded ENABLE ROW LEVEL SECURITY; ALTER TABLE guarded FORCE ROW LEVEL SECURITY;",
    );
    db.copy(&["--all", "--yes"]).assert_ok();
    // FORCE makes the policies (none: no rows) apply to the owner, the target role.
    let run = verify(&db, &[]);
    assert_eq!(run.code, EXIT_VERIFY, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("NOT VERIFIED"), "{}", run.stdout);
    assert!(run.stdout.contains("row-level security"), "{}", run.stdout);
    assert!(run.stdout.contains("1 equal"), "{}", run.stdout);
    // Left out, the rest is all equal.
    let run = verify(&db, &["--exclude", "guarded"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("verified 1 table: 1 equal"),
        "{}",
        run.stdout
    );
}

#[test]
fn large_objects_are_refused_by_copy_and_compared_by_verify() {
    let db = TestDb::new("large_objects");
    db.source_sql(
        "CREATE TABLE docs (id int PRIMARY KEY, body oid);
         INSERT INTO docs VALUES (1, lo_from_bytea(0, 'first')), (2, lo_from_bytea(0, 'second'));
         CREATE TABLE plain (id int PRIMARY KEY); INSERT INTO plain VALUES (1);",
    );
    // Preflight refuses the table whose oid column points at large objects (the copy
    // would keep the numbers and lose the objects); nothing is written.
    let run = db.copy(&["docs", "plain"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("public.docs: column \"body\" may point at large objects"),
        "{}",
        run.stderr
    );
    assert!(!db.target_has_table("public", "plain"));
    // The rows alone (as a user's own script might move them): verify is not fooled by
    // equal numbers when the objects are missing.
    db.target_sql_as_app("CREATE TABLE docs (id int PRIMARY KEY, body oid)");
    let ids = db.source_sql("SELECT string_agg('(' || id || ',' || body || ')', ',') FROM docs");
    db.target_sql_as_app(&format!("INSERT INTO docs VALUES {}", ids.trim()));
    let v = pgbarge(&[
        "verify",
        "--source",
        &db.source_conn(),
        "--target",
        &db.target_conn(),
        "docs",
    ]);
    assert_eq!(v.code, 6, "{}\n{}", v.stdout, v.stderr);
    assert!(
        v.stdout
            .contains("large objects its column body points at are missing"),
        "{}",
        v.stdout
    );
}

/// A LATIN1 source copied into a UTF8 target: each server hashes its own bytes, so
/// verification compares the UTF-8 form of the rows — equal data is equal, and a changed
/// accented value is still found.
#[test]
fn a_latin1_source_verifies_equal_against_a_utf8_target() {
    let db =
        TestDb::with_source_options("latin1", "ENCODING 'LATIN1' LOCALE 'C' TEMPLATE template0");
    db.source_sql(
        // Unicode escapes: psql's client encoding here is not UTF-8.
        r"CREATE TABLE people (id int PRIMARY KEY, name text);
         INSERT INTO people VALUES (1, U&'Zo\00EB'), (2, U&'Jos\00E9 M\00FCller'), (3, 'plain'),
                                   (4, U&'\00F1and\00FA');",
    );
    let run = db.copy(&["people", "--verify"]);
    run.assert_ok();
    assert!(
        run.stdout.contains("verified 1 table: 1 equal, 0 not"),
        "{}",
        run.stdout
    );
    assert_eq!(
        db.target_sql("SELECT name FROM people WHERE id = 2").trim(),
        "José Müller"
    );
    db.target_sql("UPDATE people SET name = 'Zoe' WHERE id = 1");
    let v = verify(&db, &["people"]);
    assert_eq!(v.code, 6, "{}\n{}", v.stdout, v.stderr);
    assert!(v.stdout.contains("(1)"), "{}", v.stdout);
}

/// A SQL_ASCII source holding WIN1252 bytes: the plan warns, a copy without
/// `--source-encoding` fails on the first bad row, naming its key and column, with the
/// advice (the target stays as it was), and with `--source-encoding WIN1252` the target converts the bytes and the copy
/// verifies equal.
#[test]
fn a_sql_ascii_source_copies_with_its_real_encoding() {
    let db = TestDb::with_source_options(
        "sqlascii",
        "ENCODING 'SQL_ASCII' LOCALE 'C' TEMPLATE template0",
    );
    // 0xE9 is é and 0x80 is € in WIN1252; neither is valid UTF-8.
    db.source_sql(
        r"CREATE TABLE notes (id int PRIMARY KEY, body text);
         INSERT INTO notes VALUES (1, E'caf\xe9'), (2, 'plain'), (3, E'\x80 9.99');",
    );
    let dry = db.copy(&["notes", "--dry-run"]);
    dry.assert_ok();
    assert!(
        dry.stdout
            .contains("warning: the source database is SQL_ASCII")
            && dry.stdout.contains("--source-encoding WIN1252"),
        "{}",
        dry.stdout
    );
    let failed = db.copy(&["notes", "--yes", "--retries", "0"]);
    assert_eq!(failed.code, 5, "{}", failed.stderr);
    assert!(
        failed.stderr.contains("public.notes")
            && failed.stderr.contains(
                "The first such row on the source: public.notes key (1), column \"body\"."
            )
            && failed
                .stderr
                .contains("say what they really are with --source-encoding"),
        "{}",
        failed.stderr
    );
    assert!(!db.target_has_table("public", "notes"));

    db.copy(&["notes", "--yes", "--source-encoding", "win1252", "--verify"])
        .assert_ok();
    assert_eq!(
        db.target_sql(
            r"SELECT string_agg(body, '|' ORDER BY id) = U&'caf\00E9|plain|\20AC 9.99' FROM notes"
        )
        .trim(),
        "t"
    );
    let v = verify(&db, &["--source-encoding", "WIN1252"]);
    assert_eq!(v.code, 0, "{}\n{}", v.stdout, v.stderr);
    db.target_sql(r"UPDATE notes SET body = 'cafe' WHERE id = 1");
    let v = verify(&db, &["--source-encoding", "WIN1252"]);
    assert_eq!(v.code, 6, "{}\n{}", v.stdout, v.stderr);
    assert!(v.stdout.contains("(1)"), "{}", v.stdout);
}
