#!/usr/bin/env node
// Turns the stores' published schemas (testdata/SOURCES.md) into files the
// composition harness can use.
//
// Usage:
//   node store-sdl.mjs print INTROSPECTION.json
//       Prints the SDL of an introspection result (graphql-js
//       buildClientSchema + printSchema). This is how
//       testdata/shopify-storefront-2026-04.graphql was made from
//       storefront.schema.json of @shopify/hydrogen-react.
//   node store-sdl.mjs subgraph STORE
//       Prints the subgraph SDL of STORE (a name in the stores table below):
//       the committed schema of the store with the federation wrapper that
//       store serves (or would serve) it with. The wrapper is the only
//       difference; every type and field of the store is kept as published.
//   node store-sdl.mjs list
//       Prints one line per store: its name, its customer type and the
//       fields of that type's first @key, separated by tabs.
//
// Exit status 2 on bad arguments or an unreadable or unparsable file.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Kind, buildClientSchema, parse, print, printSchema } from "graphql";

const here = dirname(fileURLToPath(import.meta.url));

// Each store: its committed schema, the federation version it is served as
// and the @key directives of its entities. Federation 2 stores get one
// `extend schema @link(...)` line importing @key; Federation 1 stores get no
// link (composition reads a schema without it as Federation 1).
const stores = {
  shopify: {
    file: "testdata/shopify-storefront-2026-04.graphql",
    federation: 2,
    customer: "Customer",
    // The setup: Shopify's Storefront API served as a Federation 2
    // subgraph whose Customer is an entity keyed by id.
    keys: { Customer: ["id"] },
  },
  bigcommerce: {
    file: "testdata/bigcommerce-storefront-catalyst-0.9.0.graphql",
    federation: 2,
    customer: "Customer",
    // BigCommerce's Customer has no id field: entityId is its identifier.
    keys: { Customer: ["entityId"] },
  },
  saleor: {
    file: "testdata/saleor-3.24.0-a.0.graphql",
    federation: 1,
    customer: "User",
    // What Saleor's own _service { sdl } serves (saleor/graphql/core/
    // federation/schema.py): the printed schema without its schema block and
    // without Subscription, with the @key of every @federated_entity type.
    // Saleor's file also holds the federation plumbing (Query._entities,
    // Query._service, _Any, _Entity, _Service), which Saleor's _service
    // does not print and composition adds itself: it is dropped.
    keys: {
      Address: ["id"],
      User: ["id", "email"],
      Group: ["id"],
      App: ["id"],
      Order: ["id"],
      PageType: ["id"],
      Category: ["id"],
      Collection: ["id channel"],
      ProductVariant: ["id channel"],
      Product: ["id channel"],
      ProductType: ["id"],
      ProductMedia: ["id"],
    },
    drop: {
      schema: true,
      types: ["Subscription", "_Any", "_Entity", "_Service"],
      fields: { Query: ["_entities", "_service"] },
    },
  },
};

function fail(message) {
  process.stderr.write(`store-sdl: ${message}\n`);
  process.exit(2);
}

function read(path) {
  try {
    return readFileSync(path, "utf8");
  } catch (err) {
    fail(`cannot read ${path}: ${err.message}`);
  }
}

function keyDirective(fields) {
  return {
    kind: Kind.DIRECTIVE,
    name: { kind: Kind.NAME, value: "key" },
    arguments: [
      {
        kind: Kind.ARGUMENT,
        name: { kind: Kind.NAME, value: "fields" },
        value: { kind: Kind.STRING, value: fields },
      },
    ],
  };
}

// subgraph returns the SDL of the named store as a subgraph.
function subgraph(name) {
  const store = stores[name];
  if (!store) {
    fail(`unknown store ${JSON.stringify(name)}; known: ${Object.keys(stores).join(", ")}`);
  }
  let doc;
  try {
    doc = parse(read(join(here, store.file)));
  } catch (err) {
    fail(`${store.file} does not parse: ${err.message}`);
  }
  const drop = store.drop ?? {};
  const keyed = new Set();
  const definitions = [];
  for (const def of doc.definitions) {
    if (drop.schema && def.kind === Kind.SCHEMA_DEFINITION) continue;
    const typeName = def.name?.value;
    if (typeName && (drop.types ?? []).includes(typeName)) continue;
    let out = def;
    const dropFields = (drop.fields ?? {})[typeName];
    if (dropFields && def.fields) {
      out = { ...out, fields: def.fields.filter((f) => !dropFields.includes(f.name.value)) };
    }
    const keys = store.keys[typeName];
    if (keys && def.kind === Kind.OBJECT_TYPE_DEFINITION) {
      out = { ...out, directives: [...keys.map(keyDirective), ...(def.directives ?? [])] };
      keyed.add(typeName);
    }
    definitions.push(out);
  }
  for (const typeName of Object.keys(store.keys)) {
    if (!keyed.has(typeName)) fail(`${store.file} has no object type ${typeName} to put @key on`);
  }
  let sdl = print({ ...doc, definitions });
  if (store.federation === 2) {
    sdl = `extend schema @link(url: "https://specs.apollo.dev/federation/v2.7", import: ["@key"])\n\n${sdl}`;
  }
  return sdl.endsWith("\n") ? sdl : `${sdl}\n`;
}

const [cmd, arg] = process.argv.slice(2);
switch (cmd) {
  case "print": {
    if (!arg) fail("usage: node store-sdl.mjs print INTROSPECTION.json");
    let json;
    try {
      json = JSON.parse(read(arg));
    } catch (err) {
      fail(`${arg} is not JSON: ${err.message}`);
    }
    const schema = buildClientSchema(json.data ?? json);
    process.stdout.write(`${printSchema(schema)}\n`);
    break;
  }
  case "subgraph":
    if (!arg) fail("usage: node store-sdl.mjs subgraph STORE");
    process.stdout.write(subgraph(arg));
    break;
  case "list":
    for (const [name, store] of Object.entries(stores)) {
      process.stdout.write(`${name}\t${store.customer}\t${store.keys[store.customer][0]}\n`);
    }
    break;
  default:
    fail("usage: node store-sdl.mjs print INTROSPECTION.json | subgraph STORE | list");
}
