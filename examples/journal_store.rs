//! A ledger-only store written outside CORTEX's backends: an audit ledger kept in one append-only
//! journal file. It implements only `LedgerStore` (and `TileReader`), never the agent memory,
//! and passes the ledger conformance suite that every CORTEX backend runs.
//!
//! How it works: every write (a setting, an append with its chain links, tiles and new head, a
//! checkpoint, a receipt, an audit record) is one JSON line, written and `fsync`ed before the
//! call returns; the state lives in memory and is rebuilt by replaying the journal when the file
//! is opened. A crash mid-write leaves a torn last line that was never acknowledged: the replay
//! cuts it off. One process per file (an exclusive lock on the journal).
//!
//! ```sh
//! cargo run --example journal_store -- /tmp/journal   # append, checkpoint, prove, reopen, verify, conformance
//! ```

use cortex_core::ledger::checkpoint::check_checkpoint_follows;
use cortex_core::ledger::store::{
    AppendBatch, AuditExport, IntegrityCheck, LedgerTx, MigrationReport,
};
use cortex_core::ledger::tiles::{Tile, TileReader};
use cortex_core::{
    CheckpointRecord, DynLedgerStore, EntryRef, Error, ErrorKind, ExtraSignature, Hash, Head,
    Ledger, LedgerOptions, LedgerStore, NewEntry, Receipt, Result, StoredEntryRef, VerifyOptions,
    verify_store,
};
use cortex_ed25519::Ed25519Signer;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

/// One stored entry, as raw as it was written.
struct Row {
    index: u64,
    timestamp: String,
    project: String,
    action: String,
    detail: String,
    prev_hash: Vec<u8>,
    hash: Vec<u8>,
}

/// Everything the journal holds, replayed into memory.
#[derive(Default)]
struct State {
    meta: BTreeMap<String, String>,
    rows: Vec<Row>,
    tiles: HashMap<(u8, u64), Vec<u8>>,
    head: Head,
    checkpoints: BTreeMap<u64, CheckpointRecord>,
    checks: Vec<IntegrityCheck>,
    exports: Vec<AuditExport>,
}

struct Inner {
    state: State,
    file: File,
}

/// The store: an in-memory view of one journal file.
pub struct JournalStore {
    path: PathBuf,
    inner: Mutex<Inner>,
}

fn bad(path: &Path, line: usize, why: impl std::fmt::Display) -> Error {
    Error::integrity(format!("{} line {line}: {why}", path.display()))
}

fn hex_field(v: &Value, i: usize) -> Option<Vec<u8>> {
    hex::decode(v.get(i)?.as_str()?).ok()
}

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key)?.as_str().map(str::to_owned)
}

fn checkpoint_json(c: &CheckpointRecord) -> Value {
    json!({
        "size": c.size, "range_start": c.range_start, "range_count": c.range_count,
        "root": hex::encode(c.root.0), "note": c.note, "created_at": c.created_at,
        "extra_signatures": c.extra_signatures.iter()
            .map(|s| [&s.scheme, &s.key_name, &s.signature]).collect::<Vec<_>>(),
        "receipts": c.receipts,
    })
}

fn checkpoint_from(v: &Value) -> Option<CheckpointRecord> {
    Some(CheckpointRecord {
        size: v.get("size")?.as_u64()?,
        range_start: v.get("range_start")?.as_u64()?,
        range_count: v.get("range_count")?.as_u64()?,
        root: Hash::from_slice(&hex::decode(v.get("root")?.as_str()?).ok()?).ok()?,
        note: text(v, "note")?,
        created_at: text(v, "created_at")?,
        extra_signatures: v
            .get("extra_signatures")?
            .as_array()?
            .iter()
            .map(|s| {
                Some(ExtraSignature {
                    scheme: s.get(0)?.as_str()?.to_owned(),
                    key_name: s.get(1)?.as_str()?.to_owned(),
                    signature: s.get(2)?.as_str()?.to_owned(),
                })
            })
            .collect::<Option<_>>()?,
        receipts: serde_json::from_value(v.get("receipts")?.clone()).ok()?,
    })
}

