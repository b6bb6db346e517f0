//! Tables of text: CSV and TSV sample sheets, read with the `csv` crate.
//!
//! A sample sheet is how most real workflows say which files belong to which sample. The format
//! is the one spreadsheets and pandas write, so quoting (`"a, b"`, `""` for a quote) must work
//! as they do it; that is the `csv` crate's job, not a hand-written splitter. What flowrun adds:
//! the first row is the header (its names become keys), lines starting with `#` are comments,
//! blank lines are skipped, fields are trimmed, and every problem names the file and the line.
//! Values stay strings: a column of numbers is converted where it is used (`parse_int`), so a
//! sample called `007` keeps its zeros.

use std::path::{Path, PathBuf};

/// A table read from a file: the header's names, and each row's values in header order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

/// Why a table could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error("cannot read `{}`: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("`{}` line {line}: {message}", path.display())]
    Parse {
        path: PathBuf,
        line: u64,
        message: String,
    },
    #[error("`{}` has no header row", path.display())]
    Empty { path: PathBuf },
    #[error("`{}` line {line}: the header names column `{name}` twice", path.display())]
    DuplicateColumn {
        path: PathBuf,
        line: u64,
        name: String,
    },
    #[error("`{}` line {line}: column {column} of the header has no name", path.display())]
    UnnamedColumn {
        path: PathBuf,
        line: u64,
        column: usize,
    },
    #[error("`{}` line {line} has {found} field(s), but the header has {expected}", path.display())]
    Ragged {
        path: PathBuf,
        line: u64,
        found: usize,
        expected: usize,
    },
}

/// The field separator for `path`: a tab for `.tsv` and `.tab` files, else a comma.
pub fn separator_for(path: &Path) -> u8 {
    match path.extension().and_then(|e| e.to_str()) {
        Some(ext) if ext.eq_ignore_ascii_case("tsv") || ext.eq_ignore_ascii_case("tab") => b'\t',
        _ => b',',
    }
}

/// The CSV dialect flowrun reads everywhere (sample sheets and numeric CSV): `sep`-separated,
/// `"` quoting, `#` comment lines, rows of any length (checked by the caller, which can say
/// more than "unequal lengths"), no header handling (the caller reads the first row itself).
pub fn dialect(sep: u8) -> csv::ReaderBuilder {
    let mut b = csv::ReaderBuilder::new();
    b.delimiter(sep)
        .comment(Some(b'#'))
        .flexible(true)
        .has_headers(false)
        .trim(csv::Trim::All);
    b
}

/// Reads a table with its header; `sep` is the field separator (see [`separator_for`]).
pub fn read_table(path: &Path, sep: u8) -> Result<Table, TableError> {
    let data = std::fs::read(path).map_err(|source| TableError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let text = data.strip_prefix("\u{feff}".as_bytes()).unwrap_or(&data);
    // The reader's own line count leaves out the comment and blank lines it skipped, so lines
    // are found from byte offsets.
    let lines = Lines::of(text);
    let line_of = |row: &csv::StringRecord| lines.at(row.position());
    let mut reader = dialect(sep).from_reader(text);
    let mut records = reader.records();
    let parse = |e: csv::Error| TableError::Parse {
        path: path.to_path_buf(),
        line: lines.at(e.position()),
        message: match e.kind() {
            csv::ErrorKind::Utf8 { .. } => "is not valid UTF-8".to_string(),
            _ => e.to_string(),
        },
    };
    let header_row = loop {
        match records.next() {
            None => return Err(TableError::Empty { path: path.into() }),
            Some(row) => {
                let row = row.map_err(parse)?;
                if !is_blank(&row) {
                    break row;
                }
            }
        }
    };
    let header_line = line_of(&header_row);
    let mut header: Vec<String> = Vec::with_capacity(header_row.len());
    for (i, name) in header_row.iter().enumerate() {
        if name.is_empty() {
            return Err(TableError::UnnamedColumn {
                path: path.into(),
                line: header_line,
                column: i + 1,
            });
        }
        if header.iter().any(|h| h == name) {
            return Err(TableError::DuplicateColumn {
                path: path.into(),
                line: header_line,
                name: name.to_string(),
            });
        }
        header.push(name.to_string());
    }
    let mut rows = Vec::new();
    for row in records {
        let row = row.map_err(parse)?;
        if is_blank(&row) {
            continue;
        }
        if row.len() != header.len() {
            return Err(TableError::Ragged {
                path: path.into(),
                line: line_of(&row),
                found: row.len(),
                expected: header.len(),
            });
        }
        rows.push(row.iter().map(str::to_string).collect());
    }
    Ok(Table { header, rows })
}

fn is_blank(row: &csv::StringRecord) -> bool {
    row.iter().all(str::is_empty)
}

/// Where each line of a text starts, to turn byte offsets into 1-based line numbers.
struct Lines<'t> {
    text: &'t [u8],
    starts: Vec<u64>,
}

impl<'t> Lines<'t> {
    fn of(text: &'t [u8]) -> Self {
        let starts = std::iter::once(0)
            .chain(
                text.iter()
                    .enumerate()
                    .filter(|(_, b)| **b == b'\n')
                    .map(|(i, _)| i as u64 + 1),
            )
            .collect();
        Self { text, starts }
    }

    /// The line of the record starting at `pos`: the reader places a record where it began
    /// looking for it, before the blank and comment lines it skipped.
    fn at(&self, pos: Option<&csv::Position>) -> u64 {
        let Some(pos) = pos else { return 0 };
        let mut i = pos.byte() as usize;
        loop {
            match self.text.get(i) {
                Some(b'\n' | b'\r') => i += 1,
                Some(b'#') => {
                    i += self.text[i..]
                        .iter()
                        .position(|b| *b == b'\n')
                        .map_or(self.text.len() - i, |n| n + 1);
                }
                _ => break,
            }
        }
        self.starts.partition_point(|&start| start <= i as u64) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str, name: &str) -> Result<Table, TableError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        read_table(&path, separator_for(&path))
    }

    #[test]
    fn reads_quoted_fields_comments_and_blank_lines() {
        let t = read(
            "\u{feff}# samples\nsample,files\n\n a ,\"x.fq, y.fq\"\nb,\"say \"\"hi\"\"\"\n",
            "s.csv",
        )
        .unwrap();
        assert_eq!(t.header, ["sample", "files"]);
        assert_eq!(t.rows, [["a", "x.fq, y.fq"], ["b", "say \"hi\""]]);
    }

    #[test]
    fn tabs_separate_tsv_files() {
        let t = read("s\tn\na,b\t1\n", "s.tsv").unwrap();
        assert_eq!(t.rows, [["a,b", "1"]]);
    }

    #[test]
    fn problems_name_the_line() {
        let e = read("a,b\n1,2\n\n3\n", "s.csv").unwrap_err().to_string();
        assert!(
            e.ends_with("s.csv` line 4 has 1 field(s), but the header has 2"),
            "{e}"
        );
        let e = read("# c\na,a\n", "s.csv").unwrap_err().to_string();
        assert!(
            e.ends_with("line 2: the header names column `a` twice"),
            "{e}"
        );
        let e = read("a,,c\n", "s.csv").unwrap_err().to_string();
        assert!(
            e.ends_with("line 1: column 2 of the header has no name"),
            "{e}"
        );
        let e = read("# only\n", "s.csv").unwrap_err().to_string();
        assert!(e.ends_with("s.csv` has no header row"), "{e}");
    }
}
