//! Tests against real desktop parts, each in a private session
//! (`session.rs`): the Secret Service (GNOME Keyring), logind's session
//! lock and idle hints on a private D-Bus, a notification server on a
//! private D-Bus, and the tray app under Xvfb with a tray host.
//!
//! The GUI scenarios need the `app` feature (`cargo test --features app
//! --test desktop`); the keyring ones run in any build. `e2e` drives the
//! settings window through WebDriver against a real Dovecot.

mod session;

/// The tests' Dovecot (shared with the integration tests).
#[cfg(feature = "app")]
#[allow(dead_code)]
#[path = "../support/dovecot.rs"]
mod dovecot;
#[cfg(feature = "app")]
mod e2e;

use std::path::{Path, PathBuf};
use std::process::Stdio;

use session::Session;

const VIGIE: &str = env!("CARGO_BIN_EXE_vigie");
/// The settings window's process, which the tray app starts.
#[cfg(feature = "app")]
const VIGIE_SETTINGS: &str = env!("CARGO_BIN_EXE_vigie-settings");

/// Every log line the app wrote in this session.
fn read_logs(session: &Session) -> String {
    let mut all = String::new();
    if let Ok(entries) = std::fs::read_dir(session.state_dir().join("logs")) {
        for entry in entries.flatten() {
            all.push_str(&std::fs::read_to_string(entry.path()).unwrap_or_default());
        }
    }
    all
}

mod presence {
    //! The presence monitor against a logind session object served on a
    //! private bus, with logind's own names, properties and setters.
    use std::time::Duration;

    use tokio::sync::mpsc;
    use tokio_util::sync::CancellationToken;
    use zbus::object_server::SignalEmitter;

    use super::*;

    const PATH: &str = "/org/freedesktop/login1/session/auto";

    /// The part of `org.freedesktop.login1.Session` presence reads.
    struct FakeSession {
        locked: bool,
        idle: bool,
    }

    #[zbus::interface(name = "org.freedesktop.login1.Session")]
    impl FakeSession {
        #[zbus(property)]
        fn locked_hint(&self) -> bool {
            self.locked
        }

        #[zbus(property)]
        fn idle_hint(&self) -> bool {
            self.idle
        }

        async fn set_locked_hint(&mut self, locked: bool, #[zbus(signal_emitter)] emitter: SignalEmitter<'_>) -> zbus::fdo::Result<()> {
            self.locked = locked;
            self.locked_hint_changed(&emitter).await?;
            Ok(())
        }

        async fn set_idle_hint(&mut self, idle: bool, #[zbus(signal_emitter)] emitter: SignalEmitter<'_>) -> zbus::fdo::Result<()> {
            self.idle = idle;
            self.idle_hint_changed(&emitter).await?;
            Ok(())
        }
    }

    async fn connect(session: &Session) -> zbus::Connection {
        zbus::connection::Builder::address(session.bus_address())
            .expect("bus address")
            .build()
            .await
            .expect("connect to the private bus")
    }

    async fn set(client: &zbus::Connection, setter: &str, on: bool) {
        client
            .call_method(Some("org.freedesktop.login1"), PATH, Some("org.freedesktop.login1.Session"), setter, &(on,))
            .await
            .unwrap_or_else(|e| panic!("{setter}({on}): {e}"));
    }

    async fn next(changes: &mut mpsc::UnboundedReceiver<bool>, what: &str) -> bool {
        tokio::time::timeout(Duration::from_secs(10), changes.recv())
            .await
            .unwrap_or_else(|_| panic!("no presence change within 10 s: {what}"))
            .expect("the presence task is running")
    }

