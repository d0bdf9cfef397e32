//! Ledger policies: who must sign each checkpoint, with which keys, for which tree sizes, and
//! which anchors must hold a receipt for it.
//!
//! A policy is a small text file in the spirit of Sigsum's and C2SP's policies (docs/FORMATS.md
//! §16), one directive per line, `#` starting a comment:
//!
//! ```text
//! signer ed25519 example.com/log+3f1a2b3c+AW3…      from 0     until 5000
//! signer ed25519 keys/ledger-2026.vkey               from 5001
//! signer ssh     keys/ops.pub
//! quorum 2
//! anchor witness http://witness.example:7380 keys/witness.vkey
//! ```
//!
//! A key is given inline or as a path (relative to the policy file's folder). Core parses the
//! grammar and applies the rules; turning a key into a [`Verifier`] (Ed25519, SSH, Sigstore)
//! and an anchor line into an [`crate::Anchor`] is the caller's, through a [`KeyResolver`],
//! because core knows no signer or anchor plugin.
//!
//! The rules for a checkpoint of size `n`: the signers *valid at n* are those with
//! `from ≤ n ≤ until`. Every signature by a policy key is checked: one that does not verify is a
//! finding, and so is a valid signature by a key the policy does not accept at `n` (a
//! rotated-out or not-yet-valid key). At least `quorum` signers valid at `n` (all of them when
//! the policy names no quorum) must have a verified signature; otherwise the finding names the
//! ones missing. Signatures by keys the policy does not list are ignored, as signed-note
//! verifiers ignore unknown keys.

use crate::error::{Error, Result};
use crate::ledger::checkpoint::ExtraSignature;
use crate::ledger::note::SignedNote;
use crate::ledger::signer::Verifier;
use std::fmt;
use std::path::{Path, PathBuf};

/// Turns a policy's key text into a verifier, for a signer kind (`ed25519`, `ssh`, `sigstore`).
/// `key` is the key text itself: a path in the policy has already been read.
pub type KeyResolver<'a> = &'a dyn Fn(&str, &str) -> Result<Box<dyn Verifier>>;

/// One `signer` line.
#[derive(Debug)]
pub struct PolicySigner {
    /// Signer kind, as written (`ed25519`, `ssh`, `sigstore`).
    pub kind: String,
    /// The key's verifier.
    pub verifier: Box<dyn Verifier>,
    /// First checkpoint size the key may sign (inclusive).
    pub from: u64,
    /// Last checkpoint size the key may sign (inclusive), if it was rotated out.
    pub until: Option<u64>,
    /// Line number in the policy file (1-based), for messages.
    pub line: usize,
}

impl PolicySigner {
    /// True if the key may sign a checkpoint of `size`.
    pub fn valid_at(&self, size: u64) -> bool {
        size >= self.from && self.until.is_none_or(|u| size <= u)
    }

    /// How the policy names this key in findings: kind and key name (and key ID for notes).
    pub fn label(&self) -> String {
        match self.verifier.note_key_id() {
            Some(id) => format!(
                "{} key {} ({})",
                self.kind,
                self.verifier.key_name(),
                hex::encode(id)
            ),
            None => format!("{} key {}", self.kind, self.verifier.key_name()),
        }
    }

    fn range(&self) -> String {
        match self.until {
            Some(u) => format!("sizes {} to {u}", self.from),
            None => format!("sizes from {}", self.from),
        }
    }
}

/// One `anchor` line: an anchor whose receipts `verify` checks and expects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyAnchor {
    /// Anchor kind (`witness`, `rfc3161`, `rekor`).
    pub kind: String,
    /// Where it is (URL), as the anchor's receipts name it.
    pub target: String,
    /// The trust material as given (key text, or the contents of the file named).
    pub trust: String,
    /// The file the trust material came from, if it was a path.
    pub trust_path: Option<PathBuf>,
    /// Line number in the policy file (1-based).
    pub line: usize,
}

/// A parsed ledger policy.
#[derive(Debug, Default)]
pub struct Policy {
    /// The signers, in file order.
    pub signers: Vec<PolicySigner>,
    /// How many signers valid at a size must sign it (`None`: all of them).
    pub quorum: Option<usize>,
    /// Anchors whose receipts are expected.
    pub anchors: Vec<PolicyAnchor>,
}

