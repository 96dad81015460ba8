//! Preflight: every reason the plan cannot run, found before anything is written.
//!
//! A pure function of the plan, the snapshot of both servers and the patterns that matched
//! nothing. It reports every problem at once, so a user fixes them in one round rather
//! than discovering them one failed run at a time.

use std::fmt;

use serde::Serialize;

use crate::catalog::{ObjectRef, Privileges, Snapshot, Table, TableName, TypeDefinition};
use crate::plan::{Action, ColumnRoute, Content, Plan, TablePlan};
use crate::select::Unmatched;

/// What kind of problem; lets callers (the interactive prompt, tests) react to some kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    MissingTable,
    AmbiguousTable,
    MissingColumn,
    TypeMismatch,
    RequiredTargetColumn,
    TargetHoldsRows,
    MissingPrivilege,
    UnsupportedType,
    EnumLabels,
    ReferencedByForeignKeys,
    /// Chosen tables reference tables (foreign keys) that are neither chosen nor on the
    /// target.
    RelatedTables,
    /// An object the copy needs (extension, function) cannot be created by the role.
    UnsupportedObject,
    /// The `--owner` role does not exist on the target, or the role may not act as it.
    Owner,
    /// The target's partitioned table lacks partitions the source's rows go to.
    MissingPartition,
    /// Row-level security would hide rows from the source role, or refuse COPY into
    /// the target table.
    RowSecurity,
    /// `--mode upsert` needs the target's primary key, and it has none usable.
    NoUpsertKey,
    /// A target column is generated, so it cannot be loaded.
    GeneratedOnTarget,
    /// A table's `oid`/`lo` columns may point at large objects, which are not copied.
    LargeObjects,
    /// Following needs logical decoding on the source (`wal_level`, a replication role,
    /// a free slot, ownership for the publication).
    LogicalDecoding,
    /// A followed table has no key to find its updated and deleted rows by.
    NoReplicaIdentity,
    /// The run would create or load objects in the schema pgbarge keeps its ledger in.
    LedgerSchema,
    /// Following would fire the target's triggers otherwise than native replication.
    ApplyTriggers,
}

/// One problem, with what to do about it.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    pub kind: ProblemKind,
    pub table: Option<TableName>,
    pub message: String,
    pub hint: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.message)?;
        if !self.hint.is_empty() {
            write!(f, " {}", self.hint)?;
        }
        Ok(())
    }
}

fn problem(kind: ProblemKind, table: Option<&TableName>, message: String, hint: String) -> Problem {
    Problem {
        kind,
        table: table.cloned(),
        message,
        hint,
    }
}

/// Checks the plan; an empty list means it can run.
pub fn check(plan: &Plan, snapshot: &Snapshot, unmatched: &[Unmatched]) -> Vec<Problem> {
    let mut problems = Vec::new();
    large_objects(plan, snapshot, &mut problems);
    unmatched_patterns(unmatched, &mut problems);
    types(plan, snapshot, &mut problems);
    check_schema(plan, snapshot, &mut problems);
    missing_partitions(plan, snapshot, &mut problems);
    enum_labels(snapshot, &mut problems);
    for t in &plan.tables {
        source_access(t, snapshot, &mut problems);
        target_access(plan, t, snapshot, &mut problems);
        for_the_action(plan, t, snapshot, &mut problems);
        columns(t, &mut problems);
    }
    name_the_role(plan, &mut problems);
    problems
}

/// Patterns that matched no table, or an unqualified name in several schemas.
fn unmatched_patterns(unmatched: &[Unmatched], problems: &mut Vec<Problem>) {
    for u in unmatched {
        if !u.ambiguous.is_empty() {
            let names: Vec<String> = u.ambiguous.iter().map(|n| n.to_string()).collect();
            problems.push(problem(
                ProblemKind::AmbiguousTable,
                None,
                format!(
                    "table \"{}\" exists in several schemas on the source: {}.",
                    u.pattern,
                    names.join(", ")
                ),
                "Name it with its schema, e.g. schema.table.".into(),
            ));
        } else {
            let hint = if u.suggestions.is_empty() {
                "Run `pgbarge tables` (or `pgbarge copy` in a terminal) to see the source's tables."
                    .to_string()
            } else {
                let s: Vec<String> = u.suggestions.iter().map(|n| n.to_string()).collect();
                format!("Did you mean {}?", s.join(" or "))
            };
            problems.push(problem(
                ProblemKind::MissingTable,
                None,
                format!("no table on the source matches \"{}\".", u.pattern),
                hint,
            ));
        }
    }
}

