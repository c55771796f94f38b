// What an action did: a polite status when it went through, an alert with the service's own
// words when it was refused.
import { useState } from "preact/hooks";

export function Feedback({ message, error }: { message?: string; error?: string }) {
  return (
    <>
      {message && (
        <p class="ok" role="status">
          {message}
        </p>
      )}
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
    </>
  );
}

/** Runs an action, keeping its outcome for <Feedback>: `done` on success, the refusal's text otherwise. */
export function useAction(): [
  { message: string; error: string },
  (action: () => Promise<unknown>, done?: string) => Promise<boolean>,
] {
  const [outcome, setOutcome] = useState({ message: "", error: "" });
  const run = async (action: () => Promise<unknown>, done = "") => {
    setOutcome({ message: "", error: "" });
    try {
      await action();
      setOutcome({ message: done, error: "" });
      return true;
    } catch (failure) {
      setOutcome({ message: "", error: (failure as Error).message });
      return false;
    }
  };
  return [outcome, run];
}
