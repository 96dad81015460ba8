//! Row hashes both servers compute alike: what verification compares and what an
//! incremental sync bisects, so that no row has to travel to be compared.
//!
//! Each server hashes a row's text form over the columns both sides have. Both sessions
//! use pgbarge's portable settings (UTC, ISO dates, shortest-exact floats), so equal
//! values give equal text on any server version from 12 on; when the servers' encodings
//! differ, text is hashed in its UTF-8 form on both sides.

use serde::{Deserialize, Serialize};
use tokio_postgres::Client;

use crate::catalog::ColumnType;
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

    /// A 64-bit hash of the row of `columns` on `side`, hashed as `kinds` says (a column
    /// without one: by its text): each column's value hashed with its position as the
    /// seed (a NULL counts as its position), the hashes combined by XOR. It tells rows
    /// apart as hashing the row's text would (the same values in the same places), at
    /// half the cost: building the row's text quotes every value, which costs more than
    /// the values' own output, and integers and uuids need no text at all.
    pub fn row(&self, side: Side, columns: &[String], kinds: &[ValueHash]) -> String {
        if columns.is_empty() {
            return "0::int8".into();
        }
        let hashes: Vec<String> = columns
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let kind = kinds.get(i).copied().unwrap_or_default();
                format!("coalesce({}, {})", self.value(side, c, kind, i + 1), i + 1)
            })
            .collect();
        format!("({})", hashes.join(" # "))
    }

    /// A 64-bit hash of `column`'s value on `side`, with `seed`.
    pub fn value(&self, side: Side, column: &str, kind: ValueHash, seed: usize) -> String {
        let c = ident(column);
        match kind {
            ValueHash::Integer => format!("pg_catalog.hashint8extended({c}::int8, {seed})"),
            ValueHash::Uuid => format!("pg_catalog.uuid_hash_extended({c}, {seed})"),
            ValueHash::Boolean => format!("pg_catalog.hashint4extended({c}::int4, {seed})"),
            ValueHash::Text => self.seeded(side, &format!("{c}::text"), seed),
            // NULL stays NULL (`format` would give ''); a composite whose fields are all
            // NULL is not NULL here, as with a cast (`IS NULL` would say it is).
            ValueHash::Output => format!(
                "CASE WHEN pg_catalog.num_nulls({c}) = 0 THEN {} END",
                self.seeded(side, &output_text(&c), seed)
            ),
        }
    }
}

/// The text of `expr` through its type's output function. A cast to text (`::text`)
/// would run whatever cast function the type's owner created: for a type outside
/// `pg_catalog`, another role's code. Output functions are safe: the server's own for
/// enums, composites, ranges, arrays and domains, and a base type's (whose functions
/// only a superuser can create).
pub fn output_text(expr: &str) -> String {
    format!("pg_catalog.format('%s', {expr})")
}

/// How a column's values are hashed: by their text, or — for types whose equal values
/// are exactly the values with equal text, and whose hash functions both servers
/// compute alike — by the value itself, which needs no text output.
///
/// No hash runs code of another role: a value reaches text through a cast only when
/// both sides' types are `pg_catalog`'s (whose casts only a superuser can create), and
/// otherwise through its type's output function (see [`output_text`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ValueHash {
    /// Its text through its type's output function: a type from outside `pg_catalog`
    /// on either side (an enum, a composite, a domain, an extension's type).
    #[default]
    Output,
    /// Its text by a `::text` cast: both sides' types are from `pg_catalog`. Cheaper
    /// than the output function's `format` (measured: 0.36 s against 0.65 s for three
    /// columns of 2M rows).
    Text,
    /// `smallint`, `integer` or `bigint` on each side (hashed as `bigint`: the same
    /// value hashes alike whatever the width).
    Integer,
    Uuid,
    Boolean,
}

impl ValueHash {
    /// For a column of type `source` on the source and `target` on the target: by value
    /// only when both sides are of one such kind, by a cast only when both types are
    /// `pg_catalog`'s.
    pub fn of(source: &ColumnType, target: &ColumnType) -> ValueHash {
        let builtin = source.schema == "pg_catalog" && target.schema == "pg_catalog";
        ValueHash::by_name(&source.sql, &target.sql, builtin)
    }

    /// [`ValueHash::of`] from the types' `format_type` names; `builtin`: both are
    /// `pg_catalog`'s.
    pub fn by_name(source: &str, target: &str, builtin: bool) -> ValueHash {
        const INTEGERS: [&str; 3] = ["smallint", "integer", "bigint"];
        if !builtin {
            return ValueHash::Output;
        }
        match (source, target) {
            (s, t) if INTEGERS.contains(&s) && INTEGERS.contains(&t) => ValueHash::Integer,
            ("uuid", "uuid") => ValueHash::Uuid,
            ("boolean", "boolean") => ValueHash::Boolean,
            _ => ValueHash::Text,
        }
    }
}

/// The row text of the key columns `key`: the record's output function calls each
/// column type's own (no cast is looked up for an anonymous record).
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_hash_by_value_only_when_both_sides_agree_exactly() {
        let of = |s, t| ValueHash::by_name(s, t, true);
        assert_eq!(of("integer", "bigint"), ValueHash::Integer);
        assert_eq!(of("uuid", "uuid"), ValueHash::Uuid);
        assert_eq!(of("boolean", "boolean"), ValueHash::Boolean);
        // Text where the value's text is what must agree: a numeric's scale, a
        // float's -0, a conversion between types.
        assert_eq!(of("numeric", "numeric"), ValueHash::Text);
        assert_eq!(of("double precision", "double precision"), ValueHash::Text);
        assert_eq!(of("uuid", "text"), ValueHash::Text);
        assert_eq!(of("integer", "numeric"), ValueHash::Text);
    }

    #[test]
    fn a_type_from_outside_pg_catalog_is_never_cast() {
        // Its owner may have created a cast to text (or to int8) that runs her code.
        assert_eq!(
            ValueHash::by_name("public.mood", "public.mood", false),
            ValueHash::Output
        );
        assert_eq!(
            ValueHash::by_name("public.small", "integer", false),
            ValueHash::Output
        );
        let hashing = Hashing {
            source: Bytes::Native,
            target: Bytes::Native,
        };
        let sql = hashing.value(Side::Target, "m", ValueHash::Output, 3);
        assert!(!sql.contains("::"), "{sql}");
        assert!(sql.contains("pg_catalog.format('%s', \"m\")"), "{sql}");
    }

    #[test]
    fn a_row_hashes_each_column_with_its_position_and_nulls_count() {
        let hashing = Hashing {
            source: Bytes::Native,
            target: Bytes::Native,
        };
        let sql = hashing.row(
            Side::Source,
            &["id".into(), "note".into()],
            &[ValueHash::Integer, ValueHash::Text],
        );
        assert_eq!(
            sql,
            "(coalesce(pg_catalog.hashint8extended(\"id\"::int8, 1), 1) # \
             coalesce(pg_catalog.hashtextextended((\"note\"::text) COLLATE \"C\", 2), 2))"
        );
    }
}
