//! Numeric CSV: comma-separated numbers, one row per line, with an optional header line.
//!
//! The first non-blank line is a header when any of its fields is not a number; it fixes the
//! column count like a data row would. Fields may have surrounding spaces; blank lines are
//! skipped; a row with a different number of fields, or a field that is not a number, is an
//! error naming the line (1-based). A leading UTF-8 byte-order mark is ignored. There is no
//! quoting: this is for numbers only.
//!
//! Values are written with Rust's shortest round-trip formatting (`{}` of `f64`), so a file
//! written here reads back bit for bit (`NaN`, `inf` and `-inf` included).

use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use rhai::Engine;

use super::atomic::AtomicFile;
use super::errors::{from_io, invalid_data, with_path, Res};
use super::matrix::Matrix;
use super::rows::{read_matrix, RowFormat};
use super::vector::Vector;
use crate::sandbox::check_effect;

/// The UTF-8 byte-order mark some tools put at the start of a CSV file.
const BOM: char = '\u{feff}';

/// A CSV file being read row by row (used through [`super::rows::RowReader`]).
#[derive(Debug)]
pub struct CsvRows {
    path: PathBuf,
    lines: BufReader<File>,
    line: String,
    line_no: usize,
    cols: usize,
    /// The first data row, already parsed while looking for a header.
    first: Option<Vec<f64>>,
}

/// Why a line did not parse: the field (1-based) and its text.
struct BadField(usize, String);

/// Appends the numbers of `line` to `out` and returns how many there were.
fn parse_line(line: &str, out: &mut Vec<f64>) -> Result<usize, BadField> {
    let mut n = 0;
    for field in line.split(',') {
        n += 1;
        let field = field.trim();
        out.push(field.parse().map_err(|_| BadField(n, field.to_string()))?);
    }
    Ok(n)
}

impl CsvRows {
    /// Opens `path` and reads up to its first data row to learn the column count.
    pub fn open(path: &Path) -> io::Result<Self> {
        let file = File::open(path).map_err(|e| with_path("cannot open", path, e))?;
        let mut rows = Self {
            path: path.to_path_buf(),
            lines: BufReader::with_capacity(1 << 20, file),
            line: String::new(),
            line_no: 0,
            cols: 0,
            first: None,
        };
        if rows.next_line()? {
            let mut values = Vec::new();
            match parse_line(&rows.line, &mut values) {
                Ok(n) => {
                    rows.cols = n;
                    rows.first = Some(values);
                }
                Err(_) => rows.cols = rows.line.split(',').count(),
            }
        }
        Ok(rows)
    }

    /// The number of columns (0 for an empty file).
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Reads the next non-blank line into `self.line` (without its line ending); false at end.
    fn next_line(&mut self) -> io::Result<bool> {
        loop {
            self.line.clear();
            let n = self
                .lines
                .read_line(&mut self.line)
                .map_err(|e| with_path("cannot read", &self.path, e))?;
            if n == 0 {
                return Ok(false);
            }
            self.line_no += 1;
            let content = self.line.trim_end_matches(['\n', '\r']).len();
            self.line.truncate(content);
            if self.line_no == 1 && self.line.starts_with(BOM) {
                self.line.drain(..BOM.len_utf8());
            }
            if !self.line.trim().is_empty() {
                return Ok(true);
            }
        }
    }

    /// Appends up to `max_rows` rows (row-major) to `out`; returns how many (0 at the end).
    pub fn read_rows(&mut self, max_rows: usize, out: &mut Vec<f64>) -> io::Result<usize> {
        let mut rows = 0;
        if max_rows > 0 {
            if let Some(first) = self.first.take() {
                out.extend_from_slice(&first);
                rows += 1;
            }
        }
        while rows < max_rows && self.next_line()? {
            let before = out.len();
            let parsed = parse_line(&self.line, out);
            let line_no = self.line_no;
            match parsed {
                Ok(n) if n == self.cols => rows += 1,
                Ok(n) => {
                    out.truncate(before);
                    return Err(invalid_data(
                        &self.path,
                        format!(
                            "line {line_no} has {n} fields, but the first row has {}",
                            self.cols
                        ),
                    ));
                }
                Err(BadField(field, text)) => {
                    out.truncate(before);
                    return Err(invalid_data(
                        &self.path,
                        format!("line {line_no}, field {field}: `{text}` is not a number"),
                    ));
                }
            }
        }
        Ok(rows)
    }
}

