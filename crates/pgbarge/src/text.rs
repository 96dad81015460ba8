//! Words and numbers for people: lists, plurals, thousands, byte sizes. A leaf: every
//! stage that writes a message may use it, and it uses nothing of pgbarge's.

/// `a`, `a and b`, `a, b, c and 4 more`: a list short enough to read in a message.
pub fn short_list<T: std::fmt::Display>(items: &[T], shown: usize) -> String {
    let names: Vec<String> = items
        .iter()
        .take(shown.max(1))
        .map(|n| n.to_string())
        .collect();
    match (items.len().saturating_sub(names.len()), names.as_slice()) {
        (_, []) => String::new(),
        (0, [one]) => one.clone(),
        (0, [rest @ .., last]) => format!("{} and {last}", rest.join(", ")),
        (more, _) => format!("{} and {more} more", names.join(", ")),
    }
}

/// `1 table`, `3 tables`.
pub fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `1204332` → `1,204,332`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Bytes for humans: `306.2 MB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1000.0 && unit < UNITS.len() - 1 {
        v /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_numbers() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_204_332), "1,204,332");
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(306_200_000), "306.2 MB");
    }
}
