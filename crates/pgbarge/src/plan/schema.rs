//! The schema half of the plan: which objects besides the tables' own columns are created
//! on the target, as SQL, in an order that works — before the tables (extensions,
//! sequences, functions the tables' defaults call) or after all data is in (foreign keys,
//! views, triggers, rules, comments, ownership), the way pg_dump splits pre- and
//! post-data. A table's own secondary indexes and unique/exclusion constraints are built
//! by the stream that loads it, right after its rows (see `TablePlan::after_data`).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::ddl::{
    CastDdl, OperatorDdl, SequenceParametersDdl, TableObjectDdl, TextSearchDdl, TriggerStateDdl,
    ViewDdl,
};
use super::ObjectKind;
use crate::catalog::{
    Aggregate, AggregateKind, CastMethod, Comment, CommentOn, ObjectRef, Routine, RoutineKind,
    SchemaObjects, Snapshot, TableName, TableObjectKind, TextSearchKind, TriggerState, View,
};
use crate::quote::{ident, literal, qualified};

/// Why an object is not created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// The target has one of that name already: left as it is.
    Exists,
    /// Anything else, said for people (`it calls app.f(), which cannot be created`).
    Because(String),
}

impl SkipReason {
    /// The reason in words (what reports and JSON show).
    pub fn text(&self) -> &str {
        match self {
            SkipReason::Exists => "it exists on the target; left as it is",
            SkipReason::Because(why) => why,
        }
    }
}

impl std::fmt::Display for SkipReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.text())
    }
}

impl From<String> for SkipReason {
    fn from(why: String) -> Self {
        SkipReason::Because(why)
    }
}

/// As its words: the plan's JSON and a recorded run read as before.
impl Serialize for SkipReason {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.text())
    }
}

impl<'de> serde::Deserialize<'de> for SkipReason {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Ok(if text == SkipReason::Exists.text() {
            SkipReason::Exists
        } else {
            SkipReason::Because(text)
        })
    }
}

/// One object pgbarge creates, for the plan's display and for error messages.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Step {
    /// What it is, e.g. `view public.film_list`.
    pub what: String,
    pub sql: String,
    /// Tables this run loads that must be in for the step to make sense: after a failed
    /// table, the steps of the tables that did load are still run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub needs: Vec<TableName>,
}

/// Something the plan will not create, and why; preflight turns `blocking` ones into
/// problems.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Skipped {
    pub what: String,
    pub why: SkipReason,
    /// The copy cannot work without it (e.g. a function a table's default calls).
    pub blocking: bool,
    /// The copied tables that need it (when it is blocking): a copy of whole schemas
    /// leaves them out instead, with the reason, and loads the others.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub needed_by: Vec<TableName>,
}

/// A sequence whose value is copied after the load.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct SequenceValue {
    pub name: TableName,
    /// `false` when the source role may not read it: it is left at its start.
    pub readable: bool,
    /// The sequence was already on the target: only ever moved forward, never back, so
    /// rows loaded into its tables cannot collide with the ids it hands out next.
    pub raise_only: bool,
    /// Counts up (forward is higher) or down.
    pub ascending: bool,
}

/// The objects created around the tables.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SchemaPlan {
    /// Extensions to create, first of all (their types and functions may be needed).
    pub create_extensions: Vec<Step>,
    /// Collations, created before the types and tables that use them.
    pub create_collations: Vec<Step>,
    /// Sequences of the schemas copied whole, created before the types: a domain's
    /// default may draw from one (`DEFAULT nextval('s'::regclass)` names it).
    pub create_sequences: Vec<Step>,
    /// Their names, for preflight's checks.
    pub extensions: Vec<String>,
    /// Created before any table, in the preparing transaction.
    pub before: Vec<Step>,
    /// Created after every table is loaded, in one transaction, in this order.
    pub after: Vec<Step>,
    /// Sequences created here whose values are copied after the load.
    pub sequence_values: Vec<SequenceValue>,
    /// What is not created.
    pub skipped: Vec<Skipped>,
    /// Tables the created tables' foreign keys reference that are neither copied nor on
    /// the target: preflight asks for `--with-parents` or `--without-fks`.
    pub missing_parents: BTreeMap<TableName, Vec<TableName>>,
    /// How many objects of each kind are created, for the report.
    pub counts: BTreeMap<ObjectKind, usize>,
    /// `--grants`: roles the source grants privileges to that the target lacks.
    pub missing_roles: BTreeSet<String>,
    /// Roles row-level security policies name that the target lacks.
    pub missing_policy_roles: BTreeSet<String>,
}

/// Choices that shape the schema part.
#[derive(Debug, Clone, Default)]
pub struct SchemaOptions {
    /// Leave out foreign keys that reference tables not copied.
    pub without_fks: bool,
    /// Give every created object to this role.
    pub owner: Option<String>,
    /// Copy the privileges granted on the created objects.
    pub grants: bool,
    /// `--strict`: an object that cannot be created stops the copy, even one nothing
    /// copied needs (by default it is left out and listed).
    pub strict: bool,
    /// Tables of the schemas copied whole that are left out, with the reason: they need
    /// an object the target role cannot create. Foreign keys to them are left out too.
    pub refused: BTreeMap<TableName, String>,
    /// `--exclude-object`: objects of the schemas copied whole to leave out.
    pub exclude_objects: Vec<crate::select::ObjectPattern>,
}

impl SchemaOptions {
    /// Why object `schema.name` of `kind` is left out, if `--exclude-object` names it.
    pub fn excluded(&self, kind: &str, schema: &str, name: &str) -> Option<String> {
        self.exclude_objects
            .iter()
            .find(|p| p.matches(kind, schema, name))
            .map(|p| format!("left out by --exclude-object {:?}", p.text))
    }
}

/// What the schema planner needs to know about the tables' plans.
pub(super) struct TablesInPlan<'a> {
    /// Tables (and their partitions) created or recreated by this run.
    pub created: BTreeSet<&'a TableName>,
    /// Every table the run loads or keeps (created ones included).
    pub copied: BTreeSet<&'a TableName>,
    /// `--schema-only` tables that already exist: they get the foreign keys and triggers
    /// of the source's that they lack (e.g. after a run interrupted before its last step).
    pub kept: BTreeSet<&'a TableName>,
    /// Types created (qualified SQL names), for comments and ownership.
    pub types_created: Vec<String>,
    pub schemas_created: Vec<String>,
    /// Sequences created along with created tables (`serial` and identity columns).
    pub owned_sequences: Vec<TableName>,
}

fn count(counts: &mut BTreeMap<ObjectKind, usize>, kind: ObjectKind) {
    *counts.entry(kind).or_default() += 1;
}

