// vite.config.ts — builds the Svelte renderer (root renderer/) into dist/renderer with relative asset
// paths, so the same bundle loads from file:// in Electron and from `tailor serve` over HTTP.
import { defineConfig } from 'vite';
import { svelte } from '@sveltejs/vite-plugin-svelte';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('.', import.meta.url));

export default defineConfig({
  root,
  base: './',
  plugins: [svelte()],
  build: {
    outDir: fileURLToPath(new URL('../dist/renderer', import.meta.url)),
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: false,
    // no inline modulepreload polyfill script: the CSP allows only 'self' scripts
    modulePreload: { polyfill: false },
  },
});
