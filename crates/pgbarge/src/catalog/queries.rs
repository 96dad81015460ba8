//! The catalog queries, as named SQL constants, and the code that turns their rows into
//! the model. Every query is set-based (`= ANY($1)` over all chosen tables), so reading a
//! hundred tables costs the same few round trips as reading one.

use std::collections::BTreeMap;

use tokio_postgres::types::Type;
use tokio_postgres::{Client, Row};

use super::*;
use crate::error::{Error, Kind, Result, Side};

/// Every table the role can see, outside the system schemas.
const LIST_TABLES: &str = "
SELECT c.oid, n.nspname, c.relname, c.relkind::text,
       CASE WHEN c.relkind = 'p'
            THEN (SELECT sum(greatest(l.reltuples, 0))::int8
                  FROM pg_catalog.pg_partition_tree(c.oid) t
                  JOIN pg_catalog.pg_class l ON l.oid = t.relid
                  WHERE t.isleaf HAVING bool_or(l.reltuples >= 0))
            WHEN c.reltuples < 0 THEN NULL ELSE c.reltuples::int8 END,
       -- A partitioned table's size is its partitions'.
       CASE WHEN c.relkind = 'p'
            THEN (SELECT coalesce(sum(pg_catalog.pg_total_relation_size(t.relid)), 0)::int8
                  FROM pg_catalog.pg_partition_tree(c.oid) t)
            ELSE pg_catalog.pg_total_relation_size(c.oid) END,
       c.relispartition,
       pg_catalog.has_table_privilege(c.oid, 'SELECT'),
       pg_catalog.has_table_privilege(c.oid, 'INSERT'),
       pg_catalog.has_table_privilege(c.oid, 'TRUNCATE'),
       pg_catalog.pg_relation_size(c.oid) / current_setting('block_size')::int8,
       pg_catalog.has_table_privilege(c.oid, 'UPDATE'),
       pg_catalog.pg_has_role(c.relowner, 'USAGE'),
       c.relpersistence = 'u',
       coalesce(c.reloptions, '{}')
       || ARRAY(SELECT 'toast.' || o FROM pg_catalog.pg_class tc, unnest(tc.reloptions) o
                WHERE tc.oid = c.reltoastrelid),
       c.relrowsecurity
         AND (NOT pg_catalog.pg_has_role(c.relowner, 'USAGE') OR c.relforcerowsecurity)
         AND NOT (SELECT r.rolsuper OR r.rolbypassrls FROM pg_catalog.pg_roles r
                  WHERE r.rolname = current_user),
       -- Heap and TOAST, without indexes: about what COPY moves (progress is measured
       -- in it).
       CASE WHEN c.relkind = 'p'
            THEN (SELECT coalesce(sum(pg_catalog.pg_table_size(t.relid)), 0)::int8
                  FROM pg_catalog.pg_partition_tree(c.oid) t)
            ELSE pg_catalog.pg_table_size(c.oid) END,
       -- A typed table (CREATE TABLE ... OF type): its composite type.
       CASE WHEN c.reloftype <> 0 THEN pg_catalog.format_type(c.reloftype, NULL) END,
       pg_catalog.has_table_privilege(c.oid, 'DELETE')
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p')
  AND n.nspname <> 'information_schema'
  AND n.nspname !~ '^pg_'
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                  WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid
                    AND d.deptype = 'e')
ORDER BY n.nspname, c.relname";

/// Columns of the given tables.
const COLUMNS: &str = "
SELECT a.attrelid, a.attname, a.atttypid,
       pg_catalog.format_type(a.atttypid, a.atttypmod),
       tn.nspname, t.typname, a.atttypmod, t.typtype::text, t.typcategory::text,
       a.attnotnull, a.attgenerated::text, a.attidentity::text,
       pg_catalog.pg_get_expr(d.adbin, d.adrelid),
       CASE WHEN a.attcollation <> t.typcollation AND a.attcollation <> 0
            THEN pg_catalog.quote_ident(cn.nspname) || '.' || pg_catalog.quote_ident(co.collname)
       END,
       NOT a.attislocal,
       -- A table's (or view's) row type used as a column type, or its array.
       (SELECT rn.nspname || E'\t' || r.relname
        FROM pg_catalog.pg_type e
        JOIN pg_catalog.pg_class r ON r.oid = e.typrelid AND r.relkind IN ('r', 'p', 'v', 'm', 'f')
        JOIN pg_catalog.pg_namespace rn ON rn.oid = r.relnamespace
        WHERE e.oid = CASE WHEN t.typcategory = 'A' THEN t.typelem ELSE t.oid END),
       -- Binary COPY needs send and receive functions for the type and every type it is
       -- made of (array elements, a domain's base, a composite's fields, a range's
       -- subtype); some types have none (aclitem, for one).
       NOT EXISTS (
           WITH RECURSIVE parts(oid) AS (
               SELECT a.atttypid
             UNION
               SELECT x.oid FROM parts p
               JOIN pg_catalog.pg_type pt ON pt.oid = p.oid
               CROSS JOIN LATERAL (
                   SELECT pt.typelem WHERE pt.typelem <> 0 AND pt.typcategory = 'A'
                 UNION ALL
                   SELECT pt.typbasetype WHERE pt.typtype = 'd'
                 UNION ALL
                   SELECT ca.atttypid FROM pg_catalog.pg_attribute ca
                   WHERE pt.typtype = 'c' AND ca.attrelid = pt.typrelid AND ca.attnum > 0
                     AND NOT ca.attisdropped
                 UNION ALL
                   SELECT r.rngsubtype FROM pg_catalog.pg_range r WHERE r.rngtypid = pt.oid
               ) AS x(oid)
           )
           SELECT 1 FROM parts p JOIN pg_catalog.pg_type pt ON pt.oid = p.oid
           WHERE pt.typsend::oid = 0 OR pt.typreceive::oid = 0)
