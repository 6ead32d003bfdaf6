// Builds the dashboard (web/ui) into gen/ui/dist, which the Go binary embeds and serves at /ui/.
// The output is committed and drift-checked by `make check-generated`, so it must be the same
// bytes from the same sources and lock file on any machine: no source maps, no build time, no
// absolute paths; file names carry content hashes, so the server may cache them forever.
import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";

export default defineConfig({
  root: fileURLToPath(new URL(".", import.meta.url)),
  base: "/ui/",
  logLevel: "warn",
  build: {
    outDir: fileURLToPath(new URL("../../gen/ui/dist", import.meta.url)),
    emptyOutDir: true,
    assetsDir: "assets",
    sourcemap: false,
    target: "es2022",
    // One small page: no preload polyfill, no inlined-asset guessing.
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    reportCompressedSize: false,
  },
});
