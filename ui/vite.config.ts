// Builds the dashboard into ui/dist. Relative asset URLs (`base: './'`) let
// the same build load from `metaclaw serve` at /ui/ and from the tray app's
// bundled assets. Everything is emitted as files (no inline scripts or
// styles), so the strict CSP of both hosts holds.
import { defineConfig } from 'vite';

export default defineConfig({
  base: './',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    // The tray's WebKit and current browsers support modulepreload; the
    // polyfill would only add bytes.
    modulePreload: { polyfill: false },
    // Keep small assets as files too: a `data:` font or script would need a
    // looser CSP than the one the hosts send.
    assetsInlineLimit: 0,
    sourcemap: false,
  },
  server: {
    // `npm run dev`: the API of a running `metaclaw serve` (METACLAW_URL,
    // default the proxy's default port). Open /#token=<admin token>.
    proxy: { '/api': process.env.METACLAW_URL ?? 'http://127.0.0.1:30000' },
  },
});
