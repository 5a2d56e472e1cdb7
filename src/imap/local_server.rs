//! A small IMAP server on loopback for the built-in demo: one user, one
//! folder (INBOX), in memory, speaking the subset [`super::ImapWatcher`]
//! uses: CAPABILITY, LOGIN, SELECT/EXAMINE, STATUS, UID SEARCH, UID FETCH
//! (`UID FLAGS BODY.PEEK[HEADER]<0.n> BODY.PEEK[TEXT]<0.n>`), UID STORE of
//! `\Seen`, CLOSE, NOOP, LOGOUT and IDLE. The demo delivers sample mail with
//! [`LocalImapServer::deliver`], so a new user sees the real mail path work:
//! TCP, login, IDLE push, UID cursors, header decoding, mark as read.
//!
//! It is not a general IMAP server: no TLS (loopback plaintext, which the
//! watcher allows only when told to), no literals from the client, only the
//! command forms above; anything else is answered `BAD`. Every connection
//! is a task in a `JoinSet` owned by [`Serving::run`], which ends them all
//! when its token is cancelled.

use std::sync::{Arc, Mutex, PoisonError};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// The demo user's name.
pub const USER: &str = "demo";
/// The demo user's password (the demo keeps it in memory, not the keyring).
pub const PASSWORD: &str = "demo";

const CAPABILITIES: &str = "IMAP4rev1 IDLE UIDPLUS";

#[derive(Debug, Clone)]
struct Message {
    uid: u32,
    seen: bool,
    header: Vec<u8>,
    text: Vec<u8>,
}

#[derive(Debug, Default)]
struct Mailbox {
    messages: Vec<Message>,
    next_uid: u32,
    /// New for every server: a restarted demo starts its UIDs again at 1,
    /// and a new UIDVALIDITY is how IMAP says "these are other messages".
    uidvalidity: u32,
}

/// The server's handle: where it listens, and mail delivery. Cheap to
/// clone; serving happens in [`Serving::run`].
#[derive(Debug, Clone)]
pub struct LocalImapServer {
    port: u16,
    mailbox: Arc<Mutex<Mailbox>>,
    changes: broadcast::Sender<()>,
}

/// The listening socket, served by [`Serving::run`] (the same split as the
/// demo's local Leantime: bind now, without a runtime; serve in a
/// background task).
#[derive(Debug)]
pub struct Serving {
    listener: std::net::TcpListener,
    mailbox: Arc<Mutex<Mailbox>>,
    changes: broadcast::Sender<()>,
}

impl LocalImapServer {
    /// Binds a free loopback port; nothing is served until [`Serving::run`].
    pub fn bind() -> std::io::Result<(LocalImapServer, Serving)> {
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
        listener.set_nonblocking(true)?;
        let port = listener.local_addr()?.port();
        // Seconds since 2020 keep growing from run to run (for 130 years).
        let uidvalidity = u32::try_from(jiff::Timestamp::now().as_second() - 1_577_836_800).unwrap_or(1).max(1);
        let mailbox = Arc::new(Mutex::new(Mailbox { messages: Vec::new(), next_uid: 1, uidvalidity }));
        let (changes, _) = broadcast::channel(16);
        let serving = Serving { listener, mailbox: mailbox.clone(), changes: changes.clone() };
        Ok((LocalImapServer { port, mailbox, changes }, serving))
    }

    /// The port it listens on (on 127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stores a new unread message in INBOX and tells idling sessions.
    /// Returns its UID.
    pub fn deliver(&self, from: &str, subject: &str, body: &str) -> u32 {
        let uid = {
            let mut mailbox = lock(&self.mailbox);
            let uid = mailbox.next_uid;
            mailbox.next_uid += 1;
            let header = format!(
                "From: {from}\r\nTo: {USER}@vigie.localhost\r\nSubject: {subject}\r\nDate: {}\r\n\
                 Message-ID: <{uid}.{}@vigie.localhost>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n",
                jiff::Timestamp::now().strftime("%a, %d %b %Y %H:%M:%S +0000"),
                fastrand::u32(..),
            );
            mailbox.messages.push(Message { uid, seen: false, header: header.into_bytes(), text: format!("{body}\r\n").into_bytes() });
            uid
        };
        let _ = self.changes.send(());
        uid
    }

