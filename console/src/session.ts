// Who is signed in. The token lives in this tab's sessionStorage (never in a URL, never
// logged): a reload keeps the sign-in, closing the tab ends it. A token past its `exp`, or
// one a service refuses (401), ends the session with "session expired" instead of leaving
// the console retrying with it.
import { signal } from "./signal";

export interface Employee {
  id: number;
  name: string;
  department: string;
  position: string;
}

export interface Session {
  token: string;
  employee: Employee;
  // How the token was obtained: sign-out at the identity provider only for "oidc".
  via?: "development" | "oidc";
}

const KEY = "erp-console-session";

function claims(token: string): { exp?: unknown; roles?: unknown; sub?: unknown } {
  try {
    const payload = token.split(".")[1] ?? "";
    return JSON.parse(atob(payload.replace(/-/g, "+").replace(/_/g, "/"))) as Record<string, unknown>;
  } catch {
    return {};
  }
}

/** The token's subject (the employee id), if it is one. */
export function subjectOf(token: string): number | null {
  const sub = claims(token).sub;
  return typeof sub === "string" && /^\d+$/.test(sub) ? Number(sub) : null;
}

/** Milliseconds since the epoch at which the token stops being valid, if it says. */
function expiresAt(token: string): number | null {
  const exp = claims(token).exp;
  return typeof exp === "number" ? exp * 1000 : null;
}

export function hasExpired(token: string): boolean {
  const at = expiresAt(token);
  return at !== null && at <= Date.now();
}

function restored(): Session | null {
  try {
    const raw = sessionStorage.getItem(KEY);
    return raw ? (JSON.parse(raw) as Session) : null;
  } catch {
    return null;
  }
}

// Set when the session ended by itself (expired or refused), until the next sign-in.
export const expired = signal<boolean>(false);
export const session = signal<Session | null>(null);

let timer: ReturnType<typeof setTimeout> | undefined;
session.subscribe((value) => {
  clearTimeout(timer);
  if (value) {
    sessionStorage.setItem(KEY, JSON.stringify(value));
    expired.value = false;
    const at = expiresAt(value.token);
    // setTimeout's delay is a 32-bit count of milliseconds: a longer wait is not scheduled.
    if (at !== null && at - Date.now() < 2 ** 31 - 1) timer = setTimeout(expire, Math.max(0, at - Date.now()));
  } else {
    sessionStorage.removeItem(KEY);
  }
});

/** Ends the session because its token is no longer accepted; the sign-in page says so. */
export function expire(): void {
  if (!session.value) return;
  session.value = null;
  expired.value = true;
}

const kept = restored();
if (kept && hasExpired(kept.token)) {
  sessionStorage.removeItem(KEY);
  expired.value = true;
} else {
  session.value = kept;
}

/** Whether the token carries the admin role: it decides which pages are offered, while the
 * services decide, on every call, what the token may do. */
export function isAdmin(current: Session | null): boolean {
  const roles = current ? claims(current.token).roles : undefined;
  return Array.isArray(roles) && roles.includes("admin");
}