impl State {
    /// Applies one journal record (also how a write takes effect once it is durable).
    fn apply(&mut self, record: &Value) -> Option<()> {
        let (kind, v) = record.as_object()?.iter().next()?;
        match kind.as_str() {
            "meta" => {
                let k = v.get(0)?.as_str()?;
                self.meta
                    .insert(k.to_owned(), v.get(1)?.as_str()?.to_owned());
            }
            "append" => {
                let first = v.get("first")?.as_u64()?;
                let ts = text(v, "ts")?;
                for (i, e) in v.get("entries")?.as_array()?.iter().enumerate() {
                    self.rows.push(Row {
                        index: first + i as u64,
                        timestamp: ts.clone(),
                        project: e.get(0)?.as_str()?.to_owned(),
                        action: e.get(1)?.as_str()?.to_owned(),
                        detail: e.get(2)?.as_str()?.to_owned(),
                        prev_hash: hex_field(e, 3)?,
                        hash: hex_field(e, 4)?,
                    });
                }
                for t in v.get("tiles")?.as_array()? {
                    let key = (u8::try_from(t.get(0)?.as_u64()?).ok()?, t.get(1)?.as_u64()?);
                    self.tiles.insert(key, hex_field(t, 2)?);
                }
                let head = v.get("head")?;
                self.head = Head {
                    size: head.get(0)?.as_u64()?,
                    last_hash: Hash::from_slice(&hex_field(head, 1)?).ok()?,
                };
            }
            "checkpoint" => {
                let c = checkpoint_from(v)?;
                self.checkpoints.insert(c.size, c);
            }
            "receipt" => {
                let size = v.get(0)?.as_u64()?;
                let r: Receipt = serde_json::from_value(v.get(1)?.clone()).ok()?;
                self.checkpoints.get_mut(&size)?.receipts.push(r);
            }
            "check" => self.checks.push(serde_json::from_value(v.clone()).ok()?),
            "export" => self.exports.push(serde_json::from_value(v.clone()).ok()?),
            _ => return None,
        }
        Some(())
    }
}

impl JournalStore {
    /// Opens (creating) the journal at `path` and replays it.
    pub fn open(path: &Path) -> Result<JournalStore> {
        let io = |e: std::io::Error| {
            Error::new(
                ErrorKind::Unavailable,
                format!("cannot open {}", path.display()),
            )
            .with_source(e)
        };
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(io)?;
        file.try_lock().map_err(|_| {
            Error::new(
                ErrorKind::Unavailable,
                format!("{} is in use by another process", path.display()),
            )
        })?;
        let mut state = State::default();
        let mut good = 0u64;
        let mut reader = BufReader::new(&file);
        let mut line = String::new();
        let mut n = 0;
        loop {
            line.clear();
            let read = reader.read_line(&mut line).map_err(io)?;
            n += 1;
            if read == 0 {
                break;
            }
            // A line without its newline can only be the last one, torn by a crash mid-write
            // (every record is written whole, newline included, before it is acknowledged).
            if !line.ends_with('\n') {
                break;
            }
            let record: Value =
                serde_json::from_str(&line).map_err(|e| bad(path, n, format!("not JSON: {e}")))?;
            state
                .apply(&record)
                .ok_or_else(|| bad(path, n, "not a journal record"))?;
            good += read as u64;
        }
        file.set_len(good).map_err(io)?;
        file.seek(SeekFrom::End(0)).map_err(io)?;
        Ok(JournalStore {
            path: path.to_owned(),
            inner: Mutex::new(Inner { state, file }),
        })
    }

    fn lock(&self) -> Result<MutexGuard<'_, Inner>> {
        self.inner
            .lock()
            .map_err(|_| Error::backend("journal lock poisoned"))
    }
}

impl Inner {
    /// Writes `record` durably, then applies it: an acknowledged write survives a crash, and a
    /// failed one leaves neither the file nor the state changed.
    fn write(&mut self, path: &Path, record: Value) -> Result<()> {
        let len = self.file.metadata()?.len();
        let mut line = record.to_string();
        line.push('\n');
        let written = self
            .file
            .write_all(line.as_bytes())
            .and_then(|()| self.file.sync_data());
        if let Err(e) = written {
            let _ = self.file.set_len(len);
            return Err(Error::new(
                ErrorKind::Unavailable,
                format!("cannot write {}", path.display()),
            )
            .with_source(e));
        }
        self.state
            .apply(&record)
            .ok_or_else(|| Error::backend("the journal record does not apply"))
    }
}

/// An append's view inside its write: the head and tiles under the store's lock.
struct Tx<'a>(&'a State);

