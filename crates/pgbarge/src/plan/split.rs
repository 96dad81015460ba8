//! How many streams load at once, and how a big table (or a partitioned table's leaves)
//! is split into parts that load into staging tables.

use super::ddl::TableNameDdl;
use super::table::PARTITIONED_NOTE;
use super::{
    Action, LeafLoad, Part, PlanOptions, TablePlan, DEFAULT_PART_SIZE, DEFAULT_SPLIT_ABOVE,
};
use crate::catalog::{Column, Partition, TableDetail, TableKind, TableName};
use crate::quote::{ident, literal};

/// Streams chosen by default: at least this many — over a real network each stream is
/// limited by round trips and TCP windows, not by cores...
const MIN_DEFAULT_JOBS: usize = 4;
/// ...and no more than this many, however many cores (more rarely helps one target).
const MAX_DEFAULT_JOBS: usize = 8;

/// Tables this large share a stream well; used to choose the default number of jobs.
const MIN_PART_BYTES: u64 = 16 << 20;

/// Parts at most per table: beyond this the per-part overhead (a transaction, a ledger
/// row, a TID range scan's start) stops being negligible.
const MAX_PARTS: u64 = 10_000;

/// As many streams as the machine has cores, within [`MIN_DEFAULT_JOBS`] and
/// [`MAX_DEFAULT_JOBS`], but no more than there is work to share: one per table, or more
/// when a table is big enough to split.
pub(super) fn default_jobs(tables: &[TablePlan]) -> usize {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(MIN_DEFAULT_JOBS, MAX_DEFAULT_JOBS);
    let splittable: usize = tables
        .iter()
        .map(|t| (t.estimated_bytes.max(0) as u64 / MIN_PART_BYTES).max(1) as usize)
        .sum();
    cores.min(splittable).max(1)
}

/// What decides whether and how tables are split.
pub(super) struct Sizes {
    split_above: u64,
    part_size: u64,
    jobs: usize,
    /// The source's server version.
    version: i32,
}

impl Sizes {
    /// The sizes `options` choose, for `jobs` streams from a source at server `version`.
    pub(super) fn new(options: &PlanOptions, jobs: usize, version: i32) -> Sizes {
        let split_above = options.split_above.unwrap_or(DEFAULT_SPLIT_ABOVE);
        // Parts of the chosen size, or half a lower threshold (so a table just above it
        // still gets two parts).
        let part_size = options
            .part_size
            .unwrap_or(DEFAULT_PART_SIZE)
            .min((split_above / 2).max(1))
            .max(1);
        Sizes {
            split_above,
            part_size,
            jobs,
            version,
        }
    }
}

/// Splits `table` into block ranges of about `part_size` bytes when it is worth it and
/// safe: a table pgbarge creates (so parts can load into a staging table that is renamed
/// atomically), a plain heap (not a partitioned parent), a source that scans TID ranges
/// efficiently (PostgreSQL 14+), and at least `split_above` bytes. Parts load at once
/// when there are several jobs, and each commits on its own, so even with one job a crash
/// loses at most the part in flight. The number of parts is a multiple of `jobs`: 9
/// parts over 4 streams would end with one part loading alone, at a single stream's
/// speed (measured over the simulated link: 35% slower than 8 parts).
pub(super) fn split(table: &mut TablePlan, src: &TableDetail, sizes: &Sizes) {
    let bytes = src.table.total_bytes.max(0) as u64;
    let pages = src.table.pages;
    if bytes < sizes.split_above.max(1) || pages < 2 {
        return;
    }
    let why_not = if !src.inherits.is_empty() {
        Some("not split: it inherits from another table, which must exist before it")
    } else if table.action != Action::Create {
        Some("not split: loading an existing table stays one transaction, so other sessions never see it half-loaded")
    } else if src.table.kind != TableKind::Regular {
        Some("not split: a partitioned table is read through its parent in one stream")
    } else if sizes.version < 140_000 {
        Some("not split: the source is older than PostgreSQL 14 (no TID range scans)")
    } else {
        None
    };
    if let Some(why) = why_not {
        table.notes.push(why.to_string());
        return;
    }
    table.parts = block_ranges(bytes, pages, sizes.part_size, sizes.jobs);
    table.staging = Some(staging_name(&table.target, src.table.oid));
}