/// What checking one checkpoint's signatures against a policy found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PolicyOutcome {
    /// Labels of the policy keys whose signature verified.
    pub verified: Vec<String>,
    /// Key names of verified note signatures (to check the origin's own key signed).
    pub verified_note_names: Vec<String>,
    /// Problems, as sentences (each is a `bad_signature` finding).
    pub problems: Vec<String>,
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} signer(s), quorum {}, {} anchor(s)",
            self.signers.len(),
            self.quorum
                .map_or_else(|| "all".to_owned(), |q| q.to_string()),
            self.anchors.len()
        )
    }
}

impl Policy {
    /// Reads and parses a policy file; paths inside it are relative to its folder.
    pub fn read_file(path: &Path, resolve: KeyResolver<'_>) -> Result<Policy> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::config(format!("cannot read the policy file {}", path.display())).with_source(e)
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Policy::parse(&text, base, resolve)
            .map_err(|e| Error::config(format!("policy {}: {}", path.display(), e.message())))
    }

    /// Parses policy text; key paths are relative to `base`.
    pub fn parse(text: &str, base: &Path, resolve: KeyResolver<'_>) -> Result<Policy> {
        let mut policy = Policy::default();
        let mut quorum_seen = false;
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let content = raw.split('#').next().unwrap_or("").trim();
            if content.is_empty() {
                continue;
            }
            let words: Vec<&str> = content.split_whitespace().collect();
            let bad = |why: String| Error::config(format!("line {line}: {why}"));
            match words[0] {
                "signer" => policy
                    .signers
                    .push(parse_signer(&words, base, resolve, line)?),
                "quorum" => {
                    if quorum_seen {
                        return Err(bad("a second quorum line".into()));
                    }
                    quorum_seen = true;
                    policy.quorum =
                        match words.as_slice() {
                            [_, "all"] => None,
                            [_, n] => Some(n.parse::<usize>().ok().filter(|q| *q > 0).ok_or_else(
                                || bad(format!("quorum {n:?} is not a positive number or `all`")),
                            )?),
                            _ => return Err(bad("expected `quorum <n>` or `quorum all`".into())),
                        };
                }
                "anchor" => policy.anchors.push(parse_anchor(&words, base, line)?),
                other => {
                    return Err(bad(format!(
                        "unknown directive {other:?} (expected signer, quorum or anchor)"
                    )));
                }
            }
        }
        if policy.signers.is_empty() {
            return Err(Error::config("the policy lists no signer"));
        }
        if let Some(q) = policy.quorum
            && q > policy.signers.len()
        {
            return Err(Error::config(format!(
                "quorum {q} is more than the {} signer(s) the policy lists",
                policy.signers.len()
            )));
        }
        for (i, a) in policy.anchors.iter().enumerate() {
            if policy.anchors[..i]
                .iter()
                .any(|b| b.kind == a.kind && b.target == a.target)
            {
                return Err(Error::config(format!(
                    "line {}: anchor {} {} is listed twice",
                    a.line, a.kind, a.target
                )));
            }
        }
        Ok(policy)
    }

    /// The `(kind, target)` of each anchor the policy lists (how receipts name their anchor).
    pub fn anchor_ids(&self) -> Vec<(String, String)> {
        self.anchors
            .iter()
            .map(|a| (a.kind.clone(), a.target.clone()))
            .collect()
    }

    /// The signers valid at `size`.
    pub fn signers_at(&self, size: u64) -> impl Iterator<Item = &PolicySigner> {
        self.signers.iter().filter(move |s| s.valid_at(size))
    }

    /// The verifiers of every note key the policy lists (for reading notes whose size is not
    /// yet known, e.g. an export's checkpoint before its body is parsed).
    pub fn note_verifiers(&self) -> Vec<&dyn Verifier> {
        self.signers
            .iter()
            .filter(|s| s.verifier.scheme().is_note())
            .map(|s| &*s.verifier)
            .collect()
    }

    /// Checks the signatures on a checkpoint of `size`: the note's signature lines and the
    /// detached signatures stored beside it, over the note's text.
    pub fn check(&self, size: u64, note: &SignedNote, extras: &[ExtraSignature]) -> PolicyOutcome {
        let mut out = PolicyOutcome::default();
        let message = note.text.as_bytes();
        // One key may be listed on several lines (several size ranges): it may sign `size` if
        // any of its lines allows it.
        let allowed: Vec<String> = self.signers_at(size).map(PolicySigner::label).collect();
        for s in &self.signers {
            let v = &*s.verifier;
            // Every signature this key made on the checkpoint (normally at most one).
            let sigs: Vec<&[u8]> = match v.note_key_id() {
                Some(id) if v.scheme().is_note() => note
                    .signatures
                    .iter()
                    .filter(|n| n.name == v.key_name() && n.key_id == id)
                    .map(|n| n.signature.as_slice())
                    .collect(),
                _ => extras
                    .iter()
                    .filter(|x| x.scheme == v.scheme().name() && x.key_name == v.key_name())
                    .map(|x| x.signature.as_bytes())
                    .collect(),
            };
            let mut good = false;
            for sig in sigs {
                match v.verify(message, sig) {
                    Ok(()) if s.valid_at(size) => good = true,
                    Ok(()) if allowed.contains(&s.label()) => {}
                    Ok(()) => out.problems.push(format!(
                        "signed by {}, which the policy (line {}) accepts only for {}",
                        s.label(),
                        s.line,
                        s.range()
                    )),
                    Err(e) => out.problems.push(format!(
                        "the signature by {} does not verify: {}",
                        s.label(),
                        e.message()
                    )),
                }
            }
            if good && !out.verified.contains(&s.label()) {
                out.verified.push(s.label());
                if v.scheme().is_note() {
                    out.verified_note_names.push(v.key_name().to_owned());
                }
            }
        }
        // Each key counts once, however many of its lines are valid at this size.
        let mut due: Vec<&PolicySigner> = Vec::new();
        for s in self.signers_at(size) {
            if !due.iter().any(|d| d.label() == s.label()) {
                due.push(s);
            }
        }
        // A quorum above the keys valid at this size asks for all of them (documented in
        // FORMATS.md 16.4: e.g. a co-signer that starts at a later size).
        let need = self.quorum.unwrap_or(due.len()).min(due.len());
        let have = due
            .iter()
            .filter(|s| out.verified.contains(&s.label()))
            .count();
        if due.is_empty() {
            out.problems
                .push("no key in the policy is valid for this size".to_owned());
        } else if have < need {
            let missing: Vec<String> = due
                .iter()
                .filter(|s| !out.verified.contains(&s.label()))
                .map(|s| s.label())
                .collect();
            out.problems.push(format!(
                "{have} valid signature(s) of the {need} the policy requires; missing: {}",
                missing.join(", ")
            ));
        }
        out
    }
}

