//! Incremental sync: which rows differ between a source table and its copy on the
//! target, found without moving the rows, and the statements that repair them.
//!
//! Every row is put in a bucket by a 64-bit hash of its key (of the whole row, for a table
//! without a key): the low `b` bits of that hash. Hash buckets split evenly on any key
//! type — integers, text, uuid, composite — and mean the same on both servers, so no
//! bounds travel, whatever the collations. Each server sums, per bucket, a hash of every
//! row's text ([`crate::rowhash`]); only the buckets whose sums differ are split again,
//! four bits finer, until a bucket holds a few rows; then both sides list the rows of the
//! differing buckets as (key hash, row hash) pairs, and only the rows that differ are
//! read in full. Each level is one query per server; its answer is packed into one
//! `bytea` (12 bytes a bucket, 16 a row).
//!
//! The ledger keeps the source table's change counter as each sync read it. When it has
//! not moved since, the table is most likely unchanged, and the whole table as one
//! bucket — one sum per server, what `verify` costs — proves it; the buckets come only
//! if it did change after all (the target may have).
//!
//! With `--since COLUMN`, rows are not hashed whole: keys are compared the same way (to
//! find deletes and rows missing on the target), and the source's rows written since the
//! last sync move — those past the watermark, and every row whose writing transaction
//! the last sync's snapshot could not see (a transaction still open then may commit rows
//! whose column lies below the watermark; they are not missed).

use std::collections::BTreeMap;

use serde::Serialize;
use tokio_postgres::Client;

use crate::catalog::TableName;
use crate::error::{Error, Kind, Result, Side};
use crate::ledger::Store;
use crate::plan::SyncSpec;
use crate::quote::{ident, ident_list, literal};
use crate::rowhash::{key_expr, Hashing};

/// Rows a bucket holds on average at the first level, which returns about rows / this
/// many buckets (12 bytes each): many enough that a few thousand changes leave most
/// buckets equal, so the next level rehashes only a few percent of the rows; few enough
/// that their hashing and sending costs little beside the rows' (16,384 buckets, 196 KB,
/// for a million rows).
const FIRST_LEVEL_ROWS: f64 = 64.0;
/// Bits a differing bucket is split into at each further level (16 sub-buckets).
const STEP_BITS: u32 = 4;
/// A bucket this small is listed row by row rather than split again: listing 16 rows
/// costs about what hashing 16 sub-buckets does, and saves a scan.
const LEAF_ROWS: f64 = 16.0;
/// Buckets use at most this many bits of the hash (they are sent as `int4`).
const MAX_BITS: u32 = 30;
/// The bitmap a level filters by covers at most this many bits of the hash (8 KiB);
/// finer levels also check the bucket against an array.
const BITMAP_BITS: u32 = 16;
/// When the differing buckets hold more rows than this, the table is merged whole
/// instead: listing every row's hashes (16 bytes each, on both sides) and naming each
/// row to move in the statements would cost more, in memory and statement size, than
/// moving the rows.
const RELOAD_ROWS: f64 = 500_000.0;
/// ...and when a level would return more buckets than this (12 bytes each).
const RELOAD_BUCKETS: f64 = 2_000_000.0;

/// What a sync found and did for one table, for the report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SyncStats {
    /// Rows on the source (in the run's snapshot) and on the target, before the repair.
    pub source_rows: u64,
    pub target_rows: u64,
    /// Buckets hashed on each server, all levels together.
    pub ranges: u64,
    /// Rows only the source has (inserted), rows that differ (updated), rows only the
    /// target has (deleted); for a multiset, copies.
    pub inserted: u64,
    pub updated: u64,
    pub deleted: u64,
    /// With `--since`: rows written on the source since the last sync, moved whatever
    /// their content (identical ones change nothing on the target).
    pub since_rows: bool,
    /// So many rows differed that every source row was merged (rows only on the target
    /// deleted) rather than each difference found; the counts above are then unknown.
    pub reloaded: bool,
    /// Bytes of hashes the two servers sent.
    pub hash_bytes: u64,
}

impl SyncStats {
    /// Whether anything differs.
    pub fn differs(&self) -> bool {
        self.inserted + self.updated + self.deleted > 0 || self.since_rows || self.reloaded
    }
}

/// The last sync's position, recorded on the target with the rows it moved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watermark {
    /// The column's largest value on the source then, as text (full precision);
    /// `None`: the table was empty.
    pub value: Option<String>,
    /// The source snapshot that sync read (`txid_current_snapshot()`).
    pub snapshot: String,
}

/// The difference of one table, as found.
#[derive(Debug, Clone, Default)]
pub struct Diff {
    pub stats: SyncStats,
    /// Key hashes (row hashes, for a multiset) of the rows to read from the source, with
    /// how many copies (always 1 for a keyed table).
    pub upsert: BTreeMap<i64, u64>,
    /// Key hashes (row hashes) of the target rows to delete, with how many copies.
    pub delete: BTreeMap<i64, u64>,
    /// With `--since`: the previous watermark, whose rows written since also move.
    pub since: Option<Since>,
    /// The watermark to record when the repair commits.
    pub next_watermark: Option<Watermark>,
    /// The source's change counter to record when the repair commits (when the ledger
    /// can record it).
    pub source_changes: Option<i64>,
}

/// The source rows `--since` moves: written after `previous`.
#[derive(Debug, Clone)]
pub struct Since {
    pub column: String,
    pub previous: Watermark,
    /// The source's next transaction id (64-bit) in the run's snapshot: row `xmin`s (32
    /// bits) are widened against it.
    pub next_xid: i64,
}

