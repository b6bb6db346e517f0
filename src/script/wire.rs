//! A compact binary encoding of script values, for sending items and results to worker
//! processes and MPI ranks.
//!
//! serde would silently turn a function pointer into its name and a native `Vector` into its
//! Rust type name (see `shared/PLATFORM.md`); this encoding knows every type a map/reduce value
//! may hold, sends `f64` data as raw little-endian bytes, and refuses anything else by name.

use rhai::{Array, Blob, Dynamic, Map};

use crate::native::matrix::Matrix;
use crate::native::vector::Vector;

const UNIT: u8 = 0;
const FALSE: u8 = 1;
const TRUE: u8 = 2;
const INT: u8 = 3;
const FLOAT: u8 = 4;
const STRING: u8 = 5;
const CHAR: u8 = 6;
const ARRAY: u8 = 7;
const MAP: u8 = 8;
const BLOB: u8 = 9;
const VECTOR: u8 = 10;
const MATRIX: u8 = 11;

/// A value that cannot cross a process boundary.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("a value of type `{0}` cannot be sent to another process (send numbers, strings, arrays, maps, blobs, Vector or Matrix)")]
    Unsupported(String),
    #[error("malformed message from another process")]
    Malformed,
}

fn put_len(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(&(n as u64).to_le_bytes());
}

fn put_f64s(out: &mut Vec<u8>, data: &[f64]) {
    out.reserve(data.len() * 8);
    for x in data {
        out.extend_from_slice(&x.to_le_bytes());
    }
}

/// Appends the encoding of `value` to `out`.
pub fn encode(value: &Dynamic, out: &mut Vec<u8>) -> Result<(), WireError> {
    if value.is_unit() {
        out.push(UNIT);
    } else if let Ok(b) = value.as_bool() {
        out.push(if b { TRUE } else { FALSE });
    } else if let Ok(i) = value.as_int() {
        out.push(INT);
        out.extend_from_slice(&i.to_le_bytes());
    } else if let Ok(f) = value.as_float() {
        out.push(FLOAT);
        out.extend_from_slice(&f.to_le_bytes());
    } else if let Ok(c) = value.as_char() {
        out.push(CHAR);
        out.extend_from_slice(&u32::from(c).to_le_bytes());
    } else if value.is_string() {
        let s = value
            .clone()
            .into_string()
            .map_err(|t| WireError::Unsupported(t.into()))?;
        out.push(STRING);
        put_len(out, s.len());
        out.extend_from_slice(s.as_bytes());
    } else if value.is_array() {
        let arr = value.read_lock::<Array>().ok_or(WireError::Malformed)?;
        out.push(ARRAY);
        put_len(out, arr.len());
        for v in arr.iter() {
            encode(v, out)?;
        }
    } else if value.is_map() {
        let map = value.read_lock::<Map>().ok_or(WireError::Malformed)?;
        out.push(MAP);
        put_len(out, map.len());
        for (k, v) in map.iter() {
            put_len(out, k.len());
            out.extend_from_slice(k.as_bytes());
            encode(v, out)?;
        }
    } else if value.is_blob() {
        let blob = value.read_lock::<Blob>().ok_or(WireError::Malformed)?;
        out.push(BLOB);
        put_len(out, blob.len());
        out.extend_from_slice(&blob);
    } else if let Some(v) = value.read_lock::<Vector>() {
        out.push(VECTOR);
        put_len(out, v.len());
        put_f64s(out, v.as_slice());
    } else if let Some(m) = value.read_lock::<Matrix>() {
        out.push(MATRIX);
        put_len(out, m.rows());
        put_len(out, m.cols());
        put_f64s(out, m.as_slice());
    } else {
        return Err(WireError::Unsupported(value.type_name().to_string()));
    }
    Ok(())
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if self.buf.len() < n {
            return Err(WireError::Malformed);
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn u64(&mut self) -> Result<u64, WireError> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().map_err(|_| WireError::Malformed)?,
        ))
    }

    fn len(&mut self) -> Result<usize, WireError> {
        let n = self.u64()? as usize;
        // A length can never exceed what is left: guards against huge allocations.
        if n > self.buf.len() {
            return Err(WireError::Malformed);
        }
        Ok(n)
    }

    fn f64s(&mut self, n: usize) -> Result<Vec<f64>, WireError> {
        let bytes = self.take(n.checked_mul(8).ok_or(WireError::Malformed)?)?;
        Ok(bytes
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
            .collect())
    }

    fn string(&mut self) -> Result<String, WireError> {
        let n = self.len()?;
        String::from_utf8(self.take(n)?.to_vec()).map_err(|_| WireError::Malformed)
    }

    fn value(&mut self) -> Result<Dynamic, WireError> {
        let tag = self.take(1)?[0];
        Ok(match tag {
            UNIT => Dynamic::UNIT,
            FALSE => Dynamic::FALSE,
            TRUE => Dynamic::TRUE,
            INT => Dynamic::from(self.u64()? as i64),
            FLOAT => Dynamic::from(f64::from_bits(self.u64()?)),
            CHAR => {
                let n =
                    u32::from_le_bytes(self.take(4)?.try_into().map_err(|_| WireError::Malformed)?);
                Dynamic::from(char::from_u32(n).ok_or(WireError::Malformed)?)
            }
            STRING => Dynamic::from(self.string()?),
            ARRAY => {
                let n = self.len()?;
                let mut arr = Array::with_capacity(n);
                for _ in 0..n {
                    arr.push(self.value()?);
                }
                Dynamic::from(arr)
            }
            MAP => {
                let n = self.len()?;
                let mut map = Map::new();
                for _ in 0..n {
                    let k = self.string()?;
                    map.insert(k.into(), self.value()?);
                }
                Dynamic::from(map)
            }
            BLOB => {
                let n = self.len()?;
                Dynamic::from_blob(self.take(n)?.to_vec())
            }
            VECTOR => {
                let n = self.u64()? as usize;
                Dynamic::from(Vector::from(self.f64s(n)?))
            }
            MATRIX => {
                let rows = self.u64()? as usize;
                let cols = self.u64()? as usize;
                let data = self.f64s(rows.checked_mul(cols).ok_or(WireError::Malformed)?)?;
                Dynamic::from(Matrix::from_vec(rows, cols, data).map_err(|_| WireError::Malformed)?)
            }
            _ => return Err(WireError::Malformed),
        })
    }
}

