//! The witness's state, in one SQLite file:
//!
//! - `witness_log`: per origin, the latest cosigned checkpoint (size, 32-byte root, the log's
//!   signed note as submitted, the cosignature timestamp);
//! - `witness_cosigned`: every note the witness cosigned, whole (the submitted note with the
//!   witness's cosignature line appended), in order.
//!
//! A log advances only by compare-and-swap inside one `BEGIN IMMEDIATE` transaction: the row
//! must still hold the size and root the request was checked against, so two concurrent
//! requests can never roll a log back (the race c2sp.org/tlog-witness describes).

use cortex_core::{Error, Hash, Result};
use rusqlite::{Connection, OptionalExtension, params};
use std::path::Path;
use std::sync::Mutex;

/// A log's latest cosigned checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogHead {
    /// Tree size.
    pub size: u64,
    /// Root hash.
    pub root: Hash,
    /// The log's signed note, as submitted.
    pub note: String,
}

/// What a compare-and-swap did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Advance {
    /// The log now stands at the new checkpoint.
    Advanced,
    /// The stored checkpoint was no longer the expected one; this is its size.
    Conflict(u64),
}

/// The witness's persistent state.
#[derive(Debug)]
pub struct WitnessState {
    conn: Mutex<Connection>,
}

const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS witness_log (
        origin     TEXT PRIMARY KEY,
        size       INTEGER NOT NULL,
        root       BLOB NOT NULL,
        note       TEXT NOT NULL,
        cosigned_at INTEGER NOT NULL
    );
    CREATE TABLE IF NOT EXISTS witness_cosigned (
        seq           INTEGER PRIMARY KEY AUTOINCREMENT,
        origin        TEXT NOT NULL,
        size          INTEGER NOT NULL,
        root          BLOB NOT NULL,
        cosigned_note TEXT NOT NULL,
        cosigned_at   INTEGER NOT NULL
    );
    CREATE INDEX IF NOT EXISTS witness_cosigned_origin ON witness_cosigned (origin, seq);
";

fn db_error(what: &str) -> impl FnOnce(rusqlite::Error) -> Error + '_ {
    move |e| Error::backend(format!("witness state: {what}")).with_source(e)
}

fn to_sql_size(size: u64) -> Result<i64> {
    i64::try_from(size).map_err(|_| Error::invalid(format!("tree size {size} is above 2^63-1")))
}

