//! The shared test harness: two real PostgreSQL clusters per test binary — a plain source
//! and a cloud-like target (TLS only, scram-sha-256, non-superuser role `app`) — started
//! with the project's own `scripts/pg-cluster`, and a fresh database pair per test.
//!
//! Admin work (creating databases, loading fixtures, reading data back to compare) goes
//! through `psql` as the superuser over the Unix socket; pgbarge itself connects like a user
//! would, over TCP + TLS to the target.

#![allow(dead_code)]

pub mod proxy;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

/// The role the target hands out, as a cloud provider would: not a superuser.
pub const TARGET_USER: &str = "app";
pub const TARGET_PASSWORD: &str = "app-secret";

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crate lives two levels below the repository root")
        .to_path_buf()
}

/// A running cluster started by `scripts/pg-cluster`.
pub struct Cluster {
    pub dir: PathBuf,
    pub port: u16,
}

impl Cluster {
    fn start(role: &str, cloud: bool) -> Cluster {
        Cluster::start_with(role, cloud, None)
    }

    /// Starts a cluster with the server binaries in `bindir` (another PostgreSQL major),
    /// or the system's when `None`.
    pub fn start_with(role: &str, cloud: bool, bindir: Option<&Path>) -> Cluster {
        let port = free_port();
        let dir = PathBuf::from(format!("/tmp/pgbarge-test-{}-{role}", std::process::id()));
        let mut cmd = Command::new(repo_root().join("scripts/pg-cluster"));
        if let Some(bindir) = bindir {
            cmd.env("PG_BINDIR", bindir);
        }
        cmd.arg("start")
            .arg(&dir)
            .arg(port.to_string())
            .arg("--watch")
            .arg(std::process::id().to_string());
        if cloud {
            cmd.arg("--cloud");
        }
        let out = cmd.output().expect("run scripts/pg-cluster");
        assert!(
            out.status.success(),
            "starting the {role} cluster failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Cluster { dir, port }
    }

    /// Restarts the server (fast shutdown: sessions are ended, as in a cloud failover).
    pub fn restart(&self) {
        let out = Command::new(repo_root().join("scripts/pg-cluster"))
            .arg("restart")
            .arg(&self.dir)
            .output()
            .expect("run scripts/pg-cluster restart");
        assert!(
            out.status.success(),
            "restarting {} failed: {}",
            self.dir.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Runs SQL as the superuser over the Unix socket; panics with psql's error on failure.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let out = self.psql_output(db, sql, &[]);
        assert!(
            out.status.success(),
            "psql on {db} failed: {}\nSQL: {sql}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("psql prints UTF-8")
    }

    /// Runs SQL as the superuser in the background (a writer beside a run), its output
    /// discarded; wait for or kill the child.
    pub fn spawn_psql(&self, db: &str, sql: &str) -> std::process::Child {
        Command::new("psql")
            .args(["-X", "-q", "-h"])
            .arg(&self.dir)
            .arg("-p")
            .arg(self.port.to_string())
            .args(["-U", "postgres", "-d", db, "-c", sql])
            .env_remove("PGPASSWORD")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start psql")
    }

    pub fn psql_output(&self, db: &str, sql: &str, extra: &[&str]) -> Output {
        Command::new("psql")
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
            .arg("-h")
            .arg(&self.dir)
            .arg("-p")
            .arg(self.port.to_string())
            .args(["-U", "postgres", "-d", db])
            .args(extra)
            .arg("-c")
            .arg(sql)
            .env_remove("PGPASSWORD")
            .output()
            .expect("run psql")
    }

    /// Runs a SQL file as the superuser.
    /// `pg_dump --schema-only --no-owner --no-privileges` of `db`, as the superuser.
    pub fn dump_schema(&self, db: &str) -> String {
        let out = Command::new("pg_dump")
            .args(["--schema-only", "--no-owner", "--no-privileges"])
            .arg("-h")
            .arg(&self.dir)
            .arg("-p")
            .arg(self.port.to_string())
            .args(["-U", "postgres", db])
            .output()
            .expect("run pg_dump");
        assert!(
            out.status.success(),
            "pg_dump {db} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("pg_dump prints UTF-8")
    }

    pub fn psql_file(&self, db: &str, file: &Path) {
        let out = Command::new("psql")
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1"])
            .arg("-h")
            .arg(&self.dir)
            .arg("-p")
            .arg(self.port.to_string())
            .args(["-U", "postgres", "-d", db, "-f"])
            .arg(file)
            .stdout(Stdio::null())
            .output()
            .expect("run psql");
        assert!(
            out.status.success(),
            "loading {} failed: {}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A table's rows as sorted lines of `COPY … TO STDOUT` text: the comparison the tests
    /// use to prove data arrived unchanged (text output is each type's canonical form).
    pub fn table_text(&self, db: &str, table_sql: &str) -> Vec<String> {
        let out = self.psql(db, &format!("COPY (SELECT * FROM {table_sql}) TO STDOUT"));
        let mut lines: Vec<String> = out.lines().map(str::to_string).collect();
        lines.sort();
        lines
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free local port")
}

/// The two clusters of this test binary.
pub struct Servers {
    pub source: Cluster,
    pub target: Cluster,
}

pub fn servers() -> &'static Servers {
    static SERVERS: OnceLock<Servers> = OnceLock::new();
    SERVERS.get_or_init(|| Servers {
        source: Cluster::start("source", false),
        target: Cluster::start("target", true),
    })
}

/// A fresh database on each server for one test.
pub struct TestDb {
    pub name: String,
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

impl TestDb {
    /// Creates database `name_N` on both servers; on the target it is owned by `app`, as a
    /// cloud database is owned by the login role the provider gives you.
    pub fn new(name: &str) -> TestDb {
        Self::with_source_options(name, "")
    }

    /// A database pair whose source database is created with `options` (e.g.
    /// `ENCODING 'LATIN1' LOCALE 'C' TEMPLATE template0`).
    pub fn with_source_options(name: &str, options: &str) -> TestDb {
        let s = servers();
        let name = format!("{name}_{}", COUNTER.fetch_add(1, Ordering::SeqCst));
        s.source
            .psql("postgres", &format!("CREATE DATABASE \"{name}\" {options}"));
        s.target.psql(
            "postgres",
            &format!("CREATE DATABASE \"{name}\" OWNER {TARGET_USER}"),
        );
        TestDb { name }
    }

    pub fn source_sql(&self, sql: &str) -> String {
        servers().source.psql(&self.name, sql)
    }

    /// Runs SQL on the target as the superuser (for fixtures and checks).
    pub fn target_sql(&self, sql: &str) -> String {
        servers().target.psql(&self.name, sql)
    }

    /// A session holding a share lock on the staging table of the split table `table`
    /// from as soon as `after` (SQL, true or false) holds and the table exists: its parts
    /// load past the lock, its finish (the rename) waits, so the run surely stays
    /// unfinished. End it with [`TestDb::end_lockers`].
    pub fn hold_finish_of(&self, table: &str, after: &str) -> std::process::Child {
        servers().target.spawn_psql(
            &self.name,
            &format!(
                r"BEGIN;
                  DO $$ DECLARE r regclass; BEGIN
                    LOOP
                      IF {after} THEN
                        SELECT oid::regclass INTO r FROM pg_class
                         WHERE relname LIKE '\_pgbarge\_%{table}';
                      END IF;
                      EXIT WHEN r IS NOT NULL;
                      PERFORM pg_sleep(0.005);
                    END LOOP;
                    EXECUTE format('LOCK TABLE %s IN ACCESS SHARE MODE', r);
                  END $$;
                  SELECT pg_sleep(120);"
            ),
        )
    }

    /// Ends the sessions holding locks for a test (`… SELECT pg_sleep(120)`) on the
    /// target: a session outlives its killed psql.
    pub fn end_lockers(&self) {
        self.target_sql(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND query LIKE '%pg_sleep(120)%' \
               AND pid <> pg_backend_pid()",
        );
    }

    /// Runs SQL on the target as `app` (objects then belong to the non-superuser role).
    pub fn target_sql_as_app(&self, sql: &str) -> String {
        self.target_sql(&format!("SET ROLE {TARGET_USER}; {sql}"))
    }

    /// libpq key=value string for the source (superuser over the socket: "my laptop").
    pub fn source_conn(&self) -> String {
        let s = &servers().source;
        format!(
            "host={} port={} user=postgres dbname={}",
            s.dir.display(),
            s.port,
            self.name
        )
    }

    /// URL for the target: TLS with full verification against the test CA, password auth.
    pub fn target_conn(&self) -> String {
        self.target_conn_with(TARGET_USER, TARGET_PASSWORD)
    }

    pub fn target_conn_with(&self, user: &str, password: &str) -> String {
        let t = &servers().target;
        format!(
            "postgres://{user}:{password}@localhost:{}/{}?sslmode=verify-full&sslrootcert={}/ca.crt",
            t.port,
            self.name,
            t.dir.display()
        )
    }

    /// The target URL with another port (a proxy's in front of the target).
    pub fn target_conn_via(&self, port: u16) -> String {
        self.target_conn().replace(
            &format!("@localhost:{}/", servers().target.port),
            &format!("@localhost:{port}/"),
        )
    }

    /// `pgbarge copy` as a child process (stdout and stderr piped), to interrupt it.
    pub fn spawn_copy(&self, target: &str, args: &[&str]) -> std::process::Child {
        self.spawn("copy", target, args)
    }

    /// `pgbarge COMMAND --source … --target … ARGS` as a child process (stdout and
    /// stderr piped).
    pub fn spawn(&self, command: &str, target: &str, args: &[&str]) -> std::process::Child {
        clean_command(pgbarge_bin())
            .arg(command)
            .arg("--source")
            .arg(self.source_conn())
            .arg("--target")
            .arg(target)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn pgbarge")
    }

    /// `pgbarge COMMAND --source … --target … ARGS` to the target, waited for.
    pub fn run(&self, command: &str, args: &[&str]) -> Run {
        let mut full = vec![
            command.to_string(),
            "--source".into(),
            self.source_conn(),
            "--target".into(),
            self.target_conn(),
        ];
        full.extend(args.iter().map(|s| s.to_string()));
        pgbarge(&full)
    }

    /// Runs `pgbarge copy --source … --target … ARGS` without a terminal.
    pub fn copy(&self, args: &[&str]) -> Run {
        self.copy_to(&self.target_conn(), args)
    }

    /// Like [`TestDb::copy`], to another target connection string.
    pub fn copy_to(&self, target: &str, args: &[&str]) -> Run {
        let mut full = vec![
            "copy".to_string(),
            "--source".into(),
            self.source_conn(),
            "--target".into(),
            target.to_string(),
        ];
        full.extend(args.iter().map(|s| s.to_string()));
        pgbarge(&full)
    }

    /// Asserts that `table` has the same rows on both sides, and returns the row count.
    pub fn assert_same(&self, table_sql: &str) -> usize {
        let s = servers();
        let src = s.source.table_text(&self.name, table_sql);
        let tgt = s.target.table_text(&self.name, table_sql);
        assert_eq!(src.len(), tgt.len(), "{table_sql}: row counts differ");
        for (a, b) in src.iter().zip(&tgt) {
            assert_eq!(a, b, "{table_sql}: first differing row");
        }
        src.len()
    }

    /// Asserts that the normalised `pg_dump --schema-only` of both databases are the
    /// same statements.
    pub fn assert_same_schema(&self) {
        let s = servers();
        assert_same_schema(
            &s.source.dump_schema(&self.name),
            &s.target.dump_schema(&self.name),
        );
    }

    /// The source's tables in `schema`, quoted as SQL (`public."Audit Log"`), sorted.
    pub fn source_tables(&self, schema: &str) -> Vec<String> {
        self.source_sql(&format!(
            "SELECT format('%I.%I', schemaname, tablename) FROM pg_tables \
             WHERE schemaname = '{schema}' ORDER BY 1"
        ))
        .lines()
        .map(str::to_string)
        .collect()
    }

    /// Loads the Pagila sample (schema and data) into the source database, analysed.
    pub fn load_pagila(&self) {
        let dir = pagila_dir();
        let source = &servers().source;
        source.psql_file(&self.name, &dir.join("pagila-schema.sql"));
        source.psql_file(&self.name, &dir.join("pagila-data.sql"));
        self.source_sql("ANALYZE");
    }

    pub fn target_has_table(&self, schema: &str, name: &str) -> bool {
        self.target_sql(&format!(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = '{schema}' AND c.relname = '{name}'"
        ))
        .trim()
            == "1"
    }
}

/// The outcome of one pgbarge run.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn assert_ok(&self) -> &Self {
        assert_eq!(
            self.code, 0,
            "pgbarge failed:\n{}\n{}",
            self.stderr, self.stdout
        );
        self
    }
}

pub fn pgbarge_bin() -> &'static str {
    env!("CARGO_BIN_EXE_pgbarge")
}

/// Runs pgbarge with stdin not a terminal, in a clean environment (no PG* or PGBARGE_*
/// variables, an empty HOME so no ~/.pgpass or root.crt leaks in).
pub fn pgbarge<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Run {
    let out = clean_command(pgbarge_bin())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run pgbarge");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A command with the PG*/PGBARGE_* environment removed and HOME pointed at an empty dir.
pub fn clean_command(program: &str) -> Command {
    let mut cmd = Command::new(program);
    for (k, _) in std::env::vars() {
        if k.starts_with("PG") {
            cmd.env_remove(k);
        }
    }
    let home = std::env::temp_dir().join("pgbarge-test-home");
    let _ = std::fs::create_dir_all(&home);
    cmd.env("HOME", home);
    cmd
}

/// The Pagila sample database, which lives beside the clone (never copied into it).
pub fn pagila_dir() -> PathBuf {
    let dir = repo_root().join("../shared/datasets/pagila");
    assert!(
        dir.join("pagila-schema.sql").is_file() && dir.join("pagila-data.sql").is_file(),
        "the Pagila dataset is missing: expected {}/pagila-schema.sql and pagila-data.sql \
         (../shared/datasets/pagila beside the repository clone)",
        dir.display()
    );
    dir
}

/// Server binaries of PostgreSQL majors other than the system's, installed (once, then
/// reused) by `scripts/ensure-postgres-versions`: major → bin directory.
pub fn other_versions(majors: &[u32]) -> std::collections::BTreeMap<u32, PathBuf> {
    let out = Command::new(repo_root().join("scripts/ensure-postgres-versions"))
        .args(majors.iter().map(|m| m.to_string()))
        .output()
        .expect("run scripts/ensure-postgres-versions");
    assert!(
        out.status.success(),
        "installing PostgreSQL {majors:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let (major, dir) = l.split_once(' ')?;
            Some((major.parse().ok()?, PathBuf::from(dir)))
        })
        .collect()
}

/// A `pg_dump --schema-only` as a sorted list of statements, for comparing two databases
/// regardless of the order pg_dump happened to emit objects in. Left out: comment lines
/// (`-- Name: …; Owner: …` headers), blank lines, and psql meta-commands (`\restrict KEY`
/// carries a random key per dump).
pub fn normalised_dump(dump: &str) -> Vec<String> {
    let mut statements = Vec::new();
    let mut current = String::new();
    for line in dump.lines() {
        if line.starts_with("--") || line.starts_with('\\') || line.trim().is_empty() {
            continue;
        }
        current.push_str(line);
        current.push('\n');
        // Statements end at a line ending in `;`, except inside a function body.
        if line.ends_with(';')
            && current.matches("$_$").count() % 2 == 0
            && current.matches("$$").count() % 2 == 0
        {
            statements.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        statements.push(current);
    }
    statements.sort();
    statements
}

pub fn assert_same_schema(source: &str, target: &str) {
    let (s, t) = (normalised_dump(source), normalised_dump(target));
    let only_source: Vec<&String> = s.iter().filter(|x| !t.contains(x)).collect();
    let only_target: Vec<&String> = t.iter().filter(|x| !s.contains(x)).collect();
    assert!(
        only_source.is_empty() && only_target.is_empty(),
        "pg_dump --schema-only differs.\nOnly on the source:\n{}\nOnly on the target:\n{}",
        only_source
            .iter()
            .map(|x| x.as_str())
            .collect::<Vec<_>>()
            .join("\n"),
        only_target
            .iter()
            .map(|x| x.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(s.len() > 10, "the dump has statements: {}", s.len());
}

/// Polls `done` every 200 ms until it holds; fails naming `what` after two minutes.
pub fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let started = std::time::Instant::now();
    while !done() {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(120),
            "timed out waiting until {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// Waits until the follow recorded on the target has finished its copy.
pub fn wait_following(db: &TestDb, child: &mut std::process::Child) {
    wait_until("the copy is done and following starts", || {
        if let Ok(Some(status)) = child.try_wait() {
            let out = child.wait_with_output_now();
            panic!("pgbarge ended before following ({status}):\n{out}");
        }
        db.target_sql("SELECT to_regclass('pgbarge.follow') IS NOT NULL")
            .trim()
            == "t"
            && db
                .target_sql("SELECT count(*) FROM pgbarge.follow WHERE snapshot IS NOT NULL")
                .trim()
                == "1"
    });
}

/// The output of a child that has ended.
pub trait Finished {
    fn wait_with_output_now(&mut self) -> String;
}

impl Finished for std::process::Child {
    fn wait_with_output_now(&mut self) -> String {
        use std::io::Read;
        let mut text = String::new();
        if let Some(mut e) = self.stderr.take() {
            let _ = e.read_to_string(&mut text);
        }
        if let Some(mut o) = self.stdout.take() {
            let _ = o.read_to_string(&mut text);
        }
        text
    }
}
