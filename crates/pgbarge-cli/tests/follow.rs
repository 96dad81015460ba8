//! `copy --follow`, `follow`, `cutover`, `status`: the source's changes carried to the
//! target after the copy, exactly once across SIGKILLs, columns added and dropped on the
//! way, and a cut-over that leaves the target equal — sequences included — with the
//! slot gone.

mod support;

use std::process::{Child, Stdio};
use std::time::Duration;

use support::proxy::{Fault, FaultProxy};
use support::{servers, wait_following, wait_until, Finished, TestDb};

/// Accounts with TOASTed notes the writer never changes and a generated column, a history
/// with a serial key and a foreign key, a keyless multiset (replica identity full), and a
/// partitioned table, and a table whose replica identity is a unique index.
const TABLES: &str = "
CREATE TABLE acc (id int PRIMARY KEY, bal int NOT NULL, note text,
  doubled int GENERATED ALWAYS AS (bal * 2) STORED);
ALTER TABLE acc ALTER COLUMN note SET STORAGE EXTERNAL;
INSERT INTO acc SELECT g, 0, repeat(md5(g::text), 400) FROM generate_series(1, 500) g;
CREATE TABLE hist (id bigserial PRIMARY KEY, acc int NOT NULL REFERENCES acc, delta int,
  at timestamptz DEFAULT now());
CREATE TABLE bag (a int, b text);
ALTER TABLE bag REPLICA IDENTITY FULL;
INSERT INTO bag SELECT g % 50, 'b' || (g % 3) FROM generate_series(1, 300) g;
CREATE TABLE parted (id int, day date, v text, PRIMARY KEY (id, day)) PARTITION BY RANGE (day);
CREATE TABLE parted_a PARTITION OF parted FOR VALUES FROM ('2020-01-01') TO ('2021-01-01');
CREATE TABLE parted_b PARTITION OF parted FOR VALUES FROM ('2021-01-01') TO ('2022-01-01');
INSERT INTO parted SELECT g, '2020-01-01'::date + (g % 700), 'p' || g FROM generate_series(1, 2000) g;
CREATE TABLE coded (code text NOT NULL, n int);
CREATE UNIQUE INDEX coded_code ON coded (code);
ALTER TABLE coded REPLICA IDENTITY USING INDEX coded_code;
INSERT INTO coded SELECT 'c' || g, g FROM generate_series(1, 100) g;
";

const NAMES: [&str; 5] = ["acc", "hist", "bag", "parted", "coded"];

/// A writer committing `n` transactions of inserts, updates (the TOASTed note left
/// alone, or rewritten now and then) and deletes across every table.
fn writer(n: usize) -> String {
    format!(
        "DO $$ DECLARE k int; BEGIN
           FOR i IN 1..{n} LOOP
             k := 1 + (i * 7919) % 500;
             UPDATE acc SET bal = bal + i % 13 - 6 WHERE id = k;
             INSERT INTO hist (acc, delta) VALUES (k, i % 13 - 6);
             DELETE FROM hist WHERE id = (SELECT min(id) FROM hist WHERE acc = k) AND i % 3 = 0;
             INSERT INTO bag VALUES (k % 50, 'w' || (i % 4));
             DELETE FROM bag WHERE ctid = (SELECT ctid FROM bag WHERE a = (i * 31) % 50 LIMIT 1);
             UPDATE parted SET v = 'moved' || i, day = CASE WHEN day < '2021-01-01' THEN day + 365
               ELSE day - 365 END WHERE id = 1 + (i * 13) % 2000;
             UPDATE coded SET n = n + 1 WHERE code = 'c' || (1 + i % 100);
             IF i % 50 = 0 THEN UPDATE acc SET note = 'short ' || i WHERE id = k; END IF;
             COMMIT;
           END LOOP; END $$"
    )
}

