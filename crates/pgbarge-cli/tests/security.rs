//! Hostile roles on both servers: another role's casts, functions and operators never run
//! in pgbarge's sessions; a ledger schema pgbarge did not make is never trusted; nothing
//! that is not pgbarge's is dropped; a dry-run script runs no shell command.
//!
//! The low-privileged role is `mallory`. Her functions record each call in a table of
//! hers; every test ends by checking those tables are empty on both servers.

mod support;

use support::{servers, wait_following, wait_until, TestDb};

/// Creates role `mallory` on `db`'s cluster if it is missing (roles are cluster-wide,
/// and the tests of this binary share the clusters).
fn mallory(sql: impl Fn(&str) -> String) {
    sql("DO $$ BEGIN CREATE ROLE mallory; EXCEPTION WHEN duplicate_object THEN NULL; END $$");
}

/// On the source: mallory owns types (an enum, a composite, a domain, a range), and a
/// table `public.t` of the superuser's uses them (rows inserted before her traps are
/// set). Then she makes casts from each of her types to text and int8, from text to
/// each, and operators and aggregates on them, in her schema and in `public`: each
/// records its call in `mal.calls`.
const SOURCE_TRAPS: &str = r#"
GRANT CREATE ON SCHEMA public TO mallory;
CREATE SCHEMA mal AUTHORIZATION mallory;
SET ROLE mallory;
CREATE TABLE mal.calls (who text, what text);
GRANT USAGE ON SCHEMA mal TO PUBLIC;
GRANT INSERT, SELECT ON mal.calls TO PUBLIC;
CREATE FUNCTION mal.hit(what text) RETURNS boolean LANGUAGE plpgsql AS
  $f$ BEGIN INSERT INTO mal.calls VALUES (current_user, what); RETURN true; END $f$;
CREATE TYPE mal.mood AS ENUM ('sad', 'ok', 'happy');
CREATE TYPE mal.pair AS (a int, b text);
CREATE DOMAIN mal.word AS text;
CREATE TYPE mal.span AS RANGE (subtype = int4);
RESET ROLE;
CREATE TABLE public.t (id int PRIMARY KEY, m mal.mood, p mal.pair, w mal.word,
  s mal.span, ms mal.mood[], note varchar(20), n int);
INSERT INTO public.t SELECT g, CASE g % 3 WHEN 0 THEN 'sad'::mal.mood WHEN 1 THEN 'ok'
    ELSE 'happy' END, ROW(g, 'p' || g)::mal.pair, 'w' || g, mal.span(g, g + 10),
  '{ok,sad}', 'N' || g, g FROM generate_series(1, 300) g;
CREATE TABLE public.bag (m mal.mood, w mal.word);
ALTER TABLE public.bag REPLICA IDENTITY FULL;
INSERT INTO public.bag SELECT 'ok', 'x' FROM generate_series(1, 5);
SET ROLE mallory;
CREATE FUNCTION mal.mood_text(mal.mood) RETURNS text LANGUAGE plpgsql AS
  $f$ BEGIN PERFORM mal.hit('mood::text'); RETURN 'x'; END $f$;
CREATE CAST (mal.mood AS text) WITH FUNCTION mal.mood_text(mal.mood);
CREATE FUNCTION mal.moods_text(mal.mood[]) RETURNS text LANGUAGE plpgsql AS
  $f$ BEGIN PERFORM mal.hit('mood[]::text'); RETURN 'x'; END $f$;
CREATE CAST (mal.mood[] AS text) WITH FUNCTION mal.moods_text(mal.mood[]);
CREATE FUNCTION mal.pair_text(mal.pair) RETURNS text LANGUAGE plpgsql AS
  $f$ BEGIN PERFORM mal.hit('pair::text'); RETURN 'x'; END $f$;
CREATE CAST (mal.pair AS text) WITH FUNCTION mal.pair_text(mal.pair);
CREATE FUNCTION mal.span_text(mal.span) RETURNS text LANGUAGE plpgsql AS
  $f$ BEGIN PERFORM mal.hit('span::text'); RETURN 'x'; END $f$;
CREATE CAST (mal.span AS text) WITH FUNCTION mal.span_text(mal.span);
CREATE FUNCTION mal.mood_int8(mal.mood) RETURNS int8 LANGUAGE plpgsql AS
  $f$ BEGIN PERFORM mal.hit('mood::int8'); RETURN 1; END $f$;
