//! NumPy `.npy` files of little-endian float64 (`<f8`) in C order, the binary exchange format
//! of flowrun's numeric steps.
//!
//! Reading accepts format versions 1.0, 2.0 and 3.0, 2-D arrays, and 1-D arrays as `n × 1`
//! matrices; other dtypes, Fortran order and other dimensions are refused with a message saying
//! how to convert. The payload itself is read by [`super::rows::RowReader`] in large blocks.
//!
//! Writing produces version 1.0 with a header of exactly [`HEADER_LEN`] bytes (what NumPy itself
//! writes for 2-D shapes), always, so [`NpyWriter`] can stream rows of unknown count to a
//! temporary file, then rewrite the header in place with the final row count, then rename the
//! file into place ([`super::atomic`]). Files far larger than memory can be written that way;
//! `np.load` reads the result unchanged.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use rhai::{Dynamic, Engine, Map, INT};

use super::atomic::AtomicFile;
use super::errors::{from_io, invalid_data, invalid_input, size, with_path, zeroed, Res};
use super::le;
use super::matrix::Matrix;
use super::pyliteral::{self, Literal};
use super::random;
use super::rows::{read_matrix, RowFormat};
use crate::sandbox::check_effect;

const MAGIC: &[u8; 6] = b"\x93NUMPY";

/// The length of every header flowrun writes: magic, version, length field, dict and padding.
/// It fits any `(u64, usize)` shape and is a multiple of 64, as NumPy requires.
pub const HEADER_LEN: usize = 128;

/// Header dicts longer than this are refused as corrupt rather than allocated.
const MAX_HEADER_DICT: usize = 1 << 20;

/// Values per block when streaming generated data: 8 MiB.
const BLOCK_VALUES: usize = 1 << 20;

/// The parsed header of a `.npy` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NpyHeader {
    /// The dtype as written (`descr`), e.g. `<f8`; `structured` for record dtypes.
    pub dtype: String,
    /// True when the data is stored column-major.
    pub fortran_order: bool,
    /// The array shape.
    pub shape: Vec<u64>,
    /// Where the payload starts, in bytes from the start of the file.
    pub data_offset: u64,
}

impl NpyHeader {
    /// Opens `path` and parses its header; the file is returned for reading the payload.
    pub fn open(path: &Path) -> io::Result<(File, NpyHeader)> {
        let mut file = File::open(path).map_err(|e| with_path("cannot open", path, e))?;
        let header = Self::read_from(&mut file, path)?;
        Ok((file, header))
    }

    /// Parses a header from the start of `r`; `path` is only used in error messages.
    pub fn read_from(r: &mut impl Read, path: &Path) -> io::Result<NpyHeader> {
        let bad = |msg: String| invalid_data(path, msg);
        let eof = |e: io::Error| match e.kind() {
            io::ErrorKind::UnexpectedEof => bad("the .npy header is cut short".into()),
            _ => with_path("cannot read", path, e),
        };
        let mut start = [0u8; 8];
        r.read_exact(&mut start).map_err(eof)?;
        if &start[..6] != MAGIC {
            return Err(bad(
                "not a .npy file (it does not start with \\x93NUMPY)".into()
            ));
        }
        let (major, minor) = (start[6], start[7]);
        let dict_len = match major {
            1 => {
                let mut n = [0u8; 2];
                r.read_exact(&mut n).map_err(eof)?;
                usize::from(u16::from_le_bytes(n))
            }
            2 | 3 => {
                let mut n = [0u8; 4];
                r.read_exact(&mut n).map_err(eof)?;
                u32::from_le_bytes(n) as usize
            }
            _ => {
                return Err(bad(format!(
                    "unsupported .npy format version {major}.{minor}"
                )))
            }
        };
        if dict_len > MAX_HEADER_DICT {
            return Err(bad(format!("the .npy header claims {dict_len} bytes")));
        }
        let mut dict = vec![0u8; dict_len];
        r.read_exact(&mut dict).map_err(eof)?;
        let text =
            std::str::from_utf8(&dict).map_err(|_| bad("the .npy header is not text".into()))?;
        let literal = pyliteral::parse(text).map_err(|e| bad(format!("bad .npy header: {e}")))?;
        let missing = |key: &str| bad(format!("the .npy header has no valid `{key}`"));
        let dtype = match literal.get("descr") {
            Some(Literal::Str(s)) => s.clone(),
            Some(Literal::Seq(_)) => "structured".to_string(),
            _ => return Err(missing("descr")),
        };
        let Some(&Literal::Bool(fortran_order)) = literal.get("fortran_order") else {
            return Err(missing("fortran_order"));
        };
        let Some(Literal::Seq(dims)) = literal.get("shape") else {
            return Err(missing("shape"));
        };
        let shape = dims
            .iter()
            .map(|d| match d {
                Literal::Int(n) => Ok(*n),
                _ => Err(missing("shape")),
            })
            .collect::<io::Result<Vec<u64>>>()?;
        let len_field = if major == 1 { 2 } else { 4 };
        Ok(NpyHeader {
            dtype,
            fortran_order,
            shape,
            data_offset: (8 + len_field + dict_len) as u64,
        })
    }

