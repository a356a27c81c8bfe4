#!/usr/bin/env node
// Serves a real federation gateway (@apollo/gateway) in front of two
// subgraphs: a small storefront subgraph (@apollo/subgraph, the schema in
// store.graphql: Customer keyed by id with email and firstName, as a store's
// graph has it) and Refrain's subgraph at the address given. The gateway
// composes them with IntrospectAndCompose (each subgraph's _service { sdl },
// through @apollo/composition) and forwards the client's Authorization header
// to every subgraph, so a customer token reaches Refrain unchanged.
//
// With --saleor the storefront subgraph is shaped like Saleor's graph
// instead (saleor.graphql: the customer type is User, keyed by its global
// id), and a third subgraph, the bridge of saleor-bridge.graphql, adds
// User.refrain: a reference to Refrain's Customer with the same id.
//
// Usage:
//   node serve.mjs --refrain http://127.0.0.1:8080/graphql \
//     [--saleor] [--port 4000] [--store-port 0] [--customers customers.json]
//
// customers.json is an array of {"id", "email", "firstName", "lastName"}: the
// customers the storefront subgraph knows (default testdata/store-customers.json,
// or testdata/saleor-users.json with --saleor). Port 0 (the default) picks a
// free port. When every server listens, one JSON line {"gateway": URL,
// "store": URL} is printed on stdout; errors go to stderr and exit with
// status 1 (2 for bad arguments).
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
const USAGE = "usage: node serve.mjs --refrain URL [--saleor] [--port N] [--store-port N] [--customers FILE.json]";

function usage(message) {
  process.stderr.write(`serve: ${message}\n${USAGE}\n`);
  process.exit(2);
}

function parseArgs(argv) {
  const opts = { port: 0, storePort: 0, refrain: "", customers: "", saleor: false };
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
      case "--saleor": opts.saleor = true; break;
      case "-h": case "--help": usage("help"); break;
      default: usage(`unknown argument ${JSON.stringify(arg)}`);
    }
  }
  if (!opts.refrain) usage("--refrain (Refrain's /graphql address) is required");
  if (!opts.customers) {
    opts.customers = join(here, "testdata", opts.saleor ? "saleor-users.json" : "store-customers.json");
  }
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
  return startSubgraph(typeDefs, resolvers, port);
}

// A Saleor-shaped subgraph: User instead of Customer.
async function startSaleor(users, port) {
  const typeDefs = parse(readFileSync(join(here, "saleor.graphql"), "utf8"));
  const byEmail = new Map([...users.values()].map((u) => [u.email, u]));
  const resolvers = {
    Query: {
      user: (_, { id, email }) => (id ? users.get(id) : byEmail.get(email)) ?? null,
      me: () => null,
    },
    User: {
      __resolveReference: (ref) => users.get(ref.id) ?? null,
    },
  };
  return startSubgraph(typeDefs, resolvers, port);
}

// The bridge: User.refrain is a reference to Refrain's Customer keyed by the
// same global id, so the gateway fetches its fields from Refrain.
async function startSaleorBridge() {
  const typeDefs = parse(readFileSync(join(here, "saleor-bridge.graphql"), "utf8"));
  const resolvers = {
    User: {
      __resolveReference: (ref) => ({ id: ref.id }),
      refrain: (user) => ({ __typename: "Customer", id: user.id }),
    },
  };
  return startSubgraph(typeDefs, resolvers, 0);
}

async function startSubgraph(typeDefs, resolvers, port) {
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

async function startGateway(subgraphs, port) {
  const gateway = new ApolloGateway({
    supergraphSdl: new IntrospectAndCompose({ subgraphs }),
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
  const subgraphs = [];
  let store;
  if (opts.saleor) {
    store = await startSaleor(customers, opts.storePort);
    subgraphs.push({ name: "saleor", url: store }, { name: "saleor-bridge", url: await startSaleorBridge() });
  } else {
    store = await startStore(customers, opts.storePort);
    subgraphs.push({ name: "store", url: store });
  }
  subgraphs.push({ name: "refrain", url: opts.refrain });
  const gateway = await startGateway(subgraphs, opts.port);
  process.stdout.write(JSON.stringify({ gateway, store }) + "\n");
} catch (err) {
  process.stderr.write(`serve: ${err.stack ?? err}\n`);
  process.exit(1);
}
