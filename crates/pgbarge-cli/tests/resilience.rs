//! A long cloud copy survives its faults: a SIGKILL (resumed, moving only what was not
//! committed), reset and black-holed connections (retried by the same command), a lock
//! held by another session (waited for without blocking its readers), and server-side
//! timeouts set on the source.

mod support;

use std::time::{Duration, Instant};

use support::proxy::{Fault, FaultProxy};
use support::{servers, TestDb};

/// The JSON report's rows moved by this run, over every table.
fn rows_moved(stdout: &str) -> u64 {
    let report: serde_json::Value = serde_json::from_str(stdout).expect("a JSON report");
    report["tables"]
        .as_array()
        .expect("tables")
        .iter()
        .map(|t| t["rows"].as_u64().expect("rows"))
        .sum()
}

fn staging_tables(db: &TestDb) -> String {
    db.target_sql(r"SELECT count(*) FROM pg_class WHERE relname LIKE '\_pgbarge\_%'")
        .trim()
        .to_string()
}

/// A source of three tables: `big` (split into many parts) and two smaller ones.
fn three_tables(db: &TestDb, big_rows: u32) -> u64 {
    db.source_sql(&format!(
        "CREATE TABLE big (id bigint PRIMARY KEY, pad text);
         INSERT INTO big SELECT g, repeat(md5(g::text), 5) FROM generate_series(1, {big_rows}) g;
         CREATE TABLE s1 (id int PRIMARY KEY, v text);
         INSERT INTO s1 SELECT g, md5(g::text) FROM generate_series(1, 60000) g;
         CREATE TABLE s2 (id int PRIMARY KEY, n numeric);
         INSERT INTO s2 SELECT g, g / 7.0 FROM generate_series(1, 40000) g;
         ANALYZE;"
    ));
    u64::from(big_rows) + 100_000
}

/// Copy arguments for the three tables: `big` split into parts of 4 MB, and `extra`.
fn three_table_args<'a>(jobs: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "big",
        "s1",
        "s2",
        "--jobs",
        jobs,
        "--split-above",
        "4MB",
        "--part-size",
        "4MB",
    ];
    args.extend_from_slice(extra);
    args
}

fn assert_three_equal(db: &TestDb) {
    for t in ["big", "s1", "s2"] {
        db.assert_same(t);
    }
    assert_eq!(staging_tables(db), "0", "no staging table is left");
    assert!(
        !db.target_has_table("pgbarge", "run"),
        "the finished run is cleared from the ledger"
    );
}

