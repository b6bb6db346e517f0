//! The record of what was built: one SQLite database, `.flowrun/store.db`.
//!
//! For each output we keep what it was made from (rule, code hash, params hash, every input's
//! signature) and what it came out as, plus a table of outputs whose job started but did not
//! finish. SQLite in WAL mode with `synchronous=NORMAL` makes every commit survive a crash of
//! flowrun itself (kill -9) at the cost of a write to the log, not an fsync; a power loss may
//! lose the last commits, which only means some jobs rerun.
//!
//! A store that cannot be read (corrupt, truncated, another format version) is moved aside and
//! rebuilt; outputs are never touched, and the next run reruns what it can no longer vouch for.

use rustc_hash::{FxHashMap, FxHashSet};
use std::path::{Path, PathBuf};

use rusqlite::{params, Connection};
use serde::{Deserialize, Serialize};

use crate::graph::filestate::FileSig;

/// Bumped whenever the layout or the record encoding changes.
pub const FORMAT_VERSION: i64 = 1;

/// How one output was made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub rule: String,
    pub code: u128,
    pub params: u128,
    /// Input paths (in the rule's order) with their signatures when the job ran.
    pub inputs: Vec<(String, FileSig)>,
    pub output: FileSig,
}

/// Store errors that cannot be repaired by rebuilding.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create `{0}`: {1}")]
    Create(PathBuf, std::io::Error),
    #[error("state store `{0}`: {1}")]
    Sql(PathBuf, rusqlite::Error),
}

/// What was recorded, read once at start.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub records: FxHashMap<String, Record>,
    pub incomplete: FxHashSet<String>,
}

/// The open store.
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

fn setup(conn: &Connection) -> rusqlite::Result<()> {
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS records (path TEXT PRIMARY KEY, data BLOB NOT NULL);
         CREATE TABLE IF NOT EXISTS incomplete (path TEXT PRIMARY KEY);",
    )?;
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version == 0 {
        conn.pragma_update(None, "user_version", FORMAT_VERSION)?;
    } else if version != FORMAT_VERSION {
        return Err(rusqlite::Error::InvalidParameterName(format!(
            "format version {version}, this flowrun reads version {FORMAT_VERSION}"
        )));
    }
    // Reading every row proves the file is sound before we trust it.
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
    /// Opens (or creates) the store in `dir`; a damaged store is moved aside, with the
    /// returned warning saying so.
    pub fn open(dir: &Path) -> Result<(Self, Option<String>), StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Create(dir.to_path_buf(), e))?;
        let path = dir.join("store.db");
        let attempt = Connection::open(&path).and_then(|c| setup(&c).map(|_| c));
        match attempt {
            Ok(conn) => Ok((Self { conn, path }, None)),
            Err(e) => {
                let stamp = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                let aside = dir.join(format!("store.db.broken-{stamp}"));
                let _ = std::fs::rename(&path, &aside);
                for ext in ["-wal", "-shm"] {
                    let _ = std::fs::remove_file(dir.join(format!("store.db{ext}")));
                }
                let conn = Connection::open(&path).map_err(|e| StoreError::Sql(path.clone(), e))?;
                setup(&conn).map_err(|e| StoreError::Sql(path.clone(), e))?;
                let warning = format!(
                    "the state store `{}` could not be read ({e}); it was moved to `{}` and rebuilt. \
                     Outputs are untouched; jobs whose records were lost will rerun.",
                    path.display(),
                    aside.display()
                );
                Ok((Self { conn, path }, Some(warning)))
            }
        }
    }

    /// Reads what was recorded without repairing anything (for `--dry-run`, `--summary`,
    /// `--dag`): a damaged store is reported and treated as empty, but left where it is.
    pub fn peek(dir: &Path) -> (Snapshot, Option<String>) {
        let path = dir.join("store.db");
        if !path.exists() {
            return (Snapshot::default(), None);
        }
        let read = Connection::open(&path)
            .and_then(|c| setup(&c).map(|_| c))
            .map_err(|e| StoreError::Sql(path.clone(), e))
            .and_then(|conn| {
                Self {
                    conn,
                    path: path.clone(),
                }
                .snapshot()
            });
        match read {
            Ok(snap) => (snap, None),
            Err(e) => (
                Snapshot::default(),
                Some(format!(
                    "{e}; this plan assumes nothing was recorded. The next run moves the store aside and rebuilds it."
                )),
            ),
        }
    }

    fn sql<T>(&self, r: rusqlite::Result<T>) -> Result<T, StoreError> {
        r.map_err(|e| StoreError::Sql(self.path.clone(), e))
    }

    /// Reads every record and incomplete mark. Undecodable records are skipped (they rerun).
    pub fn snapshot(&self) -> Result<Snapshot, StoreError> {
        let mut snap = Snapshot::default();
        let mut stmt = self.sql(self.conn.prepare("SELECT path, data FROM records"))?;
        let rows = self.sql(stmt.query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?))
        }))?;
        for row in rows {
            let (path, data) = self.sql(row)?;
            if let Ok(rec) = postcard::from_bytes::<Record>(&data) {
                snap.records.insert(path, rec);
            }
        }
        let mut stmt = self.sql(self.conn.prepare("SELECT path FROM incomplete"))?;
        let rows = self.sql(stmt.query_map([], |r| r.get::<_, String>(0)))?;
        for row in rows {
            snap.incomplete.insert(self.sql(row)?);
        }
        Ok(snap)
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
            for (p, rec) in records {
                let data = postcard::to_allocvec(rec).unwrap_or_default();
                put.execute(params![p, data]).map_err(err)?;
                done.execute(params![p]).map_err(err)?;
            }
        }
        tx.commit().map_err(err)
    }
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
    fn other_format_version_is_rebuilt() {
        let dir = tempfile::tempdir().unwrap();
        {
            let conn = Connection::open(dir.path().join("store.db")).unwrap();
            conn.pragma_update(None, "user_version", 99).unwrap();
        }
        let (_, warning) = Store::open(dir.path()).unwrap();
        assert!(warning.unwrap().contains("format version 99"));
    }
}
