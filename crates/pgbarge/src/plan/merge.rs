//! Rows staged in one table merged into another by key.

use crate::catalog::TableName;
use crate::quote::{ident, ident_list};

/// Rows staged in a table merged into a target table by key: `INSERT … ON CONFLICT (key)
/// DO UPDATE` (an upsert, a sync's repair), or without a key a plain insert.
pub(crate) struct Merge<'a> {
    pub target: &'a TableName,
    pub staging: &'a TableName,
    pub columns: &'a [&'a str],
    /// Empty: every staged row is inserted.
    pub key: &'a [String],
    /// Copied columns that are `GENERATED ALWAYS AS IDENTITY` on the target: they take
    /// the source's values only with OVERRIDING SYSTEM VALUE, and are never updated.
    pub identity_always: &'a [String],
    /// Rows whose values are unchanged are not touched — compared as text, as they
    /// travel: types without equality (json, point) have no other comparison, and `1.0`
    /// and `1.00` are different values to copy.
    pub only_changed: bool,
}

impl Merge<'_> {
    pub fn sql(&self) -> String {
        let cols = ident_list(self.columns.iter().copied());
        let overriding = if self.identity_always.is_empty() {
            ""
        } else {
            " OVERRIDING SYSTEM VALUE"
        };
        let insert = format!(
            "INSERT INTO {} AS pgbarge_t ({cols}){overriding} SELECT {cols} FROM {}",
            self.target.sql(),
            self.staging.sql()
        );
        if self.key.is_empty() {
            return insert;
        }
        let others: Vec<&str> = self
            .columns
            .iter()
            .copied()
            .filter(|c| !self.key.iter().any(|k| k == c))
            .filter(|c| !self.identity_always.iter().any(|k| k == c))
            .collect();
        let action = if others.is_empty() {
            "DO NOTHING".to_string()
        } else {
            let of = |prefix: &str| {
                others
                    .iter()
                    .map(|c| format!("{prefix}.{}", ident(c)))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let changed = if self.only_changed {
                format!(
                    " WHERE ROW({})::text IS DISTINCT FROM ROW({})::text",
                    of("pgbarge_t"),
                    of("EXCLUDED")
                )
            } else {
                String::new()
            };
            format!(
                "DO UPDATE SET ({}) = ROW({}){changed}",
                ident_list(others.iter().copied()),
                of("EXCLUDED")
            )
        };
        format!(
            "{insert} ON CONFLICT ({}) {action}",
            ident_list(self.key.iter().map(String::as_str))
        )
    }
}
