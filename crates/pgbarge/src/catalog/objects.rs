//! Everything a copied table needs besides its columns and primary key, read from the
//! source the way pg_dump does — set-based catalog queries, with the definitions rendered
//! by the server's own `pg_get_*def()` functions (so they are valid SQL for its version,
//! with every name qualified under pgbarge's empty `search_path`):
//!
//! - partitions of chosen partitioned tables, with their bounds;
//! - check, unique, exclusion and foreign-key constraints, secondary indexes, triggers
//!   and rules of the chosen tables and their partitions;
//! - sequences the tables' defaults draw from (and all of a schema's, for a schema-wide
//!   copy), functions and aggregates that defaults, constraints, triggers and views call
//!   (all of a schema's, for a schema-wide copy), views and materialized views of the
//!   schemas copied whole, extensions the columns' types come from, and comments.
//!
//! Objects that belong to an extension are never listed: creating the extension brings
//! them.

use std::collections::BTreeMap;

use serde::Serialize;
use tokio_postgres::types::Type;
use tokio_postgres::Client;

use super::{SequenceParameters, TableName};
use crate::error::{Error, Kind, Result, Side};

/// Partitions of the given partitioned tables, all levels, parents before children.
const PARTITIONS: &str = "
WITH RECURSIVE tree(oid, root, depth) AS (
    SELECT i.inhrelid, i.inhparent, 1 FROM pg_catalog.pg_inherits i
    WHERE i.inhparent = ANY($1)
  UNION ALL
    SELECT i.inhrelid, tree.root, tree.depth + 1
    FROM tree JOIN pg_catalog.pg_inherits i ON i.inhparent = tree.oid
)
SELECT tree.root, c.oid, n.nspname, c.relname, pn.nspname, p.relname,
       pg_catalog.pg_get_expr(c.relpartbound, c.oid),
       CASE WHEN c.relkind = 'p' THEN pg_catalog.pg_get_partkeydef(c.oid) END,
       -- Its own storage options (and its TOAST table's).
       coalesce(c.reloptions, '{}')
       || ARRAY(SELECT 'toast.' || o FROM pg_catalog.pg_class tc, unnest(tc.reloptions) o
                WHERE tc.oid = c.reltoastrelid),
       -- Its columns, in its own order: name, type, NOT NULL, and its default where the
       -- parent's differs (tab-separated).
       ARRAY(SELECT a.attname || E'\t' || pg_catalog.format_type(a.atttypid, a.atttypmod)
                    || E'\t' || a.attnotnull::text || E'\t'
                    || coalesce(CASE WHEN d.oid IS NOT NULL AND NOT EXISTS (
                                    SELECT 1 FROM pg_catalog.pg_attribute pa
                                    JOIN pg_catalog.pg_attrdef pd
                                      ON pd.adrelid = pa.attrelid AND pd.adnum = pa.attnum
                                    WHERE pa.attrelid = p.oid AND pa.attname = a.attname
                                      AND pg_catalog.pg_get_expr(pd.adbin, pd.adrelid)
                                          = pg_catalog.pg_get_expr(d.adbin, d.adrelid))
                                 THEN pg_catalog.pg_get_expr(d.adbin, d.adrelid) END, '')
             FROM pg_catalog.pg_attribute a
             LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
             WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
             ORDER BY a.attnum),
       -- NOT NULL on the parent, per column name.
       ARRAY(SELECT a.attname FROM pg_catalog.pg_attribute a
             WHERE a.attrelid = p.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attnotnull),
       -- The parent's column names in order, and whether it has generated or identity
       -- columns (a partition in its own column order is created alone and attached,
       -- which such columns do not allow here).
       ARRAY(SELECT a.attname FROM pg_catalog.pg_attribute a
             WHERE a.attrelid = p.oid AND a.attnum > 0 AND NOT a.attisdropped
             ORDER BY a.attnum),
       EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a
               WHERE a.attrelid = p.oid AND a.attnum > 0 AND NOT a.attisdropped
                 AND (a.attgenerated <> '' OR a.attidentity <> '')),
       -- Every default it has, inherited or its own (column, expression; tab-separated):
       -- a leaf loaded on its own and attached at the end needs them declared.
       ARRAY(SELECT a.attname || E'\t' || pg_catalog.pg_get_expr(d.adbin, d.adrelid)
             FROM pg_catalog.pg_attribute a
             JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
             WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
               AND a.attgenerated = ''),
       -- Its size, to share the load of big leaves; and its whole partition constraint
       -- (its ancestors' bounds too), which a leaf loaded alone is checked against so
       -- that attaching it needs no scan.
       c.relpages::bigint,
       CASE WHEN c.relkind = 'r' THEN pg_catalog.pg_table_size(c.oid) ELSE 0 END,
       pg_catalog.pg_get_partition_constraintdef(c.oid)
FROM tree
JOIN pg_catalog.pg_class c ON c.oid = tree.oid AND c.relispartition
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_inherits h ON h.inhrelid = c.oid
JOIN pg_catalog.pg_class p ON p.oid = h.inhparent
JOIN pg_catalog.pg_namespace pn ON pn.oid = p.relnamespace
ORDER BY tree.root, tree.depth, n.nspname, c.relname";

/// Partition keys of the given partitioned tables.
const PARTITION_KEYS: &str = "
SELECT c.oid, pg_catalog.pg_get_partkeydef(c.oid)
FROM pg_catalog.pg_class c WHERE c.oid = ANY($1) AND c.relkind = 'p'";

/// Constraints (other than primary keys and NOT NULL), secondary indexes, triggers and
/// rules of the given tables. Objects a partition inherits from its parent (cloned
/// constraints and triggers, indexes attached to a parent index) are left out: creating
/// them on the parent creates them on the partitions.
const TABLE_OBJECTS: &str = "
SELECT k.conrelid, 'constraint', k.contype::text, k.conname,
       pg_catalog.pg_get_constraintdef(k.oid), fn.nspname, fc.relname, k.convalidated,
       cn.nspname, cc.relname,
       ARRAY(SELECT d.refobjid::pg_catalog.regprocedure::text FROM pg_catalog.pg_depend d
             WHERE d.classid = 'pg_catalog.pg_constraint'::regclass AND d.objid = k.oid
               AND d.refclassid = 'pg_catalog.pg_proc'::regclass)
FROM pg_catalog.pg_constraint k
JOIN pg_catalog.pg_class cc ON cc.oid = k.conrelid
JOIN pg_catalog.pg_namespace cn ON cn.oid = cc.relnamespace
LEFT JOIN pg_catalog.pg_class fc ON fc.oid = k.confrelid
LEFT JOIN pg_catalog.pg_namespace fn ON fn.oid = fc.relnamespace
-- Not the constraints a table gets from a parent (coninhcount > 0): the parent
-- recreates them. Except an inheritance child's check it also declares itself (adding
-- it again merges the two, as pg_dump's CREATE TABLE ... INHERITS does). A partition's own
-- primary key (not one cloned from its parent's) is read too.
WHERE k.contype IN ('c', 'u', 'x', 'f', 'p') AND k.conparentid = 0 AND k.conislocal
  AND (k.coninhcount = 0 OR k.contype = 'c' AND NOT cc.relispartition)
  AND (k.contype <> 'p' OR cc.relispartition)
  -- The tables' own constraints, and foreign keys of other tables pointing at them.
  AND (k.conrelid = ANY($1) OR k.contype = 'f' AND k.confrelid = ANY($1))
UNION ALL
SELECT i.indrelid, 'index', '', ic.relname, pg_catalog.pg_get_indexdef(i.indexrelid),
       NULL, NULL, i.indisvalid, NULL, NULL, '{}'::text[]
FROM pg_catalog.pg_index i
JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
WHERE i.indrelid = ANY($1)
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint k
                  WHERE k.conindid = i.indexrelid AND k.conrelid = i.indrelid
                    AND k.contype IN ('p', 'u', 'x'))
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_inherits h WHERE h.inhrelid = i.indexrelid)
UNION ALL
SELECT g.tgrelid, 'trigger', g.tgenabled::text, g.tgname,
       pg_catalog.pg_get_triggerdef(g.oid), NULL, NULL, true, NULL, NULL, '{}'::text[]
FROM pg_catalog.pg_trigger g
WHERE g.tgrelid = ANY($1) AND NOT g.tgisinternal AND g.tgparentid = 0
UNION ALL
SELECT r.ev_class, 'rule', '', r.rulename, pg_catalog.pg_get_ruledef(r.oid), NULL, NULL, true,
       NULL, NULL, '{}'::text[]
FROM pg_catalog.pg_rewrite r
WHERE r.ev_class = ANY($1) AND r.rulename <> '_RETURN'";

/// Collations the tables' columns use, and those of the schemas copied whole (created
/// ones only: pg_catalog's come with every server). The ICU locale moved between
/// versions (collcollate up to 14, colliculocale in 15 and 16, colllocale from 17), so
/// it is read through to_jsonb, which does not fail on a missing column.
const COLLATIONS: &str = "
SELECT DISTINCT n.nspname, co.collname, co.collprovider::text, co.collisdeterministic,
       co.collcollate, co.collctype,
       coalesce(to_jsonb(co) ->> 'colllocale', to_jsonb(co) ->> 'colliculocale')
FROM pg_catalog.pg_collation co
JOIN pg_catalog.pg_namespace n ON n.oid = co.collnamespace
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND (n.nspname = ANY($2)
       OR co.oid IN (SELECT a.attcollation FROM pg_catalog.pg_attribute a
                     WHERE a.attrelid = ANY($1) AND a.attnum > 0 AND NOT a.attisdropped))
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend e
                  WHERE e.classid = 'pg_catalog.pg_collation'::regclass AND e.objid = co.oid
                    AND e.deptype = 'e')
ORDER BY 1, 2";

/// Physical properties of the given tables that pg_dump keeps: a column's storage
/// (when not its type's), compression (14+, read through to_jsonb so older servers do not
/// fail) and statistics target; the replica identity and clustering index; extended
/// statistics objects.
const TABLE_PROPERTIES: &str = "
SELECT a.attrelid, 'storage', a.attname, a.attstorage::text
FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
WHERE a.attrelid = ANY($1) AND a.attnum > 0 AND NOT a.attisdropped
  AND a.attstorage <> t.typstorage
UNION ALL
SELECT a.attrelid, 'compression', a.attname, to_jsonb(a) ->> 'attcompression'
FROM pg_catalog.pg_attribute a
WHERE a.attrelid = ANY($1) AND a.attnum > 0 AND NOT a.attisdropped
  AND coalesce(to_jsonb(a) ->> 'attcompression', '') <> ''
UNION ALL
SELECT a.attrelid, 'statistics', a.attname, a.attstattarget::text
FROM pg_catalog.pg_attribute a
WHERE a.attrelid = ANY($1) AND a.attnum > 0 AND NOT a.attisdropped
  AND coalesce(a.attstattarget::int, -1) >= 0
UNION ALL
SELECT c.oid, 'replica identity', i.relname, c.relreplident::text
FROM pg_catalog.pg_class c
LEFT JOIN pg_catalog.pg_index x ON x.indrelid = c.oid AND x.indisreplident
LEFT JOIN pg_catalog.pg_class i ON i.oid = x.indexrelid
WHERE c.oid = ANY($1) AND c.relreplident <> 'd'
UNION ALL
SELECT x.indrelid, 'cluster', i.relname, NULL
FROM pg_catalog.pg_index x JOIN pg_catalog.pg_class i ON i.oid = x.indexrelid
WHERE x.indrelid = ANY($1) AND x.indisclustered
UNION ALL
SELECT a.attrelid, 'options', a.attname, array_to_string(a.attoptions, ', ')
FROM pg_catalog.pg_attribute a
WHERE a.attrelid = ANY($1) AND a.attnum > 0 AND NOT a.attisdropped
  AND a.attoptions IS NOT NULL
