import { Route, Routes } from 'react-router';
import { Layout } from './components/Layout';
import { ConsolePage } from './pages/ConsolePage';
import { EmbedPage } from './pages/EmbedPage';
import { ExperimentsPage } from './pages/ExperimentsPage';
import { MlflowUiPage } from './pages/MlflowUiPage';
import { ModelsPage } from './pages/ModelsPage';
import { NotFoundPage } from './pages/NotFoundPage';
import { OverviewPage } from './pages/OverviewPage';
import { RunsPage } from './pages/RunsPage';

/** Client-side routes. None start with the proxy's own prefixes (/api, /mlflow, …). */
export function AppRoutes() {
  return (
    <Routes>
      <Route element={<Layout />}>
        <Route index element={<OverviewPage />} />
        <Route path="ui" element={<MlflowUiPage />} />
        <Route path="experiments" element={<ExperimentsPage />} />
        <Route path="experiments/:experimentId/runs" element={<RunsPage />} />
        <Route path="models" element={<ModelsPage />} />
        <Route path="console" element={<ConsolePage />} />
        <Route path="embed" element={<EmbedPage />} />
        <Route path="*" element={<NotFoundPage />} />
      </Route>
    </Routes>
  );
}
