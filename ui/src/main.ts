// Entry point of the settings window: wires the IPC wrappers to the view.
import './style.css';
import {
  errorMessage,
  getOverview,
  onOverviewChanged,
  pauseNotifications,
  refreshNow,
} from './ipc';
import { messages, resolveLang, storeChoice, storedChoice, type LangChoice } from './i18n';
import { createView, type Action } from './view';

export async function start(root: HTMLElement): Promise<void> {
  let choice: LangChoice = storedChoice();
  let lang = resolveLang(choice);
  const pending = new Set<Action>();

  const setLanguage = (next: LangChoice): void => {
    choice = next;
    lang = resolveLang(choice);
    view.setLanguage(lang, choice);
  };

  const view = createView(root, {
    onAction: (action) => {
      void run(action);
    },
    onLanguageChange: (next) => {
      storeChoice(next);
      setLanguage(next);
    },
  });
  view.setLanguage(lang, choice);

  // "Automatic" follows the system language, also when it changes.
  window.addEventListener('languagechange', () => {
    if (choice === 'auto') setLanguage('auto');
  });

  const fail = (error: unknown): void => {
    view.showError(errorMessage(error, messages(lang).unknownError));
  };

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

  // Subscribe before fetching: an overview-changed event that arrives while
  // get_overview is in flight is newer than its answer, so that answer is
  // then dropped.
  let sawEvent = false;
  try {
    await onOverviewChanged((overview) => {
      sawEvent = true;
      view.render(overview);
    });
  } catch (error) {
    fail(error);
  }
  try {
    const overview = await getOverview();
    if (!sawEvent) view.render(overview);
  } catch (error) {
    fail(error);
  }
}

const root = document.getElementById('app');
if (root) void start(root);
