// The notifications screen: previews (private mode), burst grouping, sound,
// and the quick refresh rules (a matching sender in one source refreshes
// another).
import type { FieldError, HintForm, NotificationsForm, Source, StartOptions } from './ipc';
import { el, Labels, setAttr, setHidden, setText, uniqueId } from './dom';
import type { Messages } from './i18n';

export interface OptionsHandlers {
  saveNotifications: (form: NotificationsForm) => Promise<void>;
  saveHints: (hints: HintForm[]) => Promise<void>;
  setStartAtLogin: (enabled: boolean) => Promise<void>;
  setStartHidden: (hidden: boolean) => Promise<void>;
  describe: (error: unknown) => { message: string; fields: FieldError[] };
}

export interface OptionsScreen {
  root: HTMLElement;
  setLanguage: (m: Messages) => void;
  /** Shows saved values (after a load or a save). */
  load: (notifications: NotificationsForm, hints: HintForm[], configFile: string) => void;
  /** Shows how Vigie starts. */
  loadStart: (options: StartOptions) => void;
}

const SOURCES: Source[] = ['mail', 'chat', 'tasks'];

export function createOptions(handlers: OptionsHandlers, m: Messages): OptionsScreen {
  const labels = new Labels<Messages>();
  let current = m;

  const checkbox = (name: string, label: (m: Messages) => string): { wrap: HTMLElement; input: HTMLInputElement } => {
    const input = el('input', { attrs: { type: 'checkbox', name, id: uniqueId('o') } });
    const labelEl = el('label', { attrs: { for: input.id } });
    labels.text(labelEl, label);
    return { wrap: el('div', { class: 'field field-check' }, input, labelEl), input };
  };

  // Notification options.
  const heading = el('h2', { attrs: { id: uniqueId('options-heading') } });
  labels.text(heading, (m) => m.ui.options.heading);
  const previews = checkbox('previews', (m) => m.ui.options.previews);
  const sound = checkbox('sound', (m) => m.ui.options.sound);
  const burst = el('input', {
    attrs: { type: 'number', name: 'burstThreshold', min: '1', max: '1000', inputmode: 'numeric', id: uniqueId('o') },
  });
  const burstLabel = el('label', { attrs: { for: burst.id } });
  labels.text(burstLabel, (m) => m.ui.options.burst);
  const burstError = el('p', { class: 'field-error', hidden: true, attrs: { 'data-error-for': 'burstThreshold', id: uniqueId('e') } });
  burst.setAttribute('aria-describedby', burstError.id);
  // Quiet hours: a switch and two times.
  const quiet = checkbox('quietHours', (m) => m.ui.options.quiet);
  const timeField = (name: string, label: (m: Messages) => string): { wrap: HTMLElement; input: HTMLInputElement } => {
    const input = el('input', { attrs: { type: 'time', name, id: uniqueId('o') } });
    const labelEl = el('label', { attrs: { for: input.id } });
    labels.text(labelEl, label);
    return { wrap: el('div', { class: 'field' }, labelEl, input), input };
  };
  const quietFrom = timeField('quietFrom', (m) => m.ui.options.quietFrom);
  const quietTo = timeField('quietTo', (m) => m.ui.options.quietTo);
  const quietHint = el('p', { class: 'field-hint', attrs: { id: uniqueId('h') } });
  labels.text(quietHint, (m) => m.ui.options.quietHint);
  const quietError = el('p', { class: 'field-error', hidden: true, attrs: { 'data-error-for': 'quietHours', id: uniqueId('e') } });
  quiet.input.setAttribute('aria-describedby', `${quietHint.id} ${quietError.id}`);
  const quietTimes = el('div', { class: 'field-row quiet-times' }, quietFrom.wrap, quietTo.wrap);
  const showQuiet = (): void => setHidden(quietTimes, !quiet.input.checked);
  quiet.input.addEventListener('change', showQuiet);

  const saveOptions = el('button', { class: 'btn btn-primary', attrs: { type: 'submit', 'data-action': 'save-notifications' } });
  labels.text(saveOptions, (m) => m.ui.options.save);
  const optionsStatus = el('p', { class: 'form-status', attrs: { role: 'status' } });
  const optionsForm = el(
    'form',
    { class: 'options-form', attrs: { id: 'notifications-form', novalidate: '', 'aria-labelledby': heading.id } },
    heading,
    previews.wrap,
    el('div', { class: 'field' }, burstLabel, burst, burstError),
    sound.wrap,
    quiet.wrap,
    quietTimes,
    quietHint,
    quietError,
    optionsStatus,
    el('div', { class: 'form-buttons' }, saveOptions),
  );

  // Hint rules.
  const hintsHeading = el('h2', { attrs: { id: uniqueId('hints-heading') } });
  labels.text(hintsHeading, (m) => m.ui.options.hintsHeading);
  const hintsText = el('p', { class: 'field-hint' });
  labels.text(hintsText, (m) => m.ui.options.hintsText);
  const rules = el('ul', { class: 'hint-list' });
  const noRules = el('p', { class: 'placeholder' });
  labels.text(noRules, (m) => m.ui.options.noHints);
  const addRule = el('button', { class: 'btn', attrs: { type: 'button', 'data-action': 'add-hint' } });
  labels.text(addRule, (m) => m.ui.options.addHint);
  const saveRules = el('button', { class: 'btn btn-primary', attrs: { type: 'submit', 'data-action': 'save-hints' } });
  labels.text(saveRules, (m) => m.ui.options.saveHints);
  const hintsStatus = el('p', { class: 'form-status', attrs: { role: 'status' } });
  const hintsAlert = el('div', { class: 'form-alert', attrs: { role: 'alert' } });
  const hintsForm = el(
    'form',
    { class: 'hints-form', attrs: { id: 'hints-form', novalidate: '', 'aria-labelledby': hintsHeading.id } },
    hintsHeading,
    hintsText,
    hintsAlert,
    rules,
    noRules,
    hintsStatus,
    el('div', { class: 'form-buttons' }, addRule, saveRules),
  );
  // Starting: each switch applies at once.
  const startHeading = el('h2', { attrs: { id: uniqueId('start-heading') } });
  labels.text(startHeading, (m) => m.ui.options.startHeading);
  const atLogin = checkbox('atLogin', (m) => m.ui.options.atLogin);
  const openAtStart = checkbox('openAtStart', (m) => m.ui.options.openAtStart);
  const startAlert = el('div', { class: 'form-alert', attrs: { role: 'alert' } });
  const startStatus = el('p', { class: 'form-status', attrs: { role: 'status' } });
  const startSection = el(
    'section',
    { class: 'start-options', attrs: { 'aria-labelledby': startHeading.id } },
    startHeading,
    startAlert,
    atLogin.wrap,
    openAtStart.wrap,
    startStatus,
  );
  const applySwitch = (input: HTMLInputElement, apply: (on: boolean) => Promise<void>): void => {
    input.addEventListener('change', () => {
      setText(startAlert, '');
      setText(startStatus, '');
      const on = input.checked;
      void apply(on).then(
        () => setText(startStatus, current.ui.saved),
        (error: unknown) => {
          input.checked = !on;
          setText(startAlert, handlers.describe(error).message);
        },
      );
    });
  };
  applySwitch(atLogin.input, handlers.setStartAtLogin);
  applySwitch(openAtStart.input, (open) => handlers.setStartHidden(!open));

  const configNote = el('p', { class: 'config-note' });
  let configFile = '';

  interface Rule {
    item: HTMLLIElement;
    from: HTMLSelectElement;
    sender: HTMLInputElement;
    refresh: HTMLSelectElement;
    error: HTMLElement;
  }
  const rows: Rule[] = [];
  const rowLabels = new Labels<Messages>();

  function sourceSelect(value: Source, label: (m: Messages) => string): { wrap: HTMLElement; select: HTMLSelectElement } {
    const select = el('select', { attrs: { id: uniqueId('h') } });
    for (const s of SOURCES) {
      const option = el('option', { attrs: { value: s } });
      rowLabels.text(option, (m) => m.source[s]);
      select.append(option);
    }
    select.value = value;
    const labelEl = el('label', { attrs: { for: select.id } });
    rowLabels.text(labelEl, label);
    return { wrap: el('div', { class: 'field' }, labelEl, select), select };
  }

  function addRow(hint: HintForm): Rule {
    const from = sourceSelect(hint.from, (m) => m.ui.options.hintFrom);
    const sender = el('input', { attrs: { type: 'text', id: uniqueId('h'), autocomplete: 'off' } });
    sender.value = hint.senderContains;
    const senderLabel = el('label', { attrs: { for: sender.id } });
    rowLabels.text(senderLabel, (m) => m.ui.options.hintSender);
    const error = el('p', { class: 'field-error', hidden: true, attrs: { id: uniqueId('e') } });
    sender.setAttribute('aria-describedby', error.id);
    const refresh = sourceSelect(hint.refresh, (m) => m.ui.options.hintRefresh);
    const remove = el('button', { class: 'btn btn-small', text: '×', attrs: { type: 'button', 'data-action': 'remove-hint' } });
    rowLabels.attr(remove, 'aria-label', (m) => m.ui.options.removeHint);
    const item = el(
      'li',
      { class: 'hint-rule' },
      from.wrap,
      el('div', { class: 'field' }, senderLabel, sender, error),
      refresh.wrap,
      remove,
    );
    const row: Rule = { item, from: from.select, sender, refresh: refresh.select, error };
    remove.addEventListener('click', () => {
      const at = rows.indexOf(row);
      if (at >= 0) rows.splice(at, 1);
      item.remove();
      setHidden(noRules, rows.length > 0);
      addRule.focus();
    });
    rows.push(row);
    rules.append(item);
    rowLabels.apply(current);
    setHidden(noRules, true);
    return row;
  }

  addRule.addEventListener('click', () => {
    addRow({ from: 'mail', senderContains: '', refresh: 'tasks' }).sender.focus();
  });

  optionsForm.addEventListener('submit', (event) => {
    event.preventDefault();
    setText(optionsStatus, '');
    setHidden(burstError, true);
    setHidden(quietError, true);
    setAttr(burst, 'aria-invalid', null);
    const form: NotificationsForm = {
      previews: previews.input.checked,
      burstThreshold: Number.parseInt(burst.value, 10) || 0,
      sound: sound.input.checked,
      quietHours: quiet.input.checked ? { from: quietFrom.input.value, to: quietTo.input.value } : null,
    };
    void handlers.saveNotifications(form).then(
      () => setText(optionsStatus, current.ui.saved),
      (error: unknown) => {
        const { message, fields } = handlers.describe(error);
        const quietProblem = fields.find((f) => f.field === 'quietHours');
        if (quietProblem) {
          setText(quietError, quietProblem.message);
          setHidden(quietError, false);
          quietFrom.input.focus();
          return;
        }
        const own = fields.find((f) => f.field === 'burstThreshold');
        setText(burstError, own?.message ?? message);
        setHidden(burstError, false);
        setAttr(burst, 'aria-invalid', 'true');
        burst.focus();
      },
    );
  });

  hintsForm.addEventListener('submit', (event) => {
    event.preventDefault();
    setText(hintsStatus, '');
    setText(hintsAlert, '');
    for (const row of rows) {
      setHidden(row.error, true);
      setAttr(row.sender, 'aria-invalid', null);
    }
    const hints: HintForm[] = rows.map((row) => ({
      from: row.from.value as Source,
      senderContains: row.sender.value.trim(),
      refresh: row.refresh.value as Source,
    }));
    void handlers.saveHints(hints).then(
      () => setText(hintsStatus, current.ui.saved),
      (error: unknown) => {
        const { message, fields } = handlers.describe(error);
        let first: HTMLElement | null = null;
        for (const f of fields) {
          const match = /^hints\.(\d+)\./.exec(f.field);
          const row = match ? rows[Number(match[1])] : undefined;
          if (!row) continue;
          setText(row.error, f.message);
          setHidden(row.error, false);
          setAttr(row.sender, 'aria-invalid', 'true');
          first ??= row.sender;
        }
        setText(hintsAlert, fields.length > 0 ? current.ui.fixFields : message);
        first?.focus();
      },
    );
  });

  const root = el('div', { class: 'options' }, optionsForm, startSection, hintsForm, configNote);

  function setLanguage(m: Messages): void {
    current = m;
    labels.apply(m);
    rowLabels.apply(m);
    setText(configNote, configFile ? m.ui.options.configFile(configFile) : '');
  }
  setLanguage(m);

  return {
    root,
    setLanguage,
    loadStart(options) {
      atLogin.input.checked = options.atLogin;
      openAtStart.input.checked = !options.hidden;
    },
    load(notifications, hints, file) {
      previews.input.checked = notifications.previews;
      sound.input.checked = notifications.sound;
      burst.value = String(notifications.burstThreshold);
      quiet.input.checked = notifications.quietHours !== null;
      quietFrom.input.value = notifications.quietHours?.from ?? '22:00';
      quietTo.input.value = notifications.quietHours?.to ?? '07:00';
      showQuiet();
      for (const row of rows.splice(0)) row.item.remove();
      for (const hint of hints) addRow(hint);
      setHidden(noRules, rows.length > 0);
      configFile = file;
      setText(configNote, current.ui.options.configFile(file));
    },
  };
}
