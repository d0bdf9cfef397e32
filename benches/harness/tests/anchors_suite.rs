//! A tiny anchors-suite run with the real anchor clients: the harness's stand-ins (the
//! `openssl ts -reply` authority, the Rekor v2 log) and a real witness server must produce
//! receipts that `cortex-rfc3161`, `cortex-rekor` and `cortex-witness` accept, and the suite
//! must print every figure. Values are never asserted.

use cortex_bench::anchors_suite::{AnchorsSuite, BenchAnchor, SignerSet, run};
use cortex_bench::peers::{RekorStandIn, Tsa};
use cortex_bench::{Cleanup, Report};
use cortex_core::{DynStore, InMemoryStore, Result, Signer};
use cortex_witness::{KnownLogs, WitnessAnchor, WitnessServer, WitnessSigner, WitnessState};
use std::path::Path;
use std::sync::Arc;

fn witness(rt: &tokio::runtime::Runtime, dir: &Path, logs: &[String]) -> Result<BenchAnchor> {
    let signer = WitnessSigner::generate("test.local/witness")?;
    let vkey = signer.to_vkey();
    let state = WitnessState::open(&dir.join("witness.db"))?;
    let server = Arc::new(WitnessServer::new(
        signer,
        KnownLogs::parse(&logs.join("\n"))?,
        state,
    ));
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let url = format!("http://{}", listener.local_addr()?);
    rt.spawn(cortex_witness::server::serve(
        server,
        listener,
        std::future::pending(),
    ));
    Ok(BenchAnchor {
        name: "witness".into(),
        anchor: Arc::new(WitnessAnchor::new(&url, &vkey)?),
        peer: None,
        service: "witness server".into(),
    })
}

fn stand_ins(dir: &Path) -> Result<Vec<BenchAnchor>> {
    let tsa = Tsa::create(&dir.join("tsa"))?;
    let trust = cortex_rfc3161::TrustStore::new(tsa.ca_pem()?.as_bytes())?;
    let tsa = tsa.serve()?;
    let log = RekorStandIn::new("rekor.test.local")?;
    let rekor_trust = cortex_rekor::RekorTrust::from_text(&log.vkey())?;
    let log = log.serve()?;
    Ok(vec![
        BenchAnchor {
            name: "rfc3161".into(),
            anchor: Arc::new(cortex_rfc3161::Rfc3161Anchor::new(&tsa.url, trust)?),
            peer: Some(tsa),
            service: "openssl ts -reply".into(),
        },
        BenchAnchor {
            name: "rekor".into(),
            anchor: Arc::new(cortex_rekor::RekorAnchor::new(
                &log.url,
                rekor_trust,
                cortex_rekor::EntrySigningKey::generate()?,
            )?),
            peer: Some(log),
            service: "Rekor stand-in".into(),
        },
    ])
}

#[test]
fn a_tiny_run_anchors_everywhere_and_prints_every_figure() {
    let dir =
        std::env::temp_dir().join(format!("cortex-bench-anchors-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let _cleanup = Cleanup(dir.clone());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let ssh: Arc<dyn Signer> = Arc::new(
        cortex_ssh::SshSigner::generate(
            &dir.join("id_ed25519"),
            cortex_ssh::SshKeyType::Ed25519,
            "test",
            false,
        )
        .unwrap(),
    );
    let open_anchors = |logs: &[String]| -> Result<Vec<BenchAnchor>> {
        let mut all = vec![witness(&rt, &dir, logs)?];
        all.extend(stand_ins(&dir)?);
        Ok(all)
    };
    let mut report = Report::new(true);
    run(
        &AnchorsSuite {
            rounds: 3,
            appends: 2,
            backend: "in-memory".into(),
            open: &|_| Ok(Arc::new(InMemoryStore::new()) as DynStore),
            signer_sets: vec![SignerSet {
                name: "note + ssh".into(),
                extra: vec![ssh],
            }],
            anchors: &open_anchors,
        },
        &mut report,
    )
    .expect("every anchor stores a verified receipt in every round");
    let names: Vec<&str> = report
        .rows
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    for name in [
        "sign only, ed25519-note (p50)",
        "sign only, sshsig (p50)",
        "checkpoint, note (p50)",
        "checkpoint, note + ssh (p50)",
        "anchor, in-memory (p50)",
        "anchor, witness (p50)",
        "anchor, rfc3161 (p50)",
        "anchor, rekor (p50)",
        "sign + store + anchor, everything (p50)",
    ] {
        assert!(names.contains(&name), "no {name:?} figure in {names:?}");
    }
    let rfc3161 = report
        .rows
        .iter()
        .find(|r| r["name"] == "anchor, rfc3161 (p50)")
        .unwrap();
    assert!(
        rfc3161["detail"]
            .as_str()
            .unwrap()
            .contains("of which the service p50"),
        "the stand-in's own time is reported: {rfc3161}"
    );
}
