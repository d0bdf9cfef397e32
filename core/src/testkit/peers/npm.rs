//! The npm peer: [`npm_packages`], packages installed once into a directory of their own and
//! reused while they are all there.

use super::{mkdir, peers_dir, provide, run};
use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// npm `packages` installed into `<target>/test-peers/npm/<name>/` on first use, and that
/// directory (the packages are under its `node_modules/`). It is reused while its stamp lists
/// the same packages and every one of `bins` is in `node_modules/.bin`.
pub fn npm_packages(name: &str, packages: &[&str], bins: &[&str]) -> Result<PathBuf, String> {
    let peers = peers_dir()?;
    let root = peers.join("npm");
    mkdir(&root)?;
    let dir = root.join(name);
    let stamp = dir.join("cortex-packages.txt");
    let want = packages.join("\n") + "\n";
    let ready = || {
        let stamped = fs::read_to_string(&stamp).ok().as_deref() == Some(want.as_str());
        let bins_there = bins
            .iter()
            .all(|b| dir.join("node_modules").join(".bin").join(b).exists());
        match (stamped, bins_there) {
            (true, true) => Ok(()),
            (false, _) => Err(format!("{} is missing or incomplete", dir.display())),
            (true, false) => Err(format!(
                "npm install into {} did not provide {bins:?}",
                dir.display()
            )),
        }
    };
    provide(
        &root.join(format!("{name}.lock")),
        &dir,
        &stamp,
        &want,
        &ready,
        &mut || {
            mkdir(&dir)?;
            run(
                Command::new("npm")
                    .args(["install", "--no-audit", "--no-fund", "--no-update-notifier"])
                    .args(["--loglevel=error", "--prefix"])
                    .arg(&dir)
                    .args(packages)
                    .env("npm_config_cache", peers.join("cache").join("npm"))
                    .current_dir(&dir),
                &format!(
                    "npm install {} (into {})",
                    packages.join(" "),
                    dir.display()
                ),
                Duration::from_secs(900),
            )
            .map(drop)
        },
        &format!("installed {} in {}", packages.join(" "), dir.display()),
    )?;
    Ok(dir)
}
