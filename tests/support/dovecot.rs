//! A real Dovecot IMAP server for the mail tests, started and owned by the
//! test: unprivileged, on a free loopback port, with its own config, run
//! folder and throw-away mail store in a temporary folder (nothing in
//! `/etc/dovecot` or `/run` is used), and killed by its PID when dropped.
//!
//! Dovecot runs as the user running the tests, or as `nobody` when that is
//! root (Dovecot refuses mail access as uid 0). The test talks to it through
//! [`ImapClient`], a deliberately small raw IMAP client on a second
//! connection, so mail is injected and flags are read back without the code
//! under test.
//!
//! Two users: [`USER`] with password [`PASSWORD`], and [`OAUTH_USER`] whose
//! bearer token [`OAUTH_TOKEN`] Dovecot checks as a password; plaintext
//! LOGIN is allowed (loopback only). [`Options::tls`] adds an implicit-TLS listener and
//! STARTTLS with a self-signed certificate made at test time;
//! [`Options::capability`] replaces the capability list announced after login
//! (to look like a server without IDLE or NOTIFY).
//!
//! The config is for Dovecot 2.3 (Debian 12's `dovecot-imapd`).

use std::net::TcpListener as StdListener;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

/// The test user.
pub const USER: &str = "alice";
/// Its password.
pub const PASSWORD: &str = "secret";
/// A user who signs in with an OAuth bearer token (XOAUTH2/OAUTHBEARER):
/// Dovecot 2.3 checks the token as the password, so this is the one valid
/// token.
pub const OAUTH_USER: &str = "carol@example.test";
/// [`OAUTH_USER`]'s valid access token.
pub const OAUTH_TOKEN: &str = "ya29.test-token";

/// How long Dovecot may take to start or stop.
const STARTUP: Duration = Duration::from_secs(20);

/// How to set up the server.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Serve implicit TLS on a second port, and STARTTLS on the plain one,
    /// with a self-signed certificate for `localhost`/`127.0.0.1`.
    pub tls: bool,
    /// Replace the post-login CAPABILITY (Dovecot's `imap_capability`).
    pub capability: Option<String>,
    /// Raise Dovecot's cap on one user's connections from one address
    /// (`mail_max_userip_connections`, 10 by default), for many accounts
    /// of the one test user.
    pub user_connections: Option<u32>,
    /// More users, as (name, password), beside [`USER`] and [`OAUTH_USER`]
    /// (a password doubles as a bearer token, as for [`OAUTH_USER`]).
    pub users: Vec<(String, String)>,
}

/// The self-signed certificate of a TLS-enabled server.
#[derive(Debug, Clone)]
pub struct Certificate {
    /// The certificate, DER.
    pub der: Vec<u8>,
}

impl Certificate {
    /// Its SHA-256 fingerprint as colon-separated upper-case hex, the way
    /// `openssl x509 -fingerprint -sha256` prints it.
    pub fn sha256_fingerprint(&self) -> String {
        let digest = ring::digest::digest(&ring::digest::SHA256, &self.der);
        digest.as_ref().iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":")
    }
}

/// A running Dovecot. Stopped (by its PID) when dropped.
pub struct Dovecot {
    dir: tempfile::TempDir,
    port: u16,
    tls_port: Option<u16>,
    certificate: Option<Certificate>,
    /// Uid/gid to run as (set when the tests run as root).
    run_as: Option<(u32, u32)>,
    child: Option<Child>,
}

/// A port nobody listens on right now.
fn free_port() -> u16 {
    let listener = StdListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local address").port()
}

