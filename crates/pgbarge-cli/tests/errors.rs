//! Bad input: each case gets a clear, one-paragraph error naming what to do, the
//! documented exit code, and leaves the target unchanged.

mod support;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use support::{pgbarge, TestDb};

const EXIT_USAGE: i32 = 2;
const EXIT_PREFLIGHT: i32 = 3;
const EXIT_CONNECT: i32 = 4;

fn no_tables_created(db: &TestDb) {
    assert_eq!(
        db.target_sql("SELECT count(*) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')")
            .trim(),
        "0",
        "the target must be unchanged"
    );
}

fn shop(db: &TestDb) {
    db.source_sql(
        "CREATE TABLE customers (id int PRIMARY KEY, name text);
         CREATE TABLE orders (id int PRIMARY KEY, customer int, amount numeric(12,2));
         INSERT INTO customers VALUES (1, 'a'); INSERT INTO orders VALUES (1, 1, 9.99);",
    );
}

#[test]
fn missing_table_is_reported_with_a_suggestion() {
    let db = TestDb::new("missing");
    shop(&db);
    let run = db.copy(&["customers", "custmers", "public.ordrs"]);
    assert_eq!(run.code, EXIT_PREFLIGHT, "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "no table on the source matches \"custmers\". Did you mean public.customers?"
        ),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("Did you mean public.orders?"),
        "{}",
        run.stderr
    );
    // Reported together, and nothing written, not even the table that exists.
    assert!(
        run.stderr.contains("2 problems; nothing was written"),
        "{}",
        run.stderr
    );
    no_tables_created(&db);
}

#[test]
fn type_that_cannot_hold_the_data_is_refused() {
    let db = TestDb::new("mismatch");
    shop(&db);
    db.target_sql_as_app(
        "CREATE TABLE orders (id int PRIMARY KEY, customer text, amount numeric(5,2));",
    );
    db.target_sql_as_app("CREATE TABLE customers (id smallint PRIMARY KEY, name text);");
    let run = db.copy(&["orders", "customers"]);
    assert_eq!(run.code, EXIT_PREFLIGHT, "{}", run.stderr);
    assert!(run.stderr.contains("column \"amount\": source type numeric(12,2) cannot be loaded into target type numeric(5,2)"), "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "column \"id\": source type integer cannot be loaded into target type smallint"
        ),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("ALTER TABLE"), "{}", run.stderr);
    // int → text widens: no complaint about "customer"
    assert!(!run.stderr.contains("\"customer\""), "{}", run.stderr);
    assert_eq!(db.target_sql("SELECT count(*) FROM orders").trim(), "0");
}

