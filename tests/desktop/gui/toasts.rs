//! Toasts end to end: the real app on a private session bus, its toasts
//! captured by the test notification server (`fake_notifyd.py`, which
//! prints each Notify and CloseNotification as a JSON line and presses
//! buttons on request). Mail comes from a real Dovecot the test owns,
//! driven from a second IMAP connection; the demo covers chat and tasks.

use std::io::Write;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::*;
use crate::dovecot::{Dovecot, ImapClient, message};
use crate::session::Lines;

/// Long enough for a toast on a loaded machine (two CPUs shared with
/// compilers), short enough to fail.
const TOAST: Duration = Duration::from_secs(60);

/// One line from the capturing server.
#[derive(Debug)]
enum Line {
    Toast(Value),
    Closed(u64),
}

fn parse(line: &str) -> Option<Line> {
    let value: Value = serde_json::from_str(line).ok()?;
    match value.get("closed").and_then(Value::as_u64) {
        Some(id) => Some(Line::Closed(id)),
        None => value.get("summary").is_some().then_some(Line::Toast(value)),
    }
}

/// The end of the app's log, for failure messages.
fn log_tail(session: &Session) -> String {
    let logs = read_logs(session);
    let lines: Vec<&str> = logs.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// Every line up to and including the first one `done` accepts; fails
/// after `limit`, with the app's log.
fn lines_until(session: &Session, toasts: &Lines, limit: Duration, what: &str, done: impl Fn(&Line) -> bool) -> Vec<Line> {
    let deadline = Instant::now() + limit;
    let mut seen = Vec::new();
    loop {
        let left = deadline.checked_duration_since(Instant::now()).unwrap_or_default();
        let Some(raw) = toasts.next(left) else {
            panic!("{what}: not within {limit:?}; saw {seen:#?}\napp log:\n{}", log_tail(session));
        };
        let Some(line) = parse(&raw) else { continue };
        let last = done(&line);
        seen.push(line);
        if last {
            return seen;
        }
    }
}

/// The next toast `pred` accepts, skipping others.
fn toast_where(session: &Session, toasts: &Lines, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    match lines_until(session, toasts, TOAST, what, |l| matches!(l, Line::Toast(t) if pred(t))).pop() {
        Some(Line::Toast(toast)) => toast,
        other => unreachable!("lines_until ends on a match: {other:?}"),
    }
}

fn summary_is(summary: &str) -> impl Fn(&Value) -> bool + '_ {
    move |t| t["summary"] == summary
}

fn id(toast: &Value) -> u64 {
    toast["id"].as_u64().expect("a toast id")
}

fn actions(toast: &Value) -> Vec<String> {
    toast["actions"].as_array().expect("actions").iter().filter_map(|a| a.as_str().map(str::to_owned)).collect()
}

fn has_button(toast: &Value, key: &str, label: &str) -> bool {
    actions(toast).windows(2).any(|w| w[0] == key && w[1] == label)
}

/// Waits until the app closes toast `id`.
fn closed(session: &Session, toasts: &Lines, id: u64, limit: Duration, what: &str) -> Vec<Line> {
    lines_until(session, toasts, limit, what, |l| matches!(l, Line::Closed(closed) if *closed == id))
}

/// The app watching one Dovecot mailbox (account "Work"), its toasts
/// captured, past its silent first sync.
struct MailDesk {
    session: Session,
    toasts: Lines,
    /// Runs as long as the desk.
    _dovecot: Dovecot,
    /// A second connection, as another mail client.
    client: ImapClient,
}

