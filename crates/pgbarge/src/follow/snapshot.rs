//! Which source transactions a copy's snapshot saw: their changes are in the copied rows,
//! so the stream's are skipped.

use std::collections::HashSet;

use crate::error::{Error, Kind, Result};

/// Which transactions the copy's snapshot saw (`pg_current_snapshot()` text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SnapshotSeen {
    xmin: u64,
    xmax: u64,
    running: HashSet<u64>,
}

impl SnapshotSeen {
    pub fn parse(text: &str) -> Result<Self> {
        let bad = || Error::new(Kind::Copy, format!("cannot read the snapshot {text:?}"));
        let mut parts = text.split(':');
        let num = |p: Option<&str>| p.and_then(|s| s.parse::<u64>().ok()).ok_or_else(bad);
        let xmin = num(parts.next())?;
        let xmax = num(parts.next())?;
        let running = parts
            .next()
            .unwrap_or("")
            .split(',')
            .filter(|s| !s.is_empty())
            .map(|s| s.parse::<u64>().map_err(|_| bad()))
            .collect::<Result<_>>()?;
        Ok(SnapshotSeen {
            xmin,
            xmax,
            running,
        })
    }

    /// Whether the transaction `xid` (32 bits, as the stream gives it) had committed
    /// when the snapshot was taken. Transactions in the stream are near the snapshot in
    /// xid order, so the epoch is the one that puts `xid` closest to `xmax`.
    pub fn saw(&self, xid: u32) -> bool {
        let distance = xid.wrapping_sub(self.xmax as u32) as i32 as i64;
        let full = (self.xmax as i64 + distance) as u64;
        full < self.xmin || (full < self.xmax && !self.running.contains(&full))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_snapshot_tells_which_transactions_it_saw() {
        let s = SnapshotSeen::parse("100:105:101,103").unwrap();
        assert!(s.saw(99));
        assert!(s.saw(100) && s.saw(102) && s.saw(104));
        assert!(!s.saw(101) && !s.saw(103));
        assert!(!s.saw(105) && !s.saw(4000));
        assert!(SnapshotSeen::parse("nonsense").is_err());
    }

    #[test]
    fn xids_are_placed_in_the_snapshots_epoch() {
        // xmax just past a wraparound of the 32-bit counter: xid 5 is new, not old.
        let xmax = (1u64 << 32) + 3;
        let s = SnapshotSeen::parse(&format!("{}:{xmax}:", xmax - 10)).unwrap();
        assert!(!s.saw(5));
        assert!(s.saw(u32::MAX - 2));
    }
}
