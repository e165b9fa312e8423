//! The hasher of our file-name maps (a scan's listing, the names we changed ourselves).

/// FxHash (rotate, xor, multiply) with a final avalanche: file names are
/// not chosen by remote clients, and SipHash dominated building a
/// 100,000-entry map.
#[derive(Default, Clone, Copy)]
pub(crate) struct FxHasher(u64);

impl std::hash::Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x517c_c1b7_2722_0a95;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(K);
        }
        for &b in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(K);
        }
    }
    fn finish(&self) -> u64 {
        // Plain FxHash leaves the low bits weak, and hashbrown picks buckets
        // with them: finish with MurmurHash3's avalanche step.
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h
    }
}

pub(super) type BuildFx = std::hash::BuildHasherDefault<FxHasher>;
