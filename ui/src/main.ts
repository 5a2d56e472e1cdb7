// Entry point of the settings window: wires the IPC wrappers to the screens.
import './style.css';
import {
  errorMessage,
  fieldErrors,
  getOverview,
  getSettings,
  getStartOptions,
  onOverviewChanged,
  onProbeProgress,
  pauseNotifications,
  refreshAccount,
  refreshNow,
  removeAccount,
  saveAccount,
  saveHints,
  saveNotifications,
  setAccountEnabled,
  setStartAtLogin,
  setStartHidden,
  testConnection,
  type Overview,
  type SettingsView,
  type Source,
} from './ipc';
import { createAccountForm, type FormScreen } from './form';
import { messages, resolveLang, storeChoice, storedChoice, type LangChoice } from './i18n';
import { createOptions } from './options';
import { createView, type AccountAction, type Action, type Tab } from './view';

export async function start(root: HTMLElement): Promise<void> {
  let choice: LangChoice = storedChoice();
  let lang = resolveLang(choice);
  const pending = new Set<Action>();
  let settings: SettingsView | null = null;
  let overview: Overview | null = null;
  let form: FormScreen | null = null;
  let tab: Tab = 'accounts';
  /** Tags each probe, so late steps of an earlier one are not shown. */
  let probeId = 0;

  const describe = (error: unknown): { message: string; fields: ReturnType<typeof fieldErrors> } => ({
    message: errorMessage(error, messages(lang).unknownError),
    fields: fieldErrors(error),
  });

  const setLanguage = (next: LangChoice): void => {
    choice = next;
    lang = resolveLang(choice);
    view.setLanguage(lang, choice);
    options.setLanguage(messages(lang));
    form?.setLanguage(messages(lang));
  };

  const view = createView(root, {
    onAction: (action) => {
      void run(action);
    },
    onLanguageChange: (next) => {
      storeChoice(next);
      setLanguage(next);
    },
    onAddAccount: (source) => openForm(null, source),
    onAccountAction: (action, id) => {
      void accountAction(action, id);
    },
    onTab: (next) => {
      tab = next;
      view.show(tab);
    },
  });

  const options = createOptions(
    {
      saveNotifications: async (next) => {
        await saveNotifications(next);
        await loadSettings();
      },
      saveHints: async (hints) => {
        await saveHints(hints);
        await loadSettings();
      },
      setStartAtLogin,
      setStartHidden,
      describe,
    },
    messages(lang),
  );
  view.optionsSlot.append(options.root);
  view.setLanguage(lang, choice);
  view.show(tab);

  // "Automatic" follows the system language, also when it changes.
  window.addEventListener('languagechange', () => {
    if (choice === 'auto') setLanguage('auto');
  });

  const fail = (error: unknown): void => {
    view.showError(errorMessage(error, messages(lang).unknownError));
  };

  async function loadSettings(): Promise<void> {
    try {
      settings = await getSettings();
      view.setConfigured(new Set(settings.accounts.map((a) => a.form.id)));
      options.load(settings.notifications, settings.hints, settings.configFile);
    } catch (error) {
      fail(error);
    }
  }

  function closeForm(focusId: string | null): void {
    form = null;
    view.show(tab);
    if (focusId) view.focusAccount(focusId);
  }

  function openForm(id: string | null, source: Source): void {
    const entry = id ? (settings?.accounts.find((a) => a.form.id === id) ?? null) : null;
    form = createAccountForm(
      entry,
      entry?.form.source ?? source,
      {
        save: async (account, secret) => {
          const saved = await saveAccount(account, secret);
          view.clearError();
          view.showNotice(messages(lang).ui.saved);
          await loadSettings();
          closeForm(saved);
        },
        test: (account, secret) => {
          probeId += 1;
          return testConnection(account, secret, probeId);
        },
        cancel: () => closeForm(id),
        describe,
      },
      messages(lang),
    );
    tab = 'accounts';
    view.show(tab, form.root);
    form.focusFirst();
  }

  async function accountAction(action: AccountAction, id: string): Promise<void> {
    const entry = settings?.accounts.find((a) => a.form.id === id);
    if (!entry) return;
    try {
      view.clearError();
      switch (action) {
        case 'edit':
          openForm(id, entry.form.source);
          return;
        case 'retry':
          await refreshAccount(id);
          return;
        case 'toggle': {
          const running = overview?.accounts.find((a) => a.id === id);
          const enable = running ? running.state.kind === 'disabled' : !entry.form.enabled;
          await setAccountEnabled(id, enable);
          break;
        }
        case 'remove':
          await removeAccount(id);
          view.showNotice(messages(lang).ui.removed(entry.form.name));
          break;
      }
      await loadSettings();
    } catch (error) {
      fail(error);
    }
  }

  async function run(action: Action): Promise<void> {
    if (pending.has(action)) return; // one call of each kind at a time
    pending.add(action);
    view.setBusy(action, true);
    try {
      if (action === 'refresh') await refreshNow();
      else await pauseNotifications(action);
      view.clearError();
    } catch (error) {
      fail(error);
    } finally {
      pending.delete(action);
      view.setBusy(action, false);
    }
  }

  try {
    await onProbeProgress((progress) => {
      if (progress.probeId === probeId) form?.showProgress(progress.steps);
    });
  } catch (error) {
    fail(error);
  }

  // Subscribe before fetching: an overview-changed event that arrives while
  // get_overview is in flight is newer than its answer, so that answer is
  // then dropped.
  let sawEvent = false;
  try {
    await onOverviewChanged((next) => {
      sawEvent = true;
      overview = next;
      view.render(next);
    });
  } catch (error) {
    fail(error);
  }
  try {
    const first = await getOverview();
    if (!sawEvent) {
      overview = first;
      view.render(first);
    }
  } catch (error) {
    fail(error);
  }
  await loadSettings();
  try {
    options.loadStart(await getStartOptions());
  } catch (error) {
    fail(error);
  }
}

const root = document.getElementById('app');
if (root) void start(root);
