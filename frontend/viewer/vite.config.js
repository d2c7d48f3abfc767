// Builds the viewer into the Python package (dranspose/viewer), committed so that installing
// dranspose needs no Node. Relative asset URLs (base './'): the page works under any prefix.
// JSX is compiled by Vite's esbuild (React's automatic runtime), no React plugin needed.
import { defineConfig } from 'vite';

export default defineConfig({
  base: './',
  esbuild: { jsx: 'automatic' },
  build: {
    outDir: '../../dranspose/viewer',
    emptyOutDir: true,
    assetsDir: 'assets',
    sourcemap: false,
    chunkSizeWarningLimit: 3000,
    reportCompressedSize: false,
    rollupOptions: {
      // dependencies' "use client" lines mean nothing outside React Server Components
      onwarn(warning, warn) {
        if (warning.code !== 'MODULE_LEVEL_DIRECTIVE') warn(warning);
      },
    },
  },
});
