//! The ledger: which units of a run are committed on the target.
//!
//! Every unit records itself in its own transaction, just before COMMIT, so the unit and
//! its record commit together or not at all; a run that dies (SIGKILL, a lost machine)
//! is resumed by skipping exactly the recorded units. The record is SQL pipelined with
//! the unit's last statements, so it costs no round trip.
//!
//! [`Ledger`] is what the copy stage sees; [`PgLedger`] keeps the records in a schema
//! of pgbarge's own on the target ([`Store`]: `pgbarge` unless `--ledger-schema` says
//! otherwise; plain tables owned by the connecting role, no superuser-only feature, and
//! trusted only once the catalog shows nobody else could have written them),
//! [`MemoryLedger`] in memory (tests, and targets where the role may not create a schema:
//! such runs cannot be resumed). The run itself — its units as
//! they were planned, the source's snapshot time and change counters — is stored when it
//! starts ([`Store::start_run`]) and removed when it finishes ([`Store::finish_run`]).

use crate::xid::XidSnapshot;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use tokio_postgres::types::Type;
use tokio_postgres::Client;

use crate::catalog::TableName;
use crate::error::{Error, Kind, Result, Side, SqlState};
use crate::plan::units::{UnitId, Work, WORK_FORMAT};
use crate::poison::Locked;
use crate::quote::{ident, literal};

/// Where completion of units is recorded.
pub trait Ledger: Send + Sync {
    /// Statements run inside `unit`'s transaction, just before its COMMIT, recording it
    /// with the `bytes` it read from the source.
    fn record_sql(&self, unit: &UnitId, bytes: u64) -> Vec<String>;

    /// `unit` committed, having loaded `rows`.
    fn committed(&self, unit: &UnitId, rows: u64, bytes: u64);

    /// Statements to send ahead of the next unit on any target connection (pipelined,
    /// outside its transaction): what [`Ledger::committed`] learned too late to go in the
    /// unit's own transaction.
    fn pending_sql(&self) -> Option<String>;

    /// A statement each new target session of the run sends with its setup, recording
    /// the session: after a SIGKILL its server sessions may live on, and even commit the
    /// statements already sent; a resume ends them (see `end_sessions`) before it reads
    /// what is done.
    fn session_sql(&self) -> Option<String>;

    /// A statement recording that the run's snapshot was renewed (its holder was lost):
    /// the tables loaded from then on read a later instant than the run's recorded
    /// snapshot, so a followed copy cannot be resumed from it. Run on the target before
    /// any unit reads the new snapshot.
    fn renewed_sql(&self) -> Option<String>;
}

/// What a unit moved, as recorded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Moved {
    /// `None` when the run died before the count was written down.
    pub rows: Option<u64>,
    pub bytes: u64,
}

/// A ledger in memory: nothing survives the process.
#[derive(Debug, Default)]
pub struct MemoryLedger {
    done: Mutex<BTreeMap<UnitId, Moved>>,
}

impl MemoryLedger {
    /// The units committed so far.
    pub fn done(&self) -> BTreeMap<UnitId, Moved> {
        self.done.locked().clone()
    }
}

impl Ledger for MemoryLedger {
    fn record_sql(&self, _unit: &UnitId, _bytes: u64) -> Vec<String> {
        Vec::new()
    }

    fn committed(&self, unit: &UnitId, rows: u64, bytes: u64) {
        {
            let mut done = self.done.locked();
            done.insert(
                unit.clone(),
                Moved {
                    rows: Some(rows),
                    bytes,
                },
            );
        }
    }

    fn pending_sql(&self) -> Option<String> {
        None
    }

    fn session_sql(&self) -> Option<String> {
        None
    }

    fn renewed_sql(&self) -> Option<String> {
        None
    }
}

/// Where pgbarge keeps its records on the target: a schema of its own, `pgbarge` unless
/// another name is chosen (`--ledger-schema`: the application may have a schema of that
/// name, or the source one that is being copied).
///
/// The ledger is trusted only when it is provably pgbarge's: the schema and its tables
/// belong to the connecting role, nothing else is in it, no other role was granted
/// anything on it, and no trigger, rule or policy hangs on its tables (see
/// `inspect`). A schema of that name that fails any of these is never read,
/// written or dropped: the run stops and says why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Store {
    schema: String,
}

impl Default for Store {
    fn default() -> Self {
        Store {
            schema: DEFAULT_SCHEMA.to_string(),
        }
    }
}

/// The ledger's schema unless another is chosen.
pub const DEFAULT_SCHEMA: &str = "pgbarge";

/// The ledger's tables, as created by [`CREATE_TABLES`].
const TABLES: [&str; 6] = ["run", "unit", "session", "synced", "watermark", "follow"];

/// The comment that marks a schema pgbarge created for its ledger.
const MARKER: &str =
    "pgbarge ledger: what pgbarge runs record on this server; pgbarge drops it when empty";

impl Store {
    /// The ledger in schema `name`: a plain lower-case identifier (letters, digits and
    /// `_`, not starting with a digit or `pg_`), so that it needs no quoting anywhere a
    /// user may type it.
    pub fn new(name: &str) -> Result<Store> {
        let plain = name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            && name.chars().next().is_some_and(|c| !c.is_ascii_digit());
        if !plain || name.len() > 63 || name.starts_with("pg_") || name == "public" {
            return Err(Error::usage(format!(
                "--ledger-schema {}: the ledger's schema must be a plain lower-case name \
                 (letters, digits and _, at most 63, not starting with a digit or pg_, not \
                 public), e.g. pgbarge_ledger.",
                crate::quote::printable(name)
            )));
        }
        Ok(Store {
            schema: name.to_string(),
        })
    }

