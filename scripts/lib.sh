# Shared by scripts/run and scripts/test: checks what the machine lacks and
# installs it (as root), or prints the exact command to run (as a user).
# Sourced, not executed.

# What building the Tauri app needs (Debian 12 / Ubuntu 22.04+ names).
BUILD_PACKAGES=(
  build-essential pkg-config curl ca-certificates
  libwebkit2gtk-4.1-dev libayatana-appindicator3-dev librsvg2-dev libxdo-dev
  libssl-dev libsoup-3.0-dev libgtk-3-dev libjavascriptcoregtk-4.1-dev
)
# What the tests drive: a virtual X server and tray host, a private D-Bus, the
# real Secret Service, screenshots, Chromium for the UI tests, the Dovecot
# IMAP server the mail tests start, and WebKit's WebDriver for the
# end-to-end test of the app.
TEST_PACKAGES=(
  xvfb xauth dbus dbus-x11 gnome-keyring libsecret-tools imagemagick x11-utils
  trayer python3 python3-dbus python3-gi python3-xlib chromium dovecot-imapd
  webkit2gtk-driver
)
# tauri-driver (WebDriver for Tauri apps, in front of WebKitWebDriver).
TAURI_DRIVER_VERSION="^2"
# cargo-deny, which checks deny.toml (its format changes between 0.x
# releases); 0.20 builds with Rust 1.95.
CARGO_DENY_VERSION="~0.20"
# Vite 8 needs this Node.js or newer.
NODE_MIN=20.19.0

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

is_root() { [ "$(id -u)" = 0 ]; }

# ensure_packages PKG...: installs the missing Debian packages.
ensure_packages() {
  if ! command -v dpkg-query >/dev/null; then
    say "not a Debian-like system: install the Tauri v2 prerequisites for your OS (https://v2.tauri.app/start/prerequisites/) and: $*"
    return 0
  fi
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if is_root; then
    say "installing ${missing[*]}"
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      -o DPkg::Lock::Timeout=600 "${missing[@]}" >/dev/null
  else
    die "missing system packages; run this once, then try again:
  sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]}"
  fi
}

ensure_rust() {
  command -v cargo >/dev/null || die "Rust is not installed; run this once, then try again:
  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y && . \"\$HOME/.cargo/env\""
}

# Puts tauri-driver on PATH, installing it with cargo (into ~/.cargo/bin)
# when it is missing.
ensure_tauri_driver() {
  local bin="${CARGO_HOME:-$HOME/.cargo}/bin"
  case ":$PATH:" in *":$bin:"*) ;; *) export PATH="$PATH:$bin" ;; esac
  command -v tauri-driver >/dev/null && return 0
  say "installing tauri-driver (cargo install)"
  # In a throw-away build folder, not the project's CARGO_TARGET_DIR.
  env -u CARGO_TARGET_DIR cargo install tauri-driver --version "$TAURI_DRIVER_VERSION" --locked --quiet
}

# Puts cargo-deny on PATH, installing it with cargo (into ~/.cargo/bin) when
# it is missing.
ensure_cargo_deny() {
  local bin="${CARGO_HOME:-$HOME/.cargo}/bin"
  case ":$PATH:" in *":$bin:"*) ;; *) export PATH="$PATH:$bin" ;; esac
  command -v cargo-deny >/dev/null && return 0
  say "installing cargo-deny (cargo install)"
  env -u CARGO_TARGET_DIR cargo install cargo-deny --version "$CARGO_DENY_VERSION" --locked --quiet
}

# Checks the dependency tree against deny.toml: licenses, banned crates and
# sources. The crates are fetched first (from the registry, every platform's),
# so the check itself runs offline. Advisories too where a copy of the
# RustSec database is on the machine (see deny.toml); it cannot be fetched
# from the registries, so without one the check says so and goes on.
check_dependencies() {
  cargo fetch --locked --quiet
  cargo deny --offline --log-level error check licenses bans sources
  if compgen -G "${CARGO_HOME:-$HOME/.cargo}/advisory-dbs/advisory-db-*/.git" >/dev/null; then
    cargo deny --offline --log-level error check advisories
  else
    say "advisories not checked: no copy of the RustSec database in ~/.cargo/advisory-dbs (see deny.toml)"
  fi
}

version_ge() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" = "$2" ]; }

# Puts a Node.js >= NODE_MIN on PATH: the system's if new enough, else one
# from the npm registry (the node-linux-* packages carry the binary) under
# .tools/, installed with the system's npm.
ensure_node() {
  if command -v node >/dev/null && version_ge "$(node --version | tr -d v)" "$NODE_MIN"; then
    return 0
  fi
  local tools="$ROOT/.tools/node"
  if [ -x "$tools/bin/node" ]; then
    export PATH="$tools/bin:$PATH"
    return 0
  fi
  command -v npm >/dev/null || ensure_packages nodejs npm
  local arch
  case "$(uname -m)" in
    x86_64) arch=x64 ;;
    aarch64) arch=arm64 ;;
    *) die "Node.js $NODE_MIN or newer is needed; install it for $(uname -m)" ;;
  esac
  say "installing Node.js 22 (from the npm registry) into .tools/"
  local tmp
  tmp=$(mktemp -d)
  npm install --prefix "$tmp" --no-save --no-audit --no-fund "node-linux-$arch@22" >/dev/null
  mkdir -p "$tools"
  cp -r "$tmp/node_modules/node-linux-$arch/." "$tools/"
  rm -rf "$tmp"
  export PATH="$tools/bin:$PATH"
}

# Installs the UI's npm packages when the lock file changed.
ui_packages() {
  if [ ! -f "$ROOT/ui/node_modules/.package-lock.json" ] ||
     [ "$ROOT/ui/package-lock.json" -nt "$ROOT/ui/node_modules/.package-lock.json" ]; then
    say "installing the UI's npm packages"
    npm --prefix "$ROOT/ui" ci --no-audit --no-fund >/dev/null
  fi
}

# ... and builds it into ui/dist, which the app embeds.
build_ui() {
  ui_packages
  say "building the UI"
  npm --prefix "$ROOT/ui" run build >/dev/null
}
