//! Writing key files the way `ssh-keygen` leaves them: the private key private to its owner
//! (mode 0600), the public key beside it in `<path>.pub`.

use cortex_core::{Error, Result, keyfile};
use std::ffi::OsString;
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
    if force {
        keyfile::replace(path, text.as_bytes(), true)?;
    } else if !keyfile::create_secret(path, text.as_bytes())? {
        return Err(Error::invalid(format!(
            "{} already exists; pass force to replace it (signatures made with the old key \
             then need its public key to verify)",
            path.display()
        )));
    }
    keyfile::replace(
        &public_key_path(path),
        format!("{public_line}\n").as_bytes(),
        false,
    )
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
