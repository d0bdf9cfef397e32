//! Edits of a written export and what `verify_export` reports for each: one finding per edit
//! (docs/FORMATS.md 9.7), and the reading rules of 9.4–9.6.

use super::*;
use crate::InMemoryStore;
use crate::ledger::hash::{Hash, HashAlgorithm as HashAlg};
use crate::ledger::signer::Signer;
use crate::ledger::store::DynLedgerStore;
use crate::ledger::{Ledger, LedgerOptions};
use crate::testkit::sample_entries;
use crate::testkit::tamper::TestSigner;
use std::sync::Arc;

const N: usize = 20;

struct Fixture {
    ledger: Ledger,
    signer: TestSigner,
}

fn fixture(hasher: HashAlg) -> Fixture {
    let store: DynLedgerStore = Arc::new(InMemoryStore::new());
    store.migrate().unwrap();
    let mut ledger = Ledger::open(
        store,
        LedgerOptions {
            hasher: Some(hasher),
            checkpoint_every: 0,
        },
    )
    .unwrap();
    let name = match hasher {
        HashAlg::Blake3 => "example.com/t/blake3",
        _ => "example.com/t",
    };
    let signer = TestSigner::generate(name);
    ledger.add_signer(Arc::new(signer.clone())).unwrap();
    ledger.append(&sample_entries(N)).unwrap();
    ledger.checkpoint().unwrap();
    Fixture { ledger, signer }
}

impl Fixture {
    fn export(&self, format: ExportFormat, from: Option<u64>, to: Option<u64>) -> String {
        let mut out = Vec::new();
        write_export(&self.ledger, format, from, to, &mut out, &|_| {}).unwrap();
        String::from_utf8(out).unwrap()
    }
    fn check_with(&self, text: &str, full: bool) -> Result<ExternalReport> {
        let v = self.signer.verifier();
        let options = ExportVerifyOptions {
            full,
            ..Default::default()
        };
        verify_export_with(&mut text.as_bytes(), &[&*v], &options, &|_| {})
    }
    /// `(kind, index)` of every finding; panics if the file does not parse.
    fn findings(&self, text: &str) -> Vec<(&'static str, Option<u64>)> {
        let r = self.check_with(text, false).unwrap();
        assert_eq!(r.violation_count as usize, r.violations.len());
        assert_eq!(r.valid, r.violations.is_empty());
        r.violations
            .iter()
            .map(|v| (v.kind.name(), v.index))
            .collect()
    }
}

/// The export's lines (split at `\n`), and the line of entry `i` (details are one line).
fn lines(text: &str) -> Vec<&str> {
    text.split('\n').collect()
}
fn line_of(format: ExportFormat, from: u64, i: u64) -> usize {
    (i - from) as usize + if format == ExportFormat::Csv { 2 } else { 1 }
}

const FORMATS: [ExportFormat; 3] = [ExportFormat::Json, ExportFormat::Jsonl, ExportFormat::Csv];

#[test]
fn an_export_as_written_verifies_in_every_format() {
    for alg in [HashAlg::Sha256, HashAlg::Blake3] {
        let fx = fixture(alg);
        for format in FORMATS {
            for (from, to) in [(None, None), (Some(3), Some(11)), (Some(7), Some(7))] {
                let text = fx.export(format, from, to);
                assert_eq!(fx.findings(&text), [], "{alg:?} {format:?} {from:?}");
            }
        }
    }
}

#[test]
fn swapped_entries_are_exactly_the_two_entries_reordered() {
    let fx = fixture(HashAlg::Sha256);
    for format in FORMATS {
        for (from, a, b) in [(0, 5, 6), (0, 0, 1), (0, 18, 19), (4, 4, 5), (0, 3, 15)] {
            let text = fx.export(format, Some(from), None);
            let mut l = lines(&text);
            if format == ExportFormat::Json && b == N as u64 - 1 {
                continue; // the last JSON entry line has no comma; the swap would not parse
            }
            l.swap(line_of(format, from, a), line_of(format, from, b));
            let found = fx.findings(&l.join("\n"));
            assert_eq!(
                found,
                [("reordered_entry", Some(a)), ("reordered_entry", Some(b))],
                "{format:?}: {a} <-> {b}"
            );
        }
    }
}

