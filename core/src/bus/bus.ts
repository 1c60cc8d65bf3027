/**
 * How the controller reaches the agents: one request, one reply, per role. The in-process
 * bus is the embedded default; a NATS transport implements the same interface.
 */
import type { Agent, ReplyOf, RequestOf, Role } from "../messages.ts";

export interface Bus {
  request<R extends Role>(role: R, message: RequestOf<R>): Promise<ReplyOf<R>>;
  close(): Promise<void>;
}

/** No agent serves a role (a user-facing message: the run stops with its report). */
export class NoAgent extends Error {
  override name = "NoAgent";
}

export type Agents = { [R in Role]: Agent<R> };