/// Builds the schema part of the plan from the source's objects and what the target
/// already has.
pub(super) fn plan_schema(
    snapshot: &Snapshot,
    tables: &TablesInPlan<'_>,
    options: &SchemaOptions,
) -> SchemaPlan {
    let mut planner = Planner {
        snapshot,
        objects: &snapshot.source_objects,
        tables,
        options,
        plan: SchemaPlan::default(),
        sequences_created: Vec::new(),
        routines_created: Vec::new(),
        text_search_created: Vec::new(),
        late_routines: Vec::new(),
        uncreatable: BTreeSet::new(),
        views_created: Vec::new(),
    };
    // The passes, in the order their objects are created.
    planner.left_out();
    planner.extensions();
    planner.collations();
    planner.sequences();
    planner.routines();
    planner.operators();
    planner.casts();
    planner.text_search();
    planner.foreign_keys();
    planner.late_checks();
    planner.views();
    planner.triggers_and_rules();
    planner.row_security();
    planner.comments();
    planner.grants();
    planner.ownership();
    planner.plan
}

/// The schema plan as it is built, pass by pass, and what the passes tell each other.
struct Planner<'a> {
    snapshot: &'a Snapshot,
    objects: &'a SchemaObjects,
    tables: &'a TablesInPlan<'a>,
    options: &'a SchemaOptions,
    plan: SchemaPlan,
    sequences_created: Vec<&'a TableName>,
    routines_created: Vec<&'a Routine>,
    text_search_created: Vec<&'a crate::catalog::TextSearch>,
    /// Functions created after the tables (their signatures use a table's row type).
    late_routines: Vec<Step>,
    /// Signatures of the functions not created: what calls them is not created either.
    uncreatable: BTreeSet<&'a str>,
    views_created: Vec<&'a View>,
}

impl<'a> Planner<'a> {
    /// Names `what` as not created, for `why`: it stops the copy only with `--strict`,
    /// and never when the target already has it.
    fn leave_out(&mut self, what: String, why: SkipReason) {
        let blocking = self.options.strict && why != SkipReason::Exists;
        self.plan.skipped.push(Skipped {
            what,
            why,
            blocking,
            needed_by: Vec::new(),
        });
    }

    /// Creates `what` before the tables with `statements`, counted as one of `kind`.
    fn create_before(&mut self, what: &str, statements: Vec<String>, kind: ObjectKind) {
        self.plan
            .before
            .extend(statements.into_iter().map(|sql| Step {
                what: what.to_string(),
                sql,
                needs: Vec::new(),
            }));
        count(&mut self.plan.counts, kind);
    }
    /// Objects named in the plan but never created: tables left out of a whole-schema copy,
    /// and what pgbarge does not recreate.
    fn left_out(&mut self) {
        let objects = self.objects;
        let options = self.options;
        self.plan
            .skipped
            .extend(options.refused.iter().map(|(table, why)| Skipped {
                what: format!("table {table}"),
                why: why.clone().into(),
                blocking: false,
                needed_by: Vec::new(),
            }));
        // Named in the plan, never left behind silently. Column privileges matter only when
        // privileges are copied at all.
        for (kind, name, why) in &objects.not_recreated {
            if kind == "column privileges" && !options.grants {
                continue;
            }
            self.plan.skipped.push(Skipped {
                what: format!("{kind} {name}"),
                why: why.clone().into(),
                blocking: false,
                needed_by: Vec::new(),
            });
        }
    }

    /// Extensions first: types and functions of the copied objects may come from them.
    fn extensions(&mut self) {
        let objects = self.objects;
        let snapshot = self.snapshot;
        let exists = |object: ObjectRef| snapshot.target_existing.contains(&object);
        for e in &objects.extensions {
            if exists(ObjectRef::Extension(e.name.clone())) {
                continue;
            }
            self.plan.extensions.push(e.name.clone());
            self.plan.create_extensions.push(Step {
                what: format!("extension {}", e.name),
                sql: format!(
                    "CREATE EXTENSION IF NOT EXISTS {} WITH SCHEMA {}",
                    ident(&e.name),
                    ident(&e.schema)
                ),
                needs: Vec::new(),
            });
            count(&mut self.plan.counts, ObjectKind::Extension);
        }
    }

    /// Collations, before the types and tables that use them.
    fn collations(&mut self) {
        let objects = self.objects;
        let snapshot = self.snapshot;
        let exists = |object: ObjectRef| snapshot.target_existing.contains(&object);
        for c in &objects.collations {
            let name = qualified(&c.schema, &c.name);
            if exists(ObjectRef::Collation {
                schema: c.schema.clone(),
                name: c.name.clone(),
            }) {
                continue;
            }
            let locale = |v: Option<&String>| literal(v.map(String::as_str).unwrap_or_default());
            let mut options = if c.icu {
                // Up to PostgreSQL 14 an ICU collation's locale is in collcollate.
                let icu = c.icu_locale.as_ref().or(c.lc_collate.as_ref());
                vec![
                    "provider = icu".to_string(),
                    format!("locale = {}", locale(icu)),
                ]
            } else {
                vec![
                    "provider = libc".to_string(),
                    format!("lc_collate = {}", locale(c.lc_collate.as_ref())),
                    format!("lc_ctype = {}", locale(c.lc_ctype.as_ref())),
                ]
            };
            if !c.deterministic {
                options.push("deterministic = false".into());
            }
            self.plan.create_collations.push(Step {
                what: format!("collation {name}"),
                sql: format!("CREATE COLLATION {name} ({})", options.join(", ")),
                needs: Vec::new(),
            });
            count(&mut self.plan.counts, ObjectKind::Collation);
        }
    }

    /// Sequences of the schemas copied whole, before the types (a domain's default may draw
    /// from one).
    fn sequences(&mut self) {
        let objects = self.objects;
        let snapshot = self.snapshot;
        let exists = |object: ObjectRef| snapshot.target_existing.contains(&object);

        for s in &objects.sequences {
            if exists(ObjectRef::Relation(s.name.clone())) {
                self.plan.skipped.push(Skipped {
                    what: format!("sequence {}", s.name),
                    why: SkipReason::Exists,
                    blocking: false,
                    needed_by: Vec::new(),
                });
                self.plan.sequence_values.push(SequenceValue {
                    name: s.name.clone(),
                    readable: s.readable,
                    raise_only: true,
                    ascending: s.parameters.increment > 0,
                });
                continue;
            }
            let mut sql = s.parameters.create_sql(&s.name);
            if s.unlogged {
                sql = sql.replacen("CREATE SEQUENCE", "CREATE UNLOGGED SEQUENCE", 1);
            }
            self.plan.create_sequences.push(Step {
                what: format!("sequence {}", s.name),
                sql,
                needs: Vec::new(),
            });
            self.plan.sequence_values.push(SequenceValue {
                name: s.name.clone(),
                readable: s.readable,
                raise_only: false,
                ascending: s.parameters.increment > 0,
            });
            self.sequences_created.push(&s.name);
            count(&mut self.plan.counts, ObjectKind::Sequence);
        }
    }

