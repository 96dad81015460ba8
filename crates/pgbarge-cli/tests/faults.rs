//! Failures in the middle of a copy: the table being loaded stays exactly as it was
//! (with retries off, `--retries 0`, so the failure is final), and a transient one is
//! retried without writing a row twice.

mod support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use support::{clean_command, pgbarge_bin, TestDb};

const EXIT_COPY: i32 = 5;

/// Creates target table `t (id int PRIMARY KEY, v text)` as `app`, fills it with `rows`
/// (an INSERT), and slows loading into it with a check constraint that sleeps a little
/// per row (pgbarge sets a table's triggers aside while loading it, but checks hold), so
/// that an interruption lands mid-COPY every time.
fn slow_target_table(db: &TestDb, rows: &str) {
    db.target_sql_as_app(&format!(
        "CREATE TABLE t (id int PRIMARY KEY, v text); {rows};
         CREATE FUNCTION public.slow() RETURNS bool LANGUAGE plpgsql AS
           $$ BEGIN PERFORM pg_sleep(0.0005); RETURN true; END $$;
         ALTER TABLE t ADD CONSTRAINT slow CHECK (public.slow());"
    ));
}

/// How to interrupt a running copy.
enum Interrupt {
    /// `pg_terminate_backend` on the target: a dropped connection.
    TerminateTargetBackend,
    /// SIGINT to pgbarge: the user's Ctrl-C.
    CtrlC,
    /// SIGTERM to pgbarge: systemd or Kubernetes stopping it.
    SigTerm,
}

/// Starts pgbarge copying `args`, waits until a COPY whose text matches the LIKE pattern
/// `copy_like` runs on the target, interrupts it, and returns pgbarge's exit code and stderr.
fn interrupt_mid_copy(
    db: &TestDb,
    copy_like: &str,
    how: Interrupt,
    args: &[&str],
) -> (i32, String) {
    let child = clean_command(pgbarge_bin())
        .arg("copy")
        .arg("--source")
        .arg(db.source_conn())
        .arg("--target")
        .arg(db.target_conn())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn pgbarge");
    let started = Instant::now();
    let mut killed = false;
    while started.elapsed() < Duration::from_secs(60) {
        let pid = db.target_sql(&format!(
            "SELECT pid FROM pg_stat_activity WHERE datname = '{}' AND application_name = 'pgbarge' \
             AND state = 'active' AND query LIKE '{copy_like}'",
            db.name
        ));
        if let Some(pid) = pid.lines().next().filter(|p| !p.is_empty()) {
            match how {
                Interrupt::TerminateTargetBackend => {
                    db.target_sql(&format!("SELECT pg_terminate_backend({pid})"));
                }
                Interrupt::CtrlC | Interrupt::SigTerm => {
                    let signal = if matches!(how, Interrupt::CtrlC) {
                        "-INT"
                    } else {
                        "-TERM"
                    };
                    let status = std::process::Command::new("kill")
                        .args([signal, &child.id().to_string()])
                        .status()
                        .expect("run kill");
                    assert!(status.success());
                }
            }
            killed = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(killed, "never saw pgbarge's COPY running on the target");
    let out = child.wait_with_output().expect("wait for pgbarge");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn killed_connection_leaves_an_existing_table_as_it_was() {
    let db = TestDb::new("kill_append");
    db.source_sql("CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 20000) g;");
    slow_target_table(&db, "INSERT INTO t VALUES (-1, 'before'), (-2, 'before')");
    let (code, stderr) = interrupt_mid_copy(
        &db,
        r#"COPY "public"."t" %FROM STDIN%"#,
        Interrupt::TerminateTargetBackend,
        &["t", "--mode", "append", "--retries", "0"],
    );
    assert_eq!(code, EXIT_COPY, "{stderr}");
    assert!(
        stderr.contains("target server: loading public.t failed"),
        "{stderr}"
    );
    assert!(stderr.contains("exactly as they were"), "{stderr}");
    assert_eq!(
        db.target_sql("SELECT string_agg(id || ':' || v, ',' ORDER BY id) FROM t")
            .trim(),
        "-2:before,-1:before"
    );
}

#[test]
fn a_killed_connection_is_retried_and_appends_each_row_once() {
    let db = TestDb::new("kill_retry");
    db.source_sql("CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 20000) g;");
    slow_target_table(&db, "INSERT INTO t VALUES (-1, 'before')");
    let (code, stderr) = interrupt_mid_copy(
        &db,
        r#"COPY "public"."t" %FROM STDIN%"#,
        Interrupt::TerminateTargetBackend,
        &["t", "--mode", "append"],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("retry   public.t: attempt 2"), "{stderr}");
    assert_eq!(
        db.target_sql("SELECT count(*), count(DISTINCT id), min(id), max(id) FROM t")
            .trim(),
        "20001|20001|-1|20000"
    );
}

#[test]
fn killed_connection_leaves_no_half_created_table() {
    let db = TestDb::new("kill_create");
    db.source_sql(
        "CREATE TABLE small (id int PRIMARY KEY); INSERT INTO small VALUES (1), (2);
         CREATE TABLE large (id bigint PRIMARY KEY, payload text);
         INSERT INTO large SELECT g, repeat('x', 200) FROM generate_series(1, 1000000) g;",
    );
    let (code, stderr) = interrupt_mid_copy(
        &db,
        r#"COPY "public".%large%FROM STDIN%"#,
        Interrupt::TerminateTargetBackend,
        &["small", "large", "--jobs", "2", "--retries", "0"],
    );
    assert_eq!(code, EXIT_COPY, "{stderr}");
    assert!(stderr.contains("--resume"), "{stderr}");
    // The other table is committed, whole. The one being loaded (split into parts that
    // load a staging table) does not exist under its name: its committed parts wait in
    // the staging table for a resume.
    assert_eq!(db.target_sql("SELECT count(*) FROM small").trim(), "2");
    assert!(!db.target_has_table("public", "large"));
    let staging = || {
        db.target_sql(r"SELECT count(*) FROM pg_class WHERE relname LIKE '\_pgbarge\_%'")
            .trim()
            .to_string()
    };
    assert_eq!(staging(), "1");
    // Resumed, the failed part runs again, and only what is missing moves.
    let resumed = db.copy(&["small", "large", "--jobs", "2", "--resume", "--json"]);
    resumed.assert_ok();
    let report: serde_json::Value = serde_json::from_str(&resumed.stdout).expect("JSON report");
    assert!(
        report["resumed"]["units_skipped"].as_u64() >= Some(2),
        "{report}"
    );
    db.assert_same("small");
    db.assert_same("large");
    assert_eq!(staging(), "0");
    assert!(
        !db.target_has_table("pgbarge", "run"),
        "the finished run is cleared"
    );
}

#[test]
fn ctrl_c_rolls_back_the_table_being_loaded() {
    let db = TestDb::new("ctrl_c");
    db.source_sql("CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, 'v' FROM generate_series(1, 20000) g;");
    slow_target_table(&db, "INSERT INTO t VALUES (-1, 'before')");
    let (code, stderr) = interrupt_mid_copy(
        &db,
        r#"COPY "public"."t" %FROM STDIN%"#,
        Interrupt::CtrlC,
        &["t", "--mode", "truncate"],
    );
    assert_eq!(code, 130, "{stderr}");
    assert!(
        stderr.contains(
            "interrupted: no table is committed on the target; the tables being loaded were rolled back"
        ),
        "{stderr}"
    );
    // Even the TRUNCATE before the load is undone.
    assert_eq!(
        db.target_sql("SELECT string_agg(id || v, ',') FROM t")
            .trim(),
        "-1before"
    );
    // And no session of ours is left behind on the target.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        db.target_sql(&format!(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = '{}' AND application_name = 'pgbarge'",
            db.name
        ))
        .trim(),
        "0"
    );
}

