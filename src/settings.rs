//! Applying the settings window's changes: the config file, the keyring and
//! the running core, in an order that loses nothing.
//!
//! [`Settings`] owns the running [`Core`] so that a change is one step for
//! the caller: write the file, then reload the core from what was written.
//! Invariants:
//! - the file on disk is the truth: every change re-reads it first (the user
//!   may have edited it by hand meanwhile) and the core is reloaded from the
//!   file as saved, never from the form;
//! - a secret is stored before the config naming its account is written,
//!   and a new account's secret is deleted again when the write fails, so a
//!   failure leaves neither half;
//! - removing an account deletes every keyring entry it may have, and its
//!   saved state (the reload drops it);
//! - changes are serialised: one at a time, in the order they arrive.

use std::path::PathBuf;
use std::sync::Arc;

use secrecy::SecretString;
use serde::Serialize;
use tokio::sync::{Mutex, watch};

use crate::config::edit::{AccountForm, ConfigFile, EditError, FieldError, HintForm, NotificationsForm};
use crate::config::{Config, HintRule, Notifications};
use crate::core::{Core, CoreHandle};
use crate::model::{AccountId, Source};
use crate::probe::{self, Overlay, ProbeLog, ProbeReport};
use crate::secrets::{SecretError, SecretStore};
use crate::sources;
use crate::store::StoreError;

/// Why a change was not made (or only partly).
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The config file could not be changed.
    #[error(transparent)]
    Edit(#[from] EditError),
    /// The keyring refused; the config was not changed.
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// The change was saved, but the accounts could not restart from it.
    #[error("the change was saved, but the accounts could not restart: {0}")]
    Reload(StoreError),
    /// The core is stopping.
    #[error("Vigie is shutting down")]
    Stopped,
}

impl SettingsError {
    /// The fields to mark, for a form that was refused.
    pub fn fields(&self) -> &[FieldError] {
        match self {
            SettingsError::Edit(EditError::Fields(fields)) => fields,
            _ => &[],
        }
    }
}

/// Everything the settings window shows that is not live state.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SettingsView {
    /// Where the config file is, to show the user.
    pub config_file: PathBuf,
    /// The accounts, in file order.
    pub accounts: Vec<AccountEntry>,
    /// The notification options.
    pub notifications: NotificationsForm,
    /// The cross-source refresh rules.
    pub hints: Vec<HintForm>,
    /// Start in the tray only.
    pub start_hidden: bool,
}

/// One account with what the form needs besides its settings.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountEntry {
    /// Its settings.
    pub form: AccountForm,
    /// Whether a secret is stored for it (never the secret itself).
    pub has_secret: bool,
}

/// The settings service.
pub struct Settings {
    config_file: PathBuf,
    state_file: PathBuf,
    /// `--demo` was given: run the demo whatever the config says.
    demo_asked: bool,
    secrets: Arc<dyn SecretStore>,
    /// `None` once stopped. Held for the whole of a change, which is how
    /// changes are serialised.
    core: Mutex<Option<Core>>,
    handle: CoreHandle,
    notifications: watch::Sender<Notifications>,
}

impl Settings {
    /// Takes over the running `core`, started from `config_file`.
    pub fn new(
        core: Core,
        config_file: PathBuf,
        state_file: PathBuf,
        demo_asked: bool,
        secrets: Arc<dyn SecretStore>,
        notifications: Notifications,
    ) -> Settings {
        Settings {
            config_file,
            state_file,
            demo_asked,
            secrets,
            handle: core.handle(),
            core: Mutex::new(Some(core)),
            notifications: watch::channel(notifications).0,
        }
    }

    /// The core's handle (valid across reloads).
    pub fn handle(&self) -> CoreHandle {
        self.handle.clone()
    }

    /// The notification options, following every change.
    pub fn notifications(&self) -> watch::Receiver<Notifications> {
        self.notifications.subscribe()
    }

    /// What the window shows.
    pub async fn view(&self) -> Result<SettingsView, SettingsError> {
        let config = self.read()?.config().map_err(EditError::Invalid)?;
        let mut accounts = Vec::with_capacity(config.accounts.len());
        for account in &config.accounts {
            let form = AccountForm::from_config(account);
            let has_secret = self.has_secret(&account.id, form.secret_name()).await;
            accounts.push(AccountEntry { form, has_secret });
        }
        Ok(SettingsView {
            config_file: self.config_file.clone(),
            accounts,
            notifications: NotificationsForm::from(&config.notifications),
            hints: config.hints.iter().map(HintForm::from).collect(),
            start_hidden: config.app.start_hidden,
        })
    }

    /// Adds or changes an account, storing `secret` (when given) in the
    /// keyring first. Returns the account's id.
    pub async fn save_account(&self, form: AccountForm, secret: Option<SecretString>) -> Result<String, SettingsError> {
        let mut core = self.core.lock().await;
        let mut file = self.read()?;
        let is_new = form.id.is_empty();
        let id = file.upsert_account(&form)?;
        let account = AccountId::new(id.clone());
        if let Some(secret) = secret {
            self.store_secret(&account, form.secret_name(), secret).await?;
        }
        if let Err(e) = file.save() {
            if is_new {
                self.delete_secrets(&account, form.source).await;
            }
            return Err(e.into());
        }
        tracing::info!(account = %id, new = is_new, "account saved");
        self.reload(&mut core, &file).await?;
        Ok(id)
    }