FROM pg_catalog.pg_attribute a
JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
JOIN pg_catalog.pg_namespace tn ON tn.oid = t.typnamespace
LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
LEFT JOIN pg_catalog.pg_collation co ON co.oid = a.attcollation
LEFT JOIN pg_catalog.pg_namespace cn ON cn.oid = co.collnamespace
WHERE a.attrelid = ANY($1) AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attrelid, a.attnum";

const PRIMARY_KEYS: &str = "
SELECT c.conrelid, c.conname, pg_catalog.pg_get_constraintdef(c.oid),
       ARRAY(SELECT a.attname FROM unnest(c.conkey) WITH ORDINALITY k(attnum, i)
             JOIN pg_catalog.pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum
             ORDER BY k.i)
FROM pg_catalog.pg_constraint c
WHERE c.conrelid = ANY($1) AND c.contype = 'p'";

/// The user-defined types the given tables' columns need, transitively (array elements,
/// domain bases, composite attributes, range subtypes), deepest first: a type reached at a
/// greater depth is a dependency of one reached at a smaller one, so creating in order of
/// descending maximum depth creates dependencies first.
const USER_TYPES: &str = "
WITH RECURSIVE deps(oid, depth) AS (
    SELECT DISTINCT a.atttypid, 0 FROM pg_catalog.pg_attribute a
    WHERE a.attrelid = ANY($1) AND a.attnum > 0 AND NOT a.attisdropped
  UNION
    -- The composite type of a typed table.
    SELECT c.reloftype, 0 FROM pg_catalog.pg_class c
    WHERE c.oid = ANY($1) AND c.reloftype <> 0
  UNION
    SELECT t.oid, 0 FROM pg_catalog.pg_type t
    JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
    WHERE n.nspname = ANY($2)
      AND (t.typtype IN ('e', 'd')
           OR t.typtype = 'c' AND EXISTS (SELECT 1 FROM pg_catalog.pg_class c
                                          WHERE c.oid = t.typrelid AND c.relkind = 'c')
           -- A range with a canonical function (written in C) cannot be created by a
           -- non-superuser: an unused one must not block the schema.
           OR t.typtype = 'r' AND EXISTS (SELECT 1 FROM pg_catalog.pg_range r
                                          WHERE r.rngtypid = t.oid AND r.rngcanonical = 0)
           -- A shell type (CREATE TYPE name;), declared and never defined.
           OR t.typtype = 'p' AND NOT t.typisdefined)
  UNION
    SELECT x.oid, deps.depth + 1
    FROM deps JOIN pg_catalog.pg_type t ON t.oid = deps.oid
    CROSS JOIN LATERAL (
        SELECT t.typelem WHERE t.typelem <> 0 AND t.typcategory = 'A'
        UNION ALL SELECT t.typbasetype WHERE t.typtype = 'd'
        UNION ALL SELECT a.atttypid FROM pg_catalog.pg_attribute a
                  WHERE t.typtype = 'c' AND a.attrelid = t.typrelid AND a.attnum > 0
                    AND NOT a.attisdropped
        UNION ALL SELECT r.rngsubtype FROM pg_catalog.pg_range r
                  WHERE t.typtype = 'r' AND r.rngtypid = t.oid
    ) AS x(oid)
    -- PostgreSQL refuses a type that contains itself, so this ends at the deepest
    -- nesting; the bound only guards against a catalog that says otherwise. (It was 20,
    -- and types nested deeper were left out, or created out of order.)
    WHERE deps.depth < 1000
)
SELECT t.oid, n.nspname, t.typname, t.typtype::text,
       ARRAY(SELECT e.enumlabel::text FROM pg_catalog.pg_enum e WHERE e.enumtypid = t.oid
             ORDER BY e.enumsortorder),
       -- A domain's base type, with its own collation where it differs from the base's.
       CASE WHEN t.typtype = 'd' THEN pg_catalog.format_type(t.typbasetype, t.typtypmod)
            || coalesce((SELECT ' COLLATE ' || pg_catalog.quote_ident(cn.nspname) || '.'
                                || pg_catalog.quote_ident(co.collname)
                         FROM pg_catalog.pg_collation co
                         JOIN pg_catalog.pg_namespace cn ON cn.oid = co.collnamespace
                         JOIN pg_catalog.pg_type bt ON bt.oid = t.typbasetype
                         WHERE co.oid = t.typcollation AND t.typcollation <> bt.typcollation),
                        '') END,
       t.typnotnull, t.typdefault,
       ARRAY(SELECT c.conname || E'\t' || c.convalidated::text || E'\t'
                    || EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                               WHERE d.classid = 'pg_catalog.pg_constraint'::regclass
                                 AND d.objid = c.oid
                                 AND d.refclassid = 'pg_catalog.pg_proc'::regclass)::text
                    || E'\t' || pg_catalog.pg_get_constraintdef(c.oid)
             FROM pg_catalog.pg_constraint c
             WHERE c.contypid = t.oid AND c.contype = 'c' ORDER BY c.conname),
       ARRAY(SELECT pg_catalog.quote_ident(a.attname) || ' '
                    || pg_catalog.format_type(a.atttypid, a.atttypmod)
             FROM pg_catalog.pg_attribute a
             WHERE t.typtype = 'c' AND a.attrelid = t.typrelid AND a.attnum > 0
               AND NOT a.attisdropped ORDER BY a.attnum),
       max(deps.depth) AS depth,
       -- A range's definition (rngmultitypid is read through to_jsonb: it is new in 14).
       (SELECT pg_catalog.jsonb_build_object(
                   'subtype', pg_catalog.format_type(r.rngsubtype, NULL),
                   'opclass', ARRAY[opn.nspname, opc.opcname],
                   'collation', CASE WHEN r.rngcollation <> 0
                                      AND r.rngcollation <> st.typcollation
                                     THEN ARRAY[coln.nspname, col.collname] END,
                   'canonical', r.rngcanonical <> 0,
                   'diff', CASE WHEN r.rngsubdiff <> 0 THEN ARRAY[dn.nspname, d.proname] END,
                   'multirange', (SELECT ARRAY[mn.nspname, m.typname]
                                  FROM pg_catalog.pg_type m
                                  JOIN pg_catalog.pg_namespace mn ON mn.oid = m.typnamespace
                                  WHERE m.oid = (pg_catalog.to_jsonb(r)
                                                 ->> 'rngmultitypid')::oid))::text
        FROM pg_catalog.pg_range r
        JOIN pg_catalog.pg_type st ON st.oid = r.rngsubtype
        JOIN pg_catalog.pg_opclass opc ON opc.oid = r.rngsubopc
        JOIN pg_catalog.pg_namespace opn ON opn.oid = opc.opcnamespace
        LEFT JOIN pg_catalog.pg_collation col ON col.oid = r.rngcollation
        LEFT JOIN pg_catalog.pg_namespace coln ON coln.oid = col.collnamespace
        LEFT JOIN pg_catalog.pg_proc d ON d.oid = r.rngsubdiff
        LEFT JOIN pg_catalog.pg_namespace dn ON dn.oid = d.pronamespace
        WHERE r.rngtypid = t.oid)