    /// The schema's name.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// `template` with `{L}` replaced by the quoted schema name. Only for templates
    /// that hold no value yet: a value containing `{L}` would be changed too (see
    /// [`Store::table`]).
    pub(crate) fn sql(&self, template: &str) -> String {
        template.replace("{L}", &ident(&self.schema))
    }

    /// The ledger's table `name`, qualified and quoted.
    pub(crate) fn table(&self, name: &str) -> String {
        crate::quote::qualified(&self.schema, name)
    }

    /// Whether the ledger is on the target with its table `name` (a ledger of an
    /// earlier version may lack one).
    pub async fn holds(&self, target: &Client, name: &str) -> Result<bool> {
        if !self.present(target).await? {
            return Ok(false);
        }
        Ok(target
            .query_typed_one(
                "SELECT pg_catalog.to_regclass($1) IS NOT NULL",
                &[(&self.table(name), Type::TEXT)],
            )
            .await
            .map_err(target_error("reading the pgbarge ledger"))?
            .get(0))
    }

    /// Whether the ledger is on the target. Every read of it starts here: a schema of
    /// its name that is not pgbarge's own is an error, never read.
    pub async fn present(&self, target: &Client) -> Result<bool> {
        match self.inspect(target).await? {
            Found::Absent => Ok(false),
            Found::Ours { .. } => Ok(true),
            Found::Foreign(problems) => Err(self.refusal(&problems)),
        }
    }

    /// What the target holds under the ledger's name.
    async fn inspect(&self, target: &Client) -> Result<Found> {
        let tables: Vec<&str> = TABLES.to_vec();
        let rows = target
            .query_typed(
                INSPECT,
                &[(&self.schema, Type::TEXT), (&tables, Type::TEXT_ARRAY)],
            )
            .await
            .map_err(target_error("checking the pgbarge ledger"))?;
        let mut exists = false;
        let mut marked = false;
        let mut ours_tables = 0;
        let mut problems = Vec::new();
        // Privileges by grantee and object, to say each once.
        let mut grants: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
        for row in &rows {
            let what: String = row.get(0);
            // Names in messages show their control characters escaped.
            let object = crate::quote::printable(row.get(1)).into_owned();
            let detail: String = row.get(2);
            match what.as_str() {
                "schema" => {
                    exists = true;
                    marked = detail == MARKER;
                }
                "table" => ours_tables += 1,
                // Someone else's schema: nothing in it can be trusted, and that says it.
                "owner" if object == "the schema" => {
                    return Ok(Found::Foreign(vec![format!(
                        "it belongs to role {}",
                        crate::quote::printable(&detail)
                    )]))
                }
                "owner" => problems.push(format!(
                    "{object} belongs to role {}",
                    crate::quote::printable(&detail)
                )),
                "grant" => grants.entry((row.get(3), object)).or_default().push(detail),
                "object" => problems.push(format!(
                    "it holds {object} {}",
                    crate::quote::printable(&ident(&detail))
                )),
                "trigger" | "rule" | "policy" => problems.push(format!(
                    "{object} has {what} {}",
                    crate::quote::printable(&ident(&detail))
                )),
                "row security" => problems.push(format!("{object} has row-level security")),
                _ => problems.push(format!("{what} {object} {detail}")),
            }
        }
        for ((grantee, object), privileges) in grants {
            problems.push(format!(
                "{} was granted {} on {object}",
                crate::quote::printable(&grantee),
                privileges.join(", ")
            ));
        }
        if !exists {
            return Ok(Found::Absent);
        }
        if !marked && ours_tables == 0 {
            // Neither made by pgbarge nor a ledger of an earlier version (which had
            // no marker): someone's own schema, however empty.
            problems.insert(0, "it was not created by pgbarge".to_string());
        }
        if problems.is_empty() {
            Ok(Found::Ours { marked })
        } else {
            Ok(Found::Foreign(problems))
        }
    }

    /// The error for a schema of the ledger's name that is not pgbarge's.
    fn refusal(&self, problems: &[String]) -> Error {
        Error::new(
            Kind::Preflight,
            format!(
                "the target has a schema named {name} that pgbarge cannot trust as its ledger: \
                 {}. pgbarge neither reads, writes nor drops it, and nothing was written. \
                 If it is an application's schema, keep pgbarge's records elsewhere with \
                 --ledger-schema NAME (the same name for every later command of this run); \
                 if it is a ledger you trust, have its owner fix what is listed.",
                problems.join("; "),
                name = ident(&self.schema),
            ),
        )
        .on(Side::Target)
    }

    /// Creates the ledger if it is missing, or brings an earlier version's up to date.
    /// `Ok(false)`: the role may not create a schema in this database, so runs cannot be
    /// resumed (the caller says so). A schema of the ledger's name that is not pgbarge's
    /// is an error.
    pub async fn ensure(&self, target: &Client) -> Result<bool> {
        // Twice at most: another pgbarge may create it between the look and the create.
        for _ in 0..2 {
            match self.inspect(target).await? {
                Found::Foreign(problems) => return Err(self.refusal(&problems)),
                Found::Ours { marked } => {
                    // It is ours: creating what an earlier version lacked is safe.
                    let mut sql = self.sql(CREATE_TABLES);
                    if !marked {
                        sql.push_str(&self.sql(&format!(
                            ";\nCOMMENT ON SCHEMA {{L}} IS {}",
                            literal(MARKER)
                        )));
                    }
                    return target
                        .batch_execute(&sql)
                        .await
                        .map(|()| true)
                        .map_err(target_error("updating the pgbarge ledger"));
                }
                Found::Absent => match self.create(target).await {
                    Ok(()) => return Ok(true),
                    Err(e) if e.code() == Some(&SqlState::INSUFFICIENT_PRIVILEGE) => {
                        return Ok(false)
                    }
                    // Another run created it first: look at it again.
                    Err(e)
                        if e.code() == Some(&SqlState::DUPLICATE_SCHEMA)
                            || e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {}
                    Err(e) => return Err(target_error("creating the pgbarge ledger")(e)),
                },
            }
        }
        Err(Error::new(
            Kind::Copy,
            "the pgbarge ledger was being created by another session at the same time; \
             try again.",
        )
        .on(Side::Target)
        .transient(true))
    }