/// The statements that repair one table, made from its [`Diff`]; nothing for a table
/// that is equal.
#[derive(Debug, Clone)]
pub struct Repair {
    /// Deletes the target rows only the target has (run before or after the upsert: see
    /// the units).
    pub delete: Option<String>,
    /// The source rows to insert or update: the staging table is created, `COPY … TO
    /// STDOUT` on the source streams into `copy_in`, and `apply` merges them.
    pub upsert: Option<Upsert>,
    /// Records the sync in the ledger (the source's change counter, the next
    /// watermark), in the repair's transaction.
    pub record: Vec<String>,
    /// Every source row is staged: `delete` (the target rows without a staged key) reads
    /// the staging table, so it runs after the COPY.
    pub reload: bool,
}

/// Source rows staged and merged into the target table.
#[derive(Debug, Clone)]
pub struct Upsert {
    pub create_staging: String,
    pub copy_out: String,
    pub copy_in: String,
    pub apply: String,
}

/// How target requests are watched: every `stall` without an answer, `busy()` asks
/// whether the server is still working on it (a dead connection never answers).
pub struct Watch<'a, 'b> {
    pub stall: std::time::Duration,
    pub busy: &'a (dyn Fn() -> crate::copy::pump::Busy<'b> + Sync),
}

/// Which rows a level reads: those in the differing buckets of the level before.
struct Filter {
    /// Bits of the hash the buckets used.
    bits: u32,
    buckets: Vec<i32>,
}

impl Filter {
    /// Bits of the hash the bitmap covers.
    fn low(&self) -> u32 {
        self.bits.min(BITMAP_BITS)
    }

    /// The condition on hash expression `hash`: a bitmap over the low bits (`$1`, one
    /// bit lookup a row), then, for finer buckets, the exact bucket (`$2`).
    fn condition(&self, hash: &str) -> String {
        let mut sql = format!(
            "pg_catalog.get_bit($1::bytea, ({hash} & {}::pg_catalog.int8)::int4) = 1",
            (1i64 << self.low()) - 1
        );
        if self.bits > BITMAP_BITS {
            sql.push_str(&format!(
                " AND ({hash} & {}::pg_catalog.int8) = ANY($2::int8[])",
                (1i64 << self.bits) - 1
            ));
        }
        sql
    }

    /// The parameters of [`Filter::condition`].
    fn params(&self) -> (Vec<u8>, Option<Vec<i64>>) {
        let low = self.low();
        let mut bitmap = vec![0u8; (1usize << low).div_ceil(8)];
        for &b in &self.buckets {
            let bit = (b as u32 & ((1u32 << low) - 1)) as usize;
            // get_bit numbers bits from the least significant of each byte.
            bitmap[bit / 8] |= 1 << (bit % 8);
        }
        let exact =
            (self.bits > BITMAP_BITS).then(|| self.buckets.iter().map(|&b| b as i64).collect());
        (bitmap, exact)
    }
}

/// A `bytea` literal.
fn bytea_literal(bytes: &[u8]) -> String {
    let mut hex = String::with_capacity(bytes.len() * 2 + 12);
    hex.push_str("'\\x");
    for b in bytes {
        hex.push_str(&format!("{b:02x}"));
    }
    hex.push_str("'::bytea");
    hex
}

/// The condition "hash expression `hash` is one of `hashes`", for statements that cannot
/// take parameters (COPY, and the repair's DELETE in a pipelined transaction): a bitmap
/// lookup first, so the exact comparison runs on few rows on any server version.
fn membership(hash: &str, hashes: &[i64]) -> String {
    if hashes.is_empty() {
        return "false".into();
    }
    let bits = ((hashes.len() * 8).next_power_of_two().trailing_zeros()).clamp(6, BITMAP_BITS);
    let mut bitmap = vec![0u8; (1usize << bits) / 8];
    for &h in hashes {
        let bit = (h as u64 & ((1u64 << bits) - 1)) as usize;
        bitmap[bit / 8] |= 1 << (bit % 8);
    }
    let list = hashes
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(",");
    format!(
        "pg_catalog.get_bit({}, ({hash} & {}::pg_catalog.int8)::int4) = 1 \
         AND {hash} = ANY('{{{list}}}'::int8[])",
        bytea_literal(&bitmap),
        (1i64 << bits) - 1
    )
}

/// Runs `sql` with a level's parameters on `client`, returning its one `bytea` (empty
/// when no row matched) and its one count.
async fn packed(
    client: &Client,
    prelude: Option<&str>,
    sql: &str,
    bitmap: &[u8],
    exact: Option<&Vec<i64>>,
) -> std::result::Result<(Vec<u8>, i64), tokio_postgres::Error> {
    let query = async {
        match (bitmap.is_empty(), exact) {
            (true, _) => client.query_one(sql, &[]).await,
            (false, None) => client.query_one(sql, &[&bitmap]).await,
            (false, Some(e)) => client.query_one(sql, &[&bitmap, e]).await,
        }
    };
    // Pipelined: both go out before either answer comes back.
    let row = match prelude {
        Some(first) => {
            let (done, row) = tokio::join!(client.batch_execute(first), query);
            done?;
            row?
        }
        None => query.await?,
    };
    Ok((
        row.get::<_, Option<Vec<u8>>>(0).unwrap_or_default(),
        row.get::<_, Option<i64>>(1).unwrap_or(0),
    ))
}

/// A level's query for each side, with what each side runs first.
struct Level<F: Fn(Side) -> String> {
    sql: F,
    params: (Vec<u8>, Option<Vec<i64>>),
    /// The first level sets the sessions up (see [`HASH_AGGREGATE`]).
    first: bool,
}

