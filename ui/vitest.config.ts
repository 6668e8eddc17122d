// Unit tests for the pure parts (SSE parsing, routing, the Markdown
// sanitiser, timeline layout) in a jsdom document.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    environment: 'jsdom',
    include: ['src/**/*.test.ts'],
  },
});
