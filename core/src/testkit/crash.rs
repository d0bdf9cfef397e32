//! Crash tests shared by the backends (feature `testkit`): a writer process under load that
//! prints one line per acknowledged entry, a parent that kills it with `SIGKILL` at a random-ish
//! moment, and the checks that every acknowledged entry survived exactly as acknowledged.
//!
//! `SIGKILL` ends the process, not the machine: the operating system's page cache survives, so
//! these tests show durability against a *process* crash (the writer dies between any two
//! instructions: inside a transaction, between commit and acknowledgement, inside a checkpoint),
//! not against power loss.
//!
//! The protocol: the writer prints `ACK <index> <tag>` after the append holding the entry
//! returned (one line per entry, written with one `write` and flushed). The entry is
//! [`tagged_entry`]`(tag)`, so the parent can rebuild it and compare it with the stored row.
//! An append error prints `ERR <message>` and ends the writer with status 3.

use crate::ledger::entry::NewEntry;
use crate::ledger::group_commit::GroupCommit;
use crate::ledger::signer::Signer;
use crate::ledger::store::DynLedgerStore;
use crate::ledger::verify::{VerifyOptions, VerifyReport, verify_store};
use crate::ledger::{Ledger, LedgerOptions};
use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

/// The project of every entry the killed writer appends.
pub const PROJECT: &str = "crash";

/// The entry acknowledged under `tag` (tags starting with `b` come from the batch writer).
pub fn tagged_entry(tag: &str) -> NewEntry {
    let action = if tag.starts_with('b') {
        "crash.batch"
    } else {
        "crash.single"
    };
    NewEntry::new(PROJECT, action, format!("{{\"tag\":\"{tag}\"}}"))
}

/// How the killed writer loads the store.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    /// Threads appending single entries through one shared [`GroupCommit`].
    pub single_writers: usize,
    /// Entries per [`Ledger::append`] of the one thread that appends batches.
    pub batch: usize,
}

impl Default for Load {
    fn default() -> Self {
        Load {
            single_writers: 8,
            batch: 3,
        }
    }
}

type Out = Arc<Mutex<std::io::Stdout>>;

fn emit(out: &Out, text: &str) {
    let mut o = out.lock().unwrap_or_else(|p| p.into_inner());
    if o.write_all(text.as_bytes())
        .and_then(|()| o.flush())
        .is_err()
    {
        // The parent is gone: nobody is counting acknowledgements any more.
        std::process::exit(4);
    }
}

fn fail(out: &Out, what: &str, e: &crate::error::Error) -> ! {
    emit(out, &format!("ERR {what}: {e}\n"));
    std::process::exit(3);
}

/// The variable that hands the checkpoint key (a note `PRIVATE+KEY+…` text) to writer processes.
pub const SKEY_VAR: &str = "CORTEX_TEST_KILL_SKEY";

/// A writer's ledger: signs a checkpoint every 100 entries with `signer`, as a service would,
/// so checkpoints are made under load and killed mid-way too.
pub fn writer_ledger(store: DynLedgerStore, signer: Arc<dyn Signer>) -> Arc<Ledger> {
    let mut ledger = Ledger::open(
        store,
        LedgerOptions {
            hasher: None,
            checkpoint_every: 100,
        },
    )
    .unwrap();
    ledger.add_signer(signer).unwrap();
    Arc::new(ledger)
}

