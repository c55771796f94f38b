// The live notification feed: one WebSocket to /ws/{employeeId}, the token offered as the
// subprotocol pair `bearer, <token>` (browsers cannot set headers on a WebSocket and a URL
// ends up in logs). After a drop it reconnects with ?after=<last id seen>, so what arrived
// meanwhile is replayed, never shown twice. It stops, rather than retry for ever, once the
// token has expired or a service refuses it: the session ends with "session expired".
import { ApiError, get } from "./api";
import { expire, hasExpired } from "./session";
import { signal } from "./signal";

export interface Notification {
  id: number;
  type: string;
  createdAt: string;
  employeeId: number;
  requestId?: number;
  step?: number;
  approverId?: number;
  finalStatus?: string;
  stepStatus?: string;
  title?: string;
  comment?: string;
  reason?: string;
}

export type ConnectionState = "connecting" | "open" | "closed";

// The newest first, at most this many kept.
const KEPT = 200;
const RETRY_FIRST_MS = 500;
const RETRY_MAX_MS = 5000;

export const notifications = signal<Notification[]>([]);
export const connection = signal<ConnectionState>("closed");

let socket: WebSocket | null = null;
let retry: ReturnType<typeof setTimeout> | undefined;
let stopped = true;

function lastId(): number {
  return notifications.value.length ? notifications.value[0].id : 0;
}

function socketUrl(employeeId: number): string {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  // ?after=0 on the first connection too: the recent backlog fills the list.
  return `${scheme}://${location.host}/ws/${employeeId}?after=${lastId()}`;
}

function received(event: MessageEvent<string>): void {
  let message: Notification;
  try {
    message = JSON.parse(event.data) as Notification;
  } catch {
    return;
  }
  if (typeof message.id !== "number" || message.id <= lastId()) return;
  notifications.value = [message, ...notifications.value].slice(0, KEPT);
}

async function stillAccepted(employeeId: number): Promise<boolean> {
  try {
    await get(`/employees/${employeeId}`);
    return true;
  } catch (failure) {
    return !(failure instanceof ApiError && failure.status === 401);
  }
}

export function startFeed(employeeId: number, token: string): void {
  stopFeed();
  stopped = false;
  let delay = RETRY_FIRST_MS;
  const connect = () => {
    connection.value = "connecting";
    const opened = new WebSocket(socketUrl(employeeId), ["bearer", token]);
    socket = opened;
    opened.onopen = () => {
      delay = RETRY_FIRST_MS;
      connection.value = "open";
    };
    opened.onmessage = received;
    let wasOpen = false;
    opened.addEventListener("open", () => (wasOpen = true));
    const again = () => {
      if (stopped) return;
      retry = setTimeout(connect, delay);
      delay = Math.min(delay * 2, RETRY_MAX_MS);
    };
    opened.onclose = () => {
      if (socket !== opened) return;
      socket = null;
      connection.value = "closed";
      if (stopped) return;
      if (hasExpired(token)) {
        expire();
        return;
      }
      // A refused handshake looks like any failed connection to a browser (no status): an
      // HTTP call tells a refused token (401, which ends the session) from a service away.
      if (wasOpen) again();
      else void stillAccepted(employeeId).then((accepted) => (accepted ? again() : expire()));
    };
  };
  connect();
}

export function stopFeed(): void {
  stopped = true;
  clearTimeout(retry);
  const open = socket;
  socket = null;
  open?.close();
  connection.value = "closed";
  notifications.value = [];
}

/** Calls `listener` when a notification of one of `types` arrives (replayed ones included)
 * and after each reconnect, when what was missed may be more than the backlog replays. */
export function onFeedChange(types: ReadonlySet<string>, listener: () => void): () => void {
  let wasOpen = connection.value === "open";
  const unsubscribeState = connection.subscribe((state) => {
    if (state === "open" && !wasOpen) listener();
    wasOpen = state === "open";
  });
  const unsubscribeFeed = onNotification((n) => {
    if (types.has(n.type)) listener();
  });
  return () => {
    unsubscribeState();
    unsubscribeFeed();
  };
}

/** Calls `listener` for each notification that arrives from now on (replayed ones included). */
export function onNotification(listener: (n: Notification) => void): () => void {
  let seen = lastId();
  return notifications.subscribe((list) => {
    const fresh = list.filter((n) => n.id > seen);
    if (list.length) seen = Math.max(seen, list[0].id);
    for (const n of fresh.reverse()) listener(n);
  });
}
