//! `--json` output of every command, checked against the shapes the README documents
//! ("JSON output"): the examples there are read from the README itself, so the two
//! cannot drift apart. Same keys at every level (no internal fields, none missing), same
//! types (`null` is allowed anywhere: unknown or not applicable), pretty-printed, one
//! document, a final newline — for failures too. Every documented field is printed
//! non-null at least once over the test's documents, so a field that is always `null`
//! (or always empty) fails it.

mod support;

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use support::{pgbarge, repo_root, Run, TestDb};

/// The README's example for `name` (the ```json block after `<!-- json: name -->`).
fn documented(name: &str) -> Value {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).expect("README.md");
    let marker = format!("<!-- json: {name} -->");
    let after = readme
        .split_once(&marker)
        .unwrap_or_else(|| panic!("README has no {marker}"))
        .1;
    let block = after
        .split_once("```json\n")
        .and_then(|(_, rest)| rest.split_once("```"))
        .unwrap_or_else(|| panic!("no ```json block after {marker}"))
        .0;
    serde_json::from_str(block).unwrap_or_else(|e| panic!("README's {name} example: {e}"))
}

thread_local! {
    /// Per documented name, the paths of fields seen printed with a value (not `null`,
    /// not an empty list or object).
    static SEEN: RefCell<BTreeMap<String, BTreeSet<String>>> = RefCell::default();
}

/// A value worth counting as printed: not `null`, not an empty list or object.
fn filled(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        _ => true,
    }
}

/// The paths of `example`'s fields: a list's items as `[]`, a `"<kind>"` map's values
/// as `.<kind>`.
fn paths(example: &Value, path: &str, out: &mut BTreeSet<String>) {
    if !path.is_empty() {
        out.insert(path.to_string());
    }
    match example {
        Value::Object(o) => {
            for (k, v) in o {
                paths(v, &format!("{path}.{k}"), out);
            }
        }
        Value::Array(a) => {
            for v in a.iter().take(1) {
                paths(v, &format!("{path}[]"), out);
            }
        }
        _ => {}
    }
}

/// The paths (in `example`'s terms) of `doc`'s fields that hold a value.
fn filled_paths(doc: &Value, example: &Value, path: &str, out: &mut BTreeSet<String>) {
    if !filled(doc) {
        return;
    }
    if !path.is_empty() {
        out.insert(path.to_string());
    }
    match (example, doc) {
        (Value::Object(e), Value::Object(d)) => {
            let any_key = match (e.len(), e.iter().next()) {
                (1, Some((k, v))) if k.starts_with('<') => Some((k, v)),
                _ => None,
            };
            for (key, value) in d {
                match any_key {
                    Some((k, v)) => filled_paths(value, v, &format!("{path}.{k}"), out),
                    None => {
                        if let Some(ex) = e.get(key) {
                            filled_paths(value, ex, &format!("{path}.{key}"), out);
                        }
                    }
                }
            }
        }
        (Value::Array(e), Value::Array(d)) => {
            if let Some(first) = e.first() {
                for value in d {
                    filled_paths(value, first, &format!("{path}[]"), out);
                }
            }
        }
        _ => {}
    }
}

/// Documented fields this test does not print with a value, and why.
const NOT_SHOWN_HERE: &[(&str, &str)] = &[
    // Dropped staging tables need a split table interrupted mid-load; security.rs checks
    // that clean drops them (and says so in its text).
    (
        "clean: .abandoned.dropped",
        "a split table interrupted mid-load",
    ),
    (
        "clean: .abandoned.dropped[]",
        "a split table interrupted mid-load",
    ),
    (
        "clean: .abandoned.dropped[].name",
        "a split table interrupted mid-load",
    ),
    (
        "clean: .abandoned.dropped[].schema",
        "a split table interrupted mid-load",
    ),
    // A copy's verify is exact; its verdicts are printed as `verify`'s, checked there.
    (
        "copy: .verify.tables[].differing_keys",
        "printed as verify's",
    ),
    (
        "copy: .verify.tables[].differing_keys[]",
        "printed as verify's",
    ),
    ("copy: .verify.tables[].error", "printed as verify's"),
    // A table that cannot be compared at all (a server error mid-verify).
    ("verify: .tables[].error", "needs a failing server"),
];

/// Asserts that every field documented for the names checked so far was printed with a
/// value at least once, but those `excused` (with the reason).
fn assert_every_field_seen(excused: &[(&str, &str)]) {
    SEEN.with(|seen| {
        let mut never = Vec::new();
        for (name, filled) in seen.borrow().iter() {
            let mut documented_paths = BTreeSet::new();
            paths(&documented(name), "", &mut documented_paths);
            for p in documented_paths.difference(filled) {
                let path = format!("{name}: {p}");
                if !excused.iter().any(|(e, _)| *e == path) {
                    never.push(path);
                }
            }
        }
        assert!(
            never.is_empty(),
            "documented fields never printed with a value:\n{}",
            never.join("\n")
        );
    });
}

