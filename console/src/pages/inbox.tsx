// The approver's inbox, read again whenever a notification says it changed (no polling);
// each item is approved or rejected with an optional comment, or given to another approver
// (approval-request-service allows it to the step's current approver and to admins).
import { useEffect, useState } from "preact/hooks";
import { get, post } from "../api";
import { directory, nameOf } from "../directory";
import { t } from "../i18n";
import { Feedback, useAction } from "../feedback";
import { onFeedChange } from "../notifications";
import { session } from "../session";
import { PersonOptions } from "../person-options";
import { useSignal } from "../signal";

interface WorkItem {
  requestId: number;
  step: number;
  requesterId: number;
  approverId: number;
  title: string;
  content: string;
  status: string;
}

const key = (item: WorkItem) => `${item.requestId}-${item.step}`;

// Notifications after which the inbox may hold something else.
const CHANGES_INBOX = new Set(["approval_assigned", "approval_withdrawn", "approval_result"]);

function Reassign({ item, handedOver }: { item: WorkItem; handedOver: () => void }) {
  const me = session.value!.employee.id;
  const people = useSignal(directory).filter((p) => p.id !== me && p.id !== item.requesterId);
  const [to, setTo] = useState("");
  const [reason, setReason] = useState("");
  const [outcome, run] = useAction();
  const id = `${item.requestId}-${item.step}`;
  const submit = async (event: Event) => {
    event.preventDefault();
    const body = reason.trim() ? { approverId: Number(to), reason: reason.trim() } : { approverId: Number(to) };
    if (await run(() => post(`/approvals/${item.requestId}/steps/${item.step}/reassign`, body))) handedOver();
  };
  return (
    <details class="reassign">
      <summary>{t("reassign")}</summary>
      <form class="form" onSubmit={submit}>
        <label for={`reassign-to-${id}`}>{t("reassignTo")}</label>
        <select id={`reassign-to-${id}`} required value={to} onChange={(e) => setTo(e.currentTarget.value)}>
          <PersonOptions people={people} />
        </select>
        <label for={`reassign-reason-${id}`}>{t("reassignReason")}</label>
        <input id={`reassign-reason-${id}`} maxLength={1000} value={reason} onInput={(e) => setReason(e.currentTarget.value)} />
        <button type="submit" disabled={!to}>
          {t("reassignSubmit")}
        </button>
        <Feedback {...outcome} />
      </form>
    </details>
  );
}

function Item({ item, done, handedOver }: { item: WorkItem; done: () => void; handedOver: () => void }) {
  const [comment, setComment] = useState("");
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);
  const me = session.value!.employee.id;
  const decide = async (action: "approve" | "reject") => {
    setBusy(true);
    setError("");
    try {
      const body = comment.trim() ? { action, comment: comment.trim() } : { action };
      await post(`/process/${me}/${item.requestId}`, body);
      done();
    } catch (failure) {
      setError((failure as Error).message);
    } finally {
      setBusy(false);
    }
  };
  const commentId = `comment-${item.requestId}-${item.step}`;
  return (
    <li class="card" data-request-id={item.requestId}>
      <h3>
        #{item.requestId} {item.title}
      </h3>
      <p class="muted">
        {t("requester")}: {nameOf(item.requesterId)} · {t("step")} {item.step}
      </p>
      {item.content && <p class="content">{item.content}</p>}
      <label for={commentId}>{t("comment")}</label>
      <textarea id={commentId} rows={2} maxLength={1000} value={comment} onInput={(e) => setComment(e.currentTarget.value)} />
      <div class="actions">
        <button type="button" disabled={busy} onClick={() => decide("approve")}>
          {t("approve")}
        </button>
        <button type="button" class="danger" disabled={busy} onClick={() => decide("reject")}>
          {t("reject")}
        </button>
      </div>
      <Feedback error={error} />
      <Reassign item={item} handedOver={handedOver} />
    </li>
  );
}

export function InboxPage() {
  const signedIn = useSignal(session);
  const [items, setItems] = useState<WorkItem[] | null>(null);
  const [error, setError] = useState("");
  // Steps given to someone else: the inbox service drops them a moment later, and nothing
  // tells this approver when, so they are hidden from the answer of the reassignment on.
  const [handedOver, setHandedOver] = useState<ReadonlySet<string>>(new Set());
  const me = signedIn!.employee.id;
  const load = () =>
    get<WorkItem[]>(`/process/${me}`)
      .then((found) => {
        setItems(found);
        // Once the inbox service has dropped a step, it is forgotten here: should it come
        // back (given back to this approver), it shows.
        setHandedOver((hidden) => new Set([...hidden].filter((k) => found.some((i) => key(i) === k))));
        setError("");
      })
      .catch((failure: Error) => setError(failure.message));
  useEffect(() => {
    load();
    return onFeedChange(CHANGES_INBOX, load);
  }, [me]);
  const shown = items?.filter((item) => !handedOver.has(key(item)));
  return (
    <section>
      <h2>{t("inboxTitle")}</h2>
      <Feedback error={error} />
      {shown?.length === 0 && <p class="muted">{t("inboxEmpty")}</p>}
      <ul class="list" data-testid="inbox">
        {shown?.map((item) => (
          <Item
            key={key(item)}
            item={item}
            done={load}
            handedOver={() => setHandedOver((hidden) => new Set([...hidden, key(item)]))}
          />
        ))}
      </ul>
    </section>
  );
}
