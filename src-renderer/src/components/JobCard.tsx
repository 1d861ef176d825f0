import type { LocalJob } from '@atelier/common';
import { useS, useStores } from '../stores/index.ts';
import { ProgressBar } from './ProgressBar.tsx';
import { isWaiting } from '../stores/jobs.ts';
import { progressLabel } from '../lib/format.ts';
import { StartThumbs } from './StartImage.tsx';

const STATE_LABEL: Record<LocalJob['state'], string> = {
  queued: 'Queued',
  running: 'Generating',
  succeeded: 'Done',
  failed: 'Failed',
  canceled: 'Canceled',
  waiting_online: 'Waiting for connection',
};

/** One job: prompt, where it runs and why, live progress with the latest preview, and its actions. */
export function JobCard({
  job,
  reorderable = false,
  first = false,
  last = false,
}: {
  job: LocalJob;
  reorderable?: boolean;
  /** First / last among the waiting jobs: it cannot move further that way. */
  first?: boolean;
  last?: boolean;
}) {
  const { jobs, gallery, app } = useStores();
  const progress = useS(jobs, (s) => s.progress[job.id]);
  const step = progress?.step ?? job.step;
  const total = progress?.total ?? job.total;
  const active = job.state === 'queued' || job.state === 'running' || job.state === 'waiting_online';
  const resultThumb = useS(gallery, (s) =>
    job.state === 'succeeded' && job.imageIds[0] ? s.items.find((i) => i.id === job.imageIds[0])?.thumbUrl : undefined,
  );
  const preview = resultThumb ?? progress?.preview;
  const label = `${job.request.prompt.slice(0, 60)}`;
  return (
    <li
      className={`job job-${job.state}`}
      aria-label={`${STATE_LABEL[job.state]}: ${label}`}
      tabIndex={reorderable ? 0 : undefined}
      onKeyDown={(e) => {
        if (!reorderable || !e.altKey) return;
        if (e.key === 'ArrowUp') {
          e.preventDefault();
          void jobs.getState().move(job.id, -1);
        } else if (e.key === 'ArrowDown') {
          e.preventDefault();
          void jobs.getState().move(job.id, 1);
        }
      }}
    >
      <div className="job-preview" aria-hidden="true">
        {preview ? <img src={preview} alt="" /> : <div className="job-preview-empty" />}
      </div>
      <div className="job-body">
        <div className="job-title">
          <span className={`badge badge-${job.target}`}>{job.target === 'cloud' ? 'Cloud' : 'Local'}</span>
          <span className="job-prompt" title={job.request.prompt}>
            {job.request.prompt}
          </span>
        </div>
        <div className="job-meta muted">
          <span className="job-state" data-state={job.state}>
            {STATE_LABEL[job.state]}
          </span>
          {' · '}
          {job.request.width}×{job.request.height} · {job.request.steps} steps
          {job.request.count > 1 ? ` · ${job.request.count} images` : ''}
          {job.seed !== null ? ` · seed ${job.seed}` : ''}
        </div>
        <StartThumbs initImage={job.request.initImage} mask={job.request.mask} strength={job.request.strength} />
        {/* Why it runs where it runs matters before and while it runs; afterwards the sentence
            would be stale (it was true at submit time) and the badge says where it ran. */}
        {active && <div className="job-reason muted">{job.reason}</div>}
        {job.state === 'running' && (
          <ProgressBar
            step={step}
            total={total}
            label={`Progress of “${label}”`}
            text={progressLabel(step, total, job.request.count, progress?.decode)}
          />
        )}
        {job.state === 'running' && total > 0 && (
          <div className="muted small job-progress-text" aria-hidden="true">
            {progressLabel(step, total, job.request.count, progress?.decode)}
          </div>
        )}
        {job.state === 'failed' && job.error && (
          <p className="error-text" role="alert">
            {job.error.message}
          </p>
        )}
      </div>
      <div className="job-actions">
        {reorderable && isWaiting(job) && (
          <>
            <button
              type="button"
              className="btn btn-icon"
              aria-label="Move up"
              disabled={first}
              title="Move up (Alt+↑)"
              onClick={() => void jobs.getState().move(job.id, -1)}
            >
              ↑
            </button>
            <button
              type="button"
              className="btn btn-icon"
              aria-label="Move down"
              disabled={last}
              title="Move down (Alt+↓)"
              onClick={() => void jobs.getState().move(job.id, 1)}
            >
              ↓
            </button>
          </>
        )}
        {active && (
          <button type="button" className="btn" onClick={() => void jobs.getState().cancel(job.id)}>
            Cancel
          </button>
        )}
        {(job.state === 'failed' || job.state === 'canceled') && (
          <button type="button" className="btn" onClick={() => void jobs.getState().retry(job.id)}>
            Retry
          </button>
        )}
        {job.state === 'failed' && job.target === 'local' && job.error?.offerCloudRetry && (
          <button type="button" className="btn btn-primary" onClick={() => void jobs.getState().retry(job.id, 'cloud')}>
            Retry in the cloud
          </button>
        )}
        {job.state === 'succeeded' && job.imageIds.length > 0 && (
          <button
            type="button"
            className="btn"
            onClick={() => {
              gallery.getState().open(job.imageIds[0]!);
              app.getState().navigate('gallery');
            }}
          >
            View
          </button>
        )}
      </div>
    </li>
  );
}
