// `npm run build`: generates the TypeScript clients from ../proto (buf + protoc-gen-es),
// type-checks, and writes dist/ (index.html, app.css, one bundled app.js). dist/ is committed
// and embedded in the bookstore binary; CI runs this and fails when dist/ changes.
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdirSync, rmSync } from "node:fs";
import * as esbuild from "esbuild";

const run = (command, ...args) => execFileSync(command, args, { stdio: "inherit" });

run("buf", "generate");
run("tsc", "--project", ".");
rmSync("dist", { recursive: true, force: true });
mkdirSync("dist");
await esbuild.build({
  entryPoints: ["src/main.ts"],
  outfile: "dist/app.js",
  bundle: true,
  format: "esm",
  target: ["chrome110", "firefox110", "safari16"],
  minify: true,
  legalComments: "none",
  logLevel: "warning",
});
for (const file of ["index.html", "app.css"]) copyFileSync(`src/${file}`, `dist/${file}`);
