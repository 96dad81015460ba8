//! What [`describe_objects`](super::describe_objects) reads, as plain data.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::catalog::{ObjectRef, SequenceParameters, TableName, TriggerState};

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
    pub enabled: TriggerState,
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
    /// Decodes a row of [`TABLE_PROPERTIES`](super::sql::TABLE_PROPERTIES): kind, name
    /// (column, index or statistics object) and value.
    pub(super) fn decode(
        kind: &str,
        name: Option<String>,
        value: Option<String>,
    ) -> Option<TableSetting> {
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
    pub fn object_ref(&self) -> ObjectRef {
        ObjectRef::Cast {
            source: self.source.clone(),
            target: self.target.clone(),
        }
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
    pub fn keyword(self) -> &'static str {
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
    pub fn object_ref(&self) -> ObjectRef {
        let (schema, name) = (self.schema.clone(), self.name.clone());
        match self.kind {
            TextSearchKind::Dictionary => ObjectRef::TextSearchDictionary { schema, name },
            TextSearchKind::Configuration => ObjectRef::TextSearchConfiguration { schema, name },
        }
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
    pub(super) fn from_prokind(code: Option<char>) -> RoutineKind {
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
    /// From the kind [`COMMENTS`](super::sql::COMMENTS) names.
    pub(super) fn decode(kind: &str) -> Option<CommentOn> {
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

/// Everything [`describe_objects`](super::describe_objects) reads.
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
    /// Objects pgbarge does not recreate (see
    /// `NOT_RECREATED`): (kind, name, why).
    pub not_recreated: Vec<(String, String, String)>,
}
