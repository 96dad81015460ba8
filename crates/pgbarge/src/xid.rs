//! Which transactions a snapshot of the source saw, as `pg_current_snapshot()` gives
//! them (`xmin:xmax:running,…`): read once from the server or the ledger, then carried
//! typed — recorded with a run, handed to the follower, which skips the stream's
//! transactions the copied rows already hold.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use bytes::BytesMut;
use serde::{Deserialize, Serialize};
use tokio_postgres::types::{to_sql_checked, FromSql, IsNull, ToSql, Type};

/// The transactions a snapshot saw: every one below `xmin`, and those below `xmax`
/// that were not `running`. Full 64-bit transaction ids.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct XidSnapshot {
    xmin: u64,
    xmax: u64,
    running: BTreeSet<u64>,
}

/// Text that is not a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a snapshot: {0:?} (expected xmin:xmax:xid,…)")]
pub struct BadSnapshot(String);

impl XidSnapshot {
    /// Whether the transaction `xid` (32 bits, as the stream gives it) had committed
    /// when the snapshot was taken. Transactions in the stream are near the snapshot in
    /// xid order, so the epoch is the one that puts `xid` closest to `xmax`.
    pub fn saw(&self, xid: u32) -> bool {
        let distance = xid.wrapping_sub(self.xmax as u32) as i32 as i64;
        let full = (self.xmax as i64 + distance) as u64;
        full < self.xmin || (full < self.xmax && !self.running.contains(&full))
    }
}

impl FromStr for XidSnapshot {
    type Err = BadSnapshot;

    fn from_str(text: &str) -> Result<Self, BadSnapshot> {
        let bad = || BadSnapshot(text.to_string());
        let mut parts = text.split(':');
        let num = |p: Option<&str>| p.and_then(|s| s.parse::<u64>().ok()).ok_or_else(bad);
        let xmin = num(parts.next())?;
        let xmax = num(parts.next())?;
        let running = parts
            .next()
            .ok_or_else(bad)?
            .split(',')
            .filter(|s| !s.is_empty())
            .map(|s| s.parse::<u64>().map_err(|_| bad()))
            .collect::<Result<_, _>>()?;
        if parts.next().is_some() || xmin > xmax {
            return Err(bad());
        }
        Ok(XidSnapshot {
            xmin,
            xmax,
            running,
        })
    }
}

impl fmt::Display for XidSnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:", self.xmin, self.xmax)?;
        for (i, xid) in self.running.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{xid}")?;
        }
        Ok(())
    }
}

impl From<XidSnapshot> for String {
    fn from(s: XidSnapshot) -> String {
        s.to_string()
    }
}

impl TryFrom<String> for XidSnapshot {
    type Error = BadSnapshot;

    fn try_from(s: String) -> Result<Self, BadSnapshot> {
        s.parse()
    }
}

/// Read from a `text` column (the ledger's, or `pg_current_snapshot()::text`).
impl<'a> FromSql<'a> for XidSnapshot {
    fn from_sql(
        ty: &Type,
        raw: &'a [u8],
    ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(<&str as FromSql>::from_sql(ty, raw)?.parse()?)
    }

    fn accepts(ty: &Type) -> bool {
        <&str as FromSql>::accepts(ty)
    }
}

/// Written as text.
impl ToSql for XidSnapshot {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        self.to_string().to_sql(ty, out)
    }

    fn accepts(ty: &Type) -> bool {
        <String as ToSql>::accepts(ty)
    }

    to_sql_checked!();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(text: &str) -> XidSnapshot {
        text.parse().expect("a snapshot")
    }

    #[test]
    fn the_snapshot_tells_which_transactions_it_saw() {
        let s = snapshot("100:105:101,103");
        assert!(s.saw(99));
        assert!(s.saw(100) && s.saw(102) && s.saw(104));
        assert!(!s.saw(101) && !s.saw(103));
        assert!(!s.saw(105) && !s.saw(4000));
    }

    #[test]
    fn xids_are_placed_in_the_snapshots_epoch() {
        // xmax just past a wraparound of the 32-bit counter: xid 5 is new, not old.
        let xmax = (1u64 << 32) + 3;
        let s = snapshot(&format!("{}:{xmax}:", xmax - 10));
        assert!(!s.saw(5));
        assert!(s.saw(u32::MAX - 2));
    }

    #[test]
    fn a_snapshot_reads_back_as_written_and_nothing_else_reads() {
        for text in [
            "100:105:101,103",
            "7:7:",
            "4294967300:4294967310:4294967301",
        ] {
            assert_eq!(snapshot(text).to_string(), text);
            let json = serde_json::to_string(&snapshot(text)).expect("json");
            assert_eq!(json, format!("\"{text}\""));
            let back: XidSnapshot = serde_json::from_str(&json).expect("back");
            assert_eq!(back, snapshot(text));
        }
        for bad in ["nonsense", "1:2", "5:3:", "1:2:x", "1:2:3:4", ""] {
            assert!(bad.parse::<XidSnapshot>().is_err(), "{bad}");
        }
    }
}
