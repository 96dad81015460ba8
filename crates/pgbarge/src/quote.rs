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

/// `text` safe to show on a terminal or in a SQL comment: control characters (a newline,
/// an escape sequence, a carriage return), invisible format characters and the marks
/// that reorder text right-to-left are written as `\u{…}` escapes (`\n`, `\t`, `\r`
/// for the common ones), and a backslash as `\\`, so the escapes are unambiguous. A name
/// shown to a user can then neither move the cursor, hide text nor end a comment line.
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(|c| c == '\\' || hidden(c)) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if hidden(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// `text` as it may go to a terminal: [`printable`]'s escapes for every hidden character
/// but a newline or a tab (which the text itself may use to lay out lines), backslashes
/// left as they are. The last line of defence for output built from names and server
/// messages: no escape sequence or direction mark in a name reaches the terminal.
pub fn for_terminal(text: &str) -> std::borrow::Cow<'_, str> {
    let shown = |c: char| c == '\n' || c == '\t' || !hidden(c);
    if text.chars().all(shown) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if shown(c) {
            out.push(c);
        } else if c == '\r' {
            out.push_str("\\r");
        } else {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        }
    }
    std::borrow::Cow::Owned(out)
}

/// A character a terminal would not show as itself: C0 and C1 controls, DEL, and the
/// format characters that change how text around them is shown (bidirectional marks,
/// embeddings and isolates, zero-width characters, the byte-order mark).
fn hidden(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{00ad}' | '\u{061c}' | '\u{180e}' | '\u{200b}'..='\u{200f}'
            | '\u{2028}'..='\u{202e}' | '\u{2060}'..='\u{206f}' | '\u{feff}'
            | '\u{fff9}'..='\u{fffb}')
}

/// `body` dollar-quoted (`$pgbarge$…$pgbarge$`, for a `DO` block), with a tag that
/// `body` does not contain: a name inside it cannot end the quote early.
pub fn dollar(body: &str) -> String {
    let mut n = 0;
    loop {
        let tag = if n == 0 {
            "$pgbarge$".to_string()
        } else {
            format!("$pgbarge{n}$")
        };
        if !body.contains(&tag) {
            return format!("{tag}{body}{tag}");
        }
        n += 1;
    }
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

    #[test]
    fn printable_escapes_what_a_terminal_would_act_on() {
        assert_eq!(printable("orders"), "orders");
        assert_eq!(printable("émoji 🚢 ok"), "émoji 🚢 ok");
        assert_eq!(printable("a\nb\tc"), "a\\nb\\tc");
        assert_eq!(printable("\u{1b}[2J"), "\\u{1b}[2J");
        assert_eq!(printable("abc\u{202e}fed"), "abc\\u{202e}fed");
        assert_eq!(for_terminal("a\nb\t\u{1b}[31m\\"), "a\nb\t\\u{1b}[31m\\");
        // A backslash is escaped too, so an escape in the output is never ambiguous.
        assert_eq!(printable("a\\nb"), "a\\\\nb");
    }

    #[test]
    fn dollar_quotes_never_end_inside_the_body() {
        assert_eq!(dollar("x"), "$pgbarge$x$pgbarge$");
        assert_eq!(dollar("a $pgbarge$ b"), "$pgbarge1$a $pgbarge$ b$pgbarge1$");
    }
}