    /// Functions in two groups: those the tables may need (defaults, checks) before the
    /// tables; those whose signatures use a table's row type after them.
    fn routines(&mut self) {
        let snapshot = self.snapshot;
        let objects = self.objects;
        let tables = self.tables;
        let options = self.options;
        let exists = |object: ObjectRef| snapshot.target_existing.contains(&object);
        for r in &objects.routines {
            if exists(ObjectRef::Routine(r.signature.clone())) {
                self.plan.skipped.push(Skipped {
                    what: routine_label(r),
                    why: SkipReason::Exists,
                    blocking: false,
                    needed_by: Vec::new(),
                });
                continue;
            }
            // The tables of this run that need it (the catalog was read for every table
            // chosen at first, before any was left out).
            let needed_by: Vec<TableName> = r
                .required_by
                .iter()
                .filter(|t| tables.copied.contains(t))
                .cloned()
                .collect();
            if let Some(why) = options.excluded(r.kind.label(), &r.schema, &r.name) {
                self.plan.skipped.push(Skipped {
                    what: routine_label(r),
                    why: why.into(),
                    blocking: !needed_by.is_empty(),
                    needed_by,
                });
                self.uncreatable.insert(r.signature.as_str());
                continue;
            }
            // Its signature names a table or view that will not be on the target (left out
            // of the copy): it cannot be created there either.
            let absent: Vec<String> = r
                .row_types
                .iter()
                .filter(|t| {
                    !tables.copied.contains(t)
                        && !objects.views.iter().any(|v| &v.name == *t)
                        && !exists(ObjectRef::Relation((*t).clone()))
                })
                .map(|t| t.to_string())
                .collect();
            if !absent.is_empty() {
                self.plan.skipped.push(Skipped {
                    what: routine_label(r),
                    why: format!(
                        "its signature uses the row type of {}, which is not copied",
                        absent.join(", ")
                    )
                    .into(),
                    blocking: !needed_by.is_empty() || options.strict,
                    needed_by,
                });
                self.uncreatable.insert(r.signature.as_str());
                continue;
            }
            let sql = match routine_ddl(r, snapshot.target_privileges.is_superuser) {
                Ok(sql) => sql,
                Err(why) => {
                    // Only what the copied tables need blocks the copy (or, with --strict,
                    // anything): a function of a schema copied whole is left out, out loud.
                    self.plan.skipped.push(Skipped {
                        what: routine_label(r),
                        why: why.into(),
                        blocking: !needed_by.is_empty() || options.strict,
                        needed_by,
                    });
                    self.uncreatable.insert(r.signature.as_str());
                    continue;
                }
            };
            let step = Step {
                what: routine_label(r),
                sql,
                needs: Vec::new(),
            };
            self.routines_created.push(r);
            count(
                &mut self.plan.counts,
                if r.kind == RoutineKind::Aggregate {
                    ObjectKind::Aggregate
                } else {
                    ObjectKind::Function
                },
            );
            if r.uses_row_type || r.kind == RoutineKind::Aggregate {
                self.late_routines.push(step);
            } else {
                self.plan.before.push(step);
            }
        }
    }

    /// Operators, once their functions exist (before the tables: checks and indexes may use
    /// them).
    fn operators(&mut self) {
        let objects = self.objects;
        let options = self.options;
        let snapshot = self.snapshot;
        let exists = |object: ObjectRef| snapshot.target_existing.contains(&object);
        for op in &objects.operators {
            let what = format!("operator {}", op.signature);
            let why = if exists(ObjectRef::Operator(op.signature.clone())) {
                Some(SkipReason::Exists)
            } else {
                options
                    .excluded("operator", &op.schema, &op.name)
                    .map(SkipReason::from)
            };
            if let Some(why) = why {
                self.plan.skipped.push(Skipped {
                    what,
                    why,
                    blocking: false,
                    needed_by: Vec::new(),
                });
                continue;
            }
            let late = objects
                .routines
                .iter()
                .any(|r| r.uses_row_type && r.signature == op.function_signature);
            if self.uncreatable.contains(op.function_signature.as_str()) || late {
                let why = format!(
                    "its function {} is not created before the tables",
                    op.function_signature
                );
                self.leave_out(what, why.into());
                continue;
            }
            self.plan.before.push(Step {
                what: what.clone(),
                sql: op.create_sql(),
                needs: Vec::new(),
            });
            if let Some(sql) = op.comment_sql() {
                self.plan.before.push(Step {
                    what: format!("comment on {what}"),
                    sql,
                    needs: Vec::new(),
                });
            }
            count(&mut self.plan.counts, ObjectKind::Operator);
        }
    }

    /// Casts, once their types and functions exist (before the tables).
    fn casts(&mut self) {
        let snapshot = self.snapshot;
        let objects = self.objects;
        let exists = |object: ObjectRef| snapshot.target_existing.contains(&object);
        for cast in &objects.casts {
            let why = if exists(cast.object_ref()) {
                Some(SkipReason::Exists)
            } else {
                match &cast.method {
                    CastMethod::Binary if !snapshot.target_privileges.is_superuser => Some(
                        "it is binary coercible (WITHOUT FUNCTION), which only a superuser may \
                         declare"
                            .to_string(),
                    ),
                    CastMethod::Function(f)
                        if self.uncreatable.contains(f.as_str())
                            || self
                                .late_routines
                                .iter()
                                .any(|s: &Step| s.what == format!("function {f}")) =>
                    {
                        Some(format!("its function {f} is not created before the tables"))
                    }
                    _ => None,
                }
                .map(SkipReason::from)
            };
            match why {
                Some(why) => self.leave_out(cast.label(), why),
                None => self.create_before(&cast.label(), cast.create_sql(), ObjectKind::Cast),
            }
        }
    }

    /// Text-search dictionaries, then configurations, before the tables: indexes and
    /// generated columns may name them.
    fn text_search(&mut self) {
        let objects = self.objects;
        let options = self.options;
        let snapshot = self.snapshot;
        let exists = |object: ObjectRef| snapshot.target_existing.contains(&object);
        let mut ts_uncreatable: Vec<String> = Vec::new();
        for ts in &objects.text_search {
            let what = ts.label();
            let why = if exists(ts.object_ref()) {
                Some(SkipReason::Exists)
            } else if let Some(why) = options.excluded(ts.kind.label(), &ts.schema, &ts.name) {
                Some(why.into())
            } else if ts.base.0 != "pg_catalog" {
                Some(SkipReason::Because(format!(
                    "its {} {}.{} is not built in, and only a superuser may create one",
                    match ts.kind {
                        TextSearchKind::Dictionary => "template",
                        TextSearchKind::Configuration => "parser",
                    },
                    ts.base.0,
                    ts.base.1
                )))
            } else {
                ts.mappings
                    .iter()
                    .flat_map(|(_, dictionaries)| dictionaries.split(", "))
                    .find(|d| ts_uncreatable.iter().any(|u| u == d))
                    .map(|d| format!("it maps to {d}, which is not created").into())
            };
            if let Some(why) = why {
                if why != SkipReason::Exists {
                    ts_uncreatable.push(ts.sql_name());
                }
                self.leave_out(what, why);
                continue;
            }
            let kind = match ts.kind {
                TextSearchKind::Dictionary => ObjectKind::TextSearchDictionary,
                TextSearchKind::Configuration => ObjectKind::TextSearchConfiguration,
            };
            self.create_before(&what, ts.create_sql(), kind);
            self.text_search_created.push(ts);
        }
        self.plan
            .after
            .extend(std::mem::take(&mut self.late_routines));
    }

