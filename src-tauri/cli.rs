//! Command-line entry: parses flags, sets up logging and picks the mode.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use secrecy::SecretString;
use vigie::config::{Config, Paths};
use vigie::model::AccountId;
use vigie::secrets::{self, KeyringSecrets, SecretStore};
use vigie::control::Client;
use vigie::{Core, headless, logging, sources};

/// Vigie: one badge and a toast for new mail, chat messages and tasks.
#[derive(Debug, Parser)]
#[command(name = "vigie", version)]
pub struct Cli {
    /// Run without a GUI and print each event as one JSON line on stdout
    /// (see docs/events.md).
    #[arg(long)]
    pub headless: bool,
    /// Run the built-in demo accounts, even if accounts are configured.
    #[arg(long)]
    pub demo: bool,
    /// Open the settings window at start, whatever the "start hidden"
    /// option says (as a second launch does).
    #[arg(long, conflicts_with = "hidden")]
    pub settings: bool,
    /// Start in the tray only, whatever the "start hidden" option says.
    #[arg(long)]
    pub hidden: bool,
    /// Read the configuration from PATH instead of the platform's config file.
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Print the running Vigie's state (badge, accounts, connection states)
    /// as one JSON line, and exit; 1 if no Vigie is running.
    #[arg(long)]
    pub status: bool,
    /// Check that the system keyring works: store, read back and delete a
    /// test secret.
    #[arg(long)]
    pub check_keyring: bool,
    /// Store a secret (read from standard input) for an account in the
    /// keyring, e.g. `--set-secret work-mail password`.
    #[arg(long, num_args = 2, value_names = ["ACCOUNT", "NAME"])]
    pub set_secret: Option<Vec<String>>,
    /// Sign a mail account in with OAuth 2.0 in the browser (authorization
    /// code with PKCE, a loopback redirect) and keep its refresh token in
    /// the keyring.
    #[arg(long, value_name = "ACCOUNT")]
    pub sign_in: Option<String>,
    /// How long a toast's "Snooze 1 h" waits, in seconds (for tests: the
    /// desktop tests cannot wait an hour). Hidden from `--help`.
    #[arg(long, value_name = "SECS", hide = true)]
    pub snooze_secs: Option<u64>,
}

/// Everything the chosen mode needs to start.
pub struct Launch {
    pub cli: Cli,
    pub paths: Paths,
    /// The config, or why it could not be used (the app then runs with no
    /// account and shows the error).
    pub config: Result<Config, String>,
}

/// What the binary can show besides the headless mode. (Each binary builds
/// only one of the variants.)
#[allow(dead_code)]
pub enum Frontend {
    /// The tray app.
    Gui(fn(Launch) -> ExitCode),
    /// No GUI in this binary: always headless. `vigie-headless` is built this
    /// way so that it links no GUI library at all (a GTK/WebKit process is
    /// several times larger even when it never opens a window).
    HeadlessOnly,
}

pub fn main(frontend: Frontend) -> ExitCode {
    let cli = Cli::parse();
    let Some(paths) = Paths::discover() else {
        eprintln!("vigie: cannot find the home folder (is $HOME set?)");
        return ExitCode::from(2);
    };
    // Before logging: a status bar may ask every few seconds.
    if cli.status {
        return print_status(&paths);
    }
    let _log_guard = match logging::init(&paths.log_dir) {
        Ok(guard) => Some(guard),
        Err(problem) => {
            logging::init_stderr();
            tracing::warn!("{problem}; logging to stderr only");
            None
        }
    };
    tracing::info!(version = env!("CARGO_PKG_VERSION"), "starting");

    if cli.check_keyring {
        return check_keyring();
    }
    if let Some(args) = &cli.set_secret {
        return set_secret(&args[0], &args[1]);
    }

    let config_path = cli.config.clone().unwrap_or_else(|| paths.config_file.clone());
    let config = Config::load(&config_path).map_err(|e| {
        tracing::error!("{e}");
        e.to_string()
    });
    if let Some(account) = &cli.sign_in {
        return sign_in(config, account);
    }
    let launch = Launch { cli, paths, config };
    match frontend {
        Frontend::Gui(run_gui) if !launch.cli.headless => run_gui(launch),
        _ => run_headless(launch),
    }
}