/// Cuts over and checks: the follower (if running) ends, every table is equal, the
/// target's sequence is past the source's, the slot and publication are gone.
fn cut_over_and_check(db: &TestDb, follower: Option<Child>, extra: &[&str]) -> String {
    let run = db.run("cutover", extra);
    run.assert_ok();
    assert!(run.stdout.contains("Target ready"), "{}", run.stdout);
    if let Some(mut child) = follower {
        let status = child.wait().expect("the follower ends");
        assert!(
            status.success(),
            "follower: {}",
            child.wait_with_output_now()
        );
    }
    for table in NAMES {
        db.assert_same(&format!("public.{table}"));
    }
    let source_seq = db.source_sql("SELECT last_value FROM hist_id_seq");
    let target_seq = db.target_sql("SELECT last_value FROM hist_id_seq");
    assert!(
        target_seq.trim().parse::<i64>().unwrap() >= source_seq.trim().parse::<i64>().unwrap(),
        "the target's sequence ({target_seq}) is behind the source's ({source_seq})"
    );
    assert_eq!(
        db.source_sql(
            "SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE 'pgbarge%' \
             AND database = current_database()"
        )
        .trim(),
        "0",
        "the slot is dropped"
    );
    assert_eq!(
        db.source_sql("SELECT count(*) FROM pg_publication").trim(),
        "0"
    );
    run.stdout
}