    /// Foreign keys, once every table holds its rows; and those of tables already on the
    /// target that point at tables created now.
    fn foreign_keys(&mut self) {
        let objects = self.objects;
        let tables = self.tables;
        let options = self.options;
        let snapshot = self.snapshot;
        let exists = |object: ObjectRef| snapshot.target_existing.contains(&object);
        // Foreign keys, once every table holds its rows: load order does not matter and each
        // key is validated once, in bulk.
        for o in objects
            .table_objects
            .iter()
            .filter(|o| o.kind == TableObjectKind::ForeignKey && tables.created.contains(&o.table))
        {
            let Some(parent) = &o.references else {
                continue;
            };
            let available =
                tables.copied.contains(parent) || exists(ObjectRef::Relation(parent.clone()));
            if !available {
                if options.refused.contains_key(parent) {
                    self.plan.skipped.push(Skipped {
                        what: format!("foreign key {} on {}", o.name, o.table),
                        why: format!("it references {parent}, which is left out").into(),
                        blocking: false,
                        needed_by: Vec::new(),
                    });
                } else if options.without_fks {
                    self.plan.skipped.push(Skipped {
                        what: format!("foreign key {} on {}", o.name, o.table),
                        why: format!("it references {parent}, which is not copied (--without-fks)")
                            .into(),
                        blocking: false,
                        needed_by: Vec::new(),
                    });
                } else {
                    self.plan
                        .missing_parents
                        .entry(o.table.clone())
                        .or_default()
                        .push(parent.clone());
                }
                continue;
            }
            self.plan.after.push(Step {
                what: format!("foreign key {} on {}", o.name, o.table),
                sql: o.add_constraint_sql(),
                needs: vec![o.table.clone(), parent.clone()],
            });
            count(&mut self.plan.counts, ObjectKind::ForeignKey);
        }

        // Foreign keys of tables already on the target that point at tables created now
        // (e.g. a parent table copied in a later run than its children), or that a kept
        // table lacks, if missing there and their parent is there.
        for o in objects.table_objects.iter().filter(|o| {
            o.kind == TableObjectKind::ForeignKey
                && !options.without_fks
                && !tables.created.contains(&o.table)
                && o.references.as_ref().is_some_and(|p| {
                    tables.created.contains(p)
                        || tables.kept.contains(&o.table)
                            && (tables.copied.contains(p) || exists(ObjectRef::Relation(p.clone())))
                })
        }) {
            let on_target = exists(ObjectRef::Relation(o.table.clone()));
            let has_key = exists(ObjectRef::Constraint {
                table: o.table.clone(),
                name: o.name.clone(),
            });
            if !on_target || has_key {
                continue;
            }
            self.plan.after.push(Step {
                what: format!("foreign key {} on {}", o.name, o.table),
                sql: o.add_constraint_sql(),
                needs: o.references.iter().cloned().collect(),
            });
            count(&mut self.plan.counts, ObjectKind::ForeignKey);
        }
    }

    /// Check constraints added after the data: NOT VALID ones, and those calling functions
    /// created after the tables.
    fn late_checks(&mut self) {
        let objects = self.objects;
        let tables = self.tables;
        // Check constraints marked NOT VALID (the source holds rows that break them), and
        // those calling functions created after the tables.
        for o in objects.table_objects.iter().filter(|o| {
            o.kind == TableObjectKind::Check
                && (!o.validated || objects.check_waits_for_functions(o))
                && tables.created.contains(&o.table)
        }) {
            self.plan.after.push(Step {
                what: format!("check constraint {} on {}", o.name, o.table),
                sql: o.add_constraint_sql(),
                needs: vec![o.table.clone()],
            });
        }
    }

    /// Views whose every input is copied, already there, or created here, in dependency
    /// order.
    fn views(&mut self) {
        let objects = self.objects;
        let tables = self.tables;
        let options = self.options;
        let snapshot = self.snapshot;
        let exists = |object: ObjectRef| snapshot.target_existing.contains(&object);
        // Views whose every input is copied, already there, or another view created here,
        // in dependency order.
        let mut pending: Vec<&View> = objects.views.iter().collect();
        pending.retain(|v| {
            let kind = if v.materialized {
                "materialized view"
            } else {
                "view"
            };
            let why = if exists(ObjectRef::Relation(v.name.clone())) {
                Some(SkipReason::Exists)
            } else {
                options
                    .excluded(kind, &v.name.schema, &v.name.name)
                    .map(SkipReason::from)
            };
            match why {
                Some(why) => {
                    self.plan.skipped.push(Skipped {
                        what: view_label(v),
                        why,
                        blocking: false,
                        needed_by: Vec::new(),
                    });
                    false
                }
                None => true,
            }
        });
        // A view calling a function that cannot be created cannot be created either.
        pending.retain(|v| {
            let missing: Vec<&str> = v
                .calls
                .iter()
                .map(String::as_str)
                .filter(|c| self.uncreatable.contains(c))
                .collect();
            if missing.is_empty() {
                return true;
            }
            self.plan.skipped.push(Skipped {
                what: view_label(v),
                why: format!("it calls {}, which cannot be created", missing.join(", ")).into(),
                blocking: options.strict,
                needed_by: Vec::new(),
            });
            false
        });
        let pending_names: BTreeSet<TableName> = pending.iter().map(|v| v.name.clone()).collect();
        loop {
            let before = pending.len();
            let mut i = 0;
            while i < pending.len() {
                let v = pending[i];
                let ready = v.reads.iter().all(|r| {
                    tables.copied.contains(r)
                        || self.views_created.iter().any(|c| &c.name == r)
                        || (!pending_names.contains(r) && exists(ObjectRef::Relation(r.clone())))
                });
                if ready {
                    self.views_created.push(v);
                    pending.remove(i);
                } else {
                    i += 1;
                }
            }
            if pending.is_empty() || pending.len() == before {
                break;
            }
        }
        for v in pending {
            let missing: Vec<String> = v
                .reads
                .iter()
                .filter(|r| {
                    !tables.copied.contains(r) && !exists(ObjectRef::Relation((*r).clone()))
                })
                .map(|r| r.to_string())
                .collect();
            self.plan.skipped.push(Skipped {
                what: view_label(v),
                why: format!("it reads {}, which is not copied", missing.join(", ")).into(),
                blocking: false,
                needed_by: Vec::new(),
            });
        }
        for v in &self.views_created {
            self.plan.after.push(Step {
                what: view_label(v),
                sql: v.create_sql(),
                needs: v.reads.clone(),
            });
            for (column, method) in &v.compression {
                self.plan.after.push(Step {
                    what: format!("compression of {}.{column}", v.name),
                    sql: format!(
                        "ALTER MATERIALIZED VIEW {} ALTER COLUMN {} SET COMPRESSION {method}",
                        v.name.sql(),
                        ident(column)
                    ),
                    needs: v.reads.clone(),
                });
            }
            for index in &v.indexes {
                self.plan.after.push(Step {
                    what: format!("index on {}", v.name),
                    sql: index.clone(),
                    needs: v.reads.clone(),
                });
            }
            count(
                &mut self.plan.counts,
                if v.materialized {
                    ObjectKind::MaterializedView
                } else {
                    ObjectKind::View
                },
            );
        }

        for v in &self.views_created {
            for sql in &v.rules_and_triggers {
                self.plan.after.push(Step {
                    what: format!("rule or trigger on {}", v.name),
                    sql: sql.trim_end_matches(';').to_string(),
                    needs: v.reads.clone(),
                });
            }
        }
    }

