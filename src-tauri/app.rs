//! The tray app: starts the core, the tray and the toasts, opens the settings
//! window on demand, and stops everything cleanly on Quit.
//!
//! Lifecycle: closing the settings window destroys it (an idle app holds no
//! webview) and never quits; only "Quit" does, and then the core is stopped
//! before the process exits. A second launch only opens the settings window
//! of the running instance.

use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use tauri::{AppHandle, Emitter, Manager, RunEvent, Runtime, WebviewUrl, WebviewWindowBuilder};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use vigie::config::{Config, Notifications};
use vigie::pause::PauseChoice;
use vigie::scheduler::Trigger;
use vigie::secrets::SecretStore;
use vigie::settings::Settings;
use vigie::watcher::{Action, ActionError};
use vigie::{Core, CoreEvent, CoreHandle, sources};

use crate::cli::Launch;
use crate::grouping::{Grouping, Shape};
use crate::snooze::Snoozes;
use crate::ipc::{CORE_EVENT, EventView, OVERVIEW_CHANGED, Overview};
use crate::toast::{self, Choice, Target, Toaster};
use crate::tray::{MenuAction, Tray};

/// Label of the settings window (also named in its capability file).
pub const SETTINGS: &str = "settings";

/// What must be stopped at exit, in order (the core, in [`Settings`], last).
struct Running {
    shell: CancellationToken,
    tasks: Vec<tauri::async_runtime::JoinHandle<()>>,
}

#[derive(Default)]
struct RunningSlot(Mutex<Option<Running>>);

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
    let secrets: Arc<dyn SecretStore> = Arc::new(vigie::secrets::KeyringSecrets);
    let mut setup = sources::setup_from_config(&config, launch.paths.state_file.clone(), demo, secrets.clone());
    setup.problems = problems;
    let notifications = config.notifications.clone();
    let start_hidden = config.app.start_hidden;
    let config_file = launch.cli.config.clone().unwrap_or_else(|| launch.paths.config_file.clone());
    let state_file = launch.paths.state_file.clone();
    let demo_asked = launch.cli.demo;
    let snooze_delay = launch.cli.snooze_secs.map_or(crate::snooze::DEFAULT_DELAY, std::time::Duration::from_secs);
    let settings_at_start = launch.cli.settings;

    let app = tauri::Builder::default()
        .plugin(tauri_plugin_single_instance::init(|app, _argv, _cwd| open_settings(app)))
        .plugin(tauri_plugin_notification::init())
        .plugin(tauri_plugin_opener::init())
        // "Start at login" is the OS's own autostart entry (an XDG
        // autostart file, a launch agent, a registry key), read and written
        // through this plugin: no copy of it in our config to drift.
        .plugin(tauri_plugin_autostart::init(tauri_plugin_autostart::MacosLauncher::LaunchAgent, None::<Vec<&str>>))
        .manage(RunningSlot::default())
        .invoke_handler(tauri::generate_handler![
            crate::commands::get_overview,
            crate::commands::refresh_now,
            crate::commands::pause_notifications,
            crate::commands::refresh_account,
            crate::commands::get_settings,
            crate::commands::save_account,
            crate::commands::remove_account,
            crate::commands::set_account_enabled,
            crate::commands::save_notifications,
            crate::commands::save_hints,
            crate::commands::test_connection,
            crate::commands::get_start_options,
            crate::commands::set_start_at_login,
            crate::commands::set_start_hidden,
        ])
        .setup(move |app| {
            let handle = app.handle().clone();
            let (core, events) = tauri::async_runtime::block_on(async { Core::start(setup) })?;
            let settings = Settings::new(core, config_file, state_file, demo_asked, secrets, notifications);
            let core_handle = settings.handle();
            let notifications = settings.notifications();
            app.manage(settings);
            app.manage(core_handle.clone());
            let tray = Tray::create(&handle, &core_handle.snapshot())?;
            let shell = CancellationToken::new();
            // Listening from here on: a quit asked before the task first
            // runs must still stop the core.
            let signal = {
                let runtime = tauri::async_runtime::handle();
                let _inside = runtime.inner().enter();
                crate::cli::shutdown_signal()
            };
            let tasks = vec![
                tauri::async_runtime::spawn(follow_state(handle.clone(), core_handle, tray, shell.clone())),
                tauri::async_runtime::spawn(forward_events(handle.clone(), events, notifications, snooze_delay, shell.clone())),
                tauri::async_runtime::spawn(exit_on_signal(handle.clone(), signal, shell.clone())),
            ];
            handle.on_menu_event(|app, event| on_menu(app, event.id().as_ref()));
            if let Ok(mut slot) = app.state::<RunningSlot>().0.lock() {
                *slot = Some(Running { shell, tasks });
            }
            if !start_hidden || settings_at_start {
                open_settings(&handle);
            }
            tracing::info!("tray app started");
            Ok(())
        })
        .build(tauri::generate_context!());
    let app = match app {
        Ok(app) => app,
        Err(e) => {
            tracing::error!("cannot start the tray app: {e}");
            eprintln!("vigie: cannot start the tray app: {e}");
            return ExitCode::FAILURE;
        }
    };
    // `run_return`, not `run`, which ends the process itself: returning
    // lets the caller's log guard flush the last lines ("stopped").
    let code = app.run_return(|app, event| match event {
        // Closing the last window must not quit a tray app; `code` is set
        // only when we asked to exit (Quit).
        RunEvent::ExitRequested { code: None, api, .. } => api.prevent_exit(),
        RunEvent::Exit => stop(app),
        _ => {}
    });
    u8::try_from(code).map_or(ExitCode::FAILURE, ExitCode::from)
}

