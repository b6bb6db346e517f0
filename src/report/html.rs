//! `--report FILE.html`: one self-contained page (inline CSS and SVG; no scripts, fonts or
//! anything else from the network) with a summary, the rule graph ([`super::rulegraph`]), the
//! outputs marked with `report()` ([`super::results`]), a timeline, per-rule tables with a
//! chart of what each rule cost (peak memory, CPU time) and a table of jobs.
//!
//! Every string a user controls (rule names, wildcards, paths in reasons, error messages) goes
//! through [`escape`]. Large runs stay small: up to [`MAX_BARS`] jobs get one bar each in the
//! timeline; beyond that each lane is cut into [`COLUMNS`] time slots, and runs of adjacent
//! slots with the same worst status become one bar whose title counts its jobs. The job table
//! lists every job up to [`MAX_ROWS`]; beyond that it lists the failed and interrupted jobs and
//! the longest others, and the per-rule table and the trace (`--trace`) have the rest.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::report::events::{Event, Sink, Stamp};
use crate::report::timeline::{Row, Timeline};
use crate::report::{results, rulegraph};

/// The report as a sink of events: the timeline gathered so far, rendered to `path` at the end
/// of each run (in watch mode, each pass).
pub struct Report {
    pub path: PathBuf,
    pub timeline: Timeline,
}

impl Sink for Report {
    fn take(&mut self, event: &Event<'_>, stamp: Stamp, origin_utc: SystemTime) {
        self.timeline.take(event, stamp, origin_utc);
        if matches!(event, Event::RunEnd { .. }) {
            // Atomically, as every file flowrun writes: watch mode rewrites the report after
            // each pass, and a browser reloading it must not get half a page.
            let html = render(&self.timeline, &page_dir(&self.path));
            if let Err(e) = crate::native::atomic::write_atomic(&self.path, html.as_bytes()) {
                crate::diagnostic::warn(&format!(
                    "cannot write the report `{}`: {e}",
                    self.path.display()
                ));
            }
        }
    }
}

/// The directory a page at `path` is in, absolute: links to results are relative to it.
fn page_dir(path: &Path) -> PathBuf {
    let page = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    page.parent().map(Path::to_path_buf).unwrap_or_default()
}

/// Most jobs drawn one bar each.
pub const MAX_BARS: usize = 2000;
/// Time slots per lane when bars are aggregated.
pub const COLUMNS: usize = 400;
/// Most rows in the job table.
pub const MAX_ROWS: usize = 2000;
/// Jobs of a large run listed besides the failed ones: the longest.
const LONGEST: usize = 200;

const CHART_WIDTH: f64 = 1000.0;
const LANE_HEIGHT: f64 = 18.0;
const LEFT: f64 = 40.0;

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// How bad a status is; the worst one colours an aggregated bar.
fn severity(status: &str) -> u8 {
    match status {
        "failed" => 4,
        "interrupted" => 3,
        "ok" => 2,
        "skipped" => 1,
        _ => 0,
    }
}

fn colour(status: &str) -> &'static str {
    match status {
        "ok" => "#43a047",
        "failed" => "#e53935",
        "interrupted" => "#fb8c00",
        "skipped" => "#90a4ae",
        "blocked" => "#cfd8dc",
        _ => "#ffffff",
    }
}

const STATUSES: [&str; 6] = [
    "ok",
    "failed",
    "interrupted",
    "skipped",
    "blocked",
    "not started",
];

fn brief(secs: f64) -> String {
    crate::report::progress::brief(std::time::Duration::from_secs_f64(secs.max(0.0)))
}

/// A round tick spacing giving about eight ticks over `span` seconds.
fn tick_step(span: f64) -> f64 {
    let raw = (span / 8.0).max(1e-3);
    let magnitude = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|step| *step >= raw)
        .unwrap_or(10.0 * magnitude)
}

