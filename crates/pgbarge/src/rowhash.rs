//! Row hashes both servers compute alike: what verification compares and what an
//! incremental sync bisects, so that no row has to travel to be compared.
//!
//! Each server hashes a row's text form over the columns both sides have. Both sessions
//! use pgbarge's portable settings (UTC, ISO dates, shortest-exact floats), so equal
//! values give equal text on any server version from 12 on; when the servers' encodings
//! differ, text is hashed in its UTF-8 form on both sides.

use tokio_postgres::Client;

use crate::error::{Error, Kind, Result, Side};
use crate::quote::{ident, ident_list, literal};

/// How one server turns text into the bytes it hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Bytes {
    /// Its own encoding's bytes (both servers use the same encoding).
    Native,
    /// UTF-8: the servers' encodings differ (a LATIN1 source, a UTF8 target).
    Utf8,
    /// A SQL_ASCII source whose bytes are really in this encoding (`--source-encoding`):
    /// converted from it to UTF-8.
    From(String),
}

/// How rows are hashed so that equal data hashes equal on both servers: each server
/// hashes the bytes of its own encoding, so when the encodings differ, text is hashed in
/// its UTF-8 form on both sides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hashing {
    source: Bytes,
    target: Bytes,
}

/// A server's encoding.
const SERVER_ENCODING: &str = "SHOW server_encoding";

impl Hashing {
    /// How `source` and `target` hash alike; `declared`: `--source-encoding`.
    pub async fn choose(
        source: &Client,
        target: &Client,
        declared: Option<&str>,
    ) -> Result<Hashing> {
        let (s, t) = both(
            source,
            target,
            |_| SERVER_ENCODING.to_string(),
            "reading the encodings",
            |rows| {
                rows.first()
                    .map(|r| r.get::<_, String>(0))
                    .unwrap_or_default()
            },
        )
        .await?;
        Ok(match declared {
            Some(enc) if s == "SQL_ASCII" && t != "SQL_ASCII" => Hashing {
                source: Bytes::From(enc.to_string()),
                target: Bytes::Utf8,
            },
            _ if s == t => Hashing {
                source: Bytes::Native,
                target: Bytes::Native,
            },
            _ => Hashing {
                source: Bytes::Utf8,
                target: Bytes::Utf8,
            },
        })
    }

    /// A 64-bit hash of the text `expr` on `side`.
    pub fn hash(&self, side: Side, expr: &str) -> String {
        self.seeded(side, expr, 0)
    }

    /// [`Hashing::hash`] with another seed: the same text hashes differently by seed.
    fn seeded(&self, side: Side, expr: &str, seed: usize) -> String {
        let bytes = match side {
            Side::Source => &self.source,
            Side::Target => &self.target,
        };
        let utf8 = format!("pg_catalog.convert_to({expr}, 'UTF8')");
        match bytes {
            // Bytes, not a collation's idea of equality: a nondeterministic (ICU)
            // collation hashes its sort key, which differs between ICU versions.
            Bytes::Native => {
                format!("pg_catalog.hashtextextended(({expr}) COLLATE \"C\", {seed})")
            }
            Bytes::Utf8 => format!("pg_catalog.hashtextextended(pg_catalog.md5({utf8}), {seed})"),
            // Converting to SQL_ASCII passes the bytes through unchanged (and unchecked).
            Bytes::From(enc) => format!(
                "pg_catalog.hashtextextended(pg_catalog.md5(pg_catalog.convert(\
                 pg_catalog.convert_to({expr}, 'SQL_ASCII'), {}, 'UTF8')), {seed})",
                literal(enc)
            ),
        }
    }

    /// The text `expr` as the client should read it: a SQL_ASCII source's bytes are
    /// converted from their declared encoding (the server does not know it).
    pub fn text(&self, side: Side, expr: &str) -> String {
        match (side, &self.source) {
            (Side::Source, Bytes::From(enc)) => format!(
                "pg_catalog.convert_from(pg_catalog.convert(\
                 pg_catalog.convert_to({expr}, 'SQL_ASCII'), {}, 'UTF8'), 'UTF8')",
                literal(enc)
            ),
            _ => expr.to_string(),
        }
    }

    /// A 64-bit hash of the row of `columns` on `side`: each column's text hashed with
    /// its position as the seed (a NULL counts as its position), the hashes combined by
    /// XOR. It tells rows apart as hashing the row's text would (the same values' text,
    /// in the same places), a third cheaper: building the row's text quotes every value,
    /// which costs more than the values' own output.
    pub fn row(&self, side: Side, columns: &[String]) -> String {
        if columns.is_empty() {
            return "0::int8".into();
        }
        let hashes: Vec<String> = columns
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let seed = i + 1;
                format!(
                    "coalesce({}, {seed})",
                    self.seeded(side, &format!("{}::text", ident(c)), seed)
                )
            })
            .collect();
        format!("({})", hashes.join(" # "))
    }
}

/// The row text of the key columns `key`.
pub fn key_expr(key: &[String]) -> String {
    format!("ROW({})::text", ident_list(key.iter().map(String::as_str)))
}

/// Runs the query `sql` gives for each side on both servers at once.
pub async fn both<T>(
    source: &Client,
    target: &Client,
    sql: impl Fn(Side) -> String,
    doing: &str,
    read: impl Fn(&[tokio_postgres::Row]) -> T,
) -> Result<(T, T)> {
    let (source_sql, target_sql) = (sql(Side::Source), sql(Side::Target));
    let (s, t) = tokio::join!(
        source.query(&source_sql, &[]),
        target.query(&target_sql, &[])
    );
    let s = s.map_err(|e| Error::postgres(Kind::Catalog, Side::Source, doing, e))?;
    let t = t.map_err(|e| Error::postgres(Kind::Catalog, Side::Target, doing, e))?;
    Ok((read(&s), read(&t)))
}
