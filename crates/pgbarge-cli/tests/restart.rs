//! The target server restarts mid-run (a cloud failover, a maintenance window): the same
//! command waits for it, retries what was in flight, and finishes by itself. In its own
//! test binary, so the restart does not disturb other tests' servers.

mod support;

use std::time::{Duration, Instant};

use support::{servers, TestDb};

#[test]
fn a_target_restart_mid_run_is_waited_out_and_the_copy_finishes() {
    let db = TestDb::new("restart");
    db.source_sql(
        "CREATE TABLE big (id bigint PRIMARY KEY, pad text);
         INSERT INTO big SELECT g, repeat(md5(g::text), 5) FROM generate_series(1, 400000) g;
         CREATE TABLE small (id int PRIMARY KEY);
         INSERT INTO small SELECT generate_series(1, 1000);
         ANALYZE;",
    );
    let child = db.spawn_copy(
        &db.target_conn(),
        &[
            "big",
            "small",
            "--jobs",
            "2",
            "--split-above",
            "4MB",
            "--part-size",
            "4MB",
        ],
    );
    // Once rows are streaming into the target, restart it.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let copying = db.target_sql(&format!(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = '{}' \
             AND application_name = 'pgbarge' AND query LIKE 'COPY %FROM STDIN%'",
            db.name
        ));
        if copying.trim() != "0" {
            break;
        }
        assert!(Instant::now() < deadline, "never saw pgbarge's COPY");
        std::thread::sleep(Duration::from_millis(10));
    }
    servers().target.restart();
    let out = child.wait_with_output().expect("pgbarge finishes");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("retry   "), "{stderr}");
    db.assert_same("big");
    db.assert_same("small");
    assert_eq!(
        db.target_sql(r"SELECT count(*) FROM pg_class WHERE relname LIKE '\_pgbarge\_%'")
            .trim(),
        "0"
    );
}
