import type { LocalJob } from '@atelier/common';
import { describe, expect, it } from 'vitest';
import { orderedJobs, reorderTarget } from './jobs.ts';

const job = (
  n: number,
  state: LocalJob['state'],
  position: number,
  updatedAt = `2026-01-01T00:00:0${n}Z`,
): LocalJob => ({
  id: `job_${'0'.repeat(21)}${n}`,
  request: {
    prompt: `p${n}`,
    negativePrompt: '',
    width: 512,
    height: 512,
    steps: 4,
    guidance: 1,
    scheduler: 'lcm',
    count: 1,
    target: 'local',
  },
  target: 'local',
  reason: 'r',
  state,
  position,
  step: 0,
  total: 4,
  seed: null,
  imageIds: [],
  error: null,
  cloudGenerationId: null,
  createdAt: updatedAt,
  updatedAt,
});

describe('queue order', () => {
  const jobs = [
    job(1, 'succeeded', 0),
    job(2, 'queued', 2),
    job(3, 'running', 0),
    job(4, 'queued', 1),
    job(5, 'failed', 0, '2026-01-01T00:00:09Z'),
  ];
  it('lists active jobs in queue order, then finished ones newest first', () => {
    expect(orderedJobs(Object.fromEntries(jobs.map((j) => [j.id, j]))).map((j) => j.request.prompt)).toEqual([
      'p3',
      'p4',
      'p2',
      'p5',
      'p1',
    ]);
  });
  it('moves a waiting job among the waiting jobs only', () => {
    const [, j2, , j4] = jobs;
    expect(reorderTarget(jobs, j2!.id, -1)).toBe(0);
    expect(reorderTarget(jobs, j4!.id, -1)).toBeNull();
    expect(reorderTarget(jobs, j4!.id, 5)).toBe(1);
    expect(reorderTarget(jobs, jobs[2]!.id, 1)).toBeNull(); // running jobs do not move
  });
});
