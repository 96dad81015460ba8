//! The SQL a table's plan runs on the target — before the rows, the COPY, after the rows —
//! and what its COPY reads from the source.

use serde::Serialize;

use super::ddl::{TableNameDdl, TriggerStateDdl};
use super::{
    Action, CopyFormat, CreateSpec, Endpoint, Merge, Part, PartitionStep, SyncSpec, TablePlan,
};
use crate::catalog::{TableKind, TableName};
use crate::quote::{ident, ident_list, literal};

/// The temporary table an upsert loads into before merging.
const UPSERT_TABLE: &str = "pgbarge_upsert";

/// What one COPY reads from the source, kept as data — in the plan, its units and the
/// run recorded on the target — and made a statement only where it runs ([`Self::sql`]):
/// nothing read back from the target becomes SQL on the source, where pgbarge is often
/// a superuser.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct SourceRead {
    pub table: TableName,
    /// The columns copied, in order (none: a table without columns, whose rows still
    /// count).
    pub columns: Vec<String>,
    /// A partitioned table, read with its partitions (a query, not `COPY table`).
    pub tree: bool,
    /// Only the rows in blocks `[first, end)` (`ONLY` the table itself).
    pub blocks: Option<(i64, Option<i64>)>,
    pub format: CopyFormat,
}

impl SourceRead {
    /// `COPY … TO STDOUT`, every name quoted.
    pub fn sql(&self) -> String {
        let format = self.format.clause();
        if let Some((first, end)) = self.blocks {
            let upper = end
                .map(|end| format!(" AND ctid < '({end},0)'::pg_catalog.tid"))
                .unwrap_or_default();
            return format!(
                "COPY (SELECT {} FROM ONLY {} WHERE ctid >= '({first},0)'::pg_catalog.tid{upper}) \
                 TO STDOUT {format}",
                ident_list(self.columns.iter().map(String::as_str)),
                self.table.sql(),
            );
        }
        if self.tree {
            return format!(
                "COPY (SELECT {} FROM {}) TO STDOUT {format}",
                ident_list(self.columns.iter().map(String::as_str)),
                self.table.sql(),
            );
        }
        let list = if self.columns.is_empty() {
            String::new()
        } else {
            format!(" ({})", ident_list(self.columns.iter().map(String::as_str)))
        };
        format!("COPY {}{list} TO STDOUT {format}", self.table.sql())
    }
}

impl CreateSpec {
    /// `CREATE [UNLOGGED] TABLE name (…)` with its INHERITS, or for a typed table `… OF
    /// type` with its columns' options; then PARTITION BY and WITH (…).
    fn create_table_sql(&self, name: &TableName) -> String {
        let (partition_by, with) =
            super::ddl::partition_and_with(self.partition_by.as_deref(), &self.options);
        let unlogged = if self.unlogged { "UNLOGGED " } else { "" };
        let Some(ty) = &self.of_type else {
            let inherits = if self.inherits.is_empty() {
                String::new()
            } else {
                let parents: Vec<String> = self.inherits.iter().map(TableName::sql).collect();
                format!(" INHERITS ({})", parents.join(", "))
            };
            return format!(
                "CREATE {unlogged}TABLE {} (\n    {}\n){inherits}{partition_by}{with}",
                name.sql(),
                self.columns.join(",\n    ")
            );
        };
        let options: Vec<String> = self
            .typed_options
            .iter()
            .map(|(column, clause)| format!("{} WITH OPTIONS{clause}", ident(column)))
            .collect();
        let options = if options.is_empty() {
            String::new()
        } else {
            format!(" (\n    {}\n)", options.join(",\n    "))
        };
        format!(
            "CREATE {unlogged}TABLE {} OF {ty}{options}{partition_by}{with}",
            name.sql()
        )
    }
}

impl TablePlan {
    /// Statements run before the data, in the load's transaction (or, for a split table,
    /// the setup transaction), creating or emptying `name`.
    pub fn setup_sql(&self, name: &TableName) -> Vec<String> {
        let mut sql = Vec::new();
        match self.action {
            // A replace group drops its members together, with what depends on them.
            Action::Replace if self.replace_group.is_none() => {
                sql.push(format!("DROP TABLE {}", name.sql()))
            }
            Action::Upsert => sql.push(format!(
                "CREATE TEMPORARY TABLE {} (LIKE {} INCLUDING DEFAULTS) ON COMMIT DROP",
                ident(UPSERT_TABLE),
                name.sql()
            )),
            _ => {}
        }
        if let Some(c) = &self.create {
            sql.extend(self.create_sql(c, name));
        }
        sql.extend(self.set_aside_sql(name));
        sql
    }

