//! What a server holds: tables, their columns and keys, and the user-defined types the
//! columns need — read with a few set-based queries and kept as plain data (no connection
//! inside), so planning and preflight are pure functions of it. Saying it in SQL again
//! (`CREATE …`, `ALTER …`) is the plan's part: see `plan::ddl`.
//!
//! Reading happens in two steps: [`list_tables`] for every table (cheap: names, sizes,
//! privileges — what the picker and the pattern matcher need), then [`describe`] for only the
//! chosen ones (columns, primary keys, type definitions).

mod dependents;
mod existing;
mod objects;
mod queries;
mod snapshot;

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

pub use dependents::{
    dependents, AclEntry, DependentRoutine, DependentView, Dependents, InboundKey,
};
pub use existing::{existing, ObjectRef};
pub use objects::{
    available_extensions, describe_objects, list_schemas, Aggregate, AggregateKind,
    AggregateOptions, Cast, CastContext, CastMethod, Collation, Comment, CommentOn, Extension,
    Grant, Operator, Partition, PartitionColumn, Policy, ReplicaIdentity, Routine, RoutineKind,
    SchemaObjects, Sequence, TableObject, TableObjectKind, TableProperty, TableSetting, TextSearch,
    TextSearchKind, View,
};
pub use queries::{
    count_unanalysed, describe, find_types, foreign_code, foreign_key_edges, foreign_keys,
    large_object_count, list_tables, non_empty_tables, refers_to_large_objects, server_encoding,
    target_indexes, target_privileges, unvalidated_constraints, user_triggers, ForeignKey,
    TargetIndex,
};
pub use snapshot::Snapshot;

/// A schema-qualified table name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize)]
pub struct TableName {
    pub schema: String,
    pub name: String,
}

impl TableName {
    pub fn new(schema: impl Into<String>, name: impl Into<String>) -> Self {
        TableName {
            schema: schema.into(),
            name: name.into(),
        }
    }

    /// The name quoted for SQL: `"schema"."name"`.
    pub fn sql(&self) -> String {
        crate::quote::qualified(&self.schema, &self.name)
    }
}

/// Shown as a user would type it: `public.orders`, `"Sales Dept"."order lines"` (parts
/// quoted only where they must be, so the text can be pasted back as a pattern), with
/// control and direction-changing characters escaped (see [`crate::quote::printable`]):
/// a name never acts on the terminal it is shown on.
impl fmt::Display for TableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = format!("{}.{}", human_ident(&self.schema), human_ident(&self.name));
        f.write_str(&crate::quote::printable(&shown))
    }
}

fn human_ident(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if plain {
        s.to_string()
    } else {
        crate::quote::ident(s)
    }
}

/// `pg_class.relkind` of the tables pgbarge moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TableKind {
    /// An ordinary table (including a partition).
    Regular,
    /// A partitioned table: its rows live in its partitions.
    Partitioned,
}

/// One table as [`list_tables`] sees it.
#[derive(Debug, Clone, Serialize)]
pub struct Table {
    pub oid: u32,
    pub name: TableName,
    pub kind: TableKind,
    /// The planner's estimate (`reltuples`), `None` if never analyzed.
    pub estimated_rows: Option<i64>,
    /// Heap + indexes + TOAST, bytes.
    pub total_bytes: i64,
    /// Heap + TOAST, without indexes: about what COPY moves.
    pub data_bytes: i64,
    /// Blocks in the main heap, to split the table into block ranges.
    pub pages: i64,
    pub is_partition: bool,
    /// Whether the connected role may SELECT / INSERT / TRUNCATE it.
    pub can_select: bool,
    pub can_insert: bool,
    pub can_truncate: bool,
    pub can_update: bool,
    pub can_delete: bool,
    /// The role owns the table (or is a member of its owner): it may drop it.
    pub is_owner: bool,
    /// `UNLOGGED`: not crash-safe, not replicated; kept so on the target.
    pub unlogged: bool,
    /// Storage parameters (`reloptions`), e.g. `fillfactor=70`.
    pub options: Vec<String>,
    /// A typed table's composite type (`CREATE TABLE … OF type`).
    pub of_type: Option<String>,
    /// Row-level security policies apply to the connected role here: reading would hide
    /// rows, and COPY FROM is refused.
    pub row_security_applies: bool,
}

/// A column's type, as both servers can compare it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ColumnType {
    pub oid: u32,
    /// `format_type()` with an empty search_path: valid SQL, schema-qualified for
    /// user-defined types, e.g. `character varying(20)`, `public.mood[]`.
    pub sql: String,
    /// The type's schema and `typname` (`pg_catalog`, `int4` / `_int4`).
    pub schema: String,
    pub name: String,
    pub typmod: i32,
    /// `pg_type.typtype`: b base, e enum, d domain, c composite, r range, p pseudo.
    pub typtype: char,
    /// `pg_type.typcategory`: A array, N numeric, S string, …
    pub category: char,
    /// The type (and every type it is made of) has binary send and receive functions:
    /// binary COPY can carry it.
    pub binary_io: bool,
}

