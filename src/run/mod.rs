//! Running a plan: the scheduler (the one owner of run state), the per-directory run lock, and
//! [`place`], the seam that decides where a job's work runs: this machine, or a SLURM cluster
//! ([`slurm`]).

pub mod cache;
pub mod clean;
pub mod lock;
pub mod place;
pub mod schedule;
pub mod slurm;
