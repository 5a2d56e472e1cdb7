//! Logging to the platform's log folder, rotated daily, keeping a week.
//!
//! The filter comes from `VIGIE_LOG` (same syntax as `RUST_LOG`, default
//! `info`), but the D-Bus and HTTP stacks are always capped at `warn`: at
//! `trace` they would log whole messages, and a message to the keyring
//! carries a secret. Our own code never logs secret values (they travel as
//! `SecretString`), which a test checks against the real keyring.

use std::path::Path;

use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::writer::MakeWriterExt;

/// Log files kept.
const KEEP_FILES: usize = 7;
/// Lines queued for the log writer thread before new ones are dropped.
const LOG_QUEUE_LINES: usize = 1_000;

/// Crates that would log message bodies (and so secrets) at debug/trace.
const CAPPED: &[&str] = &["zbus", "zvariant", "hyper", "reqwest", "rustls", "tungstenite", "async_imap"];

/// Starts logging to daily files in `log_dir` (and warnings to stderr).
/// Keep the guard alive until exit: dropping it flushes the file.
pub fn init(log_dir: &Path) -> Result<WorkerGuard, String> {
    init_named(log_dir, "vigie")
}

/// [`init`] for another process of the app, in files of its own named
/// `<name>.<date>.log`, so that two processes never write one file.
pub fn init_named(log_dir: &Path, name: &str) -> Result<WorkerGuard, String> {
    std::fs::create_dir_all(log_dir).map_err(|e| format!("cannot create the log folder {}: {e}", log_dir.display()))?;
    let appender = tracing_appender::rolling::Builder::new()
        .rotation(tracing_appender::rolling::Rotation::DAILY)
        .filename_prefix(name)
        .filename_suffix("log")
        .max_log_files(KEEP_FILES)
        .build(log_dir)
        .map_err(|e| format!("cannot write logs to {}: {e}", log_dir.display()))?;
    // The default queue holds 128,000 lines (4 MB, allocated up front); a
    // notifier logs a few lines a minute.
    let (file, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .buffered_lines_limit(LOG_QUEUE_LINES)
        .finish(appender);
    let writer = file.and(std::io::stderr.with_max_level(tracing::Level::WARN));
    tracing_subscriber::fmt()
        .with_env_filter(filter())
        .with_writer(writer)
        .with_ansi(false)
        .try_init()
        .map_err(|e| format!("logging was already set up: {e}"))?;
    Ok(guard)
}

/// Logging to stderr only, for when the log folder is unusable.
pub fn init_stderr() {
    let _ = tracing_subscriber::fmt().with_env_filter(filter()).with_writer(std::io::stderr).try_init();
}

fn filter() -> EnvFilter {
    filter_for(&std::env::var("VIGIE_LOG").unwrap_or_else(|_| "info".to_owned()))
}

/// The filter for `VIGIE_LOG=wanted`: what a user asked for, with the
/// chatty crates capped. Public so that a test can log exactly what a user
/// at `trace` would.
pub fn filter_for(wanted: &str) -> EnvFilter {
    let mut directives = wanted.to_owned();
    for krate in CAPPED {
        directives.push_str(&format!(",{krate}=warn"));
    }
    EnvFilter::try_new(&directives).unwrap_or_else(|_| EnvFilter::new("info"))
}
