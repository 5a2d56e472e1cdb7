// The add/edit account screen: one form per source, inline validation from
// the core's field errors, and "Test connection" with its steps as they
// arrive.
//
// The secret field is never filled from saved data (the core never sends a
// secret back) and is cleared once the form is submitted, so the webview
// holds no secret after a save.
import type {
  AccountEntry,
  AccountForm,
  BadgeMode,
  FieldError,
  MailForm,
  OpenIn,
  ProbeReport,
  ProbeStep,
  RoomChoice,
  RoomPreference,
  Source,
  TasksAuth,
  TlsMode,
} from './ipc';
import { el, Labels, setAttr, setHidden, setText, uniqueId } from './dom';
import type { Messages } from './i18n';

export interface FormHandlers {
  /** Saves; rejects with the core's error (field errors included). */
  save: (form: AccountForm, secret: string | null) => Promise<void>;
  /** Runs the probe; steps also arrive through `showProgress`. */
  test: (form: AccountForm, secret: string | null) => Promise<ProbeReport>;
  cancel: () => void;
  /** The text for a rejected call. */
  describe: (error: unknown) => { message: string; fields: FieldError[] };
}

export interface FormScreen {
  root: HTMLFormElement;
  setLanguage: (m: Messages) => void;
  /** The steps of the running probe so far. */
  showProgress: (steps: ProbeStep[]) => void;
  focusFirst: () => void;
}

interface Field<E extends HTMLElement> {
  wrap: HTMLElement;
  input: E;
  error: HTMLElement;
}

const DEFAULT_FORMS: Record<Source, () => AccountForm> = {
  mail: () => ({
    ...base('mail'),
    mail: {
      port: null,
      tls: 'implicit',
      allowPlaintextOnLoopback: false,
      folders: ['INBOX'],
      auth: 'password',
      pinnedFingerprint: null,
      webmailLink: null,
    },
  }),
  chat: () => ({ ...base('chat'), chat: { userId: null, openIn: 'browser', notifyAllMessages: false, rooms: {} } }),
  tasks: () => ({
    ...base('tasks'),
    pollIntervalSecs: 60,
    tasks: { auth: 'token', assignedTasks: 'count', requestsPerMinute: null },
  }),
};

function base(source: Source): AccountForm {
  return {
    id: '',
    name: '',
    source,
    enabled: true,
    badge: 'count',
    server: '',
    username: '',
    pollIntervalSecs: null,
    mail: null,
    chat: null,
    tasks: null,
  };
}

const BADGE_MODES: BadgeMode[] = ['count', 'dot', 'ignore'];
const TLS_MODES: TlsMode[] = ['implicit', 'starttls', 'none'];
const OPEN_IN: OpenIn[] = ['browser', 'desktop-app'];
const TASKS_AUTH: TasksAuth[] = ['token', 'api-key'];

