//! Numeric CSV: comma-separated numbers, one row per line, with an optional header line.
//!
//! The first non-blank line is a header when any of its fields is not a number; it fixes the
//! column count like a data row would. Fields may have surrounding spaces; blank lines and
//! lines starting with `#` are skipped; a row with a different number of fields, or a field
//! that is not a number, is an error naming the line (1-based). A leading UTF-8 byte-order mark
//! is ignored. The parsing is the `csv` crate's, in the dialect `read_table` uses
//! ([`super::table::dialect`]), so a quoted header (`"x, y"`) reads as one column.
//!
//! Values are written with Rust's shortest round-trip formatting (`{}` of `f64`), so a file
//! written here reads back bit for bit (`NaN`, `inf` and `-inf` included).

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use rhai::Engine;

use super::atomic::AtomicFile;
use super::errors::{from_io, invalid_data, with_path, Res};
use super::matrix::Matrix;
use super::rows::{read_matrix, RowFormat};
use super::table::dialect;
use super::vector::Vector;
use crate::sandbox::check_effect;

/// A CSV file being read row by row (used through [`super::rows::RowReader`]).
#[derive(Debug)]
pub struct CsvRows {
    path: PathBuf,
    reader: csv::Reader<File>,
    record: csv::ByteRecord,
    /// The file's length, and whether it ends with a line break: the line of a record is found
    /// from where the reader stands after it (see [`CsvRows::line`]).
    len: u64,
    ends_with_newline: bool,
    cols: usize,
    /// The first data row, already parsed while looking for a header.
    first: Option<Vec<f64>>,
}

/// Why a row did not parse: the field (1-based) and its text.
struct BadField(usize, String);

/// Appends the numbers of `record` to `out` and returns how many there were.
fn parse_record(record: &csv::ByteRecord, out: &mut Vec<f64>) -> Result<usize, BadField> {
    for (i, field) in record.iter().enumerate() {
        let text = std::str::from_utf8(field).unwrap_or("");
        match text.trim().parse() {
            Ok(x) => out.push(x),
            Err(_) => {
                let text = String::from_utf8_lossy(field).trim().to_string();
                return Err(BadField(i + 1, text));
            }
        }
    }
    Ok(record.len())
}

impl CsvRows {
    /// Opens `path` and reads up to its first data row to learn the column count.
    pub fn open(path: &Path) -> io::Result<Self> {
        use std::os::unix::fs::FileExt;
        let file = File::open(path).map_err(|e| with_path("cannot open", path, e))?;
        let len = file
            .metadata()
            .map_err(|e| with_path("cannot read", path, e))?
            .len();
        let mut last = [0u8];
        let ends_with_newline =
            len > 0 && file.read_exact_at(&mut last, len - 1).is_ok() && last[0] == b'\n';
        let mut rows = Self {
            path: path.to_path_buf(),
            // Fields are trimmed as they are parsed: the reader's own trimming rebuilds each
            // record, which cost a fifth of the throughput.
            reader: dialect(b',')
                .trim(csv::Trim::None)
                .buffer_capacity(1 << 20)
                .from_reader(file),
            record: csv::ByteRecord::new(),
            len,
            ends_with_newline,
            cols: 0,
            first: None,
        };
        if rows.next_record()? {
            let mut values = Vec::new();
            rows.cols = rows.record.len();
            if parse_record(&rows.record, &mut values).is_ok() {
                rows.first = Some(values);
            }
        }
        Ok(rows)
    }

    /// The number of columns (0 for an empty file).
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// The line (1-based) of the record just read: rows of numbers do not span lines, so it is
    /// the line before where the reader stands now, or that line at the end of a file without
    /// a final line break. (The reader's own count places a record before the blank lines it
    /// skipped.)
    fn line(&self) -> u64 {
        let at = self.reader.position();
        if at.byte() >= self.len && !self.ends_with_newline {
            at.line()
        } else {
            at.line().saturating_sub(1)
        }
    }

    /// Reads the next record that is not blank into `self.record`; false at the end.
    fn next_record(&mut self) -> io::Result<bool> {
        loop {
            let more = self
                .reader
                .read_byte_record(&mut self.record)
                .map_err(|e| invalid_data(&self.path, format!("line {}: {e}", self.line())))?;
            if !more {
                return Ok(false);
            }
            if !self.record.iter().all(|f| f.trim_ascii().is_empty()) {
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
        while rows < max_rows && self.next_record()? {
            let before = out.len();
            match parse_record(&self.record, out) {
                Ok(n) if n == self.cols => rows += 1,
                Ok(n) => {
                    out.truncate(before);
                    return Err(invalid_data(
                        &self.path,
                        format!(
                            "line {} has {n} fields, but the first row has {}",
                            self.line(),
                            self.cols
                        ),
                    ));
                }
                Err(BadField(field, text)) => {
                    out.truncate(before);
                    return Err(invalid_data(
                        &self.path,
                        format!(
                            "line {}, field {field}: `{text}` is not a number",
                            self.line()
                        ),
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
    fn lines_are_counted_across_blank_and_comment_lines() {
        let err = read_text("# made by x\n\na,b\n\n1,2\n# c\n3\n").unwrap_err();
        assert!(err.to_string().contains("line 7 has 1 fields"), "{err}");
        let err = read_text("a,b\n\n1,2\n3,y").unwrap_err();
        assert!(err.to_string().contains("line 4, field 2: `y`"), "{err}");
        let m = read_text("\"x, y\",z\n1,2\n").unwrap();
        assert_eq!((m.rows(), m.cols()), (1, 2));
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
