//! How each source column reaches its target column, and so the COPY format of the table.

use serde::Serialize;

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
    pub value_hash: crate::rowhash::ValueHash,
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
