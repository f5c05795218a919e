import { useState, type FormEvent } from "react";

interface KeyPromptProps {
  error: string | null;
  onKey: (key: string) => void;
}

/** Asks for an API key; the page keeps it in sessionStorage only (gone with the tab). */
export function KeyPrompt({ error, onKey }: KeyPromptProps) {
  const [key, setKey] = useState("");
  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (key.trim()) onKey(key.trim());
  };
  return (
    <main className="key-prompt">
      <form onSubmit={submit} aria-labelledby="key-title">
        <h1 id="key-title">Threadline</h1>
        <p>This service requires an API key.</p>
        <label htmlFor="api-key">API key</label>
        <input
          id="api-key"
          type="password"
          autoComplete="off"
          autoFocus
          value={key}
          onChange={(e) => setKey(e.target.value)}
        />
        {error ? (
          <p className="error" role="alert">
            {error}
          </p>
        ) : null}
        <button type="submit" disabled={!key.trim()}>
          Use key
        </button>
        <p className="muted small">Kept in this tab's session storage only.</p>
      </form>
    </main>
  );
}
