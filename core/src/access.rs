//! API keys and roles: who may call a network surface (`cortex serve`'s REST API and MCP over
//! HTTP), and as whom.
//!
//! A key is shown once, as a token `cortex_<id>_<secret>` (`id`: 12 lowercase hex digits,
//! `secret`: 43 base64url characters, 256 random bits). The store keeps only its record under
//! the setting `api_key.<id>`: its name (the identity it acts as: the author of every memory
//! entry it writes and the voter of every vote it casts), its role, its times and the SHA-256
//! of the whole token, which a presented token is compared with in constant time. Keys live in
//! the ledger's store, so every replica sharing a database accepts the same keys; creating and
//! revoking one is recorded in the ledger itself (project `cortex`, actions `api_key.create`
//! and `api_key.revoke`, the secret never in them).

use crate::error::{Error, Result};
use crate::ledger::entry::{NewEntry, now_timestamp};
use crate::ledger::{AppendOutcome, Ledger};
use crate::memory::fact::check_agent;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// What a key may do. Ordered: each role may do what the ones before it may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Read: search, recall, history, status, proofs, verify, metrics.
    Read,
    /// Read and write: store facts, vote, deprecate, sign a checkpoint.
    Write,
    /// Everything: also forget (erase) facts and manage keys.
    Admin,
}

impl Role {
    /// `read`, `write` or `admin`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Read => "read",
            Role::Write => "write",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = Error;
    fn from_str(s: &str) -> Result<Role> {
        match s {
            "read" => Ok(Role::Read),
            "write" => Ok(Role::Write),
            "admin" => Ok(Role::Admin),
            other => Err(Error::invalid(format!(
                "role {other:?} is not one of read, write, admin"
            ))),
        }
    }
}

/// Who is calling, once a key has been checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The key's name: the identity the caller acts as.
    pub identity: String,
    /// What it may do.
    pub role: Role,
    /// The key's id (for logs and rate limits; never secret).
    pub key_id: String,
}

impl Principal {
    /// `Ok` if this principal's role is at least `needed`, else a `Forbidden` error naming both.
    pub fn require(&self, needed: Role, what: &str) -> Result<()> {
        if self.role >= needed {
            Ok(())
        } else {
            Err(Error::forbidden(format!(
                "{what} needs the {needed} role; the key {} ({}) has {}",
                self.key_id, self.identity, self.role
            )))
        }
    }
}

/// An API key's stored record (never the token).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKey {
    /// 12 hex digits, the token's second part.
    pub id: String,
    /// The identity the key acts as.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// When it was made (RFC 3339).
    pub created_at: String,
    /// When it was revoked, if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
    /// Lowercase hex SHA-256 of the whole token.
    pub token_sha256: String,
}

/// A key just made: its record and the token, which is shown once and never stored.
#[derive(Debug, Clone)]
pub struct CreatedKey {
    /// The record as stored.
    pub key: ApiKey,
    /// The token to give the caller.
    pub token: String,
    /// The ledger entry that records the creation.
    pub entry_index: u64,
}

/// Setting-key prefix of the API key records.
pub const META_PREFIX: &str = "api_key.";
/// Token prefix.
pub const TOKEN_PREFIX: &str = "cortex_";
/// The ledger project of key management entries.
pub const AUDIT_PROJECT: &str = "cortex";

/// API keys kept in a ledger's store.
#[derive(Clone)]
pub struct ApiKeys {
    ledger: Arc<Ledger>,
}

impl fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKeys").finish_non_exhaustive()
    }
}