    /// Triggers and rules last among the definitions, so none fired on copied rows.
    fn triggers_and_rules(&mut self) {
        let objects = self.objects;
        let tables = self.tables;
        let snapshot = self.snapshot;
        let exists = |object: ObjectRef| snapshot.target_existing.contains(&object);
        // Triggers and rules last among the definitions, so none fired on copied rows; a
        // kept table gets the triggers it lacks.
        for o in objects.table_objects.iter().filter(|o| {
            matches!(o.kind, TableObjectKind::Trigger | TableObjectKind::Rule)
                && (tables.created.contains(&o.table)
                    || o.kind == TableObjectKind::Trigger
                        && tables.kept.contains(&o.table)
                        && !exists(ObjectRef::Trigger {
                            table: o.table.clone(),
                            name: o.name.clone(),
                        }))
        }) {
            let kind = if o.kind == TableObjectKind::Trigger {
                "trigger"
            } else {
                "rule"
            };
            self.plan.after.push(Step {
                what: format!("{kind} {} on {}", o.name, o.table),
                sql: o.definition.trim_end_matches(';').to_string(),
                needs: vec![o.table.clone()],
            });
            let state =
                Some(o.enabled.alter_clause()).filter(|_| o.enabled != TriggerState::Enabled);
            if let Some(state) = state.filter(|_| o.kind == TableObjectKind::Trigger) {
                self.plan.after.push(Step {
                    what: format!("trigger {} on {}", o.name, o.table),
                    sql: format!(
                        "ALTER TABLE {} {state} TRIGGER {}",
                        o.table.sql(),
                        ident(&o.name)
                    ),
                    needs: vec![o.table.clone()],
                });
            }
            count(
                &mut self.plan.counts,
                if o.kind == TableObjectKind::Trigger {
                    ObjectKind::Trigger
                } else {
                    ObjectKind::Rule
                },
            );
        }
    }

    /// Row-level security and its policies, after the data.
    fn row_security(&mut self) {
        let snapshot = self.snapshot;
        let objects = self.objects;
        let tables = self.tables;
        // Row-level security after the data: with FORCE, COPY FROM by the owner would be refused.
        for (table, enabled, forced) in objects
            .row_security
            .iter()
            .filter(|(t, _, _)| tables.created.contains(t))
        {
            if *enabled {
                self.plan.after.push(Step {
                    what: format!("row-level security on {table}"),
                    sql: format!("ALTER TABLE {} ENABLE ROW LEVEL SECURITY", table.sql()),
                    needs: vec![table.clone()],
                });
            }
            if *forced {
                self.plan.after.push(Step {
                    what: format!("row-level security on {table}"),
                    sql: format!("ALTER TABLE {} FORCE ROW LEVEL SECURITY", table.sql()),
                    needs: vec![table.clone()],
                });
            }
        }
        for p in objects
            .policies
            .iter()
            .filter(|p| tables.created.contains(&p.table))
        {
            let mut roles = Vec::new();
            for role in &p.roles {
                match role {
                    None => roles.push("PUBLIC".to_string()),
                    Some(r)
                        if snapshot
                            .target_existing
                            .contains(&ObjectRef::Role(r.clone())) =>
                    {
                        roles.push(ident(r))
                    }
                    Some(r) => {
                        self.plan.missing_policy_roles.insert(r.clone());
                    }
                }
            }
            let command = match p.command {
                'r' => "SELECT",
                'a' => "INSERT",
                'w' => "UPDATE",
                'd' => "DELETE",
                _ => "ALL",
            };
            let mut sql = format!(
                "CREATE POLICY {} ON {} AS {} FOR {command} TO {}",
                ident(&p.name),
                p.table.sql(),
                if p.permissive {
                    "PERMISSIVE"
                } else {
                    "RESTRICTIVE"
                },
                roles.join(", ")
            );
            if let Some(using) = &p.using {
                sql.push_str(&format!(" USING ({using})"));
            }
            if let Some(check) = &p.with_check {
                sql.push_str(&format!(" WITH CHECK ({check})"));
            }
            self.plan.after.push(Step {
                what: format!("policy {} on {}", p.name, p.table),
                sql,
                needs: vec![p.table.clone()],
            });
            count(&mut self.plan.counts, ObjectKind::Policy);
        }
    }

