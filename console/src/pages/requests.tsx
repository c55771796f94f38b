// The employee's own requests (each step's status and comment, updated live from the
// notifications that concern them) and the form that files a new one.
import { useEffect, useState } from "preact/hooks";
import { get, post } from "../api";
import { loadConfig } from "../config";
import { nameOf } from "../directory";
import { t, tValue } from "../i18n";
import { onFeedChange } from "../notifications";
import { session } from "../session";
import { useSignal } from "../signal";
import { RequestForm } from "./request-form";
import { Feedback } from "../feedback";

interface Step {
  step: number;
  approverId: number;
  status: string;
  updatedAt: string | null;
  comment?: string;
}

export interface ApprovalDocument {
  requestId: number;
  requesterId: number;
  title: string;
  content: string;
  steps: Step[];
  finalStatus: string;
  requestType: "GENERAL" | "LEAVE";
  leaveInfo: {
    startDate: string;
    endDate: string;
    days?: number;
    leaveType: string;
    reason: string;
    halfDay?: "am" | "pm";
  } | null;
  createdAt: string;
}

// Notifications after which one of the requester's requests may read differently.
const CHANGES_REQUESTS = new Set([
  "approval_result",
  "leave_confirmed",
  "approval_withdrawn",
  "leave_cancelled",
]);

function today(): string {
  const now = new Date();
  return new Date(now.getTime() - now.getTimezoneOffset() * 60000).toISOString().slice(0, 10);
}

/** The deployment's tracing UI (/config.json `traceUi`, `{requestId}` and `{hostname}` in it:
 * a UI on its own port of the console's host), or undefined for the console's own waterfall;
 * a config that fails to load leaves the waterfall. */
function useTraceUi(): string | undefined {
  const [traceUi, setTraceUi] = useState<string | undefined>(undefined);
  useEffect(() => {
    loadConfig().then(
      (config) => setTraceUi(config.traceUi),
      () => setTraceUi(undefined),
    );
  }, []);
  return traceUi;
}

function TraceLink({ requestId }: { requestId: number }) {
  const traceUi = useTraceUi();
  if (traceUi) {
    const href = traceUi
      .split("{hostname}")
      .join(location.hostname)
      .split("{requestId}")
      .join(encodeURIComponent(String(requestId)));
    return (
      <a href={href} target="_blank" rel="noopener noreferrer" class="muted" data-trace-link>
        {t("trace")}
      </a>
    );
  }
  return (
    <a href={`#/trace/request/${requestId}`} class="muted" data-trace-link>
      {t("trace")}
    </a>
  );
}

function Request({ doc, changed }: { doc: ApprovalDocument; changed: () => void }) {
  const [error, setError] = useState("");
  const [reason, setReason] = useState("");
  const open = doc.finalStatus === "pending" || doc.finalStatus === "in_progress";
  const cancellable =
    doc.finalStatus === "approved" && doc.requestType === "LEAVE" && (doc.leaveInfo?.startDate ?? "") > today();
  const act = async (path: string, body?: unknown) => {
    setError("");
    try {
      await post(`/approvals/${doc.requestId}/${path}`, body);
      changed();
    } catch (failure) {
      setError((failure as Error).message);
    }
  };
  const reasonId = `reason-${doc.requestId}`;
  return (
    <li class="card" data-request-id={doc.requestId} data-final-status={doc.finalStatus}>
      <h3>
        #{doc.requestId} {doc.title} <span class={`pill pill-${doc.finalStatus}`}>{tValue(doc.finalStatus)}</span>{" "}
        <TraceLink requestId={doc.requestId} />
      </h3>
      <p class="muted">
        {tValue(doc.requestType)}
        {doc.leaveInfo &&
          ` · ${doc.leaveInfo.leaveType} ${doc.leaveInfo.startDate} ~ ${doc.leaveInfo.endDate}` +
            (doc.leaveInfo.halfDay ? ` ${t(doc.leaveInfo.halfDay === "am" ? "halfDayAm" : "halfDayPm")}` : "") +
            (doc.leaveInfo.days ? ` (${doc.leaveInfo.days}${t("days")})` : "")}
      </p>
      <ol class="steps">
        {doc.steps.map((s) => (
          <li data-step={s.step} data-status={s.status}>
            {nameOf(s.approverId)}: <span class={`pill pill-${s.status}`}>{tValue(s.status)}</span>
            {s.comment && (
              <span class="comment">
                {" "}
                {t("comment")}: {s.comment}
              </span>
            )}
          </li>
        ))}
      </ol>
      {(open || cancellable) && (
        <div class="actions">
          {open && (
            <button type="button" onClick={() => act("withdraw", reason.trim() ? { reason: reason.trim() } : undefined)}>
              {t("withdraw")}
            </button>
          )}
          <label for={reasonId} class="sr-only">
            {cancellable ? t("cancelReason") : t("reason")}
          </label>
          <input
            id={reasonId}
            placeholder={cancellable ? t("cancelReason") : t("reason")}
            maxLength={1000}
            value={reason}
            onInput={(e) => setReason(e.currentTarget.value)}
          />
          {cancellable && (
            <button type="button" class="danger" disabled={!reason.trim()} onClick={() => act("cancel", { reason: reason.trim() })}>
              {t("cancel")}
            </button>
          )}
        </div>
      )}
      <Feedback error={error} />
    </li>
  );
}

export function RequestsPage() {
  const signedIn = useSignal(session);
  const me = signedIn!.employee.id;
  const [docs, setDocs] = useState<ApprovalDocument[] | null>(null);
  const [error, setError] = useState("");
  const load = () =>
    get<ApprovalDocument[]>(`/approvals?requesterId=${me}&limit=100`)
      .then((found) => {
        setDocs(found);
        setError("");
      })
      .catch((failure: Error) => setError(failure.message));
  useEffect(() => {
    load();
    return onFeedChange(CHANGES_REQUESTS, load);
  }, [me]);
  return (
    <section>
      <RequestForm me={me} sent={load} />
      <h2>{t("requestsTitle")}</h2>
      <Feedback error={error} />
      {docs?.length === 0 && <p class="muted">{t("noRequests")}</p>}
      <ul class="list" data-testid="requests">
        {docs?.map((doc) => <Request key={doc.requestId} doc={doc} changed={load} />)}
      </ul>
    </section>
  );
}