/// Decodes one value from the whole of `buf`.
pub fn decode(buf: &[u8]) -> Result<Dynamic, WireError> {
    let mut r = Reader { buf };
    let v = r.value()?;
    if r.buf.is_empty() {
        Ok(v)
    } else {
        Err(WireError::Malformed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(v: Dynamic) -> Dynamic {
        let mut buf = Vec::new();
        encode(&v, &mut buf).unwrap();
        decode(&buf).unwrap()
    }

    #[test]
    fn every_supported_type_round_trips_bitwise() {
        let mut map = Map::new();
        map.insert("x".into(), Dynamic::from(0.1_f64));
        map.insert("s".into(), Dynamic::from("é"));
        let arr: Array = vec![
            Dynamic::UNIT,
            Dynamic::TRUE,
            Dynamic::from(-7_i64),
            Dynamic::from(f64::NAN),
            Dynamic::from('λ'),
            Dynamic::from(map),
            Dynamic::from_blob(vec![1, 2, 3]),
            Dynamic::from(Vector::from(vec![1.5, -0.0])),
            Dynamic::from(Matrix::from_vec(2, 1, vec![1.0, 2.0]).unwrap()),
        ];
        let v = Dynamic::from(arr);
        let mut a = Vec::new();
        encode(&v, &mut a).unwrap();
        let mut b = Vec::new();
        encode(&round_trip(v), &mut b).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn functions_are_refused_by_name() {
        let f = Dynamic::from(rhai::FnPtr::new("f").unwrap());
        let err = encode(&f, &mut Vec::new()).unwrap_err();
        assert!(err.to_string().contains("`Fn` cannot be sent"), "{err}");
    }

    #[test]
    fn truncated_input_is_malformed_not_a_panic() {
        let mut buf = Vec::new();
        encode(&Dynamic::from("hello".to_string()), &mut buf).unwrap();
        for cut in 0..buf.len() {
            assert!(decode(&buf[..cut]).is_err());
        }
        assert!(decode(&[STRING, 255, 255, 255, 255, 255, 255, 255, 255]).is_err());
    }
}
