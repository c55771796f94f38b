// Everyone's live notification list (newest first), fed by the WebSocket feed.
import { nameOf } from "../directory";
import { t, tValue } from "../i18n";
import { notifications, type Notification } from "../notifications";
import { useSignal } from "../signal";

function describe(n: Notification): string {
  const parts = [n.requestId ? `${t("request")} #${n.requestId}` : "", n.title ?? ""];
  if (n.step) parts.push(`${t("step")} ${n.step}`);
  if (n.approverId) parts.push(nameOf(n.approverId));
  if (n.stepStatus) parts.push(tValue(n.stepStatus));
  if (n.finalStatus) parts.push(`${t("status")}: ${tValue(n.finalStatus)}`);
  return parts.filter(Boolean).join(" · ");
}

export function NotificationsPage() {
  const list = useSignal(notifications);
  return (
    <section>
      <h2>{t("notificationsTitle")}</h2>
      {list.length === 0 && <p class="muted">{t("noNotifications")}</p>}
      <ul class="list" aria-live="polite" data-testid="notifications">
        {list.map((n) => (
          <li class="card" key={n.id} data-notification-id={n.id} data-type={n.type}>
            <strong>{tValue(n.type)}</strong>
            <span class="muted"> {new Date(n.createdAt).toLocaleString(document.documentElement.lang)}</span>
            <div>{describe(n)}</div>
            {n.comment && (
              <div class="comment">
                {t("comment")}: {n.comment}
              </div>
            )}
            {n.reason && (
              <div class="comment">
                {t("reason")}: {n.reason}
              </div>
            )}
          </li>
        ))}
      </ul>
    </section>
  );
}
