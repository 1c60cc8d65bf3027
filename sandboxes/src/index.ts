export * from "./create.ts";
export { bubblewrapWorks, FIRST_KERNEL_UID, nextKernelUid } from "./local/isolation.ts";
export { LocalSandbox, type LocalSandboxOptions } from "./local/sandbox.ts";
export * from "./pyenv.ts";
export * from "./types.ts";
