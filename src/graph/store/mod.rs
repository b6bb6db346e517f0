//! The record of what was built: one SQLite database, `.flowrun/store.db`.
//!
//! For each output we keep what it was made from (rule, code hash, params hash, every input's
//! signature) and what it came out as, plus a table of outputs whose job started but did not
//! finish. SQLite in WAL mode with `synchronous=NORMAL` makes every commit survive a crash of
//! flowrun itself (kill -9) at the cost of a write to the log, not an fsync; a power loss may
//! lose the last commits, which only means some jobs rerun.
//!
//! The store carries its format version (`PRAGMA user_version`) and migrates forward in place
//! ([`migrate`]): upgrading flowrun reruns nothing. A store written by a *newer* flowrun is
//! refused and left untouched. A store that cannot be read (corrupt, truncated) is moved aside
//! and rebuilt; outputs are never touched, and the next run reruns what it can no longer vouch
//! for.
//!
//! Besides the records, the store keeps each job's last duration ([`Past`]): the ETA uses them
//! from the first second of a run, and `--summary` shows when and how long each output took.
//! One row per job label, replaced each time the job runs, so it is bounded by the workflow's
//! size like the records are.
//!
//! Under a cluster executor, the store also keeps the cluster job id of every job submitted and
//! not yet settled ([`Submission`]): a flowrun that was killed leaves them there, and the next
//! run follows those jobs instead of submitting them again.

use rustc_hash::{FxHashMap, FxHashSet};
use std::path::{Path, PathBuf};

use rusqlite::{params, Connection};
use serde::{Deserialize, Serialize};

use crate::graph::filestate::FileSig;

mod migrate;

pub use migrate::FORMAT_VERSION;

/// How one output was made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub rule: String,
    pub code: u128,
    pub params: u128,
    /// Input paths (in the rule's order) with their signatures when the job ran.
    pub inputs: Vec<(String, FileSig)>,
    pub output: FileSig,
    /// The software identity (`env`, `software`) the job ran with; empty for none. Kept in the
    /// `software` table beside the record (store format 3), not in the record's encoding, which
    /// stays as older stores wrote it.
    #[serde(skip)]
    pub software: String,
}

/// The last run of one job.
#[derive(Debug, Clone, PartialEq)]
pub struct Past {
    pub rule: String,
    /// When it finished, in seconds since the Unix epoch.
    pub finished: i64,
    /// How long it took, in seconds.
    pub seconds: f64,
}

/// A job handed to a cluster and not yet settled: what a later run needs to follow it again
/// after flowrun itself was killed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submission {
    /// The job's label, e.g. `count[s=a]`.
    pub label: String,
    /// The cluster's id for it.
    pub job_id: String,
    /// The name of the run that submitted it (the cluster job's name).
    pub run: String,
    /// Where the job's log and exit-status file go.
    pub dir: String,
}

/// Store errors that cannot be repaired by rebuilding.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create `{0}`: {1}")]
    Create(PathBuf, std::io::Error),
    #[error("state store `{0}`: {1}")]
    Sql(PathBuf, rusqlite::Error),
    #[error(
        "the state store `{path}` was written by a newer flowrun (store format {found}; this \
         flowrun reads formats up to {FORMAT_VERSION}); it was left untouched"
    )]
    Newer { path: PathBuf, found: i64 },
    #[error("cannot upgrade the state store `{path}` from format {from} to {FORMAT_VERSION}: {error}; it was left as it was{backup}")]
    Migrate {
        path: PathBuf,
        from: i64,
        error: rusqlite::Error,
        /// Where a copy of the store before the upgrade was kept, if one was.
        backup: String,
    },
}

/// What was recorded, read once at start.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub records: FxHashMap<String, Record>,
    pub incomplete: FxHashSet<String>,
    /// The last run of each job, by job label.
    pub history: FxHashMap<String, Past>,
}

/// The open store.
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

