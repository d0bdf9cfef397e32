//! The ledger: appends entries with their chain links and Merkle tiles in one transaction, makes
//! signed checkpoints, and serves proofs. It owns no I/O: the [`LedgerStore`](store::LedgerStore) does that.
//!
//! The modules below are its parts, from the bytes up: canonical [`entry`] bytes, [`hash`]ers,
//! the RFC 6962 [`merkle`] tree and its stored [`tiles`], C2SP signed [`note`]s and
//! [`checkpoint`]s with their [`signer`]s and [`anchor`]s, the [`store`] trait, full
//! [`verify`]cation, [`export`]s and [`proof_file`]s, and [`group_commit`] for many single
//! writers. Nothing here knows of the agent memory, which rides on [`Ledger::append_via`].

pub mod anchor;
pub mod anchoring;
pub mod checkpoint;
pub mod commitment;
pub mod entry;
pub mod export;
pub mod group_commit;
pub mod hash;
pub mod merkle;
pub mod note;
pub mod policy;
pub mod proof_file;
pub mod publication;
pub mod signer;
pub mod status;
pub mod store;
pub mod tiles;
pub mod verify;

use crate::error::{Error, ErrorKind, Result};
use crate::ledger::checkpoint::{Checkpoint, CheckpointRecord, ExtraSignature, validate_origin};
use crate::ledger::entry::{Entry, EntryRef, NewEntry, StoredEntry, now_timestamp};
use crate::ledger::hash::{Hash, HashAlgorithm, Hasher};
use crate::ledger::note::{NoteSignature, SignedNote};
use crate::ledger::signer::Signer;
use crate::ledger::store::{AppendBatch, DynLedgerStore, Head, LedgerTx};
use crate::ledger::tiles::{TileNodes, append_tiles};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// Meta key holding the hash algorithm name.
pub const META_HASHER: &str = "hasher";
/// Meta key holding the checkpoint origin.
pub const META_ORIGIN: &str = "origin";
/// Default number of entries between automatic checkpoints (as in the seed).
pub const DEFAULT_CHECKPOINT_EVERY: u64 = 1000;

/// How to open a ledger.
#[derive(Debug, Clone)]
pub struct LedgerOptions {
    /// Hash algorithm; `None` accepts what the store was created with (SHA-256 for a new one).
    pub hasher: Option<HashAlgorithm>,
    /// Make a checkpoint whenever an append crosses a multiple of this many entries (0 = never).
    pub checkpoint_every: u64,
}

impl Default for LedgerOptions {
    fn default() -> Self {
        LedgerOptions {
            hasher: None,
            checkpoint_every: DEFAULT_CHECKPOINT_EVERY,
        }
    }
}

/// What an append did.
#[derive(Debug, Clone)]
pub struct AppendOutcome {
    /// Index of the first entry appended.
    pub first_index: u64,
    /// Number of entries appended.
    pub count: u64,
    /// The committed head after the append.
    pub head: Head,
    /// The checkpoint made automatically because the append crossed a multiple of N.
    pub checkpoint: Option<CheckpointRecord>,
    /// Why that automatic checkpoint could not be made (the append itself is committed).
    pub checkpoint_error: Option<String>,
}

/// Builds an append's [`AppendBatch`] from what it reads inside the write transaction; handed
/// by [`Ledger::append_via`] to the caller that opens the transaction.
pub type BuildBatch<'b, 'a> = dyn FnMut(&mut dyn LedgerTx) -> Result<AppendBatch<'a>> + 'b;

/// What a checkpoint request did.
#[derive(Debug, Clone)]
pub struct CheckpointOutcome {
    /// The latest checkpoint after the call.
    pub record: CheckpointRecord,
    /// False if the latest checkpoint already covered the whole ledger.
    pub created: bool,
}

/// A tamper-evident ledger over a [`LedgerStore`](store::LedgerStore).
pub struct Ledger {
    store: DynLedgerStore,
    hasher: Arc<dyn Hasher>,
    origin: Option<String>,
    signers: Vec<Arc<dyn Signer>>,
    checkpoint_every: u64,
    checkpoint_lock: Mutex<()>,
    /// The head size after this ledger's last append (`u64::MAX`: none yet): the guess the next
    /// append hashes its leaves for before taking the write lock, saving a head read.
    size_hint: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger")
            .field("store", &self.store.scheme())
            .field("hasher", &self.hasher.algorithm())
            .field("origin", &self.origin)
            .finish()
    }
}