/// The two servers' answers to one level, asked at once.
async fn both_packed<F: Fn(Side) -> String>(
    source: &Client,
    target: &Client,
    level: Level<F>,
    doing: &str,
    watch: Option<&Watch<'_, '_>>,
) -> Result<((Vec<u8>, i64), (Vec<u8>, i64))> {
    let (source_sql, target_sql) = ((level.sql)(Side::Source), (level.sql)(Side::Target));
    let params = &level.params;
    let (source_prelude, target_prelude) = if level.first {
        (Some(SOURCE_HASH_AGGREGATE), Some(TARGET_HASH_AGGREGATE))
    } else {
        (None, None)
    };
    let target_request = packed(
        target,
        target_prelude,
        &target_sql,
        &params.0,
        params.1.as_ref(),
    );
    let target_answer = async {
        match watch {
            Some(w) => crate::copy::pump::watched(target_request, w.stall, w.busy)
                .await
                .ok_or_else(|| {
                    Error::new(
                        Kind::Copy,
                        format!(
                            "target server: {doing} failed: no answer for {} s and the server \
                             is not working on it: the connection looks dead",
                            w.stall.as_secs()
                        ),
                    )
                    .on(Side::Target)
                    .transient(true)
                }),
            None => Ok(target_request.await),
        }
    };
    let (s, t) = tokio::join!(
        packed(
            source,
            source_prelude,
            &source_sql,
            &params.0,
            params.1.as_ref()
        ),
        target_answer
    );
    let s = s.map_err(|e| Error::postgres(Kind::Copy, Side::Source, doing, e))?;
    let t = t?.map_err(|e| Error::postgres(Kind::Copy, Side::Target, doing, e))?;
    Ok((s, t))
}

/// The `N` bytes at `at` of a chunk (chunks are exact, so they are always there).
fn field<const N: usize>(chunk: &[u8], at: usize) -> [u8; N] {
    let mut b = [0u8; N];
    b.copy_from_slice(&chunk[at..at + N]);
    b
}

/// Buckets of one level: bucket → digest (count and sum of row hashes, hashed).
fn buckets(bytes: &[u8]) -> BTreeMap<i32, i64> {
    bytes
        .chunks_exact(12)
        .map(|c| {
            (
                i32::from_be_bytes(field(c, 0)),
                i64::from_be_bytes(field(c, 4)),
            )
        })
        .collect()
}

/// Rows of differing buckets: (key hash, row hash) pairs, or for a multiset (row hash,
/// copies).
fn pairs(bytes: &[u8]) -> Vec<(i64, i64)> {
    bytes
        .chunks_exact(16)
        .map(|c| {
            (
                i64::from_be_bytes(field(c, 0)),
                i64::from_be_bytes(field(c, 8)),
            )
        })
        .collect()
}

/// The buckets whose digests differ (or that one side lacks).
fn differing(s: &BTreeMap<i32, i64>, t: &BTreeMap<i32, i64>) -> Vec<i32> {
    let mut d: Vec<i32> = s
        .iter()
        .filter(|(b, v)| t.get(b) != Some(v))
        .map(|(b, _)| *b)
        .chain(t.keys().filter(|b| !s.contains_key(b)).copied())
        .collect();
    d.sort_unstable();
    d
}

/// Bits of the first level for about `rows` rows.
fn first_bits(rows: i64) -> u32 {
    let buckets = (rows.max(1) as f64 / FIRST_LEVEL_ROWS).max(1.0);
    (buckets.log2().ceil() as u32).min(BITMAP_BITS)
}

/// What the levels compare per row: the whole row, or (`--since`) only its key.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Compare {
    Rows,
    Keys,
}

/// Buckets are grouped by hashing, never by sorting: the planner cannot estimate how
/// few buckets there are and would sort every row, with its columns, to group them.
/// The source is always read in a transaction (the run's snapshot), which this setting
/// ends with; the target's session keeps it until [`RESET_PLANS`].
const SOURCE_HASH_AGGREGATE: &str = "SET LOCAL enable_sort = off";
const TARGET_HASH_AGGREGATE: &str = "SET enable_sort = off";
/// What the caller of [`diff`] runs next on the target (in the repair's transaction).
pub const RESET_PLANS: &str = "RESET enable_sort";

/// Finds how `spec`'s table differs between the source (read in the caller's snapshot,
/// a transaction) and the target. `recorded`: where the last `--since` sync ended, if it
/// did. The target's session is left to [`RESET_PLANS`].
pub async fn diff(
    source: &Client,
    target: &Client,
    hashing: &Hashing,
    spec: &SyncSpec,
    recorded: Recorded,
    watch: Option<&Watch<'_, '_>>,
) -> Result<Diff> {
    let mut differ = Differ {
        source,
        target,
        hashing,
        spec,
        watch,
        doing: format!("comparing {} by hash ranges", spec.target),
        compare: Compare::Rows,
        out: Diff::default(),
    };
    let unchanged = differ.source_unchanged(&recorded).await?;
    differ.since(recorded).await?;
    if unchanged && differ.whole_table_equal().await? {
        return Ok(differ.out);
    }
    let mut differing = differ.first_level(!unchanged).await?;
    while differing.splits() {
        if differing.next_buckets() > RELOAD_BUCKETS {
            differ.out.stats.reloaded = true;
            return Ok(differ.out);
        }
        differing = differ.finer_level(differing).await?;
    }
    if differing.rows_in() > RELOAD_ROWS {
        differ.out.stats.reloaded = true;
        return Ok(differ.out);
    }
    if !differing.buckets.is_empty() {
        differ.list_rows(differing).await?;
    }
    Ok(differ.out)
}

/// One table's comparison under way ([`diff`]): the two servers, how rows are hashed and
/// compared, and what has been found so far. Each method is a level or a read.
struct Differ<'a, 'b> {
    source: &'a Client,
    target: &'a Client,
    hashing: &'a Hashing,
    spec: &'a SyncSpec,
    watch: Option<&'a Watch<'a, 'b>>,
    /// What the comparison is, for errors.
    doing: String,
    compare: Compare,
    out: Diff,
}

