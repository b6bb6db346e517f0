//! The store's format versions and the forward migrations between them.
//!
//! Upgrading flowrun must never rerun a user's jobs, so a store of an older format is brought
//! forward in place: every step from its version to [`FORMAT_VERSION`] runs in one
//! transaction, with a copy of the file kept beside it (`store.db.vN.bak`) until that
//! transaction commits. A crash mid-way leaves the old store (SQLite rolls the transaction
//! back) and the copy; the next open migrates again and removes the copy.
//!
//! | version | released with | what changed |
//! |---|---|---|
//! | 1 | the first flowrun | `records` (postcard [`super::Record`] per output), `incomplete` |
//! | 2 | the first with migrations | `history`: each job's last duration, for the ETA and `--summary` |
//! | 3 | this release | `submissions`: the cluster job id of each job submitted and not yet settled |
//!
//! Changing the format, step by step:
//! 1. bump [`FORMAT_VERSION`], add a row above and a function to [`STEPS`];
//! 2. if the record encoding changes, freeze the old `Record` here as `RecordVn`, and let the
//!    step decode every row as that and encode it as the new one (never leave a row behind:
//!    an undecodable record reruns its job);
//! 3. before changing any code, run the old flowrun on `tests/fixtures/store-v1`'s workflow
//!    (or a richer one) and check its store in as `tests/fixtures/store-vN`; the upgrade test
//!    shows a no-op run on every fixture.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, Transaction};

/// The format this flowrun writes.
pub const FORMAT_VERSION: i64 = 3;

/// One step forward: the function that brings version `n` to `n + 1` is `STEPS[n - 1]`.
type Step = fn(&Transaction<'_>) -> rusqlite::Result<()>;

const STEPS: &[Step] = &[v1_to_v2, v2_to_v3];

/// The tables of a new store, at the current version.
pub(super) fn create(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS records (path TEXT PRIMARY KEY, data BLOB NOT NULL);
         CREATE TABLE IF NOT EXISTS incomplete (path TEXT PRIMARY KEY);",
    )?;
    let tx = conn.unchecked_transaction()?;
    for step in STEPS {
        step(&tx)?;
    }
    tx.commit()?;
    conn.pragma_update(None, "user_version", FORMAT_VERSION)
}

/// Runs every step from `version` to [`FORMAT_VERSION`] inside `tx`.
pub(super) fn forward(tx: &Transaction<'_>, version: i64) -> rusqlite::Result<()> {
    for (i, step) in STEPS.iter().enumerate() {
        let from = i as i64 + 1;
        if from >= version {
            step(tx)?;
        }
    }
    tx.pragma_update(None, "user_version", FORMAT_VERSION)
}

/// Copies the store (its log checkpointed into it first) to `store.db.v{version}.bak`.
pub(super) fn backup(conn: &Connection, path: &Path, version: i64) -> std::io::Result<PathBuf> {
    let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
    let copy = path.with_extension(format!("db.v{version}.bak"));
    std::fs::copy(path, &copy)?;
    Ok(copy)
}

/// Version 2 keeps each job's last duration.
fn v1_to_v2(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS history (
             label TEXT PRIMARY KEY,
             rule TEXT NOT NULL,
             finished INTEGER NOT NULL,
             seconds REAL NOT NULL
         );",
    )
}

/// Version 3 keeps the cluster job id of every submitted job until its end is settled, so that
/// a flowrun that was killed can follow its jobs again instead of submitting them twice.
fn v2_to_v3(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS submissions (
             label TEXT PRIMARY KEY,
             job_id TEXT NOT NULL,
             run TEXT NOT NULL,
             dir TEXT NOT NULL
         );",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_version_has_a_step() {
        assert_eq!(STEPS.len() as i64, FORMAT_VERSION - 1);
    }

    #[test]
    fn a_version_1_store_moves_forward_keeping_its_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(
                "CREATE TABLE records (path TEXT PRIMARY KEY, data BLOB NOT NULL);
                 CREATE TABLE incomplete (path TEXT PRIMARY KEY);
                 INSERT INTO records VALUES ('a', x'01');
                 INSERT INTO incomplete VALUES ('b');
                 PRAGMA user_version = 1;",
            )
            .unwrap();
        }
        let (store, warning) = super::super::Store::open(dir.path()).unwrap();
        assert!(warning.is_none());
        let version: i64 = store
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, FORMAT_VERSION);
        let rows: i64 = store
            .conn
            .query_row("SELECT count(*) FROM records", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 1);
        assert!(store.snapshot().unwrap().incomplete.contains("b"));
        assert!(!dir.path().join("store.db.v1.bak").exists());
    }
}