fn stop<R: Runtime>(app: &AppHandle<R>) {
    let running = app.state::<RunningSlot>().0.lock().ok().and_then(|mut slot| slot.take());
    let Some(running) = running else { return };
    let settings = app.state::<Settings>();
    tauri::async_runtime::block_on(async move {
        running.shell.cancel();
        for task in running.tasks {
            let _ = task.await;
        }
        settings.stop().await;
    });
    tracing::info!("stopped");
}

fn on_menu<R: Runtime>(app: &AppHandle<R>, id: &str) {
    let Some(action) = MenuAction::from_id(id) else { return };
    let core = app.state::<CoreHandle>().inner().clone();
    let pause = |choice: PauseChoice| {
        let core = core.clone();
        tauri::async_runtime::spawn(async move { core.pause(choice.until(&jiff::ZonedDateTime::now())).await });
    };
    match action {
        MenuAction::OpenSettings => open_settings(app),
        MenuAction::RefreshNow => core.refresh_all(Trigger::Manual),
        MenuAction::PauseHour => pause(PauseChoice::Hour),
        MenuAction::PauseTomorrow => pause(PauseChoice::Tomorrow),
        MenuAction::Resume => pause(PauseChoice::Resume),
        MenuAction::Quit => app.exit(0),
    }
}

/// Shows the settings window, creating it if it is closed.
pub fn open_settings<R: Runtime>(app: &AppHandle<R>) {
    if let Some(window) = app.get_webview_window(SETTINGS) {
        let _ = window.unminimize();
        let _ = window.show();
        let _ = window.set_focus();
        return;
    }
    let built = WebviewWindowBuilder::new(app, SETTINGS, WebviewUrl::App("index.html".into()))
        .title("Vigie — Settings")
        .inner_size(560.0, 620.0)
        .min_inner_size(420.0, 360.0)
        .build();
    if let Err(e) = built {
        tracing::error!("cannot open the settings window: {e}");
    }
}

/// SIGTERM (logout, `kill`) and Ctrl-C quit like the menu's Quit, so the
/// core stops cleanly.
async fn exit_on_signal<R: Runtime>(app: AppHandle<R>, signal: impl Future<Output = ()>, stop: CancellationToken) {
    tokio::select! {
        () = stop.cancelled() => {}
        () = signal => {
            tracing::info!("quit requested by signal");
            app.exit(0);
        }
    }
}