/// `id <flag> [user]`'s answer: the user and group names Dovecot needs.
fn id_name(args: &[&str]) -> String {
    let out = Command::new("id").args(args).output().expect("run `id`");
    assert!(out.status.success(), "`id {args:?}` failed");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

impl Dovecot {
    /// Starts a plain (no TLS) server with Dovecot's own capabilities.
    pub async fn start() -> Dovecot {
        Self::start_with(Options::default()).await
    }

    /// Starts a server set up as `options` says.
    pub async fn start_with(options: Options) -> Dovecot {
        let dir = tempfile::tempdir().expect("temp dir");
        let me = std::fs::metadata(dir.path()).expect("stat the temp dir").uid();
        let (user, group, run_as) = if me == 0 {
            let uid: u32 = id_name(&["-u", "nobody"]).parse().expect("nobody's uid");
            let gid: u32 = id_name(&["-g", "nobody"]).parse().expect("nobody's gid");
            (id_name(&["-un", "nobody"]), id_name(&["-gn", "nobody"]), Some((uid, gid)))
        } else {
            (id_name(&["-un"]), id_name(&["-gn"]), None)
        };
        let port = free_port();
        let tls_port = options.tls.then(free_port);
        let root = dir.path();
        let mut certificate = None;
        let mut ssl = "ssl = no\n".to_owned();
        if options.tls {
            let (cert_pem, key_pem, der) = self_signed();
            std::fs::write(root.join("cert.pem"), cert_pem).expect("write the certificate");
            std::fs::write(root.join("key.pem"), key_pem).expect("write the key");
            certificate = Some(Certificate { der });
            ssl = format!("ssl = yes\nssl_cert = <{0}/cert.pem\nssl_key = <{0}/key.pem\n", root.display());
        }
        let imaps = match tls_port {
            Some(p) => format!("  inet_listener imaps {{\n    address = 127.0.0.1\n    port = {p}\n    ssl = yes\n  }}\n"),
            None => "  inet_listener imaps {\n    port = 0\n  }\n".to_owned(),
        };
        let mut capability = options.capability.map(|c| format!("imap_capability = {c}\n")).unwrap_or_default();
        if let Some(n) = options.user_connections {
            capability.push_str(&format!("protocol imap {{\n  mail_max_userip_connections = {n}\n}}\n"));
        }
        let root_s = root.display();
        let config = format!(
            "base_dir = {root_s}/run
state_dir = {root_s}/state
instance_name = vigie-test-{port}
protocols = imap
listen = 127.0.0.1
{ssl}disable_plaintext_auth = no
auth_mechanisms = plain login xoauth2 oauthbearer
log_path = {root_s}/dovecot.log
default_login_user = {user}
default_internal_user = {user}
default_internal_group = {group}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root_s}/passwd
}}
userdb {{
  driver = static
  args = uid={user} gid={group} home={root_s}/home/%u
}}
mail_location = maildir:~/Maildir
namespace inbox {{
  inbox = yes
  separator = /
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
{imaps}}}
service anvil {{
  chroot =
}}
imap_idle_notify_interval = 5 secs
{capability}"
        );
        std::fs::write(root.join("dovecot.conf"), config).expect("write dovecot.conf");
        let mut passwd = format!("{USER}:{{PLAIN}}{PASSWORD}\n{OAUTH_USER}:{{PLAIN}}{OAUTH_TOKEN}\n");
        for (user, password) in &options.users {
            passwd.push_str(&format!("{user}:{{PLAIN}}{password}\n"));
        }
        std::fs::write(root.join("passwd"), passwd).expect("write passwd");
        if let Some((uid, gid)) = run_as {
            chown_tree(root, uid, gid);
        }
        let mut dovecot = Dovecot { dir, port, tls_port, certificate, run_as, child: None };
        dovecot.launch().await;
        dovecot
    }

    /// The plain IMAP port (STARTTLS when TLS is on).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The implicit-TLS port, if TLS is on.
    pub fn tls_port(&self) -> Option<u16> {
        self.tls_port
    }

    /// The server's certificate, if TLS is on.
    pub fn certificate(&self) -> Option<&Certificate> {
        self.certificate.as_ref()
    }

    /// The server's log so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dovecot.log")).unwrap_or_default()
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("dovecot.conf")
    }

    fn command(&self, program: &str) -> Command {
        let mut command = Command::new(program);
        command.arg("-c").arg(self.config());
        if let Some((uid, gid)) = self.run_as {
            command.uid(uid).gid(gid);
        }
        command
    }

    async fn launch(&mut self) {
        assert!(self.child.is_none(), "Dovecot is already running");
        // Its own process group (id = its PID), so that stopping it reaches
        // the workers too: the master alone leaves clients connected to
        // orphaned workers for 30 s.
        let child = self
            .command("dovecot")
            .arg("-F")
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start dovecot (is dovecot-imapd installed?)");
        self.child = Some(child);
        let deadline = tokio::time::Instant::now() + STARTUP;
        // Readiness is "the port greets"; Dovecot has no other signal.
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!("dovecot exited at start ({status}):\n{}", self.log());
            }
            if let Ok(stream) = TcpStream::connect(("127.0.0.1", self.port)).await {
                let mut reader = BufReader::new(stream);
                let mut greeting = String::new();
                if reader.read_line(&mut greeting).await.is_ok() && greeting.starts_with("* OK") {
                    return;
                }
            }
            assert!(tokio::time::Instant::now() < deadline, "dovecot did not start listening:\n{}", self.log());
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Stops the server as a service manager would (SIGTERM to the process
    /// group we started it in, which every worker shares; connected clients
    /// get `* BYE`) and waits until the master has exited and the port no
    /// longer answers.
    pub async fn stop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        terminate_group(&child);
        let waited = tokio::task::spawn_blocking(move || child.wait()).await;
        assert!(matches!(waited, Ok(Ok(_))), "dovecot did not exit");
        let deadline = tokio::time::Instant::now() + STARTUP;
        while TcpStream::connect(("127.0.0.1", self.port)).await.is_ok() {
            assert!(tokio::time::Instant::now() < deadline, "dovecot's port still answers after it stopped");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Starts the server again on the same ports with the same mail store.
    pub async fn restart(&mut self) {
        self.launch().await;
    }

    /// Runs `doveadm <args>` against this server's config and mail store.
    pub fn doveadm(&self, args: &[&str]) -> String {
        let out = self.command("doveadm").args(args).output().expect("run doveadm");
        assert!(
            out.status.success(),
            "doveadm {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Delivers `message` into `folder` the way a local delivery agent
    /// does (a file written to the Maildir's `tmp/`, then moved to `new/`),
    /// without the server: works while it is stopped. The folder must have
    /// been opened once (so the Maildir exists).
    pub fn deliver(&self, folder: &str, message: &str) {
        let maildir = self.dir.path().join("home").join(USER).join("Maildir");
        let folder_dir = if folder == "INBOX" { maildir } else { maildir.join(format!(".{}", folder.replace('/', "."))) };
        let name = format!("{}.{}.vigie-test", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()), fastrand::u64(..));
        let tmp = folder_dir.join("tmp").join(&name);
        std::fs::write(&tmp, message).expect("write the message into tmp/");
        if let Some((uid, gid)) = self.run_as {
            std::os::unix::fs::chown(&tmp, Some(uid), Some(gid)).expect("chown the message");
        }
        std::fs::rename(&tmp, folder_dir.join("new").join(&name)).expect("move the message into new/");
    }

    /// Gives `folder` of the test user a new UIDVALIDITY, as when a server
    /// rebuilds its index.
    pub fn change_uidvalidity(&self, folder: &str, uidvalidity: u32) {
        self.doveadm(&["mailbox", "update", "-u", USER, "--uid-validity", &uidvalidity.to_string(), folder]);
    }

    /// How many IMAP sessions [`USER`] has open right now (`doveadm who`).
    pub fn sessions(&self) -> usize {
        self.doveadm(&["who", "-1"]).lines().filter(|l| l.split_whitespace().next() == Some(USER)).count()
    }

    /// A raw IMAP connection logged in as [`USER`] (plain, on [`Self::port`]).
    pub async fn client(&self) -> ImapClient {
        ImapClient::login(self.port, USER, PASSWORD).await
    }

    /// A raw IMAP connection logged in as [`OAUTH_USER`] (LOGIN with the
    /// token as password).
    pub async fn oauth_user_client(&self) -> ImapClient {
        ImapClient::login(self.port, OAUTH_USER, OAUTH_TOKEN).await
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            terminate_group(&child);
            let _ = child.wait();
        }
    }
}

/// A self-signed certificate for `localhost`/`127.0.0.1`: (certificate
/// PEM, key PEM, certificate DER).
///
/// rcgen is a dev-dependency; `vigie-bench` (a binary, built without
/// `cfg(test)`) includes this file too and only runs plain servers.
#[cfg(test)]
fn self_signed() -> (String, String, Vec<u8>) {
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).expect("make a self-signed certificate");
    (cert.pem(), signing_key.serialize_pem(), cert.der().to_vec())
}