#[test]
fn sigkill_at_any_moment_then_resume_moves_only_what_was_not_committed() {
    let db = TestDb::new("sigkill");
    let total = three_tables(&db, 500_000);
    let args = [
        "big",
        "s1",
        "s2",
        "--jobs",
        "3",
        "--split-above",
        "4MB",
        "--part-size",
        "2MB",
        "--yes",
        "--quiet",
    ];
    let reset = || {
        db.target_sql(
            "DROP TABLE IF EXISTS public.big, public.s1, public.s2;
             DROP SCHEMA IF EXISTS pgbarge CASCADE",
        );
    };
    // The run's units: a preparing one, then per table one, or its parts and a finish.
    let mut dry = args.to_vec();
    dry.extend(["--dry-run", "--json"]);
    let plan: serde_json::Value =
        serde_json::from_str(&db.copy(&dry).assert_ok().stdout).expect("JSON plan");
    let units: usize = 1 + plan["tables"]
        .as_array()
        .expect("tables")
        .iter()
        .map(|t| match t["parts"].as_u64().unwrap_or(1) as usize {
            1 => 1,
            parts => parts + 1,
        })
        .sum::<usize>();
    assert!(units > 30, "big is split into many parts: {units} units");
    // Units committed so far (none while the ledger does not exist yet).
    let committed = || -> usize {
        let out = servers()
            .target
            .psql_output(&db.name, "SELECT count(*) FROM pgbarge.unit", &[]);
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or(0)
    };
    db.copy(&args).assert_ok();
    assert_three_equal(&db);

    // Killed once the given share of the units committed: spread over 20–85% of the
    // run, in an order that is not monotonic.
    let fractions = [0.52, 0.20, 0.85, 0.36, 0.69];
    let mut moved = Vec::new();
    for f in fractions {
        reset();
        let mut child = db.spawn_copy(&db.target_conn(), &args);
        let goal = (units as f64 * f).ceil() as usize;
        let deadline = Instant::now() + Duration::from_secs(60);
        while committed() < goal {
            assert!(
                Instant::now() < deadline,
                "the run never got {goal} units in"
            );
            assert!(
                child.try_wait().expect("poll pgbarge").is_none(),
                "the run ended before {goal} of {units} units committed"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        child.kill().expect("SIGKILL pgbarge");
        let killed = child.wait_with_output().expect("the killed run");
        let ledger = db.target_sql("SELECT work::text FROM pgbarge.run");
        assert!(
            !ledger.contains(support::TARGET_PASSWORD),
            "no password in the ledger"
        );
        let mut resume_args = args.to_vec();
        resume_args.extend(["--resume", "--json"]);
        let resumed = db.copy(&resume_args);
        assert_eq!(
            resumed.code,
            0,
            "resume after a kill at {:.0}% failed:\n{}\nthe killed run said:\n{}",
            f * 100.0,
            resumed.stderr,
            String::from_utf8_lossy(&killed.stderr)
        );
        let rows = rows_moved(&resumed.stdout);
        assert_three_equal(&db);
        eprintln!(
            "killed with {goal} of {units} units committed ({:.0}%): the resume moved {rows} \
             of {total} rows ({:.0}%)",
            f * 100.0,
            rows as f64 * 100.0 / total as f64
        );
        moved.push(rows as f64 / total as f64);
    }
    let average = moved.iter().sum::<f64>() / moved.len() as f64;
    eprintln!(
        "on average the resumed runs moved {:.0}% of the rows",
        average * 100.0
    );
    assert!(
        average < 0.65,
        "resumed runs moved {:.0}% of the rows on average: {moved:?}",
        average * 100.0
    );
}

#[test]
fn connections_reset_mid_copy_are_retried_by_the_same_command() {
    let db = TestDb::new("resets");
    three_tables(&db, 200_000);
    let proxy = FaultProxy::start(servers().target.port);
    // Two data connections are reset, each after a few MB of COPY.
    proxy.arm(Fault::Reset, 3 << 20);
    proxy.arm(Fault::Reset, 2 << 20);
    let run = db.copy_to(&db.target_conn_via(proxy.port), &three_table_args("2", &[]));
    run.assert_ok();
    assert_eq!(proxy.fired(), 2, "both resets happened");
    assert!(run.stderr.contains("retry   "), "{}", run.stderr);
    assert!(run.stdout.contains("Retried 2 times"), "{}", run.stdout);
    assert_three_equal(&db);
}

#[test]
fn a_black_holed_connection_is_noticed_within_the_stall_timeout_and_retried() {
    let db = TestDb::new("blackhole");
    three_tables(&db, 200_000);
    let proxy = FaultProxy::start(servers().target.port);
    proxy.arm(Fault::BlackHole, 3 << 20);
    let started = Instant::now();
    let run = db.copy_to(
        &db.target_conn_via(proxy.port),
        &three_table_args("2", &["--stall-timeout", "3s"]),
    );
    run.assert_ok();
    assert!(started.elapsed() < Duration::from_secs(120));
    assert_eq!(proxy.fired(), 1);
    assert!(
        run.stderr.contains("no data moved for 3 s"),
        "{}",
        run.stderr
    );
    assert_three_equal(&db);
    // The stalled session was ended, not left holding its locks.
    assert_eq!(
        db.target_sql(&format!(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = '{}' \
             AND application_name = 'pgbarge'",
            db.name
        ))
        .trim(),
        "0"
    );
}

#[test]
fn truncate_waits_for_a_lock_without_blocking_readers_and_names_the_holder() {
    let db = TestDb::new("locked");
    db.source_sql(
        "CREATE TABLE t (id int PRIMARY KEY, v text);
         INSERT INTO t SELECT g, 'new' FROM generate_series(1, 5000) g;",
    );
    db.target_sql_as_app(
        "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (-1, 'old');",
    );
    // Another session reads t in a transaction that lasts 6 s.
    let target = &servers().target;
    let holder = std::process::Command::new("psql")
        .args(["-X", "-q", "-h"])
        .arg(&target.dir)
        .args([
            "-p",
            &target.port.to_string(),
            "-U",
            "postgres",
            "-d",
            &db.name,
        ])
        .args([
            "-c",
            "BEGIN; SET application_name = 'long_report'; SELECT count(*) FROM t; \
             SELECT pg_sleep(6); COMMIT;",
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("start the lock holder");
    let deadline = Instant::now() + Duration::from_secs(10);
    while db
        .target_sql(
            "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) \
             WHERE a.application_name = 'long_report' AND l.relation = 't'::regclass",
        )
        .trim()
        == "0"
    {
        assert!(Instant::now() < deadline, "the holder never took its lock");
        std::thread::sleep(Duration::from_millis(20));
    }
    let copy = db.spawn_copy(&db.target_conn(), &["t", "--mode", "truncate"]);
    // A reader's answer time while pgbarge waits for (and then holds) the lock.
    let mut slowest = Duration::ZERO;
    let reading = Instant::now();
    while reading.elapsed() < Duration::from_secs(8) {
        let asked = Instant::now();
        db.target_sql("SELECT count(*) FROM t");
        slowest = slowest.max(asked.elapsed());
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = copy.wait_with_output().expect("pgbarge finishes");
    let _ = { holder }.wait();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("waiting for a lock held by pid") && stderr.contains("long_report"),
        "{stderr}"
    );
    assert!(
        slowest < Duration::from_secs(3),
        "a reader waited {slowest:?} behind pgbarge's lock request"
    );
    db.assert_same("t");
}

#[test]
fn server_side_timeouts_on_the_source_do_not_end_a_long_copy() {
    let db = TestDb::new("src_timeouts");
    three_tables(&db, 300_000);
    db.source_sql(&format!(
        "ALTER DATABASE \"{0}\" SET statement_timeout = '1s';
         ALTER DATABASE \"{0}\" SET idle_in_transaction_session_timeout = '1s';",
        db.name
    ));
    let started = Instant::now();
    let run = db.copy(&three_table_args("3", &[]));
    run.assert_ok();
    assert!(
        started.elapsed() > Duration::from_secs(1),
        "the copy outlasted the timeouts"
    );
    // The comparison's own reads of `big` may take longer than a second on a busy
    // machine: they run without the timeouts.
    db.source_sql(&format!(
        "ALTER DATABASE \"{0}\" RESET statement_timeout;
         ALTER DATABASE \"{0}\" RESET idle_in_transaction_session_timeout;",
        db.name
    ));
    assert_three_equal(&db);
}

#[test]
fn a_full_target_disk_fails_that_table_cleanly_and_the_others_commit() {
    let db = TestDb::new("diskfull");
    three_tables(&db, 500_000);
    // A tablespace on a 48 MB filesystem (as root, as CI runs): `big` (about 110 MB)
    // cannot fit, the two others can.
    let mount = std::env::temp_dir().join(format!("pgbarge-tmpfs-{}", std::process::id()));
    std::fs::create_dir_all(&mount).expect("a mount point");
    let run = |program: &str, args: &[&str]| {
        let out = std::process::Command::new(program)
            .args(args)
            .output()
            .expect("run a command");
        assert!(
            out.status.success(),
            "{program} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let path = mount.to_str().expect("a UTF-8 path");
    run("mount", &["-t", "tmpfs", "-o", "size=48m", "tmpfs", path]);
    /// Unmounts when the test ends, passed or not.
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount")
                .arg("--lazy")
                .arg(&self.0)
                .status();
            let _ = std::fs::remove_dir(&self.0);
        }
    }
    let _unmount = Unmount(mount.clone());
    run("chown", &["postgres:", path]);
    let target = &servers().target;
    target.psql(
        "postgres",
        &format!("CREATE TABLESPACE small LOCATION '{path}'"),
    );
    target.psql("postgres", "GRANT CREATE ON TABLESPACE small TO app");
    target.psql(
        "postgres",
        &format!(
            "ALTER DATABASE \"{}\" SET default_tablespace = 'small'",
            db.name
        ),
    );
    // One stream, biggest first, and `big` whole (not split): its failure frees its space.
    let copy = db.copy(&["big", "s1", "s2", "--jobs", "1", "--split-above", "1GB"]);
    assert_eq!(copy.code, 5, "{}", copy.stderr);
    assert!(
        copy.stderr
            .contains("The target ran out of disk space loading public.big (about"),
        "{}",
        copy.stderr
    );
    assert!(copy.stderr.contains("--resume"), "{}", copy.stderr);
    assert!(
        !db.target_has_table("public", "big"),
        "big is as it was: absent"
    );
    db.assert_same("s1");
    db.assert_same("s2");
    assert_eq!(db.target_sql("SELECT 1").trim(), "1", "the server is up");

    target.psql(
        "postgres",
        &format!("DROP DATABASE \"{}\" WITH (FORCE)", db.name),
    );
    target.psql("postgres", "DROP TABLESPACE small");
}

#[test]
fn a_run_recorded_by_an_earlier_version_still_shows_and_resumes() {
    let db = TestDb::new("old_ledger");
    three_tables(&db, 200_000);
    // big's finish is held back, so the run is surely unfinished when it is killed.
    let s = servers();
    let mut locker = db.hold_finish_of("big", "true");
    let args = three_table_args("2", &["--yes", "--quiet"]);
    let mut child = db.spawn_copy(&db.target_conn(), &args);
    let deadline = Instant::now() + Duration::from_secs(60);
    // (No ledger yet at first: the count reads as none.)
    let parts = || {
        let out = s.target.psql_output(
            &db.name,
            "SELECT count(*) FROM pgbarge.unit WHERE unit LIKE 'part %'",
            &[],
        );
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse::<usize>()
            .unwrap_or(0)
    };
    while parts() < 2 {
        assert!(Instant::now() < deadline, "no part of big was committed");
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    db.end_lockers();
    let _ = locker.kill();
    let _ = locker.wait();
    // The ledger as an earlier version left it: no snapshot column.
    db.target_sql("ALTER TABLE pgbarge.run DROP COLUMN snapshot");
    let status = db.run("status", &[]);
    status.assert_ok();
    assert!(
        status.stdout.contains("Interrupted copy"),
        "{}",
        status.stdout
    );
    let mut resume = args.clone();
    resume.push("--resume");
    db.copy(&resume).assert_ok();
    assert_three_equal(&db);
}
