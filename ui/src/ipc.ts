// Typed wrappers around the Tauri commands and events of the Vigie core.
// This is the only module that talks to the backend: the view never calls
// `invoke` or `listen` itself.
import { invoke } from '@tauri-apps/api/core';
import { listen, type UnlistenFn } from '@tauri-apps/api/event';

export type Source = 'mail' | 'chat' | 'tasks';

export type StateKind =
  | 'connecting'
  | 'live'
  | 'polling'
  | 'backingOff'
  | 'rateLimited'
  | 'needsAttention'
  | 'authFailed'
  | 'disabled';

export interface AccountState {
  kind: StateKind;
  /** The server's or the core's own words, e.g. "connection refused". */
  reason: string | null;
  /** RFC 3339; for `backingOff` and `rateLimited`, when the next attempt is. */
  until: string | null;
}

export interface AccountView {
  id: string;
  name: string;
  source: Source;
  state: AccountState;
  /** null: the source gives no count. */
  unread: number | null;
  /** Something new without a count. */
  dot: boolean;
  /** RFC 3339. */
  lastEventAt: string | null;
  lastError: string | null;
  /** A standing remark that is not an error, e.g. an API key's limits. */
  notice: string | null;
}

export interface Badge {
  count: number;
  dot: boolean;
  /** What the tray shows: "", "7", "99+", "•". */
  label: string;
}

export interface Overview {
  /** true: no account is configured, the built-in demo accounts are running. */
  demo: boolean;
  /** RFC 3339; notifications are paused until then. */
  pausedUntil: string | null;
  /** RFC 3339; quiet hours hold notifications until then. */
  quietUntil: string | null;
  badge: Badge;
  accounts: AccountView[];
  /** Problems not tied to one account (invalid config file, state not saved), in the core's words. */
  problems: string[];
}

export type PauseUntil = 'hour' | 'tomorrow' | 'resume';

/** A form field the core refused, named as in the form (`server`, `mail.port`). */
export interface FieldError {
  field: string;
  message: string;
}

/** What a failing command rejects with. */
export interface CommandError {
  code: string;
  message: string;
  /** Only when a form was refused (`code` is "fields"). */
  fields?: FieldError[];
}

export type BadgeMode = 'count' | 'dot' | 'ignore';
export type TlsMode = 'implicit' | 'starttls' | 'none';
export type MailAuth = 'password' | 'xoauth2' | 'oauthbearer';
export type OpenIn = 'browser' | 'desktop-app';
export type TasksAuth = 'token' | 'api-key';
export type RoomPreference = 'all' | 'mentions' | 'nothing';

export interface MailForm {
  port: number | null;
  tls: TlsMode;
  allowPlaintextOnLoopback: boolean;
  folders: string[];
  auth: MailAuth;
  pinnedFingerprint: string | null;
  webmailLink: string | null;
}

export interface ChatForm {
  userId: string | null;
  openIn: OpenIn;
  notifyAllMessages: boolean;
  /** By room name; a room without a choice follows the server's preference. */
  rooms: Record<string, RoomPreference>;
}

export interface TasksForm {
  auth: TasksAuth;
  assignedTasks: BadgeMode;
  requestsPerMinute: number | null;
}

/** An account as the settings edit it (never with its secret). */
export interface AccountForm {
  /** Empty for a new account. */
  id: string;
  name: string;
  source: Source;
  enabled: boolean;
  badge: BadgeMode;
  server: string;
  username: string;
  pollIntervalSecs: number | null;
  mail: MailForm | null;
  chat: ChatForm | null;
  tasks: TasksForm | null;
}

export interface AccountEntry {
  form: AccountForm;
  /** A secret is stored in the keyring for it. */
  hasSecret: boolean;
}

export interface QuietHours {
  /** "HH:MM", local time. */
  from: string;
  to: string;
}

export interface NotificationsForm {
  previews: boolean;
  burstThreshold: number;
  sound: boolean;
  /** null: no quiet hours. */
  quietHours: QuietHours | null;
}

export interface HintForm {
  from: Source;
  senderContains: string;
  refresh: Source;
}

export interface SettingsView {
  configFile: string;
  accounts: AccountEntry[];
  notifications: NotificationsForm;
  hints: HintForm[];
  /** Start in the tray only. */
  startHidden: boolean;
}

export interface StartOptions {
  /** The OS starts Vigie at login. */
  atLogin: boolean;
  /** Vigie starts in the tray only. */
  hidden: boolean;
}

export type StepKind = 'resolve' | 'connect' | 'tls' | 'server' | 'signIn' | 'permissions' | 'offers';
export type Outcome = 'ok' | 'warning' | 'failed';