    #[tokio::test]
    async fn locking_or_idling_the_session_means_away_and_both_ending_means_back() {
        let session = Session::bus_only().expect("private session");
        let _logind = zbus::connection::Builder::address(session.bus_address())
            .expect("bus address")
            .name("org.freedesktop.login1")
            .expect("name")
            .serve_at(PATH, FakeSession { locked: false, idle: false })
            .expect("serve")
            .build()
            .await
            .expect("the fake logind on the bus");
        let watcher = connect(&session).await;
        let client = connect(&session).await;
        let (tx, mut changes) = mpsc::unbounded_channel();
        let cancel = CancellationToken::new();
        let task = tokio::spawn({
            let cancel = cancel.clone();
            async move { vigie::presence::follow(&watcher, move |away| { let _ = tx.send(away); }, cancel).await }
        });

        assert!(!next(&mut changes, "the state at start").await, "present at start");
        set(&client, "SetLockedHint", true).await;
        assert!(next(&mut changes, "locked").await, "away once locked");
        set(&client, "SetIdleHint", true).await;
        set(&client, "SetLockedHint", false).await;
        set(&client, "SetIdleHint", false).await;
        assert!(!next(&mut changes, "unlocked and active").await, "back only when neither holds");
        assert!(changes.try_recv().is_err(), "idle while locked, and unlocking while idle, change nothing");

        cancel.cancel();
        tokio::time::timeout(Duration::from_secs(5), task).await.expect("stops when cancelled").expect("task");
    }

    #[tokio::test]
    async fn without_logind_the_user_counts_as_present() {
        let session = Session::bus_only().expect("private session");
        let watcher = connect(&session).await;
        let (tx, mut changes) = mpsc::unbounded_channel();
        let cancel = CancellationToken::new();
        let task = tokio::spawn({
            let cancel = cancel.clone();
            async move { vigie::presence::follow(&watcher, move |away| { let _ = tx.send(away); }, cancel).await }
        });
        assert!(!next(&mut changes, "the fallback").await);
        cancel.cancel();
        tokio::time::timeout(Duration::from_secs(5), task).await.expect("stops when cancelled").expect("task");
    }
}

mod keyring {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_secret_stored_with_set_secret_lands_in_the_real_secret_service_and_never_in_a_log() {
        let mut session = Session::bus_only().expect("session bus");
        session.start_keyring().expect("gnome keyring");
        let canary = "S3cret-canary-7f41";

        let mut set = session
            .command(VIGIE)
            .args(["--set-secret", "work-mail", "password"])
            .env("VIGIE_LOG", "trace")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn vigie");
        set.stdin.take().expect("stdin").write_all(format!("{canary}\n").as_bytes()).expect("write secret");
        let out = set.wait_with_output().expect("vigie ran");
        assert!(out.status.success(), "set-secret failed: {}", String::from_utf8_lossy(&out.stderr));

        let lookup = session
            .command("secret-tool")
            .args(["lookup", "service", "org.vigie.notifier", "username", "work-mail/password"])
            .output()
            .expect("secret-tool (apt install libsecret-tools)");
        assert_eq!(String::from_utf8_lossy(&lookup.stdout), canary, "the Secret Service holds the secret, without the newline");

        let check = session.command(VIGIE).arg("--check-keyring").env("VIGIE_LOG", "trace").output().expect("check");
        assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));
        assert!(String::from_utf8_lossy(&check.stdout).contains("the keyring works"));

        let logs = read_logs(&session);
        assert!(logs.contains("secret stored in the keyring"), "the store was logged (without the value):\n{logs}");
        assert!(!logs.contains(canary), "the secret leaked into a log line");
        for output in [&out.stdout, &out.stderr, &check.stdout, &check.stderr] {
            assert!(!String::from_utf8_lossy(output).contains(canary), "the secret leaked to the terminal");
        }
    }

    #[test]
    fn without_a_keyring_vigie_says_so_plainly_and_stores_nothing() {
        let session = Session::bus_only().expect("session bus");
        let out = session
            .command(VIGIE)
            .args(["--set-secret", "work-mail", "password"])
            // No session bus at all: no Secret Service can be reached.
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .stdin(Stdio::null())
            .output()
            .expect("vigie ran");
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("no usable keyring"), "{stderr}");
        assert!(stderr.contains("only in the system keyring"), "explains there is no plaintext fallback: {stderr}");
        let files: Vec<_> = walk(session.dir()).into_iter().filter(|p| !p.starts_with(session.state_dir().join("logs"))).collect();
        assert!(
            files.iter().all(|p| !p.to_string_lossy().contains("secret") && !p.to_string_lossy().ends_with(".toml")),
            "nothing was written in place of the keyring: {files:?}"
        );
    }

    fn walk(dir: &Path) -> Vec<PathBuf> {
        let mut found = Vec::new();
        if let Ok(entries) = std::fs::read_dir(dir) {
            for entry in entries.flatten() {
                let path = entry.path();
                if path.is_dir() {
                    found.extend(walk(&path));
                } else {
                    found.push(path);
                }
            }
        }
        found
    }
}

