// Live pipeline panels read from Prometheus's HTTP API on the console's origin (the gateway
// passes GET /prometheus/api/v1/query and /query_range only). The queries are the Grafana
// panels' own, kept in pipeline-panels.json (tests/console/test_pipeline_panel_queries.py
// holds them equal).
import { useEffect, useState } from "preact/hooks";
import { lang, t } from "../../i18n";
import { Feedback } from "../../feedback";
import { useSignal } from "../../signal";
import file from "../../pipeline-panels.json";

interface Panel {
  id: string;
  title: { ko: string; en: string };
  unit: { ko: string; en: string };
  combine: "sum" | "max";
  expr: string;
  grafana: { dashboard: string; panel: string; refId: string };
}

type Sample = [number, string];
interface Series {
  value?: Sample;
  values?: Sample[];
}

interface Reading {
  value: number | null;
  line: [number, number][];
}

const PANELS = file.panels as Panel[];
// Polling is fine here: an admin page, open now and then, four panels.
const REFRESH_MS = 15_000;
const WINDOW_S = 15 * 60;
const STEP_S = 15;

// Grafana fills $__rate_interval in from the scrape interval; the file says what it comes to.
const sent = (expr: string) => expr.replace(/\$__rate_interval/g, file.rateInterval);

async function prometheus(path: string, params: Record<string, string>): Promise<Series[]> {
  // Plain fetch, not api(): the session's token has no business reaching Prometheus.
  const response = await fetch(`/prometheus/api/v1/${path}?${new URLSearchParams(params)}`, {
    headers: { Accept: "application/json" },
  });
  const body = (await response.json().catch(() => null)) as { data?: { result: Series[] }; error?: string } | null;
  if (!response.ok || !body?.data) throw new Error(body?.error ?? `HTTP ${response.status}`);
  return body.data.result;
}

// Several series (by type, by final status) make one figure; NaN (a quantile of nothing) is no data.
function combine(how: Panel["combine"], values: string[]): number | null {
  const finite = values.map(Number).filter(Number.isFinite);
  if (!finite.length) return null;
  return how === "sum" ? finite.reduce((a, b) => a + b, 0) : Math.max(...finite);
}

async function read(panel: Panel): Promise<Reading> {
  const end = Date.now() / 1000;
  const [now, range] = await Promise.all([
    prometheus("query", { query: sent(panel.expr), time: String(end) }),
    prometheus("query_range", {
      query: sent(panel.expr),
      start: String(end - WINDOW_S),
      end: String(end),
      step: String(STEP_S),
    }),
  ]);
  const byTime = new Map<number, string[]>();
  for (const series of range) for (const [at, v] of series.values ?? []) byTime.set(at, [...(byTime.get(at) ?? []), v]);
  const line: [number, number][] = [];
  for (const [at, values] of [...byTime].sort((a, b) => a[0] - b[0])) {
    const value = combine(panel.combine, values);
    if (value !== null) line.push([at, value]);
  }
  return { value: combine(panel.combine, now.map((s) => s.value?.[1] ?? "NaN")), line };
}

const format = (value: number) => new Intl.NumberFormat(lang.value, { maximumFractionDigits: 3 }).format(value);

function Sparkline({ line, start }: { line: [number, number][]; start: number }) {
  if (line.length < 2) return null;
  const values = line.map(([, v]) => v);
  const low = Math.min(...values);
  const high = Math.max(...values);
  const points = line
    .map(([at, v]) => {
      const x = ((at - start) / WINDOW_S) * 100;
      const y = high === low ? 16 : 30 - ((v - low) / (high - low)) * 28;
      return `${x.toFixed(2)},${y.toFixed(2)}`;
    })
    .join(" ");
  return (
    <>
      <svg class="sparkline" viewBox="0 0 100 32" preserveAspectRatio="none" width="100%" height="32" aria-hidden="true">
        <rect width="100" height="32" fill="currentColor" opacity="0.05" />
        <polyline points={points} fill="none" stroke="currentColor" stroke-width="1.5" vector-effect="non-scaling-stroke" />
      </svg>
      <span class="sr-only">{t("sparklineText", { min: format(low), max: format(high) })}</span>
    </>
  );
}

function PanelView({ panel, reading }: { panel: Panel; reading?: Reading }) {
  const titleId = `panel-${panel.id}`;
  const value = reading?.value ?? null;
  return (
    <section class="card" aria-labelledby={titleId} data-panel={panel.id}>
      <h3 id={titleId}>{panel.title[lang.value]}</h3>
      {reading && (
        <>
          <p class="value" data-testid="value" data-value={value ?? ""}>
            {value === null ? (
              t("noData")
            ) : (
              <>
                <strong>{format(value)}</strong> {panel.unit[lang.value]}
              </>
            )}
          </p>
          <Sparkline line={reading.line} start={Date.now() / 1000 - WINDOW_S} />
        </>
      )}
      <p class="muted">{t("grafanaPanel", { panel: panel.grafana.panel })}</p>
    </section>
  );
}

export function AdminPipelinePage() {
  useSignal(lang);
  const [readings, setReadings] = useState<Record<string, Reading>>({});
  const [error, setError] = useState("");
  const [at, setAt] = useState<Date | null>(null);
  useEffect(() => {
    let current = true;
    const refresh = async () => {
      try {
        const fresh = await Promise.all(PANELS.map(read));
        if (!current) return;
        setReadings(Object.fromEntries(PANELS.map((p, i) => [p.id, fresh[i]])));
        setError("");
        setAt(new Date());
      } catch (failure) {
        if (!current) return;
        // Old figures beside an outage would read as current: they go.
        setReadings({});
        setError(t("prometheusUnreachable", { error: (failure as Error).message }));
      }
    };
    refresh();
    const timer = setInterval(refresh, REFRESH_MS);
    return () => {
      current = false;
      clearInterval(timer);
    };
  }, []);
  return (
    <section>
      <h2>{t("navAdminPipeline")}</h2>
      <p class="muted">
        {t("pipelineHelp")}
        {at && ` ${t("updatedAt", { time: at.toLocaleTimeString(lang.value) })}`}
      </p>
      <Feedback error={error} />
      {PANELS.map((panel) => (
        <PanelView key={panel.id} panel={panel} reading={readings[panel.id]} />
      ))}
    </section>
  );
}