FROM deps
JOIN pg_catalog.pg_type t ON t.oid = deps.oid
JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND (t.typtype IN ('e', 'd', 'c', 'r', 'b') OR t.typtype = 'p' AND NOT t.typisdefined)
  AND NOT (t.typtype = 'b' AND t.typcategory = 'A')
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend e
                  WHERE e.classid = 'pg_catalog.pg_type'::regclass AND e.objid = t.oid
                    AND e.deptype = 'e')
  -- A table's row type comes with the table, never as a look-alike composite type.
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class r
                  WHERE r.oid = t.typrelid AND r.relkind <> 'c')
GROUP BY t.oid, n.nspname, t.typname, t.typtype, t.typbasetype, t.typtypmod, t.typnotnull,
         t.typdefault, t.typrelid, t.typcollation
ORDER BY depth DESC, n.nspname, t.typname";

/// The tables the given tables inherit from (`INHERITS`, not partitioning), in order.
const INHERITS: &str = "
SELECT i.inhrelid, n.nspname, p.relname
FROM pg_catalog.pg_inherits i
JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
JOIN pg_catalog.pg_class p ON p.oid = i.inhparent
JOIN pg_catalog.pg_namespace n ON n.oid = p.relnamespace
WHERE i.inhrelid = ANY($1) AND NOT c.relispartition
ORDER BY i.inhrelid, i.inhseqno";

/// What a table has beyond columns and primary key, counted, so the plan can say what a
/// newly created table will not have yet.
const OTHER_OBJECTS: &str = "
SELECT c.oid,
       (SELECT count(*) FROM pg_catalog.pg_index i WHERE i.indrelid = c.oid AND NOT i.indisprimary),
       (SELECT count(*) FROM pg_catalog.pg_constraint k WHERE k.conrelid = c.oid AND k.contype = 'f'),
       (SELECT count(*) FROM pg_catalog.pg_constraint k WHERE k.conrelid = c.oid AND k.contype IN ('c', 'u', 'x')),
       (SELECT count(*) FROM pg_catalog.pg_trigger g WHERE g.tgrelid = c.oid AND NOT g.tgisinternal),
       ARRAY(SELECT DISTINCT rn.nspname || E'\t' || r.relname
             FROM pg_catalog.pg_constraint k
             JOIN pg_catalog.pg_class r
               ON r.oid = coalesce(pg_catalog.pg_partition_root(k.conrelid), k.conrelid)
             JOIN pg_catalog.pg_namespace rn ON rn.oid = r.relnamespace
             WHERE k.confrelid = c.oid AND k.contype = 'f' AND k.conparentid = 0
               AND r.oid <> c.oid)
FROM pg_catalog.pg_class c WHERE c.oid = ANY($1)";

/// Sequences owned by columns of the given tables: `serial` columns (dependency type `a`)
/// and identity columns (`i`), with their definitions and whether we may read their state.
const OWNED_SEQUENCES: &str = "
SELECT d.refobjid, a.attname, n.nspname, c.relname, d.deptype::text,
       pg_catalog.format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement, s.seqmin,
       s.seqmax, s.seqcache, s.seqcycle,
       pg_catalog.has_sequence_privilege(c.oid, 'SELECT')
FROM pg_catalog.pg_depend d
JOIN pg_catalog.pg_sequence s ON s.seqrelid = d.objid
JOIN pg_catalog.pg_class c ON c.oid = s.seqrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
WHERE d.classid = 'pg_catalog.pg_class'::regclass
  AND d.refclassid = 'pg_catalog.pg_class'::regclass
  AND d.deptype IN ('a', 'i')
  AND d.refobjid = ANY($1)";

/// Foreign keys among the given tables (partitions counted as their partitioned root):
/// (referencing, referenced), so loads into existing tables can go parents first.
const FOREIGN_KEY_EDGES: &str = "
SELECT DISTINCT cn.nspname, c.relname, pn.nspname, p.relname
FROM pg_catalog.pg_constraint k
JOIN pg_catalog.pg_class c
  ON c.oid = coalesce(pg_catalog.pg_partition_root(k.conrelid), k.conrelid)
JOIN pg_catalog.pg_namespace cn ON cn.oid = c.relnamespace
JOIN pg_catalog.pg_class p
  ON p.oid = coalesce(pg_catalog.pg_partition_root(k.confrelid), k.confrelid)