    /// Statements creating `name` from `c`: the serial sequences, the table, its column
    /// settings, its partitions (a leaf that loads apart is attached from its staging
    /// table instead), its checks, then the sequences' ownership.
    fn create_sql(&self, c: &CreateSpec, name: &TableName) -> Vec<String> {
        let mut sql = c.sequences.clone();
        sql.push(c.create_table_sql(name));
        sql.extend(c.column_options.iter().map(|(column, clause)| {
            format!(
                "ALTER TABLE {} ALTER COLUMN {} {clause}",
                name.sql(),
                ident(column)
            )
        }));
        for step in &c.partitions {
            match step {
                PartitionStep::Sql(s) => sql.push(s.clone()),
                PartitionStep::Leaf { name, create } => {
                    match self.leaf_loads.iter().find(|l| &l.name == name) {
                        Some(load) => sql.extend(load.attach.iter().cloned()),
                        None => sql.extend(create.iter().cloned()),
                    }
                }
            }
        }
        sql.extend(
            c.checks
                .iter()
                .map(|(check, def)| name.add_constraint_sql(check, def)),
        );
        for (seq, col) in &c.owned_by {
            sql.push(format!(
                "ALTER SEQUENCE {} OWNED BY {}.{}",
                seq.sql(),
                name.sql(),
                ident(col)
            ));
        }
        sql
    }

    /// What of the existing table `name` is set aside for the load (put back by
    /// [`Self::finish_sql`] and [`Self::restore_sql`]) — NOT VALID constraints, forced
    /// row-level security, triggers, indexes — and its TRUNCATE.
    fn set_aside_sql(&self, name: &TableName) -> Vec<String> {
        let mut sql = Vec::new();
        for (constraint, _) in &self.unvalidated {
            sql.push(name.drop_constraint_sql(constraint));
        }
        if self.lifted_force_rls {
            sql.push(format!(
                "ALTER TABLE {} NO FORCE ROW LEVEL SECURITY",
                name.sql()
            ));
        }
        for (trigger, _) in &self.quiet_triggers {
            sql.push(format!(
                "ALTER TABLE {} DISABLE TRIGGER {}",
                name.sql(),
                ident(trigger)
            ));
        }
        if self.action == Action::Truncate && self.linked_group.is_none() {
            sql.push(format!("TRUNCATE {}", self.truncate_target(name)));
        }
        for index in &self.rebuilt_indexes {
            sql.push(match &index.constraint {
                Some((constraint, _)) => name.drop_constraint_sql(constraint),
                None => format!(
                    "DROP INDEX {}",
                    crate::quote::qualified(&name.schema, &index.name)
                ),
            });
        }
        sql
    }

    /// The indexes set aside for the load, built again as they were: the index or its
    /// constraint, then clustering, replica identity and comments.
    fn rebuild_sql(&self, name: &TableName) -> Vec<String> {
        let mut sql = Vec::new();
        for index in &self.rebuilt_indexes {
            let qualified = crate::quote::qualified(&name.schema, &index.name);
            match &index.constraint {
                Some((constraint, def)) => sql.push(name.add_constraint_sql(constraint, def)),
                None => sql.push(index.definition.clone()),
            }
            if index.clustered {
                sql.push(format!(
                    "ALTER TABLE {} CLUSTER ON {}",
                    name.sql(),
                    ident(&index.name)
                ));
            }
            if index.replica_identity {
                sql.push(format!(
                    "ALTER TABLE {} REPLICA IDENTITY USING INDEX {}",
                    name.sql(),
                    ident(&index.name)
                ));
            }
            if let Some(c) = &index.comment {
                sql.push(format!("COMMENT ON INDEX {qualified} IS {}", literal(c)));
            }
            if let (Some((constraint, _)), Some(c)) = (&index.constraint, &index.constraint_comment)
            {
                sql.push(format!(
                    "COMMENT ON CONSTRAINT {} ON {} IS {}",
                    ident(constraint),
                    name.sql(),
                    literal(c)
                ));
            }
        }
        sql
    }

    /// What `TRUNCATE` names: `ONLY` the table (never inheritance children), except for
    /// a partitioned table, whose rows are its partitions'.
    pub fn truncate_target(&self, name: &TableName) -> String {
        if self.target_partitioned {
            name.sql()
        } else {
            format!("ONLY {}", name.sql())
        }
    }

    /// Where the COPY goes: the table itself, or for an upsert the temporary table the
    /// rows are merged from.
    pub fn load_into(&self, name: &TableName) -> TableName {
        if self.action == Action::Upsert {
            TableName::new("pg_temp", UPSERT_TABLE)
        } else {
            name.clone()
        }
    }

