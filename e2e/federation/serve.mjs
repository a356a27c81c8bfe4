#!/usr/bin/env node
// Serves a real federation gateway (@apollo/gateway) in front of two
// subgraphs: a small storefront subgraph (@apollo/subgraph, the schema in
// store.graphql: Customer keyed by id with email and firstName, as a store's
// graph has it) and Refrain's subgraph at the address given. The gateway
// composes them with IntrospectAndCompose (each subgraph's _service { sdl },
// through @apollo/composition) and forwards the client's Authorization header
// to every subgraph, so a customer token reaches Refrain unchanged.
//
// Usage:
//   node serve.mjs --refrain http://127.0.0.1:8080/graphql \
//     [--port 4000] [--store-port 0] [--customers customers.json]
//
// customers.json is an array of {"id", "email", "firstName", "lastName"}: the
// customers the storefront subgraph knows (default testdata/store-customers.json).
// Port 0 (the default for both) picks a free port. When both servers listen,
// one JSON line {"gateway": URL, "store": URL} is printed on stdout; errors go
// to stderr and exit with status 1 (2 for bad arguments).
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { ApolloServer } from "@apollo/server";
import { startStandaloneServer } from "@apollo/server/standalone";
import { ApolloServerPluginInlineTraceDisabled } from "@apollo/server/plugin/disabled";
import { buildSubgraphSchema } from "@apollo/subgraph";
import { ApolloGateway, IntrospectAndCompose, RemoteGraphQLDataSource } from "@apollo/gateway";
import { parse } from "graphql";

const here = dirname(fileURLToPath(import.meta.url));
const USAGE = "usage: node serve.mjs --refrain URL [--port N] [--store-port N] [--customers FILE.json]";

function usage(message) {
  process.stderr.write(`serve: ${message}\n${USAGE}\n`);
  process.exit(2);
}

function parseArgs(argv) {
  const opts = { port: 0, storePort: 0, refrain: "", customers: join(here, "testdata", "store-customers.json") };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) usage(`${arg} needs a value`);
      return argv[++i];
    };
    const port = () => {
      const v = value();
      const n = Number(v);
      if (!Number.isInteger(n) || n < 0 || n > 65535) usage(`${arg}: ${JSON.stringify(v)} is not a port`);
      return n;
    };
    switch (arg) {
      case "--refrain": opts.refrain = value(); break;
      case "--port": opts.port = port(); break;
      case "--store-port": opts.storePort = port(); break;
      case "--customers": opts.customers = value(); break;
      case "-h": case "--help": usage("help"); break;
      default: usage(`unknown argument ${JSON.stringify(arg)}`);
    }
  }
  if (!opts.refrain) usage("--refrain (Refrain's /graphql address) is required");
  try {
    new URL(opts.refrain);
  } catch {
    usage(`--refrain: ${JSON.stringify(opts.refrain)} is not an address`);
  }
  return opts;
}

function loadCustomers(path) {
  let list;
  try {
    list = JSON.parse(readFileSync(path, "utf8"));
  } catch (err) {
    usage(`--customers: cannot read ${path}: ${err.message}`);
  }
  if (!Array.isArray(list)) usage(`--customers: ${path} must hold a JSON array`);
  const byId = new Map();
  for (const [i, c] of list.entries()) {
    if (!c || typeof c.id !== "string" || c.id === "") usage(`--customers: ${path}: entry ${i} has no string "id"`);
    byId.set(c.id, { id: c.id, email: c.email ?? null, firstName: c.firstName ?? null, lastName: c.lastName ?? null });
  }
  return byId;
}

// The storefront subgraph: what a store's own graph would serve.
async function startStore(customers, port) {
  const typeDefs = parse(readFileSync(join(here, "store.graphql"), "utf8"));
  const resolvers = {
    Query: {
      customer: (_, { id }) => customers.get(id) ?? null,
      customers: (_, { first }) => [...customers.values()].slice(0, first ?? 20),
      segments: () => [],
      me: () => null,
    },
    Customer: {
      __resolveReference: (ref) => customers.get(ref.id) ?? null,
    },
  };
  const server = new ApolloServer({
    schema: buildSubgraphSchema([{ typeDefs, resolvers }]),
    includeStacktraceInErrorResponses: false,
    plugins: [ApolloServerPluginInlineTraceDisabled()],
  });
  const { url } = await startStandaloneServer(server, { listen: { host: "127.0.0.1", port } });
  return url;
}

// Passes the client's Authorization header on to the subgraph.
class AuthForwardingDataSource extends RemoteGraphQLDataSource {
  willSendRequest({ request, context }) {
    if (context?.authorization) {
      request.http.headers.set("authorization", context.authorization);
    }
  }
}

async function startGateway(storeURL, refrainURL, port) {
  const gateway = new ApolloGateway({
    supergraphSdl: new IntrospectAndCompose({
      subgraphs: [
        { name: "store", url: storeURL },
        { name: "refrain", url: refrainURL },
      ],
    }),
    buildService: ({ url }) => new AuthForwardingDataSource({ url }),
  });
  const server = new ApolloServer({ gateway, includeStacktraceInErrorResponses: false });
  const { url } = await startStandaloneServer(server, {
    listen: { host: "127.0.0.1", port },
    context: async ({ req }) => ({ authorization: req.headers.authorization }),
  });
  return url;
}

const opts = parseArgs(process.argv.slice(2));
const customers = loadCustomers(opts.customers);
try {
  const store = await startStore(customers, opts.storePort);
  const gateway = await startGateway(store, opts.refrain, opts.port);
  process.stdout.write(JSON.stringify({ gateway, store }) + "\n");
} catch (err) {
  process.stderr.write(`serve: ${err.stack ?? err}\n`);
  process.exit(1);
}
