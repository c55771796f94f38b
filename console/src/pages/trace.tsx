// A request's traces as waterfalls, read from Jaeger's query API on the console's own origin
// (the gateway passes /jaeger/api/ to it). The approval document carries no trace id, so a
// request's traces are found by the tag every service puts on its spans: erp.request_id.
import { useEffect, useState } from "preact/hooks";
import { get } from "../api";
import { t } from "../i18n";
import type { ApprovalDocument } from "./requests";
import { Feedback } from "../feedback";

interface Reference {
  refType: string;
  traceID: string;
  spanID: string;
}

interface Span {
  traceID: string;
  spanID: string;
  operationName: string;
  references: Reference[];
  startTime: number;
  duration: number;
  tags: { key: string; value: unknown }[];
  processID: string;
}

interface Trace {
  traceID: string;
  spans: Span[];
  processes: Record<string, { serviceName: string }>;
}

// Spans are searched from shortly before the request was created: ids restart with each
// database, and a trace of another database's request of the same id must not show.
const SEARCH_SLACK_US = 60_000_000;

const failed = (span: Span) =>
  span.tags.some((tag) => (tag.key === "error" && tag.value === true) || (tag.key === "otel.status_code" && tag.value === "ERROR"));

const ms = (us: number) => (us / 1000).toFixed(1);

function depths(spans: Span[]): Map<string, number> {
  const parent = new Map<string, string>();
  for (const span of spans) {
    const ref = span.references.find((r) => r.refType === "CHILD_OF" && r.traceID === span.traceID);
    if (ref) parent.set(span.spanID, ref.spanID);
  }
  const depth = new Map<string, number>();
  const of = (id: string, seen: number): number => {
    const up = parent.get(id);
    // A parent not (yet) in Jaeger, or a cycle in bad data, ends the climb.
    return up === undefined || seen > spans.length ? 0 : 1 + of(up, seen + 1);
  };
  for (const span of spans) depth.set(span.spanID, of(span.spanID, 0));
  return depth;
}

function Waterfall({ trace }: { trace: Trace }) {
  const spans = [...trace.spans].sort((a, b) => a.startTime - b.startTime);
  const start = spans[0]?.startTime ?? 0;
  const end = Math.max(...spans.map((s) => s.startTime + s.duration), start + 1);
  const depth = depths(spans);
  return (
    <div class="card" data-trace-id={trace.traceID}>
      <h3>
        {spans[0]?.operationName} · {new Date(start / 1000).toLocaleString()} ·{" "}
        <a href={`#/trace/${trace.traceID}`}>{t("openTrace")}</a>
      </h3>
      <div tabIndex={0} role="region" aria-label={t("waterfall")} style={{ overflowX: "auto" }}>
        <table class="table" style={{ minWidth: "40rem" }} data-testid="waterfall">
          <thead>
            <tr>
              <th scope="col">{t("service")}</th>
              <th scope="col">{t("operation")}</th>
              <th scope="col">{t("startOffset")}</th>
              <th scope="col">{t("duration")}</th>
              <th scope="col" style={{ width: "30%" }}>
                {t("timeline")}
              </th>
            </tr>
          </thead>
          <tbody>
            {spans.map((span) => {
              const service = trace.processes[span.processID]?.serviceName ?? "?";
              const error = failed(span);
              const links = span.references.filter((r) => r.traceID !== trace.traceID);
              return (
                <tr data-service={service} data-error={error ? "true" : undefined}>
                  <td>{service}</td>
                  <td style={{ paddingLeft: `${(depth.get(span.spanID) ?? 0) * 0.75}rem` }}>
                    {span.operationName}
                    {error && <strong class="error"> ⚠ {t("spanError")}</strong>}
                    {links.map((link) => (
                      <>
                        {" "}
                        <a href={`#/trace/${link.traceID}`} data-span-link={link.traceID}>
                          → {t("linkedTrace")}
                        </a>
                      </>
                    ))}
                  </td>
                  <td>{ms(span.startTime - start)}</td>
                  <td>{ms(span.duration)}</td>
                  <td aria-hidden="true">
                    <div
                      style={{
                        marginLeft: `${((span.startTime - start) / (end - start)) * 100}%`,
                        width: `${Math.max((span.duration / (end - start)) * 100, 0.5)}%`,
                        height: "0.6rem",
                        background: error ? "#c62828" : "#1565c0",
                      }}
                    />
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
    </div>
  );
}

async function requestTraces(requestId: string): Promise<Trace[]> {
  const doc = await get<ApprovalDocument>(`/approvals/${requestId}`);
  const query = new URLSearchParams({
    service: "approval-request-service",
    tags: JSON.stringify({ "erp.request_id": requestId }),
    start: String(Date.parse(doc.createdAt) * 1000 - SEARCH_SLACK_US),
    end: String(Date.now() * 1000),
    limit: "50",
  });
  const found = await get<{ data: Trace[] | null }>(`/jaeger/api/traces?${query}`);
  const first = (trace: Trace) => Math.min(...trace.spans.map((s) => s.startTime));
  return (found.data ?? []).sort((a, b) => first(a) - first(b));
}

async function oneTrace(traceId: string): Promise<Trace[]> {
  return (await get<{ data: Trace[] | null }>(`/jaeger/api/traces/${encodeURIComponent(traceId)}`)).data ?? [];
}

// `route` is what follows #/trace/: a trace id, or request/<request id>.
export function TracePage({ route }: { route: string }) {
  const requestId = /^request\/(\d+)$/.exec(route)?.[1];
  const [traces, setTraces] = useState<Trace[] | null>(null);
  const [error, setError] = useState("");
  const load = () => {
    setError("");
    (requestId ? requestTraces(requestId) : oneTrace(route)).then(setTraces, (failure: Error) => setError(failure.message));
  };
  useEffect(load, [route]);
  return (
    <section>
      <p>
        <a href="#requests">← {t("backToRequests")}</a>
      </p>
      <h2>{requestId ? t("requestTraces", { id: requestId }) : t("traceTitle", { id: route })}</h2>
      <button type="button" onClick={load}>
        {t("refresh")}
      </button>
      <Feedback error={error} />
      {traces?.length === 0 && <p class="muted">{t("noTraces")}</p>}
      {traces?.map((trace) => <Waterfall key={trace.traceID} trace={trace} />)}
    </section>
  );
}