    /// Comments on what was created.
    fn comments(&mut self) {
        let snapshot = self.snapshot;
        let objects = self.objects;
        let tables = self.tables;
        // Indexes created here, including those behind primary keys and unique and
        // exclusion constraints (named as their constraint).
        let mut index_names: BTreeSet<(&str, &str)> = objects
            .table_objects
            .iter()
            .filter(|o| {
                matches!(
                    o.kind,
                    TableObjectKind::Index
                        | TableObjectKind::PrimaryKey
                        | TableObjectKind::Unique
                        | TableObjectKind::Exclusion
                ) && tables.created.contains(&o.table)
            })
            .map(|o| (o.table.schema.as_str(), o.name.as_str()))
            .collect();
        index_names.extend(
            snapshot
                .source
                .tables
                .values()
                .filter(|d| tables.created.contains(&d.table.name))
                .filter_map(|d| {
                    d.primary_key
                        .as_ref()
                        .map(|pk| (d.table.name.schema.as_str(), pk.name.as_str()))
                }),
        );
        let created_relation = |c: &Comment| -> bool {
            let name = TableName::new(c.schema.clone().unwrap_or_default(), &c.name);
            tables.created.contains(&name)
                || self.views_created.iter().any(|v| v.name == name)
                || self.sequences_created.contains(&&name)
        };
        for c in &objects.comments {
            let wanted = match c.kind {
                CommentOn::Index => index_names
                    .contains(&(c.schema.as_deref().unwrap_or_default(), c.name.as_str())),
                CommentOn::Function | CommentOn::Procedure | CommentOn::Aggregate => {
                    self.routines_created.iter().any(|r| {
                        Some(&r.schema) == c.schema.as_ref()
                            && r.name == c.name
                            && Some(&r.arguments) == c.detail.as_ref()
                    })
                }
                CommentOn::Type | CommentOn::Domain | CommentOn::DomainConstraint => tables
                    .types_created
                    .contains(&qualified(c.schema.as_deref().unwrap_or_default(), &c.name)),
                CommentOn::Collation => self.plan.create_collations.iter().any(|s| {
                    s.what
                        == format!(
                            "collation {}",
                            qualified(c.schema.as_deref().unwrap_or_default(), &c.name)
                        )
                }),
                CommentOn::Schema => tables.schemas_created.contains(&c.name),
                // A foreign key left out (--without-fks, a missing parent) has no comment to
                // take: COMMENT ON it would fail the whole post-data transaction.
                CommentOn::Constraint => {
                    created_relation(c)
                        && !objects.table_objects.iter().any(|o| {
                            o.kind == TableObjectKind::ForeignKey
                                && Some(&o.name) == c.detail.as_ref()
                                && o.table.schema == c.schema.as_deref().unwrap_or_default()
                                && o.table.name == c.name
                                && !self
                                    .plan
                                    .after
                                    .iter()
                                    .any(|s| s.sql == o.add_constraint_sql())
                        })
                }
                _ => created_relation(c),
            };
            if wanted {
                self.plan.after.push(Step {
                    what: format!("comment on {} {}", c.kind.keyword().to_lowercase(), c.name),
                    sql: comment_ddl(c),
                    needs: if c.kind.on_table() {
                        vec![TableName::new(
                            c.schema.clone().unwrap_or_default(),
                            &c.name,
                        )]
                    } else {
                        Vec::new()
                    },
                });
                count(&mut self.plan.counts, ObjectKind::Comment);
            }
        }
    }

    /// `--grants`: the source's privileges on what was created.
    fn grants(&mut self) {
        let snapshot = self.snapshot;
        let objects = self.objects;
        let tables = self.tables;
        let options = self.options;
        if options.grants {
            let mut revoked = BTreeSet::new();
            for g in &objects.grants {
                let name = TableName::new(g.schema.clone().unwrap_or_default(), &g.name);
                let created = match g.kind.as_str() {
                    "TABLE" => {
                        tables.created.contains(&name)
                            || self.views_created.iter().any(|v| v.name == name)
                    }
                    "SEQUENCE" => {
                        self.sequences_created.contains(&&name)
                            || tables.owned_sequences.contains(&name)
                    }
                    "SCHEMA" => tables.schemas_created.contains(&g.name),
                    _ => self.routines_created.iter().any(|r| {
                        Some(&r.schema) == g.schema.as_ref()
                            && r.name == g.name
                            && Some(&r.arguments) == g.arguments.as_ref()
                    }),
                };
                if !created {
                    continue;
                }
                let object = match (g.kind.as_str(), &g.arguments) {
                    ("SCHEMA", _) => ident(&g.name),
                    (_, Some(args)) => format!("{}({args})", name.sql()),
                    _ => name.sql(),
                };
                if g.revoke_public && revoked.insert(object.clone()) {
                    self.plan.after.push(Step {
                        what: format!("privileges on {}", g.name),
                        sql: format!("REVOKE ALL ON {} {object} FROM PUBLIC", g.kind),
                        needs: Vec::new(),
                    });
                }
                if g.privilege.is_empty() {
                    continue;
                }
                let grantee = match &g.grantee {
                    None => "PUBLIC".to_string(),
                    Some(role)
                        if snapshot
                            .target_existing
                            .contains(&ObjectRef::Role(role.clone())) =>
                    {
                        ident(role)
                    }
                    Some(role) => {
                        self.plan.missing_roles.insert(role.clone());
                        continue;
                    }
                };
                self.plan.after.push(Step {
                    what: format!("privileges on {}", g.name),
                    sql: format!(
                        "GRANT {} ON {} {object} TO {grantee}{}",
                        g.privilege,
                        g.kind,
                        if g.grantable {
                            " WITH GRANT OPTION"
                        } else {
                            ""
                        }
                    ),
                    needs: if g.kind == "TABLE" {
                        vec![name.clone()]
                    } else {
                        Vec::new()
                    },
                });
                count(&mut self.plan.counts, ObjectKind::Grant);
            }
        }
    }

    /// `--owner`: everything created is given to the role.
    fn ownership(&mut self) {
        let tables = self.tables;
        let options = self.options;
        if let Some(role) = &options.owner {
            let role = ident(role);
            let mut owned: Vec<String> = Vec::new();
            for s in &tables.schemas_created {
                owned.push(format!("ALTER SCHEMA {} OWNER TO {role}", ident(s)));
            }
            for t in &tables.types_created {
                owned.push(format!("ALTER TYPE {t} OWNER TO {role}"));
            }
            for t in &tables.created {
                owned.push(format!("ALTER TABLE {} OWNER TO {role}", t.sql()));
            }
            for s in &self.sequences_created {
                owned.push(format!("ALTER SEQUENCE {} OWNER TO {role}", s.sql()));
            }
            for v in &self.views_created {
                let kind = if v.materialized {
                    "MATERIALIZED VIEW"
                } else {
                    "VIEW"
                };
                owned.push(format!("ALTER {kind} {} OWNER TO {role}", v.name.sql()));
            }
            for ts in &self.text_search_created {
                owned.push(ts.owner_sql(&role));
            }
            for r in &self.routines_created {
                owned.push(format!(
                    "ALTER {} {}({}) OWNER TO {role}",
                    r.kind.keyword(),
                    qualified(&r.schema, &r.name),
                    routine_arguments(r.kind.keyword(), &r.arguments)
                ));
            }
            self.plan.after.extend(owned.into_iter().map(|sql| Step {
                what: "ownership".into(),
                sql,
                needs: Vec::new(),
            }));
        }
    }
}

/// The argument list that names the routine in DDL: an aggregate without arguments is
/// `f(*)` (`f()` names no aggregate).
fn routine_arguments(kind: &str, arguments: &str) -> String {
    if kind == "AGGREGATE" && arguments.trim().is_empty() {
        "*".into()
    } else {
        arguments.to_string()
    }
}

