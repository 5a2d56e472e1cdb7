//! A private desktop session for tests and benchmarks: a session D-Bus, and
//! on request an X server (Xvfb), a tray host (trayer), a capturing
//! notification server, an unlocked GNOME Keyring and a WebDriver server
//! (tauri-driver), all owned by this process and stopped by PID when the
//! session is dropped.
//!
//! Nothing here touches the user's real session: HOME, the XDG folders and
//! the D-Bus address all point into a temporary folder.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A running private session.
pub struct Session {
    dir: tempfile::TempDir,
    bus_address: String,
    display: Option<String>,
    /// Stopped in reverse order on drop.
    children: Vec<Child>,
    /// tauri-driver, leading its own process group (WebKitWebDriver and
    /// the app it launches), which is killed whole.
    tauri_driver: Option<Child>,
    /// Commands to the capturing notification server.
    notifyd: Option<std::process::ChildStdin>,
    /// Extra variables for every command (e.g. a dark GTK theme).
    env: Vec<(String, String)>,
}

/// Lines a child prints, as they arrive.
pub struct Lines(mpsc::Receiver<String>);

impl Lines {
    fn follow(stream: impl Read + Send + 'static) -> Lines {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Lines(rx)
    }

    /// The next line, waiting at most `timeout`.
    pub fn next(&self, timeout: Duration) -> Option<String> {
        self.0.recv_timeout(timeout).ok()
    }

    /// Waits for a line matching `pred`, skipping others, up to `timeout`.
    pub fn wait_for(&self, timeout: Duration, pred: impl Fn(&str) -> bool) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            let line = self.next(left)?;
            if pred(&line) {
                return Some(line);
            }
        }
    }
}

/// A loopback port nobody listens on right now.
fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// `tauri-driver`: `$TAURI_DRIVER`, else on PATH, else where `cargo install`
/// puts it (found before [`Session::command`] points HOME elsewhere).
fn tauri_driver_binary() -> std::io::Result<PathBuf> {
    if let Some(path) = std::env::var_os("TAURI_DRIVER") {
        return Ok(PathBuf::from(path));
    }
    let cargo_bin = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo")))
        .map(|cargo| cargo.join("bin"));
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(cargo_bin)
        .map(|dir| dir.join("tauri-driver"))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| std::io::Error::other("no tauri-driver (cargo install tauri-driver --version ^2 --locked)"))
}

fn first_line(child: &mut Child, what: &str) -> std::io::Result<String> {
    let out = child.stdout.take().ok_or_else(|| std::io::Error::other(format!("{what}: no stdout")))?;
    let lines = Lines::follow(out);
    lines
        .next(Duration::from_secs(10))
        .ok_or_else(|| std::io::Error::other(format!("{what} did not start (no output within 10 s)")))
}

