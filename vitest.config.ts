import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    globalSetup: ["test/global-setup.ts"],
    testTimeout: 60_000,
    hookTimeout: 300_000,
    // kernels are processes: two test files at a time on this 2-core machine
    maxWorkers: 2,
    pool: "forks",
  },
});
