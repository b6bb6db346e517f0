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
        .all(|(k, v)| row.get(k).is_some_and(|x| x.to_string() == v.to_string()))
}

fn describe(query: &Map) -> String {
    let parts: Vec<String> = query.iter().map(|(k, v)| format!("{k} = {v}")).collect();
    parts.join(", ")
}

/// `lookup(table, query)`: the one row matching every entry of `query`.
pub fn lookup_row(table: Array, query: Map) -> Res<Map> {
    let mut found = table
        .into_iter()
        .filter_map(|row| row.try_cast::<Map>())
        .filter(|row| matches(row, &query));
    match (found.next(), found.next()) {
        (Some(row), None) => Ok(row),
        (None, _) => Err(runtime(format!("lookup: no row has {}", describe(&query)))),
        (Some(_), Some(_)) => Err(runtime(format!(
            "lookup: {} rows have {}; add a column to the query to pick one",
            2 + found.count(),
            describe(&query)
        ))),
    }
}

/// `lookup(table, query, column)`: the value of `column` in the one row matching `query`.
pub fn lookup_value(table: Array, query: Map, column: &str) -> Res<Dynamic> {
    let row = lookup_row(table, query)?;
    let known: Vec<String> = row.keys().map(|k| format!("`{k}`")).collect();
    row.get(column).cloned().ok_or_else(|| {
        runtime(format!(
            "lookup: the table has no column `{column}`; its columns are {}",
            known.join(", ")
        ))
    })
}