export interface ProbeStep {
  kind: StepKind;
  outcome: Outcome;
  /** In the server's or the core's words. */
  detail: string;
}

export interface RoomChoice {
  id: string;
  name: string;
  kind: string;
}

export interface ProbeReport {
  steps: ProbeStep[];
  ok: boolean;
  discovered: {
    untrustedCertificate: string | null;
    folders: string[];
    rooms: RoomChoice[];
  };
}

export interface ProbeProgress {
  probeId: number;
  steps: ProbeStep[];
}

export const COMMANDS = {
  getOverview: 'get_overview',
  refreshNow: 'refresh_now',
  refreshAccount: 'refresh_account',
  pauseNotifications: 'pause_notifications',
  getSettings: 'get_settings',
  saveAccount: 'save_account',
  removeAccount: 'remove_account',
  setAccountEnabled: 'set_account_enabled',
  saveNotifications: 'save_notifications',
  saveHints: 'save_hints',
  testConnection: 'test_connection',
  getStartOptions: 'get_start_options',
  setStartAtLogin: 'set_start_at_login',
  setStartHidden: 'set_start_hidden',
} as const;

export const EVENTS = {
  overviewChanged: 'overview-changed',
  probeProgress: 'probe-progress',
} as const;

export function getOverview(): Promise<Overview> {
  return invoke<Overview>(COMMANDS.getOverview);
}

export async function refreshNow(): Promise<void> {
  await invoke<null>(COMMANDS.refreshNow);
}

export async function pauseNotifications(until: PauseUntil): Promise<void> {
  await invoke<null>(COMMANDS.pauseNotifications, { until });
}

export async function refreshAccount(id: string): Promise<void> {
  await invoke<null>(COMMANDS.refreshAccount, { id });
}

export function getSettings(): Promise<SettingsView> {
  return invoke<SettingsView>(COMMANDS.getSettings);
}

/** Saves an account; `secret` (when typed) goes to the keyring. Resolves to its id. */
export function saveAccount(form: AccountForm, secret: string | null): Promise<string> {
  return invoke<string>(COMMANDS.saveAccount, { form, secret });
}

export async function removeAccount(id: string): Promise<void> {
  await invoke<null>(COMMANDS.removeAccount, { id });
}

export async function setAccountEnabled(id: string, enabled: boolean): Promise<void> {
  await invoke<null>(COMMANDS.setAccountEnabled, { id, enabled });
}

export async function saveNotifications(form: NotificationsForm): Promise<void> {
  await invoke<null>(COMMANDS.saveNotifications, { form });
}

export async function saveHints(hints: HintForm[]): Promise<void> {
  await invoke<null>(COMMANDS.saveHints, { hints });
}

/** Runs "Test connection"; its steps also arrive as `probe-progress` events tagged `probeId`. */
export function testConnection(form: AccountForm, secret: string | null, probeId: number): Promise<ProbeReport> {
  return invoke<ProbeReport>(COMMANDS.testConnection, { form, secret, probeId });
}

export function onProbeProgress(handler: (progress: ProbeProgress) => void): Promise<UnlistenFn> {
  return listen<ProbeProgress>(EVENTS.probeProgress, (event) => {
    handler(event.payload);
  });
}

export function getStartOptions(): Promise<StartOptions> {
  return invoke<StartOptions>(COMMANDS.getStartOptions);
}

export async function setStartAtLogin(enabled: boolean): Promise<void> {
  await invoke<null>(COMMANDS.setStartAtLogin, { enabled });
}

export async function setStartHidden(hidden: boolean): Promise<void> {
  await invoke<null>(COMMANDS.setStartHidden, { hidden });
}

/** The fields a refused form should mark. */
export function fieldErrors(error: unknown): FieldError[] {
  return isCommandError(error) && Array.isArray(error.fields) ? error.fields : [];
}

/** Calls `handler` with every `overview-changed` payload. */
export function onOverviewChanged(
  handler: (overview: Overview) => void,
): Promise<UnlistenFn> {
  return listen<Overview>(EVENTS.overviewChanged, (event) => {
    handler(event.payload);
  });
}

export function isCommandError(value: unknown): value is CommandError {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { code?: unknown }).code === 'string' &&
    typeof (value as { message?: unknown }).message === 'string'
  );
}

/**
 * The text to show for a rejected command: the core's `message`, or for
 * anything unexpected (a string, an Error) its text, else `fallback`.
 */
export function errorMessage(error: unknown, fallback: string): string {
  if (isCommandError(error) && error.message.trim() !== '') return error.message;
  if (typeof error === 'string' && error.trim() !== '') return error;
  if (error instanceof Error && error.message.trim() !== '') return error.message;
  return fallback;
}