/// Whether the target role may create objects in `schema` (or create the schema).
fn may_create_in(snapshot: &Snapshot, schema: &str) -> bool {
    let privileges = &snapshot.target_privileges;
    privileges.is_superuser
        || match privileges.create_in_schema.get(schema) {
            Some(ok) => *ok,
            None => privileges.create_in_database,
        }
}

/// Types the target lacks that pgbarge cannot create, or may not create there.
fn types(plan: &Plan, snapshot: &Snapshot, problems: &mut Vec<Problem>) {
    let target_role = &plan.target.connection;
    for t in &plan.types {
        if let Some(why) = &t.unsupported {
            problems.push(problem(
                ProblemKind::UnsupportedType,
                None,
                format!("type {} is needed on the target, which lacks it, and {why}.", t.name),
                "Create it on the target first (for an extension type: CREATE EXTENSION …), then run again.".into(),
            ));
        } else if !may_create_in(snapshot, &t.schema) {
            problems.push(problem(
                ProblemKind::MissingPrivilege,
                None,
                format!(
                    "type {} must be created on the target, but the role ({target_role}) may not create objects in schema \"{}\".",
                    t.name, t.schema
                ),
                format!("Ask an administrator to run: GRANT CREATE ON SCHEMA {} TO <role>; or create the type first.", crate::quote::ident(&t.schema)),
            ));
        }
    }
}

/// Rows of a partitioned table loaded into an existing one are routed by the target:
/// a partition it lacks would make them fail (or land in its default partition).
fn missing_partitions(plan: &Plan, snapshot: &Snapshot, problems: &mut Vec<Problem>) {
    for t in plan
        .tables
        .iter()
        .filter(|t| t.target_partitioned && !matches!(t.action, Action::Create | Action::Replace))
    {
        let missing: Vec<String> = snapshot
            .source_objects
            .partitions
            .get(&t.source)
            .into_iter()
            .flatten()
            .filter(|p| !snapshot.target_tables.contains_key(&p.name))
            .map(|p| p.name.to_string())
            .collect();
        if !missing.is_empty() {
            problems.push(problem(
                ProblemKind::MissingPartition,
                Some(&t.target),
                format!(
                    "{}: the target's partitioned table lacks the source's {} {}.",
                    t.target,
                    if missing.len() == 1 { "partition" } else { "partitions" },
                    missing.join(", ")
                ),
                "Create them on the target (CREATE TABLE … PARTITION OF …), or copy with --mode replace to recreate the table with all its partitions.".into(),
            ));
        }
    }
}

/// Enums on the target that lack labels the source's rows may hold.
fn enum_labels(snapshot: &Snapshot, problems: &mut Vec<Problem>) {
    for ut in &snapshot.source.types {
        if let (TypeDefinition::Enum { labels }, Some(existing)) = (
            &ut.definition,
            snapshot
                .target_types
                .get(&(ut.schema.clone(), ut.name.clone())),
        ) {
            let missing: Vec<&String> = labels
                .iter()
                .filter(|l| !existing.enum_labels.contains(l))
                .collect();
            if !missing.is_empty() {
                problems.push(problem(
                    ProblemKind::EnumLabels,
                    None,
                    format!(
                        "enum {}.{} on the target lacks the source's labels {:?}.",
                        ut.schema, ut.name, missing
                    ),
                    "Add them on the target (ALTER TYPE … ADD VALUE …), then run again.".into(),
                ));
            }
        }
    }
}

