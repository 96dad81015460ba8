//! What on the target depends on tables a run may drop: other tables' foreign keys that
//! point at them, the views (transitively) built on them, and the functions whose
//! signatures use their row types. `--mode replace` drops such
//! a table; rather than refuse, or drop with CASCADE and lose them, the run drops these
//! objects and creates them again, as they were, in the same transaction.

use std::collections::BTreeMap;

use serde::Serialize;
use tokio_postgres::types::Type;
use tokio_postgres::{Client, Row};

use super::{ForeignKey, Table, TableName, View};
use crate::error::{Error, Kind, Result, Side};

/// Foreign keys of other tables that point at the given tables (a table's own
/// self-references go with it), on the tables themselves rather than the clones their
/// partitions carry; and whether the role may drop them (it must own the table).
const INBOUND_FOREIGN_KEYS: &str = "
SELECT cn.nspname, c.relname, pn.nspname, p.relname, k.conname,
       pg_catalog.pg_get_constraintdef(k.oid), pg_catalog.pg_has_role(c.relowner, 'USAGE'),
       rn.nspname, r.relname
FROM pg_catalog.pg_constraint k
JOIN pg_catalog.pg_class c ON c.oid = k.conrelid
JOIN pg_catalog.pg_class r
  ON r.oid = coalesce(pg_catalog.pg_partition_root(k.conrelid), k.conrelid)
JOIN pg_catalog.pg_namespace rn ON rn.oid = r.relnamespace
JOIN pg_catalog.pg_namespace cn ON cn.oid = c.relnamespace
JOIN pg_catalog.pg_class p ON p.oid = k.confrelid
JOIN pg_catalog.pg_namespace pn ON pn.oid = p.relnamespace
WHERE k.contype = 'f' AND k.conparentid = 0 AND k.conrelid <> k.confrelid
  AND k.confrelid = ANY($1)
ORDER BY 1, 2, 5";

/// Views and materialized views built on the given tables, directly, through other
/// views, or through a function that depends on them (see [`DEPENDENT_ROUTINES`]), with
/// what it takes to create them again: the query, options, a materialized view's
/// indexes, rules and INSTEAD OF triggers, owner and comment. `depth` orders them: a
/// view is created after every view it reads.
const DEPENDENT_VIEWS: &str = "
WITH RECURSIVE routines(oid, on_table) AS (
    SELECT d.objid, d.refobjid FROM pg_catalog.pg_depend d
    WHERE d.classid = 'pg_catalog.pg_proc'::regclass
      AND d.refclassid = 'pg_catalog.pg_class'::regclass AND d.refobjid = ANY($1)
  UNION
    SELECT d.objid, c.oid FROM pg_catalog.pg_depend d
    JOIN pg_catalog.pg_class c ON c.reltype = d.refobjid
    WHERE d.classid = 'pg_catalog.pg_proc'::regclass
      AND d.refclassid = 'pg_catalog.pg_type'::regclass AND c.oid = ANY($1)
), dep(view, on_table, depth) AS (
    SELECT r.ev_class, d.refobjid, 1
    FROM pg_catalog.pg_depend d
    JOIN pg_catalog.pg_rewrite r ON r.oid = d.objid
    WHERE d.classid = 'pg_catalog.pg_rewrite'::regclass
      AND d.refclassid = 'pg_catalog.pg_class'::regclass
      AND d.refobjid = ANY($1) AND r.ev_class <> d.refobjid
  UNION
    SELECT r.ev_class, routines.on_table, 1
    FROM routines
    JOIN pg_catalog.pg_depend d ON d.refobjid = routines.oid
         AND d.classid = 'pg_catalog.pg_rewrite'::regclass
         AND d.refclassid = 'pg_catalog.pg_proc'::regclass
    JOIN pg_catalog.pg_rewrite r ON r.oid = d.objid
  UNION
    SELECT r.ev_class, dep.on_table, dep.depth + 1
    FROM dep
    JOIN pg_catalog.pg_depend d ON d.refobjid = dep.view
         AND d.classid = 'pg_catalog.pg_rewrite'::regclass
         AND d.refclassid = 'pg_catalog.pg_class'::regclass
    JOIN pg_catalog.pg_rewrite r ON r.oid = d.objid
    WHERE r.ev_class <> dep.view AND dep.depth < 100
)
SELECT v.oid, n.nspname, v.relname, v.relkind = 'm', pg_catalog.pg_get_viewdef(v.oid),
       v.relispopulated, v.reloptions, max(dep.depth)::int4,
       array_agg(DISTINCT dep.on_table),
       ARRAY(SELECT pg_catalog.pg_get_indexdef(i.indexrelid) FROM pg_catalog.pg_index i
             WHERE i.indrelid = v.oid ORDER BY i.indexrelid),
       ARRAY(SELECT pg_catalog.pg_get_ruledef(r.oid) FROM pg_catalog.pg_rewrite r
             WHERE r.ev_class = v.oid AND r.rulename <> '_RETURN' ORDER BY r.rulename)
       || ARRAY(SELECT pg_catalog.pg_get_triggerdef(g.oid) FROM pg_catalog.pg_trigger g
                WHERE g.tgrelid = v.oid AND NOT g.tgisinternal ORDER BY g.tgname),
       pg_catalog.pg_get_userbyid(v.relowner), pg_catalog.pg_has_role(v.relowner, 'USAGE'),
       v.relowner = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = current_user),
       pg_catalog.obj_description(v.oid, 'pg_class')
