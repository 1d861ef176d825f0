import { useMemo } from 'react';
import { JobCard } from '../components/JobCard.tsx';
import { isActive, isWaiting, orderedJobs } from '../stores/jobs.ts';
import { useS, useStores } from '../stores/index.ts';

export function QueueScreen() {
  const { jobs } = useStores();
  const map = useS(jobs, (s) => s.jobs);
  const loaded = useS(jobs, (s) => s.loaded);
  const all = useMemo(() => orderedJobs(map), [map]);
  const active = all.filter(isActive);
  const done = all.filter((j) => !isActive(j));
  const waiting = active.filter(isWaiting);
  return (
    <div className="panel queue">
      <h1 className="screen-title">Queue</h1>
      <p className="muted">Reorder waiting jobs with the arrow buttons, or focus a job and press Alt+↑ / Alt+↓.</p>
      <section aria-labelledby="q-active">
        <h2 id="q-active">
          Running and waiting <span className="count">{active.length}</span>
        </h2>
        {active.length === 0 ? (
          <p className="muted empty">{loaded ? 'Nothing is running.' : 'Loading…'}</p>
        ) : (
          <ul className="job-list" aria-label="Active jobs">
            {active.map((j) => (
              <JobCard
                key={j.id}
                job={j}
                reorderable
                first={j.id === waiting[0]?.id}
                last={j.id === waiting.at(-1)?.id}
              />
            ))}
          </ul>
        )}
      </section>
      <section aria-labelledby="q-done">
        <h2 id="q-done">
          Finished <span className="count">{done.length}</span>
        </h2>
        {done.length === 0 ? (
          <p className="muted empty">Finished jobs appear here.</p>
        ) : (
          <ul className="job-list" aria-label="Finished jobs">
            {done.slice(0, 100).map((j) => (
              <JobCard key={j.id} job={j} />
            ))}
          </ul>
        )}
      </section>
    </div>
  );
}
