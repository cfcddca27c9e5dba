import { QueryClientProvider } from '@tanstack/react-query';
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { BrowserRouter } from 'react-router';
import { AppRoutes } from './App';
import { createApiClient } from './api/client';
import { ApiClientProvider } from './api/context';
import { createQueryClient } from './api/queryClient';
import { printedLinkTarget } from './lib/deeplink';
import './styles.css';

const root = document.getElementById('root');
if (!root) throw new Error('#root is missing from index.html');

// A link MLflow printed (`<tracking URI>/#/experiments/…`) opens the MLflow UI, not the Overview.
const printedLink = printedLinkTarget(window.location);
if (printedLink) {
  window.location.replace(printedLink);
} else {
  createRoot(root).render(
    <StrictMode>
      <ApiClientProvider client={createApiClient()}>
        <QueryClientProvider client={createQueryClient()}>
          <BrowserRouter>
            <AppRoutes />
          </BrowserRouter>
        </QueryClientProvider>
      </ApiClientProvider>
    </StrictMode>,
  );
}