    /// Marks the oldest unread message read, as another mail client would,
    /// and tells idling sessions. Returns its UID, if there was one.
    pub fn read_oldest_elsewhere(&self) -> Option<u32> {
        let uid = {
            let mut mailbox = lock(&self.mailbox);
            let message = mailbox.messages.iter_mut().find(|m| !m.seen)?;
            message.seen = true;
            message.uid
        };
        let _ = self.changes.send(());
        Some(uid)
    }

    /// How many messages are unread (for tests).
    pub fn unseen(&self) -> usize {
        lock(&self.mailbox).messages.iter().filter(|m| !m.seen).count()
    }
}

impl Serving {
    /// Serves until `stop` is cancelled; every session ends with it.
    pub async fn run(self, stop: CancellationToken) {
        let Ok(listener) = TcpListener::from_std(self.listener) else {
            tracing::warn!("the demo IMAP server could not start listening");
            return;
        };
        let mut sessions = JoinSet::new();
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                accepted = listener.accept() => {
                    let Ok((stream, _)) = accepted else { continue };
                    sessions.spawn(session(stream, self.mailbox.clone(), self.changes.clone(), stop.clone()));
                    while sessions.try_join_next().is_some() {}
                }
            }
        }
        sessions.shutdown().await;
    }
}

fn lock(mailbox: &Mutex<Mailbox>) -> std::sync::MutexGuard<'_, Mailbox> {
    mailbox.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What one connection has done so far.
struct State {
    logged_in: bool,
    selected: bool,
    /// Messages and seen flags the client was last told about, to report
    /// EXISTS and flag changes during IDLE.
    told: Vec<(u32, bool)>,
}

async fn session(stream: TcpStream, mailbox: Arc<Mutex<Mailbox>>, changes: broadcast::Sender<()>, stop: CancellationToken) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    let mut state = State { logged_in: false, selected: false, told: Vec::new() };
    let greeting = format!("* OK [CAPABILITY {CAPABILITIES}] Vigie demo IMAP server ready\r\n");
    if write.write_all(greeting.as_bytes()).await.is_err() {
        return;
    }
    let mut changed = changes.subscribe();
    loop {
        let line = tokio::select! {
            () = stop.cancelled() => return,
            line = lines.next_line() => match line {
                Ok(Some(line)) => line,
                _ => return,
            },
        };
        let Some((tag, command)) = line.split_once(' ') else {
            let _ = write.write_all(b"* BAD no tag\r\n").await;
            continue;
        };
        let upper = command.to_ascii_uppercase();
        let mut out: Vec<u8> = Vec::new();
        if upper == "IDLE" && state.selected {
            if write.write_all(b"+ idling\r\n").await.is_err() {
                return;
            }
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    line = lines.next_line() => match line {
                        Ok(Some(done)) if done.eq_ignore_ascii_case("DONE") => break,
                        Ok(Some(_)) => {}
                        _ => return,
                    },
                    _ = changed.recv() => {
                        let news = news(&mailbox, &mut state);
                        if write.write_all(&news).await.is_err() {
                            return;
                        }
                    }
                }
            }
            out.extend_from_slice(format!("{tag} OK IDLE terminated\r\n").as_bytes());
        } else if answer(tag, command, &upper, &mailbox, &mut state, &mut out) {
            // Flags changed: other sessions' IDLE reports it.
            let _ = changes.send(());
        }
        if write.write_all(&out).await.is_err() || upper == "LOGOUT" {
            return;
        }
    }
}

/// Untagged news for an idling client: new messages, flag changes.
fn news(mailbox: &Mutex<Mailbox>, state: &mut State) -> Vec<u8> {
    let now: Vec<(u32, bool)> = lock(mailbox).messages.iter().map(|m| (m.uid, m.seen)).collect();
    let mut out = Vec::new();
    for (seq, (uid, seen)) in now.iter().enumerate() {
        if let Some((_, was)) = state.told.iter().find(|(u, _)| u == uid)
            && was != seen
        {
            let flags = if *seen { "\\Seen" } else { "" };
            out.extend_from_slice(format!("* {} FETCH (UID {uid} FLAGS ({flags}))\r\n", seq + 1).as_bytes());
        }
    }
    if now.len() != state.told.len() {
        out.extend_from_slice(format!("* {} EXISTS\r\n", now.len()).as_bytes());
    }
    state.told = now;
    out
}

