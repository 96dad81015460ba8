//! The user-defined types the copied columns need that the target lacks: created before
//! the tables, or why they cannot be.

use serde::Serialize;

use crate::catalog::{TableName, TypeDefinition, UserType};
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