FROM dep
JOIN pg_catalog.pg_class v ON v.oid = dep.view
JOIN pg_catalog.pg_namespace n ON n.oid = v.relnamespace
WHERE v.relkind IN ('v', 'm')
GROUP BY v.oid, n.nspname, v.relname
ORDER BY max(dep.depth), n.nspname, v.relname";

/// Privileges granted on those views (to others than the owner), and their columns'
/// comments.
const VIEW_GRANTS: &str = "
SELECT v.oid, a.privilege_type,
       CASE WHEN a.grantee = 0 THEN NULL ELSE pg_catalog.pg_get_userbyid(a.grantee) END,
       a.is_grantable
FROM pg_catalog.pg_class v, pg_catalog.aclexplode(v.relacl) a
WHERE v.oid = ANY($1) AND a.grantee <> v.relowner
ORDER BY 1, 3, 2";

const VIEW_COLUMN_COMMENTS: &str = "
SELECT a.attrelid, a.attname, d.description
FROM pg_catalog.pg_description d
JOIN pg_catalog.pg_attribute a ON a.attrelid = d.objoid AND a.attnum = d.objsubid
WHERE d.classoid = 'pg_catalog.pg_class'::regclass AND d.objoid = ANY($1) AND d.objsubid > 0
ORDER BY 1, a.attnum";

/// Functions and procedures that depend on the given tables: their signature uses a
/// table's row type (`RETURNS SETOF customer`), or their SQL-standard body (`BEGIN
/// ATOMIC … END`) reads a table. `DROP TABLE` refuses while they exist. Aggregates are
/// left out (`pg_get_functiondef` cannot print them); a table one uses is refused at run
/// time.
const DEPENDENT_ROUTINES: &str = "
WITH uses(routine, rel) AS (
    SELECT d.objid, c.oid FROM pg_catalog.pg_depend d
    JOIN pg_catalog.pg_type t ON t.oid = d.refobjid
    JOIN pg_catalog.pg_class c ON c.reltype IN (t.oid, t.typelem)
    WHERE d.classid = 'pg_catalog.pg_proc'::regclass
      AND d.refclassid = 'pg_catalog.pg_type'::regclass AND c.oid = ANY($1)
  UNION
    SELECT d.objid, d.refobjid FROM pg_catalog.pg_depend d
    WHERE d.classid = 'pg_catalog.pg_proc'::regclass
      AND d.refclassid = 'pg_catalog.pg_class'::regclass AND d.refobjid = ANY($1)
)
SELECT p.oid, p.oid::pg_catalog.regprocedure::text, pg_catalog.pg_get_functiondef(p.oid),
       pg_catalog.pg_get_userbyid(p.proowner), pg_catalog.pg_has_role(p.proowner, 'USAGE'),
       p.proowner = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = current_user),
       p.proacl IS NOT NULL, pg_catalog.obj_description(p.oid, 'pg_proc'),
       array_agg(DISTINCT uses.rel), p.prokind = 'p'
FROM uses
JOIN pg_catalog.pg_proc p ON p.oid = uses.routine
WHERE p.prokind IN ('f', 'p')
GROUP BY p.oid
ORDER BY 2";

/// Tables that inherit from the given tables (`INHERITS`, not partitions): dropping a
/// parent drops them too, or is refused.
const INHERITING: &str = "
SELECT i.inhparent, n.nspname, c.relname
FROM pg_catalog.pg_inherits i
JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE i.inhparent = ANY($1) AND NOT c.relispartition
ORDER BY 2, 3";

const ROUTINE_GRANTS: &str = "
SELECT p.oid, a.privilege_type,
       CASE WHEN a.grantee = 0 THEN NULL ELSE pg_catalog.pg_get_userbyid(a.grantee) END,
       a.is_grantable
FROM pg_catalog.pg_proc p, pg_catalog.aclexplode(p.proacl) a
WHERE p.oid = ANY($1) AND a.grantee <> p.proowner
ORDER BY 1, 3, 2";

