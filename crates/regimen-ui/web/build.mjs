// Bundles src/main.ts (and the CSS it imports) into ../assets/app.js and ../assets/app.css, which
// the server embeds; `node build.mjs DIR` writes them into DIR instead. Deterministic: the same
// sources and lockfile give the same bytes, so that CI can rebuild and compare with the committed
// copies.
import { join } from 'node:path';
import { build } from 'esbuild';

const out = process.argv[2] ?? '../assets';

await build({
  entryPoints: ['src/main.ts'],
  bundle: true,
  minify: true,
  format: 'esm',
  target: ['es2022'],
  outfile: join(out, 'app.js'),
  legalComments: 'none',
  logLevel: 'warning',
});
