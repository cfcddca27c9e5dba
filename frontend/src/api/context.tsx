import { createContext, useContext, type ReactNode } from 'react';
import { createApiClient, type ApiClient } from './client';

const defaultClient = createApiClient();
const ApiClientContext = createContext<ApiClient>(defaultClient);

/** Supplies the API client to the hooks; tests pass a mocked one. */
export function ApiClientProvider({ client, children }: { client: ApiClient; children: ReactNode }) {
  return <ApiClientContext.Provider value={client}>{children}</ApiClientContext.Provider>;
}

export function useApiClient(): ApiClient {
  return useContext(ApiClientContext);
}
