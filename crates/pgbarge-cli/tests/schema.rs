//! Schema fidelity: a whole database or schema copied to an empty cloud-like target (a
//! non-superuser role) is a working copy of the source — same definitions as pg_dump sees
//! them, same rows, sequences that continue where the source's are, constraints that
//! bite, triggers that fire on new rows but did not on copied ones.

mod support;

use support::{assert_same_schema, pagila_dir, servers, TestDb};

/// One new row per table with a sequence (each uses its default), run on both servers:
/// the target must hand out the same ids as the source would, triggers must fill in
/// `fulltext`, and rows must route into the right partition.
const PAGILA_NEW_ROWS: &str = "
INSERT INTO public.actor (first_name, last_name) VALUES ('NEW', 'ACTOR') RETURNING actor_id;
INSERT INTO public.category (name) VALUES ('New') RETURNING category_id;
INSERT INTO public.country (country) VALUES ('Newland') RETURNING country_id;
INSERT INTO public.city (city, country_id) VALUES ('Newcity', 1) RETURNING city_id;
INSERT INTO public.address (address, district, city_id, phone)
  VALUES ('1 New St', 'D', 1, '123') RETURNING address_id;
INSERT INTO public.language (name) VALUES ('Klingon') RETURNING language_id;
INSERT INTO public.film (title, language_id) VALUES ('NEW FILM', 1) RETURNING film_id, fulltext;
INSERT INTO public.inventory (film_id, store_id) VALUES (1, 1) RETURNING inventory_id;
INSERT INTO public.staff (first_name, last_name, address_id, store_id, username)
  VALUES ('N', 'S', 1, 1, 'ns') RETURNING staff_id;
INSERT INTO public.store (manager_staff_id, address_id)
  SELECT max(staff_id), 1 FROM public.staff RETURNING store_id;
INSERT INTO public.customer (store_id, first_name, last_name, address_id)
  VALUES (1, 'N', 'C', 1) RETURNING customer_id;
INSERT INTO public.rental (rental_date, inventory_id, customer_id, staff_id)
  VALUES ('2030-01-01', 1, 1, 1) RETURNING rental_id;
INSERT INTO public.payment (customer_id, staff_id, rental_id, amount, payment_date)
  VALUES (1, 1, 1, 1.00, '2022-03-15') RETURNING payment_id, tableoid::regclass;
";