/// The body of the writer process: appends under `load` until killed, printing one
/// `ACK <index> <tag>` line per acknowledged entry. Never returns.
pub fn run_writer(ledger: Arc<Ledger>, load: Load) -> ! {
    let out: Out = Arc::new(Mutex::new(std::io::stdout()));
    let gc = Arc::new(GroupCommit::new(ledger.clone()));
    let pid = std::process::id();
    for t in 0..load.single_writers {
        let (gc, out) = (gc.clone(), out.clone());
        std::thread::spawn(move || {
            for i in 0u64.. {
                let tag = format!("s{pid}.{t}.{i}");
                match gc.append(tagged_entry(&tag)) {
                    Ok(index) => emit(&out, &format!("ACK {index} {tag}\n")),
                    Err(e) => fail(&out, "group commit append", &e),
                }
            }
        });
    }
    if load.batch > 0 {
        let out = out.clone();
        std::thread::spawn(move || {
            for i in 0u64.. {
                let tags: Vec<String> =
                    (0..load.batch).map(|k| format!("b{pid}.{i}.{k}")).collect();
                let entries: Vec<NewEntry> = tags.iter().map(|t| tagged_entry(t)).collect();
                match ledger.append(&entries) {
                    Ok(o) if o.count != tags.len() as u64 => {
                        emit(
                            &out,
                            &format!("ERR batch append: {} of {} entries\n", o.count, tags.len()),
                        );
                        std::process::exit(3);
                    }
                    Ok(o) if o.checkpoint_error.is_some() => {
                        let e = o.checkpoint_error.unwrap_or_default();
                        emit(&out, &format!("ERR automatic checkpoint: {e}\n"));
                        std::process::exit(3);
                    }
                    Ok(o) => {
                        let lines: String = tags
                            .iter()
                            .enumerate()
                            .map(|(k, t)| format!("ACK {} {t}\n", o.first_index + k as u64))
                            .collect();
                        emit(&out, &lines);
                    }
                    Err(e) => fail(&out, "batch append", &e),
                }
            }
        });
    }
    loop {
        std::thread::park();
    }
}

/// One acknowledged entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack {
    /// The index the append returned.
    pub index: u64,
    /// The tag of the entry ([`tagged_entry`]).
    pub tag: String,
}

enum Line {
    Ack(Ack),
    Err(String),
}

/// Parses one complete line of the writer's stdout. The test harness may print its own text
/// (e.g. `test name ... `) before the first line, so the markers are searched in the line.
fn parse_line(line: &str) -> Option<Line> {
    if let Some(p) = line.find("ERR ") {
        return Some(Line::Err(line[p + 4..].to_owned()));
    }
    let rest = &line[line.find("ACK ")? + 4..];
    let (index, tag) = rest.trim_end().split_once(' ')?;
    Some(Line::Ack(Ack {
        index: index.parse().ok()?,
        tag: tag.to_owned(),
    }))
}

/// Spawns the writer `cmd` (stdout piped), waits for its first acknowledgement (at most 60 s),
/// lets it run `run_for` more, kills it with `SIGKILL`, waits for it to end, and returns every
/// acknowledgement it printed completely. Panics if the writer reported an error or ended by
/// itself before the kill.
pub fn kill_under_load(mut cmd: Command, run_for: Duration) -> Vec<Ack> {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the writer process");
    let stdout = child.stdout.take().expect("piped stdout");
    let stderr = child.stderr.take().expect("piped stderr");
    let (tx, rx) = mpsc::channel::<Line>();
    let reader = std::thread::spawn(move || {
        let mut r = std::io::BufReader::new(stdout);
        let mut buf = String::new();
        loop {
            buf.clear();
            match r.read_line(&mut buf) {
                // A line cut by the kill (no newline) was never fully acknowledged: ignore it.
                Ok(0) | Err(_) => break,
                Ok(_) if !buf.ends_with('\n') => break,
                Ok(_) => {
                    if let Some(l) = parse_line(&buf)
                        && tx.send(l).is_err()
                    {
                        break;
                    }
                }
            }
        }
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut std::io::BufReader::new(stderr), &mut s);
        s
    });
    let mut acks = Vec::new();
    let mut errors = Vec::new();
    let mut take = |l: Line, acks: &mut Vec<Ack>| match l {
        Line::Ack(a) => acks.push(a),
        Line::Err(e) => errors.push(e),
    };
    // Start the clock at the first acknowledgement, so the kill always lands under load even
    // when the machine is slow to start the process.
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(l) => take(l, &mut acks),
        Err(_) => {
            let _ = child.kill();
            let status = child.wait();
            panic!(
                "the writer acknowledged nothing within 60 s (status {status:?}); stderr:\n{}",
                err_reader.join().unwrap_or_default()
            );
        }
    }
    let deadline = Instant::now() + run_for;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(l) => take(l, &mut acks),
            Err(mpsc::RecvTimeoutError::Timeout) => break,
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    let early_exit = child.try_wait().expect("poll the writer");
    child.kill().expect("SIGKILL the writer");
    let status = child.wait().expect("wait for the writer");
    reader.join().expect("stdout reader");
    for l in rx.try_iter() {
        take(l, &mut acks);
    }
    let stderr = err_reader.join().unwrap_or_default();
    assert!(
        errors.is_empty(),
        "the writer reported errors {errors:?}; stderr:\n{stderr}"
    );
    assert!(
        early_exit.is_none(),
        "the writer ended by itself ({status:?}) before it was killed; stderr:\n{stderr}"
    );
    acks
}