/// The source role must see every row of the table.
fn source_access(t: &TablePlan, snapshot: &Snapshot, problems: &mut Vec<Problem>) {
    if let Some(src) = snapshot.source.tables.get(&t.source) {
        if src.table.row_security_applies {
            problems.push(problem(
                ProblemKind::RowSecurity,
                Some(&t.source),
                format!("{}: row-level security policies apply to the source role, so it would see only some of the rows.", t.source),
                "Copy as the table's owner (without FORCE ROW LEVEL SECURITY), a superuser or a role with BYPASSRLS.".into(),
            ));
        }
        if !src.table.can_select {
            problems.push(problem(
                ProblemKind::MissingPrivilege,
                Some(&t.source),
                format!("{}: the source role may not read this table.", t.source),
                format!("GRANT SELECT ON {} TO <source role>;", t.source.sql()),
            ));
        }
    }
}

/// Row-level security on an existing target table, and what a replace would drop.
fn target_access(plan: &Plan, t: &TablePlan, snapshot: &Snapshot, problems: &mut Vec<Problem>) {
    let name = &t.target;
    let target_role = &plan.target.connection;
    let target_table = snapshot.target_tables.get(name);
    let target_detail = snapshot.target.tables.get(name);
    if let (Some(_), Some(tt)) = (target_detail, target_table) {
        let loads_existing = matches!(
            t.action,
            Action::Load
                | Action::Append
                | Action::Truncate
                | Action::Upsert
                | Action::Sync
                | Action::NeedsMode
        );
        if loads_existing && tt.row_security_applies && !t.lifted_force_rls {
            problems.push(problem(
                ProblemKind::RowSecurity,
                Some(name),
                format!("{name}: row-level security applies to the role ({target_role}) on the target table, and PostgreSQL refuses COPY FROM into such a table."),
                format!("Have its owner run ALTER TABLE {} NO FORCE ROW LEVEL SECURITY (if the role owns it) for the load, or copy as a role with BYPASSRLS.", name.sql()),
            ));
        }
        if t.action == Action::Replace {
            replace_dependents(plan, t, snapshot, problems);
        }
    }
}

/// What the table's action needs: ownership to replace, a key and privileges to
/// upsert, a schema to create in, privileges and free references to load and truncate.
fn for_the_action(plan: &Plan, t: &TablePlan, snapshot: &Snapshot, problems: &mut Vec<Problem>) {
    let mut check = ActionCheck {
        plan,
        t,
        snapshot,
        name: &t.target,
        target_role: &plan.target.connection,
        privileges: &snapshot.target_privileges,
        target_table: snapshot.target_tables.get(&t.target),
        problems,
    };
    match t.action {
        Action::Keep => {}
        Action::Replace => check.replace(),
        Action::Upsert => check.upsert(),
        Action::Sync => check.sync(),
        Action::Create if plan.content == Content::DataOnly => check.not_created(),
        Action::Create => check.create(),
        Action::NeedsMode | Action::Load | Action::Append | Action::Truncate => check.load(),
    }
}

/// One table's action checked against the target role's rights and the target table
/// ([`for_the_action`]); each method covers one action and adds what it finds.
struct ActionCheck<'a> {
    plan: &'a Plan,
    t: &'a TablePlan,
    snapshot: &'a Snapshot,
    name: &'a TableName,
    target_role: &'a str,
    privileges: &'a Privileges,
    /// The target table, when it exists.
    target_table: Option<&'a Table>,
    problems: &'a mut Vec<Problem>,
}