#[test]
fn copy_follow_under_writes_then_cutover_is_exact() {
    let db = TestDb::new("follow_writes");
    db.source_sql(TABLES);
    let s = servers();
    let mut writer = s.source.spawn_psql(&db.name, &writer(4000));
    let follower = db.spawn_copy(
        &db.target_conn(),
        &["--all", "--follow", "--jobs", "3", "--quiet"],
    );
    let mut follower = follower;
    wait_following(&db, &mut follower);
    // Status while following: the slot, the lag, the WAL held.
    let status = db.run("status", &[]);
    status.assert_ok();
    assert!(
        status.stdout.contains("through slot pgbarge_"),
        "{}",
        status.stdout
    );
    assert!(status.stdout.contains("of WAL"), "{}", status.stdout);
    assert!(
        status.stdout.contains("a follower is running"),
        "{}",
        status.stdout
    );
    assert!(writer.wait().unwrap().success());
    let out = cut_over_and_check(&db, Some(follower), &["--fence"]);
    // The fence is reported, with the way back.
    assert!(out.contains("default_transaction_read_only"), "{out}");
    let downtime: f64 = out
        .split("Downtime ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("downtime reported");
    assert!(downtime < 10.0, "downtime {downtime} s");
    // The way back, as printed, works in the fenced database itself.
    let unfence = out
        .lines()
        .find_map(|l| l.split("run on it: ").nth(1))
        .expect("the unfence statement is printed");
    db.source_sql(unfence);
    db.source_sql("CREATE TABLE writable_again ()");
    // Nothing is left behind on the target either.
    assert_eq!(
        db.target_sql("SELECT count(*) FROM pg_namespace WHERE nspname = 'pgbarge'")
            .trim(),
        "0"
    );
}

#[test]
fn sigkill_while_following_three_times_loses_and_repeats_nothing() {
    let db = TestDb::new("follow_kill");
    db.source_sql(TABLES);
    let s = servers();
    let mut follower = db.spawn_copy(&db.target_conn(), &["--all", "--follow", "--quiet"]);
    wait_following(&db, &mut follower);
    let mut writer = s.source.spawn_psql(&db.name, &writer(6000));
    // Kill at moments spread over the writer's run, each after some changes applied.
    for pause_ms in [900u64, 1700, 1300] {
        std::thread::sleep(Duration::from_millis(pause_ms));
        follower.kill().expect("SIGKILL the follower");
        let _ = follower.wait();
        follower = db.spawn("follow", &db.target_conn(), &["--quiet"]);
    }
    assert!(writer.wait().unwrap().success());
    let applied = db.target_sql("SELECT changes FROM pgbarge.follow");
    assert!(
        applied.trim().parse::<i64>().unwrap() > 0,
        "changes were applied before the cut-over"
    );
    cut_over_and_check(&db, Some(follower), &[]);
}

#[test]
fn columns_added_and_dropped_on_the_source_follow_along() {
    let db = TestDb::new("follow_ddl");
    db.source_sql(TABLES);
    let mut follower = db.spawn_copy(&db.target_conn(), &["--all", "--follow", "--quiet"]);
    wait_following(&db, &mut follower);
    for sql in [
        "ALTER TABLE acc ADD COLUMN tier text DEFAULT 'basic'",
        "UPDATE acc SET tier = 'gold', bal = bal + 1 WHERE id % 10 = 0",
        "INSERT INTO acc (id, bal, tier) VALUES (1000, 5, 'new')",
        "ALTER TABLE bag DROP COLUMN b",
        "INSERT INTO bag VALUES (99)",
        // Added, then given a default: the rows already there stay NULL.
        "ALTER TABLE hist ADD COLUMN memo text",
        "ALTER TABLE hist ALTER COLUMN memo SET DEFAULT 'later'",
        "INSERT INTO hist (acc, delta) VALUES (1, 1)",
    ] {
        db.source_sql(sql);
    }
    cut_over_and_check(&db, Some(follower), &[]);
    assert_eq!(
        db.target_sql("SELECT tier FROM acc WHERE id = 1000").trim(),
        "new"
    );
    assert_eq!(
        db.target_sql(
            "SELECT count(*) FROM pg_attribute WHERE attrelid = 'bag'::regclass \
             AND attname = 'b' AND NOT attisdropped"
        )
        .trim(),
        "0"
    );
}

#[test]
fn a_type_change_stops_following_cleanly_and_names_the_table() {
    let db = TestDb::new("follow_retype");
    db.source_sql(TABLES);
    let mut follower = db.spawn_copy(&db.target_conn(), &["--all", "--follow", "--quiet"]);
    wait_following(&db, &mut follower);
    db.source_sql("INSERT INTO hist (acc, delta) VALUES (1, 2000)");
    db.source_sql("ALTER TABLE hist ALTER COLUMN delta TYPE bigint");
    db.source_sql("INSERT INTO hist (acc, delta) VALUES (1, 2001)");
    let status = follower.wait().unwrap();
    let out = follower.wait_with_output_now();
    assert_eq!(status.code(), Some(5), "{out}");
    assert!(
        out.contains("public.hist") && out.contains("changed type"),
        "{out}"
    );
    // Everything before the change is on the target, nothing after it.
    assert_eq!(
        db.target_sql("SELECT count(*) FROM hist WHERE delta >= 2000")
            .trim(),
        "1"
    );
    // Made the same on the target, following goes on.
    db.target_sql_as_app("ALTER TABLE hist ALTER COLUMN delta TYPE bigint");
    let follower = db.spawn("follow", &db.target_conn(), &["--quiet"]);
    wait_until("the change after it arrives", || {
        db.target_sql("SELECT count(*) FROM hist WHERE delta = 2001")
            .trim()
            == "1"
    });
    cut_over_and_check(&db, Some(follower), &[]);
}

#[test]
fn a_table_without_a_key_is_refused_with_the_fix() {
    let db = TestDb::new("follow_nokey");
    db.source_sql(
        "CREATE TABLE loose (a int, b text); CREATE TABLE keyed (id int PRIMARY KEY);
         CREATE TABLE uniq (code text NOT NULL, n int); CREATE UNIQUE INDEX uniq_code ON uniq (code);",
    );
    let run = db.copy(&["--all", "--follow"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr
            .contains(r#"ALTER TABLE "public"."loose" REPLICA IDENTITY FULL;"#),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains(r#"ALTER TABLE "public"."uniq" REPLICA IDENTITY USING INDEX "uniq_code";"#),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("public.keyed:"), "{}", run.stderr);
    // Nothing was created: no slot, no table on the target.
    assert!(!db.target_has_table("public", "keyed"));
    assert_eq!(
        db.source_sql(
            "SELECT count(*) FROM pg_replication_slots WHERE database = current_database()"
        )
        .trim(),
        "0"
    );
}

#[test]
fn follow_drop_frees_the_slot_and_status_says_so() {
    let db = TestDb::new("follow_drop");
    db.source_sql(TABLES);
    let mut follower = db.spawn_copy(&db.target_conn(), &["--all", "--follow", "--quiet"]);
    wait_following(&db, &mut follower);
    follower.kill().unwrap();
    let _ = follower.wait();
    let status = db.run("status", &["--json"]);
    status.assert_ok();
    let doc: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    assert!(
        doc["status"]["slot"]["wal_held"].as_i64().is_some(),
        "{doc}"
    );
    let dropped = db.run("follow", &["--drop"]);
    dropped.assert_ok();
    assert!(
        dropped.stdout.contains("dropped the follow"),
        "{}",
        dropped.stdout
    );
    assert_eq!(
        db.source_sql(
            "SELECT count(*) FROM pg_replication_slots WHERE database = current_database()"
        )
        .trim(),
        "0"
    );
    let again = db.run("cutover", &[]);
    assert_eq!(again.code, 2, "{}", again.stderr);
    assert!(
        again.stderr.contains("nothing is being followed"),
        "{}",
        again.stderr
    );
}

#[test]
fn a_reset_or_dead_link_while_following_reconnects_and_loses_nothing() {
    let db = TestDb::new("follow_faults");
    db.source_sql(TABLES);
    let mut copier = db.spawn_copy(&db.target_conn(), &["--all", "--follow", "--quiet"]);
    wait_following(&db, &mut copier);
    copier.kill().unwrap();
    let _ = copier.wait();
    // The follower's target connection goes through a proxy that resets one connection,
    // then black-holes the next, each after some changes were applied.
    let proxy = FaultProxy::start(servers().target.port);
    proxy.arm(Fault::Reset, 150 << 10);
    proxy.arm(Fault::BlackHole, 100 << 10);
    let mut writer = servers().source.spawn_psql(&db.name, &writer(5000));
    let follower = db.spawn(
        "follow",
        &db.target_conn_via(proxy.port),
        &["--stall-timeout", "3s"],
    );
    assert!(writer.wait().unwrap().success());
    wait_until("both faults fire", || proxy.fired() >= 2);
    // The writer is done; cut over once the follower has caught up past both faults.
    cut_over_and_check(&db, Some(follower), &[]);
}

/// `hist`'s state as one word: its rows, the sum of their `delta`, and how many are
/// negative.
const HIST_STATE: &str = "SELECT count(*) || '/' || coalesce(sum(delta), 0) || '/' \
    || count(*) FILTER (WHERE delta < 0) FROM hist";

/// A reader on the target sampling `hist` over and over, each sample a new snapshot,
/// until its state is no longer `before` (or, should nothing ever change, for at most
/// five minutes): each state seen, in order, with its samples and how many of them
/// were taken while another session held `hist` open for writing (the follower's
/// transaction under way).
fn hist_sampler(before: &str) -> String {
    format!(
        "CREATE TEMP TABLE samples (n int GENERATED ALWAYS AS IDENTITY, state text, writing bool);
         DO $$ /* hist sampler */ DECLARE s text; w bool; BEGIN
           LOOP
             SELECT EXISTS (SELECT FROM pg_catalog.pg_locks WHERE relation = 'public.hist'::regclass
                              AND mode = 'RowExclusiveLock' AND granted AND pid <> pg_backend_pid()),
                    ({HIST_STATE})
               INTO w, s;
             INSERT INTO samples (state, writing) VALUES (s, w);
             EXIT WHEN s <> '{before}' OR clock_timestamp() > statement_timestamp() + interval '5 min';
           END LOOP;
         END $$;
         SELECT state, count(*), count(*) FILTER (WHERE writing) FROM samples
           GROUP BY state ORDER BY min(n)"
    )
}

/// The `name=N` field of a log line.
fn log_field(line: &str, name: &str) -> usize {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(name)?.strip_prefix('='))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name}= in {line:?}"))
}

#[test]
fn a_large_source_transaction_is_applied_whole_in_bounded_windows() {
    let db = TestDb::new("follow_large");
    db.source_sql(TABLES);
    // The follower logs each window it writes, with its rows and the bound (debug).
    let mut follower = support::clean_command(support::pgbarge_bin())
        .args(["copy", "--source", &db.source_conn(), "--target"])
        .arg(db.target_conn())
        .args(["--all", "--follow", "--quiet"])
        .env("PGBARGE_LOG", "warn,pgbarge::follow::window=debug")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn pgbarge");
    wait_following(&db, &mut follower);
    let before = db.target_sql(HIST_STATE).trim().to_string();
    // A reader on the target samples the table from before the transaction commits on
    // the source until the follower's commit shows.
    let reader = {
        let (name, sql) = (db.name.clone(), hist_sampler(&before));
        std::thread::spawn(move || servers().target.psql(&name, &sql))
    };
    wait_until("the reader samples the target", || {
        db.target_sql(
            "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%hist sampler%' \
             AND pid <> pg_backend_pid()",
        )
        .trim()
            == "1"
    });
    // More rows than one window holds, in one transaction.
    db.source_sql(
        "BEGIN;
         INSERT INTO hist (acc, delta) SELECT 1 + g % 500, g FROM generate_series(1, 70000) g;
         UPDATE hist SET delta = -delta WHERE id % 2 = 0;
         DELETE FROM hist WHERE id % 7 = 0;
         COMMIT;",
    );
    let after = db.source_sql(HIST_STATE).trim().to_string();
    assert_ne!(before, after);

    // Whole: the target went from the state before to the state after, with no other
    // in between, and the reader looked while the follower was writing.
    let samples = reader.join().expect("the reader ends");
    let seen: Vec<(&str, usize, usize)> = samples
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('|').collect();
            (f[0], f[1].parse().unwrap(), f[2].parse().unwrap())
        })
        .collect();
    let states: Vec<&str> = seen.iter().map(|s| s.0).collect();
    assert_eq!(
        states,
        [before.as_str(), after.as_str()],
        "the target was seen only before and after the transaction (samples: {samples})"
    );
    assert!(
        seen.iter()
            .any(|&(state, _, writing)| state == before && writing > 0),
        "the reader sampled while the follower was writing the transaction (samples: {samples})"
    );

    // Bounded: the transaction was written in several windows, none past the bound.
    let log = {
        let mut stderr = follower.stderr.take().expect("stderr is piped");
        follower.kill().unwrap();
        let _ = follower.wait();
        let mut text = String::new();
        std::io::Read::read_to_string(&mut stderr, &mut text).unwrap();
        text
    };
    let windows: Vec<(usize, usize)> = log
        .lines()
        .filter(|l| l.contains("window flushed"))
        .map(|l| (log_field(l, "rows"), log_field(l, "limit")))
        .collect();
    assert!(windows.len() > 1, "several windows:\n{log}");
    assert!(
        windows.iter().all(|&(rows, limit)| rows <= limit),
        "no window past its bound: {windows:?}"
    );
    assert!(
        windows.iter().any(|&(rows, limit)| rows == limit),
        "the bound cut the transaction: {windows:?}"
    );

    // A change while no follower runs: the cut-over carries on from the target's record
    // itself.
    db.source_sql("UPDATE hist SET delta = 0 WHERE id = 1");
    cut_over_and_check(&db, None, &[]);
}

