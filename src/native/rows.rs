//! Reading matrices a block of rows at a time: the input side of the chunked execution model.
//!
//! A [`RowReader`] never holds more than the block it was asked for, so files larger than
//! memory can be reduced chunk by chunk (e.g. with
//! [`accumulate_col_sums`](super::matrix::accumulate_col_sums), whose result does not depend on
//! the block size). Binary formats (`.npy` and raw little-endian float64) are read with one
//! positioned read per block straight into the caller's reused buffer: no per-element decoding
//! and no whole-file read. They also offer [`RowReader::read_block`], random access through
//! `&self`, so several threads can read disjoint blocks of one open file in parallel. CSV is
//! parsed line by line ([`super::csv`]) and can only be read in order.
//!
//! Raw files are bare little-endian float64 values in row-major order with no header; the
//! column count must be given and the file size must be a whole number of rows.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use rhai::{Engine, INT};

use super::atomic::AtomicFile;
use super::csv::CsvRows;
use super::errors::{from_io, invalid_data, invalid_input, size, with_path, Res};
use super::le;
use super::matrix::Matrix;
use super::npy::NpyHeader;
use crate::sandbox::check_effect;

/// The layout of a file of rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowFormat {
    /// NumPy `.npy`, `<f8`, C order, 1-D (as `n × 1`) or 2-D.
    Npy,
    /// Bare little-endian float64 values, row-major, `cols` per row.
    Raw {
        /// The number of columns.
        cols: usize,
    },
    /// Numeric CSV with an optional header line.
    Csv,
}

#[derive(Debug)]
enum Source {
    Binary { file: File, data_offset: u64 },
    Csv(Box<CsvRows>),
}

/// Reads rows of `f64`s from a file in blocks (see the module docs).
#[derive(Debug)]
pub struct RowReader {
    path: PathBuf,
    cols: usize,
    rows: Option<usize>,
    next_row: usize,
    source: Source,
}

impl RowReader {
    /// Opens `path`, reading only what is needed to know the shape (the `.npy` header, the file
    /// size, or a CSV file's first line). Malformed or mismatching files are refused here.
    pub fn open(path: impl AsRef<Path>, format: RowFormat) -> io::Result<Self> {
        let path = path.as_ref().to_path_buf();
        crate::sandbox::reading(&path);
        let (cols, rows, source) = match format {
            RowFormat::Npy => {
                let (file, header) = NpyHeader::open(&path)?;
                header.check_f64_c_order(&path)?;
                let (rows, cols) = header.matrix_shape(&path)?;
                check_payload(&path, &file, header.data_offset, rows, cols)?;
                let data_offset = header.data_offset;
                (cols, Some(rows), Source::Binary { file, data_offset })
            }
            RowFormat::Raw { cols } => {
                if cols == 0 {
                    return Err(invalid_input(
                        "cannot read",
                        &path,
                        "raw rows need at least one column",
                    ));
                }
                let file = File::open(&path).map_err(|e| with_path("cannot open", &path, e))?;
                let len = file_len(&path, &file)?;
                let row_bytes = cols as u64 * 8;
                if len % row_bytes != 0 {
                    return Err(invalid_data(
                        &path,
                        format!(
                            "the file holds {len} bytes, not a whole number of rows of {cols} \
                             float64 values ({row_bytes} bytes each)"
                        ),
                    ));
                }
                let rows = usize::try_from(len / row_bytes)
                    .map_err(|_| invalid_data(&path, "the file is too large for this machine"))?;
                (
                    cols,
                    Some(rows),
                    Source::Binary {
                        file,
                        data_offset: 0,
                    },
                )
            }
            RowFormat::Csv => {
                let csv = CsvRows::open(&path)?;
                (csv.cols(), None, Source::Csv(Box::new(csv)))
            }
        };
        Ok(Self {
            path,
            cols,
            rows,
            next_row: 0,
            source,
        })
    }

    /// The file being read.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The number of columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// The number of rows, known up front for binary formats (`None` for CSV).
    pub fn rows(&self) -> Option<usize> {
        self.rows
    }

    /// Reads the next up to `max_rows` rows into `buf` (replacing its contents, row-major) and
    /// returns how many were read; 0 means the end (or `max_rows == 0`). Reuse `buf` across
    /// calls so its allocation is reused too.
    pub fn next_block(&mut self, max_rows: usize, buf: &mut Vec<f64>) -> io::Result<usize> {
        let n = match &mut self.source {
            Source::Csv(csv) => {
                buf.clear();
                csv.read_rows(max_rows, buf)?
            }
            Source::Binary { .. } => self.read_block(self.next_row, max_rows, buf)?,
        };
        self.next_row += n;
        Ok(n)
    }