/// About `bytes / part_size` ranges of `pages` blocks, at least 2, a multiple of `jobs`.
fn block_ranges(bytes: u64, pages: i64, part_size: u64, jobs: usize) -> Vec<Part> {
    let jobs = jobs.max(1) as u64;
    let count = bytes
        .div_ceil(part_size.max(1))
        .div_ceil(jobs)
        .saturating_mul(jobs)
        .clamp(2, MAX_PARTS)
        .min(pages.max(1) as u64) as usize;
    let per = (pages + count as i64 - 1) / count as i64;
    (0..count)
        .map(|i| Part {
            index: i,
            first_block: i as i64 * per,
            end_block: (i + 1 < count).then_some((i as i64 + 1) * per),
        })
        .collect()
}

/// A staging table's name for source table `oid`: short, unique per source table, and
/// clearly ours if a crash ever leaves it behind.
fn staging_name(table: &TableName, oid: u32) -> TableName {
    let prefix: String = table.name.chars().take(30).collect();
    TableName::new(&table.schema, format!("_pgbarge_{oid}_{prefix}"))
}

/// The comment that marks a staging table pgbarge created: with its `_pgbarge_` name
/// and its owner, what a later run or `clean` checks before it drops one.
pub const STAGING_MARKER: &str = "pgbarge staging table";

/// Statements marking `staging` as pgbarge's (for `clean` and a later run's leftover
/// check), run where it is created...
pub fn staging_marker_sql(staging: &TableName) -> String {
    format!(
        "COMMENT ON TABLE {} IS {}",
        staging.sql(),
        literal(STAGING_MARKER)
    )
}

/// ...and its removal, run where it takes the real name.
pub fn staging_unmark_sql(staging: &TableName) -> String {
    format!("COMMENT ON TABLE {} IS NULL", staging.sql())
}

/// Drops `staging` if it is a leftover of an earlier run that was never resumed nor
/// cleaned (its record is gone, or it ran without one) — only when the catalog says it
/// is pgbarge's (owned by the connecting role, marked): a table of that name that is not
/// is left alone, and creating the staging table then fails on it.
pub fn drop_leftover_staging_sql(staging: &TableName) -> String {
    let check = format!(
        "SELECT FROM pg_catalog.pg_class c WHERE c.oid = pg_catalog.to_regclass({}) \
           AND c.relowner = (SELECT r.oid FROM pg_catalog.pg_roles r \
                             WHERE r.rolname = CURRENT_USER) \
           AND pg_catalog.obj_description(c.oid, 'pg_class') = {}",
        literal(&staging.sql()),
        literal(STAGING_MARKER)
    );
    let body = format!(
        "BEGIN IF EXISTS ({check}) THEN DROP TABLE {}; END IF; END",
        staging.sql()
    );
    format!("DO {}", crate::quote::dollar(&body))
}

/// The name of the CHECK a staging leaf carries until it is attached.
const LEAF_BOUND: &str = "_pgbarge_bound";

