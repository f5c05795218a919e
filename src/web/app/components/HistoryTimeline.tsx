import type { ThreadState } from "@langchain/langgraph-sdk";
import { dateTime } from "../format.js";

interface HistoryTimelineProps {
  /** The open branch, oldest first (useStream's `history`). */
  history: ThreadState<Record<string, unknown>>[];
  /** The checkpoint a fork is being prepared from, if any. */
  forkFrom: string | null;
  onFork: (state: ThreadState<Record<string, unknown>>) => void;
}

function messageCount(values: unknown): number {
  const messages = (values as { messages?: unknown } | null)?.messages;
  return Array.isArray(messages) ? messages.length : 0;
}

/** The thread's checkpoints, newest first; any older one can be forked from. */
export function HistoryTimeline({ history, forkFrom, onFork }: HistoryTimelineProps) {
  const newestFirst = [...history].reverse();
  return (
    <section className="panel" aria-labelledby="history-title">
      <h2 id="history-title">History</h2>
      {newestFirst.length === 0 ? (
        <p className="muted">No checkpoints yet.</p>
      ) : (
        <ol className="timeline" aria-label="Checkpoints, newest first">
          {newestFirst.map((state, i) => {
            const id = state.checkpoint.checkpoint_id ?? "";
            const step = state.metadata?.step;
            const source = state.metadata?.source;
            return (
              <li
                key={id || i}
                className={id === forkFrom ? "selected" : undefined}
                data-checkpoint={id}
              >
                <div className="timeline-head">
                  <span>
                    {typeof step === "number" ? `step ${step}` : "checkpoint"}
                    {typeof source === "string" ? ` · ${source}` : ""}
                  </span>
                  <time dateTime={state.created_at ?? undefined}>{dateTime(state.created_at)}</time>
                </div>
                <div className="muted small">
                  {messageCount(state.values)} messages
                  {state.next.length ? ` · next: ${state.next.join(", ")}` : ""} ·{" "}
                  <code title={id}>{id.slice(-8)}</code>
                </div>
                {i > 0 ? (
                  <button
                    type="button"
                    className="link"
                    onClick={() => onFork(state)}
                    aria-label={`Fork from step ${String(step ?? i)}`}
                  >
                    Fork from here
                  </button>
                ) : (
                  <span className="muted small">latest</span>
                )}
              </li>
            );
          })}
        </ol>
      )}
    </section>
  );
}
