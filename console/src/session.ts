// Who is signed in. The token lives in this tab's sessionStorage (never in a URL): a reload
// keeps the sign-in, closing the tab ends it.
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
}

const KEY = "erp-console-session";

function restored(): Session | null {
  try {
    const raw = sessionStorage.getItem(KEY);
    return raw ? (JSON.parse(raw) as Session) : null;
  } catch {
    return null;
  }
}

export const session = signal<Session | null>(restored());
session.subscribe((value) => {
  if (value) sessionStorage.setItem(KEY, JSON.stringify(value));
  else sessionStorage.removeItem(KEY);
});

/** Whether the token carries the admin role: it decides which pages are offered, while the
 * services decide, on every call, what the token may do. */
export function isAdmin(current: Session | null): boolean {
  try {
    const payload = current?.token.split(".")[1] ?? "";
    const claims = JSON.parse(atob(payload.replace(/-/g, "+").replace(/_/g, "/"))) as { roles?: unknown };
    return Array.isArray(claims.roles) && claims.roles.includes("admin");
  } catch {
    return false;
  }
}
