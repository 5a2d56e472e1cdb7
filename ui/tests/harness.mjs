// Shared test plumbing: a Vite dev server (serving tests/mock.html), a static
// server for the production build (with the app's strict CSP), and Chromium
// driven by playwright-core. Not a test file itself (node --test only picks
// *.test.mjs here).
import { readFile } from 'node:fs/promises';
import { createServer as createHttpServer } from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { createServer as createViteServer } from 'vite';

export const uiDir = fileURLToPath(new URL('..', import.meta.url));
export const distDir = path.join(uiDir, 'dist');

/** The CSP the Tauri config sets for this window. */
export const CSP =
  "default-src 'self'; style-src 'self'; script-src 'self'; img-src 'self' data:";

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

/** Vite dev server on 127.0.0.1, on a port the OS picks. */
export async function startVite() {
  const server = await createViteServer({
    configFile: path.join(uiDir, 'vite.config.ts'),
    root: uiDir,
    logLevel: 'warn',
    clearScreen: false,
    server: { host: '127.0.0.1', port: 0, strictPort: true, hmr: false, watch: null },
    // No dependency pre-bundling: @tauri-apps/api is plain ESM, and a
    // discovery run mid-test would reload the page under the test's feet.
    optimizeDeps: { noDiscovery: true, include: [] },
  });
  await server.listen();
  const address = server.httpServer?.address();
  if (!address || typeof address === 'string') throw new Error('vite: no TCP address');
  return { server, baseUrl: `http://127.0.0.1:${address.port}` };
}

const MIME = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
};

/** Serves ui/dist on 127.0.0.1 with the app's CSP header. */
export async function startDistServer() {
  const server = createHttpServer(async (req, res) => {
    try {
      const urlPath = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
      const file = path.resolve(distDir, '.' + (urlPath === '/' ? '/index.html' : urlPath));
      if (!file.startsWith(distDir + path.sep)) throw new Error('outside dist');
      const body = await readFile(file);
      res.writeHead(200, {
        'content-type': MIME[path.extname(file)] ?? 'application/octet-stream',
        'content-security-policy': CSP,
      });
      res.end(body);
    } catch {
      res.writeHead(404, { 'content-security-policy': CSP }).end('not found');
    }
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(undefined)));
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('dist server: no TCP address');
  return {
    baseUrl: `http://127.0.0.1:${address.port}`,
    close: () => new Promise((resolve) => server.close(() => resolve(undefined))),
  };
}

export function launchBrowser() {
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
}

/**
 * A new context + page on tests/mock.html with the given mock state.
 * Times are shown in UTC so HH:MM assertions are stable.
 */
export async function openMockPage(browser, baseUrl, mock, contextOptions = {}) {
  // `navigatorLanguage` forces what navigator.language says, e.g. the "C"
  // that WebKitGTK reports when LANG is unset.
  const { navigatorLanguage, ...options } = contextOptions;
  const context = await browser.newContext({
    locale: 'en-GB',
    timezoneId: 'UTC',
    ...options,
  });
  const page = await context.newPage();
  if (navigatorLanguage) {
    await page.addInitScript((tag) => {
      Object.defineProperty(Navigator.prototype, 'language', { get: () => tag });
    }, navigatorLanguage);
  }
  page.setDefaultTimeout(10_000);
  const errors = [];
  page.on('pageerror', (error) => errors.push(error));
  await page.addInitScript((state) => {
    window.__VIGIE_MOCK__ = state;
  }, mock);
  await page.goto(`${baseUrl}/tests/mock.html`);
  await page.locator('html[data-mock-ready="true"]').waitFor({ state: 'attached' });
  return { context, page, errors };
}

/**
 * Commands the mock received, in order (event plumbing excluded; so are
 * the settings reads, which the window makes at start and after every change).
 */
export function mockCalls(page) {
  return page.evaluate(() =>
    window.__VIGIE_MOCK__.calls.filter((c) => c.cmd !== 'get_settings' && c.cmd !== 'get_start_options'),
  );
}

/** Waits until the mock has received `cmd` (n times), then returns all calls. */
export async function waitForCall(page, cmd, times = 1) {
  await page.waitForFunction(
    ([name, n]) => window.__VIGIE_MOCK__.calls.filter((c) => c.cmd === name).length >= n,
    [cmd, times],
  );
  return mockCalls(page);
}

/** A mail account form as the core would send it. */
export function mailForm(overrides = {}) {
  return {
    id: 'work-mail',
    name: 'Work inbox',
    source: 'mail',
    enabled: true,
    badge: 'count',
    server: 'imap.example.com',
    username: 'me@example.com',
    pollIntervalSecs: null,
    mail: {
      port: null,
      tls: 'implicit',
      allowPlaintextOnLoopback: false,
      folders: ['INBOX'],
      auth: 'password',
      pinnedFingerprint: null,
      webmailLink: null,
    },
    chat: null,
    tasks: null,
    ...overrides,
  };
}

/** Settings matching sampleOverview(): the three accounts are configured. */
export function sampleSettings(overrides = {}) {
  return {
    configFile: '/home/me/.config/vigie/config.toml',
    accounts: [
      { form: mailForm(), hasSecret: true },
      {
        form: {
          ...mailForm({ id: 'team-chat', name: 'Team chat', source: 'chat', server: 'https://chat.example.com', username: '' }),
          mail: null,
          chat: { userId: null, openIn: 'browser', notifyAllMessages: false, rooms: { random: 'nothing' } },
        },
        hasSecret: true,
      },
      {
        form: {
          ...mailForm({ id: 'chores', name: 'Chores', source: 'tasks', server: 'https://pm.example.com', username: '' }),
          mail: null,
          pollIntervalSecs: 60,
          tasks: { auth: 'token', assignedTasks: 'count', requestsPerMinute: null },
        },
        hasSecret: false,
      },
    ],
    notifications: { previews: true, burstThreshold: 3, sound: true, quietHours: null },
    hints: [{ from: 'mail', senderContains: 'leantime', refresh: 'tasks' }],
    startHidden: true,
    ...overrides,
  };
}

/** Sends overview-changed through the mocked event system. */
export function emitOverview(page, overview) {
  return page.evaluate((payload) => window.__vigieEmit('overview-changed', payload), overview);
}

/** An RFC 3339 timestamp for today (UTC) at hh:mm. */
export function todayAt(hh, mm) {
  const d = new Date();
  d.setUTCHours(hh, mm, 0, 0);
  return d.toISOString();
}

/** A representative overview: one account per source, various states. */
export function sampleOverview(overrides = {}) {
  return {
    demo: false,
    pausedUntil: null,
    quietUntil: null,
    problems: [],
    badge: { count: 7, dot: true, label: '7' },
    accounts: [
      {
        id: 'work-mail',
        name: 'Work inbox',
        source: 'mail',
        state: { kind: 'live', reason: null, until: null },
        unread: 7,
        dot: false,
        lastEventAt: todayAt(9, 5),
        lastError: null,
        notice: null,
      },
      {
        id: 'team-chat',
        name: 'Team chat',
        source: 'chat',
        state: { kind: 'polling', reason: null, until: null },
        unread: null,
        dot: true,
        lastEventAt: null,
        lastError: null,
        notice: null,
      },
      {
        id: 'chores',
        name: 'Chores',
        source: 'tasks',
        state: { kind: 'authFailed', reason: 'invalid token', until: null },
        unread: 3,
        dot: false,
        lastEventAt: null,
        lastError: 'HTTP 401 from server',
        notice: null,
      },
    ],
    ...overrides,
  };
}
