// Strings and date formatting for English and French.
// The language follows navigator.language (fr* → French, anything else →
// English) unless the user picked one in the language switch, which is
// remembered in localStorage.
import type { Source, StateKind } from './ipc';

export type Lang = 'en' | 'fr';
/** What the language switch offers: a language, or "follow the system". */
export type LangChoice = Lang | 'auto';

export const LANGS: readonly Lang[] = ['en', 'fr'];
export const STORAGE_KEY = 'vigie.lang';

export interface Messages {
  /** document.title */
  title: string;
  appName: string;
  /** Screen-reader text for the unified badge ("7" → "7 unread"). */
  badge: (label: string) => string;
  demoBanner: string;
  controlsLabel: string;
  refreshNow: string;
  pauseHour: string;
  pauseTomorrow: string;
  resume: string;
  pausedUntil: (time: string) => string;
  accountsHeading: string;
  loading: string;
  noAccounts: string;
  source: Record<Source, string>;
  state: Record<Exclude<StateKind, 'backingOff' | 'rateLimited'>, string> & {
    backingOff: (until: string | null) => string;
    rateLimited: (until: string | null) => string;
  };
  /** Screen-reader suffix after the unread count ("7" + " unread"). */
  unreadSuffix: (count: number) => string;
  newActivity: string;
  lastEvent: (time: string) => string;
  noEventYet: string;
  lastError: (error: string) => string;
  language: string;
  languageAuto: string;
  languageNames: Record<Lang, string>;
  unknownError: string;
}

const en: Messages = {
  title: 'Vigie — Settings',
  appName: 'Vigie',
  badge: (label) => (/\d/.test(label) ? `${label} unread` : 'New activity'),
  demoBanner:
    'Demo mode: no account is configured yet, so Vigie shows built-in demo accounts.',
  controlsLabel: 'Notifications',
  refreshNow: 'Refresh now',
  pauseHour: 'Pause 1 hour',
  pauseTomorrow: 'Pause until tomorrow',
  resume: 'Resume',
  pausedUntil: (time) => `Notifications paused until ${time}`,
  accountsHeading: 'Accounts',
  loading: 'Loading…',
  noAccounts: 'No accounts.',
  source: { mail: 'Mail', chat: 'Chat', tasks: 'Tasks' },
  state: {
    connecting: 'Connecting…',
    live: 'Live',
    polling: 'Polling',
    backingOff: (until) => (until ? `Backing off until ${until}` : 'Backing off'),
    rateLimited: (until) =>
      until ? `Rate-limited by the server until ${until}` : 'Rate-limited by the server',
    needsAttention: 'Needs your attention',
    authFailed: 'Authentication failed',
    disabled: 'Disabled',
  },
  unreadSuffix: () => ' unread',
  newActivity: 'New activity',
  lastEvent: (time) => `Last event: ${time}`,
  noEventYet: 'No event yet',
  lastError: (error) => `Last error: ${error}`,
  language: 'Language',
  languageAuto: 'Automatic',
  languageNames: { en: 'English', fr: 'Français' },
  unknownError: 'Something went wrong.',
};

const fr: Messages = {
  title: 'Vigie — Réglages',
  appName: 'Vigie',
  badge: (label) =>
    /\d/.test(label) ? `${label} ${label === '1' ? 'non lu' : 'non lus'}` : 'Nouveautés',
  demoBanner:
    "Mode démo : aucun compte n'est encore configuré, Vigie affiche des comptes de démonstration.",
  controlsLabel: 'Notifications',
  refreshNow: 'Actualiser maintenant',
  pauseHour: "Pause d'une heure",
  pauseTomorrow: "Pause jusqu'à demain",
  resume: 'Reprendre',
  pausedUntil: (time) => `Notifications en pause jusqu'à ${time}`,
  accountsHeading: 'Comptes',
  loading: 'Chargement…',
  noAccounts: 'Aucun compte.',
  source: { mail: 'Courrier', chat: 'Parole', tasks: 'Devoirs' },
  state: {
    connecting: 'Connexion…',
    live: 'En direct',
    polling: 'Interrogation périodique',
    backingOff: (until) =>
      until ? `En attente jusqu'à ${until}` : 'En attente avant nouvel essai',
    rateLimited: (until) =>
      until ? `Limité par le serveur jusqu'à ${until}` : 'Limité par le serveur',
    needsAttention: 'Action requise',
    authFailed: "Échec de l'authentification",
    disabled: 'Désactivé',
  },
  unreadSuffix: (count) => (count > 1 ? ' non lus' : ' non lu'),
  newActivity: 'Nouveautés',
  lastEvent: (time) => `Dernier événement : ${time}`,
  noEventYet: 'Aucun événement pour le moment',
  lastError: (error) => `Dernière erreur : ${error}`,
  language: 'Langue',
  languageAuto: 'Automatique',
  languageNames: { en: 'English', fr: 'Français' },
  unknownError: "Une erreur inattendue s'est produite.",
};

const MESSAGES: Record<Lang, Messages> = { en, fr };

export function messages(lang: Lang): Messages {
  return MESSAGES[lang];
}

/** fr, fr-FR, fr-CA… → French; anything else → English. */
export function langFromTag(tag: string | null | undefined): Lang {
  return tag && /^fr\b/i.test(tag) ? 'fr' : 'en';
}

function isLang(value: unknown): value is Lang {
  return (LANGS as readonly unknown[]).includes(value);
}

/** The language the user picked in the switch, if any. */
export function storedChoice(): LangChoice {
  try {
    const value = window.localStorage.getItem(STORAGE_KEY);
    return isLang(value) ? value : 'auto';
  } catch {
    return 'auto'; // storage unavailable
  }
}

export function storeChoice(choice: LangChoice): void {
  try {
    if (choice === 'auto') window.localStorage.removeItem(STORAGE_KEY);
    else window.localStorage.setItem(STORAGE_KEY, choice);
  } catch {
    // storage unavailable: the choice lasts for this page only
  }
}

export function resolveLang(choice: LangChoice): Lang {
  return choice === 'auto' ? langFromTag(navigator.language) : choice;
}

/**
 * The locale for dates and times: the system's own when it speaks the
 * chosen language (so en-GB keeps its 24-hour clock), else the language.
 */
export function localeFor(lang: Lang): string {
  const system = navigator.language;
  return system && isValidLocale(system) && langFromTag(system) === lang ? system : lang;
}

/**
 * WebKitGTK reports the POSIX locale as is when LANG is unset or "C"
 * (navigator.language === "C"), which Intl rejects with a RangeError.
 */
function isValidLocale(tag: string): boolean {
  try {
    return Intl.DateTimeFormat.supportedLocalesOf([tag]).length > 0;
  } catch {
    return false;
  }
}

function sameDay(a: Date, b: Date): boolean {
  return (
    a.getFullYear() === b.getFullYear() &&
    a.getMonth() === b.getMonth() &&
    a.getDate() === b.getDate()
  );
}

/**
 * An RFC 3339 timestamp as local HH:MM when it is today, else with the day
 * ("25 Nov, 14:30"). Unparseable input is returned as it is.
 */
export function formatWhen(iso: string, lang: Lang, now: Date = new Date()): string {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  const options: Intl.DateTimeFormatOptions = sameDay(date, now)
    ? { hour: '2-digit', minute: '2-digit' }
    : { day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit' };
  return new Intl.DateTimeFormat(localeFor(lang), options).format(date);
}
