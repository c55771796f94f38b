// The approver's inbox, read again whenever a notification says it changed (no polling);
// each item is approved or rejected with an optional comment.
import { useEffect, useState } from "preact/hooks";
import { get, post } from "../api";
import { nameOf } from "../directory";
import { t } from "../i18n";
import { onFeedChange } from "../notifications";
import { session } from "../session";
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

// Notifications after which the inbox may hold something else.
const CHANGES_INBOX = new Set(["approval_assigned", "approval_withdrawn", "approval_result"]);

function Item({ item, done }: { item: WorkItem; done: () => void }) {
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
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
    </li>
  );
}

export function InboxPage() {
  const signedIn = useSignal(session);
  const [items, setItems] = useState<WorkItem[] | null>(null);
  const [error, setError] = useState("");
  const me = signedIn!.employee.id;
  const load = () =>
    get<WorkItem[]>(`/process/${me}`)
      .then((found) => {
        setItems(found);
        setError("");
      })
      .catch((failure: Error) => setError(failure.message));
  useEffect(() => {
    load();
    return onFeedChange(CHANGES_INBOX, load);
  }, [me]);
  return (
    <section>
      <h2>{t("inboxTitle")}</h2>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      {items?.length === 0 && <p class="muted">{t("inboxEmpty")}</p>}
      <ul class="list" data-testid="inbox">
        {items?.map((item) => <Item key={`${item.requestId}-${item.step}`} item={item} done={load} />)}
      </ul>
    </section>
  );
}