UNION ALL
SELECT s.stxrelid, 'extended statistics', s.stxname, pg_catalog.pg_get_statisticsobjdef(s.oid)
FROM pg_catalog.pg_statistic_ext s
WHERE s.stxrelid = ANY($1)";

/// Row-level security of the given tables: whether it is enabled (and forced on the
/// owner), and each policy with its expressions rendered by the server.
const ROW_SECURITY: &str = "
SELECT c.oid, c.relrowsecurity, c.relforcerowsecurity, NULL::text, NULL::bool, NULL::text,
       NULL::text[], NULL::text, NULL::text
FROM pg_catalog.pg_class c
WHERE c.oid = ANY($1) AND (c.relrowsecurity OR c.relforcerowsecurity)
UNION ALL
SELECT p.polrelid, NULL, NULL, p.polname, p.polpermissive, p.polcmd::text,
       ARRAY(SELECT CASE WHEN r = 0 THEN NULL ELSE pg_catalog.pg_get_userbyid(r) END
             FROM unnest(p.polroles) AS r),
       pg_catalog.pg_get_expr(p.polqual, p.polrelid),
       pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid)
FROM pg_catalog.pg_policy p
WHERE p.polrelid = ANY($1)";

/// Sequences the tables' column defaults use, or that live in a schema copied whole —
/// except those owned by a chosen table's column (created with the table) and identity
/// sequences (created by the identity column).
const SEQUENCES: &str = "
SELECT c.oid, n.nspname, c.relname, pg_catalog.format_type(s.seqtypid, NULL), s.seqstart,
       s.seqincrement, s.seqmin, s.seqmax, s.seqcache, s.seqcycle,
       pg_catalog.has_sequence_privilege(c.oid, 'SELECT'), c.relpersistence = 'u'
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_sequence s ON s.seqrelid = c.oid
WHERE c.relkind = 'S'
  AND (n.nspname = ANY($2)
       OR c.oid IN (SELECT d.refobjid FROM pg_catalog.pg_depend d
                    JOIN pg_catalog.pg_attrdef ad ON ad.oid = d.objid
                    WHERE d.classid = 'pg_catalog.pg_attrdef'::regclass
                      AND d.refclassid = 'pg_catalog.pg_class'::regclass
                      AND ad.adrelid = ANY($1)))
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                  WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid
                    AND (d.deptype IN ('i', 'e')
                         OR d.deptype = 'a' AND d.refobjid = ANY($1)))
ORDER BY n.nspname, c.relname";

/// Views and materialized views of the schemas copied whole, with the relations each
/// reads (to order them, and to skip those that read something not copied), and a
/// materialized view's indexes.
const VIEWS: &str = "
SELECT c.oid, n.nspname, c.relname, c.relkind = 'm', pg_catalog.pg_get_viewdef(c.oid),
       c.relispopulated, c.reloptions,
       ARRAY(SELECT rn.nspname FROM pg_catalog.pg_rewrite r
             JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_rewrite'::regclass
                  AND d.objid = r.oid AND d.refclassid = 'pg_catalog.pg_class'::regclass
             JOIN pg_catalog.pg_class rc ON rc.oid = d.refobjid AND rc.oid <> c.oid
             JOIN pg_catalog.pg_namespace rn ON rn.oid = rc.relnamespace
             WHERE r.ev_class = c.oid AND rc.relkind IN ('r', 'p', 'v', 'm', 'f')
             ORDER BY d.refobjid),
       ARRAY(SELECT rc.relname FROM pg_catalog.pg_rewrite r
             JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_rewrite'::regclass
                  AND d.objid = r.oid AND d.refclassid = 'pg_catalog.pg_class'::regclass
             JOIN pg_catalog.pg_class rc ON rc.oid = d.refobjid AND rc.oid <> c.oid
             JOIN pg_catalog.pg_namespace rn ON rn.oid = rc.relnamespace
             WHERE r.ev_class = c.oid AND rc.relkind IN ('r', 'p', 'v', 'm', 'f')
             ORDER BY d.refobjid),
       ARRAY(SELECT pg_catalog.pg_get_indexdef(i.indexrelid) FROM pg_catalog.pg_index i
             WHERE i.indrelid = c.oid ORDER BY i.indexrelid),
       ARRAY(SELECT pg_catalog.pg_get_ruledef(r.oid) FROM pg_catalog.pg_rewrite r
             WHERE r.ev_class = c.oid AND r.rulename <> '_RETURN' ORDER BY r.rulename)
       || ARRAY(SELECT pg_catalog.pg_get_triggerdef(g.oid) FROM pg_catalog.pg_trigger g
                WHERE g.tgrelid = c.oid AND NOT g.tgisinternal ORDER BY g.tgname),
       ARRAY(SELECT DISTINCT d.refobjid::pg_catalog.regprocedure::text
             FROM pg_catalog.pg_rewrite r
             JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_rewrite'::regclass
                  AND d.objid = r.oid AND d.refclassid = 'pg_catalog.pg_proc'::regclass
             WHERE r.ev_class = c.oid),
       -- A materialized view's columns with a compression method set (attcompression is
       -- new in 14: read through to_jsonb).
       ARRAY(SELECT a.attname || E'\t'
                    || CASE pg_catalog.to_jsonb(a) ->> 'attcompression'
                       WHEN 'p' THEN 'pglz' WHEN 'l' THEN 'lz4' END
             FROM pg_catalog.pg_attribute a
             WHERE a.attrelid = c.oid AND c.relkind = 'm' AND a.attnum > 0
               AND pg_catalog.to_jsonb(a) ->> 'attcompression' IN ('p', 'l')
             ORDER BY a.attnum)
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('v', 'm') AND n.nspname = ANY($2)
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend e
                  WHERE e.classid = 'pg_catalog.pg_class'::regclass AND e.objid = c.oid
                    AND e.deptype = 'e')
ORDER BY n.nspname, c.relname";

/// Operators of the schemas copied whole (not an extension's), with what
/// `CREATE OPERATOR` takes. Names of functions and operators come as (schema, name).
/// Casts from or to a type of the schemas copied whole, or through one of their
/// functions (not an extension's, not built in).
const CASTS: &str = "
SELECT pg_catalog.format_type(c.castsource, NULL), pg_catalog.format_type(c.casttarget, NULL),
       c.castmethod::text, CASE WHEN c.castfunc <> 0 THEN c.castfunc::pg_catalog.regprocedure::text END,
       c.castcontext::text, pg_catalog.obj_description(c.oid, 'pg_cast')
FROM pg_catalog.pg_cast c
JOIN pg_catalog.pg_type st ON st.oid = c.castsource
JOIN pg_catalog.pg_namespace sn ON sn.oid = st.typnamespace
JOIN pg_catalog.pg_type tt ON tt.oid = c.casttarget
JOIN pg_catalog.pg_namespace tn ON tn.oid = tt.typnamespace
LEFT JOIN pg_catalog.pg_proc f ON f.oid = c.castfunc
LEFT JOIN pg_catalog.pg_namespace fn ON fn.oid = f.pronamespace
WHERE c.oid >= 16384
  AND (sn.nspname = ANY($2) OR tn.nspname = ANY($2) OR fn.nspname = ANY($2))
  -- Not an extension's, and not one made along with another object (a range type's
  -- cast to its multirange, through a constructor that comes with the type).
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend e
                  WHERE e.classid = 'pg_catalog.pg_cast'::regclass AND e.objid = c.oid
                    AND e.deptype IN ('e', 'i'))
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend e
                  WHERE e.classid = 'pg_catalog.pg_proc'::regclass AND e.objid = c.castfunc
                    AND e.deptype IN ('e', 'i'))
ORDER BY 1, 2";

const OPERATORS: &str = "
SELECT o.oid::pg_catalog.regoperator::text, n.nspname, o.oprname,
       CASE WHEN o.oprleft <> 0 THEN pg_catalog.format_type(o.oprleft, NULL) END,
       CASE WHEN o.oprright <> 0 THEN pg_catalog.format_type(o.oprright, NULL) END,
       pn.nspname, p.proname, p.oid::pg_catalog.regprocedure::text,
       (SELECT ARRAY[cn.nspname, c.oprname] FROM pg_catalog.pg_operator c
        JOIN pg_catalog.pg_namespace cn ON cn.oid = c.oprnamespace WHERE c.oid = o.oprcom),
       (SELECT ARRAY[cn.nspname, c.oprname] FROM pg_catalog.pg_operator c
        JOIN pg_catalog.pg_namespace cn ON cn.oid = c.oprnamespace WHERE c.oid = o.oprnegate),
       (SELECT ARRAY[fn.nspname, f.proname] FROM pg_catalog.pg_proc f
        JOIN pg_catalog.pg_namespace fn ON fn.oid = f.pronamespace WHERE f.oid = o.oprrest),
       (SELECT ARRAY[fn.nspname, f.proname] FROM pg_catalog.pg_proc f
        JOIN pg_catalog.pg_namespace fn ON fn.oid = f.pronamespace WHERE f.oid = o.oprjoin),
       o.oprcanhash, o.oprcanmerge, pg_catalog.obj_description(o.oid, 'pg_operator')
FROM pg_catalog.pg_operator o
JOIN pg_catalog.pg_namespace n ON n.oid = o.oprnamespace
JOIN pg_catalog.pg_proc p ON p.oid = o.oprcode
JOIN pg_catalog.pg_namespace pn ON pn.oid = p.pronamespace
WHERE n.nspname = ANY($2)
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend e
                  WHERE e.classid = 'pg_catalog.pg_operator'::regclass AND e.objid = o.oid
                    AND e.deptype = 'e')
ORDER BY 1";

