//! The queries [`describe_objects`](super::describe_objects) sends, set-based over the
//! chosen tables' oids (`$1`) and the schemas copied whole (`$2`).

/// Partitions of the given partitioned tables, all levels, parents before children.
pub(super) const PARTITIONS: &str = "
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
pub(super) const PARTITION_KEYS: &str = "
SELECT c.oid, pg_catalog.pg_get_partkeydef(c.oid)
FROM pg_catalog.pg_class c WHERE c.oid = ANY($1) AND c.relkind = 'p'";

/// Constraints (other than primary keys and NOT NULL), secondary indexes, triggers and
/// rules of the given tables. Objects a partition inherits from its parent (cloned
/// constraints and triggers, indexes attached to a parent index) are left out: creating
/// them on the parent creates them on the partitions.
pub(super) const TABLE_OBJECTS: &str = "
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
pub(super) const COLLATIONS: &str = "
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
pub(super) const TABLE_PROPERTIES: &str = "
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
pub(super) const ROW_SECURITY: &str = "
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
pub(super) const SEQUENCES: &str = "
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
pub(super) const VIEWS: &str = "
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

/// Casts from or to a type of the schemas copied whole, or through one of their
/// functions (not an extension's, not built in).
pub(super) const CASTS: &str = "
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

/// Operators of the schemas copied whole (not an extension's), with what
/// `CREATE OPERATOR` takes. Names of functions and operators come as (schema, name).
pub(super) const OPERATORS: &str = "
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
pub(super) const FUNCTIONS: &str = "
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
pub(super) const EXTENSIONS: &str = "
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
pub(super) const COMMENTS: &str = "
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
pub(super) const GRANTS: &str = "
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
pub(super) const TEXT_SEARCH: &str = "
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

/// What the copy would leave behind without a word: kinds of objects pgbarge does not
/// recreate. Database-wide ones (event triggers, publications, foreign servers and
/// wrappers, access methods) when a schema is copied whole (`--all`, `app.*`); foreign
/// tables, operator classes and families, text-search parsers and templates in those
/// schemas; and column-level privileges of the chosen tables.
pub(super) const NOT_RECREATED: &str = "
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

/// Every non-system schema: what `--all` copies whole.
pub(super) const SCHEMAS: &str = "
SELECT n.nspname FROM pg_catalog.pg_namespace n
WHERE n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend e
                  WHERE e.classid = 'pg_catalog.pg_namespace'::regclass AND e.objid = n.oid
                    AND e.deptype = 'e')
ORDER BY 1";

/// Extensions the target could install, and whether a non-superuser may.
pub(super) const AVAILABLE_EXTENSIONS: &str = "
SELECT a.name, bool_or(v.trusted)
FROM pg_catalog.pg_available_extensions a
JOIN pg_catalog.pg_available_extension_versions v ON v.name = a.name
GROUP BY a.name";