/// The buckets that still differ after a level.
struct Differing {
    buckets: Vec<i32>,
    /// Bits of the hash the buckets use.
    bits: u32,
    /// Rows of the larger side (at least 1), for how many a bucket holds.
    rows: f64,
}

impl Differing {
    /// Rows in the differing buckets, about.
    fn rows_in(&self) -> f64 {
        self.buckets.len() as f64 * self.rows / (1u64 << self.bits) as f64
    }

    /// Whether the buckets are split again: some differ, a bucket holds more rows than
    /// listing them is worth, and the hash has bits left.
    fn splits(&self) -> bool {
        !self.buckets.is_empty()
            && self.rows / (1u64 << self.bits) as f64 > LEAF_ROWS
            && self.bits < MAX_BITS
    }

    /// Buckets the next level would return, about.
    fn next_buckets(&self) -> f64 {
        (self.buckets.len() as f64 * (1u64 << STEP_BITS) as f64).min(self.rows_in())
    }
}

impl Differ<'_, '_> {
    /// Both servers' answers to `level`.
    async fn ask<F: Fn(Side) -> String>(
        &self,
        level: Level<F>,
    ) -> Result<((Vec<u8>, i64), (Vec<u8>, i64))> {
        both_packed(self.source, self.target, level, &self.doing, self.watch).await
    }

    /// Reads the source's change counter (kept for the ledger when it can record it):
    /// whether it has not moved since the last sync — most likely nothing changed, and
    /// one sum per side (what `verify` computes) proves it. Otherwise straight to the
    /// buckets.
    async fn source_unchanged(&mut self, recorded: &Recorded) -> Result<bool> {
        let changes: Option<i64> = self
            .source
            .query_one(SOURCE_CHANGES, &[&self.spec.source.sql()])
            .await
            .map_err(|e| Error::postgres(Kind::Copy, Side::Source, &self.doing, e))?
            .get(0);
        self.out.source_changes = changes.filter(|_| recorded.ledger);
        Ok(changes.is_some() && recorded.source_changes == changes)
    }

    /// With `--since` (on a keyed table): the next watermark read, and, after a sync that
    /// recorded one, the rows written since it to move, with only keys compared.
    async fn since(&mut self, recorded: Recorded) -> Result<()> {
        let spec = self.spec;
        let Some(column) = spec.since.as_ref().filter(|_| spec.keyed()) else {
            return Ok(());
        };
        let row = self
            .source
            .query_one(&next_watermark_sql(spec, column), &[])
            .await
            .map_err(|e| Error::postgres(Kind::Copy, Side::Source, &self.doing, e))?;
        // Without a ledger to record it in, the next sync compares every row again.
        self.out.next_watermark = recorded.ledger.then(|| Watermark {
            value: row.get(0),
            snapshot: row.get(1),
        });
        if let Some(previous) = recorded.watermark {
            self.out.since = Some(Since {
                column: column.clone(),
                previous,
                next_xid: row.get(2),
            });
            self.out.stats.since_rows = true;
            self.compare = Compare::Keys;
        }
        Ok(())
    }

    /// A level's query on `side`: per bucket of `bits` bits (of the rows `filter` keeps),
    /// its number and a digest of its rows' count and summed hashes, packed.
    fn level_sql(&self, side: Side, bits: u32, filter: Option<&Filter>) -> String {
        let spec = self.spec;
        let hash = spec.bucket_hash(self.hashing, side);
        let wher = filter
            .map(|f| format!(" WHERE {}", f.condition(&hash)))
            .unwrap_or_default();
        // What a bucket's digest sums: row hashes, or key hashes when only keys are
        // compared.
        let value = match self.compare {
            Compare::Rows => spec.row_hash(self.hashing, side),
            Compare::Keys => spec.bucket_hash(self.hashing, side),
        };
        format!(
            "SELECT pg_catalog.string_agg(pg_catalog.int4send(g) || pg_catalog.int8send(d), ''::bytea), \
             sum(n)::int8 FROM (SELECT ({hash} & {mask}::pg_catalog.int8)::int4 AS g, count(*) AS n, \
             pg_catalog.hashtextextended(count(*)::text || ':' || sum({value})::text, 0) AS d \
             FROM {from}{wher} GROUP BY 1) AS pgbarge_b",
            mask = (1i64 << bits) - 1,
            from = spec.from(side),
        )
    }

    /// The whole table as one bucket, on both sides: whether they are equal. Sets the
    /// sessions up.
    async fn whole_table_equal(&mut self) -> Result<bool> {
        let whole = Level {
            sql: |side| self.level_sql(side, 0, None),
            params: (Vec::new(), None),
            first: true,
        };
        let ((s, s_rows), (t, t_rows)) = self.ask(whole).await?;
        let stats = &mut self.out.stats;
        stats.source_rows = s_rows.max(0) as u64;
        stats.target_rows = t_rows.max(0) as u64;
        stats.hash_bytes += (s.len() + t.len()) as u64;
        stats.ranges += 1;
        Ok(s == t)
    }

