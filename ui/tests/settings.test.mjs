// Behaviour of the settings window, in Chromium, against a mocked Tauri core.
// Run with `npm test` (which typechecks and builds first).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  emitOverview,
  launchBrowser,
  mockCalls,
  openMockPage,
  sampleOverview,
  startDistServer,
  startVite,
  todayAt,
  waitForCall,
} from './harness.mjs';

const TIMEOUT = 60_000;
/** A test with its own time limit (describe's would cover the whole suite). */
const it = (name, fn) => test(name, { timeout: TIMEOUT }, fn);

let vite;
let baseUrl;
let browser;

before(async () => {
  ({ server: vite, baseUrl } = await startVite());
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await vite?.close();
});

/** Opens the mock page, runs `body`, closes the context, and fails on page errors. */
async function withPage(mock, body, contextOptions) {
  const { context, page, errors } = await openMockPage(browser, baseUrl, mock, contextOptions);
  try {
    await body(page);
    assert.deepEqual(errors.map(String), [], 'no uncaught errors in the page');
  } finally {
    await context.close();
  }
}

const item = (page, id) => page.locator(`li[data-account-id="${id}"]`);

describe('settings window (mocked core)', () => {
  it('renders every account with its source, state label and unread count from get_overview', async () => {
    await withPage({ overview: sampleOverview() }, async (page) => {
      await item(page, 'chores').waitFor();
      assert.equal(await page.locator('li[data-account-id]').count(), 3);

      const mail = item(page, 'work-mail');
      assert.equal(await mail.locator('.source').textContent(), 'Mail');
      assert.equal(await mail.locator('.account-name').textContent(), 'Work inbox');
      assert.equal(await mail.locator('.state.state-live .state-text').textContent(), 'Live');
      assert.equal(await mail.locator('.unread-count').textContent(), '7');
      assert.equal(await mail.locator('.unread .sr-only').textContent(), '7 unread');
      assert.match(await mail.locator('.last-event').textContent(), /^Last event: .*09:05$/);

      const chat = item(page, 'team-chat');
      assert.equal(await chat.locator('.source').textContent(), 'Chat');
      assert.equal(await chat.locator('.state.state-polling .state-text').textContent(), 'Polling');
      assert.ok(await chat.locator('.unread-dot').isVisible(), 'dot shown when there is no count');
      assert.ok(!(await chat.locator('.unread-count').isVisible()));
      assert.equal(await chat.locator('.last-event').textContent(), 'No event yet');

      const chores = item(page, 'chores');
      assert.equal(await chores.locator('.source').textContent(), 'Tasks');
      assert.equal(
        await chores.locator('.state.state-authFailed .state-text').textContent(),
        'Authentication failed',
      );
      assert.equal(await chores.locator('.unread-count').textContent(), '3');
      assert.equal(await chores.locator('.reason').textContent(), 'invalid token');
      assert.equal(await chores.locator('.last-error').textContent(), 'Last error: HTTP 401 from server');

      // Header badge, title, and the polite live region around the list.
      assert.equal(await page.locator('h1 .badge-label').textContent(), '7');
      assert.equal(await page.title(), 'Vigie — Settings');
      assert.equal(
        await page.locator('section.accounts[aria-live="polite"] ul.account-list').count(),
        1,
      );
      assert.equal(await page.getByRole('region', { name: 'Accounts' }).count(), 1);
      assert.equal(await page.getByRole('alert').textContent(), '');
      // Not paused: no pause note, no Resume button.
      assert.ok(!(await page.getByRole('button', { name: 'Resume' }).isVisible()));
      assert.ok(!(await page.locator('.paused-note').isVisible()));
    });
  });

  it('shows the demo banner only when demo is true', async () => {
    await withPage({ overview: sampleOverview({ demo: true }) }, async (page) => {
      const banner = page.locator('.demo-banner');
      await banner.waitFor({ state: 'visible' });
      assert.equal(
        await banner.textContent(),
        'Demo mode: no account is configured yet, so Vigie shows built-in demo accounts.',
      );
      // Leaving demo mode (an account got configured) hides it.
      await emitOverview(page, sampleOverview({ demo: false }));
      await banner.waitFor({ state: 'hidden' });
    });

    await withPage({ overview: sampleOverview({ demo: false }) }, async (page) => {
      await item(page, 'work-mail').waitFor();
      assert.ok(!(await page.locator('.demo-banner').isVisible()));
    });
  });

  it('an overview-changed event updates an account state in place, without reload', async () => {
    await withPage({ overview: sampleOverview() }, async (page) => {
      const chat = item(page, 'team-chat');
      await chat.locator('.state-polling').waitFor();
      // Survives only if the page is not reloaded; the node must be kept too.
      await page.evaluate(() => {
        window.__sameDocument = true;
        window.__chatNode = document.querySelector('li[data-account-id="team-chat"]');
      });

      const next = sampleOverview({ badge: { count: 7, dot: true, label: '8' } });
      next.accounts[1] = {
        ...next.accounts[1],
        state: { kind: 'backingOff', reason: 'connection refused', until: todayAt(16, 45) },
        lastError: 'connection refused',
      };
      await emitOverview(page, next);

      await chat.locator('.state.state-backingOff').waitFor();
      assert.match(await chat.locator('.state-text').textContent(), /^Backing off until .*16:45$/);
      assert.equal(await chat.locator('.reason').textContent(), 'connection refused');
      // lastError equal to the reason is not repeated.
      assert.ok(!(await chat.locator('.last-error').isVisible()));
      assert.equal(await chat.locator('.state-polling').count(), 0);
      assert.equal(await page.locator('h1 .badge-label').textContent(), '8');
      assert.ok(
        await page.evaluate(
          () =>
            window.__sameDocument === true &&
            window.__chatNode === document.querySelector('li[data-account-id="team-chat"]'),
        ),
        'same document and same list item',
      );
      // Only get_overview was invoked: the update came from the event.
      assert.deepEqual((await mockCalls(page)).map((c) => c.cmd), ['get_overview']);

      // Accounts that disappear from the overview leave the list.
      await emitOverview(page, { ...next, accounts: next.accounts.slice(0, 1) });
      await chat.waitFor({ state: 'detached' });
      assert.equal(await page.locator('li[data-account-id]').count(), 1);
    });
  });

  it('shows rate-limited with its wait, needs-attention with its reason, and a notice', async () => {
    const overview = sampleOverview();
    overview.accounts[1] = {
      ...overview.accounts[1],
      state: { kind: 'rateLimited', reason: null, until: todayAt(16, 45) },
    };
    overview.accounts[2] = {
      ...overview.accounts[2],
      state: {
        kind: 'needsAttention',
        reason: 'permission missing: Leantime refuses `getAllOpenUserTickets` to this account',
        until: null,
      },
      lastError: null,
      notice: 'This is an API key: Leantime shows it the notifications of its own pseudo-user, not yours.',
    };
    await withPage({ overview }, async (page) => {
      const chat = item(page, 'team-chat');
      await chat.locator('.state.state-rateLimited').waitFor();
      assert.match(
        await chat.locator('.state-text').textContent(),
        /^Rate-limited by the server until .*16:45$/,
      );
      assert.ok(!(await chat.locator('.notice').isVisible()), 'no notice where there is none');

      const chores = item(page, 'chores');
      assert.equal(
        await chores.locator('.state.state-needsAttention .state-text').textContent(),
        'Needs your attention',
      );
      assert.match(await chores.locator('.reason').textContent(), /^permission missing: .*getAllOpenUserTickets/);
      assert.match(await chores.locator('.notice').textContent(), /API key/);
    });
  });

  it('"Refresh now" invokes refresh_now', async () => {
    await withPage({ overview: sampleOverview() }, async (page) => {
      await item(page, 'work-mail').waitFor();
      await page.getByRole('button', { name: 'Refresh now' }).click();
      const calls = await waitForCall(page, 'refresh_now');
      assert.deepEqual(
        calls.map((c) => c.cmd),
        ['get_overview', 'refresh_now'],
      );
    });
  });

  it('"Pause 1 hour" invokes pause_notifications with until "hour"', async () => {
    await withPage({ overview: sampleOverview() }, async (page) => {
      await item(page, 'work-mail').waitFor();
      await page.getByRole('button', { name: 'Pause 1 hour' }).click();
      const calls = await waitForCall(page, 'pause_notifications');
      assert.deepEqual(calls.at(-1), { cmd: 'pause_notifications', args: { until: 'hour' } });

      await page.getByRole('button', { name: 'Pause until tomorrow' }).click();
      const later = await waitForCall(page, 'pause_notifications', 2);
      assert.deepEqual(later.at(-1), { cmd: 'pause_notifications', args: { until: 'tomorrow' } });
      assert.equal(await page.getByRole('alert').textContent(), '');
    });
  });

  it('a rejected command shows its message in the alert area', async () => {
    const failures = {
      pause_notifications: { code: 'core_unavailable', message: 'The Vigie core is not responding.' },
    };
    await withPage({ overview: sampleOverview(), failures }, async (page) => {
      await item(page, 'work-mail').waitFor();
      await page.getByRole('button', { name: 'Pause 1 hour' }).click();
      const alert = page.getByRole('alert').filter({ hasText: 'The Vigie core is not responding.' });
      await alert.waitFor();
      assert.equal(await page.getByRole('alert').textContent(), 'The Vigie core is not responding.');

      // A later successful command clears it.
      await page.getByRole('button', { name: 'Refresh now' }).click();
      await page.waitForFunction(() => document.querySelector('#status')?.textContent === '');
    });
  });

  it('a failing get_overview shows its message in the alert area', async () => {
    const failures = { get_overview: { code: 'not_ready', message: 'Core is still starting.' } };
    await withPage({ overview: sampleOverview(), failures }, async (page) => {
      await page.getByRole('alert').filter({ hasText: 'Core is still starting.' }).waitFor();
      assert.equal(await page.locator('.accounts .placeholder').textContent(), 'Loading…');
      // The next overview-changed still renders the accounts.
      await emitOverview(page, sampleOverview());
      await item(page, 'work-mail').waitFor();
    });
  });

  it('when paused, shows until when and a Resume button that invokes pause_notifications "resume"', async () => {
    await withPage({ overview: sampleOverview({ pausedUntil: todayAt(18, 0) }) }, async (page) => {
      const note = page.locator('.paused-note');
      await note.waitFor({ state: 'visible' });
      assert.match(await note.textContent(), /^Notifications paused until .*18:00$/);
      const resume = page.getByRole('button', { name: 'Resume' });
      await resume.focus();
      await page.keyboard.press('Enter'); // keyboard works on real buttons
      const calls = await waitForCall(page, 'pause_notifications');
      assert.deepEqual(calls.at(-1), { cmd: 'pause_notifications', args: { until: 'resume' } });

      await emitOverview(page, sampleOverview({ pausedUntil: null }));
      await note.waitFor({ state: 'hidden' });
      await resume.waitFor({ state: 'hidden' });
      // Focus moved to a visible button rather than lost.
      assert.equal(
        await page.evaluate(() => document.activeElement?.getAttribute('data-action')),
        'hour',
      );
    });
  });

  it('French system language: labels are French', async () => {
    await withPage(
      { overview: sampleOverview({ demo: true, pausedUntil: todayAt(18, 0) }) },
      async (page) => {
        await item(page, 'chores').waitFor();
        assert.equal(await item(page, 'work-mail').locator('.source').textContent(), 'Courrier');
        assert.equal(await item(page, 'team-chat').locator('.source').textContent(), 'Parole');
        assert.equal(await item(page, 'chores').locator('.source').textContent(), 'Devoirs');
        assert.equal(await item(page, 'work-mail').locator('.state-text').textContent(), 'En direct');
        assert.equal(
          await item(page, 'chores').locator('.state-text').textContent(),
          "Échec de l'authentification",
        );
        assert.equal(await item(page, 'work-mail').locator('.unread .sr-only').textContent(), '7 non lus');
        assert.equal(
          await page.locator('.demo-banner').textContent(),
          "Mode démo : aucun compte n'est encore configuré, Vigie affiche des comptes de démonstration.",
        );
        assert.match(await page.locator('.paused-note').textContent(), /^Notifications en pause jusqu'à 18:00$/);
        assert.equal(await page.getByRole('button', { name: 'Actualiser maintenant' }).count(), 1);
        assert.equal(await page.title(), 'Vigie — Réglages');
        assert.equal(await page.locator('html').getAttribute('lang'), 'fr');
        assert.equal(await page.locator('#lang-select').inputValue(), 'auto');
      },
      { locale: 'fr-FR' },
    );
  });

  it("shows problems not tied to an account (an invalid config file) in the core's own words", async () => {
    const message = 'the config file /home/me/.config/vigie/config.toml is not valid: TOML parse error at line 4, column 1';
    await withPage({ overview: sampleOverview({ problems: [message] }) }, async (page) => {
      await page.locator('.problem').waitFor();
      assert.equal(await page.locator('.problem').textContent(), message);
      await emitOverview(page, sampleOverview({ problems: [] }));
      await page.locator('.problems').waitFor({ state: 'hidden' });
    });
  });

  it('a POSIX "C" system locale (WebKitGTK without LANG) falls back to English without an error', async () => {
    await withPage(
      { overview: sampleOverview() },
      async (page) => {
        await item(page, 'work-mail').waitFor();
        assert.equal(await item(page, 'work-mail').locator('.source').textContent(), 'Mail');
        assert.match(await item(page, 'work-mail').locator('.last-event').textContent(), /^Last event: /);
        assert.equal((await page.locator('#status').textContent()).trim(), '');
      },
      { navigatorLanguage: 'C' },
    );
  });

  it('the language switch overrides the system language and is remembered', async () => {
    await withPage({ overview: sampleOverview() }, async (page) => {
      await item(page, 'work-mail').waitFor();
      assert.equal(await item(page, 'work-mail').locator('.source').textContent(), 'Mail');

      await page.getByLabel('Language').selectOption('fr');
      await item(page, 'work-mail').locator('.source', { hasText: 'Courrier' }).waitFor();
      assert.equal(await item(page, 'team-chat').locator('.source').textContent(), 'Parole');
      assert.equal(await item(page, 'chores').locator('.source').textContent(), 'Devoirs');
      assert.equal(await page.title(), 'Vigie — Réglages');

      // Remembered across a reload.
      await page.reload();
      await item(page, 'work-mail').locator('.source', { hasText: 'Courrier' }).waitFor();
      assert.equal(await page.getByLabel('Langue').inputValue(), 'fr');

      // "Automatic" goes back to the system language (en-GB here).
      await page.getByLabel('Langue').selectOption('auto');
      await item(page, 'work-mail').locator('.source', { hasText: 'Mail' }).waitFor();
      assert.equal(await page.evaluate(() => localStorage.getItem('vigie.lang')), null);
    });
  });
});

describe('production build', () => {
  it('renders under the strict CSP without any violation', async () => {
    const dist = await startDistServer();
    const context = await browser.newContext({ locale: 'en-GB', timezoneId: 'UTC', colorScheme: 'light' });
    try {
      const page = await context.newPage();
      page.setDefaultTimeout(10_000);
      const errors = [];
      const cspConsole = [];
      page.on('pageerror', (error) => errors.push(String(error)));
      page.on('console', (msg) => {
        if (/Content Security Policy/i.test(msg.text())) cspConsole.push(msg.text());
      });
      // A minimal stand-in for what Tauri injects (mockIPC is not bundled in
      // the build). Init scripts are not subject to the page's CSP.
      await page.addInitScript((overview) => {
        window.__cspViolations = [];
        document.addEventListener('securitypolicyviolation', (e) => {
          window.__cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`);
        });
        let nextId = 1;
        const callbacks = new Map();
        window.__TAURI_INTERNALS__ = {
          transformCallback(cb) {
            const id = nextId++;
            callbacks.set(id, cb);
            return id;
          },
          unregisterCallback(id) {
            callbacks.delete(id);
          },
          async invoke(cmd, args) {
            if (cmd === 'get_overview') return overview;
            if (cmd === 'plugin:event|listen') return args.handler;
            return null;
          },
        };
        window.__TAURI_EVENT_PLUGIN_INTERNALS__ = { unregisterListener() {} };
      }, sampleOverview({ demo: true }));

      const response = await page.goto(`${dist.baseUrl}/`);
      assert.match(response.headers()['content-security-policy'], /script-src 'self'/);
      await page.locator('li[data-account-id="chores"]').waitFor();
      await page.locator('.demo-banner').waitFor({ state: 'visible' });

      // The stylesheet loaded: the live marker has its colour.
      const liveColour = await page
        .locator('li[data-account-id="work-mail"] .state-live')
        .evaluate((node) => getComputedStyle(node).color);
      assert.equal(liveColour, 'rgb(30, 138, 60)');
      // Nothing the test pages serve ended up in the build.
      assert.equal((await page.request.get(`${dist.baseUrl}/tests/mock.html`)).status(), 404);

      assert.deepEqual(await page.evaluate(() => window.__cspViolations), []);
      assert.deepEqual(cspConsole, []);
      assert.deepEqual(errors, []);

      // Control: the CSP is really enforced here, so the empty list means something.
      await page.evaluate(() => {
        const style = document.createElement('style');
        style.textContent = 'body { color: red }';
        document.head.append(style);
      });
      await page.waitForFunction(() => window.__cspViolations.length > 0);
      assert.match((await page.evaluate(() => window.__cspViolations))[0], /^style-src/);
    } finally {
      await context.close();
      await dist.close();
    }
  });
});
