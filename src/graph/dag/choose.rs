//! Choosing the rule that makes a file, as Snakemake chooses (its `dag.py`, `DAG.update`).
//!
//! Several rules may match a wanted path. Snakemake keeps the candidates whose inputs can be
//! made or already exist, then prefers one by `ruleorder` (and, failing that, the rule without
//! wildcards), and calls it ambiguous only if that leaves a tie. A candidate that would need its
//! own output, or a job already on the way to it, is a cycle and is dropped the same way; and
//! when no candidate can run but the file exists, the file is used as it is. Porters rely on
//! all of this (a rule that "could" regenerate a checked-in file must not turn into a cycle), so
//! flowrun follows it, with `priority` as one more explicit preference after `rule_order`
//! ([`Rules::preference`]).
//!
//! Two mechanisms do it without slowing the common case (one candidate per path, everything
//! makeable):
//! - with several candidates, [`Builder::feasible`] looks ahead from each: a depth-first walk
//!   over what its inputs would need, remembering what it learns;
//! - after resolution, [`Builder::repair`] handles the one-candidate case lazily: a job that
//!   turned out to miss an input, or to sit in a cycle, is dropped in favour of the existing
//!   file it was asked to make, and jobs no target needs any more are removed.

use std::path::Path;

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

use super::{bind, key_hash, Builder, Job, JobId, JobLabel};
use crate::diagnostic::Diagnostic;
use crate::rules::pattern::Wildcards;
use crate::rules::registry::RuleId;

/// How deep the look-ahead walks before it calls a candidate unmakeable (a runaway
/// recursion is reported by the resolution itself, with its own message).
const MAX_LOOKAHEAD: usize = 200;

/// What answers "who makes this path?".
pub(super) enum Choice {
    /// This rule, bound to these wildcards.
    Rule(RuleId, Wildcards),
    /// Nothing: the path is a source (it exists, and no candidate can make it).
    Source,
}

/// Most rules bound to wildcards one choice may look at. Each is looked at once per choice,
/// but rules whose inputs grow their own wildcards (`{x}` from `{x}.p` and `{x}.q`) have no
/// end of them: past this, the choice is an error asking for constraints.
const LOOKAHEAD_BUDGET: usize = 100_000;

/// The look-ahead in progress: the jobs being walked (a cycle back to one of them is no way
/// to make a file), those found unmakeable because of such a cycle (not remembered beyond
/// this choice, but not walked twice within it, as Snakemake remembers its producers), and
/// how many more it may look at.
struct Walk {
    stack: Vec<(RuleId, Wildcards)>,
    failed: HashSet<(RuleId, Wildcards)>,
    budget: usize,
}

/// What the look-ahead found for one candidate, and whether that depended on the jobs being
/// walked (then it is not remembered: from elsewhere the answer may differ).
struct Verdict {
    makeable: bool,
    on_stack: bool,
}