    /// The bytes before the first row: the `.npy` header, nothing in a raw file. With the
    /// rows they make up the whole file. Binary formats only.
    pub fn header(&self) -> io::Result<Vec<u8>> {
        let (file, data_offset) = self.binary()?;
        let mut head = vec![0; usize::try_from(data_offset).unwrap_or(usize::MAX)];
        file.read_exact_at(&mut head, 0)
            .map_err(|e| with_path("cannot read", &self.path, e))?;
        Ok(head)
    }

    fn binary(&self) -> io::Result<(&File, u64)> {
        match &self.source {
            Source::Binary { file, data_offset } => Ok((file, *data_offset)),
            Source::Csv(_) => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!(
                    "cannot read `{}` out of order: random access needs a binary format (npy or \
                     raw); CSV rows can only be read in sequence",
                    self.path.display()
                ),
            )),
        }
    }

    /// Reads up to `n_rows` rows starting at row `start_row` into `buf` (replacing its
    /// contents) and returns how many were read (fewer near the end, 0 past it). Independent
    /// of [`RowReader::next_block`]'s position; binary formats only.
    pub fn read_block(
        &self,
        start_row: usize,
        n_rows: usize,
        buf: &mut Vec<f64>,
    ) -> io::Result<usize> {
        let (file, data_offset) = self.binary()?;
        let n = n_rows.min(self.rows.unwrap_or(0).saturating_sub(start_row));
        if n == 0 {
            buf.clear();
            return Ok(0);
        }
        let len = n * self.cols;
        buf.truncate(len);
        buf.try_reserve_exact(len - buf.len()).map_err(|e| {
            let msg = format!("a block of {n} rows: {e}");
            with_path(
                "cannot read",
                &self.path,
                io::Error::new(io::ErrorKind::OutOfMemory, msg),
            )
        })?;
        buf.resize(len, 0.0);
        let offset = data_offset + (start_row * self.cols) as u64 * 8;
        le::read_at(file, offset, buf).map_err(|e| with_path("cannot read", &self.path, e))?;
        Ok(n)
    }

    /// Reads all remaining rows into a matrix.
    pub fn read_all(&mut self) -> io::Result<Matrix> {
        let mut data = Vec::new();
        let rows = match (&mut self.source, self.rows) {
            (Source::Csv(csv), _) => csv.read_rows(usize::MAX, &mut data)?,
            (Source::Binary { .. }, rows) => {
                let remaining = rows.unwrap_or(0) - self.next_row;
                self.next_block(remaining, &mut data)?
            }
        };
        Matrix::from_vec(rows, self.cols, data).map_err(|e| invalid_data(&self.path, e))
    }
}

fn file_len(path: &Path, file: &File) -> io::Result<u64> {
    Ok(file
        .metadata()
        .map_err(|e| with_path("cannot read", path, e))?
        .len())
}

/// Checks a `.npy` file holds exactly the payload its shape declares.
fn check_payload(
    path: &Path,
    file: &File,
    offset: u64,
    rows: usize,
    cols: usize,
) -> io::Result<()> {
    let need = (rows as u128) * (cols as u128) * 8;
    let have = u128::from(file_len(path, file)?.saturating_sub(offset));
    if have != need {
        let what = if have < need {
            "is truncated"
        } else {
            "has trailing bytes"
        };
        return Err(invalid_data(
            path,
            format!(
                "the file {what}: shape ({rows}, {cols}) needs {need} bytes of data but it holds {have}"
            ),
        ));
    }
    Ok(())
}

/// Reads a whole file of rows into a matrix.
pub fn read_matrix(path: impl AsRef<Path>, format: RowFormat) -> io::Result<Matrix> {
    RowReader::open(path, format)?.read_all()
}

/// Writes row-major `values` as bare little-endian float64s (a raw file), atomically.
pub fn write_raw(path: impl AsRef<Path>, values: &[f64]) -> io::Result<()> {
    let path = path.as_ref();
    let mut file = AtomicFile::create(path).map_err(|e| with_path("cannot create", path, e))?;
    le::write(&mut file, values)
        .and_then(|_| file.commit())
        .map_err(|e| with_path("cannot write", path, e))
}

fn read_raw(path: &str, cols: INT) -> Res<Matrix> {
    let cols = size(cols, "read_raw columns")?;
    read_matrix(path, RowFormat::Raw { cols }).map_err(from_io)
}

fn write_raw_matrix(path: &str, m: Matrix) -> Res<()> {
    check_effect("write_raw")?;
    write_raw(path, m.as_slice()).map_err(from_io)
}

