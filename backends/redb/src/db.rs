//! The redb database: read and durable write transactions, the writer lock, redb errors as
//! CORTEX errors, opening a table, and refusing a file that is not a redb database.

use crate::RedbStore;
use cortex_core::{Error, ErrorKind, Result};
use redb::{Durability, ReadTransaction, ReadableDatabase, WriteTransaction};
use std::io::Read;
use std::path::Path;

/// The first bytes of every redb file.
const REDB_MAGIC: [u8; 9] = [b'r', b'e', b'd', b'b', 0x1A, 0x0A, 0xA9, 0x0D, 0x0A];

/// Maps a redb error to a CORTEX error naming the file.
pub(crate) fn db_err(path: &Path, e: impl Into<redb::Error>) -> Error {
    let e: redb::Error = e.into();
    let kind = match &e {
        redb::Error::DatabaseAlreadyOpen
        | redb::Error::LockProtocolMismatch
        | redb::Error::TransactionInProgress => ErrorKind::Unavailable,
        redb::Error::ValueTooLarge(_) => ErrorKind::InvalidInput,
        redb::Error::Corrupted(_) => ErrorKind::Integrity,
        _ => ErrorKind::Backend,
    };
    Error::new(kind, format!("redb error on {}", path.display())).with_source(e)
}

impl RedbStore {
    pub(crate) fn err(&self) -> impl Fn(redb::Error) -> Error + '_ {
        move |e| db_err(&self.path, e)
    }

    pub(crate) fn read(&self) -> Result<ReadTransaction> {
        self.db.begin_read().map_err(|e| db_err(&self.path, e))
    }

    /// A write transaction that commits durably (fsync) before `commit` returns.
    pub(crate) fn write(&self) -> Result<WriteTransaction> {
        let mut tx = self.db.begin_write().map_err(|e| db_err(&self.path, e))?;
        tx.set_durability(Durability::Immediate)
            .map_err(|e| db_err(&self.path, e))?;
        Ok(tx)
    }

    pub(crate) fn commit(&self, tx: WriteTransaction) -> Result<()> {
        tx.commit().map_err(|e| db_err(&self.path, e))
    }

    pub(crate) fn lock_writer(&self) -> Result<std::sync::MutexGuard<'_, ()>> {
        self.writer
            .lock()
            .map_err(|_| Error::backend("redb writer lock poisoned"))
    }
}

/// Refuses, with a clear message, an existing non-empty file that is not a redb database
/// (before redb sees it: redb would report a storage error, or try to repair it).
pub(crate) fn check_magic(path: &Path) -> Result<()> {
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(Error::config(format!("cannot open {}", path.display())).with_source(e));
        }
    };
    let mut head = Vec::with_capacity(REDB_MAGIC.len());
    f.by_ref()
        .take(REDB_MAGIC.len() as u64)
        .read_to_end(&mut head)
        .map_err(|e| Error::config(format!("cannot read {}", path.display())).with_source(e))?;
    if !head.is_empty() && head != REDB_MAGIC {
        return Err(Error::invalid(format!(
            "{} is not a usable redb database (no redb header)",
            path.display()
        )));
    }
    Ok(())
}

/// Reads a table inside a read or write transaction, mapping errors.
macro_rules! table {
    ($self:expr, $tx:expr, $def:expr) => {
        $tx.open_table($def)
            .map_err(|e| $crate::db::db_err($self, e))
    };
}

pub(crate) use table;
