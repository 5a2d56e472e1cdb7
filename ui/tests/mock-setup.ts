// Test-only: stands in for the Tauri core with mockIPC, then loads the app.
//
// The test configures it before the page loads (Playwright addInitScript) by
// setting window.__VIGIE_MOCK__ = { overview, failures }; the mock records
// every command in window.__VIGIE_MOCK__.calls. Tests send overview-changed
// with window.__vigieEmit(event, payload), which goes through the real
// `emit` of @tauri-apps/api/event and so reaches the app's `listen`.
import { emit } from '@tauri-apps/api/event';
import { mockIPC } from '@tauri-apps/api/mocks';
import type { CommandError, Overview } from '../src/ipc';

interface MockCall {
  cmd: string;
  args: unknown;
}

interface MockState {
  overview: Overview;
  /** Commands that reject, with what they reject with. */
  failures: Record<string, CommandError>;
  calls: MockCall[];
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
  badge: { count: 0, dot: false, label: '' },
  accounts: [],
  problems: [],
};

const configured = window.__VIGIE_MOCK__ ?? {};
const state: MockState = {
  overview: configured.overview ?? emptyOverview,
  failures: configured.failures ?? {},
  calls: [],
};
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
      case 'pause_notifications':
        return null;
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