impl Ledger {
    /// Opens the ledger in `store`, fixing its hash algorithm on first use.
    pub fn open(store: DynLedgerStore, options: LedgerOptions) -> Result<Ledger> {
        let wanted = options.hasher.unwrap_or(HashAlgorithm::Sha256);
        let stored = store.init_meta(META_HASHER, wanted.name())?;
        let algorithm = HashAlgorithm::parse(&stored).map_err(|_| {
            Error::integrity(format!("the store records an unknown hasher {stored:?}"))
        })?;
        if let Some(w) = options.hasher
            && w != algorithm
        {
            return Err(Error::config(format!(
                "this ledger was created with the {} hasher; it cannot be opened as {}",
                algorithm.name(),
                w.name()
            )));
        }
        let origin = store.meta(META_ORIGIN)?;
        Ok(Ledger {
            store,
            hasher: algorithm.hasher(),
            origin,
            signers: Vec::new(),
            checkpoint_every: options.checkpoint_every,
            checkpoint_lock: Mutex::new(()),
            size_hint: std::sync::atomic::AtomicU64::new(u64::MAX),
        })
    }

    /// Adds a checkpoint signer. The first note signer's key name becomes the ledger's origin
    /// (recorded in the store); a later key with another name is refused.
    pub fn add_signer(&mut self, signer: Arc<dyn Signer>) -> Result<()> {
        if signer.scheme().is_note() {
            let name = signer.key_name();
            validate_origin(name, self.hasher.algorithm())?;
            let origin = self.store.init_meta(META_ORIGIN, name)?;
            if origin != name {
                return Err(Error::config(format!(
                    "this ledger's origin is {origin:?}, but the signing key is named {name:?}; \
                     the note key name must equal the origin"
                )));
            }
            self.origin = Some(origin);
        }
        self.signers.push(signer);
        Ok(())
    }

    /// The store.
    pub fn store(&self) -> &DynLedgerStore {
        &self.store
    }
    /// The hasher.
    pub fn hasher(&self) -> &dyn Hasher {
        &*self.hasher
    }
    /// The origin, once a note signer has been attached or a checkpoint made.
    pub fn origin(&self) -> Option<&str> {
        self.origin.as_deref()
    }
    /// The committed head.
    pub fn head(&self) -> Result<Head> {
        self.store.head()
    }

    /// Appends entries atomically: all or none, indices consecutive. Returns once committed.
    pub fn append(&self, entries: &[NewEntry]) -> Result<AppendOutcome> {
        let store = self.store.clone();
        self.append_via(entries, &mut |build| store.append(build))
    }

    /// Appends entries inside a write transaction that `commit` opens, for a layer that keeps
    /// state of its own in the ledger's store and must write it atomically with the entries
    /// (the agent memory). `commit` runs the builder it is given
    /// inside one exclusive write transaction, writes the [`AppendBatch`] the builder returns
    /// together with whatever it adds, and commits durably. The builder computes the batch
    /// (chain links, tiles, new head) from the head and tiles it reads in that transaction;
    /// the batch's `first_index` and `timestamp` say where the entries land. The ledger math is
    /// the same as [`Ledger::append`]'s, which is `append_via` with the store's own `append`.
    pub fn append_via(
        &self,
        entries: &[NewEntry],
        commit: &mut dyn for<'b> FnMut(&mut BuildBatch<'b, '_>) -> Result<Head>,
    ) -> Result<AppendOutcome> {
        if entries.is_empty() {
            return Err(Error::invalid("nothing to append: the batch is empty"));
        }
        let h = &*self.hasher;
        // Validate and hash the leaves before taking the write lock, on every core, assuming the
        // head is where this ledger's last append left it (read from the store the first time).
        // If another writer got in first, the leaves are redone under the lock with a fresh
        // timestamp, so an entry is never stamped earlier than one committed before its batch
        // began (as far as the host clock is monotonic).
        let guess = match self.size_hint.load(std::sync::atomic::Ordering::Relaxed) {
            u64::MAX => self.store.head()?.size,
            size => size,
        };
        let mut ts = now_timestamp();
        let mut leaves = prepare_leaves(h, guess, &ts, entries)?;
        let mut first = 0;
        let head = commit(&mut |tx: &mut dyn LedgerTx| {
            let head = tx.head();
            first = head.size;
            if head.size != guess {
                ts = now_timestamp();
                leaves = prepare_leaves(h, head.size, &ts, entries)?;
            }
            let mut prev = head.last_hash;
            let mut links = Vec::with_capacity(entries.len());
            for leaf in &leaves {
                let hash = h.chain(&prev, leaf);
                links.push((prev, hash));
                prev = hash;
            }
            let tiles = append_tiles(h, head.size, &mut |l, i| tx.read_tile(l, i), &leaves)?;
            Ok(AppendBatch {
                first_index: head.size,
                timestamp: ts.clone(),
                entries,
                links,
                tiles,
                new_head: Head {
                    size: head.size + entries.len() as u64,
                    last_hash: prev,
                },
            })
        })?;
        self.size_hint
            .store(head.size, std::sync::atomic::Ordering::Relaxed);
        let n = self.checkpoint_every;
        let crossed = n > 0 && first / n != head.size / n;
        // The entries are committed whatever happens to the checkpoint: a failure to sign it is
        // reported beside the outcome, never as a failed append (a caller retrying would write
        // the entries twice). The next crossing, or `checkpoint()`, signs again.
        let (mut checkpoint, mut checkpoint_error) = (None, None);
        if crossed && self.note_signer().is_some() {
            match self.checkpoint() {
                Ok(c) => checkpoint = Some(c.record),
                Err(e) => checkpoint_error = Some(e.to_string()),
            }
        }
        Ok(AppendOutcome {
            first_index: first,
            count: entries.len() as u64,
            head,
            checkpoint,
            checkpoint_error,
        })
    }

