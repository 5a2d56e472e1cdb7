//! Secrets (passwords, tokens) and where they live: the OS keyring, never a
//! file.
//!
//! [`SecretStore`] is the seam: [`KeyringSecrets`] talks to the Secret
//! Service on Linux, the Keychain on macOS and the Credential Manager on
//! Windows; [`MemorySecrets`] is for tests. When no keyring is available we say
//! so plainly ([`SecretError::Unavailable`]) and store nothing: there is no
//! plaintext fallback.
//!
//! Secret values travel as [`SecretString`], whose `Debug` prints a
//! placeholder, so a stray `{:?}` cannot leak one into a log line.

use std::collections::BTreeMap;
use std::sync::Mutex;

use secrecy::{ExposeSecret, SecretString};

use crate::model::AccountId;

/// The keyring "service" all our entries are filed under.
pub const SERVICE: &str = "org.vigie.notifier";

/// Why a secret could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// There is no usable keyring (no Secret Service running, keyring
    /// locked, …). Nothing was stored.
    #[error(
        "no usable keyring: {0}. Vigie keeps passwords and tokens only in the system keyring \
         (on Linux a Secret Service such as GNOME Keyring or KWallet); start or unlock it and try again"
    )]
    Unavailable(String),
    /// The keyring answered with an error.
    #[error("the keyring refused the operation: {0}")]
    Failed(String),
}

/// Where secrets are kept. Names are per account: `("work-mail", "password")`.
pub trait SecretStore: Send + Sync {
    /// Reads a secret; `Ok(None)` if none is stored.
    fn get(&self, account: &AccountId, name: &str) -> Result<Option<SecretString>, SecretError>;
    /// Stores (or replaces) a secret.
    fn set(&self, account: &AccountId, name: &str, value: &SecretString) -> Result<(), SecretError>;
    /// Deletes a secret; deleting a missing one is fine.
    fn delete(&self, account: &AccountId, name: &str) -> Result<(), SecretError>;
}

/// The OS keyring through the `keyring` crate. Calls block (D-Bus round trips
/// on Linux): call them from `spawn_blocking` in async code.
#[derive(Debug, Default, Clone, Copy)]
pub struct KeyringSecrets;

impl KeyringSecrets {
    fn entry(account: &AccountId, name: &str) -> Result<keyring::Entry, SecretError> {
        keyring::Entry::new(SERVICE, &format!("{account}/{name}")).map_err(map_error)
    }

    /// Whether a keyring backend could be reached at all.
    pub fn status() -> Result<(), SecretError> {
        keyring::Entry::store_status().as_ref().map_err(|e| SecretError::Unavailable(e.to_string())).map(|_| ())
    }
}

fn map_error(error: keyring::Error) -> SecretError {
    match error {
        keyring::Error::NoDefaultStore | keyring::Error::NoStorageAccess(_) | keyring::Error::PlatformFailure(_) => {
            SecretError::Unavailable(error.to_string())
        }
        other => SecretError::Failed(other.to_string()),
    }
}

impl SecretStore for KeyringSecrets {
    fn get(&self, account: &AccountId, name: &str) -> Result<Option<SecretString>, SecretError> {
        match Self::entry(account, name)?.get_password() {
            Ok(value) => Ok(Some(SecretString::from(value))),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(map_error(e)),
        }
    }

    fn set(&self, account: &AccountId, name: &str, value: &SecretString) -> Result<(), SecretError> {
        Self::entry(account, name)?.set_password(value.expose_secret()).map_err(map_error)
    }

    fn delete(&self, account: &AccountId, name: &str) -> Result<(), SecretError> {
        match Self::entry(account, name)?.delete_credential() {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(e) => Err(map_error(e)),
        }
    }
}

/// An in-memory store for tests.
#[derive(Debug, Default)]
pub struct MemorySecrets(Mutex<BTreeMap<(String, String), SecretString>>);