#[cfg(feature = "app")]
mod gui {
    mod toasts;

    use super::*;
    use std::process::Command;
    use std::time::Duration;
    use vigie::badge::Badge;

    fn write_config(session: &Session, text: &str) -> PathBuf {
        let path = session.dir().join("config.toml");
        std::fs::write(&path, text).expect("write config");
        path
    }

    /// A decoded screenshot.
    pub(crate) struct Shot {
        width: usize,
        rgb: Vec<u8>,
    }

    impl Shot {
        pub(crate) fn take(session: &Session, name: &str) -> Shot {
            let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
            std::fs::create_dir_all(&dir).expect("screenshot dir");
            let png = dir.join(format!("{name}.png"));
            session.screenshot(&png).expect("screenshot");
            // Raw RGB via ImageMagick keeps the test free of an image crate.
            let out = Command::new("convert").arg(&png).args(["-depth", "8", "rgb:-"]).output().expect("convert");
            let size = Command::new("identify").args(["-format", "%w"]).arg(&png).output().expect("identify");
            let width: usize = String::from_utf8_lossy(&size.stdout).trim().parse().expect("width");
            Shot { width, rgb: out.stdout }
        }

        fn pixel(&self, x: usize, y: usize) -> [u8; 3] {
            let i = (y * self.width + x) * 3;
            [self.rgb[i], self.rgb[i + 1], self.rgb[i + 2]]
        }
    }

    /// The absolute geometry `(x, y)` of the first window line containing
    /// `needle` in an `xwininfo -root -tree` dump.
    pub(crate) fn window_origin(tree: &str, needle: &str) -> Option<(usize, usize)> {
        let line = tree.lines().find(|l| l.contains(needle))?;
        // "... 32x34+0+0  +991+1" — the last token is the absolute origin.
        let abs = line.split_whitespace().last()?;
        let mut parts = abs.trim_start_matches('+').split('+');
        Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
    }

    /// Mean colour distance between the expected icon (opaque pixels only)
    /// and the screen at `(x0, y0)`.
    pub(crate) fn icon_distance(shot: &Shot, x0: usize, y0: usize, expected: &vigie::icon::Pixels) -> f64 {
        let (mut sum, mut n) = (0.0, 0.0);
        for y in 0..expected.height as usize {
            for x in 0..expected.width as usize {
                let i = (y * expected.width as usize + x) * 4;
                if expected.rgba[i + 3] != 255 {
                    continue;
                }
                let got = shot.pixel(x0 + x, y0 + y);
                let d: f64 = (0..3).map(|c| (f64::from(got[c]) - f64::from(expected.rgba[i + c])).abs()).sum();
                sum += d / 3.0;
                n += 1.0;
            }
        }
        sum / n
    }

    fn demo_config(session: &Session, every_secs: f64) -> PathBuf {
        write_config(session, &format!("[demo]\nevery_secs = {every_secs}\n"))
    }

