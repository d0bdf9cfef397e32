//! The connections: one writer behind a mutex, a small pool of read-only readers for parallel
//! scans, the pragmas each is opened with, and SQLite errors as CORTEX errors.

use crate::{SqliteOptions, SqliteStore, Synchronous};
use cortex_core::{Error, ErrorKind, Result};
use rusqlite::{Connection, OpenFlags};
use std::path::Path;
use std::sync::MutexGuard;
use std::time::{Duration, Instant};

/// Page cache of the writer connection, KiB.
const WRITER_CACHE_KIB: u32 = 16 * 1024;
/// Page cache of each reader connection, KiB.
const READER_CACHE_KIB: u32 = 2 * 1024;
/// Bytes of the database file mapped into memory for reads. Zero: mapped pages count in the
/// process's RSS (a full scan would map the whole file), while pages read through the OS page
/// cache do not; the scan speed given up is a few percent (BENCHMARKS.md).
const MMAP_BYTES: u64 = 0;

pub(crate) fn sql_err(path: &Path) -> impl Fn(rusqlite::Error) -> Error + '_ {
    move |e| {
        let kind = match &e {
            rusqlite::Error::SqliteFailure(f, _)
                if matches!(
                    f.code,
                    rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                ) =>
            {
                ErrorKind::Unavailable
            }
            _ => ErrorKind::Backend,
        };
        Error::new(kind, format!("SQLite error on {}", path.display())).with_source(e)
    }
}

/// Runs `f` again while SQLite answers that the database is busy, for up to `timeout`.
///
/// Switching a new database to WAL mode takes an exclusive lock, and when several processes
/// open a fresh database at once SQLite may answer BUSY at once instead of waiting in the busy
/// handler (two connections each holding a shared lock and waiting for the other's would
/// deadlock), so the busy timeout alone does not cover a first start.
fn retry_busy<T>(
    timeout: Duration,
    mut f: impl FnMut() -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    let deadline = Instant::now() + timeout;
    // Processes started together should not retry in step: start the pause at 1–8 ms.
    let mut pause = Duration::from_millis(1 + u64::from(std::process::id() % 8));
    loop {
        match f() {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if matches!(
                    e.code,
                    rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                ) && Instant::now() < deadline =>
            {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            other => return other,
        }
    }
}

impl SqliteStore {
    pub(crate) fn connect(
        path: &Path,
        options: &SqliteOptions,
        read_only: bool,
    ) -> Result<Connection> {
        let flags = if read_only {
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
        } else {
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
        };
        let e = sql_err(path);
        let conn = Connection::open_with_flags(path, flags).map_err(&e)?;
        conn.busy_timeout(options.busy_timeout).map_err(&e)?;
        // Larger pages mean fewer b-tree cells to balance per appended row; only takes effect
        // when the database is created (before WAL mode is set).
        // These fail, with a clear message naming the file, if it is not a SQLite database.
        let unusable = |err: rusqlite::Error| {
            Error::invalid(format!(
                "{} is not a usable SQLite database",
                path.display()
            ))
            .with_source(err)
        };
        if !read_only {
            retry_busy(options.busy_timeout, || {
                conn.execute_batch("PRAGMA page_size=8192")
            })
            .map_err(unusable)?;
        }
        let mode: String = retry_busy(options.busy_timeout, || {
            conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
        })
        .map_err(unusable)?;
        if !mode.eq_ignore_ascii_case("wal") && !read_only {
            return Err(Error::backend(format!(
                "{} could not be switched to WAL mode",
                path.display()
            )));
        }
        // The writer keeps a larger page cache (b-tree interior pages of every table it appends
        // to); readers lean on the OS page cache, and there may be several of them, so their
        // caches stay small to keep a serving process's memory bounded.
        let cache_kib = if read_only {
            READER_CACHE_KIB
        } else {
            WRITER_CACHE_KIB
        };
        let sync = match options.synchronous {
            Synchronous::Full => "FULL",
            Synchronous::Normal => "NORMAL",
        };
        conn.execute_batch(&format!(
            "PRAGMA synchronous={sync}; PRAGMA foreign_keys=ON; PRAGMA cache_size=-{cache_kib}; \
             PRAGMA wal_autocheckpoint=8192; PRAGMA mmap_size={MMAP_BYTES}; PRAGMA temp_store=MEMORY;"
        ))
        .map_err(&e)?;
        conn.set_prepared_statement_cache_capacity(64);
        Ok(conn)
    }

    pub(crate) fn writer(&self) -> Result<MutexGuard<'_, Connection>> {
        self.writer
            .lock()
            .map_err(|_| Error::backend("SQLite writer lock poisoned"))
    }

    pub(crate) fn with_reader<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let conn = self
            .readers
            .lock()
            .map_err(|_| Error::backend("reader pool poisoned"))?
            .pop();
        let conn = match conn {
            Some(c) => c,
            None => Self::connect(&self.path, &self.options, true)?,
        };
        let out = f(&conn);
        if let Ok(mut pool) = self.readers.lock()
            && pool.len() < 8
        {
            pool.push(conn);
        }
        out
    }

    pub(crate) fn err(&self) -> impl Fn(rusqlite::Error) -> Error + '_ {
        sql_err(&self.path)
    }
}
