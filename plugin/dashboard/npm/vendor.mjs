// Copies the browser builds of the packages in package-lock.json into
// ../vendor, which the Go binary embeds: run `npm ci --ignore-scripts &&
// npm run vendor` after changing a version, and commit ../vendor. The copy
// is byte for byte, except that source map comments are dropped (the maps
// are not shipped), so the same lock file always gives the same files;
// `npm run vendor -- --check` fails when ../vendor differs from it.
import { readFileSync, writeFileSync, mkdirSync, readdirSync, existsSync } from "node:fs";
import { createHash } from "node:crypto";

const files = [
  // [package, file in the package, name in ../vendor]
  ["react", "umd/react.production.min.js", "react.production.min.js"],
  ["react-dom", "umd/react-dom.production.min.js", "react-dom.production.min.js"],
  ["graphiql", "graphiql.min.js", "graphiql.min.js"],
  ["graphiql", "graphiql.min.css", "graphiql.min.css"],
  ["uplot", "dist/uPlot.iife.min.js", "uPlot.iife.min.js"],
  ["uplot", "dist/uPlot.min.css", "uPlot.min.css"],
];

const check = process.argv.includes("--check");
const out = new URL("../vendor/", import.meta.url);
const want = new Map();
const versions = new Map();
for (const [pkg, src, dst] of files) {
  const dir = new URL(`node_modules/${pkg}/`, import.meta.url);
  const text = readFileSync(new URL(src, dir), "utf8").replace(/\n?\/[/*]# sourceMappingURL=\S+\s*(\*\/)?\s*$/, "\n");
  want.set(dst, text);
  const meta = JSON.parse(readFileSync(new URL("package.json", dir), "utf8"));
  versions.set(pkg, meta);
  want.set(`LICENSE.${pkg}`, readFileSync(new URL("LICENSE", dir), "utf8"));
}
let sources = "# Vendored browser code\n\nCopied from npm by ../npm/vendor.mjs (`npm ci --ignore-scripts && npm run vendor`); do not edit.\n\n" +
  "| file | package | version | licence | sha256 |\n|---|---|---|---|---|\n";
for (const [pkg, , dst] of files) {
  const meta = versions.get(pkg);
  const sum = createHash("sha256").update(want.get(dst)).digest("hex");
  sources += `| ${dst} | ${pkg} | ${meta.version} | ${meta.license} | ${sum} |\n`;
}
want.set("SOURCES.md", sources);

if (check) {
  const bad = [];
  for (const [name, text] of want) {
    const p = new URL(name, out);
    if (!existsSync(p) || readFileSync(p, "utf8") !== text) bad.push(name);
  }
  for (const name of readdirSync(out)) if (!want.has(name)) bad.push(name + " (not made by vendor.mjs)");
  if (bad.length) {
    console.error("plugin/dashboard/vendor differs from what npm run vendor makes: " + bad.join(", "));
    process.exit(1);
  }
  console.log("plugin/dashboard/vendor matches package-lock.json");
} else {
  mkdirSync(out, { recursive: true });
  for (const [name, text] of want) writeFileSync(new URL(name, out), text);
  console.log(`wrote ${want.size} files to plugin/dashboard/vendor`);
}