/// Functions, procedures and aggregates: those the tables' defaults, constraints and
/// triggers and the copied views call, every one of a schema copied whole, and the
/// support functions of those aggregates. A function whose signature uses a table's row
/// type can only be created once the table exists.
const FUNCTIONS: &str = "
WITH RECURSIVE users(classid, objid, for_table, rel) AS (
    -- The objects whose dependencies are looked at (pairs, so pg_depend is joined by
    -- its index rather than scanned under an OR of subqueries: 30x faster), and whether
    -- the copied tables themselves need them (not only a view of a schema copied whole).
    SELECT 'pg_catalog.pg_attrdef'::regclass, oid, true, adrelid FROM pg_catalog.pg_attrdef
    WHERE adrelid = ANY($1)
  UNION ALL
    SELECT 'pg_catalog.pg_constraint'::regclass, oid, true, conrelid
    FROM pg_catalog.pg_constraint
    WHERE conrelid = ANY($1)
  UNION ALL
    SELECT 'pg_catalog.pg_trigger'::regclass, oid, true, tgrelid FROM pg_catalog.pg_trigger
    WHERE tgrelid = ANY($1)
  UNION ALL
    -- index expressions and predicates, partition keys, policies
    SELECT 'pg_catalog.pg_class'::regclass, indexrelid, true, indrelid FROM pg_catalog.pg_index
    WHERE indrelid = ANY($1)
  UNION ALL
    SELECT 'pg_catalog.pg_class'::regclass, oid, true, oid FROM pg_catalog.pg_class
    WHERE oid = ANY($1)
  UNION ALL
    SELECT 'pg_catalog.pg_policy'::regclass, oid, true, polrelid FROM pg_catalog.pg_policy
    WHERE polrelid = ANY($1)
  UNION ALL
    SELECT 'pg_catalog.pg_rewrite'::regclass, r.oid, r.ev_class = ANY($1), r.ev_class
    FROM pg_catalog.pg_rewrite r
    JOIN pg_catalog.pg_class c ON c.oid = r.ev_class
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE r.ev_class = ANY($1) OR c.relkind IN ('v', 'm') AND n.nspname = ANY($2)
), needed(oid) AS (
    SELECT d.refobjid FROM users
    JOIN pg_catalog.pg_depend d ON d.classid = users.classid AND d.objid = users.objid
    WHERE d.refclassid = 'pg_catalog.pg_proc'::regclass
  UNION
    SELECT p.oid FROM pg_catalog.pg_proc p
    JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
    WHERE n.nspname = ANY($2)
  UNION
    SELECT x.oid FROM needed
    JOIN pg_catalog.pg_aggregate a ON a.aggfnoid = needed.oid
    CROSS JOIN LATERAL (VALUES (a.aggtransfn::oid), (a.aggfinalfn::oid),
                               (a.aggcombinefn::oid), (a.aggserialfn::oid),
                               (a.aggdeserialfn::oid), (a.aggmtransfn::oid),
                               (a.aggminvtransfn::oid), (a.aggmfinalfn::oid)) AS x(oid)
    WHERE x.oid <> 0
)
SELECT p.oid, n.nspname, p.proname, p.oid::pg_catalog.regprocedure::text, p.prokind::text,
       CASE WHEN p.prokind <> 'a' THEN pg_catalog.pg_get_functiondef(p.oid) END,
       l.lanname, l.lanpltrusted OR l.lanname IN ('sql', 'plpgsql'),
       pg_catalog.pg_get_function_identity_arguments(p.oid),
       a.aggkind::text, a.aggtransfn::oid::pg_catalog.regproc::text,
       pg_catalog.format_type(a.aggtranstype, NULL),
       CASE WHEN a.aggfinalfn <> 0 THEN a.aggfinalfn::pg_catalog.regproc::text END,
       CASE WHEN a.aggcombinefn <> 0 THEN a.aggcombinefn::pg_catalog.regproc::text END,
       a.agginitval,
       -- The rest of CREATE AGGREGATE's options, as pg_dump writes them.
       CASE WHEN a.aggfnoid IS NOT NULL THEN pg_catalog.jsonb_build_object(
           'sspace', a.aggtransspace,
           'finalfunc_extra', a.aggfinalextra,
           'finalfunc_modify', a.aggfinalmodify::text,
           'serialfunc', CASE WHEN a.aggserialfn <> 0
                              THEN a.aggserialfn::pg_catalog.regproc::text END,
           'deserialfunc', CASE WHEN a.aggdeserialfn <> 0
                                THEN a.aggdeserialfn::pg_catalog.regproc::text END,
           'msfunc', CASE WHEN a.aggmtransfn <> 0
                          THEN a.aggmtransfn::pg_catalog.regproc::text END,
           'minvfunc', CASE WHEN a.aggminvtransfn <> 0
                            THEN a.aggminvtransfn::pg_catalog.regproc::text END,
           'mstype', CASE WHEN a.aggmtranstype <> 0
                          THEN pg_catalog.format_type(a.aggmtranstype, NULL) END,
           'msspace', a.aggmtransspace,
           'mfinalfunc', CASE WHEN a.aggmfinalfn <> 0
                              THEN a.aggmfinalfn::pg_catalog.regproc::text END,
           'mfinalfunc_extra', a.aggmfinalextra,
           'mfinalfunc_modify', a.aggmfinalmodify::text,
           'minitcond', a.aggminitval,
           'sortop', (SELECT 'OPERATOR(' || pg_catalog.quote_ident(son.nspname) || '.'
                             || so.oprname || ')'
                      FROM pg_catalog.pg_operator so
                      JOIN pg_catalog.pg_namespace son ON son.oid = so.oprnamespace
                      WHERE so.oid = a.aggsortop),
           'parallel', p.proparallel::text)::text END,
       EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
               JOIN pg_catalog.pg_type t ON t.oid = d.refobjid
               JOIN pg_catalog.pg_class tc ON tc.oid = t.typrelid
               WHERE d.classid = 'pg_catalog.pg_proc'::regclass AND d.objid = p.oid
                 AND d.refclassid = 'pg_catalog.pg_type'::regclass
                 AND tc.relkind IN ('r', 'p', 'v', 'm', 'f'))
       -- A SQL-standard body (BEGIN ATOMIC) is parsed at creation: it needs its tables.
       OR EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                  WHERE d.classid = 'pg_catalog.pg_proc'::regclass AND d.objid = p.oid
                    AND d.refclassid = 'pg_catalog.pg_class'::regclass),
       -- The copied tables that need it (a default, check, trigger, index, policy or
       -- rule calls it).
       ARRAY(SELECT DISTINCT u.rel FROM users u
             JOIN pg_catalog.pg_depend d ON d.classid = u.classid AND d.objid = u.objid
             WHERE u.for_table AND d.refclassid = 'pg_catalog.pg_proc'::regclass
               AND d.refobjid = p.oid),
       -- The relations whose row types its signature uses (schema, tab, name).
       ARRAY(SELECT DISTINCT tn.nspname || E'\t' || tc.relname FROM pg_catalog.pg_depend d
             JOIN pg_catalog.pg_type t ON t.oid = d.refobjid
             JOIN pg_catalog.pg_class tc ON tc.oid = t.typrelid
             JOIN pg_catalog.pg_namespace tn ON tn.oid = tc.relnamespace
             WHERE d.classid = 'pg_catalog.pg_proc'::regclass AND d.objid = p.oid
               AND d.refclassid = 'pg_catalog.pg_type'::regclass
               AND tc.relkind IN ('r', 'p', 'v', 'm', 'f'))
FROM needed
JOIN pg_catalog.pg_proc p ON p.oid = needed.oid
JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
JOIN pg_catalog.pg_language l ON l.oid = p.prolang
LEFT JOIN pg_catalog.pg_aggregate a ON a.aggfnoid = p.oid
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
  -- Not an extension's, and not made by the server along with another object (a range
  -- type's constructors): those come with their owner.
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend e
                  WHERE e.classid = 'pg_catalog.pg_proc'::regclass AND e.objid = p.oid
                    AND e.deptype IN ('e', 'i'))
ORDER BY p.prokind = 'a', n.nspname, p.proname, p.oid";

/// Extensions the copy needs: those whose types the tables' columns use (directly or as
/// array elements), and those installed in a schema copied whole.
const EXTENSIONS: &str = "
SELECT e.extname, n.nspname
FROM pg_catalog.pg_extension e
JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
WHERE e.extname <> 'plpgsql'
  AND (n.nspname = ANY($2)
       OR e.oid IN (SELECT d.refobjid FROM pg_catalog.pg_depend d
                    -- the column's type, its array element, or a domain's base type
                    JOIN pg_catalog.pg_type t ON d.objid IN (t.oid, t.typelem, t.typbasetype)
                    JOIN pg_catalog.pg_attribute a ON a.atttypid = t.oid
                    WHERE d.classid = 'pg_catalog.pg_type'::regclass AND d.deptype = 'e'
                      AND d.refclassid = 'pg_catalog.pg_extension'::regclass
                      AND a.attrelid = ANY($1))
       -- Anything of an extension that the tables' defaults, constraints, indexes
       -- (operator classes: gin_trgm_ops, btree_gist's) or triggers use.
       OR e.oid IN (SELECT x.refobjid FROM pg_catalog.pg_depend d
                    JOIN pg_catalog.pg_depend x ON x.classid = d.refclassid
                         AND x.objid = d.refobjid AND x.deptype = 'e'
                         AND x.refclassid = 'pg_catalog.pg_extension'::regclass
                    WHERE d.classid = 'pg_catalog.pg_attrdef'::regclass
                          AND d.objid IN (SELECT oid FROM pg_catalog.pg_attrdef
                                          WHERE adrelid = ANY($1))
                       OR d.classid = 'pg_catalog.pg_constraint'::regclass
                          AND d.objid IN (SELECT oid FROM pg_catalog.pg_constraint
                                          WHERE conrelid = ANY($1))
                       OR d.classid = 'pg_catalog.pg_class'::regclass
                          AND d.objid IN (SELECT indexrelid FROM pg_catalog.pg_index
                                          WHERE indrelid = ANY($1))
                       OR d.classid = 'pg_catalog.pg_trigger'::regclass
                          AND d.objid IN (SELECT oid FROM pg_catalog.pg_trigger
                                          WHERE tgrelid = ANY($1))))
ORDER BY e.extname";

/// Comments on the tables (and their columns, constraints, indexes, triggers), the
/// schemas copied whole and their sequences, views, functions and types.
const COMMENTS: &str = "
SELECT CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
                      WHEN 'S' THEN 'SEQUENCE' WHEN 'i' THEN 'INDEX' WHEN 'I' THEN 'INDEX'
                      ELSE 'TABLE' END,
       n.nspname, c.relname, NULL::text, d.description
FROM pg_catalog.pg_description d
JOIN pg_catalog.pg_class c ON c.oid = d.objoid AND d.classoid = 'pg_catalog.pg_class'::regclass
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE d.objsubid = 0
  AND (c.oid = ANY($1) OR n.nspname = ANY($2) AND c.relkind IN ('v', 'm', 'S')
       OR c.oid IN (SELECT indexrelid FROM pg_catalog.pg_index WHERE indrelid = ANY($1)))
UNION ALL
SELECT 'COLUMN', n.nspname, c.relname, a.attname, d.description
FROM pg_catalog.pg_description d
JOIN pg_catalog.pg_class c ON c.oid = d.objoid AND d.classoid = 'pg_catalog.pg_class'::regclass
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum = d.objsubid
WHERE d.objsubid > 0 AND (c.oid = ANY($1) OR n.nspname = ANY($2) AND c.relkind IN ('v', 'm'))
UNION ALL
SELECT 'CONSTRAINT', n.nspname, c.relname, k.conname, d.description
FROM pg_catalog.pg_description d
JOIN pg_catalog.pg_constraint k ON k.oid = d.objoid
     AND d.classoid = 'pg_catalog.pg_constraint'::regclass
JOIN pg_catalog.pg_class c ON c.oid = k.conrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE k.conrelid = ANY($1)
UNION ALL
SELECT 'TRIGGER', n.nspname, c.relname, g.tgname, d.description
FROM pg_catalog.pg_description d
JOIN pg_catalog.pg_trigger g ON g.oid = d.objoid AND d.classoid = 'pg_catalog.pg_trigger'::regclass
JOIN pg_catalog.pg_class c ON c.oid = g.tgrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE g.tgrelid = ANY($1)
UNION ALL
SELECT CASE p.prokind WHEN 'a' THEN 'AGGREGATE' WHEN 'p' THEN 'PROCEDURE' ELSE 'FUNCTION' END,
       n.nspname, p.proname, pg_catalog.pg_get_function_identity_arguments(p.oid),
       d.description
FROM pg_catalog.pg_description d
JOIN pg_catalog.pg_proc p ON p.oid = d.objoid AND d.classoid = 'pg_catalog.pg_proc'::regclass
JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = ANY($2)
UNION ALL
SELECT CASE t.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END, n.nspname, t.typname, NULL,
       d.description
FROM pg_catalog.pg_description d
JOIN pg_catalog.pg_type t ON t.oid = d.objoid AND d.classoid = 'pg_catalog.pg_type'::regclass
JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
WHERE n.nspname = ANY($2)
UNION ALL
SELECT 'DOMAIN CONSTRAINT', n.nspname, t.typname, k.conname, d.description
FROM pg_catalog.pg_description d
JOIN pg_catalog.pg_constraint k ON k.oid = d.objoid
     AND d.classoid = 'pg_catalog.pg_constraint'::regclass
JOIN pg_catalog.pg_type t ON t.oid = k.contypid
JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
WHERE n.nspname = ANY($2) OR t.oid IN (SELECT a.atttypid FROM pg_catalog.pg_attribute a
                                       WHERE a.attrelid = ANY($1))
UNION ALL
SELECT 'POLICY', n.nspname, c.relname, p.polname, d.description
FROM pg_catalog.pg_description d
JOIN pg_catalog.pg_policy p ON p.oid = d.objoid AND d.classoid = 'pg_catalog.pg_policy'::regclass
JOIN pg_catalog.pg_class c ON c.oid = p.polrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE p.polrelid = ANY($1)
UNION ALL
SELECT 'RULE', n.nspname, c.relname, r.rulename, d.description
FROM pg_catalog.pg_description d
JOIN pg_catalog.pg_rewrite r ON r.oid = d.objoid AND d.classoid = 'pg_catalog.pg_rewrite'::regclass
JOIN pg_catalog.pg_class c ON c.oid = r.ev_class
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE r.ev_class = ANY($1) AND r.rulename <> '_RETURN'
UNION ALL
SELECT 'COLLATION', n.nspname, co.collname, NULL, d.description
FROM pg_catalog.pg_description d
JOIN pg_catalog.pg_collation co ON co.oid = d.objoid
     AND d.classoid = 'pg_catalog.pg_collation'::regclass
JOIN pg_catalog.pg_namespace n ON n.oid = co.collnamespace
UNION ALL
SELECT 'SCHEMA', NULL, n.nspname, NULL, d.description
FROM pg_catalog.pg_description d
JOIN pg_catalog.pg_namespace n ON n.oid = d.objoid
     AND d.classoid = 'pg_catalog.pg_namespace'::regclass
WHERE n.nspname = ANY($2)";

/// Privileges granted on the tables (and their partitions), the sequences, views and
/// functions of schemas copied whole, and those schemas — except the owner's own, which
/// the owner has anyway. Routines with an explicit ACL lose PUBLIC's default EXECUTE
/// (`revoke_public`), as on the source.
const GRANTS: &str = "
SELECT CASE c.relkind WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END, n.nspname, c.relname,
       NULL::text, a.privilege_type, r.rolname, a.is_grantable, false
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
CROSS JOIN LATERAL pg_catalog.aclexplode(c.relacl) a
LEFT JOIN pg_catalog.pg_roles r ON r.oid = a.grantee
WHERE (c.oid = ANY($1) OR n.nspname = ANY($2) AND c.relkind IN ('v', 'm', 'S')
       OR c.oid IN (SELECT d.objid FROM pg_catalog.pg_depend d
                    WHERE d.classid = 'pg_catalog.pg_class'::regclass
                      AND d.refobjid = ANY($1) AND d.deptype IN ('a', 'i')))
  AND a.grantee <> c.relowner
UNION ALL
SELECT CASE p.prokind WHEN 'p' THEN 'PROCEDURE' ELSE 'FUNCTION' END, n.nspname, p.proname,
       pg_catalog.pg_get_function_identity_arguments(p.oid), a.privilege_type, r.rolname,
       a.is_grantable,
       NOT EXISTS (SELECT 1 FROM pg_catalog.aclexplode(p.proacl) x WHERE x.grantee = 0)
FROM pg_catalog.pg_proc p
JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
CROSS JOIN LATERAL pg_catalog.aclexplode(p.proacl) a
LEFT JOIN pg_catalog.pg_roles r ON r.oid = a.grantee
WHERE n.nspname = ANY($2) AND p.prokind <> 'a' AND a.grantee <> p.proowner
UNION ALL
-- A routine whose ACL names only its owner: PUBLIC's default EXECUTE was revoked.
SELECT CASE p.prokind WHEN 'p' THEN 'PROCEDURE' ELSE 'FUNCTION' END, n.nspname, p.proname,
       pg_catalog.pg_get_function_identity_arguments(p.oid), '', NULL, false, true
FROM pg_catalog.pg_proc p
JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = ANY($2) AND p.prokind <> 'a' AND p.proacl IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.aclexplode(p.proacl) x
                  WHERE x.grantee <> p.proowner)
