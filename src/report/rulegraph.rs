//! The rule graph drawn in the report: rules (not jobs) as boxes with their job counts, in the
//! layers of [`crate::graph::rulegraph`] from the rules that need no other rule's jobs (top) to
//! the targets (bottom), as inline SVG that flowrun lays out itself: no layout library, nothing
//! fetched. An edge that skips layers gets a waypoint in each layer it passes, which takes a
//! narrow place in that layer as a box would, so it runs beside the boxes rather than behind
//! them. Within a layer, boxes and waypoints are ordered by the mean position of what leads
//! into them (one barycentre sweep down the layers), which keeps edges short and seldom
//! crossing in graphs of the size rule graphs have (tens of rules); nothing cleverer is needed.

use std::fmt::Write;

use rustc_hash::FxHashMap;

use crate::report::html::escape;
use crate::report::timeline::Timeline;

const HEIGHT: f64 = 38.0;
const GAP: f64 = 24.0;
const LAYER_GAP: f64 = 46.0;
const MARGIN: f64 = 12.0;
/// The room an edge takes where it passes a layer.
const WAYPOINT: f64 = 6.0;

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

/// A place in a layer: a rule's box, or a waypoint of an edge that passes the layer on its way
/// to a rule further down (so it is routed beside the boxes, not behind them).
struct Slot {
    layer: usize,
    width: f64,
    /// The slots right above that lead into this one.
    from: Vec<usize>,
    centre: f64,
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
    // Slots 0..n are the rules, in rule order; waypoints follow.
    let mut slots: Vec<Slot> = g
        .rules
        .iter()
        .zip(t.rule_names.iter().zip(&lines))
        .map(|(node, (name, line))| Slot {
            layer: node.layer as usize,
            width: width(name, line),
            from: Vec::new(),
            centre: 0.0,
        })
        .collect();
    // Each edge as the slots it passes through, from its rule to its rule.
    let mut routes: Vec<Vec<usize>> = Vec::new();
    for (a, b) in &g.edges {
        let (a, b) = (index[a], index[b]);
        let mut route = vec![a];
        if slots[b].layer > slots[a].layer {
            for layer in slots[a].layer + 1..slots[b].layer {
                let prev = *route.last().unwrap_or(&a);
                slots.push(Slot {
                    layer,
                    width: WAYPOINT,
                    from: vec![prev],
                    centre: 0.0,
                });
                route.push(slots.len() - 1);
            }
            let prev = *route.last().unwrap_or(&a);
            slots[b].from.push(prev);
        }
        route.push(b);
        routes.push(route);
    }
    let layers = slots.iter().map(|s| s.layer).max().unwrap_or(0) + 1;
    let mut by_layer: Vec<Vec<usize>> = vec![Vec::new(); layers];
    for (i, s) in slots.iter().enumerate() {
        by_layer[s.layer].push(i);
    }
    let span = |slots: &[Slot], layer: &[usize]| {
        layer.iter().map(|&i| slots[i].width).sum::<f64>()
            + GAP * layer.len().saturating_sub(1) as f64
    };
    let total = by_layer.iter().map(|l| span(&slots, l)).fold(0.0, f64::max) + 2.0 * MARGIN;
    for layer in &mut by_layer {
        // Each slot under the mean centre of the slots leading into it (placed above).
        let key = |i: usize| {
            let from = &slots[i].from;
            if from.is_empty() {
                return f64::MAX;
            }
            from.iter().map(|&f| slots[f].centre).sum::<f64>() / from.len() as f64
        };
        let mut keyed: Vec<(f64, usize)> = layer.iter().map(|&i| (key(i), i)).collect();
        keyed.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        *layer = keyed.into_iter().map(|(_, i)| i).collect();
        let mut x = (total - span(&slots, layer)) / 2.0;
        for &i in layer.iter() {
            slots[i].centre = x + slots[i].width / 2.0;
            x += slots[i].width + GAP;
        }
    }
    let top = |i: usize| MARGIN + slots[i].layer as f64 * (HEIGHT + LAYER_GAP);
    let height = 2.0 * MARGIN + layers as f64 * (HEIGHT + LAYER_GAP) - LAYER_GAP;
    let _ = writeln!(
        out,
        "<svg class=\"rulegraph\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{total:.0}\" \
         height=\"{height:.0}\" viewBox=\"0 0 {total:.0} {height:.0}\" role=\"img\" \
         aria-label=\"rule graph\">\n<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" \
         refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto\"><path d=\"M0,0 L10,5 \
         L0,10 z\" fill=\"#78909c\"/></marker></defs>"
    );
    for route in &routes {
        let d = path(&slots, route, &top);
        let _ = writeln!(
            out,
            "<path class=\"edge\" d=\"{d}\" marker-end=\"url(#arrow)\"/>"
        );
    }
    for (i, name) in t.rule_names.iter().enumerate() {
        let (x, y) = (slots[i].centre - slots[i].width / 2.0, top(i));
        let _ = writeln!(
            out,
            "<g><title>{name}: {line}</title><rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{:.1}\" \
             height=\"{HEIGHT}\" rx=\"6\" fill=\"{}\" class=\"rule\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" class=\"rname\">{name}</text>\
             <text x=\"{:.1}\" y=\"{:.1}\" class=\"rjobs\">{line}</text></g>",
            slots[i].width,
            looks[i].fill,
            slots[i].centre,
            y + 16.0,
            slots[i].centre,
            y + 31.0,
            name = escape(name),
            line = escape(&lines[i]),
        );
    }
    out.push_str("</svg>\n");
}

