//! Phase one of configuration: the raw command line, as clap parses it. Nothing here is
//! validated beyond syntax; [`crate::settings`] turns it into an immutable `Settings`.

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "pgbarge",
    version,
    about = "Move PostgreSQL tables from one server to another: exact, atomic per table, streamed with COPY.",
    after_help = "Exit codes: 0 ok, 1 other error, 2 usage, 3 preflight found problems (nothing written), \
                  4 connection failed, 5 copy failed (the failing table rolled back), \
                  6 verification found differences, 130 interrupted."
)]
pub struct Cli {
    /// Refuse a connection over the network that does not check the server's
    /// certificate (sslmode below verify-ca); without it such a connection is a warning.
    /// Also PGBARGE_TLS_VERIFY=1.
    #[arg(
        long,
        global = true,
        env = "PGBARGE_TLS_VERIFY",
        value_parser = clap::builder::BoolishValueParser::new(),
        action = clap::ArgAction::SetTrue
    )]
    pub tls_verify: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Copy tables from the source server to the target server.
    ///
    /// Each table loads in one target transaction: after any failure the target table is as
    /// it was. Tables that do not exist on the target are created from the source's
    /// definition, with what they need: types, sequences, functions, partitions, keys,
    /// constraints, indexes, then (after all data) foreign keys, triggers, rules, policies
    /// and comments; a whole schema ('app.*', --all) also brings its views and functions.
    /// With no TABLE and a terminal, pgbarge lets you pick tables interactively.
    Copy(Box<CopyArgs>),
    /// Compare tables on both servers: row counts and content checksums computed by the
    /// servers (no rows are pulled), independent of row order. Exit code 6 if any differ.
    Verify(VerifyArgs),
    /// List the source's tables with estimated rows and sizes.
    Tables(TablesArgs),
    /// Abandon the interrupted run recorded on the target: drop the staging tables its
    /// split tables were loading and its record (the "pgbarge" schema). Tables it
    /// committed stay.
    Clean(CleanArgs),
    /// Go on applying the source's changes to the target, after `copy --follow` (or a
    /// follower that was stopped or killed): from the position recorded on the target,
    /// exactly once. --drop gives the follow up instead.
    Follow(FollowArgs),
    /// Switch to the target: stop the follower, apply every change committed before now
    /// (after stopping writes, or with --fence), move the target's sequences past the
    /// source's, verify the followed tables, drop the slot. Prints the downtime.
    Cutover(CutoverArgs),
    /// Show what is recorded on the target (an interrupted copy, a follow with its
    /// position) and, with --source, the slot's lag and the WAL it holds there.
    Status(StatusArgs),
}

#[derive(Debug, Args)]
pub struct FollowArgs {
    #[command(flatten)]
    pub endpoints: Endpoints,
    #[command(flatten)]
    pub ledger: Ledger,
    /// Stop following for good: drop the slot and publication on the source (the WAL
    /// they hold is freed) and the follow's record on the target. The target keeps what
    /// was applied.
    #[arg(long)]
    pub drop: bool,
    /// Apply even though the target's ordinary triggers will fire on every change
    /// (the role may not set session_replication_role, which native replication uses to
    /// fire only ENABLE REPLICA and ENABLE ALWAYS triggers).
    #[arg(long)]
    pub fire_triggers: bool,
    /// Accepted for symmetry with `copy --resume`: `follow` always goes on from the
    /// position recorded on the target.
    #[arg(long, hide = true)]
    pub resume: bool,
    /// A read or statement with no answer for this long is taken for a dead link: the
    /// connections are renewed and the round redone (e.g. 60s, 5m; default 5m — decoding
    /// a huge source transaction gives nothing until it is decoded whole).
    #[arg(long, value_name = "DURATION")]
    pub stall_timeout: Option<String>,
    /// Retries after a lost link (reset, stalled, a restarting server), with exponential
    /// backoff (1 s doubling to 30 s). Default 12: about two to four minutes.
    #[arg(long, value_name = "N")]
    pub retries: Option<u32>,
    /// Progress as JSON lines on stdout (one object per event).
    #[arg(long)]
    pub json: bool,
    /// No progress lines on stderr.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct CutoverArgs {
    #[command(flatten)]
    pub endpoints: Endpoints,
    #[command(flatten)]
    pub ledger: Ledger,
    /// Stop writes on the source first: its database becomes read-only for new
    /// transactions (ALTER DATABASE … SET default_transaction_read_only) and the
    /// sessions connected to it are ended. Without it, stop your application's writes
    /// before running the cut-over.
    #[arg(long)]
    pub fence: bool,
    /// Apply even though the target's ordinary triggers will fire on every change
    /// (the role may not set session_replication_role, which native replication uses to
    /// fire only ENABLE REPLICA and ENABLE ALWAYS triggers).
    #[arg(long)]
    pub fire_triggers: bool,
    /// Retries after a lost link (reset, stalled, a restarting server), with exponential
    /// backoff (1 s doubling to 30 s). Default 12: about two to four minutes.
    #[arg(long, value_name = "N")]
    pub retries: Option<u32>,
    /// One JSON document on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub endpoints: Endpoints,
    #[command(flatten)]
    pub ledger: Ledger,
    /// One JSON document on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CleanArgs {
    #[command(flatten)]
    pub target: Target,
    #[command(flatten)]
    pub ledger: Ledger,
    /// One JSON document on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `--source`, shared by every command that reads the source.
#[derive(Debug, Args)]
pub struct Source {
    /// Source connection: a postgres:// URL or libpq key=value string. PG* variables,
    /// PGPASSWORD and ~/.pgpass apply as in psql.
    #[arg(
        long,
        short = 's',
        env = "PGBARGE_SOURCE",
        value_name = "CONN",
        hide_env_values = true
    )]
    pub source: Option<String>,
}