export function createAccountForm(
  entry: AccountEntry | null,
  source: Source,
  handlers: FormHandlers,
  m: Messages,
): FormScreen {
  const original: AccountForm = entry ? structuredClone(entry.form) : DEFAULT_FORMS[source]();
  const labels = new Labels<Messages>();
  const fields = new Map<string, Field<HTMLElement>>();
  let current = m;

  function field<E extends HTMLInputElement | HTMLSelectElement>(
    name: string,
    input: E,
    label: (m: Messages) => string,
    hint?: (m: Messages) => string,
  ): Field<E> {
    const id = uniqueId('f');
    input.id = id;
    input.setAttribute('name', name);
    const labelEl = el('label', { attrs: { for: id } });
    labels.text(labelEl, label);
    const error = el('p', { class: 'field-error', hidden: true, attrs: { 'data-error-for': name, id: `${id}-error` } });
    const described = [error.id];
    const wrap = el('div', { class: 'field' });
    const isCheck = input instanceof HTMLInputElement && input.type === 'checkbox';
    if (isCheck) {
      wrap.classList.add('field-check');
      wrap.append(input, labelEl);
    } else {
      wrap.append(labelEl, input);
    }
    if (hint) {
      const hintEl = el('p', { class: 'field-hint', attrs: { id: `${id}-hint` } });
      labels.text(hintEl, hint);
      described.unshift(hintEl.id);
      wrap.append(hintEl);
    }
    wrap.append(error);
    input.setAttribute('aria-describedby', described.join(' '));
    const made = { wrap, input, error };
    fields.set(name, made);
    return made;
  }

  const text = (type = 'text', attrs: Record<string, string> = {}): HTMLInputElement =>
    el('input', { attrs: { type, autocomplete: 'off', spellcheck: 'false', ...attrs } });
  function select<T extends string>(values: T[], pick: (m: Messages) => Record<T, string>, value: T): HTMLSelectElement {
    const node = el('select');
    for (const v of values) {
      const option = el('option', { attrs: { value: v } });
      labels.text(option, (m) => pick(m)[v]);
      node.append(option);
    }
    node.value = value;
    return node;
  }
  const check = (on: boolean): HTMLInputElement => {
    const node = el('input', { attrs: { type: 'checkbox' } });
    node.checked = on;
    return node;
  };

  // Common fields.
  const title = el('h2', { attrs: { id: uniqueId('form-title') } });
  labels.text(title, (m) => (entry ? m.ui.formTitleEdit(original.name) : m.ui.formTitleNew[source]));
  const alert = el('div', { class: 'form-alert', attrs: { role: 'alert' } });
  const status = el('p', { class: 'form-status', attrs: { role: 'status' } });

  const name = field('name', text(), (m) => m.ui.fields.name);
  name.input.value = original.name;
  const server = field('server', text('text', { inputmode: 'url' }), (m) => m.ui.fields.server[source]);
  labels.attr(server.input, 'placeholder', (m) => m.ui.fields.serverPlaceholder[source]);
  server.input.value = original.server;
  const username = field('username', text(), (m) => m.ui.fields.username);
  username.input.value = original.username;
  const secret = field(
    'secret',
    text('password', { autocomplete: 'new-password' }),
    (m) =>
      source === 'tasks' && tasksAuth.input.value === 'api-key' ? m.ui.fields.secretApiKey : m.ui.fields.secret[source],
    (m) => (entry?.hasSecret ? m.ui.fields.secretKept : m.ui.fields.secretNew),
  );
  const enabled = field('enabled', check(original.enabled), (m) => m.ui.fields.enabled);
  const badge = field('badge', select(BADGE_MODES, (m) => m.ui.badgeModes, original.badge), (m) => m.ui.fields.badge);

  // Mail.
  const mail: MailForm = original.mail ?? (DEFAULT_FORMS.mail().mail as MailForm);
  const port = field(
    'mail.port',
    text('number', { min: '1', max: '65535', inputmode: 'numeric' }),
    (m) => m.ui.fields.port,
    (m) => m.ui.fields.portDefault(tls.input.value === 'implicit' ? 993 : 143),
  );
  port.input.value = mail.port === null ? '' : String(mail.port);
  const tls = field('mail.tls', select(TLS_MODES, (m) => m.ui.tlsModes, mail.tls), (m) => m.ui.fields.tls);
  const plaintext = field('mail.allowPlaintextOnLoopback', check(mail.allowPlaintextOnLoopback), (m) => m.ui.fields.allowPlaintext);
  const pinned = field('mail.pinnedFingerprint', text(), (m) => m.ui.fields.pinned);
  pinned.input.value = mail.pinnedFingerprint ?? '';
  const webmail = field('mail.webmailLink', text('url'), (m) => m.ui.fields.webmail);
  webmail.input.value = mail.webmailLink ?? '';

  // The folder picker: the chosen folders, and after a test every folder
  // the server has.
  const foldersLegend = el('legend');
  labels.text(foldersLegend, (m) => m.ui.fields.folders);
  const folderList = el('ul', { class: 'folder-list' });
  const foldersHint = el('p', { class: 'field-hint', attrs: { id: uniqueId('folders-hint') } });
  labels.text(foldersHint, (m) => m.ui.fields.foldersHint);
  const foldersError = el('p', { class: 'field-error', hidden: true, attrs: { 'data-error-for': 'mail.folders', id: uniqueId('folders-error') } });
  const otherFolder = text();
  const otherLabel = el('label', { attrs: { for: (otherFolder.id = uniqueId('f')) } });
  labels.text(otherLabel, (m) => m.ui.fields.addFolder);
  const addFolderButton = el('button', { class: 'btn btn-small', text: '+', attrs: { type: 'button' } });
  labels.attr(addFolderButton, 'aria-label', (m) => m.ui.fields.addFolder);
  const folders = el(
    'fieldset',
    { class: 'field folders', attrs: { 'aria-describedby': `${foldersHint.id} ${foldersError.id}` } },
    foldersLegend,
    folderList,
    el('div', { class: 'folder-other' }, otherLabel, otherFolder, addFolderButton),
    foldersHint,
    foldersError,
  );
  function addFolder(folder: string, checked: boolean): void {
    const existing = folderList.querySelector<HTMLInputElement>(`input[value="${CSS.escape(folder)}"]`);
    if (existing) {
      if (checked) existing.checked = true;
      return;
    }
    const box = el('input', { attrs: { type: 'checkbox', name: 'mail.folders', value: folder, id: uniqueId('folder') } });
    box.checked = checked;
    folderList.append(el('li', {}, box, el('label', { text: folder, attrs: { for: box.id } })));
  }
  for (const folder of mail.folders) addFolder(folder, true);
  addFolderButton.addEventListener('click', () => {
    const folder = otherFolder.value.trim();
    if (folder !== '') addFolder(folder, true);
    otherFolder.value = '';
    otherFolder.focus();
  });
  otherFolder.addEventListener('keydown', (event) => {
    if (event.key === 'Enter') {
      event.preventDefault();
      addFolderButton.click();
    }
  });

  // Chat.
  const chat = original.chat ?? { userId: null, openIn: 'browser' as OpenIn, notifyAllMessages: false, rooms: {} };
  const userId = field('chat.userId', text(), (m) => m.ui.fields.userId);
  userId.input.value = chat.userId ?? '';
  const openIn = field('chat.openIn', select(OPEN_IN, (m) => m.ui.openInModes, chat.openIn), (m) => m.ui.fields.openIn);
  const notifyAll = field('chat.notifyAllMessages', check(chat.notifyAllMessages), (m) => m.ui.fields.notifyAll);

  // Per-room choices: the rooms chosen before, and after a test every room
  // the user is in.
  const roomsLegend = el('legend');
  labels.text(roomsLegend, (m) => m.ui.fields.rooms);
  const roomsHint = el('p', { class: 'field-hint', attrs: { id: uniqueId('rooms-hint') } });
  labels.text(roomsHint, (m) => m.ui.fields.roomsHint);
  const roomList = el('ul', { class: 'room-list' });
  const rooms = el(
    'fieldset',
    { class: 'field rooms', attrs: { 'aria-describedby': roomsHint.id } },
    roomsLegend,
    roomsHint,
    roomList,
  );
  const ROOM_CHOICES: (RoomPreference | 'server')[] = ['server', 'all', 'mentions', 'nothing'];
  function addRoom(room: Pick<RoomChoice, 'name'>, choice: RoomPreference | 'server'): void {
    if (roomList.querySelector(`select[data-room="${CSS.escape(room.name)}"]`)) return;
    const id = uniqueId('room');
    const pick = select(ROOM_CHOICES, (m) => m.ui.roomChoices, choice);
    pick.id = id;
    pick.setAttribute('data-room', room.name);
    const label = el('label', { text: room.name, attrs: { for: id } });
    roomList.append(el('li', { class: 'room' }, label, pick));
    labels.apply(current);
  }
  for (const [name, choice] of Object.entries(chat.rooms)) addRoom({ name }, choice);

  // Tasks.
  const tasks = original.tasks ?? { auth: 'token' as TasksAuth, assignedTasks: 'count' as BadgeMode, requestsPerMinute: null };
  const tasksAuth = field('tasks.auth', select(TASKS_AUTH, (m) => m.ui.tasksAuthModes, tasks.auth), (m) => m.ui.fields.tasksAuth);
  const pollInterval = field('pollIntervalSecs', text('number', { min: '10', inputmode: 'numeric' }), (m) => m.ui.fields.pollInterval);
  pollInterval.input.value = original.pollIntervalSecs === null ? '60' : String(original.pollIntervalSecs);
  const assigned = field(
    'tasks.assignedTasks',
    select(BADGE_MODES, (m) => m.ui.badgeModes, tasks.assignedTasks),
    (m) => m.ui.fields.assignedTasks,
  );
  const rate = field('tasks.requestsPerMinute', text('number', { min: '1', inputmode: 'numeric' }), (m) => m.ui.fields.requestsPerMinute);
  rate.input.value = tasks.requestsPerMinute === null ? '' : String(tasks.requestsPerMinute);

  // The probe's report.
  const probeHeading = el('h3', { attrs: { id: uniqueId('probe-heading') } });
  labels.text(probeHeading, (m) => m.ui.probeHeading);
  const steps = el('ol', { class: 'probe-steps', attrs: { id: 'probe-steps' } });
  const probeSummary = el('p', { class: 'probe-summary' });
  const untrustedText = el('p');
  const trustButton = el('button', { class: 'btn', attrs: { type: 'button', 'data-action': 'trust-certificate' } });
  labels.text(trustButton, (m) => m.ui.trustCertificate);
  const untrusted = el('div', { class: 'untrusted', hidden: true }, untrustedText, trustButton);
  const probe = el(
    'section',
    { class: 'probe', hidden: true, attrs: { 'aria-labelledby': probeHeading.id, 'aria-live': 'polite' } },
    probeHeading,
    steps,
    probeSummary,
    untrusted,
  );
  let fingerprint: string | null = null;
  trustButton.addEventListener('click', () => {
    if (fingerprint === null) return;
    pinned.input.value = fingerprint;
    setHidden(untrusted, true);
    pinned.input.focus();
  });

  // Buttons.
  const testButton = el('button', { class: 'btn', attrs: { type: 'button', 'data-action': 'test-connection' } });
  const saveButton = el('button', { class: 'btn btn-primary', attrs: { type: 'submit', 'data-action': 'save-account' } });
  const cancelButton = el('button', { class: 'btn', attrs: { type: 'button', 'data-action': 'cancel' } });
  labels.text(cancelButton, (m) => m.ui.cancel);

  const parts: Node[] = [title, alert, name.wrap, server.wrap];
  if (source === 'mail') parts.push(username.wrap);
  parts.push(secret.wrap);
  if (source === 'mail') {
    const security = el('div', { class: 'field-row' }, tls.wrap, port.wrap);
    parts.push(security, plaintext.wrap, folders, pinned.wrap, webmail.wrap);
  } else if (source === 'chat') {
    parts.push(userId.wrap, openIn.wrap, notifyAll.wrap, rooms);
  } else {
    parts.push(tasksAuth.wrap, pollInterval.wrap, assigned.wrap, rate.wrap);
  }
  parts.push(
    el('div', { class: 'field-row' }, badge.wrap, enabled.wrap),
    probe,
    status,
    el('div', { class: 'form-buttons' }, testButton, saveButton, cancelButton),
  );
  const root = el(
    'form',
    { class: 'account-form', attrs: { id: 'account-form', novalidate: '', 'aria-labelledby': title.id, 'data-source': source } },
    ...parts,
  );

  const showPlaintext = (): void => setHidden(plaintext.wrap, tls.input.value !== 'none');
  showPlaintext();
  tls.input.addEventListener('change', () => {
    showPlaintext();
    labels.apply(current);
  });
  tasksAuth.input.addEventListener('change', () => labels.apply(current));

  const optional = (value: string): string | null => (value.trim() === '' ? null : value.trim());
  const number = (value: string): number | null => {
    const n = Number.parseInt(value, 10);
    return Number.isFinite(n) ? n : null;
  };

  function read(): AccountForm {
    const form: AccountForm = {
      ...original,
      name: name.input.value.trim(),
      server: server.input.value.trim(),
      username: source === 'mail' ? username.input.value.trim() : original.username,
      enabled: enabled.input.checked,
      badge: badge.input.value as BadgeMode,
    };
    if (source === 'mail') {
      form.mail = {
        ...mail,
        port: number(port.input.value),
        tls: tls.input.value as TlsMode,
        allowPlaintextOnLoopback: tls.input.value === 'none' && plaintext.input.checked,
        folders: Array.from(folderList.querySelectorAll<HTMLInputElement>('input:checked')).map((b) => b.value),
        pinnedFingerprint: optional(pinned.input.value),
        webmailLink: optional(webmail.input.value),
      };
    } else if (source === 'chat') {
      const chosen: Record<string, RoomPreference> = {};
      for (const pick of Array.from(roomList.querySelectorAll<HTMLSelectElement>('select[data-room]'))) {
        const room = pick.getAttribute('data-room');
        if (room && pick.value !== 'server') chosen[room] = pick.value as RoomPreference;
      }
      form.chat = {
        userId: optional(userId.input.value),
        openIn: openIn.input.value as OpenIn,
        notifyAllMessages: notifyAll.input.checked,
        rooms: chosen,
      };
    } else {
      form.pollIntervalSecs = number(pollInterval.input.value);
      form.tasks = {
        auth: tasksAuth.input.value as TasksAuth,
        assignedTasks: assigned.input.value as BadgeMode,
        requestsPerMinute: number(rate.input.value),
      };
    }
    return form;
  }

  const typedSecret = (): string | null => (secret.input.value === '' ? null : secret.input.value);

  function clearErrors(): void {
    setText(alert, '');
    for (const f of fields.values()) {
      setText(f.error, '');
      setHidden(f.error, true);
      setAttr(f.input, 'aria-invalid', null);
    }
    setText(foldersError, '');
    setHidden(foldersError, true);
  }

  function showErrors(message: string, errors: FieldError[]): void {
    let first: HTMLElement | null = null;
    for (const error of errors) {
      if (error.field === 'mail.folders') {
        setText(foldersError, error.message);
        setHidden(foldersError, false);
        first ??= folderList.querySelector('input') ?? otherFolder;
        continue;
      }
      const f = fields.get(error.field);
      if (!f) continue;
      setText(f.error, error.message);
      setHidden(f.error, false);
      setAttr(f.input, 'aria-invalid', 'true');
      first ??= f.input;
    }
    setText(alert, errors.length > 0 ? current.ui.fixFields : message);
    first?.focus();
  }

  function renderSteps(list: ProbeStep[]): void {
    setHidden(probe, false);
    const m = current;
    steps.replaceChildren(
      ...list.map((step) =>
        el(
          'li',
          { class: `step step-${step.outcome}`, attrs: { 'data-kind': step.kind, 'data-outcome': step.outcome } },
          el('span', { class: 'step-name', text: m.ui.stepNames[step.kind] }),
          el('span', { class: 'step-outcome', text: m.ui.outcomes[step.outcome] }),
          el('span', { class: 'step-detail', text: step.detail }),
        ),
      ),
    );
  }

  let busy = false;
  function setBusy(button: HTMLButtonElement | null): void {
    busy = button !== null;
    for (const b of [testButton, saveButton]) {
      setAttr(b, 'aria-disabled', busy ? 'true' : null);
      b.classList.toggle('is-busy', b === button);
    }
    relabelButtons();
  }
  let testing = false;
  let saving = false;
  function relabelButtons(): void {
    setText(testButton, testing ? current.ui.testing : current.ui.testConnection);
    setText(saveButton, saving ? current.ui.saving : current.ui.save);
  }

  testButton.addEventListener('click', () => {
    if (busy) return;
    void (async () => {
      clearErrors();
      setText(status, '');
      testing = true;
      setBusy(testButton);
      setHidden(untrusted, true);
      renderSteps([]);
      setText(probeSummary, '');
      try {
        const report = await handlers.test(read(), typedSecret());
        renderSteps(report.steps);
        setText(probeSummary, report.ok ? current.ui.probeOk : current.ui.probeFailed);
        for (const folder of report.discovered.folders) addFolder(folder, false);
        for (const room of report.discovered.rooms) addRoom(room, 'server');
        fingerprint = report.discovered.untrustedCertificate;
        if (fingerprint !== null) {
          setText(untrustedText, current.ui.untrusted(fingerprint));
          setHidden(untrusted, false);
        }
      } catch (error) {
        const { message, fields: errors } = handlers.describe(error);
        setHidden(probe, true);
        showErrors(message, errors);
      } finally {
        testing = false;
        setBusy(null);
      }
    })();
  });

  root.addEventListener('submit', (event) => {
    event.preventDefault();
    if (busy) return;
    void (async () => {
      clearErrors();
      saving = true;
      setBusy(saveButton);
      try {
        await handlers.save(read(), typedSecret());
        // Nothing secret stays in the page once it is stored.
        secret.input.value = '';
      } catch (error) {
        const { message, fields: errors } = handlers.describe(error);
        showErrors(message, errors);
      } finally {
        saving = false;
        setBusy(null);
      }
    })();
  });
  cancelButton.addEventListener('click', () => handlers.cancel());
  root.addEventListener('keydown', (event) => {
    if (event.key === 'Escape') handlers.cancel();
  });

  function setLanguage(m: Messages): void {
    current = m;
    labels.apply(m);
    relabelButtons();
  }
  setLanguage(m);

  return {
    root,
    setLanguage,
    showProgress: (list) => {
      if (testing) renderSteps(list);
    },
    focusFirst: () => name.input.focus(),
  };
}
