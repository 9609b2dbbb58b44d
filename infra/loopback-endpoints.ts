// The endpoints of a local stack (embedded or cluster profile): everything on 127.0.0.1, the workers' S3 user.
// Its own module because infra/endpoints.ts imports infra/cluster-options.ts, and both build these.
import type { StackEndpoints } from './endpoints';
import { LOOPBACK } from './ports';

export interface LoopbackStack {
  temporalPort: number;
  uiPort: number;
  minioPort: number;
  consolePort: number;
  namespace: string;
  bucket: string;
  s3WorkerAccessKey: string;
  s3WorkerSecretKey: string;
}

/** What workers and commands use: the workers' user, never the admin. */
export function loopbackEndpoints(o: LoopbackStack, embedded: boolean): StackEndpoints {
  return {
    temporal: {
      address: `${LOOPBACK}:${o.temporalPort}`,
      namespace: o.namespace,
      uiUrl: `http://${LOOPBACK}:${o.uiPort}`,
    },
    s3: {
      endpoint: `http://${LOOPBACK}:${o.minioPort}`,
      accessKey: o.s3WorkerAccessKey,
      secretKey: o.s3WorkerSecretKey,
      bucket: o.bucket,
      consoleUrl: `http://${LOOPBACK}:${o.consolePort}`,
    },
    embedded,
  };
}
