// The employee's own attendance: check in, check out, and the last 30 days. The service
// decides the working day (its business time zone) and refuses a second check-in.
import { useEffect, useState } from "preact/hooks";
import { get, post } from "../api";
import { localDay, localTime } from "../dates";
import { t } from "../i18n";
import { session } from "../session";
import { useSignal } from "../signal";

interface AttendanceRecord {
  id: number;
  attendance_date: string;
  check_in: string;
  check_out: string | null;
  work_minutes: number | null;
}

const HISTORY_DAYS = 30;

export function AttendancePage() {
  const me = useSignal(session)!.employee.id;
  const [records, setRecords] = useState<AttendanceRecord[] | null>(null);
  const [message, setMessage] = useState("");
  const [error, setError] = useState("");
  const load = () =>
    get<AttendanceRecord[]>(`/attendance/me?employeeId=${me}&from=${localDay(-HISTORY_DAYS)}`)
      .then((found) => setRecords([...found].sort((a, b) => b.attendance_date.localeCompare(a.attendance_date))))
      .catch((failure: Error) => setError(failure.message));
  useEffect(() => {
    load();
  }, [me]);
  const record = async (action: "check-in" | "check-out") => {
    setError("");
    setMessage("");
    try {
      await post(`/attendance/${action}`, { employee_id: me });
      setMessage(t(action === "check-in" ? "checkedIn" : "checkedOut"));
      await load();
    } catch (failure) {
      setError((failure as Error).message);
    }
  };
  return (
    <section>
      <h2>{t("attendanceTitle")}</h2>
      <div class="card actions">
        <button type="button" onClick={() => record("check-in")}>
          {t("checkIn")}
        </button>
        <button type="button" onClick={() => record("check-out")}>
          {t("checkOut")}
        </button>
        {message && (
          <span class="ok" role="status">
            {message}
          </span>
        )}
        {error && (
          <span class="error" role="alert">
            {error}
          </span>
        )}
      </div>
      <h3>{t("attendanceHistory")}</h3>
      {records?.length === 0 && <p class="muted">{t("noAttendance")}</p>}
      {!!records?.length && (
        <table class="table" data-testid="attendance">
          <thead>
            <tr>
              <th scope="col">{t("date")}</th>
              <th scope="col">{t("checkIn")}</th>
              <th scope="col">{t("checkOut")}</th>
              <th scope="col">{t("workMinutes")}</th>
            </tr>
          </thead>
          <tbody>
            {records.map((r) => (
              <tr key={r.id} data-date={r.attendance_date} data-checked-out={r.check_out ? "yes" : "no"}>
                <td>{r.attendance_date}</td>
                <td>{localTime(r.check_in)}</td>
                <td>{localTime(r.check_out)}</td>
                <td>{r.work_minutes === null ? "—" : `${r.work_minutes}${t("minutes")}`}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
