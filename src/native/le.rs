//! Little-endian `f64` payloads (`.npy` data, raw files) moved as bytes, not element by element.
//!
//! Reading and writing through a byte view of the `f64` buffer lets the kernel copy straight into
//! (out of) the caller's buffer with one large call, which is what keeps the readers near memory
//! bandwidth; per-element decoding is several times slower. On big-endian machines the bytes are
//! swapped after reading (before writing); on little-endian ones that step compiles away.

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;

/// Values written per chunk when bytes must be swapped (big-endian machines).
const SWAP_CHUNK: usize = 8192;

fn from_le_in_place(values: &mut [f64]) {
    if cfg!(target_endian = "big") {
        for x in values {
            *x = f64::from_bits(u64::from_le(x.to_bits()));
        }
    }
}

/// Fills `out` with the little-endian `f64`s stored in `file` at byte `offset` (positioned read,
/// so several threads may read one file at once).
pub fn read_at(file: &File, offset: u64, out: &mut [f64]) -> io::Result<()> {
    file.read_exact_at(bytemuck::cast_slice_mut(out), offset)?;
    from_le_in_place(out);
    Ok(())
}

/// Writes `values` as little-endian `f64`s.
pub fn write(w: &mut impl Write, values: &[f64]) -> io::Result<()> {
    if cfg!(target_endian = "little") {
        return w.write_all(bytemuck::cast_slice(values));
    }
    let mut bytes = Vec::with_capacity(SWAP_CHUNK * 8);
    for chunk in values.chunks(SWAP_CHUNK) {
        bytes.clear();
        bytes.extend(chunk.iter().flat_map(|x| x.to_le_bytes()));
        w.write_all(&bytes)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_a_file_at_an_offset() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.bin");
        let values = [1.5, -0.0, f64::NAN, 1e300];
        let mut bytes = b"head".to_vec();
        write(&mut bytes, &values).unwrap();
        assert_eq!(&bytes[4..12], &1.5f64.to_le_bytes());
        std::fs::write(&path, &bytes).unwrap();
        let mut back = [0.0; 3];
        read_at(&File::open(&path).unwrap(), 12, &mut back).unwrap();
        assert_eq!(back[0].to_bits(), (-0.0f64).to_bits());
        assert!(back[1].is_nan());
        assert_eq!(back[2], 1e300);
        let mut too_many = [0.0; 5];
        let err = read_at(&File::open(&path).unwrap(), 4, &mut too_many).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }
}
