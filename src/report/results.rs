//! The report's results: the outputs marked with `report(path, caption)` of every job in the
//! graph, those that are up to date included (the report is about results, not only about the
//! run), grouped by category and shown in the page itself wherever that keeps it one small,
//! self-contained file.
//!
//! What is embedded, and the caps that keep a page small: images (PNG, JPEG, GIF, SVG, WebP)
//! up to [`IMAGE_BYTES`] each as `data:` URIs; CSV and TSV files as tables of their first
//! [`TABLE_ROWS`] rows, read from at most their first [`TABLE_BYTES`]; other text up to
//! [`TEXT_BYTES`]. Once [`BUDGET`] bytes of files have gone into the page, the rest is linked.
//! HTML and PDF files, binary files, directories and whatever is over a cap are linked by a
//! path relative to the report, with their size: nothing is fetched when the page opens.

use std::fmt::Write;
use std::io::Read;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use rustc_hash::FxHashMap;

use crate::graph::dag::{Dag, JobId, JobLabel};
use crate::report::html::escape;
use crate::report::timeline::Timeline;
use crate::rules::registry::Rules;

/// The largest image embedded.
pub const IMAGE_BYTES: u64 = 4 << 20;
/// Rows of a CSV or TSV file shown, besides its first (header) row.
pub const TABLE_ROWS: usize = 50;
/// Bytes of a CSV or TSV file read for its table.
pub const TABLE_BYTES: u64 = 1 << 20;
/// Bytes of a text file shown.
pub const TEXT_BYTES: u64 = 32 << 10;
/// Bytes of files embedded in one page, all results together.
pub const BUDGET: u64 = 16 << 20;
/// Results listed; a graph with more says so and lists the first ones.
pub const MAX_RESULTS: usize = 1000;

/// One output marked for the report, of one job.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The heading it is shown under: its `category`, else its rule's name.
    pub category: String,
    pub job: JobId,
    pub label: String,
    pub path: String,
    /// The caption's text, with the job's wildcard values filled in.
    pub caption: Option<String>,
}

/// The marked outputs of every job of `dag`, in the graph's order.
pub fn collect(rules: &Rules, dag: &Dag) -> Vec<Entry> {
    let marked = |r: &crate::rules::registry::Rule| r.outputs.iter().any(|o| o.report.is_some());
    if !rules.iter().any(marked) {
        return Vec::new();
    }
    let mut files: FxHashMap<String, String> = FxHashMap::default();
    let mut out = Vec::new();
    for &id in dag.order() {
        let job = dag.job(id);
        let rule = rules.get(job.rule);
        for (decl, file) in rule.outputs.iter().zip(&job.outputs) {
            let Some(mark) = &decl.report else { continue };
            let caption = mark.caption.as_ref().map(|c| {
                let mut text = files
                    .entry(c.clone())
                    .or_insert_with(|| caption_text(c))
                    .clone();
                for (name, value) in job.wildcards.iter() {
                    text = text.replace(&format!("{{{name}}}"), value);
                }
                text
            });
            out.push(Entry {
                category: mark.category.clone().unwrap_or_else(|| rule.name.clone()),
                job: id,
                label: JobLabel(rule, job).to_string(),
                path: file.path.clone(),
                caption,
            });
        }
    }
    out
}

/// A caption as given: the text of the file it names, if it names one, else itself.
fn caption_text(caption: &str) -> String {
    let path = Path::new(caption);
    if caption.contains('\n') || !path.is_file() {
        return caption.to_string();
    }
    match read_start(path, TEXT_BYTES) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).trim_end().to_string(),
        Err(_) => caption.to_string(),
    }
}