    /// The first level: every row, in buckets of about [`FIRST_LEVEL_ROWS`]. `first`:
    /// it sets the sessions up (no level came before).
    async fn first_level(&mut self, first: bool) -> Result<Differing> {
        let bits = first_bits(self.spec.estimated_rows);
        let level = Level {
            sql: |side| self.level_sql(side, bits, None),
            params: (Vec::new(), None),
            first,
        };
        let ((s, s_rows), (t, t_rows)) = self.ask(level).await?;
        let stats = &mut self.out.stats;
        stats.source_rows = s_rows.max(0) as u64;
        stats.target_rows = t_rows.max(0) as u64;
        stats.hash_bytes += (s.len() + t.len()) as u64;
        let (s, t) = (buckets(&s), buckets(&t));
        stats.ranges += s.len().max(t.len()) as u64;
        Ok(Differing {
            buckets: differing(&s, &t),
            bits,
            rows: s_rows.max(t_rows).max(1) as f64,
        })
    }

    /// The next level: only the rows of the differing buckets, each bucket split
    /// [`STEP_BITS`] bits finer.
    async fn finer_level(&mut self, before: Differing) -> Result<Differing> {
        let filter = Filter {
            bits: before.bits,
            buckets: before.buckets,
        };
        let finer = (before.bits + STEP_BITS).min(MAX_BITS);
        let level = Level {
            sql: |side| self.level_sql(side, finer, Some(&filter)),
            params: filter.params(),
            first: false,
        };
        let ((s, _), (t, _)) = self.ask(level).await?;
        let stats = &mut self.out.stats;
        stats.hash_bytes += (s.len() + t.len()) as u64;
        let (s, t) = (buckets(&s), buckets(&t));
        stats.ranges += s.len().max(t.len()) as u64;
        Ok(Differing {
            buckets: differing(&s, &t),
            bits: finer,
            rows: before.rows,
        })
    }

    /// The rows of the differing buckets, one by one on both sides, sorted into what to
    /// insert, update and delete.
    async fn list_rows(&mut self, differing: Differing) -> Result<()> {
        let filter = Filter {
            bits: differing.bits,
            buckets: differing.buckets,
        };
        let leaf = Level {
            sql: |side| self.leaf_sql(side, &filter),
            params: filter.params(),
            first: false,
        };
        let ((s, _), (t, _)) = self.ask(leaf).await?;
        self.out.stats.hash_bytes += (s.len() + t.len()) as u64;
        compare_rows(&mut self.out, self.spec.keyed(), &pairs(&s), &pairs(&t));
        Ok(())
    }

    /// The listing query on `side`: (key hash, row hash) per row of the buckets `filter`
    /// keeps — the key hash alone when only keys are compared, (row hash, copies) for a
    /// multiset.
    fn leaf_sql(&self, side: Side, filter: &Filter) -> String {
        let spec = self.spec;
        let hash = spec.bucket_hash(self.hashing, side);
        let wher = filter.condition(&hash);
        let from = spec.from(side);
        let (a, b, group) = match (spec.keyed(), self.compare) {
            (true, Compare::Rows) => (hash.clone(), spec.row_hash(self.hashing, side), ""),
            (true, Compare::Keys) => (hash.clone(), "0::int8".into(), ""),
            (false, _) => (hash.clone(), "count(*)".into(), " GROUP BY 1"),
        };
        format!(
            "SELECT pg_catalog.string_agg(pg_catalog.int8send(a) || pg_catalog.int8send(b), ''::bytea), \
             count(*)::int8 FROM (SELECT {a} AS a, ({b})::int8 AS b FROM {from} WHERE {wher}{group}) AS pgbarge_r"
        )
    }
}

/// Sorts the listed rows of the differing buckets into inserts, updates and deletes.
fn compare_rows(out: &mut Diff, keyed: bool, source: &[(i64, i64)], target: &[(i64, i64)]) {
    if keyed {
        let s: BTreeMap<i64, i64> = source.iter().copied().collect();
        let t: BTreeMap<i64, i64> = target.iter().copied().collect();
        for (k, v) in &s {
            match t.get(k) {
                None => {
                    out.stats.inserted += 1;
                    out.upsert.insert(*k, 1);
                }
                Some(w) if w != v => {
                    out.stats.updated += 1;
                    out.upsert.insert(*k, 1);
                }
                Some(_) => {}
            }
        }
        for k in t.keys().filter(|k| !s.contains_key(k)) {
            out.stats.deleted += 1;
            out.delete.insert(*k, 1);
        }
        return;
    }
    // A multiset: copies per row hash.
    let count = |rows: &[(i64, i64)]| -> BTreeMap<i64, i64> {
        let mut m = BTreeMap::new();
        for (h, n) in rows {
            *m.entry(*h).or_insert(0) += n;
        }
        m
    };
    let (s, t) = (count(source), count(target));
    for (h, n) in &s {
        let extra = n - t.get(h).copied().unwrap_or(0);
        if extra > 0 {
            out.stats.inserted += extra as u64;
            out.upsert.insert(*h, extra as u64);
        }
    }
    for (h, n) in &t {
        let extra = n - s.get(h).copied().unwrap_or(0);
        if extra > 0 {
            out.stats.deleted += extra as u64;
            out.delete.insert(*h, extra as u64);
        }
    }
}

/// The source's newest value of the `--since` column and its snapshot, read in the run's
/// snapshot, and the next transaction id there.
fn next_watermark_sql(spec: &SyncSpec, column: &str) -> String {
    // The newest value as text through its type's output function, never a cast (see
    // [`crate::rowhash::output_text`]); NULL when the table is empty.
    format!(
        "SELECT (SELECT {} FROM (SELECT max({}) AS m FROM {}) AS w \
                 WHERE pg_catalog.num_nulls(w.m) = 0), \
         pg_catalog.txid_current_snapshot()::text, \
         pg_catalog.txid_snapshot_xmax(pg_catalog.txid_current_snapshot())",
        crate::rowhash::output_text("w.m"),
        ident(column),
        spec.from(Side::Source)
    )
}

