//! "Test connection" for a tasks account (see [`crate::probe`]).
//!
//! Placeholder while the protocol steps are being built: it checks the name
//! and the TCP connection, then says that the rest is not checked yet.

use std::sync::Arc;

use crate::config::AccountConfig;
use crate::probe::{self, Discovered, ProbeLog, StepKind};
use crate::secrets::SecretStore;

/// Runs the probe.
pub async fn run(account: &AccountConfig, _secrets: Arc<dyn SecretStore>, log: &ProbeLog) -> Discovered {
    let Some(server) = account.server.as_deref().filter(|s| !s.trim().is_empty()) else {
        log.failed(StepKind::Resolve, "no server is set");
        return Discovered::default();
    };
    let host = server.trim().trim_start_matches("https://").trim_start_matches("http://").split(['/', ':']).next().unwrap_or_default();
    let Some(addrs) = probe::resolve(host, 443, log).await else { return Discovered::default() };
    if probe::connect(&addrs, log).await.is_none() {
        return Discovered::default();
    }
    log.failed(StepKind::Server, "the rest of this check is not available in this build yet");
    Discovered::default()
}