UNION ALL
SELECT 'SCHEMA', NULL, n.nspname, NULL, a.privilege_type, r.rolname, a.is_grantable, false
FROM pg_catalog.pg_namespace n
CROSS JOIN LATERAL pg_catalog.aclexplode(n.nspacl) a
LEFT JOIN pg_catalog.pg_roles r ON r.oid = a.grantee
WHERE n.nspname = ANY($2) AND a.grantee <> n.nspowner";

/// Text-search dictionaries and configurations of the schemas copied whole (not an
/// extension's), dictionaries first: configurations map token types to them.
const TEXT_SEARCH: &str = "
SELECT 'dictionary', n.nspname, d.dictname, tn.nspname, t.tmplname, d.dictinitoption,
       '{}'::text[], pg_catalog.obj_description(d.oid, 'pg_ts_dict')
FROM pg_catalog.pg_ts_dict d
JOIN pg_catalog.pg_namespace n ON n.oid = d.dictnamespace
JOIN pg_catalog.pg_ts_template t ON t.oid = d.dicttemplate
JOIN pg_catalog.pg_namespace tn ON tn.oid = t.tmplnamespace
WHERE n.nspname = ANY($2)
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend e
                  WHERE e.classid = 'pg_catalog.pg_ts_dict'::regclass AND e.objid = d.oid
                    AND e.deptype = 'e')
UNION ALL
-- Its mappings: token type alias, tab, its dictionaries in order (qualified SQL).
SELECT 'configuration', n.nspname, c.cfgname, pn.nspname, p.prsname, NULL,
       ARRAY(SELECT tt.alias || E'\t'
                    || string_agg(pg_catalog.quote_ident(dn.nspname) || '.'
                                  || pg_catalog.quote_ident(dd.dictname), ', '
                                  ORDER BY m.mapseqno)
             FROM pg_catalog.pg_ts_config_map m
             JOIN pg_catalog.ts_token_type(c.cfgparser) tt ON tt.tokid = m.maptokentype
             JOIN pg_catalog.pg_ts_dict dd ON dd.oid = m.mapdict
             JOIN pg_catalog.pg_namespace dn ON dn.oid = dd.dictnamespace
             WHERE m.mapcfg = c.oid
             GROUP BY m.maptokentype, tt.alias
             ORDER BY m.maptokentype),
       pg_catalog.obj_description(c.oid, 'pg_ts_config')
FROM pg_catalog.pg_ts_config c
JOIN pg_catalog.pg_namespace n ON n.oid = c.cfgnamespace
JOIN pg_catalog.pg_ts_parser p ON p.oid = c.cfgparser
JOIN pg_catalog.pg_namespace pn ON pn.oid = p.prsnamespace
WHERE n.nspname = ANY($2)
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend e
                  WHERE e.classid = 'pg_catalog.pg_ts_config'::regclass AND e.objid = c.oid
                    AND e.deptype = 'e')
ORDER BY 1 DESC, 2, 3";

/// Every non-system schema: what `--all` copies whole.
/// What the copy would leave behind without a word: kinds of objects pgbarge does not
/// recreate. Database-wide ones (event triggers, publications, foreign servers and
/// wrappers, access methods) when a schema is copied whole (`--all`, `app.*`); foreign
/// tables, operator classes and families, text-search parsers and templates in those
/// schemas; and column-level privileges of the chosen tables.
const NOT_RECREATED: &str = "
SELECT kind, name, why FROM (
    SELECT 'event trigger' AS kind, evtname::text AS name,
           'event triggers are not recreated (only a superuser may create them)' AS why
      FROM pg_catalog.pg_event_trigger WHERE cardinality($2::text[]) > 0
    UNION ALL
    SELECT 'publication', pubname::text, 'publications are not recreated'
      FROM pg_catalog.pg_publication WHERE cardinality($2::text[]) > 0
    UNION ALL
    SELECT 'foreign server', srvname::text, 'foreign servers are not recreated'
      FROM pg_catalog.pg_foreign_server WHERE cardinality($2::text[]) > 0
    UNION ALL
    SELECT 'foreign-data wrapper', fdwname::text,
           'foreign-data wrappers are not recreated (only a superuser may create one)'
      FROM pg_catalog.pg_foreign_data_wrapper w
     WHERE cardinality($2::text[]) > 0
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend e
                       WHERE e.classid = 'pg_catalog.pg_foreign_data_wrapper'::regclass
                         AND e.objid = w.oid AND e.deptype = 'e')
    UNION ALL
    -- Access methods, operator classes and families, text-search parsers and templates
    -- that are neither built in nor an extension's: only a superuser creates them.
    SELECT 'access method', amname::text,
           'only a superuser may create an access method'
      FROM pg_catalog.pg_am a
     WHERE cardinality($2::text[]) > 0 AND a.oid >= 16384
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend e
                       WHERE e.classid = 'pg_catalog.pg_am'::regclass AND e.objid = a.oid
                         AND e.deptype = 'e')
    UNION ALL
    SELECT 'operator class', pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(o.opcname)
           || ' USING ' || a.amname,
           'only a superuser may create an operator class'
      FROM pg_catalog.pg_opclass o JOIN pg_catalog.pg_namespace n ON n.oid = o.opcnamespace
      JOIN pg_catalog.pg_am a ON a.oid = o.opcmethod
     WHERE n.nspname = ANY ($2::text[])
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend e
                       WHERE e.classid = 'pg_catalog.pg_opclass'::regclass AND e.objid = o.oid
                         AND e.deptype = 'e')
    UNION ALL
    SELECT 'operator family', pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(f.opfname)
           || ' USING ' || a.amname,
           'only a superuser may create an operator family'
      FROM pg_catalog.pg_opfamily f JOIN pg_catalog.pg_namespace n ON n.oid = f.opfnamespace
      JOIN pg_catalog.pg_am a ON a.oid = f.opfmethod
     WHERE n.nspname = ANY ($2::text[])
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend e
                       WHERE e.classid = 'pg_catalog.pg_opfamily'::regclass AND e.objid = f.oid
                         AND e.deptype = 'e')
    UNION ALL
    SELECT 'text search parser', pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(p.prsname),
           'only a superuser may create a text search parser'
      FROM pg_catalog.pg_ts_parser p JOIN pg_catalog.pg_namespace n ON n.oid = p.prsnamespace
     WHERE n.nspname = ANY ($2::text[])
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend e
                       WHERE e.classid = 'pg_catalog.pg_ts_parser'::regclass AND e.objid = p.oid
                         AND e.deptype = 'e')
    UNION ALL
    SELECT 'text search template', pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(t.tmplname),
           'only a superuser may create a text search template'
      FROM pg_catalog.pg_ts_template t JOIN pg_catalog.pg_namespace n ON n.oid = t.tmplnamespace
     WHERE n.nspname = ANY ($2::text[])
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend e
                       WHERE e.classid = 'pg_catalog.pg_ts_template'::regclass AND e.objid = t.oid
                         AND e.deptype = 'e')
    UNION ALL
    SELECT 'foreign table', pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname),
           'foreign tables are not recreated'
      FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind = 'f' AND n.nspname = ANY ($2::text[])
    UNION ALL
    SELECT 'column privileges', pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname)
           || '.' || pg_catalog.quote_ident(a.attname),
           'column-level GRANTs are not copied'
      FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
      JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     WHERE a.attrelid = ANY ($1::oid[]) AND a.attacl IS NOT NULL AND NOT a.attisdropped
) AS o ORDER BY 1, 2";

const SCHEMAS: &str = "
SELECT n.nspname FROM pg_catalog.pg_namespace n
WHERE n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend e
                  WHERE e.classid = 'pg_catalog.pg_namespace'::regclass AND e.objid = n.oid
                    AND e.deptype = 'e')
ORDER BY 1";