#[test]
fn sigterm_stops_like_ctrl_c_and_the_run_can_be_resumed() {
    let db = TestDb::new("sigterm");
    db.source_sql("CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, 'v' FROM generate_series(1, 20000) g;");
    slow_target_table(&db, "INSERT INTO t VALUES (-1, 'before')");
    let (code, stderr) = interrupt_mid_copy(
        &db,
        r#"COPY "public"."t" %FROM STDIN%"#,
        Interrupt::SigTerm,
        &["t", "--mode", "truncate"],
    );
    assert_eq!(code, 130, "{stderr}");
    assert!(stderr.contains("--resume"), "{stderr}");
    assert_eq!(
        db.target_sql("SELECT string_agg(id || v, ',') FROM t")
            .trim(),
        "-1before"
    );
    // The run is recorded: resuming it loads the table, once.
    db.target_sql("ALTER TABLE t DROP CONSTRAINT slow");
    db.copy(&["t", "--mode", "truncate", "--resume"])
        .assert_ok();
    db.assert_same("t");
}

#[test]
fn a_failure_in_replace_or_upsert_leaves_the_table_as_it_was() {
    // Upsert: the merge into the (slow) target table is interrupted.
    let db = TestDb::new("kill_upsert");
    db.source_sql("CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, 'new' FROM generate_series(1, 20000) g;");
    slow_target_table(&db, "INSERT INTO t VALUES (1, 'before'), (-1, 'before')");
    let (code, stderr) = interrupt_mid_copy(
        &db,
        r#"%INSERT INTO "public"."t" AS pgbarge_t%"#,
        Interrupt::TerminateTargetBackend,
        &["t", "--mode", "upsert", "--retries", "0"],
    );
    assert_eq!(code, EXIT_COPY, "{stderr}");
    assert_eq!(
        db.target_sql("SELECT string_agg(id || v, ',' ORDER BY id) FROM t")
            .trim(),
        "-1before,1before"
    );

    // Replace: the new table's COPY is interrupted; the old table, definition and rows,
    // is still there.
    let db = TestDb::new("kill_replace");
    db.source_sql(
        "CREATE TABLE large (id bigint PRIMARY KEY, payload text);
         INSERT INTO large SELECT g, repeat('x', 200) FROM generate_series(1, 1000000) g;",
    );
    db.target_sql_as_app("CREATE TABLE large (id bigint PRIMARY KEY, payload text, mine text); INSERT INTO large VALUES (7, 'p', 'kept');");
    let (code, stderr) = interrupt_mid_copy(
        &db,
        r#"COPY "public"."large" %FROM STDIN%"#,
        Interrupt::TerminateTargetBackend,
        &[
            "large",
            "--mode",
            "replace",
            "--jobs",
            "1",
            "--retries",
            "0",
        ],
    );
    assert_eq!(code, EXIT_COPY, "{stderr}");
    assert_eq!(
        db.target_sql("SELECT string_agg(id || payload || mine, ',') FROM large")
            .trim(),
        "7pkept"
    );
}
