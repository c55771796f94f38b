// Administrators keep the public holidays of a year: leave requests do not count them as
// working days.
import { useEffect, useState } from "preact/hooks";
import { del, get, put } from "../../api";
import { localDay } from "../../dates";
import { Feedback, useAction } from "../../feedback";
import { t } from "../../i18n";

interface Holiday {
  date: string;
  name: string;
}

export function AdminHolidaysPage() {
  const [year, setYear] = useState(localDay().slice(0, 4));
  const [holidays, setHolidays] = useState<Holiday[] | null>(null);
  const [day, setDay] = useState("");
  const [name, setName] = useState("");
  const [outcome, run] = useAction();
  const load = async (shown = year) => setHolidays(await get<Holiday[]>(`/holidays?year=${encodeURIComponent(shown)}`));
  useEffect(() => {
    run(load);
  }, []);
  const save = (event: Event) => {
    event.preventDefault();
    run(async () => {
      await put(`/holidays/${day}`, { name });
      setYear(day.slice(0, 4));
      await load(day.slice(0, 4));
      setName("");
    }, t("saved"));
  };
  const remove = (holiday: Holiday) =>
    run(async () => {
      await del(`/holidays/${holiday.date}`);
      await load();
    });
  return (
    <section>
      <h2>{t("navAdminHolidays")}</h2>
      <form
        class="row"
        onSubmit={(event) => {
          event.preventDefault();
          run(load);
        }}
      >
        <label>
          {t("year")}
          <input type="number" required min={1900} max={2999} value={year} onInput={(e) => setYear(e.currentTarget.value)} />
        </label>
        <button type="submit">{t("show")}</button>
      </form>
      {holidays?.length === 0 && <p class="muted">{t("noHolidays")}</p>}
      <ul class="list" data-testid="holidays">
        {holidays?.map((h) => (
          <li class="card actions" key={h.date} data-date={h.date}>
            <span>
              {h.date} · {h.name}
            </span>
            <button type="button" class="danger" aria-label={`${t("remove")} ${h.date}`} onClick={() => remove(h)}>
              {t("remove")}
            </button>
          </li>
        ))}
      </ul>
      <form class="card form" onSubmit={save} aria-label={t("navAdminHolidays")}>
        <div class="row">
          <label>
            {t("date")}
            <input type="date" required value={day} onInput={(e) => setDay(e.currentTarget.value)} />
          </label>
          <label>
            {t("holidayName")}
            <input required maxLength={100} value={name} onInput={(e) => setName(e.currentTarget.value)} />
          </label>
        </div>
        <button type="submit">{t("save")}</button>
      </form>
      <Feedback {...outcome} />
    </section>
  );
}
