// The DOM of the settings window. Plain DOM, no framework: the page is built
// once by `createView`, and `render` then updates it in place from each
// Overview (only the text that changed is touched, so the polite live region
// announces changes rather than the whole list).
//
// Nothing here talks to the backend: user actions go out through
// `ViewHandlers`, and main.ts decides what to invoke.
import type { AccountView, Overview, PauseUntil, Source } from './ipc';
import { el, setAttr, setClass, setHidden, setText } from './dom';
import { formatWhen, LANGS, messages, type Lang, type LangChoice, type Messages } from './i18n';

/** What the buttons ask for: a refresh, or one of pause_notifications' `until`s. */
export type Action = 'refresh' | PauseUntil;

/** What the buttons of one account ask for. */
export type AccountAction = 'edit' | 'toggle' | 'retry' | 'remove';

export type Tab = 'accounts' | 'notifications';

export interface ViewHandlers {
  onAction: (action: Action) => void;
  onLanguageChange: (choice: LangChoice) => void;
  onAddAccount: (source: Source) => void;
  /** `remove` comes only after the user confirmed it. */
  onAccountAction: (action: AccountAction, id: string) => void;
  onTab: (tab: Tab) => void;
}

export interface View {
  setLanguage: (lang: Lang, choice: LangChoice) => void;
  render: (overview: Overview) => void;
  /** Which accounts are in the config file (the others are the demo's). */
  setConfigured: (ids: ReadonlySet<string>) => void;
  showError: (message: string) => void;
  clearError: () => void;
  /** A polite confirmation ("Saved."). */
  showNotice: (message: string) => void;
  setBusy: (action: Action, busy: boolean) => void;
  /** Shows a tab's content, or `screen` (a form) in place of the tabs. */
  show: (tab: Tab, screen?: HTMLElement) => void;
  /** Where the notifications tab draws. */
  optionsSlot: HTMLElement;
  /** Focuses an account's item (after a form closes). */
  focusAccount: (id: string) => void;
}

interface AccountRefs {
  item: HTMLLIElement;
  source: HTMLElement;
  name: HTMLElement;
  state: HTMLElement;
  stateText: HTMLElement;
  unread: HTMLElement;
  unreadCount: HTMLElement;
  unreadDot: HTMLElement;
  unreadSr: HTMLElement;
  reason: HTMLElement;
  lastError: HTMLElement;
  notice: HTMLElement;
  lastEvent: HTMLTimeElement;
  actions: HTMLElement;
  edit: HTMLButtonElement;
  toggle: HTMLButtonElement;
  retry: HTMLButtonElement;
  remove: HTMLButtonElement;
  confirm: HTMLElement;
  confirmText: HTMLElement;
  confirmYes: HTMLButtonElement;
  confirmNo: HTMLButtonElement;
}

function createAccountItem(id: string): AccountRefs {
  const source = el('span', { class: 'source' });
  const name = el('span', { class: 'account-name' });
  const stateText = el('span', { class: 'state-text' });
  const state = el(
    'span',
    { class: 'state' },
    el('span', { class: 'marker', attrs: { 'aria-hidden': 'true' } }),
    stateText,
  );
  const unreadCount = el('span', { class: 'unread-count', attrs: { 'aria-hidden': 'true' } });
  const unreadDot = el('span', { class: 'unread-dot', attrs: { 'aria-hidden': 'true' } });
  const unreadSr = el('span', { class: 'sr-only' });
  const unread = el('span', { class: 'unread' }, unreadCount, unreadDot, unreadSr);
  const reason = el('p', { class: 'reason', hidden: true });
  const lastError = el('p', { class: 'last-error', hidden: true });
  const notice = el('p', { class: 'notice', hidden: true });
  const lastEvent = el('time', { class: 'last-event' });
  const button = (action: string): HTMLButtonElement =>
    el('button', { class: 'btn btn-small', attrs: { type: 'button', 'data-action': action } });
  const edit = button('edit');
  const toggle = button('toggle');
  const retry = button('retry');
  const remove = button('remove');
  const actions = el('div', { class: 'account-actions', hidden: true }, edit, toggle, retry, remove);
  const confirmText = el('p', { class: 'confirm-text', attrs: { id: `confirm-${id}` } });
  const confirmYes = el('button', { class: 'btn btn-danger', attrs: { type: 'button', 'data-action': 'confirm-remove' } });
  const confirmNo = el('button', { class: 'btn', attrs: { type: 'button', 'data-action': 'cancel-remove' } });
  const confirm = el(
    'div',
    { class: 'confirm', hidden: true, attrs: { role: 'group', 'aria-labelledby': confirmText.id } },
    confirmText,
    el('div', { class: 'buttons' }, confirmYes, confirmNo),
  );
  const item = el(
    'li',
    { class: 'account', attrs: { 'data-account-id': id } },
    el('div', { class: 'account-head' }, source, name, unread),
    state,
    reason,
    lastError,
    notice,
    lastEvent,
    actions,
    confirm,
  );
  return {
    item,
    source,
    name,
    state,
    stateText,
    unread,
    unreadCount,
    unreadDot,
    unreadSr,
    reason,
    lastError,
    notice,
    lastEvent,
    actions,
    edit,
    toggle,
    retry,
    remove,
    confirm,
    confirmText,
    confirmYes,
    confirmNo,
  };
}

