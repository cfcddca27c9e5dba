/// <reference types="vitest/config" />
import { defineConfig, loadEnv } from 'vite';
import react from '@vitejs/plugin-react';

// The dashboard is embedded into the Rust binary (rust-embed) and served at `/`.
// `npm run dev` can forward the proxy's own routes to a running proxy:
//   VITE_PROXY_TARGET=http://127.0.0.1:8080 npm run dev
export default defineConfig(({ mode }) => {
  const env = loadEnv(mode, '.', 'VITE_');
  const target = env.VITE_PROXY_TARGET ?? 'http://127.0.0.1:8080';
  const forwarded = ['/api', '/ajax-api', '/mlflow', '/healthz', '/readyz', '/metrics'];
  return {
    base: '/',
    plugins: [react()],
    build: {
      outDir: 'dist',
      assetsDir: 'assets',
      emptyOutDir: true,
      sourcemap: false,
      // Keep every asset a hashed file under dist/assets (nothing inlined as data: URLs).
      assetsInlineLimit: 0,
    },
    server: {
      proxy: Object.fromEntries(forwarded.map((p) => [p, { target, changeOrigin: false }])),
    },
    test: {
      environment: 'jsdom',
      setupFiles: ['./src/test/setup.ts'],
      include: ['src/**/*.test.{ts,tsx}'],
      restoreMocks: true,
      testTimeout: 30_000,
    },
  };
});