/// Registers `read_raw` and `write_raw`.
pub fn register(engine: &mut Engine) {
    engine
        .register_fn("read_raw", read_raw)
        .register_fn("write_raw", write_raw_matrix);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::native::matrix::accumulate_col_sums;
    use crate::native::testing::engine;
    use crate::native::{npy, random};

    fn random_matrix(rows: usize, cols: usize) -> Matrix {
        let mut data = vec![0.0; rows * cols];
        random::fill_rows(3, 0, cols, &mut data);
        Matrix::from_vec(rows, cols, data).unwrap()
    }

    /// Writes `m` in every format; returns (path, format) pairs.
    fn all_formats(dir: &Path, m: &Matrix) -> Vec<(PathBuf, RowFormat)> {
        let npy_path = dir.join("m.npy");
        npy::write_matrix(&npy_path, m).unwrap();
        let raw_path = dir.join("m.f64");
        write_raw(&raw_path, m.as_slice()).unwrap();
        let csv_path = dir.join("m.csv");
        crate::native::csv::write_csv(&csv_path, m.cols(), m.as_slice()).unwrap();
        vec![
            (npy_path, RowFormat::Npy),
            (raw_path, RowFormat::Raw { cols: m.cols() }),
            (csv_path, RowFormat::Csv),
        ]
    }

    #[test]
    fn blocks_concatenate_to_the_whole_and_col_sums_match_bitwise() {
        let dir = tempfile::tempdir().unwrap();
        let m = random_matrix(1000, 7);
        for (path, format) in all_formats(dir.path(), &m) {
            assert_eq!(read_matrix(&path, format).unwrap(), m, "{format:?}");
            for block_rows in [1, 9, 333, 1000, 4096] {
                let mut reader = RowReader::open(&path, format).unwrap();
                assert_eq!(reader.cols(), 7);
                let (mut buf, mut all, mut acc) = (Vec::new(), Vec::new(), vec![0.0; 7]);
                while reader.next_block(block_rows, &mut buf).unwrap() > 0 {
                    accumulate_col_sums(&buf, &mut acc);
                    all.extend_from_slice(&buf);
                }
                assert_eq!(reader.next_block(block_rows, &mut buf).unwrap(), 0);
                assert!(buf.is_empty());
                assert_eq!(Matrix::from_vec(1000, 7, all).unwrap(), m);
                let whole = m.col_sums();
                assert!(acc
                    .iter()
                    .zip(&whole)
                    .all(|(a, b)| a.to_bits() == b.to_bits()));
            }
        }
    }

    #[test]
    fn binary_formats_allow_parallel_random_access() {
        let dir = tempfile::tempdir().unwrap();
        let m = random_matrix(1000, 3);
        for (path, format) in all_formats(dir.path(), &m) {
            let reader = RowReader::open(&path, format).unwrap();
            if format == RowFormat::Csv {
                let err = reader.read_block(0, 1, &mut Vec::new()).unwrap_err();
                assert_eq!(err.kind(), io::ErrorKind::Unsupported);
                continue;
            }
            assert_eq!(reader.rows(), Some(1000));
            let blocks: Vec<Vec<f64>> = std::thread::scope(|s| {
                let handles: Vec<_> = (0..4)
                    .map(|i| {
                        let reader = &reader;
                        s.spawn(move || {
                            let mut buf = Vec::new();
                            let n = reader.read_block(i * 300, 300, &mut buf).unwrap();
                            assert_eq!(n, if i == 3 { 100 } else { 300 });
                            buf
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            assert_eq!(blocks.concat(), m.as_slice());
            let mut buf = vec![1.0; 5];
            assert_eq!(reader.read_block(5000, 10, &mut buf).unwrap(), 0);
            assert!(buf.is_empty());
        }
    }

    #[test]
    fn raw_files_must_hold_whole_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.f64");
        write_raw(&path, &[1.0, 2.0, 3.0]).unwrap();
        let err = RowReader::open(&path, RowFormat::Raw { cols: 2 }).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(err
            .to_string()
            .contains("holds 24 bytes, not a whole number of rows of 2"));
        assert!(RowReader::open(&path, RowFormat::Raw { cols: 0 }).is_err());
        let m = read_matrix(&path, RowFormat::Raw { cols: 3 }).unwrap();
        assert_eq!((m.rows(), m.cols()), (1, 3));
    }

    #[test]
    fn rhai_raw_functions() {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine();
        let path = dir.path().join("m.raw").display().to_string();
        let script = format!(
            r#"let m = matrix([[1, 2, 3], [4, 5, 6]]);
               write_raw("{path}", m);
               read_raw("{path}", 3) == m && read_raw("{path}", 2).rows == 3"#
        );
        assert!(engine.eval::<bool>(&script).unwrap());
        let err = engine
            .eval::<Matrix>(&format!(r#"read_raw("{path}", 4)"#))
            .unwrap_err();
        assert!(
            err.to_string().contains("not a whole number of rows"),
            "{err}"
        );
    }
}
