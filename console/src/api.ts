// Same-origin calls to the services: the gateway in front of the console routes each path to
// its service (devstack/console.py), so no service address is known here.
import { expire, session } from "./session";

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function detail(body: unknown, status: number): string {
  const text = (body as { detail?: unknown } | null)?.detail;
  if (typeof text === "string") return text;
  if (Array.isArray(text)) {
    return text.map((e: { loc?: unknown[]; msg?: string }) => `${e.loc?.slice(1).join(".")}: ${e.msg}`).join("; ");
  }
  return `HTTP ${status}`;
}

export async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { Accept: "application/json" };
  const token = session.value?.token;
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const parsed: unknown = response.status === 204 ? null : await response.json().catch(() => null);
  // A refused token ends the session with "session expired" rather than failing every call.
  if (response.status === 401 && token) expire();
  if (!response.ok) throw new ApiError(response.status, detail(parsed, response.status));
  return parsed as T;
}

export const get = <T>(path: string) => api<T>("GET", path);
export const post = <T>(path: string, body?: unknown) => api<T>("POST", path, body);
export const put = <T>(path: string, body: unknown) => api<T>("PUT", path, body);
export const patch = <T>(path: string, body: unknown) => api<T>("PATCH", path, body);
export const del = (path: string) => api<null>("DELETE", path);