/// Why a store could not be set up.
enum SetupError {
    /// Unreadable: move it aside and rebuild.
    Damaged(rusqlite::Error),
    /// Written by a newer flowrun: refuse, touch nothing.
    Newer(i64),
    /// A forward migration failed; its transaction was rolled back.
    Migrate(i64, rusqlite::Error, Option<PathBuf>),
}

impl From<rusqlite::Error> for SetupError {
    fn from(e: rusqlite::Error) -> Self {
        SetupError::Damaged(e)
    }
}

/// Sets the connection up, creating the tables of a new store or migrating an older one
/// forward (with a backup copy beside it until the migration commits).
fn setup(conn: &mut Connection, path: &Path) -> Result<(), SetupError> {
    // Read before anything is written: a newer store is left byte for byte as it was.
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version > FORMAT_VERSION {
        return Err(SetupError::Newer(version));
    }
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    if version == 0 {
        migrate::create(conn)?;
    } else if version < FORMAT_VERSION {
        let backup = migrate::backup(conn, path, version).map_err(|e| {
            SetupError::Migrate(
                version,
                rusqlite::Error::InvalidPath(e.to_string().into()),
                None,
            )
        })?;
        let tx = conn.transaction()?;
        migrate::forward(&tx, version)
            .map_err(|e| SetupError::Migrate(version, e, Some(backup.clone())))?;
        tx.commit()
            .map_err(|e| SetupError::Migrate(version, e, Some(backup.clone())))?;
        let _ = std::fs::remove_file(&backup);
    }
    check(conn)?;
    Ok(())
}

/// Reading every row proves the file is sound before we trust it.
fn check(conn: &Connection) -> rusqlite::Result<()> {
    conn.query_row("SELECT count(*) FROM records", [], |r| r.get::<_, i64>(0))?;
    conn.query_row("PRAGMA quick_check", [], |r| r.get::<_, String>(0))
        .and_then(|ok| {
            if ok == "ok" {
                Ok(())
            } else {
                Err(rusqlite::Error::InvalidParameterName(ok))
            }
        })
}