impl ColumnType {
    /// Whether this is one of PostgreSQL's own types.
    pub fn is_builtin(&self) -> bool {
        self.schema == "pg_catalog"
    }
}

/// When a trigger fires (`pg_trigger.tgenabled`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum TriggerState {
    /// `O`: in origin and local sessions (the default).
    Enabled,
    /// `D`.
    Disabled,
    /// `R`: only in sessions with `session_replication_role = replica`.
    Replica,
    /// `A`: in every session.
    Always,
}

impl TriggerState {
    pub(crate) fn from_code(code: Option<char>) -> TriggerState {
        match code {
            Some('D') => TriggerState::Disabled,
            Some('R') => TriggerState::Replica,
            Some('A') => TriggerState::Always,
            _ => TriggerState::Enabled,
        }
    }
}

/// `GENERATED ALWAYS AS IDENTITY` or `GENERATED BY DEFAULT AS IDENTITY`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Identity {
    /// `a`: a value given on INSERT needs `OVERRIDING SYSTEM VALUE`.
    Always,
    /// `d`.
    ByDefault,
}

impl Identity {
    /// From `pg_attribute.attidentity` (empty for a column that is not one).
    pub(crate) fn from_code(code: Option<char>) -> Option<Identity> {
        match code? {
            'a' => Some(Identity::Always),
            'd' => Some(Identity::ByDefault),
            _ => None,
        }
    }
}

