// The settings screens in Chromium against a mocked Tauri core: the first
// run, adding, editing, testing, removing and switching accounts, and the
// notification options. Run with `npm test`.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  launchBrowser,
  mockCalls,
  openMockPage,
  sampleOverview,
  sampleSettings,
  startVite,
  waitForCall,
} from './harness.mjs';

const it = (name, fn) => test(name, { timeout: 60_000 }, fn);

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

async function withPage(mock, body, contextOptions) {
  const { context, page, errors } = await openMockPage(browser, baseUrl, mock, contextOptions);
  try {
    await body(page);
    assert.deepEqual(errors.map(String), [], 'no uncaught errors in the page');
  } finally {
    await context.close();
  }
}

const demoOverview = () =>
  sampleOverview({
    demo: true,
    accounts: sampleOverview().accounts.map((a) => ({ ...a, id: `demo-${a.id}` })),
  });

/** The arguments of the last call of `cmd`. */
async function lastArgs(page, cmd) {
  const calls = await waitForCall(page, cmd);
  return calls.filter((c) => c.cmd === cmd).at(-1).args;
}

const form = (page) => page.locator('form#account-form');
const field = (page, name) => form(page).locator(`[name="${name}"]`);

describe('accounts', () => {
  it('a first run welcomes the user and offers the three sources, and demo accounts have no buttons', async () => {
    await withPage({ overview: demoOverview() }, async (page) => {
      await page.getByRole('heading', { name: 'Welcome to Vigie' }).waitFor();
      const choices = page.locator('[data-source-choice]');
      assert.deepEqual(await choices.allTextContents(), ['Mail (IMAP)', 'Rocket.Chat', 'Leantime']);
      await page.locator('li[data-account-id="demo-work-mail"]').waitFor();
      assert.equal(await page.locator('li[data-account-id="demo-work-mail"] .account-actions').isVisible(), false);
    });
  });

  it('adding a mail account sends the form and the password once, then shows the list with no secret left in the page', async () => {
    await withPage({ overview: demoOverview() }, async (page) => {
      await page.locator('[data-source-choice="mail"]').click();
      await page.getByRole('heading', { name: 'New mail account' }).waitFor();
      assert.equal(await field(page, 'name').evaluate((n) => n === document.activeElement), true, 'the first field has focus');
      await field(page, 'name').fill('Work');
      await field(page, 'server').fill('imap.example.com');
      await field(page, 'username').fill('me@example.com');
      await field(page, 'secret').fill('hunter2');
      assert.equal(await form(page).locator('input[name="mail.folders"][value="INBOX"]').isChecked(), true);
      await page.getByRole('button', { name: 'Save' }).click();

      const args = await lastArgs(page, 'save_account');
      assert.equal(args.secret, 'hunter2');
      assert.equal(args.form.id, '');
      assert.equal(args.form.source, 'mail');
      assert.equal(args.form.server, 'imap.example.com');
      assert.equal(args.form.username, 'me@example.com');
      assert.deepEqual(args.form.mail.folders, ['INBOX']);
      assert.equal(args.form.mail.tls, 'implicit');
      assert.equal(args.form.mail.allowPlaintextOnLoopback, false);

      await page.locator('.notice-line', { hasText: 'Saved.' }).waitFor();
      await form(page).waitFor({ state: 'detached' });
      const values = await page.evaluate(() => Array.from(document.querySelectorAll('input')).map((i) => i.value));
      assert.ok(!values.includes('hunter2'), 'no input holds the password any more');
      assert.ok(!(await page.content()).includes('hunter2'));
    });
  });

  it('fields the core refuses are marked inline, described for screen readers, and the first one gets focus', async () => {
    const failures = {
      save_account: {
        code: 'fields',
        message: 'server: enter only the host name',
        fields: [
          { field: 'server', message: 'enter only the host name, e.g. imap.example.com' },
          { field: 'mail.folders', message: 'choose at least one folder to watch' },
        ],
      },
    };
    await withPage({ overview: demoOverview(), failures }, async (page) => {
      await page.locator('[data-source-choice="mail"]').click();
      await field(page, 'name').fill('Work');
      await field(page, 'server').fill('imaps://imap.example.com');
      await page.getByRole('button', { name: 'Save' }).click();
      const error = form(page).locator('[data-error-for="server"]');
      await error.waitFor();
      assert.equal(await error.textContent(), 'enter only the host name, e.g. imap.example.com');
      const server = field(page, 'server');
      assert.equal(await server.getAttribute('aria-invalid'), 'true');
      assert.ok((await server.getAttribute('aria-describedby')).split(' ').includes(await error.getAttribute('id')));
      assert.equal(await server.evaluate((n) => n === document.activeElement), true);
      assert.equal(await form(page).locator('[data-error-for="mail.folders"]').textContent(), 'choose at least one folder to watch');
      assert.equal(await form(page).locator('.form-alert').textContent(), 'Some fields need a change.');
      assert.equal(await form(page).isVisible(), true, 'the form stays open');
    });
  });

  it('Test connection shows each step, lists the server folders, and pins an untrusted certificate on request', async () => {
    const fingerprint = 'AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89';
    const probe = {
      steps: [
        { kind: 'resolve', outcome: 'ok', detail: 'imap.example.com → 192.0.2.7' },
        { kind: 'connect', outcome: 'ok', detail: 'connected to 192.0.2.7:993' },
        { kind: 'tls', outcome: 'failed', detail: `the certificate is not trusted (SHA-256 ${fingerprint})` },
      ],
      ok: false,
      discovered: { untrustedCertificate: fingerprint, folders: ['INBOX', 'Archive', 'Projects'], rooms: [] },
    };
    await withPage({ overview: demoOverview(), probe }, async (page) => {
      await page.locator('[data-source-choice="mail"]').click();
      await field(page, 'name').fill('Work');
      await field(page, 'server').fill('imap.example.com');
      await field(page, 'username').fill('me');
      await field(page, 'secret').fill('typed-secret');
      await page.locator('[data-action="test-connection"]').click();

      const args = await lastArgs(page, 'test_connection');
      assert.equal(args.secret, 'typed-secret');
      assert.equal(typeof args.probeId, 'number');
      await page.locator('#probe-steps li[data-kind="tls"][data-outcome="failed"]').waitFor();
      assert.deepEqual(await page.locator('#probe-steps li').evaluateAll((ls) => ls.map((l) => l.dataset.outcome)), ['ok', 'ok', 'failed']);
      assert.match(await page.locator('#probe-steps li[data-kind="resolve"]').textContent(), /^NameOK/);
      assert.equal(await form(page).locator('.probe-summary').textContent(), 'The test stopped at the step marked “Failed”.');
      const folders = form(page).locator('input[name="mail.folders"]');
      assert.deepEqual(await folders.evaluateAll((bs) => bs.map((b) => [b.value, b.checked])), [
        ['INBOX', true],
        ['Archive', false],
        ['Projects', false],
      ]);

      await page.getByRole('button', { name: 'Trust this certificate' }).click();
      assert.equal(await field(page, 'mail.pinnedFingerprint').inputValue(), fingerprint);
      await form(page).getByLabel('Projects').check();
      await page.getByRole('button', { name: 'Save' }).click();
      const saved = await lastArgs(page, 'save_account');
      assert.equal(saved.form.mail.pinnedFingerprint, fingerprint);
      assert.deepEqual(saved.form.mail.folders, ['INBOX', 'Projects']);
    });
  });

  it('editing shows the saved settings, never a secret, and keeps the stored one when the field stays empty', async () => {
    await withPage({ overview: sampleOverview(), settings: sampleSettings() }, async (page) => {
      await page.locator('li[data-account-id="work-mail"] [data-action="edit"]').click();
      await page.getByRole('heading', { name: 'Edit “Work inbox”' }).waitFor();
      assert.equal(await field(page, 'server').inputValue(), 'imap.example.com');
      assert.equal(await field(page, 'secret').inputValue(), '');
      assert.match(await form(page).locator('.field-hint').first().textContent(), /Saved in the system keyring/);
      await field(page, 'server').fill('imap2.example.com');
      await page.getByRole('button', { name: 'Save' }).click();
      const args = await lastArgs(page, 'save_account');
      assert.equal(args.form.id, 'work-mail');
      assert.equal(args.form.server, 'imap2.example.com');
      assert.equal(args.secret, null);
    });
  });

  it('Escape closes a form without saving and gives focus back to the account', async () => {
    await withPage({ overview: sampleOverview(), settings: sampleSettings() }, async (page) => {
      await page.locator('li[data-account-id="chores"] [data-action="edit"]').click();
      await field(page, 'pollIntervalSecs').waitFor();
      assert.equal(await field(page, 'pollIntervalSecs').inputValue(), '60');
      await page.keyboard.press('Escape');
      await form(page).waitFor({ state: 'detached' });
      assert.equal(
        await page.locator('li[data-account-id="chores"] [data-action="edit"]').evaluate((n) => n === document.activeElement),
        true,
      );
      assert.ok(!(await mockCalls(page)).some((c) => c.cmd === 'save_account'));
    });
  });

  it('Remove asks first; confirming removes the account, cancelling does nothing', async () => {
    await withPage({ overview: sampleOverview(), settings: sampleSettings() }, async (page) => {
      const chat = page.locator('li[data-account-id="team-chat"]');
      await chat.locator('[data-action="remove"]').click();
      await chat.getByRole('group').waitFor();
      assert.match(await chat.locator('.confirm-text').textContent(), /Remove “Team chat”\? Its password or token is deleted/);
      await chat.getByRole('button', { name: 'Cancel' }).click();
      assert.equal(await chat.locator('.confirm').isVisible(), false);
      assert.ok(!(await mockCalls(page)).some((c) => c.cmd === 'remove_account'));

      await chat.locator('[data-action="remove"]').click();
      await chat.getByRole('button', { name: 'Remove for good' }).click();
      assert.deepEqual(await lastArgs(page, 'remove_account'), { id: 'team-chat' });
      await page.locator('.notice-line', { hasText: '“Team chat” was removed.' }).waitFor();
    });
  });

  it('Retry shows only where a retry helps, and Disable turns the account off', async () => {
    await withPage({ overview: sampleOverview(), settings: sampleSettings() }, async (page) => {
      const chores = page.locator('li[data-account-id="chores"]');
      await chores.locator('[data-action="retry"]').waitFor();
      assert.equal(await page.locator('li[data-account-id="work-mail"] [data-action="retry"]').isVisible(), false);
      assert.equal(await chores.locator('[data-action="retry"]').getAttribute('aria-label'), 'Retry Chores');
      await chores.locator('[data-action="retry"]').click();
      assert.deepEqual(await lastArgs(page, 'refresh_account'), { id: 'chores' });

      await page.locator('li[data-account-id="work-mail"] [data-action="toggle"]').click();
      assert.deepEqual(await lastArgs(page, 'set_account_enabled'), { id: 'work-mail', enabled: false });
    });
  });
});