JOIN pg_catalog.pg_namespace pn ON pn.oid = p.relnamespace
WHERE k.contype = 'f' AND c.oid = ANY($1) AND p.oid = ANY($1) AND c.oid <> p.oid";

/// Enabled user triggers of the given tables (not the clones partitions inherit).
const USER_TRIGGERS: &str = "
SELECT g.tgrelid, g.tgname, g.tgenabled::text
FROM pg_catalog.pg_trigger g
WHERE g.tgrelid = ANY($1) AND NOT g.tgisinternal AND g.tgenabled <> 'D' AND g.tgparentid = 0
ORDER BY g.tgrelid, g.tgname";

/// What loading rows into each of the given tables runs that belongs to a role other than
/// the connecting one or a superuser: (table, what runs it, function, its owner). The
/// enabled triggers, column defaults, checks, index expressions and predicates, and the
/// checks of the columns' domains — code that runs as the connecting role with every row.
const FOREIGN_CODE: &str = "
WITH uses(rel, what, fn) AS (
    SELECT g.tgrelid, 'trigger ' || pg_catalog.quote_ident(g.tgname), g.tgfoid
    FROM pg_catalog.pg_trigger g
    WHERE g.tgrelid = ANY($1) AND NOT g.tgisinternal AND g.tgenabled <> 'D'
  UNION ALL
    SELECT d.adrelid, 'the default of ' || pg_catalog.quote_ident(a.attname), p.refobjid
    FROM pg_catalog.pg_attrdef d
    JOIN pg_catalog.pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
    JOIN pg_catalog.pg_depend p ON p.classid = 'pg_catalog.pg_attrdef'::pg_catalog.regclass
      AND p.objid = d.oid AND p.refclassid = 'pg_catalog.pg_proc'::pg_catalog.regclass
    WHERE d.adrelid = ANY($1)
  UNION ALL
    SELECT c.conrelid, 'constraint ' || pg_catalog.quote_ident(c.conname), p.refobjid
    FROM pg_catalog.pg_constraint c
    JOIN pg_catalog.pg_depend p ON p.classid = 'pg_catalog.pg_constraint'::pg_catalog.regclass
      AND p.objid = c.oid AND p.refclassid = 'pg_catalog.pg_proc'::pg_catalog.regclass
    WHERE c.conrelid = ANY($1)
  UNION ALL
    SELECT i.indrelid, 'index ' || pg_catalog.quote_ident(x.relname), p.refobjid
    FROM pg_catalog.pg_index i
    JOIN pg_catalog.pg_class x ON x.oid = i.indexrelid
    JOIN pg_catalog.pg_depend p ON p.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
      AND p.objid = i.indexrelid AND p.refclassid = 'pg_catalog.pg_proc'::pg_catalog.regclass
    WHERE i.indrelid = ANY($1)
  UNION ALL
    SELECT a.attrelid, 'the type of ' || pg_catalog.quote_ident(a.attname), p.refobjid
    FROM pg_catalog.pg_attribute a
    JOIN pg_catalog.pg_constraint c ON c.contypid = a.atttypid
    JOIN pg_catalog.pg_depend p ON p.classid = 'pg_catalog.pg_constraint'::pg_catalog.regclass
      AND p.objid = c.oid AND p.refclassid = 'pg_catalog.pg_proc'::pg_catalog.regclass
    WHERE a.attrelid = ANY($1) AND a.attnum > 0 AND NOT a.attisdropped)
SELECT DISTINCT u.rel, u.what, u.fn::pg_catalog.regprocedure::text, r.rolname::text
FROM uses u
JOIN pg_catalog.pg_proc f ON f.oid = u.fn
JOIN pg_catalog.pg_roles r ON r.oid = f.proowner
WHERE NOT r.rolsuper AND r.rolname <> CURRENT_USER
ORDER BY 1, 2, 3";

/// NOT VALID check and foreign-key constraints of the given tables: rows that break them
/// are allowed to stay, but every new row is checked.
const UNVALIDATED: &str = "
SELECT k.conrelid, k.conname, pg_catalog.pg_get_constraintdef(k.oid)
FROM pg_catalog.pg_constraint k
WHERE k.conrelid = ANY($1) AND NOT k.convalidated AND k.contype IN ('c', 'f')
  AND k.conparentid = 0
ORDER BY k.conrelid, k.conname";

/// Foreign keys among the given tables with their names and definitions (the tables'
/// own, not the clones partitions carry): a truncate group whose keys form a cycle drops
/// and re-adds them around its load.
const FOREIGN_KEY_DEFINITIONS: &str = "
SELECT cn.nspname, c.relname, pn.nspname, p.relname, k.conname,
       pg_catalog.pg_get_constraintdef(k.oid)
FROM pg_catalog.pg_constraint k
JOIN pg_catalog.pg_class c ON c.oid = k.conrelid
JOIN pg_catalog.pg_namespace cn ON cn.oid = c.relnamespace
JOIN pg_catalog.pg_class p ON p.oid = k.confrelid
JOIN pg_catalog.pg_namespace pn ON pn.oid = p.relnamespace
WHERE k.contype = 'f' AND k.conparentid = 0 AND k.conrelid <> k.confrelid
  AND k.conrelid = ANY($1) AND k.confrelid = ANY($1)
ORDER BY 1, 2, 5";

