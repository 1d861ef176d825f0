/** `app:info` and `engine:providers`: what this build and this machine are. */
import type { IpcHandlers } from '@atelier/common';
import type { RouteFactsService } from '../route-facts.ts';

export interface AppHandlersDeps {
  version: string;
  platform: string;
  shell: 'electron' | 'browser';
  apiUrl: string | null;
  mailboxUrl: string | null;
  routeFacts: RouteFactsService;
}

export function createAppHandlers(deps: AppHandlersDeps): Pick<IpcHandlers, 'app:info' | 'engine:providers'> {
  return {
    'app:info': async () => ({
      version: deps.version,
      platform: deps.platform,
      shell: deps.shell,
      apiUrl: deps.apiUrl,
      mailboxUrl: deps.mailboxUrl,
    }),
    'engine:providers': () => deps.routeFacts.providers(),
  };
}
