import type { ReplyOf, RequestOf, Role } from "../messages.ts";
import type { Agents, Bus } from "./bus.ts";

/**
 * The agents in this process: a request is a function call. Messages are not re-validated
 * here (both sides are this program's code); a transport that crosses a process boundary
 * validates them against `Roles`.
 */
export class InProcessBus implements Bus {
  constructor(private readonly agents: Agents) {}

  request<R extends Role>(role: R, message: RequestOf<R>): Promise<ReplyOf<R>> {
    return this.agents[role].handle(message);
  }

  async close(): Promise<void> {}
}
