// Employees by id, for names wherever the API answers with ids and for the approver pickers:
// employee-service's directory (GET /employees/directory), open to any signed-in person in
// both sign-in modes. An id not among those read shows as "#id".
import { get } from "./api";
import type { Employee } from "./session";
import { signal } from "./signal";

// The directory's largest page: the pickers offer at most this many people.
const READ = 200;

export const directory = signal<Employee[]>([]);

export async function loadDirectory(): Promise<Employee[]> {
  const found = await get<Employee[]>(`/employees/directory?limit=${READ}`);
  directory.value = found;
  return found;
}

export function nameOf(id: number): string {
  const found = directory.value.find((e) => e.id === id);
  return found ? found.name : `#${id}`;
}
