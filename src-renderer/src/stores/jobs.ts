import type { IpcEventPayload, LocalJob } from '@atelier/common';
import { createStore } from 'zustand/vanilla';
import type { Api } from '../bridge.ts';

export type Progress = IpcEventPayload<'jobs:progressed'>;

export interface JobsState {
  jobs: Record<string, LocalJob>;
  progress: Record<string, Progress>;
  loaded: boolean;
  load(): Promise<void>;
  upsert(job: LocalJob): void;
  progressed(p: Progress): void;
  cancel(id: string): Promise<void>;
  retry(id: string, target?: 'local' | 'cloud'): Promise<void>;
  move(id: string, delta: number): Promise<void>;
}

const ACTIVE = new Set(['queued', 'running', 'waiting_online']);
export const isActive = (j: LocalJob): boolean => ACTIVE.has(j.state);
/** Jobs that have not started: the ones the queue can reorder. */
export const isWaiting = (j: LocalJob): boolean => j.state === 'queued' || j.state === 'waiting_online';

/** Active jobs in queue order first, then finished ones newest first. */
export function orderedJobs(jobs: Record<string, LocalJob>): LocalJob[] {
  const all = Object.values(jobs);
  const active = all.filter(isActive).sort((a, b) => a.position - b.position || a.createdAt.localeCompare(b.createdAt));
  const done = all.filter((j) => !isActive(j)).sort((a, b) => b.updatedAt.localeCompare(a.updatedAt));
  return [...active, ...done];
}

/** The queue index (among waiting jobs, 0 = next to run) a queued job moves to by `delta` places; null if it cannot move. */
export function reorderTarget(jobs: LocalJob[], id: string, delta: number): number | null {
  const waiting = jobs.filter(isWaiting).sort((a, b) => a.position - b.position || a.id.localeCompare(b.id));
  const i = waiting.findIndex((j) => j.id === id);
  if (i < 0) return null;
  const to = Math.max(0, Math.min(waiting.length - 1, i + delta));
  if (to === i) return null;
  return to;
}

export function createJobsStore(api: Api, onError: (e: unknown) => void) {
  return createStore<JobsState>()((set, get) => ({
    jobs: {},
    progress: {},
    loaded: false,
    async load() {
      const { items } = await api.invoke('jobs:list', {});
      set({ jobs: Object.fromEntries(items.map((j) => [j.id, j])), loaded: true });
    },
    upsert(job) {
      const progress = { ...get().progress };
      if (!isActive(job)) delete progress[job.id];
      set({ jobs: { ...get().jobs, [job.id]: job }, progress });
    },
    progressed(p) {
      const job = get().jobs[p.jobId];
      // Keep the last preview when a step arrives without one.
      const prev = get().progress[p.jobId];
      const next: Progress = { ...p, ...(p.preview === undefined && prev?.preview ? { preview: prev.preview } : {}) };
      set({
        progress: { ...get().progress, [p.jobId]: next },
        ...(job
          ? { jobs: { ...get().jobs, [p.jobId]: { ...job, step: p.step, total: p.total, state: 'running' } } }
          : {}),
      });
    },
    async cancel(id) {
      try {
        await api.invoke('jobs:cancel', { jobId: id });
      } catch (e) {
        onError(e);
      }
    },
    async retry(id, target) {
      try {
        const job = await api.invoke('jobs:retry', { jobId: id, ...(target ? { target } : {}) });
        get().upsert(job);
      } catch (e) {
        onError(e);
      }
    },
    async move(id, delta) {
      const position = reorderTarget(Object.values(get().jobs), id, delta);
      if (position === null) return;
      try {
        await api.invoke('jobs:reorder', { jobId: id, position });
        await get().load();
      } catch (e) {
        onError(e);
      }
    },
  }));
}
export type JobsStore = ReturnType<typeof createJobsStore>;