fn parse_signer(
    words: &[&str],
    base: &Path,
    resolve: KeyResolver<'_>,
    line: usize,
) -> Result<PolicySigner> {
    let bad = |why: String| Error::config(format!("line {line}: {why}"));
    let (kind, key) = match words {
        [_, kind, key, ..] => (*kind, *key),
        _ => {
            return Err(bad(
                "expected `signer <ed25519|ssh|sigstore> <key or path> [from N] [until N]`".into(),
            ));
        }
    };
    let (text, _) = key_text(key, base).map_err(|e| bad(e.message().to_owned()))?;
    let verifier = resolve(kind, text.trim()).map_err(|e| bad(e.message().to_owned()))?;
    let (mut from, mut until) = (0, None);
    let mut rest = words[3..].iter();
    while let Some(w) = rest.next() {
        let n = rest
            .next()
            .ok_or_else(|| bad(format!("{w:?} needs a tree size")))?;
        let n: u64 = n
            .parse()
            .map_err(|_| bad(format!("{w} {n:?}: not a tree size")))?;
        match *w {
            "from" => from = n,
            "until" => until = Some(n),
            other => {
                return Err(bad(format!(
                    "unknown option {other:?} (expected from or until)"
                )));
            }
        }
    }
    if until.is_some_and(|u| u < from) {
        return Err(bad(format!(
            "until {} is before from {from}",
            until.unwrap_or(0)
        )));
    }
    Ok(PolicySigner {
        kind: kind.to_owned(),
        verifier,
        from,
        until,
        line,
    })
}

fn parse_anchor(words: &[&str], base: &Path, line: usize) -> Result<PolicyAnchor> {
    let bad = |why: String| Error::config(format!("line {line}: {why}"));
    let [_, kind, target, trust] = words else {
        return Err(bad(
            "expected `anchor <witness|rfc3161|rekor> <url> <key, certificate or path>`".into(),
        ));
    };
    let (trust, trust_path) = key_text(trust, base).map_err(|e| bad(e.message().to_owned()))?;
    Ok(PolicyAnchor {
        kind: (*kind).to_owned(),
        // Anchors name themselves without a trailing slash; so do their receipts.
        target: target.trim_end_matches('/').to_owned(),
        trust,
        trust_path,
        line,
    })
}

