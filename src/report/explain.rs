//! What the explaining commands print on stdout: `--dry-run`, `--list`, `--dag`,
//! `--rulegraph`, `--summary`. Output is plain, stable text: the same inputs print the same
//! bytes (no times, no hash-map order), so it can be diffed and tested.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::graph::dag::{Dag, JobLabel};
use crate::graph::plan::{Decision, Plan};
use crate::graph::rulegraph::RuleGraph;
use crate::graph::store::Snapshot;
use crate::rules::registry::{File, Rules, Work};

/// Writes `    {what} a, b, c` and a newline, straight into `out` (a dry run prints 100,000 jobs).
fn paths_line(out: &mut String, what: &str, files: &[crate::graph::dag::JobFile]) {
    out.push_str(what);
    for (i, f) in files.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(&f.path);
    }
    out.push('\n');
}

fn patterns(files: &[File]) -> String {
    files
        .iter()
        .map(|f| match &f.name {
            Some(n) => format!("{n}={}", f.pattern),
            None => f.pattern.to_string(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `--dry-run`: every job that would run with its reasons, then a count per rule.
pub fn dry_run(rules: &Rules, dag: &Dag, plan: &Plan) -> String {
    let mut out = String::new();
    let mut counts: BTreeMap<(u32, &str), usize> = BTreeMap::new();
    for id in plan.to_run(dag) {
        let Decision::Run(reasons) = plan.decision(id) else {
            continue;
        };
        let job = dag.job(id);
        let rule = rules.get(job.rule);
        *counts.entry((rule.id.0, &rule.name)).or_default() += 1;
        let _ = writeln!(out, "job {}", dag.label(rules, id));
        if !job.inputs.is_empty() {
            paths_line(&mut out, "    input:  ", &job.inputs);
        }
        if !job.outputs.is_empty() {
            paths_line(&mut out, "    output: ", &job.outputs);
        }
        for r in reasons {
            let _ = writeln!(out, "    reason: {r}");
        }
        out.push('\n');
    }
    let mut pending = 0;
    for &id in dag.order() {
        let Decision::Pending(checkpoint) = plan.decision(id) else {
            continue;
        };
        pending += 1;
        let _ = writeln!(out, "job {} (pending)", dag.label(rules, id));
        let _ = writeln!(out, "    waits:  for checkpoint {checkpoint}\n");
    }
    let total: usize = counts.values().sum();
    if total == 0 && pending == 0 {
        out.push_str("nothing to be done: every output is up to date\n");
        return out;
    }
    let width = total.to_string().len().max(5);
    let _ = writeln!(out, "{:>width$}  rule", "count");
    for ((_, name), n) in &counts {
        let _ = writeln!(out, "{n:>width$}  {name}");
    }
    let _ = writeln!(out, "{total:>width$}  total");
    if pending > 0 {
        let _ = writeln!(
            out,
            "{pending:>width$}  pending: planned once their checkpoints have run, so more jobs may follow"
        );
    }
    out
}

/// `--list`: the rules with their files.
pub fn list(rules: &Rules) -> String {
    let mut out = String::new();
    for rule in rules.iter() {
        let kind = match rule.work {
            Work::Nothing => "",
            Work::Shell(_) => " (shell)",
            Work::Run(_) => " (run)",
            Work::MapReduce(_) => " (map/reduce)",
            Work::Script(_) => " (script)",
        };
        let _ = writeln!(out, "{}{kind}", rule.name);
        let computed = match rule.functions.input.len() {
            0 => String::new(),
            1 => "a function of the wildcards".to_string(),
            n => format!("{n} functions of the wildcards"),
        };
        let written = patterns(&rule.inputs);
        let inputs: Vec<&str> = [written.as_str(), computed.as_str()]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect();
        if !inputs.is_empty() {
            let _ = writeln!(out, "    input:  {}", inputs.join(", "));
        }
        if !rule.outputs.is_empty() {
            let _ = writeln!(out, "    output: {}", patterns(&rule.outputs));
        }
    }
    out
}

fn dot_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// `--dag`: jobs and their dependencies in Graphviz DOT; up-to-date jobs are dashed.
pub fn dag_dot(rules: &Rules, dag: &Dag, plan: &Plan) -> String {
    let mut out = String::from("digraph flowrun {\n    node [shape=box, style=rounded];\n");
    for &id in dag.order() {
        let style = match plan.decision(id) {
            Decision::Run(_) => "rounded",
            Decision::Pending(_) => "rounded,dotted",
            _ => "rounded,dashed",
        };
        let _ = writeln!(
            out,
            "    j{} [label=\"{}\", style=\"{style}\"];",
            id.0,
            dot_escape(&dag.label(rules, id).to_string())
        );
    }
    for &id in dag.order() {
        for d in &dag.job(id).deps {
            let _ = writeln!(out, "    j{} -> j{};", d.0, id.0);
        }
    }
    out.push_str("}\n");
    out
}

/// `--rulegraph`: rules and which feeds which, in Graphviz DOT.
pub fn rule_dot(rules: &Rules, dag: &Dag) -> String {
    let graph = RuleGraph::of(dag);
    let mut out = String::from("digraph flowrun {\n    node [shape=box, style=rounded];\n");
    for node in &graph.rules {
        let _ = writeln!(
            out,
            "    r{} [label=\"{}\"];",
            node.rule.0,
            dot_escape(&rules.get(node.rule).name)
        );
    }
    for (a, b) in graph.edges {
        let _ = writeln!(out, "    r{} -> r{};", a.0, b.0);
    }
    out.push_str("}\n");
    out
}

/// `--summary`: every output of the graph with its state and why; with `when` (`-v`), also when
/// its job last finished and how long it took.
pub fn summary(rules: &Rules, dag: &Dag, plan: &Plan, snapshot: &Snapshot, when: bool) -> String {
    let mut rows = vec![[
        "output".to_string(),
        "state".into(),
        "rule".into(),
        "reason".into(),
    ]];
    let mut made = vec![["made".to_string(), "took".to_string()]];
    for &id in dag.order() {
        let job = dag.job(id);
        let rule = rules.get(job.rule);
        let past = when
            .then(|| snapshot.history.get(&JobLabel(rule, job).to_string()))
            .flatten();
        let rule = &rule.name;
        for o in &job.outputs {
            made.push(past.map_or(["-".into(), "-".into()], |p| {
                let at = std::time::UNIX_EPOCH
                    + std::time::Duration::from_secs(p.finished.max(0) as u64);
                [
                    crate::report::trace::utc(at),
                    crate::report::progress::brief(std::time::Duration::from_secs_f64(p.seconds)),
                ]
            }));
            let exists = std::path::Path::new(&o.path).exists();
            let (state, why) = match plan.decision(id) {
                Decision::Run(reasons) => {
                    let state = if snapshot.incomplete.contains(&o.path) {
                        "incomplete"
                    } else if exists {
                        "outdated"
                    } else {
                        "missing"
                    };
                    (
                        state,
                        reasons
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join("; "),
                    )
                }
                Decision::Fresh if exists => ("present", "up to date".to_string()),
                Decision::Fresh => ("present", "temporary file, deleted after use".to_string()),
                Decision::Excluded => ("excluded", "not needed for --until".to_string()),
                Decision::Pending(cp) => ("pending", format!("waits for checkpoint {cp}")),
            };
            rows.push([o.path.clone(), state.into(), rule.clone(), why]);
        }
    }
    let w0 = rows.iter().map(|r| r[0].len()).max().unwrap_or(0);
    let w1 = rows.iter().map(|r| r[1].len()).max().unwrap_or(0);
    let w2 = rows.iter().map(|r| r[2].len()).max().unwrap_or(0);
    let w3 = made.iter().map(|m| m[0].len()).max().unwrap_or(0);
    let w4 = made.iter().map(|m| m[1].len()).max().unwrap_or(0);
    let mut out = String::new();
    for (r, m) in rows.into_iter().zip(made) {
        let _ = write!(out, "{:w0$}  {:w1$}  {:w2$}  ", r[0], r[1], r[2]);
        if when {
            let _ = write!(out, "{:w3$}  {:>w4$}  ", m[0], m[1]);
        }
        let _ = writeln!(out, "{}", r[3]);
    }
    out
}