/// Redraws the tray and tells the settings window on every state change.
///
/// The tray is redrawn on the main thread, queued there: from this task,
/// each menu change would block until the main thread ran it, and the main
/// thread, when the app quits, blocks until this task ends (a hang at
/// every quit that fell in a redraw).
async fn follow_state<R: Runtime>(app: AppHandle<R>, core: CoreHandle, tray: Tray<R>, stop: CancellationToken) {
    let tray = Arc::new(Mutex::new(tray));
    let mut changes = core.subscribe();
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            changed = changes.changed() => if changed.is_err() { return },
        }
        let snapshot = changes.borrow_and_update().clone();
        let redraw = {
            let (tray, snapshot) = (Arc::clone(&tray), snapshot.clone());
            move || {
                let Ok(mut tray) = tray.lock() else { return };
                if let Err(e) = tray.update(&snapshot) {
                    tracing::warn!("cannot update the tray: {e}");
                }
            }
        };
        if app.run_on_main_thread(redraw).is_err() {
            // The event loop is gone: the app is quitting.
            return;
        }
        if app.get_webview_window(SETTINGS).is_some() {
            let _ = app.emit_to(SETTINGS, OVERVIEW_CHANGED, Overview::from(&snapshot));
        }
    }
}

/// Turns core events into toasts, and tells the settings window; runs what
/// the user chooses on a toast; takes a toast away once its item is read.
async fn forward_events<R: Runtime>(
    app: AppHandle<R>,
    mut events: mpsc::Receiver<CoreEvent>,
    settings: watch::Receiver<Notifications>,
    snooze_delay: std::time::Duration,
    stop: CancellationToken,
) {
    let core = app.state::<CoreHandle>().inner().clone();
    let mut toaster = Toaster::connect(&app).await;
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
                    // Read here (a button) or elsewhere: its toast is stale.
                    if let CoreEvent::ItemRead { account, key } = &event {
                        toaster.withdraw(account, key).await;
                        snoozes.cancel(account, key);
                    }
                    let settings = settings.borrow().clone();
                    announce(&app, &core, &mut toaster, &mut grouping, &event, &settings).await;
                }
                None => return,
            },
            choice = toaster.next_choice() => match choice {
                Choice::Open { account, link } => match core.link_to_open(&account, &link) {
                    Ok(url) => open_link(&app, url.as_str()),
                    Err(refused) => {
                        tracing::warn!(%account, "not opening an item's link: {refused}");
                        let toast = toast::Toast { title: "Vigie did not open this link".to_owned(), body: refused.to_string(), category: None };
                        toaster.show(&app, &toast, false, None).await;
                    }
                },
                Choice::OpenSettings => open_settings(&app),
                Choice::Act { account, key, action } => {
                    let core = core.clone();
                    actions.spawn(async move { (action, core.act(&account, &key, action).await) });
                }
                Choice::Snooze(shown) => snoozes.snooze(shown),
            },
            shown = snoozes.next_due() => match held_for(&core) {
                Some(wait) => snoozes.hold(shown, tokio::time::Instant::now() + wait),
                None => toaster.show_again(&app, shown).await,
            },
            Some(done) = actions.join_next() => {
                if let Ok((action, Err(error))) = done {
                    let toast = toast::action_failed(action, &error);
                    toaster.show(&app, &toast, false, None).await;
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

/// Toasts `event` (if it calls for one) and tells the settings window.
async fn announce<R: Runtime>(
    app: &AppHandle<R>,
    core: &CoreHandle,
    toaster: &mut Toaster,
    grouping: &mut Grouping,
    event: &CoreEvent,
    settings: &Notifications,
) {
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
            let id = toaster.show_summary(app, &toast, settings.sound, summary.replaces).await;
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
                toaster.show(app, &toast, settings.sound, target).await;
            }
        }
    }
    if app.get_webview_window(SETTINGS).is_some() {
        for view in EventView::from_event(event) {
            let _ = app.emit_to(SETTINGS, CORE_EVENT, view);
        }
    }
}

/// Opens an item's link where the user reads it (browser, mail client).
fn open_link<R: Runtime>(app: &AppHandle<R>, link: &str) {
    use tauri_plugin_opener::OpenerExt;
    if let Err(e) = app.opener().open_url(link, None::<&str>) {
        tracing::warn!("could not open the item's link: {e}");
    }
}
