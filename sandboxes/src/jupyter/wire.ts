/**
 * The Jupyter wire protocol (version 5.3): messages as ZeroMQ multipart frames,
 * `[identities..., "<IDS|MSG>", hmac, header, parent_header, metadata, content, buffers...]`,
 * signed with HMAC-SHA256 of the connection file's key over the four JSON frames.
 */
import { createHmac, randomUUID, timingSafeEqual } from "node:crypto";

const DELIMITER = Buffer.from("<IDS|MSG>");
const PROTOCOL_VERSION = "5.3";

export interface Header {
  msg_id: string;
  msg_type: string;
  session: string;
  username: string;
  date: string;
  version: string;
}

export interface Message {
  header: Header;
  /** the header of the request this message answers; `{}` for none */
  parent_header: Partial<Header>;
  metadata: Record<string, unknown>;
  content: Record<string, unknown>;
}

/** A frame sequence that is not a message signed with our key: dropped, never trusted. */
export class WireError extends Error {
  override name = "WireError";
}

export class Wire {
  private readonly key: Buffer;
  readonly session = randomUUID();

  constructor(key: string) {
    this.key = Buffer.from(key, "utf8");
  }

  /** A new request: its id (to match replies by parent header) and its frames. */
  request(msgType: string, content: Record<string, unknown>): { msgId: string; frames: Buffer[] } {
    const header: Header = {
      msg_id: randomUUID(),
      msg_type: msgType,
      session: this.session,
      username: "dsassist",
      date: new Date().toISOString(),
      version: PROTOCOL_VERSION,
    };
    const parts = [header, {}, {}, content].map((part) => Buffer.from(JSON.stringify(part)));
    return { msgId: header.msg_id, frames: [DELIMITER, Buffer.from(this.sign(parts)), ...parts] };
  }

  /** Parse and verify the frames of a received message (a SUB socket's topic comes first). */
  parse(frames: Buffer[]): Message {
    const at = frames.findIndex((frame) => frame.equals(DELIMITER));
    if (at < 0 || frames.length < at + 6) throw new WireError("not a Jupyter message");
    const signature = frames[at + 1] as Buffer;
    const parts = frames.slice(at + 2, at + 6);
    const expected = Buffer.from(this.sign(parts));
    if (signature.length !== expected.length || !timingSafeEqual(signature, expected)) {
      throw new WireError("a message with an invalid signature");
    }
    const [header, parent_header, metadata, content] = parts.map((part) => JSON.parse(part.toString("utf8")));
    return { header, parent_header, metadata, content };
  }

  private sign(parts: Buffer[]): string {
    const hmac = createHmac("sha256", this.key);
    for (const part of parts) hmac.update(part);
    return hmac.digest("hex");
  }
}
