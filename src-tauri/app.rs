//! The tray app: starts the core, the tray, the toasts and the control
//! channel, opens the settings window on demand, and stops everything
//! cleanly on Quit.
//!
//! Shape: GTK's main loop owns the main thread (the tray icon and its menu
//! live there); the core, the toasts and the control channel run on a small
//! tokio runtime beside it. The settings window is another process
//! (`vigie-settings`, a Tauri webview) that talks to this one over the
//! control socket: the tray process never loads a web engine, so an idle
//! Vigie stays small, and closing the window gives all of it back.
//!
//! Lifecycle: only "Quit" (or SIGTERM, Ctrl-C) ends the app, and the core
//! is stopped before the process exits. A second launch finds this one on
//! the control socket, asks it to open the settings window, and exits.

use std::process::ExitCode;
use std::sync::Arc;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use vigie::config::{Config, Notifications};
use vigie::control::views::CommandError;
use vigie::control::{Client, ControlError, Listener, Service, Shell};
use vigie::pause::PauseChoice;
use vigie::scheduler::Trigger;
use vigie::secrets::SecretStore;
use vigie::settings::Settings;
use vigie::watcher::{Action, ActionError};
use vigie::{Core, CoreEvent, CoreHandle, Snapshot, sources};

use crate::cli::Launch;
use crate::grouping::{Grouping, Shape};
use crate::settings_window::SettingsWindow;
use crate::snooze::Snoozes;
use crate::toast::{self, Choice, Target, Toaster};
use crate::tray::{MenuAction, Tray};

pub fn run(launch: Launch) -> ExitCode {
    let (config, demo, problems) = match launch.config {
        Ok(config) => {
            let demo = sources::wants_demo(&config, launch.cli.demo);
            (config, demo, Vec::new())
        }
        // Run with no account and show the error, rather than refuse to
        // start or silently fall back to the demo; the file is left as is.
        Err(message) => (Config::empty(), launch.cli.demo, vec![message]),
    };
    // Two workers are plenty for a handful of sockets; idle threads cost
    // memory, not CPU.
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).thread_name("vigie-core").enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => return fail(&format!("cannot start the async runtime: {e}")),
    };
    let socket = launch.paths.control_socket.clone();
    let (listener, no_settings) = match runtime.block_on(Listener::bind(&socket)) {
        Ok(listener) => (Some(listener), None),
        Err(ControlError::AlreadyRunning(_)) => return runtime.block_on(hand_over(&socket)),
        // Run on without it, saying so in the menu: the window (which talks
        // to us through it) cannot open, and a second launch cannot find us.
        Err(e) => {
            tracing::error!("no control channel, so no settings window: {e}");
            (None, Some(e.to_string()))
        }
    };
    if let Err(e) = gtk::init() {
        return fail(&format!("cannot open the display: {e}"));
    }

    let secrets: Arc<dyn SecretStore> = Arc::new(vigie::secrets::KeyringSecrets);
    let mut setup = sources::setup_from_config(&config, launch.paths.state_file.clone(), demo, secrets.clone());
    setup.problems = problems;
    let config_file = launch.cli.config.clone().unwrap_or_else(|| launch.paths.config_file.clone());
    let snooze_delay = launch.cli.snooze_secs.map_or(crate::snooze::DEFAULT_DELAY, std::time::Duration::from_secs);

    let (core, events) = match runtime.block_on(async { Core::start(setup) }) {
        Ok(started) => started,
        Err(e) => return fail(&e.to_string()),
    };
    let settings = Arc::new(Settings::new(core, config_file, launch.paths.state_file.clone(), launch.cli.demo, secrets, config.notifications.clone()));
    let core = settings.handle();
    let stop = CancellationToken::new();
    let (window, launcher) = SettingsWindow::new(crate::settings_window::program(), listener.as_ref().map(|_| socket.clone()), stop.clone());
    let service = Arc::new(Service::new(settings.clone(), TrayShell { window: window.clone() }));

    let tray = match Tray::create(&core.snapshot(), no_settings.as_deref()) {
        Ok(tray) => tray,
        Err(e) => {
            runtime.block_on(settings.stop());
            return fail(&format!("cannot show the tray icon: {e}"));
        }
    };
    on_menu(core.clone(), window.clone(), stop.clone(), runtime.handle().clone());
    gtk::glib::MainContext::default().spawn_local(follow_state(tray, core.subscribe()));

    let mut tasks = JoinSet::new();
    {
        let _inside = runtime.enter();
        // Listening from here on: a quit asked before the task first runs
        // must still stop the core.
        let signal = crate::cli::shutdown_signal();
        tasks.spawn(quit_on_signal(signal, stop.clone()));
        tasks.spawn(launcher);
        tasks.spawn(forward_events(core.clone(), events, settings.notifications(), snooze_delay, service.clone(), window.clone(), stop.clone()));
        if let Some(listener) = listener {
            tasks.spawn(listener.serve(service, stop.clone()));
        }
        // The main loop ends when `stop` fires, whoever fires it.
        let stop = stop.clone();
        tasks.spawn(async move {
            stop.cancelled().await;
            gtk::glib::MainContext::default().invoke(gtk::main_quit);
        });
    }
    if no_settings.is_none() && (launch.cli.settings || !(config.app.start_hidden || launch.cli.hidden)) {
        window.open();
    }
    tracing::info!("tray app started");
    gtk::main();

    stop.cancel();
    runtime.block_on(async {
        while tasks.join_next().await.is_some() {}
        settings.stop().await;
    });
    tracing::info!("stopped");
    ExitCode::SUCCESS
}