impl ActionCheck<'_> {
    fn push(&mut self, kind: ProblemKind, message: String, hint: String) {
        self.problems
            .push(problem(kind, Some(self.name), message, hint));
    }

    /// Dropping and recreating the table takes owning it.
    fn replace(&mut self) {
        let (name, target_role) = (self.name, self.target_role);
        if !self.privileges.is_superuser && !self.target_table.is_some_and(|tt| tt.is_owner) {
            self.push(
                ProblemKind::MissingPrivilege,
                format!("{name}: --mode replace drops and recreates the target table, but the role ({target_role}) does not own it."),
                "Use --mode truncate or append, or have its owner run: ALTER TABLE … OWNER TO <role>;".into(),
            );
        }
    }

    /// Upserting matches rows by the target's primary key, which the copied columns
    /// must hold, and inserts and updates.
    fn upsert(&mut self) {
        let (t, name, target_role) = (self.t, self.name, self.target_role);
        let copied: Vec<&str> = t.copied_columns().collect();
        if t.upsert_key.is_empty() {
            self.push(
                ProblemKind::NoUpsertKey,
                format!("{name}: --mode upsert matches rows by the target's primary key, and this target table has none."),
                format!("Add one on the target (ALTER TABLE {} ADD PRIMARY KEY (…);), or use --mode append or truncate.", name.sql()),
            );
        } else if let Some(k) = t.upsert_key.iter().find(|k| !copied.contains(&k.as_str())) {
            self.push(
                ProblemKind::NoUpsertKey,
                format!("{name}: the target's primary key column \"{k}\" is not among the source's columns, so rows cannot be matched for --mode upsert."),
                "Use --mode append or truncate.".into(),
            );
        }
        if let Some(tt) = self.target_table {
            if !(self.privileges.is_superuser || tt.can_insert && tt.can_update) {
                self.push(
                    ProblemKind::MissingPrivilege,
                    format!("{name}: --mode upsert needs INSERT and UPDATE on the target table, and the role ({target_role}) lacks one."),
                    format!("Ask its owner to run: GRANT INSERT, UPDATE ON {} TO <role>;", name.sql()),
                );
            }
        }
    }

    /// Syncing reads the target table to compare it, then writes what differs: updates
    /// only when rows have a key to match them by.
    fn sync(&mut self) {
        let (name, target_role) = (self.name, self.target_role);
        let keyed = self.t.sync.as_ref().is_some_and(|s| !s.key.is_empty());
        let Some(tt) = self.target_table else {
            return;
        };
        let (may, needs) = if keyed {
            (
                tt.can_select && tt.can_insert && tt.can_update && tt.can_delete,
                "SELECT, INSERT, UPDATE, DELETE",
            )
        } else {
            (
                tt.can_select && tt.can_insert && tt.can_delete,
                "SELECT, INSERT, DELETE",
            )
        };
        if !(self.privileges.is_superuser || may) {
            self.push(
                ProblemKind::MissingPrivilege,
                format!("{name}: --mode sync reads the target table and inserts, updates and deletes its rows, and the role ({target_role}) lacks one of {needs} on it."),
                format!("Ask its owner to run: GRANT {needs} ON {} TO <role>;", name.sql()),
            );
        }
    }

    /// A table to create, in a run that creates no tables (`--data-only`).
    fn not_created(&mut self) {
        let name = self.name;
        self.push(
            ProblemKind::MissingTable,
            format!(
                "{name}: does not exist on the target, and --data-only does not create tables."
            ),
            "Create it on the target first, or run without --data-only to have pgbarge create it."
                .into(),
        );
    }

    /// Creating the table takes CREATE in its schema, or on the database when the
    /// schema is to be created too.
    fn create(&mut self) {
        let (name, target_role) = (self.name, self.target_role);
        if may_create_in(self.snapshot, &name.schema) {
            return;
        }
        let (what, fix) = if self.privileges.create_in_schema.contains_key(&name.schema) {
            (
                format!("create tables in schema \"{}\"", name.schema),
                format!(
                    "GRANT CREATE ON SCHEMA {} TO <role>;",
                    crate::quote::ident(&name.schema)
                ),
            )
        } else {
            (
                format!(
                    "create schema \"{}\" (it does not exist on the target)",
                    name.schema
                ),
                "GRANT CREATE ON DATABASE <db> TO <role>; or create the schema first.".to_string(),
            )
        };
        self.push(
            ProblemKind::MissingPrivilege,
            format!("{name}: does not exist on the target, and the role ({target_role}) may not {what}."),
            format!("Ask an administrator to run: {fix} Or create the table on the target yourself and run again."),
        );
    }

    /// Loading into an existing table: a mode said when it holds rows, INSERT, and
    /// for a truncate, TRUNCATE and no foreign keys from tables left alone.
    fn load(&mut self) {
        let (name, target_role) = (self.name, self.target_role);
        let action = self.t.action;
        if action == Action::NeedsMode {
            self.push(
                ProblemKind::TargetHoldsRows,
                format!("{name}: the target table already holds rows."),
                "Say what to do with them: --mode append (add the source's rows), --mode sync (move only the rows that differ: insert, update, delete), --mode truncate (empty the table first, in the same transaction), --mode upsert (insert new rows, update changed ones by primary key) or --mode replace (drop and recreate it from the source's definition).".into(),
            );
        }
        let Some(tt) = self.target_table else {
            return;
        };
        if !self.privileges.is_superuser && !tt.can_insert {
            self.push(
                ProblemKind::MissingPrivilege,
                format!("{name}: the target role ({target_role}) may not INSERT into this table."),
                format!(
                    "Ask its owner to run: GRANT INSERT ON {} TO <role>;",
                    name.sql()
                ),
            );
        }
        if action != Action::Truncate {
            return;
        }
        let outside = self.referenced_from_outside();
        if !outside.is_empty() {
            self.push(
                ProblemKind::ReferencedByForeignKeys,
                format!(
                    "{name}: cannot be truncated on the target: {} {} foreign keys pointing at it and {} not truncated in this run, and pgbarge never truncates with CASCADE.",
                    crate::text::short_list(&outside, 5),
                    if outside.len() == 1 { "has" } else { "have" },
                    if outside.len() == 1 { "is" } else { "are" },
                ),
                "Copy the referencing tables in the same run with --mode truncate (they are then emptied together), copy this one with --mode append, or empty the referencing tables first.".into(),
            );
        }
        if !self.privileges.is_superuser && !tt.can_truncate {
            self.push(
                ProblemKind::MissingPrivilege,
                format!("{name}: the target role ({target_role}) may not TRUNCATE this table."),
                format!(
                    "Ask its owner to run: GRANT TRUNCATE ON {} TO <role>; or use --mode append.",
                    name.sql()
                ),
            );
        }
    }

    /// The target tables with foreign keys to this one, but those truncated in the same
    /// statement (its linked group), which do not count.
    fn referenced_from_outside(&self) -> Vec<&'_ TableName> {
        let plan = self.plan;
        let linked = |child: &TableName| {
            self.t.linked_group.is_some_and(|g| {
                plan.linked_groups[g]
                    .iter()
                    .any(|&i| &plan.tables[i].target == child)
            })
        };
        self.snapshot
            .target
            .tables
            .get(self.name)
            .map(|d| d.others.referenced_by.as_slice())
            .unwrap_or_default()
            .iter()
            .filter(|child| !linked(child))
            .collect()
    }
}

