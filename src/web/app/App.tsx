import type { Assistant, Thread } from "@langchain/langgraph-sdk";
import { useCallback, useEffect, useMemo, useReducer, useState } from "react";
import {
  createClient,
  getJson,
  isUnauthorized,
  readStoredKey,
  storeKey,
  type AuthInfo,
  type ServiceStatus,
  type ThreadStorage,
} from "./api.js";
import { Chat } from "./components/Chat.js";
import { KeyPrompt } from "./components/KeyPrompt.js";
import { OpsPanel } from "./components/OpsPanel.js";
import { ThreadList } from "./components/ThreadList.js";
import { setThreadInUrl, threadFromUrl } from "./url.js";

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Asks for a key when the service wants one, then shows the workspace. */
export function App() {
  const [key, setKey] = useState<string | null>(() => readStoredKey());
  const [needKey, setNeedKey] = useState<boolean | null>(null);
  const [keyError, setKeyError] = useState<string | null>(null);

  useEffect(() => {
    getJson<AuthInfo>("/api/auth", null).then(
      (info) => setNeedKey(info.apiKeyRequired),
      () => setNeedKey(false),
    );
  }, []);

  const refused = useCallback(() => {
    storeKey(null);
    setKey(null);
    setKeyError("The service refused that key; enter a valid one.");
  }, []);

  if (needKey === null) return <p className="muted boot">Loading...</p>;
  if (needKey && !key) {
    return (
      <KeyPrompt
        error={keyError}
        onKey={(k) => {
          storeKey(k);
          setKeyError(null);
          setKey(k);
        }}
      />
    );
  }
  return <Workspace apiKey={key} onUnauthorized={refused} />;
}

interface WorkspaceProps {
  apiKey: string | null;
  onUnauthorized: () => void;
}

function Workspace({ apiKey, onUnauthorized }: WorkspaceProps) {
  const client = useMemo(() => createClient(apiKey), [apiKey]);
  const [threadId, setThreadId] = useState<string | null>(() => threadFromUrl());
  const [assistants, setAssistants] = useState<Assistant[]>([]);
  const [assistantId, setAssistantId] = useState<string | null>(null);
  const [threads, setThreads] = useState<Thread[]>([]);
  const [threadsError, setThreadsError] = useState<string | null>(null);
  const [status, setStatus] = useState<ServiceStatus | null>(null);
  const [storage, setStorage] = useState<ThreadStorage | null>(null);
  const [opsError, setOpsError] = useState<string | null>(null);
  const [version, refresh] = useReducer((n: number) => n + 1, 0);
  const [showThreads, setShowThreads] = useState(false);

  const fail = useCallback(
    (err: unknown, set: (text: string) => void) => {
      if (isUnauthorized(err)) onUnauthorized();
      else set(message(err));
    },
    [onUnauthorized],
  );

  // Back and Forward move between the threads the URL named.
  useEffect(() => {
    const onPop = () => setThreadId(threadFromUrl());
    window.addEventListener("popstate", onPop);
    return () => window.removeEventListener("popstate", onPop);
  }, []);

  useEffect(() => {
    client.assistants.search({ limit: 100 }).then(
      (found) => {
        setAssistants(found);
        setAssistantId(
          (current) =>
            current ??
            (found.find((a) => a.graph_id === "chat") ?? found[0])?.assistant_id ??
            "chat",
        );
      },
      (err: unknown) => {
        fail(err, setThreadsError);
        setAssistantId((current) => current ?? "chat");
      },
    );
  }, [client, fail]);

  useEffect(() => {
    client.threads.search({ limit: 50, sortBy: "updated_at", sortOrder: "desc" }).then(
      (found) => {
        setThreads(found);
        setThreadsError(null);
      },
      (err: unknown) => fail(err, setThreadsError),
    );
  }, [client, version, fail]);

  // Ops data: every 5 s, and after every run.
  useEffect(() => {
    let stopped = false;
    const load = () => {
      const headers = apiKey;
      getJson<ServiceStatus>("/api/status", headers).then(
        (s) => {
          if (stopped) return;
          setStatus(s);
          setOpsError(null);
        },
        (err: unknown) => !stopped && fail(err, setOpsError),
      );
      if (threadId) {
        getJson<ThreadStorage>(`/api/status/threads/${encodeURIComponent(threadId)}`, headers).then(
          (s) => !stopped && setStorage(s),
          () => !stopped && setStorage(null),
        );
      } else setStorage(null);
    };
    load();
    const timer = setInterval(load, 5_000);
    return () => {
      stopped = true;
      clearInterval(timer);
    };
  }, [apiKey, threadId, version, fail]);

  const open = (thread: Thread) => {
    const graph = thread.metadata?.graph_id;
    const owner = assistants.find((a) => a.graph_id === graph || a.assistant_id === graph);
    if (owner) setAssistantId(owner.assistant_id);
    setThreadId(thread.thread_id);
    setThreadInUrl(thread.thread_id, true);
    setShowThreads(false);
  };
  const newChat = () => {
    setThreadId(null);
    setThreadInUrl(null, true);
    setShowThreads(false);
  };
  const remove = (thread: Thread) => {
    if (thread.thread_id === threadId) newChat();
    setThreads((list) => list.filter((t) => t.thread_id !== thread.thread_id));
    client.threads.delete(thread.thread_id).then(refresh, (err: unknown) => {
      fail(err, setThreadsError);
      refresh();
    });
  };

  return (
    <div className="app">
      <header className="top">
        <h1>Threadline</h1>
        {assistants.length > 1 ? (
          <label className="graph-picker">
            Graph{" "}
            <select
              value={assistantId ?? ""}
              onChange={(e) => {
                setAssistantId(e.target.value);
                newChat();
              }}
            >
              {assistants.map((a) => (
                <option key={a.assistant_id} value={a.assistant_id}>
                  {a.name && a.name !== a.graph_id ? `${a.name} (${a.graph_id})` : a.graph_id}
                </option>
              ))}
            </select>
          </label>
        ) : null}
        <button
          type="button"
          className="threads-toggle"
          aria-expanded={showThreads}
          aria-controls="threads-nav"
          onClick={() => setShowThreads((v) => !v)}
        >
          Threads
        </button>
        <button type="button" onClick={newChat}>
          New chat
        </button>
      </header>
      <nav
        id="threads-nav"
        className={`side-left${showThreads ? " shown" : ""}`}
        aria-label="Threads"
      >
        <ThreadList
          threads={threads}
          openId={threadId}
          ttlMs={status?.cleanup.enabled ? status.cleanup.ttlMs : undefined}
          error={threadsError}
          onOpen={open}
          onDelete={remove}
        />
      </nav>
      {assistantId ? (
        <Chat
          client={client}
          assistantId={assistantId}
          threadId={threadId}
          onThreadCreated={(id) => {
            setThreadId(id);
            setThreadInUrl(id, false);
            refresh();
          }}
          onActivity={refresh}
          onUnauthorized={onUnauthorized}
        />
      ) : (
        <main className="chat">
          <p className="muted">Loading...</p>
        </main>
      )}
      <aside className="side-ops" aria-label="Operations">
        <OpsPanel status={status} storage={storage} error={opsError} />
      </aside>
    </div>
  );
}