const RETRYABLE = new Set(['authFailed', 'needsAttention', 'backingOff']);

function updateAccountActions(refs: AccountRefs, account: AccountView, configured: boolean, m: Messages): void {
  setHidden(refs.actions, !configured);
  if (!configured) {
    setHidden(refs.confirm, true);
    return;
  }
  const disabled = account.state.kind === 'disabled';
  const labelled = (button: HTMLButtonElement, text: string): void => {
    setText(button, text);
    setAttr(button, 'aria-label', m.ui.actionFor(text, account.name));
  };
  labelled(refs.edit, m.ui.actions.edit);
  labelled(refs.toggle, disabled ? m.ui.actions.enable : m.ui.actions.disable);
  setAttr(refs.toggle, 'data-enable', disabled ? 'true' : 'false');
  labelled(refs.retry, m.ui.actions.retry);
  setHidden(refs.retry, !RETRYABLE.has(account.state.kind));
  labelled(refs.remove, m.ui.actions.remove);
  setText(refs.confirmText, m.ui.confirmRemove(account.name));
  setText(refs.confirmYes, m.ui.confirmRemoveButton);
  setText(refs.confirmNo, m.ui.cancel);
}

function updateAccountItem(refs: AccountRefs, account: AccountView, m: Messages, lang: Lang): void {
  const { kind, reason, until } = account.state;

  setAttr(refs.item, 'data-source', account.source);
  setAttr(refs.item, 'data-state', kind);
  setClass(refs.source, `source source-${account.source}`);
  setText(refs.source, m.source[account.source] ?? account.source);
  setText(refs.name, account.name);

  setClass(refs.state, `state state-${kind}`);
  const when = until ? formatWhen(until, lang) : null;
  const stateLabel =
    kind === 'backingOff'
      ? m.state.backingOff(when)
      : kind === 'rateLimited'
        ? m.state.rateLimited(when)
        : (m.state[kind] ?? kind);
  setText(refs.stateText, stateLabel);

  // A positive count wins; else the dot; else a zero count; else nothing.
  const count = account.unread;
  if (count !== null && count > 0) {
    setClass(refs.unread, 'unread has-count');
    setText(refs.unreadCount, String(count));
    setText(refs.unreadSr, `${count}${m.unreadSuffix(count)}`);
  } else if (account.dot) {
    setClass(refs.unread, 'unread has-dot');
    setText(refs.unreadCount, '');
    setText(refs.unreadSr, m.newActivity);
  } else if (count === 0) {
    setClass(refs.unread, 'unread has-count is-zero');
    setText(refs.unreadCount, '0');
    setText(refs.unreadSr, `0${m.unreadSuffix(0)}`);
  } else {
    setClass(refs.unread, 'unread is-empty');
    setText(refs.unreadCount, '');
    setText(refs.unreadSr, '');
  }
  setHidden(refs.unreadCount, !refs.unread.classList.contains('has-count'));
  setHidden(refs.unreadDot, !refs.unread.classList.contains('has-dot'));

  const reasonText = reason?.trim() ?? '';
  setText(refs.reason, reasonText);
  setHidden(refs.reason, reasonText === '');

  const errorText = account.lastError?.trim() ?? '';
  const showError = errorText !== '' && errorText !== reasonText;
  setText(refs.lastError, showError ? m.lastError(errorText) : '');
  setHidden(refs.lastError, !showError);

  const noticeText = account.notice?.trim() ?? '';
  setText(refs.notice, noticeText);
  setHidden(refs.notice, noticeText === '');

  if (account.lastEventAt) {
    setAttr(refs.lastEvent, 'datetime', account.lastEventAt);
    setText(refs.lastEvent, m.lastEvent(formatWhen(account.lastEventAt, lang)));
  } else {
    setAttr(refs.lastEvent, 'datetime', null);
    setText(refs.lastEvent, m.noEventYet);
  }
}

