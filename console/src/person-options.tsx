// The options of an approver picker: nobody chosen yet, then each person by name and
// department (the inbox's reassignment and the request form's steps).
import type { Employee } from "./session";

export function PersonOptions({ people }: { people: Employee[] }) {
  return (
    <>
      <option value="" disabled>
        —
      </option>
      {people.map((p) => (
        <option value={String(p.id)}>
          {p.name} · {p.department}
        </option>
      ))}
    </>
  );
}
