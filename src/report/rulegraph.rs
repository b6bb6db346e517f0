//! The rule graph drawn in the report: rules (not jobs) as boxes with their job counts, in the
//! layers of [`crate::graph::rulegraph`] from the rules that need no other rule's jobs (top) to
//! the targets (bottom), as inline SVG that flowrun lays out itself: no layout library, nothing
//! fetched. Within a layer, rules are ordered by the mean position of the rules feeding them
//! (one barycentre sweep down the layers), which keeps edges short and seldom crossing in
//! graphs of the size rule graphs have (tens of rules); nothing cleverer is needed.

use std::fmt::Write;

use rustc_hash::FxHashMap;

use crate::report::html::escape;
use crate::report::timeline::Timeline;

const HEIGHT: f64 = 38.0;
const GAP: f64 = 24.0;
const LAYER_GAP: f64 = 46.0;
const MARGIN: f64 = 12.0;

/// How a rule's box looks: a line under its job count, and its fill.
pub struct Look {
    pub line: String,
    pub fill: &'static str,
}

/// A box's width: enough for the longer of its two lines.
fn width(name: &str, line: &str) -> f64 {
    let chars = name.chars().count().max(line.chars().count()) as f64;
    (chars * 7.2 + 24.0).max(90.0)
}

/// Draws `t`'s rule graph; `look` gives each rule's second line and fill.
pub fn svg(out: &mut String, t: &Timeline, look: &dyn Fn(&str) -> Look) {
    let g = &t.rule_graph;
    if g.rules.is_empty() {
        return;
    }
    let index: FxHashMap<_, usize> = g
        .rules
        .iter()
        .enumerate()
        .map(|(i, n)| (n.rule, i))
        .collect();
    let looks: Vec<Look> = t.rule_names.iter().map(|n| look(n)).collect();
    let lines: Vec<String> = g
        .rules
        .iter()
        .zip(&looks)
        .map(|(n, l)| {
            let jobs = if n.jobs == 1 {
                "1 job".to_string()
            } else {
                format!("{} jobs", n.jobs)
            };
            if l.line.is_empty() {
                jobs
            } else {
                format!("{jobs} · {}", l.line)
            }
        })
        .collect();
    let widths: Vec<f64> = t
        .rule_names
        .iter()
        .zip(&lines)
        .map(|(n, l)| width(n, l))
        .collect();
    let layers = g.rules.iter().map(|n| n.layer).max().unwrap_or(0) as usize + 1;
    let mut by_layer: Vec<Vec<usize>> = vec![Vec::new(); layers];
    for (i, n) in g.rules.iter().enumerate() {
        by_layer[n.layer as usize].push(i);
    }
    let span = |layer: &[usize]| {
        layer.iter().map(|&i| widths[i]).sum::<f64>() + GAP * layer.len().saturating_sub(1) as f64
    };
    let total = by_layer.iter().map(|l| span(l)).fold(0.0, f64::max) + 2.0 * MARGIN;
    let mut centre: Vec<Option<f64>> = vec![None; g.rules.len()];
    for layer in &mut by_layer {
        // Each rule under the mean centre of the rules feeding it (those drawn above).
        let key = |i: usize| {
            let fed: Vec<f64> = g
                .edges
                .iter()
                .filter(|(a, b)| index[b] == i && a != b)
                .filter_map(|(a, _)| centre[index[a]])
                .collect();
            (!fed.is_empty()).then(|| fed.iter().sum::<f64>() / fed.len() as f64)
        };
        let mut keyed: Vec<(f64, usize)> = layer
            .iter()
            .map(|&i| (key(i).unwrap_or(f64::MAX), i))
            .collect();
        keyed.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        *layer = keyed.into_iter().map(|(_, i)| i).collect();
        let mut x = (total - span(layer)) / 2.0;
        for &i in layer.iter() {
            centre[i] = Some(x + widths[i] / 2.0);
            x += widths[i] + GAP;
        }
    }
    let top = |i: usize| MARGIN + f64::from(g.rules[i].layer) * (HEIGHT + LAYER_GAP);
    let cx = |i: usize| centre[i].unwrap_or(0.0);
    let height = 2.0 * MARGIN + layers as f64 * (HEIGHT + LAYER_GAP) - LAYER_GAP;
    let _ = writeln!(
        out,
        "<svg class=\"rulegraph\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{total:.0}\" \
         height=\"{height:.0}\" viewBox=\"0 0 {total:.0} {height:.0}\" role=\"img\" \
         aria-label=\"rule graph\">\n<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" \
         refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto\"><path d=\"M0,0 L10,5 \
         L0,10 z\" fill=\"#78909c\"/></marker></defs>"
    );
    for (a, b) in &g.edges {
        let (a, b) = (index[a], index[b]);
        let d = if a == b {
            // A rule whose jobs feed each other: a loop on its right side.
            let x = cx(a) + widths[a] / 2.0;
            let y = top(a);
            format!(
                "M{x:.1},{:.1} C{:.1},{:.1} {:.1},{:.1} {x:.1},{:.1}",
                y + HEIGHT * 0.3,
                x + 28.0,
                y + HEIGHT * 0.1,
                x + 28.0,
                y + HEIGHT * 0.9,
                y + HEIGHT * 0.7
            )
        } else {
            let (x1, y1, x2, y2) = (cx(a), top(a) + HEIGHT, cx(b), top(b));
            let bend = (y2 - y1).abs().max(LAYER_GAP) / 2.0;
            format!(
                "M{x1:.1},{y1:.1} C{x1:.1},{:.1} {x2:.1},{:.1} {x2:.1},{y2:.1}",
                y1 + bend,
                y2 - bend
            )
        };
        let _ = writeln!(
            out,
            "<path class=\"edge\" d=\"{d}\" marker-end=\"url(#arrow)\"/>"
        );
    }
    for (i, name) in t.rule_names.iter().enumerate() {
        let (x, y) = (cx(i) - widths[i] / 2.0, top(i));
        let _ = writeln!(
            out,
            "<g><title>{name}: {line}</title><rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{:.1}\" \
             height=\"{HEIGHT}\" rx=\"6\" fill=\"{}\" class=\"rule\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" class=\"rname\">{name}</text>\
             <text x=\"{:.1}\" y=\"{:.1}\" class=\"rjobs\">{line}</text></g>",
            widths[i],
            looks[i].fill,
            cx(i),
            y + 16.0,
            cx(i),
            y + 31.0,
            name = escape(name),
            line = escape(&lines[i]),
        );
    }
    out.push_str("</svg>\n");
}
