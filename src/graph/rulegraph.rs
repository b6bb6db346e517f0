//! The rule graph of a job graph: which rule feeds which, how many jobs each rule has, and its
//! layer. `--rulegraph` prints it as Graphviz DOT; the HTML report draws it itself, which is
//! why the layers are worked out here, once, rather than by each reader.

use std::collections::{BTreeMap, BTreeSet};

use crate::graph::dag::Dag;
use crate::rules::registry::RuleId;

/// A rule with jobs in the graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleNode {
    pub rule: RuleId,
    /// Its jobs in the graph.
    pub jobs: usize,
    /// The longest chain of other rules' jobs before one of its jobs: 0 for rules whose jobs
    /// need no other rule's job.
    pub layer: u32,
}

/// Rules and which feeds which.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleGraph {
    /// In rule order.
    pub rules: Vec<RuleNode>,
    /// `(from, to)`: a job of `from` makes an input of a job of `to`. A rule whose jobs feed
    /// each other has an edge to itself.
    pub edges: BTreeSet<(RuleId, RuleId)>,
}

impl RuleGraph {
    /// The rule graph of `dag`. Layers follow the jobs in dependency order, so a rule whose
    /// jobs feed jobs of a rule that feeds it back (possible with wildcards) still gets one.
    pub fn of(dag: &Dag) -> Self {
        let mut nodes: BTreeMap<RuleId, (usize, u32)> = BTreeMap::new();
        let mut edges = BTreeSet::new();
        for &id in dag.order() {
            let job = dag.job(id);
            let mut layer = 0;
            for d in &job.deps {
                let from = dag.job(*d).rule;
                edges.insert((from, job.rule));
                if from != job.rule {
                    layer = layer.max(nodes.get(&from).map_or(0, |n| n.1 + 1));
                }
            }
            let node = nodes.entry(job.rule).or_insert((0, 0));
            node.0 += 1;
            node.1 = node.1.max(layer);
        }
        RuleGraph {
            rules: nodes
                .into_iter()
                .map(|(rule, (jobs, layer))| RuleNode { rule, jobs, layer })
                .collect(),
            edges,
        }
    }
}
