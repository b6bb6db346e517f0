//! The `mpi` model, rank side (`flowrun __mpi HELLO`, started by the launcher, one process per
//! rank). Built only with the `mpi` cargo feature.
//!
//! Every rank initialises MPI, reads the hello file, evaluates the same workflow (so it has the
//! rule's closures) and builds the `job` value. Then, in collectives every rank always takes
//! part in, whatever went wrong locally, so no rank is ever left waiting in one:
//!
//! 1. rank 0 calls `items` and **scatters** each rank its contiguous block of items
//!    ([`super::mpi::block`]), tagged `I`; if rank 0 could not make the items it sends `X`;
//! 2. each rank maps its block, one item after the other, stopping at the first error;
//! 3. every rank's status and results are **gathered** on rank 0 (lengths first, then the
//!    bytes with `gather_varcount`), tagged `R` (encoded `(index, value)` results), `E` (an
//!    error message) or `S` (skipped: rank 0 had no items to give);
//! 4. rank 0 decodes the results, folds them in item order (exactly as every other model does),
//!    calls `finish`, and writes `status.json` into the run directory for flowrun to read.
//!
//! Every rank exits 0 once the status is written, failures included: the status file carries
//! the outcome (naming the failed ranks), so the launcher adds no noise about exit codes.
//!
//! Large messages are sent in rounds, since MPI counts are 32-bit. A rank that dies outright is
//! the launcher's business: `mpirun`/`srun` end the whole job, and flowrun reports it.

use mpi::datatype::{Partition, PartitionMut};
use mpi::topology::SimpleCommunicator;
use mpi::traits::*;
use mpi::Count;

use super::mpi::{block, pid_path, status_path, MpiHello, Status};
use super::worker::{decode_items, encode_items, find_map_reduce};
use super::Failure;
use crate::native::atomic::write_atomic;
use crate::rules::decl::MapReduceDecl;
use crate::sandbox;
use crate::script::{self, Runtime, Value};

const ITEMS: u8 = b'I';
const NO_ITEMS: u8 = b'X';
const RESULTS: u8 = b'R';
const ERROR: u8 = b'E';
const SKIPPED: u8 = b'S';

/// Bytes one rank sends per collective call at most (keeps every count and sum in `int`).
const ROUND_BYTES: usize = 1 << 28;

/// Bytes per rank per round: [`ROUND_BYTES`], less with many ranks, or
/// `FLOWRUN_MPI_ROUND_BYTES` (for tests of the many-rounds path). Every rank must agree, so
/// the launcher must give every rank the same environment (they all do).
fn per_round(size: usize) -> usize {
    let cap = std::env::var("FLOWRUN_MPI_ROUND_BYTES")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(ROUND_BYTES);
    ((i32::MAX as usize / 2) / size.max(1)).clamp(1, cap.clamp(1, ROUND_BYTES))
}

/// Each rank's piece of round `k`, for data of lengths `lens`.
fn counts(lens: &[u64], k: usize, per: usize) -> Vec<Count> {
    lens.iter()
        .map(|&l| (l as usize).saturating_sub(k * per).min(per) as Count)
        .collect()
}

fn displs(counts: &[Count]) -> Vec<Count> {
    counts
        .iter()
        .scan(0, |acc, &c| {
            let d = *acc;
            *acc += c;
            Some(d)
        })
        .collect()
}

fn rounds(lens: &[u64], per: usize) -> usize {
    lens.iter()
        .map(|&l| (l as usize).div_ceil(per))
        .max()
        .unwrap_or(0)
}