/// Valid indexes of the given tables (not partitioned ones), with the constraint each
/// backs and what must be restored when it is built again: a load into an emptied table
/// sets them aside and rebuilds them after the rows are in (one sort instead of a B-tree
/// insert per row). An index a foreign key depends on stays.
const TARGET_INDEXES: &str = "
SELECT i.indrelid, x.relname, pg_catalog.pg_get_indexdef(i.indexrelid),
       k.conname, pg_catalog.pg_get_constraintdef(k.oid),
       EXISTS (SELECT 1 FROM pg_catalog.pg_constraint f
               WHERE f.contype = 'f' AND f.conindid = i.indexrelid),
       i.indisreplident, i.indisclustered,
       pg_catalog.obj_description(i.indexrelid, 'pg_class'),
       pg_catalog.obj_description(k.oid, 'pg_constraint'),
       -- The columns of a unique key rows can be matched by: plain NOT NULL columns,
       -- neither partial nor deferrable (ON CONFLICT needs that).
       CASE WHEN i.indisunique AND i.indimmediate AND i.indpred IS NULL
                 AND i.indexprs IS NULL
                 AND NOT EXISTS (SELECT 1
                                 FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS a(n, o)
                                 LEFT JOIN pg_catalog.pg_attribute t
                                   ON t.attrelid = i.indrelid AND t.attnum = a.n
                                 WHERE a.o <= i.indnkeyatts
                                   AND NOT coalesce(t.attnotnull, false))
            THEN ARRAY(SELECT t.attname::text
                       FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS a(n, o)
                       JOIN pg_catalog.pg_attribute t
                         ON t.attrelid = i.indrelid AND t.attnum = a.n
                       WHERE a.o <= i.indnkeyatts ORDER BY a.o) END
FROM pg_catalog.pg_index i
JOIN pg_catalog.pg_class x ON x.oid = i.indexrelid
JOIN pg_catalog.pg_class c ON c.oid = i.indrelid
LEFT JOIN pg_catalog.pg_constraint k ON k.conindid = i.indexrelid AND k.conrelid = i.indrelid
     AND k.contype IN ('p', 'u', 'x')
WHERE i.indrelid = ANY($1) AND i.indisvalid AND i.indislive AND c.relkind = 'r'
  AND x.relkind = 'i'
ORDER BY i.indrelid, x.relname";

/// Which of the named types exist, with their kind and (for enums) labels.
const FIND_TYPES: &str = "
SELECT n.nspname, t.typname, t.typtype::text,
       ARRAY(SELECT e.enumlabel::text FROM pg_catalog.pg_enum e WHERE e.enumtypid = t.oid
             ORDER BY e.enumsortorder)
FROM pg_catalog.pg_type t
JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
JOIN unnest($1::text[], $2::text[]) AS w(nspname, typname)
  ON w.nspname = n.nspname AND w.typname = t.typname";

const SCHEMA_PRIVILEGES: &str = "
SELECT n.nspname, pg_catalog.has_schema_privilege(n.oid, 'CREATE')
FROM pg_catalog.pg_namespace n
WHERE n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'";

const DATABASE_PRIVILEGE: &str = "
SELECT pg_catalog.has_database_privilege(pg_catalog.current_database(), 'CREATE'),
       (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user)";

fn catalog_error(side: Side, what: &str) -> impl FnOnce(tokio_postgres::Error) -> Error + '_ {
    move |e| Error::postgres(Kind::Catalog, side, what, e)
}

/// Every user table on the server, with sizes and the connected role's privileges.
pub async fn list_tables(client: &Client, side: Side) -> Result<Vec<Table>> {
    let rows = client
        .query(LIST_TABLES, &[])
        .await
        .map_err(catalog_error(side, "listing tables"))?;
    Ok(rows
        .iter()
        .map(|r| Table {
            oid: r.get(0),
            name: TableName::new(r.get::<_, String>(1), r.get::<_, String>(2)),
            kind: if r.get::<_, String>(3) == "p" {
                TableKind::Partitioned
            } else {
                TableKind::Regular
            },
            estimated_rows: r.get(4),
            total_bytes: r.get(5),
            is_partition: r.get(6),
            can_select: r.get(7),
            can_insert: r.get(8),
            can_truncate: r.get(9),
            pages: r.get(10),
            data_bytes: r.get(16),
            of_type: r.get(17),
            can_update: r.get(11),
            can_delete: r.get(18),
            is_owner: r.get(12),
            unlogged: r.get(13),
            options: r.get(14),
            row_security_applies: r.get::<_, Option<bool>>(15).unwrap_or(false),
        })
        .collect())
}

pub(super) fn first_char(s: Option<String>) -> Option<char> {
    s.and_then(|s| s.chars().next()).filter(|c| *c != '\0')
}

/// Columns, primary keys and needed user types of `tables` (and every type of
/// `whole_schemas`), in one pipelined round trip.
pub async fn describe(
    client: &Client,
    side: Side,
    tables: &[Table],
    whole_schemas: &[String],
) -> Result<Described> {
    let oids: Vec<u32> = tables.iter().map(|t| t.oid).collect();
    // All six queries at once: tokio-postgres pipelines them on the one connection, and
    // unprepared typed queries skip the Parse round trip — one round trip in all, which
    // is what a catalog read costs over a long link.
    let query = |sql: &'static str, what: &'static str| {
        let oids = &oids;
        async move {
            client
                .query_typed(sql, &[(oids, Type::OID_ARRAY)])
                .await
                .map_err(catalog_error(side, what))
        }
    };
    let (column_rows, pk_rows, other_rows, sequence_rows, type_rows, inherit_rows) = tokio::try_join!(
        query(COLUMNS, "reading columns"),
        query(PRIMARY_KEYS, "reading primary keys"),
        query(OTHER_OBJECTS, "counting indexes and constraints"),
        query(OWNED_SEQUENCES, "reading owned sequences"),
        async {
            client
                .query_typed(
                    USER_TYPES,
                    &[(&oids, Type::OID_ARRAY), (&whole_schemas, Type::TEXT_ARRAY)],
                )
                .await
                .map_err(catalog_error(side, "reading user-defined types"))
        },
        query(INHERITS, "reading inheritance"),
    )?;
    let mut parents = parents(&inherit_rows);
    let mut others = other_objects(&other_rows);
    let mut columns = table_columns(&column_rows, owned_sequences(&sequence_rows));
    let mut keys = primary_keys(&pk_rows);
    let tables = tables
        .iter()
        .map(|t| {
            (
                t.name.clone(),
                TableDetail {
                    table: t.clone(),
                    columns: columns.remove(&t.oid).unwrap_or_default(),
                    primary_key: keys.remove(&t.oid),
                    inherits: parents.remove(&t.oid).unwrap_or_default(),
                    others: others.remove(&t.oid).unwrap_or_default(),
                },
            )
        })
        .collect();
    Ok(Described {
        tables,
        types: type_rows.iter().map(user_type).collect(),
    })
}