impl MemorySecrets {
    fn map(&self) -> std::sync::MutexGuard<'_, BTreeMap<(String, String), SecretString>> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl SecretStore for MemorySecrets {
    fn get(&self, account: &AccountId, name: &str) -> Result<Option<SecretString>, SecretError> {
        Ok(self.map().get(&(account.to_string(), name.to_owned())).cloned())
    }

    fn set(&self, account: &AccountId, name: &str, value: &SecretString) -> Result<(), SecretError> {
        self.map().insert((account.to_string(), name.to_owned()), value.clone());
        Ok(())
    }

    fn delete(&self, account: &AccountId, name: &str) -> Result<(), SecretError> {
        self.map().remove(&(account.to_string(), name.to_owned()));
        Ok(())
    }
}

/// What stands in for a secret cut out of a server's words.
pub const REDACTED: &str = "[redacted]";

/// `text` with every occurrence of any of `secrets` replaced by
/// [`REDACTED`]. For a server's words that end up in a message: a server (or
/// a proxy in front of it) may quote the request it refuses, and a refused
/// sign-in is exactly the message that is logged and shown.
pub fn redact(text: &str, secrets: &[&SecretString]) -> String {
    let mut text = text.to_owned();
    for secret in secrets {
        let secret = secret.expose_secret();
        // An empty secret would match everywhere; a one-letter one would
        // shred the message and protect nothing.
        if secret.len() < 2 {
            continue;
        }
        // Quoted in a JSON body or an IMAP string, `"` and `\` come
        // escaped.
        let escaped = serde_json::to_string(secret).unwrap_or_default();
        let escaped = escaped.get(1..escaped.len().saturating_sub(1)).unwrap_or_default();
        for form in [secret, escaped] {
            if !form.is_empty() && text.contains(form) {
                text = text.replace(form, REDACTED);
            }
        }
    }
    text
}

/// Stores, reads back and deletes a probe secret: the "does my keyring work"
/// check behind `vigie --check-keyring`. Returns a line for the user.
pub fn self_check(store: &dyn SecretStore) -> Result<String, SecretError> {
    let account = AccountId::new("vigie-self-check");
    let probe = SecretString::from(format!("probe-{}", fastrand::u64(..)));
    store.set(&account, "probe", &probe)?;
    let back = store.get(&account, "probe")?;
    store.delete(&account, "probe")?;
    let gone = store.get(&account, "probe")?.is_none();
    match back {
        Some(value) if value.expose_secret() == probe.expose_secret() && gone => {
            Ok("the keyring works: a test secret was stored, read back and deleted".to_owned())
        }
        Some(_) => Err(SecretError::Failed("the keyring returned a different value than was stored".to_owned())),
        None => Err(SecretError::Failed("the keyring lost a value right after storing it".to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_store_round_trips_and_passes_the_self_check() {
        let store = MemorySecrets::default();
        assert!(self_check(&store).is_ok());
        let id = AccountId::new("a");
        store.set(&id, "password", &SecretString::from("hunter2")).expect("set");
        assert_eq!(store.get(&id, "password").expect("get").expect("some").expose_secret(), "hunter2");
    }

    #[test]
    fn redact_cuts_every_secret_out_of_a_servers_words() {
        let (password, token) = (SecretString::from("hunter2"), SecretString::from("t0k"));
        let words = "NO [AUTHENTICATIONFAILED] LOGIN me hunter2 failed (hunter2, t0k)";
        assert_eq!(redact(words, &[&password, &token]), "NO [AUTHENTICATIONFAILED] LOGIN me [redacted] failed ([redacted], [redacted])");
        assert_eq!(redact("nothing to hide", &[&SecretString::from("")]), "nothing to hide");
        let quoted = SecretString::from(r#"pa"ss\word"#);
        assert_eq!(redact(r#"{"password":"pa\"ss\\word"}"#, &[&quoted]), r#"{"password":"[redacted]"}"#);
    }

    #[test]
    fn secrets_do_not_show_in_debug_output() {
        let secret = SecretString::from("hunter2");
        assert!(!format!("{secret:?}").contains("hunter2"));
    }
}
