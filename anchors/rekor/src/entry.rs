//! Offline verification of a Rekor v2 `TransparencyLogEntry` (the JSON that
//! `POST /api/v2/log/entries` returns and that Sigstore bundles carry in `tlogEntries`).

use crate::body::{Artifact, verify_body};
use crate::checkpoint::{RekorTrust, verify_checkpoint};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use cortex_core::ledger::merkle::verify_inclusion;
use cortex_core::{Checkpoint, Error, Hash, Hasher, Result, Sha256Hasher};
use serde::Deserialize;

/// A JSON integer that protobuf JSON writes as a string (`"547661"`) and others as a number.
#[derive(Deserialize)]
#[serde(untagged)]
enum Int {
    Text(String),
    Number(u64),
}

impl Int {
    fn value(&self, field: &str) -> Result<u64> {
        match self {
            Int::Number(n) => Ok(*n),
            Int::Text(s) => s.parse().map_err(|_| {
                Error::integrity(format!("Rekor entry: {field} {s:?} is not a number"))
            }),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Entry {
    #[serde(alias = "log_index")]
    log_index: Int,
    #[serde(alias = "log_id")]
    log_id: Option<LogId>,
    #[serde(alias = "kind_version")]
    kind_version: Option<KindVersion>,
    #[serde(alias = "inclusion_proof")]
    inclusion_proof: InclusionProof,
    #[serde(alias = "canonicalized_body")]
    canonicalized_body: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LogId {
    #[serde(alias = "key_id")]
    key_id: String,
}

#[derive(Deserialize)]
struct KindVersion {
    kind: String,
    version: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct InclusionProof {
    #[serde(alias = "log_index")]
    log_index: Option<Int>,
    #[serde(alias = "root_hash")]
    root_hash: Option<String>,
    #[serde(alias = "tree_size")]
    tree_size: Option<Int>,
    #[serde(default)]
    hashes: Vec<String>,
    checkpoint: CheckpointEnvelope,
}

#[derive(Deserialize)]
struct CheckpointEnvelope {
    envelope: String,
}

/// A log entry whose inclusion, checkpoint and body all verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedEntry {
    /// The entry's index in the log.
    pub log_index: u64,
    /// The log checkpoint the inclusion proof leads to (signed by a configured log key).
    pub checkpoint: Checkpoint,
    /// Configured witnesses whose cosignatures on that checkpoint verified.
    pub witnesses: Vec<String>,
    /// The leaf hash, `SHA-256(0x00 ‖ canonicalizedBody)`.
    pub leaf_hash: Hash,
    /// Entry kind (`hashedrekord` or `dsse`).
    pub kind: String,
    /// The artifact signer's `keyDetails`.
    pub key_details: String,
    /// The artifact signer's DER SubjectPublicKeyInfo.
    pub signer_spki: Vec<u8>,
}

fn bad(msg: impl Into<String>) -> Error {
    Error::integrity(format!("Rekor entry: {}", msg.into()))
}

/// Verifies a `TransparencyLogEntry` offline: its checkpoint is signed by a log key of `trust`,
/// the inclusion proof puts `SHA-256(0x00 ‖ canonicalizedBody)` at `logIndex` in the tree the
/// checkpoint commits to, and the body records `artifact` signed by its recorded key, which must
/// be `expected_signer` (a DER SubjectPublicKeyInfo) when one is given.
pub fn verify_entry(
    entry_json: &[u8],
    trust: &RekorTrust,
    artifact: Artifact<'_>,
    expected_signer: Option<&[u8]>,
) -> Result<VerifiedEntry> {
    let entry: Entry = serde_json::from_slice(entry_json)
        .map_err(|e| bad(format!("not a TransparencyLogEntry: {e}")))?;
    let body = B64
        .decode(&entry.canonicalized_body)
        .map_err(|_| bad("canonicalizedBody is not base64"))?;
    let verified = verify_checkpoint(&entry.inclusion_proof.checkpoint.envelope, trust)?;
    check_log_id(entry.log_id.as_ref(), trust)?;
    let log_index = check_index(&entry)?;
    check_proof_fields(&entry.inclusion_proof, &verified.checkpoint)?;
    let hasher = Sha256Hasher;
    let leaf_hash = hasher.leaf(&body);
    let proof = decode_hashes(&entry.inclusion_proof.hashes)?;
    let cp = &verified.checkpoint;
    verify_inclusion(&hasher, log_index, cp.size, &leaf_hash, &proof, &cp.root).map_err(|e| {
        bad(format!(
            "inclusion proof of index {log_index} in tree {}: {}",
            cp.size,
            e.message()
        ))
    })?;
    let body = verify_body(&body, artifact)?;
    check_kind_version(entry.kind_version.as_ref(), &body.kind)?;
    if let Some(expected) = expected_signer
        && expected != body.signer_spki
    {
        return Err(bad(
            "the entry was signed by another key than the expected one",
        ));
    }
    Ok(VerifiedEntry {
        log_index,
        checkpoint: verified.checkpoint,
        witnesses: verified.witnesses,
        leaf_hash,
        kind: body.kind,
        key_details: body.key_details,
        signer_spki: body.signer_spki,
    })
}

/// `logId.keyId`, when present, must be the full checkpoint key ID of a configured log key.
fn check_log_id(log_id: Option<&LogId>, trust: &RekorTrust) -> Result<()> {
    let Some(id) = log_id else { return Ok(()) };
    let raw = B64
        .decode(&id.key_id)
        .map_err(|_| bad("logId.keyId is not base64"))?;
    if !trust.knows_log_id(&raw) {
        return Err(bad(format!(
            "logId.keyId {} is not the checkpoint key ID of a configured log key",
            id.key_id
        )));
    }
    Ok(())
}

/// The top-level `logIndex`; `inclusionProof.logIndex`, a copy, must agree with it.
fn check_index(entry: &Entry) -> Result<u64> {
    let index = entry.log_index.value("logIndex")?;
    if let Some(copy) = &entry.inclusion_proof.log_index {
        let copy = copy.value("inclusionProof.logIndex")?;
        if copy != index {
            return Err(bad(format!(
                "logIndex {index} and inclusionProof.logIndex {copy} differ"
            )));
        }
    }
    Ok(index)
}

/// `treeSize` and `rootHash` repeat the checkpoint's; when present they must equal it.
fn check_proof_fields(proof: &InclusionProof, cp: &Checkpoint) -> Result<()> {
    if let Some(size) = &proof.tree_size {
        let size = size.value("inclusionProof.treeSize")?;
        if size != cp.size {
            return Err(bad(format!(
                "inclusionProof.treeSize {size} is not the checkpoint's size {}",
                cp.size
            )));
        }
    }
    if let Some(root) = &proof.root_hash
        && decode_root(root)? != cp.root
    {
        return Err(bad("inclusionProof.rootHash is not the checkpoint's root"));
    }
    Ok(())
}

/// A root hash as base64 of its 32 bytes, or (as early rekor-tiles wrote it) base64 of its
/// 64-character hex string.
fn decode_root(text: &str) -> Result<Hash> {
    let raw = B64
        .decode(text)
        .map_err(|_| bad("inclusionProof.rootHash is not base64"))?;
    match raw.len() {
        32 => Hash::from_slice(&raw),
        64 => std::str::from_utf8(&raw)
            .ok()
            .and_then(|hex| Hash::from_hex(hex).ok())
            .ok_or_else(|| bad("inclusionProof.rootHash is neither 32 bytes nor a hex root")),
        n => Err(bad(format!("inclusionProof.rootHash is {n} bytes, not 32"))),
    }
}

fn decode_hashes(hashes: &[String]) -> Result<Vec<Hash>> {
    hashes
        .iter()
        .enumerate()
        .map(|(i, h)| {
            B64.decode(h)
                .ok()
                .and_then(|raw| Hash::from_slice(&raw).ok())
                .ok_or_else(|| {
                    bad(format!(
                        "inclusionProof.hashes[{i}] is not a base64 32-byte hash"
                    ))
                })
        })
        .collect()
}

/// `kindVersion`, when present, must name the body's kind and version 0.0.2.
fn check_kind_version(kv: Option<&KindVersion>, kind: &str) -> Result<()> {
    match kv {
        Some(kv) if kv.kind != kind || kv.version != "0.0.2" => Err(bad(format!(
            "kindVersion {}/{} does not match the body ({kind}/0.0.2)",
            kv.kind, kv.version
        ))),
        _ => Ok(()),
    }
}
