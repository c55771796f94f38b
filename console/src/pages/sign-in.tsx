// Sign-in, as the deployment's /config.json says: through the identity provider (OIDC with
// PKCE, oidc.ts), or on a development stack by picking an employee, whose token comes from
// employee-service's development-only endpoint. The oidc mode never offers the development one.
import { useEffect, useState } from "preact/hooks";
import { get, post } from "../api";
import { loadConfig, type ConsoleConfig, type OidcConfig } from "../config";
import { t } from "../i18n";
import { beginSignIn, completeSignIn, signOutUrl, SignInRefused, type AuthorizationResponse } from "../oidc";
import { expired, session, subjectOf, type Employee } from "../session";
import { useSignal } from "../signal";
import { Feedback } from "../feedback";

interface SignedIn {
  token: string;
  employee: Employee;
}

// The provider's answer this page was opened with, taken from the address bar by main.tsx.
let returned: AuthorizationResponse | null = null;

export function handleAuthorizationResponse(response: AuthorizationResponse | null): void {
  returned = response;
}

async function ownRecord(token: string): Promise<Employee> {
  const sub = subjectOf(token);
  if (sub === null) throw new Error(t("oidcNoEmployee"));
  // An employee may read their own record; the token goes in the header only.
  const response = await fetch(`/employees/${sub}`, {
    headers: { Accept: "application/json", Authorization: `Bearer ${token}` },
  });
  if (response.status === 404) throw new Error(t("oidcNoEmployee"));
  if (!response.ok) throw new Error(`${t("oidcFailed")}: HTTP ${response.status}`);
  return (await response.json()) as Employee;
}

async function finishOidc(config: OidcConfig, response: AuthorizationResponse): Promise<void> {
  let token: string;
  try {
    token = await completeSignIn(config, response);
  } catch (failure) {
    if (failure instanceof SignInRefused) throw new Error(t("oidcStateMismatch"));
    throw new Error(`${t("oidcFailed")}: ${(failure as Error).message}`);
  }
  const employee = await ownRecord(token);
  const { id, name, department, position } = employee;
  session.value = { token, employee: { id, name, department, position }, via: "oidc" };
}

/** Ends the session here and, after an OIDC sign-in, at the provider when it offers that. */
export async function signOut(): Promise<void> {
  const via = session.value?.via;
  session.value = null;
  if (via !== "oidc") return;
  const config = await loadConfig().catch(() => null);
  const url = config?.oidc ? await signOutUrl(config.oidc) : null;
  if (url) location.assign(url);
}

function OidcSignIn({ oidc }: { oidc: OidcConfig }) {
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    const response = returned;
    returned = null;
    if (!response) return;
    setBusy(true);
    finishOidc(oidc, response)
      .catch((failure: Error) => setError(failure.message))
      .finally(() => setBusy(false));
  }, []);
  const start = () => {
    setError("");
    setBusy(true);
    beginSignIn(oidc).catch((failure: Error) => {
      setBusy(false);
      setError(`${t("oidcFailed")}: ${failure.message}`);
    });
  };
  return (
    <>
      <p class="muted">{t("oidcHelp")}</p>
      <button type="button" onClick={start} disabled={busy}>
        {t("signIn")}
      </button>
      <Feedback error={error} />
    </>
  );
}

function DevelopmentSignIn() {
  const [people, setPeople] = useState<Employee[]>([]);
  const [picked, setPicked] = useState("");
  const [admin, setAdmin] = useState(false);
  const [error, setError] = useState("");
  useEffect(() => {
    get<Employee[]>("/dev/sign-in/employees")
      .then(setPeople)
      .catch(() => setError(t("signInUnavailable")));
  }, []);
  const submit = async (event: Event) => {
    event.preventDefault();
    setError("");
    try {
      const signedIn = await post<SignedIn>("/dev/sign-in", { employeeId: Number(picked), admin });
      session.value = { token: signedIn.token, employee: signedIn.employee, via: "development" };
    } catch (failure) {
      setError((failure as Error).message);
    }
  };
  return (
    <>
      <p class="muted">{t("signInHelp")}</p>
      <form onSubmit={submit}>
        <label>
          {t("employee")}
          <select required value={picked} onChange={(e) => setPicked(e.currentTarget.value)}>
            <option value="" disabled>
              —
            </option>
            {people.map((p) => (
              <option value={String(p.id)}>
                {p.name} · {p.department} · {p.position}
              </option>
            ))}
          </select>
        </label>
        <label class="inline">
          <input type="checkbox" checked={admin} onChange={(e) => setAdmin(e.currentTarget.checked)} />
          {t("asAdmin")}
        </label>
        <button type="submit" disabled={!picked}>
          {t("signIn")}
        </button>
      </form>
      <Feedback error={error} />
    </>
  );
}

export function SignInPage() {
  const sessionExpired = useSignal(expired);
  const [config, setConfig] = useState<ConsoleConfig | null>(null);
  const [error, setError] = useState("");
  useEffect(() => {
    loadConfig()
      .then(setConfig)
      .catch((failure: Error) => setError(failure.message));
  }, []);
  const oidc = config?.signIn === "oidc" ? config.oidc : undefined;
  return (
    <section class="card narrow">
      <h2>{t(oidc ? "oidcTitle" : "signInTitle")}</h2>
      {sessionExpired && (
        <p class="error" role="alert" data-testid="session-expired">
          {t("sessionExpired")}
        </p>
      )}
      {config && (oidc ? <OidcSignIn oidc={oidc} /> : <DevelopmentSignIn />)}
      <Feedback error={error} />
    </section>
  );
}