/// Columns that cannot be loaded as they are, and target columns that need a value.
fn columns(t: &TablePlan, problems: &mut Vec<Problem>) {
    let name = &t.target;
    for c in &t.columns {
        match &c.route {
            ColumnRoute::Identical | ColumnRoute::Text => {}
            ColumnRoute::MissingOnTarget => problems.push(problem(
                ProblemKind::MissingColumn,
                Some(name),
                format!("{name}: column \"{}\" ({}) exists on the source but not on the target.", c.name, c.source_type),
                format!("Add it on the target: ALTER TABLE {} ADD COLUMN {} {};", name.sql(), crate::quote::ident(&c.name), c.source_type),
            )),
            ColumnRoute::GeneratedOnTarget => problems.push(problem(
                ProblemKind::GeneratedOnTarget,
                Some(name),
                format!("{name}: column \"{}\" is a generated column on the target, so it cannot be loaded.", c.name),
                "Make it a plain column on the target, or drop the generation expression.".into(),
            )),
            ColumnRoute::Refused(why) => problems.push(problem(
                ProblemKind::TypeMismatch,
                Some(name),
                format!("{name}: column \"{}\": {why}.", c.name),
                format!(
                    "Change the target column to a type that can hold the data (e.g. ALTER TABLE {} ALTER COLUMN {} TYPE {};).",
                    name.sql(), crate::quote::ident(&c.name), c.source_type
                ),
            )),
        }
    }
    for col in &t.target_only_required {
        problems.push(problem(
            ProblemKind::RequiredTargetColumn,
            Some(name),
            format!("{name}: target column \"{col}\" is NOT NULL without a default, and the source has no such column."),
            format!("Give it a default or drop NOT NULL on the target: ALTER TABLE {} ALTER COLUMN {} DROP NOT NULL;", name.sql(), crate::quote::ident(col)),
        ));
    }
}