    /// Statements run after the data: the primary key, or an upsert's merge.
    pub fn finish_sql(&self, name: &TableName) -> Vec<String> {
        let mut sql: Vec<String> = if self.action == Action::Upsert {
            vec![self.upsert_sql(name)]
        } else {
            self.create
                .iter()
                .filter_map(|c| c.primary_key.as_ref())
                .map(|(pk, def)| name.add_constraint_sql(pk, def))
                .collect()
        };
        sql.extend(self.rebuild_sql(name));
        // What was set aside for the load, put back as it was.
        sql.extend(self.quiet_triggers.iter().map(|(trigger, enabled)| {
            format!(
                "ALTER TABLE {} {} TRIGGER {}",
                name.sql(),
                enabled.alter_clause(),
                ident(trigger)
            )
        }));
        sql.extend(
            self.unvalidated
                .iter()
                .map(|(constraint, def)| name.add_constraint_sql(constraint, def)),
        );
        sql
    }

    /// The load's last statement, after its sequences are set (which reads the table):
    /// row-level security forced again, if it was set aside.
    pub fn restore_sql(&self, name: &TableName) -> Option<String> {
        self.lifted_force_rls
            .then(|| format!("ALTER TABLE {} FORCE ROW LEVEL SECURITY", name.sql()))
    }

    /// `INSERT … ON CONFLICT (key) DO UPDATE`, touching only rows whose values changed.
    fn upsert_sql(&self, name: &TableName) -> String {
        Merge {
            target: name,
            staging: &TableName::new("pg_temp", UPSERT_TABLE),
            columns: &self.copied_columns().collect::<Vec<_>>(),
            key: &self.upsert_key,
            identity_always: &self.identity_always,
            only_changed: true,
        }
        .sql()
    }

    /// For [`Action::Sync`]: what the copy stage compares and repairs, from `source`.
    pub fn sync_spec(&self, source: &Endpoint) -> Option<SyncSpec> {
        let sync = self.sync.as_ref().filter(|_| self.action == Action::Sync)?;
        Some(SyncSpec {
            source_server: source.connection.clone(),
            source: self.source.clone(),
            target: self.target.clone(),
            columns: self.copied_columns().map(str::to_string).collect(),
            key: sync.key.clone(),
            since: sync.since.clone(),
            value_hashes: self.columns.iter().map(|c| c.value_hash).collect(),
            format: self.format,
            staging: format!("pgbarge_sync_{:016x}", fnv1a(&self.target.to_string())),
            source_partitioned: self.source_kind == TableKind::Partitioned,
            target_partitioned: self.target_partitioned,
            estimated_rows: self.estimated_rows.unwrap_or(0),
            identity_always: self.identity_always.clone(),
        })
    }

    fn format_clause(&self) -> &'static str {
        self.format.clause()
    }

    /// What one COPY reads from the source: the whole table, or blocks `part` of it. A
    /// partitioned table is read through a query so that its partitions' rows are
    /// included.
    pub fn read(&self, part: Option<&Part>) -> SourceRead {
        if part.is_some() {
            return self.range_read(&self.source, part);
        }
        SourceRead {
            tree: self.source_kind == TableKind::Partitioned,
            ..self.range_read(&self.source, None)
        }
    }

    /// What one COPY reads of source table `from` (one of this table's leaves), or of
    /// blocks `part` of it.
    pub fn range_read(&self, from: &TableName, part: Option<&Part>) -> SourceRead {
        SourceRead {
            table: from.clone(),
            columns: self.copied_columns().map(str::to_string).collect(),
            tree: false,
            blocks: part.map(|p| (p.first_block, p.end_block)),
            format: self.format,
        }
    }

    /// ` ("a", "b")` for a COPY statement, or nothing for a table without columns (whose
    /// rows still count: `COPY t ()` is a syntax error, `COPY t` copies them). Generated
    /// columns are left out by COPY itself when no list is given.
    fn column_list(&self) -> String {
        if self.columns.is_empty() {
            String::new()
        } else {
            format!(" ({})", ident_list(self.copied_columns()))
        }
    }

    /// `COPY … FROM STDIN` into `name` (the target table, or its staging table).
    pub fn copy_in_sql(&self, name: &TableName) -> String {
        format!(
            "COPY {}{} FROM STDIN {}",
            name.sql(),
            self.column_list(),
            self.format_clause()
        )
    }
}

/// A stable 64-bit hash (FNV-1a) for names derived from table names: the same in every
/// run, short enough for an identifier whatever the table's name.
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}