/// Extensions the target could install, and whether a non-superuser may.
const AVAILABLE_EXTENSIONS: &str = "
SELECT a.name, bool_or(v.trusted)
FROM pg_catalog.pg_available_extensions a
JOIN pg_catalog.pg_available_extension_versions v ON v.name = a.name
GROUP BY a.name";

/// A partition of a chosen partitioned table.
#[derive(Debug, Clone, Serialize)]
pub struct Partition {
    pub oid: u32,
    pub name: TableName,
    /// The partitioned table it belongs to directly (the chosen table or a partition of it).
    pub parent: TableName,
    /// `FOR VALUES …` or `DEFAULT`.
    pub bound: String,
    /// Set when this partition is itself partitioned: `RANGE (…)`, `LIST (…)`, `HASH (…)`.
    pub partition_key: Option<String>,
    /// Its own storage options (`fillfactor=80`, `toast.…`).
    pub options: Vec<String>,
    /// Its columns in its own order (attached tables may order them differently).
    pub columns: Vec<PartitionColumn>,
    /// The parent's NOT NULL columns.
    pub parent_not_null: Vec<String>,
    /// The parent's column names, in order.
    pub parent_columns: Vec<String>,
    /// The parent has generated or identity columns.
    pub parent_generated: bool,
    /// (column, expression) of every default it has, inherited or its own.
    pub defaults: Vec<(String, String)>,
    /// Heap blocks and bytes (heap and TOAST; 0 for a partitioned partition).
    pub pages: i64,
    pub bytes: i64,
    /// Its partition constraint, its ancestors' bounds included (`None` for a default
    /// partition alone under its parent).
    pub constraint: Option<String>,
}

/// A partition's column, as the partition itself defines it.
#[derive(Debug, Clone, Serialize)]
pub struct PartitionColumn {
    pub name: String,
    /// `format_type()`.
    pub ty: String,
    pub not_null: bool,
    /// Its default where the parent's differs.
    pub default: Option<String>,
}

impl Partition {
    /// Its columns are in another order than its parent's.
    pub fn own_order(&self) -> bool {
        !self
            .columns
            .iter()
            .map(|c| &c.name)
            .eq(self.parent_columns.iter())
    }

    /// Statements creating it: `CREATE TABLE … PARTITION OF …` with its own defaults, NOT
    /// NULLs and options; or, when its columns are in their own order, `CREATE TABLE`
    /// alone and `ATTACH PARTITION`, as pg_dump does.
    pub fn create_sql(&self) -> Vec<String> {
        use crate::quote::ident;
        let sub = self
            .partition_key
            .as_ref()
            .map(|k| format!(" PARTITION BY {k}"))
            .unwrap_or_default();
        let with = if self.options.is_empty() {
            String::new()
        } else {
            format!(" WITH ({})", self.options.join(", "))
        };
        if self.own_order() && !self.parent_generated {
            let columns: Vec<String> = self
                .columns
                .iter()
                .map(|c| {
                    let mut d = format!("{} {}", ident(&c.name), c.ty);
                    if let Some(default) = &c.default {
                        d.push_str(&format!(" DEFAULT {default}"));
                    }
                    if c.not_null {
                        d.push_str(" NOT NULL");
                    }
                    d
                })
                .collect();
            return vec![
                format!(
                    "CREATE TABLE {} (\n    {}\n){sub}{with}",
                    self.name.sql(),
                    columns.join(",\n    ")
                ),
                format!(
                    "ALTER TABLE {} ATTACH PARTITION {} {}",
                    self.parent.sql(),
                    self.name.sql(),
                    self.bound
                ),
            ];
        }
        let local: Vec<String> = self
            .columns
            .iter()
            .filter_map(|c| {
                let mut d = String::new();
                if let Some(default) = &c.default {
                    d.push_str(&format!(" DEFAULT {default}"));
                }
                if c.not_null && !self.parent_not_null.contains(&c.name) {
                    d.push_str(" NOT NULL");
                }
                (!d.is_empty()).then(|| format!("{} WITH OPTIONS{d}", ident(&c.name)))
            })
            .collect();
        let local = if local.is_empty() {
            String::new()
        } else {
            format!(" ({})", local.join(", "))
        };
        vec![format!(
            "CREATE TABLE {} PARTITION OF {}{local} {}{sub}{with}",
            self.name.sql(),
            self.parent.sql(),
            self.bound
        )]
    }
}

/// What kind of table-level object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TableObjectKind {
    Check,
    /// A partition's own primary key (a table's own is read with its columns).
    PrimaryKey,
    Unique,
    Exclusion,
    ForeignKey,
    Index,
    Trigger,
    Rule,
}

/// A constraint, index, trigger or rule of a chosen table or of one of its partitions.
#[derive(Debug, Clone, Serialize)]
pub struct TableObject {
    pub kind: TableObjectKind,
    /// The table (or partition) it is on.
    pub table: TableName,
    pub name: String,
    /// `pg_get_constraintdef` / `pg_get_indexdef` / `pg_get_triggerdef` / `pg_get_ruledef`.
    pub definition: String,
    /// For a foreign key: the table it references.
    pub references: Option<TableName>,
    /// A constraint added `NOT VALID` on the source stays so.
    pub validated: bool,
    /// When a trigger fires (`Enabled` for the other kinds).
    pub enabled: super::TriggerState,
    /// The functions a constraint calls, as `regprocedure` signatures.
    pub calls: Vec<String>,
}

impl SchemaObjects {
    /// A check that calls a function whose signature uses a table's row type: such a
    /// function is created after the tables, so the check is added after the data too.
    pub fn check_waits_for_functions(&self, o: &TableObject) -> bool {
        o.kind == TableObjectKind::Check
            && o.calls.iter().any(|c| {
                self.routines
                    .iter()
                    .any(|r| r.uses_row_type && &r.signature == c)
            })
    }
}

/// A physical property of a table, set after `CREATE TABLE`.
#[derive(Debug, Clone, Serialize)]
pub struct TableProperty {
    pub table: TableName,
    pub setting: TableSetting,
}

/// What [`TableProperty`] sets, decoded from the catalog's codes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum TableSetting {
    /// A column's `SET STORAGE PLAIN|EXTERNAL|MAIN|EXTENDED`.
    Storage {
        column: String,
        storage: &'static str,
    },
    /// A column's `SET COMPRESSION lz4|pglz`.
    Compression {
        column: String,
        method: &'static str,
    },
    /// A column's `SET STATISTICS n`.
    Statistics { column: String, target: i32 },
    /// A column's `SET (n_distinct=5, …)`, as the server prints its options.
    ColumnOptions { column: String, options: String },
    /// `REPLICA IDENTITY FULL|NOTHING|USING INDEX i`.
    ReplicaIdentity(ReplicaIdentity),
    /// `CLUSTER ON index`.
    Cluster { index: String },
    /// `CREATE STATISTICS …`, as `pg_get_statisticsobjdef` prints it.
    ExtendedStatistics { definition: String },
}

/// `pg_class.relreplident` when not the default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum ReplicaIdentity {
    Full,
    Nothing,
    Index(String),
}

impl TableSetting {
    /// Decodes a row of [`TABLE_PROPERTIES`]: kind, name (column, index or statistics
    /// object) and value.
    fn decode(kind: &str, name: Option<String>, value: Option<String>) -> Option<TableSetting> {
        let name = name.unwrap_or_default();
        let value = value.unwrap_or_default();
        Some(match kind {
            "storage" => TableSetting::Storage {
                column: name,
                storage: match value.as_str() {
                    "p" => "PLAIN",
                    "e" => "EXTERNAL",
                    "m" => "MAIN",
                    _ => "EXTENDED",
                },
            },
            "compression" => TableSetting::Compression {
                column: name,
                method: if value == "l" { "lz4" } else { "pglz" },
            },
            "statistics" => TableSetting::Statistics {
                column: name,
                target: value.parse().unwrap_or(-1),
            },
            "options" => TableSetting::ColumnOptions {
                column: name,
                options: value,
            },
            "replica identity" => TableSetting::ReplicaIdentity(match value.as_str() {
                "f" => ReplicaIdentity::Full,
                "n" => ReplicaIdentity::Nothing,
                _ => ReplicaIdentity::Index(name),
            }),
            "cluster" => TableSetting::Cluster { index: name },
            "extended statistics" => TableSetting::ExtendedStatistics { definition: value },
            _ => return None,
        })
    }

    /// For a column's setting: the column and the `ALTER COLUMN` clause.
    pub fn column_clause(&self) -> Option<(&str, String)> {
        match self {
            TableSetting::Storage { column, storage } => {
                Some((column, format!("SET STORAGE {storage}")))
            }
            TableSetting::Compression { column, method } => {
                Some((column, format!("SET COMPRESSION {method}")))
            }
            TableSetting::Statistics { column, target } => {
                Some((column, format!("SET STATISTICS {target}")))
            }
            TableSetting::ColumnOptions { column, options } => {
                Some((column, format!("SET ({options})")))
            }
            _ => None,
        }
    }

    /// The statement setting it on `table`.
    pub fn sql(&self, table: &TableName) -> String {
        use crate::quote::ident;
        if let Some((column, clause)) = self.column_clause() {
            return format!(
                "ALTER TABLE {} ALTER COLUMN {} {clause}",
                table.sql(),
                ident(column)
            );
        }
        match self {
            TableSetting::ReplicaIdentity(identity) => format!(
                "ALTER TABLE {} REPLICA IDENTITY {}",
                table.sql(),
                match identity {
                    ReplicaIdentity::Full => "FULL".to_string(),
                    ReplicaIdentity::Nothing => "NOTHING".to_string(),
                    ReplicaIdentity::Index(index) => format!("USING INDEX {}", ident(index)),
                }
            ),
            TableSetting::Cluster { index } => {
                format!("ALTER TABLE {} CLUSTER ON {}", table.sql(), ident(index))
            }
            TableSetting::ExtendedStatistics { definition } => definition.clone(),
            _ => String::new(),
        }
    }
}

impl TableObject {
    /// `ALTER TABLE … ADD CONSTRAINT name definition`, for the constraint kinds.
    pub fn add_constraint_sql(&self) -> String {
        self.table.add_constraint_sql(&self.name, &self.definition)
    }
}

/// A sequence to create on its own (not through a `serial` column of a copied table).
#[derive(Debug, Clone, Serialize)]
pub struct Sequence {
    pub name: TableName,
    #[serde(flatten)]
    pub parameters: SequenceParameters,
    /// Whether the source role may read its state.
    pub readable: bool,
    /// `CREATE UNLOGGED SEQUENCE` (PostgreSQL 15 on).
    pub unlogged: bool,
}

/// A view or materialized view of a schema copied whole.
#[derive(Debug, Clone, Serialize)]
pub struct View {
    pub name: TableName,
    pub materialized: bool,
    /// `pg_get_viewdef()`: the query.
    pub query: String,
    /// A materialized view holding data on the source is created `WITH DATA`.
    pub populated: bool,
    /// `reloptions`, e.g. `security_barrier=true`, `check_option=local`.
    pub options: Vec<String>,
    /// The relations the view reads.
    pub reads: Vec<TableName>,
    /// A materialized view's indexes, as `CREATE INDEX` statements.
    pub indexes: Vec<String>,
    /// Its rules and (INSTEAD OF) triggers, as `CREATE RULE` / `CREATE TRIGGER`.
    pub rules_and_triggers: Vec<String>,
    /// The functions it calls, as `regprocedure` signatures.
    pub calls: Vec<String>,
    /// A materialized view's columns with a compression method: (column, method).
    pub compression: Vec<(String, String)>,
}

