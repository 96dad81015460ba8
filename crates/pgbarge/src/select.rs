//! Table patterns → tables.
//!
//! A pattern is `name`, `schema.name`, either part double-quoted to keep its case and
//! spaces (`"Sales Dept"."order lines"`), and either part may hold `*` / `?` globs
//! (`public.*`, `sales.order_*`). Unquoted parts fold to lower case, as SQL does; if that
//! finds nothing but the exact spelling exists, the exact spelling is taken (a user who
//! types `Orders` for a table created as `"Orders"` means that table).

use std::collections::BTreeSet;

use serde::Serialize;

use crate::catalog::{Table, TableName};
use crate::error::{Error, Result};

/// One part of a pattern: text, whether it was quoted, whether it is a glob.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
struct Part {
    text: String,
    quoted: bool,
}

impl Part {
    fn is_glob(&self) -> bool {
        !self.quoted && (self.text.contains('*') || self.text.contains('?'))
    }

    fn matches(&self, name: &str, fold: bool) -> bool {
        let text = if fold && !self.quoted {
            self.text.to_lowercase()
        } else {
            self.text.clone()
        };
        if self.is_glob() {
            glob_match(&text, name)
        } else {
            text == name
        }
    }
}

/// A parsed table pattern.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pattern {
    /// What the user typed, for messages.
    pub text: String,
    schema: Option<Part>,
    name: Part,
}

impl Pattern {
    /// Parses `text`; errors on unbalanced quotes, empty parts or more than two parts.
    pub fn parse(text: &str) -> Result<Self> {
        let mut parts: Vec<Part> = Vec::new();
        let mut cur = String::new();
        let mut quoted = false;
        let mut in_quotes = false;
        let mut chars = text.trim().chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '"' if in_quotes => {
                    if chars.next_if_eq(&'"').is_some() {
                        cur.push('"');
                    } else {
                        in_quotes = false;
                    }
                }
                '"' => {
                    in_quotes = true;
                    quoted = true;
                }
                '.' if !in_quotes => {
                    parts.push(Part {
                        text: std::mem::take(&mut cur),
                        quoted,
                    });
                    quoted = false;
                }
                c => cur.push(c),
            }
        }
        if in_quotes {
            return Err(Error::usage(format!(
                "table pattern {text:?} has an unclosed double quote"
            )));
        }
        parts.push(Part { text: cur, quoted });
        if parts.iter().any(|p| p.text.is_empty()) || parts.len() > 2 {
            return Err(Error::usage(format!(
                "table pattern {text:?} is not of the form name, schema.name or \"Schema\".\"Name\" \
                 (globs * and ? allowed)"
            )));
        }
        let name = parts.pop().expect("one part at least");
        Ok(Pattern {
            text: text.to_string(),
            schema: parts.pop(),
            name,
        })
    }

    /// The schema, when the pattern names all of one schema (`app.*`): such a copy takes
    /// the schema's types, sequences, functions and views along with its tables.
    pub fn whole_schema(&self) -> Option<&str> {
        let schema = self.schema.as_ref()?;
        (self.name.text == "*" && !self.name.quoted && !schema.is_glob())
            .then_some(schema.text.as_str())
    }

    fn is_glob(&self) -> bool {
        self.name.is_glob() || self.schema.as_ref().is_some_and(Part::is_glob)
    }

    fn matches(&self, table: &TableName, fold: bool) -> bool {
        self.name.matches(&table.name, fold)
            && self
                .schema
                .as_ref()
                .is_none_or(|s| s.matches(&table.schema, fold))
    }
}

/// `*` matches any run of characters, `?` one character.
fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// A pattern that selected nothing, or too much.
#[derive(Debug, Clone, Serialize)]
pub struct Unmatched {
    pub pattern: String,
    /// Close names on the source, best first.
    pub suggestions: Vec<TableName>,
    /// Set when an unqualified name exists in several schemas.
    pub ambiguous: Vec<TableName>,
}

/// The result of matching patterns against the source's tables.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Chosen tables, in the order first matched, without duplicates.
    pub tables: Vec<Table>,
    pub unmatched: Vec<Unmatched>,
}