    fn note_signer(&self) -> Option<&Arc<dyn Signer>> {
        self.signers.iter().find(|s| s.scheme().is_note())
    }

    /// Root of the first `size` entries, from the stored tiles.
    pub fn root_at(&self, size: u64) -> Result<Hash> {
        let h = &*self.hasher;
        TileNodes::new(&*self.store, h).prefetched(|n| merkle::root(n, h, size))
    }

    /// The head, checked against the stored rows: they must end exactly where the head says.
    /// Appends (from this process or others) may commit between the two reads, so a mismatch
    /// only counts when the head did not move meanwhile; a head that keeps moving is retried.
    fn consistent_head(&self) -> Result<Head> {
        let mut head = self.store.head()?;
        for _ in 0..64 {
            let rows_end = self.store.last_entry_index()?.map_or(0, |l| l + 1);
            let again = self.store.head()?;
            if again != head {
                head = again;
                continue;
            }
            if rows_end != head.size {
                return Err(Error::integrity(format!(
                    "the ledger head records {} entries but the stored rows end at {rows_end}; \
                     refusing to sign (run `cortex ledger verify`)",
                    head.size
                )));
            }
            return Ok(head);
        }
        Err(Error::new(
            ErrorKind::Unavailable,
            "the ledger head kept moving while the checkpoint read it; try again",
        ))
    }

    /// Signs and stores a checkpoint of the whole committed ledger.
    ///
    /// Refuses (with an integrity error) when the stored tree no longer matches the latest
    /// checkpoint, or the ledger is shorter than it: a new signature must never vouch for a
    /// history that contradicts an earlier one. The signed note is returned only after the
    /// checkpoint row is committed.
    ///
    /// Another process may store a checkpoint between this one's reads and its write; the store
    /// then refuses this one (`Conflict`: it would not follow the newest), and the checkpoint is
    /// made again from the new state, up to 16 times.
    pub fn checkpoint(&self) -> Result<CheckpointOutcome> {
        let signer = self.note_signer().ok_or_else(|| {
            Error::config("no checkpoint signing key is configured (see `cortex keys generate`)")
        })?;
        let _guard = self
            .checkpoint_lock
            .lock()
            .map_err(|_| Error::backend("lock poisoned"))?;
        let mut tries = 0;
        loop {
            match self.try_checkpoint(signer) {
                Err(e) if e.kind() == ErrorKind::Conflict && tries < 16 => tries += 1,
                r => return r,
            }
        }
    }