impl LedgerTx for Tx<'_> {
    fn head(&self) -> Head {
        self.0.head
    }
    fn read_tile(&mut self, level: u8, index: u64) -> Result<Option<Vec<Hash>>> {
        self.0
            .tiles
            .get(&(level, index))
            .map(|b| Tile::decode(b))
            .transpose()
    }
}

impl TileReader for JournalStore {
    fn read_tile(&self, level: u8, index: u64) -> Result<Option<Vec<Hash>>> {
        Tx(&self.lock()?.state).read_tile(level, index)
    }
}

impl LedgerStore for JournalStore {
    fn scheme(&self) -> &'static str {
        "journal"
    }
    fn migrate(&self) -> Result<MigrationReport> {
        Ok(MigrationReport {
            from_version: 1,
            to_version: 1,
        })
    }
    fn meta(&self, key: &str) -> Result<Option<String>> {
        Ok(self.lock()?.state.meta.get(key).cloned())
    }
    fn init_meta(&self, key: &str, value: &str) -> Result<String> {
        let mut g = self.lock()?;
        if let Some(v) = g.state.meta.get(key) {
            return Ok(v.clone());
        }
        g.write(&self.path, json!({"meta": [key, value]}))?;
        Ok(value.to_owned())
    }
    fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        self.lock()?
            .write(&self.path, json!({"meta": [key, value]}))
    }
    fn meta_prefixed(&self, prefix: &str) -> Result<Vec<(String, String)>> {
        let mut found: Vec<(String, String)> = (self.lock()?.state.meta.iter())
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        found.sort();
        Ok(found)
    }
    fn head(&self) -> Result<Head> {
        Ok(self.lock()?.state.head)
    }
    fn append<'a>(
        &self,
        build: &mut dyn FnMut(&mut dyn LedgerTx) -> Result<AppendBatch<'a>>,
    ) -> Result<Head> {
        let mut g = self.lock()?;
        let batch = build(&mut Tx(&g.state))?;
        let entries: Vec<Value> = batch
            .entries
            .iter()
            .zip(&batch.links)
            .map(|(e, (prev, hash))| {
                json!([
                    e.project,
                    e.action,
                    e.detail,
                    hex::encode(prev.0),
                    hex::encode(hash.0)
                ])
            })
            .collect();
        let tiles: Vec<Value> = batch
            .tiles
            .iter()
            .map(|t| json!([t.level, t.index, hex::encode(t.to_bytes())]))
            .collect();
        let head = json!([batch.new_head.size, hex::encode(batch.new_head.last_hash.0)]);
        g.write(
            &self.path,
            json!({"append": {"first": batch.first_index, "ts": batch.timestamp,
                "entries": entries, "tiles": tiles, "head": head}}),
        )?;
        Ok(batch.new_head)
    }
    fn scan_entries(
        &self,
        range: Range<u64>,
        visit: &mut dyn FnMut(StoredEntryRef<'_>) -> Result<()>,
    ) -> Result<()> {
        let g = self.lock()?;
        let rows = &g.state.rows;
        let from = rows.partition_point(|r| r.index < range.start);
        for r in rows[from..].iter().take_while(|r| r.index < range.end) {
            visit(StoredEntryRef {
                entry: EntryRef {
                    index: r.index,
                    timestamp: &r.timestamp,
                    project: &r.project,
                    action: &r.action,
                    detail: &r.detail,
                },
                prev_hash: &r.prev_hash,
                hash: &r.hash,
            })?;
        }
        Ok(())
    }
    fn last_entry_index(&self) -> Result<Option<u64>> {
        Ok(self.lock()?.state.rows.last().map(|r| r.index))
    }
    fn scan_tiles(
        &self,
        level: u8,
        range: Range<u64>,
        visit: &mut dyn FnMut(u64, &[u8]) -> Result<()>,
    ) -> Result<()> {
        let g = self.lock()?;
        let mut found: Vec<(u64, &Vec<u8>)> = (g.state.tiles.iter())
            .filter(|((l, i), _)| *l == level && range.contains(i))
            .map(|((_, i), b)| (*i, b))
            .collect();
        found.sort_by_key(|(i, _)| *i);
        for (i, b) in found {
            visit(i, b)?;
        }
        Ok(())
    }
    fn add_checkpoint(&self, cp: &CheckpointRecord) -> Result<()> {
        let mut g = self.lock()?;
        check_checkpoint_follows(g.state.checkpoints.keys().next_back().copied(), cp)?;
        g.write(&self.path, json!({"checkpoint": checkpoint_json(cp)}))
    }
    fn checkpoints(&self) -> Result<Vec<CheckpointRecord>> {
        Ok(self.lock()?.state.checkpoints.values().cloned().collect())
    }
    fn latest_checkpoint(&self) -> Result<Option<CheckpointRecord>> {
        Ok(self.lock()?.state.checkpoints.values().next_back().cloned())
    }
    fn add_receipt(&self, size: u64, receipt: &Receipt) -> Result<()> {
        let mut g = self.lock()?;
        if !g.state.checkpoints.contains_key(&size) {
            return Err(Error::not_found(format!("no checkpoint of size {size}")));
        }
        g.write(&self.path, json!({"receipt": [size, receipt]}))
    }
    fn record_integrity_check(&self, check: &IntegrityCheck) -> Result<()> {
        self.lock()?.write(&self.path, json!({"check": check}))
    }
    fn integrity_checks(&self, limit: usize) -> Result<Vec<IntegrityCheck>> {
        let g = self.lock()?;
        Ok(g.state.checks.iter().rev().take(limit).cloned().collect())
    }
    fn record_export(&self, export: &AuditExport) -> Result<()> {
        self.lock()?.write(&self.path, json!({"export": export}))
    }
    fn exports(&self, limit: usize) -> Result<Vec<AuditExport>> {
        let g = self.lock()?;
        Ok(g.state.exports.iter().rev().take(limit).cloned().collect())
    }
}