impl Session {
    /// A session bus only (enough for the keyring and notifications).
    pub fn bus_only() -> std::io::Result<Session> {
        let dir = tempfile::tempdir()?;
        for sub in ["home", "config", "state", "data", "runtime", "cache"] {
            std::fs::create_dir_all(dir.path().join(sub))?;
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path().join("runtime"), std::fs::Permissions::from_mode(0o700))?;
        }
        let mut bus = Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--print-address=1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| std::io::Error::other(format!("cannot start dbus-daemon (apt install dbus): {e}")))?;
        let bus_address = first_line(&mut bus, "dbus-daemon")?;
        Ok(Session { dir, bus_address, display: None, children: vec![bus], tauri_driver: None, notifyd: None, env: Vec::new() })
    }

    /// A session bus and an X server with a tray host.
    pub fn desktop() -> std::io::Result<Session> {
        let mut session = Session::bus_only()?;
        // -displayfd 1: Xvfb picks a free display and prints its number.
        let mut xvfb = Command::new("Xvfb")
            .args(["-displayfd", "1", "-screen", "0", "1024x640x24", "-nolisten", "tcp"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| std::io::Error::other(format!("cannot start Xvfb (apt install xvfb): {e}")))?;
        let number = first_line(&mut xvfb, "Xvfb")?;
        session.children.push(xvfb);
        session.display = Some(format!(":{}", number.trim()));
        let trayer = session
            .command("trayer")
            .args(["--edge", "top", "--align", "right", "--widthtype", "request", "--height", "36"])
            .args(["--SetDockType", "true", "--transparent", "false", "--tint", "0x404040"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| std::io::Error::other(format!("cannot start trayer (apt install trayer): {e}")))?;
        session.children.push(trayer);
        Ok(session)
    }

    /// The private bus's address.
    pub fn bus_address(&self) -> &str {
        &self.bus_address
    }

    /// The temporary folder everything lives in.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Where the app keeps its state and logs in this session.
    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state").join("vigie")
    }

    /// Sets a variable for every command started from now on.
    pub fn set_env(&mut self, name: &str, value: &str) {
        self.env.push((name.to_owned(), value.to_owned()));
    }

    /// A command with this session's environment.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new(program);
        let d = self.dir.path();
        cmd.env("HOME", d.join("home"))
            .env("XDG_CONFIG_HOME", d.join("config"))
            .env("XDG_STATE_HOME", d.join("state"))
            .env("XDG_DATA_HOME", d.join("data"))
            .env("XDG_CACHE_HOME", d.join("cache"))
            .env("XDG_RUNTIME_DIR", d.join("runtime"))
            .env("DBUS_SESSION_BUS_ADDRESS", &self.bus_address)
            .env("NO_AT_BRIDGE", "1")
            .env_remove("WAYLAND_DISPLAY");
        for (name, value) in &self.env {
            cmd.env(name, value);
        }
        match &self.display {
            Some(display) => cmd.env("DISPLAY", display),
            None => cmd.env_remove("DISPLAY"),
        };
        cmd
    }

    /// Starts the capturing notification server; returns its JSON lines.
    pub fn start_notifyd(&mut self) -> std::io::Result<Lines> {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/fake_notifyd.py");
        let mut child = self
            .command("/usr/bin/python3")
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        self.notifyd = child.stdin.take();
        let lines = Lines::follow(child.stdout.take().ok_or_else(|| std::io::Error::other("no stdout"))?);
        self.children.push(child);
        lines
            .wait_for(Duration::from_secs(15), |l| l == "ready")
            .ok_or_else(|| std::io::Error::other("the test notification server did not start (apt install python3-dbus python3-gi)"))?;
        Ok(lines)
    }

    /// Presses the button `key` of toast `id` on the capturing notification
    /// server, as a user would.
    pub fn press_toast_button(&mut self, id: u64, key: &str) -> std::io::Result<()> {
        let stdin = self.notifyd.as_mut().ok_or_else(|| std::io::Error::other("no notification server started"))?;
        writeln!(stdin, "invoke {id} {key}")?;
        stdin.flush()
    }

    /// Starts GNOME Keyring's Secret Service, unlocked with a throwaway
    /// password, on this session's bus.
    pub fn start_keyring(&mut self) -> std::io::Result<()> {
        let mut child = self
            .command("gnome-keyring-daemon")
            .args(["--unlock", "--components=secrets", "--foreground"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| std::io::Error::other(format!("cannot start gnome-keyring-daemon (apt install gnome-keyring): {e}")))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(b"test-keyring-password")?;
        }
        let out = child.stdout.take().ok_or_else(|| std::io::Error::other("no stdout"))?;
        self.children.push(child);
        // It prints its environment once it is on the bus; wait until the
        // Secret Service name answers.
        let _lines = Lines::follow(out);
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            let probe = self
                .command("dbus-send")
                .args(["--session", "--print-reply", "--dest=org.freedesktop.DBus", "/org/freedesktop/DBus"])
                .args(["org.freedesktop.DBus.GetNameOwner", "string:org.freedesktop.secrets"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()?;
            if probe.success() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(std::io::Error::other("gnome-keyring-daemon did not take the Secret Service name"))
    }

    /// Starts `cmd` (built with [`Session::command`]) and stops it with the
    /// session.
    pub fn adopt(&mut self, child: Child) {
        self.children.push(child);
    }

    /// Starts `tauri-driver` (with WebKitWebDriver as its native driver, on
    /// free loopback ports) in this session, so the app it launches gets
    /// this session's display, bus, keyring and XDG folders. Returns the
    /// WebDriver address, once it accepts connections. One runs at a time:
    /// a running one is stopped first.
    pub fn start_tauri_driver(&mut self) -> std::io::Result<String> {
        self.stop_tauri_driver();
        let driver = tauri_driver_binary()?;
        let native = Path::new("/usr/bin/WebKitWebDriver");
        if !native.exists() {
            return Err(std::io::Error::other("no /usr/bin/WebKitWebDriver (apt install webkit2gtk-driver)"));
        }
        let (port, native_port) = (free_port()?, free_port()?);
        // What it, WebKitWebDriver and the app print, for failure messages.
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.tauri_driver_log_path())?;
        let child = self
            .command(&driver)
            .args(["--port", &port.to_string(), "--native-port", &native_port.to_string()])
            .arg("--native-driver")
            .arg(native)
            // Its own process group: it starts WebKitWebDriver, which starts
            // the app, and all of them go with the session.
            .process_group(0)
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .map_err(|e| std::io::Error::other(format!("cannot start {}: {e}", driver.display())))?;
        self.tauri_driver = Some(child);
        // tauri-driver starts WebKitWebDriver at once but does not wait for
        // it: a session asked for before the native driver listens fails
        // (seen on a loaded CI machine). Both must be listening.
        let deadline = Instant::now() + Duration::from_secs(15);
        let listening = |port: u16| std::net::TcpStream::connect(("127.0.0.1", port)).is_ok();
        while !listening(port) || !listening(native_port) {
            if Instant::now() > deadline {
                return Err(std::io::Error::other("tauri-driver and WebKitWebDriver did not both listen within 15 s"));
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        Ok(format!("http://127.0.0.1:{port}"))
    }

    fn tauri_driver_log_path(&self) -> PathBuf {
        self.dir.path().join("tauri-driver.log")
    }

    /// What tauri-driver, WebKitWebDriver and the app they launched printed.
    pub fn tauri_driver_log(&self) -> String {
        std::fs::read_to_string(self.tauri_driver_log_path()).unwrap_or_default()
    }

    /// Stops tauri-driver with everything it started (WebKitWebDriver, the
    /// app): SIGKILL to its process group.
    pub fn stop_tauri_driver(&mut self) {
        if let Some(mut child) = self.tauri_driver.take() {
            let _ = Command::new("kill").args(["-KILL", "--", &format!("-{}", child.id())]).status();
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// `xwininfo -root -tree` of the X server.
    pub fn window_tree(&self) -> std::io::Result<String> {
        let out = self.command("xwininfo").args(["-root", "-tree"]).output()?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Polls the window tree until `pred` holds, up to `timeout`.
    pub fn wait_for_window(&self, timeout: Duration, pred: impl Fn(&str) -> bool) -> std::io::Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let tree = self.window_tree()?;
            if pred(&tree) {
                return Ok(tree);
            }
            if Instant::now() > deadline {
                return Err(std::io::Error::other(format!("window not found within {timeout:?}; tree:\n{tree}")));
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// A screenshot of the whole screen as PNG at `path`.
    pub fn screenshot(&self, path: &Path) -> std::io::Result<()> {
        let status = self.command("import").args(["-window", "root"]).arg(path).status()?;
        if status.success() { Ok(()) } else { Err(std::io::Error::other("import (ImageMagick) failed")) }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.stop_tauri_driver();
        for child in self.children.iter_mut().rev() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
