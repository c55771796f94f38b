// What the deployment tells the console at run time (/config.json on the console's own
// origin): how people sign in and where the tracing UI is. One build serves every
// deployment; without the file the console is on a development stack.

export interface OidcConfig {
  issuer: string;
  clientId: string;
  scope: string;
  // The API's audience, for providers that take it on the authorization request.
  audience?: string;
}

export interface ConsoleConfig {
  signIn: "development" | "oidc";
  oidc?: OidcConfig;
  traceUi?: string;
}

const DEVELOPMENT: ConsoleConfig = { signIn: "development" };

function checked(raw: unknown): ConsoleConfig {
  const found = raw as Partial<ConsoleConfig> | null;
  if (found?.signIn === "development") return { ...DEVELOPMENT, traceUi: found.traceUi };
  const oidc = found?.oidc;
  if (found?.signIn === "oidc" && oidc && typeof oidc.issuer === "string" && typeof oidc.clientId === "string") {
    return {
      signIn: "oidc",
      oidc: { issuer: oidc.issuer, clientId: oidc.clientId, scope: oidc.scope || "openid", audience: oidc.audience },
      traceUi: found.traceUi,
    };
  }
  throw new Error('/config.json: signIn must be "development", or "oidc" with oidc.issuer and oidc.clientId');
}

let loaded: Promise<ConsoleConfig> | null = null;

/** The deployment's configuration, read once: a missing file means a development stack; a
 * malformed one fails rather than fall back to a sign-in the deployment did not choose. */
export function loadConfig(): Promise<ConsoleConfig> {
  loaded ??= (async () => {
    const response = await fetch("/config.json", { headers: { Accept: "application/json" }, cache: "no-cache" });
    // A gateway without the file answers 404, or index.html (a single-page app's fallback).
    const json = (response.headers.get("Content-Type") ?? "").includes("json");
    if (response.status === 404 || (response.ok && !json)) return DEVELOPMENT;
    if (!response.ok) throw new Error(`/config.json: HTTP ${response.status}`);
    const body: unknown = await response.json().catch(() => {
      throw new Error("/config.json is not JSON");
    });
    return checked(body);
  })();
  return loaded;
}