/// What depends on a set of target tables.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Dependents {
    /// Other tables' foreign keys pointing at them.
    pub foreign_keys: Vec<InboundKey>,
    /// Views built on them, each after the views it reads.
    pub views: Vec<DependentView>,
    /// Functions and procedures whose signatures use their row types.
    pub routines: Vec<DependentRoutine>,
    /// (parent, child): tables that inherit from them.
    pub children: Vec<(TableName, TableName)>,
}

/// A function or procedure whose signature uses a table's row type, or whose
/// SQL-standard body reads a table.
#[derive(Debug, Clone, Serialize)]
pub struct DependentRoutine {
    /// `schema.name(argument types)`, as `regprocedure` prints it (quoted as needed).
    pub signature: String,
    /// `CREATE OR REPLACE …` from `pg_get_functiondef()`.
    pub definition: String,
    pub procedure: bool,
    /// Which of the tables' row types it uses.
    pub uses: Vec<TableName>,
    pub owner: String,
    pub may_drop: bool,
    pub owned: bool,
    /// Its privileges were set explicitly (`proacl` is not NULL): PUBLIC lost its
    /// default EXECUTE, and `grants` are what others hold. False, and no grants, when
    /// the defaults apply.
    pub explicit_privileges: bool,
    pub grants: Vec<AclEntry>,
    pub comment: Option<String>,
}

impl DependentRoutine {
    /// `FUNCTION` or `PROCEDURE`, as DDL names it.
    pub fn kind(&self) -> &'static str {
        if self.procedure {
            "PROCEDURE"
        } else {
            "FUNCTION"
        }
    }
}

/// A privilege held on an object by a role other than its owner, as `aclexplode()`
/// lists it.
#[derive(Debug, Clone, Serialize)]
pub struct AclEntry {
    /// `SELECT`, `EXECUTE`, …
    pub privilege: String,
    /// `None` for PUBLIC.
    pub grantee: Option<String>,
    /// Held `WITH GRANT OPTION`.
    pub grantable: bool,
}

/// A foreign key of another table that points at one of the tables.
#[derive(Debug, Clone, Serialize)]
pub struct InboundKey {
    pub key: ForeignKey,
    /// The referencing table's partitioned root (the table itself when it is not a
    /// partition): a key of a partition goes with its root when that is dropped.
    pub root: TableName,
    /// The role may drop and add it (it owns the referencing table, or is a member of
    /// its owner).
    pub may_alter: bool,
}

/// A view or materialized view that reads the tables, directly or through other views.
#[derive(Debug, Clone, Serialize)]
pub struct DependentView {
    /// The view as it is (its query, options, indexes, rules and triggers).
    pub view: View,
    /// Which of the tables it reads (through any number of views).
    pub reads: Vec<TableName>,
    pub owner: String,
    /// The role may drop it (it is its owner, or a member of the owner).
    pub may_drop: bool,
    /// The role is the owner itself: the view created again needs no `OWNER TO`.
    pub owned: bool,
    /// The privileges others hold on it.
    pub grants: Vec<AclEntry>,
    /// Its comment, and its columns': (column, comment).
    pub comment: Option<String>,
    pub column_comments: Vec<(String, String)>,
}

fn catalog_error(what: &'static str) -> impl FnOnce(tokio_postgres::Error) -> Error {
    move |e| Error::postgres(Kind::Catalog, Side::Target, what, e)
}

/// Reads what depends on `tables` (target tables): one round trip for the dependents,
/// then one for the privileges and comments of the routines and views found.
pub async fn dependents(client: &Client, tables: &[Table]) -> Result<Dependents> {
    let reader = Reader {
        client,
        names: tables.iter().map(|t| (t.oid, &t.name)).collect(),
    };
    let oids: Vec<u32> = tables.iter().map(|t| t.oid).collect();
    let (key_rows, view_rows, routine_rows, child_rows) = tokio::try_join!(
        reader.query(
            INBOUND_FOREIGN_KEYS,
            &oids,
            "reading foreign keys that point at the tables"
        ),
        reader.query(DEPENDENT_VIEWS, &oids, "reading views built on the tables"),
        reader.query(
            DEPENDENT_ROUTINES,
            &oids,
            "reading functions that use the tables' row types"
        ),
        reader.query(
            INHERITING,
            &oids,
            "reading tables that inherit from the tables"
        ),
    )?;
    let children = reader.children(&child_rows);
    let routines = reader.routines(&routine_rows).await?;
    let foreign_keys = key_rows.iter().map(inbound_key).collect();
    let views = reader.views(&view_rows).await?;
    Ok(Dependents {
        foreign_keys,
        views,
        routines,
        children,
    })
}

/// Turns the rows about the tables' dependents into data, one method per kind, and asks
/// for what those dependents carry (privileges, comments).
struct Reader<'a> {
    client: &'a Client,
    /// The tables by oid: the queries name them so.
    names: BTreeMap<u32, &'a TableName>,
}

