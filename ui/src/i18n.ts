// Strings and date formatting for English and French.
// The language follows navigator.language (fr* → French, anything else →
// English) unless the user picked one in the language switch, which is
// remembered in localStorage.
import type { BadgeMode, OpenIn, Outcome, RoomPreference, Source, StateKind, StepKind, TasksAuth, TlsMode } from './ipc';

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
  /** The settings screens: accounts' actions, forms, notification options. */
  ui: UiMessages;
}

export interface UiMessages {
  tabs: { accounts: string; notifications: string; label: string };
  welcomeTitle: string;
  welcomeText: string;
  addAccount: string;
  chooseSource: string;
  sourceChoice: Record<Source, string>;
  actions: { edit: string; enable: string; disable: string; retry: string; remove: string };
  /** Screen-reader context for an account's buttons ("Edit Work inbox"). */
  actionFor: (action: string, name: string) => string;
  confirmRemove: (name: string) => string;
  confirmRemoveButton: string;
  cancel: string;
  removed: (name: string) => string;
  saved: string;
  formTitleNew: Record<Source, string>;
  formTitleEdit: (name: string) => string;
  fields: {
    name: string;
    server: Record<Source, string>;
    serverPlaceholder: Record<Source, string>;
    username: string;
    secret: Record<Source, string>;
    secretApiKey: string;
    secretKept: string;
    secretNew: string;
    enabled: string;
    badge: string;
    port: string;
    portDefault: (port: number) => string;
    tls: string;
    allowPlaintext: string;
    folders: string;
    foldersHint: string;
    addFolder: string;
    pinned: string;
    webmail: string;
    userId: string;
    openIn: string;
    notifyAll: string;
    tasksAuth: string;
    pollInterval: string;
    assignedTasks: string;
    requestsPerMinute: string;
    rooms: string;
    roomsHint: string;
  };
  roomChoices: Record<RoomPreference | 'server', string>;
  badgeModes: Record<BadgeMode, string>;
  tlsModes: Record<TlsMode, string>;
  openInModes: Record<OpenIn, string>;
  tasksAuthModes: Record<TasksAuth, string>;
  testConnection: string;
  testing: string;
  save: string;
  saving: string;
  trustCertificate: string;
  untrusted: (fingerprint: string) => string;
  stepNames: Record<StepKind, string>;
  outcomes: Record<Outcome, string>;
  probeHeading: string;
  probeOk: string;
  probeFailed: string;
  fixFields: string;
  options: {
    heading: string;
    previews: string;
    burst: string;
    sound: string;
    save: string;
    hintsHeading: string;
    hintsText: string;
    hintFrom: string;
    hintSender: string;
    hintRefresh: string;
    addHint: string;
    removeHint: string;
    saveHints: string;
    noHints: string;
    configFile: (path: string) => string;
    quiet: string;
    quietFrom: string;
    quietTo: string;
    quietHint: string;
    startHeading: string;
    atLogin: string;
    openAtStart: string;
  };
  quietUntil: (time: string) => string;
}