fn sha256_hex(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Splits a token into its id, or says what is wrong with it (never echoing the secret).
fn token_id(token: &str) -> Result<&str> {
    let bad = || {
        Error::unauthorized(
            "the API key is malformed: expected cortex_<12 hex digits>_<43 base64url characters>",
        )
    };
    let rest = token.strip_prefix(TOKEN_PREFIX).ok_or_else(bad)?;
    let (id, secret) = rest.split_once('_').ok_or_else(bad)?;
    let id_ok = id.len() == 12 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    let secret_ok = secret.len() == 43
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if id_ok && secret_ok {
        Ok(id)
    } else {
        Err(bad())
    }
}

impl ApiKeys {
    /// The keys of `ledger`'s store.
    pub fn new(ledger: Arc<Ledger>) -> Self {
        ApiKeys { ledger }
    }

    fn record(&self, id: &str) -> Result<Option<ApiKey>> {
        match self.ledger.store().meta(&format!("{META_PREFIX}{id}"))? {
            None => Ok(None),
            Some(text) => serde_json::from_str(&text).map(Some).map_err(|e| {
                Error::backend(format!(
                    "the stored record of API key {id} is not valid: {e}"
                ))
            }),
        }
    }

    fn audit(&self, action: &str, key: &ApiKey) -> Result<AppendOutcome> {
        let detail = serde_json::json!({"id": key.id, "name": key.name, "role": key.role});
        self.ledger
            .append(&[NewEntry::new(AUDIT_PROJECT, action, detail.to_string())])
    }

    /// Makes a key acting as `name` with `role`; the token is in the result only.
    pub fn create(&self, name: &str, role: Role) -> Result<CreatedKey> {
        check_agent(name).map_err(|e| {
            Error::invalid(format!("an API key's name is the identity it acts as: {e}"))
        })?;
        let mut raw = [0u8; 38];
        getrandom::fill(&mut raw)
            .map_err(|e| Error::backend(format!("no randomness for an API key: {e}")))?;
        let id = hex::encode(&raw[..6]);
        let token = format!("{TOKEN_PREFIX}{id}_{}", B64URL.encode(&raw[6..]));
        let key = ApiKey {
            id: id.clone(),
            name: name.to_owned(),
            role,
            created_at: now_timestamp(),
            revoked_at: None,
            token_sha256: sha256_hex(&token),
        };
        let text = serde_json::to_string(&key)
            .map_err(|e| Error::backend(format!("cannot encode an API key: {e}")))?;
        let stored = self
            .ledger
            .store()
            .init_meta(&format!("{META_PREFIX}{id}"), &text)?;
        if stored != text {
            return Err(Error::conflict(format!(
                "an API key with id {id} already exists; try again"
            )));
        }
        let entry = self.audit("api_key.create", &key)?;
        Ok(CreatedKey {
            key,
            token,
            entry_index: entry.first_index,
        })
    }

    /// Every key, revoked ones included, by id.
    pub fn list(&self) -> Result<Vec<ApiKey>> {
        self.ledger
            .store()
            .meta_prefixed(META_PREFIX)?
            .into_iter()
            .map(|(k, text)| {
                serde_json::from_str(&text).map_err(|e| {
                    Error::backend(format!("the stored record {k} is not a valid API key: {e}"))
                })
            })
            .collect()
    }

    /// Revokes key `id` (a token's id part, or the whole token). Revoking a revoked key is an
    /// error that says when it was revoked.
    pub fn revoke(&self, id: &str) -> Result<ApiKey> {
        let id = token_id(id).unwrap_or(id);
        let mut key = self
            .record(id)?
            .ok_or_else(|| Error::not_found(format!("no API key has the id {id:?}")))?;
        if let Some(at) = &key.revoked_at {
            return Err(Error::conflict(format!(
                "the API key {id} ({}) was already revoked at {at}",
                key.name
            )));
        }
        key.revoked_at = Some(now_timestamp());
        let text = serde_json::to_string(&key)
            .map_err(|e| Error::backend(format!("cannot encode an API key: {e}")))?;
        self.ledger
            .store()
            .set_meta(&format!("{META_PREFIX}{id}"), &text)?;
        self.audit("api_key.revoke", &key)?;
        Ok(key)
    }

    /// Whether any key that is not revoked exists.
    pub fn any_active(&self) -> Result<bool> {
        Ok(self.list()?.iter().any(|k| k.revoked_at.is_none()))
    }

    /// Checks a presented token: `Unauthorized` if it is malformed, unknown, wrong or revoked
    /// (each said plainly, the secret never repeated).
    pub fn authenticate(&self, token: &str) -> Result<Principal> {
        let id = token_id(token)?;
        let key = self
            .record(id)?
            .ok_or_else(|| Error::unauthorized(format!("no API key has the id {id}")))?;
        let presented = Sha256::digest(token.as_bytes());
        let stored = hex::decode(&key.token_sha256)
            .map_err(|_| Error::backend(format!("the stored hash of API key {id} is not hex")))?;
        if !bool::from(presented.as_slice().ct_eq(&stored)) {
            return Err(Error::unauthorized(format!(
                "the API key with id {id} does not match its stored hash"
            )));
        }
        if let Some(at) = key.revoked_at {
            return Err(Error::unauthorized(format!(
                "the API key {id} ({}) was revoked at {at}",
                key.name
            )));
        }
        Ok(Principal {
            identity: key.name,
            role: key.role,
            key_id: key.id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::InMemoryStore;
    use crate::ledger::LedgerOptions;

    fn keys() -> ApiKeys {
        let store: crate::DynLedgerStore = Arc::new(InMemoryStore::new());
        ApiKeys::new(Arc::new(
            Ledger::open(store, LedgerOptions::default()).unwrap(),
        ))
    }

    #[test]
    fn a_created_key_authenticates_as_its_name_until_revoked() {
        let keys = keys();
        let made = keys.create("agent-7", Role::Write).unwrap();
        assert!(made.token.starts_with("cortex_"));
        assert_eq!(made.token.len(), 7 + 12 + 1 + 43);
        let p = keys.authenticate(&made.token).unwrap();
        assert_eq!((p.identity.as_str(), p.role), ("agent-7", Role::Write));
        // Only the hash is stored.
        let listed = keys.list().unwrap();
        assert_eq!(listed.len(), 1);
        assert!(
            !serde_json::to_string(&listed)
                .unwrap()
                .contains(&made.token[20..])
        );
        // A token with one secret character changed is refused.
        let mut wrong = made.token.clone();
        let last = if wrong.ends_with('A') { "B" } else { "A" };
        wrong.replace_range(wrong.len() - 1.., last);
        let e = keys.authenticate(&wrong).unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::Unauthorized);
        assert!(e.message().contains("does not match"), "{e}");
        keys.revoke(&made.key.id).unwrap();
        let e = keys.authenticate(&made.token).unwrap_err();
        assert!(e.message().contains("revoked"), "{e}");
        assert!(
            keys.revoke(&made.key.id)
                .unwrap_err()
                .message()
                .contains("already")
        );
        assert!(!keys.any_active().unwrap());
    }

    #[test]
    fn malformed_and_unknown_tokens_are_refused_by_name() {
        let keys = keys();
        for t in [
            "",
            "Bearer x",
            "cortex_abc",
            "cortex_zzzzzzzzzzzz_",
            "cortex_0123456789ab_short",
        ] {
            let e = keys.authenticate(t).unwrap_err();
            assert!(e.message().contains("malformed"), "{t}: {e}");
        }
        let unknown = format!("cortex_0123456789ab_{}", "A".repeat(43));
        assert!(
            keys.authenticate(&unknown)
                .unwrap_err()
                .message()
                .contains("no API key")
        );
        assert!(keys.create("", Role::Read).is_err());
        assert!(
            "owner"
                .parse::<Role>()
                .unwrap_err()
                .message()
                .contains("read, write, admin")
        );
    }

    #[test]
    fn roles_are_ordered_and_forbidden_names_both() {
        let p = Principal {
            identity: "r".into(),
            role: Role::Read,
            key_id: "0123456789ab".into(),
        };
        assert!(p.require(Role::Read, "search").is_ok());
        let e = p.require(Role::Admin, "forget").unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::Forbidden);
        assert!(
            e.message().contains("admin") && e.message().contains("read"),
            "{e}"
        );
    }

    #[test]
    fn key_management_is_recorded_in_the_ledger() {
        let keys = keys();
        let made = keys.create("ops", Role::Admin).unwrap();
        keys.revoke(&made.token).unwrap();
        assert_eq!(keys.ledger.head().unwrap().size, 2);
    }
}
