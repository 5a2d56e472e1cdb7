// The DOM of the settings window. Plain DOM, no framework: the page is built
// once by `createView`, and `render` then updates it in place from each
// Overview (only the text that changed is touched, so the polite live region
// announces changes rather than the whole list).
//
// Nothing here talks to the backend: user actions go out through
// `ViewHandlers`, and main.ts decides what to invoke.
import type { AccountView, Overview, PauseUntil } from './ipc';
import { formatWhen, LANGS, messages, type Lang, type LangChoice, type Messages } from './i18n';

/** What the buttons ask for: a refresh, or one of pause_notifications' `until`s. */
export type Action = 'refresh' | PauseUntil;

export interface ViewHandlers {
  onAction: (action: Action) => void;
  onLanguageChange: (choice: LangChoice) => void;
}

export interface View {
  setLanguage: (lang: Lang, choice: LangChoice) => void;
  render: (overview: Overview) => void;
  showError: (message: string) => void;
  clearError: () => void;
  setBusy: (action: Action, busy: boolean) => void;
}

interface ElProps {
  class?: string;
  text?: string;
  attrs?: Record<string, string>;
  hidden?: boolean;
}

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: ElProps = {},
  ...children: Node[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (props.class) node.className = props.class;
  if (props.text !== undefined) node.textContent = props.text;
  if (props.hidden) node.hidden = true;
  for (const [name, value] of Object.entries(props.attrs ?? {})) node.setAttribute(name, value);
  node.append(...children);
  return node;
}

// Write only on change, so assistive technology hears only what changed.
function setText(node: Element, text: string): void {
  if (node.textContent !== text) node.textContent = text;
}
function setClass(node: Element, className: string): void {
  if (node.className !== className) node.className = className;
}
function setAttr(node: Element, name: string, value: string | null): void {
  if (value === null) {
    if (node.hasAttribute(name)) node.removeAttribute(name);
  } else if (node.getAttribute(name) !== value) {
    node.setAttribute(name, value);
  }
}
function setHidden(node: HTMLElement, hidden: boolean): void {
  if (node.hidden !== hidden) node.hidden = hidden;
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
  const item = el(
    'li',
    { class: 'account', attrs: { 'data-account-id': id } },
    el('div', { class: 'account-head' }, source, name, unread),
    state,
    reason,
    lastError,
    notice,
    lastEvent,
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
  };
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
    accountsHeading,
    placeholder,
    list,
  );

  root.replaceChildren(header, el('main', { class: 'app-main' }, demoBanner, problems, status, controls, accounts));

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
    const problemList = overview.problems ?? [];
    problems.replaceChildren(...problemList.map((p) => el('li', { class: 'problem', text: p })));
    setHidden(problems, problemList.length === 0);

    const label = overview.badge.label;
    setHidden(badge, label === '');
    setClass(badge, /\d/.test(label) ? 'badge badge-count' : 'badge badge-dot');
    setText(badgeLabel, label);
    setText(badgeSr, label === '' ? '' : m.badge(label));

    const paused = overview.pausedUntil !== null;
    setText(pausedNote, paused ? m.pausedUntil(formatWhen(overview.pausedUntil ?? '', lang)) : '');
    setHidden(pausedNote, !paused);
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
    showError(message) {
      status.textContent = message;
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