/// Per table oid, the tables it inherits from, in order ([`INHERITS`]).
fn parents(rows: &[Row]) -> BTreeMap<u32, Vec<TableName>> {
    let mut parents: BTreeMap<u32, Vec<TableName>> = BTreeMap::new();
    for r in rows {
        parents
            .entry(r.get(0))
            .or_default()
            .push(TableName::new(r.get::<_, String>(1), r.get::<_, String>(2)));
    }
    parents
}

/// Per table oid, what it has beyond columns and primary key ([`OTHER_OBJECTS`]).
fn other_objects(rows: &[Row]) -> BTreeMap<u32, OtherObjects> {
    rows.iter()
        .map(|r| {
            (
                r.get(0),
                OtherObjects {
                    indexes: r.get(1),
                    foreign_keys: r.get(2),
                    constraints: r.get(3),
                    triggers: r.get(4),
                    referenced_by: r
                        .get::<_, Vec<String>>(5)
                        .iter()
                        .filter_map(|k| k.split_once('\t'))
                        .map(|(schema, name)| TableName::new(schema, name))
                        .collect(),
                },
            )
        })
        .collect()
}

/// Per (table oid, column), the sequences the column owns ([`OWNED_SEQUENCES`]). A
/// column may own two: an identity's, and the serial sequence it had before.
fn owned_sequences(rows: &[Row]) -> BTreeMap<(u32, String), Vec<OwnedSequence>> {
    let mut sequences: BTreeMap<(u32, String), Vec<OwnedSequence>> = BTreeMap::new();
    for r in rows {
        sequences
            .entry((r.get::<_, u32>(0), r.get::<_, String>(1)))
            .or_default()
            .push(OwnedSequence {
                name: TableName::new(r.get::<_, String>(2), r.get::<_, String>(3)),
                identity: r.get::<_, String>(4) == "i",
                parameters: SequenceParameters {
                    data_type: r.get(5),
                    start: r.get(6),
                    increment: r.get(7),
                    min: r.get(8),
                    max: r.get(9),
                    cache: r.get(10),
                    cycle: r.get(11),
                },
                readable: r.get(12),
            });
    }
    sequences
}

/// Per table oid, its columns in order ([`COLUMNS`]), each with the sequences it owns
/// (taken from `sequences`).
fn table_columns(
    rows: &[Row],
    mut sequences: BTreeMap<(u32, String), Vec<OwnedSequence>>,
) -> BTreeMap<u32, Vec<Column>> {
    let mut columns: BTreeMap<u32, Vec<Column>> = BTreeMap::new();
    for r in rows {
        let table_oid: u32 = r.get(0);
        let name: String = r.get(1);
        let mut owned = sequences
            .remove(&(table_oid, name.clone()))
            .unwrap_or_default();
        // The identity's (or the only) one is the column's; any other is a leftover.
        owned.sort_by_key(|s| !s.identity);
        let mut owned = owned.into_iter();
        let sequence = owned.next();
        columns.entry(table_oid).or_default().push(Column {
            sequence,
            leftover_sequences: owned.collect(),
            name,
            ty: column_type(r),
            not_null: r.get(9),
            default: r
                .get::<_, Option<String>>(12)
                .map(|expr| ColumnDefault { expr }),
            generated: first_char(r.get(10)).is_some(),
            identity: Identity::from_code(first_char(r.get(11))),
            collation: r.get(13),
            inherited: r.get(14),
            row_type_of: r
                .get::<_, Option<String>>(15)
                .and_then(|k| k.split_once('\t').map(|(s, n)| TableName::new(s, n))),
        });
    }
    columns
}

/// A column's type, from its row of [`COLUMNS`].
fn column_type(r: &Row) -> ColumnType {
    ColumnType {
        oid: r.get(2),
        sql: r.get(3),
        schema: r.get(4),
        name: r.get(5),
        typmod: r.get(6),
        typtype: first_char(r.get(7)).unwrap_or('b'),
        category: first_char(r.get(8)).unwrap_or('U'),
        binary_io: r.get(16),
    }
}

/// Per table oid, its primary key ([`PRIMARY_KEYS`]).
fn primary_keys(rows: &[Row]) -> BTreeMap<u32, PrimaryKey> {
    rows.iter()
        .map(|r| {
            (
                r.get(0),
                PrimaryKey {
                    name: r.get(1),
                    definition: r.get(2),
                    columns: r.get(3),
                },
            )
        })
        .collect()
}

/// A user-defined type, from its row of [`USER_TYPES`].
fn user_type(r: &Row) -> UserType {
    let typtype = first_char(r.get(3)).unwrap_or('b');
    let definition = match typtype {
        'e' => TypeDefinition::Enum { labels: r.get(4) },
        'd' => TypeDefinition::Domain {
            base: r.get::<_, Option<String>>(5).unwrap_or_default(),
            not_null: r.get(6),
            default: r.get(7),
            checks: r
                .get::<_, Vec<String>>(8)
                .iter()
                .filter_map(|c| domain_check(c))
                .collect(),
        },
        'c' => TypeDefinition::Composite {
            attributes: r.get(9),
        },
        'r' => r
            .get::<_, Option<String>>(11)
            .and_then(|j| serde_json::from_str::<RangeDefinition>(&j).ok())
            .map_or(TypeDefinition::Unsupported { typtype: 'r' }, |range| {
                TypeDefinition::Range(range)
            }),
        'p' => TypeDefinition::Shell,
        other => TypeDefinition::Unsupported { typtype: other },
    };
    UserType {
        oid: r.get(0),
        schema: r.get(1),
        name: r.get(2),
        definition,
    }
}