/// The checkpoint key kept beside the journal: made on first start, loaded afterwards.
fn signer(dir: &Path) -> Result<Arc<dyn cortex_core::Signer>> {
    let path = dir.join("checkpoint.skey");
    let key = if path.exists() {
        Ed25519Signer::read_file(&path)?
    } else {
        let key = Ed25519Signer::generate("example.com/journal")?;
        key.write_files(&path, false)?;
        key
    };
    Ok(Arc::new(key))
}

fn main() -> Result<()> {
    let dir = std::env::args().nth(1).map_or_else(
        || std::env::temp_dir().join(format!("cortex-journal-{}", std::process::id())),
        PathBuf::from,
    );
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("audit.journal");
    let key = signer(&dir)?;

    // 1. Append and checkpoint through the ordinary `Ledger`: the store only keeps bytes.
    let size = {
        let store: DynLedgerStore = Arc::new(JournalStore::open(&path)?);
        let mut ledger = Ledger::open(store, LedgerOptions::default())?;
        ledger.add_signer(key.clone())?;
        let batch: Vec<NewEntry> = (0..2500)
            .map(|i| NewEntry::new("billing", "invoice.issued", format!(r#"{{"invoice":{i}}}"#)))
            .collect();
        let out = ledger.append(&batch)?;
        let cp = ledger.checkpoint()?.record;
        let proof = ledger.proof_file(1234)?.0;
        println!(
            "appended {} entries, checkpoint {} (root {}), proof of entry 1234: {} hashes",
            out.count,
            cp.size,
            cp.root.to_base64(),
            proof.proof.len()
        );
        cp.size
    };

    // 2. Reopen: the journal replays, and a full verification checks every row and signature.
    let store: DynLedgerStore = Arc::new(JournalStore::open(&path)?);
    let ledger = Ledger::open(store.clone(), LedgerOptions::default())?;
    let report = verify_store(
        &*store,
        ledger.hasher(),
        ledger.origin(),
        &VerifyOptions {
            verifiers: vec![key.verifier()],
            ..Default::default()
        },
    )?;
    println!(
        "reopened: {} entries, verify {} ({} checkpoints checked)",
        ledger.head()?.size,
        if report.valid { "valid" } else { "FAILED" },
        report.checkpoints_checked
    );
    assert!(report.valid && ledger.head()?.size == size);
    drop((ledger, store));

    // 3. The same suite every CORTEX backend runs, on fresh journals.
    let n = std::sync::atomic::AtomicU64::new(0);
    cortex_core::testkit::ledger_conformance(&|| {
        let k = n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let p = dir.join(format!("conformance-{k}.journal"));
        Arc::new(JournalStore::open(&p).expect("open a fresh journal")) as DynLedgerStore
    });
    let made = n.into_inner();
    println!("ledger conformance suite: passed on {made} fresh journals");
    for k in 0..made {
        std::fs::remove_file(dir.join(format!("conformance-{k}.journal")))?;
    }
    Ok(())
}
