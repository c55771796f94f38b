// The shell: header (who, live connection state, language), the page tabs, the page.
// Pages are chosen by the URL's fragment, which never carries a credential.
import type { JSX } from "preact";
import { useEffect, useState } from "preact/hooks";
import { loadDirectory } from "./directory";
import { lang, t, type Label } from "./i18n";
import { connection, startFeed, stopFeed } from "./notifications";
import { AdminEmployeesPage } from "./pages/admin/employees";
import { AdminHolidaysPage } from "./pages/admin/holidays";
import { AdminLeaveTypesPage } from "./pages/admin/leave-types";
import { AdminPipelinePage } from "./pages/admin/pipeline";
import { AdminReportPage } from "./pages/admin/report";
import { AttendancePage } from "./pages/attendance";
import { InboxPage } from "./pages/inbox";
import { NotificationsPage } from "./pages/notifications";
import { RequestsPage } from "./pages/requests";
import { SignInPage, signOut } from "./pages/sign-in";
import { TracePage } from "./pages/trace";
import { isAdmin, session } from "./session";
import { useSignal } from "./signal";

interface PageEntry {
  id: string;
  label: Label;
  view: () => JSX.Element;
  // Offered only to a token with the admin role (the services refuse the others anyway).
  admin?: boolean;
}

const PAGES: PageEntry[] = [
  { id: "notifications", label: "navNotifications", view: () => <NotificationsPage /> },
  { id: "inbox", label: "navInbox", view: () => <InboxPage /> },
  { id: "requests", label: "navRequests", view: () => <RequestsPage /> },
  { id: "attendance", label: "navAttendance", view: () => <AttendancePage /> },
  { id: "admin-employees", label: "navAdminEmployees", view: () => <AdminEmployeesPage />, admin: true },
  { id: "admin-leave-types", label: "navAdminLeaveTypes", view: () => <AdminLeaveTypesPage />, admin: true },
  { id: "admin-holidays", label: "navAdminHolidays", view: () => <AdminHolidaysPage />, admin: true },
  { id: "admin-report", label: "navAdminReport", view: () => <AdminReportPage />, admin: true },
  { id: "admin-pipeline", label: "navAdminPipeline", view: () => <AdminPipelinePage />, admin: true },
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
  const offered = PAGES.filter((p) => !p.admin || isAdmin(signedIn));
  // A trace (#/trace/...) is opened from a request, not from a tab.
  const traceRoute = page.startsWith("/trace/") ? page.slice("/trace/".length) : null;
  const shown = offered.find((p) => p.id === (traceRoute === null ? page : "requests")) ?? offered[0];
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
          <button type="button" class="link" onClick={() => void signOut()}>
            {t("signOut")}
          </button>
        )}
      </header>
      {signedIn ? (
        <>
          <nav class="tabs" aria-label={t("appTitle")}>
            {offered.map((p) => (
              <a href={`#${p.id}`} aria-current={p.id === shown.id ? "page" : undefined}>
                {t(p.label)}
              </a>
            ))}
          </nav>
          <main>{traceRoute === null ? shown.view() : <TracePage route={traceRoute} />}</main>
        </>
      ) : (
        <main>
          <SignInPage />
        </main>
      )}
    </>
  );
}
