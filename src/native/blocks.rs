//! Row blocks from scripts: `read_rows` (random access to a block of rows, for models that map
//! block indices) and `col_means_two_pass` (an independent check of column means), plus the
//! file-name → format rule shared with the chunked model.

use std::path::Path;

use rhai::{Engine, INT};

use super::errors::{from_io, runtime, size, Res};
use super::matrix::Matrix;
use super::rows::{RowFormat, RowReader};
use super::vector::Vector;

/// The format of a file of rows by its name: `.npy`, `.csv`, anything else raw f64 with `cols`
/// columns (which must then be given).
pub fn format_for(path: &str, cols: Option<usize>) -> Result<RowFormat, String> {
    let ext = Path::new(path)
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    match (ext.as_str(), cols) {
        ("npy", _) => Ok(RowFormat::Npy),
        ("csv", _) => Ok(RowFormat::Csv),
        (_, Some(cols)) if cols > 0 => Ok(RowFormat::Raw { cols }),
        _ => Err(format!(
            "`{path}` is read as raw little-endian f64 (it is not .npy or .csv), so its number of columns must be given"
        )),
    }
}

fn open(path: &str, cols: Option<usize>) -> Res<RowReader> {
    let format = format_for(path, cols).map_err(runtime)?;
    RowReader::open(path, format).map_err(from_io)
}

fn read_block(reader: RowReader, start: INT, count: INT) -> Res<Matrix> {
    let start = size(start, "start row")?;
    let count = size(count, "row count")?;
    let mut buf = Vec::new();
    let n = reader.read_block(start, count, &mut buf).map_err(from_io)?;
    Matrix::from_vec(n, reader.cols(), buf).map_err(runtime)
}

/// Column means in two passes (a plain sum, then the mean of the deviations added as a
/// correction), streamed in blocks: a check that shares no code path with map/reduce.
pub fn col_means_two_pass(path: &str, cols: Option<usize>) -> Res<Vector> {
    const BLOCK: usize = 1 << 16;
    let mut buf = Vec::new();
    let mut reader = open(path, cols)?;
    let c = reader.cols();
    let mut sums = vec![0.0; c];
    let mut rows = 0usize;
    loop {
        let n = reader.next_block(BLOCK, &mut buf).map_err(from_io)?;
        if n == 0 {
            break;
        }
        rows += n;
        for row in buf.chunks_exact(c) {
            for (s, x) in sums.iter_mut().zip(row) {
                *s += x;
            }
        }
    }
    let means: Vec<f64> = sums.iter().map(|s| s / rows as f64).collect();
    let mut reader = open(path, cols)?;
    let mut dev = vec![0.0; c];
    loop {
        let n = reader.next_block(BLOCK, &mut buf).map_err(from_io)?;
        if n == 0 {
            break;
        }
        for row in buf.chunks_exact(c) {
            for ((d, x), m) in dev.iter_mut().zip(row).zip(&means) {
                *d += x - m;
            }
        }
    }
    Ok(Vector::from(
        means
            .iter()
            .zip(&dev)
            .map(|(m, d)| m + d / rows as f64)
            .collect::<Vec<_>>(),
    ))
}

/// Registers `read_rows` and `col_means_two_pass`.
pub fn register(engine: &mut Engine) {
    engine
        .register_fn("read_rows", |path: &str, start: INT, count: INT| {
            read_block(open(path, None)?, start, count)
        })
        .register_fn(
            "read_rows",
            |path: &str, cols: INT, start: INT, count: INT| {
                read_block(open(path, Some(size(cols, "column count")?))?, start, count)
            },
        )
        .register_fn("col_means_two_pass", |path: &str| {
            col_means_two_pass(path, None)
        })
        .register_fn("col_means_two_pass", |path: &str, cols: INT| {
            col_means_two_pass(path, Some(size(cols, "column count")?))
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_follow_the_file_name() {
        assert_eq!(format_for("a/x.NPY", None), Ok(RowFormat::Npy));
        assert_eq!(format_for("x.csv", None), Ok(RowFormat::Csv));
        assert_eq!(format_for("x.f64", Some(3)), Ok(RowFormat::Raw { cols: 3 }));
        assert!(format_for("x.f64", None)
            .unwrap_err()
            .contains("number of columns"));
    }

    #[test]
    fn two_pass_means_match_plain_means() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.npy");
        let m = Matrix::from_vec(3, 2, vec![1.0, 10.0, 2.0, 20.0, 4.0, 30.0]).unwrap();
        crate::native::npy::write_matrix(&path, &m).unwrap();
        let means = col_means_two_pass(path.to_str().unwrap(), None).unwrap();
        assert_eq!(means.as_slice(), &[7.0 / 3.0, 20.0]);
        let block = read_block(open(path.to_str().unwrap(), None).unwrap(), 1, 5).unwrap();
        assert_eq!(block.as_slice(), &[2.0, 20.0, 4.0, 30.0]);
    }
}
