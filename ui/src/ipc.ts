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
  badge: Badge;
  accounts: AccountView[];
  /** Problems not tied to one account (invalid config file, state not saved), in the core's words. */
  problems: string[];
}

export type PauseUntil = 'hour' | 'tomorrow' | 'resume';

/** What a failing command rejects with. */
export interface CommandError {
  code: string;
  message: string;
}

export const COMMANDS = {
  getOverview: 'get_overview',
  refreshNow: 'refresh_now',
  pauseNotifications: 'pause_notifications',
} as const;

export const EVENTS = {
  overviewChanged: 'overview-changed',
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