CREATE CAST (mal.mood AS int8) WITH FUNCTION mal.mood_int8(mal.mood);
CREATE FUNCTION mal.text_mood(text) RETURNS mal.mood LANGUAGE plpgsql AS
  $f$ BEGIN PERFORM mal.hit('text::mood'); RETURN 'ok'; END $f$;
CREATE CAST (text AS mal.mood) WITH FUNCTION mal.text_mood(text);
CREATE FUNCTION mal.text_pair(text) RETURNS mal.pair LANGUAGE plpgsql AS
  $f$ BEGIN PERFORM mal.hit('text::pair'); RETURN ROW(0, 'x'); END $f$;
CREATE CAST (text AS mal.pair) WITH FUNCTION mal.text_pair(text);
CREATE FUNCTION mal.mood_eq(mal.mood, mal.mood) RETURNS boolean LANGUAGE plpgsql AS
  $f$ BEGIN PERFORM mal.hit('mood = mood'); RETURN pg_catalog.enum_eq($1, $2); END $f$;
CREATE OPERATOR public.= (LEFTARG = mal.mood, RIGHTARG = mal.mood, FUNCTION = mal.mood_eq);
CREATE OPERATOR mal.= (LEFTARG = mal.mood, RIGHTARG = mal.mood, FUNCTION = mal.mood_eq);
CREATE FUNCTION mal.and8(bigint, integer) RETURNS bigint LANGUAGE plpgsql AS
  $f$ BEGIN PERFORM mal.hit('bigint & integer'); RETURN $1 & $2::bigint; END $f$;
CREATE OPERATOR public.& (LEFTARG = bigint, RIGHTARG = integer, FUNCTION = mal.and8);
CREATE FUNCTION mal.larger(mal.mood, mal.mood) RETURNS mal.mood LANGUAGE plpgsql AS
  $f$ BEGIN PERFORM mal.hit('max(mood)'); RETURN pg_catalog.enum_larger($1, $2); END $f$;
CREATE AGGREGATE public.max(mal.mood) (SFUNC = mal.larger, STYPE = mal.mood);
CREATE FUNCTION public.format(text, mal.mood) RETURNS text LANGUAGE plpgsql AS
  $f$ BEGIN PERFORM mal.hit('format'); RETURN 'x'; END $f$;
RESET ROLE;
"#;

/// On the target: mallory may create schemas in the database (as many cloud roles
/// may). She makes one named after the target role — the `"$user"` of the source's
/// search path — with a closer match for `lower(varchar)` than the built-in one.
const TARGET_TRAPS: &str = r#"
SET ROLE mallory;
CREATE SCHEMA app;
CREATE TABLE app.calls (who text, what text);
GRANT USAGE ON SCHEMA app TO PUBLIC;
GRANT INSERT, SELECT ON app.calls TO PUBLIC;
CREATE FUNCTION app.lower(varchar) RETURNS text LANGUAGE plpgsql AS
  $f$ BEGIN INSERT INTO app.calls VALUES (current_user, 'lower(varchar)');
  RETURN pg_catalog.lower($1::text); END $f$;
CREATE FUNCTION app.and8(bigint, integer) RETURNS bigint LANGUAGE plpgsql AS
  $f$ BEGIN INSERT INTO app.calls VALUES (current_user, 'bigint & integer');
  RETURN $1 & $2::bigint; END $f$;
CREATE OPERATOR app.& (LEFTARG = bigint, RIGHTARG = integer, FUNCTION = app.and8);
RESET ROLE;
"#;

/// The user's own check, whose function names `lower` unqualified: it resolves through
/// the search path of the session that loads the rows.
const USER_CHECK: &str = "
CREATE FUNCTION public.norm(v varchar) RETURNS text LANGUAGE sql AS 'SELECT lower(v)';
ALTER TABLE public.t ADD CONSTRAINT t_note CHECK (public.norm(note) IS NOT NULL);
";

/// Sets the traps on both servers of `db`.
fn plant(db: &TestDb) {
    mallory(|sql| db.source_sql(sql));
    mallory(|sql| db.target_sql(sql));
    db.source_sql(SOURCE_TRAPS);
    db.source_sql(USER_CHECK);
    db.target_sql(&format!(
        "GRANT CREATE ON DATABASE \"{}\" TO mallory",
        db.name
    ));
    db.target_sql(TARGET_TRAPS);
}

