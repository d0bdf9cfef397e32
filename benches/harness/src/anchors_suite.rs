//! `cortex benchmark --suite anchors`: what it costs to make a checkpoint that someone other
//! than the operator can check. Per signer set, the latency of `Ledger::checkpoint` (tree root,
//! consistency with the last checkpoint, every signer's signature, one durable write), and per
//! anchor, the latency of `anchor_pending` for one new checkpoint (submit, check the receipt,
//! store it beside the checkpoint). Prints the figures; never asserts timings.
//!
//! The binary hands it the signers and the anchors (its plugins, opened as a policy line would
//! open them); the anchors' services run on loopback: the binary's own witness server, and the
//! [`crate::peers`] stand-ins for an RFC 3161 authority and a Rekor log.

use crate::ledger_suite::OpenStore;
use crate::peers::Peer;
use crate::workload::entries;
use crate::{Report, cores, num, percentile};
use cortex_core::ledger::anchoring::anchor_pending;
use cortex_core::{
    Anchor, Checkpoint, Error, Hash, InMemoryAnchor, Ledger, LedgerOptions, Result, Signer,
};
use cortex_ed25519::Ed25519Signer;
use std::sync::Arc;
use std::time::Instant;

/// Signers that sign each checkpoint beside the ledger's Ed25519 note key.
#[derive(Debug)]
pub struct SignerSet {
    /// How the figures name the set (`note + ssh`).
    pub name: String,
    /// The signers added to the note key.
    pub extra: Vec<Arc<dyn Signer>>,
}

/// An anchor to measure, and the service behind it.
#[derive(Debug)]
pub struct BenchAnchor {
    /// How the figures name it (`witness`).
    pub name: String,
    /// The anchor, ready to submit.
    pub anchor: Arc<dyn Anchor>,
    /// The stand-in service, when it records its own answer times.
    pub peer: Option<Peer>,
    /// What the service is, for the figure's detail.
    pub service: String,
}

/// Opens the anchors to measure, given the verifier keys of the logs that will submit to them
/// (a witness must know them).
pub type OpenAnchors<'a> = &'a dyn Fn(&[String]) -> Result<Vec<BenchAnchor>>;

/// What the anchors suite runs on.
pub struct AnchorsSuite<'a> {
    /// Checkpoints timed per signer set and per anchor.
    pub rounds: u64,
    /// Entries appended before each checkpoint.
    pub appends: u64,
    /// The backend's description for the header line.
    pub backend: String,
    /// Opens each ledger's store.
    pub open: OpenStore<'a>,
    /// The signer sets to compare (the note key alone is always measured first).
    pub signer_sets: Vec<SignerSet>,
    /// Opens the anchors.
    pub anchors: OpenAnchors<'a>,
}

/// p50 and p99 of a list of milliseconds.
struct Latency {
    p50: f64,
    p99: f64,
}

fn latency(mut v: Vec<f64>) -> Latency {
    if v.is_empty() {
        return Latency { p50: 0.0, p99: 0.0 };
    }
    Latency {
        p50: percentile(&mut v, 0.5),
        p99: percentile(&mut v, 0.99),
    }
}

fn ms_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

fn ledger(a: &AnchorsSuite<'_>, name: &str, signers: &[Arc<dyn Signer>]) -> Result<Ledger> {
    let mut l = Ledger::open(
        (a.open)(name)?,
        LedgerOptions {
            hasher: None,
            checkpoint_every: 0,
        },
    )?;
    for s in signers {
        l.add_signer(s.clone())?;
    }
    Ok(l)
}

/// Appends `a.appends` entries for round `r`.
fn grow(a: &AnchorsSuite<'_>, l: &Ledger, r: u64) -> Result<()> {
    l.append(&entries(r * a.appends, a.appends)).map(|_| ())
}

