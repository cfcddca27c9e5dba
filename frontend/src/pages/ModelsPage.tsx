import { useState, type FormEvent } from 'react';
import { Link, useSearchParams } from 'react-router';
import { nameContainsFilter } from '../api/client';
import { useModelVersions, useRegisteredModel, useRegisteredModels } from '../api/hooks';
import type { ModelVersion, RegisteredModel, RegisteredModelAlias } from '../api/types';
import { Badge } from '../components/Badge';
import { Card } from '../components/Card';
import { PageHeader } from '../components/PageHeader';
import { Pager, usePageTokens } from '../components/Pager';
import { SearchField } from '../components/SearchField';
import { QueryState } from '../components/QueryState';
import { EmptyState } from '../components/States';
import { uiPageLink } from '../lib/deeplink';
import { formatDateTime } from '../lib/format';

export const MODELS_PAGE_SIZE = 50;

function AliasList({ aliases }: { aliases: RegisteredModelAlias[] }) {
  if (aliases.length === 0) return <span className="muted">—</span>;
  return (
    <span className="chips">
      {aliases.map((a) => (
        <Badge key={a.alias} tone="info">
          @{a.alias} → v{a.version}
        </Badge>
      ))}
    </span>
  );
}

/** Aliases of one version: from the version itself, or from the model's alias list. */
function versionAliases(v: ModelVersion, model: RegisteredModel | undefined): string[] {
  const own = v.aliases ?? [];
  const fromModel = (model?.aliases ?? []).filter((a) => a.version === v.version).map((a) => a.alias);
  return [...new Set([...own, ...fromModel])].sort();
}

function byVersionDesc(a: ModelVersion, b: ModelVersion): number {
  return Number(b.version) - Number(a.version);
}

function ModelDetail({ name }: { name: string }) {
  const model = useRegisteredModel(name);
  const versions = useModelVersions(name);

  return (
    <Card
      title={
        <>
          Model <span className="mono">{name}</span>
        </>
      }
      actions={
        <Link className="btn btn-secondary btn-small" to={uiPageLink(`#/models/${encodeURIComponent(name)}`)}>
          Open in MLflow UI
        </Link>
      }
    >
      <QueryState query={model} loading="Loading model…" errorTitle="Could not load the model" compact>
        {(m) => (
          <div className="model-summary">
            {m.description ? <p>{m.description}</p> : <p className="muted">No description.</p>}
            <div className="fact-inline">
              <span className="fact-label">Aliases</span>
              <AliasList aliases={m.aliases ?? []} />
            </div>
          </div>
        )}
      </QueryState>
      <h3 className="section-title">Versions</h3>
      <QueryState
        query={versions}
        loading="Loading versions…"
        errorTitle="Could not load the versions"
        compact
        isEmpty={(d) => !d.model_versions?.length}
        emptyTitle="This model has no versions"
      >
        {(d) => {
          const list = [...(d.model_versions ?? [])].sort(byVersionDesc);
          return (
            <div className="table-wrap">
              <table className="table">
                <thead>
                  <tr>
                    <th scope="col">Version</th>
                    <th scope="col">Aliases</th>
                    <th scope="col">Stage</th>
                    <th scope="col">Status</th>
                    <th scope="col">Run</th>
                    <th scope="col">Created</th>
                  </tr>
                </thead>
                <tbody>
                  {list.map((v) => {
                    const aliases = versionAliases(v, model.data);
                    return (
                      <tr key={v.version}>
                        <td>
                          <Link
                            className="strong-link"
                            to={uiPageLink(`#/models/${encodeURIComponent(name)}/versions/${encodeURIComponent(v.version)}`)}
                          >
                            v{v.version}
                          </Link>
                        </td>
                        <td>
                          {aliases.length ? (
                            <span className="chips">
                              {aliases.map((a) => (
                                <Badge key={a} tone="info">
                                  @{a}
                                </Badge>
                              ))}
                            </span>
                          ) : (
                            <span className="muted">—</span>
                          )}
                        </td>
                        <td>{v.current_stage && v.current_stage !== 'None' ? v.current_stage : <span className="muted">—</span>}</td>
                        <td>{v.status ? <Badge tone={v.status === 'READY' ? 'ok' : 'neutral'}>{v.status.toLowerCase()}</Badge> : '—'}</td>
                        <td className="mono small">{v.run_id ? v.run_id.slice(0, 12) : '—'}</td>
                        <td className="nowrap">{formatDateTime(v.creation_timestamp)}</td>
                      </tr>
                    );
                  })}
                </tbody>
              </table>
            </div>
          );
        }}
      </QueryState>
    </Card>
  );
}