/// Every call mallory's code recorded: on the source, and on the target (her `app`
/// schema, and `mal.calls` there once the copy created it with her functions).
fn calls(db: &TestDb) -> Vec<String> {
    let mut found: Vec<String> = db
        .source_sql("SELECT 'source: ' || who || ' ran ' || what FROM mal.calls")
        .lines()
        .map(str::to_string)
        .collect();
    found.extend(
        db.target_sql(
            "SELECT 'target: ' || who || ' ran ' || what FROM app.calls \
             UNION ALL SELECT 'target: ' || who || ' ran ' || what FROM mal.calls \
             WHERE to_regclass('mal.calls') IS NOT NULL",
        )
        .lines()
        .map(str::to_string),
    );
    found
}

fn assert_no_calls(db: &TestDb, after: &str) {
    let found = calls(db);
    assert!(
        found.is_empty(),
        "another role's code ran during {after}:\n{}",
        found.join("\n")
    );
}

/// Changes on the source, written with literals (read by the types' input functions,
/// not her casts).
const CHANGES: &str = "
UPDATE public.t SET m = 'happy', p = ROW(id, 'changed')::mal.pair, n = n + 1 WHERE id % 7 = 0;
DELETE FROM public.t WHERE id % 11 = 0;
INSERT INTO public.t SELECT g, 'sad', ROW(g, 'new')::mal.pair, 'new', mal.span(1, 2), '{happy}',
  'M' || g, g
  FROM generate_series(1001, 1020) g;
INSERT INTO public.bag VALUES ('sad', 'y');
";

#[test]
fn no_code_of_another_role_runs_in_copy_verify_or_sync() {
    let db = TestDb::new("hostile_copy");
    plant(&db);
    // Everything, her schema included (so her casts and operators are created on the
    // target too), verified.
    db.copy(&["--all", "--yes", "--verify", "--quiet"])
        .assert_ok();
    assert_no_calls(&db, "copy --all --verify");
    db.assert_same("public.t");

    db.source_sql(CHANGES);
    let sync = db.copy(&["--all", "--yes", "--mode", "sync", "--quiet"]);
    sync.assert_ok();
    assert_no_calls(&db, "copy --mode sync");
    db.assert_same("public.t");
    db.assert_same("public.bag");

    // A second sync compares again and finds nothing to move.
    db.copy(&["--all", "--yes", "--mode", "sync", "--quiet", "--verify"])
        .assert_ok();
    db.run("verify", &["public.t", "public.bag"]).assert_ok();
    // A difference is found through her types too (hashed by their output functions).
    db.target_sql("UPDATE public.t SET m = 'sad' WHERE id = 1");
    let verify = db.run("verify", &["public.t"]);
    assert_eq!(verify.code, 6, "{}\n{}", verify.stdout, verify.stderr);
    assert_no_calls(&db, "sync and verify");
}

/// `pgbarge clean` of `db`'s target.
fn clean(db: &TestDb) -> support::Run {
    support::pgbarge(&["clean".to_string(), "--target".into(), db.target_conn()])
}

#[test]
fn no_code_of_another_role_runs_while_following_and_cutting_over() {
    let db = TestDb::new("hostile_follow");
    plant(&db);
    // The types, then the followed tables.
    db.copy(&["mal.*", "--yes", "--quiet"]).assert_ok();
    let mut follower = db.spawn_copy(
        &db.target_conn(),
        &["public.t", "public.bag", "--follow", "--yes", "--quiet"],
    );
    wait_following(&db, &mut follower);
    db.source_sql(CHANGES);
    db.source_sql("UPDATE public.t SET id = id + 5000 WHERE id = 5");
    db.source_sql("DELETE FROM public.bag WHERE w = 'x' AND ctid = (SELECT min(ctid) FROM public.bag WHERE w = 'x')");
    let cutover = db.run("cutover", &[]);
    cutover.assert_ok();
    let status = follower.wait().expect("the follower ends");
    assert!(status.success(), "the follower failed");
    db.assert_same("public.t");
    db.assert_same("public.bag");
    assert_no_calls(&db, "copy --follow and cutover");
}

