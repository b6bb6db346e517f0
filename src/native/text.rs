//! Text and JSON file helpers for Rhai. Reads are allowed at definition time; writes are
//! effects, refused until jobs run, and atomic.

use rhai::{Dynamic, Engine, EvalAltResult, Position};

use super::atomic::write_atomic;
use crate::sandbox::check_effect;

type Res<T> = Result<T, Box<EvalAltResult>>;

/// A runtime error naming the operation and the path.
pub fn io_error(op: &str, path: &str, err: impl std::fmt::Display) -> Box<EvalAltResult> {
    Box::new(EvalAltResult::ErrorRuntime(
        format!("{op} `{path}`: {err}").into(),
        Position::NONE,
    ))
}

fn read_text(path: &str) -> Res<String> {
    crate::sandbox::reading(std::path::Path::new(path));
    std::fs::read_to_string(path).map_err(|e| io_error("cannot read", path, e))
}

fn read_lines(path: &str) -> Res<rhai::Array> {
    Ok(read_text(path)?
        .lines()
        .map(|l| Dynamic::from(l.to_string()))
        .collect())
}

fn write_text(path: &str, text: &str) -> Res<()> {
    check_effect("write_text")?;
    write_atomic(path, text.as_bytes()).map_err(|e| io_error("cannot write", path, e))
}

fn write_lines(path: &str, lines: rhai::Array) -> Res<()> {
    check_effect("write_lines")?;
    let mut text = String::new();
    for line in lines {
        text.push_str(&line.to_string());
        text.push('\n');
    }
    write_atomic(path, text.as_bytes()).map_err(|e| io_error("cannot write", path, e))
}

fn read_json(path: &str) -> Res<Dynamic> {
    let value: serde_json::Value = serde_json::from_str(&read_text(path)?)
        .map_err(|e| io_error("cannot parse JSON in", path, e))?;
    rhai::serde::to_dynamic(value)
}

fn write_json(path: &str, value: Dynamic) -> Res<()> {
    check_effect("write_json")?;
    let json: serde_json::Value = rhai::serde::from_dynamic(&value)?;
    let mut text =
        serde_json::to_string_pretty(&json).map_err(|e| io_error("cannot encode", path, e))?;
    text.push('\n');
    write_atomic(path, text.as_bytes()).map_err(|e| io_error("cannot write", path, e))
}

fn file_exists(path: &str) -> bool {
    crate::sandbox::reading(std::path::Path::new(path));
    std::path::Path::new(path).exists()
}

/// Registers the text helpers.
pub fn register(engine: &mut Engine) {
    engine
        .register_fn("read_text", read_text)
        .register_fn("read_lines", read_lines)
        .register_fn("write_text", write_text)
        .register_fn("write_lines", write_lines)
        .register_fn("read_json", read_json)
        .register_fn("write_json", write_json)
        .register_fn("file_exists", file_exists);
}
