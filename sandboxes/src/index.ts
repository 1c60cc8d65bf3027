export * from "./types.ts";
export * from "./pyenv.ts";