/// The hints name the role and database the user connected with, ready to paste.
fn name_the_role(plan: &Plan, problems: &mut [Problem]) {
    // `user@host:port/db`; a user name may itself hold an `@` (Azure: user@server).
    let role = plan
        .target
        .connection
        .rsplit_once('@')
        .map_or("", |(user, _)| user);
    for p in problems.iter_mut() {
        p.hint = p
            .hint
            .replace("<role>", &crate::quote::ident(role))
            .replace("<db>", &crate::quote::ident(&plan.target.database));
    }
}

/// Problems with the objects besides the tables: extensions the target cannot install,
/// routines the role cannot create, foreign keys to tables left behind, the `--owner`.
fn check_schema(plan: &Plan, snapshot: &Snapshot, problems: &mut Vec<Problem>) {
    let superuser = snapshot.target_privileges.is_superuser;
    for name in &plan.schema.extensions {
        let (message, hint) = match snapshot.target_extensions.get(name) {
            None => (
                format!("extension \"{name}\" is needed on the target (the copied tables or schemas use it), and the target server does not offer it."),
                "Install it on the target server (on a managed service: check its list of supported extensions), or leave out the tables that use it.".to_string(),
            ),
            Some(false) if !superuser => (
                format!("extension \"{name}\" is needed on the target, and only a superuser (or the provider's admin role) may create it there."),
                format!("Ask an administrator to run: CREATE EXTENSION {};", crate::quote::ident(name)),
            ),
            Some(_) => continue,
        };
        problems.push(problem(ProblemKind::UnsupportedObject, None, message, hint));
    }
    for s in plan.schema.skipped.iter().filter(|s| s.blocking) {
        problems.push(problem(
            ProblemKind::UnsupportedObject,
            None,
            format!("{} cannot be created on the target: {}.", s.what, s.why),
            "Create it on the target first (pgbarge then leaves it as it is), or leave out what uses it.".into(),
        ));
    }
    for (table, parents) in &plan.schema.missing_parents {
        let mut names: Vec<String> = parents.iter().map(|p| p.to_string()).collect();
        names.sort();
        names.dedup();
        problems.push(problem(
            ProblemKind::RelatedTables,
            Some(table),
            format!(
                "{table}: it needs {} (its foreign keys reference it, it inherits from it, or a column has its row type), which {} not being copied and not on the target.",
                names.join(", "),
                if names.len() == 1 { "is" } else { "are" }
            ),
            "Add --with-parents to copy those tables too, or --without-fks to create the table without the foreign keys.".into(),
        ));
    }
    roles_missing(
        problems,
        &plan.schema.missing_policy_roles,
        "row-level security policies of the copied tables apply to",
        "Create them on the target first (CREATE ROLE …), so the policies mean the same there.",
    );
    roles_missing(
        problems,
        &plan.schema.missing_roles,
        "--grants: the source grants privileges to",
        "Create them on the target first (CREATE ROLE …), or run without --grants.",
    );
    if let Some(owner) = &plan.owner {
        let has = |object: ObjectRef| snapshot.target_existing.contains(&object);
        let role_exists = has(ObjectRef::Role(owner.clone()));
        if !role_exists {
            problems.push(problem(
                ProblemKind::Owner,
                None,
                format!("--owner {owner}: no such role on the target."),
                "Create the role on the target first, or name an existing one.".into(),
            ));
        } else if !superuser && !has(ObjectRef::MemberOf(owner.clone())) {
            problems.push(problem(
                ProblemKind::Owner,
                None,
                format!("--owner {owner}: the connected role is not a member of \"{owner}\", so it may not give objects to it."),
                format!("Ask an administrator to run: GRANT {} TO <role>;", crate::quote::ident(owner)),
            ));
        }
        let mut schemas: Vec<&String> = plan
            .tables
            .iter()
            .filter(|t| matches!(t.action, Action::Create | Action::Replace))
            .map(|t| &t.target.schema)
            .chain(&plan.whole_schemas)
            .filter(|s| snapshot.target_privileges.create_in_schema.contains_key(*s))
            .collect();
        schemas.sort();
        schemas.dedup();
        for s in schemas {
            if role_exists
                && !has(ObjectRef::MayCreateIn {
                    role: owner.clone(),
                    schema: s.clone(),
                })
            {
                problems.push(problem(
                    ProblemKind::Owner,
                    None,
                    format!("--owner {owner}: the role may not create objects in schema \"{s}\" on the target, so objects there cannot be given to it."),
                    format!("Ask an administrator to run: GRANT CREATE ON SCHEMA {} TO {};", crate::quote::ident(s), crate::quote::ident(owner)),
                ));
            }
        }
    }
}

