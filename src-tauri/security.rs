//! What the webview may do, checked against the files that decide it: the
//! content security policy in `tauri.conf.json` (the window loads the
//! app's own files and talks to nothing but the IPC bridge) and the
//! settings window's capability (exactly the commands its page calls, no
//! remote origin). A command added to the page without its permission, or
//! a permission left behind after a command is gone, fails here rather
//! than at run time.

use std::collections::BTreeSet;
use std::path::Path;

fn read(path: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn json(path: &str) -> serde_json::Value {
    serde_json::from_str(&read(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The CSP's directives, each with its sources.
fn csp() -> Vec<(String, Vec<String>)> {
    let config = json("tauri.conf.json");
    let csp = config["app"]["security"]["csp"].as_str().expect("a CSP string in tauri.conf.json");
    csp.split(';')
        .filter_map(|directive| {
            let mut words = directive.split_whitespace();
            let name = words.next()?.to_owned();
            Some((name, words.map(str::to_owned).collect()))
        })
        .collect()
}

fn sources(directive: &str) -> Vec<String> {
    csp().into_iter().find(|(name, _)| name == directive).map(|(_, sources)| sources).unwrap_or_default()
}

#[test]
fn the_page_runs_only_the_app_s_own_scripts_and_styles() {
    for directive in ["default-src", "script-src", "style-src"] {
        assert_eq!(sources(directive), ["'self'"], "{directive}");
    }
    for directive in ["object-src", "base-uri", "form-action", "frame-src", "frame-ancestors"] {
        assert_eq!(sources(directive), ["'none'"], "{directive}");
    }
    assert_eq!(json("tauri.conf.json")["app"]["security"]["freezePrototype"], true);
}

#[test]
fn the_page_reaches_nothing_outside_the_app_but_the_ipc_bridge() {
    assert_eq!(sources("connect-src"), ["ipc:", "http://ipc.localhost"]);
    assert_eq!(sources("img-src"), ["'self'", "data:"]);
    for (directive, sources) in csp() {
        for source in sources {
            let remote = source == "*" || source.starts_with("https:") || source.contains("unsafe");
            assert!(!remote, "{directive} allows {source}");
            assert!(!source.starts_with("http:") || source == "http://ipc.localhost", "{directive} allows {source}");
        }
    }
    assert_ne!(json("tauri.conf.json")["app"]["withGlobalTauri"], true, "no global __TAURI__ for injected scripts");
}

#[test]
fn the_settings_window_is_granted_exactly_the_commands_its_page_calls() {
    let capability = json("src-tauri/capabilities/settings.json");
    assert_eq!(capability["windows"], serde_json::json!(["settings"]));
    assert!(capability.get("remote").is_none(), "no remote origin gets the IPC: {capability}");
    let granted: BTreeSet<String> =
        capability["permissions"].as_array().expect("permissions").iter().filter_map(|p| p.as_str().map(str::to_owned)).collect();

    // `COMMANDS` in ui/src/ipc.ts lists every command the page invokes.
    let ipc = read("ui/src/ipc.ts");
    let table = ipc.split("export const COMMANDS = {").nth(1).and_then(|rest| rest.split('}').next()).expect("COMMANDS in ipc.ts");
    let called: BTreeSet<String> = table
        .lines()
        .filter_map(|line| line.split('\'').nth(1))
        .map(|command| format!("allow-{}", command.replace('_', "-")))
        .chain(["core:event:allow-listen".to_owned(), "core:event:allow-unlisten".to_owned()])
        .collect();
    assert!(called.len() > 2, "commands found in ipc.ts: {called:?}");
    assert_eq!(granted, called, "granted (left) vs called by the page (right)");
}
