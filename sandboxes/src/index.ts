export * from "./pyenv.ts";
export * from "./types.ts";