/// Runs the suite, recording every figure in `b`.
pub fn run(a: &AnchorsSuite<'_>, b: &mut Report) -> Result<()> {
    if a.rounds == 0 || a.appends == 0 {
        return Err(Error::invalid("--rounds and --appends must be at least 1"));
    }
    b.note(&format!(
        "CORTEX signers and anchors benchmark: {}, SHA-256, {} cores, {} checkpoints per figure, \
         each after {} appended entries",
        a.backend,
        cores(),
        num(a.rounds),
        num(a.appends)
    ));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::backend("cannot start an async runtime").with_source(e))?;
    let note: Arc<dyn Signer> = Arc::new(Ed25519Signer::generate("bench.cortex.local/signers")?);
    sign_only(a, b, &note)?;
    let mut sets = vec![SignerSet {
        name: "note".into(),
        extra: Vec::new(),
    }];
    sets.extend(a.signer_sets.iter().map(|s| SignerSet {
        name: s.name.clone(),
        extra: s.extra.clone(),
    }));
    for (i, set) in sets.iter().enumerate() {
        checkpoints(a, b, &note, set, i)?;
    }

    let anchored = Arc::new(Ed25519Signer::generate("bench.cortex.local/anchors")?);
    let pipeline = Arc::new(Ed25519Signer::generate("bench.cortex.local/pipeline")?);
    let anchors = (a.anchors)(&[anchored.to_vkey(), pipeline.to_vkey()])?;
    // First an anchor with no service at all: what `anchor_pending` itself costs (read the
    // checkpoint and the anchor's state, store the receipt and the new state).
    let bookkeeping = BenchAnchor {
        name: "in-memory".into(),
        anchor: Arc::new(InMemoryAnchor::default()),
        peer: None,
        service: "no service: the store reads and the two durable writes of anchor_pending".into(),
    };
    let signer: Arc<dyn Signer> = anchored.clone();
    for (i, an) in std::iter::once(&bookkeeping).chain(&anchors).enumerate() {
        let l = ledger(a, &format!("anchor-{i}"), std::slice::from_ref(&signer))?;
        let times = anchor_rounds(a, &runtime, &l, an)?;
        let f = latency(times);
        let peer = an.peer.as_ref().map(|p| latency(p.take_timings()));
        b.report(
            &format!("anchor, {} (p50)", an.name),
            f.p50,
            "ms",
            "-",
            None,
            format!(
                "p99 {:.2} ms{}; {}",
                f.p99,
                peer.map(|p| format!(", of which the service p50 {:.2} ms", p.p50))
                    .unwrap_or_default(),
                an.service
            ),
        );
    }

    // Everything at once: every signer, then every anchor, as `cortex ledger checkpoint`
    // followed by `cortex ledger anchor` would run them.
    let mut all: Vec<Arc<dyn Signer>> = vec![pipeline];
    for s in sets.iter().flat_map(|s| &s.extra) {
        if !all.iter().any(|x| x.key_name() == s.key_name()) {
            all.push(s.clone());
        }
    }
    let l = ledger(a, "pipeline", &all)?;
    let list: Vec<Arc<dyn Anchor>> = anchors.iter().map(|x| x.anchor.clone()).collect();
    let mut times = Vec::new();
    for r in 0..a.rounds {
        grow(a, &l, r)?;
        let t = Instant::now();
        l.checkpoint()?;
        anchored_round(&runtime, &l, &list)?;
        times.push(ms_since(t));
    }
    let f = latency(times);
    b.report(
        "sign + store + anchor, everything (p50)",
        f.p50,
        "ms",
        "-",
        None,
        format!(
            "p99 {:.2} ms; {} signers, anchors in turn: {}",
            f.p99,
            all.len(),
            anchors
                .iter()
                .map(|x| x.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    );
    Ok(())
}

/// How long each signer takes to sign a checkpoint body, without the ledger.
fn sign_only(a: &AnchorsSuite<'_>, b: &mut Report, note: &Arc<dyn Signer>) -> Result<()> {
    let body = Checkpoint {
        origin: note.key_name().to_owned(),
        size: 1_000_000,
        root: Hash([7; 32]),
        extensions: Vec::new(),
    }
    .to_text();
    let mut signers = vec![note.clone()];
    for s in a.signer_sets.iter().flat_map(|s| &s.extra) {
        if !signers.iter().any(|x| x.key_name() == s.key_name()) {
            signers.push(s.clone());
        }
    }
    for s in signers {
        let mut times = Vec::new();
        for _ in 0..a.rounds {
            let t = Instant::now();
            s.sign(body.as_bytes())?;
            times.push(ms_since(t));
        }
        let f = latency(times);
        b.report(
            &format!("sign only, {} (p50)", s.scheme().name()),
            f.p50,
            "ms",
            "-",
            None,
            format!("p99 {:.3} ms; the signature over a checkpoint body", f.p99),
        );
    }
    Ok(())
}

/// The latency of `checkpoint()` with the note key and `set`, one ledger of its own.
fn checkpoints(
    a: &AnchorsSuite<'_>,
    b: &mut Report,
    note: &Arc<dyn Signer>,
    set: &SignerSet,
    i: usize,
) -> Result<()> {
    let mut signers = vec![note.clone()];
    signers.extend(set.extra.iter().cloned());
    let l = ledger(a, &format!("sign-{i}"), &signers)?;
    let mut times = Vec::new();
    for r in 0..a.rounds {
        grow(a, &l, r)?;
        let t = Instant::now();
        l.checkpoint()?;
        times.push(ms_since(t));
    }
    let f = latency(times);
    b.report(
        &format!("checkpoint, {} (p50)", set.name),
        f.p50,
        "ms",
        "-",
        None,
        format!(
            "p99 {:.2} ms; root, consistency, {}, one durable write",
            f.p99,
            signers
                .iter()
                .map(|s| s.scheme().name())
                .collect::<Vec<_>>()
                .join(" + ")
        ),
    );
    Ok(())
}

/// One warm-up round (the first connection, a witness's first sight of the log), then
/// `a.rounds` timed ones: append, checkpoint, then time `anchor_pending` for the new checkpoint.
fn anchor_rounds(
    a: &AnchorsSuite<'_>,
    runtime: &tokio::runtime::Runtime,
    l: &Ledger,
    an: &BenchAnchor,
) -> Result<Vec<f64>> {
    let anchors = std::slice::from_ref(&an.anchor);
    let mut times = Vec::new();
    for r in 0..=a.rounds {
        grow(a, l, r)?;
        l.checkpoint()?;
        let t = Instant::now();
        anchored_round(runtime, l, anchors)?;
        match (r, &an.peer) {
            (0, Some(peer)) => drop(peer.take_timings()),
            (0, None) => {}
            _ => times.push(ms_since(t)),
        }
    }
    Ok(times)
}

/// Runs `anchor_pending` once; an error unless every anchor stored its receipt.
fn anchored_round(
    runtime: &tokio::runtime::Runtime,
    l: &Ledger,
    anchors: &[Arc<dyn Anchor>],
) -> Result<()> {
    for o in runtime.block_on(anchor_pending(l, anchors, true))? {
        if o.result != "anchored" {
            return Err(Error::backend(format!(
                "the {} anchor at {} did not anchor checkpoint {}: {} {}",
                o.kind,
                o.target,
                o.size,
                o.result,
                o.detail.unwrap_or_default()
            )));
        }
    }
    Ok(())
}
