// Administrators list the leave types and create or change one by its code (PUT is both);
// no yearly allowance makes a type unlimited.
import { useEffect, useState } from "preact/hooks";
import { get, put } from "../../api";
import { Feedback, useAction } from "../../feedback";
import { t } from "../../i18n";

interface LeaveType {
  code: string;
  name: string;
  annual_days: number | null;
}

export function AdminLeaveTypesPage() {
  const [types, setTypes] = useState<LeaveType[] | null>(null);
  const [code, setCode] = useState("");
  const [name, setName] = useState("");
  const [days, setDays] = useState("");
  const [outcome, run] = useAction();
  const load = async () => setTypes(await get<LeaveType[]>("/leaves/types"));
  useEffect(() => {
    run(load);
  }, []);
  const edit = (lt: LeaveType) => {
    setCode(lt.code);
    setName(lt.name);
    setDays(lt.annual_days === null ? "" : String(lt.annual_days));
  };
  const save = (event: Event) => {
    event.preventDefault();
    const body = { name, annual_days: days.trim() === "" ? null : Number(days) };
    run(async () => {
      await put(`/leaves/types/${encodeURIComponent(code.trim())}`, body);
      await load();
    }, t("saved"));
  };
  return (
    <section>
      <h2>{t("navAdminLeaveTypes")}</h2>
      <table class="table" data-testid="leave-types">
        <thead>
          <tr>
            <th scope="col">{t("code")}</th>
            <th scope="col">{t("name")}</th>
            <th scope="col">{t("annualDays")}</th>
            <th scope="col">
              <span class="sr-only">{t("edit")}</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {types?.map((lt) => (
            <tr key={lt.code} data-code={lt.code}>
              <td>{lt.code}</td>
              <td>{lt.name}</td>
              <td>{lt.annual_days === null ? t("unlimited") : lt.annual_days}</td>
              <td>
                <button type="button" class="link" aria-label={`${t("edit")} ${lt.code}`} onClick={() => edit(lt)}>
                  {t("edit")}
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <form class="card form" onSubmit={save} aria-label={t("navAdminLeaveTypes")}>
        <div class="row">
          <label>
            {t("code")}
            <input required pattern="[A-Za-z0-9_]+" maxLength={30} value={code} onInput={(e) => setCode(e.currentTarget.value)} />
          </label>
          <label>
            {t("name")}
            <input required maxLength={100} value={name} onInput={(e) => setName(e.currentTarget.value)} />
          </label>
          <label>
            {t("annualDays")}
            <input type="number" min={0} step={0.5} value={days} onInput={(e) => setDays(e.currentTarget.value)} />
          </label>
        </div>
        <button type="submit">{t("save")}</button>
        <Feedback {...outcome} />
      </form>
    </section>
  );
}