impl MailDesk {
    /// `settings` go before the account (e.g. a `[notifications]` table);
    /// `args` are extra command-line arguments.
    async fn start(settings: &str, args: &[&str]) -> MailDesk {
        let mut session = Session::desktop().expect("desktop session");
        let toasts = session.start_notifyd().expect("notification server");
        session.start_keyring().expect("gnome keyring");
        let dovecot = Dovecot::start().await;
        let config = write_config(
            &session,
            &format!(
                "{settings}\n[[account]]\nid = \"work-mail\"\nname = \"Work\"\nsource = \"mail\"\nserver = \"127.0.0.1\"\n\
                 username = \"{}\"\n[account.mail]\ntls = \"none\"\nport = {}\nallow_plaintext_on_loopback = true\n",
                crate::dovecot::USER,
                dovecot.port()
            ),
        );
        let mut set = session
            .command(VIGIE)
            .args(["--set-secret", "work-mail", "password"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("vigie --set-secret");
        set.stdin.take().expect("stdin").write_all(crate::dovecot::PASSWORD.as_bytes()).expect("write the password");
        let out = set.wait_with_output().expect("set-secret ran");
        assert!(out.status.success(), "set-secret: {}", String::from_utf8_lossy(&out.stderr));

        let app = session
            .command(VIGIE)
            .arg("--config")
            .arg(&config)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("app");
        session.adopt(app);
        // The first sync is a silent baseline: mail that comes before it
        // ends would never be toasted. Only the log tells when it is done.
        let deadline = Instant::now() + TOAST;
        while !read_logs(&session).contains("baseline: nothing announced") {
            assert!(Instant::now() < deadline, "no first sync within {TOAST:?}:\n{}\n{}", log_tail(&session), dovecot.log());
            std::thread::sleep(Duration::from_millis(50));
        }
        let client = dovecot.client().await;
        MailDesk { session, toasts, _dovecot: dovecot, client }
    }

    /// Delivers one unread mail to INBOX; returns its UID.
    async fn deliver(&mut self, from: &str, subject: &str, body: &str) -> u32 {
        self.client.append("INBOX", &message(from, subject, body), false).await
    }

    /// Delivers mail `from` once each in one MULTIAPPEND: the server adds
    /// all of them at once, as when mail waited while the app was offline.
    async fn deliver_at_once(&mut self, mails: &[String]) {
        let mut command = "APPEND \"INBOX\"".to_owned();
        for mail in mails {
            command.push_str(&format!(" {{{}+}}\r\n{mail}", mail.len()));
        }
        let answer = self.client.run(&command).await;
        assert!(answer.done.starts_with("OK"), "MULTIAPPEND: {}", answer.done);
    }

    /// Waits for the toast of mail `subject` from `sender` (display name).
    fn toast_of(&self, sender: &str, subject: &str) -> Value {
        let summary = format!("{sender} — {subject}");
        toast_where(&self.session, &self.toasts, &format!("the toast of {summary}"), summary_is(&summary))
    }
}

#[test]
fn every_toast_names_vigie_its_desktop_entry_and_the_kind_of_item() {
    let mut session = Session::desktop().expect("desktop session");
    let toasts = session.start_notifyd().expect("notification server");
    let config = demo_config(&session, 0.5);
    let app = session.command(VIGIE).arg("--config").arg(&config).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("app");
    session.adopt(app);

    // The demo's first steps bring mail, chat messages and a task, in an
    // order of their own.
    let lines = lines_until(&session, &toasts, TOAST, "a toast of each kind", {
        let kinds = std::cell::RefCell::new(std::collections::BTreeSet::new());
        move |l| {
            if let Line::Toast(t) = l {
                kinds.borrow_mut().insert(t["hints"]["category"].to_string());
            }
            kinds.borrow().len() == 3
        }
    });
    let toasts: Vec<&Value> = lines.iter().filter_map(|l| if let Line::Toast(t) = l { Some(t) } else { None }).collect();
    let first = |category: &str| *toasts.iter().find(|t| t["hints"]["category"] == category).expect("one of each kind");
    let (mail, chat, task) = (first("email.arrived"), first("im.received"), first("x-vigie.task"));
    for toast in &toasts {
        assert_eq!(toast["app_name"], "Vigie", "{toast}");
        // The package installs Vigie.desktop (tauri-bundler names it after
        // productName) and its icon under the binary's name.
        assert_eq!(toast["hints"]["desktop-entry"], "Vigie", "{toast}");
        assert_eq!(toast["icon"], "vigie", "{toast}");
    }
    assert_eq!(mail["summary"], "Alice Martin — Quarterly figures", "sender and subject");
    assert_eq!(mail["body"], "Here are the numbers we discussed.", "the preview");
    assert!(chat["summary"].as_str().unwrap_or_default().starts_with("Bob Builder"), "the sender: {chat}");
    assert!(!chat["body"].as_str().unwrap_or_default().is_empty(), "with its text: {chat}");
    assert!(task["summary"].as_str().unwrap_or_default().contains("Fix the login page"), "{task}");
}

#[test]
fn private_mode_toasts_say_only_what_came_and_where() {
    let mut session = Session::desktop().expect("desktop session");
    let toasts = session.start_notifyd().expect("notification server");
    let config = write_config(&session, "[demo]\nevery_secs = 0.5\n[notifications]\npreviews = false\n");
    let app = session.command(VIGIE).arg("--config").arg(&config).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("app");
    session.adopt(app);

    let mail = toast_where(&session, &toasts, "the first mail's toast", |t| t["hints"]["category"] == "email.arrived");
    let chat = toast_where(&session, &toasts, "the first chat toast", |t| t["hints"]["category"] == "im.received");
    assert!(mail["summary"].as_str().unwrap_or_default().starts_with("New mail in "), "{mail}");
    assert!(chat["summary"].as_str().unwrap_or_default().starts_with("New message in "), "{chat}");
    for toast in [&mail, &chat] {
        assert_eq!(toast["body"], "", "no preview: {toast}");
        let text = toast.to_string();
        for secret in ["Alice", "Quarterly", "numbers we discussed", "Bob"] {
            assert!(!text.contains(secret), "{secret:?} shows in private mode: {text}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_mails_at_once_become_one_summary_toast_and_a_mail_soon_after_updates_it() {
    let mut desk = MailDesk::start("", &[]).await;
    let mails: Vec<String> = (0..20).map(|i| message(&format!("Sender {i} <s{i}@example.test>"), &format!("Mail {i}"), "text")).collect();
    desk.deliver_at_once(&mails).await;
    let mut lines = lines_until(&desk.session, &desk.toasts, TOAST, "the burst's toast", |l| {
        matches!(l, Line::Toast(t) if t["summary"].as_str().is_some_and(|s| s.contains("Mail") || s.contains("new mail")))
    });
    // One more mail right after the burst joins it: any late toast of the
    // burst would come before the summary's update.
    desk.deliver("Zoe <zoe@example.test>", "After the burst", "last").await;
    lines.extend(lines_until(&desk.session, &desk.toasts, TOAST, "the summary updated", |l| {
        matches!(l, Line::Toast(t) if t["summary"] == "21 new mails in Work")
    }));
    let toasts: Vec<&Value> = lines
        .iter()
        .filter_map(|l| match l {
            Line::Toast(t) => Some(t),
            Line::Closed(_) => None,
        })
        .collect();
    assert_eq!(toasts.len(), 2, "the burst's summary, then its update: {toasts:#?}");
    let (burst, update) = (toasts[0], toasts[1]);
    assert_eq!(burst["summary"], "20 new mails in Work");
    assert_eq!(burst["body"], "From Sender 0, Sender 1, Sender 2 and 17 more");
    assert!(!actions(burst).iter().any(|a| a == "mark-read" || a == "snooze"), "a summary has no item buttons: {burst}");
    assert_eq!(update["replaces_id"], burst["id"], "updated in place: {update}");
    assert_eq!(update["id"], burst["id"]);
    assert_eq!(update["body"], "From Sender 0, Sender 1, Sender 2 and 18 more");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mails_arriving_one_by_one_past_the_burst_threshold_become_one_summary() {
    // The default threshold is 3: three toasts of their own, then one
    // summary that counts every mail of the run and is updated in place.
    let mut desk = MailDesk::start("", &[]).await;
    let mut toasts: Vec<Value> = Vec::new();
    for (i, sender) in ["Ann", "Bob", "Cy", "Dan", "Eve"].iter().enumerate() {
        desk.deliver(&format!("{sender} <{}@example.test>", sender.to_lowercase()), &format!("Note {i}"), "text").await;
        let lines = lines_until(&desk.session, &desk.toasts, TOAST, &format!("a toast for mail {i}"), |l| matches!(l, Line::Toast(_)));
        toasts.extend(lines.into_iter().filter_map(|l| if let Line::Toast(t) = l { Some(t) } else { None }));
    }
    let summaries: Vec<&Value> = toasts.iter().map(|t| &t["summary"]).collect();
    assert_eq!(
        summaries,
        ["Ann — Note 0", "Bob — Note 1", "Cy — Note 2", "4 new mails in Work", "5 new mails in Work"],
        "{toasts:#?}"
    );
    assert_eq!(toasts[3]["replaces_id"], 0, "the first summary is a new toast");
    assert_eq!(toasts[4]["replaces_id"], toasts[3]["id"], "then it is updated in place");
    assert_eq!(toasts[4]["body"], "From Ann, Bob, Cy and 2 more");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mark_as_read_on_a_toast_marks_the_mail_seen_on_the_server_and_closes_the_toast() {
    let mut desk = MailDesk::start("", &[]).await;
    let uid = desk.deliver("Alice <alice@example.test>", "Figures", "the numbers").await;
    let toast = desk.toast_of("Alice", "Figures");
    assert!(has_button(&toast, "mark-read", "Mark as read"), "{toast}");
    assert!(!desk.client.flags("INBOX", uid).await.contains("\\Seen"), "unread before the press");

    desk.session.press_toast_button(id(&toast), "mark-read").expect("press");
    // The toast is closed once the server has done it.
    closed(&desk.session, &desk.toasts, id(&toast), TOAST, "the toast withdrawn after Mark as read");
    let flags = desk.client.flags("INBOX", uid).await;
    assert!(flags.contains("\\Seen"), "the mail is read on the server: {flags}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mail_read_in_another_client_takes_its_toast_away() {
    let mut desk = MailDesk::start("", &[]).await;
    let uid = desk.deliver("Alice <alice@example.test>", "Figures", "the numbers").await;
    let first = desk.toast_of("Alice", "Figures");
    let other = desk.deliver("Bob <bob@example.test>", "Lunch", "at noon").await;
    let second = desk.toast_of("Bob", "Lunch");

    desk.client.mark_seen("INBOX", uid).await;
    let lines = closed(&desk.session, &desk.toasts, id(&first), TOAST, "the read mail's toast closed");
    assert!(!lines.iter().any(|l| matches!(l, Line::Closed(c) if *c == id(&second))), "the other toast stays: {lines:?}");
    assert!(!desk.client.flags("INBOX", other).await.contains("\\Seen"));
}

/// Quiet hours from a minute ago to the next full minute at least 40 s
/// away, in the local time the app reads them in; and when they end. The
/// margin is for a loaded machine: the app must have started and held its
/// first items before the end, or there is nothing to digest.
fn quiet_hours_ending_soon() -> (String, String, Instant) {
    let now = jiff::ZonedDateTime::now();
    let minute = now.with().second(0).subsec_nanosecond(0).build().expect("this minute");
    let mut end = minute.checked_add(jiff::Span::new().minutes(1)).expect("next minute");
    if end.duration_since(&now) < jiff::SignedDuration::from_secs(40) {
        end = end.checked_add(jiff::Span::new().minutes(1)).expect("the one after");
    }
    let start = minute.checked_sub(jiff::Span::new().minutes(1)).expect("a minute ago");
    let left = Duration::try_from(end.duration_since(&now)).expect("in the future");
    (start.strftime("%H:%M").to_string(), end.strftime("%H:%M").to_string(), Instant::now() + left)
}

#[test]
fn quiet_hours_hold_toasts_and_their_end_brings_one_digest() {
    let mut session = Session::desktop().expect("desktop session");
    let toasts = session.start_notifyd().expect("notification server");
    let (from, to, ends) = quiet_hours_ending_soon();
    let config = write_config(
        &session,
        &format!("[demo]\nevery_secs = 0.5\n[notifications.quiet_hours]\nfrom = \"{from}\"\nto = \"{to}\"\n"),
    );
    let app = session.command(VIGIE).arg("--config").arg(&config).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("app");
    session.adopt(app);

    // The demo brings mail, chat and tasks every half second meanwhile.
    let limit = ends.saturating_duration_since(Instant::now()) + TOAST;
    let lines = lines_until(&session, &toasts, limit, "the digest when quiet hours end", |l| {
        matches!(l, Line::Toast(t) if t["summary"] == "While notifications were held")
    });
    let arrived = Instant::now();
    let Some(Line::Toast(digest)) = lines.last() else { unreachable!("ends on the digest") };
    assert_eq!(lines.len(), 1, "nothing was toasted during quiet hours: {lines:#?}");
    assert!(arrived + Duration::from_secs(1) >= ends, "the digest waited for {to} (came {:?} early)", ends - arrived);
    let body = digest["body"].as_str().unwrap_or_default();
    assert!(body.contains("new mail") && body.contains("new message"), "it counts what came per source: {body}");
    // And toasts flow again.
    toast_where(&session, &toasts, "a toast after quiet hours", |t| t["summary"] != "While notifications were held");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snoozed_toast_comes_back_after_the_snooze() {
    let mut desk = MailDesk::start("", &["--snooze-secs", "3"]).await;
    desk.deliver("Alice <alice@example.test>", "Figures", "the numbers").await;
    let toast = desk.toast_of("Alice", "Figures");
    assert!(has_button(&toast, "snooze", "Snooze 1 h"), "{toast}");

    let pressed = Instant::now();
    desk.session.press_toast_button(id(&toast), "snooze").expect("press");
    let again = desk.toast_of("Alice", "Figures");
    assert!(pressed.elapsed() >= Duration::from_secs(3), "shown again only after the snooze ({:?})", pressed.elapsed());
    assert_ne!(id(&again), id(&toast), "a new toast");
    assert_eq!(again["body"], toast["body"]);
    assert_eq!(actions(&again), actions(&toast), "with its buttons");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snoozed_mail_read_meanwhile_does_not_come_back() {
    let mut desk = MailDesk::start("", &["--snooze-secs", "6"]).await;
    let read = desk.deliver("Alice <alice@example.test>", "Figures", "the numbers").await;
    let first = desk.toast_of("Alice", "Figures");
    desk.deliver("Bob <bob@example.test>", "Lunch", "at noon").await;
    let second = desk.toast_of("Bob", "Lunch");

    desk.session.press_toast_button(id(&first), "snooze").expect("snooze the first");
    desk.client.mark_seen("INBOX", read).await;
    // Its (snoozed) toast is withdrawn: the app knows it was read.
    closed(&desk.session, &desk.toasts, id(&first), TOAST, "the read mail's toast withdrawn");
    desk.session.press_toast_button(id(&second), "snooze").expect("snooze the second");
    // Snoozes come back in order: the first one would come before this.
    let lines = lines_until(&desk.session, &desk.toasts, TOAST, "the second mail back", |l| matches!(l, Line::Toast(t) if t["summary"] == "Bob — Lunch"));
    assert!(
        !lines.iter().any(|l| matches!(l, Line::Toast(t) if t["summary"] == "Alice — Figures")),
        "the read mail did not come back: {lines:#?}"
    );
}
