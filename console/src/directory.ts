// Employees by id, for names wherever the API answers with ids. On a development stack the
// sign-in's directory serves it; elsewhere an id shows as "#id".
import { get } from "./api";
import type { Employee } from "./session";
import { signal } from "./signal";

export const directory = signal<Employee[]>([]);

export async function loadDirectory(): Promise<Employee[]> {
  const found = await get<Employee[]>("/dev/sign-in/employees");
  directory.value = found;
  return found;
}

export function nameOf(id: number): string {
  const found = directory.value.find((e) => e.id === id);
  return found ? found.name : `#${id}`;
}