/// A key given inline, or the contents of the file it names (relative to `base`). A word is a
/// path if it names an existing file, or looks like one (starts with `.`, `/` or `~`, or ends in
/// a key file extension).
fn key_text(word: &str, base: &Path) -> Result<(String, Option<PathBuf>)> {
    let path = match word.strip_prefix("~/") {
        Some(rest) => std::env::var_os("HOME")
            .map_or_else(|| PathBuf::from(word), |h| PathBuf::from(h).join(rest)),
        None => base.join(word),
    };
    let looks_like_path = path.is_file()
        || word.starts_with(['.', '/', '~'])
        || [".vkey", ".pub", ".pem", ".crt"]
            .iter()
            .any(|x| word.ends_with(x));
    if !looks_like_path {
        return Ok((word.to_owned(), None));
    }
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Error::config(format!("cannot read key file {}: {e}", path.display())))?;
    Ok((text, Some(path)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::hash::{Hasher, Sha256Hasher};
    use crate::ledger::signer::SignatureScheme;

    /// A detached test key: its signature is SHA-256(name ‖ message) in hex.
    #[derive(Debug)]
    struct TestKey(String);
    fn sign(name: &str, msg: &[u8]) -> String {
        Sha256Hasher.digest(&[name.as_bytes(), msg]).to_hex()
    }
    impl Verifier for TestKey {
        fn scheme(&self) -> SignatureScheme {
            SignatureScheme::SshSig
        }
        fn key_name(&self) -> &str {
            &self.0
        }
        fn note_key_id(&self) -> Option<[u8; 4]> {
            None
        }
        fn verify(&self, message: &[u8], signature: &[u8]) -> Result<()> {
            if signature == sign(&self.0, message).as_bytes() {
                Ok(())
            } else {
                Err(Error::integrity("bad test signature"))
            }
        }
    }
    fn resolve(kind: &str, key: &str) -> Result<Box<dyn Verifier>> {
        match kind {
            "test" => Ok(Box::new(TestKey(key.to_owned()))),
            other => Err(Error::config(format!("unknown signer kind {other:?}"))),
        }
    }
    fn policy(text: &str) -> Result<Policy> {
        Policy::parse(text, Path::new("."), &resolve)
    }
    fn note(size: u64) -> SignedNote {
        SignedNote {
            text: format!(
                "example.com/log\n{size}\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
            ),
            signatures: Vec::new(),
        }
    }
    fn sig(key: &str, n: &SignedNote) -> ExtraSignature {
        ExtraSignature {
            scheme: "sshsig".into(),
            key_name: key.into(),
            signature: sign(key, n.text.as_bytes()),
        }
    }

    #[test]
    fn a_rotated_key_verifies_what_it_signed_and_nothing_after() {
        let p = policy("signer test old until 10\nsigner test new from 11\nquorum 1\n").unwrap();
        let (n5, n20) = (note(5), note(20));
        assert!(p.check(5, &n5, &[sig("old", &n5)]).problems.is_empty());
        assert!(p.check(20, &n20, &[sig("new", &n20)]).problems.is_empty());
        let late = p.check(20, &n20, &[sig("old", &n20), sig("new", &n20)]);
        assert_eq!(late.problems.len(), 1, "{:?}", late.problems);
        assert!(late.problems[0].contains("accepts only for sizes 0 to 10"));
        let early = p.check(5, &n5, &[sig("new", &n5)]);
        assert!(
            early
                .problems
                .iter()
                .any(|m| m.contains("missing: test key old"))
        );
    }

    #[test]
    fn a_key_on_two_lines_signs_in_either_range() {
        let p = policy("signer test k until 5\nsigner test k from 10\nsigner test j\nquorum 1\n")
            .unwrap();
        for size in [3, 12] {
            let n = note(size);
            assert!(
                p.check(size, &n, &[sig("k", &n)]).problems.is_empty(),
                "{size}"
            );
        }
        let n = note(7);
        let gap = p.check(7, &n, &[sig("k", &n), sig("j", &n)]);
        assert_eq!(gap.problems.len(), 2, "{:?}", gap.problems);
        // A quorum above the keys valid at a size asks for all of them.
        let two = policy("signer test a until 5\nsigner test b\nquorum 2\n").unwrap();
        let n9 = note(9);
        assert!(two.check(9, &n9, &[sig("b", &n9)]).problems.is_empty());
        let n3 = note(3);
        assert_eq!(two.check(3, &n3, &[sig("b", &n3)]).problems.len(), 1);
        // A key on two lines valid at once counts once.
        let twice =
            policy("signer test k\nsigner test k from 2\nsigner test j\nquorum 2\n").unwrap();
        assert_eq!(
            twice
                .check(4, &note(4), &[sig("k", &note(4))])
                .problems
                .len(),
            1
        );
        let trailing = policy("signer test a\nanchor witness http://w.example/ k\n").unwrap();
        assert_eq!(trailing.anchors[0].target, "http://w.example");
    }

    #[test]
    fn the_quorum_counts_valid_signatures_and_names_the_missing_ones() {
        let p = policy("signer test a\nsigner test b\nsigner test c # ops\nquorum 2\n").unwrap();
        let n = note(7);
        assert!(
            p.check(7, &n, &[sig("a", &n), sig("c", &n)])
                .problems
                .is_empty()
        );
        let one = p.check(7, &n, &[sig("a", &n)]);
        assert_eq!(
            one.problems,
            ["1 valid signature(s) of the 2 the policy requires; missing: test key b, test key c"]
        );
        let mut bad = sig("b", &n);
        bad.signature = sign("b", b"other text");
        let forged = p.check(7, &n, &[sig("a", &n), bad]);
        assert!(forged.problems[0].starts_with("the signature by test key b does not verify"));
        assert_eq!(forged.problems.len(), 2);
        // Without a quorum line every valid key must sign.
        let all = policy("signer test a\nsigner test b\n").unwrap();
        assert_eq!(all.check(7, &n, &[sig("a", &n)]).problems.len(), 1);
        // A key the policy does not list is ignored.
        assert!(
            all.check(7, &n, &[sig("a", &n), sig("b", &n), sig("z", &n)])
                .problems
                .is_empty()
        );
    }

    #[test]
    fn bad_policies_are_refused_with_their_line() {
        for (text, why) in [
            ("", "lists no signer"),
            ("signer test a\nquorum 2\n", "quorum 2 is more than the 1"),
            ("signer test a\nquorum 0\n", "line 2: quorum \"0\""),
            (
                "signer test a\nquorum 1\nquorum 1\n",
                "line 3: a second quorum line",
            ),
            ("signer nope a\n", "line 1: unknown signer kind \"nope\""),
            (
                "signer test a from x\n",
                "line 1: from \"x\": not a tree size",
            ),
            (
                "signer test a from 5 until 4\n",
                "line 1: until 4 is before from 5",
            ),
            (
                "signer test a until\n",
                "line 1: \"until\" needs a tree size",
            ),
            (
                "signer test a since 4\n",
                "line 1: unknown option \"since\"",
            ),
            ("signer test\n", "line 1: expected `signer"),
            ("signers test a\n", "line 1: unknown directive \"signers\""),
            (
                "signer test a\nanchor witness http://w\n",
                "line 2: expected `anchor",
            ),
            (
                "signer test a\nanchor witness http://w k\nanchor witness http://w k2\n",
                "listed twice",
            ),
            ("signer test ./missing.vkey\n", "cannot read key file"),
        ] {
            let e = policy(text).expect_err(text);
            assert!(e.message().contains(why), "{text:?}: {}", e.message());
        }
    }

    #[test]
    fn keys_and_anchors_can_be_files_beside_the_policy() {
        let dir = std::env::temp_dir().join(format!("cortex-policy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("ops.pub"), "opskey\n").unwrap();
        std::fs::write(dir.join("w.vkey"), "witness-key\n").unwrap();
        let path = dir.join("policy.txt");
        std::fs::write(
            &path,
            "signer test ops.pub from 3\nanchor witness http://127.0.0.1:1 w.vkey\n",
        )
        .unwrap();
        let p = Policy::read_file(&path, &resolve).unwrap();
        assert_eq!(p.signers[0].verifier.key_name(), "opskey");
        assert_eq!(p.anchors[0].trust.trim(), "witness-key");
        assert_eq!(p.anchors[0].target, "http://127.0.0.1:1");
        assert!(p.signers_at(2).next().is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