/// Checks a store after the writer died: the rows are dense from 0 to the head, no tagged entry
/// is stored twice, every acknowledged index holds exactly the acknowledged entry, the head
/// covers every acknowledgement, and the whole store verifies (signatures with `verifiers`).
pub fn assert_acks_survived(
    store: &DynLedgerStore,
    acks: &[Ack],
    verifiers: Vec<Box<dyn crate::ledger::signer::Verifier>>,
    context: &str,
) -> VerifyReport {
    let ledger = Ledger::open(store.clone(), LedgerOptions::default())
        .unwrap_or_else(|e| panic!("{context}: open the ledger after the crash: {e}"));
    let head = store.head().unwrap().size;
    let mut rows: Vec<NewEntry> = Vec::with_capacity(head as usize);
    store
        .scan_entries(0..u64::MAX, &mut |r| {
            assert_eq!(
                r.entry.index,
                rows.len() as u64,
                "{context}: rows are not dense (row {} follows {} rows)",
                r.entry.index,
                rows.len()
            );
            rows.push(NewEntry::new(
                r.entry.project,
                r.entry.action,
                r.entry.detail,
            ));
            Ok(())
        })
        .unwrap();
    assert_eq!(rows.len() as u64, head, "{context}: stored rows vs head");
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, r) in rows.iter().enumerate() {
        if r.project == PROJECT
            && let Some(prev) = seen.insert(&r.detail, i)
        {
            panic!(
                "{context}: entry {} is stored twice, at {prev} and {i}",
                r.detail
            );
        }
    }
    let max = acks.iter().map(|a| a.index).max();
    if let Some(max) = max {
        assert!(
            head > max,
            "{context}: head {head} does not cover acknowledged index {max}"
        );
    }
    for a in acks {
        let want = tagged_entry(&a.tag);
        let got = rows.get(a.index as usize);
        assert_eq!(
            got,
            Some(&want),
            "{context}: acknowledged index {} does not hold the acknowledged entry {}",
            a.index,
            a.tag
        );
    }
    let report = verify_store(
        &**store,
        ledger.hasher(),
        ledger.origin(),
        &VerifyOptions {
            verifiers,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(report.valid, "{context}: {:?}", report.violations);
    assert_eq!(report.tree_size, head, "{context}");
    assert_eq!(report.entries_checked, head, "{context}");
    report
}

/// Signs a checkpoint of the whole ledger with `signer` after the crash, and checks that it and
/// every earlier checkpoint verify. Returns the number of checkpoints.
pub fn assert_checkpoint_after_crash(
    store: &DynLedgerStore,
    signer: Arc<dyn Signer>,
    context: &str,
) -> u64 {
    let mut ledger = Ledger::open(store.clone(), LedgerOptions::default()).unwrap();
    ledger.add_signer(signer.clone()).unwrap();
    let head = store.head().unwrap().size;
    let cp = ledger
        .checkpoint()
        .unwrap_or_else(|e| panic!("{context}: checkpoint after the crash: {e}"));
    assert_eq!(
        cp.record.size, head,
        "{context}: the checkpoint covers the head"
    );
    let report = verify_store(
        &**store,
        ledger.hasher(),
        ledger.origin(),
        &VerifyOptions {
            verifiers: vec![signer.verifier()],
            ..Default::default()
        },
    )
    .unwrap();
    assert!(report.valid, "{context}: {:?}", report.violations);
    let stored = store.checkpoints().unwrap().len() as u64;
    assert_eq!(report.checkpoints_checked, stored, "{context}");
    stored
}

/// A `kill -9` test: each round starts a writer, kills it under load, reopens the store and
/// checks every acknowledgement so far (of this and all earlier rounds), the chain, and a new
/// checkpoint.
pub struct KillTest<'a> {
    /// Rounds.
    pub rounds: u32,
    /// The writer runs this long (at least) after its first acknowledgement.
    pub min_run: Duration,
    /// … and at most this long (chosen per round, random-ish).
    pub max_run: Duration,
    /// The writer process (runs [`run_writer`]).
    pub writer: &'a dyn Fn() -> Command,
    /// Opens the store in this process; called only once the writer has ended, and dropped
    /// before the next writer starts.
    pub open: &'a dyn Fn() -> DynLedgerStore,
    /// The checkpoint key (the writer should sign with it too).
    pub signer: Arc<dyn Signer>,
}

