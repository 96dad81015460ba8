//! The parallel engine keeps the guarantees of one stream: one snapshot of the source for
//! every table and every part, and no table ever visible half-loaded on the target.

mod support;

use std::process::{Command, Stdio};
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
    let source = &servers().source;
    let mut writer = Command::new("psql")
        .args(["-X", "-q", "-h"])
        .arg(&source.dir)
        .args([
            "-p",
            &source.port.to_string(),
            "-U",
            "postgres",
            "-d",
            &db.name,
            "-c",
        ])
        .arg(
            "DO $$ BEGIN FOR n IN 1..1000000 LOOP \
               INSERT INTO a VALUES (n, 'w'); INSERT INTO b VALUES (n); \
               UPDATE c SET v = n WHERE id = 1; COMMIT; END LOOP; END $$",
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the writer");
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