/// Gathers every rank's bytes on rank 0 (others get an empty vector).
fn gather_bytes(world: &SimpleCommunicator, mine: &[u8]) -> Vec<Vec<u8>> {
    let size = world.size() as usize;
    let root = world.process_at_rank(0);
    let is_root = world.rank() == 0;
    let mut lens = vec![0u64; size];
    world.all_gather_into(&(mine.len() as u64), &mut lens[..]);
    let per = per_round(size);
    let mut out: Vec<Vec<u8>> = if is_root {
        lens.iter()
            .map(|&l| Vec::with_capacity(l as usize))
            .collect()
    } else {
        Vec::new()
    };
    for k in 0..rounds(&lens, per) {
        let piece = &mine[(k * per).min(mine.len())..((k + 1) * per).min(mine.len())];
        if is_root {
            let counts = counts(&lens, k, per);
            let displs = displs(&counts);
            let total: usize = counts.iter().map(|&c| c as usize).sum();
            let mut buf = vec![0u8; total];
            {
                let mut part = PartitionMut::new(&mut buf[..], &counts[..], &displs[..]);
                root.gather_varcount_into_root(piece, &mut part);
            }
            for (r, o) in out.iter_mut().enumerate() {
                let d = displs[r] as usize;
                o.extend_from_slice(&buf[d..d + counts[r] as usize]);
            }
        } else {
            root.gather_varcount_into(piece);
        }
    }
    out
}

/// Scatters `parts[r]` from rank 0 to rank `r`; returns this rank's part.
fn scatter_bytes(world: &SimpleCommunicator, parts: &[Vec<u8>]) -> Vec<u8> {
    let size = world.size() as usize;
    let rank = world.rank() as usize;
    let root = world.process_at_rank(0);
    let is_root = rank == 0;
    let mut lens: Vec<u64> = if is_root {
        parts.iter().map(|p| p.len() as u64).collect()
    } else {
        vec![0u64; size]
    };
    root.broadcast_into(&mut lens[..]);
    let per = per_round(size);
    let mut mine = Vec::with_capacity(lens[rank] as usize);
    for k in 0..rounds(&lens, per) {
        let counts = counts(&lens, k, per);
        let mut buf = vec![0u8; counts[rank] as usize];
        if is_root {
            let mut send = Vec::new();
            for p in parts {
                send.extend_from_slice(&p[(k * per).min(p.len())..((k + 1) * per).min(p.len())]);
            }
            let displs = displs(&counts);
            let part = Partition::new(&send[..], &counts[..], &displs[..]);
            root.scatter_varcount_into_root(&part, &mut buf[..]);
        } else {
            root.scatter_varcount_into(&mut buf[..]);
        }
        mine.extend_from_slice(&buf);
    }
    mine
}

/// What a rank needs to map: the runtime with the rule's closures and the job value.
struct Setup {
    runtime: Runtime,
    mr: MapReduceDecl,
    job: Value,
}

fn setup(hello_path: &str) -> Result<Setup, String> {
    let bytes = std::fs::read(hello_path).map_err(|e| {
        format!("cannot read `{hello_path}`: {e} (every rank must see flowrun's working directory)")
    })?;
    let hello: MpiHello =
        serde_json::from_slice(&bytes).map_err(|e| format!("bad hello file: {e}"))?;
    std::env::set_current_dir(&hello.cwd).map_err(|e| {
        format!(
            "cannot change to flowrun's directory `{}`: {e}",
            hello.cwd.display()
        )
    })?;
    let hello = hello.worker;
    let workflow = script::load(&hello.options).map_err(render)?;
    let mr = find_map_reduce(&workflow.rules, &hello.rule).ok_or_else(|| {
        format!(
            "rule `{}` is not a map/reduce rule when the workflow is evaluated on this rank",
            hello.rule
        )
    })?;
    sandbox::set_phase(sandbox::Phase::Run);
    let runtime = workflow.runtime;
    let job = runtime.job_value(&hello.job).map_err(render)?;
    Ok(Setup { runtime, mr, job })
}

fn render(d: crate::diagnostic::Diagnostic) -> String {
    let text = d.render();
    let text = text.trim_end();
    text.strip_prefix("error: ").unwrap_or(text).to_string()
}

