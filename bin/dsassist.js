#!/usr/bin/env node
// The `dsassist` command: the TypeScript sources run as they are, through tsx's loader.
import { register } from "tsx/esm/api";

register();
const { main } = await import("../core/src/cli.ts");
process.exitCode = await main(process.argv.slice(2));
