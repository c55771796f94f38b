// Administrators add employees, correct their name, department or position, and deactivate
// them (they leave every list; their history stays).
import { useEffect, useState } from "preact/hooks";
import { del, get, patch, post } from "../../api";
import { loadDirectory } from "../../directory";
import { Feedback, useAction } from "../../feedback";
import { t } from "../../i18n";
import type { Employee } from "../../session";

const FIELDS = ["name", "department", "position"] as const;
type Fields = Record<(typeof FIELDS)[number], string>;

function EmployeeFields({ value, set, idPrefix }: { value: Fields; set: (next: Fields) => void; idPrefix: string }) {
  return (
    <div class="row">
      {FIELDS.map((field) => (
        <label for={`${idPrefix}-${field}`}>
          {t(field)}
          <input
            id={`${idPrefix}-${field}`}
            required
            maxLength={100}
            value={value[field]}
            onInput={(e) => set({ ...value, [field]: e.currentTarget.value })}
          />
        </label>
      ))}
    </div>
  );
}

function Row({ person, changed }: { person: Employee; changed: (next: Employee | null) => void }) {
  const [fields, setFields] = useState<Fields>({ name: person.name, department: person.department, position: person.position });
  const [outcome, run] = useAction();
  const save = (event: Event) => {
    event.preventDefault();
    run(async () => changed(await patch<Employee>(`/employees/${person.id}`, fields)), t("saved"));
  };
  const deactivate = () =>
    run(async () => {
      await del(`/employees/${person.id}`);
      changed(null);
    });
  return (
    <li class="card" data-employee-id={person.id}>
      <form onSubmit={save} class="form" aria-label={`#${person.id} ${person.name}`}>
        <EmployeeFields value={fields} set={setFields} idPrefix={`employee-${person.id}`} />
        <div class="actions">
          <span class="muted">#{person.id}</span>
          <button type="submit">{t("save")}</button>
          <button type="button" class="danger" onClick={deactivate}>
            {t("deactivate")}
          </button>
        </div>
        <Feedback {...outcome} />
      </form>
    </li>
  );
}

// The service lists by id, a page at a time; an employee added here is shown first.
const PAGE = 100;

export function AdminEmployeesPage() {
  const [people, setPeople] = useState<Employee[]>([]);
  const [nextOffset, setNextOffset] = useState<number | null>(null);
  const [fresh, setFresh] = useState<Fields>({ name: "", department: "", position: "" });
  const [outcome, run] = useAction();
  const loadPage = (offset: number) =>
    run(async () => {
      const page = await get<Employee[]>(`/employees?limit=${PAGE}&offset=${offset}`);
      setPeople((shown) => [...shown.filter((p) => !page.some((q) => q.id === p.id)), ...page]);
      setNextOffset(page.length === PAGE ? offset + PAGE : null);
    });
  useEffect(() => {
    loadPage(0);
  }, []);
  const changed = (id: number, next: Employee | null) => {
    setPeople((shown) => (next ? shown.map((p) => (p.id === id ? next : p)) : shown.filter((p) => p.id !== id)));
    // Approver pickers and names read the directory.
    loadDirectory().catch(() => undefined);
  };
  const create = (event: Event) => {
    event.preventDefault();
    run(async () => {
      const created = await post<Employee>("/employees", fresh);
      setPeople((shown) => [created, ...shown]);
      setFresh({ name: "", department: "", position: "" });
      loadDirectory().catch(() => undefined);
    }, t("saved"));
  };
  return (
    <section>
      <h2>{t("navAdminEmployees")}</h2>
      <form class="card form" onSubmit={create} aria-label={t("create")}>
        <EmployeeFields value={fresh} set={setFresh} idPrefix="new-employee" />
        <button type="submit">{t("create")}</button>
      </form>
      <Feedback {...outcome} />
      <ul class="list" data-testid="employees">
        {people.map((person) => (
          <Row key={`${person.id}-${person.name}`} person={person} changed={(next) => changed(person.id, next)} />
        ))}
      </ul>
      {nextOffset !== null && (
        <button type="button" onClick={() => loadPage(nextOffset)}>
          {t("more")}
        </button>
      )}
    </section>
  );
}
