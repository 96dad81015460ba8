//! The user-defined types the copied columns need that the target lacks: created before
//! the tables, or why they cannot be.

use serde::Serialize;

use super::{SchemaOptions, SkipReason, Skipped, Step};
use crate::catalog::{DomainCheck, Snapshot, TableDetail, TableName, TypeDefinition, UserType};
use crate::quote::{ident, literal};

/// One user-defined type to create on the target before the first table that needs it.
#[derive(Debug, Clone, Serialize)]
pub struct TypePlan {
    /// `schema.name` as shown to users.
    pub name: String,
    pub schema: String,
    /// Statements creating it (the schema first, if missing).
    pub sql: Vec<String>,
    /// Set for kinds pgbarge cannot create (base types, extension types): preflight
    /// reports.
    pub unsupported: Option<String>,
    /// The chosen tables with a column of it (or of its array type), when unsupported.
    pub used_by: Vec<TableName>,
}

/// The source's types the target lacks, in creation order (dependencies first).
pub(super) fn missing_types(snapshot: &Snapshot) -> impl Iterator<Item = &UserType> {
    snapshot.source.types.iter().filter(|ut| {
        !snapshot
            .target_types
            .contains_key(&(ut.schema.clone(), ut.name.clone()))
    })
}

/// A shell type (`CREATE TYPE name;`) the role may not declare: nothing can use one and
/// only a superuser may declare it, so it is left out (which stops a `--strict` copy).
pub(super) fn shell_left_out(
    ut: &UserType,
    snapshot: &Snapshot,
    options: &SchemaOptions,
) -> Option<Skipped> {
    let shell = matches!(ut.definition, TypeDefinition::Shell);
    (shell && !snapshot.target_privileges.is_superuser).then(|| Skipped {
        what: format!("type {}", TableName::new(&ut.schema, &ut.name)),
        why: SkipReason::Because(
            "it is a shell type (CREATE TYPE name;), and only a superuser may declare one".into(),
        ),
        blocking: options.strict,
        needed_by: Vec::new(),
    })
}

/// The plan of missing type `ut`: its creation, or — when `--exclude-object` leaves it
/// out or pgbarge cannot create it — why not, naming the `chosen` tables with a column of
/// it (preflight refuses those). `Err`: excluded, and no chosen table uses it, so it is
/// only named as left out.
pub(super) fn plan_type(
    ut: &UserType,
    chosen: &[TableName],
    snapshot: &Snapshot,
    options: &SchemaOptions,
) -> Result<TypePlan, Skipped> {
    let users: Vec<TableName> = chosen
        .iter()
        .filter(|name| {
            snapshot
                .source
                .tables
                .get(name)
                .is_some_and(|t| has_column_of(t, ut))
        })
        .cloned()
        .collect();
    let kind = match ut.definition {
        TypeDefinition::Domain { .. } => "domain",
        _ => "type",
    };
    let excluded = options.excluded(kind, &ut.schema, &ut.name);
    if let (Some(why), true) = (&excluded, users.is_empty()) {
        return Err(Skipped {
            what: format!("{kind} {}", TableName::new(&ut.schema, &ut.name)),
            why: why.clone().into(),
            blocking: false,
            needed_by: Vec::new(),
        });
    }
    // Left out but a chosen table's column has it: like a type the role cannot create,
    // that table is refused (or left out of a whole-schema copy).
    let (sql, unsupported) = match (excluded, type_ddl(ut)) {
        (Some(why), _) => (Vec::new(), Some(why)),
        (None, Ok(ddl)) => (vec![ddl], None),
        (None, Err(why)) => (Vec::new(), Some(why)),
    };
    Ok(TypePlan {
        name: TableName::new(&ut.schema, &ut.name).to_string(),
        schema: ut.schema.clone(),
        sql,
        used_by: if unsupported.is_some() {
            users
        } else {
            Vec::new()
        },
        unsupported,
    })
}

/// Whether a column of `table` is of type `ut` or of its array type.
fn has_column_of(table: &TableDetail, ut: &UserType) -> bool {
    let array = format!("_{}", ut.name);
    table
        .columns
        .iter()
        .any(|c| c.ty.schema == ut.schema && (c.ty.name == ut.name || c.ty.name == array))
}

/// The missing domains' NOT VALID checks, added after the data as pg_dump adds them: the
/// copied values may break them, as the source's do.
pub(super) fn domain_checks_after_data(snapshot: &Snapshot) -> Vec<Step> {
    let mut steps = Vec::new();
    for ut in missing_types(snapshot) {
        if let TypeDefinition::Domain { checks, .. } = &ut.definition {
            steps.extend(checks.iter().filter(|c| !c.validated).map(|c| Step {
                what: format!("domain check {} of {}", c.name, ut.sql_name()),
                sql: add_check_sql(ut, c),
                needs: Vec::new(),
            }));
        }
    }
    steps
}