    /// The data as a matrix shape: 2-D arrays as they are, 1-D arrays of `n` as `n × 1`.
    pub fn matrix_shape(&self, path: &Path) -> io::Result<(usize, usize)> {
        let dims: Vec<usize> = self
            .shape
            .iter()
            .map(|&d| usize::try_from(d))
            .collect::<Result<_, _>>()
            .map_err(|_| invalid_data(path, "the .npy shape is too large for this machine"))?;
        match dims[..] {
            [n] => Ok((n, 1)),
            [rows, cols] => Ok((rows, cols)),
            _ => {
                let shape: Vec<String> = dims.iter().map(|d| d.to_string()).collect();
                Err(invalid_data(
                    path,
                    format!(
                        "the array has {} dimensions (shape ({})); only 1-D and 2-D arrays are \
                         supported",
                        dims.len(),
                        shape.join(", ")
                    ),
                ))
            }
        }
    }

    /// Checks the payload is little-endian float64 in C order, the only layout read.
    pub fn check_f64_c_order(&self, path: &Path) -> io::Result<()> {
        if self.dtype != "<f8" {
            return Err(invalid_data(
                path,
                format!(
                    "the array has dtype `{}`; only little-endian float64 (`<f8`) is supported \
                     (convert with `a.astype('<f8')`)",
                    self.dtype
                ),
            ));
        }
        if self.fortran_order {
            return Err(invalid_data(
                path,
                "the array is stored in Fortran (column-major) order; only C order is supported \
                 (save `np.ascontiguousarray(a)`)",
            ));
        }
        Ok(())
    }
}

