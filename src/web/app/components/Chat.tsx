import type { Client } from "@langchain/langgraph-sdk/client";
import type { Message, ThreadState } from "@langchain/langgraph-sdk";
import { useStream } from "@langchain/langgraph-sdk/react";
import { useEffect, useRef, useState, type FormEvent, type KeyboardEvent } from "react";
import { isUnauthorized } from "../api.js";
import { HistoryTimeline } from "./HistoryTimeline.js";
import { InterruptPrompt } from "./InterruptPrompt.js";
import { Messages } from "./Messages.js";

type ChatState = { messages?: Message[] } & Record<string, unknown>;

interface ChatProps {
  client: Client;
  assistantId: string;
  threadId: string | null;
  /** A thread was created by the first message. */
  onThreadCreated: (threadId: string) => void;
  /** A run ended (or failed): thread list and ops panel refresh. */
  onActivity: () => void;
  onUnauthorized: () => void;
}

function errorText(err: unknown): string {
  if (err instanceof Error) return err.message;
  if (typeof err === "string") return err;
  const message = (err as { message?: unknown } | null)?.message;
  return typeof message === "string" ? message : "the request failed";
}

/**
 * The conversation of one thread through the LangGraph SDK's `useStream`: `runs/stream` with
 * message tokens, history from `threads/{id}/history`, Stop, Regenerate (a run from the parent
 * checkpoint of the last answer), interrupts answered with a `Command`, and forks from an older
 * checkpoint. Renders two grid children: the conversation and the history timeline.
 */
export function Chat(props: ChatProps) {
  const { client, assistantId, threadId, onThreadCreated, onActivity, onUnauthorized } = props;
  const [draft, setDraft] = useState("");
  const [forkFrom, setForkFrom] = useState<ThreadState<ChatState> | null>(null);
  const input = useRef<HTMLTextAreaElement>(null);
  const log = useRef<HTMLDivElement>(null);

  const stream = useStream<ChatState>({
    client,
    assistantId,
    threadId,
    onThreadId: onThreadCreated,
    fetchStateHistory: { limit: 50 },
    onFinish: () => onActivity(),
    onError: (err: unknown) => {
      if (isUnauthorized(err)) onUnauthorized();
      onActivity();
    },
  });

  useEffect(() => {
    setForkFrom(null);
    input.current?.focus();
  }, [threadId]);

  const messages: Message[] = forkFrom ? (forkFrom.values.messages ?? []) : stream.messages;
  const busy = stream.isLoading;
  const interrupt = busy || forkFrom ? undefined : stream.interrupts[0];

  // Keep the newest text in view while tokens arrive.
  const lastText = messages.length;
  useEffect(() => {
    const el = log.current;
    if (el) el.scrollTop = el.scrollHeight;
  }, [lastText, stream.messages]);

  const send = (e?: FormEvent) => {
    e?.preventDefault();
    const text = draft.trim();
    if (!text || busy) return;
    setDraft("");
    const message = { type: "human" as const, content: text };
    const base = forkFrom;
    setForkFrom(null);
    void stream.submit(
      { messages: [message] },
      {
        ...(base ? { checkpoint: base.checkpoint } : {}),
        optimisticValues: (prev: ChatState) => ({
          ...prev,
          messages: [...((base ? base.values.messages : prev.messages) ?? []), message],
        }),
      },
    );
    input.current?.focus();
  };

  const onKeyDown = (e: KeyboardEvent<HTMLTextAreaElement>) => {
    if (e.key === "Enter" && !e.shiftKey && !e.nativeEvent.isComposing) {
      e.preventDefault();
      send();
    }
  };

  const lastAi = [...stream.messages].reverse().find((m) => m.type === "ai");
  const regenerateFrom = lastAi
    ? stream.getMessagesMetadata(lastAi)?.firstSeenState?.parent_checkpoint
    : undefined;
  const regenerate =
    regenerateFrom && !forkFrom
      ? () => {
          void stream.submit(undefined, { checkpoint: regenerateFrom });
          input.current?.focus();
        }
      : undefined;

  const answer = (value: string) => {
    void stream.submit(null, { command: { resume: value } });
    input.current?.focus();
  };

  const error = stream.error;
  return (
    <>
      <main className="chat" aria-labelledby="chat-title">
        <h2 id="chat-title" className="visually-hidden">
          Conversation
        </h2>
        {forkFrom ? (
          <div className="banner" role="status">
            Forking from step {String(forkFrom.metadata?.step ?? "?")}: your next message starts a
            new branch from that checkpoint.{" "}
            <button type="button" className="link" onClick={() => setForkFrom(null)}>
              Cancel fork
            </button>
          </div>
        ) : null}
        <div
          className="log"
          role="log"
          aria-label="Conversation"
          aria-busy={busy}
          ref={log}
          tabIndex={0}
        >
          {stream.isThreadLoading ? <p className="muted">Loading the thread...</p> : null}
          {!stream.isThreadLoading && messages.length === 0 ? (
            <p className="muted empty">Say something to start a conversation.</p>
          ) : null}
          <Messages messages={messages} streaming={busy} onRegenerate={regenerate} />
        </div>
        {error && !busy ? (
          <p className="error" role="alert">
            {errorText(error)}
          </p>
        ) : null}
        {interrupt ? (
          <InterruptPrompt value={interrupt.value} disabled={busy} onAnswer={answer} />
        ) : null}
        <form className="composer" onSubmit={send}>
          <label htmlFor="message">Message</label>
          <textarea
            id="message"
            ref={input}
            value={draft}
            rows={2}
            placeholder="Type a message; Enter sends, Shift+Enter adds a line"
            onChange={(e) => setDraft(e.target.value)}
            onKeyDown={onKeyDown}
          />
          <div className="composer-buttons">
            <button type="submit" disabled={busy || !draft.trim()}>
              Send
            </button>
            <button type="button" onClick={() => void stream.stop()} disabled={!busy}>
              Stop
            </button>
          </div>
        </form>
      </main>
      <aside className="side-right" aria-label="Thread history">
        <HistoryTimeline
          history={threadId ? stream.history : []}
          forkFrom={forkFrom?.checkpoint.checkpoint_id ?? null}
          onFork={(state) => {
            setForkFrom(state);
            input.current?.focus();
          }}
        />
      </aside>
    </>
  );
}