/// Matches every pattern against `tables`. Patterns that match nothing (or, unqualified,
/// match the same name in several schemas) are returned with suggestions rather than
/// failing at once, so preflight can report every problem together.
pub fn select(patterns: &[Pattern], tables: &[Table]) -> Selection {
    let mut chosen: Vec<Table> = Vec::new();
    let mut seen = BTreeSet::new();
    let mut unmatched = Vec::new();
    for pattern in patterns {
        let mut hits: Vec<&Table> = tables
            .iter()
            .filter(|t| pattern.matches(&t.name, true))
            .collect();
        if hits.is_empty() {
            hits = tables
                .iter()
                .filter(|t| pattern.matches(&t.name, false))
                .collect();
        }
        if !pattern.is_glob() && pattern.schema.is_none() && hits.len() > 1 {
            // The same name in several schemas: take public's if there is one, else ask.
            if let Some(public) = hits.iter().find(|t| t.name.schema == "public") {
                hits = vec![*public];
            } else {
                unmatched.push(Unmatched {
                    pattern: pattern.text.clone(),
                    suggestions: Vec::new(),
                    ambiguous: hits.iter().map(|t| t.name.clone()).collect(),
                });
                continue;
            }
        }
        if hits.is_empty() {
            unmatched.push(Unmatched {
                pattern: pattern.text.clone(),
                suggestions: suggest(&pattern.text, tables),
                ambiguous: Vec::new(),
            });
        }
        for t in hits {
            if seen.insert(t.name.clone()) {
                chosen.push(t.clone());
            }
        }
    }
    Selection {
        tables: chosen,
        unmatched,
    }
}

/// Every table worth copying for "the whole database": all of them except partitions,
/// whose rows their partitioned parent already carries.
pub fn all(tables: &[Table]) -> Vec<Table> {
    tables.iter().filter(|t| !t.is_partition).cloned().collect()
}

/// `tables` without those any of `excluded` matches.
pub fn exclude(tables: Vec<Table>, excluded: &[Pattern]) -> Vec<Table> {
    tables
        .into_iter()
        .filter(|t| !excluded.iter().any(|p| p.matches(&t.name, true)))
        .collect()
}

/// The kinds `--exclude-object` can name, as plans and reports name them; `routine`
/// stands for functions, procedures and aggregates.
const OBJECT_KINDS: [&str; 11] = [
    "text search configuration",
    "text search dictionary",
    "materialized view",
    "function",
    "procedure",
    "aggregate",
    "routine",
    "operator",
    "domain",
    "view",
    "type",
];

/// `--exclude-object`: an object of a schema copied whole left out by kind (optional)
/// and a pattern of its schema and name, as for tables: `'function app.debug_*'`,
/// `'view reporting.*'`, `'app.legacy_*'` (any kind).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObjectPattern {
    /// What the user typed, for messages.
    pub text: String,
    kind: Option<&'static str>,
    pattern: Pattern,
}

impl ObjectPattern {
    /// Parses `[KIND] [schema.]name`; errors as [`Pattern::parse`] does.
    pub fn parse(text: &str) -> Result<Self> {
        let trimmed = text.trim();
        let lower = trimmed.to_lowercase();
        let kind = OBJECT_KINDS
            .iter()
            .find(|k| lower.starts_with(&format!("{k} ")))
            .copied();
        let rest = kind.map_or(trimmed, |k| trimmed[k.len()..].trim_start());
        Ok(ObjectPattern {
            text: text.to_string(),
            kind,
            pattern: Pattern::parse(rest)
                .map_err(|_| Error::usage(format!(
                    "object pattern {text:?} is not of the form [KIND] schema.name (KIND one of: {})",
                    OBJECT_KINDS.join(", ")
                )))?,
        })
    }

    /// Whether it names object `schema.name` of `kind` (`function`, `view`, …).
    pub fn matches(&self, kind: &str, schema: &str, name: &str) -> bool {
        let kind_ok = match self.kind {
            None => true,
            Some("routine") => matches!(kind, "function" | "procedure" | "aggregate"),
            Some(k) => k == kind,
        };
        kind_ok && self.pattern.matches(&TableName::new(schema, name), true)
    }
}