/// A domain's check, as [`USER_TYPES`] lists it: name, validated, calls a function,
/// definition (tab-separated).
fn domain_check(text: &str) -> Option<DomainCheck> {
    let mut parts = text.splitn(4, '\t');
    Some(DomainCheck {
        name: parts.next()?.to_string(),
        validated: parts.next()? == "true",
        calls_function: parts.next()? == "true",
        definition: parts.next()?.to_string(),
    })
}

/// Tables never analysed have no row estimate (`reltuples` is -1); those up to this many
/// pages (10 MB of 8 kB pages) are counted instead — a fast scan, and a number a user
/// can judge the table by.
const COUNT_UP_TO_PAGES: i64 = 1280;

/// Fills in the row count of small tables that were never analysed, in one round trip.
/// Best effort: the estimates only inform the user, so a failure leaves them unknown.
pub async fn count_unanalysed(client: &Client, tables: &mut [Table]) {
    let small: Vec<usize> = (0..tables.len())
        .filter(|&i| {
            let t = &tables[i];
            t.estimated_rows.is_none()
                && t.kind == TableKind::Regular
                && t.pages <= COUNT_UP_TO_PAGES
                && t.can_select
                && !t.row_security_applies
        })
        .collect();
    if small.is_empty() {
        return;
    }
    let sql = small
        .iter()
        .map(|&i| {
            format!(
                "SELECT {i}::int4, count(*) FROM ONLY {}",
                tables[i].name.sql()
            )
        })
        .collect::<Vec<_>>()
        .join(" UNION ALL ");
    let Ok(rows) = client.query(&sql, &[]).await else {
        return;
    };
    for r in rows {
        if let Some(t) = tables.get_mut(r.get::<_, i32>(0) as usize) {
            t.estimated_rows = Some(r.get(1));
        }
    }
}

/// Large objects in the database (`pg_largeobject_metadata` is readable by any role).
const LARGE_OBJECTS: &str = "SELECT count(*) FROM pg_catalog.pg_largeobject_metadata";

/// How many large objects the database holds.
pub async fn large_object_count(client: &Client, side: Side) -> Result<i64> {
    Ok(client
        .query_one(LARGE_OBJECTS, &[])
        .await
        .map_err(catalog_error(side, "counting large objects"))?
        .get(0))
}

/// Whether a column of this type holds large object references: `oid` (or an array of
/// them) or the `lo` extension's domain over it.
pub fn refers_to_large_objects(ty: &ColumnType) -> bool {
    (ty.schema == "pg_catalog" && matches!(ty.name.as_str(), "oid" | "_oid")) || ty.name == "lo"
}

/// Which of `tables` hold at least one row, in one round trip (`EXISTS` stops at the
/// first row, so this is cheap even for huge tables).
pub async fn non_empty_tables(
    client: &Client,
    side: Side,
    tables: &[&TableName],
) -> Result<Vec<TableName>> {
    if tables.is_empty() {
        return Ok(Vec::new());
    }
    let sql = tables
        .iter()
        .enumerate()
        .map(|(i, t)| format!("SELECT {i}::int4 WHERE EXISTS (SELECT 1 FROM {})", t.sql()))
        .collect::<Vec<_>>()
        .join(" UNION ALL ");
    let rows = client
        .query(&sql, &[])
        .await
        .map_err(catalog_error(side, "checking whether tables hold rows"))?;
    Ok(rows
        .iter()
        .filter_map(|r| {
            tables
                .get(r.get::<_, i32>(0) as usize)
                .map(|t| (*t).clone())
        })
        .collect())
}

/// Runs `sql` over the oids of `tables` and groups what `read` makes of each row by table
/// (the first column is the table's oid).
async fn per_table<T>(
    client: &Client,
    side: Side,
    tables: &[Table],
    sql: &str,
    what: &str,
    read: impl Fn(&tokio_postgres::Row) -> T,
) -> Result<BTreeMap<TableName, Vec<T>>> {
    let oids: Vec<u32> = tables.iter().map(|t| t.oid).collect();
    let rows = client
        .query_typed(sql, &[(&oids, Type::OID_ARRAY)])
        .await
        .map_err(catalog_error(side, what))?;
    let mut out: BTreeMap<TableName, Vec<T>> = BTreeMap::new();
    for r in &rows {
        let oid: u32 = r.get(0);
        if let Some(t) = tables.iter().find(|t| t.oid == oid) {
            out.entry(t.name.clone()).or_default().push(read(r));
        }
    }
    Ok(out)
}

/// Enabled user triggers per table: (name, `tgenabled`).
pub async fn user_triggers(
    client: &Client,
    side: Side,
    tables: &[Table],
) -> Result<BTreeMap<TableName, Vec<(String, TriggerState)>>> {
    per_table(
        client,
        side,
        tables,
        USER_TRIGGERS,
        "reading triggers",
        |r| (r.get(1), TriggerState::from_code(first_char(r.get(2)))),
    )
    .await
}

/// Per table, what loading rows into it runs that belongs to another role (see
/// `FOREIGN_CODE`): `trigger "t" runs public.f(), owned by role mallory`.
pub async fn foreign_code(
    client: &Client,
    side: Side,
    tables: &[Table],
) -> Result<BTreeMap<TableName, Vec<String>>> {
    per_table(
        client,
        side,
        tables,
        FOREIGN_CODE,
        "reading what loading rows runs",
        |r| {
            crate::quote::printable(&format!(
                "{} runs {}, owned by role {}",
                r.get::<_, String>(1),
                r.get::<_, String>(2),
                r.get::<_, String>(3)
            ))
            .into_owned()
        },
    )
    .await
}

