#!/usr/bin/env node
// The `atelier` command. Runs directly on Node 24 (type stripping); `npx atelier` from the
// repository root puts the project's Node 24 first on PATH.
import { main } from '../src/cli/main.ts';

const ac = new AbortController();
let interrupted = false;
process.on('SIGINT', () => {
  // First Ctrl-C cancels cleanly (the engine stops within one step); a second one exits now.
  if (interrupted) process.exit(130);
  interrupted = true;
  ac.abort();
});

process.exitCode = await main(
  process.argv.slice(2),
  { stdout: process.stdout, stderr: process.stderr },
  undefined,
  ac.signal,
);
