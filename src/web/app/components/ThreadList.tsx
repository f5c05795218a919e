import type { Thread } from "@langchain/langgraph-sdk";
import { useEffect, useState } from "react";
import { dateTime, expiresAt, fromNow, titleOf } from "../format.js";

interface ThreadListProps {
  threads: Thread[];
  openId: string | null;
  /** The service's TTL (ms) when the sweep is on: each thread says when it will be deleted. */
  ttlMs: number | undefined;
  error: string | null;
  onOpen: (thread: Thread) => void;
  onDelete: (thread: Thread) => void;
}

/**
 * How long the sweep lets this thread sit idle: its own `ttl` (minutes, Agent Server) when it has
 * one, else the service's; undefined when the sweep is off.
 */
function threadTtlMs(thread: Thread, serviceTtlMs: number | undefined): number | undefined {
  if (serviceTtlMs === undefined) return undefined;
  const own = (thread as { ttl?: { ttl?: unknown } }).ttl?.ttl;
  return typeof own === "number" ? own * 60_000 : serviceTtlMs;
}

/** The threads, newest activity first, titled by their first user message. */
export function ThreadList({ threads, openId, ttlMs, error, onOpen, onDelete }: ThreadListProps) {
  // A delete takes two clicks: the first turns the button into a confirmation for a few seconds.
  const [confirming, setConfirming] = useState<string | null>(null);
  useEffect(() => {
    if (!confirming) return;
    const timer = setTimeout(() => setConfirming(null), 5_000);
    return () => clearTimeout(timer);
  }, [confirming]);

  return (
    <section className="panel" aria-labelledby="threads-title">
      <h2 id="threads-title">Threads</h2>
      {error ? (
        <p className="error" role="alert">
          {error}
        </p>
      ) : null}
      {threads.length === 0 && !error ? <p className="muted">No threads yet.</p> : null}
      <ul className="threads">
        {threads.map((thread) => {
          const title = titleOf(thread.values) ?? "New chat";
          const expiry = expiresAt(thread.updated_at, threadTtlMs(thread, ttlMs));
          const isOpen = thread.thread_id === openId;
          return (
            <li
              key={thread.thread_id}
              className={isOpen ? "open" : undefined}
              data-thread-id={thread.thread_id}
            >
              <button
                type="button"
                className="thread-open"
                aria-current={isOpen ? "page" : undefined}
                onClick={() => onOpen(thread)}
              >
                <span className="thread-title">{title}</span>
                <span className="muted small">
                  <time dateTime={thread.updated_at} title={dateTime(thread.updated_at)}>
                    {fromNow(thread.updated_at)}
                  </time>
                  {expiry ? (
                    <>
                      {" · deleted "}
                      <time dateTime={expiry} title={dateTime(expiry)}>
                        {fromNow(expiry)}
                      </time>
                    </>
                  ) : null}
                  {thread.status === "interrupted" ? " · waiting for an answer" : ""}
                </span>
              </button>
              <button
                type="button"
                className="thread-delete"
                aria-label={
                  confirming === thread.thread_id
                    ? `Confirm delete of ${title}`
                    : `Delete thread ${title}`
                }
                onClick={() => {
                  if (confirming === thread.thread_id) {
                    setConfirming(null);
                    onDelete(thread);
                  } else setConfirming(thread.thread_id);
                }}
              >
                {confirming === thread.thread_id ? "Confirm" : "Delete"}
              </button>
            </li>
          );
        })}
      </ul>
    </section>
  );
}