/// The rows of `spec`'s table whose current version the last sync could not see: past
/// the watermark, or written by a transaction not visible in its snapshot (still open
/// then, or committed after). A row's 32-bit `xmin` is widened to 64 bits against the
/// next transaction id now.
fn since_sql(since: &Since, alias: &str) -> String {
    let epoch = (since.next_xid >> 32) << 32;
    let xid = format!("({epoch} + {alias}.xmin::text::int8)");
    let widened = format!(
        "CASE WHEN {xid} > {next} THEN {xid} - 4294967296 ELSE {xid} END",
        next = since.next_xid
    );
    let unseen = format!(
        "NOT pg_catalog.txid_visible_in_snapshot({widened}, {}::txid_snapshot)",
        literal(&since.previous.snapshot)
    );
    match &since.previous.value {
        Some(v) => format!(
            "{alias}.{} > {} OR {unseen}",
            ident(&since.column),
            literal(v)
        ),
        None => unseen,
    }
}

/// What the ledger holds of a table's last sync: the source's change counter then, and
/// (with `--since`) the watermark. Read once the ledger is known to be pgbarge's.
const READ_RECORD: &str = "SELECT (SELECT source_changes FROM {L}.synced \
      WHERE target_table = $1 AND source = $3), \
     (SELECT ARRAY[value, snapshot] FROM {L}.watermark \
      WHERE target_table = $1 AND column_name = $2 AND source = $3)";

/// Records, in the repair's transaction, the source's change counter the sync read.
/// (Values go in with `format!`'s placeholders, each once: a value is never searched for
/// another's placeholder.)
fn record_synced_sql(store: &Store, table: &str, source: &str, changes: i64) -> String {
    format!(
        "INSERT INTO {} (target_table, source, source_changes) VALUES ({}, {}, {changes}) \
         ON CONFLICT (target_table) DO UPDATE SET source = EXCLUDED.source, \
           source_changes = EXCLUDED.source_changes, synced_at = pg_catalog.now()",
        store.table("synced"),
        literal(table),
        literal(source)
    )
}

/// Records the next watermark in the ledger.
fn record_watermark_sql(
    store: &Store,
    (table, column, source): (&str, &str, &str),
    watermark: &Watermark,
) -> String {
    format!(
        "INSERT INTO {} (target_table, column_name, source, value, snapshot) \
         VALUES ({}, {}, {}, {}, {}) \
         ON CONFLICT (target_table, column_name) DO UPDATE SET source = EXCLUDED.source, \
           value = EXCLUDED.value, snapshot = EXCLUDED.snapshot, synced_at = pg_catalog.now()",
        store.table("watermark"),
        literal(table),
        literal(column),
        literal(source),
        watermark
            .value
            .as_deref()
            .map(literal)
            .unwrap_or("NULL".into()),
        literal(&watermark.snapshot)
    )
}

/// What the target's ledger recorded of a table's last sync.
#[derive(Debug, Clone, Default)]
pub struct Recorded {
    /// The ledger exists, so this sync can be recorded too.
    pub ledger: bool,
    /// The source table's change counter (inserts + updates + deletes) when it was read.
    pub source_changes: Option<i64>,
    /// Where the last `--since` sync ended.
    pub watermark: Option<Watermark>,
}

/// What the ledger recorded of `spec`'s table's last sync. One round trip.
pub async fn recorded(target: &Client, store: &Store, spec: &SyncSpec) -> Result<Recorded> {
    let column = spec.since.clone().unwrap_or_default();
    let row = match target
        .query_one(
            &store.sql(READ_RECORD),
            &[&spec.target.to_string(), &column, &spec.source_server],
        )
        .await
    {
        Ok(row) => row,
        // No ledger (or one without these tables): nothing recorded, nowhere to record.
        Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE) => {
            return Ok(Recorded::default())
        }
        Err(e) => {
            return Err(Error::postgres(
                Kind::Copy,
                Side::Target,
                "reading the last sync from the pgbarge ledger",
                e,
            ))
        }
    };
    let watermark = row
        .get::<_, Option<Vec<Option<String>>>>(1)
        .and_then(|w| match w.as_slice() {
            [value, Some(snapshot)] => Some(Watermark {
                value: value.clone(),
                snapshot: snapshot.clone(),
            }),
            _ => None,
        });
    Ok(Recorded {
        ledger: true,
        source_changes: row.get(0),
        watermark,
    })
}

/// The source table's change counter: inserts, updates and deletes, over its partitions.
/// Statistics, not data: it only tells whether the table is likely unchanged since the
/// last sync, which decides what to compare first, never what is found.
const SOURCE_CHANGES: &str = "SELECT sum(n_tup_ins + n_tup_upd + n_tup_del)::int8 \
     FROM pg_catalog.pg_stat_all_tables \
     WHERE relid = $1::text::regclass \
        OR relid IN (SELECT relid FROM pg_catalog.pg_partition_tree($1::text::regclass))";

