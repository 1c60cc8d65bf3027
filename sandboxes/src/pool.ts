/**
 * Warm kernels: spares launched ahead of need, so that a branch or a recovery takes one that
 * has already booted (milliseconds) instead of starting one (a second or more).
 */
import type { KernelClient } from "./jupyter/client.ts";

export class KernelPool {
  private spares: KernelClient[] = [];
  private closed = false;

  constructor(
    private readonly launch: () => KernelClient,
    private readonly size: number,
    private readonly readyTimeoutMs: number,
  ) {}

  /**
   * A ready kernel: a spare if one is alive and boots, else a new one; then the pool is
   * topped up, so the spares boot while the taken kernel works.
   */
  async take(): Promise<KernelClient> {
    for (;;) {
      const spare = this.spares.shift();
      const kernel = spare ?? this.launch();
      try {
        await kernel.ready(this.readyTimeoutMs);
      } catch (error) {
        await kernel.close();
        if (spare === undefined) throw error;
        continue; // a spare can die while it waits (a fork bomb of the same user)
      }
      this.fill();
      return kernel;
    }
  }

  /** Launch spares up to the pool's size; their boot is awaited only when they are taken. */
  fill(): void {
    while (!this.closed && this.spares.length < this.size) {
      const kernel = this.launch();
      kernel.ready(this.readyTimeoutMs).catch(() => {}); // judged by take()
      this.spares.push(kernel);
    }
  }

  /** Wait until every spare has booted (or failed to). */
  async settle(): Promise<void> {
    await Promise.all(this.spares.map((kernel) => kernel.ready(this.readyTimeoutMs).catch(() => {})));
  }

  async close(): Promise<void> {
    this.closed = true;
    const spares = this.spares;
    this.spares = [];
    await Promise.all(spares.map((kernel) => kernel.close()));
  }
}
