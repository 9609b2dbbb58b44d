// The endpoints of a local stack (embedded or cluster profile): everything on 127.0.0.1, the workers' S3 user,
// and with TLS the stack's CA and client certificate (infra/tls.ts).
// Its own module because infra/endpoints.ts imports infra/cluster-options.ts, and both build these.
import type { StackEndpoints } from './endpoints';
import { LOOPBACK } from './ports';
import { TLS_SERVER_NAME, type TlsFiles } from './tls-files';

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

/** What workers and commands use: the workers' user, never the admin; `tls`: the stack's TLS files, if it has TLS. */
export function loopbackEndpoints(
  o: LoopbackStack,
  embedded: boolean,
  tls: TlsFiles | null = null,
): StackEndpoints {
  const s = tls ? 's' : '';
  return {
    temporal: {
      address: `${LOOPBACK}:${o.temporalPort}`,
      namespace: o.namespace,
      uiUrl: `http://${LOOPBACK}:${o.uiPort}`,
      ...(tls
        ? {
            tls: {
              certPath: tls.clientCert,
              keyPath: tls.clientKey,
              caPath: tls.caCert,
              serverName: TLS_SERVER_NAME,
            },
          }
        : {}),
    },
    s3: {
      endpoint: `http${s}://${LOOPBACK}:${o.minioPort}`,
      accessKey: o.s3WorkerAccessKey,
      secretKey: o.s3WorkerSecretKey,
      bucket: o.bucket,
      consoleUrl: `http${s}://${LOOPBACK}:${o.consolePort}`,
      ...(tls ? { caFile: tls.caCert } : {}),
    },
    embedded,
  };
}
