export interface ServiceUrls {
  databaseUrl: string;
  redisUrl: string;
  kafkaBrokers: string[];
}

export type Provider = 'env' | 'testcontainers' | 'local';

export type ServiceName = 'postgres' | 'redis' | 'kafka';

/** One running service as the environment sees it, whoever provided it. */
export interface StartedService {
  provider: Provider;
  urls: Partial<ServiceUrls>;
  stop(): Promise<void>;
}
