//! What a file looks like on disk: modification time and size (the fast path) and a content
//! hash (the judge). Hashing uses XXH3-128: we need change detection, not cryptography, and it
//! runs at memory speed.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::sync::{Condvar, Mutex};
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::Xxh3;

/// A file's recorded identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileSig {
    pub mtime_ns: i64,
    pub size: u64,
    pub hash: u128,
}

impl FileSig {
    /// Whether a file with this stat is taken to be unchanged since the signature was made:
    /// same modification time and size (the fast path; the content hash decides otherwise).
    pub fn matches(&self, st: Stat) -> bool {
        self.mtime_ns == st.mtime_ns && self.size == st.size
    }
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
        let mut hasher = Xxh3::new();
        hasher.update(&data);
        return stream(&mut file, hasher);
    }
    stream(&mut file, Xxh3::new())
}

fn stream(file: &mut File, mut hasher: Xxh3) -> io::Result<u128> {
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

/// A file's content hash built from pieces that several threads read in parallel (the
/// `chunked` model's blocks): piece `i` is added only after pieces `0..i`, so the digest is
/// [`hash`] of their concatenation, and the file need not be read a second time to be recorded.
pub struct OrderedHasher {
    state: Mutex<Turn>,
    turn: Condvar,
}

struct Turn {
    next: usize,
    hasher: Xxh3,
    bytes: u64,
    /// A piece could not be read: the digest is void.
    void: bool,
}

impl OrderedHasher {
    /// Starts with the bytes before the first piece (a file header).
    pub fn new(prefix: &[u8]) -> Self {
        let mut hasher = Xxh3::new();
        hasher.update(prefix);
        Self {
            state: Mutex::new(Turn {
                next: 0,
                hasher,
                bytes: prefix.len() as u64,
                void: false,
            }),
            turn: Condvar::new(),
        }
    }

    /// Adds piece `index`, waiting until every earlier piece has been added; `None` for a
    /// piece that could not be read. Every index from 0 up must be added once, or later
    /// ones wait forever.
    pub fn add(&self, index: usize, piece: Option<&[u8]>) {
        let Ok(guard) = self.state.lock() else { return };
        let Ok(mut turn) = self.turn.wait_while(guard, |t| t.next != index) else {
            return;
        };
        match piece {
            Some(bytes) => {
                turn.hasher.update(bytes);
                turn.bytes += bytes.len() as u64;
            }
            None => turn.void = true,
        }
        turn.next += 1;
        self.turn.notify_all();
    }

    /// The digest, if the pieces added hold exactly `len` bytes (the whole file) and none was
    /// missing.
    pub fn finish(self, len: u64) -> Option<u128> {
        let turn = self.state.into_inner().ok()?;
        (!turn.void && turn.bytes == len).then(|| turn.hasher.digest128())
    }
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

    #[test]
    fn pieces_added_out_of_order_from_threads_hash_like_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..(3 << 20) + 17).map(|i| (i * 7 % 253) as u8).collect();
        let p = dir.path().join("f");
        std::fs::write(&p, &data).unwrap();
        let (head, body) = data.split_at(100);
        let pieces: Vec<&[u8]> = body.chunks(65536).collect();
        let hasher = OrderedHasher::new(head);
        std::thread::scope(|s| {
            for t in 0..3 {
                let (hasher, pieces) = (&hasher, &pieces);
                // Each thread adds every third piece, as the threads get there.
                s.spawn(move || {
                    for i in (t..pieces.len()).step_by(3) {
                        hasher.add(i, Some(pieces[i]));
                    }
                });
            }
        });
        assert_eq!(hasher.finish(data.len() as u64), Some(hash(&p).unwrap()));
        // A piece missing, or not the whole file: no digest.
        let partial = OrderedHasher::new(head);
        partial.add(0, Some(pieces[0]));
        assert_eq!(partial.finish(data.len() as u64), None);
        let void = OrderedHasher::new(head);
        void.add(0, None);
        assert_eq!(void.finish(100), None);
    }

    fn hash_str_bytes(data: &[u8]) -> u128 {
        xxhash_rust::xxh3::xxh3_128(data)
    }
}
