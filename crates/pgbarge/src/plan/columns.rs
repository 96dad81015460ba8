//! How each source column reaches its target column, and so the COPY format of the
//! table.

use serde::Serialize;

use crate::catalog::Column;
use crate::convert::{conversion, Conversion};
use crate::rowhash::ValueHash;

/// The COPY format for a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CopyFormat {
    /// Every copied column has the same type on both sides.
    Binary,
    /// At least one column converts (e.g. int4 → int8); the servers' text I/O converts.
    Text,
}

impl CopyFormat {
    /// The COPY option: `(FORMAT binary)`.
    pub fn clause(self) -> &'static str {
        match self {
            CopyFormat::Binary => "(FORMAT binary)",
            CopyFormat::Text => "(FORMAT text)",
        }
    }
}

/// How one source column reaches the target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "via", content = "reason", rename_all = "snake_case")]
pub enum ColumnRoute {
    Identical,
    Text,
    /// The target type cannot hold the values.
    Refused(String),
    /// No column of that name on the target.
    MissingOnTarget,
    /// The target column is generated: it cannot be loaded.
    GeneratedOnTarget,
}

#[derive(Debug, Clone, Serialize)]
pub struct ColumnPlan {
    pub name: String,
    pub source_type: String,
    pub target_type: Option<String>,
    pub route: ColumnRoute,
    /// How a sync hashes its values on both sides.
    #[serde(skip)]
    pub value_hash: ValueHash,
}

/// Source column `col` of a table created from the source's definition: it travels as
/// it is.
pub(super) fn identical(col: &Column) -> ColumnPlan {
    ColumnPlan {
        name: col.name.clone(),
        source_type: col.ty.sql.clone(),
        target_type: Some(col.ty.sql.clone()),
        route: ColumnRoute::Identical,
        value_hash: ValueHash::of(&col.ty, &col.ty),
    }
}

/// Source column `col` loaded into `target`, the target table's column of that name
/// (`None`: it has none).
pub(super) fn routed(col: &Column, target: Option<&Column>) -> ColumnPlan {
    let route = match target {
        None => ColumnRoute::MissingOnTarget,
        Some(t) if t.generated => ColumnRoute::GeneratedOnTarget,
        Some(t) => match conversion(&col.ty, &t.ty) {
            Conversion::Identical => ColumnRoute::Identical,
            Conversion::ViaText => ColumnRoute::Text,
            Conversion::Refused(why) => ColumnRoute::Refused(why),
        },
    };
    ColumnPlan {
        name: col.name.clone(),
        source_type: col.ty.sql.clone(),
        target_type: target.map(|t| t.ty.sql.clone()),
        route,
        value_hash: target
            .map(|t| ValueHash::of(&col.ty, &t.ty))
            .unwrap_or_default(),
    }
}

/// Target columns with no source column that must be given a value: NOT NULL, without
/// a default, and neither identity nor generated.
pub(super) fn required_on_target_only(source: &[Column], target: &[Column]) -> Vec<String> {
    let source_names: Vec<&str> = source.iter().map(|c| c.name.as_str()).collect();
    target
        .iter()
        .filter(|c| !source_names.contains(&c.name.as_str()))
        .filter(|c| c.not_null && c.default.is_none() && c.identity.is_none() && !c.generated)
        .map(|c| c.name.clone())
        .collect()
}

/// The table's COPY format: binary when every column travels as it is and binary I/O
/// can carry its type; else text, with a note when some types lack binary I/O.
pub(super) fn copy_format(
    source: &[Column],
    columns: &[ColumnPlan],
) -> (CopyFormat, Option<String>) {
    let no_binary: Vec<&str> = source
        .iter()
        .filter(|c| !c.generated && !c.ty.binary_io)
        .map(|c| c.name.as_str())
        .collect();
    if no_binary.is_empty() {
        let binary = columns
            .iter()
            .all(|c| c.route == ColumnRoute::Identical && !text_only(&c.source_type));
        let format = if binary {
            CopyFormat::Binary
        } else {
            CopyFormat::Text
        };
        return (format, None);
    }
    let note = format!(
        "copied as text: the type of {} {} no binary send/receive functions",
        crate::text::short_list(&no_binary, 5),
        if no_binary.len() == 1 { "has" } else { "have" }
    );
    (CopyFormat::Text, Some(note))
}

/// Types whose binary COPY form cannot travel between servers: the `reg*` types are
/// sent as bare OIDs, which name other objects (or nothing) on the target, and an empty
/// `tsquery` is refused by binary input. Their text form is what pg_dump moves.
pub(super) fn text_only(type_sql: &str) -> bool {
    matches!(
        type_sql.trim_end_matches("[]"),
        "regclass"
            | "regtype"
            | "regproc"
            | "regprocedure"
            | "regoper"
            | "regoperator"
            | "regconfig"
            | "regdictionary"
            | "regnamespace"
            | "regrole"
            | "regcollation"
            | "tsquery"
    )
}