/// Loads the leaves of a big partitioned table pgbarge creates at once, each into a
/// staging table of its own (see [`TablePlan::leaf_loads`]), big leaves in block ranges
/// as [`split`] does for tables. A table created with others (a replace group) keeps
/// one transaction.
pub(super) fn split_leaves(
    table: &mut TablePlan,
    src: &TableDetail,
    tree: &[Partition],
    sizes: &Sizes,
) {
    let bytes = src.table.total_bytes.max(0) as u64;
    if bytes < sizes.split_above.max(1) || table.leaves.is_empty() {
        return;
    }
    if table.action != Action::Create {
        table.notes.push(
            "leaves loaded one after another: loading an existing table stays one transaction"
                .into(),
        );
        return;
    }
    for leaf in tree.iter().filter(|p| table.leaves.contains(&p.name)) {
        let staging = staging_name(&leaf.name, leaf.oid);
        let leaf_bytes = leaf.bytes.max(0) as u64;
        let parts =
            if sizes.version >= 140_000 && leaf_bytes >= sizes.split_above && leaf.pages >= 2 {
                block_ranges(leaf_bytes, leaf.pages, sizes.part_size, 1)
            } else {
                Vec::new()
            };
        table.leaf_loads.push(LeafLoad {
            create: leaf_staging_sql(leaf, &staging, &src.columns),
            attach: vec![
                staging_unmark_sql(&staging),
                format!(
                    "ALTER TABLE {} RENAME TO {}",
                    staging.sql(),
                    ident(&leaf.name.name)
                ),
                format!(
                    "ALTER TABLE {} ATTACH PARTITION {} {}",
                    leaf.parent.sql(),
                    leaf.name.sql(),
                    leaf.bound
                ),
            ]
            .into_iter()
            .chain(bound_check(leaf).map(|_| leaf.name.drop_constraint_sql(LEAF_BOUND)))
            .collect(),
            name: leaf.name.clone(),
            staging,
            parts,
            estimated_bytes: leaf.bytes,
        });
    }
    // This says more than the note of how partitions are loaded.
    table.notes.retain(|n| !n.starts_with(PARTITIONED_NOTE));
    table.notes.push(format!(
        "{PARTITIONED_NOTE} its {} leaves load at once, each into a table of its own that \
         is attached at the end",
        table.leaf_loads.len()
    ));
}

/// The CHECK a staging leaf carries: its partition constraint, unless that names the
/// source's objects (a hash partition's checks the parent's oid).
fn bound_check(leaf: &Partition) -> Option<&str> {
    leaf.constraint
        .as_deref()
        .filter(|c| !c.contains("satisfies_hash_partition"))
}

/// `CREATE TABLE` of `leaf`'s staging table: its columns in its own order with the
/// table's types, collations and generation expressions, its own defaults and NOT NULLs
/// (identity columns are plain: the partitioned table's identity covers them once
/// attached), its storage options and its partition constraint.
fn leaf_staging_sql(leaf: &Partition, staging: &TableName, columns: &[Column]) -> String {
    let mut defs: Vec<String> = leaf
        .columns
        .iter()
        .map(|c| {
            let mut def = format!("{} {}", ident(&c.name), c.ty);
            let table_column = columns.iter().find(|t| t.name == c.name);
            if let Some(coll) = table_column.and_then(|t| t.collation.as_ref()) {
                def.push_str(&format!(" COLLATE {coll}"));
            }
            match table_column {
                Some(Column {
                    default: Some(d),
                    generated: true,
                    ..
                }) => def.push_str(&format!(" GENERATED ALWAYS AS ({}) STORED", d.expr)),
                _ => {
                    if let Some((_, d)) = leaf.defaults.iter().find(|(n, _)| n == &c.name) {
                        def.push_str(&format!(" DEFAULT {d}"));
                    }
                }
            }
            if c.not_null {
                def.push_str(" NOT NULL");
            }
            def
        })
        .collect();
    if let Some(check) = bound_check(leaf) {
        defs.push(format!("CONSTRAINT {} CHECK ({check})", ident(LEAF_BOUND)));
    }
    let with = if leaf.options.is_empty() {
        String::new()
    } else {
        format!(" WITH ({})", leaf.options.join(", "))
    };
    format!(
        "CREATE TABLE {} (\n    {}\n){with}",
        staging.sql(),
        defs.join(",\n    ")
    )
}
