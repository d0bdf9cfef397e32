//! Test-only access for the tamper-detection tests (`tests/tamper.rs`): not part of the
//! supported API.

use crate::RedbStore;
use redb::Database;

impl RedbStore {
    /// The open redb database, for tamper-detection tests only: redb admits one handle per file,
    /// so a test that plays someone editing the file writes through this one (bypassing the
    /// ledger, as editing the file while the service is down would: this store keeps no ledger
    /// state in memory). Not part of the supported API.
    #[doc(hidden)]
    pub fn raw_database_for_tests(&self) -> &Database {
        &self.db
    }
}