const enUi: UiMessages = {
  tabs: { accounts: 'Accounts', notifications: 'Notifications', label: 'Settings sections' },
  welcomeTitle: 'Welcome to Vigie',
  welcomeText:
    'Vigie tells you the moment new mail, chat messages or tasks arrive: one badge in the tray, and a notification for each. Until you add an account, it runs a demo with sample accounts served on this computer.',
  addAccount: 'Add an account',
  chooseSource: 'What would you like to add?',
  sourceChoice: { mail: 'Mail (IMAP)', chat: 'Rocket.Chat', tasks: 'Leantime' },
  actions: { edit: 'Edit', enable: 'Enable', disable: 'Disable', retry: 'Retry', remove: 'Remove' },
  actionFor: (action, name) => `${action} ${name}`,
  confirmRemove: (name) =>
    `Remove “${name}”? Its password or token is deleted from the keyring and its saved state is forgotten.`,
  confirmRemoveButton: 'Remove for good',
  cancel: 'Cancel',
  removed: (name) => `“${name}” was removed.`,
  saved: 'Saved.',
  formTitleNew: { mail: 'New mail account', chat: 'New Rocket.Chat account', tasks: 'New Leantime account' },
  formTitleEdit: (name) => `Edit “${name}”`,
  fields: {
    name: 'Name',
    server: { mail: 'IMAP server', chat: 'Server address', tasks: 'Leantime address' },
    serverPlaceholder: {
      mail: 'imap.example.com',
      chat: 'https://chat.example.com',
      tasks: 'https://pm.example.com',
    },
    username: 'User name',
    secret: { mail: 'Password or app password', chat: 'Personal access token', tasks: 'Personal access token' },
    secretApiKey: 'API key',
    secretKept: 'Saved in the system keyring. Leave empty to keep it.',
    secretNew: 'Kept in the system keyring, never in a file.',
    enabled: 'Watch this account',
    badge: 'In the badge',
    port: 'Port',
    portDefault: (port) => `Default: ${port}`,
    tls: 'Security',
    allowPlaintext: 'Allow a connection without encryption (only to this computer)',
    folders: 'Folders to watch',
    foldersHint: 'Test the connection to list all the server’s folders.',
    addFolder: 'Other folder',
    pinned: 'Trusted certificate (SHA-256 fingerprint)',
    webmail: 'Web mail link (optional)',
    userId: 'User id',
    openIn: 'Open messages in',
    notifyAll: 'Notify every message in rooms that are not muted',
    tasksAuth: 'Signs in with',
    pollInterval: 'Check every (seconds)',
    assignedTasks: 'New tasks assigned to me',
    requestsPerMinute: 'Server’s API rate limit (requests a minute, optional)',
    rooms: 'Rooms',
    roomsHint: 'Test the connection to list your rooms. A room without a choice here follows its notification setting on the server.',
  },
  roomChoices: { server: 'As on the server', all: 'Every message', mentions: 'Mentions only', nothing: 'Nothing' },
  badgeModes: { count: 'Count unread', dot: 'Dot only', ignore: 'Not shown' },
  tlsModes: { implicit: 'TLS (port 993)', starttls: 'STARTTLS (port 143)', none: 'None (local server only)' },
  openInModes: { browser: 'the web browser', 'desktop-app': 'the Rocket.Chat app' },
  tasksAuthModes: { token: 'a personal access token', 'api-key': 'an API key' },
  testConnection: 'Test connection',
  testing: 'Testing…',
  save: 'Save',
  saving: 'Saving…',
  trustCertificate: 'Trust this certificate',
  untrusted: (fp) =>
    `No authority vouches for this server’s certificate. Trust it only if this fingerprint matches the one your provider gives: ${fp}`,
  stepNames: {
    resolve: 'Name',
    connect: 'Connection',
    tls: 'Encryption',
    server: 'Server',
    signIn: 'Sign-in',
    permissions: 'Permissions',
    offers: 'Features',
  },
  outcomes: { ok: 'OK', warning: 'Note', failed: 'Failed' },
  probeHeading: 'Connection test',
  probeOk: 'Everything works.',
  probeFailed: 'The test stopped at the step marked “Failed”.',
  fixFields: 'Some fields need a change.',
  options: {
    heading: 'Notifications',
    previews: 'Show sender and preview (off: private mode)',
    burst: 'Group into one notification when more than this many arrive at once',
    sound: 'Play a sound',
    save: 'Save notification settings',
    hintsHeading: 'Quick refresh rules',
    hintsText:
      'When an item comes from a matching sender, another source looks at once: a Leantime mail makes the tasks refresh.',
    hintFrom: 'Items from',
    hintSender: 'Sender contains',
    hintRefresh: 'Refresh',
    addHint: 'Add a rule',
    removeHint: 'Remove this rule',
    saveHints: 'Save rules',
    noHints: 'No rules.',
    configFile: (path) => `Settings are kept in ${path}.`,
    quiet: 'Quiet hours every day',
    quietFrom: 'From',
    quietTo: 'To',
    quietHint: 'No notification in this period; the badge keeps counting, and one summary comes when it ends.',
    startHeading: 'Starting',
    atLogin: 'Start Vigie when I log in',
    openAtStart: 'Open this window when Vigie starts',
  },
  quietUntil: (time) => `Quiet hours until ${time}`,
};

