//! Writing key files the way `ssh-keygen` leaves them: the private key private to its owner
//! (mode 0600), the public key beside it in `<path>.pub`.

use cortex_core::{Error, Result};
use std::ffi::OsString;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// The public key file written beside a private key: `<path>.pub`, as `ssh-keygen` names it.
pub fn public_key_path(private_key: &Path) -> PathBuf {
    let mut name = OsString::from(private_key.as_os_str());
    name.push(".pub");
    PathBuf::from(name)
}

/// Writes the private key `text` to `path`, then `public_line` (plus a newline) to
/// [`public_key_path`]. Without `force` an existing `path` is an error and is left untouched:
/// the file is created exclusively, mode 0600 from the start. With `force` the new key is
/// written to a private temporary file beside `path` and renamed over it, so a reader sees the
/// old key or the whole new one.
pub(crate) fn write_key_pair(
    path: &Path,
    text: &str,
    public_line: &str,
    force: bool,
) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        key_dir(dir).map_err(|e| {
            Error::config(format!("cannot create {}", dir.display())).with_source(e)
        })?;
    }
    if force {
        replace_file(path, text.as_bytes(), true)?;
    } else {
        create_private_file(path, text.as_bytes())?;
    }
    replace_file(
        &public_key_path(path),
        format!("{public_line}\n").as_bytes(),
        false,
    )
}

/// Creates `path` exclusively (mode 0600 on Unix) and writes `bytes` to it; removes it again if
/// the write fails, so no half key is left behind.
fn create_private_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let file = exclusive_file(path, true).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            Error::invalid(format!(
                "{} already exists; pass force to replace it (signatures made with the old key \
                 then need its public key to verify)",
                path.display()
            ))
        } else {
            Error::config(format!("cannot create {}", path.display())).with_source(e)
        }
    })?;
    write_synced(file, bytes).map_err(|e| {
        let _ = std::fs::remove_file(path);
        Error::config(format!("cannot write {}", path.display())).with_source(e)
    })
}

/// Writes `bytes` to a new temporary file beside `path` and renames it over `path`.
fn replace_file(path: &Path, bytes: &[u8], private: bool) -> Result<()> {
    let tmp = temp_path(path)?;
    let written = exclusive_file(&tmp, private)
        .and_then(|f| write_synced(f, bytes))
        .and_then(|()| std::fs::rename(&tmp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written.map_err(|e| Error::config(format!("cannot write {}", path.display())).with_source(e))
}

fn write_synced(mut file: std::fs::File, bytes: &[u8]) -> std::io::Result<()> {
    file.write_all(bytes)?;
    file.sync_all()
}

/// A new file at `path`, failing if anything is there; a `private` one has mode 0600 on Unix
/// from the start, so the secret is never readable by others, not even for an instant.
fn exclusive_file(path: &Path, private: bool) -> std::io::Result<std::fs::File> {
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

/// Creates a missing key directory (and its parents) private to its owner on Unix.
fn key_dir(dir: &Path) -> std::io::Result<()> {
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
    let nonce: String = nonce.iter().map(|b| format!("{b:02x}")).collect();
    Ok(path.with_file_name(format!(".{name}.{}.{nonce}.tmp", std::process::id())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_public_key_sits_beside_the_private_key() {
        assert_eq!(
            public_key_path(Path::new("/keys/id_ed25519")),
            Path::new("/keys/id_ed25519.pub")
        );
        assert_eq!(
            public_key_path(Path::new("ledger.key")),
            Path::new("ledger.key.pub")
        );
    }
}