/// A tick's label: as many decimals as the spacing `step` needs (`0.05s`, `0.10s` for a
/// sub-second run, where one decimal would read `0.0s` at every tick), else [`brief`].
fn tick_label(secs: f64, step: f64) -> String {
    if step >= 0.1 {
        return brief(secs);
    }
    let decimals = (-step.log10()).ceil().max(1.0) as usize;
    format!("{secs:.decimals$}s")
}

/// The SVG Gantt chart: one lane per concurrently running job.
fn timeline_svg(out: &mut String, t: &Timeline, wall: f64) {
    let span = wall.max(1e-3);
    let x = |secs: f64| LEFT + secs / span * CHART_WIDTH;
    let height = f64::from(t.lanes.max(1)) * LANE_HEIGHT + 24.0;
    let _ = writeln!(
        out,
        "<svg class=\"timeline\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{height}\" \
         viewBox=\"0 0 {} {height}\" role=\"img\" aria-label=\"timeline\">",
        LEFT + CHART_WIDTH + 10.0,
        LEFT + CHART_WIDTH + 10.0
    );
    for lane in 0..t.lanes {
        let y = f64::from(lane) * LANE_HEIGHT;
        let _ = writeln!(
            out,
            "<text x=\"{}\" y=\"{}\" class=\"lane\">{}</text>",
            LEFT - 6.0,
            y + LANE_HEIGHT * 0.7,
            lane + 1
        );
    }
    let axis = f64::from(t.lanes.max(1)) * LANE_HEIGHT;
    let step = tick_step(span);
    let mut tick = 0.0;
    while tick <= span + 1e-9 {
        let _ = writeln!(
            out,
            "<line x1=\"{0:.1}\" x2=\"{0:.1}\" y1=\"0\" y2=\"{axis}\" class=\"grid\"/>\
             <text x=\"{0:.1}\" y=\"{1}\" class=\"tick\">{2}</text>",
            x(tick),
            axis + 16.0,
            tick_label(tick, step)
        );
        tick += step;
    }
    let started: Vec<&Row> = t.rows.iter().filter(|r| r.lane.is_some()).collect();
    if started.len() <= MAX_BARS {
        for r in started {
            let (Some(start), Some(lane)) = (r.start, r.lane) else {
                continue;
            };
            let _ = writeln!(
                out,
                "<rect x=\"{:.2}\" y=\"{:.1}\" width=\"{:.2}\" height=\"{:.1}\" fill=\"{}\">\
                 <title>{} — {} — {}</title></rect>",
                x(start),
                f64::from(lane) * LANE_HEIGHT + 2.0,
                (r.duration / span * CHART_WIDTH).max(1.0),
                LANE_HEIGHT - 4.0,
                colour(r.status),
                escape(&r.label),
                r.status,
                brief(r.duration)
            );
        }
    } else {
        aggregated_bars(out, &started, t.lanes, span);
    }
    out.push_str("</svg>\n");
}

/// Bars for a run too large to draw job by job: per lane, runs of time slots with the same worst
/// status, each with the number of jobs that started in it.
fn aggregated_bars(out: &mut String, rows: &[&Row], lanes: u32, span: f64) {
    let slot = span / COLUMNS as f64;
    // Per lane and slot: worst status and how many jobs started there.
    let mut grid = vec![(0u8, "", 0usize); lanes as usize * COLUMNS];
    for r in rows {
        let (Some(start), Some(lane)) = (r.start, r.lane) else {
            continue;
        };
        let first = ((start / slot) as usize).min(COLUMNS - 1);
        let last = (((start + r.duration) / slot) as usize).clamp(first, COLUMNS - 1);
        for c in first..=last {
            let cell = &mut grid[lane as usize * COLUMNS + c];
            if cell.1.is_empty() || severity(r.status) > cell.0 {
                *cell = (severity(r.status), r.status, cell.2);
            }
        }
        grid[lane as usize * COLUMNS + first].2 += 1;
    }
    for lane in 0..lanes as usize {
        let cells = &grid[lane * COLUMNS..(lane + 1) * COLUMNS];
        let mut c = 0;
        while c < COLUMNS {
            let status = cells[c].1;
            let mut end = c;
            let mut jobs = 0;
            while end < COLUMNS && cells[end].1 == status {
                jobs += cells[end].2;
                end += 1;
            }
            if !status.is_empty() {
                let _ = writeln!(
                    out,
                    "<rect x=\"{:.2}\" y=\"{:.1}\" width=\"{:.2}\" height=\"{:.1}\" fill=\"{}\">\
                     <title>{jobs} job(s), worst {status}, {}–{}</title></rect>",
                    LEFT + c as f64 / COLUMNS as f64 * CHART_WIDTH,
                    lane as f64 * LANE_HEIGHT + 2.0,
                    (end - c) as f64 / COLUMNS as f64 * CHART_WIDTH,
                    LANE_HEIGHT - 4.0,
                    colour(status),
                    brief(c as f64 * slot),
                    brief(end as f64 * slot)
                );
            }
            c = end;
        }
    }
}