    /// Removes an account, its keyring entries and its saved state.
    pub async fn remove_account(&self, id: &str) -> Result<(), SettingsError> {
        let mut core = self.core.lock().await;
        let mut file = self.read()?;
        let config = file.config().map_err(EditError::Invalid)?;
        let source = config
            .accounts
            .iter()
            .find(|a| a.id.as_str() == id)
            .map(|a| a.source)
            .ok_or_else(|| EditError::UnknownAccount(id.to_owned()))?;
        file.remove_account(id);
        file.save()?;
        self.delete_secrets(&AccountId::new(id), source).await;
        tracing::info!(account = %id, "account removed");
        self.reload(&mut core, &file).await
    }

    /// Turns an account on or off.
    pub async fn set_enabled(&self, id: &str, enabled: bool) -> Result<(), SettingsError> {
        let mut core = self.core.lock().await;
        let mut file = self.read()?;
        file.set_enabled(id, enabled)?;
        file.save()?;
        self.reload(&mut core, &file).await
    }

    /// Changes the notification options; they apply to the next toast.
    pub async fn save_notifications(&self, form: &NotificationsForm) -> Result<(), SettingsError> {
        let _core = self.core.lock().await;
        let mut file = self.read()?;
        file.set_notifications(form)?;
        let config = file.save()?;
        self.handle.set_quiet_hours(config.notifications.quiet_hours).await;
        self.notifications.send_replace(config.notifications);
        Ok(())
    }

    /// Sets whether the app starts in the tray only (applies at the next
    /// start).
    pub async fn save_start_hidden(&self, hidden: bool) -> Result<(), SettingsError> {
        let _core = self.core.lock().await;
        let mut file = self.read()?;
        file.set_start_hidden(hidden);
        file.save()?;
        Ok(())
    }

    /// Replaces the cross-source refresh rules.
    pub async fn save_hints(&self, hints: &[HintForm]) -> Result<(), SettingsError> {
        let mut core = self.core.lock().await;
        let mut file = self.read()?;
        let rules: Vec<HintRule> = hints.iter().map(HintRule::from).collect();
        file.set_hints(&rules)?;
        file.save()?;
        self.reload(&mut core, &file).await
    }

    /// Runs "Test connection" for a form as it is now (saved or not), with
    /// `secret` if one was typed, else the stored one.
    pub async fn test_connection(&self, form: &AccountForm, secret: Option<SecretString>, log: &ProbeLog) -> Result<ProbeReport, SettingsError> {
        let mut file = self.read()?;
        let id = file.upsert_account(form)?;
        let config = file.config().map_err(EditError::Invalid)?;
        let Some(account) = config.accounts.into_iter().find(|a| a.id.as_str() == id) else {
            return Err(EditError::UnknownAccount(id).into());
        };
        let mut overlay = Overlay::new(self.secrets.clone());
        if let Some(secret) = secret {
            overlay = overlay.with(&account.id, form.secret_name(), secret);
        }
        tracing::info!(account = %account.id, source = account.source.as_str(), "testing the connection");
        Ok(probe::test_connection(&account, Arc::new(overlay), log).await)
    }

    /// Stops the core (at exit).
    pub async fn stop(&self) {
        if let Some(core) = self.core.lock().await.take() {
            core.stop().await;
        }
    }

    fn read(&self) -> Result<ConfigFile, EditError> {
        ConfigFile::open(&self.config_file)
    }

    async fn reload(&self, core: &mut Option<Core>, file: &ConfigFile) -> Result<(), SettingsError> {
        let config: Config = file.config().map_err(EditError::Invalid)?;
        let core = core.as_mut().ok_or(SettingsError::Stopped)?;
        let demo = sources::wants_demo(&config, self.demo_asked);
        let setup = sources::setup_from_config(&config, self.state_file.clone(), demo, self.secrets.clone());
        self.notifications.send_replace(config.notifications.clone());
        core.reload(setup).await.map_err(SettingsError::Reload)
    }

    async fn has_secret(&self, account: &AccountId, name: &'static str) -> bool {
        let (secrets, account) = (self.secrets.clone(), account.clone());
        matches!(tokio::task::spawn_blocking(move || secrets.get(&account, name)).await, Ok(Ok(Some(_))))
    }

    async fn store_secret(&self, account: &AccountId, name: &'static str, secret: SecretString) -> Result<(), SettingsError> {
        let (secrets, account) = (self.secrets.clone(), account.clone());
        tokio::task::spawn_blocking(move || secrets.set(&account, name, &secret))
            .await
            .map_err(|e| SecretError::Failed(e.to_string()))??;
        Ok(())
    }

    async fn delete_secrets(&self, account: &AccountId, source: Source) {
        let (secrets, account) = (self.secrets.clone(), account.clone());
        let done = tokio::task::spawn_blocking(move || {
            for name in sources::secret_names(source) {
                if let Err(e) = secrets.delete(&account, name) {
                    tracing::warn!(%account, name, "could not delete a keyring entry: {e}");
                }
            }
        })
        .await;
        if let Err(e) = done {
            tracing::warn!("deleting keyring entries failed: {e}");
        }
    }
}
