// Bundles src/main.ts (and the CSS it imports) into ../assets/app.js and ../assets/app.css, which
// the server embeds. Deterministic: the same sources and lockfile give the same bytes, so that CI
// can rebuild and compare with the committed copies.
import { build } from 'esbuild';

await build({
  entryPoints: ['src/main.ts'],
  bundle: true,
  minify: true,
  format: 'esm',
  target: ['es2022'],
  outfile: '../assets/app.js',
  legalComments: 'none',
  logLevel: 'warning',
});