    #[test]
    fn a_new_demo_item_reaches_the_notification_server_as_a_toast() {
        let mut session = Session::desktop().expect("desktop session");
        let toasts = session.start_notifyd().expect("notification server");
        let config = demo_config(&session, 0.5);
        let app = session.command(VIGIE).arg("--config").arg(&config).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("app");
        session.adopt(app);

        // The demo's first step brings a mail and a direct message; the
        // seed items (the baseline) must not have produced a toast.
        let mut seen = Vec::new();
        while seen.len() < 2 {
            let line = toasts.next(Duration::from_secs(30)).expect("the first two toasts within 30 s");
            seen.push(serde_json::from_str::<serde_json::Value>(&line).expect("json"));
        }
        assert!(seen.iter().all(|t| t["app_name"] == "Vigie"), "{seen:?}");
        let mail = seen.iter().find(|t| t["summary"] == "Alice Martin — Quarterly figures").expect("the mail's toast first");
        assert_eq!(mail["body"], "Here are the numbers we discussed.");
        let chat = seen.iter().find(|t| t["summary"] == "Bob Builder").expect("the direct message's toast, named by its sender");
        assert!(!chat["body"].as_str().unwrap_or_default().is_empty(), "with the message as body: {chat:?}");
    }

    #[test]
    fn without_its_control_socket_the_tray_still_runs_and_says_why_the_settings_cannot_open() {
        let mut session = Session::desktop().expect("desktop session");
        let _toasts = session.start_notifyd().expect("notification server");
        // A Unix socket path is at most 107 bytes: this one cannot be made.
        let runtime = session.dir().join("r".repeat(120));
        std::fs::create_dir_all(&runtime).expect("runtime folder");
        let config = demo_config(&session, 3600.0);
        let mut app = session
            .command(VIGIE)
            .arg("--config")
            .arg(&config)
            .env("XDG_RUNTIME_DIR", &runtime)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("app");
        session.wait_for_window(Duration::from_secs(30), |t| t.contains("tray-icon tray app main")).expect("the tray icon is docked");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !read_logs(&session).contains("no control channel, so no settings window") {
            assert!(std::time::Instant::now() < deadline, "the log says why there is no settings window:\n{}", read_logs(&session));
            std::thread::sleep(Duration::from_millis(100));
        }
        let status = session.command(VIGIE).arg("--status").env("XDG_RUNTIME_DIR", &runtime).output().expect("vigie --status");
        assert_eq!(status.status.code(), Some(1), "nothing answers --status");
        assert!(String::from_utf8_lossy(&status.stderr).contains("Vigie is not running"));
        assert!(app.try_wait().expect("status").is_none(), "the tray app runs on");
        let kill = Command::new("kill").args(["-TERM", &app.id().to_string()]).status().expect("kill");
        assert!(kill.success());
        let status = wait_exit(&mut app, Duration::from_secs(15)).expect("the app exits after SIGTERM");
        assert!(status.success(), "clean exit: {status:?}");
    }