/// Writes row-major `values` of `cols` columns as CSV (no header), atomically. With no columns
/// the file is empty.
pub fn write_csv(path: impl AsRef<Path>, cols: usize, values: &[f64]) -> io::Result<()> {
    let path = path.as_ref();
    let mut file = AtomicFile::create(path).map_err(|e| with_path("cannot create", path, e))?;
    let written = (|| {
        for row in values.chunks(cols.max(1)) {
            for (i, x) in row.iter().enumerate() {
                let sep = if i + 1 == row.len() { '\n' } else { ',' };
                write!(file, "{x}{sep}")?;
            }
        }
        file.commit()
    })();
    written.map_err(|e| with_path("cannot write", path, e))
}

/// Registers `read_csv` and `write_csv` (a matrix as rows, a vector as one column).
pub fn register(engine: &mut Engine) {
    engine
        .register_fn("read_csv", |path: &str| {
            read_matrix(path, RowFormat::Csv).map_err(from_io)
        })
        .register_fn("write_csv", |path: &str, m: Matrix| -> Res<()> {
            check_effect("write_csv")?;
            write_csv(path, m.cols(), m.as_slice()).map_err(from_io)
        })
        .register_fn("write_csv", |path: &str, v: Vector| -> Res<()> {
            check_effect("write_csv")?;
            write_csv(path, 1, v.as_slice()).map_err(from_io)
        });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::native::rows::RowReader;
    use crate::native::testing::engine;

    fn read_text(text: &str) -> io::Result<Matrix> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.csv");
        std::fs::write(&path, text).unwrap();
        read_matrix(&path, RowFormat::Csv)
    }

    #[test]
    fn detects_headers_and_skips_blank_lines() {
        let m = read_text("x, y\r\n1, 2.5\r\n\r\n-3,4e2\n").unwrap();
        assert_eq!(
            (m.rows(), m.cols(), m.as_slice()),
            (2, 2, &[1.0, 2.5, -3.0, 400.0][..])
        );
        let m = read_text("\u{feff}\n1,2\n3,4").unwrap();
        assert_eq!((m.rows(), m.as_slice()), (2, &[1.0, 2.0, 3.0, 4.0][..]));
        let m = read_text("").unwrap();
        assert_eq!((m.rows(), m.cols()), (0, 0));
        let m = read_text("\u{feff}5,6\n").unwrap();
        assert_eq!((m.rows(), m.as_slice()), (1, &[5.0, 6.0][..]));
        let m = read_text("a,b,c\n").unwrap();
        assert_eq!((m.rows(), m.cols()), (0, 3));
    }

    #[test]
    fn errors_name_the_file_and_line() {
        let err = read_text("a,b\n1,2\n3\n").unwrap_err().to_string();
        assert!(
            err.contains("t.csv`: line 3 has 1 fields, but the first row has 2"),
            "{err}"
        );
        let err = read_text("1,2\n3,x\n").unwrap_err().to_string();
        assert!(
            err.contains("line 2, field 2: `x` is not a number"),
            "{err}"
        );
        let err = read_text("1,2\n3,\n").unwrap_err().to_string();
        assert!(err.contains("line 2, field 2: `` is not a number"), "{err}");
    }

    #[test]
    fn values_round_trip_bitwise() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.csv");
        let values = [
            0.1 + 0.2,
            -0.0,
            f64::NAN,
            f64::NEG_INFINITY,
            5e-324,
            1e300,
            2.0,
        ];
        write_csv(&path, 1, &values).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with("0.30000000000000004\n-0\nNaN\n-inf\n"),
            "{text}"
        );
        let back = read_matrix(&path, RowFormat::Csv).unwrap();
        let same = back
            .as_slice()
            .iter()
            .zip(&values)
            .all(|(a, b)| a.to_bits() == b.to_bits());
        assert!(same && back.cols() == 1, "{back}");
        let mut reader = RowReader::open(&path, RowFormat::Csv).unwrap();
        assert_eq!(reader.rows(), None);
        assert_eq!(reader.next_block(0, &mut Vec::new()).unwrap(), 0);
        assert_eq!(reader.next_block(5, &mut Vec::new()).unwrap(), 5);
    }

    #[test]
    fn rhai_functions() {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine();
        let (m, v) = (dir.path().join("m.csv"), dir.path().join("v.csv"));
        let script = format!(
            r#"let m = matrix([[1, 2.5], [3, 4]]);
               write_csv("{m}", m);
               write_csv("{v}", vector([1, 2, 3]));
               read_csv("{m}") == m && read_csv("{v}").col(0) == vector([1, 2, 3])"#,
            m = m.display(),
            v = v.display()
        );
        assert!(engine.eval::<bool>(&script).unwrap());
        assert_eq!(std::fs::read_to_string(&m).unwrap(), "1,2.5\n3,4\n");
    }
}