/// An edge's SVG path along its route: curves between layers, straight down through the
/// layers its waypoints pass.
fn path(slots: &[Slot], route: &[usize], top: &dyn Fn(usize) -> f64) -> String {
    let (a, b) = (route[0], route[route.len() - 1]);
    if a == b {
        // A rule whose jobs feed each other: a loop on its right side.
        let x = slots[a].centre + slots[a].width / 2.0;
        let y = top(a);
        return format!(
            "M{x:.1},{:.1} C{:.1},{:.1} {:.1},{:.1} {x:.1},{:.1}",
            y + HEIGHT * 0.3,
            x + 28.0,
            y + HEIGHT * 0.1,
            x + 28.0,
            y + HEIGHT * 0.9,
            y + HEIGHT * 0.7
        );
    }
    let (mut x, mut y) = (slots[a].centre, top(a) + HEIGHT);
    let mut d = format!("M{x:.1},{y:.1}");
    for &next in &route[1..] {
        let (x2, y2) = (slots[next].centre, top(next));
        let bend = (y2 - y).abs().max(LAYER_GAP) / 2.0;
        let _ = write!(
            d,
            " C{x:.1},{:.1} {x2:.1},{:.1} {x2:.1},{y2:.1}",
            y + bend,
            y2 - bend
        );
        (x, y) = (x2, y2);
        if next != b {
            y += HEIGHT;
            let _ = write!(d, " L{x:.1},{y:.1}");
        }
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::rulegraph::{RuleGraph, RuleNode};
    use crate::rules::registry::RuleId;

    fn plain(_: &str) -> Look {
        Look {
            line: String::new(),
            fill: "#eceff1",
        }
    }

    #[test]
    fn an_edge_that_skips_a_layer_runs_beside_its_boxes() {
        // a → b → c, and a → c past b.
        let node = |r, layer| RuleNode {
            rule: RuleId(r),
            jobs: 1,
            layer,
        };
        let t = Timeline {
            rule_graph: RuleGraph {
                rules: vec![node(0, 0), node(1, 1), node(2, 2)],
                edges: [(0, 1), (1, 2), (0, 2)]
                    .map(|(a, b)| (RuleId(a), RuleId(b)))
                    .into(),
            },
            rule_names: vec!["a".into(), "b<".into(), "c".into()],
            ..Timeline::default()
        };
        let mut out = String::new();
        svg(&mut out, &t, &plain);
        assert_eq!(out.matches("<rect").count(), 3);
        assert_eq!(out.matches("class=\"edge\"").count(), 3);
        assert!(out.contains(">b&lt;</text>") && out.contains(">1 job</text>"));
        // The box of b, and the straight stretch of the edge a → c through b's layer.
        let attr = |s: &str, name: &str| -> f64 {
            let v = s.split(&format!("{name}=\"")).nth(1).unwrap();
            v.split('"').next().unwrap().parse().unwrap()
        };
        let rect = out.split("<rect").nth(2).unwrap();
        let (left, right) = (attr(rect, "x"), attr(rect, "x") + attr(rect, "width"));
        let skip = out
            .lines()
            .find(|l| l.contains("class=\"edge\"") && l.contains(" L"))
            .expect("a straight stretch");
        let x: f64 = skip
            .split(" L")
            .nth(1)
            .unwrap()
            .split(',')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(x < left || x > right, "{x} within {left}..{right}: {out}");
    }
}