/// Per rule: jobs, jobs per status, total seconds, and what its jobs cost.
#[derive(Default)]
struct RuleSum<'t> {
    jobs: usize,
    statuses: BTreeMap<&'t str, usize>,
    secs: f64,
    /// Jobs that reported a cost, and its sum (peak RSS: the largest job's).
    measured: usize,
    cpu: f64,
    max_rss: Option<u64>,
    /// Whether `max_rss` is only a bound for some job (see [`crate::usage`]).
    rss_bounded: bool,
    read: Option<u64>,
    written: Option<u64>,
}

fn rule_sums(t: &Timeline) -> BTreeMap<&str, RuleSum<'_>> {
    let mut by_rule: BTreeMap<&str, RuleSum<'_>> = BTreeMap::new();
    for r in &t.rows {
        let e = by_rule.entry(&r.rule).or_default();
        e.jobs += 1;
        *e.statuses.entry(r.status).or_default() += 1;
        e.secs += r.duration;
        if let Some(u) = &r.usage {
            e.measured += 1;
            e.cpu += u.cpu().as_secs_f64();
            e.max_rss = e.max_rss.max(u.max_rss.or(u.rss_at_most));
            e.rss_bounded |= u.max_rss.is_none() && u.rss_at_most.is_some();
            if let Some(io) = u.io {
                e.read = Some(e.read.unwrap_or(0) + io.read);
                e.written = Some(e.written.unwrap_or(0) + io.written);
            }
        }
    }
    by_rule
}

fn figure(bytes: Option<u64>) -> String {
    bytes.map(crate::usage::bytes).unwrap_or_default()
}

/// A rule's peak RSS, `≤` marking a bound.
fn rss(sum: &RuleSum<'_>) -> String {
    let at_most = if sum.rss_bounded { "≤ " } else { "" };
    sum.max_rss
        .map(|b| format!("{at_most}{}", crate::usage::bytes(b)))
        .unwrap_or_default()
}

fn rule_table(out: &mut String, by_rule: &BTreeMap<&str, RuleSum<'_>>) {
    out.push_str(
        "<h2>Rules</h2>\n<table>\n<tr><th>rule</th><th>jobs</th><th>statuses</th>\
         <th>total time</th><th>mean</th><th>CPU time</th><th>peak RSS (largest job)</th>\
         <th>read</th><th>written</th></tr>\n",
    );
    for (rule, sum) in by_rule {
        let statuses: Vec<String> = sum
            .statuses
            .iter()
            .map(|(s, n)| format!("{n} {s}"))
            .collect();
        let cpu = if sum.measured > 0 {
            brief(sum.cpu)
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td class=\"num\">{}</td><td>{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{cpu}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            escape(rule),
            sum.jobs,
            statuses.join(", "),
            brief(sum.secs),
            brief(sum.secs / sum.jobs as f64),
            rss(sum),
            figure(sum.read),
            figure(sum.written),
        );
    }
    out.push_str("</table>\n");
}