/// Rank 0: the items, cut into one tagged block per rank.
fn blocks(setup: &Result<Setup, String>, size: usize) -> (Vec<Vec<u8>>, Option<String>) {
    let items = match setup {
        Ok(s) => s.runtime.items(&s.mr, &s.job).map_err(|d| {
            let text = render(d);
            format!("in `items`: {text}")
        }),
        Err(e) => Err(e.clone()),
    };
    let encoded = items.and_then(|items| {
        let n = items.len();
        (0..size)
            .map(|r| {
                let b = block(n, size, r);
                let mut out = vec![ITEMS];
                let part = encode_items(
                    items[b.clone()]
                        .iter()
                        .enumerate()
                        .map(|(i, v)| ((b.start + i) as u64, v)),
                )?;
                out.extend_from_slice(&part);
                Ok(out)
            })
            .collect::<Result<Vec<_>, String>>()
    });
    match encoded {
        Ok(parts) => (parts, None),
        Err(e) => (vec![vec![NO_ITEMS]; size], Some(e)),
    }
}

/// Maps this rank's block; the tagged payload to gather.
fn map_block(setup: &Result<Setup, String>, received: &[u8]) -> Vec<u8> {
    let error = |msg: String| {
        let mut out = vec![ERROR];
        out.extend_from_slice(msg.as_bytes());
        out
    };
    let s = match setup {
        Ok(s) => s,
        Err(e) => return error(e.clone()),
    };
    match received.split_first() {
        Some((&ITEMS, rest)) => {
            let items = match decode_items(rest) {
                Ok(items) => items,
                Err(e) => return error(e),
            };
            let mut results = Vec::with_capacity(items.len());
            for (i, item) in items {
                match super::mapreduce::map_item(&s.runtime, &s.mr, &s.job, i as usize, item) {
                    Ok(v) => results.push((i, v)),
                    Err(Failure::Script(d)) => {
                        return error(format!("in `map` (item {i}): {}", render(d)))
                    }
                    Err(f) => return error(format!("in `map` (item {i}): {f}")),
                }
            }
            match encode_items(results.iter().map(|(i, v)| (*i, v))) {
                Ok(bytes) => {
                    let mut out = vec![RESULTS];
                    out.extend_from_slice(&bytes);
                    out
                }
                Err(e) => error(format!("cannot send the results of `map`: {e}")),
            }
        }
        _ => vec![SKIPPED],
    }
}

