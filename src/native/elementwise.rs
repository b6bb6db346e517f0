//! Elementwise arithmetic and bitwise equality, written once for every dense numeric type
//! ([`super::vector::Vector`], [`super::matrix::Matrix`]).
//!
//! Each operator is registered for `T op T` (same shape, else a clear error), `T op scalar` and
//! `scalar op T`, for both float and integer scalars, so scripts can write `v * 2` or
//! `1.0 - v`. The operation is a generic closure so the compiler inlines it into the loop.
//! Equality compares the bit patterns of the `f64`s: `NaN == NaN` is true and `0.0 == -0.0` is
//! false, which is what "the same result, reproducibly" needs.

use rhai::{Engine, INT};

use super::errors::{runtime, Res};

/// A dense block of `f64`s with a shape.
pub trait Elementwise: Clone + Send + Sync + 'static {
    /// The values, in storage order.
    fn values(&self) -> &[f64];
    /// The values, mutably, in storage order.
    fn values_mut(&mut self) -> &mut [f64];
    /// The shape as (rows, cols); two values combine only when their shapes are equal.
    fn shape(&self) -> (usize, usize);
    /// The shape for error messages, e.g. `a vector of length 3` or `a 2×3 matrix`.
    fn describe(&self) -> String;
}

/// True when both have the same shape and bit-identical values.
pub fn bitwise_eq<T: Elementwise>(a: &T, b: &T) -> bool {
    a.shape() == b.shape()
        && a.values()
            .iter()
            .zip(b.values())
            .all(|(x, y)| x.to_bits() == y.to_bits())
}

fn combine<T: Elementwise>(op: &str, a: &T, mut b: T, f: impl Fn(f64, f64) -> f64) -> Res<T> {
    if a.shape() != b.shape() {
        return Err(runtime(format!(
            "cannot apply `{op}` to {} and {}: the shapes differ",
            a.describe(),
            b.describe()
        )));
    }
    for (y, x) in b.values_mut().iter_mut().zip(a.values()) {
        *y = f(*x, *y);
    }
    Ok(b)
}

fn map<T: Elementwise>(mut a: T, f: impl Fn(f64) -> f64) -> T {
    for x in a.values_mut() {
        *x = f(*x);
    }
    a
}

fn register_op<T: Elementwise>(
    engine: &mut Engine,
    op: &'static str,
    f: impl Fn(f64, f64) -> f64 + Copy + Send + Sync + 'static,
) {
    engine
        .register_fn(op, move |a: &mut T, b: T| combine(op, a, b, f))
        .register_fn(op, move |a: &mut T, s: f64| map(a.clone(), |x| f(x, s)))
        .register_fn(op, move |a: &mut T, s: INT| {
            map(a.clone(), |x| f(x, s as f64))
        })
        .register_fn(op, move |s: f64, a: T| map(a, |x| f(s, x)))
        .register_fn(op, move |s: INT, a: T| map(a, |x| f(s as f64, x)));
}

/// Registers `+ - * /`, unary `-`, `==` and `!=` for `T`.
pub fn register<T: Elementwise>(engine: &mut Engine) {
    register_op::<T>(engine, "+", |x, y| x + y);
    register_op::<T>(engine, "-", |x, y| x - y);
    register_op::<T>(engine, "*", |x, y| x * y);
    register_op::<T>(engine, "/", |x, y| x / y);
    engine
        .register_fn("-", |a: T| map(a, |x| -x))
        .register_fn("==", |a: &mut T, b: T| bitwise_eq(a, &b))
        .register_fn("!=", |a: &mut T, b: T| !bitwise_eq(a, &b));
}