/// A schema `pgbarge` mallory made first on the target, with a trigger on a table named
/// like the ledger's.
const PLANTED_LEDGER: &str = r#"
SET ROLE mallory;
CREATE SCHEMA pgbarge;
GRANT USAGE ON SCHEMA pgbarge TO PUBLIC;
CREATE TABLE pgbarge.calls (who text);
GRANT INSERT, SELECT ON pgbarge.calls TO PUBLIC;
CREATE TABLE pgbarge.run (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  started_at timestamptz DEFAULT now(), source text, snapshot_at timestamptz,
  work jsonb, source_changes jsonb, snapshot text);
GRANT ALL ON pgbarge.run TO PUBLIC;
CREATE FUNCTION pgbarge.trap() RETURNS trigger LANGUAGE plpgsql AS
  $f$ BEGIN INSERT INTO pgbarge.calls VALUES (current_user); RETURN NEW; END $f$;
CREATE TRIGGER trap BEFORE INSERT ON pgbarge.run FOR EACH ROW EXECUTE FUNCTION pgbarge.trap();
RESET ROLE;
"#;

#[test]
fn a_ledger_schema_another_role_planted_is_refused_and_nothing_of_it_runs() {
    let db = TestDb::new("planted_ledger");
    db.source_sql("CREATE TABLE items (id int PRIMARY KEY); INSERT INTO items VALUES (1), (2)");
    mallory(|sql| db.target_sql(sql));
    db.target_sql(&format!(
        "GRANT CREATE ON DATABASE \"{}\" TO mallory",
        db.name
    ));
    db.target_sql(PLANTED_LEDGER);

    for args in [
        vec!["items", "--yes"],
        vec!["items", "--yes", "--resume"],
        vec!["items", "--yes", "--follow"],
    ] {
        let run = db.copy(&args);
        assert_ne!(run.code, 0, "{args:?}: {}", run.stdout);
        assert!(
            run.stderr.contains("cannot trust as its ledger")
                && run.stderr.contains("belongs to role mallory")
                && run.stderr.contains("--ledger-schema"),
            "{args:?}: {}",
            run.stderr
        );
        assert!(!db.target_has_table("public", "items"), "{args:?}");
    }
    for command in ["status", "clean", "follow", "cutover"] {
        let run = if command == "clean" {
            clean(&db)
        } else {
            db.run(command, &[])
        };
        assert_ne!(run.code, 0, "{command}: {}", run.stdout);
        assert!(
            run.stderr.contains("cannot trust as its ledger"),
            "{command}: {}",
            run.stderr
        );
    }
    assert_eq!(
        db.target_sql("SELECT count(*) FROM pgbarge.calls").trim(),
        "0"
    );
    assert_eq!(
        db.target_sql("SELECT count(*) FROM pgbarge.run").trim(),
        "0"
    );

    // Elsewhere it works, and leaves hers as it was.
    db.copy(&["items", "--yes", "--ledger-schema", "pgbarge_ledger"])
        .assert_ok();
    db.assert_same("public.items");
    assert!(db.target_has_table("pgbarge", "run"));
    assert_eq!(
        db.target_sql("SELECT count(*) FROM pg_namespace WHERE nspname = 'pgbarge_ledger'")
            .trim(),
        "0",
        "the ledger is dropped once empty"
    );
}

/// A copy of a split table `big` killed with some of its parts committed and its
/// finish not run: the run stays recorded, its staging table in place.
fn interrupted_split_run(db: &TestDb) {
    db.source_sql(
        "CREATE TABLE big (id int PRIMARY KEY, v text); \
         INSERT INTO big SELECT g, md5(g::text) FROM generate_series(1, 20000) g",
    );
    let mut locker = db.hold_finish_of("big", "true");
    let args = [
        "big",
        "--yes",
        "--quiet",
        "--split-above",
        "100kB",
        "--part-size",
        "100kB",
    ];
    let mut child = db.spawn_copy(&db.target_conn(), &args);
    wait_until("a part committed", || {
        db.target_sql("SELECT to_regclass('pgbarge.unit') IS NOT NULL")
            .trim()
            == "t"
            && db
                .target_sql("SELECT count(*) FROM pgbarge.unit WHERE unit LIKE 'part %'")
                .trim()
                != "0"
    });
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    // Its sessions live on: ended before the locks go, or they finish the run.
    db.target_sql(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND application_name = 'pgbarge'",
    );
    db.end_lockers();
    let _ = locker.kill();
    let _ = locker.wait();
}

