/** The generation queue's channels and the router's explanation of where a job would run. */
import type { IpcHandlers } from '@atelier/common';
import type { JobQueue } from '../jobs.ts';
import { decideRoute } from '../router.ts';
import type { RouteFactsService } from '../route-facts.ts';

export interface JobsHandlersDeps {
  jobs: JobQueue;
  routeFacts: RouteFactsService;
}

type JobsChannels = 'jobs:submit' | 'jobs:list' | 'jobs:cancel' | 'jobs:retry' | 'jobs:reorder' | 'router:explain';

export function createJobsHandlers({ jobs, routeFacts }: JobsHandlersDeps): Pick<IpcHandlers, JobsChannels> {
  const ok = { ok: true as const };
  return {
    'jobs:submit': (input) => jobs.submit(input),
    'jobs:list': async () => ({ items: jobs.list() }),
    'jobs:cancel': async ({ jobId }) => {
      await jobs.cancel(jobId);
      return ok;
    },
    'jobs:retry': ({ jobId, target }) => jobs.retry(jobId, target),
    'jobs:reorder': async ({ jobId, position }) => {
      jobs.reorder(jobId, position);
      return ok;
    },
    'router:explain': async (input) => decideRoute(await routeFacts.facts(input)).decision,
  };
}
