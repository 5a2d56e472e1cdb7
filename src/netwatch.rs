//! Network-change detection: when the machine gains a routable address
//! (Wi-Fi back, cable plugged in, VPN up), every source refreshes at once
//! instead of sitting out its backoff.
//!
//! The OS tells us (netlink on Linux, the system configuration store on
//! macOS, IP Helper on Windows, all through `if-watch`), so this costs
//! nothing while nothing changes. Loopback and link-local addresses are
//! ignored: an interface coming up gets a link-local address long before it
//! can reach a server.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::Duration;

use futures_util::StreamExt;
use if_watch::IfEvent;
use tokio_util::sync::CancellationToken;

/// Addresses reported this soon after start are the initial enumeration,
/// not a change.
const SETTLE: Duration = Duration::from_secs(2);

fn routable(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => !v4.is_loopback() && !v4.is_link_local() && !v4.is_unspecified(),
        IpAddr::V6(v6) => !v6.is_loopback() && !v6.is_unicast_link_local() && !v6.is_unspecified(),
    }
}

/// The routable addresses we know of.
#[derive(Debug, Default)]
pub struct NetState {
    up: BTreeSet<IpAddr>,
}

impl NetState {
    /// Applies an event; returns `true` when it means "the network is (newly)
    /// reachable": a routable address we did not have, outside the initial
    /// enumeration.
    pub fn apply(&mut self, event: IfEvent, enumerating: bool) -> bool {
        match event {
            IfEvent::Up(net) => {
                let ip = net.addr();
                routable(ip) && self.up.insert(ip) && !enumerating
            }
            IfEvent::Down(net) => {
                self.up.remove(&net.addr());
                false
            }
        }
    }

    /// Whether any routable address is up.
    pub fn online(&self) -> bool {
        !self.up.is_empty()
    }
}

/// Watches the interfaces until cancelled, calling `on_network_back` when a
/// routable address appears. If the OS offers no way to watch, logs it and
/// returns: polling and backoff still work, only without the shortcut.
pub async fn netwatch_loop(cancel: CancellationToken, on_network_back: impl Fn() + Send + 'static) {
    let mut watcher = match if_watch::tokio::IfWatcher::new() {
        Ok(watcher) => watcher,
        Err(e) => {
            tracing::warn!("cannot watch network changes ({e}); relying on retries alone");
            return;
        }
    };
    // The OS answers in real time, so the enumeration window is measured on
    // the real clock (tests may pause tokio's).
    let started = std::time::Instant::now();
    let mut state = NetState::default();
    loop {
        let event = tokio::select! {
            () = cancel.cancelled() => return,
            event = watcher.next() => event,
        };
        match event {
            Some(Ok(event)) => {
                if state.apply(event, started.elapsed() < SETTLE) {
                    tracing::info!(?event, "network address appeared: refreshing every account");
                    on_network_back();
                }
            }
            Some(Err(e)) => {
                tracing::warn!("network watching failed ({e}); relying on retries alone");
                return;
            }
            None => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn up(s: &str) -> IfEvent {
        IfEvent::Up(s.parse().expect("ipnet"))
    }

    fn down(s: &str) -> IfEvent {
        IfEvent::Down(s.parse().expect("ipnet"))
    }

    #[test]
    fn addresses_present_at_start_are_not_a_change() {
        let mut state = NetState::default();
        assert!(!state.apply(up("192.168.1.20/24"), true));
        assert!(state.online());
    }

    #[test]
    fn a_new_routable_address_means_network_back() {
        let mut state = NetState::default();
        state.apply(up("192.168.1.20/24"), true);
        assert!(!state.apply(down("192.168.1.20/24"), false));
        assert!(!state.online());
        assert!(state.apply(up("192.168.1.20/24"), false), "the same address coming back counts");
        assert!(!state.apply(up("192.168.1.20/24"), false), "a repeated event does not");
    }

    #[test]
    fn loopback_and_link_local_addresses_are_ignored() {
        let mut state = NetState::default();
        for addr in ["127.0.0.1/8", "::1/128", "169.254.3.4/16", "fe80::1/64"] {
            assert!(!state.apply(up(addr), false), "{addr}");
        }
        assert!(!state.online());
        assert!(state.apply(up("2001:db8::5/64"), false));
    }
}
