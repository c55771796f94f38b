// The shell: header (who, live connection state, language), the page tabs, the page.
// Pages are chosen by the URL's fragment, which never carries a credential.
import type { JSX } from "preact";
import { useEffect, useState } from "preact/hooks";
import { loadDirectory } from "./directory";
import { lang, t, type Label } from "./i18n";
import { connection, startFeed, stopFeed } from "./notifications";
import { AttendancePage } from "./pages/attendance";
import { InboxPage } from "./pages/inbox";
import { NotificationsPage } from "./pages/notifications";
import { RequestsPage } from "./pages/requests";
import { SignInPage } from "./pages/sign-in";
import { session } from "./session";
import { useSignal } from "./signal";

const PAGES: { id: string; label: Label; view: () => JSX.Element }[] = [
  { id: "notifications", label: "navNotifications", view: () => <NotificationsPage /> },
  { id: "inbox", label: "navInbox", view: () => <InboxPage /> },
  { id: "requests", label: "navRequests", view: () => <RequestsPage /> },
  { id: "attendance", label: "navAttendance", view: () => <AttendancePage /> },
];

function usePage(): string {
  const current = () => location.hash.slice(1) || PAGES[0].id;
  const [page, setPage] = useState(current);
  useEffect(() => {
    const changed = () => setPage(current());
    addEventListener("hashchange", changed);
    return () => removeEventListener("hashchange", changed);
  }, []);
  return page;
}

function ConnectionBadge() {
  const state = useSignal(connection);
  return (
    <span class={`badge badge-${state}`} role="status" aria-live="polite" data-connection={state}>
      {t("connection")}: {t(state)}
    </span>
  );
}

export function App() {
  useSignal(lang);
  const signedIn = useSignal(session);
  const page = usePage();
  useEffect(() => {
    if (!signedIn) return;
    startFeed(signedIn.employee.id, signedIn.token);
    loadDirectory().catch(() => undefined);
    return stopFeed;
  }, [signedIn?.token]);
  useEffect(() => {
    document.title = t("appTitle");
  });
  const shown = PAGES.find((p) => p.id === page) ?? PAGES[0];
  return (
    <>
      <header class="top">
        <h1>{t("appTitle")}</h1>
        {signedIn && (
          <span class="who" data-testid="who">
            {signedIn.employee.name} (#{signedIn.employee.id})
          </span>
        )}
        {signedIn && <ConnectionBadge />}
        <button
          type="button"
          class="link"
          aria-label={t("languageLabel")}
          onClick={() => (lang.value = lang.value === "ko" ? "en" : "ko")}
        >
          {t("language")}
        </button>
        {signedIn && (
          <button type="button" class="link" onClick={() => (session.value = null)}>
            {t("signOut")}
          </button>
        )}
      </header>
      {signedIn ? (
        <>
          <nav class="tabs" aria-label={t("appTitle")}>
            {PAGES.map((p) => (
              <a href={`#${p.id}`} aria-current={p.id === shown.id ? "page" : undefined}>
                {t(p.label)}
              </a>
            ))}
          </nav>
          <main>{shown.view()}</main>
        </>
      ) : (
        <main>
          <SignInPage />
        </main>
      )}
    </>
  );
}