#[test]
fn a_copy_interrupted_before_it_follows_keeps_its_slot_for_the_resume() {
    let db = TestDb::new("follow_interrupted");
    db.source_sql(
        "CREATE TABLE t (id int PRIMARY KEY, v text);
         INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 1000) g;",
    );
    db.target_sql_as_app("CREATE TABLE t (id int PRIMARY KEY, v text)");
    // Another session holds the target table (reads pass, TRUNCATE waits): the copy
    // waits for it in its unit, after the slot was created.
    let mut locker = servers().target.spawn_psql(
        &db.name,
        "BEGIN; LOCK TABLE t IN SHARE MODE; SELECT pg_sleep(120)",
    );
    let mut copier = db.spawn_copy(
        &db.target_conn(),
        &["t", "--follow", "--mode", "truncate", "--quiet"],
    );
    wait_until("the copy waits for the lock", || {
        db.target_sql(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
             AND application_name = 'pgbarge' AND wait_event_type = 'Lock'",
        )
        .trim()
            != "0"
    });
    let signal = std::process::Command::new("kill")
        .args(["-INT", &copier.id().to_string()])
        .status()
        .expect("run kill");
    assert!(signal.success());
    let status = copier.wait().unwrap();
    let out = copier.wait_with_output_now();
    assert_eq!(status.code(), Some(130), "{out}");
    // The run is recorded, so the slot is kept for `copy --follow --resume`.
    assert!(out.contains("copy --follow --resume"), "{out}");
    assert_eq!(
        db.source_sql(
            "SELECT count(*) FROM pg_replication_slots WHERE database = current_database()"
        )
        .trim(),
        "1"
    );
    // `follow` alone cannot start: the copy is not finished, and it says how to go on.
    let early = db.run("follow", &[]);
    assert!(
        early.stderr.contains("copy --follow --resume"),
        "{}",
        early.stderr
    );
    // The locker's server session outlives its psql: end it.
    db.end_lockers();
    let _ = locker.kill();
    let _ = locker.wait();
    // Changes made while nothing ran arrive too.
    db.source_sql("UPDATE t SET v = 'between' WHERE id <= 10; DELETE FROM t WHERE id = 11");
    let mut follower = db.spawn_copy(&db.target_conn(), &["--follow", "--resume", "--quiet"]);
    wait_following(&db, &mut follower);
    db.source_sql("INSERT INTO t VALUES (5000, 'after')");
    let run = db.run("cutover", &[]);
    run.assert_ok();
    assert!(follower.wait().unwrap().success());
    db.assert_same("public.t");
    assert_eq!(
        db.target_sql("SELECT v FROM t WHERE id = 5000").trim(),
        "after"
    );
}