/// Two bar charts side by side, one row per rule that reported costs: its largest job's peak
/// RSS and its jobs' CPU time.
fn cost_svg(out: &mut String, by_rule: &BTreeMap<&str, RuleSum<'_>>) {
    let measured: Vec<(&str, &RuleSum<'_>)> = by_rule
        .iter()
        .filter(|(_, s)| s.measured > 0)
        .map(|(r, s)| (*r, s))
        .collect();
    if measured.is_empty() {
        return;
    }
    const NAME: f64 = 160.0;
    const BAR: f64 = 300.0;
    const GAP: f64 = 130.0;
    let height = measured.len() as f64 * LANE_HEIGHT + 24.0;
    let width = NAME + 2.0 * (BAR + GAP);
    let _ = writeln!(
        out,
        "<h2>Cost per rule</h2>\n<svg class=\"costs\" xmlns=\"http://www.w3.org/2000/svg\" \
         width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" role=\"img\" \
         aria-label=\"peak memory and CPU time per rule\">\n\
         <text x=\"{NAME}\" y=\"12\" class=\"head\">peak RSS (largest job)</text>\
         <text x=\"{}\" y=\"12\" class=\"head\">CPU time (all jobs)</text>",
        NAME + BAR + GAP
    );
    let top_rss = measured
        .iter()
        .filter_map(|(_, s)| s.max_rss)
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let top_cpu = measured
        .iter()
        .map(|(_, s)| s.cpu)
        .fold(0.0, f64::max)
        .max(1e-6);
    for (i, (rule, sum)) in measured.iter().enumerate() {
        let y = 20.0 + i as f64 * LANE_HEIGHT;
        let _ = writeln!(
            out,
            "<text x=\"{}\" y=\"{:.1}\" class=\"lane\">{}</text>",
            NAME - 6.0,
            y + LANE_HEIGHT * 0.7,
            escape(rule)
        );
        let bars = [
            (
                NAME,
                sum.max_rss.map(|b| b as f64 / top_rss),
                rss(sum),
                "#5c6bc0",
            ),
            (
                NAME + BAR + GAP,
                Some(sum.cpu / top_cpu),
                brief(sum.cpu),
                "#26a69a",
            ),
        ];
        for (x, share, text, fill) in bars {
            let Some(share) = share else { continue };
            let w = (share * BAR).max(1.0);
            let _ = writeln!(
                out,
                "<rect x=\"{x}\" y=\"{:.1}\" width=\"{w:.1}\" height=\"{:.1}\" fill=\"{fill}\">\
                 <title>{}: {text}</title></rect><text x=\"{:.1}\" y=\"{:.1}\">{text}</text>",
                y + 2.0,
                LANE_HEIGHT - 4.0,
                escape(rule),
                x + w + 4.0,
                y + LANE_HEIGHT * 0.7
            );
        }
    }
    out.push_str("</svg>\n");
}

fn job_table(out: &mut String, t: &Timeline) {
    let mut rows: Vec<&Row> = t.rows.iter().collect();
    let shown_all = rows.len() <= MAX_ROWS;
    if !shown_all {
        let (mut chosen, mut rest): (Vec<&Row>, Vec<&Row>) = rows
            .into_iter()
            .partition(|r| matches!(r.status, "failed" | "interrupted"));
        rest.sort_by(|a, b| b.duration.total_cmp(&a.duration));
        chosen.extend(rest.into_iter().take(LONGEST));
        rows = chosen;
    }
    out.push_str("<h2>Jobs</h2>\n");
    if !shown_all {
        let _ = writeln!(
            out,
            "<p class=\"note\">{} jobs: listed are the failed and interrupted ones and the {LONGEST} \
             longest others; the trace (<code>--trace</code>) has every job.</p>",
            t.rows.len()
        );
    }
    out.push_str(
        "<table>\n<tr><th>job</th><th>rule</th><th>wildcards</th><th>status</th>\
         <th>start</th><th>duration</th><th>cost</th><th>reasons</th></tr>\n",
    );
    for r in rows {
        let reasons: Vec<String> = r.reasons.iter().map(|s| escape(s)).collect();
        let mut status = format!(
            "<span class=\"dot\" style=\"background:{}\"></span>{}",
            colour(r.status),
            r.status
        );
        if let Some(m) = &r.message {
            let _ = write!(status, "<pre>{}</pre>", escape(m));
        }
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{status}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td>{}</td><td>{}</td></tr>",
            escape(&r.label),
            escape(&r.rule),
            escape(&r.wildcards),
            r.start.map(brief).unwrap_or_default(),
            brief(r.duration),
            r.usage.map(|u| u.to_string()).unwrap_or_default(),
            reasons.join("<br>")
        );
    }
    out.push_str("</table>\n");
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;color:#222}\
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ddd;padding:2px 8px;\
text-align:left;vertical-align:top}th{background:#f5f5f5}.num{text-align:right}\
pre{margin:0;white-space:pre-wrap}.dot{display:inline-block;width:.7em;height:.7em;\
border:1px solid #999;border-radius:50%;margin-right:.4em}.timeline text,.costs text{font-size:11px;\
fill:#555}.head{font-weight:bold}.lane{text-anchor:end}.tick{text-anchor:middle}.grid{stroke:#eee}\
dl{display:grid;grid-template-columns:max-content auto;gap:2px 1em}dt{font-weight:bold}\
dd{margin:0}.note{color:#555}.rulegraph .rule{stroke:#90a4ae}.rulegraph text{text-anchor:middle}\
.rname{font-size:12px;font-weight:bold}.rjobs{font-size:11px;fill:#555}\
.edge{fill:none;stroke:#78909c;stroke-width:1.2}figure.result{margin:1em 0;padding:.5em;\
border:1px solid #ddd}figure.result img{max-width:100%}.caption{white-space:pre-wrap}\
pre.result{max-height:30em;overflow:auto;background:#fafafa}";

/// A rule's box in the rule graph: what its jobs did in this run (`2 ran, 1 failed`), coloured
/// by the worst.
fn rule_look(sums: &BTreeMap<&str, RuleSum<'_>>, rule: &str) -> rulegraph::Look {
    let Some(sum) = sums.get(rule) else {
        return rulegraph::Look {
            line: "up to date".into(),
            fill: "#eceff1",
        };
    };
    let line = sum
        .statuses
        .iter()
        .map(|(s, n)| match *s {
            "ok" => format!("{n} ran"),
            other => format!("{n} {other}"),
        })
        .collect::<Vec<_>>()
        .join(", ");
    let has = |s: &str| sum.statuses.contains_key(s);
    let fill = if has("failed") {
        "#ffcdd2"
    } else if has("interrupted") {
        "#ffe0b2"
    } else if has("ok") {
        "#c8e6c9"
    } else {
        "#eceff1"
    };
    rulegraph::Look { line, fill }
}

/// The whole page; `dir` is the directory it is written to.
pub fn render(t: &Timeline, dir: &Path) -> String {
    let wall = t.wall.unwrap_or_else(|| {
        t.rows
            .iter()
            .filter_map(|r| r.start.map(|s| s + r.duration))
            .fold(0.0, f64::max)
    });
    let mut out = String::with_capacity(16 * 1024 + t.rows.len().min(MAX_ROWS) * 256);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>flowrun report: {}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n\
         <h1>flowrun report</h1>\n<dl>\n",
        escape(&t.workflow)
    );
    let mut item = |k: &str, v: String| {
        let _ = writeln!(out, "<dt>{k}</dt><dd>{v}</dd>");
    };
    item("workflow", escape(&t.workflow));
    item("targets", escape(&t.targets.join(" ")));
    item("started", format!("{} (UTC)", t.started_utc));
    if t.pass > 1 {
        item("watch pass", t.pass.to_string());
    }
    item("wall time", brief(wall));
    item("cores", t.cores.to_string());
    item("planned jobs", t.rows.len().to_string());
    match t.totals {
        Some(x) => {
            item(
                "jobs",
                format!(
                    "{} ran, {} skipped (inputs unchanged), {} failed, {} not run because a job \
                     they need failed",
                    x.ran, x.skipped, x.failed, x.blocked
                ),
            );
            let how = if x.interrupted { " (interrupted)" } else { "" };
            item("exit code", format!("{}{how}", x.exit_code));
        }
        None => item("exit code", "the run did not finish".into()),
    }
    out.push_str("</dl>\n");
    let sums = rule_sums(t);
    if !t.rule_graph.rules.is_empty() {
        out.push_str("<h2>Rule graph</h2>\n");
        rulegraph::svg(&mut out, t, &|rule| rule_look(&sums, rule));
    }
    results::section(&mut out, t, dir);
    out.push_str("<h2>Timeline</h2>\n");
    timeline_svg(&mut out, t, wall);
    out.push_str("<p class=\"note\">");
    for s in STATUSES {
        let _ = write!(
            out,
            "<span class=\"dot\" style=\"background:{}\"></span>{s} ",
            colour(s)
        );
    }
    out.push_str("(skipped and blocked jobs never start and have no bar)</p>\n");
    rule_table(&mut out, &sums);
    cost_svg(&mut out, &sums);
    job_table(&mut out, t);
    out.push_str("</body>\n</html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            escape(r#"<script>alert("x&y")</script> 'a'"#),
            "&lt;script&gt;alert(&quot;x&amp;y&quot;)&lt;/script&gt; &#39;a&#39;"
        );
        assert_eq!(escape("plain/path_1.txt"), "plain/path_1.txt");
    }

    fn row(label: &str, status: &'static str, start: f64, lane: u32) -> Row {
        Row {
            label: label.into(),
            rule: "r<1>".into(),
            wildcards: String::new(),
            reasons: vec!["output `a&b` is missing".into()],
            status,
            message: (status == "failed").then(|| "exit 1: <oops>".to_string()),
            start: Some(start),
            duration: 1.0,
            lane: Some(lane),
            usage: None,
        }
    }

    #[test]
    fn renders_every_job_escaped_with_a_bar_each() {
        let t = Timeline {
            workflow: "wf<&>.rhai".into(),
            cores: 2,
            lanes: 2,
            wall: Some(2.0),
            rows: vec![row("a<b>", "ok", 0.0, 0), row("c", "failed", 0.5, 1)],
            ..Timeline::default()
        };
        let html = render(&t, Path::new("/"));
        assert!(html.contains("wf&lt;&amp;&gt;.rhai"));
        assert!(html.contains("<td>a&lt;b&gt;</td>"));
        assert!(html.contains("exit 1: &lt;oops&gt;"));
        assert!(html.contains("r&lt;1&gt;"));
        assert!(!html.contains("<oops>") && !html.contains("a<b>"));
        assert_eq!(html.matches("<rect").count(), 2);
        assert!(!html.contains("<script"));
    }

    #[test]
    fn large_runs_are_aggregated() {
        let rows: Vec<Row> = (0..10_000)
            .map(|i| row(&format!("j{i}"), "ok", i as f64 * 0.01, (i % 2) as u32))
            .collect();
        let t = Timeline {
            lanes: 2,
            wall: Some(101.0),
            rows,
            ..Timeline::default()
        };
        let html = render(&t, Path::new("/"));
        assert!(html.matches("<rect").count() <= 2 * COLUMNS);
        assert!(html.contains("10000 jobs: listed are"));
        assert!(html.len() < 200_000, "{} bytes", html.len());
    }

    #[test]
    fn sub_second_ticks_read_apart() {
        let step = tick_step(0.3);
        let labels: Vec<String> = (0..7).map(|i| tick_label(i as f64 * step, step)).collect();
        assert_eq!(labels[..3], ["0.00s", "0.05s", "0.10s"]);
        let mut unique = labels.clone();
        unique.dedup();
        assert_eq!(unique, labels, "every tick has its own label");
        assert_eq!(tick_label(2.0, 1.0), "2.0s");
        assert_eq!(tick_label(0.004, 0.001), "0.004s");
    }

    #[test]
    fn ticks_are_round() {
        assert_eq!(tick_step(8.0), 1.0);
        assert_eq!(tick_step(100.0), 20.0);
        assert_eq!(tick_step(0.4), 0.05);
    }
}