describe('notifications and rules', () => {
  it('shows the saved options and sends changed ones', async () => {
    await withPage({ overview: sampleOverview(), settings: sampleSettings() }, async (page) => {
      await page.locator('[data-tab="notifications"]').click();
      const previews = page.getByLabel('Show sender and preview (off: private mode)');
      await previews.waitFor();
      assert.equal(await previews.isChecked(), true);
      await previews.uncheck();
      await page.locator('input[name="burstThreshold"]').fill('5');
      await page.getByRole('button', { name: 'Save notification settings' }).click();
      assert.deepEqual(await lastArgs(page, 'save_notifications'), {
        form: { previews: false, burstThreshold: 5, sound: true, quietHours: null },
      });
      await page.locator('#notifications-form .form-status', { hasText: 'Saved.' }).waitFor();
      assert.equal(await page.locator('[data-tab="notifications"]').getAttribute('aria-current'), 'page');
    });
  });

  it('adds a refresh rule next to the saved one and saves both', async () => {
    await withPage({ overview: sampleOverview(), settings: sampleSettings() }, async (page) => {
      await page.locator('[data-tab="notifications"]').click();
      await page.locator('.hint-rule').first().waitFor();
      assert.equal(await page.locator('.hint-rule input').first().inputValue(), 'leantime');
      await page.getByRole('button', { name: 'Add a rule' }).click();
      const added = page.locator('.hint-rule').nth(1);
      assert.equal(await added.locator('input').evaluate((n) => n === document.activeElement), true);
      await added.locator('input').fill('jira');
      await added.getByLabel('Items from').selectOption('chat');
      await page.getByRole('button', { name: 'Save rules' }).click();
      assert.deepEqual(await lastArgs(page, 'save_hints'), {
        hints: [
          { from: 'mail', senderContains: 'leantime', refresh: 'tasks' },
          { from: 'chat', senderContains: 'jira', refresh: 'tasks' },
        ],
      });
    });
  });

  it('in French the forms and choices speak French', async () => {
    await withPage(
      { overview: demoOverview() },
      async (page) => {
        await page.getByRole('heading', { name: 'Bienvenue dans Vigie' }).waitFor();
        assert.deepEqual(await page.locator('[data-source-choice]').allTextContents(), [
          'Courrier (IMAP)',
          'Parole (Rocket.Chat)',
          'Devoirs (Leantime)',
        ]);
        await page.locator('[data-source-choice="tasks"]').click();
        await page.getByRole('heading', { name: 'Nouveau compte Leantime' }).waitFor();
        await page.getByLabel('Adresse de Leantime').waitFor();
        await page.getByRole('button', { name: 'Tester la connexion' }).waitFor();
        await page.getByLabel('Se connecte avec').selectOption('api-key');
        await page.getByLabel("Clé d'API").waitFor();
      },
      { locale: 'fr-FR' },
    );
  });
});

