import { describe, expect, it } from "vitest";
import { Capped, nameLimit, truncate } from "../../sandboxes/src/collector.ts";
import { Wire, WireError } from "../../sandboxes/src/jupyter/wire.ts";

describe("wire", () => {
  it("parses what it signs, after a SUB topic and identities", () => {
    const wire = new Wire("secret");
    const { msgId, frames } = wire.request("execute_request", { code: "1" });
    const message = wire.parse([Buffer.from("topic"), ...frames]);
    expect(message.header.msg_id).toBe(msgId);
    expect(message.header.msg_type).toBe("execute_request");
    expect(message.content).toEqual({ code: "1" });
  });

  it("rejects a message signed with another key, or tampered with", () => {
    const { frames } = new Wire("other").request("status", { execution_state: "idle" });
    expect(() => new Wire("secret").parse(frames)).toThrow(WireError);
    const wire = new Wire("secret");
    const signed = wire.request("status", { execution_state: "idle" }).frames;
    signed[5] = Buffer.from(JSON.stringify({ execution_state: "busy" }));
    expect(() => wire.parse(signed)).toThrow(WireError);
    expect(() => wire.parse([Buffer.from("no delimiter")])).toThrow(WireError);
  });
});

describe("output caps", () => {
  it("keeps head and tail of one large text and of many small ones", () => {
    const one = truncate(`HEAD${"x".repeat(20000)}TAIL`, 1000);
    expect(one.startsWith("HEAD")).toBe(true);
    expect(one.endsWith("TAIL")).toBe(true);
    expect(one).toContain(`[${20008 - 1000} characters cut]`);
    const many = new Capped(1000);
    for (let i = 0; i < 5000; i++) many.add(`${i}\n`);
    const text = many.text();
    expect(text.startsWith("0\n1\n2\n")).toBe(true);
    expect(text.endsWith("4998\n4999\n")).toBe(true);
    expect(text.length).toBeLessThan(1100);
    expect(truncate("short", 1000)).toBe("short");
  });

  it("names the limits an exception came from, keeping the original", () => {
    const traceback = ["tb"];
    expect(nameLimit({ name: "MemoryError", value: "", traceback })).toEqual({
      name: "MemoryLimit",
      value: "MemoryError: ",
      traceback,
    });
    const eagain = {
      name: "BlockingIOError",
      value: "[Errno 11] Resource temporarily unavailable",
      traceback,
    };
    expect(nameLimit(eagain).name).toBe("ProcessLimit");
    expect(nameLimit({ name: "OSError", value: "[Errno 27] File too large", traceback }).name).toBe(
      "FileSizeLimit",
    );
    expect(nameLimit({ name: "OSError", value: "[Errno 2] No such file", traceback }).name).toBe("OSError");
  });
});
