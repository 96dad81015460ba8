//! The interactive picker, driven through a pseudo-terminal as a user would: filter the
//! list, pick two tables, answer the question about a non-empty table, confirm, and see
//! them copied; pick the tables of two filters out of 300 in a small terminal; cancel.

mod support;

use rexpect::session::spawn_command;
use support::{clean_command, pgbarge_bin, TestDb};

#[test]
fn picker_picks_two_tables_and_copies_them() {
    let db = TestDb::new("picker");
    db.source_sql(
        "CREATE TABLE alpha (id int PRIMARY KEY, v text);
         CREATE TABLE beta (id int PRIMARY KEY, v text);
         CREATE TABLE gamma (id int PRIMARY KEY, v text);
         INSERT INTO alpha SELECT g, 'a' || g FROM generate_series(1, 50) g;
         INSERT INTO beta SELECT g, 'b' || g FROM generate_series(1, 70) g;
         INSERT INTO gamma SELECT g, 'g' || g FROM generate_series(1, 90) g;
         ANALYZE;",
    );
    // beta already holds a row on the target: the picker session must ask about it.
    db.target_sql_as_app(
        "CREATE TABLE beta (id int PRIMARY KEY, v text); INSERT INTO beta VALUES (1000, 'old');",
    );

    // A real terminal size, as a user's terminal has.
    let mut cmd = clean_command("sh");
    cmd.arg("-c").arg(format!(
        "stty cols 120 rows 40; exec {} copy --source '{}' --target '{}'",
        pgbarge_bin(),
        db.source_conn(),
        db.target_conn()
    ));
    let mut p = spawn_command(cmd, Some(30_000)).expect("spawn in a pty");
    p.exp_string("Tables to copy").expect("the picker appears");
    p.exp_string("public.gamma").expect("tables are listed");
    // Filter to "alp", pick it; clear the filter, filter to "gam", pick it; done.
    p.send("alp").expect("type");
    p.send(" ").expect("pick");
    p.send("\x7f\x7f\x7f").expect("clear filter");
    p.send("gam").expect("type");
    p.send(" ").expect("pick");
    p.send("\r").expect("enter");
    p.flush().expect("flush");
    p.exp_string("Copy 2 tables to db")
        .expect("the plan and a confirmation");
    p.send("y").expect("answer");
    p.send("\r").expect("enter");
    p.flush().expect("flush");
    p.exp_string("2 tables, 140 rows moved")
        .expect("the report");
    // Offered: keep the choices as a plan file.
    let plan = std::env::temp_dir().join(format!("pgbarge-picked-{}.toml", std::process::id()));
    p.exp_string("Save these choices as a plan")
        .expect("offer to save");
    p.exp_string("(y/N)").expect("the whole question");
    p.send("y").expect("yes");
    p.send("\r").expect("enter");
    p.flush().expect("flush");
    p.exp_string("Plan file:").expect("asks where");
    p.exp_string("pgbarge-plan.toml").expect("with a default");
    p.send(&format!("{}\r", plan.display())).expect("path");
    p.flush().expect("flush");
    p.exp_string("plan saved").expect("saved");
    p.exp_eof().expect("exit");

    db.assert_same("public.alpha");
    db.assert_same("public.gamma");
    let saved = std::fs::read_to_string(&plan).expect("plan written");
    assert!(
        saved.contains("name = \"alpha\"") && saved.contains("name = \"gamma\""),
        "{saved}"
    );
    assert!(!saved.contains("beta"), "{saved}");
    let _ = std::fs::remove_file(&plan);
    // beta was not picked: untouched.
    assert_eq!(db.target_sql("SELECT count(*) FROM beta").trim(), "1");
}

/// Right arrow, the keys the picker's help line names.
const RIGHT: &str = "\x1b[C";

/// `text` as rexpect reads it back: it turns each byte into one char, so a UTF-8 "·"
/// arrives as two.
fn bytes(text: &str) -> String {
    text.bytes().map(char::from).collect()
}

