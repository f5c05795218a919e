import { parseChatBody } from "../../../src/http/schemas.js";

const text = (t: string) => [{ type: "text", text: t }];

/** The problems of an invalid body (fails the test if the body was accepted). */
function problems(body: unknown): string {
  const result = parseChatBody(body);
  if (result.ok) throw new Error(`accepted: ${JSON.stringify(body)}`);
  return result.problems;
}

describe("POST /api/chat body errors", () => {
  it("accepts both documented forms and reduces them to the last message", () => {
    const message = { id: "m1", role: "user", parts: text("hi"), metadata: { from: "test" } };
    const single = parseChatBody({ id: "c1", message });
    const all = parseChatBody({ id: "c1", messages: [message], trigger: "submit-message" });
    expect(single).toEqual(all);
    expect(single.ok && single.request.message.metadata).toEqual({ from: "test" });
  });

  it("names the field path and what is expected", () => {
    expect(problems({ id: "c1", message: { role: "user", parts: text("hi") } })).toBe(
      "message.id: required: a string id for the message (the AI SDK generates one)",
    );
    expect(problems({ id: "c1", message: { id: "m1", role: "user" } })).toBe(
      'message.parts: required: an array of parts such as [{ "type": "text", "text": "hi" }]',
    );
    expect(problems({ id: "c1", message: "hello" })).toMatch(
      /^message: expected a UIMessage object .*, got a string$/,
    );
    expect(problems({ message: { id: "m1", role: "user", parts: text("hi") } })).toBe(
      "id: required: the chat id, a string (the AI SDK sends the Chat's id)",
    );
    expect(problems({ id: "c1" })).toMatch(/^message: required: the new UIMessage \(or "messages"/);
    expect(problems({})).toMatch(/^id: required: .*; message: required: /);
    expect(problems("just text")).toMatch(/^body: expected a JSON object .*, got a string$/);
    expect(problems(undefined)).toMatch(/^body: expected a JSON object/);
    expect(
      problems({ id: "c1", messages: [{ id: "m1", role: "user", parts: [{ type: "text" }] }] }),
    ).toBe('messages[0].parts[0].text: required: a string (the text of a "text" part)');
    expect(problems({ id: "c1", message: { id: "m1", role: "robot", parts: text("x") } })).toBe(
      'message.role: expected a role: "user" (or "assistant", "system"), got a string',
    );
  });
});
