//! A hasher for the hub's subscription numbers. They are sequential integers
//! the process hands out itself, so SipHash's defence against chosen keys
//! buys nothing here, and the hub looks one up for every matching
//! subscription of every event (the fan-out's hot path).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Fibonacci hashing of a `u64`: the multiplication spreads sequential
/// numbers over both the low bits (the bucket) and the high bits (the tag)
/// of the hash table.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct IdHasher(u64);

/// 2^64 divided by the golden ratio, odd: a bijection on `u64`.
const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Not used for `u64` keys; correct for any other, if slower.
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(GOLDEN);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n).wrapping_mul(GOLDEN);
    }
}

/// A map keyed by subscription number.
pub(crate) type IdMap<V> = HashMap<u64, V, BuildHasherDefault<IdHasher>>;

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::hash::BuildHasher;

    use super::*;

    #[test]
    fn sequential_ids_get_distinct_buckets_and_tags() {
        let build = BuildHasherDefault::<IdHasher>::default();
        let hashes: Vec<u64> = (1..=4096u64).map(|id| build.hash_one(id)).collect();
        let buckets: HashSet<u64> = hashes.iter().map(|h| h & 4095).collect();
        assert_eq!(buckets.len(), 4096, "a bijection on the low 12 bits");
        let tags: HashSet<u64> = hashes.iter().map(|h| h >> 57).collect();
        assert_eq!(tags.len(), 128, "every top-7-bit tag is used");
    }

    #[test]
    fn keys_other_than_u64_still_hash_apart() {
        let build = BuildHasherDefault::<IdHasher>::default();
        let words: Vec<String> = (0..500).map(|n| format!("k{n}")).collect();
        let hashes: HashSet<u64> = words.iter().map(|w| build.hash_one(w)).collect();
        assert_eq!(hashes.len(), words.len());
        assert_ne!(build.hash_one("ab"), build.hash_one("ba"));
    }

    #[test]
    fn the_map_works_as_a_map() {
        let mut map = IdMap::default();
        for id in 0..1000u64 {
            map.insert(id, id * 2);
        }
        assert!((0..1000u64).all(|id| map.get(&id) == Some(&(id * 2))));
        map.remove(&7);
        assert_eq!(map.get(&7), None);
        assert_eq!(map.len(), 999);
    }
}