#[test]
fn a_moved_entry_reorders_the_entries_it_passed_and_nothing_else() {
    let fx = fixture(HashAlg::Sha256);
    let text = fx.export(ExportFormat::Jsonl, None, None);
    let mut l = lines(&text);
    let moved = l.remove(line_of(ExportFormat::Jsonl, 0, 4));
    l.insert(line_of(ExportFormat::Jsonl, 0, 7), moved);
    let found = fx.findings(&l.join("\n"));
    let want: Vec<_> = (4..=7).map(|i| ("reordered_entry", Some(i))).collect();
    assert_eq!(found, want);
}

#[test]
fn deleted_and_repeated_entries_are_one_finding_each() {
    let fx = fixture(HashAlg::Sha256);
    for format in FORMATS {
        let text = fx.export(format, Some(2), Some(17));
        let l = lines(&text);
        let without = |gone: &[u64]| -> String {
            let skip: Vec<usize> = gone.iter().map(|&i| line_of(format, 2, i)).collect();
            let kept: Vec<&str> = l
                .iter()
                .enumerate()
                .filter(|(k, _)| !skip.contains(k))
                .map(|(_, s)| *s)
                .collect();
            kept.join("\n")
        };
        if format == ExportFormat::Json {
            // Dropping the last entry line would leave a trailing comma; drop inner ones only.
            assert_eq!(fx.findings(&without(&[9])), [("missing_entry", Some(9))]);
            continue;
        }
        assert_eq!(fx.findings(&without(&[9])), [("missing_entry", Some(9))]);
        assert_eq!(
            fx.findings(&without(&[9, 10, 11, 14])),
            [("missing_entry", Some(9)), ("missing_entry", Some(14))]
        );
        assert_eq!(fx.findings(&without(&[2])), [("missing_entry", Some(2))]);
        assert_eq!(fx.findings(&without(&[16, 17])), [("truncated", Some(16))]);
        let mut repeated = l.clone();
        repeated.insert(line_of(format, 2, 12), l[line_of(format, 2, 5)]);
        assert_eq!(
            fx.findings(&repeated.join("\n")),
            [("inserted_entry", Some(5))]
        );
        // Deleted and swapped at once: each edit is its own finding.
        let one_gone = without(&[4]);
        let mut both = lines(&one_gone);
        both.swap(line_of(format, 2, 10), line_of(format, 2, 11));
        assert_eq!(
            fx.findings(&both.join("\n")),
            [
                ("missing_entry", Some(4)),
                ("reordered_entry", Some(11)),
                ("reordered_entry", Some(12))
            ]
        );
    }
}

#[test]
fn an_entry_with_a_wrong_hash_is_not_also_a_broken_link() {
    let fx = fixture(HashAlg::Sha256);
    let text = fx.export(ExportFormat::Jsonl, None, None);
    let l = lines(&text);
    let e: ExportEntry = serde_json::from_str(l[line_of(ExportFormat::Jsonl, 0, 6)]).unwrap();
    let mut bad = e.hash.clone().into_bytes();
    bad[0] = if bad[0] == b'0' { b'1' } else { b'0' };
    let altered = text.replacen(&e.hash, std::str::from_utf8(&bad).unwrap(), 1);
    // Entry 6's hash also appears as entry 7's prev_hash; only the first is changed.
    assert_eq!(fx.findings(&altered), [("altered_entry", Some(6))]);
    // An altered detail with its hash recomputed breaks the link to the next entry instead.
    let hasher = HashAlg::Sha256.hasher();
    let mut moved = e.clone();
    moved.detail = "{\"i\":600}".into();
    let leaf = crate::ledger::entry::EntryRef {
        index: 6,
        timestamp: &moved.timestamp,
        project: &moved.project,
        action: &moved.action,
        detail: &moved.detail,
    }
    .leaf_hash(&*hasher, &mut Vec::new());
    moved.hash = hasher
        .chain(&Hash::from_hex(&e.prev_hash).unwrap(), &leaf)
        .to_hex();
    let mut l2 = l.clone();
    let line = serde_json::to_string(&moved).unwrap();
    l2[line_of(ExportFormat::Jsonl, 0, 6)] = &line;
    assert_eq!(
        fx.findings(&l2.join("\n")),
        [("broken_chain", Some(7)), ("bad_root", Some(0))]
    );
}