describe('rooms and quiet hours', () => {
  it('a chat account lists its rooms after a test and sends only the rooms given a choice', async () => {
    const probe = {
      steps: [{ kind: 'signIn', outcome: 'ok', detail: 'signed in as alice' }],
      ok: true,
      discovered: {
        untrustedCertificate: null,
        folders: [],
        rooms: [
          { id: 'GENERAL', name: 'general', kind: 'channel' },
          { id: 'r2', name: 'random', kind: 'channel' },
          { id: 'd1', name: 'Bob Stone', kind: 'direct' },
        ],
      },
    };
    await withPage({ overview: sampleOverview(), settings: sampleSettings(), probe }, async (page) => {
      await page.locator('li[data-account-id="team-chat"] [data-action="edit"]').click();
      const random = form(page).getByLabel('random', { exact: true });
      await random.waitFor();
      assert.equal(await random.inputValue(), 'nothing', 'the saved choice shows before any test');
      await page.locator('[data-action="test-connection"]').click();
      await form(page).getByLabel('Bob Stone').waitFor();
      assert.equal(await form(page).locator('select[data-room]').count(), 3);
      assert.equal(await form(page).getByLabel('general', { exact: true }).inputValue(), 'server');
      await form(page).getByLabel('general', { exact: true }).selectOption('mentions');
      await page.getByRole('button', { name: 'Save' }).click();
      const args = await lastArgs(page, 'save_account');
      assert.deepEqual(args.form.chat.rooms, { random: 'nothing', general: 'mentions' });
    });
  });

  it('quiet hours are offered with two times and saved, and the overview says when they end', async () => {
    const overview = sampleOverview({ quietUntil: new Date(Date.UTC(2030, 0, 2, 7, 0)).toISOString() });
    await withPage({ overview, settings: sampleSettings() }, async (page) => {
      await page.locator('.paused-note', { hasText: /^Quiet hours until / }).waitFor();
      await page.locator('[data-tab="notifications"]').click();
      const quiet = page.getByLabel('Quiet hours every day');
      await quiet.waitFor();
      assert.equal(await page.locator('.quiet-times').isVisible(), false);
      await quiet.check();
      await page.getByLabel('From', { exact: true }).fill('21:30');
      await page.getByLabel('To', { exact: true }).fill('06:45');
      await page.getByRole('button', { name: 'Save notification settings' }).click();
      const args = await lastArgs(page, 'save_notifications');
      assert.deepEqual(args.form.quietHours, { from: '21:30', to: '06:45' });
    });
  });
});

describe('starting', () => {
  it('start at login and opening the window at start apply at once, and a refusal is undone and said', async () => {
    const failures = {};
    await withPage({ overview: sampleOverview(), settings: sampleSettings(), failures }, async (page) => {
      await page.locator('[data-tab="notifications"]').click();
      const atLogin = page.getByLabel('Start Vigie when I log in');
      await atLogin.waitFor();
      assert.equal(await atLogin.isChecked(), false);
      await atLogin.check();
      assert.deepEqual(await lastArgs(page, 'set_start_at_login'), { enabled: true });
      const openAtStart = page.getByLabel('Open this window when Vigie starts');
      assert.equal(await openAtStart.isChecked(), false, 'starts hidden by default');
      await openAtStart.check();
      assert.deepEqual(await lastArgs(page, 'set_start_hidden'), { hidden: false });

      await page.evaluate(() => {
        window.__VIGIE_MOCK__.failures.set_start_at_login = { code: 'autostart', message: 'could not change the autostart entry: read-only' };
      });
      await atLogin.click();
      await page.locator('.start-options [role="alert"]', { hasText: 'read-only' }).waitFor();
      assert.equal(await atLogin.isChecked(), true, 'the switch shows what is really in force');
    });
  });
});
