/** The open thread lives in the URL (`/?thread=<id>`), so reloads and shared links reopen it. */
export function threadFromUrl(): string | null {
  const id = new URLSearchParams(window.location.search).get("thread");
  return id && id.length <= 256 ? id : null;
}

/** Puts `threadId` in the URL; `push` adds a history entry (Back returns to the previous one). */
export function setThreadInUrl(threadId: string | null, push: boolean): void {
  const url = new URL(window.location.href);
  if (threadId) url.searchParams.set("thread", threadId);
  else url.searchParams.delete("thread");
  if (url.href === window.location.href) return;
  if (push) window.history.pushState(null, "", url);
  else window.history.replaceState(null, "", url);
}