fn check_keyring() -> ExitCode {
    match secrets::self_check(&KeyringSecrets) {
        Ok(message) => {
            println!("{message}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!("keyring check failed: {e}");
            eprintln!("vigie: {e}");
            ExitCode::FAILURE
        }
    }
}

fn set_secret(account: &str, name: &str) -> ExitCode {
    let mut value = String::new();
    if let Err(e) = std::io::stdin().read_to_string(&mut value) {
        eprintln!("vigie: could not read the secret from standard input: {e}");
        return ExitCode::FAILURE;
    }
    let value = SecretString::from(value.trim_end_matches(['\r', '\n']).to_owned());
    match KeyringSecrets.set(&AccountId::new(account), name, &value) {
        Ok(()) => {
            tracing::info!(account, name, "secret stored in the keyring");
            println!("stored {name} for {account} in the system keyring");
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!(account, name, "could not store secret: {e}");
            eprintln!("vigie: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The first OAuth sign-in of a mail account: prints the consent address,
/// waits for the browser to come back, stores the refresh token.
fn sign_in(config: Result<Config, String>, account: &str) -> ExitCode {
    let fail = |message: &str| {
        tracing::error!(account, "sign-in failed: {message}");
        eprintln!("vigie: {message}");
        ExitCode::FAILURE
    };
    let config = match config {
        Ok(config) => config,
        Err(message) => return fail(&message),
    };
    let Some(account) = config.accounts.iter().find(|a| a.id.as_str() == account) else {
        return fail(&format!("no account `{account}` in the config file"));
    };
    let id = account.id.clone();
    let client_secret = KeyringSecrets.get(&id, vigie::imap::CLIENT_SECRET_SECRET).ok().flatten();
    let request = match vigie::imap::consent::ConsentRequest::for_account(account, client_secret) {
        Ok(request) => request,
        Err(message) => return fail(&message),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => return fail(&format!("cannot start the async runtime: {e}")),
    };
    let outcome = runtime.block_on(async {
        let consent = vigie::imap::consent::Consent::start(request).await?;
        println!("Open this address in your browser and allow access:\n\n  {}\n", consent.url());
        println!("Waiting for the browser to come back…");
        consent.finish(&id, std::sync::Arc::new(KeyringSecrets)).await
    });
    match outcome {
        Ok(()) => {
            tracing::info!(account = %id, "signed in with OAuth");
            println!("signed in: the refresh token for {id} is in the system keyring");
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e.to_string()),
    }
}

fn run_headless(launch: Launch) -> ExitCode {
    let config = match launch.config {
        Ok(config) => config,
        Err(message) => {
            eprintln!("vigie: {message}");
            let line = serde_json::json!({
                "type": "error",
                "at": jiff::Timestamp::now(),
                "account": null,
                "message": message,
            });
            println!("{line}");
            return ExitCode::from(2);
        }
    };
    // One thread is plenty for a handful of sockets and keeps an idle
    // process small.
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("vigie: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let demo = sources::wants_demo(&config, launch.cli.demo);
        let setup = sources::setup_from_config(&config, launch.paths.state_file.clone(), demo, Arc::new(KeyringSecrets));
        let (core, events) = match Core::start(setup) {
            Ok(started) => started,
            Err(e) => {
                tracing::error!("{e}");
                eprintln!("vigie: {e}");
                return ExitCode::FAILURE;
            }
        };
        let snapshot = core.handle().snapshot();
        // No control socket here: everything goes to stdout, and the
        // settings code it would link costs an idle headless process
        // about 2 MB of resident code (docs/benchmarks.md).
        let result = headless::write_events(&snapshot, events, tokio::io::stdout(), |_| {}, shutdown_signal()).await;
        core.stop().await;
        tracing::info!("stopped");
        match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("vigie: cannot write to stdout: {e}");
                ExitCode::FAILURE
            }
        }
    })
}

/// `--status`: the running Vigie's state as one JSON line, for status bars
/// and scripts.
fn print_status(paths: &Paths) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("vigie: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let answer = runtime.block_on(async {
        let (client, _pushed) = Client::connect(&paths.control_socket).await.map_err(|e| e.to_string())?;
        client.call("get_overview", serde_json::Value::Null).await.map_err(|e| e.to_string())
    });
    match answer {
        Ok(overview) => {
            println!("{overview}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("vigie: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Resolves on Ctrl-C, or SIGTERM on Unix. The handlers are installed
/// when this is called, not when the future is first polled: a signal that
/// comes in between is kept rather than left to the default action, which
/// would end the process without stopping the core. Call it inside the
/// runtime.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (term, interrupt) = (signal(SignalKind::terminate()).ok(), signal(SignalKind::interrupt()).ok());
        async move {
            let on = |signal: Option<tokio::signal::unix::Signal>| async move {
                match signal {
                    Some(mut signal) => {
                        signal.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            match (term.is_some(), interrupt.is_some()) {
                (false, false) => {
                    let _ = tokio::signal::ctrl_c().await;
                }
                _ => {
                    tokio::select! {
                        () = on(term) => {}
                        () = on(interrupt) => {}
                    }
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
