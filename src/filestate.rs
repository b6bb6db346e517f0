//! What a file looks like on disk: modification time and size (the fast path) and a content
//! hash (the judge). Hashing uses XXH3-128: we need change detection, not cryptography, and it
//! runs at memory speed.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};

/// A file's recorded identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileSig {
    pub mtime_ns: i64,
    pub size: u64,
    pub hash: u128,
}

/// Modification time and size, without reading the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub mtime_ns: i64,
    pub size: u64,
}

/// Stats a path; `None` if it does not exist.
pub fn stat(path: &Path) -> Option<Stat> {
    let meta = std::fs::metadata(path).ok()?;
    let mtime_ns = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as i64);
    Some(Stat {
        mtime_ns,
        size: meta.len(),
    })
}

/// Files up to this size are read whole into a right-sized buffer and hashed in one call.
const SMALL_FILE: u64 = 1 << 20;

/// Hashes a file's content (directories hash as empty).
pub fn hash(path: &Path) -> io::Result<u128> {
    let mut file = File::open(path)?;
    let meta = file.metadata()?;
    if meta.is_dir() {
        return Ok(0);
    }
    if meta.len() < SMALL_FILE {
        // Most outputs are small: no zeroed 1 MiB buffer (and its page faults) per file.
        let mut data = Vec::with_capacity(meta.len() as usize + 1);
        file.read_to_end(&mut data)?;
        if data.len() as u64 <= SMALL_FILE {
            return Ok(xxhash_rust::xxh3::xxh3_128(&data));
        }
        let mut hasher = xxhash_rust::xxh3::Xxh3::new();
        hasher.update(&data);
        return stream(&mut file, hasher);
    }
    stream(&mut file, xxhash_rust::xxh3::Xxh3::new())
}

fn stream(file: &mut File, mut hasher: xxhash_rust::xxh3::Xxh3) -> io::Result<u128> {
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher.digest128())
}

/// Stats and hashes a file.
pub fn sign(path: &Path) -> io::Result<FileSig> {
    let st =
        stat(path).ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "file is missing"))?;
    Ok(FileSig {
        mtime_ns: st.mtime_ns,
        size: st.size,
        hash: hash(path)?,
    })
}

/// Hashes a string (code, params) the same way.
pub fn hash_str(text: &str) -> u128 {
    xxhash_rust::xxh3::xxh3_128(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_content_same_hash() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        std::fs::write(&a, "x".repeat(3 << 20)).unwrap();
        std::fs::write(&b, "x".repeat(3 << 20)).unwrap();
        assert_eq!(hash(&a).unwrap(), hash(&b).unwrap());
        std::fs::write(&b, "y").unwrap();
        assert_ne!(hash(&a).unwrap(), hash(&b).unwrap());
        assert_eq!(sign(&b).unwrap().size, 1);
        assert!(stat(&dir.path().join("none")).is_none());
    }

    #[test]
    fn small_and_streamed_files_hash_like_their_bytes() {
        let dir = tempfile::tempdir().unwrap();
        for size in [0usize, 5, (1 << 20) - 1, 1 << 20, (1 << 20) + 1, 3 << 20] {
            let data: Vec<u8> = (0..size).map(|i| (i * 31 % 251) as u8).collect();
            let p = dir.path().join(format!("f{size}"));
            std::fs::write(&p, &data).unwrap();
            assert_eq!(hash(&p).unwrap(), hash_str_bytes(&data), "size {size}");
        }
        assert_eq!(hash(dir.path()).unwrap(), 0);
    }

    fn hash_str_bytes(data: &[u8]) -> u128 {
        xxhash_rust::xxh3::xxh3_128(data)
    }
}