export function ModelsPage() {
  const [params, setParams] = useSearchParams();
  const selected = params.get('name');
  const [input, setInput] = useState('');
  const [search, setSearch] = useState('');
  const pages = usePageTokens();
  const query = useRegisteredModels({
    filter: nameContainsFilter(search),
    maxResults: MODELS_PAGE_SIZE,
    pageToken: pages.pageToken,
  });
  const nextToken = query.data?.next_page_token;

  function onSubmit(e: FormEvent) {
    e.preventDefault();
    setSearch(input);
    pages.reset();
  }

  return (
    <>
      <PageHeader title="Models" subtitle="Registered models in the MLflow model registry, their versions and aliases." />
      <div className="split split-wide">
        <Card title="Registered models">
          <form className="toolbar" onSubmit={onSubmit} role="search" aria-label="Search registered models">
            <SearchField id="model-name-filter" label="Name contains" value={input} onChange={setInput} grow />
            <button type="submit" className="btn btn-primary">
              Search
            </button>
          </form>
          <QueryState
            query={query}
            loading="Loading registered models…"
            errorTitle="Could not search registered models"
            retry
            isEmpty={(d) => !d.registered_models?.length}
            emptyTitle={search ? 'No models match' : 'No registered models yet'}
          >
            {(d) => (
              <div className="table-wrap">
                <table className="table">
                  <thead>
                    <tr>
                      <th scope="col">Name</th>
                      <th scope="col">Latest versions</th>
                      <th scope="col">Aliases</th>
                      <th scope="col">Updated</th>
                    </tr>
                  </thead>
                  <tbody>
                    {(d.registered_models ?? []).map((m) => (
                      <tr key={m.name} className={m.name === selected ? 'row-selected' : undefined}>
                        <td className="nowrap">
                          <button
                            type="button"
                            className="link-button"
                            aria-pressed={m.name === selected}
                            onClick={() => setParams({ name: m.name })}
                          >
                            {m.name}
                          </button>
                        </td>
                        <td>
                          {(m.latest_versions ?? []).length ? (
                            <span className="chips">
                              {[...(m.latest_versions ?? [])].sort(byVersionDesc).map((v) => (
                                <Badge key={v.version} tone="neutral">
                                  v{v.version}
                                  {v.current_stage && v.current_stage !== 'None' ? ` · ${v.current_stage}` : ''}
                                </Badge>
                              ))}
                            </span>
                          ) : (
                            <span className="muted">—</span>
                          )}
                        </td>
                        <td>
                          <AliasList aliases={m.aliases ?? []} />
                        </td>
                        <td className="nowrap">{formatDateTime(m.last_updated_timestamp)}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
            )}
          </QueryState>
          <Pager
            label="Model pages"
            page={pages.page}
            hasNext={!!nextToken}
            onPrev={pages.prev}
            onNext={() => nextToken && pages.next(nextToken)}
          />
        </Card>
        {selected ? (
          <ModelDetail key={selected} name={selected} />
        ) : (
          <Card title="Model details">
            <EmptyState title="No model selected">Choose a model to see its versions and aliases.</EmptyState>
          </Card>
        )}
      </div>
    </>
  );
}
