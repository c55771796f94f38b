// Files a GENERAL or LEAVE request; approvers are picked by name, in order (step 1 first).
import { useEffect, useState } from "preact/hooks";
import { get, post } from "../api";
import { directory } from "../directory";
import { t, type Label } from "../i18n";
import { PersonOptions } from "../person-options";
import { useSignal } from "../signal";
import { Feedback } from "../feedback";

interface LeaveType {
  code: string;
  name: string;
}

interface Balance {
  leave_type: string;
  entitled: number | null;
  used: number;
  reserved: number;
  remaining: number | null;
}

interface WorkingDays {
  days: number;
  perYear: Record<string, number>;
}

// Typing a date fires an input per keystroke; the count is asked once the dates settle.
const COUNT_DELAY_MS = 300;

// A half day is one date's morning or afternoon; the server counts it 0.5.
type DayPart = "" | "am" | "pm";
const DAY_PARTS: [DayPart, Label][] = [
  ["", "fullDay"],
  ["am", "halfDayAm"],
  ["pm", "halfDayPm"],
];

const amount = (days: number | null) => (days === null ? t("unlimited") : `${days}${t("days")}`);

export function RequestForm({ me, sent }: { me: number; sent: () => void }) {
  const people = useSignal(directory).filter((p) => p.id !== me);
  const [type, setType] = useState<"GENERAL" | "LEAVE">("GENERAL");
  const [title, setTitle] = useState("");
  const [content, setContent] = useState("");
  const [approvers, setApprovers] = useState<string[]>([""]);
  const [types, setTypes] = useState<LeaveType[]>([]);
  const [balances, setBalances] = useState<Balance[]>([]);
  const [leaveType, setLeaveType] = useState("ANNUAL");
  const [start, setStart] = useState("");
  const [end, setEnd] = useState("");
  const [part, setPart] = useState<DayPart>("");
  // Offered only for a one-date leave; a stale choice is not sent once the dates differ.
  const halfDay = start && start === end ? part : "";
  const [reason, setReason] = useState("");
  const [message, setMessage] = useState("");
  const [error, setError] = useState("");
  useEffect(() => {
    if (type !== "LEAVE") return;
    get<LeaveType[]>("/leaves/types").then(setTypes, () => setTypes([]));
    const year = (start || new Date().toISOString()).slice(0, 4);
    get<Balance[]>(`/leaves/balance?employeeId=${me}&year=${year}`).then(setBalances, () => setBalances([]));
  }, [type, me, start.slice(0, 4)]);
  const [count, setCount] = useState<WorkingDays | null>(null);
  const [countError, setCountError] = useState("");
  useEffect(() => {
    setCount(null);
    setCountError("");
    if (type !== "LEAVE" || !start || !end) return;
    let current = true;
    const timer = setTimeout(() => {
      const query = new URLSearchParams({ startDate: start, endDate: end });
      if (halfDay) query.set("halfDay", halfDay);
      get<WorkingDays>(`/leaves/working-days?${query}`).then(
        (answer) => current && setCount(answer),
        (failure: Error) => current && setCountError(failure.message),
      );
    }, COUNT_DELAY_MS);
    return () => {
      current = false;
      clearTimeout(timer);
    };
  }, [type, start, end, halfDay]);
  const balance = balances.find((b) => b.leave_type === leaveType);
  // The balance read is the start date's year, so only that year's part of the count is taken off.
  const after =
    balance && balance.remaining !== null && count ? balance.remaining - (count.perYear[start.slice(0, 4)] ?? 0) : null;
  const submit = async (event: Event) => {
    event.preventDefault();
    setError("");
    setMessage("");
    const body = {
      requesterId: me,
      title: title.trim(),
      content,
      requestType: type,
      steps: approvers.map((id, index) => ({ step: index + 1, approverId: Number(id) })),
      ...(type === "LEAVE" ? { leaveInfo: { startDate: start, endDate: end, leaveType, reason, ...(halfDay ? { halfDay } : {}) } } : {}),
    };
    try {
      const created = await post<{ requestId: number }>("/approvals", body);
      setMessage(t("submitted", { id: created.requestId }));
      setTitle("");
      setContent("");
      setReason("");
      sent();
      // The sent days are now reserved: the balance reads less.
      if (type === "LEAVE") get<Balance[]>(`/leaves/balance?employeeId=${me}&year=${start.slice(0, 4)}`).then(setBalances, () => undefined);
    } catch (failure) {
      setError((failure as Error).message);
    }
  };
  const setApprover = (index: number, value: string) =>
    setApprovers(approvers.map((old, i) => (i === index ? value : old)));
  return (
    <section class="card">
      <h2>{t("newRequest")}</h2>
      <form onSubmit={submit} class="form">
        <fieldset class="inline">
          <legend>{t("requestType")}</legend>
          {(["GENERAL", "LEAVE"] as const).map((value) => (
            <label class="inline">
              <input type="radio" name="requestType" value={value} checked={type === value} onChange={() => setType(value)} />
              {t(value)}
            </label>
          ))}
        </fieldset>
        <label>
          {t("title")}
          <input required maxLength={200} value={title} onInput={(e) => setTitle(e.currentTarget.value)} />
        </label>
        <label>
          {t("content")}
          <textarea rows={2} value={content} onInput={(e) => setContent(e.currentTarget.value)} />
        </label>
        {type === "LEAVE" && (
          <>
            <label>
              {t("leaveType")}
              <select value={leaveType} onChange={(e) => setLeaveType(e.currentTarget.value)}>
                {(types.length ? types : [{ code: "ANNUAL", name: "ANNUAL" }]).map((lt) => (
                  <option value={lt.code}>{lt.name}</option>
                ))}
              </select>
            </label>
            {balance && (
              <p class="muted" data-testid="balance">
                {t("balance")}: <strong>{amount(balance.remaining)}</strong> ({t("entitled")} {amount(balance.entitled)} ·{" "}
                {t("used")} {amount(balance.used)} · {t("reserved")} {amount(balance.reserved)})
              </p>
            )}
            {count && (
              <p class="muted" data-testid="working-days">
                {count.days > 0 ? (
                  <>
                    {t("workingDays")}: <strong>{amount(count.days)}</strong>
                    {Object.keys(count.perYear).length > 1 &&
                      ` (${Object.entries(count.perYear)
                        .map(([year, days]) => `${year} ${amount(days)}`)
                        .join(" · ")})`}
                    {after !== null && (
                      <span class={after < 0 ? "error" : undefined}>
                        {" "}
                        · {t("afterSending")} {amount(after)}
                      </span>
                    )}
                  </>
                ) : (
                  t("noWorkingDays")
                )}
              </p>
            )}
            {countError && (
              <p class="error" data-testid="working-days">
                {countError}
              </p>
            )}
            <p class="muted">{t("workingDaysByServer")}</p>
            <div class="row">
              <label>
                {t("startDate")}
                <input type="date" required value={start} onInput={(e) => setStart(e.currentTarget.value)} />
              </label>
              <label>
                {t("endDate")}
                <input type="date" required min={start} value={end} onInput={(e) => setEnd(e.currentTarget.value)} />
              </label>
            </div>
            {start && start === end && (
              <fieldset class="inline">
                <legend>{t("leavePart")}</legend>
                {DAY_PARTS.map(([value, label]) => (
                  <label class="inline">
                    <input type="radio" name="leavePart" value={value} checked={part === value} onChange={() => setPart(value)} />
                    {t(label)}
                  </label>
                ))}
              </fieldset>
            )}
            <label>
              {t("reason")}
              <input maxLength={500} value={reason} onInput={(e) => setReason(e.currentTarget.value)} />
            </label>
          </>
        )}
        <fieldset>
          <legend>{t("approvers")}</legend>
          {approvers.map((id, index) => (
            <div class="row">
              <label>
                {t("step")} {index + 1}
                <select required value={id} onChange={(e) => setApprover(index, e.currentTarget.value)}>
                  <PersonOptions people={people} />
                </select>
              </label>
              {approvers.length > 1 && (
                <button type="button" class="link" onClick={() => setApprovers(approvers.filter((_, i) => i !== index))}>
                  {t("remove")}
                </button>
              )}
            </div>
          ))}
          <button type="button" class="link" onClick={() => setApprovers([...approvers, ""])}>
            {t("addApprover")}
          </button>
        </fieldset>
        <button type="submit">{t("submit")}</button>
        <Feedback message={message} error={error} />
      </form>
    </section>
  );
}