/// Where `doc` departs from `example`'s shape.
fn departures(doc: &Value, example: &Value, path: &str, found: &mut Vec<String>) {
    match (example, doc) {
        (_, Value::Null) | (Value::Null, _) => {}
        (Value::Object(e), Value::Object(d)) => {
            // `{"<kind>": example}`: a map with any keys.
            if let (1, Some((k, v))) = (e.len(), e.iter().next()) {
                if k.starts_with('<') {
                    for (key, value) in d {
                        departures(value, v, &format!("{path}.{key}"), found);
                    }
                    return;
                }
            }
            for key in e.keys().filter(|k| !d.contains_key(*k)) {
                found.push(format!("{path}.{key}: documented, missing"));
            }
            for key in d.keys().filter(|k| !e.contains_key(*k)) {
                found.push(format!("{path}.{key}: printed, not documented"));
            }
            for (key, value) in d {
                if let Some(ex) = e.get(key) {
                    departures(value, ex, &format!("{path}.{key}"), found);
                }
            }
        }
        (Value::Array(e), Value::Array(d)) => {
            if let Some(first) = e.first() {
                for (i, value) in d.iter().enumerate() {
                    departures(value, first, &format!("{path}[{i}]"), found);
                }
            }
        }
        (Value::String(_), Value::String(_))
        | (Value::Bool(_), Value::Bool(_))
        | (Value::Number(_), Value::Number(_)) => {}
        (e, d) => found.push(format!("{path}: documented as {e}, printed {d}")),
    }
}

/// Parses a run's stdout as the one JSON document `name` documents, and checks it.
fn check(run: &Run, name: &str) -> Value {
    let out = &run.stdout;
    assert!(
        out.starts_with("{\n  \"") && out.ends_with("}\n"),
        "{name}: one pretty-printed object ending with a newline:\n{out}\n{}",
        run.stderr
    );
    let doc: Value = serde_json::from_str(out).unwrap_or_else(|e| panic!("{name}: {e}\n{out}"));
    let mut found = Vec::new();
    departures(&doc, &documented(name), "", &mut found);
    assert!(
        found.is_empty(),
        "{name} departs from the README:\n{}\n{out}",
        found.join("\n")
    );
    assert!(doc["ok"].is_boolean(), "{name}: ok");
    let mut filled = BTreeSet::new();
    filled_paths(&doc, &documented(name), "", &mut filled);
    SEEN.with(|seen| {
        seen.borrow_mut()
            .entry(name.to_string())
            .or_default()
            .extend(filled)
    });
    for word in ["oid", "pages", "can_truncate", "can_select", "password"] {
        assert!(
            !out.contains(&format!("\"{word}\"")),
            "{name}: {word}\n{out}"
        );
    }
    doc
}

