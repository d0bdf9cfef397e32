//! `c2sp.org/tlog-proof@v1` files: an entry's inclusion proof with the signed checkpoint, readable
//! by any tool that speaks the C2SP formats. CORTEX puts the entry's canonical bytes in the
//! `extra` line, so the file alone is enough to recompute the leaf and check the proof.

use crate::error::{Error, Result};
use crate::ledger::checkpoint::{Checkpoint, algorithm_of_origin};
use crate::ledger::entry::{Entry, decode_entry};
use crate::ledger::hash::Hash;
use crate::ledger::merkle::verify_inclusion;
use crate::ledger::note::SignedNote;
use crate::ledger::signer::Verifier;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

/// First line of every proof file.
pub const PROOF_HEADER: &str = "c2sp.org/tlog-proof@v1";

/// A parsed proof file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProofFile {
    /// Opaque extra data (for CORTEX, the entry's canonical bytes).
    pub extra: Option<Vec<u8>>,
    /// Index of the entry.
    pub index: u64,
    /// Inclusion proof, leaf sibling first.
    pub proof: Vec<Hash>,
    /// The signed checkpoint note, verbatim.
    pub note: String,
}

impl ProofFile {
    /// Serializes the file.
    pub fn to_text(&self) -> String {
        let mut s = format!("{PROOF_HEADER}\n");
        if let Some(x) = &self.extra {
            s.push_str(&format!("extra {}\n", B64.encode(x)));
        }
        s.push_str(&format!("index {}\n", self.index));
        for h in &self.proof {
            s.push_str(&h.to_base64());
            s.push('\n');
        }
        s.push('\n');
        s.push_str(&self.note);
        s
    }

    /// Parses a proof file. Extra `\n`s after the note's final one (an editor's or a shell's)
    /// are not part of the note (docs/FORMATS.md 8.1).
    pub fn parse(text: &str) -> Result<ProofFile> {
        let bad = |why: &str| Error::invalid(format!("malformed tlog-proof: {why}"));
        let (head, note) = text
            .split_once("\n\n")
            .ok_or_else(|| bad("no blank line before the checkpoint"))?;
        let kept = note.trim_end_matches('\n').len();
        let note = &note[..note.len().min(kept + 1)];
        let mut lines = head.split('\n');
        if lines.next() != Some(PROOF_HEADER) {
            return Err(bad(&format!("first line is not {PROOF_HEADER:?}")));
        }
        let mut line = lines.next().ok_or_else(|| bad("missing index line"))?;
        let mut extra = None;
        if let Some(x) = line.strip_prefix("extra ") {
            extra = Some(B64.decode(x).map_err(|_| bad("extra data is not base64"))?);
            line = lines.next().ok_or_else(|| bad("missing index line"))?;
        }
        let idx_s = line
            .strip_prefix("index ")
            .ok_or_else(|| bad("missing index line"))?;
        if idx_s.is_empty()
            || !idx_s.bytes().all(|b| b.is_ascii_digit())
            || (idx_s.len() > 1 && idx_s.starts_with('0'))
        {
            return Err(bad(&format!("index {idx_s:?} is not a decimal number")));
        }
        let index = idx_s.parse().map_err(|_| bad("index overflows"))?;
        let proof = lines
            .map(|l| {
                Hash::from_base64(l)
                    .map_err(|_| bad(&format!("proof hash {l:?} is not base64 of 32 bytes")))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(ProofFile {
            extra,
            index,
            proof,
            note: note.to_owned(),
        })
    }

    /// Verifies the file: the checkpoint signature with `verifiers`, the entry bytes in `extra`
    /// (index must match), and the inclusion proof, hashing with the algorithm the origin names.
    pub fn verify(&self, verifiers: &[&dyn Verifier]) -> Result<(Entry, Checkpoint)> {
        let note = SignedNote::parse(self.note.as_bytes())?;
        let verified = note.verify(verifiers)?;
        let cp = Checkpoint::parse(&note.text)?;
        crate::ledger::checkpoint::check_cortex_checkpoint(&cp, &verified)?;
        let hasher = algorithm_of_origin(&cp.origin).hasher();
        let bytes = self.extra.as_ref().ok_or_else(|| {
            Error::invalid("the proof has no extra line, so the entry cannot be recomputed")
        })?;
        let entry = decode_entry(bytes)?;
        if entry.index != self.index {
            return Err(Error::integrity(format!(
                "the entry in the extra line is index {}, but the proof is for index {}",
                entry.index, self.index
            )));
        }
        let leaf = hasher.leaf(bytes);
        verify_inclusion(&*hasher, self.index, cp.size, &leaf, &self.proof, &cp.root)?;
        Ok((entry, cp))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::InMemoryStore;
    use crate::ledger::signer::Signer;
    use crate::ledger::{Ledger, LedgerOptions};
    use crate::testkit::sample_entries;
    use crate::testkit::tamper::TestSigner;
    use std::sync::Arc;

    #[test]
    fn extra_newlines_at_the_end_are_not_part_of_the_note() {
        let store: crate::ledger::store::DynLedgerStore = Arc::new(InMemoryStore::new());
        store.migrate().unwrap();
        let mut ledger = Ledger::open(store, LedgerOptions::default()).unwrap();
        let signer = TestSigner::generate("example.com/p");
        ledger.add_signer(Arc::new(signer.clone())).unwrap();
        ledger.append(&sample_entries(7)).unwrap();
        ledger.checkpoint().unwrap();
        let (file, _) = ledger.proof_file(3).unwrap();
        let text = file.to_text();
        let v = signer.verifier();
        for extra in ["", "\n", "\n\n\n"] {
            let parsed = ProofFile::parse(&format!("{text}{extra}")).unwrap();
            assert_eq!(parsed, file, "{extra:?}");
            assert_eq!(parsed.verify(&[&*v]).unwrap().0.index, 3);
        }
        // Anything else after the note is still part of it, and breaks it.
        for extra in ["\r\n", " \n", "\nx\n"] {
            let parsed = ProofFile::parse(&format!("{text}{extra}")).unwrap();
            assert!(parsed.verify(&[&*v]).is_err(), "{extra:?}");
        }
    }
}