fn read_start(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(limit)
        .read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// The "Results" section: one figure per entry, under a heading per category (in the order
/// their first result appears in the graph). `report_dir` is where the page is written, which
/// links are relative to.
pub fn section(out: &mut String, t: &Timeline, report_dir: &Path) {
    if t.results.is_empty() {
        return;
    }
    out.push_str("<h2>Results</h2>\n");
    let mut categories: Vec<&str> = Vec::new();
    for e in &t.results {
        if !categories.contains(&e.category.as_str()) {
            categories.push(&e.category);
        }
    }
    let mut budget = BUDGET;
    let mut shown = 0;
    for category in categories {
        if shown == MAX_RESULTS {
            break;
        }
        let _ = writeln!(out, "<h3>{}</h3>", escape(category));
        for e in t.results.iter().filter(|e| e.category == category) {
            if shown == MAX_RESULTS {
                break;
            }
            shown += 1;
            let status = match t.index.get(&e.job).map(|&i| t.rows[i].status) {
                None => "up to date",
                Some("ok") => "made in this run",
                Some(other) => other,
            };
            figure(out, e, status, report_dir, &mut budget);
        }
    }
    if shown < t.results.len() {
        let _ = writeln!(
            out,
            "<p class=\"note\">{} results: the first {MAX_RESULTS} are shown.</p>",
            t.results.len()
        );
    }
}

fn figure(out: &mut String, e: &Entry, status: &str, report_dir: &Path, budget: &mut u64) {
    let meta = std::fs::metadata(&e.path);
    let size = match &meta {
        Ok(m) if m.is_dir() => "a directory".to_string(),
        Ok(m) => crate::usage::bytes(m.len()),
        Err(_) => "not there".to_string(),
    };
    let dir = matches!(&meta, Ok(m) if m.is_dir());
    let _ = writeln!(
        out,
        "<figure class=\"result\"><figcaption><a href=\"{}{}\">{}</a> · {} · {status} · {size}\
         </figcaption>",
        href(report_dir, &e.path),
        if dir { "/" } else { "" },
        escape(&e.path),
        escape(&e.label),
    );
    if let Some(c) = &e.caption {
        let _ = writeln!(out, "<p class=\"caption\">{}</p>", escape(c));
    }
    match meta {
        Ok(m) if m.is_file() => body(out, Path::new(&e.path), m.len(), budget),
        _ => {}
    }
    out.push_str("</figure>\n");
}

/// How a file of this extension is shown.
enum Shown {
    Image(&'static str),
    Table(u8),
    Linked,
    Text,
}

fn shown_as(path: &Path) -> Shown {
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "png" => Shown::Image("image/png"),
        "jpg" | "jpeg" => Shown::Image("image/jpeg"),
        "gif" => Shown::Image("image/gif"),
        "svg" => Shown::Image("image/svg+xml"),
        "webp" => Shown::Image("image/webp"),
        "csv" => Shown::Table(b','),
        "tsv" => Shown::Table(b'\t'),
        "html" | "htm" | "pdf" => Shown::Linked,
        _ => Shown::Text,
    }
}

/// The file itself, where the caps allow; else a note why it is only linked.
fn body(out: &mut String, path: &Path, size: u64, budget: &mut u64) {
    let kind = shown_as(path);
    let needs = match kind {
        Shown::Image(_) if size > IMAGE_BYTES => {
            return note(
                out,
                &format!(
                    "larger than {} and not embedded; the link opens it",
                    crate::usage::bytes(IMAGE_BYTES)
                ),
            )
        }
        Shown::Image(_) => size,
        Shown::Table(_) => size.min(TABLE_BYTES),
        Shown::Text => size.min(TEXT_BYTES),
        Shown::Linked => return,
    };
    if needs > *budget {
        return note(
            out,
            &format!(
                "not embedded: the page already holds {} of results; the link opens it",
                crate::usage::bytes(BUDGET - *budget)
            ),
        );
    }
    let Ok(bytes) = read_start(path, needs) else {
        return note(out, "cannot be read");
    };
    *budget -= bytes.len() as u64;
    let whole = bytes.len() as u64 == size;
    match kind {
        Shown::Image(mime) => {
            let _ = writeln!(
                out,
                "<img alt=\"{}\" src=\"data:{mime};base64,{}\">",
                escape(&path.to_string_lossy()),
                base64::engine::general_purpose::STANDARD.encode(&bytes)
            );
        }
        Shown::Table(delimiter) => table(out, &bytes, delimiter, whole, size),
        Shown::Text => text(out, &bytes, whole, size),
        Shown::Linked => {}
    }
}

fn note(out: &mut String, text: &str) {
    let _ = writeln!(out, "<p class=\"note\">{text}</p>");
}

/// The first rows of a CSV or TSV file, the first one as the header.
fn table(out: &mut String, bytes: &[u8], delimiter: u8, whole: bool, size: u64) {
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    let mut rows = Vec::new();
    let mut total = 0usize;
    for record in reader.byte_records() {
        let Ok(record) = record else { break };
        total += 1;
        if rows.len() <= TABLE_ROWS {
            rows.push(record);
        }
    }
    if !whole && total == rows.len() {
        // The last row read may be cut short.
        rows.pop();
    }
    out.push_str("<table class=\"result\">\n");
    for (i, row) in rows.iter().enumerate() {
        let cell = if i == 0 { "th" } else { "td" };
        out.push_str("<tr>");
        for field in row {
            let _ = write!(
                out,
                "<{cell}>{}</{cell}>",
                escape(&String::from_utf8_lossy(field))
            );
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n");
    let data = rows.len().saturating_sub(1);
    if whole && total > rows.len() {
        note(
            out,
            &format!("first {data} of {} rows", total.saturating_sub(1)),
        );
    } else if !whole {
        note(
            out,
            &format!(
                "first {data} rows; the file is {}",
                crate::usage::bytes(size)
            ),
        );
    }
}

/// A text file's start, or a note that it is binary.
fn text(out: &mut String, bytes: &[u8], whole: bool, size: u64) {
    let shown = match std::str::from_utf8(bytes) {
        Ok(s) => s,
        // Cut inside a character at the end of what was read.
        Err(e) if e.error_len().is_none() && !whole => {
            std::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or_default()
        }
        Err(_) => return note(out, "not text; the link opens it"),
    };
    if shown.contains('\0') {
        return note(out, "not text; the link opens it");
    }
    let _ = writeln!(out, "<pre class=\"result\">{}</pre>", escape(shown));
    if !whole {
        note(
            out,
            &format!(
                "the first {} of {}",
                crate::usage::bytes(TEXT_BYTES),
                crate::usage::bytes(size)
            ),
        );
    }
}

/// `path` (relative to the working directory) as a link from a page in `report_dir`:
/// relative, so the page and its results can move together, and percent-encoded.
fn href(report_dir: &Path, path: &str) -> String {
    let target = std::path::absolute(path).unwrap_or_else(|_| PathBuf::from(path));
    let from: Vec<_> = report_dir.components().collect();
    let to: Vec<_> = target.components().collect();
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut rel = PathBuf::new();
    for _ in common..from.len() {
        rel.push("..");
    }
    for c in &to[common..] {
        rel.push(c);
    }
    let mut encoded = String::new();
    for b in rel.to_string_lossy().bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            encoded.push(b as char);
        } else {
            let _ = write!(encoded, "%{b:02X}");
        }
    }
    encoded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_relative_to_the_report_and_encoded() {
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(href(&cwd, "plots/a b#1.png"), "plots/a%20b%231.png");
        assert_eq!(
            href(&cwd.join("out/report"), "plots/a.png"),
            "../../plots/a.png"
        );
    }

    #[test]
    fn tables_show_their_first_rows_and_say_so() {
        let csv: String = (0..120).map(|i| format!("{i},x{i}\n")).collect();
        let mut out = String::new();
        table(&mut out, csv.as_bytes(), b',', true, csv.len() as u64);
        assert_eq!(out.matches("<tr>").count(), TABLE_ROWS + 1);
        assert!(out.contains("<th>0</th><th>x0</th>"), "{out}");
        assert!(out.contains("first 50 of 119 rows"), "{out}");
        // Cut short: the partial last row is dropped.
        let mut out = String::new();
        table(&mut out, b"a\tb\n1\t2\n3\t4", b'\t', false, 10_000);
        assert!(
            out.contains("<td>1</td><td>2</td>") && !out.contains("<td>3</td>"),
            "{out}"
        );
        assert!(out.contains("first 1 rows; the file is 9.77 KiB"), "{out}");
    }

    #[test]
    fn text_is_escaped_and_binary_is_not_shown() {
        let mut out = String::new();
        text(&mut out, b"<b>hi</b>", true, 9);
        assert!(out.contains("&lt;b&gt;hi&lt;/b&gt;"), "{out}");
        let mut out = String::new();
        text(&mut out, b"\x00\x01\xff", true, 3);
        assert!(out.contains("not text") && !out.contains("<pre"), "{out}");
    }
}