fn routine_label(r: &Routine) -> String {
    format!("{} {}", r.kind.label(), r.signature)
}

fn view_label(v: &View) -> String {
    format!(
        "{} {}",
        if v.materialized {
            "materialized view"
        } else {
            "view"
        },
        v.name
    )
}

/// `CREATE FUNCTION` from the server's own rendering, or `CREATE AGGREGATE` for the plain
/// aggregates; an error says why the routine cannot be created by this role.
fn routine_ddl(r: &Routine, superuser: bool) -> Result<String, String> {
    if let Some(a) = &r.aggregate {
        return Ok(aggregate_ddl(r, a));
    }
    if !r.trusted_language && !superuser {
        return Err(format!(
            "it is written in language {}, in which only a superuser may create functions",
            r.language
        ));
    }
    r.definition
        .clone()
        .map(|d| d.trim_end().to_string())
        .ok_or_else(|| "its definition could not be read".to_string())
}

/// `CREATE AGGREGATE` with every option the catalog holds, as pg_dump writes it: plain,
/// ordered-set (`(direct ORDER BY aggregated)`) and hypothetical-set aggregates, moving
/// mode, serialisation, sort operator, state space and parallel safety.
fn aggregate_ddl(r: &Routine, a: &Aggregate) -> String {
    let more = &a.more;
    let mut parts = vec![
        format!("SFUNC = {}", a.transition),
        format!("STYPE = {}", a.state_type),
    ];
    if more.sspace != 0 {
        parts.push(format!("SSPACE = {}", more.sspace));
    }
    // What FINALFUNC_MODIFY means when not given: ordered-set finals may write.
    let default_modify = if a.kind == AggregateKind::Normal {
        "r"
    } else {
        "w"
    };
    let modify = |m: &str| match m {
        "s" => "SHAREABLE",
        "w" => "READ_WRITE",
        _ => "READ_ONLY",
    };
    if let Some(f) = &a.final_function {
        parts.push(format!("FINALFUNC = {f}"));
        if more.finalfunc_extra {
            parts.push("FINALFUNC_EXTRA".into());
        }
    }
    if !more.finalfunc_modify.is_empty() && more.finalfunc_modify != default_modify {
        parts.push(format!(
            "FINALFUNC_MODIFY = {}",
            modify(&more.finalfunc_modify)
        ));
    }
    let optional = [
        ("COMBINEFUNC", &a.combine_function),
        ("SERIALFUNC", &more.serialfunc),
        ("DESERIALFUNC", &more.deserialfunc),
    ];
    for (option, value) in optional {
        if let Some(v) = value {
            parts.push(format!("{option} = {v}"));
        }
    }
    if let Some(v) = &a.initial_value {
        parts.push(format!("INITCOND = {}", literal(v)));
    }
    let moving = [
        ("MSFUNC", &more.msfunc),
        ("MINVFUNC", &more.minvfunc),
        ("MSTYPE", &more.mstype),
    ];
    for (option, value) in moving {
        if let Some(v) = value {
            parts.push(format!("{option} = {v}"));
        }
    }
    if more.msspace != 0 {
        parts.push(format!("MSSPACE = {}", more.msspace));
    }
    if let Some(f) = &more.mfinalfunc {
        parts.push(format!("MFINALFUNC = {f}"));
        if more.mfinalfunc_extra {
            parts.push("MFINALFUNC_EXTRA".into());
        }
    }
    if more.mstype.is_some()
        && !more.mfinalfunc_modify.is_empty()
        && more.mfinalfunc_modify != default_modify
    {
        parts.push(format!(
            "MFINALFUNC_MODIFY = {}",
            modify(&more.mfinalfunc_modify)
        ));
    }
    if let Some(v) = &more.minitcond {
        parts.push(format!("MINITCOND = {}", literal(v)));
    }
    if let Some(op) = &more.sortop {
        parts.push(format!("SORTOP = {op}"));
    }
    if a.kind == AggregateKind::HypotheticalSet {
        parts.push("HYPOTHETICAL".into());
    }
    match more.parallel.as_str() {
        "s" => parts.push("PARALLEL = SAFE".into()),
        "r" => parts.push("PARALLEL = RESTRICTED".into()),
        _ => {}
    }
    format!(
        "CREATE AGGREGATE {}({}) ({})",
        qualified(&r.schema, &r.name),
        routine_arguments("AGGREGATE", &r.arguments),
        parts.join(", ")
    )
}

fn comment_ddl(c: &Comment) -> String {
    let schema = c.schema.as_deref().unwrap_or_default();
    let detail = c.detail.as_deref().unwrap_or_default();
    let object = match c.kind {
        CommentOn::Schema => ident(&c.name),
        CommentOn::Column => format!("{}.{}", qualified(schema, &c.name), ident(detail)),
        CommentOn::Constraint | CommentOn::Trigger | CommentOn::Policy | CommentOn::Rule => {
            format!("{} ON {}", ident(detail), qualified(schema, &c.name))
        }
        CommentOn::DomainConstraint => {
            format!("{} ON DOMAIN {}", ident(detail), qualified(schema, &c.name))
        }
        CommentOn::Function | CommentOn::Procedure | CommentOn::Aggregate => {
            format!(
                "{}({})",
                qualified(schema, &c.name),
                routine_arguments(c.kind.keyword(), detail)
            )
        }
        _ => qualified(schema, &c.name),
    };
    format!(
        "COMMENT ON {} {object} IS {}",
        c.kind.keyword(),
        literal(&c.text)
    )
}

#[cfg(test)]
mod tests {
    //! The passes on a catalog snapshot built here, without a server.

    use super::*;
    use crate::catalog::{Cast, CastContext, CastMethod, TextSearch, TextSearchKind};

    /// A snapshot of a source schema `app` copied whole, with `objects`.
    struct Source {
        snapshot: Snapshot,
    }

    impl Source {
        fn new() -> Source {
            Source {
                snapshot: Snapshot::default(),
            }
        }

        fn routine(mut self, name: &str, language: &str, required_by: &[&str]) -> Self {
            self.snapshot.source_objects.routines.push(Routine {
                signature: format!("app.{name}()"),
                schema: "app".into(),
                name: name.into(),
                kind: RoutineKind::Function,
                definition: Some(format!("CREATE FUNCTION app.{name}() …")),
                language: language.into(),
                trusted_language: language == "sql",
                arguments: String::new(),
                aggregate: None,
                uses_row_type: false,
                required_by: required_by
                    .iter()
                    .map(|t| TableName::new("app", *t))
                    .collect(),
                row_types: Vec::new(),
            });
            self
        }

