// Development sign-in: pick an employee by name, get a token from employee-service's
// development-only endpoint (absent in production, where the identity provider signs in).
import { useEffect, useState } from "preact/hooks";
import { post } from "../api";
import { directory, loadDirectory } from "../directory";
import { t } from "../i18n";
import { session, type Employee } from "../session";
import { useSignal } from "../signal";
import { Feedback } from "../feedback";

interface SignedIn {
  token: string;
  employee: Employee;
}

export function SignInPage() {
  const people = useSignal(directory);
  const [picked, setPicked] = useState("");
  const [admin, setAdmin] = useState(false);
  const [error, setError] = useState("");
  useEffect(() => {
    loadDirectory().catch(() => setError(t("signInUnavailable")));
  }, []);
  const submit = async (event: Event) => {
    event.preventDefault();
    setError("");
    try {
      const signedIn = await post<SignedIn>("/dev/sign-in", { employeeId: Number(picked), admin });
      session.value = { token: signedIn.token, employee: signedIn.employee };
    } catch (failure) {
      setError((failure as Error).message);
    }
  };
  return (
    <section class="card narrow">
      <h2>{t("signInTitle")}</h2>
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
    </section>
  );
}