export function createView(root: HTMLElement, handlers: ViewHandlers): View {
  let lang: Lang = 'en';
  let current: Overview | null = null;
  let configured: ReadonlySet<string> = new Set();

  // Header: name, unified badge, language switch.
  const appName = el('span', { class: 'app-name' });
  const badgeLabel = el('span', { class: 'badge-label', attrs: { 'aria-hidden': 'true' } });
  const badgeSr = el('span', { class: 'sr-only' });
  const badge = el('span', { class: 'badge', hidden: true }, badgeLabel, badgeSr);
  const title = el('h1', { class: 'app-title' }, appName, badge);

  const langSelect = el('select', { class: 'lang-select', attrs: { id: 'lang-select' } });
  const autoOption = el('option', { attrs: { value: 'auto' } });
  langSelect.append(autoOption);
  for (const code of LANGS) {
    langSelect.append(el('option', { attrs: { value: code, lang: code } }));
  }
  const langLabel = el('label', { class: 'lang-label', attrs: { for: 'lang-select' } });
  const langSwitch = el('div', { class: 'lang-switch' }, langLabel, langSelect);
  const header = el('header', { class: 'app-header' }, title, langSwitch);

  // Banner and alert area.
  const demoBanner = el('p', { class: 'demo-banner', hidden: true, attrs: { role: 'note' } });
  const problems = el('ul', { class: 'problems', hidden: true, attrs: { 'aria-live': 'assertive' } });
  const status = el('div', {
    class: 'status',
    attrs: { role: 'alert', 'aria-atomic': 'true', id: 'status' },
  });

  // Controls.
  const buttons: Record<Action, HTMLButtonElement> = {
    refresh: el('button', { class: 'btn btn-primary', attrs: { type: 'button', 'data-action': 'refresh' } }),
    hour: el('button', { class: 'btn', attrs: { type: 'button', 'data-action': 'hour' } }),
    tomorrow: el('button', { class: 'btn', attrs: { type: 'button', 'data-action': 'tomorrow' } }),
    resume: el('button', {
      class: 'btn',
      hidden: true,
      attrs: { type: 'button', 'data-action': 'resume' },
    }),
  };
  const pausedNote = el('p', { class: 'paused-note', hidden: true });
  const controlsHeading = el('h2', { class: 'sr-only', attrs: { id: 'controls-heading' } });
  const controls = el(
    'section',
    { class: 'controls', attrs: { 'aria-labelledby': 'controls-heading' } },
    controlsHeading,
    el('div', { class: 'buttons' }, buttons.refresh, buttons.hour, buttons.tomorrow, buttons.resume),
    pausedNote,
  );

  // Tabs.
  const tabButtons: Record<Tab, HTMLButtonElement> = {
    accounts: el('button', { class: 'tab', attrs: { type: 'button', 'data-tab': 'accounts' } }),
    notifications: el('button', { class: 'tab', attrs: { type: 'button', 'data-tab': 'notifications' } }),
  };
  const tabs = el('nav', { class: 'tabs' }, tabButtons.accounts, tabButtons.notifications);
  for (const [tab, button] of Object.entries(tabButtons) as [Tab, HTMLButtonElement][]) {
    button.addEventListener('click', () => handlers.onTab(tab));
  }

  // Welcome (first run) and "Add an account".
  const welcomeTitle = el('h2', { attrs: { id: 'welcome-title' } });
  const welcomeText = el('p');
  const welcome = el('section', { class: 'welcome', hidden: true, attrs: { 'aria-labelledby': 'welcome-title' } }, welcomeTitle, welcomeText);
  const addButton = el('button', {
    class: 'btn btn-primary',
    attrs: { type: 'button', 'data-action': 'add-account', 'aria-expanded': 'false', 'aria-controls': 'source-chooser' },
  });
  const chooserLabel = el('p', { class: 'chooser-label', attrs: { id: 'chooser-label' } });
  const sourceButtons = (['mail', 'chat', 'tasks'] as Source[]).map((source) => {
    const button = el('button', { class: `btn source-choice source-${source}`, attrs: { type: 'button', 'data-source-choice': source } });
    button.addEventListener('click', () => handlers.onAddAccount(source));
    return button;
  });
  const chooser = el(
    'div',
    { class: 'source-chooser', hidden: true, attrs: { id: 'source-chooser', role: 'group', 'aria-labelledby': 'chooser-label' } },
    chooserLabel,
    el('div', { class: 'buttons' }, ...sourceButtons),
  );
  let chooserOpen = false;
  addButton.addEventListener('click', () => {
    chooserOpen = !chooserOpen;
    renderChooser();
    if (chooserOpen) sourceButtons[0]?.focus();
  });

  // Accounts.
  const accountsHeading = el('h2', { attrs: { id: 'accounts-heading' } });
  const placeholder = el('p', { class: 'placeholder' });
  const list = el('ul', { class: 'account-list' });
  const accounts = el(
    'section',
    {
      class: 'accounts',
      attrs: { 'aria-labelledby': 'accounts-heading', 'aria-live': 'polite' },
    },
    el('div', { class: 'accounts-head' }, accountsHeading, addButton),
    chooser,
    placeholder,
    list,
  );
  list.addEventListener('click', (event) => {
    const target = event.target instanceof Element ? event.target.closest('button[data-action]') : null;
    const item = target?.closest('li[data-account-id]');
    const id = item?.getAttribute('data-account-id');
    const refs = id ? items.get(id) : undefined;
    if (!target || !id || !refs) return;
    switch (target.getAttribute('data-action')) {
      case 'edit':
        handlers.onAccountAction('edit', id);
        break;
      case 'toggle':
        handlers.onAccountAction('toggle', id);
        break;
      case 'retry':
        handlers.onAccountAction('retry', id);
        break;
      case 'remove':
        setHidden(refs.confirm, false);
        refs.confirmNo.focus();
        break;
      case 'confirm-remove':
        setHidden(refs.confirm, true);
        handlers.onAccountAction('remove', id);
        break;
      case 'cancel-remove':
        setHidden(refs.confirm, true);
        refs.remove.focus();
        break;
    }
  });

  const notice = el('p', { class: 'notice-line', attrs: { role: 'status' } });
  const accountsTab = el('div', { class: 'tab-accounts' }, welcome, controls, accounts);
  const optionsSlot = el('div', { class: 'tab-notifications', hidden: true });
  const screenSlot = el('div', { class: 'screen', hidden: true });
  root.replaceChildren(
    header,
    el('main', { class: 'app-main' }, demoBanner, problems, status, notice, tabs, accountsTab, optionsSlot, screenSlot),
  );
  let tab: Tab = 'accounts';

  function renderChooser(): void {
    const first = isFirstRun();
    const open = chooserOpen || first;
    setHidden(chooser, !open);
    setHidden(addButton, first);
    setAttr(addButton, 'aria-expanded', open ? 'true' : 'false');
  }

  /** The demo runs and nothing is configured: welcome the user. */
  function isFirstRun(): boolean {
    return current !== null && current.demo && configured.size === 0;
  }

  const items = new Map<string, AccountRefs>();

  for (const [action, button] of Object.entries(buttons) as [Action, HTMLButtonElement][]) {
    button.addEventListener('click', () => {
      if (button.getAttribute('aria-disabled') === 'true') return;
      handlers.onAction(action);
    });
  }
  langSelect.addEventListener('change', () => {
    const value = langSelect.value;
    handlers.onLanguageChange(value === 'en' || value === 'fr' ? value : 'auto');
  });

  function renderStatic(m: Messages, choice: LangChoice): void {
    document.documentElement.lang = lang;
    document.title = m.title;
    setText(appName, m.appName);
    setText(langLabel, m.language);
    setText(autoOption, m.languageAuto);
    for (const option of Array.from(langSelect.options)) {
      if (option.value === 'en' || option.value === 'fr') setText(option, m.languageNames[option.value]);
    }
    if (langSelect.value !== choice) langSelect.value = choice;
    setText(demoBanner, m.demoBanner);
    setText(controlsHeading, m.controlsLabel);
    setText(buttons.refresh, m.refreshNow);
    setText(buttons.hour, m.pauseHour);
    setText(buttons.tomorrow, m.pauseTomorrow);
    setText(buttons.resume, m.resume);
    setText(accountsHeading, m.accountsHeading);
    setText(tabButtons.accounts, m.ui.tabs.accounts);
    setText(tabButtons.notifications, m.ui.tabs.notifications);
    setAttr(tabs, 'aria-label', m.ui.tabs.label);
    setText(welcomeTitle, m.ui.welcomeTitle);
    setText(welcomeText, m.ui.welcomeText);
    setText(addButton, m.ui.addAccount);
    setText(chooserLabel, m.ui.chooseSource);
    for (const button of sourceButtons) {
      const source = button.getAttribute('data-source-choice') as Source;
      setText(button, m.ui.sourceChoice[source]);
    }
  }

  function renderOverview(): void {
    const m = messages(lang);
    if (!current) {
      setText(placeholder, m.loading);
      setHidden(placeholder, false);
      return;
    }
    const overview = current;

    setHidden(demoBanner, !overview.demo);
    setHidden(welcome, !isFirstRun());
    renderChooser();
    const problemList = overview.problems ?? [];
    problems.replaceChildren(...problemList.map((p) => el('li', { class: 'problem', text: p })));
    setHidden(problems, problemList.length === 0);

    const label = overview.badge.label;
    setHidden(badge, label === '');
    setClass(badge, /\d/.test(label) ? 'badge badge-count' : 'badge badge-dot');
    setText(badgeLabel, label);
    setText(badgeSr, label === '' ? '' : m.badge(label));

    const paused = overview.pausedUntil !== null;
    const quiet = !paused && (overview.quietUntil ?? null) !== null;
    setText(
      pausedNote,
      paused
        ? m.pausedUntil(formatWhen(overview.pausedUntil ?? '', lang))
        : quiet
          ? m.ui.quietUntil(formatWhen(overview.quietUntil ?? '', lang))
          : '',
    );
    setHidden(pausedNote, !paused && !quiet);
    if (!paused && document.activeElement === buttons.resume) buttons.hour.focus();
    setHidden(buttons.resume, !paused);

    setText(placeholder, overview.accounts.length === 0 ? m.noAccounts : '');
    setHidden(placeholder, overview.accounts.length !== 0);

    const seen = new Set<string>();
    let previous: Element | null = null;
    for (const account of overview.accounts) {
      if (seen.has(account.id)) continue; // ids are unique; ignore a duplicate
      seen.add(account.id);
      let refs = items.get(account.id);
      if (!refs) {
        refs = createAccountItem(account.id);
        items.set(account.id, refs);
      }
      updateAccountItem(refs, account, m, lang);
      updateAccountActions(refs, account, configured.has(account.id), m);
      // Keep DOM order = overview order, moving nodes only when needed.
      const expectedNext: Element | null = previous ? previous.nextElementSibling : list.firstElementChild;
      if (expectedNext !== refs.item) list.insertBefore(refs.item, expectedNext);
      previous = refs.item;
    }
    for (const [id, refs] of items) {
      if (!seen.has(id)) {
        refs.item.remove();
        items.delete(id);
      }
    }
  }

  return {
    setLanguage(nextLang, choice) {
      lang = nextLang;
      renderStatic(messages(lang), choice);
      renderOverview();
    },
    render(overview) {
      current = overview;
      renderOverview();
    },
    setConfigured(ids) {
      configured = ids;
      renderOverview();
    },
    showError(message) {
      status.textContent = message;
    },
    showNotice(message) {
      notice.textContent = message;
    },
    show(next, screen) {
      tab = next;
      chooserOpen = false;
      if (screen) {
        screenSlot.replaceChildren(screen);
      } else {
        screenSlot.replaceChildren();
      }
      setHidden(screenSlot, !screen);
      setHidden(tabs, Boolean(screen));
      setHidden(accountsTab, Boolean(screen) || tab !== 'accounts');
      setHidden(optionsSlot, Boolean(screen) || tab !== 'notifications');
      for (const [name, button] of Object.entries(tabButtons) as [Tab, HTMLButtonElement][]) {
        setAttr(button, 'aria-current', name === tab ? 'page' : null);
      }
      renderChooser();
    },
    optionsSlot,
    focusAccount(id) {
      items.get(id)?.edit.focus();
    },
    clearError() {
      setText(status, '');
    },
    setBusy(action, busy) {
      const button = buttons[action];
      setAttr(button, 'aria-disabled', busy ? 'true' : null);
      button.classList.toggle('is-busy', busy);
    },
  };
}