impl View {
    /// `VIEW` or `MATERIALIZED VIEW`, as DDL names it.
    pub fn kind(&self) -> &'static str {
        if self.materialized {
            "MATERIALIZED VIEW"
        } else {
            "VIEW"
        }
    }

    /// `CREATE [MATERIALIZED] VIEW … AS …`; a materialized view is filled if it was on
    /// the source.
    pub fn create_sql(&self) -> String {
        let with = if self.options.is_empty() {
            String::new()
        } else {
            format!(" WITH ({})", self.options.join(", "))
        };
        let query = self.query.trim_end().trim_end_matches(';');
        let data = match (self.materialized, self.populated) {
            (false, _) => "",
            (true, true) => "\nWITH DATA",
            (true, false) => "\nWITH NO DATA",
        };
        format!(
            "CREATE {} {}{with} AS\n{query}{data}",
            self.kind(),
            self.name.sql()
        )
    }
}

/// How a cast converts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum CastMethod {
    /// `WITH FUNCTION f(args)`: its `regprocedure` signature.
    Function(String),
    /// `WITH INOUT`: through the types' text forms.
    InOut,
    /// `WITHOUT FUNCTION`: binary coercible (only a superuser may declare it).
    Binary,
}

/// A cast of a schema copied whole (from or to one of its types, or through one of its
/// functions).
#[derive(Debug, Clone, Serialize)]
pub struct Cast {
    /// `format_type()` of the source and target types.
    pub source: String,
    pub target: String,
    pub method: CastMethod,
    pub context: CastContext,
    pub comment: Option<String>,
}

/// Where a cast applies by itself (`pg_cast.castcontext`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum CastContext {
    /// `e`: only when written out.
    Explicit,
    /// `a`: `AS ASSIGNMENT`.
    Assignment,
    /// `i`: `AS IMPLICIT`.
    Implicit,
}

impl Cast {
    /// `cast (a AS b)`, for plans and reports.
    pub fn label(&self) -> String {
        format!("cast ({} AS {})", self.source, self.target)
    }

    /// How the target is asked whether it has it.
    pub fn object_ref(&self) -> super::ObjectRef {
        super::ObjectRef::Cast {
            source: self.source.clone(),
            target: self.target.clone(),
        }
    }

    /// `CREATE CAST …` and its comment.
    pub fn create_sql(&self) -> Vec<String> {
        let how = match &self.method {
            CastMethod::Function(f) => format!("WITH FUNCTION {f}"),
            CastMethod::InOut => "WITH INOUT".into(),
            CastMethod::Binary => "WITHOUT FUNCTION".into(),
        };
        let context = match self.context {
            CastContext::Assignment => " AS ASSIGNMENT",
            CastContext::Implicit => " AS IMPLICIT",
            CastContext::Explicit => "",
        };
        let mut sql = vec![format!(
            "CREATE CAST ({} AS {}) {how}{context}",
            self.source, self.target
        )];
        sql.extend(self.comment.as_ref().map(|c| {
            format!(
                "COMMENT ON CAST ({} AS {}) IS {}",
                self.source,
                self.target,
                crate::quote::literal(c)
            )
        }));
        sql
    }
}

/// Which text-search object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum TextSearchKind {
    Dictionary,
    Configuration,
}

impl TextSearchKind {
    /// `DICTIONARY` / `CONFIGURATION`, as in `CREATE TEXT SEARCH …`.
    fn keyword(self) -> &'static str {
        match self {
            TextSearchKind::Dictionary => "DICTIONARY",
            TextSearchKind::Configuration => "CONFIGURATION",
        }
    }

    /// How existence checks and reports name the kind.
    pub fn label(self) -> &'static str {
        match self {
            TextSearchKind::Dictionary => "text search dictionary",
            TextSearchKind::Configuration => "text search configuration",
        }
    }
}

/// A text-search dictionary or configuration of a schema copied whole.
#[derive(Debug, Clone, Serialize)]
pub struct TextSearch {
    pub kind: TextSearchKind,
    pub schema: String,
    pub name: String,
    /// A dictionary's template or a configuration's parser, (schema, name): only a
    /// superuser creates those, so they must be built in (or on the target already).
    pub base: (String, String),
    /// A dictionary's options as the server keeps them (`stopwords = 'english'`).
    pub options: Option<String>,
    /// A configuration's mappings: (token type, its dictionaries in order, SQL).
    pub mappings: Vec<(String, String)>,
    pub comment: Option<String>,
}

impl TextSearch {
    /// `schema.name`, quoted.
    pub fn sql_name(&self) -> String {
        crate::quote::qualified(&self.schema, &self.name)
    }

    /// `text search dictionary public.english_simple`, for plans and reports.
    pub fn label(&self) -> String {
        format!(
            "{} {}",
            self.kind.label(),
            TableName::new(&self.schema, &self.name)
        )
    }

    /// How the target is asked whether it has it.
    pub fn object_ref(&self) -> super::ObjectRef {
        let (schema, name) = (self.schema.clone(), self.name.clone());
        match self.kind {
            TextSearchKind::Dictionary => super::ObjectRef::TextSearchDictionary { schema, name },
            TextSearchKind::Configuration => {
                super::ObjectRef::TextSearchConfiguration { schema, name }
            }
        }
    }

    /// `CREATE TEXT SEARCH …`, a configuration's mappings, and its comment.
    pub fn create_sql(&self) -> Vec<String> {
        let base = crate::quote::qualified(&self.base.0, &self.base.1);
        let mut sql = vec![match self.kind {
            TextSearchKind::Dictionary => format!(
                "CREATE TEXT SEARCH DICTIONARY {} (TEMPLATE = {base}{})",
                self.sql_name(),
                self.options
                    .as_ref()
                    .map(|o| format!(", {o}"))
                    .unwrap_or_default()
            ),
            TextSearchKind::Configuration => format!(
                "CREATE TEXT SEARCH CONFIGURATION {} (PARSER = {base})",
                self.sql_name()
            ),
        }];
        sql.extend(self.mappings.iter().map(|(token, dictionaries)| {
            format!(
                "ALTER TEXT SEARCH CONFIGURATION {} ADD MAPPING FOR {} WITH {dictionaries}",
                self.sql_name(),
                crate::quote::ident(token)
            )
        }));
        sql.extend(self.comment.as_ref().map(|c| {
            format!(
                "COMMENT ON TEXT SEARCH {} {} IS {}",
                self.kind.keyword(),
                self.sql_name(),
                crate::quote::literal(c)
            )
        }));
        sql
    }

    /// `ALTER TEXT SEARCH … OWNER TO role` (`role` quoted).
    pub fn owner_sql(&self, role: &str) -> String {
        format!(
            "ALTER TEXT SEARCH {} {} OWNER TO {role}",
            self.kind.keyword(),
            self.sql_name()
        )
    }
}

/// An operator of a schema copied whole.
#[derive(Debug, Clone, Serialize)]
pub struct Operator {
    /// `schema.op(left,right)`, as `regoperator` prints it.
    pub signature: String,
    pub schema: String,
    pub name: String,
    pub left: Option<String>,
    pub right: Option<String>,
    /// Its function, (schema, name), and the function's `regprocedure` signature.
    pub function: (String, String),
    pub function_signature: String,
    pub commutator: Option<(String, String)>,
    pub negator: Option<(String, String)>,
    pub restrict: Option<(String, String)>,
    pub join: Option<(String, String)>,
    pub hashes: bool,
    pub merges: bool,
    pub comment: Option<String>,
}

impl Operator {
    /// `COMMENT ON OPERATOR schema.op (left, right) IS …`, if it has one.
    pub fn comment_sql(&self) -> Option<String> {
        let arg = |t: &Option<String>| t.clone().unwrap_or_else(|| "NONE".into());
        self.comment.as_ref().map(|c| {
            format!(
                "COMMENT ON OPERATOR {}.{} ({}, {}) IS {}",
                crate::quote::ident(&self.schema),
                self.name,
                arg(&self.left),
                arg(&self.right),
                crate::quote::literal(c)
            )
        })
    }

    /// `CREATE OPERATOR schema.op (FUNCTION = …, LEFTARG = …, …)`.
    pub fn create_sql(&self) -> String {
        use crate::quote::{ident, qualified};
        let op = |(schema, name): &(String, String)| format!("OPERATOR({}.{name})", ident(schema));
        let mut parts = vec![format!(
            "FUNCTION = {}",
            qualified(&self.function.0, &self.function.1)
        )];
        if let Some(t) = &self.left {
            parts.push(format!("LEFTARG = {t}"));
        }
        if let Some(t) = &self.right {
            parts.push(format!("RIGHTARG = {t}"));
        }
        if let Some(c) = &self.commutator {
            parts.push(format!("COMMUTATOR = {}", op(c)));
        }
        if let Some(n) = &self.negator {
            parts.push(format!("NEGATOR = {}", op(n)));
        }
        if let Some(f) = &self.restrict {
            parts.push(format!("RESTRICT = {}", qualified(&f.0, &f.1)));
        }
        if let Some(f) = &self.join {
            parts.push(format!("JOIN = {}", qualified(&f.0, &f.1)));
        }
        if self.hashes {
            parts.push("HASHES".into());
        }
        if self.merges {
            parts.push("MERGES".into());
        }
        format!(
            "CREATE OPERATOR {}.{} ({})",
            ident(&self.schema),
            self.name,
            parts.join(", ")
        )
    }
}

/// A function, procedure or aggregate.
#[derive(Debug, Clone, Serialize)]
pub struct Routine {
    /// `schema.name(argtypes)`, as `regprocedure` prints it: unique, and accepted by
    /// `to_regprocedure()` on the other server.
    pub signature: String,
    pub schema: String,
    pub name: String,
    pub kind: RoutineKind,
    /// `CREATE OR REPLACE …` from `pg_get_functiondef()`; `None` for aggregates.
    pub definition: Option<String>,
    pub language: String,
    /// In a language a non-superuser may create functions in.
    pub trusted_language: bool,
    /// `pg_get_function_identity_arguments()`.
    pub arguments: String,
    pub aggregate: Option<Aggregate>,
    /// Its signature uses a table's or view's row type: created after the tables.
    pub uses_row_type: bool,
    /// The copied tables that need it (a default, check, trigger, index, policy or rule
    /// calls it; a partition's need is its partitioned table's): if it cannot be
    /// created, neither can they. If none does (a function of a schema copied whole), it
    /// is skipped, out loud.
    pub required_by: Vec<TableName>,
    /// The tables and views whose row types its signature uses: it can only be created
    /// where they exist.
    pub row_types: Vec<TableName>,
}

/// What `pg_proc.prokind` says a routine is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum RoutineKind {
    /// `f` (and `w`, a window function, which only C can implement).
    Function,
    /// `p`.
    Procedure,
    /// `a`.
    Aggregate,
}

impl RoutineKind {
    fn from_prokind(code: Option<char>) -> RoutineKind {
        match code {
            Some('a') => RoutineKind::Aggregate,
            Some('p') => RoutineKind::Procedure,
            _ => RoutineKind::Function,
        }
    }

    /// `FUNCTION`, `PROCEDURE`, `AGGREGATE`: how DDL names it.
    pub fn keyword(self) -> &'static str {
        match self {
            RoutineKind::Function => "FUNCTION",
            RoutineKind::Procedure => "PROCEDURE",
            RoutineKind::Aggregate => "AGGREGATE",
        }
    }

    /// `function`, `procedure`, `aggregate`: how plans and reports name it.
    pub fn label(self) -> &'static str {
        match self {
            RoutineKind::Function => "function",
            RoutineKind::Procedure => "procedure",
            RoutineKind::Aggregate => "aggregate",
        }
    }
}

/// What `pg_aggregate.aggkind` says an aggregate is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum AggregateKind {
    /// `n`.
    Normal,
    /// `o`: `f(direct ORDER BY aggregated)`.
    OrderedSet,
    /// `h`: an ordered-set aggregate whose direct arguments are hypothetical rows.
    HypotheticalSet,
}