#[test]
fn a_followed_copy_killed_mid_copy_resumes_then_follows_exactly() {
    let db = TestDb::new("follow_resume_copy");
    db.source_sql(TABLES);
    // A table split into parts, to be killed between them.
    db.source_sql(
        "CREATE TABLE big (id bigint PRIMARY KEY, pad text);
         INSERT INTO big SELECT g, repeat(md5(g::text), 5) FROM generate_series(1, 150000) g;
         ANALYZE",
    );
    let s = servers();
    let mut writer = s.source.spawn_psql(&db.name, &writer(3000));
    let args = [
        "--all",
        "--follow",
        "--jobs",
        "2",
        "--split-above",
        "8MB",
        "--part-size",
        "2MB",
        "--quiet",
    ];
    // big's finish is held back, so big is surely unfinished when the copy is killed.
    let mut locker = db.hold_finish_of("big", "true");
    let mut copier = db.spawn_copy(&db.target_conn(), &args);
    // Units committed whose id starts with `kind` (none while there is no ledger yet).
    let done = |kind: &str| {
        let out = s.target.psql_output(
            &db.name,
            &format!("SELECT count(*) FROM pgbarge.unit WHERE unit LIKE '{kind} %'"),
            &[],
        );
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse::<usize>()
            .unwrap_or(0)
    };
    wait_until("a table and two parts of big are committed", || {
        assert!(
            copier.try_wait().expect("poll pgbarge").is_none(),
            "the copy ended before it was killed: {}",
            copier.wait_with_output_now()
        );
        done("part") >= 2 && done("table") >= 1
    });
    copier.kill().expect("SIGKILL");
    let _ = copier.wait();
    db.end_lockers();
    let _ = locker.kill();
    let _ = locker.wait();
    // What the resume has to deal with: tables complete from the first snapshot, and
    // big with some parts committed, not finished.
    assert_ne!(
        db.target_sql("SELECT count(*) FROM pgbarge.unit WHERE unit LIKE 'table %'")
            .trim(),
        "0"
    );
    assert_eq!(
        db.target_sql("SELECT count(*) FROM pgbarge.unit WHERE unit = 'finish public.big'")
            .trim(),
        "0"
    );
    // Rows of big change between the two runs, in parts already copied and not.
    db.source_sql("UPDATE big SET pad = 'changed' WHERE id % 1000 = 0");
    // The slot is kept for the resume; the follow waits for its copy.
    let status = db.run("status", &[]);
    status.assert_ok();
    assert!(
        status
            .stdout
            .contains("`pgbarge copy --follow --resume …` goes on"),
        "{}",
        status.stdout
    );
    // The same command, resumed.
    let mut resume = args.to_vec();
    resume[0] = "--resume";
    // The resume is killed too, once it completed a table of its own: the next one
    // keeps each table's snapshot (the first run's, or this one's).
    let killed_at = db.target_sql("SELECT max(committed_at) FROM pgbarge.unit");
    let completed_since = || {
        db.target_sql(&format!(
            "SELECT count(*) FROM pgbarge.unit WHERE committed_at > '{}' \
             AND (unit LIKE 'table %' OR unit LIKE 'finish %')",
            killed_at.trim()
        ))
        .trim()
        .parse::<usize>()
        .unwrap_or(0)
    };
    // Once the resume has loaded a part of big again, big's finish is held back as
    // before (a table of its own completes meanwhile).
    let mut locker = db.hold_finish_of(
        "big",
        &format!(
            "EXISTS (SELECT FROM pgbarge.unit WHERE unit LIKE 'part %' \
             AND committed_at > '{}')",
            killed_at.trim()
        ),
    );
    let mut resumed = db.spawn_copy(&db.target_conn(), &resume);
    // (A resume quick enough to finish first, its units cleared with the run, is
    // killed while it follows instead: the next command then just follows.)
    let following = || {
        db.target_sql("SELECT count(*) FROM pgbarge.follow WHERE snapshot IS NOT NULL")
            .trim()
            == "1"
    };
    wait_until("the resume completes a table", || {
        assert!(
            resumed.try_wait().expect("poll pgbarge").is_none(),
            "the resume ended: {}",
            resumed.wait_with_output_now()
        );
        completed_since() >= 1 || following()
    });
    resumed.kill().expect("SIGKILL");
    let _ = resumed.wait();
    db.end_lockers();
    let _ = locker.kill();
    let _ = locker.wait();
    db.source_sql("UPDATE big SET pad = 'between again' WHERE id % 1001 = 0");
    let mut follower = db.spawn_copy(&db.target_conn(), &resume);
    wait_following(&db, &mut follower);
    assert!(writer.wait().unwrap().success());
    db.source_sql(
        "UPDATE big SET pad = 'again' WHERE id % 999 = 0; DELETE FROM big WHERE id % 777 = 0",
    );
    cut_over_and_check(&db, Some(follower), &[]);
    db.assert_same("public.big");
    assert_eq!(
        db.target_sql(r"SELECT count(*) FROM pg_class WHERE relname LIKE '\_pgbarge\_%'")
            .trim(),
        "0",
        "no staging table is left"
    );
}

#[test]
fn a_key_deleted_and_inserted_again_under_another_text_survives() {
    let db = TestDb::new("follow_numeric_key");
    // numeric keeps its scale: 1.0 and 1.00 are one key, written two ways.
    db.source_sql(
        "CREATE TABLE n (id numeric PRIMARY KEY, v text);
         INSERT INTO n SELECT g, 'v' || g FROM generate_series(1, 100) g;
         UPDATE n SET id = 1.0 WHERE id = 1;",
    );
    let mut follower = db.spawn_copy(&db.target_conn(), &["n", "--follow", "--quiet"]);
    wait_following(&db, &mut follower);
    db.source_sql(
        "BEGIN;
         DELETE FROM n WHERE id = 1.0;
         INSERT INTO n VALUES (1.00, 'again');
         UPDATE n SET v = 'changed' WHERE id = 2;
         COMMIT;",
    );
    let run = db.run("cutover", &[]);
    run.assert_ok();
    assert!(follower.wait().unwrap().success());
    db.assert_same("public.n");
    assert_eq!(
        db.target_sql("SELECT id::text || ' ' || v FROM n WHERE id = 1")
            .trim(),
        "1.00 again"
    );
}
