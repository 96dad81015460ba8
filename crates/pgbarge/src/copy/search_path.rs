//! The search path each target transaction loads with: the source's own, as far as it
//! is safe on the target (see [`SAFE_SEARCH_PATH`]).

use crate::connect::Connection;
use crate::error::{Error, Kind, Result, Side};
use crate::quote::literal;

/// The source's own `search_path` (before pgbarge emptied it for this session)...
const SOURCE_SEARCH_PATH: &str =
    "SELECT reset_val FROM pg_catalog.pg_settings WHERE name = 'search_path'";
/// ...is what each target transaction loads with, as far as it is safe: check
/// constraints, defaults and triggers call functions whose bodies may name other objects
/// unqualified, as they resolve on the source. But a schema another role may create
/// functions in would let it shadow a built-in function with a closer match (`lower`
/// taking `varchar`) and run its code as this role. So the path is `pg_catalog` first,
/// then only the source path's schemas that exist on the target and are owned by the
/// connecting role, a superuser, or (`public` from PostgreSQL 15) the owner of a database
/// owned by one of those — and in which no other role may create objects. `$user` is
/// the target role's schema, on the same terms. Computed by the target at the start of
/// each transaction (`{PATH}`: the source path's schemas as a text array), so schemas
/// the run created are found.
const SAFE_SEARCH_PATH: &str = "SELECT pg_catalog.set_config('search_path', \
    pg_catalog.concat_ws(', ', 'pg_catalog', (\
      SELECT pg_catalog.string_agg(pg_catalog.quote_ident(n.nspname), ', ' ORDER BY p.ord) \
      FROM pg_catalog.unnest({PATH}::pg_catalog.text[]) WITH ORDINALITY AS p(name, ord) \
      JOIN pg_catalog.pg_namespace n ON n.nspname = \
        CASE p.name WHEN '$user' THEN CURRENT_USER::pg_catalog.text ELSE p.name END \
      JOIN pg_catalog.pg_roles o ON o.oid = n.nspowner \
      WHERE n.nspname <> 'pg_catalog' \
        AND (o.rolsuper OR o.rolname = CURRENT_USER \
             OR (o.rolname = 'pg_database_owner' \
                 AND (SELECT d.rolsuper OR d.rolname = CURRENT_USER \
                      FROM pg_catalog.pg_database b \
                      JOIN pg_catalog.pg_roles d ON d.oid = b.datdba \
                      WHERE b.datname = pg_catalog.current_database()))) \
        AND NOT EXISTS (SELECT FROM pg_catalog.aclexplode(n.nspacl) a \
                        LEFT JOIN pg_catalog.pg_roles g ON g.oid = a.grantee \
                        WHERE a.privilege_type = 'CREATE' AND a.grantee <> n.nspowner \
                          AND NOT coalesce(g.rolsuper OR g.rolname = CURRENT_USER, false)))), \
    true)";

/// The statement setting a target transaction's search path (see [`SAFE_SEARCH_PATH`])
/// from the source's `search_path` setting.
fn search_path_sql(source_path: &str) -> String {
    let schemas: Vec<String> = split_search_path(source_path)
        .iter()
        .map(|s| literal(s))
        .collect();
    SAFE_SEARCH_PATH.replace("{PATH}", &format!("ARRAY[{}]", schemas.join(", ")))
}

/// The schema names of a `search_path` setting as the server reads it: comma-separated,
/// a double-quoted name as written (`""` a quote), any other folded to lower case.
fn split_search_path(path: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut chars = path.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut name = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                if c == '"' {
                    if chars.peek() == Some(&'"') {
                        chars.next();
                    } else {
                        break;
                    }
                }
                name.push(c);
            }
            while chars.peek().is_some_and(|&c| c != ',') {
                chars.next();
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                name.push(c.to_ascii_lowercase());
                chars.next();
            }
            name = name.trim_end().to_string();
        }
        if !name.is_empty() {
            names.push(name);
        }
        if chars.next().is_none() {
            return names;
        }
    }
}

/// The statement setting a target transaction's search path, from `source`'s setting.
pub(super) async fn target_search_path(source: &Connection) -> Result<String> {
    let row = source
        .client
        .query_one(SOURCE_SEARCH_PATH, &[])
        .await
        .map_err(|e| Error::postgres(Kind::Copy, Side::Source, "reading the search_path", e))?;
    Ok(search_path_sql(&row.get::<_, String>(0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_search_path_setting_splits_as_the_server_reads_it() {
        assert_eq!(split_search_path("\"$user\", public"), ["$user", "public"]);
        assert_eq!(
            split_search_path(" App ,\"Sales, \"\"EU\"\"\" , x "),
            ["app", "Sales, \"EU\"", "x"]
        );
        assert!(split_search_path("").is_empty());
        assert!(split_search_path("\"\"").is_empty());
    }

    #[test]
    fn the_target_search_path_is_computed_by_the_target_per_transaction() {
        let sql = search_path_sql("\"$user\", public, it's");
        assert!(sql.contains("ARRAY['$user', 'public', 'it''s']"), "{sql}");
        assert!(sql.ends_with("true)"), "local to the transaction: {sql}");
    }
}