#[test]
fn a_ledger_of_ours_that_others_were_let_into_is_refused() {
    let db = TestDb::new("opened_ledger");
    mallory(|sql| db.target_sql(sql));
    interrupted_split_run(&db);
    // Someone let mallory write the run's record (and so its units).
    db.target_sql("GRANT UPDATE ON pgbarge.run TO mallory");
    let resume = db.copy(&["big", "--yes", "--resume"]);
    assert_eq!(resume.code, 3, "{}", resume.stderr);
    assert!(
        resume
            .stderr
            .contains("mallory was granted UPDATE on table run"),
        "{}",
        resume.stderr
    );
    // Fixed, the run goes on.
    db.target_sql("REVOKE UPDATE ON pgbarge.run FROM mallory");
    db.copy(&["big", "--yes", "--resume", "--quiet"])
        .assert_ok();
    db.assert_same("public.big");
}

#[test]
fn an_application_schema_named_like_the_ledger_is_never_touched() {
    let db = TestDb::new("app_schema");
    db.source_sql("CREATE TABLE items (id int PRIMARY KEY); INSERT INTO items VALUES (1), (2)");
    // The application's own schema `pgbarge`, owned by the same role pgbarge uses.
    db.target_sql_as_app(
        "CREATE SCHEMA pgbarge; CREATE TABLE pgbarge.orders (id int); \
         INSERT INTO pgbarge.orders VALUES (42)",
    );
    let run = db.copy(&["items", "--yes"]);
    assert_eq!(run.code, 3, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("it was not created by pgbarge")
            && run.stderr.contains("table \"orders\""),
        "{}",
        run.stderr
    );
    db.copy(&["items", "--yes", "--ledger-schema", "pgbarge_ledger"])
        .assert_ok();
    db.assert_same("public.items");
    assert_eq!(db.target_sql("SELECT id FROM pgbarge.orders").trim(), "42");

    // Even empty, a schema of that name pgbarge did not make is left alone.
    db.target_sql("DROP TABLE pgbarge.orders");
    let run = db.copy(&["items", "--yes", "--mode", "truncate"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        db.target_sql("SELECT count(*) FROM pg_namespace WHERE nspname = 'pgbarge'")
            .trim()
            == "1"
    );
}

#[test]
fn a_source_schema_named_like_the_ledger_is_refused_in_preflight() {
    let db = TestDb::new("source_ledger_name");
    db.source_sql(
        "CREATE SCHEMA pgbarge; CREATE TABLE pgbarge.run (id int PRIMARY KEY, what text); \
         INSERT INTO pgbarge.run VALUES (1, 'the application''s'); \
         CREATE TABLE items (id int PRIMARY KEY); INSERT INTO items VALUES (1)",
    );
    let run = db.copy(&["--all", "--yes"]);
    assert_eq!(run.code, 3, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("pgbarge keeps its own records")
            && run.stderr.contains("--ledger-schema"),
        "{}",
        run.stderr
    );
    assert!(
        !db.target_has_table("public", "items"),
        "nothing was written"
    );
    db.copy(&[
        "--all",
        "--yes",
        "--ledger-schema",
        "pgbarge_ledger",
        "--quiet",
    ])
    .assert_ok();
    db.assert_same("pgbarge.run");
    db.assert_same("public.items");
}

#[test]
fn clean_drops_only_the_staging_tables_the_catalog_shows_are_ours() {
    let db = TestDb::new("clean_staging");
    db.target_sql_as_app("CREATE TABLE victim (id int); INSERT INTO victim VALUES (1)");
    interrupted_split_run(&db);
    let staging = db
        .target_sql("SELECT relname FROM pg_class WHERE relname LIKE '\\_pgbarge\\_%big'")
        .trim()
        .to_string();
    assert!(
        !staging.is_empty(),
        "the split table's staging table is there"
    );
    assert_eq!(
        db.target_sql(&format!(
            "SELECT obj_description('public.{staging}'::regclass, 'pg_class')"
        ))
        .trim(),
        "pgbarge staging table"
    );
    // The run's record, rewritten (by the role itself here) to list an application
    // table as a staging table too.
    db.target_sql(
        "UPDATE pgbarge.run SET work = jsonb_set(work, '{tables,0,leaf_staging}', \
         '[{\"schema\": \"public\", \"name\": \"victim\"}]')",
    );
    let clean = clean(&db);
    clean.assert_ok();
    assert!(
        clean
            .stdout
            .contains(&format!("dropped staging table public.{staging}"))
            && clean.stdout.contains("Left alone")
            && clean.stdout.contains("public.victim"),
        "{}",
        clean.stdout
    );
    assert_eq!(db.target_sql("SELECT count(*) FROM victim").trim(), "1");
    assert!(!db.target_has_table("public", &staging));
}

#[test]
fn a_dry_run_script_runs_no_command_however_its_names_are_made() {
    let db = TestDb::new("script");
    let marker = std::env::temp_dir().join(format!("pgbarge-pwned-{}", std::process::id()));
    let _ = std::fs::remove_file(&marker);
    let name = format!("x\n\\! touch {}\n", marker.display());
    db.source_sql(&format!(
        "CREATE TABLE \"{name}\" (id int PRIMARY KEY); INSERT INTO \"{name}\" VALUES (1); \
         CREATE TABLE \"esc\u{1b}[2Jname\u{202e}\" (id int)"
    ));
    let run = db.copy(&["--all", "--dry-run", "--verbose"]);
    run.assert_ok();
    let script = run
        .stdout
        .split_once("SQL run on the target:\n")
        .map(|(_, s)| s)
        .unwrap_or_else(|| panic!("a script: {}", run.stdout));
    assert!(script.starts_with("\\restrict "), "{script}");
    let key = script
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("\\restrict "));
    assert!(
        key.is_some_and(|k| script.contains(&format!("\n\\unrestrict {k}\n"))),
        "{script}"
    );
    assert!(
        !run.stdout.contains('\u{1b}') && !run.stdout.contains('\u{202e}'),
        "control characters reach the terminal: {:?}",
        run.stdout
    );
    // Fed to psql, as the README says it can be: the table is created, no shell runs.
    let path = std::env::temp_dir().join(format!("pgbarge-script-{}.sql", std::process::id()));
    std::fs::write(&path, script).expect("write the script");
    let t = &servers().target;
    let out = std::process::Command::new("psql")
        .args(["-X", "-q", "-h"])
        .arg(&t.dir)
        .arg("-p")
        .arg(t.port.to_string())
        .args(["-U", "postgres", "-d", &db.name, "-f"])
        .arg(&path)
        .output()
        .expect("run psql");
    let _ = std::fs::remove_file(&path);
    assert!(
        !marker.exists(),
        "the script ran a shell command: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        db.target_sql("SELECT count(*) FROM pg_class WHERE relname LIKE 'x%' AND relkind = 'r'")
            .trim(),
        "1",
        "the script's SQL ran: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs pgbarge with `args` in a clean environment plus `env`.
fn pgbarge_with(env: &[(&str, &str)], args: &[&str]) -> support::Run {
    let out = support::clean_command(support::pgbarge_bin())
        .args(args)
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run pgbarge");
    support::Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn inputs_are_checked_like_flags_and_secrets_never_echoed() {
    // A plan file is input too: its values are checked as the flags are.
    let dir = std::env::temp_dir().join(format!("pgbarge-plans-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a directory");
    for (body, says) in [
        (
            "jobs = 100000\nsplit_above = 1",
            "jobs = 100000 is out of range",
        ),
        ("jobs = 0\nsplit_above = 1", "jobs = 0 is out of range"),
        ("jobs = 2\nsplit_above = 0", "split_above = 0"),
        ("jobs = 2\nsplit_above = 1\npart_size = 0", "part_size = 0"),
    ] {
        let path = dir.join("p.toml");
        std::fs::write(
            &path,
            format!(
                "version = 1\ncontent = \"schema_and_data\"\n{body}\n\n\
                 [[table]]\nschema = \"public\"\nname = \"t\"\n"
            ),
        )
        .expect("write the plan");
        let run = pgbarge_with(
            &[],
            &[
                "copy",
                "--source",
                "host=localhost dbname=x",
                "--target",
                "host=localhost dbname=y",
                "--plan",
                path.to_str().expect("a UTF-8 path"),
            ],
        );
        assert_eq!(run.code, 2, "{body}: {}", run.stderr);
        assert!(run.stderr.contains(says), "{body}: {}", run.stderr);
    }
    let _ = std::fs::remove_dir_all(&dir);
    let run = pgbarge_with(
        &[],
        &[
            "copy",
            "-s",
            "host=a",
            "-t",
            "host=b",
            "t",
            "--part-size",
            "0",
        ],
    );
    assert_eq!(run.code, 2, "{}", run.stderr);

    // A password with an unquoted space: the rest of it is never shown.
    let run = pgbarge_with(
        &[],
        &["tables", "--source", "host=h password=sec ret dbname=x"],
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(!run.stderr.contains("ret"), "{}", run.stderr);
    assert!(run.stderr.contains("password='…'"), "{}", run.stderr);

    // Over the network without a certificate check: a warning, or with --tls-verify
    // (or the variable) an error before anything connects.
    let remote = "host=db.example.invalid dbname=x connect_timeout=2";
    let run = pgbarge_with(&[], &["tables", "--source", remote]);
    assert!(
        run.stderr.contains("without checking its certificate"),
        "{}",
        run.stderr
    );
    for (env, args) in [
        (vec![], vec!["--tls-verify", "tables", "--source", remote]),
        (vec![], vec!["tables", "--tls-verify", "--source", remote]),
        (
            vec![("PGBARGE_TLS_VERIFY", "1")],
            vec!["tables", "--source", remote],
        ),
    ] {
        let run = pgbarge_with(&env, &args);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(
            run.stderr.contains("refused with --tls-verify"),
            "{}",
            run.stderr
        );
    }
    // Checked, it is accepted (and fails only to connect).
    let run = pgbarge_with(
        &[],
        &[
            "--tls-verify",
            "tables",
            "--source",
            "host=db.example.invalid dbname=x sslmode=verify-full sslrootcert=system connect_timeout=2",
        ],
    );
    assert_eq!(run.code, 4, "{}", run.stderr);

    // A server without TLS: the advice says so, not "the certificate check failed".
    let s = &servers().source;
    let run = pgbarge_with(
        &[],
        &[
            "tables",
            "--source",
            &format!(
                "host=localhost port={} user=postgres dbname=postgres sslmode=require",
                s.port
            ),
        ],
    );
    assert_eq!(run.code, 4, "{}", run.stderr);
    assert!(
        run.stderr.contains("does not offer TLS at all"),
        "{}",
        run.stderr
    );
}

/// An account table whose trigger writes an audit row: on the source it fires, and the
/// audit rows reach the target through the stream. Fired on the target too, it would
/// write each audit row twice.
const AUDITED: &str = "
CREATE TABLE audit (id bigserial PRIMARY KEY, acct int, v int);
CREATE TABLE acct (id int PRIMARY KEY, v int);
CREATE FUNCTION audit_acct() RETURNS trigger LANGUAGE plpgsql AS
  $f$ BEGIN INSERT INTO public.audit (acct, v) VALUES (NEW.id, NEW.v); RETURN NEW; END $f$;
CREATE TRIGGER audit_acct AFTER INSERT OR UPDATE ON acct
  FOR EACH ROW EXECUTE FUNCTION audit_acct();
INSERT INTO acct SELECT g, 0 FROM generate_series(1, 50) g;
";

#[test]
fn following_fires_the_target_triggers_as_native_replication_does() {
    let db = TestDb::new("follow_triggers");
    db.source_sql(AUDITED);
    // The role may not apply as a replica: refused before anything is copied, with the
    // choices.
    let run = db.copy(&["acct", "audit", "--follow", "--yes"]);
    assert_eq!(run.code, 3, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("public.acct: audit_acct")
            && run.stderr.contains("--fire-triggers")
            && run.stderr.contains("session_replication_role"),
        "{}",
        run.stderr
    );
    assert!(!db.target_has_table("public", "acct"));

    // Granted the setting (PostgreSQL 15), it applies as native replication: the
    // copied trigger does not fire on applied changes, the audit rows come from the
    // source once.
    db.target_sql(&format!(
        "GRANT SET ON PARAMETER session_replication_role TO {}",
        support::TARGET_USER
    ));
    let mut follower = db.spawn_copy(
        &db.target_conn(),
        &["acct", "audit", "--follow", "--yes", "--quiet"],
    );
    wait_following(&db, &mut follower);
    db.source_sql("UPDATE acct SET v = v + 1 WHERE id <= 20; INSERT INTO acct VALUES (100, 7)");
    let cutover = db.run("cutover", &[]);
    db.target_sql(&format!(
        "REVOKE SET ON PARAMETER session_replication_role FROM {}",
        support::TARGET_USER
    ));
    cutover.assert_ok();
    assert!(follower.wait().expect("the follower ends").success());
    assert_eq!(db.source_sql("SELECT count(*) FROM audit").trim(), "71");
    db.assert_same("public.audit");
    db.assert_same("public.acct");
}

#[test]
fn the_ledger_takes_back_what_default_privileges_grant() {
    let db = TestDb::new("ledger_grants");
    db.source_sql("CREATE TABLE items (id int PRIMARY KEY); INSERT INTO items VALUES (1), (2)");
    mallory(|sql| db.target_sql(sql));
    // The role's own default privileges (an administrator's, say) give mallory
    // everything it creates from now on.
    db.target_sql_as_app(
        "ALTER DEFAULT PRIVILEGES GRANT ALL ON TABLES TO mallory; \
         ALTER DEFAULT PRIVILEGES GRANT ALL ON SEQUENCES TO mallory; \
         ALTER DEFAULT PRIVILEGES GRANT ALL ON SCHEMAS TO mallory",
    );
    // A sync of a table already there leaves its record in the ledger.
    db.copy(&["items", "--yes", "--quiet"]).assert_ok();
    db.copy(&["items", "--yes", "--mode", "sync", "--quiet"])
        .assert_ok();
    let granted = db.target_sql(
        "SELECT c.relname FROM pg_class c WHERE c.relnamespace = to_regnamespace('pgbarge') \
           AND c.relkind IN ('r', 'S') \
           AND (has_table_privilege('mallory', c.oid, 'SELECT, INSERT, UPDATE, DELETE') \
                OR c.relkind = 'S' AND has_sequence_privilege('mallory', c.oid, 'USAGE')) \
         UNION ALL SELECT 'schema' WHERE has_schema_privilege('mallory', 'pgbarge', 'USAGE, CREATE')",
    );
    assert!(
        granted.trim().is_empty(),
        "mallory may use the ledger: {granted}"
    );
    assert!(
        db.target_sql("SELECT count(*) FROM pgbarge.synced").trim() == "1",
        "the sync is recorded"
    );
    db.target_sql_as_app(
        "ALTER DEFAULT PRIVILEGES REVOKE ALL ON TABLES FROM mallory; \
         ALTER DEFAULT PRIVILEGES REVOKE ALL ON SEQUENCES FROM mallory; \
         ALTER DEFAULT PRIVILEGES REVOKE ALL ON SCHEMAS FROM mallory",
    );
}

#[test]
fn the_plan_names_what_loading_runs_of_other_roles() {
    let db = TestDb::new("foreign_load_code");
    db.source_sql(
        "CREATE TABLE items (id int PRIMARY KEY, v int); INSERT INTO items VALUES (1, 1)",
    );
    mallory(|sql| db.target_sql(sql));
    // The target table is the application's; its trigger's function and a default's
    // belong to mallory.
    db.target_sql(&format!(
        "CREATE FUNCTION public.stamp() RETURNS trigger LANGUAGE plpgsql AS \
           $f$ BEGIN RETURN NEW; END $f$; \
         CREATE FUNCTION public.seven() RETURNS int LANGUAGE sql AS 'SELECT 7'; \
         ALTER FUNCTION public.stamp() OWNER TO mallory; \
         ALTER FUNCTION public.seven() OWNER TO mallory; \
         CREATE TABLE items (id int PRIMARY KEY, v int, w int DEFAULT public.seven()); \
         CREATE TRIGGER stamp BEFORE INSERT ON items FOR EACH ROW EXECUTE FUNCTION public.stamp(); \
         ALTER TABLE items OWNER TO {}",
        support::TARGET_USER
    ));
    let run = db.copy(&["items", "--dry-run"]);
    run.assert_ok();
    assert!(
        run.stdout
            .contains("loading public.items runs code of other roles as app")
            && run
                .stdout
                .contains("trigger stamp runs public.stamp(), owned by role mallory")
            && run
                .stdout
                .contains("the default of w runs public.seven(), owned by role mallory"),
        "{}",
        run.stdout
    );
}