/// The [`HEADER_LEN`]-byte version 1.0 header of a `rows × cols` `<f8` C-order array.
fn header_bytes(rows: u64, cols: usize) -> Vec<u8> {
    let dict = format!("{{'descr': '<f8', 'fortran_order': False, 'shape': ({rows}, {cols}), }}");
    let dict_len = HEADER_LEN - 10;
    let mut out = Vec::with_capacity(HEADER_LEN);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&(dict_len as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out.resize(HEADER_LEN - 1, b' ');
    out.push(b'\n');
    out
}

/// Streams a 2-D `<f8` `.npy` file row block by row block; the file appears, complete, at its
/// path only when [`NpyWriter::finish`] succeeds (dropping the writer discards it).
pub struct NpyWriter {
    file: AtomicFile,
    path: PathBuf,
    cols: usize,
    rows: u64,
}

impl NpyWriter {
    /// Starts writing a matrix of `cols` columns (at least one) to `path`.
    pub fn create(path: impl AsRef<Path>, cols: usize) -> io::Result<Self> {
        let path = path.as_ref().to_path_buf();
        if cols == 0 {
            return Err(invalid_input(
                "cannot write",
                &path,
                "a .npy matrix needs at least one column",
            ));
        }
        let mut file =
            AtomicFile::create(&path).map_err(|e| with_path("cannot create", &path, e))?;
        file.write_all(&header_bytes(0, cols))
            .map_err(|e| with_path("cannot write", &path, e))?;
        Ok(Self {
            file,
            path,
            cols,
            rows: 0,
        })
    }

    /// Appends whole rows given row-major (`values.len()` must be a multiple of the columns).
    pub fn append_rows(&mut self, values: &[f64]) -> io::Result<()> {
        if !values.len().is_multiple_of(self.cols) {
            return Err(invalid_input(
                "cannot write",
                &self.path,
                format!(
                    "{} values are not whole rows of {} columns",
                    values.len(),
                    self.cols
                ),
            ));
        }
        le::write(&mut self.file, values).map_err(|e| with_path("cannot write", &self.path, e))?;
        self.rows += (values.len() / self.cols) as u64;
        Ok(())
    }

    /// Writes the final header and moves the file into place; returns the number of rows.
    pub fn finish(mut self) -> io::Result<u64> {
        let header = header_bytes(self.rows, self.cols);
        let w = self.file.writer();
        w.seek(SeekFrom::Start(0))
            .and_then(|_| w.write_all(&header))
            .and_then(|_| self.file.commit())
            .map_err(|e| with_path("cannot write", &self.path, e))?;
        Ok(self.rows)
    }
}

/// Writes `m` to `path` as a 2-D `.npy` file, atomically.
pub fn write_matrix(path: impl AsRef<Path>, m: &Matrix) -> io::Result<()> {
    let mut w = NpyWriter::create(path, m.cols())?;
    w.append_rows(m.as_slice())?;
    w.finish().map(drop)
}

/// Writes rows `0..rows` of the random matrix of `seed` ([`random`]) to `path`, generating
/// ~8 MiB blocks in parallel while the previous block is written; memory use stays at two
/// blocks whatever the size. The bytes do not depend on the block size or thread count.
pub fn write_random(path: impl AsRef<Path>, rows: u64, cols: usize, seed: u64) -> io::Result<()> {
    write_random_in_blocks(path.as_ref(), rows, cols, seed, BLOCK_VALUES)
}

fn write_random_in_blocks(
    path: &Path,
    rows: u64,
    cols: usize,
    seed: u64,
    block_values: usize,
) -> io::Result<()> {
    let mut w = NpyWriter::create(path, cols)?;
    let block_rows = (block_values / cols).max(1) as u64;
    let block_len = |start: u64| (block_rows.min(rows - start) as usize) * cols;
    let alloc = || {
        zeroed(block_len(0)).map_err(|m| {
            with_path(
                "cannot write",
                path,
                io::Error::new(io::ErrorKind::OutOfMemory, m),
            )
        })
    };
    // Blocks only shrink (at the end), so these two buffers are the only allocations.
    let (mut ready, mut next) = (alloc()?, alloc()?);
    random::fill_rows(seed, 0, cols, &mut ready);
    let mut start = 0;
    while !ready.is_empty() {
        let next_start = start + (ready.len() / cols) as u64;
        next.resize(block_len(next_start), 0.0);
        let (written, ()) = rayon::join(
            || w.append_rows(&ready),
            || random::fill_rows(seed, next_start, cols, &mut next),
        );
        written?;
        std::mem::swap(&mut ready, &mut next);
        start = next_start;
    }
    w.finish().map(drop)
}

fn npy_info(path: &str) -> Res<Map> {
    let path_ref = Path::new(path);
    crate::sandbox::reading(path_ref);
    let (_, header) = NpyHeader::open(path_ref).map_err(from_io)?;
    let (rows, cols) = header.matrix_shape(path_ref).map_err(from_io)?;
    let mut map = Map::new();
    map.insert("rows".into(), Dynamic::from_int(rows as INT));
    map.insert("cols".into(), Dynamic::from_int(cols as INT));
    map.insert("dtype".into(), header.dtype.into());
    Ok(map)
}

fn write_npy(path: &str, m: Matrix) -> Res<()> {
    check_effect("write_npy")?;
    write_matrix(path, &m).map_err(from_io)
}

fn write_random_npy(path: &str, rows: INT, cols: INT, seed: INT) -> Res<()> {
    check_effect("write_random_npy")?;
    let rows = size(rows, "write_random_npy rows")? as u64;
    let cols = size(cols, "write_random_npy columns")?;
    write_random(path, rows, cols, seed as u64).map_err(from_io)
}

/// Registers `read_npy`, `write_npy`, `npy_info` and `write_random_npy`.
pub fn register(engine: &mut Engine) {
    engine
        .register_fn("read_npy", |path: &str| {
            read_matrix(path, RowFormat::Npy).map_err(from_io)
        })
        .register_fn("write_npy", write_npy)
        .register_fn("npy_info", npy_info)
        .register_fn("write_random_npy", write_random_npy);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::native::testing::engine;

    fn npy_bytes(version: u8, dict: &str, payload: &[f64]) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&[version, 0]);
        match version {
            1 => out.extend_from_slice(&(dict.len() as u16).to_le_bytes()),
            _ => out.extend_from_slice(&(dict.len() as u32).to_le_bytes()),
        }
        out.extend_from_slice(dict.as_bytes());
        le::write(&mut out, payload).unwrap();
        out
    }

    fn awkward() -> Matrix {
        let data = vec![0.1 + 0.2, -0.0, f64::NAN, f64::INFINITY, 5e-324, -1e300];
        Matrix::from_vec(3, 2, data).unwrap()
    }

    #[test]
    fn header_is_fixed_size_and_parses_back() {
        for (rows, cols) in [(0, 1), (3, 4), (u64::MAX, usize::MAX)] {
            let bytes = header_bytes(rows, cols);
            assert_eq!(bytes.len(), HEADER_LEN);
            assert_eq!(bytes[HEADER_LEN - 1], b'\n');
            let h = NpyHeader::read_from(&mut &bytes[..], Path::new("h.npy")).unwrap();
            assert_eq!(h.shape, vec![rows, cols as u64]);
            assert_eq!((h.dtype.as_str(), h.fortran_order), ("<f8", false));
            assert_eq!(h.data_offset, HEADER_LEN as u64);
        }
    }

    #[test]
    fn matrices_round_trip_bitwise() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.npy");
        write_matrix(&path, &awkward()).unwrap();
        assert_eq!(read_matrix(&path, RowFormat::Npy).unwrap(), awkward());
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            HEADER_LEN as u64 + 48
        );
    }

    #[test]
    fn reads_one_dimensional_and_version_two_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.npy");
        let dict = "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }\n";
        for version in [1, 2, 3] {
            std::fs::write(&path, npy_bytes(version, dict, &[1.0, 2.0, 3.0])).unwrap();
            let m = read_matrix(&path, RowFormat::Npy).unwrap();
            assert_eq!(
                (m.rows(), m.cols(), m.as_slice()),
                (3, 1, &[1.0, 2.0, 3.0][..])
            );
        }
    }

    #[test]
    fn refuses_what_it_cannot_read_and_says_why() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.npy");
        let dict = |descr: &str, fortran: &str, shape: &str| {
            format!("{{'descr': '{descr}', 'fortran_order': {fortran}, 'shape': {shape}, }}\n")
        };
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"PK\x03\x04 not npy".to_vec(), "not a .npy file"),
            (MAGIC.to_vec(), "header is cut short"),
            (
                npy_bytes(9, "{}", &[]),
                "unsupported .npy format version 9.0",
            ),
            (
                npy_bytes(1, "{'descr': '<f8'", &[]),
                "bad .npy header: expected",
            ),
            (
                npy_bytes(1, &dict("<f4", "False", "(1,)"), &[]),
                "dtype `<f4`; only little-endian",
            ),
            (
                npy_bytes(1, &dict(">f8", "False", "(1,)"), &[]),
                "dtype `>f8`",
            ),
            (
                npy_bytes(1, &dict("<f8", "True", "(1, 1)"), &[1.0]),
                "Fortran (column-major)",
            ),
            (
                npy_bytes(1, &dict("<f8", "False", "(1, 1, 1)"), &[1.0]),
                "has 3 dimensions (shape (1, 1, 1))",
            ),
            (
                npy_bytes(1, &dict("<f8", "False", "()"), &[1.0]),
                "has 0 dimensions",
            ),
            (
                npy_bytes(1, &dict("<f8", "False", "(2, 2)"), &[1.0]),
                "is truncated: shape (2, 2) needs 32",
            ),
            (
                npy_bytes(1, &dict("<f8", "False", "(1, 1)"), &[1.0, 2.0]),
                "has trailing bytes",
            ),
            (
                npy_bytes(1, "{'descr': '<f8', 'shape': (1,)}", &[1.0]),
                "no valid `fortran_order`",
            ),
        ];
        for (bytes, want) in cases {
            std::fs::write(&path, bytes).unwrap();
            let err = read_matrix(&path, RowFormat::Npy).unwrap_err().to_string();
            assert!(
                err.contains(want) && err.contains("bad.npy"),
                "{err:?} lacks {want:?}"
            );
        }
        let err = read_matrix(dir.path().join("none.npy"), RowFormat::Npy).unwrap_err();
        assert!(err.to_string().starts_with("cannot open `"), "{err}");
    }

    #[test]
    fn streaming_writer_counts_rows_and_leaves_nothing_when_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.npy");
        let mut w = NpyWriter::create(&path, 2).unwrap();
        w.append_rows(&[1.0, 2.0, 3.0, 4.0]).unwrap();
        assert!(w
            .append_rows(&[5.0])
            .unwrap_err()
            .to_string()
            .contains("not whole rows"));
        w.append_rows(&[5.0, 6.0]).unwrap();
        assert!(!path.exists());
        assert_eq!(w.finish().unwrap(), 3);
        let m = read_matrix(&path, RowFormat::Npy).unwrap();
        assert_eq!((m.rows(), m.as_slice()[5]), (3, 6.0));
        let other = dir.path().join("dropped.npy");
        drop(NpyWriter::create(&other, 1).unwrap());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        assert!(NpyWriter::create(&other, 0).is_err());
    }

    #[test]
    fn random_files_do_not_depend_on_block_size() {
        let dir = tempfile::tempdir().unwrap();
        let (rows, cols, seed) = (1001, 3, 11);
        let mut want = vec![0.0; rows * cols];
        random::fill_rows(seed, 0, cols, &mut want);
        let want = Matrix::from_vec(rows, cols, want).unwrap();
        for block_values in [1, 3, 300, 1000, 3003, 1 << 20] {
            let path = dir.path().join(format!("r{block_values}.npy"));
            write_random_in_blocks(&path, rows as u64, cols, seed, block_values).unwrap();
            assert_eq!(
                read_matrix(&path, RowFormat::Npy).unwrap(),
                want,
                "{block_values}"
            );
        }
        let empty = dir.path().join("empty.npy");
        write_random(&empty, 0, 4, seed).unwrap();
        let m = read_matrix(&empty, RowFormat::Npy).unwrap();
        assert_eq!((m.rows(), m.cols()), (0, 4));
    }

    #[test]
    fn rhai_functions() {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine();
        let mut scope = rhai::Scope::new();
        scope.push("dir", dir.path().display().to_string());
        let script = r#"
            write_random_npy(`${dir}/r.npy`, 10, 3, 5);
            let info = npy_info(`${dir}/r.npy`);
            let m = read_npy(`${dir}/r.npy`);
            write_npy(`${dir}/copy.npy`, m * 2);
            [info.rows, info.cols, info.dtype, read_npy(`${dir}/copy.npy`) == m + m,
             m == random_matrix(10, 3, 5)]
        "#;
        let out: rhai::Array = engine.eval_with_scope(&mut scope, script).unwrap();
        let out: Vec<String> = out.iter().map(|d| d.to_string()).collect();
        assert_eq!(out, ["10", "3", "<f8", "true", "true"]);
        let err = engine
            .eval::<Map>(r#"npy_info("/nonexistent/x.npy")"#)
            .unwrap_err();
        assert!(
            err.to_string().contains("cannot open `/nonexistent/x.npy`"),
            "{err}"
        );
    }
}