/// Answers one command into `out`; says whether it changed the mailbox.
fn answer(tag: &str, command: &str, upper: &str, mailbox: &Mutex<Mailbox>, state: &mut State, out: &mut Vec<u8>) -> bool {
    let mut ok = |text: &str| out.extend_from_slice(format!("{tag} OK {text}\r\n").as_bytes());
    let words: Vec<&str> = command.split_whitespace().collect();
    let verb = words.first().map(|w| w.to_ascii_uppercase()).unwrap_or_default();
    match verb.as_str() {
        "CAPABILITY" => {
            out.extend_from_slice(format!("* CAPABILITY {CAPABILITIES}\r\n").as_bytes());
            out.extend_from_slice(format!("{tag} OK CAPABILITY completed\r\n").as_bytes());
        }
        "NOOP" => ok("NOOP completed"),
        "LOGOUT" => {
            out.extend_from_slice(b"* BYE logging out\r\n");
            out.extend_from_slice(format!("{tag} OK LOGOUT completed\r\n").as_bytes());
        }
        "LOGIN" => {
            let unquote = |w: Option<&&str>| w.map(|w| w.trim_matches('"').to_owned()).unwrap_or_default();
            if unquote(words.get(1)) == USER && unquote(words.get(2)) == PASSWORD {
                state.logged_in = true;
                out.extend_from_slice(format!("{tag} OK [CAPABILITY {CAPABILITIES}] Logged in\r\n").as_bytes());
            } else {
                out.extend_from_slice(format!("{tag} NO [AUTHENTICATIONFAILED] Authentication failed.\r\n").as_bytes());
            }
        }
        _ if !state.logged_in => out.extend_from_slice(format!("{tag} BAD log in first\r\n").as_bytes()),
        "SELECT" | "EXAMINE" if is_inbox(words.get(1)) => {
            let mailbox = lock(mailbox);
            state.selected = true;
            state.told = mailbox.messages.iter().map(|m| (m.uid, m.seen)).collect();
            out.extend_from_slice(
                format!(
                    "* FLAGS (\\Seen)\r\n* {} EXISTS\r\n* 0 RECENT\r\n* OK [UIDVALIDITY {}] UIDs valid\r\n\
                     * OK [UIDNEXT {}] Predicted next UID\r\n{tag} OK [{}] {verb} completed\r\n",
                    mailbox.messages.len(),
                    mailbox.uidvalidity,
                    mailbox.next_uid,
                    if verb == "EXAMINE" { "READ-ONLY" } else { "READ-WRITE" },
                )
                .as_bytes(),
            );
        }
        "STATUS" if is_inbox(words.get(1)) => {
            let mailbox = lock(mailbox);
            let unseen = mailbox.messages.iter().filter(|m| !m.seen).count();
            out.extend_from_slice(
                format!(
                    "* STATUS INBOX (MESSAGES {} UIDNEXT {} UIDVALIDITY {} UNSEEN {unseen})\r\n{tag} OK STATUS completed\r\n",
                    mailbox.messages.len(),
                    mailbox.next_uid,
                    mailbox.uidvalidity,
                )
                .as_bytes(),
            );
        }
        "CLOSE" if state.selected => {
            state.selected = false;
            ok("CLOSE completed");
        }
        "UID" if state.selected => return uid_command(tag, &words[1..], upper, mailbox, state, out),
        _ => out.extend_from_slice(format!("{tag} BAD not supported by the demo server: {verb}\r\n").as_bytes()),
    }
    false
}

fn is_inbox(word: Option<&&str>) -> bool {
    word.is_some_and(|w| w.trim_matches('"').eq_ignore_ascii_case("INBOX"))
}

