import type { ServiceUrls } from '@walpurge/testing';

// What test/global-setup.ts provides to every integration test: `inject('services')`.
declare module 'vitest' {
  export interface ProvidedContext {
    services: ServiceUrls;
  }
}
