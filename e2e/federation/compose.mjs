#!/usr/bin/env node
// Composes subgraph SDLs into a supergraph with Apollo's own composition
// library (@apollo/composition), the same code Rover and the gateway use.
//
// Usage: node compose.mjs name1=path1.graphql name2=path2.graphql ...
//
// Exit codes:
//   0  composed: the supergraph SDL is on stdout (hints, if any, on stderr)
//   1  composition failed: each error (code and message) is on stderr
//   2  the harness could not run composition at all: bad arguments,
//      unreadable file or an SDL that does not parse
import { readFileSync } from "node:fs";
import { composeServices } from "@apollo/composition";
import { parse } from "graphql";

const USAGE = "usage: node compose.mjs name1=path1.graphql name2=path2.graphql ...";

function fail(message) {
  process.stderr.write(`compose: ${message}\n`);
  process.exit(2);
}

const args = process.argv.slice(2);
if (args.length === 0 || args.includes("-h") || args.includes("--help")) {
  fail(USAGE);
}

const services = [];
const seen = new Set();
for (const arg of args) {
  const eq = arg.indexOf("=");
  if (eq <= 0 || eq === arg.length - 1) {
    fail(`bad argument ${JSON.stringify(arg)}, want name=path\n${USAGE}`);
  }
  const name = arg.slice(0, eq);
  const path = arg.slice(eq + 1);
  if (seen.has(name)) {
    fail(`subgraph name ${JSON.stringify(name)} given twice`);
  }
  seen.add(name);

  let sdl;
  try {
    sdl = readFileSync(path, "utf8");
  } catch (err) {
    fail(`subgraph ${name}: cannot read ${path}: ${err.message}`);
  }
  let typeDefs;
  try {
    typeDefs = parse(sdl);
  } catch (err) {
    fail(`subgraph ${name}: ${path} does not parse: ${err.message}`);
  }
  services.push({ name, typeDefs, url: `http://${name}.local/graphql` });
}

const result = composeServices(services);

if (result.errors && result.errors.length > 0) {
  process.stderr.write(`composition failed with ${result.errors.length} error(s):\n`);
  for (const err of result.errors) {
    const code = err.extensions?.code ?? "UNKNOWN";
    process.stderr.write(`error [${code}] ${err.message}\n`);
  }
  process.exit(1);
}

for (const hint of result.hints ?? []) {
  process.stderr.write(`hint [${hint.definition.code}] ${hint.message}\n`);
}
process.stdout.write(result.supergraphSdl);
if (!result.supergraphSdl.endsWith("\n")) {
  process.stdout.write("\n");
}