/// A column default. The sequences and functions it uses are created before the table.
#[derive(Debug, Clone, Serialize)]
pub struct ColumnDefault {
    /// `pg_get_expr()` of the default, names qualified.
    pub expr: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Column {
    pub name: String,
    pub ty: ColumnType,
    pub not_null: bool,
    pub default: Option<ColumnDefault>,
    /// `GENERATED ALWAYS AS (…) STORED`: computed by the server, never copied.
    pub generated: bool,
    /// For an identity column, which kind.
    pub identity: Option<Identity>,
    /// A collation other than the type's default, qualified.
    pub collation: Option<String>,
    /// Comes from an `INHERITS` parent (not declared by the table itself).
    pub inherited: bool,
    /// The column's type is this table's (or view's) row type, or an array of it: that
    /// table must exist before this one is created.
    pub row_type_of: Option<TableName>,
    /// The sequence this column owns (`serial` or identity), if any.
    pub sequence: Option<OwnedSequence>,
    /// Other sequences owned by the column: the serial sequence an identity column had
    /// before it became one (`OWNED BY` still ties it to the column).
    pub leftover_sequences: Vec<OwnedSequence>,
}

/// A sequence owned by a column: a `serial` column's, or an identity column's.
#[derive(Debug, Clone, Serialize)]
pub struct OwnedSequence {
    pub name: TableName,
    /// Owned by an identity column (created implicitly with the column) rather than
    /// through `serial` / `OWNED BY`.
    pub identity: bool,
    #[serde(flatten)]
    pub parameters: SequenceParameters,
    /// Whether the connected role may read its current value.
    pub readable: bool,
}

/// A sequence's parameters, as `pg_sequence` holds them and `CREATE SEQUENCE` takes them.
#[derive(Debug, Clone, Serialize)]
pub struct SequenceParameters {
    pub data_type: String,
    pub start: i64,
    pub increment: i64,
    pub min: i64,
    pub max: i64,
    pub cache: i64,
    pub cycle: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct PrimaryKey {
    pub name: String,
    pub columns: Vec<String>,
    /// `pg_get_constraintdef()`, e.g. `PRIMARY KEY (id)`.
    pub definition: String,
}

/// A chosen table with its columns and key.
#[derive(Debug, Clone, Serialize)]
pub struct TableDetail {
    pub table: Table,
    pub columns: Vec<Column>,
    pub primary_key: Option<PrimaryKey>,
    /// Tables it inherits from (`INHERITS`), in order.
    pub inherits: Vec<TableName>,
    pub others: OtherObjects,
}

/// Counts of what a table has beyond columns and primary key.
#[derive(Debug, Clone, Default, Serialize)]
pub struct OtherObjects {
    pub indexes: i64,
    pub foreign_keys: i64,
    /// Check, unique and exclusion constraints.
    pub constraints: i64,
    pub triggers: i64,
    /// Other tables (partitions counted as their root) whose foreign keys point at this
    /// one: TRUNCATE without CASCADE refuses such a table unless they are truncated with it.
    pub referenced_by: Vec<TableName>,
}

/// A type that exists on a server (found by name).
#[derive(Debug, Clone, Serialize)]
pub struct ExistingType {
    pub typtype: char,
    pub enum_labels: Vec<String>,
}

/// What `CREATE TYPE … AS RANGE` needs; names as (schema, name).
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct RangeDefinition {
    /// `format_type()` of the subtype.
    pub subtype: String,
    pub opclass: (String, String),
    /// Set when not the subtype's own collation.
    pub collation: Option<(String, String)>,
    /// A canonical function is written in C: only a superuser creates such a range.
    pub canonical: bool,
    pub diff: Option<(String, String)>,
    /// The multirange type (PostgreSQL 14 on).
    pub multirange: Option<(String, String)>,
}

/// A domain's check constraint.
#[derive(Debug, Clone, Serialize)]
pub struct DomainCheck {
    pub name: String,
    /// `CHECK (…)`, with ` NOT VALID` when not validated (`pg_get_constraintdef()`).
    pub definition: String,
    /// A NOT VALID check lets existing values break it: it is added after the data.
    pub validated: bool,
    /// It calls a function (which may be a user's, created after the types): it is added
    /// once the functions exist.
    pub calls_function: bool,
}

/// A user-defined type that columns need, with what it takes to create it elsewhere.
#[derive(Debug, Clone, Serialize)]
pub struct UserType {
    pub oid: u32,
    pub schema: String,
    pub name: String,
    pub definition: TypeDefinition,
}

impl UserType {
    pub fn sql_name(&self) -> String {
        crate::quote::qualified(&self.schema, &self.name)
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum TypeDefinition {
    Enum {
        labels: Vec<String>,
    },
    Domain {
        /// The base type's SQL, with the domain's own `COLLATE` if it has one.
        base: String,
        not_null: bool,
        default: Option<String>,
        checks: Vec<DomainCheck>,
    },
    Composite {
        /// `"name" type` pairs, ready for `CREATE TYPE … AS (…)`.
        attributes: Vec<String>,
    },
    Range(RangeDefinition),
    /// A shell type: declared (`CREATE TYPE name;`), never defined.
    Shell,
    /// A kind pgbarge cannot create (base types from C extensions); preflight reports it
    /// if the target lacks it.
    Unsupported {
        typtype: char,
    },
}

/// What [`describe`] returns: the chosen tables in detail, and the user types they need in
/// creation order (dependencies first).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Described {
    pub tables: BTreeMap<TableName, TableDetail>,
    pub types: Vec<UserType>,
}

/// What the connected role may do on the target, for preflight.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Privileges {
    pub is_superuser: bool,
    /// May create schemas in the database.
    pub create_in_database: bool,
    /// Per existing schema: may create objects in it.
    pub create_in_schema: BTreeMap<String, bool>,
}

#[cfg(test)]
mod tests {
    /// SQL constants are sent as they are, and a server in another encoding (LATIN1, say)
    /// converts the query text to its own: a character it cannot hold (`…` in a comment)
    /// fails the query. Every `const …: &str` of the modules that talk to servers stays
    /// ASCII.
    #[test]
    fn sql_constants_are_ascii() {
        let sources = [
            ("catalog/queries.rs", include_str!("queries.rs")),
            ("catalog/objects/mod.rs", include_str!("objects/mod.rs")),
            ("catalog/objects/sql.rs", include_str!("objects/sql.rs")),
            ("catalog/dependents.rs", include_str!("dependents.rs")),
            ("catalog/snapshot.rs", include_str!("snapshot.rs")),
            ("ledger.rs", include_str!("../ledger.rs")),
            ("verify.rs", include_str!("../verify.rs")),
            ("copy/mod.rs", include_str!("../copy/mod.rs")),
            ("copy/pump.rs", include_str!("../copy/pump.rs")),
            ("copy/sequences.rs", include_str!("../copy/sequences.rs")),
            ("connect.rs", include_str!("../connect.rs")),
            ("plan/build.rs", include_str!("../plan/build.rs")),
            ("plan/split.rs", include_str!("../plan/split.rs")),
            ("plan/statements.rs", include_str!("../plan/statements.rs")),
            ("plan/table.rs", include_str!("../plan/table.rs")),
        ];
        for (file, text) in sources {
            for (start, _) in text.match_indices(": &str = \"") {
                let body = &text[start..];
                let end = body.find("\";").unwrap_or(body.len());
                let constant = &body[..end];
                assert!(
                    constant.is_ascii(),
                    "{file}: a SQL constant holds non-ASCII text: {}",
                    constant
                        .chars()
                        .filter(|c| !c.is_ascii())
                        .collect::<String>()
                );
            }
        }
    }
}