/// What a [`KillTest`] saw.
#[derive(Debug, Clone)]
pub struct KillSummary {
    /// The seed of the run lengths (`CORTEX_TEST_KILL_SEED` repeats a run).
    pub seed: u64,
    /// Acknowledgements received per round.
    pub acks_per_round: Vec<usize>,
    /// How long each writer ran after its first acknowledgement, in milliseconds.
    pub run_ms: Vec<u64>,
    /// Entries committed per round that the writer did not get to acknowledge before the kill.
    pub committed_unacked: Vec<u64>,
    /// The final head.
    pub head: u64,
    /// Checkpoints stored at the end (the writers' and the test's).
    pub checkpoints: u64,
}

/// The head once it stops moving: the writer process is gone, but work it handed to a server
/// (a Postgres `COMMIT` already sent) can still land a moment later.
fn settled_head(store: &DynLedgerStore) -> u64 {
    let mut head = store.head().unwrap().size;
    for _ in 0..100 {
        std::thread::sleep(Duration::from_millis(50));
        let again = store.head().unwrap().size;
        if again == head {
            return head;
        }
        head = again;
    }
    panic!("the head was still moving 5 s after the writer was killed");
}

/// Runs a [`KillTest`]; panics naming the round and seed on the first broken promise.
pub fn kill_9_rounds(t: &KillTest<'_>) -> KillSummary {
    let seed = std::env::var("CORTEX_TEST_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    let mut rng = seed | 1;
    let mut next = move || {
        // xorshift64
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let (lo, hi) = (t.min_run.as_millis() as u64, t.max_run.as_millis() as u64);
    let mut all: Vec<Ack> = Vec::new();
    let mut summary = KillSummary {
        seed,
        acks_per_round: Vec::new(),
        run_ms: Vec::new(),
        committed_unacked: Vec::new(),
        head: 0,
        checkpoints: 0,
    };
    for round in 0..t.rounds {
        let ms = lo + next() % (hi - lo + 1);
        let context = format!("round {round} (run {ms} ms, CORTEX_TEST_KILL_SEED={seed})");
        let acks = kill_under_load((t.writer)(), Duration::from_millis(ms));
        assert!(!acks.is_empty(), "{context}: no acknowledgement");
        summary.acks_per_round.push(acks.len());
        summary.run_ms.push(ms);
        let store = (t.open)();
        let head = settled_head(&store);
        summary
            .committed_unacked
            .push(head.saturating_sub(summary.head + acks.len() as u64));
        all.extend(acks);
        assert_acks_survived(&store, &all, vec![t.signer.verifier()], &context);
        summary.checkpoints = assert_checkpoint_after_crash(&store, t.signer.clone(), &context);
        summary.head = head;
    }
    summary
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_parse_with_harness_noise() {
        let Some(Line::Ack(a)) = parse_line("test killed_writer_process ... ACK 17 s1.2.3\n")
        else {
            panic!("not an ack")
        };
        assert_eq!(
            a,
            Ack {
                index: 17,
                tag: "s1.2.3".into()
            }
        );
        assert!(matches!(parse_line("ERR boom\n"), Some(Line::Err(e)) if e == "boom\n"));
        assert!(parse_line("running 1 test\n").is_none());
        assert!(parse_line("ACK x s\n").is_none());
        assert_eq!(tagged_entry("b1.2.3").action, "crash.batch");
        assert!(tagged_entry("s1.2.3").validate().is_ok());
    }
}