fn fail(message: &str) -> ExitCode {
    tracing::error!("cannot start the tray app: {message}");
    eprintln!("vigie: {message}");
    ExitCode::FAILURE
}

/// A second launch: the running Vigie opens its settings window.
async fn hand_over(socket: &std::path::Path) -> ExitCode {
    let opened = async {
        let (client, _pushed) = Client::connect(socket).await.map_err(|e| e.to_string())?;
        client.call("open_settings", serde_json::Value::Null).await.map_err(|e| e.to_string())
    };
    match opened.await {
        Ok(_) => {
            tracing::info!("Vigie is already running: asked it to open its settings");
            ExitCode::SUCCESS
        }
        Err(e) => fail(&format!("Vigie is already running but did not open its settings: {e}")),
    }
}

/// What the control channel asks of the tray app.
struct TrayShell {
    window: SettingsWindow,
}

impl Shell for TrayShell {
    fn open_settings(&self) -> Result<(), CommandError> {
        self.window.open();
        Ok(())
    }

    fn start_at_login(&self) -> Result<bool, CommandError> {
        crate::autostart::is_enabled()
    }

    fn set_start_at_login(&self, enabled: bool) -> Result<(), CommandError> {
        crate::autostart::set_enabled(enabled)
    }
}

/// Runs the menu's actions. GTK calls the handler on the main thread, so
/// it only hands work on: nothing here may wait.
fn on_menu(core: CoreHandle, window: SettingsWindow, stop: CancellationToken, runtime: tokio::runtime::Handle) {
    tray_icon::menu::MenuEvent::set_event_handler(Some(move |event: tray_icon::menu::MenuEvent| {
        let Some(action) = MenuAction::from_id(event.id().as_ref()) else { return };
        let pause = |choice: PauseChoice| {
            let core = core.clone();
            runtime.spawn(async move { core.pause(choice.until(&jiff::ZonedDateTime::now())).await });
        };
        match action {
            MenuAction::OpenSettings => window.open(),
            MenuAction::RefreshNow => core.refresh_all(Trigger::Manual),
            MenuAction::PauseHour => pause(PauseChoice::Hour),
            MenuAction::PauseTomorrow => pause(PauseChoice::Tomorrow),
            MenuAction::Resume => pause(PauseChoice::Resume),
            MenuAction::Quit => {
                tracing::info!("quit from the tray menu");
                stop.cancel();
            }
        }
    }));
}

/// SIGTERM (logout, `kill`) and Ctrl-C quit like the menu's Quit, so the
/// core stops cleanly.
async fn quit_on_signal(signal: impl Future<Output = ()>, stop: CancellationToken) {
    tokio::select! {
        () = stop.cancelled() => {}
        () = signal => {
            tracing::info!("quit requested by signal");
            stop.cancel();
        }
    }
}

/// Redraws the tray on every state change; runs on the GTK main thread,
/// where the tray lives, until the state stream ends with the core.
async fn follow_state(mut tray: Tray, mut changes: watch::Receiver<Snapshot>) {
    while changes.changed().await.is_ok() {
        let snapshot = changes.borrow_and_update().clone();
        if let Err(e) = tray.update(&snapshot) {
            tracing::warn!("cannot update the tray: {e}");
        }
    }
}