#[test]
fn pagila_whole_database_is_a_working_copy() {
    let dir = pagila_dir();
    let db = TestDb::new("pagila_all");
    let s = servers();
    s.source.psql_file(&db.name, &dir.join("pagila-schema.sql"));
    s.source.psql_file(&db.name, &dir.join("pagila-data.sql"));
    // Pagila ships its materialized view unpopulated; fill it, so the copy must too.
    db.source_sql("REFRESH MATERIALIZED VIEW public.rental_by_category");

    let run = db.copy(&["--all", "--yes", "--verify"]);
    run.assert_ok();
    assert!(
        run.stdout.contains("15 tables equal") || run.stdout.contains("15 equal"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("Also created:"), "{}", run.stdout);

    // The definitions, as pg_dump sees them, are the source's.
    assert_same_schema(
        &s.source.dump_schema(&db.name),
        &s.target.dump_schema(&db.name),
    );

    // Every table's rows, including the partitions' (loaded leaf by leaf).
    let tables = db.source_sql(
        "SELECT format('%I.%I', schemaname, tablename) FROM pg_tables \
         WHERE schemaname = 'public' ORDER BY 1",
    );
    let mut total = 0;
    for t in tables.lines() {
        total += db.assert_same(t);
    }
    assert!(total > 40_000, "compared {total} rows");
    for p in ["public.payment_p2022_01", "public.payment_p2022_07"] {
        assert_eq!(
            db.source_sql(&format!("SELECT count(*) FROM ONLY {p}")),
            db.target_sql(&format!("SELECT count(*) FROM ONLY {p}")),
            "{p}"
        );
    }
    // The materialized view was filled after the load.
    assert_eq!(
        db.source_sql("SELECT count(*), sum(total_sales) FROM public.rental_by_category"),
        db.target_sql("SELECT count(*), sum(total_sales) FROM public.rental_by_category"),
    );

    // The application works: new rows get the ids the source would have given them
    // (sequences carried over), triggers fill columns, payments route to partitions.
    let on_source = db.source_sql(&format!("BEGIN; {PAGILA_NEW_ROWS} ROLLBACK;"));
    let on_target = db.target_sql_as_app(&format!("BEGIN; {PAGILA_NEW_ROWS} ROLLBACK;"));
    assert_eq!(on_source, on_target);
    assert!(on_target.contains("201\n"), "{on_target}");
    assert!(on_target.contains("'film':2 'new':1"), "{on_target}");
    assert!(on_target.contains("payment_p2022_03"), "{on_target}");

    // Constraints bite.
    let fk = s.target.psql_output(
        &db.name,
        "INSERT INTO public.film_actor (actor_id, film_id) VALUES (999999, 1)",
        &[],
    );
    assert!(!fk.status.success());
    assert!(
        String::from_utf8_lossy(&fk.stderr).contains("foreign key"),
        "{}",
        String::from_utf8_lossy(&fk.stderr)
    );
    let check = s.target.psql_output(
        &db.name,
        "UPDATE public.film SET release_year = 1000 WHERE film_id = 1",
        &[],
    );
    assert!(!check.status.success(), "the domain's check holds");

    // Everything belongs to the non-superuser role that created it.
    assert_eq!(
        db.target_sql(
            "SELECT count(*) FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace \
             AND pg_get_userbyid(c.relowner) <> 'app'"
        )
        .trim(),
        "0"
    );
}

/// A schema with one of everything pgbarge recreates.
const KITCHEN_SINK: &str = r#"
CREATE EXTENSION citext;
CREATE SCHEMA app;
COMMENT ON SCHEMA app IS 'the application';
CREATE TYPE app.span AS (lo int, hi int);
CREATE SEQUENCE app.shared_seq START 100 INCREMENT 5;
CREATE FUNCTION app.code(prefix text) RETURNS text LANGUAGE sql
  AS $$ SELECT prefix || '-' || nextval('app.shared_seq') $$;
CREATE TABLE app.accounts (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code text NOT NULL DEFAULT app.code('A'),
    email citext NOT NULL UNIQUE,
    balance numeric(12,2) NOT NULL DEFAULT 0 CHECK (balance >= 0),
    balance_cents bigint GENERATED ALWAYS AS ((balance * 100)::bigint) STORED,
    touched text
);
COMMENT ON TABLE app.accounts IS 'who pays';
COMMENT ON COLUMN app.accounts.email IS 'unique, case-insensitive';
CREATE INDEX accounts_lower_code ON app.accounts (lower(code)) WHERE balance > 0;
CREATE TABLE app.bookings (
    id integer PRIMARY KEY DEFAULT nextval('app.shared_seq'),
    account_id bigint NOT NULL REFERENCES app.accounts ON DELETE CASCADE,
    room int NOT NULL,
    during tsrange NOT NULL,
    span app.span,
    EXCLUDE USING gist (room WITH =, during WITH &&)
) ;
CREATE FUNCTION app.touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.touched := 'by trigger'; RETURN NEW; END $$;
CREATE TRIGGER accounts_touch BEFORE INSERT OR UPDATE ON app.accounts
  FOR EACH ROW EXECUTE FUNCTION app.touch();
CREATE TRIGGER accounts_off BEFORE DELETE ON app.accounts
  FOR EACH ROW EXECUTE FUNCTION app.touch();
ALTER TABLE app.accounts DISABLE TRIGGER accounts_off;
CREATE VIEW app.rich AS SELECT id, email FROM app.accounts WHERE balance > 100;
CREATE VIEW app.rich_count AS SELECT count(*) AS n FROM app.rich;
CREATE MATERIALIZED VIEW app.room_use AS SELECT room, count(*) AS n FROM app.bookings GROUP BY room;
CREATE UNIQUE INDEX room_use_room ON app.room_use (room);
CREATE RULE no_delete_rich AS ON DELETE TO app.rich DO INSTEAD NOTHING;
CREATE UNLOGGED TABLE app.scratch (
    id int GENERATED BY DEFAULT AS IDENTITY (START WITH 1000 INCREMENT BY 10) PRIMARY KEY,
    note text
) WITH (fillfactor = 70);
ALTER TABLE app.scratch ENABLE ROW LEVEL SECURITY;
ALTER TABLE app.scratch FORCE ROW LEVEL SECURITY;
CREATE POLICY visible ON app.scratch FOR SELECT USING (note IS NOT NULL);
CREATE POLICY short_notes ON app.scratch AS RESTRICTIVE FOR ALL TO PUBLIC
  USING (true) WITH CHECK (length(note) < 100);
ALTER TABLE app.bookings REPLICA IDENTITY FULL;
ALTER TABLE app.accounts CLUSTER ON accounts_pkey;
ALTER TABLE app.accounts ALTER COLUMN touched SET STORAGE EXTERNAL;
ALTER TABLE app.accounts ALTER COLUMN touched SET COMPRESSION pglz;
ALTER TABLE app.accounts ALTER COLUMN code SET STATISTICS 500;
ALTER TABLE app.accounts ALTER COLUMN code SET (n_distinct = 5);
CREATE STATISTICS app.accounts_stats (dependencies) ON code, balance FROM app.accounts;
"#;

#[test]
fn a_whole_schema_keeps_its_objects_and_triggers_do_not_fire_on_copied_rows() {
    let db = TestDb::new("sink");
    let btree_gist = "CREATE EXTENSION IF NOT EXISTS btree_gist;";
    db.source_sql(&format!("{btree_gist}{KITCHEN_SINK}"));
    db.source_sql(
        "INSERT INTO app.accounts (email, balance) \
           SELECT 'User' || g || '@Example.com', g * 10 FROM generate_series(1, 50) g;
         ALTER TABLE app.accounts DISABLE TRIGGER accounts_touch;
         UPDATE app.accounts SET touched = 'source value ' || id;
         ALTER TABLE app.accounts ENABLE TRIGGER accounts_touch;
         INSERT INTO app.bookings (account_id, room, during, span) \
           SELECT g, g % 5, tsrange('2026-01-01'::timestamp + g * interval '1 day', \
                  '2026-01-01'::timestamp + (g + 1) * interval '1 day'), ROW(g, g + 1)::app.span \
           FROM generate_series(1, 50) g;
         REFRESH MATERIALIZED VIEW app.room_use;
         INSERT INTO app.scratch (note) SELECT 'n' || g FROM generate_series(1, 20) g;
         INSERT INTO app.scratch (note) VALUES (NULL);",
    );
    // btree_gist is not trusted: as on a managed service, an administrator installs it.
    db.target_sql(btree_gist);

    let run = db.copy(&["app.*", "--yes"]);
    run.assert_ok();
    let s = servers();
    let dump = |c: &support::Cluster| {
        let out = std::process::Command::new("pg_dump")
            .args([
                "--schema-only",
                "--no-owner",
                "--no-privileges",
                "-n",
                "app",
            ])
            .arg("-h")
            .arg(&c.dir)
            .arg("-p")
            .arg(c.port.to_string())
            .args(["-U", "postgres", &db.name])
            .output()
            .expect("pg_dump");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_same_schema(&dump(&s.source), &dump(&s.target));
    for t in [
        "app.accounts",
        "app.bookings",
        "app.room_use",
        "app.scratch",
    ] {
        db.assert_same(t);
    }
    assert_eq!(
        db.target_sql(
            "SELECT relpersistence, relforcerowsecurity, reloptions, \
                    (SELECT count(*) FROM pg_policy WHERE polrelid = c.oid) \
             FROM pg_class c WHERE oid = 'app.scratch'::regclass"
        )
        .trim(),
        "u|t|{fillfactor=70}|2"
    );
    // The trigger did not fire on copied rows...
    assert_eq!(
        db.target_sql("SELECT touched FROM app.accounts WHERE id = 7")
            .trim(),
        "source value 7"
    );
    // ...but fires on new ones; identity, the function default and the shared sequence
    // continue where the source stopped.
    let insert = "BEGIN; INSERT INTO app.accounts (email) VALUES ('new@example.com') \
                  RETURNING id, code, touched; ROLLBACK;";
    assert_eq!(db.source_sql(insert), db.target_sql_as_app(insert));
    assert!(db.target_sql_as_app(insert).contains("by trigger"));
    // citext came along, so uniqueness is case-insensitive; the exclusion constraint holds.
    let dup = s.target.psql_output(
        &db.name,
        "INSERT INTO app.accounts (email) VALUES ('USER1@example.COM')",
        &[],
    );
    assert!(!dup.status.success());
    let overlap = s.target.psql_output(
        &db.name,
        "INSERT INTO app.bookings (account_id, room, during) \
         SELECT account_id, room, during FROM app.bookings LIMIT 1",
        &[],
    );
    assert!(String::from_utf8_lossy(&overlap.stderr).contains("exclusion"));
    assert_eq!(
        db.target_sql("SELECT n FROM app.rich_count").trim(),
        db.source_sql("SELECT n FROM app.rich_count").trim()
    );
}

#[test]
fn foreign_keys_to_tables_left_behind_need_a_decision() {
    let db = TestDb::new("parents");
    db.source_sql(
        "CREATE TABLE public.country (id int PRIMARY KEY, name text);
         CREATE TABLE public.city (id int PRIMARY KEY, country_id int REFERENCES public.country);
         CREATE TABLE public.street (id int PRIMARY KEY, city_id int REFERENCES public.city);
         INSERT INTO public.country VALUES (1, 'A');
         INSERT INTO public.city VALUES (1, 1);
         INSERT INTO public.street VALUES (1, 1), (2, 1);",
    );
    let refused = db.copy(&["street", "--yes"]);
    assert_eq!(refused.code, 3, "{}", refused.stderr);
    assert!(refused.stderr.contains("public.city"), "{}", refused.stderr);
    assert!(
        refused.stderr.contains("--with-parents"),
        "{}",
        refused.stderr
    );
    assert!(!db.target_has_table("public", "street"));

    // --with-parents follows the chain: street → city → country.
    let run = db.copy(&["street", "--with-parents", "--yes"]);
    run.assert_ok();
    assert!(run.stdout.contains("3 tables"), "{}", run.stdout);
    assert_eq!(
        db.target_sql(
            "SELECT count(*) FROM pg_constraint WHERE contype = 'f' \
             AND connamespace = 'public'::regnamespace"
        )
        .trim(),
        "2"
    );

    // --without-fks: the table alone, without its foreign key.
    let other = TestDb::new("parents_without");
    other.source_sql(
        "CREATE TABLE public.city (id int PRIMARY KEY);
         CREATE TABLE public.street (id int PRIMARY KEY, city_id int REFERENCES public.city);
         INSERT INTO public.city VALUES (1); INSERT INTO public.street VALUES (1, 1);",
    );
    let run = other.copy(&["street", "--without-fks", "--yes"]);
    run.assert_ok();
    assert!(!other.target_has_table("public", "city"));
    assert_eq!(
        other
            .target_sql("SELECT count(*) FROM pg_constraint WHERE contype = 'f'")
            .trim(),
        "0"
    );
    other.assert_same("public.street");
}

#[test]
fn owner_gives_created_objects_to_a_role() {
    let db = TestDb::new("owner");
    db.source_sql(
        "CREATE TABLE public.t (id serial PRIMARY KEY, v text);
         CREATE VIEW public.v AS SELECT * FROM public.t;
         INSERT INTO public.t (v) VALUES ('a');",
    );
    let missing = db.copy(&["--all", "--owner", "no_such_role", "--yes"]);
    assert_eq!(missing.code, 3, "{}", missing.stderr);
    assert!(
        missing.stderr.contains("no_such_role"),
        "{}",
        missing.stderr
    );
    assert!(!db.target_has_table("public", "t"));

    db.target_sql(
        "DO $$ BEGIN CREATE ROLE app_owner NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
         GRANT app_owner TO app;",
    );
    // The new owner must be allowed to create in the schema: preflight says so first.
    let no_create = db.copy(&["--all", "--owner", "app_owner", "--yes"]);
    assert_eq!(no_create.code, 3, "{}", no_create.stderr);
    assert!(
        no_create
            .stderr
            .contains("GRANT CREATE ON SCHEMA \"public\" TO \"app_owner\""),
        "{}",
        no_create.stderr
    );
    db.target_sql("GRANT CREATE ON SCHEMA public TO app_owner");
    db.copy(&["--all", "--owner", "app_owner", "--yes"])
        .assert_ok();
    assert_eq!(
        db.target_sql(
            "SELECT string_agg(relname || ':' || pg_get_userbyid(relowner), ',' ORDER BY relname) \
             FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r', 'v', 'S')"
        )
        .trim(),
        "t:app_owner,t_id_seq:app_owner,v:app_owner"
    );
}

#[test]
fn data_only_into_tables_with_foreign_keys_loads_parents_first() {
    let db = TestDb::new("fk_order");
    // The child is by far the biggest, so biggest-first alone would load it first.
    db.source_sql(
        "CREATE TABLE public.region (id int PRIMARY KEY);
         CREATE TABLE public.shop (id int PRIMARY KEY, region_id int NOT NULL REFERENCES public.region);
         CREATE TABLE public.sale (id int PRIMARY KEY, shop_id int NOT NULL REFERENCES public.shop,
                                   note text);
         INSERT INTO public.region SELECT g FROM generate_series(1, 10) g;
         INSERT INTO public.shop SELECT g, 1 + g % 10 FROM generate_series(1, 100) g;
         INSERT INTO public.sale SELECT g, 1 + g % 100, repeat('x', 200) FROM generate_series(1, 50000) g;
         CREATE SEQUENCE public.counter_seq;
         CREATE TABLE public.counter (id int PRIMARY KEY DEFAULT nextval('public.counter_seq'));
         INSERT INTO public.counter SELECT nextval('public.counter_seq') FROM generate_series(1, 7);
         ANALYZE;",
    );
    db.copy(&["--all", "--schema-only", "--yes"]).assert_ok();
    let run = db.copy(&["--all", "--data-only", "--jobs", "3", "--yes"]);
    run.assert_ok();
    for t in ["public.region", "public.shop", "public.sale"] {
        db.assert_same(t);
    }
    // The sequence the schema-only run created (at its start) moved past the copied ids.
    assert_eq!(
        db.target_sql_as_app("INSERT INTO public.counter DEFAULT VALUES RETURNING id")
            .trim(),
        "8"
    );

    // Refreshing: tables linked by foreign keys are truncated together (no CASCADE) and
    // reloaded parents first; a parent alone cannot be truncated under its children.
    db.source_sql("INSERT INTO public.region VALUES (11); UPDATE public.sale SET note = 'changed' WHERE id = 5;");
    let alone = db.copy(&["region", "--mode", "truncate", "--yes"]);
    assert_eq!(alone.code, 3, "{}", alone.stderr);
    assert!(
        alone.stderr.contains("public.region: cannot be truncated"),
        "{}",
        alone.stderr
    );
    let run = db.copy(&["--all", "--mode", "truncate", "--jobs", "3", "--yes"]);
    run.assert_ok();
    for t in [
        "public.region",
        "public.shop",
        "public.sale",
        "public.counter",
    ] {
        db.assert_same(t);
    }
}

#[test]
fn grants_copy_privileges_to_roles_that_exist() {
    let db = TestDb::new("grants");
    let roles = "DO $$ BEGIN CREATE ROLE reader NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
                 DO $$ BEGIN CREATE ROLE writer NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$;";
    db.source_sql(&format!(
        "{roles}
         CREATE SCHEMA shop;
         CREATE TABLE shop.items (id serial PRIMARY KEY, v text);
         CREATE VIEW shop.names AS SELECT v FROM shop.items;
         CREATE FUNCTION shop.secret() RETURNS int LANGUAGE sql AS 'SELECT 42';
         GRANT USAGE ON SCHEMA shop TO reader, writer;
         GRANT SELECT ON shop.items, shop.names TO reader;
         GRANT INSERT, UPDATE ON shop.items TO writer WITH GRANT OPTION;
         GRANT USAGE ON SEQUENCE shop.items_id_seq TO writer;
         REVOKE EXECUTE ON FUNCTION shop.secret() FROM PUBLIC;
         GRANT EXECUTE ON FUNCTION shop.secret() TO writer;"
    ));
    db.target_sql("DROP ROLE IF EXISTS writer");
    db.target_sql("DO $$ BEGIN CREATE ROLE reader NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$;");
    let refused = db.copy(&["shop.*", "--grants", "--yes"]);
    assert_eq!(refused.code, 3, "{}", refused.stderr);
    assert!(refused.stderr.contains("writer"), "{}", refused.stderr);

    db.target_sql(roles);
    db.copy(&["shop.*", "--grants", "--yes"]).assert_ok();
    let grants = |c: &support::Cluster| -> Vec<String> {
        let out = std::process::Command::new("pg_dump")
            .args(["--schema-only", "--no-owner", "-n", "shop"])
            .arg("-h")
            .arg(&c.dir)
            .arg("-p")
            .arg(c.port.to_string())
            .args(["-U", "postgres", &db.name])
            .output()
            .expect("pg_dump");
        let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.starts_with("GRANT") || l.starts_with("REVOKE"))
            .map(str::to_string)
            .collect();
        lines.sort();
        lines
    };
    let s = servers();
    let (on_source, on_target) = (grants(&s.source), grants(&s.target));
    assert!(on_source.len() >= 6, "{on_source:?}");
    assert_eq!(on_source, on_target);
}

/// Definitions that tripped earlier versions: a function taking a table's row type, a
/// unique index on a partitioned table, a SQL-standard function body reading a table, a
/// check calling a function that calls another one unqualified, a descending sequence.
#[test]
fn awkward_definitions_copy_and_keep_working() {
    let db = TestDb::new("awkward");
    db.source_sql(
        "CREATE TYPE public.mood AS ENUM ('a', 'b');
         CREATE TABLE public.person (id int PRIMARY KEY, m public.mood);
         CREATE FUNCTION public.describe(p public.person) RETURNS text LANGUAGE sql
           AS 'SELECT p.id::text || p.m::text';
         CREATE TABLE public.m (k int, v int) PARTITION BY RANGE (k);
         CREATE TABLE public.m1 PARTITION OF public.m FOR VALUES FROM (0) TO (10);
         CREATE UNIQUE INDEX m_kv ON public.m (k, v);
         CREATE FUNCTION public.people() RETURNS bigint LANGUAGE sql
           BEGIN ATOMIC SELECT count(*) FROM public.person; END;
         CREATE FUNCTION public.is_even(x int) RETURNS bool LANGUAGE sql AS 'SELECT mod(x, 2) = 0';
         CREATE FUNCTION public.ok_code(x int) RETURNS bool LANGUAGE sql AS 'SELECT is_even(x)';
         CREATE TABLE public.c (id int PRIMARY KEY CHECK (public.ok_code(id)));
         CREATE COLLATION public.ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
         CREATE COLLATION public.plain (provider = libc, locale = 'C.UTF-8');
         CREATE TABLE public.names (n text COLLATE public.ci PRIMARY KEY, p text COLLATE public.plain);
         INSERT INTO public.names VALUES ('Alpha', 'x');
         CREATE SEQUENCE public.down INCREMENT -1 MINVALUE 1 MAXVALUE 100 START 100;
         CREATE TABLE public.d (id int PRIMARY KEY DEFAULT nextval('public.down'));
         INSERT INTO public.person VALUES (1, 'a'), (2, 'b');
         INSERT INTO public.m VALUES (1, 1), (2, 2);
         INSERT INTO public.c VALUES (2), (4);
         INSERT INTO public.d SELECT nextval('public.down') FROM generate_series(1, 3);",
    );
    db.copy(&["--all", "--yes"]).assert_ok();
    db.assert_same_schema();
    let s = servers();
    for t in [
        "public.person",
        "public.m",
        "public.c",
        "public.d",
        "public.names",
    ] {
        db.assert_same(t);
    }
    // The case-insensitive collation came along: 'ALPHA' is a duplicate key.
    let dup = s
        .target
        .psql_output(&db.name, "INSERT INTO public.names VALUES ('ALPHA')", &[]);
    assert!(!dup.status.success(), "case-insensitive key");
    // The partitioned unique index is valid and enforced through the partitions.
    let dup = s
        .target
        .psql_output(&db.name, "INSERT INTO public.m VALUES (1, 1)", &[]);
    assert!(!dup.status.success(), "unique across the partition");
    assert_eq!(
        db.target_sql_as_app(
            "SELECT public.people(), public.describe(p) FROM public.person p WHERE id = 2"
        )
        .trim(),
        "2|2b"
    );
    // The descending sequence continues downwards, after a data-only reload too.
    let next = "BEGIN; INSERT INTO public.d DEFAULT VALUES RETURNING id; ROLLBACK;";
    assert_eq!(db.target_sql_as_app(next).trim(), "97");
    db.copy(&["public.d", "--mode", "truncate", "--yes"])
        .assert_ok();
    // The target (at 97, handed out above) is already past the source (98): kept.
    assert_eq!(db.target_sql_as_app(next).trim(), "96");
}

#[test]
fn loading_existing_tables_does_not_fire_their_triggers() {
    let db = TestDb::new("quiet_triggers");
    db.source_sql(
        "CREATE TABLE public.t (id int PRIMARY KEY, updated_at timestamptz);
         CREATE TABLE public.audit (n int);
         CREATE FUNCTION public.touch() RETURNS trigger LANGUAGE plpgsql
           AS $$BEGIN NEW.updated_at := now(); RETURN NEW; END$$;
         CREATE FUNCTION public.log() RETURNS trigger LANGUAGE plpgsql
           AS $$BEGIN INSERT INTO public.audit VALUES (1); RETURN NULL; END$$;
         CREATE TRIGGER touch BEFORE INSERT OR UPDATE ON public.t
           FOR EACH ROW EXECUTE FUNCTION public.touch();
         CREATE TRIGGER log AFTER INSERT ON public.t
           FOR EACH STATEMENT EXECUTE FUNCTION public.log();
         ALTER TABLE public.t DISABLE TRIGGER USER;
         INSERT INTO public.t VALUES (1, '2020-01-01'), (2, '2021-01-01');
         ALTER TABLE public.t ENABLE TRIGGER touch;
         ALTER TABLE public.t ENABLE ALWAYS TRIGGER log;",
    );
    db.copy(&["public.t", "public.audit", "--schema-only", "--yes"])
        .assert_ok();
    let run = db.copy(&["public.t", "--data-only", "--yes", "--verify"]);
    run.assert_ok();
    db.assert_same("public.t");
    assert_eq!(
        db.target_sql("SELECT count(*) FROM public.audit").trim(),
        "0"
    );
    // Put back as they were: one ENABLE, one ENABLE ALWAYS.
    assert_eq!(
        db.target_sql("SELECT string_agg(tgname || ':' || tgenabled::text, ',' ORDER BY tgname) FROM pg_trigger WHERE tgrelid = 'public.t'::regclass")
            .trim(),
        "log:A,touch:O"
    );
}

#[test]
fn rows_hidden_from_the_source_role_by_policies_are_an_error_not_a_partial_copy() {
    let db = TestDb::new("hidden_rows");
    db.source_sql(
        "DO $$ BEGIN CREATE ROLE limited LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
         CREATE TABLE public.secret (id int PRIMARY KEY, owner text);
         INSERT INTO public.secret VALUES (1, 'limited'), (2, 'other'), (3, 'other');
         ALTER TABLE public.secret ENABLE ROW LEVEL SECURITY;
         CREATE POLICY mine ON public.secret USING (owner = current_user);
         GRANT SELECT ON public.secret TO limited;",
    );
    let source = db.source_conn().replace("user=postgres", "user=limited");
    let run = support::pgbarge(&[
        "copy",
        "--source",
        &source,
        "--target",
        &db.target_conn(),
        "public.secret",
        "--yes",
    ]);
    assert_eq!(run.code, 3, "preflight refuses it: {}", run.stderr);
    assert!(run.stderr.contains("row-level security"), "{}", run.stderr);
    assert!(!db.target_has_table("public", "secret"));
}

#[test]
fn after_a_failed_table_the_loaded_ones_still_get_their_objects() {
    let db = TestDb::new("salvage");
    db.source_sql(
        "CREATE TABLE public.customers (id int PRIMARY KEY);
         CREATE TABLE public.orders (id int PRIMARY KEY, customer_id int REFERENCES public.customers);
         CREATE FUNCTION public.noop() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$;
         CREATE TRIGGER orders_noop BEFORE UPDATE ON public.orders FOR EACH ROW EXECUTE FUNCTION public.noop();
         COMMENT ON TABLE public.orders IS 'orders';
         INSERT INTO public.customers SELECT g FROM generate_series(1, 20000) g;
         INSERT INTO public.orders VALUES (1, 1);",
    );
    // On the target, customers exists and refuses the later rows, slowly: it fails after
    // orders is in.
    db.target_sql_as_app(
        "CREATE FUNCTION public.slow_ok(id int) RETURNS bool LANGUAGE plpgsql AS
           $$ BEGIN PERFORM pg_sleep(0.0002); RETURN id < 2000; END $$;
         CREATE TABLE public.customers (id int PRIMARY KEY CHECK (public.slow_ok(id)));",
    );
    let run = db.copy(&["customers", "orders", "--jobs", "2", "--yes"]);
    assert_eq!(run.code, 5, "{}", run.stderr);
    assert!(
        run.stderr.contains("For the 1 table that did load"),
        "{}",
        run.stderr
    );
    db.assert_same("public.orders");
    assert_eq!(
        db.target_sql(
            "SELECT (SELECT count(*) FROM pg_trigger WHERE tgname = 'orders_noop'), \
                    obj_description('public.orders'::regclass), \
                    (SELECT count(*) FROM pg_constraint WHERE contype = 'f' \
                     AND connamespace = 'public'::regnamespace)"
        )
        .trim(),
        "1|orders|0",
        "the trigger and comment of the loaded table, not the key to the failed one"
    );
}

#[test]
fn a_parent_copied_later_gets_the_foreign_keys_pointing_at_it() {
    let db = TestDb::new("later_parent");
    db.source_sql(
        "CREATE TABLE public.customers (id int PRIMARY KEY);
         CREATE TABLE public.orders (id int PRIMARY KEY, customer_id int,
           CONSTRAINT orders_customer FOREIGN KEY (customer_id) REFERENCES public.customers);
         INSERT INTO public.customers VALUES (1), (2); INSERT INTO public.orders VALUES (1, 2);
         ALTER TABLE public.customers ADD CONSTRAINT few CHECK (id < 0) NOT VALID;",
    );
    db.copy(&["orders", "--without-fks", "--yes"]).assert_ok();
    // The parent alone: its NOT VALID check (broken by its rows) is added after the data,
    // and the children's key to it is created, since they lack it.
    db.copy(&["customers", "--yes"]).assert_ok();
    db.assert_same("public.customers");
    assert_eq!(
        db.target_sql(
            "SELECT string_agg(conname || ':' || convalidated, ',' ORDER BY conname) \
             FROM pg_constraint WHERE contype IN ('f', 'c') \
             AND connamespace = 'public'::regnamespace"
        )
        .trim(),
        "few:false,orders_customer:true"
    );
}

#[test]
fn inheritance_is_kept() {
    let db = TestDb::new("inherits");
    db.source_sql(
        "CREATE TABLE public.base (id int PRIMARY KEY, n text NOT NULL DEFAULT 'x' CHECK (n <> ''));
         CREATE TABLE public.kid (extra int) INHERITS (public.base);
         CREATE TABLE public.grandkid () INHERITS (public.kid);
         INSERT INTO public.base VALUES (1, 'b');
         INSERT INTO public.kid VALUES (2, 'k', 20);
         INSERT INTO public.grandkid VALUES (3, 'g', 30);",
    );
    let run = db.copy(&["--all", "--yes", "--verify", "--jobs", "3"]);
    run.assert_ok();
    db.assert_same_schema();
    // Reading the parent includes its children's rows, as on the source.
    assert_eq!(
        db.target_sql("SELECT string_agg(id::text, ',' ORDER BY id) FROM public.base")
            .trim(),
        "1,2,3"
    );
    // A child alone needs its parent.
    let other = TestDb::new("inherits_alone");
    other.source_sql(
        "CREATE TABLE public.base (id int); CREATE TABLE public.kid () INHERITS (public.base);",
    );
    let refused = other.copy(&["kid", "--yes"]);
    assert_eq!(refused.code, 3, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("inherits from"),
        "{}",
        refused.stderr
    );
    other.copy(&["kid", "--with-parents", "--yes"]).assert_ok();
}

/// What a second review found: tables without columns, reg* and tsquery values, upsert
/// into GENERATED ALWAYS identity, extensions only an index needs, and a --schema-only
/// run completing tables an interrupted run left without keys or triggers.
#[test]
fn odd_tables_and_completing_an_unfinished_schema() {
    let db = TestDb::new("odd");
    db.source_sql(
        "CREATE EXTENSION IF NOT EXISTS pg_trgm;
         CREATE TABLE public.nocols ();
         INSERT INTO public.nocols DEFAULT VALUES; INSERT INTO public.nocols DEFAULT VALUES;
         CREATE TABLE public.refs (id int PRIMARY KEY, r regclass, t regtype, q tsquery);
         INSERT INTO public.refs VALUES (1, 'public.nocols', 'int4', ''), (2, NULL, 'text[]', 'a & b');
         CREATE INDEX refs_trgm ON public.refs USING gin ((q::text) gin_trgm_ops);
         CREATE TABLE public.ids (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, v text);
         INSERT INTO public.ids (v) VALUES ('a'), ('b');",
    );
    db.copy(&["--all", "--yes", "--verify"]).assert_ok();
    for t in ["public.nocols", "public.refs", "public.ids"] {
        db.assert_same(t);
    }
    assert_eq!(
        db.target_sql("SELECT count(*) FROM public.nocols").trim(),
        "2"
    );
    assert_eq!(
        db.target_sql("SELECT r::text FROM public.refs WHERE id = 1")
            .trim(),
        "nocols",
        "a regclass arrives as the name it denotes, not an OID (and after that table)"
    );
    // Upsert into a GENERATED ALWAYS identity column.
    db.source_sql("UPDATE public.ids SET v = 'changed' WHERE id = 2; INSERT INTO public.ids (v) VALUES ('c');");
    db.copy(&["public.ids", "--mode", "upsert", "--yes"])
        .assert_ok();
    db.assert_same("public.ids");

    // A copy whose last step did not happen (here: keys left out, a trigger dropped):
    // --schema-only adds what the existing tables lack.
    let other = TestDb::new("unfinished");
    other.source_sql(
        "CREATE TABLE public.p (id int PRIMARY KEY);
         CREATE TABLE public.c (id int PRIMARY KEY, p_id int REFERENCES public.p);
         CREATE FUNCTION public.noop() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$;
         CREATE TRIGGER c_noop BEFORE UPDATE ON public.c FOR EACH ROW EXECUTE FUNCTION public.noop();
         INSERT INTO public.p VALUES (1); INSERT INTO public.c VALUES (1, 1);",
    );
    other.copy(&["--all", "--without-fks", "--yes"]).assert_ok();
    other.target_sql("DROP TRIGGER c_noop ON public.c");
    let run = other.copy(&["--all", "--schema-only", "--yes"]);
    run.assert_ok();
    assert_eq!(
        other
            .target_sql(
                "SELECT (SELECT count(*) FROM pg_constraint WHERE contype = 'f'), \
                        (SELECT count(*) FROM pg_trigger WHERE tgname = 'c_noop')"
            )
            .trim(),
        "1|1"
    );
    // Preflight hints name the actual role, ready to paste.
    other.target_sql("REVOKE CREATE ON SCHEMA public FROM PUBLIC; CREATE SCHEMA locked;");
    other.source_sql("CREATE SCHEMA locked; CREATE TABLE locked.t (id int);");
    let refused = other.copy(&["locked.t", "--yes"]);
    assert_eq!(refused.code, 3, "{}", refused.stderr);
    assert!(refused.stderr.contains("TO \"app\""), "{}", refused.stderr);
    assert!(!refused.stderr.contains("<role>"), "{}", refused.stderr);
}

#[test]
fn schema_only_then_data_only_keeps_not_valid_constraints_not_valid() {
    let db = TestDb::new("not_valid_twice");
    db.source_sql(
        "CREATE TABLE public.p (id int PRIMARY KEY);
         CREATE TABLE public.c (id int PRIMARY KEY, p_id int);
         INSERT INTO public.p VALUES (1); INSERT INTO public.c VALUES (1, 1), (2, 99);
         ALTER TABLE public.c ADD CONSTRAINT c_small CHECK (id < 2) NOT VALID;
         ALTER TABLE public.c ADD CONSTRAINT c_p FOREIGN KEY (p_id) REFERENCES public.p NOT VALID;",
    );
    db.copy(&["--all", "--schema-only", "--yes"]).assert_ok();
    db.copy(&["--all", "--data-only", "--yes"]).assert_ok();
    db.assert_same("public.c");
    assert_eq!(
        db.target_sql(
            "SELECT string_agg(conname || ':' || convalidated, ',' ORDER BY conname) \
             FROM pg_constraint WHERE conrelid = 'public.c'::regclass AND contype IN ('c', 'f')"
        )
        .trim(),
        "c_p:false,c_small:false"
    );
    // New rows are still checked.
    let bad = servers()
        .target
        .psql_output(&db.name, "INSERT INTO public.c VALUES (5, 1)", &[]);
    assert!(!bad.status.success());
}

#[test]
fn a_column_of_a_tables_row_type_needs_that_table() {
    let db = TestDb::new("row_type");
    db.source_sql(
        "CREATE SCHEMA s1; CREATE SCHEMA s2;
         CREATE TABLE s2.zaddr (street text, zip text);
         CREATE TABLE s1.person (id int PRIMARY KEY, home s2.zaddr, past s2.zaddr[]);
         INSERT INTO s1.person VALUES (1, ROW('Main St', '123'), ARRAY[ROW('Old St', '9')::s2.zaddr]);",
    );
    let refused = db.copy(&["s1.*", "--yes"]);
    assert_eq!(refused.code, 3, "{}", refused.stderr);
    assert!(refused.stderr.contains("s2.zaddr"), "{}", refused.stderr);
    db.copy(&["s1.*", "--with-parents", "--yes"]).assert_ok();
    db.assert_same("s1.person");
    assert_eq!(
        db.target_sql("SELECT relkind FROM pg_class WHERE oid = 's2.zaddr'::regclass")
            .trim(),
        "r",
        "the row type's table, not a look-alike composite type"
    );
}

#[test]
fn tables_whose_keys_form_a_cycle_are_created_and_refreshed() {
    let db = TestDb::new("cycle");
    db.source_sql(
        "CREATE TABLE public.a (id int PRIMARY KEY, b_id int);
         CREATE TABLE public.b (id int PRIMARY KEY, a_id int REFERENCES public.a);
         ALTER TABLE public.a ADD FOREIGN KEY (b_id) REFERENCES public.b;
         INSERT INTO public.a VALUES (1, NULL); INSERT INTO public.b VALUES (1, 1);
         UPDATE public.a SET b_id = 1;",
    );
    db.copy(&["--all", "--yes"]).assert_ok();
    db.source_sql("INSERT INTO public.a VALUES (2, NULL); INSERT INTO public.b VALUES (2, 2); UPDATE public.a SET b_id = 2 WHERE id = 2;");
    let run = db.copy(&["--all", "--mode", "truncate", "--yes"]);
    run.assert_ok();
    assert!(run.stderr.contains("form a cycle"), "{}", run.stderr);
    db.assert_same("public.a");
    db.assert_same("public.b");
    assert_eq!(
        db.target_sql("SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND convalidated")
            .trim(),
        "2"
    );
}

#[test]
fn refreshing_with_truncate_works_when_a_linked_table_is_empty_on_the_target() {
    let db = TestDb::new("refresh_empty");
    db.source_sql(
        "CREATE TABLE public.customers (id int PRIMARY KEY);
         CREATE TABLE public.orders (id int PRIMARY KEY, customer_id int REFERENCES public.customers);
         CREATE TABLE public.notes (id int PRIMARY KEY, order_id int REFERENCES public.orders,
                                    parent int REFERENCES public.notes);
         INSERT INTO public.customers VALUES (1), (2); INSERT INTO public.orders VALUES (1, 1);",
    );
    // notes is empty (on both sides): it used to be planned as a plain load, left out of
    // the group's TRUNCATE, which then refused customers and orders.
    db.copy(&["--all", "--yes"]).assert_ok();
    db.source_sql(
        "INSERT INTO public.customers VALUES (3); INSERT INTO public.orders VALUES (2, 3);
         INSERT INTO public.notes VALUES (1, 2, NULL), (2, 2, 1);",
    );
    db.copy(&["--all", "--mode", "truncate", "--yes"])
        .assert_ok();
    // And again, now that every table holds rows.
    db.source_sql(
        "DELETE FROM public.notes WHERE id = 2; UPDATE public.orders SET customer_id = 2;",
    );
    db.copy(&["--all", "--mode", "truncate", "--yes"])
        .assert_ok();
    for t in ["public.customers", "public.orders", "public.notes"] {
        db.assert_same(t);
    }
}

/// What a code review found: a comment on a foreign key left out, FORCE without ENABLE,
/// a function locked down to its owner, an index on a sub-partitioned partition, an
/// unused range type in a schema copied whole, a partition the target's table lacks.
#[test]
fn review_findings_stay_fixed() {
    let db = TestDb::new("review");
    db.source_sql(
        "CREATE SCHEMA app;
         CREATE TYPE app.span AS RANGE (subtype = int4);
         CREATE TABLE app.p (id int PRIMARY KEY);
         CREATE TABLE app.c (id int PRIMARY KEY, p_id int CONSTRAINT c_p REFERENCES app.p);
         COMMENT ON CONSTRAINT c_p ON app.c IS 'the parent';
         CREATE TABLE app.forced (id int); ALTER TABLE app.forced FORCE ROW LEVEL SECURITY;
         CREATE FUNCTION app.secret() RETURNS int LANGUAGE sql AS 'SELECT 1';
         REVOKE EXECUTE ON FUNCTION app.secret() FROM PUBLIC;
         CREATE TABLE app.m (k int, s text) PARTITION BY RANGE (k);
         CREATE TABLE app.m1 PARTITION OF app.m FOR VALUES FROM (0) TO (10) PARTITION BY LIST (s);
         CREATE TABLE app.m1a PARTITION OF app.m1 FOR VALUES IN ('a');
         CREATE INDEX m1_s ON app.m1 (s);
         INSERT INTO app.p VALUES (1); INSERT INTO app.c VALUES (1, 1); INSERT INTO app.m VALUES (1, 'a');",
    );
    // The unused range type does not block the schema; the key is left out with its comment.
    db.copy(&["app.*", "--without-fks", "--grants", "--yes"])
        .assert_ok();
    assert_eq!(
        db.target_sql(
            "SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE oid = 'app.forced'::regclass"
        )
        .trim(),
        "f|t"
    );
    assert_eq!(
        db.target_sql("SELECT has_function_privilege('public', 'app.secret()', 'EXECUTE')")
            .trim(),
        "f",
        "PUBLIC's EXECUTE stays revoked"
    );
    assert_eq!(
        db.target_sql(
            "SELECT bool_and(indisvalid), count(*) FROM pg_index \
             WHERE indrelid IN ('app.m1'::regclass, 'app.m1a'::regclass)"
        )
        .trim(),
        "t|2"
    );

    // A target partitioned table without one of the source's partitions: said up front.
    let other = TestDb::new("review_parts");
    other.source_sql(
        "CREATE TABLE public.m (k int) PARTITION BY RANGE (k);
         CREATE TABLE public.m1 PARTITION OF public.m FOR VALUES FROM (0) TO (10);
         CREATE TABLE public.m2 PARTITION OF public.m FOR VALUES FROM (10) TO (20);
         INSERT INTO public.m VALUES (1), (15);",
    );
    other.target_sql_as_app(
        "CREATE TABLE public.m (k int) PARTITION BY RANGE (k);
         CREATE TABLE public.m1 PARTITION OF public.m FOR VALUES FROM (0) TO (10);",
    );
    let refused = other.copy(&["public.m", "--yes"]);
    assert_eq!(refused.code, 3, "{}", refused.stderr);
    assert!(refused.stderr.contains("public.m2"), "{}", refused.stderr);
}

#[test]
fn a_schema_of_views_alone_can_be_copied() {
    let db = TestDb::new("views_only");
    db.source_sql(
        "CREATE TABLE public.t (id int PRIMARY KEY, v text);
         INSERT INTO public.t VALUES (1, 'a'), (2, 'b');
         CREATE SCHEMA \"Reporting\";
         CREATE VIEW \"Reporting\".counts AS SELECT count(*) AS n FROM public.t;",
    );
    db.copy(&["public.t", "--yes"]).assert_ok();
    let run = db.copy(&[r#""Reporting".*"#, "--yes"]);
    run.assert_ok();
    assert_eq!(
        db.target_sql(r#"SELECT n FROM "Reporting".counts"#).trim(),
        "2"
    );
    // A schema that does not exist is still a missing pattern.
    let missing = db.copy(&["nosuch.*", "--yes"]);
    assert_eq!(missing.code, 3, "{}", missing.stderr);
}

#[test]
fn what_is_not_recreated_is_named_in_the_plan() {
    let db = TestDb::new("not_recreated");
    db.source_sql(
        "CREATE TABLE public.t (id int PRIMARY KEY, secret text);
         CREATE FUNCTION public.ddl_log() RETURNS event_trigger LANGUAGE plpgsql AS $$BEGIN END$$;
         CREATE EVENT TRIGGER audit_ddl ON ddl_command_end EXECUTE FUNCTION public.ddl_log();
         CREATE PUBLICATION to_analytics FOR TABLE public.t;
         DO $$ BEGIN CREATE ROLE reporting; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
         GRANT SELECT (id) ON public.t TO reporting;",
    );
    let run = db.copy(&["--all", "--dry-run"]);
    run.assert_ok();
    for needle in [
        "not created: event trigger audit_ddl: event triggers are not recreated",
        "not created: publication to_analytics: publications are not recreated",
    ] {
        assert!(run.stdout.contains(needle), "{needle}\n{}", run.stdout);
    }
    assert!(!run.stdout.contains("column privileges"), "{}", run.stdout);
    db.target_sql(
        "DO $$ BEGIN CREATE ROLE reporting; EXCEPTION WHEN duplicate_object THEN NULL; END $$",
    );
    let run = db.copy(&["--all", "--grants", "--dry-run"]);
    run.assert_ok();
    assert!(
        run.stdout.contains(
            "not created: column privileges public.t.id: column-level GRANTs are not copied"
        ),
        "{}",
        run.stdout
    );
    // The event trigger must not outlive the test: it fires on every DDL of the database.
    db.source_sql("DROP EVENT TRIGGER audit_ddl");
}

/// Northwind's shape: an employee who reports to another (a self-reference), customers
/// linked to demographics through a table that is empty, orders and their lines.
const NORTHWIND: &str = "
CREATE TABLE region (region_id smallint PRIMARY KEY, region_description text NOT NULL);
CREATE TABLE territories (territory_id text PRIMARY KEY, territory_description text NOT NULL,
    region_id smallint NOT NULL REFERENCES region);
CREATE TABLE employees (employee_id smallint PRIMARY KEY, last_name text NOT NULL,
    first_name text NOT NULL, title text, reports_to smallint REFERENCES employees, photo bytea);
CREATE TABLE employee_territories (employee_id smallint REFERENCES employees,
    territory_id text REFERENCES territories, PRIMARY KEY (employee_id, territory_id));
CREATE TABLE customer_demographics (customer_type_id text PRIMARY KEY, customer_desc text);
CREATE TABLE customers (customer_id text PRIMARY KEY, company_name text NOT NULL,
    city text, country text);
CREATE TABLE customer_customer_demo (customer_id text REFERENCES customers,
    customer_type_id text REFERENCES customer_demographics,
    PRIMARY KEY (customer_id, customer_type_id));
CREATE TABLE shippers (shipper_id smallint PRIMARY KEY, company_name text NOT NULL);
CREATE TABLE categories (category_id smallint PRIMARY KEY, category_name text NOT NULL,
    description text, picture bytea);
CREATE TABLE suppliers (supplier_id smallint PRIMARY KEY, company_name text NOT NULL);
CREATE TABLE products (product_id smallint PRIMARY KEY, product_name text NOT NULL,
    supplier_id smallint REFERENCES suppliers, category_id smallint REFERENCES categories,
    unit_price real, discontinued integer NOT NULL);
CREATE TABLE orders (order_id smallint PRIMARY KEY, customer_id text REFERENCES customers,
    employee_id smallint REFERENCES employees, order_date date,
    ship_via smallint REFERENCES shippers, freight real);
CREATE TABLE order_details (order_id smallint REFERENCES orders,
    product_id smallint REFERENCES products, unit_price real NOT NULL,
    quantity smallint NOT NULL, discount real NOT NULL, PRIMARY KEY (order_id, product_id));
CREATE TABLE us_states (state_id smallint PRIMARY KEY, state_name text, state_abbr text);
INSERT INTO region VALUES (1, 'Eastern'), (2, 'Western');
INSERT INTO territories SELECT lpad(g::text, 5, '0'), 'Territory ' || g, 1 + g % 2
    FROM generate_series(1, 20) g;
INSERT INTO employees VALUES (2, 'Fuller', 'Andrew', 'Vice President', NULL, '\\x00ff');
INSERT INTO employees SELECT g, 'Last' || g, 'First' || g, 'Sales', 2, NULL
    FROM generate_series(3, 9) g;
INSERT INTO employee_territories SELECT 2 + g % 8, lpad(g::text, 5, '0')
    FROM generate_series(1, 20) g;
INSERT INTO customers SELECT 'C' || g, 'Company ' || g, 'City ' || g % 7, 'Country ' || g % 3
    FROM generate_series(1, 91) g;
INSERT INTO shippers VALUES (1, 'Speedy Express'), (2, 'United Package'), (3, 'Federal Shipping');
INSERT INTO categories SELECT g, 'Category ' || g, 'About ' || g, '\\x0102'
    FROM generate_series(1, 8) g;
INSERT INTO suppliers SELECT g, 'Supplier ' || g FROM generate_series(1, 29) g;
INSERT INTO products SELECT g, 'Product ' || g, 1 + g % 29, 1 + g % 8, g * 1.25, g % 2
    FROM generate_series(1, 77) g;
INSERT INTO orders SELECT g, 'C' || (1 + g % 91), 2 + g % 8, date '1996-07-04' + g, 1 + g % 3,
    g * 0.5 FROM generate_series(1, 830) g;
INSERT INTO order_details SELECT o, 1 + (o * 7 + k) % 77, 10.5, k, 0
    FROM generate_series(1, 830) o, generate_series(1, 3) k;
INSERT INTO us_states SELECT g, 'State ' || g, 'S' || g FROM generate_series(1, 51) g;
";

/// Running the same `--all` copy again, by truncate and by replace, on Northwind's
/// shape: an empty linked table, a self-reference, and (on the target only) a view, a
/// materialized view, a function returning a table's rows and another table's key, all
/// built on copied tables — which a replace drops and creates again as they were.
#[test]
fn northwind_refreshes_by_truncate_and_by_replace() {
    let db = TestDb::new("northwind");
    db.source_sql(NORTHWIND);
    db.copy(&["--all", "--yes"]).assert_ok();
    let tables = db.source_tables("public");
    let same = || {
        for t in &tables {
            db.assert_same(t);
        }
    };

    db.source_sql(
        "INSERT INTO customer_demographics VALUES ('A', 'first kind');
         INSERT INTO customer_customer_demo VALUES ('C5', 'A');
         UPDATE employees SET reports_to = 3 WHERE employee_id > 5;
         DELETE FROM order_details WHERE order_id = 1;",
    );
    let run = db.copy(&["--all", "--mode", "truncate", "--yes"]);
    run.assert_ok();
    same();

    // What only the target has, built on copied tables.
    db.target_sql_as_app(
        "CREATE VIEW customer_orders AS
             SELECT c.company_name, count(o.order_id) AS orders
             FROM customers c LEFT JOIN orders o USING (customer_id) GROUP BY 1;
         CREATE VIEW big_customers AS SELECT * FROM customer_orders WHERE orders > 9;
         COMMENT ON VIEW customer_orders IS 'orders per customer';
         GRANT SELECT ON customer_orders TO PUBLIC;
         CREATE MATERIALIZED VIEW product_sales AS
             SELECT product_id, sum(quantity) AS sold FROM order_details GROUP BY 1;
         CREATE UNIQUE INDEX product_sales_id ON product_sales (product_id);
         CREATE FUNCTION customers_in(p text) RETURNS SETOF customers
             LANGUAGE sql AS 'SELECT * FROM customers WHERE country = p';
         REVOKE EXECUTE ON FUNCTION customers_in(text) FROM PUBLIC;
         CREATE TABLE visits (id int PRIMARY KEY, customer_id text
             CONSTRAINT visits_customer REFERENCES customers);
         INSERT INTO visits VALUES (1, 'C1'), (2, 'C2');",
    );
    // A truncate cannot empty customers under another table's key: it says which.
    let refused = db.copy(&["--all", "--mode", "truncate", "--yes"]);
    assert_eq!(refused.code, 3, "{}", refused.stderr);
    assert!(
        refused
            .stderr
            .contains("public.visits has foreign keys pointing at it"),
        "{}",
        refused.stderr
    );

    db.source_sql(
        "INSERT INTO customers VALUES ('C92', 'Company 92', 'City 1', 'Country 1');
         INSERT INTO orders VALUES (831, 'C92', 2, '1998-05-06', 1, 1);
         INSERT INTO order_details VALUES (831, 1, 10.5, 40, 0);",
    );
    let run = db.copy(&["--all", "--mode", "replace", "--yes", "--verify"]);
    run.assert_ok();
    same();
    let check = |sql: &str, expected: &str| {
        assert_eq!(db.target_sql(sql).trim(), expected.trim(), "{sql}");
    };
    check(
        "SELECT orders FROM customer_orders WHERE company_name = 'Company 92'",
        "1",
    );
    check(
        "SELECT count(*) FROM big_customers",
        &db.source_sql(
            "SELECT count(*) FROM (SELECT customer_id FROM orders GROUP BY 1 HAVING count(*) > 9) x",
        ),
    );
    check(
        "SELECT obj_description('customer_orders'::regclass, 'pg_class')",
        "orders per customer",
    );
    check(
        "SELECT has_table_privilege('public', 'customer_orders', 'SELECT')",
        "t",
    );
    check(
        "SELECT sold FROM product_sales WHERE product_id = 1",
        &db.source_sql("SELECT sum(quantity) FROM order_details WHERE product_id = 1"),
    );
    check(
        "SELECT count(*) FROM pg_indexes WHERE indexname = 'product_sales_id'",
        "1",
    );
    check(
        "SELECT count(*) FROM customers_in('Country 1')",
        &db.source_sql("SELECT count(*) FROM customers WHERE country = 'Country 1'"),
    );
    check(
        "SELECT has_function_privilege('public', 'customers_in(text)', 'EXECUTE')",
        "f",
    );
    check(
        "SELECT convalidated FROM pg_constraint WHERE conname = 'visits_customer'",
        "t",
    );
    check("SELECT count(*) FROM visits", "2");
    // The self-reference and every other key of the copied tables are back.
    check(
        "SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND convalidated \
         AND conrelid <> 'visits'::regclass",
        &db.source_sql("SELECT count(*) FROM pg_constraint WHERE contype = 'f'"),
    );

    // A key that the new rows break: the whole replace rolls back, nothing is lost.
    db.source_sql(
        "DELETE FROM order_details WHERE order_id IN (SELECT order_id FROM orders WHERE customer_id = 'C1');
         DELETE FROM orders WHERE customer_id = 'C1'; DELETE FROM customers WHERE customer_id = 'C1';",
    );
    let run = db.copy(&["--all", "--mode", "replace", "--yes"]);
    assert_ne!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("visits_customer"), "{}", run.stderr);
    check(
        "SELECT count(*) FROM customers WHERE customer_id = 'C1'",
        "1",
    );
    check("SELECT count(*) FROM customer_orders", "92");
}

/// A schema whose keys form a cycle and a self-reference: refreshed by truncate and by
/// replace with the same `--all` command.
#[test]
fn a_key_cycle_and_a_self_reference_refresh_by_truncate_and_replace() {
    let db = TestDb::new("cycle_replace");
    db.source_sql(
        "CREATE TABLE a (id int PRIMARY KEY, b_id int);
         CREATE TABLE b (id int PRIMARY KEY, a_id int REFERENCES a);
         ALTER TABLE a ADD FOREIGN KEY (b_id) REFERENCES b;
         CREATE TABLE node (id int PRIMARY KEY, parent int REFERENCES node);
         INSERT INTO a VALUES (1, NULL); INSERT INTO b VALUES (1, 1); UPDATE a SET b_id = 1;
         INSERT INTO node VALUES (1, NULL), (2, 1), (3, 2);",
    );
    db.copy(&["--all", "--yes"]).assert_ok();
    for (round, mode) in [
        (2, "truncate"),
        (3, "replace"),
        (4, "truncate"),
        (5, "replace"),
    ] {
        db.source_sql(&format!(
            "INSERT INTO a VALUES ({round}, NULL); INSERT INTO b VALUES ({round}, {round});
             UPDATE a SET b_id = {round} WHERE id = {round};
             INSERT INTO node VALUES ({round} + 10, 1);"
        ));
        db.copy(&["--all", "--mode", mode, "--yes"]).assert_ok();
        for t in ["public.a", "public.b", "public.node"] {
            db.assert_same(t);
        }
        assert_eq!(
            db.target_sql(
                "SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND convalidated"
            )
            .trim(),
            "3",
            "after {mode}"
        );
    }
}

/// A sequence the copy creates takes the source's exact state, as pg_dump gives it (one
/// at 4 stays at 4 even when rows were inserted with larger explicit ids; one never used
/// stays unused); a sequence already on the target only moves forward.
#[test]
fn created_sequences_take_the_source_state_exactly() {
    let db = TestDb::new("seq_exact");
    db.source_sql(
        "CREATE TABLE s (id serial PRIMARY KEY, v text);
         INSERT INTO s (v) SELECT 'x' FROM generate_series(1, 4);
         INSERT INTO s VALUES (100, 'explicit');
         CREATE TABLE fresh (id int GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, v text);
         INSERT INTO fresh VALUES (7, 'explicit');",
    );
    db.copy(&["--all", "--yes"]).assert_ok();
    let state = |sql: &dyn Fn(&str) -> String, seq: &str| {
        sql(&format!("SELECT last_value || ',' || is_called FROM {seq}"))
            .trim()
            .to_string()
    };
    let source = |q: &str| db.source_sql(q);
    let target = |q: &str| db.target_sql(q);
    assert_eq!(state(&source, "s_id_seq"), "4,true");
    assert_eq!(state(&target, "s_id_seq"), "4,true");
    assert_eq!(state(&target, "fresh_id_seq"), "1,false");
    // Already on the target, now behind the copied ids: moved forward past them.
    db.source_sql("INSERT INTO s VALUES (200, 'more')");
    db.copy(&["s", "--mode", "truncate", "--yes"]).assert_ok();
    assert_eq!(state(&target, "s_id_seq"), "200,true");
}

/// DDL that failed on schemas a reviewer built: a zero-argument aggregate (and its
/// comment), a domain whose check is NOT VALID, a table sharing another table's sequence
/// (`LIKE … INCLUDING ALL`), an identity column beside a leftover serial sequence of the
/// same name, and an inheritance child with a generated column of its own.
#[test]
fn ddl_seen_on_unseen_schemas_copies() {
    let db = TestDb::new("unseen_ddl");
    db.source_sql(
        "CREATE FUNCTION public.cnt_step(int8) RETURNS int8 LANGUAGE sql AS 'SELECT $1 + 1';
         CREATE AGGREGATE public.cnt(*) (SFUNC = public.cnt_step, STYPE = int8, INITCOND = '0');
         COMMENT ON AGGREGATE public.cnt(*) IS 'counts rows';
         CREATE DOMAIN public.small_pos AS int;
         CREATE TABLE public.uses_domain (id int PRIMARY KEY, v public.small_pos);
         INSERT INTO public.uses_domain VALUES (1, -5);
         ALTER DOMAIN public.small_pos ADD CONSTRAINT small_pos_check CHECK (VALUE > 0) NOT VALID;
         CREATE TABLE public.a (id serial PRIMARY KEY, v text);
         CREATE TABLE public.b (LIKE public.a INCLUDING ALL);
         INSERT INTO public.a (v) VALUES ('a1'), ('a2');
         INSERT INTO public.b (v) SELECT 'b' || g FROM generate_series(1, 2000) g;
         CREATE SEQUENCE public.ident_id_seq;
         CREATE TABLE public.ident (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, v text);
         INSERT INTO public.ident (v) VALUES ('i1');
         CREATE TABLE public.parent (id int PRIMARY KEY, price numeric);
         CREATE TABLE public.child (taxed numeric GENERATED ALWAYS AS (price * 1.2) STORED)
             INHERITS (public.parent);
         INSERT INTO public.child (id, price) VALUES (1, 10);",
    );
    // One stream, biggest table first: b, whose default draws from a's sequence, is
    // created before a.
    let run = db.copy(&["--all", "--yes", "--jobs", "1"]);
    run.assert_ok();
    db.assert_same_schema();
    for t in [
        "public.uses_domain",
        "public.a",
        "public.b",
        "public.ident",
        "public.parent",
        "public.child",
    ] {
        db.assert_same(t);
    }
    assert_eq!(
        db.target_sql("SELECT public.cnt(*) FROM public.a").trim(),
        "2"
    );
    // New rows keep drawing from the shared sequence on both sides.
    let s = servers();
    for side in [&s.source, &s.target] {
        assert_eq!(
            side.psql(
                &db.name,
                "INSERT INTO public.b (v) VALUES ('x') RETURNING id"
            )
            .lines()
            .next()
            .unwrap_or_default()
            .trim(),
            "2003"
        );
    }
}

/// An object the cloud role can never create (a function in language internal) does not
/// stop the copy of a schema copied whole: it is left out, with the views calling it, and
/// the plan, report and JSON list both with the reason. `--strict` refuses instead, and
/// so does a table that needs the function (its default calls it).
#[test]
fn objects_the_role_cannot_create_are_left_out_out_loud_unless_needed() {
    let db = TestDb::new("left_out");
    db.source_sql(
        "CREATE SCHEMA lib;
         CREATE FUNCTION lib.fast_len(text) RETURNS int LANGUAGE internal IMMUTABLE STRICT
             AS 'textlen';
         CREATE VIEW lib.lens AS SELECT lib.fast_len('abc') AS n;
         CREATE TABLE lib.items (id int PRIMARY KEY, name text);
         INSERT INTO lib.items VALUES (1, 'a');",
    );
    let strict = db.copy(&["lib.*", "--strict", "--dry-run"]);
    assert_eq!(strict.code, 3, "{}", strict.stderr);
    assert!(
        strict
            .stderr
            .contains("function lib.fast_len(text) cannot be created"),
        "{}",
        strict.stderr
    );

    let dry = db.copy(&["lib.*", "--dry-run"]);
    dry.assert_ok();
    assert!(
        dry.stdout.contains(
            "not created: function lib.fast_len(text): it is written in language internal"
        ) && dry.stdout.contains(
            "not created: view lib.lens: it calls lib.fast_len(text), which cannot be created"
        ),
        "{}",
        dry.stdout
    );
    let run = db.copy(&["lib.*", "--yes", "--json"]);
    run.assert_ok();
    let report: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON report");
    let skipped: Vec<&str> = report["skipped"]
        .as_array()
        .map(|s| s.iter().filter_map(|s| s["what"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(
        skipped,
        vec!["function lib.fast_len(text)", "view lib.lens"],
        "{report}"
    );
    db.assert_same("lib.items");
    assert_eq!(
        db.target_sql("SELECT count(*) FROM pg_proc WHERE proname = 'fast_len'")
            .trim(),
        "0"
    );

    db.source_sql("CREATE TABLE lib.needs (id int PRIMARY KEY, n int DEFAULT lib.fast_len('xy'))");
    let refused = db.copy(&["lib.needs"]);
    assert_eq!(refused.code, 3, "{}", refused.stderr);
    assert!(
        refused
            .stderr
            .contains("function lib.fast_len(text) cannot be created on the target: it is written in language internal"),
        "{}",
        refused.stderr
    );

    // Copying the schema whole, the tables that need what cannot be created are left
    // out with the reason, and the rest load: a key pointing at one of them is left out
    // too, and so is a base type built on internal functions with its table.
    db.source_sql(
        "INSERT INTO lib.needs VALUES (1, 2);
         CREATE TABLE lib.child (id int PRIMARY KEY, needs_id int REFERENCES lib.needs);
         INSERT INTO lib.child VALUES (1, 1);
         CREATE TYPE lib.mytext;
         CREATE FUNCTION lib.mytext_in(cstring) RETURNS lib.mytext AS 'textin'
             LANGUAGE internal IMMUTABLE STRICT;
         CREATE FUNCTION lib.mytext_out(lib.mytext) RETURNS cstring AS 'textout'
             LANGUAGE internal IMMUTABLE STRICT;
         CREATE TYPE lib.mytext (input = lib.mytext_in, output = lib.mytext_out, like = text);
         CREATE TABLE lib.uses (id int PRIMARY KEY, v lib.mytext[]);",
    );
    let strict = db.copy(&["lib.*", "--strict", "--dry-run"]);
    assert_eq!(strict.code, 3, "{}", strict.stderr);
    db.target_sql("DROP SCHEMA lib CASCADE");
    let run = db.copy(&["lib.*", "--yes", "--json"]);
    run.assert_ok();
    let report: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON report");
    let skipped = report["skipped"].to_string();
    for left_out in [
        "table lib.needs\",\"why\":\"it needs function lib.fast_len(text), which is not created: it is written in language internal",
        "table lib.uses\",\"why\":\"it needs type lib.mytext, which is not created: it is a base type",
        "foreign key child_needs_id_fkey on lib.child\",\"why\":\"it references lib.needs",
    ] {
        assert!(skipped.contains(left_out), "{left_out}: {skipped}");
    }
    db.assert_same("lib.items");
    db.assert_same("lib.child");
    assert!(!db.target_has_table("lib", "needs"));
    assert!(!db.target_has_table("lib", "uses"));
}

/// Range types (and their multiranges) a non-superuser can create: a subtype_diff, a
/// collation, a multirange column.
#[test]
fn range_types_are_created() {
    let db = TestDb::new("ranges");
    db.source_sql(
        r#"CREATE TYPE public.floatrange AS RANGE (subtype = float8, subtype_diff = float8mi);
         CREATE TYPE public.textspan AS RANGE (subtype = text, collation = "C");
         CREATE TABLE public.slots (id int PRIMARY KEY, r public.floatrange,
                                    t public.textspan, m public.floatmultirange);
         INSERT INTO public.slots VALUES
             (1, '[1.5,2.5)', '[a,m]', '{[1,2), [3,4)}'), (2, 'empty', NULL, '{}');"#,
    );
    db.copy(&["--all", "--yes"]).assert_ok();
    db.assert_same_schema();
    db.assert_same("public.slots");
    assert_eq!(
        db.target_sql("SELECT r @> 2.0::float8 FROM public.slots WHERE id = 1")
            .trim(),
        "t"
    );
}

/// A domain whose check calls a plpgsql function: the domain comes before the functions
/// (a function may take it as an argument), its check after them.
#[test]
fn a_domain_check_calling_a_function_is_added_once_the_function_exists() {
    let db = TestDb::new("domain_fn");
    db.source_sql(
        "CREATE FUNCTION public.is_code(t text) RETURNS bool LANGUAGE plpgsql IMMUTABLE
             AS $$ BEGIN RETURN t ~ '^[A-Z]{3}$'; END $$;
         CREATE DOMAIN public.code AS text CONSTRAINT code_shape CHECK (public.is_code(VALUE));
         CREATE TABLE public.airports (id int PRIMARY KEY, code public.code);
         INSERT INTO public.airports VALUES (1, 'LHR'), (2, 'CDG');",
    );
    db.copy(&["--all", "--yes"]).assert_ok();
    db.assert_same_schema();
    db.assert_same("public.airports");
    let bad = servers().target.psql_output(
        &db.name,
        "INSERT INTO public.airports VALUES (3, 'nope')",
        &[],
    );
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("code_shape"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
}

/// One object after the data fails (a foreign key the target's parent rows do not
/// satisfy): the others are still created, one by one, the failure is named, and a
/// resume finishes only what is missing.
#[test]
fn one_failing_object_after_the_data_does_not_lose_the_others() {
    let db = TestDb::new("post_one");
    db.source_sql(
        "CREATE TABLE public.parent (id int PRIMARY KEY);
         CREATE TABLE public.child (id int PRIMARY KEY, p int CONSTRAINT child_p REFERENCES public.parent);
         COMMENT ON TABLE public.child IS 'kids';
         CREATE FUNCTION public.touch() RETURNS trigger LANGUAGE plpgsql
             AS $$ BEGIN NEW.id := NEW.id; RETURN NEW; END $$;
         CREATE TRIGGER child_touch BEFORE UPDATE ON public.child
             FOR EACH ROW EXECUTE FUNCTION public.touch();
         INSERT INTO public.parent VALUES (1), (2);
         INSERT INTO public.child VALUES (1, 1), (2, 2);",
    );
    db.target_sql_as_app(
        "CREATE TABLE public.parent (id int PRIMARY KEY); INSERT INTO public.parent VALUES (1);",
    );
    let run = db.copy(&["public.child", "--yes", "--retries", "0"]);
    assert_eq!(run.code, 5, "{}", run.stderr);
    assert!(
        run.stderr.contains("1 object failed") && run.stderr.contains("child_p"),
        "{}",
        run.stderr
    );
    db.assert_same("public.child");
    assert_eq!(
        db.target_sql("SELECT obj_description('public.child'::regclass, 'pg_class')")
            .trim(),
        "kids"
    );
    assert_eq!(
        db.target_sql("SELECT count(*) FROM pg_trigger WHERE tgname = 'child_touch'")
            .trim(),
        "1"
    );
    db.target_sql("INSERT INTO public.parent VALUES (2)");
    db.copy(&["--resume", "--yes"]).assert_ok();
    assert_eq!(
        db.target_sql(
            "SELECT count(*) FROM pg_constraint WHERE conname = 'child_p' AND convalidated"
        )
        .trim(),
        "1"
    );
    assert_eq!(
        db.target_sql("SELECT count(*) FROM pg_trigger WHERE tgname = 'child_touch'")
            .trim(),
        "1"
    );
}

/// A function whose signature uses the row type of a table left out of the copy cannot
/// be created on the target: it is left out too, with the reason, instead of failing.
#[test]
fn functions_of_an_excluded_table_are_left_out() {
    let db = TestDb::new("excluded_fn");
    db.source_sql(
        "CREATE TABLE public.customer (id int PRIMARY KEY, name text);
         CREATE TABLE public.orders (id int PRIMARY KEY);
         CREATE FUNCTION public.best_customers() RETURNS SETOF public.customer
             LANGUAGE sql AS 'SELECT * FROM public.customer';
         INSERT INTO public.orders VALUES (1);",
    );
    let run = db.copy(&["--all", "--exclude", "public.customer", "--yes"]);
    run.assert_ok();
    assert!(
        run.stderr.contains(
            "not created: function public.best_customers(): its signature uses the row type of public.customer, which is not copied"
        ),
        "{}",
        run.stderr
    );
    db.assert_same("public.orders");
}

/// What loaded but differed from the source on a reviewer's schema: a partition's own
/// column order, default, storage options and trigger; TOAST options; a comment on the
/// index behind a primary key; an UNLOGGED sequence; a materialized view column's
/// compression.
#[test]
fn partition_and_option_details_match_the_source() {
    let db = TestDb::new("details");
    db.source_sql(
        "CREATE TABLE public.m (k int NOT NULL, a text, b int) PARTITION BY RANGE (k);
         CREATE TABLE public.m1 (b int, a text, k int NOT NULL);
         ALTER TABLE public.m ATTACH PARTITION public.m1 FOR VALUES FROM (0) TO (10);
         CREATE TABLE public.m2 PARTITION OF public.m (b DEFAULT 7) FOR VALUES FROM (10) TO (20)
             WITH (fillfactor = 80);
         CREATE FUNCTION public.bump() RETURNS trigger LANGUAGE plpgsql
             AS $$ BEGIN NEW.b := NEW.b + 1; RETURN NEW; END $$;
         CREATE TRIGGER m2_bump BEFORE UPDATE ON public.m2 FOR EACH ROW EXECUTE FUNCTION public.bump();
         INSERT INTO public.m VALUES (1, 'x', 1), (11, 'y', 2);
         CREATE TABLE public.t (id int PRIMARY KEY, body text) WITH (toast.autovacuum_enabled = false);
         COMMENT ON INDEX public.t_pkey IS 'the key';
         INSERT INTO public.t VALUES (1, 'b');
         CREATE UNLOGGED SEQUENCE public.scratch;
         CREATE MATERIALIZED VIEW public.mv AS SELECT id, body FROM public.t;
         ALTER MATERIALIZED VIEW public.mv ALTER COLUMN body SET COMPRESSION pglz;",
    );
    db.copy(&["--all", "--yes"]).assert_ok();
    db.assert_same_schema();
    for t in ["public.m", "public.m1", "public.m2", "public.t"] {
        db.assert_same(t);
    }
}

/// More of what differed: an inheritance child's check that is both inherited and its
/// own, a child of a NOT VALID parent check, a partition's own primary key, an index left
/// invalid on a partitioned table, and a typed table.
#[test]
fn inheritance_partition_keys_and_typed_tables_match_the_source() {
    let db = TestDb::new("details2");
    db.source_sql(
        "CREATE TABLE public.p (id int, x int CONSTRAINT p_x CHECK (x > 0));
         CREATE TABLE public.c (CONSTRAINT p_x CHECK (x > 0)) INHERITS (public.p);
         CREATE TABLE public.q (id int, y int);
         INSERT INTO public.q VALUES (1, -1);
         ALTER TABLE public.q ADD CONSTRAINT q_y CHECK (y > 0) NOT VALID;
         CREATE TABLE public.qc () INHERITS (public.q);
         INSERT INTO public.p VALUES (1, 1); INSERT INTO public.c VALUES (2, 2);
         CREATE TABLE public.r (k int NOT NULL, v text) PARTITION BY LIST (k);
         CREATE TABLE public.r1 PARTITION OF public.r (PRIMARY KEY (k)) FOR VALUES IN (1);
         CREATE TABLE public.r2 PARTITION OF public.r FOR VALUES IN (2);
         CREATE INDEX r_v ON ONLY public.r (v);
         INSERT INTO public.r VALUES (1, 'a'), (2, 'b');
         CREATE TYPE public.pair AS (a int, b text);
         CREATE TABLE public.pairs OF public.pair (PRIMARY KEY (a));
         INSERT INTO public.pairs VALUES (1, 'one');",
    );
    db.copy(&["--all", "--yes"]).assert_ok();
    db.assert_same_schema();
    for t in [
        "public.p",
        "public.c",
        "public.q",
        "public.qc",
        "public.r",
        "public.pairs",
    ] {
        db.assert_same(t);
    }
}

/// An identity column on a table that still owns the serial sequence it once had (so
/// the identity's sequence got another name), and a check calling a function that takes
/// the table's own row type.
#[test]
fn leftover_serial_sequences_and_row_type_checks_copy() {
    let db = TestDb::new("leftovers");
    db.source_sql(
        "CREATE TABLE public.t (id serial PRIMARY KEY, v text);
         ALTER TABLE public.t ALTER COLUMN id DROP DEFAULT;
         ALTER TABLE public.t ALTER COLUMN id ADD GENERATED BY DEFAULT AS IDENTITY;
         INSERT INTO public.t (v) VALUES ('a'), ('b');
         CREATE TABLE public.w (id int PRIMARY KEY, n int);
         CREATE FUNCTION public.w_ok(r public.w) RETURNS bool LANGUAGE sql IMMUTABLE
             AS 'SELECT r.n >= 0';
         ALTER TABLE public.w ADD CONSTRAINT w_ok CHECK (public.w_ok(w.*));
         INSERT INTO public.w VALUES (1, 5);",
    );
    db.copy(&["--all", "--yes"]).assert_ok();
    db.assert_same_schema();
    db.assert_same("public.t");
    db.assert_same("public.w");
}

/// An operator of a schema copied whole, used by a table's check: created after its
/// function and before the table; a second run finds it there and leaves it.
#[test]
fn operators_are_created() {
    let db = TestDb::new("operators");
    db.source_sql(
        "CREATE FUNCTION public.approx_eq(a float8, b float8) RETURNS bool LANGUAGE sql
             IMMUTABLE AS 'SELECT abs(a - b) < 0.001';
         CREATE OPERATOR public.~= (FUNCTION = public.approx_eq, LEFTARG = float8,
             RIGHTARG = float8, COMMUTATOR = OPERATOR(public.~=), RESTRICT = eqsel,
             JOIN = eqjoinsel);
         COMMENT ON OPERATOR public.~= (float8, float8) IS 'roughly equal';
         CREATE TABLE public.m (id int PRIMARY KEY, x float8 CHECK (x ~= x));
         INSERT INTO public.m VALUES (1, 1.0), (2, 2.5);",
    );
    db.copy(&["--all", "--yes"]).assert_ok();
    db.assert_same_schema();
    db.assert_same("public.m");
    assert_eq!(
        db.target_sql("SELECT count(*) FROM public.m WHERE x ~= 1.0004")
            .trim(),
        "1"
    );
    db.copy(&["--all", "--mode", "truncate", "--yes"])
        .assert_ok();
}

/// Text-search dictionaries and configurations of a schema copied whole are created
/// before the tables (a generated column and an index name one), with their options,
/// mappings and comments. A shell type and an operator family, which only a superuser
/// may create, are named.
#[test]
fn text_search_objects_are_created_and_a_shell_type_is_named() {
    let db = TestDb::new("text_search");
    db.source_sql(
        "CREATE SCHEMA docs;
         CREATE TEXT SEARCH DICTIONARY docs.simple_nostop
             (TEMPLATE = pg_catalog.simple, STOPWORDS = english, ACCEPT = false);
         COMMENT ON TEXT SEARCH DICTIONARY docs.simple_nostop IS 'simple, with stop words';
         CREATE TEXT SEARCH DICTIONARY docs.en_stem (TEMPLATE = snowball, LANGUAGE = english);
         CREATE TEXT SEARCH CONFIGURATION docs.cfg (COPY = pg_catalog.english);
         ALTER TEXT SEARCH CONFIGURATION docs.cfg
             ALTER MAPPING FOR asciiword WITH docs.simple_nostop, docs.en_stem;
         ALTER TEXT SEARCH CONFIGURATION docs.cfg DROP MAPPING FOR email;
         COMMENT ON TEXT SEARCH CONFIGURATION docs.cfg IS 'our search';
         CREATE TABLE docs.pages (id int PRIMARY KEY, body text,
             tsv tsvector GENERATED ALWAYS AS (to_tsvector('docs.cfg', body)) STORED);
         CREATE INDEX pages_fts ON docs.pages USING gin (to_tsvector('docs.cfg'::regconfig, body));
         INSERT INTO docs.pages (id, body)
             VALUES (1, 'The quick brown foxes jumped'), (2, 'mail me at a@b.com');",
    );
    db.copy(&["docs.*", "--yes"]).assert_ok();
    db.assert_same_schema();
    db.assert_same("docs.pages");
    assert_eq!(
        db.target_sql("SELECT count(*) FROM docs.pages WHERE tsv @@ to_tsquery('docs.cfg', 'fox')")
            .trim(),
        "1"
    );

    db.source_sql(
        "CREATE TYPE docs.later;
         CREATE OPERATOR FAMILY docs.fam USING btree;",
    );
    let dry = db.copy(&["docs.*", "--dry-run", "--mode", "truncate"]);
    dry.assert_ok();
    for named in [
        "not created: type docs.later: it is a shell type",
        "not created: operator family docs.fam USING btree: only a superuser may create",
    ] {
        assert!(dry.stdout.contains(named), "{named}: {}", dry.stdout);
    }
}

/// Aggregates of every kind a non-superuser can create come back as they were: moving
/// mode with an inverse function, a state space and parallel safety, a sort operator, an
/// ordered-set aggregate with FINALFUNC_EXTRA, and a hypothetical-set one.
#[test]
fn aggregates_of_every_kind_are_created() {
    let db = TestDb::new("aggregates");
    db.source_sql(
        "CREATE SCHEMA a;
         CREATE FUNCTION a.add(int8, int4) RETURNS int8 LANGUAGE sql IMMUTABLE PARALLEL SAFE
             AS 'SELECT $1 + $2';
         CREATE FUNCTION a.sub(int8, int4) RETURNS int8 LANGUAGE sql IMMUTABLE PARALLEL SAFE
             AS 'SELECT $1 - $2';
         CREATE FUNCTION a.plus(int8, int8) RETURNS int8 LANGUAGE sql IMMUTABLE PARALLEL SAFE
             AS 'SELECT $1 + $2';
         CREATE AGGREGATE a.msum(int4) (SFUNC = a.add, STYPE = int8, INITCOND = '0',
             SSPACE = 16, COMBINEFUNC = a.plus, PARALLEL = SAFE,
             MSFUNC = a.add, MINVFUNC = a.sub, MSTYPE = int8, MINITCOND = '0');
         CREATE AGGREGATE a.mymax(int4) (SFUNC = int4larger, STYPE = int4, SORTOP = >);
         CREATE FUNCTION a.os_final(text[], float8, anyelement) RETURNS text LANGUAGE sql
             AS 'SELECT $1[1]';
         CREATE FUNCTION a.os_step(text[], anyelement) RETURNS text[] LANGUAGE sql
             AS 'SELECT $1 || $2::text';
         CREATE AGGREGATE a.pick(float8 ORDER BY anyelement) (SFUNC = a.os_step,
             STYPE = text[], FINALFUNC = a.os_final, FINALFUNC_EXTRA, INITCOND = '{}');
         CREATE FUNCTION a.h_final(text[], anyelement, anyelement) RETURNS int LANGUAGE sql
             AS 'SELECT cardinality($1)';
         CREATE AGGREGATE a.hrank(anyelement ORDER BY anyelement) (SFUNC = a.os_step,
             STYPE = text[], FINALFUNC = a.h_final, FINALFUNC_EXTRA, INITCOND = '{}',
             HYPOTHETICAL);
         COMMENT ON AGGREGATE a.pick(float8 ORDER BY anyelement) IS 'picks';
         CREATE TABLE a.t (id int PRIMARY KEY, v int);
         INSERT INTO a.t SELECT g, g FROM generate_series(1, 10) g;",
    );
    let run = db.copy(&["a.*", "--yes"]);
    run.assert_ok();
    assert!(!run.stderr.contains("not created"), "{}", run.stderr);
    db.assert_same_schema();
    for query in [
        "SELECT a.msum(v) OVER (ORDER BY id ROWS 2 PRECEDING) FROM a.t ORDER BY id",
        "SELECT a.msum(v), a.mymax(v), a.pick(0.5) WITHIN GROUP (ORDER BY v),
                a.hrank(3) WITHIN GROUP (ORDER BY v) FROM a.t",
    ] {
        assert_eq!(db.source_sql(query), db.target_sql(query), "{query}");
    }
}

/// `--exclude-object` leaves out objects of a schema copied whole by kind and pattern:
/// the views calling an excluded function go with it, a table whose column needs an
/// excluded domain is left out with the reason, and a saved plan keeps the patterns.
#[test]
fn objects_are_left_out_by_pattern() {
    let db = TestDb::new("exclude_object");
    db.source_sql(
        "CREATE SCHEMA app;
         CREATE FUNCTION app.debug_dump() RETURNS int LANGUAGE sql AS 'SELECT 1';
         CREATE VIEW app.debug_v AS SELECT app.debug_dump() AS n;
         CREATE FUNCTION app.keep() RETURNS int LANGUAGE sql AS 'SELECT 7';
         CREATE TYPE app.legacy_kind AS ENUM ('a', 'b');
         CREATE DOMAIN app.code AS text CHECK (VALUE ~ '^[A-Z]+$');
         CREATE TABLE app.t (id int PRIMARY KEY, v int DEFAULT app.keep());
         CREATE TABLE app.u (id int PRIMARY KEY, c app.code);
         INSERT INTO app.t VALUES (1, 2);
         INSERT INTO app.u VALUES (1, 'AB');",
    );
    let plan_file = std::env::temp_dir().join(format!("{}.toml", db.name));
    let plan_path = plan_file.to_string_lossy().to_string();
    let run = db.copy(&[
        "app.*",
        "--exclude-object",
        "function app.debug_*",
        "--exclude-object",
        "app.legacy_*",
        "--exclude-object",
        "domain app.code",
        "--save-plan",
        &plan_path,
        "--yes",
        "--json",
    ]);
    run.assert_ok();
    let report: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON report");
    let skipped = report["skipped"].to_string();
    for left_out in [
        "function app.debug_dump()\",\"why\":\"left out by --exclude-object",
        "view app.debug_v\",\"why\":\"it calls app.debug_dump()",
        "type app.legacy_kind\",\"why\":\"left out by --exclude-object",
        "table app.u\",\"why\":\"it needs type app.code, which is not created: left out by",
    ] {
        assert!(skipped.contains(left_out), "{left_out}: {skipped}");
    }
    db.assert_same("app.t");
    assert!(!db.target_has_table("app", "u"));
    assert!(!db.target_has_table("app", "debug_v"));
    assert_eq!(
        db.target_sql("SELECT count(*) FROM pg_proc WHERE proname = 'debug_dump'")
            .trim(),
        "0"
    );
    let saved = std::fs::read_to_string(&plan_file).expect("saved plan");
    assert!(saved.contains("function app.debug_*"), "{saved}");
    let _ = std::fs::remove_file(&plan_file);
}

/// Statements of `a` that `b` lacks, and the other way round, counted with repeats.
fn statements_differing(a: &[String], b: &[String]) -> usize {
    let mut counts: std::collections::BTreeMap<&str, i64> = std::collections::BTreeMap::new();
    for s in a {
        *counts.entry(s).or_default() += 1;
    }
    for s in b {
        *counts.entry(s).or_default() -= 1;
    }
    counts.values().map(|n| n.unsigned_abs() as usize).sum()
}

/// The reviewer's check on an object-rich schema: `--all` as the cloud role gets at least
/// as many identical tables, and no more differing schema statements, than
/// `pg_dump -Fc | pg_restore --no-owner` run as the same role (which fails the objects
/// only a superuser may create, and what needs them, and goes on).
#[test]
fn an_object_rich_schema_copies_at_least_as_well_as_pg_restore() {
    let db = TestDb::new("object_rich");
    let s = servers();
    s.source.psql_file(
        &db.name,
        &support::repo_root().join("crates/pgbarge-cli/tests/fixtures/object_rich.sql"),
    );
    let run = db.copy(&["--all", "--yes"]);
    run.assert_ok();

    let restored = format!("{}_restore", db.name);
    s.target.psql(
        "postgres",
        &format!(
            "CREATE DATABASE \"{restored}\" OWNER {}",
            support::TARGET_USER
        ),
    );
    let dump = std::env::temp_dir().join(format!("{}.dump", db.name));
    let out = support::clean_command("pg_dump")
        .args(["-Fc", "-f"])
        .arg(&dump)
        .arg(db.source_conn())
        .output()
        .expect("run pg_dump");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // pg_restore reports the objects it could not create and exits 1: expected here.
    support::clean_command("pg_restore")
        .args(["--no-owner", "-d"])
        .arg(
            db.target_conn()
                .replace(&format!("/{}?", db.name), &format!("/{restored}?")),
        )
        .arg(&dump)
        .output()
        .expect("run pg_restore");
    let _ = std::fs::remove_file(&dump);

    let source = support::normalised_dump(&s.source.dump_schema(&db.name));
    let ours = statements_differing(
        &source,
        &support::normalised_dump(&s.target.dump_schema(&db.name)),
    );
    let theirs = statements_differing(
        &source,
        &support::normalised_dump(&s.target.dump_schema(&restored)),
    );
    let mut all_tables = db.source_tables("shop");
    all_tables.extend(db.source_tables("audit"));
    all_tables.extend(db.source_tables("Odd Schema"));
    all_tables.extend(db.source_tables("misc"));
    let identical = |target_db: &str| {
        all_tables
            .iter()
            .filter(|t| {
                let theirs =
                    s.target
                        .psql_output(target_db, &format!("SELECT 1 FROM {t} LIMIT 0"), &[]);
                theirs.status.success()
                    && s.source.table_text(&db.name, t) == s.target.table_text(target_db, t)
            })
            .count()
    };
    let (ours_same, theirs_same) = (identical(&db.name), identical(&restored));
    eprintln!(
        "pgbarge: {ours} differing statements, {ours_same} of {} tables identical; \
         pg_restore: {theirs} and {theirs_same}",
        all_tables.len()
    );
    assert!(
        ours <= theirs,
        "pgbarge differs in {ours} statements, pg_restore in {theirs}"
    );
    assert!(
        ours_same >= theirs_same,
        "{ours_same} identical tables against {theirs_same}"
    );
    assert_eq!(
        ours_same,
        all_tables.len() - 1,
        "all but the table that needs a function in internal"
    );

    // Refreshed in place, and replaced: a table forcing row-level security on its owner,
    // deferred foreign keys, a sequence owned by a text column, inheritance parents and
    // a function whose SQL-standard body reads a replaced table, with a view calling it.
    let before = s.target.dump_schema(&db.name);
    for mode in ["truncate", "replace"] {
        db.copy(&["--all", "--yes", "--mode", mode]).assert_ok();
        assert_eq!(
            identical(&db.name),
            ours_same,
            "every table is identical again after --mode {mode}"
        );
        assert_eq!(
            support::normalised_dump(&s.target.dump_schema(&db.name)),
            support::normalised_dump(&before),
            "the schema is as it was after --mode {mode}"
        );
    }
}

#[test]
fn composite_types_nested_deeper_than_twenty_are_created_in_order() {
    let db = TestDb::new("deep_types");
    // A chain of 30 composite types, each holding the next; their names sort against
    // the order they must be created in (c01 needs c02, …).
    let mut sql = String::from("CREATE TYPE c30 AS (v int);\n");
    for n in (1..30).rev() {
        sql.push_str(&format!(
            "CREATE TYPE c{n:02} AS (inner_ c{:02}, n int);\n",
            n + 1
        ));
    }
    sql.push_str(
        "CREATE TABLE deep (id int PRIMARY KEY, v c01);
         INSERT INTO deep SELECT g, NULL FROM generate_series(1, 3) g;
         UPDATE deep SET v = ROW(NULL, id)::c01;",
    );
    db.source_sql(&sql);
    // Only the table named: every type it needs, found however deep.
    db.copy(&["deep", "--yes", "--quiet"]).assert_ok();
    db.assert_same("public.deep");
    // The whole database, into a fresh target: every type, in dependency order.
    let all = TestDb::new("deep_types_all");
    all.source_sql(&sql);
    all.copy(&["--all", "--yes", "--quiet"]).assert_ok();
    all.assert_same("public.deep");
    all.assert_same_schema();
}

#[test]
fn tables_whose_type_names_collide_when_cut_to_63_bytes_load_in_parallel() {
    let db = TestDb::new("long_names");
    // Each pair differs only in the last byte: both want the array type `_` and the
    // first 62 bytes. `foo` and `_foo`: the row type of one is the array type of the
    // other.
    let mut sql = String::new();
    let mut names = Vec::new();
    for stem in ["a", "b", "é"] {
        let base = stem.repeat(62 / stem.len());
        for last in ["1", "2"] {
            names.push(format!("{base}{last}"));
        }
    }
    names.push("foo".into());
    names.push("_foo".into());
    for name in &names {
        sql.push_str(&format!(
            "CREATE TABLE \"{name}\" (id int PRIMARY KEY); \
             INSERT INTO \"{name}\" SELECT generate_series(1, 10);\n"
        ));
    }
    db.source_sql(&sql);
    db.copy(&["--all", "--yes", "--quiet", "--jobs", "8"])
        .assert_ok();
    for name in &names {
        db.assert_same(&format!("public.\"{name}\""));
    }
}
