import { useState, type FormEvent } from 'react';
import { Link } from 'react-router';
import { nameContainsFilter } from '../api/client';
import {
  useCreateExperiment,
  useDeleteExperiment,
  useExperiments,
  useRenameExperiment,
  useRestoreExperiment,
} from '../api/hooks';
import type { Experiment, ViewType } from '../api/types';
import { Badge } from '../components/Badge';
import { Card } from '../components/Card';
import { PageHeader } from '../components/PageHeader';
import { Pager, usePageTokens } from '../components/Pager';
import { SearchField } from '../components/SearchField';
import { QueryState } from '../components/QueryState';
import { ErrorMessage } from '../components/States';
import { formatDateTime } from '../lib/format';

const VIEW_TYPES: { value: ViewType; label: string }[] = [
  { value: 'ACTIVE_ONLY', label: 'Active' },
  { value: 'DELETED_ONLY', label: 'Deleted' },
  { value: 'ALL', label: 'All' },
];

export const EXPERIMENTS_PAGE_SIZE = 50;

function CreateExperimentForm() {
  const [name, setName] = useState('');
  const [created, setCreated] = useState<{ id: string; name: string } | null>(null);
  const create = useCreateExperiment();

  function onSubmit(e: FormEvent) {
    e.preventDefault();
    const trimmed = name.trim();
    if (!trimmed) return;
    setCreated(null);
    create.mutate(trimmed, {
      onSuccess: (res) => {
        setCreated({ id: res.experiment_id, name: trimmed });
        setName('');
      },
    });
  }

  return (
    <Card title="New experiment">
      <form className="inline-form" onSubmit={onSubmit}>
        <label htmlFor="new-experiment-name">Name</label>
        <input
          id="new-experiment-name"
          className="input"
          value={name}
          onChange={(e) => setName(e.target.value)}
          placeholder="e.g. churn-model"
          required
        />
        <button type="submit" className="btn btn-primary" disabled={create.isPending || !name.trim()}>
          {create.isPending ? 'Creating…' : 'Create'}
        </button>
      </form>
      {create.error ? <ErrorMessage error={create.error} title="Could not create the experiment" compact /> : null}
      {created ? (
        <p className="success" role="status">
          Created <strong>{created.name}</strong> (ID {created.id}).{' '}
          <Link to={`/experiments/${encodeURIComponent(created.id)}/runs`}>Open its runs</Link>
        </p>
      ) : null}
    </Card>
  );
}

function RenameForm({ experiment, onDone }: { experiment: Experiment; onDone: () => void }) {
  const [value, setValue] = useState(experiment.name);
  const rename = useRenameExperiment();
  function onSubmit(e: FormEvent) {
    e.preventDefault();
    const newName = value.trim();
    if (!newName || newName === experiment.name) {
      onDone();
      return;
    }
    rename.mutate({ id: experiment.experiment_id, newName }, { onSuccess: onDone });
  }
  return (
    <form className="row-form" onSubmit={onSubmit}>
      <label className="visually-hidden" htmlFor={`rename-${experiment.experiment_id}`}>
        New name for {experiment.name}
      </label>
      <input
        id={`rename-${experiment.experiment_id}`}
        className="input input-small"
        value={value}
        onChange={(e) => setValue(e.target.value)}
        autoFocus
      />
      <button type="submit" className="btn btn-primary btn-small" disabled={rename.isPending}>
        {rename.isPending ? 'Saving…' : 'Save'}
      </button>
      <button type="button" className="btn btn-ghost btn-small" onClick={onDone}>
        Cancel
      </button>
      {rename.error ? <ErrorMessage error={rename.error} title="Rename failed" compact /> : null}
    </form>
  );
}

function ExperimentActions({ experiment, onRename }: { experiment: Experiment; onRename: () => void }) {
  const [confirming, setConfirming] = useState(false);
  const del = useDeleteExperiment();
  const restore = useRestoreExperiment();
  const deleted = experiment.lifecycle_stage === 'deleted';
  const error = del.error ?? restore.error;

  return (
    <div className="row-actions">
      {deleted ? (
        <button
          type="button"
          className="btn btn-secondary btn-small"
          onClick={() => restore.mutate(experiment.experiment_id)}
          disabled={restore.isPending}
          aria-label={`Restore ${experiment.name}`}
        >
          {restore.isPending ? 'Restoring…' : 'Restore'}
        </button>
      ) : confirming ? (
        <span className="confirm" role="group" aria-label={`Confirm deleting ${experiment.name}`}>
          <span className="small">Delete?</span>
          <button
            type="button"
            className="btn btn-danger btn-small"
            onClick={() => del.mutate(experiment.experiment_id, { onSettled: () => setConfirming(false) })}
            disabled={del.isPending}
          >
            {del.isPending ? 'Deleting…' : 'Confirm delete'}
          </button>
          <button type="button" className="btn btn-ghost btn-small" onClick={() => setConfirming(false)}>
            Cancel
          </button>
        </span>
      ) : (
        <>
          <button type="button" className="btn btn-secondary btn-small" onClick={onRename} aria-label={`Rename ${experiment.name}`}>
            Rename
          </button>
          <button
            type="button"
            className="btn btn-danger-outline btn-small"
            onClick={() => setConfirming(true)}
            aria-label={`Delete ${experiment.name}`}
          >
            Delete
          </button>
        </>
      )}
      {error ? <ErrorMessage error={error} title={deleted ? 'Restore failed' : 'Delete failed'} compact /> : null}
    </div>
  );
}