    /// Creates the schema and its tables in one transaction, then takes back whatever
    /// default privileges granted on them (`ALTER DEFAULT PRIVILEGES` of this role):
    /// the ledger names the source and every table, and nobody else may read it.
    async fn create(&self, target: &Client) -> std::result::Result<(), tokio_postgres::Error> {
        let create = format!(
            "BEGIN;\nCREATE SCHEMA {{L}};\nCOMMENT ON SCHEMA {{L}} IS {};\n{CREATE_TABLES}",
            literal(MARKER)
        );
        let result = async {
            target.batch_execute(&self.sql(&create)).await?;
            let tables: Vec<&str> = TABLES.to_vec();
            let grants = target
                .query_typed(
                    INSPECT,
                    &[(&self.schema, Type::TEXT), (&tables, Type::TEXT_ARRAY)],
                )
                .await?;
            let revokes: Vec<String> = grants
                .iter()
                .filter(|r| r.get::<_, String>(0) == "grant")
                .map(|r| {
                    let grantee: String = r.get(3);
                    let grantee = if grantee == "PUBLIC" {
                        grantee
                    } else {
                        ident(&grantee)
                    };
                    format!("REVOKE ALL ON {} FROM {grantee}", r.get::<_, String>(4))
                })
                .collect();
            if !revokes.is_empty() {
                target.batch_execute(&revokes.join(";\n")).await?;
            }
            target.batch_execute("COMMIT").await
        }
        .await;
        if result.is_err() {
            let _ = target.batch_execute("ROLLBACK").await;
        }
        result
    }
}

/// What the target holds under the ledger's name.
enum Found {
    Absent,
    /// pgbarge's ledger; `marked`: created by this version (an earlier one left no mark).
    Ours {
        marked: bool,
    },
    /// A schema pgbarge did not make, or one others were let into: why.
    Foreign(Vec<String>),
}

