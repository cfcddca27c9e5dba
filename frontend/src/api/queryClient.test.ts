import { describe, expect, it } from 'vitest';
import { ApiError } from './client';
import { shouldRetry } from './queryClient';

const err = (status: number) => new ApiError({ message: 'x', status, method: 'GET', path: '/' });

describe('shouldRetry', () => {
  it('does not retry requests the server refused', () => {
    expect(shouldRetry(0, err(400))).toBe(false);
    expect(shouldRetry(0, err(404))).toBe(false);
  });

  it('retries network and server errors twice', () => {
    expect(shouldRetry(0, err(0))).toBe(true);
    expect(shouldRetry(1, err(503))).toBe(true);
    expect(shouldRetry(2, err(503))).toBe(false);
    expect(shouldRetry(0, new Error('boom'))).toBe(true);
  });
});
