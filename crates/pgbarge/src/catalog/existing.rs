//! Which objects the target already has: the run leaves those as they are (and a few
//! checks, such as `--owner`, ask about roles). Each object is named by a typed
//! reference built next to the code that asks, and looked up in one round trip.

use std::collections::BTreeSet;

use tokio_postgres::Client;

use super::TableName;
use crate::error::{Error, Kind, Result, Side};

/// An object whose presence on the target is asked about.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ObjectRef {
    /// A table, view, sequence or other relation.
    Relation(TableName),
    /// A table's constraint.
    Constraint {
        table: TableName,
        name: String,
    },
    /// A table's trigger.
    Trigger {
        table: TableName,
        name: String,
    },
    Collation {
        schema: String,
        name: String,
    },
    /// A function, procedure or aggregate, by its `regprocedure` text.
    Routine(String),
    /// An operator, by its `regoperator` text.
    Operator(String),
    /// A cast, by the `format_type()` of its source and target types.
    Cast {
        source: String,
        target: String,
    },
    TextSearchDictionary {
        schema: String,
        name: String,
    },
    TextSearchConfiguration {
        schema: String,
        name: String,
    },
    Extension(String),
    Role(String),
    /// The connected role is a member of this role.
    MemberOf(String),
    /// `role` may create objects in `schema`.
    MayCreateIn {
        role: String,
        schema: String,
    },
}

impl ObjectRef {
    /// The kind as [`EXISTING`] matches it, and up to three name parts.
    fn parts(&self) -> (&'static str, &str, &str, &str) {
        match self {
            ObjectRef::Relation(t) => ("relation", &t.schema, &t.name, ""),
            ObjectRef::Constraint { table, name } => {
                ("constraint", &table.schema, &table.name, name)
            }
            ObjectRef::Trigger { table, name } => ("trigger", &table.schema, &table.name, name),
            ObjectRef::Collation { schema, name } => ("collation", schema, name, ""),
            ObjectRef::Routine(signature) => ("routine", signature, "", ""),
            ObjectRef::Operator(signature) => ("operator", signature, "", ""),
            ObjectRef::Cast { source, target } => ("cast", source, target, ""),
            ObjectRef::TextSearchDictionary { schema, name } => {
                ("text search dictionary", schema, name, "")
            }
            ObjectRef::TextSearchConfiguration { schema, name } => {
                ("text search configuration", schema, name, "")
            }
            ObjectRef::Extension(name) => ("extension", name, "", ""),
            ObjectRef::Role(name) => ("role", name, "", ""),
            ObjectRef::MemberOf(name) => ("member", name, "", ""),
            ObjectRef::MayCreateIn { role, schema } => ("create_as", role, schema, ""),
        }
    }
}

/// Which of the named objects exist on a server: for each kind, the catalog matched
/// against the name parts `a`, `b`, `c`.
const EXISTING: &str = "
SELECT w.i FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])
                WITH ORDINALITY AS w(kind, a, b, c, i)
