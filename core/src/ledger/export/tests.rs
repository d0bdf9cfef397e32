//! What `verify_export` reads (docs/FORMATS.md 9.4–9.6).

use super::*;
use crate::InMemoryStore;
use crate::ledger::hash::HashAlgorithm as HashAlg;
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
    fn check(&self, text: &str) -> Result<ExternalReport> {
        let v = self.signer.verifier();
        verify_export(&mut text.as_bytes(), &[&*v], &|_| {})
    }
    /// `(kind, index)` of every finding; panics if the file does not parse.
    fn findings(&self, text: &str) -> Vec<(&'static str, Option<u64>)> {
        let r = self.check(text).unwrap();
        assert_eq!(r.violation_count as usize, r.violations.len());
        assert_eq!(r.valid, r.violations.is_empty());
        r.violations
            .iter()
            .map(|v| (v.kind.name(), v.index))
            .collect()
    }
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
        let r = fx.check(&ok);
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
        assert!(fx.check(&bad).is_err(), "{bad:?}");
    }
}
