//! Which links "Open" may hand to the operating system. A link is made of
//! what a server sent (a Leantime notification's URL, a mail's folder and
//! Message-ID in the webmail template), so a hostile or broken server could
//! otherwise have a click open `file:` paths, `javascript:` or whatever
//! other handler a scheme reaches. An item's link opens only when it is:
//!
//! - `http`/`https` to one of its account's own hosts: the server, and for
//!   mail the webmail template's host;
//! - `mailto:` or `mid:` (RFC 2392, the mail links Vigie makes), which go
//!   to the user's mail client;
//! - `rocketchat://room` naming the account's own server (the Rocket.Chat
//!   desktop app's deep link).
//!
//! Hosts compare case-insensitively and exactly: a look-alike host or a
//! sub-domain is refused.

use reqwest::Url;

use crate::config::AccountConfig;
use crate::model::Source;

/// Why a link was not opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkRefused {
    /// Not a URL at all.
    #[error("the item's link is not a valid address")]
    Malformed,
    /// A scheme Vigie never opens.
    #[error("the item's link uses \"{0}:\", which Vigie does not open (only web, mail and Rocket.Chat links)")]
    Scheme(String),
    /// A web link to a host that is not the account's.
    #[error("the item's link leads to {host}, not to this account's server ({expected})")]
    Host {
        /// Where the link leads.
        host: String,
        /// The account's own hosts.
        expected: String,
    },
}

/// The hosts an account's links may lead to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origins {
    hosts: Vec<String>,
}

/// The host of a server setting, written either as a URL or as a bare host
/// (`imap.example.com`, `chat.example.com:3000`).
fn host_of(server: &str) -> Option<String> {
    let url = if server.contains("://") { Url::parse(server) } else { Url::parse(&format!("https://{server}")) };
    url.ok()?.host_str().map(str::to_ascii_lowercase)
}

impl Origins {
    /// The hosts of `account`: its server, and its webmail's for mail.
    pub fn of(account: &AccountConfig) -> Origins {
        let mut hosts: Vec<String> = account.server.as_deref().and_then(host_of).into_iter().collect();
        if account.source == Source::Mail
            && let Some(webmail) = account.mail.as_ref().and_then(|m| m.webmail_link.as_deref())
            && let Some(host) = host_of(webmail)
            && !hosts.contains(&host)
        {
            hosts.push(host);
        }
        Origins { hosts }
    }

    fn knows(&self, host: &str) -> bool {
        self.hosts.iter().any(|known| known.eq_ignore_ascii_case(host))
    }

    /// `link` if it may be opened, else why not.
    pub fn check(&self, link: &str) -> Result<Url, LinkRefused> {
        let url = Url::parse(link).map_err(|_| LinkRefused::Malformed)?;
        let host = match url.scheme() {
            "mailto" | "mid" => return Ok(url),
            "http" | "https" => url.host_str().map(str::to_owned),
            "rocketchat" if url.host_str() == Some("room") => url
                .query_pairs()
                .find(|(key, _)| key == "host")
                // `host=chat.example.com` or `host=http://chat.example.com:3000`.
                .and_then(|(_, value)| host_of(&value)),
            other => return Err(LinkRefused::Scheme(other.to_owned())),
        };
        match host {
            Some(host) if self.knows(&host) => Ok(url),
            host => Err(LinkRefused::Host { host: host.unwrap_or_else(|| "no host".to_owned()), expected: self.hosts.join(", ") }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::AccountId;

    fn account(source: Source, server: &str) -> AccountConfig {
        let mut config = AccountConfig::new(AccountId::new("a"), "A", source);
        config.server = Some(server.to_owned());
        config
    }

    #[test]
    fn a_link_to_the_account_s_own_server_opens() {
        let origins = Origins::of(&account(Source::Tasks, "https://PM.example.com/"));
        let link = "https://pm.example.com/dashboard/home#/tickets/showTicket/412";
        assert_eq!(origins.check(link).map(|u| u.to_string()), Ok(link.to_owned()));
    }

    #[test]
    fn a_link_to_another_host_is_refused_with_both_hosts_named() {
        let origins = Origins::of(&account(Source::Tasks, "https://pm.example.com"));
        for link in ["https://pm.example.com.evil.test/x", "https://evil.test/pm.example.com", "http://sub.pm.example.com/"] {
            let refused = origins.check(link).expect_err(link);
            assert!(matches!(&refused, LinkRefused::Host { expected, .. } if expected == "pm.example.com"), "{link}: {refused:?}");
        }
    }

    #[test]
    fn schemes_that_run_or_read_things_are_refused() {
        let origins = Origins::of(&account(Source::Tasks, "https://pm.example.com"));
        for (link, scheme) in [
            ("file:///etc/passwd", "file"),
            ("javascript:alert(1)", "javascript"),
            ("data:text/html,hi", "data"),
            ("smb://pm.example.com/share", "smb"),
            ("vscode://file/x", "vscode"),
        ] {
            assert_eq!(origins.check(link), Err(LinkRefused::Scheme(scheme.into())), "{link}");
        }
        assert_eq!(origins.check("not a link"), Err(LinkRefused::Malformed));
    }

    #[test]
    fn mail_links_open_in_the_mail_client_and_webmail_on_its_own_host() {
        let mut mail = account(Source::Mail, "imap.example.com");
        mail.mail = Some(crate::imap::MailSettings {
            webmail_link: Some("https://webmail.example.com/?_mbox={folder}&_uid={uid}".into()),
            ..Default::default()
        });
        let origins = Origins::of(&mail);
        assert!(origins.check("mid:abc%40example.com").is_ok());
        assert!(origins.check("mailto:ann@example.com").is_ok());
        assert!(origins.check("https://webmail.example.com/?_mbox=INBOX&_uid=7").is_ok());
        assert!(origins.check("https://elsewhere.example.com/").is_err());
    }

    #[test]
    fn a_rocket_chat_desktop_link_must_name_the_account_s_server() {
        let origins = Origins::of(&account(Source::Chat, "https://chat.example.com"));
        assert!(origins.check("rocketchat://room?host=chat.example.com&rid=GENERAL&path=channel%2Fgeneral").is_ok());
        assert!(origins.check("rocketchat://room?host=http%3A%2F%2Fchat.example.com%3A3000&rid=R").is_ok());
        assert!(origins.check("rocketchat://room?host=evil.test&rid=R").is_err());
        assert!(origins.check("rocketchat://auth?host=chat.example.com").is_err(), "only rooms");
    }
}