/// What `CREATE AGGREGATE` needs.
#[derive(Debug, Clone, Serialize)]
pub struct Aggregate {
    pub kind: AggregateKind,
    pub transition: String,
    pub state_type: String,
    pub final_function: Option<String>,
    pub combine_function: Option<String>,
    pub initial_value: Option<String>,
    /// The rest of its options.
    pub more: AggregateOptions,
}

/// The options of `CREATE AGGREGATE` beyond the transition, state type, final and
/// combine functions and initial value, as the catalog holds them.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
#[serde(default)]
pub struct AggregateOptions {
    pub sspace: i32,
    pub finalfunc_extra: bool,
    /// `r` read-only, `s` shareable, `w` read-write.
    pub finalfunc_modify: String,
    pub serialfunc: Option<String>,
    pub deserialfunc: Option<String>,
    pub msfunc: Option<String>,
    pub minvfunc: Option<String>,
    pub mstype: Option<String>,
    pub msspace: i32,
    pub mfinalfunc: Option<String>,
    pub mfinalfunc_extra: bool,
    pub mfinalfunc_modify: String,
    pub minitcond: Option<String>,
    /// `OPERATOR(schema.op)`.
    pub sortop: Option<String>,
    /// `s` safe, `r` restricted, `u` unsafe.
    pub parallel: String,
}

/// An extension the copy needs.
#[derive(Debug, Clone, Serialize)]
pub struct Extension {
    pub name: String,
    pub schema: String,
}

/// A comment: `COMMENT ON <kind> <object> IS '<text>'`.
#[derive(Debug, Clone, Serialize)]
pub struct Comment {
    pub kind: CommentOn,
    pub schema: Option<String>,
    pub name: String,
    /// The column, constraint or trigger name, or a routine's arguments.
    pub detail: Option<String>,
    pub text: String,
}

/// What a comment is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum CommentOn {
    Table,
    Column,
    View,
    MaterializedView,
    Sequence,
    Index,
    /// A table's constraint.
    Constraint,
    Trigger,
    Policy,
    Rule,
    Function,
    Procedure,
    Aggregate,
    Type,
    Domain,
    /// A domain's constraint.
    DomainConstraint,
    Collation,
    Schema,
}

impl CommentOn {
    /// From the kind [`COMMENTS`] names.
    fn decode(kind: &str) -> Option<CommentOn> {
        Some(match kind {
            "TABLE" => CommentOn::Table,
            "COLUMN" => CommentOn::Column,
            "VIEW" => CommentOn::View,
            "MATERIALIZED VIEW" => CommentOn::MaterializedView,
            "SEQUENCE" => CommentOn::Sequence,
            "INDEX" => CommentOn::Index,
            "CONSTRAINT" => CommentOn::Constraint,
            "TRIGGER" => CommentOn::Trigger,
            "POLICY" => CommentOn::Policy,
            "RULE" => CommentOn::Rule,
            "FUNCTION" => CommentOn::Function,
            "PROCEDURE" => CommentOn::Procedure,
            "AGGREGATE" => CommentOn::Aggregate,
            "TYPE" => CommentOn::Type,
            "DOMAIN" => CommentOn::Domain,
            "DOMAIN CONSTRAINT" => CommentOn::DomainConstraint,
            "COLLATION" => CommentOn::Collation,
            "SCHEMA" => CommentOn::Schema,
            _ => return None,
        })
    }

    /// The object kind as `COMMENT ON` takes it (a domain's constraint is a `CONSTRAINT
    /// … ON DOMAIN`).
    pub fn keyword(self) -> &'static str {
        match self {
            CommentOn::Table => "TABLE",
            CommentOn::Column => "COLUMN",
            CommentOn::View => "VIEW",
            CommentOn::MaterializedView => "MATERIALIZED VIEW",
            CommentOn::Sequence => "SEQUENCE",
            CommentOn::Index => "INDEX",
            CommentOn::Constraint | CommentOn::DomainConstraint => "CONSTRAINT",
            CommentOn::Trigger => "TRIGGER",
            CommentOn::Policy => "POLICY",
            CommentOn::Rule => "RULE",
            CommentOn::Function => "FUNCTION",
            CommentOn::Procedure => "PROCEDURE",
            CommentOn::Aggregate => "AGGREGATE",
            CommentOn::Type => "TYPE",
            CommentOn::Domain => "DOMAIN",
            CommentOn::Collation => "COLLATION",
            CommentOn::Schema => "SCHEMA",
        }
    }

    /// On a table or one of its parts: the comment waits for that table.
    pub fn on_table(self) -> bool {
        matches!(
            self,
            CommentOn::Table
                | CommentOn::Column
                | CommentOn::Constraint
                | CommentOn::Trigger
                | CommentOn::Policy
                | CommentOn::Rule
        )
    }
}

/// A privilege granted on the source: `GRANT <privilege> ON <kind> <object> TO <grantee>`.
#[derive(Debug, Clone, Serialize)]
pub struct Grant {
    /// `TABLE`, `SEQUENCE`, `FUNCTION`, `PROCEDURE` or `SCHEMA`.
    pub kind: String,
    pub schema: Option<String>,
    pub name: String,
    /// A routine's identity arguments.
    pub arguments: Option<String>,
    /// Empty for a row that only says PUBLIC's default EXECUTE was revoked.
    pub privilege: String,
    /// `None` for PUBLIC.
    pub grantee: Option<String>,
    pub grantable: bool,
    /// The routine's ACL took EXECUTE away from PUBLIC.
    pub revoke_public: bool,
}

/// A collation created with `CREATE COLLATION`.
#[derive(Debug, Clone, Serialize)]
pub struct Collation {
    pub schema: String,
    pub name: String,
    /// ICU rather than libc (or the database default, which is not created).
    pub icu: bool,
    pub deterministic: bool,
    pub lc_collate: Option<String>,
    pub lc_ctype: Option<String>,
    pub icu_locale: Option<String>,
}

/// A row-level security policy.
#[derive(Debug, Clone, Serialize)]
pub struct Policy {
    pub table: TableName,
    pub name: String,
    pub permissive: bool,
    /// `r` SELECT, `a` INSERT, `w` UPDATE, `d` DELETE, `*` ALL.
    pub command: char,
    /// Role names; `None` is PUBLIC.
    pub roles: Vec<Option<String>>,
    pub using: Option<String>,
    pub with_check: Option<String>,
}

/// Everything [`describe_objects`] reads.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SchemaObjects {
    /// Per chosen partitioned table: its partition key...
    pub partition_keys: BTreeMap<TableName, String>,
    /// ...and its partitions, parents before children.
    pub partitions: BTreeMap<TableName, Vec<Partition>>,
    /// Constraints, indexes, triggers, rules of the chosen tables and their partitions.
    pub table_objects: Vec<TableObject>,
    /// Physical properties of the chosen tables and their partitions.
    pub table_properties: Vec<TableProperty>,
    pub sequences: Vec<Sequence>,
    pub views: Vec<View>,
    pub routines: Vec<Routine>,
    pub operators: Vec<Operator>,
    /// Text-search dictionaries, then configurations, of the schemas copied whole.
    pub text_search: Vec<TextSearch>,
    /// Casts of the schemas copied whole.
    pub casts: Vec<Cast>,
    pub extensions: Vec<Extension>,
    pub comments: Vec<Comment>,
    pub grants: Vec<Grant>,
    /// Tables with row-level security settings: (table, enabled, forced on the owner).
    pub row_security: Vec<(TableName, bool, bool)>,
    pub policies: Vec<Policy>,
    pub collations: Vec<Collation>,
    /// Objects pgbarge does not recreate (see [`NOT_RECREATED`]): (kind, name, why).
    pub not_recreated: Vec<(String, String, String)>,
}

fn catalog_error(what: &'static str) -> impl FnOnce(tokio_postgres::Error) -> Error {
    move |e| Error::postgres(Kind::Catalog, Side::Source, what, e)
}