impl Store {
    /// Opens (or creates) the store in `dir`, migrating an older format forward; a damaged
    /// store is moved aside, with the returned warning saying so. A store of a newer flowrun,
    /// or one whose migration failed, is an error and stays as it is.
    pub fn open(dir: &Path) -> Result<(Self, Option<String>), StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Create(dir.to_path_buf(), e))?;
        let path = dir.join("store.db");
        let attempt = Connection::open(&path)
            .map_err(SetupError::Damaged)
            .and_then(|mut c| setup(&mut c, &path).map(|()| c));
        let e = match attempt {
            Ok(conn) => return Ok((Self { conn, path }, None)),
            Err(SetupError::Damaged(e)) => e,
            Err(other) => return Err(refusal(other, path)),
        };
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let aside = dir.join(format!("store.db.broken-{stamp}"));
        let _ = std::fs::rename(&path, &aside);
        for ext in ["-wal", "-shm"] {
            let _ = std::fs::remove_file(dir.join(format!("store.db{ext}")));
        }
        let mut conn = Connection::open(&path).map_err(|e| StoreError::Sql(path.clone(), e))?;
        setup(&mut conn, &path).map_err(|e| match e {
            SetupError::Damaged(e) => StoreError::Sql(path.clone(), e),
            other => refusal(other, path.clone()),
        })?;
        let warning = format!(
            "the state store `{}` could not be read ({e}); it was moved to `{}` and rebuilt. \
             Outputs are untouched; jobs whose records were lost will rerun.",
            path.display(),
            aside.display()
        );
        Ok((Self { conn, path }, Some(warning)))
    }

    /// Reads what was recorded without changing anything (for `--dry-run`, `--summary`,
    /// `--dag`): an older format is migrated in a transaction that is rolled back; a damaged
    /// store is reported and treated as empty, but left where it is. A newer store is an error.
    pub fn peek(dir: &Path) -> Result<(Snapshot, Option<String>), StoreError> {
        let path = dir.join("store.db");
        if !path.exists() {
            return Ok((Snapshot::default(), None));
        }
        let read = Connection::open(&path)
            .map_err(SetupError::Damaged)
            .and_then(|mut conn| {
                let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
                if version > FORMAT_VERSION {
                    return Err(SetupError::Newer(version));
                }
                let tx = conn.transaction()?;
                if version < FORMAT_VERSION && version > 0 {
                    migrate::forward(&tx, version)
                        .map_err(|e| SetupError::Migrate(version, e, None))?;
                }
                Ok(read_snapshot(&tx)?)
            });
        match read {
            Ok(snap) => Ok((snap, None)),
            Err(SetupError::Damaged(e)) => Ok((
                Snapshot::default(),
                Some(format!(
                    "state store `{}`: {e}; this plan assumes nothing was recorded. The next run moves the store aside and rebuilds it.",
                    path.display()
                )),
            )),
            Err(other) => Err(refusal(other, path)),
        }
    }

    fn sql<T>(&self, r: rusqlite::Result<T>) -> Result<T, StoreError> {
        r.map_err(|e| StoreError::Sql(self.path.clone(), e))
    }

    /// Reads every record, incomplete mark and past duration.
    pub fn snapshot(&self) -> Result<Snapshot, StoreError> {
        self.sql(read_snapshot(&self.conn))
    }

    /// Remembers how long a job took (its last run replaces the one before).
    pub fn remember(&mut self, label: &str, past: &Past) -> Result<(), StoreError> {
        let r = self
            .conn
            .prepare_cached(
                "INSERT OR REPLACE INTO history (label, rule, finished, seconds) \
                 VALUES (?1, ?2, ?3, ?4)",
            )
            .and_then(|mut stmt| {
                stmt.execute(params![label, past.rule, past.finished, past.seconds])
            });
        self.sql(r).map(drop)
    }

    /// Remembers that a job was submitted to a cluster (replacing an earlier submission of it).
    pub fn submitted(&mut self, s: &Submission) -> Result<(), StoreError> {
        let r = self
            .conn
            .prepare_cached(
                "INSERT OR REPLACE INTO submissions (label, job_id, run, dir) \
                 VALUES (?1, ?2, ?3, ?4)",
            )
            .and_then(|mut stmt| stmt.execute(params![s.label, s.job_id, s.run, s.dir]));
        self.sql(r).map(drop)
    }

    /// Forgets the submission of job `label`, once its end has been taken in.
    pub fn settled(&mut self, label: &str) -> Result<(), StoreError> {
        let r = self
            .conn
            .prepare_cached("DELETE FROM submissions WHERE label = ?1")
            .and_then(|mut stmt| stmt.execute(params![label]));
        self.sql(r).map(drop)
    }

    /// Every submission not yet settled, by label.
    pub fn submissions(&self) -> Result<FxHashMap<String, Submission>, StoreError> {
        let read = || -> rusqlite::Result<FxHashMap<String, Submission>> {
            let mut stmt = self
                .conn
                .prepare("SELECT label, job_id, run, dir FROM submissions")?;
            let rows = stmt.query_map([], |r| {
                Ok(Submission {
                    label: r.get(0)?,
                    job_id: r.get(1)?,
                    run: r.get(2)?,
                    dir: r.get(3)?,
                })
            })?;
            rows.map(|row| row.map(|s| (s.label.clone(), s))).collect()
        };
        self.sql(read())
    }

    fn each_path<'a>(
        &mut self,
        sql: &str,
        paths: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), StoreError> {
        let path = self.path.clone();
        let err = |e| StoreError::Sql(path.clone(), e);
        let tx = self.conn.transaction().map_err(err)?;
        {
            let mut stmt = tx.prepare_cached(sql).map_err(err)?;
            for p in paths {
                stmt.execute(params![p]).map_err(err)?;
            }
        }
        tx.commit().map_err(err)
    }

    /// Marks outputs as being made (before their job starts).
    pub fn mark_incomplete<'a>(
        &mut self,
        paths: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), StoreError> {
        self.each_path("INSERT OR IGNORE INTO incomplete (path) VALUES (?1)", paths)
    }

    /// Clears incomplete marks (a failed job whose outputs were removed).
    pub fn clear_incomplete<'a>(
        &mut self,
        paths: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), StoreError> {
        self.each_path("DELETE FROM incomplete WHERE path = ?1", paths)
    }

    /// Forgets outputs: their records and incomplete marks (`--clean` deleted them).
    pub fn forget<'a>(
        &mut self,
        paths: impl IntoIterator<Item = &'a str> + Clone,
    ) -> Result<(), StoreError> {
        self.each_path("DELETE FROM records WHERE path = ?1", paths.clone())?;
        self.each_path("DELETE FROM software WHERE path = ?1", paths.clone())?;
        self.each_path("DELETE FROM incomplete WHERE path = ?1", paths)
    }

    /// Records finished outputs and clears their incomplete marks, in one transaction.
    pub fn record<'a>(
        &mut self,
        records: impl IntoIterator<Item = (&'a str, &'a Record)>,
    ) -> Result<(), StoreError> {
        let path = self.path.clone();
        let err = |e| StoreError::Sql(path.clone(), e);
        let tx = self.conn.transaction().map_err(err)?;
        {
            let mut put = tx
                .prepare_cached("INSERT OR REPLACE INTO records (path, data) VALUES (?1, ?2)")
                .map_err(err)?;
            let mut done = tx
                .prepare_cached("DELETE FROM incomplete WHERE path = ?1")
                .map_err(err)?;
            let mut software = tx
                .prepare_cached("INSERT OR REPLACE INTO software (path, identity) VALUES (?1, ?2)")
                .map_err(err)?;
            let mut no_software = tx
                .prepare_cached("DELETE FROM software WHERE path = ?1")
                .map_err(err)?;
            for (p, rec) in records {
                let data = postcard::to_allocvec(rec).unwrap_or_default();
                put.execute(params![p, data]).map_err(err)?;
                done.execute(params![p]).map_err(err)?;
                if rec.software.is_empty() {
                    no_software.execute(params![p]).map_err(err)?;
                } else {
                    software.execute(params![p, rec.software]).map_err(err)?;
                }
            }
        }
        tx.commit().map_err(err)
    }
}