/// Up to three table names close to `text`: the name parts are compared, and a different
/// schema from the one typed costs a little.
pub fn suggest(text: &str, tables: &[Table]) -> Vec<TableName> {
    let wanted = text.replace('"', "").to_lowercase();
    let (schema, name) = match wanted.rsplit_once('.') {
        Some((s, n)) => (Some(s.to_string()), n.to_string()),
        None => (None, wanted),
    };
    let mut scored: Vec<(f64, &TableName)> = tables
        .iter()
        .map(|t| {
            let mut score = strsim::jaro_winkler(&name, &t.name.name.to_lowercase());
            if schema
                .as_deref()
                .is_some_and(|s| s != t.name.schema.to_lowercase())
            {
                score *= 0.95;
            }
            (score, &t.name)
        })
        .filter(|(s, _)| *s >= 0.88)
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(b.1)));
    scored.into_iter().take(3).map(|(_, n)| n.clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::TableKind;

    fn table(schema: &str, name: &str) -> Table {
        Table {
            oid: 0,
            name: TableName::new(schema, name),
            kind: TableKind::Regular,
            estimated_rows: None,
            total_bytes: 0,
            data_bytes: 0,
            is_partition: false,
            can_select: true,
            can_insert: true,
            can_truncate: true,
            can_update: true,
            can_delete: true,
            is_owner: true,
            pages: 0,
            unlogged: false,
            options: Vec::new(),
            of_type: None,
            row_security_applies: false,
        }
    }

    fn names(sel: &Selection) -> Vec<String> {
        sel.tables.iter().map(|t| t.name.to_string()).collect()
    }

    #[test]
    fn parses_quoted_and_plain() {
        let p = Pattern::parse(r#""Sales Dept"."order lines""#).unwrap();
        assert!(p.matches(&TableName::new("Sales Dept", "order lines"), true));
        let p = Pattern::parse(r#"a."x""y""#).unwrap();
        assert!(p.matches(&TableName::new("a", "x\"y"), true));
        assert!(Pattern::parse("a.b.c").is_err());
        assert!(Pattern::parse("\"open").is_err());
        assert!(Pattern::parse("a.").is_err());
    }

    #[test]
    fn globs_and_folding() {
        let tables = vec![
            table("public", "orders"),
            table("public", "order_lines"),
            table("sales", "order_2024"),
            table("sales", "Order_X"),
            table("public", "Customers"),
        ];
        let pats = |ps: &[&str]| {
            ps.iter()
                .map(|p| Pattern::parse(p).unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            names(&select(&pats(&["public.*"]), &tables)),
            vec![
                "public.orders",
                "public.order_lines",
                "public.\"Customers\""
            ]
        );
        assert_eq!(
            names(&select(&pats(&["sales.order_*"]), &tables)),
            vec!["sales.order_2024"]
        );
        assert_eq!(
            names(&select(&pats(&["ORDERS", "orders"]), &tables)),
            vec!["public.orders"]
        );
        // unquoted folds to lower case, but falls back to the exact spelling
        assert_eq!(
            names(&select(&pats(&["Customers"]), &tables)),
            vec!["public.\"Customers\""]
        );
        assert!(glob_match("a*b?c", "axxbyc"));
        assert!(!glob_match("a*b", "axxc"));
    }

    #[test]
    fn missing_table_gets_suggestions() {
        let tables = vec![table("public", "customers"), table("public", "orders")];
        let sel = select(&[Pattern::parse("public.custmers").unwrap()], &tables);
        assert!(sel.tables.is_empty());
        assert_eq!(
            sel.unmatched[0].suggestions,
            vec![TableName::new("public", "customers")]
        );
    }

    #[test]
    fn unqualified_name_in_two_schemas() {
        let tables = vec![
            table("a", "t"),
            table("b", "t"),
            table("public", "u"),
            table("x", "u"),
        ];
        let sel = select(&[Pattern::parse("t").unwrap()], &tables);
        assert_eq!(sel.unmatched[0].ambiguous.len(), 2);
        let sel = select(&[Pattern::parse("u").unwrap()], &tables);
        assert_eq!(names(&sel), vec!["public.u"]);
    }

    #[test]
    fn kinds_and_names_are_matched() {
        let p = ObjectPattern::parse("function app.debug_*").expect("pattern");
        assert!(p.matches("function", "app", "debug_dump"));
        assert!(!p.matches("view", "app", "debug_dump"));
        assert!(!p.matches("function", "public", "debug_dump"));
        let p = ObjectPattern::parse("Routine app.f").expect("pattern");
        assert!(p.matches("aggregate", "app", "f"));
        let p = ObjectPattern::parse("materialized view reporting.*").expect("pattern");
        assert!(p.matches("materialized view", "reporting", "daily"));
        assert!(!p.matches("view", "reporting", "daily"));
        let any = ObjectPattern::parse("app.legacy_*").expect("pattern");
        assert!(any.matches("type", "app", "legacy_kind"));
        assert!(ObjectPattern::parse("view a.b.c").is_err());
    }
}