/// `--target`, shared by every command that writes or reads the target.
#[derive(Debug, Args)]
pub struct Target {
    /// Target connection, same forms as --source.
    #[arg(
        long,
        short = 't',
        env = "PGBARGE_TARGET",
        value_name = "CONN",
        hide_env_values = true
    )]
    pub target: Option<String>,
}

/// `--ledger-schema`, shared by every command that keeps or reads pgbarge's records on
/// the target.
#[derive(Debug, Args)]
pub struct Ledger {
    /// The schema pgbarge keeps its records in on the target (default pgbarge): choose
    /// another when the target or the source has a schema of that name. Give the same
    /// name to every later command of the run (--resume, follow, cutover, status, clean).
    #[arg(long, env = "PGBARGE_LEDGER_SCHEMA", value_name = "NAME")]
    pub ledger_schema: Option<String>,
}

#[derive(Debug, Args)]
pub struct Endpoints {
    #[command(flatten)]
    pub source: Source,
    #[command(flatten)]
    pub target: Target,
}

#[derive(Debug, Args)]
pub struct CopyArgs {
    #[command(flatten)]
    pub endpoints: Endpoints,
    #[command(flatten)]
    pub ledger: Ledger,
    /// Tables to copy: name, schema.name, "Quoted Schema"."Quoted Name", globs (public.*,
    /// sales.order_*). Omit to pick interactively.
    #[arg(value_name = "TABLE")]
    pub tables: Vec<String>,
    /// Copy every table of the source (partitions through their partitioned parent).
    #[arg(long, conflicts_with = "tables")]
    pub all: bool,
    /// Leave out tables matching PATTERN (same forms as TABLE); may be repeated.
    #[arg(long, value_name = "PATTERN")]
    pub exclude: Vec<String>,
    /// Create missing tables and everything they need, but move no rows; existing tables
    /// are left alone.
    #[arg(long, conflicts_with = "data_only")]
    pub schema_only: bool,
    /// Move rows only: every table must already exist on the target.
    #[arg(long)]
    pub data_only: bool,
    /// What to do with a target table that already holds rows. Without it such a table is
    /// refused (or, in a terminal, you are asked).
    #[arg(long, value_enum, value_name = "MODE")]
    pub mode: Option<ModeArg>,
    /// With --mode sync: move only the source rows written since the last sync — those
    /// whose COLUMN (an `updated_at`, an increasing key) is past the value recorded on the
    /// target then, and any a transaction still open then committed later — and find
    /// deleted rows by comparing keys. Tables without COLUMN compare every row.
    #[arg(long, value_name = "COLUMN")]
    pub since: Option<String>,
    /// Also copy the tables that the chosen tables' foreign keys reference (and theirs),
    /// when they are not on the target.
    #[arg(long, conflicts_with = "without_fks")]
    pub with_parents: bool,
    /// Create chosen tables without the foreign keys that reference tables not copied.
    #[arg(long)]
    pub without_fks: bool,
    /// Stop at any object that cannot be created on the target. By default an object
    /// nothing copied needs (a C-language function of a schema copied whole, and the
    /// views calling it) is left out, and the plan and report list it with the reason.
    #[arg(long)]
    pub strict: bool,
    /// Leave out the objects of schemas copied whole that PATTERN names: `[KIND]
    /// [schema.]name` with globs, KIND one of function, procedure, aggregate, routine,
    /// view, materialized view, type, domain, operator, text search dictionary, text
    /// search configuration (`'function app.debug_*'`, `'view reporting.*'`); may be
    /// repeated. A table whose column or default needs one is left out with it.
    #[arg(long, value_name = "PATTERN")]
    pub exclude_object: Vec<String>,
    /// Give every object pgbarge creates to ROLE (the connected role must be a member of
    /// it). By default objects belong to the connected role.
    #[arg(long, value_name = "ROLE")]
    pub owner: Option<String>,
    /// Copy the privileges granted on the objects pgbarge creates (GRANT … TO role); the
    /// roles must exist on the target.
    #[arg(long)]
    pub grants: bool,
    /// Streams at once: N source and N target connections, across tables and within
    /// large ones. Default: the machine's cores (4 to 8), no more than there is work.
    #[arg(long, short = 'j', value_name = "N", value_parser = clap::value_parser!(u16).range(1..=crate::planfile::MAX_JOBS as i64))]
    pub jobs: Option<u16>,
    /// Split tables at least this large into parts loaded at once (e.g. 64MB, 1GB;
    /// default 64MB). Only tables pgbarge creates are split.
    #[arg(long, value_name = "SIZE")]
    pub split_above: Option<String>,
    /// The size of one part of a split table (default 32MB). Each part commits on its
    /// own, so this is the most an interruption can lose.
    #[arg(long, value_name = "SIZE")]
    pub part_size: Option<String>,
    /// After the copy, keep applying the source's changes to the target (logical
    /// decoding: needs wal_level = logical on the source) until stopped (Ctrl-C; go on
    /// later with `pgbarge follow`) or `pgbarge cutover`. Copy and stream meet exactly.
    #[arg(long, conflicts_with_all = ["schema_only", "dry_run"])]
    pub follow: bool,
    /// Follow even though the target's ordinary triggers will fire on every change
    /// applied (the role may not set session_replication_role, which native replication
    /// uses to fire only ENABLE REPLICA and ENABLE ALWAYS triggers).
    #[arg(long, requires = "follow")]
    pub fire_triggers: bool,
    /// Continue the interrupted run recorded on the target: what committed is skipped,
    /// what was in flight is redone. Run with the same --source and --target.
    #[arg(long)]
    pub resume: bool,
    /// Retries of a unit (a table or a part) after a transient failure — a dropped or
    /// stalled connection, a restarting server, a lock held by another session — with
    /// exponential backoff (1 s doubling to 30 s). Default 12: about two to four minutes.
    #[arg(long, value_name = "N")]
    pub retries: Option<u32>,
    /// A stream that moves no data for this long is cancelled and retried (e.g. 60s,
    /// 2m; default 60s).
    #[arg(long, value_name = "DURATION")]
    pub stall_timeout: Option<String>,
    /// Stop the whole run at the first table that fails, instead of loading the others.
    #[arg(long)]
    pub fail_fast: bool,
    /// What the source's bytes really are, for a SQL_ASCII source (which stores and sends
    /// bytes unconverted): e.g. WIN1252 or LATIN1. The target converts them to its own
    /// encoding.
    #[arg(long, value_name = "ENCODING")]
    pub source_encoding: Option<String>,
    /// Run the choices saved in FILE (by --save-plan): its tables, modes and options.
    /// --mode, --jobs, --split-above and --part-size given with it override the plan's.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["tables", "all", "exclude", "exclude_object", "schema_only", "data_only", "resume"])]
    pub plan: Option<std::path::PathBuf>,
    /// Save the resolved choices (tables, modes, options; no connections or passwords)
    /// as a TOML plan to run again with --plan.
    #[arg(long, value_name = "FILE")]
    pub save_plan: Option<std::path::PathBuf>,
    /// After the copy, compare every copied table on both servers (see `pgbarge verify`).
    #[arg(long, conflicts_with = "schema_only")]
    pub verify: bool,
    /// Connect, plan and run preflight, print the plan, write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Do not ask for confirmation.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Print the plan (with --dry-run) or the report as one JSON document on stdout.
    #[arg(long)]
    pub json: bool,
    /// No progress lines on stderr.
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// Show the SQL the plan will run (schemas, types, CREATE TABLE, keys).
    #[arg(long, short = 'v')]
    pub verbose: bool,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub endpoints: Endpoints,
    /// Tables to compare (same patterns as `copy`); all of the source's tables if omitted.
    #[arg(value_name = "TABLE")]
    pub tables: Vec<String>,
    /// Leave out tables matching PATTERN; may be repeated.
    #[arg(long, value_name = "PATTERN")]
    pub exclude: Vec<String>,
    /// One JSON document on stdout.
    /// What a SQL_ASCII source's bytes really are (as given to copy): rows are compared
    /// as that text.
    #[arg(long, value_name = "ENCODING")]
    pub source_encoding: Option<String>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct TablesArgs {
    #[command(flatten)]
    pub source: Source,
    /// Only tables matching these patterns.
    #[arg(value_name = "PATTERN")]
    pub patterns: Vec<String>,
    /// One JSON document on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ModeArg {
    /// Add the source's rows to those already there.
    Append,
    /// Empty the target table (TRUNCATE, never CASCADE) in the same transaction, then load.
    Truncate,
    /// Drop the target table and recreate it from the source's definition, then load; one
    /// transaction.
    Replace,
    /// Insert new rows and update changed ones, matched by the target's primary key.
    Upsert,
    /// Move only the rows that differ: found by hashing on both servers, then inserted,
    /// updated and deleted on the target; one transaction per table.
    Sync,
}