impl Builder<'_> {
    /// Picks among several `candidates` for `path`, asked for by `requester`.
    pub(super) fn choose(
        &mut self,
        path: &str,
        mut candidates: Vec<(RuleId, Wildcards)>,
        requester: Option<JobId>,
    ) -> Result<Choice, Diagnostic> {
        let mut walk = Walk {
            stack: requester
                .map(|id| {
                    let j = &self.jobs[id.0 as usize];
                    (j.rule, j.wildcards.clone())
                })
                .into_iter()
                .collect(),
            failed: HashSet::default(),
            budget: LOOKAHEAD_BUDGET,
        };
        let makeable: Vec<bool> = candidates
            .iter()
            .map(|(r, w)| self.feasible(*r, w, path, &mut walk).makeable)
            .collect();
        if walk.budget == 0 {
            let names: Vec<String> = candidates
                .iter()
                .map(|(r, _)| format!("`{}`", self.rules.get(*r).name))
                .collect();
            return Err(Diagnostic::new(format!(
                "`{path}` could be made by {}, but deciding which can run means looking at more than {LOOKAHEAD_BUDGET} jobs",
                names.join(", ")
            ))
            .hint("rules whose inputs match their own outputs with longer wildcard values never end; constrain the wildcards with `wildcard_constraints`"));
        }
        let any_makeable = makeable.iter().any(|m| *m);
        if any_makeable {
            let mut keep = makeable.iter();
            candidates.retain(|_| *keep.next().unwrap_or(&false));
        } else if Path::new(path).exists() {
            return Ok(Choice::Source);
        }
        // Most preferred first; declaration order among equals (the sort is stable).
        candidates.sort_by(|(a, _), (b, _)| self.rules.preference(*b, *a));
        let best = candidates[0].0;
        let tied: Vec<String> = candidates
            .iter()
            .take_while(|(r, _)| self.rules.preference(best, *r).is_eq())
            .map(|(r, _)| format!("`{}`", self.rules.get(*r).name))
            .collect();
        if tied.len() > 1 && !any_makeable {
            return Err(Diagnostic::new(format!(
                "`{path}` could be made by {}, but none of them can run: each needs an input that neither exists nor can be made",
                tied.join(", ")
            ))
            .hint("make one of their inputs exist, or say which rule should make it with `rule_order` so its missing input is reported"));
        }
        if tied.len() > 1 {
            return Err(Diagnostic::new(format!(
                "`{path}` can be made by more than one rule: {}",
                tied.join(", ")
            ))
            .hint(format!(
                "say which wins with `rule_order([{}])` (most preferred first) or a higher `priority`, or narrow the patterns with `wildcard_constraints`",
                tied.iter()
                    .map(|n| format!("\"{}\"", n.trim_matches('`')))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let (rule, w) = candidates.swap_remove(0);
        Ok(Choice::Rule(rule, w))
    }

    /// Whether rule `rule` bound to `w` could run: each input exists, or some rule could make
    /// it without needing a job the walk is in (which would be a cycle) or `wanted` itself.
    fn feasible(&mut self, rule: RuleId, w: &Wildcards, wanted: &str, walk: &mut Walk) -> Verdict {
        if let Some(&makeable) = self.feasible.get(&(rule, w.clone())) {
            return Verdict {
                makeable,
                on_stack: false,
            };
        }
        let key = (rule, w.clone());
        if walk.budget == 0
            || walk.failed.contains(&key)
            || walk.stack.iter().any(|(r, v)| *r == rule && v == w)
        {
            return Verdict {
                makeable: false,
                on_stack: true,
            };
        }
        walk.budget -= 1;
        if walk.stack.len() > MAX_LOOKAHEAD {
            // Remembered like any answer: a chain of wildcards that keeps growing would
            // otherwise be walked again from every branch above it.
            self.feasible.insert((rule, w.clone()), false);
            return Verdict {
                makeable: false,
                on_stack: false,
            };
        }
        let inputs = bind(&self.rules.get(rule).inputs, w);
        if inputs.iter().any(|f| f.path == wanted) {
            return Verdict {
                makeable: false,
                on_stack: false,
            };
        }
        walk.stack.push((rule, w.clone()));
        let mut verdict = Verdict {
            makeable: true,
            on_stack: false,
        };
        for f in &inputs {
            if Path::new(&f.path).exists() {
                continue;
            }
            let mut candidates = self.rules.producers_for(&f.path, w);
            if let Some(from) = f.from_rule {
                candidates.retain(|(r, _)| *r == from);
            }
            let mut found = false;
            for (r, cw) in candidates {
                let v = self.feasible(r, &cw, &f.path, walk);
                verdict.on_stack |= v.on_stack;
                if v.makeable {
                    found = true;
                    break;
                }
            }
            if !found {
                verdict.makeable = false;
                break;
            }
        }
        walk.stack.pop();
        if verdict.makeable || !verdict.on_stack {
            self.feasible.insert(key, verdict.makeable);
        } else {
            walk.failed.insert(key);
        }
        verdict
    }

    /// After resolution: jobs with a `missing` input (job, input index) or in a cycle among
    /// the `stuck` ones are dropped where the files asked of them exist, which then count as
    /// sources; jobs the `targets` no longer need are removed. Returns whether anything
    /// changed (then sources and cycles must be checked again).
    pub(super) fn repair(
        &mut self,
        missing: &[(JobId, usize)],
        stuck: &[JobId],
        targets: &mut [JobId],
    ) -> bool {
        let mut broken: Vec<JobId> = missing.iter().map(|(j, _)| *j).collect();
        broken.dedup();
        if let Some(cycle) = cycle_in(&self.jobs, stuck) {
            // The job met first is where the resolution entered the loop: what it asked of
            // the next job in the loop is what an existing file can stand in for.
            if let Some(&entry) = cycle.iter().min() {
                let at = cycle.iter().position(|j| *j == entry).unwrap_or(0);
                let next = cycle[(at + 1) % cycle.len()];
                let cut: Vec<String> = self.jobs[entry.0 as usize]
                    .inputs
                    .iter()
                    .filter(|f| self.producer.get(&f.path) == Some(&Some(next)))
                    .map(|f| f.path.clone())
                    .collect();
                if !cut.is_empty() && cut.iter().all(|p| Path::new(p).exists()) {
                    return self.cut(cut, targets);
                }
            }
        }
        broken.retain(|j| !targets.contains(j));
        let broken: HashSet<JobId> = broken.into_iter().collect();
        // What each broken job was asked for, in one pass over every input.
        let mut asked: HashMap<JobId, Vec<&str>> = HashMap::default();
        for f in self.jobs.iter().flat_map(|j| &j.inputs) {
            if let Some(Some(job)) = self.producer.get(&f.path) {
                if broken.contains(job) {
                    asked.entry(*job).or_default().push(f.path.as_str());
                }
            }
        }
        let mut cut: Vec<String> = Vec::new();
        let mut jobs: Vec<&JobId> = asked.keys().collect();
        jobs.sort_unstable();
        for job in jobs {
            let paths = &asked[job];
            if paths.iter().all(|p| Path::new(p).exists()) {
                cut.extend(paths.iter().map(|p| p.to_string()));
            }
        }
        !cut.is_empty() && self.cut(cut, targets)
    }

    /// Makes `paths` sources, then keeps only the jobs the targets still need, renumbered in
    /// their old order.
    fn cut(&mut self, paths: Vec<String>, targets: &mut [JobId]) -> bool {
        let paths: HashSet<String> = paths.into_iter().collect();
        for p in &paths {
            self.producer.insert(p.clone(), None);
        }
        for id in 0..self.jobs.len() {
            let job = &self.jobs[id];
            if !job.inputs.iter().any(|f| paths.contains(&f.path)) {
                continue;
            }
            let mut deps = Vec::new();
            for (i, f) in job.inputs.iter().enumerate() {
                match self.producer.get(&f.path).copied().flatten() {
                    Some(p) if !deps.contains(&p) => deps.push(p),
                    Some(_) => {}
                    None if paths.contains(&f.path) => self.sources.push((JobId(id as u32), i)),
                    None => {}
                }
            }
            self.jobs[id].deps = deps;
        }
        let mut keep = vec![false; self.jobs.len()];
        let mut todo: Vec<JobId> = targets.to_vec();
        while let Some(id) = todo.pop() {
            if !std::mem::replace(&mut keep[id.0 as usize], true) {
                todo.extend(self.jobs[id.0 as usize].deps.iter().copied());
            }
        }
        let mut renumber: HashMap<JobId, JobId> = HashMap::default();
        let old = std::mem::take(&mut self.jobs);
        let old_depth = std::mem::take(&mut self.depth);
        for (i, (job, depth)) in old.into_iter().zip(old_depth).enumerate() {
            if keep[i] {
                renumber.insert(JobId(i as u32), JobId(self.jobs.len() as u32));
                self.jobs.push(job);
                self.depth.push(depth);
            }
        }
        for job in &mut self.jobs {
            for d in &mut job.deps {
                *d = renumber[d];
            }
        }
        for t in targets.iter_mut() {
            *t = renumber[t];
        }
        self.producer.retain(|_, p| match p {
            Some(id) => match renumber.get(id) {
                Some(new) => {
                    *id = *new;
                    true
                }
                None => false,
            },
            None => true,
        });
        self.sources.retain_mut(|(id, _)| match renumber.get(id) {
            Some(new) => {
                *id = *new;
                true
            }
            None => false,
        });
        // The graph keeps the key index (`Dag::find`): it follows the new numbers.
        self.by_key.clear();
        for i in 0..self.jobs.len() {
            let job = &self.jobs[i];
            self.index(key_hash(job.rule, &job.wildcards), JobId(i as u32));
        }
        true
    }
}

/// One cycle among the `stuck` jobs (those a topological order could not place), as the
/// jobs along it, each depending on the next; `None` if there is none.
pub(super) fn cycle_in(jobs: &[Job], stuck: &[JobId]) -> Option<Vec<JobId>> {
    let stuck_set: HashSet<JobId> = stuck.iter().copied().collect();
    let mut path = vec![*stuck.first()?];
    loop {
        let last = *path.last()?;
        let next = jobs[last.0 as usize]
            .deps
            .iter()
            .find(|d| stuck_set.contains(d))
            .copied()?;
        if let Some(start) = path.iter().position(|p| *p == next) {
            path.drain(..start);
            return Some(path);
        }
        path.push(next);
    }
}

/// The sentence for a cycle: `the rules form a cycle: a -> b[n=x] -> a`.
pub(super) fn cycle_error(builder: &Builder, cycle: &[JobId]) -> Diagnostic {
    let label = |id: &JobId| {
        let job = &builder.jobs[id.0 as usize];
        JobLabel(builder.rules.get(job.rule), job).to_string()
    };
    // Makers before users, starting and ending at the job the walk met twice.
    let chain: Vec<String> = cycle[..1]
        .iter()
        .chain(cycle[1..].iter().rev())
        .chain(&cycle[..1])
        .map(label)
        .collect();
    Diagnostic::new(format!("the rules form a cycle: {}", chain.join(" -> ")))
        .hint("each job in the chain makes an input of the next; break the loop")
}