/// Everything that decides whether schema `$1` is pgbarge's ledger (`$2`: its table
/// names), one row each: (what, object, detail, grantee, object as SQL).
/// - `schema`: it exists; detail: its comment (the marker).
/// - `table`: one of the ledger's tables.
/// - `owner`: the schema or one of its relations belongs to another role.
/// - `grant`: a privilege another role (or PUBLIC) holds on the schema, a relation or a
///   column.
/// - `object`: anything in it besides the ledger's tables, their indexes and sequence.
/// - `trigger`, `rule`, `policy`, `row security` on its relations.
///
/// Everything is read from the catalog, so only the server's own functions run.
const INSPECT: &str = "WITH s AS (
    SELECT n.oid, n.nspowner, n.nspacl FROM pg_catalog.pg_namespace n WHERE n.nspname = $1),
  me AS (SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolname = CURRENT_USER),
  rels AS (SELECT c.oid, c.relname, c.relkind, c.relowner, c.relacl, c.relrowsecurity
           FROM pg_catalog.pg_class c JOIN s ON c.relnamespace = s.oid),
  ours AS (SELECT r.oid FROM rels r WHERE r.relkind = 'r' AND r.relname = ANY ($2::text[])),
  kinds(relkind, noun) AS (VALUES ('r'::pg_catalog.\"char\", 'table'), ('p', 'table'), ('v', 'view'),
      ('m', 'materialized view'), ('S', 'sequence'), ('i', 'index'), ('I', 'index'),
      ('f', 'foreign table'), ('c', 'type'), ('t', 'table'))
SELECT 'schema', '', coalesce(pg_catalog.obj_description(s.oid, 'pg_namespace'), ''), '', ''
  FROM s
UNION ALL
SELECT 'table', r.relname::text, '', '', '' FROM rels r WHERE r.oid IN (SELECT oid FROM ours)
UNION ALL
SELECT 'owner', 'the schema', pg_catalog.pg_get_userbyid(s.nspowner)::text, '', ''
  FROM s WHERE s.nspowner <> (SELECT oid FROM me)
UNION ALL
SELECT 'owner', k.noun || ' ' || pg_catalog.quote_ident(r.relname),
       pg_catalog.pg_get_userbyid(r.relowner)::text, '', ''
  FROM rels r JOIN kinds k USING (relkind) WHERE r.relowner <> (SELECT oid FROM me)
UNION ALL
SELECT 'grant', 'the schema', a.privilege_type,
       CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_catalog.pg_get_userbyid(a.grantee)::text END,
       'SCHEMA ' || pg_catalog.quote_ident($1)
  FROM s, pg_catalog.aclexplode(s.nspacl) a WHERE a.grantee <> s.nspowner
UNION ALL
SELECT 'grant', k.noun || ' ' || pg_catalog.quote_ident(r.relname), a.privilege_type,
       CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_catalog.pg_get_userbyid(a.grantee)::text END,
       CASE WHEN r.relkind = 'S' THEN 'SEQUENCE ' ELSE 'TABLE ' END
         || pg_catalog.quote_ident($1) || '.' || pg_catalog.quote_ident(r.relname)
  FROM rels r JOIN kinds k USING (relkind), pg_catalog.aclexplode(r.relacl) a
  WHERE a.grantee <> r.relowner
UNION ALL
SELECT 'grant', 'column ' || pg_catalog.quote_ident(r.relname) || '.'
         || pg_catalog.quote_ident(t.attname), a.privilege_type,
       CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_catalog.pg_get_userbyid(a.grantee)::text END,
       'TABLE ' || pg_catalog.quote_ident($1) || '.' || pg_catalog.quote_ident(r.relname)
  FROM rels r JOIN pg_catalog.pg_attribute t ON t.attrelid = r.oid,
       pg_catalog.aclexplode(t.attacl) a
  WHERE a.grantee <> r.relowner
UNION ALL
SELECT 'object', k.noun, r.relname::text, '', '' FROM rels r JOIN kinds k USING (relkind)
  WHERE r.oid NOT IN (SELECT oid FROM ours)
    AND NOT (r.relkind = 'i' AND EXISTS (SELECT FROM pg_catalog.pg_index i
             WHERE i.indexrelid = r.oid AND i.indrelid IN (SELECT oid FROM ours)))
    AND NOT (r.relkind = 'S' AND EXISTS (SELECT FROM pg_catalog.pg_depend d
             WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid = r.oid
               AND d.refobjid IN (SELECT oid FROM ours) AND d.deptype IN ('a', 'i')))
UNION ALL
SELECT 'object', CASE p.prokind WHEN 'p' THEN 'procedure' WHEN 'a' THEN 'aggregate'
                   ELSE 'function' END, p.proname::text, '', ''
  FROM pg_catalog.pg_proc p JOIN s ON p.pronamespace = s.oid
UNION ALL
SELECT 'object', 'type', t.typname::text, '', ''
  FROM pg_catalog.pg_type t JOIN s ON t.typnamespace = s.oid
  WHERE t.typrelid NOT IN (SELECT oid FROM rels)
    AND NOT EXISTS (SELECT FROM pg_catalog.pg_type e WHERE e.typarray = t.oid)
UNION ALL
SELECT 'object', 'operator', o.oprname::text, '', ''
  FROM pg_catalog.pg_operator o JOIN s ON o.oprnamespace = s.oid
UNION ALL
SELECT 'object', 'collation', c.collname::text, '', ''
  FROM pg_catalog.pg_collation c JOIN s ON c.collnamespace = s.oid
UNION ALL
SELECT 'object', 'conversion', c.conname::text, '', ''
  FROM pg_catalog.pg_conversion c JOIN s ON c.connamespace = s.oid
UNION ALL
SELECT 'object', 'operator class', c.opcname::text, '', ''
  FROM pg_catalog.pg_opclass c JOIN s ON c.opcnamespace = s.oid
UNION ALL
SELECT 'object', 'operator family', f.opfname::text, '', ''
  FROM pg_catalog.pg_opfamily f JOIN s ON f.opfnamespace = s.oid
UNION ALL
SELECT 'object', 'text search configuration', c.cfgname::text, '', ''
  FROM pg_catalog.pg_ts_config c JOIN s ON c.cfgnamespace = s.oid
UNION ALL
SELECT 'object', 'text search dictionary', d.dictname::text, '', ''
  FROM pg_catalog.pg_ts_dict d JOIN s ON d.dictnamespace = s.oid
UNION ALL
SELECT 'object', 'text search parser', p.prsname::text, '', ''
  FROM pg_catalog.pg_ts_parser p JOIN s ON p.prsnamespace = s.oid
UNION ALL
SELECT 'object', 'text search template', t.tmplname::text, '', ''
  FROM pg_catalog.pg_ts_template t JOIN s ON t.tmplnamespace = s.oid
UNION ALL
SELECT 'object', 'statistics object', x.stxname::text, '', ''
  FROM pg_catalog.pg_statistic_ext x JOIN s ON x.stxnamespace = s.oid
UNION ALL
SELECT 'object', 'extension', e.extname::text, '', ''
  FROM pg_catalog.pg_extension e JOIN s ON e.extnamespace = s.oid
UNION ALL
SELECT 'trigger', k.noun || ' ' || pg_catalog.quote_ident(r.relname), g.tgname::text, '', ''
  FROM rels r JOIN kinds k USING (relkind) JOIN pg_catalog.pg_trigger g ON g.tgrelid = r.oid
  WHERE NOT g.tgisinternal
UNION ALL
SELECT 'rule', k.noun || ' ' || pg_catalog.quote_ident(r.relname), w.rulename::text, '', ''
  FROM rels r JOIN kinds k USING (relkind) JOIN pg_catalog.pg_rewrite w ON w.ev_class = r.oid
  WHERE w.rulename <> '_RETURN'
UNION ALL
SELECT 'policy', k.noun || ' ' || pg_catalog.quote_ident(r.relname), p.polname::text, '', ''
  FROM rels r JOIN kinds k USING (relkind) JOIN pg_catalog.pg_policy p ON p.polrelid = r.oid
UNION ALL
SELECT 'row security', k.noun || ' ' || pg_catalog.quote_ident(r.relname), '', '', ''
  FROM rels r JOIN kinds k USING (relkind) WHERE r.relrowsecurity";

/// The ledger's tables, created where missing (run only in a schema known to be
/// pgbarge's: `IF NOT EXISTS` would otherwise adopt someone else's table). One round
/// trip. PUBLIC gets nothing (a new schema grants nothing; default privileges are taken
/// back when the ledger is created).
const CREATE_TABLES: &str = "CREATE TABLE IF NOT EXISTS {L}.run (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    started_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    source text NOT NULL,
    snapshot_at timestamptz,
    work jsonb NOT NULL,
    source_changes jsonb NOT NULL
);
CREATE TABLE IF NOT EXISTS {L}.unit (
    run_id bigint NOT NULL REFERENCES {L}.run ON DELETE CASCADE,
    unit text NOT NULL,
    rows bigint,
    bytes bigint NOT NULL,
    committed_at timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    PRIMARY KEY (run_id, unit)
);
CREATE TABLE IF NOT EXISTS {L}.session (
    run_id bigint NOT NULL REFERENCES {L}.run ON DELETE CASCADE,
    pid int NOT NULL,
    started timestamptz NOT NULL
);
CREATE TABLE IF NOT EXISTS {L}.synced (
    target_table text PRIMARY KEY,
    source text NOT NULL,
    source_changes bigint NOT NULL,
    synced_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
CREATE TABLE IF NOT EXISTS {L}.watermark (
    target_table text NOT NULL,
    column_name text NOT NULL,
    source text NOT NULL,
    value text,
    snapshot text NOT NULL,
    synced_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (target_table, column_name)
);
CREATE TABLE IF NOT EXISTS {L}.follow (
    slot text PRIMARY KEY,
    publication text NOT NULL,
    source text NOT NULL,
    tables jsonb NOT NULL,
    snapshot text,
    applied_lsn pg_lsn,
    applied_at timestamptz,
    changes bigint NOT NULL DEFAULT 0,
    stop_requested boolean NOT NULL DEFAULT false,
    follower_pid int,
    created_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
-- The run's snapshot (which transactions it saw), kept since a followed copy can be
-- resumed; a ledger from before gains the column.
ALTER TABLE {L}.run ADD COLUMN IF NOT EXISTS snapshot text";

const INSERT_RUN: &str =
    "INSERT INTO {L}.run (source, snapshot_at, work, source_changes, snapshot) \
     VALUES ($1, $2::text::timestamptz, $3::text::jsonb, $4::text::jsonb, $5) RETURNING id";

/// The newest run not finished, with its committed units. (The snapshot is read through
/// `to_jsonb`: a ledger written by an earlier version, not yet given the column, has
/// none.)
const LAST_RUN: &str =
    "SELECT id, date_trunc('second', started_at)::text, source, snapshot_at::text, work::text, \
     source_changes::text, pg_catalog.to_jsonb(r) ->> 'snapshot' \
     FROM {L}.run r ORDER BY id DESC LIMIT 1";
const RUN_UNITS: &str = "SELECT unit, rows, bytes FROM {L}.unit WHERE run_id = $1";

/// A finished (or abandoned) run leaves nothing behind; with no run left, neither does
/// the ledger — unless it holds what the next sync of a table uses (the last sync's
/// record and `--since` watermark) or a follow in progress. One round trip.
const FINISH_RUN: &str = "DELETE FROM {L}.run WHERE id = {ID}; {TIDY}";

/// Drops the ledger when nothing is left in it: its own tables by name, then the schema
/// if it is empty (never CASCADE: nothing pgbarge did not create goes with it).
const TIDY: &str = "DO $pgbarge_tidy$ BEGIN
    IF NOT EXISTS (SELECT FROM {L}.run) AND NOT EXISTS (SELECT FROM {L}.synced)
       AND NOT EXISTS (SELECT FROM {L}.watermark)
       AND NOT EXISTS (SELECT FROM {L}.follow) THEN
        DROP TABLE IF EXISTS {L}.session, {L}.unit, {L}.run, {L}.synced, {L}.watermark,
            {L}.follow;
        BEGIN
            DROP SCHEMA {L};
        EXCEPTION WHEN dependent_objects_still_exist THEN
            NULL;
        END;
    END IF;
END $pgbarge_tidy$";

/// A run recorded on the target.
#[derive(Debug, Clone)]
pub struct SavedRun {
    pub id: i64,
    pub started_at: String,
    /// The source as `user@host:port/db`.
    pub source: String,
    /// When the run's snapshot of the source was taken.
    pub snapshot_at: Option<String>,
    /// The transactions that snapshot saw (`xmin:xmax:running,…`); `None` in a run
    /// recorded by an earlier version.
    pub snapshot: Option<XidSnapshot>,
    pub work: Work,
    /// Per source table, its change counter when the run started (see
    /// [`source_changes`]).
    pub source_changes: BTreeMap<String, i64>,
    pub done: BTreeMap<UnitId, Moved>,
    /// Objects of the post-data unit (by position) that were created one by one after a
    /// failed table blocked that unit: a resume does not create them again.
    pub salvaged: BTreeSet<usize>,
}

/// The ledger on the target, for one run.
#[derive(Debug)]
pub struct PgLedger {
    store: Store,
    run_id: i64,
    pending: Mutex<Vec<String>>,
}

impl PgLedger {
    pub fn run_id(&self) -> i64 {
        self.run_id
    }

    pub fn store(&self) -> &Store {
        &self.store
    }
}

impl Ledger for PgLedger {
    fn record_sql(&self, unit: &UnitId, bytes: u64) -> Vec<String> {
        vec![format!(
            "INSERT INTO {} (run_id, unit, bytes) VALUES ({}, {}, {bytes})",
            self.store.table("unit"),
            self.run_id,
            literal(&unit.to_string())
        )]
    }

    fn committed(&self, unit: &UnitId, rows: u64, _bytes: u64) {
        {
            let mut pending = self.pending.locked();
            pending.push(format!(
                "UPDATE {} SET rows = {rows} WHERE run_id = {} AND unit = {}",
                self.store.table("unit"),
                self.run_id,
                literal(&unit.to_string())
            ));
        }
    }

    fn pending_sql(&self) -> Option<String> {
        let mut pending = self.pending.locked();
        if pending.is_empty() {
            return None;
        }
        Some(std::mem::take(&mut *pending).join(";\n"))
    }

    fn session_sql(&self) -> Option<String> {
        Some(self.store.sql(&format!(
            "INSERT INTO {{L}}.session SELECT {}, pid, backend_start \
             FROM pg_catalog.pg_stat_activity WHERE pid = pg_catalog.pg_backend_pid()",
            self.run_id
        )))
    }

    fn renewed_sql(&self) -> Option<String> {
        Some(self.store.sql(&format!(
            "UPDATE {{L}}.run SET snapshot = NULL WHERE id = {}",
            self.run_id
        )))
    }
}

/// The run's sessions still alive on the target (their process ids and start times
/// match), ended; from PostgreSQL 14 on each end is waited for (up to 5 s).
const END_SESSIONS: &str = "SELECT pg_catalog.pg_terminate_backend(a.pid{WAIT}) \
     FROM {L}.session s JOIN pg_catalog.pg_stat_activity a \
       ON a.pid = s.pid AND a.backend_start = s.started \
     WHERE s.run_id = $1 AND a.pid <> pg_catalog.pg_backend_pid()";
const SESSIONS_ALIVE: &str = "SELECT count(*) FROM {L}.session s \
     JOIN pg_catalog.pg_stat_activity a ON a.pid = s.pid AND a.backend_start = s.started \
     WHERE s.run_id = $1 AND a.pid <> pg_catalog.pg_backend_pid()";

fn target_error(doing: &'static str) -> impl Fn(tokio_postgres::Error) -> Error {
    move |e| Error::postgres(Kind::Copy, Side::Target, doing, e)
}

impl Store {
    /// Ends what is left of run `id`'s sessions on the target, and waits (up to 30 s)
    /// until they are gone: a session of a killed pgbarge may still be running — or
    /// committing — the statements it was sent, holding the locks a resume needs. Only
    /// after this is the ledger's list of committed units final. A role may end its own
    /// sessions.
    pub async fn end_sessions(&self, target: &Client, id: i64, server_version: i32) -> Result<()> {
        let wait = if server_version >= 140_000 {
            ", 5000"
        } else {
            ""
        };
        let err = target_error("ending the sessions of the interrupted run");
        target
            .query(&self.sql(&END_SESSIONS.replace("{WAIT}", wait)), &[&id])
            .await
            .map_err(&err)?;
        let alive_sql = self.sql(SESSIONS_ALIVE);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let alive: i64 = target
                .query_one(&alive_sql, &[&id])
                .await
                .map_err(&err)?
                .get(0);
            if alive == 0 {
                return Ok(());
            }
            if std::time::Instant::now() > deadline {
                return Err(Error::new(
                    Kind::Copy,
                    format!(
                        "{} of the interrupted run {} still alive on the target 30 s after \
                         being ended; try again in a moment.",
                        crate::text::plural(alive as usize, "session", "sessions"),
                        if alive == 1 { "is" } else { "are" }
                    ),
                )
                .on(Side::Target)
                .transient(true));
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    /// The last unfinished run recorded on the target, if any.
    pub async fn last_run(&self, target: &Client) -> Result<Option<SavedRun>> {
        if !self.present(target).await? {
            return Ok(None);
        }
        let Some(row) = target
            .query_opt(&self.sql(LAST_RUN), &[])
            .await
            .map_err(target_error("reading the pgbarge ledger"))?
        else {
            return Ok(None);
        };
        let id: i64 = row.get(0);
        let work_text: String = row.get(4);
        let work: Work = serde_json::from_str(&work_text).map_err(|e| {
            Error::new(
                Kind::Usage,
                format!(
                    "the interrupted run recorded on the target (run {id}) was saved by \
                     another version of pgbarge and cannot be resumed ({e}); run `pgbarge \
                     clean` to remove it, then copy again."
                ),
            )
        })?;
        if work.format != WORK_FORMAT {
            return Err(Error::new(
                Kind::Usage,
                format!(
                    "the interrupted run recorded on the target (run {id}) was saved by \
                     another version of pgbarge; run `pgbarge clean` to remove it, then \
                     copy again."
                ),
            ));
        }
        let changes_text: String = row.get(5);
        let source_changes = serde_json::from_str(&changes_text).unwrap_or_default();
        let rows = target
            .query(&self.sql(RUN_UNITS), &[&id])
            .await
            .map_err(target_error("reading the pgbarge ledger"))?;
        let mut done = BTreeMap::new();
        let mut salvaged = BTreeSet::new();
        for r in rows {
            let unit: UnitId = r.get::<_, String>(0).parse().map_err(|e| {
                Error::new(
                    Kind::Usage,
                    format!(
                        "the interrupted run recorded on the target (run {id}) was saved by \
                         another version of pgbarge and cannot be resumed ({e}); run `pgbarge \
                         clean` to remove it, then copy again."
                    ),
                )
            })?;
            if let UnitId::PostDataObject(k) = unit {
                salvaged.insert(k);
                continue;
            }
            let moved = Moved {
                rows: r.get::<_, Option<i64>>(1).map(|n| n.max(0) as u64),
                bytes: r.get::<_, i64>(2).max(0) as u64,
            };
            done.insert(unit, moved);
        }
        Ok(Some(SavedRun {
            id,
            started_at: row.get(1),
            source: row.get(2),
            snapshot_at: row.get(3),
            // Written by pgbarge; text that does not read as a snapshot is another's.
            snapshot: row
                .try_get(6)
                .map_err(target_error("reading the run's snapshot from the ledger"))?,
            work,
            source_changes,
            done,
            salvaged,
        }))
    }

    /// Records a new run, with its snapshot's time and the transactions it saw
    /// (`xmin:xmax:running,…`), and returns its ledger.
    pub async fn start_run(
        &self,
        target: &Client,
        work: &Work,
        (taken_at, xids): (&str, &XidSnapshot),
        source_changes: &BTreeMap<String, i64>,
    ) -> Result<PgLedger> {
        let work_json = serde_json::to_string(work)
            .map_err(|e| Error::new(Kind::Copy, format!("internal: cannot save the run: {e}")))?;
        let changes = serde_json::to_string(source_changes).unwrap_or_else(|_| "{}".into());
        let row = target
            .query_one(
                &self.sql(INSERT_RUN),
                &[
                    &work.source.connection,
                    &taken_at,
                    &work_json,
                    &changes,
                    &xids,
                ],
            )
            .await
            .map_err(target_error("recording the run in the pgbarge ledger"))?;
        Ok(PgLedger {
            store: self.clone(),
            run_id: row.get(0),
            pending: Mutex::new(Vec::new()),
        })
    }

    /// Records the snapshot a resumed run reads from now on (see [`SavedRun::snapshot`]).
    pub async fn record_snapshot(
        &self,
        target: &Client,
        id: i64,
        xids: &XidSnapshot,
    ) -> Result<()> {
        target
            .execute_typed(
                &self.sql("UPDATE {L}.run SET snapshot = $2 WHERE id = $1"),
                &[(&id, Type::INT8), (&xids, Type::TEXT)],
            )
            .await
            .map_err(target_error("recording the run's snapshot"))?;
        Ok(())
    }

    /// The statement that forgets `units` of run `id`: sent in the transaction that
    /// undoes what they loaded, so that a resume runs them again.
    pub(crate) fn forget_units_sql(&self, id: i64, units: &[UnitId]) -> String {
        format!(
            "DELETE FROM {} WHERE run_id = {id} AND unit IN ({})",
            self.table("unit"),
            units
                .iter()
                .map(|u| literal(&u.to_string()))
                .collect::<Vec<_>>()
                .join(", ")
        )
    }

    /// The ledger of a run being resumed.
    pub fn resume_run(&self, run: &SavedRun) -> PgLedger {
        PgLedger {
            store: self.clone(),
            run_id: run.id,
            pending: Mutex::new(Vec::new()),
        }
    }

    /// Removes run `id` from the ledger, and the ledger itself when no run is left.
    pub async fn finish_run(&self, target: &Client, id: i64) -> Result<()> {
        target
            .batch_execute(
                &self.sql(
                    &FINISH_RUN
                        .replace("{ID}", &id.to_string())
                        .replace("{TIDY}", TIDY),
                ),
            )
            .await
            .map_err(target_error(
                "clearing the finished run from the pgbarge ledger",
            ))
    }

    /// Drops the ledger if it holds nothing any more (no run, sync record or follow).
    pub async fn tidy(&self, target: &Client) -> Result<()> {
        target
            .batch_execute(&self.sql(TIDY))
            .await
            .map_err(target_error("tidying the pgbarge ledger"))
    }

    /// Abandons `run`: drops the staging tables its split tables were loading (nothing
    /// else of an unfinished run is visible: every other unit committed whole or not at
    /// all) and removes it from the ledger. Returns the staging tables dropped, and those
    /// left alone because the catalog does not agree they are pgbarge's (another owner,
    /// no staging mark).
    pub async fn abandon(&self, target: &Client, run: &SavedRun) -> Result<Abandoned> {
        self.end_sessions(target, run.id, run.work.target.server_version)
            .await?;
        let listed: Vec<TableName> = run.work.staging_tables().cloned().collect();
        let mut abandoned = Abandoned::default();
        if !listed.is_empty() {
            let names: Vec<String> = listed.iter().map(TableName::sql).collect();
            let ours: Vec<String> = target
                .query_typed(
                    OUR_STAGING,
                    &[
                        (&names, Type::TEXT_ARRAY),
                        (&crate::plan::STAGING_MARKER, Type::TEXT),
                    ],
                )
                .await
                .map_err(target_error("reading the interrupted run's staging tables"))?
                .iter()
                .map(|r| r.get(0))
                .collect();
            let (drop, keep): (Vec<TableName>, Vec<TableName>) =
                listed.into_iter().partition(|t| ours.contains(&t.sql()));
            if !drop.is_empty() {
                let sql = drop
                    .iter()
                    .map(|s| format!("DROP TABLE {}", s.sql()))
                    .collect::<Vec<_>>()
                    .join(";\n");
                target.batch_execute(&sql).await.map_err(target_error(
                    "dropping the staging tables of the interrupted run",
                ))?;
            }
            abandoned.dropped = drop;
            // Tables the run listed that are gone already need no word; the others do.
            let present: Vec<String> = target
                .query_typed(
                    "SELECT t.name FROM unnest($1::text[]) AS t(name) \
                     WHERE pg_catalog.to_regclass(t.name) IS NOT NULL",
                    &[(
                        &keep.iter().map(TableName::sql).collect::<Vec<_>>(),
                        Type::TEXT_ARRAY,
                    )],
                )
                .await
                .map_err(target_error("reading the interrupted run's staging tables"))?
                .iter()
                .map(|r| r.get(0))
                .collect();
            abandoned.kept = keep
                .into_iter()
                .filter(|t| present.contains(&t.sql()))
                .collect();
        }
        self.finish_run(target, run.id).await?;
        Ok(abandoned)
    }
}

/// What abandoning a run did to its staging tables.
#[derive(Debug, Clone, Default)]
pub struct Abandoned {
    pub dropped: Vec<TableName>,
    /// Listed by the run, but not pgbarge's by the catalog: left alone.
    pub kept: Vec<TableName>,
    /// The slot of a follow that was waiting for the run's copy, which cannot start
    /// any more (`follow --drop` removes it).
    pub orphaned_slot: Option<String>,
}

/// Of the tables `$1` (quoted names), those that are pgbarge's staging tables by the
/// catalog: named `_pgbarge_…`, owned by the connecting role, and marked `$2`.
const OUR_STAGING: &str = "SELECT t.name FROM unnest($1::text[]) AS t(name) \
     JOIN pg_catalog.pg_class c ON c.oid = pg_catalog.to_regclass(t.name) \
     WHERE c.relname LIKE '\\_pgbarge\\_%' AND c.relkind IN ('r', 'p') \
       AND c.relowner = (SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolname = CURRENT_USER) \
       AND pg_catalog.obj_description(c.oid, 'pg_class') = $2";

/// Per source table (`schema.name` as text), a counter that moves whenever rows are
/// inserted, updated or deleted: `n_tup_ins + n_tup_upd + n_tup_del`. Read when a run
/// starts and when it resumes; a table whose counter moved in between may have changed.
const SOURCE_CHANGES: &str = "SELECT schemaname::text, relname::text, \
     (n_tup_ins + n_tup_upd + n_tup_del)::int8 FROM pg_catalog.pg_stat_all_tables \
     WHERE (schemaname, relname) IN (SELECT s, r FROM unnest($1::text[], $2::text[]) AS t(s, r))";

/// The change counters of `tables` on the source (tables the statistics do not cover are
/// left out: their changes cannot be shown).
pub async fn source_changes(
    source: &Client,
    tables: &[TableName],
) -> Result<BTreeMap<String, i64>> {
    let schemas: Vec<&str> = tables.iter().map(|t| t.schema.as_str()).collect();
    let names: Vec<&str> = tables.iter().map(|t| t.name.as_str()).collect();
    Ok(source
        .query(SOURCE_CHANGES, &[&schemas, &names])
        .await
        .map_err(|e| Error::postgres(Kind::Copy, Side::Source, "reading table statistics", e))?
        .into_iter()
        .map(|r| {
            let name = TableName::new(r.get::<_, String>(0), r.get::<_, String>(1));
            (name.to_string(), r.get(2))
        })
        .collect())
}

/// The tables among `before` whose counters differ in `now` (or are missing there):
/// they may have changed between the two reads.
pub fn changed_tables(
    before: &BTreeMap<String, i64>,
    now: &BTreeMap<String, i64>,
) -> BTreeSet<String> {
    before
        .iter()
        .filter(|(table, n)| now.get(*table) != Some(n))
        .map(|(table, _)| table.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ledger_schema_is_a_plain_name() {
        assert_eq!(Store::default().schema(), "pgbarge");
        assert_eq!(
            Store::new("pgbarge_ledger").map(|s| s.sql("{L}.run")).ok(),
            Some("\"pgbarge_ledger\".run".into())
        );
        for bad in [
            "",
            "Pgbarge",
            "1x",
            "pg_x",
            "public",
            "a-b",
            "a\"b",
            "a$b",
            &"x".repeat(64),
        ] {
            assert!(Store::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn memory_ledger_records_after_commit_only() {
        let ledger = MemoryLedger::default();
        let unit = UnitId::Part {
            table: "public.t".into(),
            index: 3,
        };
        assert!(ledger.record_sql(&unit, 10).is_empty());
        assert!(ledger.done().is_empty());
        ledger.committed(&unit, 5, 10);
        assert_eq!(
            ledger.done().get(&unit),
            Some(&Moved {
                rows: Some(5),
                bytes: 10
            })
        );
        assert_eq!(ledger.pending_sql(), None);
    }

    #[test]
    fn pg_ledger_records_in_the_transaction_and_counts_rows_later() {
        let ledger = PgLedger {
            store: Store::default(),
            run_id: 7,
            pending: Mutex::new(Vec::new()),
        };
        let unit = UnitId::Table("public.it's".into());
        let sql = ledger.record_sql(&unit, 42);
        assert_eq!(
            sql,
            vec!["INSERT INTO \"pgbarge\".\"unit\" (run_id, unit, bytes) VALUES (7, 'table public.it''s', 42)"]
        );
        assert_eq!(ledger.pending_sql(), None);
        ledger.committed(&unit, 3, 42);
        let pending = ledger.pending_sql().expect("a pending update");
        assert!(pending.contains("SET rows = 3"), "{pending}");
        assert_eq!(ledger.pending_sql(), None, "drained once sent");
    }

    #[test]
    fn changed_tables_are_those_whose_counters_moved_or_vanished() {
        let before: BTreeMap<String, i64> =
            [("a".into(), 1), ("b".into(), 5), ("c".into(), 9)].into();
        let now: BTreeMap<String, i64> = [("a".into(), 1), ("b".into(), 6)].into();
        let changed = changed_tables(&before, &now);
        assert_eq!(changed, ["b".to_string(), "c".to_string()].into());
    }
}
