//! Build script: runs tauri-build only for the GUI (`app` feature), so a
//! headless build and `cargo test` need no WebKit, no icons and no UI bundle.

fn main() {
    #[cfg(feature = "app")]
    {
        println!("cargo:rerun-if-changed=src-tauri/capabilities");
        println!("cargo:rerun-if-changed=tauri.conf.json");
        // Our capabilities live under src-tauri/, not the default ./capabilities
        // (tauri.conf.json sits at the repository root); without this, plugin
        // calls are denied at run time while the build stays green.
        let attributes = tauri_build::Attributes::new()
            .capabilities_path_pattern("src-tauri/capabilities/**/*")
            .app_manifest(tauri_build::AppManifest::new().commands(&[
                "get_overview",
                "refresh_now",
                "pause_notifications",
                "refresh_account",
                "get_settings",
                "save_account",
                "remove_account",
                "set_account_enabled",
                "save_notifications",
                "save_hints",
                "test_connection",
                "get_start_options",
                "set_start_at_login",
                "set_start_hidden",
            ]));
        if let Err(e) = tauri_build::try_build(attributes) {
            panic!("tauri-build failed: {e:#}");
        }
    }
}