#[cfg(not(test))]
fn self_signed() -> (String, String, Vec<u8>) {
    panic!("a TLS Dovecot needs rcgen, a dev-dependency: only the tests can start one")
}

/// SIGTERM to the process group led by `child` (its id is the child's PID).
fn terminate_group(child: &Child) {
    let _ = Command::new("kill").args(["-TERM", "--", &format!("-{}", child.id())]).status();
}

fn chown_tree(path: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::chown(path, Some(uid), Some(gid)).expect("chown");
    if path.is_dir() {
        for entry in std::fs::read_dir(path).expect("read dir") {
            chown_tree(&entry.expect("dir entry").path(), uid, gid);
        }
    }
}

/// A test message with `from` and `subject` (header values as they go on the
/// wire, so RFC 2047 encoded words can be given) and a plain-text `body`.
pub fn message(from: &str, subject: &str, body: &str) -> String {
    let id = fastrand::u64(..);
    format!(
        "From: {from}\r\nTo: {USER}@example.test\r\nSubject: {subject}\r\nDate: Tue, 24 Nov 2026 10:00:00 +0000\r\n\
         Message-ID: <{id}@test.vigie>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    )
}

/// A minimal IMAP client for driving the test server: one command at a time,
/// answers as text lines (literals inlined).
pub struct ImapClient {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    tag: u32,
}

/// The answer to one command.
#[derive(Debug)]
pub struct Answer {
    /// The untagged lines (`* ...`).
    pub untagged: Vec<String>,
    /// The tagged completion line, tag removed (`OK ...`, `NO ...`).
    pub done: String,
}

impl Answer {
    fn ok(self, what: &str) -> Answer {
        assert!(self.done.starts_with("OK"), "{what} failed: {}", self.done);
        self
    }
}

impl ImapClient {
    /// Connects to `port` on loopback and logs in as `user`.
    pub async fn login(port: u16, user: &str, password: &str) -> ImapClient {
        let stream = TcpStream::connect(("127.0.0.1", port)).await.expect("connect to dovecot");
        let (read, write) = stream.into_split();
        let mut client = ImapClient { reader: BufReader::new(read), writer: write, tag: 0 };
        let greeting = client.line().await;
        assert!(greeting.starts_with("* OK"), "greeting: {greeting}");
        client.run(&format!("LOGIN \"{user}\" \"{password}\"")).await.ok("LOGIN");
        client
    }

    async fn line(&mut self) -> String {
        let mut line = String::new();
        let n = self.reader.read_line(&mut line).await.expect("read from dovecot");
        assert!(n > 0, "dovecot closed the test connection");
        // A literal `{n}` at the end of a line: its bytes follow, then the
        // rest of the response.
        while let Some(size) = literal_size(&line) {
            let mut bytes = vec![0; size];
            self.reader.read_exact(&mut bytes).await.expect("read a literal");
            line.push_str(&String::from_utf8_lossy(&bytes));
            let mut rest = String::new();
            self.reader.read_line(&mut rest).await.expect("read after a literal");
            line.push_str(&rest);
        }
        line.trim_end().to_owned()
    }

    /// Sends one command (tag added) and reads its whole answer.
    pub async fn run(&mut self, command: &str) -> Answer {
        self.tag += 1;
        let tag = format!("t{}", self.tag);
        self.writer.write_all(format!("{tag} {command}\r\n").as_bytes()).await.expect("write to dovecot");
        self.answer(&tag).await
    }

    async fn answer(&mut self, tag: &str) -> Answer {
        let mut untagged = Vec::new();
        loop {
            let line = self.line().await;
            if let Some(done) = line.strip_prefix(&format!("{tag} ")) {
                return Answer { untagged, done: done.to_owned() };
            }
            untagged.push(line);
        }
    }

    /// Creates `folder`.
    pub async fn create(&mut self, folder: &str) {
        self.run(&format!("CREATE \"{folder}\"")).await.ok("CREATE");
    }

    /// Appends `message` to `folder` (already `\Seen` if `seen`) and returns
    /// its UID.
    pub async fn append(&mut self, folder: &str, message: &str, seen: bool) -> u32 {
        let flags = if seen { "(\\Seen) " } else { "" };
        let answer = self.run(&format!("APPEND \"{folder}\" {flags}{{{}+}}\r\n{message}", message.len())).await.ok("APPEND");
        appended_uid(&answer.done)
    }

    /// Appends `messages` to `folder` in one pipelined burst (LITERAL+), all
    /// unseen, and waits for every answer.
    pub async fn append_many(&mut self, folder: &str, messages: &[String]) {
        let mut tags = Vec::with_capacity(messages.len());
        let mut burst = String::new();
        for message in messages {
            self.tag += 1;
            let tag = format!("t{}", self.tag);
            burst.push_str(&format!("{tag} APPEND \"{folder}\" {{{}+}}\r\n{message}\r\n", message.len()));
            tags.push(tag);
            if burst.len() > 256 * 1024 {
                self.writer.write_all(burst.as_bytes()).await.expect("write to dovecot");
                burst.clear();
            }
        }
        self.writer.write_all(burst.as_bytes()).await.expect("write to dovecot");
        for tag in tags {
            self.answer(&tag).await.ok("APPEND");
        }
    }

    /// Selects `folder` read-write.
    pub async fn select(&mut self, folder: &str) -> Answer {
        self.run(&format!("SELECT \"{folder}\"")).await.ok("SELECT")
    }

    /// Sets `\Seen` on `uid` in `folder`.
    pub async fn mark_seen(&mut self, folder: &str, uid: u32) {
        self.select(folder).await;
        self.run(&format!("UID STORE {uid} +FLAGS.SILENT (\\Seen)")).await.ok("STORE");
    }

    /// Sets `\Seen` on every one of `uids` in `folder` in one command, as
    /// a mail client does when its user reads them; then leaves the folder,
    /// so that this client's later `STATUS` answers come alone (no `EXISTS`
    /// of a selected folder before them).
    pub async fn mark_all_seen(&mut self, folder: &str, uids: &[u32]) {
        if uids.is_empty() {
            return;
        }
        self.select(folder).await;
        self.run(&format!("UID STORE {} +FLAGS.SILENT (\\Seen)", uid_set(uids))).await.ok("STORE");
        self.run("UNSELECT").await.ok("UNSELECT");
    }

    /// Clears `\Seen` on `uid` in `folder` ("mark as unread").
    pub async fn mark_unseen(&mut self, folder: &str, uid: u32) {
        self.select(folder).await;
        self.run(&format!("UID STORE {uid} -FLAGS.SILENT (\\Seen)")).await.ok("STORE");
    }

    /// Deletes `uid` from `folder` for good.
    pub async fn expunge(&mut self, folder: &str, uid: u32) {
        self.select(folder).await;
        self.run(&format!("UID STORE {uid} +FLAGS.SILENT (\\Deleted)")).await.ok("STORE");
        self.run(&format!("UID EXPUNGE {uid}")).await.ok("UID EXPUNGE");
    }

    /// The flags of `uid` in `folder`, as the server prints them.
    pub async fn flags(&mut self, folder: &str, uid: u32) -> String {
        self.run(&format!("EXAMINE \"{folder}\"")).await.ok("EXAMINE");
        let answer = self.run(&format!("UID FETCH {uid} (FLAGS)")).await.ok("FETCH");
        answer.untagged.into_iter().find(|l| l.contains("FETCH")).unwrap_or_else(|| panic!("no message {uid} in {folder}"))
    }

    /// `(UIDVALIDITY, UIDNEXT)` of `folder`.
    pub async fn uid_state(&mut self, folder: &str) -> (u32, u32) {
        let answer = self.run(&format!("STATUS \"{folder}\" (UIDVALIDITY UIDNEXT)")).await.ok("STATUS");
        let line = answer.untagged.first().expect("a STATUS line").clone();
        (status_number(&line, "UIDVALIDITY"), status_number(&line, "UIDNEXT"))
    }

    /// How many messages of `folder` are unseen (`STATUS UNSEEN`).
    pub async fn unseen(&mut self, folder: &str) -> u32 {
        let answer = self.run(&format!("STATUS \"{folder}\" (UNSEEN)")).await.ok("STATUS");
        let line = answer.untagged.first().expect("a STATUS line").clone();
        status_number(&line, "UNSEEN")
    }
}

/// `uids` as an IMAP sequence set, runs written as ranges (`3:5,9`): a
/// burst of appends is one range, so the command stays short.
fn uid_set(uids: &[u32]) -> String {
    let mut sorted = uids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut runs: Vec<(u32, u32)> = Vec::new();
    for uid in sorted {
        match runs.last_mut() {
            Some((_, last)) if *last + 1 == uid => *last = uid,
            _ => runs.push((uid, uid)),
        }
    }
    let runs: Vec<String> = runs.iter().map(|&(first, last)| if first == last { first.to_string() } else { format!("{first}:{last}") }).collect();
    runs.join(",")
}

fn literal_size(line: &str) -> Option<usize> {
    let body = line.trim_end().strip_suffix('}')?;
    let open = body.rfind('{')?;
    body[open + 1..].parse().ok()
}

fn appended_uid(done: &str) -> u32 {
    // `OK [APPENDUID <uidvalidity> <uid>] Append completed.`
    let start = done.find("[APPENDUID ").unwrap_or_else(|| panic!("no APPENDUID in {done}")) + "[APPENDUID ".len();
    let code = &done[start..done[start..].find(']').map_or(done.len(), |e| start + e)];
    code.split_whitespace().nth(1).and_then(|u| u.parse().ok()).unwrap_or_else(|| panic!("bad APPENDUID in {done}"))
}

fn status_number(line: &str, name: &str) -> u32 {
    let at = line.find(&format!("{name} ")).unwrap_or_else(|| panic!("no {name} in {line}")) + name.len() + 1;
    line[at..].split(|c: char| !c.is_ascii_digit()).next().and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("bad {name} in {line}"))
}