#[test]
fn picker_adds_the_tables_of_each_filter_out_of_300_in_a_small_terminal() {
    let db = TestDb::new("picker_many");
    // sales_001..145, stock_001..145 and ten others: 300 tables, none named "…rows…".
    db.source_sql(
        "DO $$
         BEGIN
           FOR i IN 1..145 LOOP
             EXECUTE format('CREATE TABLE sales_%s (id int PRIMARY KEY)', lpad(i::text, 3, '0'));
             EXECUTE format('CREATE TABLE stock_%s (id int PRIMARY KEY)', lpad(i::text, 3, '0'));
           END LOOP;
         END $$;
         DO $$
         DECLARE t text;
         BEGIN
           FOREACH t IN ARRAY ARRAY['customers', 'orders', 'invoices', 'products', 'suppliers',
                                    'regions', 'returns', 'payments', 'shipments', 'warehouses']
           LOOP
             EXECUTE format('CREATE TABLE %I (id int PRIMARY KEY)', t);
           END LOOP;
         END $$;",
    );
    let plan = std::env::temp_dir().join(format!("pgbarge-picked-300-{}.toml", std::process::id()));
    let _ = std::fs::remove_file(&plan);
    let mut cmd = clean_command("sh");
    cmd.arg("-c").arg(format!(
        "stty cols 60 rows 15; exec {} copy --source '{}' --target '{}' --dry-run --save-plan '{}'",
        pgbarge_bin(),
        db.source_conn(),
        db.target_conn(),
        plan.display()
    ));
    let mut p = spawn_command(cmd, Some(30_000)).expect("spawn in a pty");
    p.exp_string("Tables to copy").expect("the picker appears");
    p.exp_string(&bytes("300 tables · 0 picked"))
        .expect("the counts");
    p.exp_string(&bytes(
        "space pick · → all · ← none · enter done · esc cancel",
    ))
    .expect("the help, shortened to 60 columns");
    // Enter with nothing picked: a note, and the picker stays.
    p.send("\r").expect("enter");
    p.flush().expect("flush");
    p.exp_string("pick at least one table (space)")
        .expect("the note");
    // The filter is on names only: every row says "~0 rows", no name holds "rows".
    p.send("rows").expect("type");
    p.flush().expect("flush");
    p.exp_string(&bytes("\n0 of 300 match · 0 picked"))
        .expect("nothing matches");
    p.exp_string("no table name contains \"rows\"")
        .expect("says so");
    p.send("\x7f\x7f\x7f\x7f").expect("clear the filter");
    // sales_001..009, all of them.
    p.send("sales_00").expect("type");
    p.flush().expect("flush");
    p.exp_string(&bytes("\n9 of 300 match · 0 picked"))
        .expect("nine match");
    p.send(RIGHT).expect("all shown");
    p.flush().expect("flush");
    p.exp_string(&bytes("\n9 of 300 match · 9 picked"))
        .expect("nine picked");
    // stock_010..019 added to them, not instead of them.
    p.send("\x7f\x7f\x7f\x7f\x7f\x7f\x7f\x7f")
        .expect("clear the filter");
    p.send("stock_01").expect("type");
    p.flush().expect("flush");
    p.exp_string(&bytes("\n10 of 300 match · 9 picked"))
        .expect("ten match");
    p.send(RIGHT).expect("all shown");
    p.flush().expect("flush");
    p.exp_string(&bytes("\n10 of 300 match · 19 picked"))
        .expect("the union");
    p.send("\r").expect("done");
    p.flush().expect("flush");
    // The picks, echoed as a short list that fits 60 columns.
    p.exp_string("Tables to copy: public.sales_001 and 18 more")
        .expect("the echo");
    p.exp_string("Dry run: preflight passed; nothing was written.")
        .expect("the dry run's plan");
    p.exp_eof().expect("exit");

    let saved = std::fs::read_to_string(&plan).expect("plan written");
    let _ = std::fs::remove_file(&plan);
    let mut names: Vec<&str> = saved
        .lines()
        .filter_map(|l| l.strip_prefix("name = \""))
        .filter_map(|l| l.strip_suffix('"'))
        .collect();
    names.sort_unstable();
    let expected: Vec<String> = (1..=9)
        .map(|n| format!("sales_{n:03}"))
        .chain((10..=19).map(|n| format!("stock_{n:03}")))
        .collect();
    assert_eq!(names, expected, "{saved}");
    assert_eq!(
        db.target_sql("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
            .trim(),
        "0",
        "a dry run writes nothing"
    );
}

/// Esc and Ctrl-C cancel the picker: nothing is written, pgbarge exits with 130, and the
/// terminal is handed back as it was (not left in raw mode).
#[test]
fn picker_cancels_with_esc_or_ctrl_c_and_restores_the_terminal() {
    let db = TestDb::new("picker_cancel");
    db.source_sql("CREATE TABLE alpha (id int PRIMARY KEY); CREATE TABLE beta (id int);");
    for key in ["\x1b", "\x03"] {
        let mut cmd = clean_command("sh");
        cmd.arg("-c").arg(format!(
            "stty cols 60 rows 15; {} copy --source '{}' --target '{}'; echo \"exit=$?\"; \
             if stty -a | grep -q -- -icanon; then echo RAW-LEFT; else echo COOKED; fi",
            pgbarge_bin(),
            db.source_conn(),
            db.target_conn()
        ));
        let mut p = spawn_command(cmd, Some(30_000)).expect("spawn in a pty");
        p.exp_string(&bytes("2 tables · 0 picked"))
            .expect("the picker appears");
        p.send(" ").expect("pick one");
        p.flush().expect("flush");
        p.exp_string(&bytes("2 tables · 1 picked")).expect("picked");
        p.send(key).expect("cancel");
        p.flush().expect("flush");
        p.exp_string("cancelled; nothing was written.")
            .expect("the error");
        p.exp_string("exit=130").expect("the exit code");
        p.exp_string("COOKED").expect("the terminal is restored");
        p.exp_eof().expect("exit");
    }
    assert_eq!(
        db.target_sql("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
            .trim(),
        "0"
    );
}

#[test]
fn picker_asks_what_to_do_with_a_non_empty_table() {
    let db = TestDb::new("ask");
    db.source_sql("CREATE TABLE beta (id int PRIMARY KEY, v text); INSERT INTO beta SELECT g, 'b' FROM generate_series(1, 5) g;");
    db.target_sql_as_app(
        "CREATE TABLE beta (id int PRIMARY KEY, v text); INSERT INTO beta VALUES (1000, 'old');",
    );
    let mut cmd = clean_command("sh");
    cmd.arg("-c").arg(format!(
        "stty cols 120 rows 40; exec {} copy --source '{}' --target '{}' beta",
        pgbarge_bin(),
        db.source_conn(),
        db.target_conn()
    ));
    let mut p = spawn_command(cmd, Some(30_000)).expect("spawn in a pty");
    p.exp_string("already holds rows. What should pgbarge do?")
        .expect("asked");
    // The same columns as the source: most likely an earlier copy, so the default is
    // truncate (never append, which would duplicate its rows).
    p.send("\r").expect("accept the default");
    p.flush().expect("flush");
    p.exp_string("truncate + load")
        .expect("the plan shows the choice");
    p.exp_string("Copy 1 table").expect("confirmation");
    p.send("y\r").expect("yes");
    p.flush().expect("flush");
    p.exp_string("1 table, 5 rows moved").expect("the report");
    p.exp_eof()
        .expect("exit (tables were named: no offer to save a plan)");
    db.assert_same("public.beta");
}

#[test]
fn picker_offers_the_tables_foreign_keys_need() {
    let db = TestDb::new("offer_parents");
    db.source_sql(
        "CREATE TABLE continent (id int PRIMARY KEY);
         CREATE TABLE country (id int PRIMARY KEY, continent_id int REFERENCES continent);
         CREATE TABLE city (id int PRIMARY KEY, country_id int REFERENCES country);
         INSERT INTO continent VALUES (1); INSERT INTO country VALUES (1, 1);
         INSERT INTO city VALUES (1, 1), (2, 1);",
    );
    let mut cmd = clean_command("sh");
    cmd.arg("-c").arg(format!(
        "stty cols 120 rows 40; exec {} copy --source '{}' --target '{}' city",
        pgbarge_bin(),
        db.source_conn(),
        db.target_conn()
    ));
    let mut p = spawn_command(cmd, Some(30_000)).expect("spawn in a pty");
    // One question for the whole chain: the parent and the parent's parent.
    p.exp_string("need public.country, public.continent, not chosen. Copy them too?")
        .expect("asked once about both");
    p.send("\r").expect("accept the default (yes)");
    p.flush().expect("flush");
    p.exp_string("Copy 3 tables")
        .expect("both parents were added");
    p.send("y\r").expect("yes");
    p.flush().expect("flush");
    p.exp_string("3 tables, 4 rows moved").expect("the report");
    p.exp_eof().expect("exit");
    db.assert_same("public.continent");
    db.assert_same("public.country");
    db.assert_same("public.city");
    assert_eq!(
        db.target_sql("SELECT count(*) FROM pg_constraint WHERE contype = 'f'")
            .trim(),
        "2"
    );
}

#[test]
fn running_the_same_copy_again_offers_to_resume_the_interrupted_run() {
    let db = TestDb::new("offer_resume");
    db.source_sql(
        "CREATE TABLE a (id int PRIMARY KEY); INSERT INTO a SELECT generate_series(1, 30);
         CREATE TABLE b (id int PRIMARY KEY); INSERT INTO b SELECT generate_series(1, 40);",
    );
    // On the target, b refuses the rows: the run loads a, fails b, and stays recorded.
    db.target_sql_as_app("CREATE TABLE b (id int PRIMARY KEY, CONSTRAINT small CHECK (id < 10));");
    let first = db.copy(&["a", "b", "--mode", "append"]);
    assert_eq!(first.code, 5, "{}", first.stderr);
    assert!(first.stderr.contains("--resume"), "{}", first.stderr);
    db.target_sql("ALTER TABLE b DROP CONSTRAINT small");

    let mut cmd = clean_command("sh");
    cmd.arg("-c").arg(format!(
        "stty cols 120 rows 40; exec {} copy --source '{}' --target '{}' a b --mode append --yes",
        pgbarge_bin(),
        db.source_conn(),
        db.target_conn()
    ));
    let mut p = spawn_command(cmd, Some(30_000)).expect("spawn in a pty");
    p.exp_string("Resume the interrupted run")
        .expect("the offer");
    p.exp_string("units done)?").expect("the whole question");
    p.send("y").expect("yes");
    p.send("\r").expect("enter");
    p.flush().expect("flush");
    p.exp_string("were skipped").expect("the resumed report");
    p.exp_eof().expect("pgbarge ends");
    // a was not loaded twice; b now is.
    db.assert_same("a");
    db.assert_same("b");
}

#[test]
fn target_tables_that_hold_rows_are_one_question_defaulting_to_a_safe_answer() {
    let db = TestDb::new("ask_once");
    db.source_sql(
        "CREATE TABLE a (id int PRIMARY KEY); INSERT INTO a SELECT generate_series(1, 3);
         CREATE TABLE b (id int PRIMARY KEY); INSERT INTO b SELECT generate_series(1, 4);",
    );
    // Earlier copies of both (same columns), with rows the source no longer has.
    db.target_sql_as_app(
        "CREATE TABLE a (id int PRIMARY KEY); INSERT INTO a VALUES (1), (100);
         CREATE TABLE b (id int PRIMARY KEY); INSERT INTO b VALUES (1), (200);",
    );
    let mut cmd = clean_command("sh");
    cmd.arg("-c").arg(format!(
        "stty cols 120 rows 40; exec {} copy --source '{}' --target '{}' a b --yes",
        pgbarge_bin(),
        db.source_conn(),
        db.target_conn()
    ));
    let mut p = spawn_command(cmd, Some(30_000)).expect("spawn in a pty");
    p.exp_string("2 target tables already hold rows (public.a, public.b)")
        .expect("one question for both");
    p.send("\r").expect("accept the default: truncate");
    p.flush().expect("flush");
    p.exp_string("2 tables, 7 rows moved").expect("the report");
    p.exp_eof().expect("exit");
    db.assert_same("public.a");
    db.assert_same("public.b");
}
