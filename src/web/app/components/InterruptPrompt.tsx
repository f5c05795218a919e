import { useEffect, useRef, useState, type FormEvent } from "react";
import { json } from "../format.js";

/** What the page can show of an interrupt's value: a question and the answers to offer. */
export function describeInterrupt(value: unknown): { question: string; options: string[] } {
  if (typeof value === "string") return { question: value, options: ["Yes", "No"] };
  if (value && typeof value === "object" && !Array.isArray(value)) {
    const v = value as Record<string, unknown>;
    const text = [v.question, v.message, v.prompt, v.text].find((x) => typeof x === "string");
    const raw = [v.options, v.choices].find(Array.isArray) as unknown[] | undefined;
    const options = (raw ?? []).filter((o): o is string => typeof o === "string");
    if (typeof text === "string") return { question: text, options: raw ? options : ["Yes", "No"] };
  }
  return { question: json(value), options: [] };
}

interface InterruptPromptProps {
  value: unknown;
  disabled: boolean;
  onAnswer: (answer: string) => void;
}

/** The graph stopped to ask something: its question, a button per answer, or a typed answer. */
export function InterruptPrompt({ value, disabled, onAnswer }: InterruptPromptProps) {
  const { question, options } = describeInterrupt(value);
  const [typed, setTyped] = useState("");
  const region = useRef<HTMLElement>(null);
  useEffect(() => {
    region.current?.focus();
  }, [question]);

  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (typed.trim()) onAnswer(typed.trim());
  };
  return (
    <section
      className="interrupt"
      aria-labelledby="interrupt-title"
      tabIndex={-1}
      ref={region}
      data-testid="interrupt"
    >
      <h2 id="interrupt-title">The agent asks</h2>
      <p className="interrupt-question">{question}</p>
      <div className="interrupt-options">
        {options.map((option) => (
          <button key={option} type="button" disabled={disabled} onClick={() => onAnswer(option)}>
            {option}
          </button>
        ))}
      </div>
      <form onSubmit={submit} className="interrupt-form">
        <label htmlFor="interrupt-answer">Your answer</label>
        <input
          id="interrupt-answer"
          value={typed}
          onChange={(e) => setTyped(e.target.value)}
          disabled={disabled}
        />
        <button type="submit" disabled={disabled || !typed.trim()}>
          Answer
        </button>
      </form>
    </section>
  );
}
