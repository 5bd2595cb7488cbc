//! SplitMix64: a small deterministic generator for what must be reproducible from a seed
//! (the built-in renderer's picture, the seed data). Not for anything secret: keys and
//! tokens come from the kernel (`crate::secret::random_hex`, `getrandom`).

/// The generator's state; the same seed gives the same sequence on every machine.
#[derive(Clone, Debug)]
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    /// The next 64 bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number below `n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// A float in [lo, hi).
    pub fn range(&mut self, lo: f32, hi: f32) -> f32 {
        let unit = (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32;
        lo + (hi - lo) * unit
    }
}

#[cfg(test)]
mod tests {
    use super::SplitMix64;

    #[test]
    fn the_sequence_is_splitmix64s() {
        // The first outputs for seed 0, as the reference implementation gives them.
        let mut r = SplitMix64(0);
        assert_eq!(r.next_u64(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(r.next_u64(), 0x6e78_9e6a_a1b9_65f4);
        let mut a = SplitMix64(7);
        let mut b = SplitMix64(7);
        assert_eq!(a.below(10), b.below(10));
        assert_eq!(SplitMix64(1).below(0), 0);
        let x = SplitMix64(3).range(2.0, 4.0);
        assert!((2.0..4.0).contains(&x));
    }
}
