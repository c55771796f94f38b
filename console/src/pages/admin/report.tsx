// The leave report: approved leave counted in a year, per department and leave type.
import { useEffect, useState } from "preact/hooks";
import { get } from "../../api";
import { localDay } from "../../dates";
import { Feedback, useAction } from "../../feedback";
import { t } from "../../i18n";

interface ReportRow {
  department: string;
  leave_type: string;
  employees: number;
  days: number;
}

export function AdminReportPage() {
  const [year, setYear] = useState(localDay().slice(0, 4));
  const [department, setDepartment] = useState("");
  const [rows, setRows] = useState<ReportRow[] | null>(null);
  const [outcome, run] = useAction();
  const load = () => {
    const query = new URLSearchParams({ year });
    if (department.trim()) query.set("department", department.trim());
    return run(async () => setRows(await get<ReportRow[]>(`/leaves/report?${query}`)));
  };
  useEffect(() => {
    load();
  }, []);
  return (
    <section>
      <h2>{t("navAdminReport")}</h2>
      <form
        class="row"
        onSubmit={(event) => {
          event.preventDefault();
          load();
        }}
      >
        <label>
          {t("year")}
          <input type="number" required min={1900} max={2999} value={year} onInput={(e) => setYear(e.currentTarget.value)} />
        </label>
        <label>
          {t("department")}
          <input maxLength={100} placeholder={t("allDepartments")} value={department} onInput={(e) => setDepartment(e.currentTarget.value)} />
        </label>
        <button type="submit">{t("show")}</button>
      </form>
      <Feedback {...outcome} />
      {rows?.length === 0 && <p class="muted">{t("noReport")}</p>}
      {!!rows?.length && (
        <table class="table" data-testid="report">
          <thead>
            <tr>
              <th scope="col">{t("department")}</th>
              <th scope="col">{t("leaveType")}</th>
              <th scope="col">{t("employeesCount")}</th>
              <th scope="col">{t("days")}</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((r) => (
              <tr key={`${r.department}-${r.leave_type}`} data-department={r.department} data-leave-type={r.leave_type}>
                <td>{r.department}</td>
                <td>{r.leave_type}</td>
                <td>{r.employees}</td>
                <td>{r.days}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