impl WitnessState {
    /// Opens (creating if needed) the state file.
    pub fn open(path: &Path) -> Result<WitnessState> {
        let conn = Connection::open(path).map_err(|e| {
            Error::config(format!("cannot open the witness state {}", path.display()))
                .with_source(e)
        })?;
        let unusable = |e: rusqlite::Error| {
            Error::config(format!(
                "{} is not a usable witness state file",
                path.display()
            ))
            .with_source(e)
        };
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(unusable)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(unusable)?;
        conn.execute_batch(SCHEMA).map_err(unusable)?;
        Ok(WitnessState {
            conn: Mutex::new(conn),
        })
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Connection>> {
        self.conn
            .lock()
            .map_err(|_| Error::backend("witness state lock poisoned"))
    }

    /// The latest cosigned checkpoint of `origin`, if any.
    pub fn latest(&self, origin: &str) -> Result<Option<LogHead>> {
        let conn = self.lock()?;
        read_head(&conn, origin)
    }

    /// Moves `origin` from `expected` (its latest checkpoint as checked; `None` for a log never
    /// cosigned) to `new`, recording `cosigned_note`, atomically.
    pub fn advance(
        &self,
        origin: &str,
        expected: Option<&LogHead>,
        new: &LogHead,
        cosigned_note: &str,
        cosigned_at: u64,
    ) -> Result<Advance> {
        let size = to_sql_size(new.size)?;
        let at = to_sql_size(cosigned_at)?;
        let mut conn = self.lock()?;
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(db_error("begin"))?;
        let current = read_head(&tx, origin)?;
        let same = match (&current, expected) {
            (None, None) => true,
            (Some(c), Some(e)) => c.size == e.size && c.root == e.root,
            _ => false,
        };
        if !same {
            return Ok(Advance::Conflict(current.map_or(0, |c| c.size)));
        }
        let root = new.root.as_bytes().as_slice();
        tx.execute(
            "INSERT INTO witness_log (origin, size, root, note, cosigned_at) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (origin) DO UPDATE SET size = ?2, root = ?3, note = ?4, cosigned_at = ?5",
            params![origin, size, root, new.note, at],
        )
        .map_err(db_error("update the log"))?;
        tx.execute(
            "INSERT INTO witness_cosigned (origin, size, root, cosigned_note, cosigned_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![origin, size, root, cosigned_note, at],
        )
        .map_err(db_error("record the cosigned note"))?;
        tx.commit().map_err(db_error("commit"))?;
        Ok(Advance::Advanced)
    }

    /// Every note cosigned for `origin`, oldest first (each with the cosignature line).
    pub fn cosigned_notes(&self, origin: &str) -> Result<Vec<String>> {
        let conn = self.lock()?;
        let mut stmt = conn
            .prepare("SELECT cosigned_note FROM witness_cosigned WHERE origin = ?1 ORDER BY seq")
            .map_err(db_error("read cosigned notes"))?;
        let rows = stmt
            .query_map([origin], |r| r.get::<_, String>(0))
            .map_err(db_error("read cosigned notes"))?;
        rows.collect::<std::result::Result<Vec<_>, _>>()
            .map_err(db_error("read cosigned notes"))
    }
}

fn read_head(conn: &Connection, origin: &str) -> Result<Option<LogHead>> {
    let row = conn
        .query_row(
            "SELECT size, root, note FROM witness_log WHERE origin = ?1",
            [origin],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, Vec<u8>>(1)?,
                    r.get::<_, String>(2)?,
                ))
            },
        )
        .optional()
        .map_err(db_error("read the log"))?;
    let Some((size, root, note)) = row else {
        return Ok(None);
    };
    let corrupt = |what: &str| Error::integrity(format!("witness state for {origin:?}: {what}"));
    Ok(Some(LogHead {
        size: u64::try_from(size).map_err(|_| corrupt("negative size"))?,
        root: Hash::from_slice(&root).map_err(|_| corrupt("root is not 32 bytes"))?,
        note,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(size: u64, byte: u8) -> LogHead {
        LogHead {
            size,
            root: Hash([byte; 32]),
            note: format!("note {size}\n"),
        }
    }

    /// The race of c2sp.org/tlog-witness: requests A (size 6) and B (size 9) are both checked
    /// against size 4; B is written first. A's write must then fail, not roll B back.
    #[test]
    fn a_write_checked_against_a_stale_state_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let state = WitnessState::open(&dir.path().join("w.db")).unwrap();
        assert_eq!(
            state.advance("o", None, &head(4, 1), "n4", 1).unwrap(),
            Advance::Advanced
        );
        let checked = state.latest("o").unwrap().unwrap();
        assert_eq!(
            state
                .advance("o", Some(&checked), &head(9, 3), "n9", 2)
                .unwrap(),
            Advance::Advanced
        );
        assert_eq!(
            state
                .advance("o", Some(&checked), &head(6, 2), "n6", 3)
                .unwrap(),
            Advance::Conflict(9)
        );
        // A first cosignature racing another first one is refused the same way.
        assert_eq!(
            state.advance("o", None, &head(2, 5), "n2", 4).unwrap(),
            Advance::Conflict(9)
        );
        assert_eq!(state.latest("o").unwrap().unwrap(), head(9, 3));
        assert_eq!(state.cosigned_notes("o").unwrap(), ["n4", "n9"]);
    }

    #[test]
    fn state_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.db");
        let state = WitnessState::open(&path).unwrap();
        state.advance("o", None, &head(4, 1), "n4", 1).unwrap();
        drop(state);
        let again = WitnessState::open(&path).unwrap();
        assert_eq!(again.latest("o").unwrap().unwrap(), head(4, 1));
        assert!(again.latest("other").unwrap().is_none());
    }

    #[test]
    fn a_file_that_is_not_sqlite_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.db");
        std::fs::write(
            &path,
            "not a database, just text that is long enough to matter\n".repeat(20),
        )
        .unwrap();
        let e = WitnessState::open(&path).unwrap_err();
        assert!(e.to_string().contains("w.db"), "{e}");
    }
}