function ExperimentRow({ experiment }: { experiment: Experiment }) {
  const [renaming, setRenaming] = useState(false);
  const deleted = experiment.lifecycle_stage === 'deleted';
  return (
    <tr className={deleted ? 'row-deleted' : undefined}>
      <td>
        {renaming ? (
          <RenameForm experiment={experiment} onDone={() => setRenaming(false)} />
        ) : (
          <Link to={`/experiments/${encodeURIComponent(experiment.experiment_id)}/runs`} className="strong-link">
            {experiment.name}
          </Link>
        )}
      </td>
      <td className="mono">{experiment.experiment_id}</td>
      <td>{deleted ? <Badge tone="warn">deleted</Badge> : <Badge tone="ok">active</Badge>}</td>
      <td className="nowrap">{formatDateTime(experiment.last_update_time ?? experiment.creation_time)}</td>
      <td>{renaming ? null : <ExperimentActions experiment={experiment} onRename={() => setRenaming(true)} />}</td>
    </tr>
  );
}

export function ExperimentsPage() {
  const [nameInput, setNameInput] = useState('');
  const [name, setName] = useState('');
  const [viewType, setViewType] = useState<ViewType>('ACTIVE_ONLY');
  const pages = usePageTokens();
  const query = useExperiments({
    filter: nameContainsFilter(name),
    viewType,
    maxResults: EXPERIMENTS_PAGE_SIZE,
    pageToken: pages.pageToken,
  });

  function onSearch(e: FormEvent) {
    e.preventDefault();
    setName(nameInput);
    pages.reset();
  }

  const nextToken = query.data?.next_page_token;

  return (
    <>
      <PageHeader title="Experiments" subtitle="Search, create, rename, delete and restore MLflow experiments." />
      <CreateExperimentForm />
      <Card
        title="Experiments"
        actions={query.isFetching && !query.isPending ? <span className="muted small">Refreshing…</span> : null}
      >
        <form className="toolbar" onSubmit={onSearch} role="search" aria-label="Search experiments">
          <SearchField id="experiment-name-filter" label="Name contains" value={nameInput} onChange={setNameInput} />
          <div className="field">
            <label htmlFor="experiment-view-type">Show</label>
            <select
              id="experiment-view-type"
              className="input"
              value={viewType}
              onChange={(e) => {
                setViewType(e.target.value as ViewType);
                pages.reset();
              }}
            >
              {VIEW_TYPES.map((v) => (
                <option key={v.value} value={v.value}>
                  {v.label}
                </option>
              ))}
            </select>
          </div>
          <button type="submit" className="btn btn-primary">
            Search
          </button>
        </form>
        <QueryState
          query={query}
          loading="Loading experiments…"
          errorTitle="Could not search experiments"
          retry
          isEmpty={(d) => !d.experiments?.length}
          emptyTitle="No experiments match"
          emptyBody={name || viewType !== 'ACTIVE_ONLY' ? 'Try another name or show all experiments.' : 'Create one above.'}
        >
          {(d) => (
            <div className="table-wrap">
              <table className="table">
                <thead>
                  <tr>
                    <th scope="col">Name</th>
                    <th scope="col">ID</th>
                    <th scope="col">Stage</th>
                    <th scope="col">Last updated</th>
                    <th scope="col">
                      <span className="visually-hidden">Actions</span>
                    </th>
                  </tr>
                </thead>
                <tbody>
                  {(d.experiments ?? []).map((exp) => (
                    <ExperimentRow key={exp.experiment_id} experiment={exp} />
                  ))}
                </tbody>
              </table>
            </div>
          )}
        </QueryState>
        <Pager
          label="Experiment pages"
          page={pages.page}
          hasNext={!!nextToken}
          onPrev={pages.prev}
          onNext={() => nextToken && pages.next(nextToken)}
        />
      </Card>
    </>
  );
}
