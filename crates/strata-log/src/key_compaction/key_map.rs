//! The newest offset of each key in a partition's dirty part: what key
//! compaction keeps. Keys are held whole (no hash collisions can drop a
//! live record); the map's memory is bounded, and a cleaning that would
//! overflow it stops at the batch before.

use std::collections::HashMap;

/// Bytes a map entry costs beyond its key (hash table slot, vector header,
/// offset).
const ENTRY_OVERHEAD: usize = 64;

/// Key → newest offset, within a memory budget.
#[derive(Debug)]
pub struct KeyMap {
    latest: HashMap<Vec<u8>, i64>,
    bytes: usize,
    limit: usize,
}

impl KeyMap {
    pub fn new(limit: usize) -> Self {
        KeyMap {
            latest: HashMap::new(),
            bytes: 0,
            limit,
        }
    }

    /// Whether a batch of `len` bytes (at most that many bytes of keys)
    /// still fits whatever its records are.
    pub fn has_room_for(&self, len: usize, records: usize) -> bool {
        self.bytes
            .saturating_add(len)
            .saturating_add(records.saturating_mul(ENTRY_OVERHEAD))
            <= self.limit
    }

    /// Notes `key` at `offset` (offsets arrive in increasing order).
    pub fn insert(&mut self, key: &[u8], offset: i64) {
        match self.latest.get_mut(key) {
            Some(latest) => *latest = offset,
            None => {
                self.bytes += key.len() + ENTRY_OVERHEAD;
                self.latest.insert(key.to_vec(), offset);
            }
        }
    }

    /// The newest offset of `key`, if the dirty part has it.
    pub fn latest(&self, key: &[u8]) -> Option<i64> {
        self.latest.get(key).copied()
    }

    pub fn len(&self) -> usize {
        self.latest.len()
    }

    pub fn is_empty(&self) -> bool {
        self.latest.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_offset_wins_and_the_budget_is_checked_up_front() {
        let mut map = KeyMap::new(1000);
        map.insert(b"a", 1);
        map.insert(b"b", 2);
        map.insert(b"a", 7);
        assert_eq!(map.latest(b"a"), Some(7));
        assert_eq!(map.latest(b"c"), None);
        assert_eq!(map.len(), 2);
        assert!(map.has_room_for(100, 5));
        assert!(!map.has_room_for(1000, 1));
    }
}