/// The statements that repair `spec`'s table on the target as `diff` found it.
pub fn repair(spec: &SyncSpec, hashing: &Hashing, diff: &Diff, store: &Store) -> Repair {
    let format = spec.format.clause();
    let cols = ident_list(spec.columns.iter().map(String::as_str));
    let copy_in = format!(
        "COPY {} ({cols}) FROM STDIN {format}",
        TableName::new("pg_temp", spec.staging.clone()).sql()
    );
    let delete = if diff.stats.reloaded {
        Some(reload_delete_sql(spec))
    } else {
        (!diff.delete.is_empty()).then(|| delete_sql(spec, hashing, &diff.delete))
    };
    let wanted: Vec<i64> = diff.upsert.keys().copied().collect();
    let copy_out = if diff.stats.reloaded {
        Some(format!(
            "COPY (SELECT {cols} FROM {}) TO STDOUT {format}",
            spec.from(Side::Source)
        ))
    } else if spec.keyed() {
        let mut wher = membership(
            &format!("({})", spec.bucket_hash(hashing, Side::Source)),
            &wanted,
        );
        if let Some(since) = &diff.since {
            wher = format!("({wher}) OR {}", since_sql(since, "pgbarge_s"));
        }
        (wher != "false").then(|| {
            format!(
                "COPY (SELECT {cols} FROM {} AS pgbarge_s WHERE {wher}) TO STDOUT {format}",
                spec.from(Side::Source)
            )
        })
    } else {
        (!wanted.is_empty()).then(|| {
            let qualified = spec
                .columns
                .iter()
                .map(|c| format!("pgbarge_c.{}", ident(c)))
                .collect::<Vec<_>>()
                .join(", ");
            format!(
                "COPY ({}) TO STDOUT {format}",
                copies_sql(spec, hashing, Side::Source, ("*", &qualified), &diff.upsert)
            )
        })
    };
    let upsert = copy_out.map(|copy_out| Upsert {
        create_staging: spec.staging_sql(),
        copy_out,
        copy_in,
        apply: spec.apply_sql(),
    });
    let table = spec.target.to_string();
    let mut record: Vec<String> = diff
        .source_changes
        .map(|n| record_synced_sql(store, &table, &spec.source_server, n))
        .into_iter()
        .collect();
    if let (Some(column), Some(w)) = (&spec.since, &diff.next_watermark) {
        record.push(record_watermark_sql(
            store,
            (&table, column, &spec.source_server),
            w,
        ));
    }
    Repair {
        delete,
        upsert,
        record,
        reload: diff.stats.reloaded,
    }
}

/// `n` copies of each row whose hash is listed in `counts`, on `side`: the rows with a
/// number per hash (`pgbarge_n`), the first `n` kept. `select` lists what to return.
fn copies_sql(
    spec: &SyncSpec,
    hashing: &Hashing,
    side: Side,
    (inner, select): (&str, &str),
    counts: &BTreeMap<i64, u64>,
) -> String {
    let hash = spec.row_hash(hashing, side);
    let hashes: Vec<i64> = counts.keys().copied().collect();
    let list = |v: Vec<String>| v.join(",");
    format!(
        "SELECT {select} FROM (SELECT {inner}, {hash} AS pgbarge_h, \
         pg_catalog.row_number() OVER (PARTITION BY {hash}) AS pgbarge_n \
         FROM {from} WHERE {member}) AS pgbarge_c \
         JOIN ROWS FROM (pg_catalog.unnest('{{{h}}}'::int8[]), \
                         pg_catalog.unnest('{{{n}}}'::int8[])) AS pgbarge_w(h, k) \
           ON pgbarge_c.pgbarge_h = pgbarge_w.h WHERE pgbarge_c.pgbarge_n <= pgbarge_w.k",
        from = spec.from(side),
        member = membership(&format!("({hash})"), &hashes),
        h = list(hashes.iter().map(i64::to_string).collect()),
        n = list(counts.values().map(u64::to_string).collect()),
    )
}

