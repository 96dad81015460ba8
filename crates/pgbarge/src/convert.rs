//! Can a target column take a source column's values, and how must they travel?
//!
//! Identical types go in binary (the fastest path, and exact). Different types travel as
//! text — the server's own output and input functions do the conversion — but only where
//! every value the source type can hold is accepted unchanged by the target type (int4 →
//! int8, varchar(20) → text, numeric(12,2) → numeric(14,2)). Anything narrowing is refused
//! up front rather than failing halfway through a load.

use crate::catalog::ColumnType;

/// How a column's values can reach the target column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Conversion {
    /// Same type on both sides: binary COPY is safe.
    Identical,
    /// A widening conversion through the types' text forms.
    ViaText,
    /// The target type cannot hold every source value; the reason says why.
    Refused(String),
}

fn is_array(t: &ColumnType) -> bool {
    t.category == 'A' && t.name.starts_with('_')
}

/// Declared length of varchar/bpchar (`None` = unlimited).
fn char_length(typmod: i32) -> Option<i32> {
    (typmod >= 4).then_some(typmod - 4)
}

/// (precision, scale) of numeric (`None` = unconstrained).
fn numeric_precision(typmod: i32) -> Option<(i32, i32)> {
    (typmod >= 4).then(|| {
        let m = typmod - 4;
        ((m >> 16) & 0xffff, ((m & 0x7ff) ^ 1024) - 1024)
    })
}

/// Fractional-second precision of time-like types (default 6).
fn time_precision(typmod: i32) -> i32 {
    if typmod < 0 {
        6
    } else {
        typmod & 0xffff
    }
}

/// Decimal digits an integer type can need.
fn integer_digits(name: &str) -> Option<i32> {
    match name {
        "int2" => Some(5),
        "int4" => Some(10),
        "int8" => Some(19),
        _ => None,
    }
}

/// Decides how `source` values reach a `target` column.
pub fn conversion(source: &ColumnType, target: &ColumnType) -> Conversion {
    if source.sql == target.sql {
        return Conversion::Identical;
    }
    let refuse = || {
        Conversion::Refused(format!(
            "source type {} cannot be loaded into target type {} without losing or rejecting values",
            source.sql, target.sql
        ))
    };
    // Unlimited text takes any value's text form unchanged.
    if target.is_builtin()
        && (target.name == "text" || (target.name == "varchar" && target.typmod < 0))
    {
        return Conversion::ViaText;
    }
    if is_array(source) != is_array(target) {
        return refuse();
    }
    if !source.is_builtin() || !target.is_builtin() {
        // User types (enums, domains, composites) must be the same type.
        return if source.schema == target.schema && source.name == target.name {
            Conversion::ViaText
        } else {
            refuse()
        };
    }
    let s = source.name.trim_start_matches('_');
    let t = target.name.trim_start_matches('_');
    let ok = match (s, t) {
        ("varchar" | "bpchar", "varchar" | "bpchar") => {
            match (char_length(source.typmod), char_length(target.typmod)) {
                (_, None) => true,
                (Some(a), Some(b)) => a <= b,
                (None, Some(_)) => false,
            }
        }
        ("int2" | "int4" | "int8", "int2" | "int4" | "int8") => {
            integer_digits(s) <= integer_digits(t)
        }
        ("int2" | "int4" | "int8", "numeric") => match numeric_precision(target.typmod) {
            None => true,
            Some((p, sc)) => integer_digits(s).is_some_and(|d| p - sc >= d),
        },
        ("int2" | "int4" | "float4", "float8") => true,
        ("numeric", "numeric") => {
            match (
                numeric_precision(source.typmod),
                numeric_precision(target.typmod),
            ) {
                (_, None) => true,
                (None, Some(_)) => false,
                (Some((p1, s1)), Some((p2, s2))) => s2 >= s1 && p2 - s2 >= p1 - s1,
            }
        }
        ("timestamp", "timestamp")
        | ("timestamptz", "timestamptz")
        | ("time", "time")
        | ("timetz", "timetz")
        | ("interval", "interval") => {
            // interval typmods also restrict fields; only a plain precision change is safe.
            (s != "interval" || target.typmod < 0 || (target.typmod >> 16) == 0x7fff)
                && time_precision(source.typmod) <= time_precision(target.typmod)
        }
        ("date", "timestamp" | "timestamptz") => true,
        ("json", "jsonb") | ("jsonb", "json") => true,
        ("varbit" | "bit", "varbit") => target.typmod < 0 || source.typmod <= target.typmod,
        _ => false,
    };
    if ok {
        Conversion::ViaText
    } else {
        refuse()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ty(sql: &str, name: &str, typmod: i32) -> ColumnType {
        ColumnType {
            oid: 0,
            sql: sql.into(),
            schema: "pg_catalog".into(),
            name: name.into(),
            typmod,
            typtype: 'b',
            category: if name.starts_with('_') { 'A' } else { 'N' },
            binary_io: true,
        }
    }

    fn numeric(p: i32, s: i32) -> ColumnType {
        ty(&format!("numeric({p},{s})"), "numeric", ((p << 16) | s) + 4)
    }

    #[test]
    fn identical_and_widening() {
        let int4 = ty("integer", "int4", -1);
        let int8 = ty("bigint", "int8", -1);
        let text = ty("text", "text", -1);
        let vc20 = ty("character varying(20)", "varchar", 24);
        let vc30 = ty("character varying(30)", "varchar", 34);
        assert_eq!(conversion(&int4, &int4), Conversion::Identical);
        assert_eq!(conversion(&int4, &int8), Conversion::ViaText);
        assert_eq!(conversion(&vc20, &text), Conversion::ViaText);
        assert_eq!(conversion(&vc20, &vc30), Conversion::ViaText);
        assert_eq!(
            conversion(&numeric(12, 2), &numeric(14, 2)),
            Conversion::ViaText
        );
        assert_eq!(conversion(&int4, &numeric(12, 2)), Conversion::ViaText);
        let a4 = ty("integer[]", "_int4", -1);
        let a8 = ty("bigint[]", "_int8", -1);
        assert_eq!(conversion(&a4, &a8), Conversion::ViaText);
    }

    #[test]
    fn narrowing_is_refused() {
        let cases = [
            (ty("text", "text", -1), ty("integer", "int4", -1)),
            (ty("bigint", "int8", -1), ty("integer", "int4", -1)),
            (
                ty("timestamp with time zone", "timestamptz", -1),
                ty("date", "date", -1),
            ),
            (numeric(12, 2), numeric(5, 2)),
            (
                ty("character varying(30)", "varchar", 34),
                ty("character varying(20)", "varchar", 24),
            ),
            (ty("numeric", "numeric", -1), numeric(10, 2)),
            (ty("integer[]", "_int4", -1), ty("integer", "int4", -1)),
        ];
        for (s, t) in cases {
            assert!(
                matches!(conversion(&s, &t), Conversion::Refused(_)),
                "{} -> {}",
                s.sql,
                t.sql
            );
        }
    }
}
