//! `read_table(path)` and `lookup(table, query, column)`: sample sheets as arrays of maps.
//!
//! The parsing is [`crate::native::table`]'s (the `csv` crate); here a table becomes what a
//! script indexes and filters: one map per row, keyed by the header. `lookup` is the one-line
//! answer to "the `fastq` of the row whose `sample` is `w.s`", with an error that says which
//! query matched no row, or several.

use std::path::Path;

use rhai::{Array, Dynamic, EvalAltResult, Map, Position};

use crate::native::table::{read_table, separator_for};

type Res<T> = Result<T, Box<EvalAltResult>>;

fn runtime(msg: impl Into<String>) -> Box<EvalAltResult> {
    Box::new(EvalAltResult::ErrorRuntime(
        msg.into().into(),
        Position::NONE,
    ))
}

/// The table at `path` as an array of maps, one per row.
pub fn read(path: &Path, sep: u8) -> Res<Array> {
    crate::sandbox::reading(path);
    let table = read_table(path, sep).map_err(|e| runtime(format!("read_table: {e}")))?;
    let keys: Vec<rhai::Identifier> = table.header.iter().map(|h| h.as_str().into()).collect();
    Ok(table
        .rows
        .into_iter()
        .map(|row| {
            let map: Map = keys
                .iter()
                .cloned()
                .zip(row.into_iter().map(Dynamic::from))
                .collect();
            Dynamic::from(map)
        })
        .collect())
}

/// The separator `read_table(path, #{ sep: "\t" })` asks for, else the one of the extension.
pub fn separator_option(path: &str, options: &Map) -> Res<u8> {
    for key in options.keys() {
        if key.as_str() != "sep" {
            return Err(runtime(format!(
                "read_table: unknown option `{key}`; the option is `sep`"
            )));
        }
    }
    let Some(sep) = options.get("sep") else {
        return Ok(separator_for(Path::new(path)));
    };
    let text = sep.to_string();
    match text.as_bytes() {
        [b] if sep.is_string() || sep.is_char() => Ok(*b),
        _ => Err(runtime(format!(
            "read_table: `sep` must be one ASCII character such as \",\" or \"\\t\", not {sep:?}"
        ))),
    }
}

/// Whether `row` has every `(key, value)` of `query`, compared as text.
fn matches(row: &Map, query: &Map) -> bool {
    query
        .iter()
        .all(|(k, v)| row.get(k).is_some_and(|x| same_text(x, v)))
}

/// Whether two values read the same as text (`1` and `"1"` do); strings are compared without
/// making copies, as a lookup compares every row.
fn same_text(a: &Dynamic, b: &Dynamic) -> bool {
    match (
        a.read_lock::<rhai::ImmutableString>(),
        b.read_lock::<rhai::ImmutableString>(),
    ) {
        (Some(a), Some(b)) => a.as_str() == b.as_str(),
        _ => a.to_string() == b.to_string(),
    }
}

fn describe(query: &Map) -> String {
    let parts: Vec<String> = query.iter().map(|(k, v)| format!("{k} = {v}")).collect();
    parts.join(", ")
}

/// `lookup(table, query)`: the one row matching every entry of `query`. The table is taken by
/// reference, so a table held in a plain variable is not copied for each lookup. (A table a
/// closure captured still is: Rhai copies a captured value into every call that receives it;
/// docs/language.md shows how to index such a sheet once instead.)
pub fn lookup_row(table: &mut Array, query: Map) -> Res<Map> {
    find_row(table, &query)?
        .ok_or_else(|| runtime(format!("lookup: no row has {}", describe(&query))))
}

/// The one row of `table` matching `query`, if any; several are an error.
fn find_row(table: &Array, query: &Map) -> Res<Option<Map>> {
    let mut found = table
        .iter()
        .filter_map(|row| row.read_lock::<Map>())
        .filter(|row| matches(row, query));
    match (found.next(), found.next()) {
        (Some(row), None) => Ok(Some(row.clone())),
        (None, _) => Ok(None),
        (Some(_), Some(_)) => Err(runtime(format!(
            "lookup: {} rows have {}; add a column to the query to pick one",
            2 + found.count(),
            describe(query)
        ))),
    }
}

/// `lookup(table, query, column)`: the value of `column` in the one row matching `query`.
pub fn lookup_value(table: &mut Array, query: Map, column: &str) -> Res<Dynamic> {
    let row = lookup_row(table, query)?;
    value_of(&row, column)
}

/// `lookup(table, query, column, default)`: as [`lookup_value`], but `default` when no row
/// matches (Snakemake's `lookup(..., default=...)`).
pub fn lookup_or(table: &mut Array, query: Map, column: &str, default: Dynamic) -> Res<Dynamic> {
    match find_row(table, &query)? {
        Some(row) => value_of(&row, column),
        None => Ok(default),
    }
}

fn value_of(row: &Map, column: &str) -> Res<Dynamic> {
    let known: Vec<String> = row.keys().map(|k| format!("`{k}`")).collect();
    row.get(column).cloned().ok_or_else(|| {
        runtime(format!(
            "lookup: the table has no column `{column}`; its columns are {}",
            known.join(", ")
        ))
    })
}
