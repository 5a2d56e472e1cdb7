// Test-only: stands in for the Tauri core with mockIPC, then loads the app.
//
// The test configures it before the page loads (Playwright addInitScript) by
// setting window.__VIGIE_MOCK__ = { overview, failures }; the mock records
// every command in window.__VIGIE_MOCK__.calls. Tests send overview-changed
// with window.__vigieEmit(event, payload), which goes through the real
// `emit` of @tauri-apps/api/event and so reaches the app's `listen`.
import { emit } from '@tauri-apps/api/event';
import { mockIPC } from '@tauri-apps/api/mocks';
import type { AccountForm, CommandError, Overview, ProbeReport, SettingsView } from '../src/ipc';

interface MockCall {
  cmd: string;
  args: unknown;
}

interface MockState {
  overview: Overview;
  settings: SettingsView;
  /** What test_connection resolves to; its steps are also sent one by one as probe-progress. */
  probe: ProbeReport;
  /** Commands that reject, with what they reject with. */
  failures: Record<string, CommandError>;
  calls: MockCall[];
  startAtLogin: boolean;
}

declare global {
  interface Window {
    __VIGIE_MOCK__?: Partial<MockState>;
    __vigieEmit: (event: string, payload: unknown) => Promise<void>;
  }
}

const emptyOverview: Overview = {
  demo: false,
  pausedUntil: null,
  quietUntil: null,
  badge: { count: 0, dot: false, label: '' },
  accounts: [],
  problems: [],
};

const emptySettings: SettingsView = {
  configFile: '/home/me/.config/vigie/config.toml',
  accounts: [],
  notifications: { previews: true, burstThreshold: 3, sound: true, quietHours: null },
  hints: [],
  startHidden: true,
};

const okProbe: ProbeReport = {
  steps: [{ kind: 'resolve', outcome: 'ok', detail: 'localhost → 127.0.0.1' }],
  ok: true,
  discovered: { untrustedCertificate: null, folders: [], rooms: [] },
};

const configured = window.__VIGIE_MOCK__ ?? {};
const state: MockState = {
  overview: configured.overview ?? emptyOverview,
  settings: configured.settings ?? emptySettings,
  probe: configured.probe ?? okProbe,
  failures: configured.failures ?? {},
  calls: [],
  startAtLogin: configured.startAtLogin ?? false,
};

/** What a saved form becomes in the mocked config (ids as the core makes them). */
function saved(form: AccountForm): string {
  const id = form.id || form.name.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '') || form.source;
  const entry = { form: { ...form, id }, hasSecret: true };
  const at = state.settings.accounts.findIndex((a) => a.form.id === id);
  if (at >= 0) state.settings.accounts[at] = entry;
  else state.settings.accounts.push(entry);
  return id;
}
window.__VIGIE_MOCK__ = state;

mockIPC(
  (cmd, args) => {
    state.calls.push({ cmd, args: args ?? null });
    const failure = state.failures[cmd];
    if (failure) return Promise.reject(failure);
    switch (cmd) {
      case 'get_overview':
        return state.overview;
      case 'refresh_now':
      case 'refresh_account':
      case 'pause_notifications':
        return null;
      case 'get_settings':
        return structuredClone(state.settings);
      case 'save_account':
        return saved((args as { form: AccountForm }).form);
      case 'remove_account': {
        const id = (args as { id: string }).id;
        state.settings.accounts = state.settings.accounts.filter((a) => a.form.id !== id);
        return null;
      }
      case 'set_account_enabled': {
        const { id, enabled } = args as { id: string; enabled: boolean };
        const entry = state.settings.accounts.find((a) => a.form.id === id);
        if (entry) entry.form.enabled = enabled;
        return null;
      }
      case 'save_notifications':
        state.settings.notifications = (args as { form: SettingsView['notifications'] }).form;
        return null;
      case 'get_start_options':
        return { atLogin: state.startAtLogin, hidden: state.settings.startHidden };
      case 'set_start_at_login':
        state.startAtLogin = (args as { enabled: boolean }).enabled;
        return null;
      case 'set_start_hidden':
        state.settings.startHidden = (args as { hidden: boolean }).hidden;
        return null;
      case 'save_hints':
        state.settings.hints = (args as { hints: SettingsView['hints'] }).hints;
        return null;
      case 'test_connection': {
        const probeId = (args as { probeId: number }).probeId;
        return (async () => {
          for (let n = 1; n <= state.probe.steps.length; n += 1) {
            await emit('probe-progress', { probeId, steps: state.probe.steps.slice(0, n) });
          }
          return state.probe;
        })();
      }
      default:
        return Promise.reject({ code: 'unknown_command', message: `unknown command ${cmd}` });
    }
  },
  { shouldMockEvents: true },
);

window.__vigieEmit = async (event, payload) => {
  if (event === 'overview-changed') state.overview = payload as Overview;
  await emit(event, payload);
};

await import('../src/main');
document.documentElement.dataset['mockReady'] = 'true';