#[test]
fn an_unverified_checkpoint_leaves_nothing_hashed() {
    let fx = fixture(HashAlg::Sha256);
    let text = fx.export(ExportFormat::Jsonl, None, None);
    let other = TestSigner::generate("example.com/t");
    let v = other.verifier();
    let r = verify_export(&mut text.as_bytes(), &[&*v], &|_| {}).unwrap();
    let kinds: Vec<_> = r.violations.iter().map(|v| v.kind.name()).collect();
    assert_eq!(kinds, ["bad_signature"]);
    // Order findings need no hash and are still made.
    let mut l = lines(&text);
    l.swap(3, 4);
    let r = verify_export(&mut l.join("\n").as_bytes(), &[&*v], &|_| {}).unwrap();
    let kinds: Vec<_> = r
        .violations
        .iter()
        .map(|v| (v.kind.name(), v.index))
        .collect();
    assert_eq!(
        kinds,
        [
            ("bad_signature", None),
            ("reordered_entry", Some(2)),
            ("reordered_entry", Some(3))
        ]
    );
}

#[test]
fn full_requires_entries_zero_to_the_checkpoint_size() {
    let fx = fixture(HashAlg::Sha256);
    let all = fx.export(ExportFormat::Jsonl, None, None);
    assert!(fx.check_with(&all, true).unwrap().valid);
    let part = fx.export(ExportFormat::Jsonl, Some(3), Some(15));
    assert!(fx.check_with(&part, false).unwrap().valid);
    let r = fx.check_with(&part, true).unwrap();
    let found: Vec<_> = r
        .violations
        .iter()
        .map(|v| (v.kind.name(), v.index, v.message.as_str()))
        .collect();
    assert_eq!(
        found,
        [
            (
                "missing_entry",
                Some(0),
                "--full: the export holds entries 3 to 15 of a checkpoint of 20; entries 0 to 2 are not in it"
            ),
            (
                "truncated",
                Some(16),
                "--full: the export holds entries 3 to 15 of a checkpoint of 20; entries 16 to 19 are not in it"
            )
        ]
    );
}

#[test]
fn reading_rules_for_blank_lines_line_ends_and_quotes() {
    let fx = fixture(HashAlg::Sha256);
    let jsonl = fx.export(ExportFormat::Jsonl, None, None);
    let csv = fx.export(ExportFormat::Csv, Some(1), Some(9));
    let json = fx.export(ExportFormat::Json, None, None);
    for ok in [
        format!("\n \t\r\n{jsonl}\n\n \n"),
        jsonl.replace('\n', "\r\n"),
        jsonl.replacen('\n', "\n\n\t\r\n", 3),
        format!("\r\n{json}\n\n\n"),
        format!("\n{csv}\n\n\r\n"),
        csv.replace('\n', "\r\n"),
        csv.replace('\n', "\r"),
        csv.trim_end().to_owned(),
        csv.replacen("\nentry,", "\n\nentry,", 2),
        csv.replace("entry,", "\"entry\",")
            .replace("type,", "\"type\","),
    ] {
        let r = fx.check_with(&ok, false);
        assert!(r.as_ref().is_ok_and(|r| r.valid), "{ok:?}: {r:?}");
    }
    for bad in [
        format!("\u{feff}{jsonl}"),
        format!("\x0c{jsonl}"),
        csv.replacen(",proj", ",p\"roj", 1),
        csv.replacen("\nentry,", "\n\"entry\"x,", 1),
        csv.replacen("\nentry,1,", "\nentry,01,", 1),
        csv.replacen("\nentry,1,", "\nentry,+1,", 1),
        csv.replacen("\nentry,", "\n \nentry,", 1),
        format!("{csv}\"unterminated"),
    ] {
        assert!(fx.check_with(&bad, false).is_err(), "{bad:?}");
    }
}