#[test]
fn every_command_prints_the_documented_json() {
    let db = TestDb::new("json");
    db.source_sql(
        "CREATE TABLE customers (id int PRIMARY KEY, name text);
         CREATE TABLE orders (id int PRIMARY KEY, customer int REFERENCES customers, total numeric);
         CREATE TABLE items (id int PRIMARY KEY, qty int);
         CREATE VIEW big_orders AS SELECT * FROM orders WHERE total > 10;
         -- Only a superuser may create it, and nothing copied needs it: skipped.
         CREATE FUNCTION fast_hash(text) RETURNS int LANGUAGE internal IMMUTABLE AS 'hashtext';
         INSERT INTO customers SELECT g, 'c' || g FROM generate_series(1, 50) g;
         INSERT INTO orders SELECT g, 1 + g % 50, g FROM generate_series(1, 200) g;
         INSERT INTO items SELECT g, g FROM generate_series(1, 30) g;
         ANALYZE;",
    );
    // items exists on the target with a check the rows break: its unit fails.
    db.target_sql_as_app("CREATE TABLE items (id int PRIMARY KEY, qty int CHECK (qty < 0));");
    let source = db.source_conn();
    let target = db.target_conn();

    let tables = pgbarge(&["tables", "--json", "--source", &source]);
    assert_eq!(tables.code, 0, "{}", tables.stderr);
    let doc = check(&tables, "tables");
    assert_eq!(doc["tables"].as_array().map(Vec::len), Some(3), "{doc}");

    let plan = db.copy(&["--all", "--dry-run", "--json"]);
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    let doc = check(&plan, "copy-dry-run");
    assert_eq!(doc["totals"]["tables"], 3, "{doc}");

    let failed = db.copy(&["--all", "--json", "--yes", "--retries", "0"]);
    assert_eq!(failed.code, 5, "{}", failed.stderr);
    let doc = check(&failed, "copy");
    assert_eq!(doc["ok"], false);
    assert_eq!(doc["failures"][0]["tables"][0]["name"], "items", "{doc}");

    let resume = db.copy(&["--resume", "--dry-run", "--json"]);
    assert_eq!(resume.code, 0, "{}", resume.stderr);
    let doc = check(&resume, "copy-resume-dry-run");
    assert!(doc["resume"]["units_done"].as_u64() >= Some(2), "{doc}");

    // The failure left the post-data unit blocked; the objects the loaded tables need
    // (orders' key, the view) were created one by one, and the resume does not create
    // them a second time.
    db.target_sql("ALTER TABLE items DROP CONSTRAINT items_qty_check");
    let resumed = db.copy(&["--resume", "--json", "--verify"]);
    assert_eq!(resumed.code, 0, "{}", resumed.stderr);
    let doc = check(&resumed, "copy");
    assert_eq!(doc["ok"], true);
    assert_eq!(doc["verify"]["totals"]["equal"], 3, "{doc}");
    assert!(doc["resumed"]["units_skipped"].as_u64() >= Some(2), "{doc}");
    assert_eq!(
        db.target_sql("SELECT count(*) FROM big_orders").trim(),
        "190"
    );

    db.target_sql("UPDATE customers SET name = 'changed' WHERE id = 7");
    let verify = pgbarge(&["verify", "--json", "--source", &source, "--target", &target]);
    assert_eq!(verify.code, 6, "{}", verify.stderr);
    let doc = check(&verify, "verify");
    assert_eq!(doc["totals"]["different"], 1, "{doc}");

    let clean = pgbarge(&["clean", "--json", "--target", &target]);
    assert_eq!(clean.code, 0, "{}", clean.stderr);
    let doc = check(&clean, "clean");
    assert!(doc["abandoned"].is_null(), "{doc}");
    // A run left behind, then abandoned.
    db.target_sql("TRUNCATE items; ALTER TABLE items ADD CHECK (qty < 0)");
    let again = db.copy(&["items", "--mode", "truncate", "--json", "--retries", "0"]);
    assert_eq!(again.code, 5, "{}", again.stderr);
    let clean = pgbarge(&["clean", "--json", "--target", &target]);
    assert_eq!(clean.code, 0, "{}", clean.stderr);
    let doc = check(&clean, "clean");
    assert!(doc["abandoned"]["run"].is_number(), "{doc}");

    // Failures: preflight, and a connection string that does not parse.
    let refused = db.copy(&["orders", "--json"]);
    assert_eq!(refused.code, 3, "{}", refused.stderr);
    let doc = check(&refused, "error");
    assert_eq!(
        doc["error"]["problems"][0]["table"]["name"], "orders",
        "{doc}"
    );
    let bad = pgbarge(&[
        "tables",
        "--json",
        "--source",
        "postgres://app:s3cret/x@localhost/db",
    ]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    let doc = check(&bad, "error");
    assert_eq!(doc["command"], "tables");
    assert!(!bad.stdout.contains("s3cret") && !bad.stderr.contains("s3cret"));

    // A sync: what its dry run would repair (a changed row, a row only the target has),
    // then the repair.
    db.target_sql("INSERT INTO customers VALUES (1000, 'only here')");
    let preview = db.copy(&["customers", "--mode", "sync", "--dry-run", "--json"]);
    assert_eq!(preview.code, 0, "{}", preview.stderr);
    let doc = check(&preview, "copy-dry-run");
    assert_eq!(doc["sync"][0]["stats"]["deleted"], 1, "{doc}");
    let synced = db.copy(&["customers", "--mode", "sync", "--json", "--yes"]);
    assert_eq!(synced.code, 0, "{}", synced.stderr);
    let doc = check(&synced, "copy");
    assert_eq!(doc["tables"][0]["sync"]["updated"], 1, "{doc}");
    // Tables linked by a foreign key, truncated together: the plan says so.
    let linked = db.copy(&[
        "customers",
        "orders",
        "--mode",
        "truncate",
        "--dry-run",
        "--json",
    ]);
    assert_eq!(linked.code, 0, "{}", linked.stderr);
    let doc = check(&linked, "copy-dry-run");
    assert!(doc["notes"][0].is_string(), "{doc}");

    // A server that does not answer: which side failed.
    let down = pgbarge(&[
        "tables",
        "--json",
        "--source",
        "host=127.0.0.1 port=1 user=x dbname=x connect_timeout=2",
    ]);
    assert_eq!(down.code, 4, "{}", down.stderr);
    let doc = check(&down, "error");
    assert_eq!(doc["error"]["side"], "source", "{doc}");
    assert_every_field_seen(NOT_SHOWN_HERE);
}