/// Turns core events into toasts and passes them to the control channel's
/// subscribers (the settings window); runs what the user chooses on a
/// toast; takes a toast away once its item is read.
async fn forward_events(
    core: CoreHandle,
    mut events: mpsc::Receiver<CoreEvent>,
    settings: watch::Receiver<Notifications>,
    snooze_delay: std::time::Duration,
    service: Arc<Service>,
    window: SettingsWindow,
    stop: CancellationToken,
) {
    let mut toaster = Toaster::connect().await;
    // Actions in flight; aborted if this loop ends first.
    let mut actions: JoinSet<(Action, Result<(), ActionError>)> = JoinSet::new();
    // Snoozed toasts; forgotten when this loop ends.
    let mut snoozes = Snoozes::new(snooze_delay);
    // Items of one account spread over several fetches; plain data.
    let mut grouping = Grouping::default();
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            event = events.recv() => match event {
                Some(event) => {
                    service.publish(&event);
                    // Read here (a button) or elsewhere: its toast is stale.
                    if let CoreEvent::ItemRead { account, key } = &event {
                        toaster.withdraw(account, key).await;
                        snoozes.cancel(account, key);
                    }
                    let settings = settings.borrow().clone();
                    announce(&core, &mut toaster, &mut grouping, &event, &settings).await;
                }
                None => return,
            },
            choice = toaster.next_choice() => match choice {
                Choice::Open { account, link } => match core.link_to_open(&account, &link) {
                    Ok(url) => open_link(url.as_str()),
                    Err(refused) => {
                        tracing::warn!(%account, "not opening an item's link: {refused}");
                        let toast = toast::Toast { title: "Vigie did not open this link".to_owned(), body: refused.to_string(), category: None };
                        toaster.show(&toast, false, None).await;
                    }
                },
                Choice::OpenSettings => window.open(),
                Choice::Act { account, key, action } => {
                    let core = core.clone();
                    actions.spawn(async move { (action, core.act(&account, &key, action).await) });
                }
                Choice::Snooze(shown) => snoozes.snooze(shown),
            },
            shown = snoozes.next_due() => match held_for(&core) {
                Some(wait) => snoozes.hold(shown, tokio::time::Instant::now() + wait),
                None => toaster.show_again(shown).await,
            },
            Some(done) = actions.join_next() => {
                if let Ok((action, Err(error))) = done {
                    let toast = toast::action_failed(action, &error);
                    toaster.show(&toast, false, None).await;
                }
            }
        }
    }
}

/// How long to wait before looking again when toasts are held now (pause
/// or quiet hours): until they end, but at most a minute, since a pause can
/// be lifted early.
fn held_for(core: &CoreHandle) -> Option<std::time::Duration> {
    let snapshot = core.snapshot();
    let until = snapshot.paused_until.into_iter().chain(snapshot.quiet_until).max()?;
    let left = until.duration_since(jiff::Timestamp::now());
    let left = std::time::Duration::try_from(left).ok().filter(|d| !d.is_zero())?;
    Some(left.min(std::time::Duration::from_secs(60)))
}

/// Toasts `event`, if it calls for one.
async fn announce(core: &CoreHandle, toaster: &mut Toaster, grouping: &mut Grouping, event: &CoreEvent, settings: &Notifications) {
    let name = match event {
        CoreEvent::NewItems { account, .. } => core
            .snapshot()
            .accounts
            .iter()
            .find(|a| &a.id == account)
            .map_or_else(|| account.to_string(), |a| a.name.clone()),
        _ => String::new(),
    };
    match (grouping.shape(tokio::time::Instant::now(), event, settings.burst_threshold), event) {
        (Some(Shape::Summary(summary)), CoreEvent::NewItems { account, .. }) => {
            let toast = toast::summary(&summary, &name, settings);
            let id = toaster.show_summary(&toast, settings.sound, summary.replaces).await;
            grouping.summary_shown(account, id);
        }
        _ => {
            if let Some(toast) = toast::compose(event, &name, settings) {
                let target = toast::single_item(event, settings).map(|item| Target {
                    account: item.account.clone(),
                    key: item.key.clone(),
                    link: item.link.clone(),
                    actions: core.actions_for(&item.account, &item.key),
                });
                toaster.show(&toast, settings.sound, target).await;
            }
        }
    }
}

/// Opens an item's link where the user reads it (browser, mail client).
fn open_link(link: &str) {
    if let Err(e) = open::that_detached(link) {
        tracing::warn!("could not open the item's link: {e}");
    }
}
