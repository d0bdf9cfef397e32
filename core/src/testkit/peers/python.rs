//! The Python peer: [`python_env`], a venv of pinned packages made once and reused while it
//! still holds them.

use super::{mkdir, peers_dir, provide, run};
use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// A venv at `<target>/test-peers/python/<name>/` with `requirements` installed by pip, made
/// with the `python3` on `PATH` on first use, and its interpreter's path. It is reused while
/// its stamp lists the same requirements, every `imports` module is found and every pinned
/// (`name==version`) requirement has its version; otherwise it is made anew.
pub fn python_env(name: &str, requirements: &[&str], imports: &[&str]) -> Result<PathBuf, String> {
    let peers = peers_dir()?;
    let root = peers.join("python");
    mkdir(&root)?;
    let venv = root.join(name);
    let python = venv.join("bin").join("python");
    let stamp = venv.join("cortex-requirements.txt");
    let want = requirements.join("\n") + "\n";
    let ready = || -> Result<(), String> {
        if fs::read_to_string(&stamp).ok().as_deref() != Some(want.as_str()) {
            return Err(format!("{} is missing or incomplete", venv.display()));
        }
        // Found, not imported: importing the MCP SDK takes a second, the tests import it anyway.
        let mut check = String::from("import importlib.metadata as m, importlib.util as u\n");
        for i in imports {
            check += &format!("assert u.find_spec({i:?}), 'no module {i}'\n");
        }
        for r in requirements {
            if let Some((dist, version)) = r.split_once("==") {
                let dist = dist.split('[').next().unwrap_or(dist).trim();
                check += &format!(
                    "v = m.version({dist:?})\nassert v == {version:?}, f'{dist} {{v}} installed, {version} required'\n"
                );
            }
        }
        run(
            Command::new(&python).args(["-c", &check]),
            &format!("checking {}", venv.display()),
            Duration::from_secs(60),
        )
        .map(drop)
    };
    provide(
        &root.join(format!("{name}.lock")),
        &venv,
        &stamp,
        &want,
        &ready,
        &mut || {
            run(
                Command::new("python3").args(["-m", "venv"]).arg(&venv),
                &format!("python3 -m venv {}", venv.display()),
                Duration::from_secs(180),
            )?;
            run(
                Command::new(&python)
                    .args(
                        "-m pip install --quiet --disable-pip-version-check --no-input --retries 2 \
                         --timeout 30 --cache-dir"
                            .split_whitespace(),
                    )
                    .arg(peers.join("cache").join("pip"))
                    .args(requirements),
                &format!(
                    "pip install {} (into {})",
                    requirements.join(" "),
                    venv.display()
                ),
                Duration::from_secs(900),
            )
            .map(drop)
        },
        &format!("made the venv {}", venv.display()),
    )?;
    Ok(python)
}
