import '@testing-library/jest-dom/vitest';
import { cleanup, configure } from '@testing-library/react';
import { afterEach } from 'vitest';

// CI machines are small and often busy: give findBy*/waitFor room.
configure({ asyncUtilTimeout: 5000 });

afterEach(() => {
  cleanup();
});