/// The error for a store flowrun must not touch.
fn refusal(e: SetupError, path: PathBuf) -> StoreError {
    match e {
        SetupError::Damaged(e) => StoreError::Sql(path, e),
        SetupError::Newer(found) => StoreError::Newer { path, found },
        SetupError::Migrate(from, error, backup) => StoreError::Migrate {
            path,
            from,
            error,
            backup: backup.map_or(String::new(), |b| {
                format!(" (a copy from before the upgrade is at `{}`)", b.display())
            }),
        },
    }
}

/// Reads every record, incomplete mark and past duration. Undecodable records are skipped
/// (they rerun).
fn read_snapshot(conn: &Connection) -> rusqlite::Result<Snapshot> {
    let mut snap = Snapshot::default();
    let mut stmt = conn.prepare("SELECT path, data FROM records")?;
    let rows = stmt.query_map([], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?))
    })?;
    for row in rows {
        let (path, data) = row?;
        if let Ok(rec) = postcard::from_bytes::<Record>(&data) {
            snap.records.insert(path, rec);
        }
    }
    let mut stmt = conn.prepare("SELECT path, identity FROM software")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
    for row in rows {
        let (path, identity) = row?;
        if let Some(rec) = snap.records.get_mut(&path) {
            rec.software = identity;
        }
    }
    let mut stmt = conn.prepare("SELECT path FROM incomplete")?;
    for row in stmt.query_map([], |r| r.get::<_, String>(0))? {
        snap.incomplete.insert(row?);
    }
    let mut stmt = conn.prepare("SELECT label, rule, finished, seconds FROM history")?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            Past {
                rule: r.get(1)?,
                finished: r.get(2)?,
                seconds: r.get(3)?,
            },
        ))
    })?;
    for row in rows {
        let (label, past) = row?;
        snap.history.insert(label, past);
    }
    Ok(snap)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec() -> Record {
        let sig = FileSig {
            mtime_ns: 1,
            size: 2,
            hash: 3,
        };
        Record {
            rule: "r".into(),
            code: 4,
            params: 5,
            inputs: vec![("in".into(), sig)],
            output: sig,
            software: String::new(),
        }
    }

    #[test]
    fn records_and_marks_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, warning) = Store::open(dir.path()).unwrap();
        assert!(warning.is_none());
        store.mark_incomplete(["a", "b"]).unwrap();
        store.record([("a", &rec())]).unwrap();
        drop(store);
        let (store, _) = Store::open(dir.path()).unwrap();
        let snap = store.snapshot().unwrap();
        assert_eq!(snap.records["a"], rec());
        assert_eq!(snap.incomplete, FxHashSet::from_iter(["b".to_string()]));
    }

    #[test]
    fn a_software_identity_is_kept_beside_its_record_and_dropped_when_gone() {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, _) = Store::open(dir.path()).unwrap();
        let with = Record {
            software: "software python=python-1".into(),
            ..rec()
        };
        store.record([("a", &with), ("b", &rec())]).unwrap();
        let snap = store.snapshot().unwrap();
        assert_eq!(snap.records["a"], with);
        assert_eq!(snap.records["b"].software, "");
        // The record's own encoding is unchanged: older stores' records decode as before.
        assert_eq!(
            postcard::to_allocvec(&with).unwrap(),
            postcard::to_allocvec(&rec()).unwrap()
        );
        store.record([("a", &rec())]).unwrap();
        assert_eq!(store.snapshot().unwrap().records["a"].software, "");
    }

    #[test]
    fn garbage_store_is_moved_aside_and_rebuilt() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("store.db"),
            b"this is not a database at all, not even close.....",
        )
        .unwrap();
        let (store, warning) = Store::open(dir.path()).unwrap();
        let warning = warning.expect("a warning");
        assert!(warning.contains("could not be read"), "{warning}");
        assert!(store.snapshot().unwrap().records.is_empty());
        let aside = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(Result::ok)
            .any(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with("store.db.broken-")
            });
        assert!(aside);
    }

    #[test]
    fn newer_format_is_refused_and_left_untouched() {
        let dir = tempfile::tempdir().unwrap();
        {
            let conn = Connection::open(dir.path().join("store.db")).unwrap();
            conn.pragma_update(None, "user_version", FORMAT_VERSION + 1)
                .unwrap();
        }
        let before = std::fs::read(dir.path().join("store.db")).unwrap();
        let Err(e) = Store::open(dir.path()) else {
            panic!("a newer store was opened")
        };
        assert!(e.to_string().contains("written by a newer flowrun"), "{e}");
        assert!(Store::peek(dir.path()).is_err());
        let after = std::fs::read(dir.path().join("store.db")).unwrap();
        assert!(after == before, "the store changed");
    }

    #[test]
    fn submissions_round_trip_until_settled() {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, _) = Store::open(dir.path()).unwrap();
        let sub = |id: &str| Submission {
            label: "count[s=a]".into(),
            job_id: id.into(),
            run: "flowrun-1".into(),
            dir: ".flowrun/slurm/count/s=a".into(),
        };
        store.submitted(&sub("7")).unwrap();
        store.submitted(&sub("8")).unwrap();
        drop(store);
        let (mut store, _) = Store::open(dir.path()).unwrap();
        let all = store.submissions().unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all["count[s=a]"], sub("8"));
        store.settled("count[s=a]").unwrap();
        assert!(store.submissions().unwrap().is_empty());
    }

    #[test]
    fn history_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, _) = Store::open(dir.path()).unwrap();
        let past = Past {
            rule: "r".into(),
            finished: 1_700_000_000,
            seconds: 1.5,
        };
        store.remember("r[x=1]", &past).unwrap();
        let snap = store.snapshot().unwrap();
        assert_eq!(snap.history["r[x=1]"], past);
    }
}