/// One problem naming every role in `roles` (if any) that the target lacks.
fn roles_missing(
    problems: &mut Vec<Problem>,
    roles: &std::collections::BTreeSet<String>,
    what: &str,
    hint: &str,
) {
    if roles.is_empty() {
        return;
    }
    let names: Vec<&str> = roles.iter().map(String::as_str).collect();
    problems.push(problem(
        ProblemKind::Owner,
        None,
        format!(
            "{what} role{} {}, which the target lacks.",
            if names.len() == 1 { "" } else { "s" },
            names.join(", ")
        ),
        hint.into(),
    ));
}

/// Large objects live outside the tables (in `pg_largeobject`), and pgbarge does not copy
/// them yet: a table whose `oid` or `lo` columns may point at some would arrive with
/// references to nothing — and `verify`, which compares the columns, would call it equal.
/// Refused, never silent.
fn large_objects(plan: &Plan, snapshot: &Snapshot, problems: &mut Vec<Problem>) {
    if snapshot.source_large_objects == 0 || plan.content == Content::SchemaOnly {
        return;
    }
    for t in &plan.tables {
        let Some(detail) = snapshot.source.tables.get(&t.source) else {
            continue;
        };
        let columns: Vec<&str> = detail
            .columns
            .iter()
            .filter(|c| crate::catalog::refers_to_large_objects(&c.ty))
            .map(|c| c.name.as_str())
            .collect();
        if columns.is_empty() {
            continue;
        }
        problems.push(problem(
            ProblemKind::LargeObjects,
            Some(&t.source),
            format!(
                "{}: column{} {} may point at large objects (the source holds {}), and pgbarge \
                 does not copy large objects yet: the copy would keep the numbers and lose \
                 what they point at.",
                t.source,
                if columns.len() == 1 { "" } else { "s" },
                columns
                    .iter()
                    .map(|c| format!("\"{c}\""))
                    .collect::<Vec<_>>()
                    .join(", "),
                snapshot.source_large_objects
            ),
            format!(
                "Copy this table with pg_dump --large-objects -t {} | psql, or leave it out \
                 (--exclude {}).",
                t.source.sql(),
                t.source
            ),
        ));
    }
}

/// `1 table`, `3 tables`.
/// A replaced table's dependents the role cannot drop and create again: other tables'
/// foreign keys (it must own those tables) and views (it must own them).
fn replace_dependents(
    plan: &Plan,
    t: &TablePlan,
    snapshot: &Snapshot,
    problems: &mut Vec<Problem>,
) {
    // Keys of tables replaced too go with them.
    let replaced = |name: &TableName| {
        plan.tables
            .iter()
            .any(|t| t.action == Action::Replace && &t.target == name)
    };
    let name = &t.target;
    let superuser = snapshot.target_privileges.is_superuser;
    let dependents = &snapshot.target_dependents;
    let mut views: Vec<String> = dependents
        .views
        .iter()
        .filter(|v| !superuser && !v.may_drop && v.reads.contains(name))
        .map(|v| v.view.name.to_string())
        .collect();
    views.extend(
        dependents
            .routines
            .iter()
            .filter(|r| !superuser && !r.may_drop && r.uses.contains(name))
            .map(|r| format!("function {}", r.signature)),
    );
    if !views.is_empty() {
        problems.push(problem(
            ProblemKind::ReferencedByForeignKeys,
            Some(name),
            format!(
                "{name}: cannot be replaced on the target: {}, built on it, {} owned by another role, so pgbarge cannot drop and create {} again (it never drops with CASCADE).",
                crate::text::short_list(&views, 5),
                if views.len() == 1 { "is" } else { "are" },
                if views.len() == 1 { "it" } else { "them" },
            ),
            "Use --mode truncate, copy as their owner, or have their owner drop them first.".into(),
        ));
    }
    let children: Vec<&TableName> = dependents
        .children
        .iter()
        .filter(|(parent, child)| parent == name && !replaced(child))
        .map(|(_, child)| child)
        .collect();
    if !children.is_empty() {
        problems.push(problem(
            ProblemKind::ReferencedByForeignKeys,
            Some(name),
            format!(
                "{name}: cannot be replaced on the target: {} {} from it and {} not replaced in this run, and pgbarge never drops with CASCADE.",
                crate::text::short_list(&children, 5),
                if children.len() == 1 { "inherits" } else { "inherit" },
                if children.len() == 1 { "is" } else { "are" },
            ),
            "Replace them too (add them to the run), or use --mode truncate.".into(),
        ));
    }
    let mut tables: Vec<&TableName> = dependents
        .foreign_keys
        .iter()
        .filter(|k| !superuser && !k.may_alter && &k.key.references == name)
        .filter(|k| !replaced(&k.root))
        .map(|k| &k.key.table)
        .collect();
    tables.dedup();
    if !tables.is_empty() {
        problems.push(problem(
            ProblemKind::ReferencedByForeignKeys,
            Some(name),
            format!(
                "{name}: cannot be replaced on the target: foreign keys of {} point at it, and the role may not drop and add them back (it does not own {}).",
                crate::text::short_list(&tables, 5),
                if tables.len() == 1 { "that table" } else { "those tables" },
            ),
            "Use --mode truncate, or copy as the owner of the referencing tables.".into(),
        ));
    }
}

