//! The parallel engine keeps the guarantees of one stream: one snapshot of the source for
//! every table and every part, and no table ever visible half-loaded on the target.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::{servers, TestDb};

/// The plan pgbarge would run with `args`, as JSON.
fn plan(db: &TestDb, args: &[&str]) -> serde_json::Value {
    let mut full = args.to_vec();
    full.extend(["--dry-run", "--json"]);
    let run = db.copy(&full);
    run.assert_ok();
    serde_json::from_str(&run.stdout).expect("JSON plan")
}

fn scalar(db: &TestDb, sql: &str) -> i64 {
    db.target_sql(sql).trim().parse().expect("a number")
}

#[test]
fn split_copy_of_a_source_being_written_equals_one_snapshot() {
    let db = TestDb::new("snapshot");
    db.source_sql(
        "CREATE TABLE a (n int PRIMARY KEY, pad text);
         CREATE TABLE b (n int PRIMARY KEY);
         CREATE TABLE c (id int PRIMARY KEY, v int);
         INSERT INTO a SELECT -g, repeat('p', 100) FROM generate_series(1, 150000) g;
         INSERT INTO c VALUES (1, 0);
         ANALYZE;",
    );
    let args = [
        "a",
        "b",
        "c",
        "--jobs",
        "3",
        "--split-above",
        "1MB",
        "--yes",
        "--quiet",
    ];
    let p = plan(&db, &args);
    assert!(
        p["tables"][0]["parts"].as_u64().unwrap_or(0) >= 3,
        "a is split: {p}"
    );
    assert_eq!(p["jobs"], 3);

    // A writer commits, in one transaction each: row n into a and b, and c.v = n.
    let mut writer = servers().source.spawn_psql(
        &db.name,
        "DO $$ BEGIN FOR n IN 1..1000000 LOOP \
           INSERT INTO a VALUES (n, 'w'); INSERT INTO b VALUES (n); \
           UPDATE c SET v = n WHERE id = 1; COMMIT; END LOOP; END $$",
    );
    let written = |db: &TestDb| -> i64 {
        db.source_sql("SELECT coalesce(max(n), 0) FROM b")
            .trim()
            .parse()
            .expect("n")
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while written(&db) < 100 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let before = written(&db);
    let run = db.copy(&args);
    let after = written(&db);
    let _ = writer.kill();
    let _ = writer.wait();
    run.assert_ok();

    let k = scalar(&db, "SELECT v FROM c");
    assert!(
        before <= k && k < after,
        "snapshot taken while writing: {before} <= {k} < {after}"
    );
    // Every table and every part of a shows the same instant: rows 1..k, nothing later,
    // nothing missing, and all of the rows that were there before.
    assert_eq!(scalar(&db, "SELECT count(*) FROM b"), k);
    assert_eq!(scalar(&db, "SELECT coalesce(max(n), 0) FROM b"), k);
    assert_eq!(scalar(&db, "SELECT count(*) FROM a WHERE n > 0"), k);
    assert_eq!(scalar(&db, "SELECT coalesce(max(n), 0) FROM a"), k);
    assert_eq!(scalar(&db, "SELECT count(*) FROM a WHERE n < 0"), 150_000);
}

#[test]
fn a_split_table_is_never_seen_half_loaded() {
    let db = TestDb::new("visible");
    db.source_sql(
        "CREATE TABLE big (id bigint PRIMARY KEY, pad text);
         INSERT INTO big SELECT g, repeat(md5(g::text), 4) FROM generate_series(1, 400000) g;
         ANALYZE;",
    );
    let args = ["big", "--jobs", "3", "--split-above", "1MB", "--quiet"];
    let p = plan(&db, &args);
    assert!(
        p["tables"][0]["parts"].as_u64().unwrap_or(0) >= 3,
        "big is split: {p}"
    );

    // Another session polls the target the whole time.
    let stop = Arc::new(AtomicBool::new(false));
    let poller = {
        let stop = stop.clone();
        let target = &servers().target;
        let (dir, port, name) = (target.dir.clone(), target.port, db.name.clone());
        std::thread::spawn(move || {
            let mut client = postgres_client(&dir, port, &name);
            let (mut absent, mut seen) = (0u64, Vec::new());
            while !stop.load(Ordering::SeqCst) {
                match client.query_one("SELECT count(*) FROM public.big", &[]) {
                    Ok(row) => seen.push(row.get::<_, i64>(0)),
                    Err(_) => absent += 1,
                }
            }
            (absent, seen)
        })
    };
    let run = db.copy(&args);
    std::thread::sleep(Duration::from_millis(100));
    stop.store(true, Ordering::SeqCst);
    let (absent, seen) = poller.join().expect("poller");
    run.assert_ok();
    assert!(absent > 0, "the poller ran while the table was loading");
    assert!(!seen.is_empty(), "the poller saw the finished table");
    assert!(
        seen.iter().all(|&n| n == 400_000),
        "a reader saw a partial table: {:?}",
        seen.iter()
            .filter(|&&n| n != 400_000)
            .take(5)
            .collect::<Vec<_>>()
    );
    db.assert_same("big");
    // The staging table is gone, the key is there.
    assert_eq!(
        db.target_sql(r"SELECT count(*) FROM pg_class WHERE relname LIKE '\_pgbarge\_%'")
            .trim(),
        "0"
    );
    assert_eq!(
        db.target_sql(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'big'::regclass"
        )
        .trim(),
        "PRIMARY KEY (id)"
    );
}

/// A blocking client as the superuser over the target's Unix socket.
fn postgres_client(dir: &std::path::Path, port: u16, db: &str) -> SyncClient {
    SyncClient::connect(dir, port, db)
}

/// A minimal blocking wrapper over tokio-postgres for a polling thread.
struct SyncClient {
    rt: tokio::runtime::Runtime,
    client: tokio_postgres::Client,
}

impl SyncClient {
    fn connect(dir: &std::path::Path, port: u16, db: &str) -> SyncClient {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let client = rt.block_on(async {
            let (client, conn) = tokio_postgres::Config::new()
                .host_path(dir)
                .port(port)
                .user("postgres")
                .dbname(db)
                .connect(tokio_postgres::NoTls)
                .await
                .expect("connect to the target");
            tokio::spawn(conn);
            client
        });
        SyncClient { rt, client }
    }

    fn query_one(
        &mut self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<tokio_postgres::Row, tokio_postgres::Error> {
        self.rt.block_on(self.client.query_one(sql, params))
    }
}

#[test]
fn a_big_partitioned_table_loads_its_leaves_at_once_and_is_never_seen_half_loaded() {
    let db = TestDb::new("leaves");
    // Identity and generated columns, a collation, a leaf in its own column order with
    // its own default and options, a hash-partitioned level and a default partition.
    db.source_sql(
        "CREATE TABLE ev (id bigint GENERATED ALWAYS AS IDENTITY, at date NOT NULL,
                          kind text COLLATE \"C\" DEFAULT 'x', v int,
                          dbl int GENERATED ALWAYS AS (v * 2) STORED, CHECK (v >= 0),
                          PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
         CREATE INDEX ON ev (kind);
         CREATE TABLE ev_2020 PARTITION OF ev FOR VALUES FROM ('2020-01-01') TO ('2021-01-01');
         CREATE TABLE ev_2021 (v int, kind text COLLATE \"C\" DEFAULT 'y', at date NOT NULL,
                               id bigint NOT NULL, dbl int GENERATED ALWAYS AS (v * 2) STORED,
                               CONSTRAINT ev_v_check CHECK (v >= 0))
                WITH (fillfactor = 90);
         ALTER TABLE ev ATTACH PARTITION ev_2021 FOR VALUES FROM ('2021-01-01') TO ('2022-01-01');
         CREATE TABLE ev_2022 PARTITION OF ev FOR VALUES FROM ('2022-01-01') TO ('2023-01-01')
                PARTITION BY HASH (id);
         CREATE TABLE ev_2022_a PARTITION OF ev_2022 FOR VALUES WITH (MODULUS 2, REMAINDER 0);
         CREATE TABLE ev_2022_b PARTITION OF ev_2022 FOR VALUES WITH (MODULUS 2, REMAINDER 1);
         CREATE TABLE ev_rest PARTITION OF ev DEFAULT;
         INSERT INTO ev (at, kind, v)
           SELECT date '2020-01-01' + (g % 1400), 'k' || (g % 17), g % 1000
           FROM generate_series(1, 300000) g;
         ANALYZE;",
    );
    let args = [
        "ev",
        "--jobs",
        "3",
        "--split-above",
        "2MB",
        "--part-size",
        "1MB",
        "--yes",
        "--quiet",
    ];
    let p = plan(&db, &args);
    let loads = p["tables"][0]["parts"].as_u64().unwrap_or(0);
    assert!(loads >= 5, "each leaf, or each part of one, is a unit: {p}");

    // Killed once a few leaves are in: the table is not there at all, the leaves wait in
    // their staging tables.
    let mut child = db.spawn_copy(&db.target_conn(), &args);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = servers().target.psql_output(
            &db.name,
            "SELECT count(*) FROM pgbarge.unit WHERE unit LIKE 'part %' OR unit LIKE 'leaf %'",
            &[],
        );
        let done: u64 = String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or(0);
        if done >= 3 {
            break;
        }
        assert!(Instant::now() < deadline, "no leaf was loaded in time");
        assert!(
            child.try_wait().expect("poll pgbarge").is_none(),
            "the run ended before three loads committed"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().expect("SIGKILL pgbarge");
    child.wait().expect("the killed run");
    let finished = "SELECT CASE WHEN to_regclass('pgbarge.unit') IS NULL THEN 1 \
                    ELSE (SELECT count(*) FROM pgbarge.unit WHERE unit = 'finish public.ev') END";
    if scalar(&db, finished) == 0 {
        assert!(
            !db.target_has_table("public", "ev"),
            "a partitioned table is never seen half-loaded"
        );
    }

    let mut resume = args.to_vec();
    resume.extend(["--resume", "--verify"]);
    db.copy(&resume).assert_ok();
    assert_eq!(db.assert_same("ev"), 300_000);
    db.assert_same_schema();
    assert_eq!(
        scalar(
            &db,
            r"SELECT count(*) FROM pg_class WHERE relname LIKE '\_pgbarge\_%'"
        ),
        0,
        "no staging table is left"
    );
    // The leaves are partitions again, with the defaults and identity of the source.
    db.target_sql_as_app(
        "INSERT INTO ev_2021 (id, at, v) VALUES (0, '2021-06-01', 4);
         INSERT INTO ev (at, v) VALUES ('2020-06-01', 5);",
    );
    assert_eq!(
        db.target_sql("SELECT kind || dbl FROM ev_2021 WHERE at = '2021-06-01' AND v = 4")
            .trim(),
        "y8"
    );
}
