//! Key files, written the one way every signer and anchor crate writes them: a secret is never
//! readable by other users, not even for an instant (mode 0600 from creation, its directory
//! 0700), and no reader ever sees half a file (written and synced under a temporary name beside
//! it, then linked or renamed into place).

use crate::error::{Error, Result};
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// Creates `path` holding `bytes` if nothing is there yet. `Ok(true)` when this call created
/// it; `Ok(false)`, with nothing written, when the file already exists (as when another
/// process made it first: that file stands).
///
/// Safe against any number of processes doing the same at once: the bytes go to a private
/// temporary file beside `path`, which is then hard-linked to `path`, an operation that fails
/// when `path` exists, so exactly one of them creates it. On a file system without hard links
/// `path` is created exclusively and written in place instead (a reader may then see it
/// before it is complete).
pub fn create_secret(path: &Path, bytes: &[u8]) -> Result<bool> {
    if path.exists() {
        return Ok(false);
    }
    let tmp = write_temp(path, bytes, true)?;
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(false),
        // No hard links here (e.g. FAT): create the file itself exclusively.
        Err(_) => match new_file(path, true) {
            Ok(f) => {
                if let Err(e) = write_synced(f, bytes) {
                    // Ours and unusable: leave no half key behind.
                    let _ = std::fs::remove_file(path);
                    return Err(cannot_write(path, e));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(false),
            Err(e) => return Err(cannot_write(path, e)),
        },
    }
    sync_dir(path);
    Ok(true)
}

/// Writes `bytes` over `path` (creating its directory): through a temporary file beside it,
/// synced and renamed into place, so a reader sees the old file or the whole new one. Mode 0600
/// when `private`, else 0644.
pub fn replace(path: &Path, bytes: &[u8], private: bool) -> Result<()> {
    let tmp = write_temp(path, bytes, private)?;
    if let Err(e) = std::fs::rename(&tmp, path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(cannot_write(path, e));
    }
    sync_dir(path);
    Ok(())
}

/// Writes `bytes` to a new temporary file beside `path` (its directory created private);
/// returns the temporary file's path.
fn write_temp(path: &Path, bytes: &[u8], private: bool) -> Result<PathBuf> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        private_dir(dir).map_err(|e| {
            Error::config(format!("cannot create {}", dir.display())).with_source(e)
        })?;
    }
    let tmp = temp_path(path)?;
    let written = new_file(&tmp, private).and_then(|f| write_synced(f, bytes));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(cannot_write(&tmp, e));
    }
    Ok(tmp)
}

fn cannot_write(path: &Path, e: std::io::Error) -> Error {
    Error::config(format!("cannot write {}", path.display())).with_source(e)
}

fn write_synced(mut file: std::fs::File, bytes: &[u8]) -> std::io::Result<()> {
    file.write_all(bytes)?;
    file.sync_all()
}

/// A new file at `path`, failing if anything is there; mode 0600 (`private`) or 0644 on Unix
/// from creation.
fn new_file(path: &Path, private: bool) -> std::io::Result<std::fs::File> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(if private { 0o600 } else { 0o644 });
    }
    #[cfg(not(unix))]
    let _ = private;
    opts.open(path)
}

/// Creates a directory (and missing parents) private to its owner on Unix.
fn private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// A temporary name beside `path`, unique to this process and call: `.NAME.PID.RANDOM.tmp`.
fn temp_path(path: &Path) -> Result<PathBuf> {
    let mut nonce = [0u8; 8];
    getrandom::fill(&mut nonce)
        .map_err(|e| Error::backend(format!("the system random source failed: {e}")))?;
    let name = path
        .file_name()
        .map_or_else(|| "key".into(), |n| n.to_string_lossy().into_owned());
    Ok(path.with_file_name(format!(
        ".{name}.{}.{}.tmp",
        std::process::id(),
        hex::encode(nonce)
    )))
}

/// Makes a new name in `path`'s directory durable (best effort: not every platform can open a
/// directory to sync it).
fn sync_dir(path: &Path) {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && let Ok(d) = std::fs::File::open(dir)
    {
        let _ = d.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_is_created_once_private_and_whole() {
        let dir = tempfile_dir();
        let path = dir.join("keys").join("k.skey");
        assert!(create_secret(&path, b"first\n").unwrap());
        assert!(!create_secret(&path, b"second\n").unwrap());
        assert_eq!(std::fs::read(&path).unwrap(), b"first\n");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&path), 0o600);
            assert_eq!(mode(&dir.join("keys")), 0o700);
            replace(&dir.join("keys").join("k.pub"), b"public\n", false).unwrap();
            assert_eq!(mode(&dir.join("keys").join("k.pub")), 0o644);
        }
        replace(&path, b"third\n", true).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"third\n");
        // No temporary file is left behind.
        let names: Vec<String> = std::fs::read_dir(dir.join("keys"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().all(|n| !n.ends_with(".tmp")), "{names:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn of_many_racing_creators_exactly_one_wins() {
        let dir = tempfile_dir();
        let path = dir.join("race.skey");
        let wins: usize = std::thread::scope(|s| {
            let hs: Vec<_> = (0..8)
                .map(|i| {
                    let p = path.clone();
                    s.spawn(move || create_secret(&p, format!("{i}\n").as_bytes()).unwrap())
                })
                .collect();
            hs.into_iter().map(|h| usize::from(h.join().unwrap())).sum()
        });
        assert_eq!(wins, 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn tempfile_dir() -> PathBuf {
        let mut n = [0u8; 8];
        getrandom::fill(&mut n).unwrap();
        let d = std::env::temp_dir().join(format!("cortex-keyfile-{}", hex::encode(n)));
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}