    #[test]
    fn a_task_toast_offers_mark_done_and_pressing_it_marks_the_task_done_on_the_server() {
        let mut session = Session::desktop().expect("desktop session");
        let toasts = session.start_notifyd().expect("notification server");
        let config = demo_config(&session, 0.5);
        let app = session.command(VIGIE).arg("--config").arg(&config).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("app");
        session.adopt(app);

        // The demo assigns "Fix the login page" on its local Leantime.
        let line = toasts.wait_for(Duration::from_secs(30), |l| l.contains("Fix the login page") && l.contains("mark-done"));
        let toast: serde_json::Value = serde_json::from_str(&line.expect("the task's toast within 30 s")).expect("json");
        let actions: Vec<&str> = toast["actions"].as_array().expect("actions").iter().filter_map(|a| a.as_str()).collect();
        assert!(actions.windows(2).any(|w| w == ["mark-done", "Mark done"]), "{actions:?}");
        assert!(actions.windows(2).any(|w| w == ["mark-read", "Got it"]), "{actions:?}");
        assert!(actions.contains(&"open"), "a task has a link to open: {actions:?}");

        session.press_toast_button(toast["id"].as_u64().expect("id"), "mark-done").expect("press");

        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let done = loop {
            let logs = read_logs(&session);
            if let Some(line) = logs.lines().find(|l| l.contains("action done") && l.contains("demo-tasks")) {
                break line.to_owned();
            }
            assert!(std::time::Instant::now() < deadline, "no action in the log within 20 s:\n{logs}");
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(done.contains("MarkDone"), "{done}");
    }

    /// The tray is redrawn at every change of state; a quit that lands
    /// while the state changes by the moment (an item every 50 ms, the
    /// demo chat's link dropped and back) still stops the core
    /// and exits. It used to hang for good: the main thread, stopping,
    /// waited for the task redrawing the tray, which waited for the main
    /// thread to change a menu label.
    #[test]
    fn a_quit_while_the_state_keeps_changing_stops_the_core_and_exits() {
        let mut session = Session::desktop().expect("desktop session");
        let _toasts = session.start_notifyd().expect("notification server");
        let config = demo_config(&session, 0.05);
        // Each quit lands at another point of a redraw.
        for run in 1..=10 {
            let mut app =
                session.command(VIGIE).arg("--config").arg(&config).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("app");
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            while read_logs(&session).matches("tray app started").count() < run {
                assert!(std::time::Instant::now() < deadline, "run {run}: the tray app did not start");
                assert!(app.try_wait().expect("status").is_none(), "run {run}: the app exited early");
                std::thread::sleep(Duration::from_millis(50));
            }
            let kill = Command::new("kill").args(["-TERM", &app.id().to_string()]).status().expect("kill");
            assert!(kill.success());
            let status = wait_exit(&mut app, Duration::from_secs(15)).unwrap_or_else(|| panic!("run {run}: no exit within 15 s of SIGTERM"));
            assert!(status.success(), "run {run}: clean exit: {status:?}");
            assert_eq!(read_logs(&session).matches("INFO vigie::app: stopped").count(), run, "run {run}: the core was stopped");
        }
    }

    #[test]
    fn the_tray_draws_the_last_known_badge_and_a_second_launch_opens_settings() {
        let mut session = Session::desktop().expect("desktop session");
        let _toasts = session.start_notifyd().expect("notification server");
        // Slow demo: nothing happens after the baseline.
        let config = demo_config(&session, 3600.0);
        let mut app = session.command(VIGIE).arg("--config").arg(&config).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("app");

        // 2 mails and 2 Leantime notifications (the chat's messages are read
        // and the open task is old news at the first sync).
        let count = 4;
        let distance = |shot: &Shot, origin: (usize, usize), n: u32| {
            let icon = vigie::icon::render(&Badge { count: n, dot: false });
            (0..=2)
                .flat_map(|dx| (0..=2).map(move |dy| (dx, dy)))
                .map(|(dx, dy)| icon_distance(shot, origin.0 + dx, origin.1 + dy, &icon))
                .fold(f64::MAX, f64::min)
        };
        // The other counts a digit's few pixels tell apart from ours.
        let others = [count - 1, count + 1, count + 3];
        // The baseline arrives within moments, and the tray host may still
        // move the icon while it lays out: re-read where it is each time.
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let (best, nearest_other, tree) = loop {
            let tree = session
                .wait_for_window(Duration::from_secs(30), |t| t.contains("tray-icon tray app main"))
                .expect("the tray icon is docked in the tray host");
            let origin = window_origin(&tree, "tray-icon tray app main").expect("tray geometry");
            let shot = Shot::take(&session, "tray");
            let best = distance(&shot, origin, count);
            let nearest_other = others.iter().map(|&n| distance(&shot, origin, n)).fold(f64::MAX, f64::min);
            if (best < 12.0 && best < nearest_other) || std::time::Instant::now() > deadline {
                break (best, nearest_other, tree);
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        assert!(best < 12.0, "the tray shows the icon with badge {count} (mean colour distance {best:.1})");
        assert!(best < nearest_other, "and not another count ({best:.1} vs {nearest_other:.1} for {others:?})");

        // A status bar asks the running app for the same count.
        let status = session.command(VIGIE).arg("--status").output().expect("vigie --status");
        assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
        let overview: serde_json::Value = serde_json::from_slice(&status.stdout).expect("one JSON line");
        assert_eq!(overview["badge"]["count"], count, "{overview}");
        assert_eq!(overview["demo"], true);

        assert!(!tree.contains("Vigie — Settings"), "no window at start: an idle app holds no webview");
        let second = session.command(VIGIE).arg("--config").arg(&config).output().expect("second launch");
        assert!(second.status.success(), "the second instance hands over and exits");
        let tree = session
            .wait_for_window(Duration::from_secs(30), |t| t.contains("\"Vigie — Settings\""))
            .expect("the settings window opens");
        let (wx, wy) = window_origin(&tree, "\"Vigie — Settings\"").expect("window geometry");
        // The page is rendered (not an error page): its accent button colour
        // appears inside the window once the UI has loaded.
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let shot = Shot::take(&session, "tray-and-settings");
            let accent = (wy..wy + 300).any(|y| (wx..wx + 500).any(|x| is_accent(shot.pixel(x, y))));
            if accent {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "the settings page did not render");
            std::thread::sleep(Duration::from_millis(200));
        }

        // Asked again while it is open: the tray starts a second settings
        // process, which hands over to the first (raising its window) and
        // leaves; one window stays.
        let again = session.command(VIGIE).arg("--config").arg(&config).output().expect("third launch");
        assert!(again.status.success(), "the third instance hands over and exits");
        let started = |logs: &str| -> Vec<u32> {
            logs.lines().filter(|l| l.contains("settings window started")).filter_map(|l| l.rsplit("pid=").next()?.trim().parse().ok()).collect()
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let pids = loop {
            let pids = started(&read_logs(&session));
            if pids.len() >= 2 || std::time::Instant::now() > deadline {
                break pids;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        assert_eq!(pids.len(), 2, "a second settings process was started: {pids:?}");
        // The tray waits for its children, so a process that left is gone
        // from /proc, not a zombie.
        let second = Path::new("/proc").join(pids[1].to_string());
        while second.exists() {
            assert!(std::time::Instant::now() < deadline, "the second settings process did not leave");
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(Path::new("/proc").join(pids[0].to_string()).exists(), "the first window's process stays");
        let tree = session.window_tree().expect("xwininfo");
        assert_eq!(tree.matches("\"Vigie — Settings\"").count(), 1, "one settings window:\n{tree}");

        // Closing the window destroys it and the app keeps running.
        // Under heavy load a close request that lands while GTK is still
        // settling the new window can go unanswered; a window manager's
        // user would click again, and so does the test (it is idempotent).
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/close_window.py");
        let mut closed = Err(std::io::Error::other("no close request sent"));
        for _ in 0..4 {
            let close = session.command("/usr/bin/python3").arg(&script).arg("Vigie — Settings").status();
            if !close.map(|s| s.success()).unwrap_or(false) {
                // Gone between the check and the request, or python3-xlib missing.
                closed = session.wait_for_window(Duration::from_secs(1), |t| !t.contains("Vigie — Settings"));
                assert!(closed.is_ok(), "the close request was sent (apt install python3-xlib)");
                break;
            }
            closed = session.wait_for_window(Duration::from_secs(8), |t| !t.contains("Vigie — Settings"));
            if closed.is_ok() {
                break;
            }
        }
        closed.expect("the window is gone");
        assert!(app.try_wait().expect("status").is_none(), "closing the last window does not quit");
        session.wait_for_window(Duration::from_secs(5), |t| t.contains("tray-icon tray app main")).expect("tray still there");

        // SIGTERM quits cleanly, like the menu's Quit.
        let kill = Command::new("kill").args(["-TERM", &app.id().to_string()]).status().expect("kill");
        assert!(kill.success());
        let status = wait_exit(&mut app, Duration::from_secs(15)).expect("the app exits after SIGTERM");
        assert!(status.success(), "clean exit: {status:?}");
        assert!(read_logs(&session).contains("stopped"), "the core was stopped before exit");
    }

    fn is_accent(px: [u8; 3]) -> bool {
        // --accent in ui/src/style.css (light theme).
        px[2] > 150 && px[0] < 80 && px[1] > 60 && px[1] < 140
    }

    fn wait_exit(child: &mut std::process::Child, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        None
    }
}