const frUi: UiMessages = {
  tabs: { accounts: 'Comptes', notifications: 'Notifications', label: 'Sections des réglages' },
  welcomeTitle: 'Bienvenue dans Vigie',
  welcomeText:
    "Vigie vous prévient dès qu'arrivent un courrier, un message ou un devoir : une pastille dans la barre d'état et une notification pour chacun. Tant qu'aucun compte n'est ajouté, une démonstration tourne avec des comptes d'exemple servis par cet ordinateur.",
  addAccount: 'Ajouter un compte',
  chooseSource: 'Que voulez-vous ajouter ?',
  sourceChoice: { mail: 'Courrier (IMAP)', chat: 'Parole (Rocket.Chat)', tasks: 'Devoirs (Leantime)' },
  actions: { edit: 'Modifier', enable: 'Activer', disable: 'Désactiver', retry: 'Réessayer', remove: 'Supprimer' },
  actionFor: (action, name) => `${action} ${name}`,
  confirmRemove: (name) =>
    `Supprimer « ${name} » ? Son mot de passe ou son jeton est effacé du trousseau et son état enregistré est oublié.`,
  confirmRemoveButton: 'Supprimer définitivement',
  cancel: 'Annuler',
  removed: (name) => `« ${name} » a été supprimé.`,
  saved: 'Enregistré.',
  formTitleNew: { mail: 'Nouveau compte de courrier', chat: 'Nouveau compte Rocket.Chat', tasks: 'Nouveau compte Leantime' },
  formTitleEdit: (name) => `Modifier « ${name} »`,
  fields: {
    name: 'Nom',
    server: { mail: 'Serveur IMAP', chat: 'Adresse du serveur', tasks: 'Adresse de Leantime' },
    serverPlaceholder: {
      mail: 'imap.exemple.fr',
      chat: 'https://chat.exemple.fr',
      tasks: 'https://projets.exemple.fr',
    },
    username: "Nom d'utilisateur",
    secret: {
      mail: "Mot de passe ou mot de passe d'application",
      chat: "Jeton d'accès personnel",
      tasks: "Jeton d'accès personnel",
    },
    secretApiKey: "Clé d'API",
    secretKept: 'Enregistré dans le trousseau du système. Laissez vide pour le garder.',
    secretNew: 'Gardé dans le trousseau du système, jamais dans un fichier.',
    enabled: 'Surveiller ce compte',
    badge: 'Dans la pastille',
    port: 'Port',
    portDefault: (port) => `Par défaut : ${port}`,
    tls: 'Sécurité',
    allowPlaintext: 'Autoriser une connexion non chiffrée (vers cet ordinateur seulement)',
    folders: 'Dossiers à surveiller',
    foldersHint: 'Testez la connexion pour lister tous les dossiers du serveur.',
    addFolder: 'Autre dossier',
    pinned: 'Certificat de confiance (empreinte SHA-256)',
    webmail: 'Lien vers le webmail (facultatif)',
    userId: "Identifiant d'utilisateur",
    openIn: 'Ouvrir les messages dans',
    notifyAll: 'Notifier chaque message des salons non muets',
    tasksAuth: 'Se connecte avec',
    pollInterval: 'Vérifier toutes les (secondes)',
    assignedTasks: 'Nouveaux devoirs qui me sont confiés',
    requestsPerMinute: "Limite d'appels du serveur (requêtes par minute, facultatif)",
    rooms: 'Salons',
    roomsHint:
      'Testez la connexion pour lister vos salons. Un salon sans choix ici suit son réglage de notification sur le serveur.',
  },
  roomChoices: { server: 'Comme sur le serveur', all: 'Chaque message', mentions: 'Mentions seulement', nothing: 'Rien' },
  badgeModes: { count: 'Compter les non-lus', dot: 'Point seulement', ignore: 'Ne pas afficher' },
  tlsModes: { implicit: 'TLS (port 993)', starttls: 'STARTTLS (port 143)', none: 'Aucune (serveur local seulement)' },
  openInModes: { browser: 'le navigateur', 'desktop-app': "l'application Rocket.Chat" },
  tasksAuthModes: { token: "un jeton d'accès personnel", 'api-key': "une clé d'API" },
  testConnection: 'Tester la connexion',
  testing: 'Test en cours…',
  save: 'Enregistrer',
  saving: 'Enregistrement…',
  trustCertificate: 'Faire confiance à ce certificat',
  untrusted: (fp) =>
    `Aucune autorité ne garantit le certificat de ce serveur. Ne lui faites confiance que si cette empreinte correspond à celle que donne votre fournisseur : ${fp}`,
  stepNames: {
    resolve: 'Nom',
    connect: 'Connexion',
    tls: 'Chiffrement',
    server: 'Serveur',
    signIn: 'Identification',
    permissions: 'Autorisations',
    offers: 'Fonctions',
  },
  outcomes: { ok: 'OK', warning: 'Remarque', failed: 'Échec' },
  probeHeading: 'Test de connexion',
  probeOk: 'Tout fonctionne.',
  probeFailed: "Le test s'est arrêté à l'étape marquée « Échec ».",
  fixFields: 'Certains champs sont à corriger.',
  options: {
    heading: 'Notifications',
    previews: "Afficher l'expéditeur et l'aperçu (désactivé : mode privé)",
    burst: 'Regrouper en une seule notification au-delà de ce nombre d’arrivées simultanées',
    sound: 'Jouer un son',
    save: 'Enregistrer les notifications',
    hintsHeading: 'Règles d’actualisation rapide',
    hintsText:
      'Quand un élément vient d’un expéditeur correspondant, une autre source regarde aussitôt : un courrier de Leantime actualise les devoirs.',
    hintFrom: 'Éléments de',
    hintSender: "L'expéditeur contient",
    hintRefresh: 'Actualiser',
    addHint: 'Ajouter une règle',
    removeHint: 'Supprimer cette règle',
    saveHints: 'Enregistrer les règles',
    noHints: 'Aucune règle.',
    configFile: (path) => `Les réglages sont gardés dans ${path}.`,
    quiet: 'Heures calmes chaque jour',
    quietFrom: 'De',
    quietTo: 'À',
    quietHint: "Aucune notification pendant cette période ; la pastille continue de compter, et un résumé arrive à la fin.",
    startHeading: 'Démarrage',
    atLogin: 'Lancer Vigie à l’ouverture de session',
    openAtStart: 'Ouvrir cette fenêtre au lancement de Vigie',
  },
  quietUntil: (time) => `Heures calmes jusqu'à ${time}`,
};

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
  ui: enUi,
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
  ui: frUi,
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