/// Every non-system schema on the source (what `--all` copies whole).
pub async fn list_schemas(client: &Client, side: Side) -> Result<Vec<String>> {
    let rows = client
        .query(SCHEMAS, &[])
        .await
        .map_err(move |e| Error::postgres(Kind::Catalog, side, "listing schemas", e))?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Reads what the chosen tables (`tables`: oid and name) need besides their columns, and
/// everything in `whole_schemas`. Two round trips: partitions first (their objects are
/// read with the tables'), then the rest, pipelined.
pub async fn describe_objects(
    client: &Client,
    tables: &[(u32, TableName)],
    whole_schemas: &[String],
) -> Result<SchemaObjects> {
    let chosen: Vec<u32> = tables.iter().map(|t| t.0).collect();
    let names: BTreeMap<u32, TableName> = tables.iter().cloned().collect();
    let (partition_rows, key_rows) = tokio::try_join!(
        async {
            client
                .query_typed(PARTITIONS, &[(&chosen, Type::OID_ARRAY)])
                .await
                .map_err(catalog_error("reading partitions"))
        },
        async {
            client
                .query_typed(PARTITION_KEYS, &[(&chosen, Type::OID_ARRAY)])
                .await
                .map_err(catalog_error("reading partition keys"))
        }
    )?;
    let mut objects = SchemaObjects::default();
    for r in &key_rows {
        if let Some(name) = names.get(&r.get::<_, u32>(0)) {
            objects.partition_keys.insert(name.clone(), r.get(1));
        }
    }
    let mut oids = chosen.clone();
    // The chosen table each relation belongs to: itself, or a partition's root.
    let mut table_of = names.clone();
    for r in &partition_rows {
        let Some(root) = names.get(&r.get::<_, u32>(0)) else {
            continue;
        };
        let p = Partition {
            oid: r.get(1),
            name: TableName::new(r.get::<_, String>(2), r.get::<_, String>(3)),
            parent: TableName::new(r.get::<_, String>(4), r.get::<_, String>(5)),
            bound: r.get(6),
            partition_key: r.get(7),
            options: r.get(8),
            columns: r
                .get::<_, Vec<String>>(9)
                .iter()
                .filter_map(|c| {
                    let mut f = c.splitn(4, '\t');
                    Some(PartitionColumn {
                        name: f.next()?.to_string(),
                        ty: f.next()?.to_string(),
                        not_null: f.next()? == "true",
                        default: f.next().filter(|d| !d.is_empty()).map(str::to_string),
                    })
                })
                .collect(),
            parent_not_null: r.get(10),
            parent_columns: r.get(11),
            parent_generated: r.get(12),
            defaults: r
                .get::<_, Vec<String>>(13)
                .iter()
                .filter_map(|d| {
                    let (column, expr) = d.split_once('\t')?;
                    Some((column.to_string(), expr.to_string()))
                })
                .collect(),
            pages: r.get(14),
            bytes: r.get(15),
            constraint: r.get(16),
        };
        oids.push(p.oid);
        table_of.insert(p.oid, root.clone());
        objects.partitions.entry(root.clone()).or_default().push(p);
    }

    let by_oids = |sql: &'static str, what: &'static str| {
        let oids = &oids;
        async move {
            client
                .query_typed(sql, &[(oids, Type::OID_ARRAY)])
                .await
                .map_err(catalog_error(what))
        }
    };
    let params = |sql: &'static str, what: &'static str| {
        let oids = &oids;
        async move {
            client
                .query_typed(
                    sql,
                    &[(oids, Type::OID_ARRAY), (&whole_schemas, Type::TEXT_ARRAY)],
                )
                .await
                .map_err(catalog_error(what))
        }
    };
    let (
        object_rows,
        sequence_rows,
        view_rows,
        routine_rows,
        operator_rows,
        text_search_rows,
        cast_rows,
        extension_rows,
        comment_rows,
        grant_rows,
        collation_rows,
        security_rows,
        property_rows,
        not_recreated_rows,
    ) = tokio::try_join!(
        by_oids(TABLE_OBJECTS, "reading constraints, indexes and triggers"),
        params(SEQUENCES, "reading sequences"),
        params(VIEWS, "reading views"),
        params(FUNCTIONS, "reading functions"),
        params(OPERATORS, "reading operators"),
        params(
            TEXT_SEARCH,
            "reading text search dictionaries and configurations"
        ),
        params(CASTS, "reading casts"),
        params(EXTENSIONS, "reading extensions"),
        params(COMMENTS, "reading comments"),
        params(GRANTS, "reading privileges"),
        params(COLLATIONS, "reading collations"),
        by_oids(ROW_SECURITY, "reading row-level security policies"),
        by_oids(TABLE_PROPERTIES, "reading storage and statistics settings"),
        params(NOT_RECREATED, "reading objects pgbarge does not recreate"),
    )?;
    objects.casts = cast_rows
        .iter()
        .map(|r| Cast {
            source: r.get(0),
            target: r.get(1),
            method: match (r.get::<_, &str>(2), r.get::<_, Option<String>>(3)) {
                ("f", Some(f)) => CastMethod::Function(f),
                ("i", _) => CastMethod::InOut,
                _ => CastMethod::Binary,
            },
            context: match super::queries::first_char(r.get(4)) {
                Some('a') => CastContext::Assignment,
                Some('i') => CastContext::Implicit,
                _ => CastContext::Explicit,
            },
            comment: r.get(5),
        })
        .collect();
    objects.text_search = text_search_rows
        .iter()
        .map(|r| TextSearch {
            kind: if r.get::<_, &str>(0) == "dictionary" {
                TextSearchKind::Dictionary
            } else {
                TextSearchKind::Configuration
            },
            schema: r.get(1),
            name: r.get(2),
            base: (r.get(3), r.get(4)),
            options: r.get(5),
            mappings: r
                .get::<_, Vec<String>>(6)
                .iter()
                .filter_map(|m| m.split_once('\t'))
                .map(|(token, dictionaries)| (token.to_string(), dictionaries.to_string()))
                .collect(),
            comment: r.get(7),
        })
        .collect();
    objects.not_recreated = not_recreated_rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();

    let rel_names: BTreeMap<u32, TableName> = names
        .into_iter()
        .chain(
            objects
                .partitions
                .values()
                .flatten()
                .map(|p| (p.oid, p.name.clone())),
        )
        .collect();

    objects.table_properties = property_rows
        .iter()
        .filter_map(|r| {
            Some(TableProperty {
                table: rel_names.get(&r.get::<_, u32>(0))?.clone(),
                setting: TableSetting::decode(r.get(1), r.get(2), r.get(3))?,
            })
        })
        .collect();
    objects.collations = collation_rows
        .iter()
        .map(|r| Collation {
            schema: r.get(0),
            name: r.get(1),
            icu: super::queries::first_char(r.get(2)) == Some('i'),
            deterministic: r.get(3),
            lc_collate: r.get(4),
            lc_ctype: r.get(5),
            icu_locale: r.get(6),
        })
        .collect();
    for r in &security_rows {
        let Some(table) = rel_names.get(&r.get::<_, u32>(0)) else {
            continue;
        };
        match r.get::<_, Option<String>>(3) {
            None => objects.row_security.push((
                table.clone(),
                r.get::<_, Option<bool>>(1).unwrap_or(false),
                r.get::<_, Option<bool>>(2).unwrap_or(false),
            )),
            Some(name) => objects.policies.push(Policy {
                table: table.clone(),
                name,
                permissive: r.get::<_, Option<bool>>(4).unwrap_or(true),
                command: super::queries::first_char(r.get(5)).unwrap_or('*'),
                roles: r
                    .get::<_, Option<Vec<Option<String>>>>(6)
                    .unwrap_or_default(),
                using: r.get(7),
                with_check: r.get(8),
            }),
        }
    }
    objects.grants = grant_rows
        .iter()
        .map(|r| Grant {
            kind: r.get(0),
            schema: r.get(1),
            name: r.get(2),
            arguments: r.get(3),
            privilege: r.get(4),
            grantee: r.get(5),
            grantable: r.get(6),
            revoke_public: r.get(7),
        })
        .collect();
    for r in &object_rows {
        // Foreign keys of tables not chosen carry their table's name.
        let table = match (
            rel_names.get(&r.get::<_, u32>(0)),
            r.get::<_, Option<String>>(8),
            r.get::<_, Option<String>>(9),
        ) {
            (Some(t), _, _) => t.clone(),
            (None, Some(schema), Some(name)) => TableName::new(schema, name),
            _ => continue,
        };
        let object: String = r.get(1);
        let sub: String = r.get(2);
        let kind = match (object.as_str(), sub.as_str()) {
            ("constraint", "c") => TableObjectKind::Check,
            ("constraint", "u") => TableObjectKind::Unique,
            ("constraint", "p") => TableObjectKind::PrimaryKey,
            ("constraint", "x") => TableObjectKind::Exclusion,
            ("constraint", _) => TableObjectKind::ForeignKey,
            ("index", _) => TableObjectKind::Index,
            ("trigger", _) => TableObjectKind::Trigger,
            _ => TableObjectKind::Rule,
        };
        let references = match (r.get::<_, Option<String>>(5), r.get::<_, Option<String>>(6)) {
            (Some(s), Some(n)) if kind == TableObjectKind::ForeignKey => Some(TableName::new(s, n)),
            _ => None,
        };
        objects.table_objects.push(TableObject {
            kind,
            table,
            name: r.get(3),
            definition: r.get(4),
            references,
            validated: r.get(7),
            enabled: if kind == TableObjectKind::Trigger {
                super::TriggerState::from_code(sub.chars().next())
            } else {
                super::TriggerState::Enabled
            },
            calls: r.get(10),
        });
    }
    objects.sequences = sequence_rows
        .iter()
        .map(|r| Sequence {
            name: TableName::new(r.get::<_, String>(1), r.get::<_, String>(2)),
            parameters: SequenceParameters {
                data_type: r.get(3),
                start: r.get(4),
                increment: r.get(5),
                min: r.get(6),
                max: r.get(7),
                cache: r.get(8),
                cycle: r.get(9),
            },
            readable: r.get(10),
            unlogged: r.get(11),
        })
        .collect();
    objects.views = view_rows
        .iter()
        .map(|r| {
            let schemas: Vec<String> = r.get(7);
            let names: Vec<String> = r.get(8);
            let mut reads: Vec<TableName> = schemas
                .into_iter()
                .zip(names)
                .map(|(s, n)| TableName::new(s, n))
                .collect();
            reads.dedup();
            View {
                name: TableName::new(r.get::<_, String>(1), r.get::<_, String>(2)),
                materialized: r.get(3),
                query: r.get(4),
                populated: r.get(5),
                options: r.get::<_, Option<Vec<String>>>(6).unwrap_or_default(),
                reads,
                indexes: r.get(9),
                rules_and_triggers: r.get(10),
                calls: r.get(11),
                compression: r
                    .get::<_, Vec<String>>(12)
                    .iter()
                    .filter_map(|c| c.split_once('\t'))
                    .map(|(column, method)| (column.to_string(), method.to_string()))
                    .collect(),
            }
        })
        .collect();
    let pair = |v: Option<Vec<String>>| match v.as_deref() {
        Some([schema, name]) => Some((schema.clone(), name.clone())),
        _ => None,
    };
    objects.operators = operator_rows
        .iter()
        .map(|r| Operator {
            signature: r.get(0),
            schema: r.get(1),
            name: r.get(2),
            left: r.get(3),
            right: r.get(4),
            function: (r.get(5), r.get(6)),
            function_signature: r.get(7),
            commutator: pair(r.get(8)),
            negator: pair(r.get(9)),
            restrict: pair(r.get(10)),
            join: pair(r.get(11)),
            hashes: r.get(12),
            merges: r.get(13),
            comment: r.get(14),
        })
        .collect();
    objects.routines = routine_rows
        .iter()
        .map(|r| {
            let kind = RoutineKind::from_prokind(super::queries::first_char(r.get(4)));
            let aggregate = (kind == RoutineKind::Aggregate).then(|| Aggregate {
                kind: match super::queries::first_char(r.get(9)) {
                    Some('o') => AggregateKind::OrderedSet,
                    Some('h') => AggregateKind::HypotheticalSet,
                    _ => AggregateKind::Normal,
                },
                transition: r.get::<_, Option<String>>(10).unwrap_or_default(),
                state_type: r.get::<_, Option<String>>(11).unwrap_or_default(),
                final_function: r.get(12),
                combine_function: r.get(13),
                initial_value: r.get(14),
                more: r
                    .get::<_, Option<String>>(15)
                    .and_then(|j| serde_json::from_str(&j).ok())
                    .unwrap_or_default(),
            });
            Routine {
                signature: r.get(3),
                schema: r.get(1),
                name: r.get(2),
                kind,
                definition: r.get(5),
                language: r.get(6),
                trusted_language: r.get(7),
                arguments: r.get(8),
                aggregate,
                uses_row_type: r.get(16),
                required_by: {
                    let mut by: Vec<TableName> = r
                        .get::<_, Vec<u32>>(17)
                        .iter()
                        .filter_map(|oid| table_of.get(oid).cloned())
                        .collect();
                    by.sort();
                    by.dedup();
                    by
                },
                row_types: r
                    .get::<_, Vec<String>>(18)
                    .iter()
                    .filter_map(|k| k.split_once('\t'))
                    .map(|(schema, name)| TableName::new(schema, name))
                    .collect(),
            }
        })
        .collect();
    objects.extensions = extension_rows
        .iter()
        .map(|r| Extension {
            name: r.get(0),
            schema: r.get(1),
        })
        .collect();
    objects.comments = comment_rows
        .iter()
        .filter_map(|r| {
            Some(Comment {
                kind: CommentOn::decode(r.get(0))?,
                schema: r.get(1),
                name: r.get(2),
                detail: r.get(3),
                text: r.get(4),
            })
        })
        .collect();
    Ok(objects)
}

/// Extensions the server offers, with whether a non-superuser may create them (trusted).
pub async fn available_extensions(client: &Client, side: Side) -> Result<BTreeMap<String, bool>> {
    let rows = client
        .query(AVAILABLE_EXTENSIONS, &[])
        .await
        .map_err(|e| Error::postgres(Kind::Catalog, side, "listing available extensions", e))?;
    Ok(rows
        .iter()
        .map(|r| (r.get(0), r.get::<_, Option<bool>>(1).unwrap_or(false)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_settings_decode_the_catalog_codes() {
        let t = TableName::new("s", "t");
        let setting = |kind: &str, name: &str, value: &str| {
            TableSetting::decode(kind, Some(name.into()), Some(value.into()))
                .expect("a known kind")
                .sql(&t)
        };
        assert_eq!(
            setting("storage", "body", "e"),
            "ALTER TABLE \"s\".\"t\" ALTER COLUMN \"body\" SET STORAGE EXTERNAL"
        );
        assert_eq!(
            setting("compression", "body", "l"),
            "ALTER TABLE \"s\".\"t\" ALTER COLUMN \"body\" SET COMPRESSION lz4"
        );
        assert_eq!(
            setting("replica identity", "", "f"),
            "ALTER TABLE \"s\".\"t\" REPLICA IDENTITY FULL"
        );
        assert_eq!(
            setting("replica identity", "t_key", "i"),
            "ALTER TABLE \"s\".\"t\" REPLICA IDENTITY USING INDEX \"t_key\""
        );
        assert!(TableSetting::decode("something new", None, None).is_none());
    }
}