/// Groups identical messages: "ranks 1, 2 of 3 failed: ...".
fn failure_message(errors: &[(usize, String)], size: usize) -> String {
    let mut groups: Vec<(Vec<usize>, &str)> = Vec::new();
    for (r, msg) in errors {
        match groups.iter_mut().find(|(_, m)| *m == msg.as_str()) {
            Some((ranks, _)) => ranks.push(*r),
            None => groups.push((vec![*r], msg)),
        }
    }
    groups
        .iter()
        .map(|(ranks, msg)| {
            let list = ranks
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(", ");
            let word = if ranks.len() == 1 { "rank" } else { "ranks" };
            format!("MPI {word} {list} of {size} failed: {msg}")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Rank 0: checks every rank's payload, folds the results in item order, calls `finish`.
fn conclude(
    setup: &Result<Setup, String>,
    own_error: Option<String>,
    payloads: Vec<Vec<u8>>,
) -> Result<(), String> {
    let size = payloads.len();
    let mut errors = Vec::new();
    // Rank 0's own setup error also comes back in its payload: report it once.
    let own_reported = own_error.is_some();
    if let Some(e) = own_error {
        errors.push((0, e));
    }
    for (r, p) in payloads.iter().enumerate() {
        if let Some((&ERROR, msg)) = p.split_first() {
            if r == 0 && own_reported {
                continue;
            }
            errors.push((r, String::from_utf8_lossy(msg).into_owned()));
        }
    }
    if !errors.is_empty() {
        return Err(failure_message(&errors, size));
    }
    let s = setup.as_ref().map_err(Clone::clone)?;
    let mut folder = s.runtime.folder(&s.mr);
    let mut next = 0u64;
    for (r, p) in payloads.into_iter().enumerate() {
        let results = match p.split_first() {
            Some((&RESULTS, rest)) => decode_items(rest)
                .map_err(|e| format!("the results of MPI rank {r} of {size}: {e}"))?,
            _ => return Err(format!("MPI rank {r} of {size} sent no results")),
        };
        for (i, v) in results {
            if i != next {
                return Err(format!(
                    "MPI rank {r} of {size} sent item {i} where item {next} was due"
                ));
            }
            folder
                .push(v)
                .map_err(|d| format!("in `reduce`: {}", render(d)))?;
            next += 1;
        }
    }
    s.runtime
        .finish(&s.mr, &s.job, folder.result())
        .map_err(|d| format!("in `finish` (on MPI rank 0): {}", render(d)))
}

/// A rank's main; returns the process exit code.
pub fn main(hello_path: &str) -> u8 {
    let Some((universe, _)) = mpi::initialize_with_threading(mpi::Threading::Funneled) else {
        eprintln!(
            "error: flowrun {}: MPI was already initialised",
            super::mpi::RANK_ARG
        );
        return crate::exit::JOB_FAILED;
    };
    let world = universe.world();
    let rank = world.rank();
    let size = world.size() as usize;
    let run_dir = std::path::Path::new(hello_path)
        .parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_default();
    // Atomically: flowrun (and a test) may read the file the moment it appears.
    let _ = crate::native::atomic::write_atomic(
        pid_path(&run_dir, rank),
        std::process::id().to_string().as_bytes(),
    );

    let setup = setup(hello_path);
    let (parts, items_error) = if rank == 0 {
        blocks(&setup, size)
    } else {
        (Vec::new(), None)
    };
    let received = scatter_bytes(&world, &parts);
    drop(parts);
    let payload = map_block(&setup, &received);
    drop(received);
    let payloads = gather_bytes(&world, &payload);
    drop(payload);

    let code = if rank == 0 {
        let outcome = conclude(&setup, items_error, payloads);
        let status = match &outcome {
            Ok(()) => Status {
                ok: true,
                message: String::new(),
            },
            Err(m) => Status {
                ok: false,
                message: m.clone(),
            },
        };
        let written = serde_json::to_vec(&status)
            .map_err(|e| e.to_string())
            .and_then(|b| write_atomic(status_path(&run_dir), &b).map_err(|e| e.to_string()));
        if let Err(e) = &written {
            eprintln!("error: MPI rank 0 cannot write its status: {e}");
        }
        // The outcome travels in the status file; the exit code only says whether it could be
        // written, so the launcher adds no noise of its own about failed ranks.
        if written.is_ok() {
            crate::exit::SUCCESS
        } else {
            crate::exit::JOB_FAILED
        }
    } else {
        crate::exit::SUCCESS
    };
    drop(universe);
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_split_every_rank_s_bytes_in_order() {
        let lens = [10u64, 0, 3, 7];
        let per = 4;
        assert_eq!(rounds(&lens, per), 3);
        assert_eq!(counts(&lens, 0, per), [4, 0, 3, 4]);
        assert_eq!(counts(&lens, 1, per), [4, 0, 0, 3]);
        assert_eq!(counts(&lens, 2, per), [2, 0, 0, 0]);
        assert_eq!(displs(&[4, 0, 3, 4]), [0, 4, 4, 7]);
        assert_eq!(rounds(&[0, 0], per), 0);
        assert!(per_round(1) <= ROUND_BYTES);
        assert!(per_round(1 << 20) * (1 << 20) <= i32::MAX as usize);
    }

    #[test]
    fn identical_failures_are_grouped_by_message() {
        let errors = [
            (0, "a".to_string()),
            (1, "b".to_string()),
            (2, "a".to_string()),
        ];
        assert_eq!(
            failure_message(&errors, 3),
            "MPI ranks 0, 2 of 3 failed: a\nMPI rank 1 of 3 failed: b"
        );
    }
}