/// When every source row is staged: deletes the target rows whose key no staged row has
/// — for a multiset, every row (the staged copies replace them).
fn reload_delete_sql(spec: &SyncSpec) -> String {
    let from = spec.from(Side::Target);
    if !spec.keyed() {
        return format!("DELETE FROM {from}");
    }
    let of = |alias: &str| {
        spec.key
            .iter()
            .map(|k| format!("{alias}.{}", ident(k)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "DELETE FROM {from} AS pgbarge_t WHERE NOT EXISTS (SELECT FROM {} AS pgbarge_s \
         WHERE ({}) OPERATOR(pg_catalog.=) ({}))",
        TableName::new("pg_temp", spec.staging.clone()).sql(),
        of("pgbarge_s"),
        of("pgbarge_t")
    )
}

// Every operator above has a `pg_catalog` match of the exact argument types (the masks
// are `int8` literals), or is named with its schema: on the target the search path has
// `pg_catalog` first, and only an exact match elsewhere could win over it.

/// Deletes the target rows listed in `delete` (by key hash; for a multiset, that many
/// copies of each row hash).
fn delete_sql(spec: &SyncSpec, hashing: &Hashing, delete: &BTreeMap<i64, u64>) -> String {
    let hashes: Vec<i64> = delete.keys().copied().collect();
    let from = spec.from(Side::Target);
    if spec.keyed() {
        let hash = spec.bucket_hash(hashing, Side::Target);
        return format!(
            "DELETE FROM {from} WHERE {}",
            membership(&format!("({hash})"), &hashes)
        );
    }
    // Equal rows are told apart by where they are stored.
    format!(
        "DELETE FROM {from} WHERE (tableoid, ctid) IN ({})",
        copies_sql(
            spec,
            hashing,
            Side::Target,
            ("tableoid, ctid", "pgbarge_c.tableoid, pgbarge_c.ctid"),
            delete
        )
    )
}

/// What a sync would repair in one table, found without writing (`--dry-run`).
#[derive(Debug, Clone, Serialize)]
pub struct Preview {
    pub table: TableName,
    pub stats: SyncStats,
    /// A few keys (as row text; for a multiset, whole rows) of rows the sync would insert
    /// or update, read on the source...
    pub upsert_sample: Vec<String>,
    /// ...and of rows it would delete, read on the target.
    pub delete_sample: Vec<String>,
}

/// Rows shown per list in a preview.
const SAMPLE: usize = 5;

/// How each synced table of `specs` differs, the source read in one snapshot (begun and
/// ended here on `source`): nothing is written on either server.
pub async fn preview(
    source: &Client,
    target: &Client,
    specs: &[SyncSpec],
    source_encoding: Option<&str>,
    store: &Store,
) -> Result<Vec<Preview>> {
    // The last syncs' records are read only from a ledger that is pgbarge's.
    store.present(target).await?;
    let begin = source
        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .await;
    begin.map_err(|e| Error::postgres(Kind::Copy, Side::Source, "starting a snapshot", e))?;
    let result = previews(source, target, specs, source_encoding, store).await;
    // Read only: nothing to keep.
    let _ = source.batch_execute("ROLLBACK").await;
    result
}

/// The most characters of a row a preview's sample shows.
const SAMPLE_CHARS: usize = 200;

async fn previews(
    source: &Client,
    target: &Client,
    specs: &[SyncSpec],
    source_encoding: Option<&str>,
    store: &Store,
) -> Result<Vec<Preview>> {
    let hashing = Hashing::choose(source, target, source_encoding).await?;
    let mut out = Vec::new();
    for spec in specs {
        let recorded = recorded(target, store, spec).await?;
        let diff = diff(source, target, &hashing, spec, recorded, None).await?;
        target
            .batch_execute(RESET_PLANS)
            .await
            .map_err(|e| Error::postgres(Kind::Copy, Side::Target, "comparing", e))?;
        let doing = format!("reading differing rows of {}", spec.target);
        let sample = |side: Side, hashes: &BTreeMap<i64, u64>| {
            let hashes: Vec<i64> = hashes.keys().take(SAMPLE).copied().collect();
            let shown = if spec.keyed() {
                key_expr(&spec.key)
            } else {
                format!(
                    "ROW({})::text",
                    ident_list(spec.columns.iter().map(String::as_str))
                )
            };
            // A sample shows the start of each row: a row of a table without a key is
            // shown whole, and one with a 100 MB value must not come back whole.
            format!(
                "SELECT CASE WHEN pg_catalog.length(s.t) > {SAMPLE_CHARS} \
                   THEN pg_catalog.\"left\"(s.t, {SAMPLE_CHARS}) || '…' ELSE s.t END \
                 FROM (SELECT {} AS t FROM {} WHERE {} LIMIT {SAMPLE}) AS s",
                hashing.text(side, &shown),
                spec.from(side),
                membership(&format!("({})", spec.bucket_hash(&hashing, side)), &hashes)
            )
        };
        let read = |rows: Vec<tokio_postgres::Row>| -> Vec<String> {
            rows.iter().map(|r| r.get::<_, String>(0)).collect()
        };
        let upsert_sample = source
            .query(&sample(Side::Source, &diff.upsert), &[])
            .await
            .map(read)
            .map_err(|e| Error::postgres(Kind::Copy, Side::Source, &doing, e))?;
        let delete_sample = target
            .query(&sample(Side::Target, &diff.delete), &[])
            .await
            .map(read)
            .map_err(|e| Error::postgres(Kind::Copy, Side::Target, &doing, e))?;
        out.push(Preview {
            table: spec.target.clone(),
            stats: diff.stats,
            upsert_sample,
            delete_sample,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_buckets_and_rows_read_back() {
        let mut b = Vec::new();
        b.extend(7i32.to_be_bytes());
        b.extend((-3i64).to_be_bytes());
        assert_eq!(buckets(&b), BTreeMap::from([(7, -3)]));
        let mut r = Vec::new();
        r.extend(i64::MIN.to_be_bytes());
        r.extend(42i64.to_be_bytes());
        assert_eq!(pairs(&r), vec![(i64::MIN, 42)]);
    }

    #[test]
    fn differing_buckets_include_those_one_side_lacks() {
        let s = BTreeMap::from([(1, 10), (2, 20), (3, 30)]);
        let t = BTreeMap::from([(2, 20), (3, 31), (4, 40)]);
        assert_eq!(differing(&s, &t), vec![1, 3, 4]);
    }

    #[test]
    fn first_level_sizes_buckets_to_a_few_dozen_rows() {
        assert_eq!(first_bits(0), 0);
        // 16,384 buckets of 61 rows.
        assert_eq!(first_bits(1_000_000), 14);
        assert_eq!(first_bits(i64::MAX), BITMAP_BITS);
    }

    #[test]
    fn keyed_rows_sort_into_inserts_updates_and_deletes() {
        let mut d = Diff::default();
        compare_rows(
            &mut d,
            true,
            &[(1, 10), (2, 20), (3, 30)],
            &[(2, 20), (3, 31), (4, 4)],
        );
        assert_eq!(
            (d.stats.inserted, d.stats.updated, d.stats.deleted),
            (1, 1, 1)
        );
        assert_eq!(d.upsert.keys().copied().collect::<Vec<_>>(), vec![1, 3]);
        assert_eq!(d.delete.keys().copied().collect::<Vec<_>>(), vec![4]);
    }

    #[test]
    fn a_multiset_counts_copies() {
        let mut d = Diff::default();
        // Source: row 5 three times, row 6 once; target: row 5 once, row 7 twice.
        compare_rows(&mut d, false, &[(5, 3), (6, 1)], &[(5, 1), (7, 2)]);
        assert_eq!(d.upsert, BTreeMap::from([(5, 2), (6, 1)]));
        assert_eq!(d.delete, BTreeMap::from([(7, 2)]));
        assert_eq!((d.stats.inserted, d.stats.deleted), (3, 2));
    }

    #[test]
    fn membership_checks_a_bitmap_before_the_list() {
        let sql = membership("h", &[1, 64]);
        assert!(sql.starts_with("pg_catalog.get_bit('\\x"), "{sql}");
        assert!(sql.ends_with("h = ANY('{1,64}'::int8[])"), "{sql}");
        assert_eq!(membership("h", &[]), "false");
    }
}