        fn view(mut self, name: &str, reads: &[&str], calls: &[&str]) -> Self {
            self.snapshot.source_objects.views.push(View {
                name: TableName::new("app", name),
                materialized: false,
                query: "SELECT 1".into(),
                populated: true,
                options: Vec::new(),
                reads: reads.iter().map(|t| TableName::new("app", *t)).collect(),
                indexes: Vec::new(),
                rules_and_triggers: Vec::new(),
                calls: calls.iter().map(|c| c.to_string()).collect(),
                compression: Vec::new(),
            });
            self
        }

        fn plan(&self, created: &[&str], options: &SchemaOptions) -> SchemaPlan {
            let names: Vec<TableName> = created.iter().map(|t| TableName::new("app", *t)).collect();
            let tables = TablesInPlan {
                created: names.iter().collect(),
                copied: names.iter().collect(),
                kept: BTreeSet::new(),
                types_created: Vec::new(),
                schemas_created: Vec::new(),
                owned_sequences: Vec::new(),
            };
            plan_schema(&self.snapshot, &tables, options)
        }
    }

    fn skipped<'p>(plan: &'p SchemaPlan, what: &str) -> &'p Skipped {
        plan.skipped
            .iter()
            .find(|s| s.what == what)
            .unwrap_or_else(|| panic!("{what} is not in {:#?}", plan.skipped))
    }

    fn created(plan: &SchemaPlan, what: &str) -> bool {
        plan.before
            .iter()
            .chain(&plan.after)
            .any(|s| s.what == what)
    }

    #[test]
    fn a_function_the_role_cannot_create_blocks_only_the_tables_that_need_it() {
        let source = Source::new()
            .routine("fast", "internal", &["t"])
            .routine("unused", "c", &[])
            .routine("fine", "sql", &[])
            .view("calls_fast", &["t"], &["app.fast()"])
            .view("reads_view", &["calls_fast"], &[]);
        let plan = source.plan(&["t"], &SchemaOptions::default());
        let fast = skipped(&plan, "function app.fast()");
        assert!(fast.blocking);
        assert_eq!(fast.needed_by, vec![TableName::new("app", "t")]);
        assert!(!skipped(&plan, "function app.unused()").blocking);
        assert!(created(&plan, "function app.fine()"));
        assert!(skipped(&plan, "view app.calls_fast")
            .why
            .text()
            .contains("app.fast()"));
        assert!(skipped(&plan, "view app.reads_view")
            .why
            .text()
            .contains("app.calls_fast"));

        // Once the table is left out, nothing copied needs the function.
        let plan = source.plan(&[], &SchemaOptions::default());
        assert!(!skipped(&plan, "function app.fast()").blocking);
        // --strict refuses anything left out.
        let strict = SchemaOptions {
            strict: true,
            ..SchemaOptions::default()
        };
        assert!(skipped(&source.plan(&[], &strict), "function app.unused()").blocking);
    }

    #[test]
    fn comments_name_their_object_as_comment_on_takes_it() {
        let comment = |kind, name: &str, detail: Option<&str>| Comment {
            kind,
            schema: Some("app".into()),
            name: name.into(),
            detail: detail.map(str::to_string),
            text: "x".into(),
        };
        assert_eq!(
            comment_ddl(&comment(
                CommentOn::DomainConstraint,
                "qty",
                Some("qty_pos")
            )),
            "COMMENT ON CONSTRAINT \"qty_pos\" ON DOMAIN \"app\".\"qty\" IS 'x'"
        );
        assert_eq!(
            comment_ddl(&comment(CommentOn::Aggregate, "cnt", Some(""))),
            "COMMENT ON AGGREGATE \"app\".\"cnt\"(*) IS 'x'"
        );
        assert_eq!(
            comment_ddl(&comment(CommentOn::MaterializedView, "mv", None)),
            "COMMENT ON MATERIALIZED VIEW \"app\".\"mv\" IS 'x'"
        );
    }

    #[test]
    fn excluded_objects_are_named_with_the_pattern() {
        let source = Source::new()
            .routine("debug_dump", "sql", &[])
            .routine("keep", "sql", &[])
            .view("debug_v", &[], &["app.debug_dump()"]);
        let options = SchemaOptions {
            exclude_objects: vec![
                crate::select::ObjectPattern::parse("function app.debug_*").expect("pattern")
            ],
            ..SchemaOptions::default()
        };
        let plan = source.plan(&[], &options);
        assert!(skipped(&plan, "function app.debug_dump()")
            .why
            .text()
            .contains("--exclude-object"));
        assert!(created(&plan, "function app.keep()"));
        assert!(!created(&plan, "view app.debug_v"));
    }

    #[test]
    fn text_search_and_casts_need_what_a_non_superuser_may_use() {
        let mut source = Source::new();
        let ts =
            |kind, name: &str, base: (&str, &str), mappings: Vec<(String, String)>| TextSearch {
                kind,
                schema: "app".into(),
                name: name.into(),
                base: (base.0.into(), base.1.into()),
                options: None,
                mappings,
                comment: None,
            };
        let objects = &mut source.snapshot.source_objects;
        objects.text_search = vec![
            ts(
                TextSearchKind::Dictionary,
                "own",
                ("app", "my_template"),
                Vec::new(),
            ),
            ts(
                TextSearchKind::Dictionary,
                "simple2",
                ("pg_catalog", "simple"),
                Vec::new(),
            ),
            ts(
                TextSearchKind::Configuration,
                "uses_own",
                ("pg_catalog", "default"),
                vec![("word".into(), "\"app\".\"own\"".into())],
            ),
            ts(
                TextSearchKind::Configuration,
                "fine",
                ("pg_catalog", "default"),
                vec![("word".into(), "\"app\".\"simple2\"".into())],
            ),
        ];
        objects.casts = vec![
            Cast {
                source: "app.a".into(),
                target: "text".into(),
                method: CastMethod::Binary,
                context: CastContext::Explicit,
                comment: None,
            },
            Cast {
                source: "app.a".into(),
                target: "numeric".into(),
                method: CastMethod::InOut,
                context: CastContext::Assignment,
                comment: None,
            },
        ];
        let plan = source.plan(&[], &SchemaOptions::default());
        assert!(skipped(&plan, "text search dictionary app.own")
            .why
            .text()
            .contains("not built in"));
        assert!(skipped(&plan, "text search configuration app.uses_own")
            .why
            .text()
            .contains("\"app\".\"own\""));
        assert!(created(&plan, "text search configuration app.fine"));
        assert!(skipped(&plan, "cast (app.a AS text)")
            .why
            .text()
            .contains("superuser"));
        let cast = plan
            .before
            .iter()
            .find(|s| s.what == "cast (app.a AS numeric)")
            .expect("created");
        assert_eq!(
            cast.sql,
            "CREATE CAST (app.a AS numeric) WITH INOUT AS ASSIGNMENT"
        );
    }
}
