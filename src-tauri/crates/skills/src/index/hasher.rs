//! A fast hasher for the index's word maps (the Fx hash rustc uses).
//!
//! SipHash, the standard library's default, resists hash flooding but costs
//! more than the rest of a lookup for words this short. The maps hashed here
//! are filled only from skill files, never from requests, so flooding is not
//! a concern; maps filled from queries keep the default hasher.

use std::hash::{BuildHasherDefault, Hasher};

/// `HashMap` builder using [`FxHasher`].
pub(crate) type FxBuild = BuildHasherDefault<FxHasher>;

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

#[derive(Default, Clone, Copy)]
pub(crate) struct FxHasher {
    hash: u64,
}

impl FxHasher {
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word));
        }
    }

    fn write_u8(&mut self, byte: u8) {
        self.add(u64::from(byte));
    }

    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    fn finish(&self) -> u64 {
        self.hash
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn distinguishes_similar_words() {
        let mut map: HashMap<Box<str>, u32, FxBuild> = HashMap::default();
        let words = [
            "a",
            "ab",
            "abc",
            "abcdefgh",
            "abcdefghi",
            "abcdefgh\0",
            "ba",
            "",
        ];
        for (i, word) in words.iter().enumerate() {
            map.insert((*word).into(), i as u32);
        }
        for (i, word) in words.iter().enumerate() {
            assert_eq!(map.get(*word), Some(&(i as u32)));
        }
        assert_eq!(map.len(), words.len());
    }
}
