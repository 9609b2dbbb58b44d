// Where a local stack's TLS files live (infra/tls.ts makes them): paths only, so that resolving endpoints never
// loads the certificate library.
import path from 'node:path';

/** Where a stack's TLS files are. MinIO reads its certificates from minioCertsDir (public.crt, private.key, CAs/). */
export interface TlsFiles {
  dir: string;
  caCert: string;
  caKey: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  minioCertsDir: string;
}

export function tlsFiles(home: string): TlsFiles {
  const dir = path.join(home, 'tls');
  return {
    dir,
    caCert: path.join(dir, 'ca.crt'),
    caKey: path.join(dir, 'ca.key'),
    serverCert: path.join(dir, 'server.crt'),
    serverKey: path.join(dir, 'server.key'),
    clientCert: path.join(dir, 'client.crt'),
    clientKey: path.join(dir, 'client.key'),
    minioCertsDir: path.join(dir, 'minio'),
  };
}

/** The name clients check the server certificate against (it also holds 127.0.0.1 and ::1). */
export const TLS_SERVER_NAME = 'localhost';
