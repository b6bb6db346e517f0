//! `Vector`: a dense list of `f64`s, the 1-D type of the native library.
//!
//! Rhai arrays hold boxed `Dynamic`s and every arithmetic step is interpreted; a `Vector` keeps
//! plain `f64`s so sums and elementwise arithmetic run as native loops. Sums add left to right
//! (index 0 first), so results are reproducible bit for bit. Printing uses Rust's shortest
//! round-trip form (`[1.5, 2.0]`), so what is printed parses back to the same bits.

use std::fmt;

use rhai::{Array, Dynamic, Engine, INT};

use super::elementwise::{self, Elementwise};
use super::errors::{index, runtime, size, try_zeros, Res};

/// A dense vector of `f64`s (Rhai type `Vector`).
///
/// Equality is bitwise (see [`super::elementwise`]), so `Vector` is `Eq`.
#[derive(Clone, Debug, Default)]
pub struct Vector {
    data: Vec<f64>,
}

impl Vector {
    /// The values.
    pub fn as_slice(&self) -> &[f64] {
        &self.data
    }

    /// The number of values.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// True when there are no values.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The sum, adding from index 0 upwards.
    pub fn sum(&self) -> f64 {
        self.data.iter().fold(0.0, |acc, x| acc + x)
    }

    /// The mean ([`Vector::sum`] divided by the length); NaN when empty.
    pub fn mean(&self) -> f64 {
        self.sum() / self.data.len() as f64
    }
}

impl From<Vec<f64>> for Vector {
    fn from(data: Vec<f64>) -> Self {
        Self { data }
    }
}

impl PartialEq for Vector {
    fn eq(&self, other: &Self) -> bool {
        elementwise::bitwise_eq(self, other)
    }
}

impl Eq for Vector {}

impl fmt::Display for Vector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.data)
    }
}

impl IntoIterator for Vector {
    type Item = f64;
    type IntoIter = std::vec::IntoIter<f64>;
    fn into_iter(self) -> Self::IntoIter {
        self.data.into_iter()
    }
}

impl Elementwise for Vector {
    fn values(&self) -> &[f64] {
        &self.data
    }
    fn values_mut(&mut self) -> &mut [f64] {
        &mut self.data
    }
    fn shape(&self) -> (usize, usize) {
        (self.data.len(), 1)
    }
    fn describe(&self) -> String {
        format!("a vector of length {}", self.data.len())
    }
}

/// Converts a Rhai array of numbers (integers or floats) to `f64`s; `what` names the array in
/// errors (`vector()`, `matrix() row 2`).
pub fn numbers(array: &Array, what: &str) -> Res<Vec<f64>> {
    array
        .iter()
        .enumerate()
        .map(|(i, value)| {
            value
                .as_float()
                .or_else(|_| value.as_int().map(|n| n as f64))
                .map_err(|type_name| {
                    runtime(format!(
                        "{what}: element {i} is {type_name}, expected a number"
                    ))
                })
        })
        .collect()
}

/// Values as a Rhai array of floats.
pub fn to_array(values: &[f64]) -> Array {
    values.iter().map(|&x| Dynamic::from_float(x)).collect()
}

fn set(v: &mut Vector, i: INT, x: f64) -> Res<()> {
    let i = index(i, v.len(), "vector index")?;
    v.data[i] = x;
    Ok(())
}

/// Registers the `Vector` type and its functions.
pub fn register(engine: &mut Engine) {
    engine
        .register_type_with_name::<Vector>("Vector")
        .register_fn("vector", |a: Array| {
            numbers(&a, "vector()").map(Vector::from)
        })
        .register_fn("zeros", |n: INT| {
            try_zeros(size(n, "zeros() length")?).map(Vector::from)
        })
        .register_fn("len", |v: &mut Vector| v.len() as INT)
        .register_get("len", |v: &mut Vector| v.len() as INT)
        .register_indexer_get(|v: &mut Vector, i: INT| {
            index(i, v.len(), "vector index").map(|i| v.data[i])
        })
        .register_indexer_set(set)
        .register_indexer_set(|v: &mut Vector, i: INT, x: INT| set(v, i, x as f64))
        .register_fn("sum", |v: &mut Vector| v.sum())
        .register_fn("mean", |v: &mut Vector| v.mean())
        .register_fn("to_array", |v: &mut Vector| to_array(&v.data))
        .register_fn("to_string", |v: &mut Vector| v.to_string())
        .register_fn("to_debug", |v: &mut Vector| v.to_string())
        .register_iterator::<Vector>();
    elementwise::register::<Vector>(engine);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::native::testing::{eval, eval_err};

    #[test]
    fn builds_from_ints_and_floats() {
        let v: Vector = eval("vector([1, 2.5, -3])");
        assert_eq!(v.as_slice(), &[1.0, 2.5, -3.0]);
        assert_eq!(eval::<Vector>("zeros(3)").as_slice(), &[0.0; 3]);
        assert!(eval_err(r#"vector([1, "x"])"#).contains("element 1 is string"));
        assert!(eval_err("zeros(-1)").contains("must not be negative"));
    }

    #[test]
    fn indexing_and_length() {
        assert_eq!(
            eval::<f64>("let v = vector([1, 2, 3]); v[1] = 7; v[1] + v.len()"),
            10.0
        );
        assert_eq!(eval::<f64>("let v = zeros(2); v[0] = 1.5; v[0]"), 1.5);
        assert_eq!(eval::<INT>("zeros(4).len()"), 4);
        let err = eval_err("let v = zeros(2); v[2]");
        assert!(
            err.contains("vector index 2 is out of range: valid values are 0 to 1"),
            "{err}"
        );
        assert!(eval_err("let v = zeros(2); v[-1] = 0.0;").contains("out of range"));
    }

    #[test]
    fn arithmetic_with_vectors_and_scalars() {
        let v: Vector = eval("let a = vector([1, 2]); let b = vector([3, 5]); (a + b) * 2 - 1");
        assert_eq!(v.as_slice(), &[7.0, 13.0]);
        let v: Vector = eval("10 / vector([2.0, 4.0]) + 0.5");
        assert_eq!(v.as_slice(), &[5.5, 3.0]);
        let v: Vector = eval("let a = vector([6, 8]); a / a - -a");
        assert_eq!(v.as_slice(), &[7.0, 9.0]);
        let err = eval_err("vector([1, 2]) + vector([1])");
        assert!(
            err.contains("a vector of length 2 and a vector of length 1"),
            "{err}"
        );
    }

    #[test]
    fn sums_means_and_iteration() {
        assert_eq!(eval::<f64>("vector([1, 2, 3, 4]).sum()"), 10.0);
        assert_eq!(eval::<f64>("vector([1, 2, 3, 4]).mean()"), 2.5);
        assert!(eval::<f64>("zeros(0).mean()").is_nan());
        assert_eq!(
            eval::<f64>("let s = 0.0; for x in vector([1, 2.5]) { s += x } s"),
            3.5
        );
        assert_eq!(eval::<Array>("vector([1, 2]).to_array()").len(), 2);
    }

    #[test]
    fn prints_full_precision_and_compares_bitwise() {
        assert_eq!(eval::<String>("vector([1.5, 2]).to_string()"), "[1.5, 2.0]");
        assert_eq!(
            eval::<String>("`${vector([0.1 + 0.2])}`"),
            "[0.30000000000000004]"
        );
        assert!(eval::<bool>("vector([1, 2]) == vector([1.0, 2.0])"));
        assert!(eval::<bool>("vector([0.0]) != vector([-0.0])"));
        assert!(eval::<bool>("let n = vector([0.0]) / 0.0; n == n"));
    }
}