WHERE CASE w.kind
        WHEN 'relation' THEN EXISTS (
            SELECT 1 FROM pg_catalog.pg_class r
            JOIN pg_catalog.pg_namespace n ON n.oid = r.relnamespace
            WHERE n.nspname = w.a AND r.relname = w.b)
        WHEN 'constraint' THEN EXISTS (
            SELECT 1 FROM pg_catalog.pg_constraint k
            JOIN pg_catalog.pg_class r ON r.oid = k.conrelid
            JOIN pg_catalog.pg_namespace n ON n.oid = r.relnamespace
            WHERE n.nspname = w.a AND r.relname = w.b AND k.conname = w.c)
        WHEN 'trigger' THEN EXISTS (
            SELECT 1 FROM pg_catalog.pg_trigger g
            JOIN pg_catalog.pg_class r ON r.oid = g.tgrelid
            JOIN pg_catalog.pg_namespace n ON n.oid = r.relnamespace
            WHERE n.nspname = w.a AND r.relname = w.b AND g.tgname = w.c)
        WHEN 'collation' THEN EXISTS (
            SELECT 1 FROM pg_catalog.pg_collation co
            JOIN pg_catalog.pg_namespace n ON n.oid = co.collnamespace
            WHERE n.nspname = w.a AND co.collname = w.b)
        -- Not to_regprocedure(): it raises an error when an argument type is missing.
        WHEN 'routine' THEN EXISTS (SELECT 1 FROM pg_catalog.pg_proc f
                                    WHERE f.oid::pg_catalog.regprocedure::text = w.a)
        WHEN 'operator' THEN EXISTS (SELECT 1 FROM pg_catalog.pg_operator o
                                     WHERE o.oid::pg_catalog.regoperator::text = w.a)
        WHEN 'cast' THEN EXISTS (
            SELECT 1 FROM pg_catalog.pg_cast c
            WHERE pg_catalog.format_type(c.castsource, NULL) = w.a
              AND pg_catalog.format_type(c.casttarget, NULL) = w.b)
        WHEN 'text search dictionary' THEN EXISTS (
            SELECT 1 FROM pg_catalog.pg_ts_dict d
            JOIN pg_catalog.pg_namespace n ON n.oid = d.dictnamespace
            WHERE n.nspname = w.a AND d.dictname = w.b)
        WHEN 'text search configuration' THEN EXISTS (
            SELECT 1 FROM pg_catalog.pg_ts_config c
            JOIN pg_catalog.pg_namespace n ON n.oid = c.cfgnamespace
            WHERE n.nspname = w.a AND c.cfgname = w.b)
        WHEN 'extension' THEN EXISTS (SELECT 1 FROM pg_catalog.pg_extension e
                                      WHERE e.extname = w.a)
        WHEN 'role' THEN EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname = w.a)
        WHEN 'create_as' THEN EXISTS (
            SELECT 1 FROM pg_catalog.pg_roles r, pg_catalog.pg_namespace n
            WHERE r.rolname = w.a AND n.nspname = w.b
              AND pg_catalog.has_schema_privilege(r.oid, n.oid, 'CREATE'))
        WHEN 'member' THEN EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname = w.a
                                   AND pg_catalog.pg_has_role(r.oid, 'MEMBER'))
        ELSE false
      END";

/// Which of `objects` exist on the server.
pub async fn existing(
    client: &Client,
    side: Side,
    objects: &[ObjectRef],
) -> Result<BTreeSet<ObjectRef>> {
    if objects.is_empty() {
        return Ok(BTreeSet::new());
    }
    let parts: Vec<_> = objects.iter().map(ObjectRef::parts).collect();
    let kinds: Vec<&str> = parts.iter().map(|p| p.0).collect();
    let a: Vec<&str> = parts.iter().map(|p| p.1).collect();
    let b: Vec<&str> = parts.iter().map(|p| p.2).collect();
    let c: Vec<&str> = parts.iter().map(|p| p.3).collect();
    let rows = client
        .query(EXISTING, &[&kinds, &a, &b, &c])
        .await
        .map_err(|e| Error::postgres(Kind::Catalog, side, "looking up existing objects", e))?;
    Ok(rows
        .iter()
        .filter_map(|r| objects.get((r.get::<_, i64>(0) - 1) as usize).cloned())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_one_the_query_matches() {
        let t = TableName::new("s", "t");
        let all = [
            ObjectRef::Relation(t.clone()),
            ObjectRef::Constraint {
                table: t.clone(),
                name: "k".into(),
            },
            ObjectRef::Trigger {
                table: t,
                name: "g".into(),
            },
            ObjectRef::Collation {
                schema: "s".into(),
                name: "c".into(),
            },
            ObjectRef::Routine("s.f(integer)".into()),
            ObjectRef::Operator("s.+(integer,integer)".into()),
            ObjectRef::Cast {
                source: "s.a".into(),
                target: "numeric".into(),
            },
            ObjectRef::TextSearchDictionary {
                schema: "s".into(),
                name: "d".into(),
            },
            ObjectRef::TextSearchConfiguration {
                schema: "s".into(),
                name: "c".into(),
            },
            ObjectRef::Extension("e".into()),
            ObjectRef::Role("r".into()),
            ObjectRef::MemberOf("r".into()),
            ObjectRef::MayCreateIn {
                role: "r".into(),
                schema: "s".into(),
            },
        ];
        for object in &all {
            let kind = object.parts().0;
            assert!(
                EXISTING.contains(&format!("WHEN '{kind}' THEN")),
                "{kind} is matched"
            );
        }
    }
}