/// A foreign key between two of the given tables.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ForeignKey {
    pub table: TableName,
    pub references: TableName,
    pub name: String,
    /// `pg_get_constraintdef()`.
    pub definition: String,
}

/// Foreign keys between `tables`, named and defined.
pub async fn foreign_keys(
    client: &Client,
    side: Side,
    tables: &[Table],
) -> Result<Vec<ForeignKey>> {
    let oids: Vec<u32> = tables.iter().map(|t| t.oid).collect();
    let rows = client
        .query_typed(FOREIGN_KEY_DEFINITIONS, &[(&oids, Type::OID_ARRAY)])
        .await
        .map_err(catalog_error(side, "reading foreign keys"))?;
    Ok(rows
        .iter()
        .map(|r| ForeignKey {
            table: TableName::new(r.get::<_, String>(0), r.get::<_, String>(1)),
            references: TableName::new(r.get::<_, String>(2), r.get::<_, String>(3)),
            name: r.get(4),
            definition: r.get(5),
        })
        .collect())
}

/// An index on an existing target table, as a load that sets it aside must build it again.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TargetIndex {
    pub name: String,
    /// `CREATE INDEX …` (`pg_get_indexdef()`).
    pub definition: String,
    /// The primary key, unique or exclusion constraint it backs: (name, definition).
    pub constraint: Option<(String, String)>,
    /// A foreign key depends on it (it cannot be dropped without that key).
    pub referenced: bool,
    pub replica_identity: bool,
    pub clustered: bool,
    pub comment: Option<String>,
    pub constraint_comment: Option<String>,
    /// Its columns, when it is a unique index rows can be matched by (plain NOT NULL
    /// columns, not partial, not deferrable).
    pub unique_key: Option<Vec<String>>,
}

/// Valid indexes of ordinary tables, per table.
pub async fn target_indexes(
    client: &Client,
    side: Side,
    tables: &[Table],
) -> Result<BTreeMap<TableName, Vec<TargetIndex>>> {
    per_table(
        client,
        side,
        tables,
        TARGET_INDEXES,
        "reading indexes",
        |r| TargetIndex {
            name: r.get(1),
            definition: r.get(2),
            constraint: r
                .get::<_, Option<String>>(3)
                .zip(r.get::<_, Option<String>>(4)),
            referenced: r.get(5),
            replica_identity: r.get(6),
            clustered: r.get(7),
            comment: r.get(8),
            constraint_comment: r.get(9),
            unique_key: r.get(10),
        },
    )
    .await
}

/// NOT VALID constraints per table: (name, definition).
pub async fn unvalidated_constraints(
    client: &Client,
    side: Side,
    tables: &[Table],
) -> Result<BTreeMap<TableName, Vec<(String, String)>>> {
    per_table(
        client,
        side,
        tables,
        UNVALIDATED,
        "reading NOT VALID constraints",
        |r| (r.get(1), r.get(2)),
    )
    .await
}

/// Foreign keys between `tables`, as (referencing table, referenced table).
pub async fn foreign_key_edges(
    client: &Client,
    side: Side,
    tables: &[Table],
) -> Result<Vec<(TableName, TableName)>> {
    let oids: Vec<u32> = tables.iter().map(|t| t.oid).collect();
    let rows = client
        .query_typed(FOREIGN_KEY_EDGES, &[(&oids, Type::OID_ARRAY)])
        .await
        .map_err(catalog_error(side, "reading foreign keys"))?;
    Ok(rows
        .iter()
        .map(|r| {
            (
                TableName::new(r.get::<_, String>(0), r.get::<_, String>(1)),
                TableName::new(r.get::<_, String>(2), r.get::<_, String>(3)),
            )
        })
        .collect())
}

/// The server's encoding (`UTF8`, `LATIN1`, `SQL_ASCII`, …).
pub async fn server_encoding(client: &Client, side: Side) -> Result<String> {
    Ok(client
        .query_one("SHOW server_encoding", &[])
        .await
        .map_err(catalog_error(side, "reading the server encoding"))?
        .get(0))
}

/// Which of `names` (schema, type name) exist on the server, keyed by name.
pub async fn find_types(
    client: &Client,
    side: Side,
    names: &[(String, String)],
) -> Result<BTreeMap<(String, String), ExistingType>> {
    if names.is_empty() {
        return Ok(BTreeMap::new());
    }
    let schemas: Vec<&str> = names.iter().map(|n| n.0.as_str()).collect();
    let types: Vec<&str> = names.iter().map(|n| n.1.as_str()).collect();
    let rows = client
        .query(FIND_TYPES, &[&schemas, &types])
        .await
        .map_err(catalog_error(side, "looking up types"))?;
    Ok(rows
        .iter()
        .map(|r| {
            (
                (r.get(0), r.get(1)),
                ExistingType {
                    typtype: first_char(r.get(2)).unwrap_or('b'),
                    enum_labels: r.get(3),
                },
            )
        })
        .collect())
}

/// What the connected role may create on the target.
pub async fn target_privileges(client: &Client) -> Result<Privileges> {
    let side = Side::Target;
    let (db, schemas) = tokio::try_join!(
        async {
            client
                .query_one(DATABASE_PRIVILEGE, &[])
                .await
                .map_err(catalog_error(side, "reading privileges"))
        },
        async {
            client
                .query(SCHEMA_PRIVILEGES, &[])
                .await
                .map_err(catalog_error(side, "reading schema privileges"))
        }
    )?;
    Ok(Privileges {
        create_in_database: db.get(0),
        is_superuser: db.get::<_, Option<bool>>(1).unwrap_or(false),
        create_in_schema: schemas.iter().map(|r| (r.get(0), r.get(1))).collect(),
    })
}