    fn try_checkpoint(&self, signer: &Arc<dyn Signer>) -> Result<CheckpointOutcome> {
        let h = &*self.hasher;
        // The newest checkpoint first: another signer (process) can only add larger ones later,
        // and those are never larger than a head read after this.
        let latest = self.store.latest_checkpoint()?;
        let head = self.consistent_head()?;
        if let Some(l) = &latest {
            if l.size == head.size {
                return Ok(CheckpointOutcome {
                    record: l.clone(),
                    created: false,
                });
            }
            if l.size > head.size {
                return Err(Error::integrity(format!(
                    "the ledger holds {} entries but checkpoint {} signed {}; refusing to sign \
                     a shorter history (run `cortex ledger verify`)",
                    head.size, l.size, l.size
                )));
            }
        }
        if head.size == 0 {
            return Err(Error::invalid(
                "the ledger is empty: append entries before checkpointing",
            ));
        }
        let (root, since) = TileNodes::new(&*self.store, h).prefetched(|n| {
            let root = merkle::root(n, h, head.size)?;
            let since = match &latest {
                Some(l) => Some((
                    merkle::root(n, h, l.size)?,
                    merkle::consistency_proof(n, h, l.size, head.size)?,
                )),
                None => None,
            };
            Ok((root, since))
        })?;
        if let (Some(l), Some((old_root, proof))) = (&latest, since)
            && (old_root != l.root
                || merkle::verify_consistency(h, l.size, head.size, &l.root, &root, &proof)
                    .is_err())
        {
            return Err(Error::integrity(format!(
                "the stored tree is not consistent with checkpoint {} (root {}); refusing \
                 to sign (run `cortex ledger verify`)",
                l.size,
                l.root.to_base64()
            )));
        }
        let origin = signer.key_name().to_owned();
        let body = Checkpoint {
            origin,
            size: head.size,
            root,
            extensions: Vec::new(),
        }
        .to_text();
        let mut note = SignedNote::new(body.clone())?;
        let mut extra = Vec::new();
        for s in &self.signers {
            let sig = s.sign(body.as_bytes())?;
            match s.note_key_id() {
                Some(key_id) if s.scheme().is_note() => note.signatures.push(NoteSignature {
                    name: s.key_name().to_owned(),
                    key_id,
                    signature: sig,
                }),
                _ => extra.push(ExtraSignature {
                    scheme: s.scheme().name().to_owned(),
                    key_name: s.key_name().to_owned(),
                    signature: String::from_utf8(sig).map_err(|_| {
                        Error::backend(format!("{} signer returned non-text", s.scheme().name()))
                    })?,
                }),
            }
        }
        let start = latest.as_ref().map_or(0, |l| l.size);
        let record = CheckpointRecord {
            size: head.size,
            range_start: start,
            range_count: head.size - start,
            root,
            note: note.to_text(),
            created_at: now_timestamp(),
            extra_signatures: extra,
            receipts: Vec::new(),
        };
        self.store.add_checkpoint(&record)?;
        Ok(CheckpointOutcome {
            record,
            created: true,
        })
    }

    /// Reads one stored entry.
    pub fn entry(&self, index: u64) -> Result<StoredEntry> {
        let mut found = None;
        self.store
            .scan_entries(index..index.saturating_add(1), &mut |r| {
                found = Some(StoredEntry {
                    entry: Entry {
                        index: r.entry.index,
                        timestamp: r.entry.timestamp.to_owned(),
                        project: r.entry.project.to_owned(),
                        action: r.entry.action.to_owned(),
                        detail: r.entry.detail.to_owned(),
                    },
                    prev_hash: Hash::from_slice(r.prev_hash)?,
                    hash: Hash::from_slice(r.hash)?,
                });
                Ok(())
            })?;
        found.ok_or_else(|| Error::not_found(format!("no entry at index {index}")))
    }

