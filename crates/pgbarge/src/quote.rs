//! The one place identifiers and literals are quoted for SQL.
//!
//! Every identifier pgbarge sends is quoted, whether or not it needs it: names such as
//! `"Sales Dept"`, `order` or `user` must survive unchanged, and always quoting means no
//! reserved-word list to keep in sync with the server.

/// `name` as a quoted SQL identifier: `"name"`, with embedded `"` doubled.
pub fn ident(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 2);
    out.push('"');
    for c in name.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// `schema.name` with both parts quoted.
pub fn qualified(schema: &str, name: &str) -> String {
    format!("{}.{}", ident(schema), ident(name))
}

/// A quoted, comma-separated column list: `"a", "b"`.
pub fn ident_list<'a>(names: impl IntoIterator<Item = &'a str>) -> String {
    names.into_iter().map(ident).collect::<Vec<_>>().join(", ")
}

/// `value` as a SQL string literal, with `'` doubled. With `standard_conforming_strings`
/// on (the default since 9.1, and set by pgbarge on every connection) backslashes are
/// literal characters.
pub fn literal(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        if c == '\'' {
            out.push('\'');
        }
        out.push(c);
    }
    out.push('\'');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_every_identifier() {
        assert_eq!(ident("orders"), r#""orders""#);
        assert_eq!(ident(r#"a"b"#), r#""a""b""#);
        assert_eq!(
            qualified("Sales Dept", "order lines"),
            r#""Sales Dept"."order lines""#
        );
        assert_eq!(ident_list(["a", "B c"]), r#""a", "B c""#);
    }

    #[test]
    fn quotes_literals() {
        assert_eq!(literal("it's"), "'it''s'");
        assert_eq!(literal(r"a\b"), r"'a\b'");
    }
}