impl Reader<'_> {
    /// Runs `sql` with `oids` as `$1`.
    async fn query(&self, sql: &'static str, oids: &[u32], what: &'static str) -> Result<Vec<Row>> {
        self.client
            .query_typed(sql, &[(&oids, Type::OID_ARRAY)])
            .await
            .map_err(catalog_error(what))
    }

    /// The tables among `oids`, by name.
    fn tables(&self, oids: Vec<u32>) -> Vec<TableName> {
        oids.iter()
            .filter_map(|o| self.names.get(o).map(|n| (*n).clone()))
            .collect()
    }

    /// (parent, child) from [`INHERITING`].
    fn children(&self, rows: &[Row]) -> Vec<(TableName, TableName)> {
        rows.iter()
            .filter_map(|r| {
                let parent = self.names.get(&r.get::<_, u32>(0))?;
                Some((
                    (*parent).clone(),
                    TableName::new(r.get::<_, String>(1), r.get::<_, String>(2)),
                ))
            })
            .collect()
    }

    /// The routines of [`DEPENDENT_ROUTINES`], with the privileges of those whose
    /// privileges were set explicitly.
    async fn routines(&self, rows: &[Row]) -> Result<Vec<DependentRoutine>> {
        let explicit: Vec<u32> = rows
            .iter()
            .filter(|r| r.get::<_, bool>(6))
            .map(|r| r.get(0))
            .collect();
        let grant_rows = if explicit.is_empty() {
            Vec::new()
        } else {
            self.query(ROUTINE_GRANTS, &explicit, "reading privileges on functions")
                .await?
        };
        Ok(rows
            .iter()
            .map(|r| {
                let explicit_privileges: bool = r.get(6);
                DependentRoutine {
                    signature: r.get(1),
                    definition: r.get(2),
                    procedure: r.get(9),
                    uses: self.tables(r.get(8)),
                    owner: r.get(3),
                    may_drop: r.get(4),
                    owned: r.get(5),
                    explicit_privileges,
                    grants: if explicit_privileges {
                        acl_entries(&grant_rows, r.get(0))
                    } else {
                        Vec::new()
                    },
                    comment: r.get(7),
                }
            })
            .collect())
    }

    /// The views of [`DEPENDENT_VIEWS`], with their privileges and column comments.
    async fn views(&self, rows: &[Row]) -> Result<Vec<DependentView>> {
        let oids: Vec<u32> = rows.iter().map(|r| r.get(0)).collect();
        let (grant_rows, comment_rows) = if oids.is_empty() {
            (Vec::new(), Vec::new())
        } else {
            tokio::try_join!(
                self.query(VIEW_GRANTS, &oids, "reading privileges on views"),
                self.query(VIEW_COLUMN_COMMENTS, &oids, "reading comments on views"),
            )?
        };
        Ok(rows
            .iter()
            .map(|r| {
                let oid: u32 = r.get(0);
                DependentView {
                    view: View {
                        name: TableName::new(r.get::<_, String>(1), r.get::<_, String>(2)),
                        materialized: r.get(3),
                        query: r.get(4),
                        populated: r.get(5),
                        options: r.get::<_, Option<Vec<String>>>(6).unwrap_or_default(),
                        reads: Vec::new(),
                        indexes: r.get(9),
                        rules_and_triggers: r.get(10),
                        calls: Vec::new(),
                        compression: Vec::new(),
                    },
                    reads: self.tables(r.get(8)),
                    owner: r.get(11),
                    may_drop: r.get(12),
                    owned: r.get(13),
                    grants: acl_entries(&grant_rows, oid),
                    comment: r.get(14),
                    column_comments: comment_rows
                        .iter()
                        .filter(|c| c.get::<_, u32>(0) == oid)
                        .map(|c| (c.get(1), c.get(2)))
                        .collect(),
                }
            })
            .collect())
    }
}

/// A key of [`INBOUND_FOREIGN_KEYS`].
fn inbound_key(r: &Row) -> InboundKey {
    InboundKey {
        key: ForeignKey {
            table: TableName::new(r.get::<_, String>(0), r.get::<_, String>(1)),
            references: TableName::new(r.get::<_, String>(2), r.get::<_, String>(3)),
            name: r.get(4),
            definition: r.get(5),
        },
        may_alter: r.get(6),
        root: TableName::new(r.get::<_, String>(7), r.get::<_, String>(8)),
    }
}

/// The privileges on object `oid` among `aclexplode` rows (object id, privilege,
/// grantee or NULL for PUBLIC, grantable).
fn acl_entries(rows: &[Row], oid: u32) -> Vec<AclEntry> {
    rows.iter()
        .filter(|g| g.get::<_, u32>(0) == oid)
        .map(|g| AclEntry {
            privilege: g.get(1),
            grantee: g.get(2),
            grantable: g.get(3),
        })
        .collect()
}