    /// RFC 9162 inclusion proof of `index` in the tree of `size` entries.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>> {
        self.check_size(size)?;
        let h = &*self.hasher;
        TileNodes::new(&*self.store, h).prefetched(|n| merkle::inclusion_proof(n, h, index, size))
    }

    /// A `c2sp.org/tlog-proof@v1` file for entry `index` against the latest checkpoint, with the
    /// entry's canonical bytes in its `extra` line, and that checkpoint.
    pub fn proof_file(
        &self,
        index: u64,
    ) -> Result<(crate::ledger::proof_file::ProofFile, CheckpointRecord)> {
        let cp = self.store.latest_checkpoint()?.ok_or_else(|| {
            Error::invalid("the ledger has no checkpoint yet: make a checkpoint first")
        })?;
        if index >= cp.size {
            let head = self.store.head()?.size;
            return Err(if index >= head {
                Error::not_found(format!("no entry {index}: the ledger has {head} entries"))
            } else {
                Error::invalid(format!(
                    "entry {index} is not covered by the latest checkpoint ({} entries): make a \
                     checkpoint first",
                    cp.size
                ))
            });
        }
        let stored = self.entry(index)?;
        let file = crate::ledger::proof_file::ProofFile {
            extra: Some(stored.entry.as_ref().canonical_bytes()),
            index,
            proof: self.inclusion_proof(index, cp.size)?,
            note: cp.note.clone(),
        };
        Ok((file, cp))
    }

    /// RFC 9162 consistency proof from `old` to `new` entries.
    pub fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<Hash>> {
        self.check_size(new)?;
        let h = &*self.hasher;
        TileNodes::new(&*self.store, h).prefetched(|n| merkle::consistency_proof(n, h, old, new))
    }

    fn check_size(&self, size: u64) -> Result<()> {
        let head = self.store.head()?;
        if size > head.size {
            return Err(Error::invalid(format!(
                "tree size {size} is beyond the ledger's {} entries",
                head.size
            )));
        }
        Ok(())
    }

    /// Makes a checkpoint every `interval` on a background thread until the handle is dropped.
    pub fn spawn_checkpoint_timer(self: &Arc<Self>, interval: Duration) -> CheckpointTimer {
        let shared = Arc::new((Mutex::new(false), Condvar::new()));
        let last_error = Arc::new(Mutex::new(None));
        let made = Arc::new(AtomicBool::new(false));
        let (ledger, s, err, m) = (
            self.clone(),
            shared.clone(),
            last_error.clone(),
            made.clone(),
        );
        let thread = std::thread::spawn(move || {
            let (lock, cvar) = &*s;
            let mut stop = lock.lock().expect("poisoned");
            loop {
                let (g, _) = cvar.wait_timeout(stop, interval).expect("poisoned");
                stop = g;
                if *stop {
                    return;
                }
                match ledger.checkpoint() {
                    Ok(o) => {
                        m.fetch_or(o.created, Ordering::Relaxed);
                    }
                    // An empty ledger is not an error worth reporting.
                    Err(e) if e.kind() == ErrorKind::InvalidInput => {}
                    Err(e) => *err.lock().expect("poisoned") = Some(e.to_string()),
                }
            }
        });
        CheckpointTimer {
            shared,
            thread: Some(thread),
            last_error,
            made,
        }
    }
}

/// Validates `entries` and computes their leaf hashes as indices `first…`, in parallel for
/// large batches. Errors name the batch item.
fn prepare_leaves(h: &dyn Hasher, first: u64, ts: &str, entries: &[NewEntry]) -> Result<Vec<Hash>> {
    let work = |offset: usize, part: &[NewEntry]| -> Result<Vec<Hash>> {
        let mut buf = Vec::with_capacity(512);
        let mut out = Vec::with_capacity(part.len());
        for (k, e) in part.iter().enumerate() {
            let i = offset + k;
            e.validate().map_err(|err| {
                if entries.len() > 1 {
                    err.with_context("batch item", i)
                } else {
                    err
                }
            })?;
            let entry = EntryRef {
                index: first + i as u64,
                timestamp: ts,
                project: &e.project,
                action: &e.action,
                detail: &e.detail,
            };
            out.push(entry.leaf_hash(h, &mut buf));
        }
        Ok(out)
    };
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8);
    if entries.len() < 4096 || threads < 2 {
        return work(0, entries);
    }
    let per = entries.len().div_ceil(threads);
    let parts: Vec<Result<Vec<Hash>>> = std::thread::scope(|s| {
        let handles: Vec<_> = entries
            .chunks(per)
            .enumerate()
            .map(|(k, part)| s.spawn(move || work(k * per, part)))
            .collect();
        handles
            .into_iter()
            .map(|t| t.join().expect("leaf worker panicked"))
            .collect()
    });
    let mut out = Vec::with_capacity(entries.len());
    for p in parts {
        out.extend(p?);
    }
    Ok(out)
}

/// Handle of a periodic checkpoint thread; stops it when dropped.
pub struct CheckpointTimer {
    shared: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<std::thread::JoinHandle<()>>,
    last_error: Arc<Mutex<Option<String>>>,
    made: Arc<AtomicBool>,
}

impl CheckpointTimer {
    /// The last error the timer hit, if any.
    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().ok().and_then(|g| g.clone())
    }
    /// True once the timer has made at least one new checkpoint.
    pub fn made_checkpoint(&self) -> bool {
        self.made.load(Ordering::Relaxed)
    }
}

impl Drop for CheckpointTimer {
    fn drop(&mut self) {
        if let Ok(mut stop) = self.shared.0.lock() {
            *stop = true;
        }
        self.shared.1.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl crate::ledger::anchor::ConsistencyProver for Ledger {
    fn consistency_proof(&self, old_size: u64, new_size: u64) -> Result<Vec<Hash>> {
        if old_size == 0 || old_size == new_size {
            self.check_size(new_size)?;
            return Ok(Vec::new());
        }
        Ledger::consistency_proof(self, old_size, new_size)
    }
}