#[cfg(test)]
mod tests {
    //! The checks on plans and catalog snapshots built here, without a server.

    use super::*;
    use crate::plan::fixtures::{plan, table};
    use crate::plan::ColumnPlan;

    fn kinds(problems: &[Problem]) -> Vec<ProblemKind> {
        problems.iter().map(|p| p.kind).collect()
    }

    #[test]
    fn columns_that_cannot_load_are_named_with_the_fix() {
        let mut t = table("orders", Action::Append, 0);
        t.columns = vec![
            ColumnPlan {
                value_hash: Default::default(),
                name: "note".into(),
                source_type: "text".into(),
                target_type: None,
                route: ColumnRoute::MissingOnTarget,
            },
            ColumnPlan {
                value_hash: Default::default(),
                name: "total".into(),
                source_type: "numeric(12,2)".into(),
                target_type: Some("integer".into()),
                route: ColumnRoute::Refused("integer cannot hold numeric(12,2)".into()),
            },
        ];
        t.target_only_required = vec!["region".into()];
        let mut problems = Vec::new();
        columns(&t, &mut problems);
        assert_eq!(
            kinds(&problems),
            vec![
                ProblemKind::MissingColumn,
                ProblemKind::TypeMismatch,
                ProblemKind::RequiredTargetColumn
            ]
        );
        assert!(problems[0]
            .hint
            .contains("ALTER TABLE \"public\".\"orders\" ADD COLUMN \"note\" text;"));
    }

    #[test]
    fn an_upsert_needs_the_targets_key_among_the_copied_columns() {
        let snapshot = Snapshot::default();
        let mut without_key = table("orders", Action::Upsert, 0);
        without_key.columns = Vec::new();
        let p = plan(vec![without_key.clone()]);
        let mut problems = Vec::new();
        for_the_action(&p, &p.tables[0], &snapshot, &mut problems);
        assert_eq!(kinds(&problems), vec![ProblemKind::NoUpsertKey]);

        let mut keyed = without_key;
        keyed.upsert_key = vec!["id".into()];
        let p = plan(vec![keyed]);
        let mut problems = Vec::new();
        for_the_action(&p, &p.tables[0], &snapshot, &mut problems);
        assert!(problems[0]
            .message
            .contains("\"id\" is not among the source's columns"));
    }

    #[test]
    fn hints_name_the_connected_role_and_database() {
        let mut snapshot = Snapshot::default();
        snapshot.target_privileges.create_in_database = false;
        let p = plan(vec![table("orders", Action::Create, 0)]);
        let problems = check(&p, &snapshot, &[]);
        assert_eq!(kinds(&problems), vec![ProblemKind::MissingPrivilege]);
        assert!(
            problems[0]
                .hint
                .contains("GRANT CREATE ON DATABASE \"app\" TO \"app\";"),
            "{}",
            problems[0].hint
        );
    }
}
