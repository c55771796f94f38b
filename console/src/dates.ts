// Calendar days and times as the person at the browser reads them.

/** YYYY-MM-DD of the browser's today, moved by `offset` days. */
export function localDay(offset = 0): string {
  const when = new Date(Date.now() + offset * 86_400_000);
  return new Date(when.getTime() - when.getTimezoneOffset() * 60_000).toISOString().slice(0, 10);
}

/** A service's timestamp as a local time; a timestamp without a zone was written in UTC. */
export function localTime(stamp: string | null): string {
  if (!stamp) return "—";
  const zoned = /[zZ]|[+-]\d\d:?\d\d$/.test(stamp) ? stamp : `${stamp}Z`;
  return new Date(zoned).toLocaleTimeString(document.documentElement.lang, { hour: "2-digit", minute: "2-digit" });
}