#[test]
fn wrong_password_fails_clearly_without_echoing_it() {
    let db = TestDb::new("password");
    shop(&db);
    let run = db.copy_to(&db.target_conn_with("app", "Wr0ng-S3cret"), &["customers"]);
    assert_eq!(run.code, EXIT_CONNECT, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("target server: password authentication failed for app"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("The password came from the connection string"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("Wr0ng-S3cret") && !run.stdout.contains("Wr0ng-S3cret"));
    no_tables_created(&db);
}

#[test]
fn unreachable_host_fails_within_the_connect_timeout() {
    let db = TestDb::new("unreachable");
    // A port that accepts TCP connections but never answers: a black-holed server.
    let silent = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = silent.local_addr().expect("addr").port();
    let started = Instant::now();
    let run = db.copy_to(
        &format!("host=127.0.0.1 port={port} user=app dbname=x connect_timeout=2"),
        &["customers"],
    );
    let took = started.elapsed();
    assert_eq!(run.code, EXIT_CONNECT, "{}", run.stderr);
    assert!(
        run.stderr.contains("no answer from 127.0.0.1"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("within 2 s (connect_timeout)"),
        "{}",
        run.stderr
    );
    assert!(took < Duration::from_secs(8), "took {took:?}");
    drop(silent);
    // And a closed port is refused at once, with what to check.
    let closed = TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let run = db.copy_to(
        &format!("host=127.0.0.1 port={closed} user=app dbname=x"),
        &["customers"],
    );
    assert_eq!(run.code, EXIT_CONNECT, "{}", run.stderr);
    assert!(
        run.stderr.contains("could not connect to 127.0.0.1"),
        "{}",
        run.stderr
    );
}

#[test]
fn no_tables_and_no_terminal_fails_at_once() {
    let db = TestDb::new("notty");
    let started = Instant::now();
    let run = db.copy(&[]);
    assert_eq!(run.code, EXIT_USAGE, "{}", run.stderr);
    assert!(
        run.stderr.contains("no tables named, and no terminal"),
        "{}",
        run.stderr
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn non_empty_target_without_mode_is_refused() {
    let db = TestDb::new("nonempty");
    shop(&db);
    db.target_sql_as_app("CREATE TABLE customers (id int PRIMARY KEY, name text); INSERT INTO customers VALUES (7, 'kept');");
    let run = db.copy(&["customers"]);
    assert_eq!(run.code, EXIT_PREFLIGHT, "{}", run.stderr);
    assert!(run.stderr.contains("public.customers: the target table already holds rows. Say what to do with them: --mode append"), "{}", run.stderr);
    assert_eq!(
        db.target_sql("SELECT string_agg(id || name, ',') FROM customers")
            .trim(),
        "7kept"
    );
    // Two tables with the same problem: both named, the way out said once.
    db.target_sql_as_app(
        "CREATE TABLE orders (id int PRIMARY KEY, customer int, amount numeric(12,2));
         INSERT INTO orders VALUES (9, 7, 1);",
    );
    let run = db.copy(&["customers", "orders"]);
    assert_eq!(run.code, EXIT_PREFLIGHT, "{}", run.stderr);
    assert!(run.stderr.contains("  - public.customers: the target table already holds rows.\n  - public.orders: the target table already holds rows.\n    For these 2: Say what to do with them"), "{}", run.stderr);
    assert_eq!(
        run.stderr.matches("--mode append").count(),
        1,
        "{}",
        run.stderr
    );
}

#[test]
fn role_without_create_privilege_is_refused() {
    let db = TestDb::new("noprivs");
    shop(&db);
    // A login role that may connect but not create anything.
    db.target_sql(
        "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'reader') THEN \
         CREATE ROLE reader LOGIN PASSWORD 'reader-pw'; END IF; END $$; \
         REVOKE CREATE ON SCHEMA public FROM PUBLIC;",
    );
    let run = db.copy_to(
        &db.target_conn_with("reader", "reader-pw"),
        &["customers", "orders", "--json"],
    );
    assert_eq!(run.code, EXIT_PREFLIGHT, "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "public.customers: does not exist on the target, and the role (reader@localhost"
        ),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("GRANT CREATE ON SCHEMA \"public\""),
        "{}",
        run.stderr
    );
    let json: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON error");
    assert_eq!(json["error"]["kind"], "preflight");
    assert_eq!(json["error"]["problems"].as_array().map(Vec::len), Some(2));
    no_tables_created(&db);
}

#[test]
fn bad_connection_string_is_a_usage_error() {
    let run = pgbarge(&[
        "copy",
        "--source",
        "host=x sslmode=sometimes",
        "--target",
        "host=y",
        "t",
    ]);
    assert_eq!(run.code, EXIT_USAGE, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("--source: invalid sslmode \"sometimes\""),
        "{}",
        run.stderr
    );
    let run = pgbarge(&["copy", "--target", "host=y", "t"]);
    assert_eq!(run.code, EXIT_USAGE, "{}", run.stderr);
    assert!(run.stderr.contains("set PGBARGE_SOURCE"), "{}", run.stderr);
}

#[test]
fn verify_full_refuses_a_wrong_ca_and_a_wrong_host_and_require_only_encrypts() {
    let db = TestDb::new("tlscheck");
    shop(&db);
    let t = &support::servers().target;
    // A CA of our own that did not sign the server's certificate.
    let dir = std::env::temp_dir().join(format!("pgbarge-other-ca-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temp dir");
    let status = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args(["-subj", "/CN=not the server's CA", "-keyout"])
        .arg(dir.join("ca.key"))
        .arg("-out")
        .arg(dir.join("ca.crt"))
        .stderr(std::process::Stdio::null())
        .status()
        .expect("run openssl");
    assert!(status.success());
    let conn = |extra: &str| {
        format!(
            "host=localhost port={} user=app password=app-secret dbname={} {extra}",
            t.port, db.name
        )
    };
    let wrong_ca = db.copy_to(
        &conn(&format!(
            "sslmode=verify-full sslrootcert={}",
            dir.join("ca.crt").display()
        )),
        &["customers"],
    );
    assert_eq!(wrong_ca.code, EXIT_CONNECT, "{}", wrong_ca.stderr);
    assert!(
        wrong_ca.stderr.contains("the TLS check failed"),
        "{}",
        wrong_ca.stderr
    );
    // The right CA, but a host name the certificate does not carry (hostaddr: where to
    // connect; host: whom to expect).
    let wrong_host = db.copy_to(
        &format!(
            "host=db.example.com hostaddr=127.0.0.1 port={} user=app password=app-secret \
             dbname={} sslmode=verify-full sslrootcert={}/ca.crt",
            t.port,
            db.name,
            t.dir.display()
        ),
        &["customers"],
    );
    assert_eq!(wrong_host.code, EXIT_CONNECT, "{}", wrong_host.stderr);
    assert!(
        wrong_host.stderr.contains("the TLS check failed"),
        "{}",
        wrong_host.stderr
    );
    for run in [&wrong_ca, &wrong_host] {
        assert!(!run.stderr.contains("app-secret") && !run.stdout.contains("app-secret"));
    }
    no_tables_created(&db);
    // require: encrypted, certificate not checked (libpq's meaning).
    db.copy_to(&conn("sslmode=require"), &["customers"])
        .assert_ok();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn plain_connection_to_tls_only_target_says_to_use_tls() {
    let db = TestDb::new("notls");
    shop(&db);
    let t = &support::servers().target;
    let run = db.copy_to(
        &format!(
            "host=localhost port={} user=app password=app-secret dbname={} sslmode=disable",
            t.port, db.name
        ),
        &["customers"],
    );
    assert_eq!(run.code, EXIT_CONNECT, "{}", run.stderr);
    assert!(run.stderr.contains("sslmode=require"), "{}", run.stderr);
}

#[test]
fn same_database_as_source_and_target_is_refused() {
    let db = TestDb::new("itself");
    shop(&db);
    // The same database reached two ways (socket and TCP) is still the same database.
    let s = &support::servers().source;
    let run = db.copy_to(
        &format!(
            "host=127.0.0.1 port={} user=postgres dbname={}",
            s.port, db.name
        ),
        &["customers", "--mode", "truncate"],
    );
    assert_eq!(run.code, EXIT_USAGE, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("the source and the target are the same database"),
        "{}",
        run.stderr
    );
    assert_eq!(db.source_sql("SELECT count(*) FROM customers").trim(), "1");
}

#[test]
fn truncate_of_a_table_other_tables_reference_is_refused_up_front() {
    let db = TestDb::new("truncate_fk");
    shop(&db);
    db.target_sql_as_app(
        "CREATE TABLE customers (id int PRIMARY KEY, name text); INSERT INTO customers VALUES (1, 'kept');
         CREATE TABLE invoices (id int PRIMARY KEY, customer int REFERENCES customers); INSERT INTO invoices VALUES (1, 1);",
    );
    let run = db.copy(&["customers", "--mode", "truncate"]);
    assert_eq!(run.code, EXIT_PREFLIGHT, "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "cannot be truncated on the target: public.invoices has foreign keys pointing at it and is not truncated in this run"
        ),
        "{}",
        run.stderr
    );
    assert_eq!(db.target_sql("SELECT name FROM customers").trim(), "kept");
}

#[test]
fn replace_under_another_roles_view_and_load_under_its_row_security_are_refused_up_front() {
    let db = TestDb::new("replace_view");
    shop(&db);
    db.target_sql_as_app(
        "CREATE TABLE customers (id int PRIMARY KEY, name text); INSERT INTO customers VALUES (1, 'kept');
         CREATE TABLE orders (id int PRIMARY KEY, customer int, amount numeric(12,2));
         ALTER TABLE orders ENABLE ROW LEVEL SECURITY; ALTER TABLE orders FORCE ROW LEVEL SECURITY;",
    );
    // Built by another role: the copying role could not create it again.
    db.target_sql("CREATE VIEW names AS SELECT name FROM customers;");
    let run = db.copy(&["customers", "orders", "--mode", "replace"]);
    assert_eq!(run.code, EXIT_PREFLIGHT, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("public.names, built on it, is owned by another role"),
        "{}",
        run.stderr
    );
    assert_eq!(db.target_sql("SELECT name FROM customers").trim(), "kept");

    // Forced on its owner, the copying role: set aside for the load and forced again.
    db.copy(&["orders", "--mode", "truncate"]).assert_ok();
    assert_eq!(
        db.target_sql(
            "SELECT relforcerowsecurity::text || ' ' || (SELECT count(*) FROM orders)
             FROM pg_class WHERE relname = 'orders'"
        )
        .trim(),
        "true 1"
    );
    // Another role's table under row-level security: refused, naming the fix.
    db.target_sql(
        "ALTER TABLE customers OWNER TO postgres; TRUNCATE customers;
         ALTER TABLE customers ENABLE ROW LEVEL SECURITY;
         GRANT SELECT, INSERT ON customers TO app;",
    );
    let run = db.copy(&["customers"]);
    assert_eq!(run.code, EXIT_PREFLIGHT, "{}", run.stderr);
    assert!(run.stderr.contains("row-level security"), "{}", run.stderr);
}

#[test]
fn a_closed_stdout_ends_quietly_as_unix_tools_do() {
    let db = TestDb::new("epipe");
    shop(&db);
    // The reader is gone before pgbarge writes (as `pgbarge tables --json | head -0`).
    let mut child = support::clean_command(support::pgbarge_bin())
        .args(["tables", "--json", "--source", &db.source_conn()])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn pgbarge");
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("pgbarge ends");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