fn uid_command(tag: &str, words: &[&str], upper: &str, mailbox: &Mutex<Mailbox>, state: &mut State, out: &mut Vec<u8>) -> bool {
    let mut mailbox = lock(mailbox);
    let max = mailbox.messages.last().map_or(0, |m| m.uid);
    let verb = words.first().map(|w| w.to_ascii_uppercase()).unwrap_or_default();
    match verb.as_str() {
        "SEARCH" => {
            let uids: Vec<u32> = match words.get(1).map(|w| w.to_ascii_uppercase()).as_deref() {
                Some("UNSEEN") => mailbox.messages.iter().filter(|m| !m.seen).map(|m| m.uid).collect(),
                Some("ALL") => mailbox.messages.iter().map(|m| m.uid).collect(),
                Some("UID") => {
                    let set = words.get(2).copied().unwrap_or_default();
                    mailbox.messages.iter().map(|m| m.uid).filter(|uid| in_set(set, *uid, max)).collect()
                }
                _ => {
                    out.extend_from_slice(format!("{tag} BAD search not supported by the demo server\r\n").as_bytes());
                    return false;
                }
            };
            let list: String = uids.iter().map(|uid| format!(" {uid}")).collect();
            out.extend_from_slice(format!("* SEARCH{list}\r\n{tag} OK SEARCH completed\r\n").as_bytes());
        }
        "FETCH" => {
            let set = words.get(1).copied().unwrap_or_default();
            let partial = |item: &str| {
                let at = upper.find(item)?;
                let rest = &upper[at + item.len()..];
                rest[..rest.find('>')?].parse::<usize>().ok()
            };
            let preview = partial("BODY.PEEK[TEXT]<0.");
            let header_limit = partial("BODY.PEEK[HEADER]<0.");
            for (seq, message) in mailbox.messages.iter().enumerate() {
                if !in_set(set, message.uid, max) {
                    continue;
                }
                let flags = if message.seen { "\\Seen" } else { "" };
                out.extend_from_slice(format!("* {} FETCH (UID {} FLAGS ({flags})", seq + 1, message.uid).as_bytes());
                if let Some(limit) = header_limit {
                    let header = &message.header[..message.header.len().min(limit)];
                    out.extend_from_slice(format!(" BODY[HEADER]<0> {{{}}}\r\n", header.len()).as_bytes());
                    out.extend_from_slice(header);
                } else if upper.contains("BODY.PEEK[HEADER]") {
                    out.extend_from_slice(format!(" BODY[HEADER] {{{}}}\r\n", message.header.len()).as_bytes());
                    out.extend_from_slice(&message.header);
                }
                if let Some(limit) = preview {
                    let text = &message.text[..message.text.len().min(limit)];
                    out.extend_from_slice(format!(" BODY[TEXT]<0> {{{}}}\r\n", text.len()).as_bytes());
                    out.extend_from_slice(text);
                }
                out.extend_from_slice(b")\r\n");
            }
            out.extend_from_slice(format!("{tag} OK FETCH completed\r\n").as_bytes());
        }
        "STORE" if upper.contains("+FLAGS") && upper.contains("\\SEEN") => {
            let set = words.get(1).copied().unwrap_or_default();
            for message in mailbox.messages.iter_mut().filter(|m| in_set(set, m.uid, max)) {
                message.seen = true;
            }
            state.told = mailbox.messages.iter().map(|m| (m.uid, m.seen)).collect();
            out.extend_from_slice(format!("{tag} OK STORE completed\r\n").as_bytes());
            return true;
        }
        _ => out.extend_from_slice(format!("{tag} BAD not supported by the demo server\r\n").as_bytes()),
    }
    false
}

/// Whether `uid` is in the sequence set `set` (`1:3,7,9:*`); `*` is the
/// highest UID in the folder.
fn in_set(set: &str, uid: u32, max: u32) -> bool {
    let value = |s: &str| if s == "*" { Some(max) } else { s.parse::<u32>().ok() };
    set.split(',').any(|part| match part.split_once(':') {
        Some((a, b)) => match (value(a), value(b)) {
            (Some(a), Some(b)) => (a.min(b)..=a.max(b)).contains(&uid),
            _ => false,
        },
        None => value(part) == Some(uid),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_sets_include_star_as_the_highest_uid() {
        assert!(in_set("1:3,7", 2, 9));
        assert!(in_set("1:3,7", 7, 9));
        assert!(!in_set("1:3,7", 5, 9));
        assert!(in_set("5:*", 9, 9));
        // `N:*` with N above the highest is `*:N`: the last message matches.
        assert!(in_set("12:*", 9, 9));
        assert!(!in_set("x", 1, 9));
    }
}
