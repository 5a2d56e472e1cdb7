//! `vigie-headless`: the notifier core with JSON lines on stdout, and the
//! keyring helpers, in a binary that links no GUI library, so an idle
//! headless notifier stays around 10 MB instead of the ~55 MB a process with
//! GTK and WebKit mapped costs even when it never opens a window.
//! Same flags as `vigie`; `--headless` is implied.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main(cli::Frontend::HeadlessOnly)
}
