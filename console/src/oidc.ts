// Production sign-in: OpenID Connect authorization code flow with PKCE (S256) for a public
// client. The verifier, state and nonce wait in this tab's sessionStorage while the browser
// is at the identity provider; the code comes back in the address bar and is taken out of it
// before anything else runs. The access token is kept like the development one
// (session.ts): never in a URL, never logged.
import type { OidcConfig } from "./config";

interface Discovery {
  authorization_endpoint: string;
  token_endpoint: string;
  end_session_endpoint?: string;
}

interface Pending {
  state: string;
  nonce: string;
  verifier: string;
  redirectUri: string;
  // The page (#fragment) to return to: the provider redirects to redirect_uri alone.
  hash: string;
}

/** What the provider sent back in the address bar (already removed from it). */
export interface AuthorizationResponse {
  code: string | null;
  state: string | null;
  error: string | null;
  errorDescription: string | null;
}

export class SignInRefused extends Error {}

const PENDING = "erp-console-oidc-pending";
// Parameters an authorization response may carry (RFC 6749, RFC 9207, OIDC session management).
const RESPONSE_PARAMS = ["code", "state", "error", "error_description", "error_uri", "iss", "session_state"];

const discoveries = new Map<string, Promise<Discovery>>();

function discover(issuer: string): Promise<Discovery> {
  let found = discoveries.get(issuer);
  if (!found) {
    found = (async () => {
      const response = await fetch(`${issuer.replace(/\/$/, "")}/.well-known/openid-configuration`);
      if (!response.ok) throw new Error(`identity provider discovery: HTTP ${response.status}`);
      return (await response.json()) as Discovery;
    })();
    found.catch(() => discoveries.delete(issuer));
    discoveries.set(issuer, found);
  }
  return found;
}

function base64url(bytes: Uint8Array): string {
  let text = "";
  for (const byte of bytes) text += String.fromCharCode(byte);
  return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function randomString(byteCount: number): string {
  return base64url(crypto.getRandomValues(new Uint8Array(byteCount)));
}

async function challengeOf(verifier: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
  return base64url(new Uint8Array(digest));
}

function redirectUri(): string {
  return location.origin + location.pathname;
}

/** Sends the browser to the identity provider; it comes back to this page with a code. */
export async function beginSignIn(config: OidcConfig): Promise<void> {
  const discovery = await discover(config.issuer);
  // 32 random bytes: a 43-character verifier, the shortest RFC 7636 allows, at full entropy.
  const pending: Pending = {
    state: randomString(32),
    nonce: randomString(32),
    verifier: randomString(32),
    redirectUri: redirectUri(),
    hash: location.hash,
  };
  sessionStorage.setItem(PENDING, JSON.stringify(pending));
  const url = new URL(discovery.authorization_endpoint);
  const params: Record<string, string> = {
    response_type: "code",
    client_id: config.clientId,
    redirect_uri: pending.redirectUri,
    scope: config.scope,
    state: pending.state,
    nonce: pending.nonce,
    code_challenge: await challengeOf(pending.verifier),
    code_challenge_method: "S256",
  };
  if (config.audience) params.audience = config.audience;
  for (const [name, value] of Object.entries(params)) url.searchParams.set(name, value);
  location.assign(url.toString());
}

/** Takes an authorization response out of the address bar (history.replaceState), so the
 * code is neither bookmarked, nor reloaded, nor sent on as a referrer. Run before anything
 * else; null when the page was not opened by the provider. */
export function takeAuthorizationResponse(): AuthorizationResponse | null {
  const params = new URLSearchParams(location.search);
  if (!params.has("state") || !(params.has("code") || params.has("error"))) return null;
  const response: AuthorizationResponse = {
    code: params.get("code"),
    state: params.get("state"),
    error: params.get("error"),
    errorDescription: params.get("error_description"),
  };
  for (const name of RESPONSE_PARAMS) params.delete(name);
  const rest = params.toString();
  history.replaceState(history.state, "", location.pathname + (rest ? `?${rest}` : "") + location.hash);
  return response;
}

function nonceOf(idToken: string): unknown {
  try {
    const payload = idToken.split(".")[1] ?? "";
    return (JSON.parse(atob(payload.replace(/-/g, "+").replace(/_/g, "/"))) as { nonce?: unknown }).nonce;
  } catch {
    return undefined;
  }
}

/** Exchanges the code of a response this tab asked for (state checked) for an access token. */
export async function completeSignIn(config: OidcConfig, response: AuthorizationResponse): Promise<string> {
  const raw = sessionStorage.getItem(PENDING);
  sessionStorage.removeItem(PENDING);
  const pending = raw ? (JSON.parse(raw) as Pending) : null;
  if (!pending || response.state !== pending.state) {
    throw new SignInRefused("state");
  }
  if (pending.hash) history.replaceState(history.state, "", location.pathname + location.search + pending.hash);
  if (response.error || !response.code) {
    throw new Error(response.errorDescription || response.error || "no authorization code");
  }
  const discovery = await discover(config.issuer);
  const answer = await fetch(discovery.token_endpoint, {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded", Accept: "application/json" },
    body: new URLSearchParams({
      grant_type: "authorization_code",
      code: response.code,
      redirect_uri: pending.redirectUri,
      client_id: config.clientId,
      code_verifier: pending.verifier,
    }),
  });
  const body = (await answer.json().catch(() => ({}))) as {
    access_token?: string;
    id_token?: string;
    error?: string;
    error_description?: string;
  };
  if (!answer.ok || !body.access_token) {
    throw new Error(body.error_description || body.error || `token endpoint: HTTP ${answer.status}`);
  }
  // The ID token is not used for anything else; its nonce proves the answer belongs to this request.
  if (body.id_token !== undefined && nonceOf(body.id_token) !== pending.nonce) {
    throw new SignInRefused("nonce");
  }
  return body.access_token;
}

/** Where to end the session at the provider too, when it says (RP-initiated logout). */
export async function signOutUrl(config: OidcConfig): Promise<string | null> {
  const discovery = await discover(config.issuer).catch(() => null);
  if (!discovery?.end_session_endpoint) return null;
  const url = new URL(discovery.end_session_endpoint);
  url.searchParams.set("client_id", config.clientId);
  url.searchParams.set("post_logout_redirect_uri", redirectUri());
  return url.toString();
}