/// The checks of the domains created (`types`) that call functions: added once the
/// functions exist, in the preparing transaction (the domains hold no value yet, so they
/// are checked at once).
pub(super) fn domain_checks_calling_functions(
    snapshot: &Snapshot,
    types: &[TypePlan],
) -> Vec<String> {
    let created = |t: &UserType| {
        types.iter().any(|p| {
            p.unsupported.is_none() && p.name == TableName::new(&t.schema, &t.name).to_string()
        })
    };
    let mut sql = Vec::new();
    for t in snapshot.source.types.iter().filter(|t| created(t)) {
        if let TypeDefinition::Domain { checks, .. } = &t.definition {
            sql.extend(
                checks
                    .iter()
                    .filter(|c| c.validated && c.calls_function)
                    .map(|c| add_check_sql(t, c)),
            );
        }
    }
    sql
}

/// `ALTER DOMAIN … ADD CONSTRAINT …` for check `c` of domain `ut`.
fn add_check_sql(ut: &UserType, c: &DomainCheck) -> String {
    format!(
        "ALTER DOMAIN {} ADD CONSTRAINT {} {}",
        ut.sql_name(),
        ident(&c.name),
        c.definition
    )
}

/// `CREATE TYPE` / `CREATE DOMAIN` for a user type, or why it cannot be created.
pub(super) fn type_ddl(t: &UserType) -> Result<String, String> {
    let name = t.sql_name();
    match &t.definition {
        TypeDefinition::Enum { labels } => Ok(format!(
            "CREATE TYPE {name} AS ENUM ({})",
            labels
                .iter()
                .map(|l| literal(l))
                .collect::<Vec<_>>()
                .join(", ")
        )),
        TypeDefinition::Composite { attributes } => {
            Ok(format!("CREATE TYPE {name} AS ({})", attributes.join(", ")))
        }
        TypeDefinition::Domain {
            base,
            not_null,
            default,
            checks,
        } => {
            let mut s = format!("CREATE DOMAIN {name} AS {base}");
            if let Some(d) = default {
                s.push_str(&format!(" DEFAULT {d}"));
            }
            if *not_null {
                s.push_str(" NOT NULL");
            }
            for c in checks.iter().filter(|c| c.validated && !c.calls_function) {
                s.push_str(&format!(" CONSTRAINT {} {}", ident(&c.name), c.definition));
            }
            Ok(s)
        }
        TypeDefinition::Range(range) => range_ddl(&t.schema, &t.name, range),
        TypeDefinition::Shell => Ok(format!("CREATE TYPE {}", t.sql_name())),
        TypeDefinition::Unsupported { typtype } => Err(match typtype {
            'r' => "its definition could not be read".to_string(),
            'b' => "it is a base type, usually from an extension (CREATE EXTENSION on the target)"
                .to_string(),
            other => format!("types of kind '{other}' are not created by pgbarge"),
        }),
    }
}

/// `CREATE TYPE … AS RANGE`, naming the multirange type only where it is not the one
/// PostgreSQL would derive (so the statement also works on a target older than 14).
fn range_ddl(
    schema: &str,
    name: &str,
    r: &crate::catalog::RangeDefinition,
) -> Result<String, String> {
    if r.canonical {
        return Err(
            "it has a canonical function, which only a superuser can create (it is written in C)"
                .into(),
        );
    }
    let q = |(s, n): &(String, String)| crate::quote::qualified(s, n);
    let mut parts = vec![
        format!("SUBTYPE = {}", r.subtype),
        format!("SUBTYPE_OPCLASS = {}", q(&r.opclass)),
    ];
    if let Some(c) = &r.collation {
        parts.push(format!("COLLATION = {}", q(c)));
    }
    if let Some(d) = &r.diff {
        if d.0 != "pg_catalog" {
            return Err(format!(
                "its subtype_diff function {} is user-defined, and pgbarge creates types \
                 before functions",
                q(d)
            ));
        }
        parts.push(format!("SUBTYPE_DIFF = {}", q(d)));
    }
    if let Some((ms, mn)) = &r.multirange {
        let derived = match name.find("range") {
            Some(i) => format!("{}multirange{}", &name[..i], &name[i + "range".len()..]),
            None => format!("{name}_multirange"),
        };
        if ms != schema || *mn != derived {
            parts.push(format!(
                "MULTIRANGE_TYPE_NAME = {}",
                q(&(ms.clone(), mn.clone()))
            ));
        }
    }
    Ok(format!(
        "CREATE TYPE {} AS RANGE ({})",
        crate::quote::qualified(schema, name),
        parts.join(", ")
    ))
}
